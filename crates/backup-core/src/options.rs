//! What a run covers and how: the options a caller passes to [`Engine::run`](crate::Engine::run)
//! (and that verification and restores share).

#[cfg(feature = "sqlite")]
use std::path::PathBuf;

use chrono::NaiveDate;

use crate::selector::Selector;

/// What a run covers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// The date folder to write (the caller's "today" in UTC, or an override).
    pub date: NaiveDate,
    /// Databases to back up; empty means all configured ones.
    pub only: Vec<Selector>,
    /// Whether databases already backed up for `date` are backed up again.
    pub force: Force,
    /// Verify each database backed up by this run (restore, checks, record) before retention
    /// and the heartbeat; a backup that does not verify makes its database `failed`.
    #[cfg(feature = "sqlite")]
    pub verify: Option<VerifyOptions>,
    /// How every D1 database of this run is read, overriding `[run] export` and each
    /// database's `export` (none: as configured).
    pub export: Option<crate::config::ExportMode>,
}

/// Whether a run backs up again what is already backed up for its date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Force {
    /// Skip databases with a complete backup for the date (status `skipped`, no export).
    #[default]
    No,
    /// Export again; the new dump replaces the old one only once it is complete.
    Yes,
}

impl RunOptions {
    /// A run of every configured database into the folder for `date`.
    pub fn new(date: NaiveDate) -> Self {
        Self {
            date,
            only: Vec::new(),
            force: Force::No,
            #[cfg(feature = "sqlite")]
            verify: None,
            export: None,
        }
    }

    /// Verifies what the run backs up (`date` and `only` of `options` are ignored: the run's
    /// own date and databases are verified).
    #[cfg(feature = "sqlite")]
    #[must_use]
    pub fn verify(mut self, options: VerifyOptions) -> Self {
        self.verify = Some(options);
        self
    }

    /// Reads every D1 database of this run as `mode` says, whatever the config says.
    #[must_use]
    pub fn export(mut self, mode: crate::config::ExportMode) -> Self {
        self.export = Some(mode);
        self
    }

    /// Restricts the run to the databases matching `selectors`.
    #[must_use]
    pub fn only(mut self, selectors: impl IntoIterator<Item = Selector>) -> Self {
        self.only = selectors.into_iter().collect();
        self
    }

    /// Sets whether complete backups for the date are made again.
    #[must_use]
    pub fn force(mut self, force: Force) -> Self {
        self.force = force;
        self
    }
}

/// What to verify (feature `sqlite`).
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The backup date to verify; `None` takes each database's newest complete backup.
    pub date: Option<NaiveDate>,
    /// Databases to verify; empty means all configured ones.
    pub only: Vec<Selector>,
    /// Where scratch databases are restored (the caller's temporary directory; the library
    /// reads no environment). Each is deleted after its checks.
    pub scratch_dir: PathBuf,
    /// Also compare every table with the live database: through D1's query API for a D1
    /// database (it reads every row: budget for the query API's `rows_read`), or the source
    /// file for a local one.
    pub against_live: bool,
    /// Store each result as a verification record beside the manifest (default true).
    pub record: bool,
}

#[cfg(feature = "sqlite")]
impl VerifyOptions {
    /// Verifies every configured database's newest backup, restoring under `scratch_dir`.
    pub fn new(scratch_dir: impl Into<PathBuf>) -> Self {
        Self {
            date: None,
            only: Vec::new(),
            scratch_dir: scratch_dir.into(),
            against_live: false,
            record: true,
        }
    }

    /// Verifies the backups of `date` instead of the newest ones.
    #[must_use]
    pub fn date(mut self, date: NaiveDate) -> Self {
        self.date = Some(date);
        self
    }

    /// Restricts verification to the databases matching `selectors`.
    #[must_use]
    pub fn only(mut self, selectors: impl IntoIterator<Item = Selector>) -> Self {
        self.only = selectors.into_iter().collect();
        self
    }

    /// Also compares every table with the live database.
    #[must_use]
    pub fn against_live(mut self, yes: bool) -> Self {
        self.against_live = yes;
        self
    }

    /// Whether results are stored as verification records (default true).
    #[must_use]
    pub fn record(mut self, yes: bool) -> Self {
        self.record = yes;
        self
    }
}
