//! Requests toward one context's API server: a client-side rate limit, per-request timeouts,
//! bounded retries with exponential backoff, jitter and `Retry-After`, and errors mapped to
//! kinds a caller can act on.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use rand::Rng;
use serde_json::Value;
use tracing::Instrument;

use crate::error::{ClusterError, ErrorKind, Result};
use crate::observe::ObserverSlot;

/// How kubecode names itself to the API server (its audit log shows it).
pub const USER_AGENT: &str = concat!("kubecode/", env!("CARGO_PKG_VERSION"));

/// Limits toward the API server. The defaults follow kubectl where it has one.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per second, sustained (kubectl: 50).
    pub qps: f64,
    /// Requests allowed in a burst (kubectl: 300; kubecode is more careful).
    pub burst: u32,
    /// Time for one attempt, body included.
    pub request_timeout: Duration,
    /// Retries after the first attempt, on 429, 5xx and connection failures.
    pub max_retries: u32,
    /// Total time all attempts of one call may take.
    pub retry_budget: Duration,
    /// Most objects one list may return before the call fails and asks for narrowing.
    pub list_cap: usize,
    /// Most bytes of one container log fetched.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            qps: 50.0,
            burst: 100,
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
            retry_budget: Duration::from_secs(20),
            list_cap: 20_000,
            log_bytes: 8 * 1024 * 1024,
        }
    }
}

/// A token bucket.
struct RateLimiter {
    state: tokio::sync::Mutex<(f64, Instant)>,
    qps: f64,
    burst: f64,
}

impl RateLimiter {
    fn new(qps: f64, burst: u32) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            state: tokio::sync::Mutex::new((burst, Instant::now())),
            qps: qps.max(0.1),
            burst,
        }
    }

    /// Takes a token, waiting for one when the bucket is empty; true when it waited.
    async fn acquire(&self) -> bool {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            return false;
        }
        let wait = Duration::from_secs_f64((1.0 - tokens) / self.qps);
        *state = (0.0, now + wait);
        // Holding the lock while waiting keeps callers in order.
        tokio::time::sleep(wait).await;
        true
    }
}

/// The API server of one context.
pub struct Transport {
    client: kube::Client,
    url: String,
    limiter: RateLimiter,
    limits: Limits,
    server_clock: Mutex<Option<(DateTime<Utc>, Instant)>>,
    observer: ObserverSlot,
}

/// One request as it goes out.
struct Outgoing<'a> {
    method: http::Method,
    path: &'a str,
    accept: &'a str,
    content_type: Option<&'a str>,
    body: Option<Bytes>,
}

/// Which failures a request may be repeated after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Repeating it changes nothing (a read, a dry run): retried on 429, 5xx, timeouts and
    /// lost connections.
    Idempotent,
    /// A real write: retried only on 429, which the API server answers before processing a
    /// request; any other failure may come after the write was applied.
    Write,
}

impl Retry {
    fn allows(self, error: &ClusterError) -> bool {
        match self {
            Retry::Idempotent => true,
            Retry::Write => error.kind == ErrorKind::Throttled,
        }
    }
}

/// What an attempt produced.
enum Attempt {
    Done(Bytes, String),
    Retry {
        error: ClusterError,
        after: Option<Duration>,
        /// The status code, or `timeout` / `unreachable` (for metrics and traces).
        code: String,
    },
    Fail(ClusterError, String),
}

fn status_field(body: &[u8], field: &str) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get(field).and_then(Value::as_str).map(str::to_string))
}

/// The `reason` of a refusal the call cannot act on by kind: the API's own (`BadRequest`,
/// `Invalid`, `Conflict`, ...) when its answer names a plausible one, else the one Kubernetes
/// gives that status.
fn api_reason(code: u16, body: &[u8]) -> String {
    let named = status_field(body, "reason")
        .filter(|r| !r.is_empty() && r.len() <= 48 && r.chars().all(|c| c.is_ascii_alphanumeric()));
    named.unwrap_or_else(|| {
        match code {
            400 => "BadRequest",
            405 => "MethodNotAllowed",
            406 => "NotAcceptable",
            409 => "Conflict",
            410 => "Expired",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            _ => "Rejected",
        }
        .to_string()
    })
}

fn error_for(code: u16, body: &[u8]) -> ClusterError {
    let server = status_field(body, "message")
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let kind = match code {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::Throttled,
        504 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Api {
            status: code,
            reason: api_reason(code, body),
        },
    };
    let advice = match &kind {
        ErrorKind::Unauthorized => {
            " (the credentials were refused: check the kubeconfig's user or refresh its token)"
        }
        ErrorKind::Forbidden => {
            " (the credentials may not do this: try another namespace or ask for a role that allows it)"
        }
        ErrorKind::Throttled => {
            " (the API server kept throttling after retries: make fewer or narrower calls)"
        }
        ErrorKind::Unavailable => " (the API server failed after retries: try again later)",
        ErrorKind::Api { reason, .. } => match reason.as_str() {
            "BadRequest" => {
                " (the API server refused the request as sent: change what the message names; the same call fails again)"
            }
            "Invalid" => " (a value is invalid: correct the field the message names)",
            "Conflict" | "AlreadyExists" => {
                " (the object changed or exists already: read it again before deciding)"
            }
            "Expired" | "Gone" => " (the list expired while being read: list again)",
            _ => "",
        },
        _ => "",
    };
    ClusterError::new(kind, format!("{server}{advice}"))
}

impl Transport {
    /// Wraps a kube-rs client; kube-rs' own retries must be off (`default_retry = false`).
    pub fn new(client: kube::Client, url: String, limits: Limits) -> Transport {
        Transport {
            client,
            url,
            limiter: RateLimiter::new(limits.qps, limits.burst),
            limits,
            server_clock: Mutex::new(None),
            observer: ObserverSlot::default(),
        }
    }

    /// Reports this transport's traffic to the observer in `slot`, once one is set.
    pub(crate) fn observed_by(mut self, slot: ObserverSlot) -> Transport {
        self.observer = slot;
        self
    }

    fn observe(&self, report: impl FnOnce(&dyn crate::ApiObserver)) {
        if let Some(o) = self.observer.get() {
            report(o.as_ref());
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The API server's clock, from its last `Date` header (the local clock before any answer).
    pub fn now(&self) -> DateTime<Utc> {
        let clock = self.server_clock.lock().unwrap_or_else(|e| e.into_inner());
        match *clock {
            Some((server, seen)) => {
                server + chrono::Duration::from_std(seen.elapsed()).unwrap_or_default()
            }
            None => Utc::now(),
        }
    }

    async fn attempt(&self, request: &Outgoing<'_>) -> Attempt {
        let verb = request.method.as_str();
        if self.limiter.acquire().await {
            self.observe(|o| o.throttle(verb, "client"));
        }
        let path = request.path;
        // `kubecode/VERSION` in the API server's audit log, as kubectl names itself.
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(path)
            .header(http::header::USER_AGENT, USER_AGENT)
            .header(http::header::ACCEPT, request.accept);
        if let Some(content_type) = request.content_type {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        let body = match &request.body {
            Some(bytes) => kube::client::Body::from(bytes.to_vec()),
            None => kube::client::Body::empty(),
        };
        let request = match builder.body(body) {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Fail(
                    ClusterError::bad_input(
                        "request",
                        format!("invalid request path {path:?}: {e}"),
                    ),
                    "invalid".into(),
                );
            }
        };
        let timeout = self.limits.request_timeout;
        let sent = tokio::time::timeout(timeout, async {
            let response = self.client.send(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map(|c| c.to_bytes())?;
            Ok::<_, kube::Error>((parts, bytes))
        })
        .await;
        let (parts, body) = match sent {
            Err(_) => {
                return Attempt::Retry {
                    error: ClusterError::new(
                        ErrorKind::Timeout,
                        format!(
                            "the API server did not answer within {} s",
                            timeout.as_secs()
                        ),
                    ),
                    after: None,
                    code: "timeout".into(),
                };
            }
            Ok(Err(e)) => {
                return Attempt::Retry {
                    error: ClusterError::new(
                        ErrorKind::Unavailable,
                        format!("cannot reach the API server at {}: {e}", self.url),
                    ),
                    after: None,
                    code: "unreachable".into(),
                };
            }
            Ok(Ok(x)) => x,
        };
        if let Some(date) = parts
            .headers
            .get(http::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        {
            *self.server_clock.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((date.with_timezone(&Utc), Instant::now()));
        }
        let code = parts.status.as_u16();
        if parts.status.is_success() {
            return Attempt::Done(body, code.to_string());
        }
        if code == 429 {
            self.observe(|o| o.throttle(verb, "429"));
        }
        let error = error_for(code, &body);
        if matches!(code, 429 | 500 | 502 | 503 | 504) {
            let after = parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Attempt::Retry {
                error,
                after,
                code: code.to_string(),
            }
        } else {
            Attempt::Fail(error, code.to_string())
        }
    }

    /// GETs a path (with its query) and returns the body, retrying within the limits.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        self.get_as(path, "application/json").await
    }

    /// Like [`Transport::get`], asking for the media type `accept` (a server-side Table,
    /// for instance).
    pub async fn get_as(&self, path: &str, accept: &str) -> Result<Bytes> {
        let request = Outgoing {
            method: http::Method::GET,
            path,
            accept,
            content_type: None,
            body: None,
        };
        self.send(&request, Retry::Idempotent).await
    }

    /// Sends a request that may change the cluster: a PATCH or DELETE with its JSON body.
    ///
    /// Retries follow [`Retry`]: a request the API server cannot apply (a dry run) is retried
    /// like a read; a real write only when the API server said it did not process it (429),
    /// never after a timeout, a lost connection or a 5xx, where it may have been applied. The
    /// change path adds a `resourceVersion` precondition to every write, so even a repeated
    /// write fails with a conflict rather than apply twice.
    pub async fn write(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Bytes,
        retry: Retry,
    ) -> Result<Bytes> {
        let request = Outgoing {
            method,
            path,
            accept: "application/json",
            content_type: Some(content_type),
            body: Some(body),
        };
        self.send(&request, retry).await
    }

    async fn send(&self, request: &Outgoing<'_>, retry: Retry) -> Result<Bytes> {
        let path = request.path;
        let verb = request.method.as_str();
        // One span per request, retries included; its status code is the last attempt's.
        let span = tracing::debug_span!(
            "kubernetes.api",
            otel.name = verb,
            otel.kind = "client",
            http.request.method = verb,
            url.path = path.split('?').next().unwrap_or(path),
            http.response.status_code = tracing::field::Empty,
            retries = tracing::field::Empty,
        );
        self.attempts(request, retry, &span)
            .instrument(span.clone())
            .await
    }

    async fn attempts(
        &self,
        request: &Outgoing<'_>,
        retry: Retry,
        span: &tracing::Span,
    ) -> Result<Bytes> {
        let path = request.path;
        let verb = request.method.as_str();
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            span.record("retries", attempt);
            let (error, after, code) = match self.attempt(request).await {
                Attempt::Done(body, code) => {
                    self.observe(|o| o.request(verb, &code));
                    span.record("http.response.status_code", code.as_str());
                    return Ok(body);
                }
                Attempt::Fail(e, code) => {
                    self.observe(|o| o.request(verb, &code));
                    span.record("http.response.status_code", code.as_str());
                    return Err(e);
                }
                Attempt::Retry { error, after, code } => (error, after, code),
            };
            self.observe(|o| o.request(verb, &code));
            span.record("http.response.status_code", code.as_str());
            if !retry.allows(&error) {
                let mut error = error;
                error.message.push_str(
                    " [a write is not repeated after this failure: it may have been applied; read the object to see whether it changed]",
                );
                return Err(error);
            }
            if attempt >= self.limits.max_retries {
                return Err(error);
            }
            let backoff = {
                let base = Duration::from_millis(100) * 2u32.saturating_pow(attempt);
                let jitter = rand::rng().random_range(0.5..1.5);
                base.mul_f64(jitter).min(Duration::from_secs(2))
            };
            let wait = after.map_or(backoff, |a| a.max(backoff));
            if started.elapsed() + wait > self.limits.retry_budget {
                let mut error = error;
                error.message.push_str(&format!(
                    " [gave up after {} attempts in {:.1} s]",
                    attempt + 1,
                    started.elapsed().as_secs_f64()
                ));
                return Err(error);
            }
            tracing::debug!("retrying {path} in {wait:?} after: {}", error.message);
            self.observe(|o| o.retry(verb, &code));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// GETs a path and parses the JSON answer.
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        let body = self.get(path).await?;
        serde_json::from_slice(&body).map_err(|e| {
            ClusterError::new(
                ErrorKind::Unavailable,
                format!("the API server answered {path} with invalid JSON: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rate_limit_spaces_requests_after_a_burst() {
        let limiter = RateLimiter::new(20.0, 2);
        let started = Instant::now();
        for _ in 0..4 {
            limiter.acquire().await;
        }
        // Two from the burst, two at 20 per second: about 100 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(90), "{elapsed:?}");
    }

    #[test]
    fn statuses_map_to_kinds_with_advice() {
        let body = br#"{"kind":"Status","message":"pods is forbidden: User \"x\" cannot list"}"#;
        let e = error_for(403, body);
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(
            e.message.starts_with("pods is forbidden") && e.message.contains("another namespace")
        );
        assert_eq!(error_for(404, b"").kind, ErrorKind::NotFound);
        assert_eq!(error_for(429, b"").kind, ErrorKind::Throttled);
    }

    #[test]
    fn other_refusals_keep_the_api_reason_and_message() {
        let body = br#"{"kind":"Status","code":422,"reason":"Invalid","message":"Pod \"x\" is invalid: spec: bad"}"#;
        let e = error_for(422, body);
        assert_eq!(e.kind.code(), "Invalid");
        assert!(
            e.message.starts_with("Pod \"x\" is invalid: spec: bad"),
            "{}",
            e.message
        );
        let e = error_for(400, br#"{"message":"unable to parse requirement"}"#);
        assert_eq!(
            e.kind,
            ErrorKind::Api {
                status: 400,
                reason: "BadRequest".into()
            }
        );
        assert!(
            e.message.contains("unable to parse requirement") && e.message.contains("change what")
        );
        assert_eq!(error_for(409, b"").kind.code(), "Conflict");
        assert_eq!(
            error_for(418, br#"{"reason":"not a reason!"}"#).kind.code(),
            "Rejected"
        );
    }

    #[test]
    fn writes_are_retried_only_when_the_api_server_did_not_process_them() {
        let throttled = error_for(429, b"");
        let failed = error_for(503, b"");
        let lost = ClusterError::new(ErrorKind::Unavailable, "connection reset");
        let slow = ClusterError::new(ErrorKind::Timeout, "no answer");
        assert!(Retry::Write.allows(&throttled));
        for e in [&failed, &lost, &slow] {
            assert!(!Retry::Write.allows(e), "{e:?}");
            assert!(Retry::Idempotent.allows(e), "{e:?}");
        }
    }
}
