//! Errors a caller (and, through it, a model) can act on: a kind to branch on and a message
//! that says what was wrong and what to do instead.

/// What kind of failure it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object or kind does not exist.
    NotFound,
    /// The credentials may not do this.
    Forbidden,
    /// The credentials were refused.
    Unauthorized,
    /// An argument is wrong.
    BadInput {
        /// The argument at fault.
        field: String,
    },
    /// The API server asked to slow down and retries ran out.
    Throttled,
    /// The API server or a feature of it cannot be reached.
    Unavailable,
    /// The call took too long.
    Timeout,
    /// A result would exceed a limit.
    LimitExceeded {
        /// The limit's name.
        limit: String,
        /// Its value.
        value: u64,
    },
    /// The API server refused the request for another reason: a 400 `BadRequest`, a 422
    /// `Invalid`, a 409 `Conflict`, ... The API's own `reason` is the code a caller sees, and
    /// the API's message is kept.
    Api {
        /// HTTP status.
        status: u16,
        /// The `reason` of the API's `Status` answer (`BadRequest`, `Invalid`, `Conflict`, ...).
        reason: String,
    },
}

impl ErrorKind {
    /// The short code a program can compare (`"NotFound"`, `"Forbidden"`, ...; the API's
    /// own reason, such as `"BadRequest"` or `"Invalid"`, for other refusals).
    pub fn code(&self) -> &str {
        match self {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::BadInput { .. } => "BadInput",
            ErrorKind::Throttled => "Throttled",
            ErrorKind::Unavailable => "Unavailable",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::LimitExceeded { .. } => "LimitExceeded",
            ErrorKind::Api { reason, .. } => reason,
        }
    }
}

/// A failed cluster call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ClusterError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What was wrong and what to do instead.
    pub message: String,
}

impl ClusterError {
    /// An error of a kind with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ClusterError {
        ClusterError {
            kind,
            message: message.into(),
        }
    }

    /// A bad argument.
    pub fn bad_input(field: &str, message: impl Into<String>) -> ClusterError {
        ClusterError::new(
            ErrorKind::BadInput {
                field: field.into(),
            },
            message,
        )
    }

    /// Something missing.
    pub fn not_found(message: impl Into<String>) -> ClusterError {
        ClusterError::new(ErrorKind::NotFound, message)
    }
}

/// Results of cluster calls.
pub type Result<T> = std::result::Result<T, ClusterError>;
