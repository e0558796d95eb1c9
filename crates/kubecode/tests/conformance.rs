//! The official MCP conformance suite (`@modelcontextprotocol/conformance` from npm, run with
//! Node 22; `scripts/install-test-deps` installs both into target/conformance) against
//! `kubecode serve --transport http` on the demo cluster: the release (2025-06-18 and
//! 2025-11-25 scenarios) and the first release with 2026-07-28 scenarios. A scenario that
//! applies must pass; the ones that do not apply are listed, each with why, in
//! tests/conformance/expected-failures*.yaml, and a listed one that passes fails the test too.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args([
            "serve",
            "--demo",
            "--transport",
            "http",
            "--addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubecode starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server said where it listens")
            .expect("stderr line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim_end_matches("/mcp").parse().expect("an address");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where scripts/install-test-deps put Node 22 and the suite.
fn suite_dir() -> PathBuf {
    let dir = std::env::var_os("KUBECODE_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/conformance"));
    let node = dir.join("node_modules/.bin/node");
    assert!(
        node.exists(),
        "the MCP conformance suite is not installed at {}: run scripts/install-test-deps (it installs \
         @modelcontextprotocol/conformance and node@22 from npm), or set KUBECODE_CONFORMANCE_DIR",
        dir.display()
    );
    dir
}

/// One entry of an expected-failures file: a whole scenario, or one check of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    scenario: String,
    check: Option<String>,
}

/// Reads `server:` entries (`- NAME # why` or `- SCENARIO/CHECK # why`); an entry without a
/// reason is an error.
fn expected(file: &str) -> BTreeSet<Entry> {
    let path = repo().join("tests/conformance").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut in_server = false;
    let mut entries = BTreeSet::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            in_server = trimmed == "server:";
            continue;
        }
        assert!(in_server, "{file}: {line:?} is outside `server:`");
        let item = trimmed
            .strip_prefix("- ")
            .unwrap_or_else(|| panic!("{file}: {line:?} is not a list item"));
        let (name, why) = item.split_once(" # ").unwrap_or_else(|| {
            panic!(
                "{file}: {name:?} says not why it does not apply (`- NAME # why`)",
                name = item
            )
        });
        assert!(
            why.trim().len() > 20,
            "{file}: the reason for {name} is too short to say why it does not apply: {why:?}"
        );
        let name = name.trim();
        let entry = match name.split_once('/') {
            Some((scenario, check)) => Entry {
                scenario: scenario.to_string(),
                check: Some(check.to_string()),
            },
            None => Entry {
                scenario: name.to_string(),
                check: None,
            },
        };
        assert!(entries.insert(entry), "{file}: {name} is listed twice");
    }
    entries
}

/// A check that did not pass: its id and message.
type Failed = Vec<(String, String)>;

/// Runs one suite and reads its checks: scenario → the checks that failed or warned.
fn run_suite(package: &str, url: &str, args: &[&str]) -> BTreeMap<String, Failed> {
    let dir = suite_dir();
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(dir.join("node_modules/.bin/node"))
        .arg(dir.join("node_modules").join(package).join("dist/index.js"))
        .args(["server", "--url", url, "--output-dir"])
        .arg(out.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    // The suite ends in seconds; a hang is a failure, not a stuck CI run.
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("{package} did not finish within 300 s against {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut results = BTreeMap::new();
    for dir in std::fs::read_dir(out.path()).unwrap() {
        let dir = dir.unwrap();
        let name = dir.file_name().to_string_lossy().into_owned();
        // server-SCENARIO-YYYY-MM-DDTHH-MM-SS-mmmZ
        let stamp = "-2026-01-01T00-00-00-000Z".len();
        let scenario = name
            .strip_prefix("server-")
            .filter(|s| s.len() > stamp && s.ends_with('Z'))
            .map(|s| s[..s.len() - stamp].to_string())
            .unwrap_or_else(|| panic!("unexpected result directory {name}"));
        let checks: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("checks.json")).unwrap())
                .unwrap();
        let failed: Failed = checks
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| matches!(c["status"].as_str(), Some("FAILURE" | "WARNING")))
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or("?").to_string(),
                    c["errorMessage"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        results.insert(scenario, failed);
    }
    results
}

/// Holds the results to the expected failures; returns (pass, pass but for checks that do not
/// apply, do not apply).
fn judge(
    label: &str,
    results: &BTreeMap<String, Failed>,
    expected: &BTreeSet<Entry>,
    at_least: usize,
) -> (usize, usize, usize) {
    let mut problems = Vec::new();
    let (mut pass, mut partly, mut not_applying) = (0, 0, 0);
    for entry in expected {
        if !results.contains_key(&entry.scenario) {
            problems.push(format!(
                "{} is listed but the suite has no such scenario: remove it",
                entry.scenario
            ));
        }
    }
    for (scenario, failed) in results {
        let whole = expected.contains(&Entry {
            scenario: scenario.clone(),
            check: None,
        });
        if whole {
            not_applying += 1;
            if failed.is_empty() {
                problems.push(format!(
                    "{scenario} passes now but is listed as not applying: remove it from the list"
                ));
            }
            continue;
        }
        let listed: BTreeSet<&str> = expected
            .iter()
            .filter(|e| &e.scenario == scenario)
            .filter_map(|e| e.check.as_deref())
            .collect();
        let mut ok = true;
        for (check, message) in failed {
            if !listed.contains(check.as_str()) {
                ok = false;
                problems.push(format!("{scenario}: check {check} failed: {message}"));
            }
        }
        for check in listed {
            if !failed.iter().any(|(c, _)| c == check) {
                problems.push(format!(
                    "{scenario}/{check} passes now but is listed as not applying: remove it from the list"
                ));
            }
        }
        if ok && failed.is_empty() {
            pass += 1;
        } else if ok {
            partly += 1;
        }
    }
    assert!(problems.is_empty(), "{label}:\n  {}", problems.join("\n  "));
    assert!(
        results.len() >= at_least,
        "{label}: only {} scenarios ran, expected at least {at_least}: {:?}",
        results.len(),
        results.keys().collect::<Vec<_>>()
    );
    eprintln!(
        "{label}: {pass} of {} scenarios pass, {partly} pass all checks that apply, {not_applying} do not apply",
        results.len()
    );
    (pass, partly, not_applying)
}

#[test]
fn the_release_suite_passes_every_scenario_that_applies() {
    let server = start(&[]);
    let url = format!("http://{}/mcp", server.addr);
    let results = run_suite("@modelcontextprotocol/conformance", &url, &[]);
    let (pass, _, _) = judge(
        "conformance 0.1.16 (2025-06-18, 2025-11-25)",
        &results,
        &expected("expected-failures.yaml"),
        30,
    );
    // The scenarios kubecode's own surface answers: lifecycle, utilities, lists, errors, HTTP.
    assert!(pass >= 10, "{pass}");
}

#[test]
fn the_release_suite_passes_under_stateless_too() {
    let server = start(&["--stateless"]);
    let url = format!("http://{}/mcp", server.addr);
    let results = run_suite("@modelcontextprotocol/conformance", &url, &[]);
    let mut not_applying = expected("expected-failures.yaml");
    not_applying.extend(expected("expected-failures-stateless.yaml"));
    judge(
        "conformance 0.1.16 (2025-06-18, 2025-11-25) against --stateless",
        &results,
        &not_applying,
        30,
    );
}

#[test]
fn the_2026_07_28_suite_passes_every_scenario_that_applies() {
    let server = start(&[]);
    let url = format!("http://{}/mcp", server.addr);
    let results = run_suite(
        "conformance-next",
        &url,
        &["--suite", "all", "--spec-version", "2026-07-28"],
    );
    for scenario in ["server-stateless", "caching", "http-header-validation"] {
        assert!(results.contains_key(scenario), "{scenario} did not run");
    }
    judge(
        "conformance 0.2.0-alpha.12 (2026-07-28)",
        &results,
        &expected("expected-failures-2026-07-28.yaml"),
        40,
    );
}

#[test]
fn the_2026_07_28_suite_passes_under_stateless_too() {
    let server = start(&["--stateless"]);
    let url = format!("http://{}/mcp", server.addr);
    let results = run_suite(
        "conformance-next",
        &url,
        &["--suite", "all", "--spec-version", "2026-07-28"],
    );
    judge(
        "conformance 0.2.0-alpha.12 (2026-07-28) against --stateless",
        &results,
        &expected("expected-failures-2026-07-28.yaml"),
        40,
    );
}
