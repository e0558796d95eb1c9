//! Command-line parsing and dispatch to the subcommands.

#[cfg(feature = "bench")]
mod bench;
mod connect;
mod demo;
mod run;
mod serve;
mod sim;
mod types;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kubecode: a Kubernetes MCP server where the model writes one program instead of many tool calls.
#[derive(Debug, Parser)]
#[command(name = "kubecode", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job in one command: scan the embedded demo cluster with one code-mode program.
    Demo,
    /// Run the MCP server (stdio or Streamable HTTP).
    Serve(serve::ServeArgs),
    /// Run one code-mode program and print what run_code would return.
    Run(run::RunArgs),
    /// Print the TypeScript declarations of the sandbox API.
    Types(types::TypesArgs),
    /// Benchmarks: context tokens (code mode against tools mode) and speed.
    #[cfg(feature = "bench")]
    Bench(bench::BenchArgs),
    /// Serve a cluster snapshot (or the demo cluster, or a generated one) as a Kubernetes API server.
    Sim(sim::SimArgs),
}

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo => demo::run().await,
        Command::Serve(args) => serve::run(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Types(args) => types::run(args),
        Command::Sim(args) => sim::run(args).await,
        #[cfg(feature = "bench")]
        Command::Bench(args) => bench::run(args).await,
    }
}
