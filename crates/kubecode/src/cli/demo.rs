//! `kubecode demo`: the main job in one command. The embedded demo cluster, the built-in
//! health scan run as one code-mode program, and its findings printed for a person.

use std::process::ExitCode;

use serde_json::Value;

use super::connect::{Connection, SandboxKind, Target, isolation};

/// The health scan program: the first worked example of the code-mode prompt.
const HEALTH_SCAN: &str = server::HEALTH_SCAN;

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Renders the findings as a table, evidence indented under each row.
fn render(result: &Value, calls: usize, wall_ms: u64) -> String {
    let findings = result
        .get("findings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let width = findings
        .iter()
        .map(|f| text(f, "object").len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = String::new();
    out.push_str(&format!("{:<width$}  PROBLEM\n", "OBJECT"));
    for f in &findings {
        out.push_str(&format!(
            "{:<width$}  {}\n",
            text(f, "object"),
            text(f, "problem")
        ));
        let evidence = text(f, "evidence");
        let shown: String = evidence.chars().take(160).collect();
        let more = if evidence.chars().count() > 160 {
            "…"
        } else {
            ""
        };
        out.push_str(&format!("{:<width$}    evidence: {shown}{more}\n", ""));
    }
    let scanned = &result["scanned"];
    out.push_str(&format!(
        "\n{} findings in {} pods, {} services and {} warning events, from one program: {calls} tool calls in {wall_ms} ms.\n",
        findings.len(),
        scanned["pods"],
        scanned["services"],
        scanned["warnings"],
    ));
    out
}

/// Runs the demo.
pub async fn run() -> anyhow::Result<ExitCode> {
    let target = Target {
        kubeconfig: None,
        context: None,
        demo: true,
    };
    // The demo runs wherever it can: in a sandbox process where the kernel has seccomp.
    let kind = if sandbox::seccomp_supported() {
        SandboxKind::Process
    } else {
        SandboxKind::InProcess
    };
    let isolation = isolation(kind, 0, &sandbox::Limits::default(), false)?;
    let options = server::Options {
        isolation,
        ..server::Options::default()
    };
    let connection = Connection::open(&target, options).await?;
    // The same session, call path and shaping as run_code.
    let session = connection.server.session(server::Caller::local());
    let limits = connection.server.limits().clone();
    let out = session
        .run_program(HEALTH_SCAN, limits, server::CallEnv::default())
        .await;
    println!(
        "kubecode demo: the embedded demo cluster (3 nodes, 37 pods), scanned by one code-mode program"
    );
    println!(
        "(the program: crates/server/src/examples/health_scan.ts; run your own with `kubecode run FILE --demo`)\n"
    );
    let doc = &out.document;
    if !out.ok {
        let e = &doc["error"];
        anyhow::bail!(
            "the health scan failed: {}: {}",
            text(e, "name"),
            text(e, "message")
        );
    }
    let calls = doc["calls"].as_array().map_or(0, Vec::len);
    let wall_ms = doc["stats"]["wallMs"].as_u64().unwrap_or(0);
    print!("{}", render(&doc["result"], calls, wall_ms));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn findings_render_as_a_table() {
        let result = json!({"scanned": {"pods": 3, "services": 1, "warnings": 2}, "findings": [
            {"object": "pod a/b", "problem": "CrashLoopBackOff", "evidence": "boom"}]});
        let text = render(&result, 4, 12);
        assert!(
            text.starts_with("OBJECT   PROBLEM\npod a/b  CrashLoopBackOff\n"),
            "{text}"
        );
        assert!(text.contains("evidence: boom") && text.contains("1 findings in 3 pods"));
    }
}
