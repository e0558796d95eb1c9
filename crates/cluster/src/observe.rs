//! A hook for whoever watches the API traffic (the server's metrics): every request's
//! answer, every retry and every throttle, by verb and status code. The cluster crate only
//! reports; counting and exposing is the observer's business.

use std::sync::{Arc, OnceLock};

/// Receives the API traffic of every context of a [`crate::Cluster`].
///
/// `verb` is the HTTP method (`GET`); `code` the status code as text (`200`, `404`, `429`),
/// or `timeout` / `unreachable` when no answer came. Both come from small fixed sets, so an
/// observer may use them as metric labels.
pub trait ApiObserver: Send + Sync {
    /// One attempt finished (retried attempts included).
    fn request(&self, verb: &str, code: &str);
    /// An attempt that failed with `code` is tried again.
    fn retry(&self, verb: &str, code: &str);
    /// A request was throttled: by the API server (`code` `429`) or by the client-side
    /// rate limit (`code` `client`).
    fn throttle(&self, verb: &str, code: &str);
}

/// Where a cluster's transports find the observer (set once, possibly after the first
/// context was made).
pub(crate) type ObserverSlot = Arc<OnceLock<Arc<dyn ApiObserver>>>;
