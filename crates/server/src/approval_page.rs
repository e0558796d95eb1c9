//! The one-time approval page (CONTRACT §3.6): a plan's changes shown to a person in a browser,
//! with Approve and Reject buttons, served at `GET`/`POST /approve/{token}`.
//!
//! The long random token in the URL is the capability: the routes need no MCP bearer token (a
//! browser cannot send it), but they check the Host header against DNS rebinding, and a `POST`
//! needs the page's CSRF token both in the form and in a `SameSite=Strict` cookie set by the
//! `GET`. A page decides once; expiry and a cancelled request remove it.
//!
//! Under the HTTP transport the routes are merged into that listener ([`ApprovalPages::router`]);
//! under stdio the first [`ApprovalPages::offer`] starts a loopback-only listener for them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::sync::{OnceCell, oneshot};

/// A plan as a person reviews it.
#[derive(Debug, Clone)]
pub struct Review {
    /// The plan's id (shown on the page; never part of the URL).
    pub plan_id: String,
    /// Who asked for the plan (the MCP session or caller, as known).
    pub requested_by: String,
    /// When the plan, and so the page, expires.
    pub expires_at: DateTime<Utc>,
    /// The changes, in the order they would be applied.
    pub changes: Vec<ReviewChange>,
}

/// One planned change as a person reviews it.
#[derive(Debug, Clone)]
pub struct ReviewChange {
    /// The object, e.g. `Deployment shop/web`.
    pub object: String,
    /// What would be done, e.g. `restart`.
    pub action: String,
    /// A unified diff of the object as it is and as it would be.
    pub diff: String,
}

/// What became of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDecision {
    /// The person clicked Approve.
    Approved,
    /// The person clicked Reject.
    Rejected,
    /// Nobody decided before the plan expired.
    Expired,
}

/// A page waiting for a person: its one-time URL and where the decision arrives. Dropping
/// `decision` (the request was cancelled) removes the page.
#[derive(Debug)]
pub struct PendingApproval {
    /// The one-time URL to open in a browser.
    pub url: String,
    /// Receives the decision once: Approved, Rejected or Expired.
    pub decision: oneshot::Receiver<PageDecision>,
}

/// Why a page could not be offered.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The plan expired before the page was offered.
    #[error(
        "the plan expired at {0} before its approval page could be offered: make the plan again"
    )]
    AlreadyExpired(DateTime<Utc>),
    /// Under stdio, the loopback listener for the pages could not start.
    #[error(
        "could not start the loopback listener for approval pages on 127.0.0.1: {0}; use the MCP client's own approval (elicitation) or the HTTP transport"
    )]
    Listener(#[from] std::io::Error),
    /// The base URL given to the server is not an absolute http(s) URL.
    #[error(
        "the public URL {0:?} is not an absolute http:// or https:// URL: pass one such as https://kubecode.example.com"
    )]
    BadBase(String),
}

/// The approval pages of one server (held by its `ServerState`).
pub struct ApprovalPages {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where a browser reaches the pages; set once (given, or the stdio loopback listener).
    base: OnceCell<Base>,
    pages: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Base {
    /// The URL without a trailing slash, e.g. `http://127.0.0.1:8080` or `https://k.example/kc`.
    url: String,
    /// The path prefix of `url` (empty or `/kc`), for the cookie's `Path`.
    path: String,
    /// Host names (without port) a request's Host header may carry.
    hosts: Vec<String>,
    /// Whether the browser reaches the pages over https (the cookie is then `Secure`).
    secure: bool,
}

struct Entry {
    review: Arc<Review>,
    csrf: String,
    state: EntryState,
}

enum EntryState {
    /// Waiting for a person; the sender hands the decision to the page's task.
    Pending(oneshot::Sender<Decided>),
    /// Already decided; kept until the plan's expiry so a second visit says so.
    Decided(PageDecision),
}

/// A decision handed from the POST handler to the page's task, which answers whether the
/// request that asked was still there to receive it.
type Decided = (PageDecision, oneshot::Sender<bool>);

impl ApprovalPages {
    /// `base`: where a person's browser reaches this server (the HTTP listener's URL, or a
    /// `--public-url`). `None` under stdio: the first [`offer`](Self::offer) starts a
    /// loopback-only listener. A base that is not an absolute http(s) URL is ignored with a
    /// warning (as if `None`); check it first with [`ApprovalPages::check_base`].
    pub fn new(base: Option<String>) -> ApprovalPages {
        let pages = ApprovalPages {
            inner: Arc::new(Inner {
                base: OnceCell::new(),
                pages: Mutex::new(HashMap::new()),
            }),
        };
        if let Some(base) = base
            && let Err(e) = pages.set_base(&base)
        {
            tracing::warn!("{e}");
        }
        pages
    }

    /// Checks that `base` can serve as the pages' base URL (for a command-line option).
    pub fn check_base(base: &str) -> Result<(), PageError> {
        parse_base(base).map(|_| ())
    }

    /// Sets the base URL once it is known (the HTTP transport learns its port only when it
    /// binds). Has no effect when a base is already set.
    pub fn set_base(&self, base: &str) -> Result<(), PageError> {
        let base = parse_base(base)?;
        let _ = self.inner.base.set(base);
        Ok(())
    }

    /// The base URL for pages served on an HTTP listener bound at `bound`, when no
    /// `--public-url` says otherwise: the bound address, except that an unspecified address
    /// (0.0.0.0 or ::, as in a pod) becomes loopback, which a `kubectl port-forward` reaches.
    pub fn base_for(bound: SocketAddr) -> String {
        match bound.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                format!("http://127.0.0.1:{}", bound.port())
            }
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                format!("http://[::1]:{}", bound.port())
            }
            _ => format!("http://{bound}"),
        }
    }

    /// The base URL pages are offered under, once known.
    pub fn base(&self) -> Option<&str> {
        self.inner.base.get().map(|b| b.url.as_str())
    }

    /// How many pages are held (pending, or decided and not yet expired).
    pub fn open_pages(&self) -> usize {
        self.inner.lock().len()
    }

    /// Registers a pending approval and returns its one-time URL. Under stdio (no HTTP
    /// listener, base None) it starts a loopback-only listener on 127.0.0.1:0 the first time and
    /// serves the pages there.
    pub async fn offer(&self, review: Review) -> Result<PendingApproval, PageError> {
        let remaining = (review.expires_at - Utc::now())
            .to_std()
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or(PageError::AlreadyExpired(review.expires_at))?;
        let inner = self.inner.clone();
        let base = self
            .inner
            .base
            .get_or_try_init(|| start_loopback(inner))
            .await?;
        let token = random_token();
        let csrf = random_token();
        let (decision_tx, decision_rx) = oneshot::channel();
        let (decide_tx, decide_rx) = oneshot::channel();
        self.inner.lock().insert(
            token.clone(),
            Entry {
                review: Arc::new(review),
                csrf,
                state: EntryState::Pending(decide_tx),
            },
        );
        tokio::spawn(watch(
            self.inner.clone(),
            token.clone(),
            remaining,
            decision_tx,
            decide_rx,
        ));
        Ok(PendingApproval {
            url: format!("{}/approve/{token}", base.url),
            decision: decision_rx,
        })
    }

    /// The routes to merge into the HTTP transport's router (GET and POST /approve/{token}).
    /// They carry their own Host check and must sit outside the MCP bearer-token layer.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        router(self.inner.clone())
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves the map consistent (every update is one
        // insert, remove or assignment), so a poisoned lock is still usable.
        self.pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The life of one page: delivers the person's decision, or Expired at the deadline, and
/// removes the page at expiry or as soon as the asking request is gone.
async fn watch(
    inner: Arc<Inner>,
    token: String,
    remaining: Duration,
    mut decision: oneshot::Sender<PageDecision>,
    mut decide: oneshot::Receiver<Decided>,
) {
    let deadline = tokio::time::Instant::now() + remaining;
    let expiry = tokio::time::sleep_until(deadline);
    tokio::pin!(expiry);
    let decided = tokio::select! {
        biased;
        d = &mut decide => d.ok(),
        () = decision.closed() => {
            // The apply_plan call was cancelled: nobody will read a decision.
            inner.lock().remove(&token);
            return;
        }
        () = &mut expiry => {
            let still_pending = {
                let mut pages = inner.lock();
                let pending = matches!(
                    pages.get(&token).map(|e| &e.state),
                    Some(EntryState::Pending(_))
                );
                if pending {
                    pages.remove(&token);
                }
                pending
            };
            if still_pending {
                let _ = decision.send(PageDecision::Expired);
                return;
            }
            // A POST decided just before the deadline; its decision is on its way.
            decide.await.ok()
        }
    };
    let Some((page_decision, delivered)) = decided else {
        inner.lock().remove(&token);
        return;
    };
    let _ = delivered.send(decision.send(page_decision).is_ok());
    // Keep the decided page until the plan's expiry so a second visit says it was decided.
    expiry.await;
    inner.lock().remove(&token);
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parse_base(base: &str) -> Result<Base, PageError> {
    let bad = || PageError::BadBase(base.to_string());
    let trimmed = base.trim_end_matches('/');
    let uri: Uri = trimmed.parse().map_err(|_| bad())?;
    let secure = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad()),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    if uri.query().is_some() {
        return Err(bad());
    }
    let host = normalize_host(host);
    let mut hosts = vec![host.clone()];
    if is_loopback(&host) {
        // A loopback listener is reached by any of its names.
        for name in ["localhost", "127.0.0.1", "::1"] {
            if !hosts.iter().any(|h| h == name) {
                hosts.push(name.to_string());
            }
        }
    }
    Ok(Base {
        url: trimmed.to_string(),
        path: uri.path().trim_end_matches('/').to_string(),
        hosts,
        secure,
    })
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Under stdio: a listener on 127.0.0.1 only, serving nothing but the pages.
async fn start_loopback(inner: Arc<Inner>) -> Result<Base, PageError> {
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let addr = listener.local_addr()?;
    let base = parse_base(&format!("http://{addr}"))?;
    let app = router(inner);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the approval-page listener on {addr} stopped: {e}");
        }
    });
    tracing::info!("approval pages are served on http://{addr}/approve/… (loopback only)");
    Ok(base)
}

fn router(inner: Arc<Inner>) -> axum::Router {
    axum::Router::new()
        .route(
            "/approve/{token}",
            axum::routing::get(show_page).post(decide_page),
        )
        .route_layer(middleware::from_fn_with_state(inner.clone(), check_host))
        .with_state(inner)
}

/// Refuses requests whose Host (or, when sent, Origin) names another site: a DNS-rebinding
/// page could otherwise talk to a loopback listener under its own name.
async fn check_host(State(inner): State<Arc<Inner>>, request: Request, next: Next) -> Response {
    let loopback_only = || ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let allowed = inner
        .base
        .get()
        .map(|b| b.hosts.clone())
        .unwrap_or_else(loopback_only);
    let headers = request.headers();
    let host_ok = header_host(headers, header::HOST, false)
        .or_else(|| request.uri().host().map(normalize_host))
        .is_some_and(|h| allowed.contains(&h));
    // Browsers send Origin on a form POST; "null" (a sandboxed or privacy-sensitive context)
    // carries no site, and the CSRF token still guards it.
    let origin_ok = match headers.get(header::ORIGIN) {
        None => true,
        Some(v) if v.as_bytes() == b"null" => true,
        Some(_) => header_host(headers, header::ORIGIN, true).is_some_and(|h| allowed.contains(&h)),
    };
    if host_ok && origin_ok {
        next.run(request).await
    } else {
        page(
            StatusCode::FORBIDDEN,
            "Wrong address",
            "<p>This request names a host this server does not answer to. Nothing was changed. Open the approval link exactly as it was given.</p>",
            None,
        )
    }
}

/// The host name (without port, lowercased) in a Host header, or in an Origin header's URL.
fn header_host(headers: &HeaderMap, name: header::HeaderName, is_url: bool) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    let uri: Uri = if is_url {
        value.parse().ok()?
    } else {
        format!("http://{value}/").parse().ok()?
    };
    uri.host().map(normalize_host)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}\
h1{font-size:1.4rem}dt{font-weight:600}dd{margin:0 0 .5rem 0}\
section{border:1px solid #ccc;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}\
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;font-size:.85rem}\
.add{background:#e6ffec}.del{background:#ffebe9}.hunk{color:#6639ba}\
button{font-size:1rem;padding:.5rem 1.5rem;margin-right:1rem}\
.approve{background:#1f883d;color:#fff;border:0;border-radius:6px}.reject{background:#cf222e;color:#fff;border:0;border-radius:6px}";

/// The strict policy: nothing loads, no script runs, the form posts only here, no framing;
/// the one inline stylesheet is allowed by its hash.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// An HTML page with the headers every answer of these routes carries.
fn page(status: StatusCode, title: &str, body: &str, cookie: Option<HeaderValue>) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{} · kubecode</title><style>{STYLE}</style></head>\n<body>\n<h1>{}</h1>\n{body}\n</body></html>\n",
        html_escape::encode_safe(title),
        html_escape::encode_safe(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, max-age=0"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(cookie) = cookie {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

const COOKIE: &str = "kubecode_approval";

fn unknown_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Unknown or expired approval link",
        "<p>This approval link is unknown, or its plan has expired or was withdrawn. Nothing was changed. Ask for the plan again if it is still wanted.</p>",
        None,
    )
}

fn decided_page(decision: PageDecision) -> Response {
    page(
        StatusCode::CONFLICT,
        "Already decided",
        &format!(
            "<p>This plan was already {}. An approval link works once; nothing more was done.</p>",
            decision_word(decision)
        ),
        None,
    )
}

fn expired_page() -> Response {
    page(
        StatusCode::GONE,
        "Plan expired",
        "<p>This plan has expired. Nothing was changed. Ask for the plan again if it is still wanted.</p>",
        None,
    )
}

fn decision_word(decision: PageDecision) -> &'static str {
    match decision {
        PageDecision::Approved => "approved",
        PageDecision::Rejected => "rejected",
        PageDecision::Expired => "left to expire",
    }
}

async fn show_page(State(inner): State<Arc<Inner>>, Path(token): Path<String>) -> Response {
    let (review, csrf) = {
        let pages = inner.lock();
        let Some(entry) = pages.get(&token) else {
            return unknown_page();
        };
        if let EntryState::Decided(d) = entry.state {
            return decided_page(d);
        }
        (entry.review.clone(), entry.csrf.clone())
    };
    let now = Utc::now();
    let left = review.expires_at - now;
    if left <= chrono::TimeDelta::zero() {
        return expired_page();
    }
    let base = inner.base.get();
    let cookie = format!(
        "{COOKIE}={csrf}; Path={}/approve/{token}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        base.map(|b| b.path.as_str()).unwrap_or(""),
        left.num_seconds().max(1),
        if base.is_some_and(|b| b.secure) {
            "; Secure"
        } else {
            ""
        },
    );
    let body = render_review(&review, &csrf, left);
    page(
        StatusCode::OK,
        "Approve changes to the cluster?",
        &body,
        HeaderValue::from_str(&cookie).ok(),
    )
}

fn render_review(review: &Review, csrf: &str, left: chrono::TimeDelta) -> String {
    // encode_safe also escapes quotes, so text stays text even if it lands in an attribute.
    use html_escape::{encode_double_quoted_attribute as attr, encode_safe as text};
    let mut out = String::new();
    let _ = write!(
        out,
        "<p>A program asked to make these changes. They happen only if you approve; the cluster refuses any change whose object changed since it was planned.</p>\n\
<dl><dt>Plan</dt><dd id=\"plan\">{}</dd><dt>Requested by</dt><dd id=\"requested-by\">{}</dd>\
<dt>Expires</dt><dd id=\"expires\">{} (in {} min {} s)</dd><dt>Changes</dt><dd>{}</dd></dl>\n",
        text(&review.plan_id),
        text(&review.requested_by),
        review
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        left.num_minutes(),
        left.num_seconds() % 60,
        review.changes.len(),
    );
    for (i, change) in review.changes.iter().enumerate() {
        let _ = write!(
            out,
            "<section class=\"change\"><h2>{}. <span class=\"action\">{}</span> <span class=\"object\">{}</span></h2>\n<pre class=\"diff\">",
            i + 1,
            text(&change.action),
            text(&change.object),
        );
        for line in change.diff.lines() {
            let class = if line.starts_with("+++") || line.starts_with("---") {
                ""
            } else if line.starts_with('+') {
                "add"
            } else if line.starts_with('-') {
                "del"
            } else if line.starts_with("@@") {
                "hunk"
            } else {
                ""
            };
            if class.is_empty() {
                let _ = writeln!(out, "{}", text(line));
            } else {
                let _ = writeln!(out, "<span class=\"{class}\">{}</span>", text(line));
            }
        }
        out.push_str("</pre></section>\n");
    }
    let _ = writeln!(
        out,
        "<form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button class=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
<button class=\"reject\" type=\"submit\" name=\"decision\" value=\"reject\">Reject</button></form>",
        attr(csrf),
    );
    out
}

/// The value of a cookie in a request's Cookie headers.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

fn same_secret(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
}

async fn decide_page(
    State(inner): State<Arc<Inner>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut csrf_field = None;
    let mut decision_field = None;
    for (key, value) in form_urlencoded::parse(&body) {
        match &*key {
            "csrf" => csrf_field = Some(value.into_owned()),
            "decision" => decision_field = Some(value.into_owned()),
            _ => {}
        }
    }
    let cookie = cookie_value(&headers, COOKIE);
    let decide = {
        let mut pages = inner.lock();
        let Some(entry) = pages.get_mut(&token) else {
            return unknown_page();
        };
        if let EntryState::Decided(d) = entry.state {
            return decided_page(d);
        }
        if entry.review.expires_at <= Utc::now() {
            return expired_page();
        }
        // Both checks always run, so the time taken says nothing about which failed.
        let field_ok = same_secret(csrf_field.as_deref(), &entry.csrf);
        let cookie_ok = same_secret(cookie.as_deref(), &entry.csrf);
        if !(field_ok & cookie_ok) {
            return page(
                StatusCode::FORBIDDEN,
                "Not accepted",
                "<p>This request did not come from the approval page (its form token or cookie is missing or wrong). Nothing was changed. Open the approval link in a browser and use its buttons.</p>",
                None,
            );
        }
        let decision = match decision_field.as_deref() {
            Some("approve") => PageDecision::Approved,
            Some("reject") => PageDecision::Rejected,
            _ => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "No decision",
                    "<p>The request carried no decision. Nothing was changed. Use the Approve or Reject button on the approval page.</p>",
                    None,
                );
            }
        };
        match std::mem::replace(&mut entry.state, EntryState::Decided(decision)) {
            EntryState::Pending(tx) => (decision, tx),
            EntryState::Decided(d) => return decided_page(d),
        }
    };
    let (decision, tx) = decide;
    let (ack_tx, ack_rx) = oneshot::channel();
    let delivered = tx.send((decision, ack_tx)).is_ok() && ack_rx.await.unwrap_or(false);
    if !delivered {
        return page(
            StatusCode::GONE,
            "Request gone",
            "<p>The request that asked for this approval is no longer waiting (it was cancelled or timed out). Nothing was changed. Ask for the plan again if it is still wanted.</p>",
            None,
        );
    }
    let (title, text) = match decision {
        PageDecision::Approved => (
            "Approved",
            "<p id=\"outcome\">Approved. kubecode now applies the plan; the program that asked gets the result. You can close this tab.</p>",
        ),
        _ => (
            "Rejected",
            "<p id=\"outcome\">Rejected. Nothing will be changed. You can close this tab.</p>",
        ),
    };
    page(StatusCode::OK, title, text, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let b = parse_base("http://127.0.0.1:8080/").unwrap();
        assert_eq!(b.url, "http://127.0.0.1:8080");
        assert_eq!(b.path, "");
        assert!(b.hosts.contains(&"localhost".to_string()));
        assert!(!b.secure);
        let b = parse_base("https://Kube.Example.com/kc/").unwrap();
        assert_eq!(b.url, "https://Kube.Example.com/kc");
        assert_eq!(b.path, "/kc");
        assert_eq!(b.hosts, vec!["kube.example.com".to_string()]);
        assert!(b.secure);
        let b = parse_base("http://[::1]:9/").unwrap();
        assert!(b.hosts.contains(&"::1".to_string()));
        for bad in [
            "kube.example.com",
            "ftp://x/",
            "http:///x",
            "http://x/?a=b",
            "",
        ] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listener_bases() {
        let at = |s: &str| ApprovalPages::base_for(s.parse().unwrap());
        assert_eq!(at("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(at("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(at("[::]:8080"), "http://[::1]:8080");
        assert_eq!(at("10.1.2.3:80"), "http://10.1.2.3:80");
        assert_eq!(at("[fd00::1]:80"), "http://[fd00::1]:80");
        for base in ["0.0.0.0:1", "[::]:1", "[fd00::1]:80"] {
            assert!(ApprovalPages::check_base(&at(base)).is_ok());
        }
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; kubecode_approval=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&h, COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie_value(&h, "c"), None);
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret(Some("abc"), "abc"));
        assert!(!same_secret(Some("abd"), "abc"));
        assert!(!same_secret(Some("ab"), "abc"));
        assert!(!same_secret(None, "abc"));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }
}
