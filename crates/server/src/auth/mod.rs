//! OAuth 2.1 resource server for the HTTP transport (MCP authorization): protected resource
//! metadata (RFC 9728), bearer tokens (RFC 6750) that are JWT access tokens signed by the
//! issuer's published keys, bound to this server as their audience (RFC 8707), and scopes
//! that separate reading from changes. A verified token becomes the request's [`Caller`].

mod config;
mod keys;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value, json};

pub use config::OAuthConfig;

use crate::call::{Caller, Identity};

/// Signatures accepted: asymmetric only. `none` cannot even be parsed as a header, and
/// HMAC would let anyone holding the shared secret mint tokens (and invites key confusion).
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Checks access tokens against one issuer and this server's resource URL.
pub struct Verifier {
    config: OAuthConfig,
    keys: keys::KeySet,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish_non_exhaustive()
    }
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No bearer token at all.
    NoToken,
    /// A token that is not valid here (RFC 6750 `invalid_token`), and why.
    Invalid(String),
    /// A valid token without the read scope (`insufficient_scope`).
    Scope,
}

impl Verifier {
    /// A verifier for a checked configuration; keys are fetched on first use.
    pub fn new(config: OAuthConfig) -> Result<Verifier, String> {
        config.check()?;
        let keys = keys::KeySet::new(&config);
        Ok(Verifier { config, keys })
    }

    /// The configuration.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    async fn verify(&self, token: &str) -> Result<Caller, Refusal> {
        let head = jsonwebtoken::decode_header(token).map_err(|e| {
            Refusal::Invalid(format!(
                "the token is not a signed JWT ({e}); unsigned (alg none) tokens are refused"
            ))
        })?;
        if !ACCEPTED.contains(&head.alg) {
            return Err(Refusal::Invalid(format!(
                "tokens signed with {:?} are refused: only asymmetric signatures (RS*, PS*, ES256, ES384, EdDSA) are accepted",
                head.alg
            )));
        }
        let candidates = self
            .keys
            .candidates(head.kid.as_deref(), head.alg)
            .await
            .map_err(Refusal::Invalid)?;
        let mut validation = Validation::new(head.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway();
        let mut claims = None;
        for key in &candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {}
                Err(e) => return Err(Refusal::Invalid(describe(&e, &self.config))),
            }
        }
        let Some(claims) = claims else {
            return Err(Refusal::Invalid(
                "the token's signature does not verify with the issuer's keys".into(),
            ));
        };
        let scopes = scopes(&claims);
        if !scopes.iter().any(|s| *s == self.config.read_scope) {
            return Err(Refusal::Scope);
        }
        let user = match claims.get(&self.config.user_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(Refusal::Invalid(format!(
                    "the token has no {:?} claim naming the person",
                    self.config.user_claim
                )));
            }
        };
        let groups: Vec<String> = match claims.get(&self.config.groups_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let name = format!("{}{user}", self.config.user_prefix);
        let identity = self.config.impersonate.then(|| Identity {
            user: name.clone(),
            groups: groups
                .iter()
                .map(|g| format!("{}{g}", self.config.group_prefix))
                .collect(),
        });
        let may_change = scopes.iter().any(|s| *s == self.config.change_scope);
        Ok(Caller::verified(name, identity, may_change))
    }

    /// The protected resource metadata (RFC 9728).
    fn metadata(&self) -> Value {
        json!({
            "resource": self.config.audience,
            "authorization_servers": [self.config.issuer],
            "scopes_supported": [self.config.read_scope, self.config.change_scope],
            "bearer_methods_supported": ["header"],
            "resource_name": "kubecode",
        })
    }

    /// The `WWW-Authenticate` challenge of a refusal.
    fn challenge(&self, refusal: &Refusal) -> String {
        let meta = self.config.metadata_url();
        match refusal {
            Refusal::NoToken => format!("Bearer resource_metadata=\"{meta}\""),
            Refusal::Invalid(why) => format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{meta}\"",
                quotable(why)
            ),
            Refusal::Scope => format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{meta}\"",
                self.config.read_scope
            ),
        }
    }
}

/// What a JWT validation error means to the client.
fn describe(e: &jsonwebtoken::errors::Error, config: &OAuthConfig) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the token has expired: get a new one from the issuer".into(),
        K::ImmatureSignature => "the token is not valid yet (nbf is in the future)".into(),
        K::InvalidIssuer => format!(
            "the token was issued by another issuer; this server accepts {}",
            config.issuer
        ),
        K::InvalidAudience => format!(
            "the token is for another resource; ask the issuer for a token with resource (audience) {}",
            config.audience
        ),
        K::MissingRequiredClaim(c) => format!("the token has no {c:?} claim"),
        K::InvalidAlgorithm => "the token's algorithm does not match the issuer's key".into(),
        other => format!("the token is invalid: {other:?}"),
    }
}

/// The scopes of a token: `scope` (space-separated, RFC 9068) or `scp` (an array or string).
fn scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut out = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split_whitespace()),
            Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out
}

/// Text fit for a quoted auth-param: printable ASCII without `"` and `\`.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .collect()
}

/// Admits a request with a valid token, its [`Caller`] in the request's extensions (rmcp
/// hands them to the handler); refuses others with the challenge RFC 6750 prescribes.
pub(crate) async fn require_oauth(
    State(verifier): State<Arc<Verifier>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let refusal = match token {
        None => Refusal::NoToken,
        Some(t) => match verifier.verify(t).await {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                return next.run(request).await;
            }
            Err(r) => r,
        },
    };
    let (status, text) = match &refusal {
        Refusal::NoToken => (
            StatusCode::UNAUTHORIZED,
            format!(
                "this server needs an OAuth access token from {}: send Authorization: Bearer <token>; see {}\n",
                verifier.config.issuer,
                verifier.config.metadata_url()
            ),
        ),
        Refusal::Invalid(why) => (StatusCode::UNAUTHORIZED, format!("{why}\n")),
        Refusal::Scope => (
            StatusCode::FORBIDDEN,
            format!(
                "the token lacks the scope {:?}: ask the issuer for a token with it\n",
                verifier.config.read_scope
            ),
        ),
    };
    let mut response = (status, text).into_response();
    if let Ok(v) = HeaderValue::from_str(&verifier.challenge(&refusal)) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// The metadata routes: at the path RFC 9728 derives from the resource URL, and at the bare
/// well-known path for clients that look only there.
pub(crate) fn routes(verifier: Arc<Verifier>) -> axum::Router {
    let document = Arc::new(verifier.metadata().to_string());
    let serve = move || {
        let document = document.clone();
        async move {
            (
                [(header::CONTENT_TYPE, "application/json")],
                document.as_ref().clone(),
            )
        }
    };
    let mut router = axum::Router::new().route(
        "/.well-known/oauth-protected-resource",
        axum::routing::get(serve.clone()),
    );
    let derived = verifier.config.metadata_path();
    if derived != "/.well-known/oauth-protected-resource" {
        router = router.route(&derived, axum::routing::get(serve));
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_from_either_claim() {
        let c: Map<String, Value> =
            serde_json::from_str(r#"{"scope": "a b", "scp": ["c"]}"#).unwrap();
        assert_eq!(scopes(&c), vec!["a", "b", "c"]);
    }

    #[test]
    fn descriptions_stay_quotable() {
        assert_eq!(quotable("say \"no\" \\ é"), "say 'no' ' ?");
    }
}
