//! Shaping: what kubecode does to data before a model sees it (CONTRACT §3.5).
//!
//! - [`Redactor`] enforces the redaction invariant on every value and text it is given:
//!   Secret values become opaque `[secret:FINGERPRINT]` tokens (an HMAC with a random
//!   per-session key, so equal values compare equal within a session and the token says
//!   nothing about the value), wherever a Secret appears and wherever a learned Secret value
//!   appears; credential-shaped strings are scrubbed.
//! - [`fit`] and [`fit_value`] cut output to the limit while keeping its JSON shape.
//!
//! The server calls both at one place, its call path; nothing else shapes data.

mod json_text;
mod manifest;
mod redact;
mod scrub;
mod truncate;
mod vault;

pub use redact::{MIN_SECRET_LEN, Redactor};
pub use scrub::{scrub, scrub_value};
pub use truncate::{DEFAULT_OUTPUT_LIMIT, Fitted, fit, fit_value};
pub use vault::TOKEN_PREFIX;
