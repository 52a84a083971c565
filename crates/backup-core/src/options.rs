//! What a run covers and how: the options a caller passes to [`Engine::run`](crate::Engine::run)
//! (and that verification and restores share).

use chrono::NaiveDate;

use crate::plan::Selector;

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
    pub verify: Option<crate::verify::VerifyOptions>,
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
        }
    }

    /// Verifies what the run backs up (`date` and `only` of `options` are ignored: the run's
    /// own date and databases are verified).
    #[cfg(feature = "sqlite")]
    #[must_use]
    pub fn verify(mut self, options: crate::verify::VerifyOptions) -> Self {
        self.verify = Some(options);
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
