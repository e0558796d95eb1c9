//! Sandbox processes: the system-call filter is proved (not assumed), `kubecode run` exits
//! whatever the program did, and a burst of runs leaves the server's memory where it was.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bench::http_session::{HttpServer, HttpSession};
use bench::session::memory_mib;
use serde_json::json;

/// SIGSYS: what a seccomp filter's kill action ends a process with.
const SIGSYS: i32 = 31;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kubecode"))
}

#[test]
fn a_confined_worker_dies_of_open_socket_and_execve() {
    for call in ["open", "socket", "exec"] {
        let out = Command::new(binary())
            .args(["sandbox-worker", "--try-forbidden", call])
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(SIGSYS),
            "{call}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn kubecode_run_exits_after_printing_whatever_the_program_did() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("stuck.ts");
    // A built-in QuickJS never interrupts: only killing the sandbox process ends it.
    std::fs::write(
        &program,
        "Array.prototype.shift.call({ length: 2 ** 53 - 1 }); return 1",
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(binary())
        .arg("run")
        .arg(&program)
        .args(["--demo", "--timeout-ms", "1000"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("LimitExceeded"), "{text}");
    // 1 s of wall clock, 1 s of grace, and the demo cluster's start-up.
    assert!(took < Duration::from_secs(8), "kubecode run took {took:?}");
}

/// `kubecode serve --http` against the demo cluster (kubesim); the cluster lives as long as
/// the second value.
async fn demo_over_http() -> (HttpServer, (kubesim::RunningServer, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let api = kubesim::serve(kubesim::demo::snapshot(), kubesim::ServerConfig::default())
        .await
        .unwrap();
    api.write_kubeconfig(&dir.path().join("kubeconfig"))
        .unwrap();
    let server = HttpServer::start(binary(), &dir.path().join("kubeconfig"))
        .await
        .unwrap();
    (server, (api, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_after_a_burst_of_200_runs() {
    let (server, _cluster) = demo_over_http().await;
    let pid = server.pid().unwrap();
    let program = "const pods = await tools.kubernetes.list({ kind: 'Pod', allNamespaces: true }); return pods.map(p => p.metadata.name).length";
    let mut first = HttpSession::open(server.addr).await.unwrap();
    let warm = first
        .call("run_code", json!({"code": program}))
        .await
        .unwrap();
    assert_eq!(warm["structuredContent"]["ok"], true, "{warm}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let idle = memory_mib(pid, "VmRSS").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut s = HttpSession::open(addr).await.unwrap();
            for _ in 0..25 {
                let r = s.call("run_code", json!({"code": program})).await.unwrap();
                assert_eq!(r["structuredContent"]["result"], 37, "{r}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = memory_mib(pid, "VmRSS").unwrap();
    eprintln!("RSS idle {idle:.1} MiB, after 200 runs {after:.1} MiB");
    assert!(
        after < idle + 20.0,
        "RSS {after:.1} MiB after 200 runs, {idle:.1} MiB idle"
    );
}

/// The server's child processes that are alive (not zombies waiting to be reaped).
fn live_children(pid: u32) -> Vec<u32> {
    let mut live: Vec<u32> = bench::session::children(pid)
        .into_iter()
        .filter(|c| {
            let stat = std::fs::read_to_string(format!("/proc/{c}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            matches!(state, Some(s) if s != "Z" && s != "X")
        })
        .collect();
    live.sort_unstable();
    live
}

async fn run(s: &mut HttpSession, code: &str) -> serde_json::Value {
    let args = json!({"code": code, "timeoutMs": 1000});
    s.call("run_code", args).await.unwrap()["structuredContent"].clone()
}

/// Waits until the server has `n` live children (the pool refills in the background).
async fn settle_at(pid: u32, n: usize) -> Vec<u32> {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let live = live_children(pid);
        if live.len() == n || std::time::Instant::now() > until {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_its_own_worker_with_a_fresh_context_per_run() {
    let (server, _cluster) = demo_over_http().await;
    let pid = server.pid().unwrap();
    // The warm pool: two workers.
    assert_eq!(settle_at(pid, 2).await.len(), 2);
    let mut a = HttpSession::open(server.addr).await.unwrap();
    let first = run(&mut a, "globalThis.leftover = 42; return typeof leftover").await;
    assert_eq!(first["result"], "number", "{first}");
    // Two warm workers again, and the one that ran A's program, kept for A.
    let after_first = settle_at(pid, 3).await;
    assert_eq!(after_first.len(), 3, "{after_first:?}");
    let second = run(&mut a, "return typeof leftover").await;
    assert_eq!(
        second["result"], "undefined",
        "a run saw the last run's global: {second}"
    );
    // The same processes: A's second run started none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(live_children(pid), after_first);

    // B gets a worker of its own: A's stays kept for A.
    let mut b = HttpSession::open(server.addr).await.unwrap();
    let other = run(&mut b, "return 1").await;
    assert_eq!(other["result"], 1, "{other}");
    assert_eq!(settle_at(pid, 4).await.len(), 4);

    // A run that has to be stopped from outside (stuck in a built-in that never checks the
    // time) takes its worker with it: nothing of it is kept.
    let stopped = run(
        &mut a,
        "Array.prototype.shift.call({ length: 2 ** 53 - 1 })",
    )
    .await;
    assert_eq!(stopped["error"]["name"], "LimitExceeded", "{stopped}");
    assert_eq!(settle_at(pid, 3).await.len(), 3);
    let again = run(&mut a, "return typeof leftover").await;
    assert_eq!(again["result"], "undefined", "{again}");
    assert_eq!(settle_at(pid, 4).await.len(), 4);
}
