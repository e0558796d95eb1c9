//! `kubecode run`: one code-mode program from a terminal, printing what `run_code` returns.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::connect::{Connection, LimitArgs, Target};

/// Arguments of `kubecode run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The program file, or `-` for standard input.
    file: String,
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    limits: LimitArgs,
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
    let options = server::Options {
        limits: args.limits.limits(),
        isolation: args.limits.isolation(0, false)?,
        ..server::Options::default()
    };
    let connection = Connection::open(&args.target, options).await?;
    let limits = connection.server.limits().clone();
    // The same session, call path and shaping as run_code.
    let session = connection.server.session(server::Caller::local());
    let out = session
        .run_program(&program, limits, server::CallEnv::default())
        .await;
    println!("{}", serde_json::to_string_pretty(&out.document)?);
    Ok(if out.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
