//! Streamable HTTP at `/mcp`, `/healthz`, `/metrics`, and the transport's security: loopback by default,
//! Host and Origin checks against DNS rebinding, an optional bearer token, and refusal to
//! listen beyond loopback without one; or OAuth 2.1 (see `auth`), whose verified caller
//! rides in each request's extensions.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::replicas::{RedisSessionStore, SealedSessions};
use crate::{ApprovalPages, Caller, KubecodeServer, Replicas, Route, ServeError, ServerState};

/// How to serve over HTTP.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Bearer token clients must send, if any.
    pub token: Option<String>,
    /// OAuth access tokens instead of one shared token.
    pub oauth: Option<crate::OAuthConfig>,
    /// Listen beyond loopback without a token anyway.
    pub allow_unauthenticated: bool,
    /// Serve every request on its own, without `Mcp-Session-Id` sessions (`--stateless`).
    /// Requests that name 2026-07-28 are served this way in any case.
    pub stateless: bool,
    /// Further names (or `name:port` authorities) clients may send in `Host`, such as the
    /// Service's DNS names in a cluster; loopback names and the bound address are always allowed.
    pub allowed_hosts: Vec<String>,
    /// What replicas share (`--shared-key-file`, `--redis-url`): sealed session ids, sessions
    /// and `state` in Redis. None: a lone server, everything in memory.
    pub replicas: Option<Arc<Replicas>>,
}

/// A configuration the server refuses to run with.
#[derive(Debug, thiserror::Error)]
pub enum HttpSecurityError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach it could read the cluster. Pass --auth-token-file FILE, bind 127.0.0.1, or pass --allow-unauthenticated if a proxy in front authenticates"
    )]
    Unauthenticated(SocketAddr),
}

async fn require_token(State(token): State<Arc<String>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let ok = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token: send Authorization: Bearer <the token in --auth-token-file>\n",
        )
            .into_response()
    }
}

/// Serves MCP over Streamable HTTP until the process stops. `ready` receives the bound
/// address once the server accepts connections.
pub async fn serve_http(
    shared: Arc<ServerState>,
    options: HttpOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let loopback = options.addr.ip().is_loopback();
    let authenticated = options.token.is_some() || options.oauth.is_some();
    if !loopback && !authenticated && !options.allow_unauthenticated {
        return Err(HttpSecurityError::Unauthenticated(options.addr).into());
    }
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    let bound = listener.local_addr()?;
    let mut hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !loopback {
        // Beyond loopback the Host check admits the bound address; put a proxy with its own
        // name in front for anything else.
        hosts.push(bound.ip().to_string());
        hosts.push(bound.to_string());
    }
    // The names a Service or Ingress in front gives this server (the Helm chart passes them).
    hosts.extend(options.allowed_hosts.iter().cloned());
    let origins = vec![
        "http://localhost:*".to_string(),
        "http://127.0.0.1:*".to_string(),
        "http://[::1]:*".to_string(),
    ];
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_legacy_session_mode(!options.stateless);
    if let Some(replicas) = &options.replicas {
        // Another replica restores a session it never saw by replaying its `initialize`.
        config.session_store = Some(Arc::new(RedisSessionStore::new(replicas.clone())));
    }
    let route = if options.stateless {
        Route::HttpStateless
    } else {
        Route::Http
    };
    // rmcp calls this once per session, and once per request that is served on its own (all
    // of them under --stateless, and every 2026-07-28 request): such a request gets a Session
    // of its own, which ends with it.
    let metrics = crate::metrics::route(shared.clone());
    let shared_pages = shared.approval_pages().clone();
    let replicas = options.replicas.clone();
    let sessions = Arc::new(SealedSessions::new(options.replicas.clone()));
    let service: StreamableHttpService<KubecodeServer, SealedSessions> = StreamableHttpService::new(
        move || {
            Ok(KubecodeServer::on(&shared, Caller::named("http"), route)
                .with_replicas(replicas.clone()))
        },
        sessions,
        config,
    );
    // `/metrics` takes the same bearer token as `/mcp` (a scraper can send one).
    let mut mcp = axum::Router::new()
        .nest_service("/mcp", service)
        .merge(metrics);
    if let Some(token) = options.token {
        mcp = mcp.layer(middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        ));
    }
    // Approval pages: outside the MCP token and OAuth layers (a person's browser cannot send
    // them; the one-time URL is the capability), with their own Host and Origin checks.
    let pages = shared_pages.clone();
    if pages.base().is_none() {
        let _ = pages.set_base(&ApprovalPages::base_for(bound));
    }
    let mut app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .merge(pages.router());
    if let Some(config) = options.oauth {
        let verifier = Arc::new(crate::auth::Verifier::new(config).map_err(ServeError::Auth)?);
        mcp = mcp.layer(middleware::from_fn_with_state(
            verifier.clone(),
            crate::auth::require_oauth,
        ));
        app = app.merge(crate::auth::routes(verifier));
    }
    let app = app.merge(mcp);
    ready(bound);
    axum::serve(listener, app).await?;
    Ok(())
}
