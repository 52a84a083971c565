//! The crate's one error type, grouped by what a caller can do about it.

use std::error::Error as StdError;
use std::fmt;

/// A specialized `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong, grouped by what the caller can do about it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// A conditional create found an object already at the key.
    AlreadyExists,
    /// A precondition other than "absent" did not hold.
    PreconditionFailed,
    /// The body stream given to a put returned an error; nothing was stored.
    SourceFailed,
    /// The sink was configured wrongly (bad endpoint, missing bucket, ...).
    InvalidConfig,
    /// The caller passed an argument the sink cannot accept (a malformed key, an empty range).
    InvalidInput,
    /// The credentials were refused or lack permission.
    PermissionDenied,
    /// A failure that may go away if the whole operation is tried again later
    /// (network errors, timeouts, 5xx and 429 answers after the built-in retries).
    Transient,
    /// Any other failure; retrying the same operation will not help.
    Permanent,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::AlreadyExists => "already exists",
            Self::PreconditionFailed => "precondition failed",
            Self::SourceFailed => "source stream failed",
            Self::InvalidConfig => "invalid configuration",
            Self::InvalidInput => "invalid input",
            Self::PermissionDenied => "permission denied",
            Self::Transient => "transient failure",
            Self::Permanent => "failure",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The error of every fallible operation in this crate.
///
/// `Display` names the operation and the key, never credentials. The underlying cause,
/// when there is one, is available through [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("{context}: {kind}")]
pub struct Error {
    kind: ErrorKind,
    context: String,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// Builds an error of `kind`; `context` says what was being done (e.g. `put "a/b"`).
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        Self {
            kind,
            context: context.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether retrying the whole operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// Converts an `object_store` error, classifying it.
    pub(crate) fn from_store(context: impl Into<String>, error: object_store::Error) -> Self {
        let kind = classify(&error);
        Self::new(kind, context).with_source(error)
    }

    /// An error for a failed body stream.
    pub(crate) fn source_failed(context: impl Into<String>, error: std::io::Error) -> Self {
        Self::new(ErrorKind::SourceFailed, context).with_source(error)
    }
}

fn classify(error: &object_store::Error) -> ErrorKind {
    use object_store::Error as E;
    match error {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::AlreadyExists { .. } => ErrorKind::AlreadyExists,
        E::Precondition { .. } => ErrorKind::PreconditionFailed,
        E::InvalidPath { .. } => ErrorKind::InvalidInput,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        E::UnknownConfigurationKey { .. } => ErrorKind::InvalidConfig,
        E::Generic { source, .. } if looks_transient(source.as_ref()) => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    }
}

/// `object_store` hides its HTTP error type, so classify by walking the cause chain: a
/// transport error, or a 5xx / 429 answer that survived the built-in retries, is transient.
fn looks_transient(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            return matches!(
                http.kind(),
                K::Connect | K::Request | K::Timeout | K::Interrupted
            );
        }
        if e.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        let text = e.to_string();
        if text.contains("status code: 5") || text.contains("status code: 429") {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(message: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: message.to_owned().into(),
        }
    }

    fn check(error: object_store::Error, expected: ErrorKind) {
        let error = Error::from_store("put \"k\"", error);
        assert_eq!(error.kind(), expected, "{error}");
    }

    #[test]
    fn classifies_store_errors() {
        check(
            object_store::Error::NotFound {
                path: "k".into(),
                source: "gone".into(),
            },
            ErrorKind::NotFound,
        );
        check(
            object_store::Error::AlreadyExists {
                path: "k".into(),
                source: "there".into(),
            },
            ErrorKind::AlreadyExists,
        );
        check(
            generic("Server returned non-2xx status code: 503 Service Unavailable"),
            ErrorKind::Transient,
        );
        check(
            generic("Server returned non-2xx status code: 400 Bad Request"),
            ErrorKind::Permanent,
        );
    }

    #[test]
    fn display_names_context_and_kind() {
        let error = Error::new(ErrorKind::SourceFailed, "put \"a/b\"");
        assert_eq!(error.to_string(), "put \"a/b\": source stream failed");
        assert!(!error.is_retryable());
        assert!(Error::new(ErrorKind::Transient, "x").is_retryable());
    }
}
