//! Everything an [`Engine`] does, in one place: each command is a thin method here, and the
//! module named beside it holds the work. A reader looking for what the library offers reads
//! this file; one looking for how a command works follows the link.
//!
//! | command | module |
//! |---|---|
//! | [`run`](Engine::run), [`run_schedules`](Engine::run_schedules) | `run`, `job`, `schedule` |
//! | [`prune`](Engine::prune), [`prune_after`](Engine::prune_after) | `prune` (policy: `retention`) |
//! | [`list_backups`](Engine::list_backups), [`remote_databases`](Engine::remote_databases), [`check`](Engine::check) | `inspect` |
//! | [`status`](Engine::status) | `status` (from `catalog`'s listings) |
//! | `verify` (feature `sqlite`) | `verify`, `live` |
//! | `restore_plan`, `restore_to_sqlite`, `restore_to_d1` (feature `sqlite`) | `restore_backup` |
//! | [`send_heartbeat`](Engine::send_heartbeat) | `heartbeat` |

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::daemon::DaemonEvent;
use crate::engine::Engine;
use crate::error::Error;
use crate::heartbeat::Heartbeat;
use crate::inspect::{AccountDatabases, BackupListing, Check, ListDetail};
use crate::options::RunOptions;
#[cfg(feature = "sqlite")]
use crate::options::VerifyOptions;
use crate::progress::Progress;
use crate::prune::PruneOptions;
use crate::report::{HeartbeatOutcome, PruneReport, RunReport};
#[cfg(feature = "sqlite")]
use crate::restore_backup::{
    RestorePlan, RestoreReport, RestoreRequest, TimeTravelPlan, TimeTravelReport, TimeTravelRequest,
};
use crate::selector::Selector;
use crate::status::{StatusOptions, StatusReport};
#[cfg(feature = "sqlite")]
use crate::verify::Verification;

/// Backing up.
impl Engine {
    /// Backs up the selected databases.
    ///
    /// Each database is independent: one failure is recorded in the report (with its typed
    /// [`Error`] in [`DatabaseReport::cause`](crate::DatabaseReport::cause)) and the others go
    /// on. Cancelling `cancel` stops starting new databases and abandons running ones (their
    /// uploads are aborted, leaving nothing at their keys); the report then says
    /// `interrupted`. Returns `Err` only when the run cannot start (a selector in
    /// [`RunOptions::only`] that matches nothing, kind
    /// [`NotConfigured`](crate::ErrorKind::NotConfigured)).
    pub async fn run(
        &self,
        options: &RunOptions,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<RunReport, Error> {
        crate::run::run(self, options, progress, cancel).await
    }

    /// Runs the configured schedules until `stop` is cancelled. A failed run is reported and
    /// the loop goes on. A schedule whose time passed while another ran fires once, at once.
    /// Returns whether a run had to be cut short after the grace period.
    ///
    /// Fire times come from the engine's [`clock`](Engine::clock); the loop sleeps with
    /// `tokio::time` until the next one.
    pub async fn run_schedules(
        &self,
        progress: &dyn Progress,
        stop: &CancellationToken,
        grace: Duration,
        events: &(dyn Fn(DaemonEvent<'_>) + Sync),
    ) -> bool {
        crate::daemon::run_schedules(self, progress, stop, grace, events).await
    }

    /// Writes `heartbeat` to every configured target. Never fails: each target's outcome is
    /// returned.
    pub async fn send_heartbeat(&self, heartbeat: &Heartbeat) -> Vec<HeartbeatOutcome> {
        crate::heartbeat::send_heartbeat(self, heartbeat).await
    }
}

/// Retention.
impl Engine {
    /// Applies retention to the selected databases, standalone.
    ///
    /// A prune that deletes also aborts the multipart uploads that dead runs recorded in
    /// the lapsed leases of the configured databases.
    pub async fn prune(&self, options: &PruneOptions) -> Result<PruneReport, Error> {
        if options.mode == crate::prune::PruneMode::Delete {
            crate::lease::abort_orphaned_uploads(self).await;
        }
        let mut report = crate::prune::prune(self, options).await?;
        for index in 0..self.replicas().len() {
            let replica = self.for_replica(index);
            let pruned = crate::prune::prune(&replica, options).await?;
            report.add_replica(self.replicas()[index].label.clone(), pruned);
        }
        Ok(report)
    }

    /// Applies retention after a run, only to the databases whose backup it completed (or
    /// found complete): a database that failed keeps every old backup. Each replica is
    /// pruned too, with its own `keep_days`.
    pub async fn prune_after(&self, report: &RunReport) -> PruneReport {
        let mut pruned = crate::prune::prune_after(self, report).await;
        for index in 0..self.replicas().len() {
            let replica = self.for_replica(index);
            let on_replica = crate::prune::prune_after(&replica, report).await;
            pruned.add_replica(self.replicas()[index].label.clone(), on_replica);
        }
        pruned
    }
}

/// Read-only questions: what is backed up, what D1 has, whether the configuration works.
impl Engine {
    /// Every backup of the selected databases, complete or not, by account, database, date.
    ///
    /// Decided from one listing per account ([`ListDetail::Listing`]): `sha256` is filled
    /// only where a manifest had to be read; see [`list_backups_with`](Self::list_backups_with).
    pub async fn list_backups(&self, only: &[Selector]) -> Result<Vec<BackupListing>, Error> {
        crate::inspect::list_backups(self, only, ListDetail::Listing).await
    }

    /// [`list_backups`](Self::list_backups), reading what `detail` asks for beyond the
    /// listing ([`ListDetail::Manifests`]: every complete backup's manifest, for `sha256`).
    pub async fn list_backups_with(
        &self,
        only: &[Selector],
        detail: ListDetail,
    ) -> Result<Vec<BackupListing>, Error> {
        crate::inspect::list_backups(self, only, detail).await
    }

    /// The freshness of the selected databases' newest complete backups: for each, the
    /// backup's date, finish time, age, size, verification and encryption, and whether it
    /// is recent enough ([`StatusOptions::max_age`], else the schedules, else 26 hours; see
    /// [`StatusReport`]). Reads one listing per account, plus the verification record of a
    /// newest backup that has one; never exports anything.
    pub async fn status(&self, options: &StatusOptions) -> Result<StatusReport, Error> {
        crate::status::status(self, options).await
    }

    /// The D1 databases each account's token can see, marking the configured ones, and the
    /// configured ones it cannot see. Sizes come from one info call per database.
    pub async fn remote_databases(&self) -> Vec<AccountDatabases> {
        crate::inspect::remote_databases(self).await
    }

    /// Checks, without exporting anything, that each token can list its databases, that each
    /// configured database exists (local files included), and that the sink is reachable and
    /// writable (a probe object is put, read back and deleted).
    pub async fn check(&self) -> Vec<Check> {
        crate::inspect::check(self).await
    }
}

/// Proving backups (feature `sqlite`).
#[cfg(feature = "sqlite")]
impl Engine {
    /// Verifies the selected databases' backups: size and SHA-256 against the manifest, a
    /// restore into a scratch SQLite file, `integrity_check`, `foreign_key_check` and rows per
    /// table, and with [`VerifyOptions::against_live`] a row-by-row comparison with the live
    /// database. Records what it found beside the manifest unless told not to. Never exports
    /// anything.
    pub async fn verify(&self, options: &VerifyOptions) -> Result<Vec<Verification>, Error> {
        crate::verify::verify(self, options).await
    }
}

/// Restoring (feature `sqlite`).
#[cfg(feature = "sqlite")]
impl Engine {
    /// Decides a restore without changing anything: finds the backup (reading the sink),
    /// and checks the target (the file's state; for D1, the database through the list and
    /// info endpoints). Refusals are in [`RestorePlan::refusals`], not errors, so a dry run
    /// can show them; errors are what makes any plan impossible.
    pub async fn restore_plan(&self, request: &RestoreRequest) -> Result<RestorePlan, Error> {
        crate::restore_backup::restore_plan(self, request).await
    }

    /// Restores the plan's backup into its SQLite file.
    ///
    /// The dump is streamed from the sink (never held whole), hashed on the way and restored
    /// into `<path>.partial-<pid>` beside the file; only when the size and SHA-256 match the
    /// manifest and the restore succeeded is it renamed onto the path (atomically replacing
    /// a file there, which the plan allows only with [`Force::Yes`](crate::Force::Yes)). On
    /// any failure or on cancellation the partial file is removed and the path is left as
    /// it was.
    pub async fn restore_to_sqlite(
        &self,
        plan: &RestorePlan,
        cancel: &CancellationToken,
    ) -> Result<RestoreReport, Error> {
        crate::restore_backup::sqlite::restore_to_sqlite(self, plan, cancel).await
    }

    /// Imports the plan's backup into its D1 database through D1's import API, in batches
    /// (see [`D1Import`](crate::D1Import)).
    ///
    /// The dump is streamed from the sink, hashed on the way, decompressed and staged in the
    /// request's scratch directory, without its `BEGIN`/`COMMIT` statements (D1's import
    /// rejects them) and without the objects the request excludes. Nothing is uploaded
    /// unless the whole dump matches its manifest and D1 would take every statement: a name
    /// D1 refuses (`_cf_…` in any case) or a statement over
    /// [`D1_MAX_STATEMENT_BYTES`](crate::D1_MAX_STATEMENT_BYTES) that cannot be split (a long
    /// `CREATE`) is an [`ErrorKind::Refused`](crate::ErrorKind::Refused) error whose source is
    /// an [`ImportRefusal`](crate::ImportRefusal) naming every one; a row over the limit is
    /// rewritten into statements that fit and give the same row. With
    /// [`NewDatabase`](crate::NewDatabase) the database is created first, once the dump
    /// checked out.
    ///
    /// Each batch is an import of its own, checked before the next; the progress is kept in
    /// the scratch directory, so that [`Existing::Resume`](crate::Existing::Resume) continues
    /// an import that failed or was cancelled from the batch that did not complete.
    /// Cancellation before a batch's upload finished leaves that batch out; once D1 began
    /// ingesting one, it finishes (or fails) on its own. The staged files are always removed.
    pub async fn restore_to_d1(
        &self,
        plan: &RestorePlan,
        cancel: &CancellationToken,
    ) -> Result<RestoreReport, Error> {
        crate::restore_backup::d1::restore_to_d1(self, plan, cancel, &()).await
    }

    /// [`restore_to_d1`](Self::restore_to_d1), reporting each batch to `progress`
    /// ([`EventKind::ImportBatch`](crate::EventKind::ImportBatch) and
    /// [`EventKind::ImportBatchDone`](crate::EventKind::ImportBatchDone), naming the target
    /// database).
    pub async fn restore_to_d1_with_progress(
        &self,
        plan: &RestorePlan,
        cancel: &CancellationToken,
        progress: &dyn Progress,
    ) -> Result<RestoreReport, Error> {
        crate::restore_backup::d1::restore_to_d1(self, plan, cancel, progress).await
    }

    /// Checks an import into D1 without uploading anything: reads and stages the plan's
    /// backup as [`restore_to_d1`](Self::restore_to_d1) would, and reports the batches,
    /// statements, split rows and excluded objects it would send, or the same refusal.
    pub async fn check_d1_import(
        &self,
        plan: &RestorePlan,
        cancel: &CancellationToken,
    ) -> Result<RestoreReport, Error> {
        crate::restore_backup::d1::check_import(self, plan, cancel).await
    }

    /// Decides a Time Travel restore without changing anything: the live database, the
    /// bookmark (the backup's, or the one given) and every reason to refuse it (no
    /// confirmation, a local database, a backup without a bookmark or older than
    /// `[cloudflare] time_travel_days`, a database replaced since the backup).
    pub async fn time_travel_plan(
        &self,
        request: &TimeTravelRequest,
    ) -> Result<TimeTravelPlan, Error> {
        crate::restore_backup::time_travel::plan(self, request).await
    }

    /// Takes the plan's live D1 database back, in place, to the plan's bookmark. The report's
    /// `previous_bookmark` undoes it.
    pub async fn time_travel(&self, plan: &TimeTravelPlan) -> Result<TimeTravelReport, Error> {
        crate::restore_backup::time_travel::restore(self, plan).await
    }
}
