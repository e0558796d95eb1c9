//! Property tests with a fixed budget (they run in CI): mangled JSON-RPC input to the server,
//! mangled programs to the sandbox, mangled snapshots to kubesim's loader. The property is the
//! same each time: no panic, no hang, and the server still answers afterwards.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

/// Valid programs to mangle: the worked examples' shapes and some TypeScript.
const PROGRAMS: &[&str] = &[
    "const pods = await tools.kubernetes.list({ kind: \"Pod\", allNamespaces: true });\nreturn pods.filter(p => p.status.phase !== \"Running\").map(p => p.metadata.name);",
    "interface Finding { pod: string; problem: string }\nconst out: Finding[] = [];\nfor (const x of [1, 2, 3]) out.push({ pod: `p${x}`, problem: \"none\" });\nreturn out;",
    "enum Color { Red, Green }\nconst c: Color = Color.Green;\nconsole.log(`color ${c}`);\nawait sleep(1);\nreturn { c, s: state.get(\"k\") ?? null };",
    "async function f<T>(x: T): Promise<T> { return x; }\nconst r = await Promise.all([f(1), f(\"a\"), tools.bench.echo({ a: 1 })]);\nreturn r satisfies unknown[];",
    "try { JSON.parse(\"{\"); } catch (e) { return (e as Error).message; }",
];

/// A few tokens worth splicing into programs.
const SPLICE: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "`",
    "${",
    "/*",
    "*/",
    "//",
    "\"",
    "'",
    "await ",
    "return ",
    "=>",
    "<",
    ">",
    "as any",
    "while(true)",
    "\\u{10FFFF}",
    "\u{0}",
    "\n",
    "enum",
    "interface X {",
    "import(",
    "#!",
    "@decorator",
];

struct Echo;

impl sandbox::Host for Echo {
    fn functions(&self) -> Vec<String> {
        vec!["bench.echo".into(), "kubernetes.list".into()]
    }
    fn call(&self, _path: &str, args: Value, _ahead: sandbox::ItemBatches) -> sandbox::CallFuture {
        Box::pin(async move { Ok(sandbox::HostValue::Json(json!([args]))) })
    }
    fn search(&self, _query: &str, _limit: usize) -> Value {
        json!([])
    }
    fn describe(&self, _path: &str) -> Option<String> {
        None
    }
}

fn mangle(base: &str, edits: &[(usize, usize, usize)]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for &(at, op, pick) in edits {
        if chars.is_empty() {
            break;
        }
        let at = at % chars.len();
        match op % 3 {
            0 => {
                let end = (at + pick % 8 + 1).min(chars.len());
                chars.drain(at..end);
            }
            1 => {
                let piece: Vec<char> = SPLICE[pick % SPLICE.len()].chars().collect();
                chars.splice(at..at, piece);
            }
            _ => {
                let end = (at + pick % 16 + 1).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, copy);
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mangled_programs_end_cleanly(which in 0..PROGRAMS.len(), edits in proptest::collection::vec((0usize..4000, 0usize..3, 0usize..64), 1..6)) {
        let program = mangle(PROGRAMS[which], &edits);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let limits = sandbox::Limits { wall: Duration::from_millis(300), memory: 16 << 20, ..sandbox::Limits::default() };
        let started = std::time::Instant::now();
        let out = runtime.block_on(sandbox::run(&program, Arc::new(Echo), sandbox::State::default(), limits, sandbox::Control::default()));
        prop_assert!(started.elapsed() < Duration::from_secs(3), "{program:?} took {:?}", started.elapsed());
        if !out.ok {
            let e = out.error.as_ref().expect("a failed run says why");
            prop_assert!(!e.message.is_empty(), "{program:?}: empty error");
        }
    }

    #[test]
    fn mangled_snapshots_load_or_fail_cleanly(
        which in 0usize..4,
        edits in proptest::collection::vec((0usize..8000, 0usize..3, 0usize..64), 0..8),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let sources = [
            include_str!("fixtures/injection/objects.yaml"),
            include_str!("fixtures/injection/logs/tenant-x/notes-api/notes-api.log"),
            "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"b\"}}]}",
            "==== START logs for container c of pod b/a ====\nhello\n==== END logs for container c of pod b/a ====\n",
        ];
        let paths = ["objects.yaml", "logs/b/a/c.log", "b/pods.json", "b/a/logs.txt"];
        let mut contents = mangle(sources[which], &edits).into_bytes();
        contents.extend(noise);
        let files = vec![kubesim::snapshot::SnapshotFile { path: paths[which].into(), contents }];
        for lenient in [false, true] {
            let options = kubesim::LoadOptions { lenient, now: None };
            let _ = kubesim::Snapshot::from_files(&files, &options);
        }
    }
}

/// Lines a fuzzer might send: garbage, truncated JSON, and requests with mangled params.
fn rpc_line() -> impl Strategy<Value = String> {
    let methods = prop_oneof![
        Just("initialize"),
        Just("tools/call"),
        Just("tools/list"),
        Just("resources/read"),
        Just("prompts/get"),
        Just("ping"),
        Just("notifications/cancelled"),
        Just("nonsense/method"),
    ];
    let params = prop_oneof![
        Just(json!(null)),
        Just(json!({"name": "run_code", "arguments": {"code": "return 1"}})),
        Just(json!({"name": "run_code", "arguments": {"code": 42}})),
        Just(json!({"name": "kube_get", "arguments": {"kind": "Pod", "name": "../x"}})),
        Just(json!({"name": "kube_list", "arguments": {"kind": [], "limit": -1}})),
        Just(json!({"uri": "kubecode://types/../../etc/passwd"})),
        Just(json!({"name": "code-mode", "arguments": {"x": {"y": [1, 2, {"z": null}]}}})),
        "[ -~]{0,40}".prop_map(|s| json!(s)),
    ];
    prop_oneof![
        "[ -~]{0,80}",
        (methods.clone(), params.clone(), any::<i64>()).prop_map(|(m, p, id)| {
            json!({"jsonrpc": "2.0", "id": id, "method": m, "params": p}).to_string()
        }),
        (methods, params).prop_map(|(m, p)| {
            let s = json!({"jsonrpc": "2.0", "id": 1, "method": m, "params": p}).to_string();
            s[..s.len() / 2].to_string()
        }),
        Just(
            "{\"jsonrpc\":\"2.0\",\"id\":{\"deep\":[[[[[[[[[[[[1]]]]]]]]]]]]},\"method\":\"ping\"}"
                .to_string()
        ),
        Just(format!("[{}]", "{},".repeat(200) + "{}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mangled_json_rpc_never_kills_the_server(lines in proptest::collection::vec(rpc_line(), 10..40)) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubecode"))
            .args(["serve", "--demo", "--mode", "all"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let init = json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}}});
        writeln!(stdin, "{init}").unwrap();
        writeln!(stdin, "{}", json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).unwrap();
        for line in &lines {
            if writeln!(stdin, "{}", line.replace('\n', " ")).is_err() {
                break;
            }
        }
        let _ = writeln!(stdin, "{}", json!({"jsonrpc": "2.0", "id": "last", "method": "ping"}));
        drop(stdin);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait().unwrap() {
                Some(status) => {
                    // Exit code 101 is a Rust panic.
                    prop_assert_ne!(status.code(), Some(101), "the server panicked on {:?}", lines);
                    break;
                }
                None if std::time::Instant::now() > deadline => {
                    let _ = child.kill();
                    prop_assert!(false, "the server hung after {:?}", lines);
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        // rmcp skips lines it cannot parse, so the last ping is still answered.
        let answers: Vec<String> = rx.iter().collect();
        prop_assert!(
            answers.iter().any(|l| l.contains("\"id\":\"last\"")),
            "no answer to the final ping after {:?}", lines
        );
    }
}
