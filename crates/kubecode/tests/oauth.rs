//! OAuth 2.1 on the HTTP transport, against a local issuer (a generated key pair, its
//! metadata and JWKS served on loopback): the protected resource metadata, tokens accepted
//! and refused with the challenge RFC 6750 prescribes, key rotation, sessions bound to their
//! person, and the audit log naming the person.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://kubecode.test/mcp";

/// An ES256 signing key and its public JWK.
struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

impl SigningKey {
    fn generate(kid: &str) -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).unwrap();
        // Uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])});
        SigningKey {
            kid: kid.to_string(),
            pkcs8,
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }
}

/// An authorization server's metadata and JWKS on loopback; the key set can be replaced.
struct Issuer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<Mutex<u32>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start(keys: &[&SigningKey]) -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(json!({"keys": []})));
        let fetches = Arc::new(Mutex::new(0));
        let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/authorize"), "token_endpoint": format!("{url}/token")});
        let (set, count) = (jwks.clone(), fetches.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                axum::routing::get(move || {
                    let m = metadata.to_string();
                    async move { ([("content-type", "application/json")], m) }
                }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || {
                    *count.lock().unwrap() += 1;
                    let body = set.lock().unwrap().to_string();
                    async move { ([("content-type", "application/json")], body) }
                }),
            );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let issuer = Issuer {
            url,
            jwks,
            fetches,
            _task: task,
        };
        issuer.publish(keys);
        issuer
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let list: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.jwks.lock().unwrap() = json!({ "keys": list });
    }

    fn fetches(&self) -> u32 {
        *self.fetches.lock().unwrap()
    }

    /// Claims of a token for `sub`, valid for five minutes, with these scopes.
    fn claims(&self, sub: &str, scope: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": self.url, "aud": AUDIENCE, "sub": sub, "scope": scope,
               "groups": ["team-a"], "iat": now, "nbf": now - 5, "exp": now + 300})
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args([
            "serve",
            "--mode",
            "tools",
            "--transport",
            "http",
            "--addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubecode starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server said where it listens")
            .expect("stderr line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim_end_matches("/mcp").parse().expect("an address");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Answer {
    status: u16,
    challenge: String,
    session: Option<String>,
    body: String,
}

impl Answer {
    fn message(&self) -> Value {
        let json = self
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| d.starts_with('{'))
            .unwrap_or(self.body.trim());
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {}", self.body))
    }
}

async fn request(c: &Http, req: http::request::Builder, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let response = c
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("answered");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = response.status().as_u16();
    let challenge = header("www-authenticate").unwrap_or_default();
    let session = header("mcp-session-id");
    let body = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes())
        .into_owned();
    Answer {
        status,
        challenge,
        session,
        body,
    }
}

async fn post(
    c: &Http,
    addr: SocketAddr,
    token: Option<&str>,
    session: Option<&str>,
    body: Value,
) -> Answer {
    let mut req = http::Request::post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    request(c, req, Some(body)).await
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "oauth-test", "version": "0"}}})
}

/// Opens a session with a token; returns its id.
async fn open(c: &Http, addr: SocketAddr, token: &str) -> String {
    let init = post(c, addr, Some(token), None, initialize()).await;
    assert_eq!(init.status, 200, "{}", init.body);
    let session = init.session.expect("a session id");
    let note = post(
        c,
        addr,
        Some(token),
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert!(note.status < 300, "{}", note.status);
    session
}

fn list_pods(ns: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
           "params": {"name": "kube_list", "arguments": {"kind": "pods", "namespace": ns}}})
}

fn unsigned(claims: &Value) -> String {
    let head = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{head}.{}.", B64.encode(claims.to_string()))
}

#[tokio::test]
async fn oauth_tokens_are_checked_and_keys_rotate() {
    let first = SigningKey::generate("key-1");
    let issuer = Issuer::start(&[&first]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("auth.yaml");
    std::fs::write(
        &config,
        format!(
            "oauth:\n  issuer: {}\n  audience: {AUDIENCE}\n  jwks_min_refresh_seconds: 0\n  leeway_seconds: 5\n",
            issuer.url
        ),
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let s = start(&[
        "--demo",
        "--auth-config",
        config.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    let c: Http = Client::builder(TokioExecutor::new()).build_http();
    let meta_url = "https://kubecode.test/.well-known/oauth-protected-resource/mcp";

    // Protected resource metadata, at the derived path and the bare one, without a token.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let m = request(
            &c,
            http::Request::get(format!("http://{}{path}", s.addr)),
            None,
        )
        .await;
        assert_eq!(m.status, 200, "{path}: {}", m.body);
        let doc: Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(doc["resource"], AUDIENCE);
        assert_eq!(doc["authorization_servers"], json!([issuer.url]));
        assert_eq!(
            doc["scopes_supported"],
            json!(["kubecode:read", "kubecode:change"])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }

    // No token: 401 naming the metadata.
    let none = post(&c, s.addr, None, None, initialize()).await;
    assert_eq!(none.status, 401);
    assert_eq!(
        none.challenge,
        format!("Bearer resource_metadata=\"{meta_url}\"")
    );

    // A valid token: the session works, and the audit log names the person.
    let alice = first.sign(&issuer.claims("alice", "kubecode:read"));
    let session = open(&c, s.addr, &alice).await;
    let pods = post(&c, s.addr, Some(&alice), Some(&session), list_pods("shop")).await;
    assert_eq!(pods.status, 200, "{}", pods.body);
    assert!(
        pods.message()["result"]["structuredContent"]["count"]
            .as_u64()
            .unwrap()
            > 0,
        "{}",
        pods.body
    );
    let records = std::fs::read_to_string(&audit).unwrap();
    let call: Value = serde_json::from_str(records.lines().last().unwrap()).unwrap();
    assert_eq!(call["caller"], "alice", "{records}");

    // The same session refuses another person's token.
    let bob = first.sign(&issuer.claims("bob", "kubecode:read"));
    let hijack = post(&c, s.addr, Some(&bob), Some(&session), list_pods("shop")).await;
    let text = hijack.body.clone();
    assert!(
        hijack.status >= 400
            || hijack.message()["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("belongs to another person")),
        "{text}"
    );
    assert!(!text.contains("\"count\""), "{text}");

    let now = chrono::Utc::now().timestamp();
    let invalid = |why: &str| format!("Bearer error=\"invalid_token\", error_description=\"{why}");
    let refused: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            first.sign(&json!({"iss": issuer.url, "aud": AUDIENCE, "sub": "alice", "scope": "kubecode:read", "exp": now - 120})),
            "the token has expired",
        ),
        (
            "not yet valid",
            first.sign(&json!({"iss": issuer.url, "aud": AUDIENCE, "sub": "alice", "scope": "kubecode:read", "nbf": now + 600, "exp": now + 900})),
            "the token is not valid yet",
        ),
        (
            "wrong audience",
            first.sign(&json!({"iss": issuer.url, "aud": "https://other.test/mcp", "sub": "alice", "scope": "kubecode:read", "exp": now + 300})),
            "the token is for another resource",
        ),
        (
            "wrong issuer",
            first.sign(&json!({"iss": "https://evil.test", "aud": AUDIENCE, "sub": "alice", "scope": "kubecode:read", "exp": now + 300})),
            "the token was issued by another issuer",
        ),
        (
            "bad signature",
            SigningKey::generate("key-1").sign(&issuer.claims("alice", "kubecode:read")),
            "the token's signature does not verify",
        ),
        (
            "alg none",
            unsigned(&issuer.claims("alice", "kubecode:read")),
            "the token is not a signed JWT",
        ),
        (
            "HS256",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &issuer.claims("alice", "kubecode:read"),
                &EncodingKey::from_secret(b"anyone-could-know-this"),
            )
            .unwrap(),
            "tokens signed with HS256 are refused",
        ),
    ];
    for (case, token, why) in &refused {
        let a = post(&c, s.addr, Some(token), None, initialize()).await;
        assert_eq!(a.status, 401, "{case}: {}", a.body);
        assert!(
            a.challenge.starts_with(&invalid(why)),
            "{case}: {}",
            a.challenge
        );
        assert!(
            a.challenge
                .ends_with(&format!("resource_metadata=\"{meta_url}\"")),
            "{case}: {}",
            a.challenge
        );
    }

    // A valid token without the read scope: 403 insufficient_scope naming it.
    let scopeless = first.sign(&issuer.claims("alice", "openid profile"));
    let a = post(&c, s.addr, Some(&scopeless), None, initialize()).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(
        a.challenge,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"kubecode:read\", resource_metadata=\"{meta_url}\""
        )
    );

    // Key rotation: the issuer replaces key-1 by key-2; a key-2 token is accepted (the
    // unknown kid makes the server fetch the set again), a key-1 token no longer is.
    let second = SigningKey::generate("key-2");
    issuer.publish(&[&second]);
    let before = issuer.fetches();
    let rotated = second.sign(&issuer.claims("alice", "kubecode:read"));
    let a = post(&c, s.addr, Some(&rotated), None, initialize()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        issuer.fetches() > before,
        "the server fetched the keys again"
    );
    let a = post(&c, s.addr, Some(&alice), None, initialize()).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(
        a.challenge.contains("error=\"invalid_token\""),
        "{}",
        a.challenge
    );
}

#[test]
fn oauth_configuration_is_checked_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args([
            "serve",
            "--demo",
            "--transport",
            "http",
            "--addr",
            "127.0.0.1:0",
            "--oauth-issuer",
            "http://id.example.com",
            "--oauth-audience",
            AUDIENCE,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be an https:// URL"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args([
            "serve",
            "--demo",
            "--transport",
            "http",
            "--oauth-issuer",
            "https://id.example.com",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--oauth-audience"), "{err}");
}

/// Rules for the cluster: kubecode's own account may only impersonate; shop developers
/// read pods in `shop`; ops read everything.
const RBAC: &str = r#"
tokenUser: kubecode
rules:
  - subjects: [user:kubecode]
    verbs: [impersonate]
    resources: [users, groups]
  - subjects: [group:shop-devs]
    verbs: [get, list, watch]
    resources: [pods, pods/log]
    namespaces: [shop]
  - subjects: [group:ops]
    verbs: [get, list, watch]
    resources: ["*"]
"#;

type McpClient = rmcp::service::RunningService<rmcp::RoleClient, ()>;

/// An rmcp Streamable HTTP client session with a bearer token.
async fn mcp_session(addr: SocketAddr, token: &str) -> McpClient {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config = StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
        .auth_header(token.to_string());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP session over HTTP")
}

async fn call(s: &McpClient, tool: &str, args: Value) -> rmcp::model::CallToolResult {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    s.call_tool(rmcp::model::CallToolRequestParams::new(tool.to_string()).with_arguments(map))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

fn text_of(r: &rmcp::model::CallToolResult) -> String {
    serde_json::to_string(&r.content).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_through_one_server_see_what_their_roles_allow() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let sim = kubesim::serve(
        kubesim::demo::snapshot(),
        kubesim::ServerConfig {
            rbac: Some(kubesim::Rbac::from_yaml(RBAC).unwrap()),
            request_log: Some(log.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();

    let key = SigningKey::generate("key-1");
    let issuer = Issuer::start(&[&key]).await;
    let s = start(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--oauth-issuer",
        &issuer.url,
        "--oauth-audience",
        AUDIENCE,
    ]);
    let token = |sub: &str, groups: &[&str]| {
        let mut claims = issuer.claims(sub, "kubecode:read");
        claims["groups"] = json!(groups);
        key.sign(&claims)
    };
    let alice = mcp_session(s.addr, &token("alice", &["shop-devs"])).await;
    let bob = mcp_session(s.addr, &token("bob", &["ops"])).await;

    // Alice reads pods in shop, and nothing in payments.
    let shop = call(
        &alice,
        "kube_list",
        json!({"kind": "pods", "namespace": "shop"}),
    )
    .await;
    assert_ne!(shop.is_error, Some(true), "{}", text_of(&shop));
    let shop_pods = shop.structured_content.as_ref().unwrap()["count"]
        .as_u64()
        .unwrap();
    assert!(shop_pods > 0);
    let payments = call(
        &alice,
        "kube_list",
        json!({"kind": "pods", "namespace": "payments"}),
    )
    .await;
    assert_eq!(payments.is_error, Some(true), "{}", text_of(&payments));
    let refusal = text_of(&payments);
    assert!(
        refusal.contains(r#"User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"payments\""#),
        "{refusal}"
    );

    // Bob, at the same time through the same server, reads everywhere.
    let payments = call(
        &bob,
        "kube_list",
        json!({"kind": "pods", "namespace": "payments"}),
    )
    .await;
    assert_ne!(payments.is_error, Some(true), "{}", text_of(&payments));
    let everywhere = call(
        &bob,
        "kube_list",
        json!({"kind": "pods", "allNamespaces": true}),
    )
    .await;
    assert_ne!(everywhere.is_error, Some(true), "{}", text_of(&everywhere));
    let all = everywhere.structured_content.as_ref().unwrap()["count"]
        .as_u64()
        .unwrap();
    assert!(
        all > shop_pods,
        "{all} pods everywhere, {shop_pods} in shop"
    );
    let again = call(
        &alice,
        "kube_list",
        json!({"kind": "pods", "allNamespaces": true}),
    )
    .await;
    assert_eq!(again.is_error, Some(true), "{}", text_of(&again));

    // Every request reached the cluster as one of the two people, never as the server.
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let who = l["impersonateUser"].as_str().unwrap_or("(none)");
        assert!(
            who == "alice" || who == "bob",
            "a request not as a person: {l}"
        );
        assert_eq!(l["user"], who, "{l}");
        let groups = if who == "alice" {
            json!(["shop-devs"])
        } else {
            json!(["ops"])
        };
        assert_eq!(l["impersonateGroups"], groups, "{l}");
    }
    assert!(lines.iter().any(|l| l["impersonateUser"] == "alice"
        && l["status"] == 403
        && l["path"] == "/api/v1/namespaces/payments/pods"));
    assert!(lines.iter().any(|l| l["impersonateUser"] == "bob"
        && l["status"] == 200
        && l["path"] == "/api/v1/pods"));
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}
