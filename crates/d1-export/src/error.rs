//! The crate's one public error type, grouped by what a caller can do.

use std::time::Duration;

/// Shorthand for results whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, grouped by what the caller can do about it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The token was refused (401) or lacks a permission (403): fix the token.
    Unauthorized,
    /// The account, database or object does not exist (404, D1 code 7404).
    NotFound,
    /// The account-wide rate limit was hit and waiting did not help within
    /// the retry policy; see [`Error::retry_after`].
    RateLimited,
    /// Another export or import of this database is running. Retry later or
    /// set [`ExportOptions::wait_if_busy`](crate::ExportOptions::wait_if_busy).
    ExportInProgress,
    /// The export ran and failed; [`Error::server_message`] has D1's reason.
    ExportFailed,
    /// The import ran and failed; [`Error::server_message`] has D1's reason.
    ImportFailed,
    /// The database has a virtual table (e.g. FTS5), which D1 cannot export.
    /// Export named real tables with [`DumpOptions::tables`](crate::DumpOptions::tables).
    VirtualTablesUnsupported,
    /// The signed URL expired or was refused: start a fresh export.
    UrlExpired,
    /// A network failure, timeout or 5xx that outlasted the retry policy.
    Transient,
    /// The server answered something this client does not understand.
    Protocol,
    /// The caller passed something invalid (bad URL, SQL rejected with 400).
    InvalidInput,
    /// The caller's own time limit ([`ExportOptions::max_wait`](crate::ExportOptions::max_wait)) ran out.
    TimedOut,
    /// What was asked to be created exists already (D1 code 7502: a database of that name).
    /// Pick another name, or use the existing one.
    AlreadyExists,
    /// A request that changes something (creating a database, a Time Travel restore) was
    /// sent, and the connection failed or the server answered 5xx before the outcome was
    /// known: it may or may not have taken effect. Not retryable as such: look at the
    /// current state first ([`D1Client::database_info`](crate::D1Client::database_info),
    /// [`D1Client::current_bookmark`](crate::D1Client::current_bookmark)).
    OutcomeUnknown,
}

/// An error from the D1 client.
///
/// The message says what failed and what to do. It never contains the API
/// token or a signed URL's query string.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    api_code: Option<i64>,
    server_message: Option<String>,
    retry_after: Option<Duration>,
    /// Set when the request never left this machine (a connect failure): retrying it is
    /// safe even for requests that change something.
    unsent: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            api_code: None,
            server_message: None,
            retry_after: None,
            unsent: false,
            source: None,
        }
    }

    /// Wraps a transport error. The URL is stripped from it first, since a
    /// signed URL's query string is a secret.
    pub(crate) fn transport(
        kind: ErrorKind,
        message: impl Into<String>,
        err: reqwest::Error,
    ) -> Self {
        Self::new(kind, message).with_source(err.without_url())
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn with_api_code(mut self, code: Option<i64>) -> Self {
        self.api_code = code;
        self
    }

    pub(crate) fn with_server_message(mut self, message: Option<String>) -> Self {
        self.server_message = message;
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub(crate) fn unsent(mut self) -> Self {
        self.unsent = true;
        self
    }

    /// Whether the request that failed never reached the server.
    pub(crate) fn was_unsent(&self) -> bool {
        self.unsent
    }

    /// The same error with another kind and message; the status, API code, server message
    /// and source stay.
    pub(crate) fn reclassify(mut self, kind: ErrorKind, message: impl Into<String>) -> Self {
        self.kind = kind;
        self.message = message.into();
        self
    }

    /// Prefixes the message with what the client was doing.
    pub(crate) fn context(mut self, doing: &str) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// What went wrong, grouped by what the caller can do.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the same call may succeed later without any change.
    ///
    /// True for [`ErrorKind::Transient`], [`ErrorKind::RateLimited`] and
    /// [`ErrorKind::ExportInProgress`]. An expired URL is not retryable as
    /// such: start a fresh export instead.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Transient | ErrorKind::RateLimited | ErrorKind::ExportInProgress
        )
    }

    /// The HTTP status the server answered, if the error came from a response.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The Cloudflare API error code (e.g. 7404, 10000), if the body had one.
    pub fn api_code(&self) -> Option<i64> {
        self.api_code
    }

    /// The server's own message (e.g. why an export failed), if it gave one.
    pub fn server_message(&self) -> Option<&str> {
        self.server_message.as_deref()
    }

    /// How long the server asked to wait (from `retry-after`), on
    /// [`ErrorKind::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        let check =
            |kind, expected| assert_eq!(Error::new(kind, "x").is_retryable(), expected, "{kind:?}");
        check(ErrorKind::Transient, true);
        check(ErrorKind::RateLimited, true);
        check(ErrorKind::ExportInProgress, true);
        check(ErrorKind::Unauthorized, false);
        check(ErrorKind::NotFound, false);
        check(ErrorKind::UrlExpired, false);
        check(ErrorKind::ExportFailed, false);
        check(ErrorKind::Protocol, false);
        check(ErrorKind::AlreadyExists, false);
        check(ErrorKind::OutcomeUnknown, false);
    }

    #[test]
    fn context_prefixes_message() {
        let err =
            Error::new(ErrorKind::NotFound, "no such database").context("reading database info");
        assert_eq!(err.to_string(), "reading database info: no such database");
    }
}
