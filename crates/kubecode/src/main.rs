//! `kubecode`: diagnose Kubernetes clusters from a language model by running its programs
//! next to the cluster. This binary wires the subcommands to the library crates.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::prelude::*;

/// The hidden subcommand a sandbox worker process runs (`sandbox::Pool` starts it).
pub const WORKER_COMMAND: &str = "sandbox-worker";

/// `kubecode sandbox-worker`: a session's programs in a confined process (see
/// `sandbox::worker`). Handled before anything else starts (no logging, no runtime): the
/// worker makes its own few threads, then gives up making more. `--try-forbidden
/// open|socket|exec` confines a worker and makes that system call, for the test that proves
/// the filter.
fn worker(args: &[String]) -> ExitCode {
    let status = match args {
        [flag, call] if flag == "--try-forbidden" => {
            let call = match call.as_str() {
                "open" => sandbox::worker::Forbidden::Open,
                "socket" => sandbox::worker::Forbidden::Socket,
                "exec" => sandbox::worker::Forbidden::Exec,
                _ => return ExitCode::from(2),
            };
            sandbox::worker::try_forbidden(call)
        }
        _ => match sandbox::worker::Options::parse(args) {
            Some(options) => sandbox::worker::main(options),
            None => 2,
        },
    };
    ExitCode::from(u8::try_from(status).unwrap_or(2))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(WORKER_COMMAND) {
        return worker(&argv[2..]);
    }
    let args = cli::Cli::parse();
    // Logs go to stderr only: stdout carries program output (and, under MCP stdio, the protocol).
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBECODE_LOG")
                // rmcp logs every client-side message at info; the benchmarks hold client sessions.
                .unwrap_or_else(|_| "info,rmcp=warn".into()),
        );
    // Traces when OTEL_EXPORTER_OTLP_ENDPOINT is set; the guard sends the last spans at exit
    // (it is dropped after the runtime, outside it, as the blocking exporter needs).
    let (traces, _telemetry) = match server::telemetry::layer() {
        Ok(Some((layer, guard))) => (Some(layer), Some(guard)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
