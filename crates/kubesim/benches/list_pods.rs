//! Listing 10,000 generated pods through kube-rs (typed `Api<Pod>`), over HTTPS to kubesim.
//!
//! Run: `cargo bench -p kubesim --bench list_pods` (add `-- --pods N --runs N` to change the
//! size). Prints the median, min and max wall time of full, unpaged lists, plus the size of
//! one list and the time to generate the cluster.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pods = arg("--pods", 10_000);
    let runs = arg("--runs", 9).max(1);
    let started = Instant::now();
    let spec = kubesim::GenerateSpec::parse(&format!("pods={pods},namespaces=50,broken=20"), 7)?;
    let snapshot = kubesim::generate::generate(&spec);
    let generated = started.elapsed();
    let server = kubesim::serve(snapshot, kubesim::ServerConfig::default()).await?;
    let mut config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&server.kubeconfig())?,
        &KubeConfigOptions::default(),
    )
    .await?;
    config.default_retry = false;
    let api: Api<Pod> = Api::all(kube::Client::try_from(config)?);

    // One warm-up list establishes the connection, as any long-lived client has.
    let warm = api.list(&ListParams::default()).await?;
    assert_eq!(warm.items.len(), pods as usize);
    let bytes = serde_json::to_vec(&warm)?.len();
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let list = api.list(&ListParams::default()).await?;
        times.push(t.elapsed());
        assert_eq!(list.items.len(), pods as usize);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "kubesim list benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  cluster: {pods} pods generated in {:.0} ms; one list is {:.1} MB of JSON",
        ms(generated),
        bytes as f64 / 1e6
    );
    println!(
        "  kube-rs Api<Pod>::list of all {pods} pods: median {:.0} ms over {runs} runs (min {:.0} ms, max {:.0} ms)",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    server.shutdown().await;
    Ok(())
}
