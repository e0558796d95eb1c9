//! `kubecode run`: one code-mode program from a terminal, printing what `run_code` returns.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::connect::{Connection, Target};

/// Arguments of `kubecode run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The program file, or `-` for standard input.
    file: String,
    #[command(flatten)]
    target: Target,
    /// Wall-clock limit in milliseconds (default 30000).
    #[arg(long, value_name = "N")]
    timeout_ms: Option<u64>,
}

/// Runs the program; exit status 0 when it succeeded, 1 when it failed.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let program = if args.file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the program from standard input")?;
        text
    } else {
        std::fs::read_to_string(PathBuf::from(&args.file))
            .with_context(|| format!("cannot read the program {}", args.file))?
    };
    let connection = Connection::open(&args.target, server::Mode::Code).await?;
    let mut limits = connection.shared.limits.clone();
    if let Some(ms) = args.timeout_ms {
        limits.wall = Duration::from_millis(ms.max(1));
    }
    let host = Arc::new(server::CatalogHost::new(
        connection.shared.clone(),
        shaping::Vault::new(),
    ));
    let mut out = sandbox::run(
        &program,
        host,
        sandbox::State::default(),
        limits,
        sandbox::Control::default(),
    )
    .await;
    shaping::scrub_value(&mut out.result);
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if out.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
