//! A minimal Streamable HTTP MCP client (JSON-RPC over POST /mcp) for the throughput
//! benchmark: initialize, then tools/call, with the session id the server hands out.

use std::net::SocketAddr;
use std::process::Stdio;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// `kubecode serve --transport http` on a free loopback port.
pub struct HttpServer {
    child: tokio::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl HttpServer {
    /// Starts the server and waits until it says where it listens.
    pub async fn start(
        binary: &std::path::Path,
        kubeconfig: &std::path::Path,
    ) -> anyhow::Result<HttpServer> {
        HttpServer::start_with(binary, kubeconfig, &[]).await
    }

    /// The same, with more `serve` flags (limits).
    pub async fn start_with(
        binary: &std::path::Path,
        kubeconfig: &std::path::Path,
        extra: &[&str],
    ) -> anyhow::Result<HttpServer> {
        HttpServer::start_mode(binary, kubeconfig, "code", extra).await
    }

    /// The same, in a mode (`code`, `tools`, `all`).
    pub async fn start_mode(
        binary: &std::path::Path,
        kubeconfig: &std::path::Path,
        mode: &str,
        extra: &[&str],
    ) -> anyhow::Result<HttpServer> {
        let mut child = tokio::process::Command::new(binary)
            .args([
                "serve",
                "--mode",
                mode,
                "--transport",
                "http",
                "--addr",
                "127.0.0.1:0",
                "--kubeconfig",
            ])
            .arg(kubeconfig)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start kubecode serve --transport http")?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(line) = lines.next_line().await? else {
                bail!("kubecode serve exited before listening");
            };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.trim_end_matches("/mcp").parse()?;
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(HttpServer { child, addr })
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// One MCP session over HTTP.
pub struct HttpSession {
    client: Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    session: String,
    next_id: u64,
}

impl HttpSession {
    /// Opens a session.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<HttpSession> {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let mut s = HttpSession {
            client,
            addr,
            session: String::new(),
            next_id: 1,
        };
        let (session, _) = s
            .post(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "kubecode-bench", "version": "0"}}}),
            )
            .await?;
        s.session = session.ok_or_else(|| anyhow!("the server gave no mcp-session-id"))?;
        s.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(s)
    }

    /// Calls a tool; returns the JSON-RPC result.
    pub async fn call(&mut self, tool: &str, arguments: Value) -> anyhow::Result<Value> {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }

    /// Sends one JSON-RPC request (`ping`, `tools/list`, ...); returns its result.
    pub async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let (_, message) = self
            .post(json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}))
            .await?;
        message
            .and_then(|m| m.get("result").cloned())
            .ok_or_else(|| anyhow!("{method} returned no result"))
    }

    async fn post(&self, body: Value) -> anyhow::Result<(Option<String>, Option<Value>)> {
        let mut request = http::Request::post(format!("http://{}/mcp", self.addr))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        if !self.session.is_empty() {
            request = request.header("mcp-session-id", &self.session);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(body.to_string())))?)
            .await?;
        if !response.status().is_success() {
            bail!("HTTP {} from the server", response.status());
        }
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        // A JSON body, or an SSE stream whose data lines carry the message.
        let message = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .chain(std::iter::once(text.trim()))
            .find_map(|d| {
                serde_json::from_str::<Value>(d)
                    .ok()
                    .filter(|v| v.get("id").is_some())
            });
        Ok((session, message))
    }
}
