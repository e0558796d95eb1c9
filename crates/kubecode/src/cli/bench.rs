//! `kubecode bench`: the benchmarks whose figures the README quotes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

/// Arguments of `kubecode bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(Debug, Subcommand)]
enum Which {
    /// Context tokens of code mode against tools mode on the scenarios in bench/scenarios.
    Tokens {
        /// Print JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        /// The scenarios directory (default: bench/scenarios of this repository).
        #[arg(long, value_name = "DIR")]
        scenarios: Option<PathBuf>,
        /// Run only this scenario (repeatable).
        #[arg(long, value_name = "NAME")]
        only: Vec<String>,
        /// Where to write the crash-loop plot (default: crash-loop-tokens.svg beside the scenarios).
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
    /// Load: concurrent MCP sessions over HTTP scanning a generated cluster (loopback only).
    Load {
        /// Print JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        /// Concurrent sessions.
        #[arg(long, default_value_t = 50)]
        sessions: usize,
        /// Seconds each session keeps scanning.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The generated cluster.
        #[arg(long, default_value = "pods=3000,namespaces=30,broken=10")]
        cluster: String,
        /// Programs the server runs at once.
        #[arg(long, default_value_t = 8)]
        max_concurrent_runs: usize,
        /// 2: measure one replica, then two (a shared key, a Redis of its own, redis-server from
        /// PATH) behind a round-robin proxy, on the same cluster in the same run.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
        replicas: u8,
    },
    /// Count a model agent's calls (a `scripts/mcp-call --log` file) as the token benchmark
    /// counts its transcripts, replaying them on the scenario's cluster.
    Agent {
        /// Scenario name.
        #[arg(long)]
        scenario: String,
        /// The mode the agent used.
        #[arg(long, value_parser = ["code", "tools"])]
        mode: String,
        /// The agent's call log (JSON lines of {"tool", "arguments"}).
        log: PathBuf,
        /// The kubecode binary the agent talked to (default: this one), to count a trial
        /// of an earlier version.
        #[arg(long, value_name = "FILE")]
        binary: Option<PathBuf>,
        /// The scenarios directory (default: bench/scenarios of this repository).
        #[arg(long, value_name = "DIR")]
        scenarios: Option<PathBuf>,
    },
    /// Serve one scenario's cluster (to look at it with kubectl) until interrupted.
    Serve {
        /// Scenario name.
        name: String,
        /// The scenarios directory (default: bench/scenarios of this repository).
        #[arg(long, value_name = "DIR")]
        scenarios: Option<PathBuf>,
        /// Where to write the kubeconfig.
        #[arg(long, value_name = "FILE", default_value = "kubeconfig")]
        kubeconfig: PathBuf,
    },
    /// Sandbox and server speed: cold start, bridge, strip, round trips, 10k-pod scan, start-up, memory, HTTP throughput.
    Speed {
        /// Print JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        /// Repetitions of the fast measurements.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Repetitions of the 10,000-pod scan.
        #[arg(long, default_value_t = 3)]
        scan_runs: usize,
        /// Concurrent HTTP sessions.
        #[arg(long, default_value_t = 8)]
        sessions: usize,
        /// run_code calls per HTTP session.
        #[arg(long, default_value_t = 25)]
        calls_per_session: usize,
    },
}

/// Runs a benchmark; exit 1 when its targets are missed or a scenario is answered wrongly.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let binary = std::env::current_exe().context("cannot find the kubecode binary")?;
    match args.which {
        Which::Tokens {
            json,
            scenarios,
            only,
            plot,
        } => {
            let scenarios = scenarios_dir(scenarios)?;
            let plot = plot.unwrap_or_else(|| scenarios.join("../crash-loop-tokens.svg"));
            let options = bench::tokens::Options {
                binary,
                scenarios,
                only,
                plot: Some(plot),
            };
            let report = bench::tokens::run(&options).await?;
            print(&report, json, bench::tokens::markdown)?;
            Ok(if report.all_correct {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Which::Load {
            json,
            sessions,
            seconds,
            cluster,
            max_concurrent_runs,
            replicas,
        } => {
            let options = bench::load::Options {
                binary,
                sessions,
                duration: std::time::Duration::from_secs(seconds),
                cluster,
                concurrent_runs: max_concurrent_runs,
            };
            bench::load::check(&options)?;
            if replicas == 2 {
                let comparison = bench::load::run_replicas(&options).await?;
                print(&comparison, json, bench::load::comparison_markdown)?;
                let passed = comparison.one.passed && comparison.two.passed;
                return Ok(if passed {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let report = bench::load::run(&options).await?;
            print(&report, json, bench::load::markdown)?;
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Which::Agent {
            scenario,
            mode,
            log,
            binary: served_by,
            scenarios,
        } => {
            let options = bench::tokens::Options {
                binary: served_by.unwrap_or(binary),
                scenarios: scenarios_dir(scenarios)?,
                only: Vec::new(),
                plot: None,
            };
            let text = std::fs::read_to_string(&log)
                .with_context(|| format!("cannot read {}", log.display()))?;
            let report = bench::tokens::replay_log(&options, &scenario, &mode, &text).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Which::Serve {
            name,
            scenarios,
            kubeconfig,
        } => {
            let dir = scenarios_dir(scenarios)?;
            let background = bench::scenario::background(&dir)?;
            let scenario = bench::scenario::load_all(&dir, std::slice::from_ref(&name))?
                .pop()
                .context("no such scenario")?;
            let served = bench::cluster::serve_scenario(&scenario, &background).await?;
            served.server.write_kubeconfig(&kubeconfig)?;
            eprintln!(
                "scenario {name} served at {}; kubeconfig written to {} (Ctrl-C stops)",
                served.server.url(),
                kubeconfig.display()
            );
            tokio::signal::ctrl_c().await?;
            Ok(ExitCode::SUCCESS)
        }
        Which::Speed {
            json,
            runs,
            scan_runs,
            sessions,
            calls_per_session,
        } => {
            let options = bench::speed::Options {
                binary,
                runs,
                scan_runs,
                sessions,
                calls_per_session,
            };
            let report = bench::speed::run(&options).await?;
            print(&report, json, bench::speed::markdown)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn scenarios_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir),
        None => bench::scenario::default_dir(),
    }
}

/// Prints a report as pretty JSON or as Markdown.
fn print<R: serde::Serialize>(
    report: &R,
    json: bool,
    markdown: fn(&R) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{}", markdown(report));
    }
    Ok(())
}
