//! `kubecode sim` as a user runs it: the kubeconfig appears once the server answers, bad
//! snapshots are refused with the file and line, `--lenient` skips them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

struct Sim {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kubecode() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kubecode"))
}

/// Starts `kubecode sim ARGS --kubeconfig F` and waits for F.
fn start(args: &[&str]) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = kubecode()
        .arg("sim")
        .args(args)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubecode starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
            panic!("kubecode sim exited with {status}: {err}");
        }
        assert!(Instant::now() < deadline, "no kubeconfig after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    Sim {
        child,
        kubeconfig,
        _dir: dir,
    }
}

async fn client(path: &Path) -> kube::Client {
    let text = std::fs::read_to_string(path).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&text).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

fn refused(args: &[&str]) -> String {
    let out = kubecode().arg("sim").args(args).output().unwrap();
    assert!(
        !out.status.success(),
        "expected kubecode sim {args:?} to fail"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn the_kubeconfig_appears_once_the_server_answers() {
    let sim = start(&["--demo", "--addr", "127.0.0.1:0"]);
    // No retry, no wait: the first request after the file appears must be answered.
    let pods: Api<Pod> = Api::all(client(&sim.kubeconfig).await);
    let list = pods
        .list(&ListParams::default())
        .await
        .expect("answered at once");
    assert!(list.items.len() >= 30);
}

#[tokio::test]
async fn the_real_dump_serves_with_a_fixed_clock() {
    let dump = std::env::var_os("KUBECODE_REAL_DUMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/real-world/aks-2020-cluster-info-dump")
        });
    let sim = start(&[dump.to_str().unwrap(), "--now", "2020-06-01T00:00:00Z"]);
    let pods: Api<Pod> = Api::namespaced(client(&sim.kubeconfig).await, "kube-system");
    assert!(pods.list(&ListParams::default()).await.unwrap().items.len() >= 10);
}

#[tokio::test]
async fn generated_clusters_have_the_asked_size() {
    let sim = start(&[
        "--generate",
        "pods=300,namespaces=4,broken=6",
        "--seed",
        "9",
    ]);
    let pods: Api<Pod> = Api::all(client(&sim.kubeconfig).await);
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        300
    );
}

#[test]
fn malformed_snapshots_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n",
    )
    .unwrap();
    let kubeconfig = dir.path().join("kc");
    let err = refused(&[
        dir.path().to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert!(
        err.contains("bad.yaml:4") || err.contains("bad.yaml:5"),
        "{err}"
    );
    assert!(err.contains("--lenient"), "{err}");
    assert!(
        !kubeconfig.exists(),
        "no kubeconfig for a server that did not start"
    );

    let sim = start(&[dir.path().to_str().unwrap(), "--lenient"]);
    drop(sim);
}

#[test]
fn bad_flags_say_what_to_write_instead() {
    let err = refused(&["--demo", "--fault", "explode=1"]);
    assert!(
        err.contains("use latency, error, throttle or drop"),
        "{err}"
    );
    let err = refused(&["--generate", "pods=ten"]);
    assert!(err.contains("expected a whole number"), "{err}");
    let err = refused(&["--demo", "--now", "yesterday"]);
    assert!(err.contains("RFC 3339"), "{err}");
    let err = refused(&["/no/such/dir"]);
    assert!(err.contains("/no/such/dir"), "{err}");
    let err = refused(&[]);
    assert!(err.contains("--demo") || err.contains("SNAPSHOT"), "{err}");
}
