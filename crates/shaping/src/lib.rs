//! Shaping: what kubecode does to data at the boundary, before a model sees it.
//!
//! - [`Vault`] turns the values of Secrets into opaque `[secret:FINGERPRINT]` tokens (CONTRACT
//!   §3.5): an HMAC with a random per-session key, so equal values compare equal within a
//!   session and the token says nothing about the value.
//! - [`scrub`] and [`scrub_value`] remove credential-shaped strings (private keys, bearer tokens,
//!   JWTs, cloud access keys, passwords in URLs or assignments) wherever they come from.
//! - [`truncate`] cuts output at the limit with a note that says how to narrow the call.

mod scrub;
mod truncate;
mod vault;

pub use scrub::{scrub, scrub_value};
pub use truncate::{DEFAULT_OUTPUT_LIMIT, Truncated, truncate};
pub use vault::{TOKEN_PREFIX, Vault};
