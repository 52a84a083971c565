//! The crate's one error, [`Error`], grouped by what the caller can do ([`ErrorKind`]), and
//! [`ConfigError`], the detail of a configuration that is wrong (every problem at once, each
//! naming its field), which an [`Error`] of kind [`ErrorKind::Config`] carries as its cause.
//!
//! A single database's failure does not fail a run: it is a `failed` entry in the
//! [`RunReport`](crate::RunReport) carrying its [`Error`].

use std::fmt;
use std::path::PathBuf;

/// Something wrong with the configuration or the environment it names.
///
/// Every variant names the file and, where there is one, the field, says what is wrong and
/// how to fix it. Found before any network call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the expected shape.
    #[error("invalid config file {}{}: {source}", path.display(), at_field(field))]
    Parse {
        /// The file.
        path: PathBuf,
        /// The field path (`accounts[0].prefix`), empty when the text is not TOML at all.
        field: String,
        /// The parser's message, with line, column and the offending key.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The file parsed but some values are wrong.
    #[error("invalid config file {}:\n{}", path.display(), Problems(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// Environment variables that the file names are unset or empty.
    #[error("missing secrets for config file {}:\n{}", path.display(), Problems(problems))]
    MissingSecrets {
        /// The file.
        path: PathBuf,
        /// One problem per missing variable.
        problems: Vec<Problem>,
    },
    /// A configuration built in code (`Config::builder`) has wrong or missing values.
    #[error("invalid configuration:\n{}", Problems(problems))]
    InvalidValues {
        /// Every problem found, in the order a file would list them.
        problems: Vec<Problem>,
    },
    /// Secrets that a configuration names were not given (`Secrets::check`, `Engine::builder`).
    #[error("missing secrets:\n{}", Problems(problems))]
    SecretsNotGiven {
        /// One problem per missing secret.
        problems: Vec<Problem>,
    },
}

fn at_field(field: &str) -> String {
    if field.is_empty() || field == "." {
        String::new()
    } else {
        format!(", field {field}")
    }
}

/// One problem with one field of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The field path, e.g. `accounts[1].prefix`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub hint: String,
}

impl Problem {
    pub(crate) fn new(
        field: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.problem, self.hint)
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// Shorthand for results whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
type SharedError = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, grouped by what the caller can do about it.
///
/// [`ErrorKind::as_str`] is the stable snake_case word the `--json` report prints as
/// `error_kind`; new kinds may be added.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The configuration is invalid or incomplete (a file, or one built in code): fix it.
    /// [`Error::problems`] lists each field.
    Config,
    /// A selector, account or database name matches nothing configured (or several).
    NotConfigured,
    /// Credentials were refused or lack a permission: the D1 API token, the sink's keys.
    Unauthorized,
    /// The D1 account or database, or the backup asked for, does not exist.
    NotFound,
    /// The rate limit was hit and waiting within the retry policy did not help.
    RateLimited,
    /// Another export or import of the database is running, or another run holds its lease.
    Busy,
    /// A network failure, timeout or 5xx answer (from D1 or the sink) that outlasted the
    /// retries, or a signed URL that expired twice.
    Transient,
    /// D1 ran the export and it failed (its reason is in the message).
    ExportFailed,
    /// D1 ran the import and it failed; D1 leaves the database as it was.
    ImportFailed,
    /// The sink failed in a way that retrying will not fix.
    Storage,
    /// A dump or a stored object is not what it should be: it differs from its manifest,
    /// does not parse, is truncated, or does not restore.
    InvalidDump,
    /// The request was refused to protect data: a backup or target exists and was not
    /// forced, an import was not confirmed, or D1 would refuse what was asked.
    Refused,
    /// A local file or SQLite database could not be read or written.
    LocalIo,
    /// A server answered something this crate does not understand.
    Protocol,
    /// What was asked is beyond what the target can take as it is (a statement longer than
    /// D1 accepts); nothing was changed.
    Unsupported,
    /// The caller's own time limit ran out.
    TimedOut,
    /// The caller cancelled the work before it completed; nothing was left at a final key.
    Cancelled,
}

impl ErrorKind {
    /// The stable snake_case word for this kind (`error_kind` in the JSON report).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::NotConfigured => "not_configured",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::Busy => "busy",
            Self::Transient => "transient",
            Self::ExportFailed => "export_failed",
            Self::ImportFailed => "import_failed",
            Self::Storage => "storage",
            Self::InvalidDump => "invalid_dump",
            Self::Refused => "refused",
            Self::LocalIo => "local_io",
            Self::Protocol => "protocol",
            Self::Unsupported => "unsupported",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the same work may succeed later without any change: true for
    /// [`Transient`](Self::Transient), [`RateLimited`](Self::RateLimited),
    /// [`Busy`](Self::Busy) and [`Cancelled`](Self::Cancelled).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Transient | Self::RateLimited | Self::Busy | Self::Cancelled
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The error of every fallible operation in this crate, and the typed cause of a failed
/// database in a [`RunReport`](crate::RunReport).
///
/// The message says what failed, in library terms; the [`source`](std::error::Error::source)
/// chain keeps the cause (a [`d1_export::Error`], an [`r2_sink::Error`], a [`ConfigError`], an
/// I/O or SQLite error), so a caller can downcast to it. Neither ever contains a secret.
/// Cloning is cheap: the cause is shared.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<SharedError>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Through the `Arc` to the cause itself, so callers can downcast it.
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// An error of `kind` with `message` (what failed, and what the caller can do).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(SharedError::from(source.into()));
        self
    }

    /// Prefixes the message with what was being done.
    #[must_use]
    pub fn context(mut self, doing: impl fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// A local I/O failure; `message` names the file and what was being done.
    pub(crate) fn local_io(message: impl Into<String>, source: std::io::Error) -> Self {
        Self::new(ErrorKind::LocalIo, message).with_source(source)
    }

    /// The caller cancelled before the work completed.
    pub(crate) fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, CANCELLED)
    }

    /// What went wrong, grouped by what the caller can do.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the same work may succeed later without any change (see
    /// [`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The configuration problems, one per field, when the kind is [`ErrorKind::Config`] and
    /// the cause is a [`ConfigError`] that lists them; empty otherwise.
    pub fn problems(&self) -> &[Problem] {
        match self
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<ConfigError>())
        {
            Some(
                ConfigError::Invalid { problems, .. }
                | ConfigError::MissingSecrets { problems, .. }
                | ConfigError::InvalidValues { problems }
                | ConfigError::SecretsNotGiven { problems },
            ) => problems,
            _ => &[],
        }
    }

    /// The message followed by every cause whose text it does not already hold.
    pub fn chain(&self) -> String {
        error_chain(self)
    }

    /// The message alone, without the kind or the causes.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a cancelled database's error says.
pub(crate) const CANCELLED: &str =
    "cancelled before the backup completed; nothing was written at the key";

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::new(ErrorKind::Config, error.to_string()).with_source(error)
    }
}

impl From<d1_export::Error> for Error {
    fn from(error: d1_export::Error) -> Self {
        use d1_export::ErrorKind as D;
        let kind = match error.kind() {
            D::Unauthorized => ErrorKind::Unauthorized,
            D::NotFound => ErrorKind::NotFound,
            D::RateLimited => ErrorKind::RateLimited,
            D::ExportInProgress => ErrorKind::Busy,
            D::ImportFailed => ErrorKind::ImportFailed,
            D::UrlExpired | D::Transient => ErrorKind::Transient,
            D::TimedOut => ErrorKind::TimedOut,
            D::ExportFailed | D::VirtualTablesUnsupported => ErrorKind::ExportFailed,
            // A database name in use: creating it is refused, as a target that exists is.
            D::AlreadyExists => ErrorKind::Refused,
            // Protocol includes `OutcomeUnknown` (a create or restore that may or may not have
            // happened): never Transient, which would invite a blind retry.
            _ => ErrorKind::Protocol,
        };
        Self::new(kind, error.to_string()).with_source(error)
    }
}

impl From<r2_sink::Error> for Error {
    fn from(error: r2_sink::Error) -> Self {
        use r2_sink::ErrorKind as S;
        let kind = match error.kind() {
            S::PermissionDenied => ErrorKind::Unauthorized,
            S::Transient => ErrorKind::Transient,
            S::InvalidConfig => ErrorKind::Config,
            S::NotFound => ErrorKind::NotFound,
            S::AlreadyExists | S::PreconditionFailed => ErrorKind::Busy,
            _ => ErrorKind::Storage,
        };
        Self::new(kind, error.to_string()).with_source(error)
    }
}

/// Formats an error with its sources, skipping sources whose text the message already holds.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_words_and_retry_classes() {
        let check = |kind: ErrorKind, word: &str, retryable: bool| {
            assert_eq!(kind.as_str(), word);
            assert_eq!(Error::new(kind, "x").is_retryable(), retryable, "{kind:?}");
        };
        check(ErrorKind::Transient, "transient", true);
        check(ErrorKind::RateLimited, "rate_limited", true);
        check(ErrorKind::Busy, "busy", true);
        check(ErrorKind::Cancelled, "cancelled", true);
        check(ErrorKind::Unauthorized, "unauthorized", false);
        check(ErrorKind::NotFound, "not_found", false);
        check(ErrorKind::Config, "config", false);
        check(ErrorKind::InvalidDump, "invalid_dump", false);
        check(ErrorKind::Refused, "refused", false);
    }

    #[test]
    fn context_prefixes_and_chain_adds_new_causes_only() {
        let io = std::io::Error::other("disk full");
        let error = Error::local_io("cannot write a.sqlite", io).context("restoring");
        assert_eq!(error.to_string(), "restoring: cannot write a.sqlite");
        assert_eq!(error.chain(), "restoring: cannot write a.sqlite: disk full");
        assert_eq!(error.kind(), ErrorKind::LocalIo);
    }
}
