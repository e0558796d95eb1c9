//! A real MCP session with `kubecode serve` over stdio (rmcp's client), as an agent's host
//! application would hold it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use rmcp::model::{CallToolRequestParams, ContentBlock, Tool};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

/// An open session and the server's process id.
pub struct Session {
    service: RunningService<RoleClient, ()>,
    /// The server process, for reading its memory use.
    pub pid: Option<u32>,
}

/// What one tool call returned, as a model would see it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The result's text content, joined.
    pub text: String,
    /// The structured content, if any.
    pub structured: Option<Value>,
    /// Whether the tool reported an error.
    pub is_error: bool,
    /// Wall time of the call.
    pub elapsed: Duration,
}

impl Session {
    /// Starts `binary serve --mode MODE --kubeconfig FILE` and initializes the session.
    pub async fn start(binary: &Path, mode: &str, kubeconfig: &Path) -> anyhow::Result<Session> {
        Session::start_with(binary, mode, kubeconfig, &[]).await
    }

    /// The same, with more `serve` flags (limits).
    pub async fn start_with(
        binary: &Path,
        mode: &str,
        kubeconfig: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Session> {
        let command = tokio::process::Command::new(binary).configure(|cmd| {
            cmd.args(["serve", "--mode", mode, "--kubeconfig"])
                .arg(kubeconfig)
                .args(extra)
                .env("KUBECODE_LOG", "warn");
        });
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = transport.id();
        let service = ().serve(transport).await.context("MCP initialize failed")?;
        Ok(Session { service, pid })
    }

    /// The tools the server offers.
    pub async fn tools(&self) -> anyhow::Result<Vec<Tool>> {
        Ok(self.service.list_all_tools().await?)
    }

    /// Calls a tool with a JSON object of arguments.
    pub async fn call(&self, tool: &str, args: &Value) -> anyhow::Result<Answer> {
        let arguments = match args {
            Value::Object(m) => Some(m.clone()),
            Value::Null => None,
            other => {
                return Err(anyhow!(
                    "the arguments of {tool} must be an object, not {other}"
                ));
            }
        };
        let mut request = CallToolRequestParams::new(tool.to_string());
        if let Some(a) = arguments {
            request = request.with_arguments(a);
        }
        let started = Instant::now();
        let result = self
            .service
            .call_tool(request)
            .await
            .with_context(|| format!("{tool} was not answered"))?;
        let elapsed = started.elapsed();
        let text = result
            .content
            .iter()
            .filter_map(|c| match c {
                ContentBlock::Text(t) => Some(t.text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Answer {
            text,
            structured: result.structured_content,
            is_error: result.is_error.unwrap_or(false),
            elapsed,
        })
    }

    /// Ends the session (the server exits when its stdin closes).
    pub async fn close(self) -> anyhow::Result<()> {
        self.service.cancel().await?;
        Ok(())
    }
}

/// A process's memory figure from `/proc/PID/status` (`VmRSS`, `VmHWM`), in MiB.
pub fn memory_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
}

/// The processes whose parent is `pid` (a server's sandbox workers).
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // The parent's pid is the second field after the command.
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1))
                == Some(pid.to_string().as_str())
        })
        .collect()
}

/// A process's CPU time (user and system), in clock ticks, from `/proc/PID/stat`.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum()
}

/// The CPU time of a process and its live children.
pub fn tree_cpu_ticks(pid: u32) -> u64 {
    cpu_ticks(pid) + children(pid).into_iter().map(cpu_ticks).sum::<u64>()
}
