//! The error of reading a dump back: [`RestoreError`], shared by the statement reader
//! ([`DumpStatements`](super::DumpStatements)) and the restore into SQLite.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind};

/// Why a restore stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// Reading the dump failed.
    #[error("cannot read the dump: {0}")]
    Read(#[from] std::io::Error),
    /// SQLite refused a statement; the dump is not a faithful backup.
    #[error("line {line}: {message}: {snippet}")]
    Statement {
        /// The line the statement starts on (from 1).
        line: u64,
        /// SQLite's message.
        message: String,
        /// The statement's first 120 characters.
        snippet: String,
    },
    /// The dump writes ±Infinity as the bare word `Infinity`, which is not SQL: older D1
    /// exports (and wrangler 4.86) did; current ones write `9e999`/`-9e999`.
    #[error(
        "line {line}: the export wrote Infinity as a bare word (a known D1 export defect), \
         which no SQL reads back; take a new export (current D1 exports write 9e999 and \
         -9e999), or replace each bare Infinity in this dump with 9e999 (-Infinity with \
         -9e999), which restores the same value: {snippet}"
    )]
    BareInfinity {
        /// The line the statement starts on (from 1).
        line: u64,
        /// The statement around the first `Infinity`.
        snippet: String,
    },
    /// The dump is not SQL text a restore can run: not UTF-8, ending in `ROLLBACK`, or an
    /// endless statement.
    #[error("line {line}: {message}: {snippet}")]
    Malformed {
        /// The line the statement starts on (from 1).
        line: u64,
        /// What is wrong.
        message: String,
        /// The statement's first 120 characters.
        snippet: String,
    },
    /// The dump ended inside a statement (a truncated file).
    #[error("the dump ends inside a statement that starts on line {line}: {snippet}")]
    Truncated {
        /// Where the unfinished statement starts.
        line: u64,
        /// Its first 120 characters.
        snippet: String,
    },
    /// The database file to restore into could not be created (e.g. it already exists).
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite failed outside any statement of the dump (opening, committing).
    #[error("SQLite failed: {0}")]
    Sqlite(String),
}

impl RestoreError {
    /// The kind of [`Error`] this is: reading the dump or writing the database file failed
    /// ([`ErrorKind::LocalIo`]), or the dump does not parse or restore
    /// ([`ErrorKind::InvalidDump`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Read(_) | Self::Create { .. } | Self::Sqlite(_) => ErrorKind::LocalIo,
            Self::Statement { .. }
            | Self::BareInfinity { .. }
            | Self::Malformed { .. }
            | Self::Truncated { .. } => ErrorKind::InvalidDump,
        }
    }
}

impl From<RestoreError> for Error {
    fn from(error: RestoreError) -> Self {
        Error::new(error.kind(), error.to_string()).with_source(error)
    }
}

/// A statement's first 120 characters, on one line, for messages.
pub(crate) fn snippet(sql: &str) -> String {
    let line: String = sql.trim().chars().take(120).collect();
    line.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_say_whether_the_dump_or_the_disk_failed() {
        let io = RestoreError::Read(std::io::Error::other("gone"));
        let truncated = RestoreError::Truncated {
            line: 3,
            snippet: "INSERT".to_owned(),
        };
        let (io, truncated) = (Error::from(io), Error::from(truncated));
        assert_eq!(io.kind(), ErrorKind::LocalIo);
        assert_eq!(io.to_string(), "cannot read the dump: gone");
        assert_eq!(truncated.kind(), ErrorKind::InvalidDump);
        assert!(std::error::Error::source(&truncated).is_some());
        assert_eq!(snippet("  a\nb  "), "a b");
    }
}
