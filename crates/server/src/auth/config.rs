//! OAuth settings: flags and `--auth-config FILE` (YAML) fill the same structure.

use std::time::Duration;

use serde::Deserialize;

/// How the server checks OAuth access tokens and whom it acts as.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// The authorization server's issuer identifier (the tokens' `iss`).
    pub issuer: String,
    /// This server's resource URL, e.g. `https://kubecode.example.com/mcp`: the tokens'
    /// `aud` must name it (RFC 8707), and the protected resource metadata gives it.
    pub audience: String,
    /// Where the issuer publishes its keys; found in its metadata when unset.
    pub jwks_url: Option<String>,
    /// The claim that names the person (`sub`, `email`, `preferred_username`, ...).
    pub user_claim: String,
    /// The claim that lists the person's groups (an array of strings, or one string).
    pub groups_claim: String,
    /// Put before every user name sent to the cluster (as the API server's `--oidc-username-prefix`).
    pub user_prefix: String,
    /// Put before every group name sent to the cluster.
    pub group_prefix: String,
    /// The scope every request needs.
    pub read_scope: String,
    /// The scope a change (an `apply_plan`, a function that writes) needs, on top of
    /// `--allow-changes`.
    pub change_scope: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Least time between two fetches of the keys for an unknown `kid`, in seconds.
    pub jwks_min_refresh_seconds: u64,
    /// Most time the keys are used before they are fetched again, in seconds.
    pub jwks_max_age_seconds: u64,
    /// Send the caller to the cluster as `Impersonate-User` / `Impersonate-Group`.
    pub impersonate: bool,
}

impl Default for OAuthConfig {
    fn default() -> OAuthConfig {
        OAuthConfig {
            issuer: String::new(),
            audience: String::new(),
            jwks_url: None,
            user_claim: "sub".into(),
            groups_claim: "groups".into(),
            user_prefix: String::new(),
            group_prefix: String::new(),
            read_scope: "kubecode:read".into(),
            change_scope: "kubecode:change".into(),
            leeway_seconds: 30,
            jwks_min_refresh_seconds: 30,
            jwks_max_age_seconds: 3600,
            impersonate: true,
        }
    }
}

/// The file given to `--auth-config`: an `oauth` section (room for more later).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    oauth: Option<OAuthConfig>,
}

impl OAuthConfig {
    /// Reads the `oauth:` section of an `--auth-config` YAML document.
    pub fn from_yaml(text: &str) -> Result<Option<OAuthConfig>, String> {
        let file: AuthFile = serde_saphyr::from_str(text).map_err(|e| {
            format!(
                "invalid auth config: {e}; expected `oauth:` with issuer, audience and optional jwks_url, user_claim, groups_claim, user_prefix, group_prefix, read_scope, change_scope, leeway_seconds, jwks_min_refresh_seconds, jwks_max_age_seconds, impersonate"
            )
        })?;
        Ok(file.oauth)
    }

    /// Checks what the server cannot run without: an issuer, an audience, URLs over HTTPS
    /// (plain HTTP only on loopback, for tests and local issuers).
    pub fn check(&self) -> Result<(), String> {
        if self.issuer.is_empty() {
            return Err(
                "OAuth needs the issuer: pass --oauth-issuer URL (the `iss` of its tokens)".into(),
            );
        }
        if self.audience.is_empty() {
            return Err("OAuth needs this server's resource URL: pass --oauth-audience URL (e.g. https://kubecode.example.com/mcp), the `aud` its tokens carry".into());
        }
        secure_url("--oauth-issuer", &self.issuer)?;
        secure_url("--oauth-audience", &self.audience)?;
        if let Some(u) = &self.jwks_url {
            secure_url("--oauth-jwks-url", u)?;
        }
        if self.user_claim.is_empty() {
            return Err("--oauth-user-claim is empty: name the claim that identifies the person, e.g. sub or email".into());
        }
        Ok(())
    }

    pub(crate) fn leeway(&self) -> u64 {
        self.leeway_seconds
    }

    pub(crate) fn min_refresh(&self) -> Duration {
        Duration::from_secs(self.jwks_min_refresh_seconds)
    }

    pub(crate) fn max_age(&self) -> Duration {
        Duration::from_secs(self.jwks_max_age_seconds.max(1))
    }

    /// Where the protected resource metadata is served for the audience: the well-known
    /// path inserted before the resource's path (RFC 9728 §3.1).
    pub fn metadata_url(&self) -> String {
        let (origin, path) = split_origin(&self.audience);
        format!(
            "{origin}/.well-known/oauth-protected-resource{}",
            path.trim_end_matches('/')
        )
    }

    /// The path part of [`OAuthConfig::metadata_url`].
    pub(crate) fn metadata_path(&self) -> String {
        let (_, path) = split_origin(&self.audience);
        format!(
            "/.well-known/oauth-protected-resource{}",
            path.trim_end_matches('/')
        )
    }
}

/// `https://host:port/path` → (`https://host:port`, `/path`).
fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}

fn secure_url(flag: &str, url: &str) -> Result<(), String> {
    let parsed: http::Uri = url
        .parse()
        .map_err(|e| format!("{flag} {url:?} is not a URL: {e}"))?;
    let host = parsed.host().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if loopback => Ok(()),
        _ => Err(format!(
            "{flag} {url:?} must be an https:// URL (http:// only on loopback)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        let c = OAuthConfig {
            audience: "https://kc.example.com/mcp".into(),
            ..OAuthConfig::default()
        };
        assert_eq!(
            c.metadata_url(),
            "https://kc.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let c = OAuthConfig {
            audience: "https://kc.example.com".into(),
            ..OAuthConfig::default()
        };
        assert_eq!(
            c.metadata_url(),
            "https://kc.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn file_and_checks() {
        let c = OAuthConfig::from_yaml(
            "oauth:\n  issuer: https://id.example.com\n  audience: https://kc.example.com/mcp\n  user_claim: email\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.user_claim, "email");
        assert_eq!(c.groups_claim, "groups");
        assert!(c.check().is_ok());
        assert!(OAuthConfig::from_yaml("oauth:\n  isuer: x\n").is_err());
        let plain = OAuthConfig {
            issuer: "http://id.example.com".into(),
            ..c.clone()
        };
        assert!(plain.check().unwrap_err().contains("https://"));
        let local = OAuthConfig {
            issuer: "http://127.0.0.1:9000".into(),
            ..c
        };
        assert!(local.check().is_ok());
    }
}
