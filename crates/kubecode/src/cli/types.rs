//! `kubecode types`: the TypeScript declarations the sandbox offers.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `kubecode types`.
#[derive(Debug, Args)]
pub struct TypesArgs {
    /// One function (`kubernetes.logs`), namespace (`helm`), or `kinds` (the built-in kinds
    /// list/get are typed with); all functions when absent.
    path: Option<String>,
}

/// Prints the declarations.
pub fn run(args: TypesArgs) -> anyhow::Result<ExitCode> {
    let catalog = catalog::Catalog::new();
    let text = match args.path.as_deref() {
        None => catalog.declarations(None),
        Some("kinds") => catalog.kind_declarations(),
        Some(path) => match catalog.describe(path) {
            Some(d) => d,
            None if catalog
                .functions()
                .iter()
                .any(|f| f.path.starts_with(&format!("{path}."))) =>
            {
                catalog.declarations(Some(path))
            }
            None => {
                let paths: Vec<&str> = catalog.functions().iter().map(|f| f.path).collect();
                anyhow::bail!(
                    "no function or namespace {path:?}; the functions are: {}",
                    paths.join(", ")
                );
            }
        },
    };
    // A closed pipe (`kubecode types | head`) is the reader's choice, not an error.
    use std::io::Write;
    match writeln!(std::io::stdout(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
