//! The one error of the SQLite dumper.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a SQLite dump failed.
///
/// Every variant about the database names its path. A failed dump may already have written part
/// of its output: discard it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteDumpError {
    /// The file could not be opened (missing, a directory, no permission).
    #[error(
        "cannot open SQLite database {}: {source}; pass the path of an existing database file \
         (wrangler keeps local D1 databases in .wrangler/state/v3/d1/miniflare-D1DatabaseObject/<id>.sqlite)",
        path.display()
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SQLite could not open the file, or the file is not a SQLite database.
    #[error(
        "{} is not a SQLite database that can be read: {source}; check that the path names the \
         database file itself (not its -wal or -shm file, nor an export)",
        path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: SqliteCause,
    },
    /// Reading the database failed part-way (locked, corrupt, an unreadable virtual table, …).
    #[error("reading SQLite database {} failed{}: {source}", path.display(), in_table(table.as_deref()))]
    Read {
        /// The file.
        path: PathBuf,
        /// The table being read, when there was one.
        table: Option<String>,
        /// SQLite's error.
        #[source]
        source: SqliteCause,
    },
    /// Writing the dump to the output failed.
    #[error("writing the SQLite dump failed: {source}")]
    Write {
        /// The output's error.
        #[source]
        source: std::io::Error,
    },
}

fn in_table(table: Option<&str>) -> String {
    table
        .map(|t| format!(" at table `{t}`"))
        .unwrap_or_default()
}

impl SqliteDumpError {
    /// Whether trying again later may succeed: the database was locked or busy (another process
    /// is writing or checkpointing). Everything else is permanent until something changes.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Read { source, .. } | Self::NotADatabase { source, .. } => matches!(
                source.0.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Self::Open { .. } | Self::Write { .. } => false,
        }
    }

    pub(crate) fn from_sqlite(path: &Path, table: Option<&str>, e: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::CannotOpen) => {
                Self::NotADatabase {
                    path,
                    source: SqliteCause(e),
                }
            }
            _ => Self::Read {
                path,
                table: table.map(str::to_owned),
                source: SqliteCause(e),
            },
        }
    }
}

impl From<SqliteDumpError> for crate::error::Error {
    /// [`ErrorKind::Busy`](crate::ErrorKind::Busy) when another process holds the database
    /// ([`SqliteDumpError::is_retryable`]), else [`ErrorKind::LocalIo`](crate::ErrorKind::LocalIo):
    /// the file, its reading or the output failed.
    fn from(error: SqliteDumpError) -> Self {
        let kind = if error.is_retryable() {
            crate::error::ErrorKind::Busy
        } else {
            crate::error::ErrorKind::LocalIo
        };
        Self::new(kind, error.to_string()).with_source(error)
    }
}

impl From<std::io::Error> for SqliteDumpError {
    fn from(source: std::io::Error) -> Self {
        Self::Write { source }
    }
}

/// SQLite's own error, kept opaque so the SQLite binding is not part of this crate's API.
pub struct SqliteCause(rusqlite::Error);

impl fmt::Debug for SqliteCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SqliteCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SqliteCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use crate::error::{Error, ErrorKind};

    #[test]
    fn a_file_that_cannot_be_opened_is_a_local_io_error() {
        let dir = std::env::temp_dir();
        let options = super::super::SqliteDumpOptions::default();
        let dumped = super::super::dump_sqlite(&dir, &options, &mut std::io::sink());
        let error = Error::from(dumped.err().unwrap_or_else(|| panic!("a directory dumped")));
        assert_eq!(error.kind(), ErrorKind::LocalIo);
        assert!(!error.is_retryable());
        assert!(
            error.to_string().starts_with("cannot open SQLite database"),
            "{error}"
        );
        assert!(std::error::Error::source(&error).is_some());
    }
}
