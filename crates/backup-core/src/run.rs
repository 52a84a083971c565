//! A backup run: every selected database exported and streamed into the sink, concurrently
//! within limits, each independent of the others.

use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::compression::Compression;
use crate::config::{DatabaseEntry, RunConfig};
use crate::engine::Engine;
use crate::existing;
use crate::heartbeat::Heartbeat;
use crate::lease::{Acquire, Lease};
use crate::local;
use crate::manifest::{
    self, MANIFEST_KIND, MANIFEST_VERSION, Manifest, ManifestDatabase, ManifestDump,
};
use crate::options::{Force, RunOptions};
use crate::plan::{self, Resolved, Target};
use crate::progress::{EventKind, Progress, ProgressEvent};
use crate::report::{DatabaseReport, RunReport, Status};
use crate::transfer;
use crate::error::{Error, ErrorKind};
use crate::layout;

impl Engine {
    /// Backs up the selected databases.
    ///
    /// Each database is independent: one failure is recorded in the report and the others go
    /// on. Cancelling `cancel` stops starting new databases and abandons running ones (their
    /// uploads are aborted, leaving nothing at their keys); the report then says
    /// `interrupted`. Returns `Err` only when the run cannot start (a `--only` selector that
    /// matches nothing).
    pub async fn run(
        &self,
        options: &RunOptions,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<RunReport, Error> {
        let started_at = Utc::now();
        let targets = plan::select(self.config(), &options.only)?;
        let resolved = tokio::select! {
            resolved = plan::resolve(&targets, self.clients()) => resolved,
            () = cancel.cancelled() => Resolved::new(),
        };
        let global = Semaphore::new(self.config().run.concurrency);
        let per_account: Vec<Semaphore> = self
            .config()
            .accounts
            .iter()
            .map(|_| Semaphore::new(self.config().run.per_account_concurrency))
            .collect();
        let jobs = targets.iter().map(|target| {
            let limits = Limits {
                global: &global,
                account: &per_account[target.account_index],
            };
            self.job(target, &resolved, options, limits, progress, cancel)
        });
        #[cfg_attr(not(feature = "sqlite"), allow(unused_mut))]
        let mut databases = join_all(jobs).await;
        #[cfg(feature = "sqlite")]
        if let Some(verify) = self.verify_options(options) {
            self.verify_after_run(options.date, &targets, &mut databases, &verify, cancel)
                .await;
        }
        let mut report = RunReport {
            date: options.date,
            databases,
            started_at,
            finished_at: Utc::now(),
            interrupted: cancel.is_cancelled(),
            prune: None,
            heartbeat: Vec::new(),
        };
        if self.config().retention.prune_after_run && !report.interrupted {
            report.prune = Some(self.prune_after(&report).await);
            report.finished_at = Utc::now();
        }
        report.heartbeat = self.send_heartbeat(&Heartbeat::of_run(&report)).await;
        Ok(report)
    }

    async fn job(
        &self,
        target: &Target<'_>,
        resolved: &Resolved,
        options: &RunOptions,
        limits: Limits<'_>,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> DatabaseReport {
        let account = target.account;
        let settings = Settings::new(&self.config().run, &target.entry);
        let key = layout::dump_key_for(
            &account.prefix,
            options.date,
            &target.entry.name,
            settings.compression,
        );
        let mut report = DatabaseReport::new(account, &target.entry.name, key);
        let emit = |kind: EventKind<'_>| {
            progress.event(&ProgressEvent {
                account: &account.name,
                database: &target.entry.name,
                kind,
            });
        };
        let database_id = match resolved.get(&(target.account_index, target.entry.name.clone())) {
            Some(Ok(id)) => id.clone(),
            Some(Err(error)) => return fail(report, error.clone(), &emit),
            None => return fail(report, Error::cancelled(), &emit),
        };
        // Local databases have no D1 id (they resolve to an empty one).
        report.database_id = Some(database_id.clone()).filter(|id| !id.is_empty());
        if options.force == Force::No {
            // An export blocks the database: never export what is already backed up.
            match existing::complete_backup(
                self.sink().as_ref(),
                &account.prefix,
                options.date,
                &target.entry.name,
            )
            .await
            {
                Ok(Some(manifest))
                    if !existing::failed_verification(
                        self.sink().as_ref(),
                        &account.prefix,
                        &manifest,
                    )
                    .await =>
                {
                    return skip(report, &manifest, &emit);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(
                    "{}/{}: {}; backing up again",
                    account.name,
                    target.entry.name,
                    error.chain()
                ),
            }
        }
        // Account permit first, so a job waiting on its account holds no global slot.
        let permits = tokio::select! {
            permits = limits.acquire() => permits,
            () = cancel.cancelled() => None,
        };
        let Some(_permits) = permits else {
            return fail(report, Error::cancelled(), &emit);
        };
        let lease = match self
            .leases()
            .acquire(&account.prefix, &target.entry.name)
            .await
        {
            Ok(Acquire::Held(lease)) => lease,
            Ok(Acquire::Busy(reason)) => return skipped(report, reason, &emit),
            Err(error) => return fail(report, error.context("cannot take the lease"), &emit),
        };
        self.leased(
            target,
            &database_id,
            options,
            &settings,
            report,
            lease,
            &emit,
            cancel,
        )
        .await
    }

    /// The part of a job done under the database's lease: re-check, export, store, manifest.
    #[allow(clippy::too_many_arguments)] // Private; every argument is one of the job's parts.
    async fn leased(
        &self,
        target: &Target<'_>,
        database_id: &str,
        options: &RunOptions,
        settings: &Settings,
        mut report: DatabaseReport,
        mut lease: Lease<'_>,
        emit: &(dyn Fn(EventKind<'_>) + Sync),
        cancel: &CancellationToken,
    ) -> DatabaseReport {
        let account = target.account;
        if options.force == Force::No {
            // Another machine may have finished it while this run waited for the lease.
            if let Ok(Some(manifest)) = existing::complete_backup(
                self.sink().as_ref(),
                &account.prefix,
                options.date,
                &target.entry.name,
            )
            .await
                && !existing::failed_verification(self.sink().as_ref(), &account.prefix, &manifest)
                    .await
            {
                lease.release().await;
                return skip(report, &manifest, emit);
            }
        }
        let started_at = Utc::now();
        report.started_at = Some(started_at);
        let work = async {
            let done = self
                .transfer(target, database_id, settings, &report.key, emit)
                .await?;
            let manifest = manifest_for(
                target,
                database_id,
                options,
                settings,
                started_at,
                &report.key,
                &done,
            );
            // The manifest is written last: until it exists the dump is not a backup.
            existing::write_manifest(self.sink().as_ref(), &account.prefix, &manifest)
                .await
                .map_err(|error| transfer::Failure {
                    error: Error::new(error.kind(), format!("the dump was stored but {}; it does not count as a backup until a run completes it", error.chain())).with_source(error),
                    exports: done.exports,
                    bookmark: done.bookmark.clone(),
                })?;
            Ok((manifest, done.exports, done.notes))
        };
        let outcome = tokio::select! {
            outcome = work => outcome,
            lost = lease.keep_alive() => Err(transfer::Failure::new(lost)),
            () = cancel.cancelled() => Err(transfer::Failure::new(Error::cancelled())),
        };
        lease.release().await;
        report.finished_at = Some(Utc::now());
        match outcome {
            Ok((manifest, exports, notes)) => {
                report.exports = exports;
                report.notes = notes;
                report.status = Status::Ok;
                report.bookmark.clone_from(&manifest.database.bookmark);
                report.bytes = Some(manifest.dump.bytes);
                report.sha256 = Some(manifest.dump.sha256);
                emit(EventKind::Done {
                    key: &report.key,
                    bytes: manifest.dump.bytes,
                });
                report
            }
            Err(failure) => {
                report.exports = failure.exports;
                report.bookmark.clone_from(&failure.bookmark);
                fail(report, failure.error, emit)
            }
        }
    }

    /// Exports (or, for a local file, dumps) one database and stores its dump at `key`.
    async fn transfer(
        &self,
        target: &Target<'_>,
        database_id: &str,
        settings: &Settings,
        key: &str,
        emit: &(dyn Fn(EventKind<'_>) + Sync),
    ) -> Result<transfer::Transferred, transfer::Failure> {
        let account = target.account;
        match (
            &target.entry.sqlite,
            self.clients()[target.account_index].as_ref(),
        ) {
            (Some(path), _) => {
                local::transfer(
                    self.sink(),
                    key,
                    path,
                    settings.compression,
                    settings.part_size,
                    emit,
                )
                .await
            }
            (None, Some(client)) => {
                let request = transfer::Request {
                    client,
                    sink: self.sink(),
                    account_id: account.account_id_or_empty(),
                    database_id,
                    key,
                    poll_interval: settings.poll_interval,
                    max_wait: settings.max_wait,
                    wait_if_busy: Some(Duration::from_secs(
                        self.config().run.wait_if_busy_minutes.saturating_mul(60),
                    ))
                    .filter(|d| !d.is_zero()),
                    compression: settings.compression,
                    part_size: settings.part_size,
                };
                transfer::run(&request, emit).await
            }
            (None, None) => Err(transfer::Failure::new(Error::new(
                ErrorKind::Config,
                format!("account {} has no API token configured", account.name),
            ))),
        }
    }
}

/// The manifest of a completed dump.
fn manifest_for(
    target: &Target<'_>,
    database_id: &str,
    options: &RunOptions,
    settings: &Settings,
    started_at: chrono::DateTime<Utc>,
    key: &str,
    done: &transfer::Transferred,
) -> Manifest {
    let account = target.account;
    Manifest {
        kind: MANIFEST_KIND.to_owned(),
        version: MANIFEST_VERSION,
        tool: manifest::tool(),
        account: account.name.clone(),
        account_id: account.account_id.clone(),
        database: ManifestDatabase {
            name: target.entry.name.clone(),
            uuid: Some(database_id.to_owned()).filter(|id| !id.is_empty()),
            bookmark: done.bookmark.clone(),
            sqlite: target
                .entry
                .sqlite
                .as_ref()
                .map(|p| p.display().to_string()),
        },
        date: options.date,
        started_at,
        finished_at: Utc::now(),
        dump: ManifestDump {
            key: key.to_owned(),
            bytes: done.stored.receipt.size,
            sha256: done.stored.receipt.sha256_hex(),
            compression: settings.compression,
            sql_bytes: done.stored.sql_bytes,
            sql_sha256: done.stored.sql_sha256.clone(),
            consistency: done.consistency,
            virtual_tables: done.virtual_tables.clone(),
        },
    }
}

/// One database's effective settings: `[run]` with the entry's overrides.
struct Settings {
    poll_interval: Duration,
    max_wait: Option<Duration>,
    compression: Compression,
    /// Only a per-database override; `[run]`'s part size is the sink's default already.
    part_size: Option<u64>,
}

impl Settings {
    fn new(run: &RunConfig, entry: &DatabaseEntry) -> Self {
        Self {
            poll_interval: Duration::from_millis(
                entry.poll_interval_ms.unwrap_or(run.poll_interval_ms),
            ),
            max_wait: entry
                .max_wait_minutes
                .or(run.max_wait_minutes)
                .map(|m| Duration::from_secs(m.saturating_mul(60))),
            compression: entry.compression.unwrap_or(run.compression),
            part_size: entry.part_size_mib.map(|mib| mib * 1024 * 1024),
        }
    }
}

fn skipped(
    mut report: DatabaseReport,
    reason: String,
    emit: &dyn Fn(EventKind<'_>),
) -> DatabaseReport {
    emit(EventKind::Skipped { reason: &reason });
    report.status = Status::Skipped;
    report.reason = Some(reason);
    report
}

/// Skipped because `manifest` vouches for a complete backup of the date.
fn skip(
    mut report: DatabaseReport,
    manifest: &Manifest,
    emit: &dyn Fn(EventKind<'_>),
) -> DatabaseReport {
    report.key.clone_from(&manifest.dump.key);
    report.bytes = Some(manifest.dump.bytes);
    report.sha256 = Some(manifest.dump.sha256.clone());
    report.bookmark.clone_from(&manifest.database.bookmark);
    let reason = format!(
        "already backed up for {} (manifest written {}); use --force to back up again",
        manifest.date, manifest.finished_at
    );
    skipped(report, reason, emit)
}


fn fail(mut report: DatabaseReport, error: Error, emit: &dyn Fn(EventKind<'_>)) -> DatabaseReport {
    emit(EventKind::Failed {
        error: &error.chain(),
    });
    report.fail(error);
    report
}

/// The concurrency limits a job must hold while it works.
struct Limits<'a> {
    global: &'a Semaphore,
    account: &'a Semaphore,
}

impl Limits<'_> {
    async fn acquire(
        &self,
    ) -> Option<(
        tokio::sync::SemaphorePermit<'_>,
        tokio::sync::SemaphorePermit<'_>,
    )> {
        let account = self.account.acquire().await.ok()?;
        let global = self.global.acquire().await.ok()?;
        Some((account, global))
    }
}
