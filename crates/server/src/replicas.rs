//! Replicas that scale out: what several `kubecode serve --transport http` processes behind
//! one Service share so that any of them can answer any request of a session.
//!
//! - A **shared key** (`--shared-key-file`, from a Kubernetes Secret). Session ids are sealed
//!   handles minted with it; every replica opens them, and refuses (404, as unknown) any id
//!   that does not open, before anything reaches Redis.
//! - The session's **redaction key** is derived from the shared key and the handle, so equal
//!   Secret values give equal tokens within a session whichever replica answers.
//! - **Redis** (`--redis-url`) holds what must outlive one replica's memory: the session's
//!   `initialize` parameters (rmcp's [`SessionStore`], which lets a replica restore a session
//!   it never saw) and the session's `state`, both with a TTL refreshed on use.
//!
//! Why an HMAC-signed random seed and not an encrypted blob: nothing secret needs to ride in
//! the handle. The redaction key is derived on the server from the shared key, which the
//! client never sees; the state lives in Redis under a name derived the same way. The handle
//! only has to be unguessable (16 random bytes) and unforgeable (a 128-bit HMAC-SHA256 tag),
//! which a MAC gives without nonces to manage. Redis never sees a handle either: its keys are
//! HMACs of the seed, so reading Redis does not let anyone resume a session.
//!
//! Change plans (crates/server/src/plan.rs, another branch) should use the same store: a plan
//! as JSON under [`Replicas::name`]`("plan", handle)`-style keys with [`SESSION_TTL`], written
//! when proposed and read/deleted when decided, so that approving on one replica a plan made
//! on another works.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use redis::AsyncCommands;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};
use rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes a shared key file must hold at least.
pub const MIN_SHARED_KEY_BYTES: usize = 32;
/// How long Redis keeps a session (its `initialize` and its `state`) after its last use.
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

const SEED_BYTES: usize = 16;
const TAG_BYTES: usize = 16;

/// The keys derived from the shared key, one per use.
#[derive(Clone)]
pub struct SharedKey {
    seal: [u8; 32],
    redact: [u8; 32],
    names: [u8; 32],
}

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKey(<hidden>)")
    }
}

/// What replicas share: the key and the Redis connection.
pub struct Replicas {
    key: SharedKey,
    redis: redis::aio::ConnectionManager,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Replicas { key: <hidden>, .. }")
    }
}

impl std::ops::Deref for Replicas {
    type Target = SharedKey;

    fn deref(&self) -> &SharedKey {
        &self.key
    }
}

/// Why replicas cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicasError {
    /// The shared key is too short.
    #[error(
        "the shared key holds {0} bytes, fewer than {MIN_SHARED_KEY_BYTES}: put at least {MIN_SHARED_KEY_BYTES} random bytes in the file (for example `head -c 32 /dev/urandom | base64`), the same file on every replica"
    )]
    ShortKey(usize),
    /// Redis could not be reached.
    #[error(
        "cannot reach Redis at {url}: {reason}. Replicas keep their sessions in Redis: check --redis-url (redis://HOST:PORT/DB) and that Redis is running"
    )]
    Redis {
        /// The URL given, without its password.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// The URL as it may be logged: the password replaced.
fn redacted_url(url: &str) -> String {
    match url.split_once("://").zip(url.rsplit_once('@')) {
        Some(((scheme, _), (_, host))) => format!("{scheme}://***@{host}"),
        None => url.to_string(),
    }
}

impl Replicas {
    /// Connects to Redis with a shared key (the bytes of `--shared-key-file`).
    pub async fn connect(
        shared_key: &[u8],
        redis_url: &str,
    ) -> Result<Arc<Replicas>, ReplicasError> {
        let key = SharedKey::new(shared_key)?;
        let failed = |e: redis::RedisError| ReplicasError::Redis {
            url: redacted_url(redis_url),
            reason: e.to_string(),
        };
        let client = redis::Client::open(redis_url).map_err(failed)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(5))
            // Reconnects after a Redis restart: about 1 s, then 2 s (the crate's default factor
            // of 100 would wait a minute), so that a request fails soon rather than hangs.
            .set_factor(2)
            .set_max_delay(2000)
            .set_number_of_retries(2);
        let mut redis = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(failed)?;
        let _: () = redis::cmd("PING")
            .query_async(&mut redis)
            .await
            .map_err(failed)?;
        Ok(Arc::new(Replicas { key, redis }))
    }

    fn connection(&self) -> redis::aio::ConnectionManager {
        self.redis.clone()
    }
}

impl SharedKey {
    /// The keys derived from the bytes of `--shared-key-file` (surrounding whitespace ignored).
    pub fn new(shared_key: &[u8]) -> Result<SharedKey, ReplicasError> {
        let key = shared_key.trim_ascii();
        if key.len() < MIN_SHARED_KEY_BYTES {
            return Err(ReplicasError::ShortKey(key.len()));
        }
        Ok(SharedKey {
            seal: derive(key, b"kubecode session handle v1"),
            redact: derive(key, b"kubecode redaction key v1"),
            names: derive(key, b"kubecode redis names v1"),
        })
    }

    /// A new sealed session handle: a random seed and its tag, base64url.
    pub fn mint(&self) -> String {
        let seed: [u8; SEED_BYTES] = rand::rng().random();
        let mut mac = HmacSha256::new_from_slice(&self.seal).unwrap_or_else(|_| unreachable!());
        mac.update(&seed);
        let tag = mac.finalize().into_bytes();
        let mut handle = seed.to_vec();
        handle.extend_from_slice(&tag[..TAG_BYTES]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(handle)
    }

    /// The seed of a handle this key sealed; `None` for anything else (altered, forged, from
    /// another key, or not a handle at all).
    pub fn open(&self, handle: &str) -> Option<[u8; SEED_BYTES]> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(handle)
            .ok()?;
        if bytes.len() != SEED_BYTES + TAG_BYTES {
            return None;
        }
        let (seed, tag) = bytes.split_at(SEED_BYTES);
        let mut mac = HmacSha256::new_from_slice(&self.seal).ok()?;
        mac.update(seed);
        // Constant time.
        mac.verify_truncated_left(tag).ok()?;
        seed.try_into().ok()
    }

    /// The redaction key of the session a handle names, the same on every replica.
    pub fn redaction_key(&self, handle: &str) -> Option<[u8; 32]> {
        let seed = self.open(handle)?;
        let mut label = b"redact:".to_vec();
        label.extend_from_slice(&seed);
        Some(derive(&self.redact, &label))
    }

    /// The Redis key of one kind of thing (`session`, `state`, `plan`) of the session a handle
    /// names: an HMAC of its seed, so that Redis holds no handle.
    pub fn name(&self, kind: &str, handle: &str) -> Option<String> {
        let seed = self.open(handle)?;
        let mut label = kind.as_bytes().to_vec();
        label.push(b':');
        label.extend_from_slice(&seed);
        let digest = derive(&self.names, &label);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("kubecode:{kind}:{hex}"))
    }
}

impl Replicas {
    /// A session's `state` entries as last stored (empty when there are none), refreshing
    /// their TTL.
    pub(crate) async fn load_state(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        let mut redis = self.connection();
        let text: Option<String> = redis::cmd("GETEX")
            .arg(name)
            .arg("EX")
            .arg(SESSION_TTL.as_secs())
            .query_async(&mut redis)
            .await
            .map_err(|e| format!("cannot read the session's state from Redis: {e}; try again"))?;
        match text {
            None => Ok(BTreeMap::new()),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| format!("the session's state in Redis is not readable ({e}); delete its keys with state.delete or start a new session")),
        }
    }

    /// Stores a session's `state` entries (deletes the key when there are none).
    pub(crate) async fn store_state(
        &self,
        name: &str,
        entries: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let mut redis = self.connection();
        let written: redis::RedisResult<()> = if entries.is_empty() {
            redis.del(name).await
        } else {
            let text = serde_json::to_string(entries).unwrap_or_default();
            redis.set_ex(name, text, SESSION_TTL.as_secs()).await
        };
        written.map_err(|e| {
            format!("the program ran, but its state could not be saved to Redis: {e}; run the state.set calls again")
        })
    }
}

/// rmcp's store of sessions' `initialize` parameters, in Redis. An id that does not open is
/// unknown without a Redis round trip.
#[derive(Debug, Clone)]
pub struct RedisSessionStore {
    replicas: Arc<Replicas>,
}

impl RedisSessionStore {
    /// The store of these replicas.
    pub fn new(replicas: Arc<Replicas>) -> RedisSessionStore {
        RedisSessionStore { replicas }
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(name) = self.replicas.name("session", session_id) else {
            return Ok(None);
        };
        let mut redis = self.replicas.connection();
        let text: Option<String> = redis::cmd("GETEX")
            .arg(&name)
            .arg("EX")
            .arg(SESSION_TTL.as_secs())
            .query_async(&mut redis)
            .await?;
        match text {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let Some(name) = self.replicas.name("session", session_id) else {
            return Err(
                format!("refusing to store session {session_id:?}: not a sealed handle").into(),
            );
        };
        let text = serde_json::to_string(state)?;
        let mut redis = self.replicas.connection();
        let _: () = redis.set_ex(name, text, SESSION_TTL.as_secs()).await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let mut redis = self.replicas.connection();
        for kind in ["session", "state"] {
            if let Some(name) = self.replicas.name(kind, session_id) {
                let _: () = redis.del(name).await?;
            }
        }
        Ok(())
    }
}

/// rmcp's in-memory session manager, minting sealed handles when replicas share a key and
/// treating ids that do not open as unknown.
#[derive(Debug, Default)]
pub struct SealedSessions {
    inner: LocalSessionManager,
    replicas: Option<Arc<Replicas>>,
}

impl SealedSessions {
    /// Sessions sealed with the replicas' key, or plain local sessions without one.
    pub fn new(replicas: Option<Arc<Replicas>>) -> SealedSessions {
        SealedSessions {
            inner: LocalSessionManager::default(),
            replicas,
        }
    }

    fn opens(&self, id: &SessionId) -> bool {
        self.replicas
            .as_ref()
            .is_none_or(|r| r.open(id.as_ref()).is_some())
    }
}

type LocalError = <LocalSessionManager as SessionManager>::Error;

impl SessionManager for SealedSessions {
    type Error = LocalError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let Some(replicas) = &self.replicas else {
            return self.inner.create_session().await;
        };
        // A fresh handle is unknown to the local map (128 random bits), so it is created.
        loop {
            let id: SessionId = replicas.mint().into();
            if let RestoreOutcome::Restored(transport) =
                self.inner.restore_session(id.clone()).await?
            {
                return Ok((id, transport));
            }
        }
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        if !self.opens(id) {
            return Ok(false);
        }
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<
        impl futures_util::Stream<Item = ServerSseMessage> + Send + Sync + 'static,
        Self::Error,
    > {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<
        impl futures_util::Stream<Item = ServerSseMessage> + Send + Sync + 'static,
        Self::Error,
    > {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<
        impl futures_util::Stream<Item = ServerSseMessage> + Send + Sync + 'static,
        Self::Error,
    > {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        if !self.opens(&id) {
            return Ok(RestoreOutcome::NotSupported);
        }
        self.inner.restore_session(id).await
    }

    fn event_store(
        &self,
    ) -> Option<Arc<dyn rmcp::transport::streamable_http_server::session::store::EventStore>> {
        self.inner.event_store()
    }
}

/// Pending change plans in the shared store, so that a plan made on one replica can be added
/// to and applied on any: taken atomically (`GETDEL`), so it is decided on once across all
/// replicas. Keys are a hash of the plan id (the id is a capability within its session).
impl Replicas {
    fn plan_key(id: &str) -> String {
        use sha2::Digest;
        let digest = Sha256::digest(id.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("kubecode:plan:{hex}")
    }

    /// Stores a plan until it expires.
    pub(crate) async fn store_plan(&self, plan: &crate::plan::Plan) -> Result<(), String> {
        let left = (plan.expires_at - chrono::Utc::now()).num_seconds().max(1) as u64;
        let text = serde_json::to_string(plan).map_err(|e| e.to_string())?;
        let mut redis = self.connection();
        let written: redis::RedisResult<()> =
            redis.set_ex(Self::plan_key(&plan.id), text, left).await;
        written.map_err(|e| format!("the plan could not be stored in Redis: {e}; plan again"))
    }

    /// The plan, if it is still pending in the shared store.
    pub(crate) async fn load_plan(&self, id: &str) -> Result<Option<crate::plan::Plan>, String> {
        let mut redis = self.connection();
        let text: Option<String> = redis
            .get(Self::plan_key(id))
            .await
            .map_err(|e| format!("cannot read the plan from Redis: {e}; try again"))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Takes the plan out of the shared store: only one replica ever gets it.
    pub(crate) async fn take_plan(&self, id: &str) -> Result<Option<crate::plan::Plan>, String> {
        let mut redis = self.connection();
        let text: Option<String> = redis::cmd("GETDEL")
            .arg(Self::plan_key(id))
            .query_async(&mut redis)
            .await
            .map_err(|e| format!("cannot take the plan from Redis: {e}; try again"))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_open_only_unaltered_and_under_their_key() {
        let key = SharedKey::new(&[1; 32]).unwrap();
        let handle = key.mint();
        assert!(key.open(&handle).is_some());
        assert_ne!(handle, key.mint(), "each handle is new");
        for i in 0..handle.len() {
            let mut altered = handle.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(key.open(&altered).is_none(), "byte {i} altered: {altered}");
        }
        let other = SharedKey::new(&[2; 32]).unwrap();
        assert!(other.open(&handle).is_none(), "another key");
        assert!(key.open("").is_none() && key.open("not a handle").is_none());
    }

    #[test]
    fn derived_keys_agree_per_session_and_differ_across_sessions() {
        let a = SharedKey::new(b"0123456789abcdef0123456789abcdef\n").unwrap();
        let b = SharedKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let one = a.mint();
        let two = a.mint();
        assert_eq!(a.redaction_key(&one), b.redaction_key(&one));
        assert_ne!(a.redaction_key(&one), a.redaction_key(&two));
        assert_eq!(a.name("state", &one), b.name("state", &one));
        assert_ne!(a.name("state", &one), a.name("session", &one));
        assert!(
            !a.name("state", &one).unwrap().contains(&one),
            "Redis holds no handle"
        );
        assert!(matches!(
            SharedKey::new(b"short"),
            Err(ReplicasError::ShortKey(5))
        ));
    }
}
