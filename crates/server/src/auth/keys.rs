//! The issuer's signing keys: found through its metadata (RFC 8414, or OpenID discovery) or
//! a configured JWKS URL, cached, fetched again when they are old or a token names a key the
//! cache lacks (at most once per `jwks_min_refresh_seconds`), so a key rotation is picked up.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::OAuthConfig;

/// Most bytes of a metadata or JWKS document.
const MAX_DOCUMENT: usize = 1024 * 1024;
/// Time for one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One usable key of the set.
struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Default)]
struct Cached {
    keys: Vec<Key>,
    /// When the keys were last fetched (successfully or not).
    fetched: Option<Instant>,
    /// When they were last fetched successfully.
    good: Option<Instant>,
    jwks_url: Option<String>,
}

/// The issuer's keys, fetched on demand.
pub(crate) struct KeySet {
    issuer: String,
    configured_url: Option<String>,
    min_refresh: Duration,
    max_age: Duration,
    client: Option<Https>,
    cached: tokio::sync::Mutex<Cached>,
}

impl KeySet {
    pub(crate) fn new(config: &OAuthConfig) -> KeySet {
        let client = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map(|b| {
                Client::builder(TokioExecutor::new())
                    .build(b.https_or_http().enable_http1().build())
            });
        if let Err(e) = &client {
            tracing::error!(
                "cannot load the system's CA certificates to fetch the issuer's keys: {e}"
            );
        }
        KeySet {
            issuer: config.issuer.clone(),
            configured_url: config.jwks_url.clone(),
            min_refresh: config.min_refresh(),
            max_age: config.max_age(),
            client: client.ok(),
            cached: tokio::sync::Mutex::new(Cached::default()),
        }
    }

    /// The keys that may have signed a token with this `kid` and `alg`, fetching the set
    /// when it is old or lacks the key. The error says why no key could be had.
    pub(crate) async fn candidates(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<DecodingKey>, String> {
        let mut cached = self.cached.lock().await;
        let stale = cached.good.is_none_or(|t| t.elapsed() >= self.max_age);
        let may_fetch = cached
            .fetched
            .is_none_or(|t| t.elapsed() >= self.min_refresh);
        let mut failure = None;
        if stale
            && may_fetch
            && let Err(e) = self.refresh(&mut cached).await
        {
            failure = Some(e);
        }
        let mut found = matching(&cached.keys, kid, alg);
        if found.is_empty() && failure.is_none() {
            let may_fetch = cached
                .fetched
                .is_none_or(|t| t.elapsed() >= self.min_refresh);
            if may_fetch {
                // An unknown key: the issuer may have rotated its keys.
                if let Err(e) = self.refresh(&mut cached).await {
                    failure = Some(e);
                }
                found = matching(&cached.keys, kid, alg);
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
        Err(match (failure, kid) {
            (Some(e), _) => e,
            (None, Some(k)) => format!("the issuer publishes no {alg:?} key with kid {k:?}"),
            (None, None) => format!("the issuer publishes no {alg:?} key"),
        })
    }

    async fn refresh(&self, cached: &mut Cached) -> Result<(), String> {
        cached.fetched = Some(Instant::now());
        let url = match (&self.configured_url, &cached.jwks_url) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                let u = self.discover().await?;
                cached.jwks_url = Some(u.clone());
                u
            }
        };
        let doc = self.fetch(&url).await?;
        let keys = parse_set(&doc).map_err(|e| format!("the JWKS at {url}: {e}"))?;
        tracing::debug!(url, keys = keys.len(), "fetched the issuer's keys");
        cached.keys = keys;
        cached.good = Some(Instant::now());
        Ok(())
    }

    /// The `jwks_uri` of the issuer's metadata (RFC 8414, then OpenID discovery).
    async fn discover(&self) -> Result<String, String> {
        let issuer = self.issuer.trim_end_matches('/');
        let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
        let (origin, path) = match issuer[after_scheme..].find('/') {
            Some(i) => issuer.split_at(after_scheme + i),
            None => (issuer, ""),
        };
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{issuer}/.well-known/openid-configuration"),
        ];
        let mut tried = Vec::new();
        for url in candidates {
            match self.fetch(&url).await {
                Ok(doc) => {
                    if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
                        tried.push(format!(
                            "{url} names issuer {} instead",
                            doc.get("issuer").unwrap_or(&Value::Null)
                        ));
                        continue;
                    }
                    return match doc.get("jwks_uri").and_then(Value::as_str) {
                        Some(u) => Ok(u.to_string()),
                        None => Err(format!(
                            "the issuer's metadata at {url} has no jwks_uri: pass --oauth-jwks-url"
                        )),
                    };
                }
                Err(e) => tried.push(e),
            }
        }
        Err(format!(
            "cannot find the issuer's keys ({}); pass --oauth-jwks-url",
            tried.join("; ")
        ))
    }

    async fn fetch(&self, url: &str) -> Result<Value, String> {
        let Some(client) = &self.client else {
            return Err("no CA certificates to reach the issuer with".into());
        };
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("{url} is not a URL: {e}"))?;
        let answer = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| format!("cannot fetch {url}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{url} answered {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_DOCUMENT)
                .collect()
                .await
                .map_err(|e| format!("cannot read {url}: {e}"))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
        };
        tokio::time::timeout(FETCH_TIMEOUT, answer)
            .await
            .map_err(|_| format!("{url} did not answer within {FETCH_TIMEOUT:?}"))?
    }
}

/// The signature keys of a JWKS; keys of a kind this server does not use are skipped.
fn parse_set(doc: &Value) -> Result<Vec<Key>, String> {
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        return Err("no `keys` array".into());
    };
    let mut keys = Vec::new();
    for raw in list {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
            || matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
        {
            continue;
        }
        let alg = raw
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<Algorithm>().ok());
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
    }
    Ok(keys)
}

fn matching(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
    keys.iter()
        .filter(|k| kid.is_none_or(|id| k.kid.as_deref() == Some(id)))
        .filter(|k| k.alg.is_none_or(|a| a == alg))
        .map(|k| k.key.clone())
        .collect()
}
