//! The error of a restore, grouped by what the caller can do about it.

use crate::error::Error;
use crate::restore::RestoreError;

#[cfg(doc)]
use super::Confirm;
use super::D1_MAX_STATEMENT_BYTES;
#[cfg(doc)]
use crate::options::Force;

/// Why a restore did not happen or did not finish. The target is as it was: no half-restored
/// file at the path, nothing imported into D1 (D1 leaves a database whose import failed
/// unchanged); only a [`RestoreBackupError::Cancelled`] import that D1 had begun ingesting
/// goes on on D1's side, as its message says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreBackupError {
    /// The configuration or the sink failed before anything was restored.
    #[error(transparent)]
    Engine(#[from] Error),
    /// The request cannot be carried out as given: the database matches no configured one or
    /// several, an unknown account, an account without an API token, a plan for another kind
    /// of target. Fix the request.
    #[error("{0}")]
    Usage(String),
    /// There is nothing to restore (no complete backup, of the date if one was given), or the
    /// target D1 database does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The target is protected: a non-empty file without [`Force::Yes`], a D1 import without
    /// [`Confirm::Yes`], or a file another program may be using.
    #[error("{0}")]
    Refused(String),
    /// The stored dump differs from its manifest (size or SHA-256): it cannot be trusted.
    #[error("{0}")]
    Integrity(String),
    /// Reading the stored dump failed.
    #[error("{0}")]
    Read(String),
    /// The dump does not restore into SQLite.
    #[error("the dump does not restore: {0}")]
    Dump(#[source] RestoreError),
    /// A statement is longer than D1 accepts; D1 would reject the whole import, so nothing
    /// was uploaded.
    #[error(
        "line {line}: a statement of {bytes} bytes{} is longer than D1's {D1_MAX_STATEMENT_BYTES}-byte statement limit, and D1 would reject the whole import; nothing was uploaded (restore it with --to-sqlite instead, or shorten that row)",
        table.as_ref().map(|t| format!(" (table {t})")).unwrap_or_default()
    )]
    StatementTooLarge {
        /// The line the statement starts on (from 1).
        line: u64,
        /// The table it writes or creates, when it names one.
        table: Option<String>,
        /// Its length in bytes.
        bytes: usize,
    },
    /// Writing the target failed (a file operation).
    #[error("{message}")]
    Target {
        /// What failed, naming the file.
        message: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// D1's import failed; D1 leaves a database whose import failed as it was.
    #[error("{0}")]
    Import(#[source] d1_export::Error),
    /// The caller cancelled the restore; the message says what state the target is in.
    #[error("{0}")]
    Cancelled(String),
}

impl RestoreBackupError {
    /// Whether the request itself is wrong or refused (fix the command, nothing was changed),
    /// as opposed to a restore that was attempted and failed.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Usage(_) | Self::Refused(_) => true,
            Self::Engine(error) => error.kind() != crate::error::ErrorKind::Storage,
            _ => false,
        }
    }
}
