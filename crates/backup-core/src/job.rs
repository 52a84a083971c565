//! One database's backup in a run, as a value: the [`Job`] holds what the steps share (the
//! target, its settings, the date, where to report), so each step takes only what is its own.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::compression::Compression;
use crate::config::ExportMode;
use crate::config::{DatabaseEntry, RunConfig};
use crate::encryption::Recipients;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::existing;
use crate::layout;
use crate::lease::{Acquire, Lease};
use crate::local;
use crate::manifest::{
    self, MANIFEST_KIND, MANIFEST_VERSION, Manifest, ManifestDatabase, ManifestDump,
    PLAIN_MANIFEST_VERSION,
};
use crate::online;
use crate::options::{Force, RunOptions};
use crate::plan::{Resolved, Target};
use crate::progress::{EventKind, Progress, ProgressEvent};
use crate::report::{DatabaseReport, ReplicaReport, Status};
use crate::store::ReplicaPuts;
use crate::transfer::{self, Failure, Transferred};

/// One selected database of a run.
pub(crate) struct Job<'r> {
    engine: &'r Engine,
    target: &'r Target<'r>,
    options: &'r RunOptions,
    settings: Settings,
    progress: &'r dyn Progress,
    cancel: &'r CancellationToken,
}

impl<'r> Job<'r> {
    pub(crate) fn new(
        engine: &'r Engine,
        target: &'r Target<'r>,
        options: &'r RunOptions,
        progress: &'r dyn Progress,
        cancel: &'r CancellationToken,
    ) -> Self {
        Self {
            engine,
            target,
            options,
            settings: Settings::new(&engine.config().run, &target.entry),
            progress,
            cancel,
        }
    }

    /// Backs the database up (or finds it backed up) and says how it went.
    pub(crate) async fn run(self, resolved: &Resolved, limits: Limits<'_>) -> DatabaseReport {
        let (prefix, date, name) = (
            &self.target.account.prefix,
            self.options.date,
            &self.target.entry.name,
        );
        let compression = self.settings.compression;
        let key = match self.engine.recipients() {
            Some(_) => layout::encrypted_dump_key_for(prefix, date, name, compression),
            None => layout::dump_key_for(prefix, date, name, compression),
        };
        let mut report = DatabaseReport::new(self.target.account, &self.target.entry.name, key);
        let slot = (self.target.account_index, self.target.entry.name.clone());
        let database_id = match resolved.get(&slot) {
            Some(Ok(id)) => id.clone(),
            Some(Err(error)) => return self.fail(report, error.clone()),
            None => return self.fail(report, Error::cancelled()),
        };
        // Local databases have no D1 id (they resolve to an empty one).
        report.database_id = Some(database_id.clone()).filter(|id| !id.is_empty());
        // An export blocks the database: never export what is already backed up.
        match self.complete_backup().await {
            Ok(Some(manifest)) => return self.skip(report, &manifest),
            Ok(None) => {}
            Err(error) => {
                let (account, name) = (&self.target.account.name, &self.target.entry.name);
                let error = error.chain();
                tracing::warn!("{account}/{name}: {error}; backing up again");
            }
        }
        self.lease_and_back_up(&database_id, report, &limits).await
    }

    /// Takes the database's lease and backs it up. While another run holds the lease, the job
    /// waits (holding no concurrency slot) up to `[run] wait_for_lease_minutes`, looking
    /// again every few seconds: a backup the holder completes meanwhile makes the database
    /// skipped; a lease that lapses (or whose holder died on this machine) is taken over;
    /// otherwise the database is reported `leased`.
    async fn lease_and_back_up(
        &self,
        database_id: &str,
        report: DatabaseReport,
        limits: &Limits<'_>,
    ) -> DatabaseReport {
        let leases = self.engine.leases();
        let minutes = self.engine.config().run.wait_for_lease_minutes;
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(minutes.saturating_mul(60));
        let (prefix, name) = (&self.target.account.prefix, &self.target.entry.name);
        loop {
            // Account permit first, so a job waiting on its account holds no global slot.
            let permits = tokio::select! {
                permits = limits.acquire() => permits,
                () = self.cancel.cancelled() => None,
            };
            let Some(permits) = permits else {
                return self.fail(report, Error::cancelled());
            };
            let reason = match leases.acquire(prefix, name).await {
                Ok(Acquire::Held(lease)) => return self.leased(database_id, report, lease).await,
                Ok(Acquire::Busy(reason)) => reason,
                Err(error) => return self.fail(report, error.context("cannot take the lease")),
            };
            drop(permits);
            // The holder may have finished the backup: then it is found complete.
            if let Ok(Some(manifest)) = self.complete_backup().await {
                return self.skip(report, &manifest);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return self.held_elsewhere(report, &reason, minutes);
            }
            tracing::info!(
                "{}/{name}: {reason}; waiting for it",
                self.target.account.name
            );
            tokio::select! {
                () = tokio::time::sleep_until(deadline.min(now + leases.poll_interval())) => {}
                () = self.cancel.cancelled() => return self.fail(report, Error::cancelled()),
            }
        }
    }

    /// The part done under the database's lease: re-check, export, store, manifest.
    async fn leased(
        &self,
        database_id: &str,
        mut report: DatabaseReport,
        mut lease: Lease<'_>,
    ) -> DatabaseReport {
        // Another machine may have finished it while this run waited for the lease.
        if let Ok(Some(manifest)) = self.complete_backup().await {
            lease.release().await;
            return self.skip(report, &manifest);
        }
        let started_at = self.engine.clock().now();
        report.started_at = Some(started_at);
        let work = async {
            let done = self.transfer(database_id, &report.key).await?;
            let manifest = self.manifest(database_id, started_at, &report.key, &done);
            // The manifest is written last: until it exists the dump is not a backup.
            let sink = self.engine.sink().as_ref();
            existing::write_manifest(sink, &self.target.account.prefix, &manifest)
                .await
                .map_err(|error| Failure {
                    error: Error::new(
                        error.kind(),
                        format!("the dump was stored but {}; it does not count as a backup until a run completes it", error.chain()),
                    )
                    .with_source(error),
                    exports: done.exports,
                    bookmark: done.bookmark.clone(),
                })?;
            Ok((manifest, done.exports, done.notes))
        };
        // Every multipart upload of the work is recorded in the lease before its first part.
        let work = crate::store::UPLOAD_OBSERVER.scope(Some(lease.observer()), work);
        // Every put of the work also writes to each replica, streamed once.
        let replica_puts = Arc::new(ReplicaPuts::new(
            self.engine
                .replicas()
                .iter()
                .map(|r| Arc::clone(&r.sink))
                .collect(),
        ));
        let work = crate::store::REPLICA_PUTS.scope(Arc::clone(&replica_puts), work);
        let outcome = tokio::select! {
            outcome = work => outcome,
            lost = lease.keep_alive() => Err(Failure::new(lost)),
            () = self.cancel.cancelled() => Err(Failure::new(Error::cancelled())),
        };
        if let Ok((manifest, _, _)) = &outcome {
            report.replicas = self.replicate(manifest, replica_puts.take()).await;
        }
        lease.release().await;
        report.finished_at = Some(self.engine.clock().now());
        match outcome {
            Ok(_) if report.replicas.iter().any(|r| r.status == Status::Failed) => {
                let failed: Vec<String> = report
                    .replicas
                    .iter()
                    .filter(|r| r.status == Status::Failed)
                    .map(|r| format!("{}: {}", r.target, r.error.as_deref().unwrap_or("failed")))
                    .collect();
                let error = Error::new(
                    ErrorKind::Storage,
                    format!(
                        "the backup is on the main sink but not on every replica ({})",
                        failed.join("; ")
                    ),
                );
                self.fail(report, error)
            }
            Ok((manifest, exports, notes)) => {
                report.exports = exports;
                report.notes = notes;
                report.status = Status::Ok;
                report.bookmark.clone_from(&manifest.database.bookmark);
                report.bytes = Some(manifest.dump.bytes);
                report.sha256 = Some(manifest.dump.sha256);
                self.emit(EventKind::Done {
                    key: &report.key,
                    bytes: manifest.dump.bytes,
                });
                report
            }
            Err(failure) => {
                report.exports = failure.exports;
                report.bookmark.clone_from(&failure.bookmark);
                self.fail(report, failure.error)
            }
        }
    }

    /// Completes each replica's copy: its manifest (the main one's content, at the same
    /// key) where its dump was stored, and each one's line in the report.
    async fn replicate(
        &self,
        manifest: &Manifest,
        outcomes: Vec<Option<Result<r2_sink::PutReceipt, r2_sink::Error>>>,
    ) -> Vec<ReplicaReport> {
        let mut reports = Vec::with_capacity(outcomes.len());
        let replicas = self.engine.replicas();
        for (replica, outcome) in replicas.iter().zip(outcomes) {
            let stored = match outcome {
                Some(Ok(receipt)) if receipt.sha256_hex() == manifest.dump.sha256 => Ok(()),
                Some(Ok(_)) => Err(Error::new(
                    ErrorKind::Storage,
                    "the replica stored other bytes than the main sink",
                )),
                Some(Err(error)) => Err(Error::from(error)),
                None => Err(Error::new(
                    ErrorKind::Storage,
                    "the dump never reached the replica",
                )),
            };
            let prefix = &self.target.account.prefix;
            let done = match stored {
                Ok(()) => existing::write_manifest(replica.sink.as_ref(), prefix, manifest).await,
                Err(error) => Err(error),
            };
            reports.push(ReplicaReport {
                target: replica.label.clone(),
                status: if done.is_ok() {
                    Status::Ok
                } else {
                    Status::Failed
                },
                key: manifest.dump.key.clone(),
                error: done.err().map(|e| e.chain()),
            });
        }
        reports
    }

    /// The complete, not known-defective backup of the date, unless the run is forced.
    async fn complete_backup(&self) -> Result<Option<Manifest>, Error> {
        if self.options.force == Force::Yes {
            return Ok(None);
        }
        let sink = self.engine.sink().as_ref();
        let prefix = &self.target.account.prefix;
        let found =
            existing::complete_backup(sink, prefix, self.options.date, &self.target.entry.name)
                .await?;
        let Some(manifest) = found else {
            return Ok(None);
        };
        if existing::failed_verification(sink, prefix, &manifest).await {
            return Ok(None);
        }
        // A replica that missed the date (it failed last time) makes the backup again.
        for replica in self.engine.replicas() {
            let date = self.options.date;
            let name = &self.target.entry.name;
            if existing::complete_backup(replica.sink.as_ref(), prefix, date, name)
                .await?
                .is_none()
            {
                return Ok(None);
            }
        }
        Ok(Some(manifest))
    }

    /// Exports (or, for a local file, dumps) the database and stores its dump at `key`.
    async fn transfer(&self, database_id: &str, key: &str) -> Result<Transferred, Failure> {
        let account = self.target.account;
        let settings = &self.settings;
        let emit = |kind: EventKind<'_>| self.emit(kind);
        let client = self.engine.clients()[self.target.account_index].as_ref();
        match (&self.target.entry.sqlite, client) {
            (Some(path), _) => {
                let sink = self.engine.sink();
                local::transfer(
                    sink,
                    key,
                    path,
                    (settings.compression, self.engine.recipients()),
                    settings.part_size,
                    &emit,
                )
                .await
            }
            (None, Some(client)) => match self.mode(client, database_id).await {
                Chosen::Online(reason) => {
                    let request = self.online_request(client, database_id, key);
                    let mut done = online::run(&request, &emit).await?;
                    done.export_reason = reason;
                    Ok(done)
                }
                Chosen::D1(None) => self.export(client, database_id, key, &emit, None).await,
                Chosen::D1(Some(reason)) => {
                    let mut done = self.auto_export(client, database_id, key, &emit).await?;
                    done.export_reason.get_or_insert(reason);
                    Ok(done)
                }
            },
            (None, None) => Err(Failure::new(Error::new(
                ErrorKind::Config,
                format!("account {} has no API token configured", account.name),
            ))),
        }
    }

    /// The mode this database is read in: the run's override, the entry's, `[run]`'s; for
    /// `auto`, chosen by the database's size (with why).
    async fn mode(&self, client: &d1_export::D1Client, database_id: &str) -> Chosen {
        let run = &self.engine.config().run;
        let mode = self
            .options
            .export
            .or(self.target.entry.export)
            .unwrap_or(run.export);
        match mode {
            ExportMode::Online => Chosen::Online(None),
            ExportMode::Auto => {
                let account_id = self.target.account.account_id_or_empty();
                let threshold = run.online_above_mib.saturating_mul(1024 * 1024);
                match client.database_info(account_id, database_id).await {
                    Ok(info) if info.file_size.is_some_and(|size| size > threshold) => {
                        Chosen::Online(Some(format!(
                            "auto: the database's {} bytes are above [run] online_above_mib = {}, so it was read online rather than blocked by an export",
                            info.file_size.unwrap_or_default(),
                            run.online_above_mib
                        )))
                    }
                    Ok(info) => Chosen::D1(Some(format!(
                        "auto: the database's {} bytes are not above [run] online_above_mib = {}, so D1's export was used",
                        info.file_size
                            .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
                        run.online_above_mib
                    ))),
                    Err(error) => Chosen::D1(Some(format!(
                        "auto: the database's size could not be read ({}), so D1's export was used",
                        crate::error::error_chain(&error)
                    ))),
                }
            }
            _ => Chosen::D1(None),
        }
    }

    /// D1's export endpoint (`export = "d1"`).
    async fn export(
        &self,
        client: &d1_export::D1Client,
        database_id: &str,
        key: &str,
        emit: &(dyn Fn(EventKind<'_>) + Sync),
        inspector: Option<&dyn transfer::DumpInspector>,
    ) -> Result<Transferred, Failure> {
        let account = self.target.account;
        let settings = &self.settings;
        let wait_if_busy = self.engine.config().run.wait_if_busy_minutes;
        let request = transfer::Request {
            client,
            sink: self.engine.sink(),
            account_id: account.account_id_or_empty(),
            database_id,
            key,
            poll_interval: settings.poll_interval,
            max_wait: settings.max_wait,
            wait_if_busy: Some(Duration::from_secs(wait_if_busy.saturating_mul(60)))
                .filter(|d| !d.is_zero()),
            compression: settings.compression,
            encryption: self.engine.recipients(),
            part_size: settings.part_size,
            inspector,
        };
        transfer::run(&request, emit).await
    }

    /// `auto` below its size threshold: D1's export, scanned as it streams; when the scan
    /// names a defective table, the whole database is read online into the same key (one
    /// export at most). Should that read fail, D1's dump is kept, with a note: never worse
    /// than `d1`.
    async fn auto_export(
        &self,
        client: &d1_export::D1Client,
        database_id: &str,
        key: &str,
        emit: &(dyn Fn(EventKind<'_>) + Sync),
    ) -> Result<Transferred, Failure> {
        // D1's dump is scanned for the marks of its losses as it streams into the sink.
        let scanner = crate::dump::SharedScanner::new();
        let mut done = self
            .export(client, database_id, key, emit, Some(&scanner))
            .await?;
        let defective = transfer::DumpInspector::defective_tables(&scanner);
        if defective.is_empty() {
            return Ok(done);
        }
        let tables = defective.join(", ");
        match online::run(&self.online_request(client, database_id, key), emit).await {
            Ok(mut online) => {
                online.exports = done.exports;
                online.export_reason = Some(format!(
                    "auto: D1's export showed lossy values in {tables}, so the database was read again online and that dump stored"
                ));
                Ok(online)
            }
            Err(failure) => {
                done.notes.push(format!(
                    "auto: D1's export showed lossy values in {tables}, but reading the database online failed ({}); D1's dump is kept as it is",
                    failure.error.chain()
                ));
                Ok(done)
            }
        }
    }

    fn online_request<'a>(
        &'a self,
        client: &'a d1_export::D1Client,
        database_id: &'a str,
        key: &'a str,
    ) -> online::Request<'a> {
        online::Request {
            client,
            sink: self.engine.sink(),
            account_id: self.target.account.account_id_or_empty(),
            database_id,
            key,
            compression: self.settings.compression,
            encryption: self.engine.recipients(),
            part_size: self.settings.part_size,
            require_snapshot: self.engine.config().run.require_snapshot,
        }
    }

    /// The manifest of a completed dump.
    fn manifest(
        &self,
        database_id: &str,
        started_at: chrono::DateTime<Utc>,
        key: &str,
        done: &Transferred,
    ) -> Manifest {
        let account = self.target.account;
        let entry = &self.target.entry;
        Manifest {
            kind: MANIFEST_KIND.to_owned(),
            version: if self.engine.recipients().is_some() {
                MANIFEST_VERSION
            } else {
                PLAIN_MANIFEST_VERSION
            },
            tool: manifest::tool(),
            account: account.name.clone(),
            account_id: account.account_id.clone(),
            database: ManifestDatabase {
                name: entry.name.clone(),
                uuid: Some(database_id.to_owned()).filter(|id| !id.is_empty()),
                bookmark: done.bookmark.clone(),
                // As the configuration wrote it: a resolved path says nothing on another
                // machine and discloses the host's layout.
                sqlite: entry.sqlite_as_written().map(|p| p.display().to_string()),
                bookmark_after: done.bookmark_after.clone(),
            },
            date: self.options.date,
            started_at,
            finished_at: self.engine.clock().now(),
            dump: ManifestDump {
                key: key.to_owned(),
                bytes: done.stored.receipt.size,
                sha256: done.stored.receipt.sha256_hex(),
                compression: self.settings.compression,
                sql_bytes: done.stored.sql_bytes,
                sql_sha256: done.stored.sql_sha256.clone(),
                consistency: done.consistency,
                virtual_tables: done.virtual_tables.clone(),
                export: done.export.map(str::to_owned),
                export_reason: done.export_reason.clone(),
                encryption: self.engine.recipients().map(Recipients::manifest),
            },
        }
    }

    fn emit(&self, kind: EventKind<'_>) {
        self.progress.event(&ProgressEvent {
            account: &self.target.account.name,
            database: &self.target.entry.name,
            kind,
        });
    }

    /// Not backed up: another run held the lease for the whole wait.
    fn held_elsewhere(
        &self,
        mut report: DatabaseReport,
        reason: &str,
        minutes: u64,
    ) -> DatabaseReport {
        let reason = format!(
            "not backed up: {reason}, and it still held it after a wait of {minutes} minute(s) ([run] wait_for_lease_minutes)"
        );
        self.emit(EventKind::Leased { reason: &reason });
        report.status = Status::Leased;
        report.reason = Some(reason);
        report
    }

    fn skipped(&self, mut report: DatabaseReport, reason: String) -> DatabaseReport {
        self.emit(EventKind::Skipped { reason: &reason });
        report.status = Status::Skipped;
        report.reason = Some(reason);
        report
    }

    /// Skipped because `manifest` vouches for a complete backup of the date.
    fn skip(&self, mut report: DatabaseReport, manifest: &Manifest) -> DatabaseReport {
        report.key.clone_from(&manifest.dump.key);
        report.bytes = Some(manifest.dump.bytes);
        report.sha256 = Some(manifest.dump.sha256.clone());
        report.bookmark.clone_from(&manifest.database.bookmark);
        let reason = format!(
            "already backed up for {} (manifest written {}); {ALREADY_BACKED_UP_HINT}",
            manifest.date, manifest.finished_at
        );
        self.skipped(report, reason)
    }

    fn fail(&self, mut report: DatabaseReport, error: Error) -> DatabaseReport {
        self.emit(EventKind::Failed {
            error: &error.chain(),
        });
        report.fail(error);
        report
    }
}

/// How a skipped database's reason ends: what the caller can do, in library terms. The CLI
/// recognizes it to print its own flag instead.
pub const ALREADY_BACKED_UP_HINT: &str = "force the run to back up again";

/// The source `export` chose for a D1 database, and why when `auto` chose it.
enum Chosen {
    D1(Option<String>),
    Online(Option<String>),
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

/// The concurrency limits a job must hold while it works.
pub(crate) struct Limits<'a> {
    /// `[run] concurrency`: databases backed up at once in the whole run.
    pub(crate) global: &'a Semaphore,
    /// `[run] per_account_concurrency`: at once within the job's account.
    pub(crate) account: &'a Semaphore,
}

impl Limits<'_> {
    pub(crate) async fn acquire(
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
