//! Leases: two runs (on two machines) never back up the same database at the same time.
//!
//! A lease is a chain of small objects (keys from [`layout::lease_dir`] and
//! [`layout::lease_key`]), each a [`LeaseRecord`] created with a conditional put
//! ([`BackupSink::put_if_absent`]), so of two runs racing for the same generation exactly one
//! wins (on stores whose conditional create is atomic: R2, S3, memory). The holder renews by
//! creating the next generation before the current one expires; a run that crashed stops
//! renewing, its lease expires, and the next run takes over by creating the next generation.
//! A holder whose renewal finds the next generation taken has lost the lease and stops. The
//! lease folder is outside the date layout, so retention never sees it.
//!
//! Each record says who holds it (machine, boot, process id, from the engine's
//! [`Processes`]): a holder that died on this machine is taken over at once. The holder also
//! writes a new generation naming each multipart upload it starts, before the upload's first
//! part is sent; whoever takes the lease over aborts the uploads the last record names, so a
//! killed run leaves no unfinished upload behind for long.
//!
//! Time comes from the engine's [`Clock`] (when a record expires) and from `tokio::time`
//! (when to renew), so tests pause time instead of sleeping.

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use r2_sink::{BackupSink, PutOptions, UploadObserver, UploadStarted};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::existing;
use crate::formats::{LeaseRecord, LeaseUpload};
use crate::layout;
use crate::processes::{Processes, UnknownProcesses};

/// What taking a lease needs: where, who, for how long, and what time it is.
#[derive(Clone, Copy)]
pub(crate) struct Leases<'s> {
    sink: &'s dyn BackupSink,
    clock: &'s dyn Clock,
    /// The holder's name written into every record (the engine's owner).
    owner: &'s str,
    /// How long a record is valid; the holder renews every third of it.
    ttl: Duration,
    /// Who this process is, and whether a holder on this machine still lives.
    processes: &'s dyn Processes,
}

/// A held lease. Renew it with [`Lease::keep_alive`]; give it back with [`Lease::release`].
pub(crate) struct Lease<'s> {
    leases: Leases<'s>,
    /// The lease folder, from [`layout::lease_dir`].
    dir: String,
    /// The generation this holder created last.
    generation: u64,
    /// The multipart uploads this holder started, written into every generation it creates.
    uploads: Vec<LeaseUpload>,
    /// Uploads started, sent by [`Lease::observer`]'s observers to [`Lease::keep_alive`],
    /// which records each one and then answers on the oneshot.
    started_tx: mpsc::UnboundedSender<Started>,
    started_rx: mpsc::UnboundedReceiver<Started>,
}

/// An upload started, and where to say it has been recorded.
type Started = (UploadStarted, oneshot::Sender<()>);

/// The outcome of trying to take a lease.
pub(crate) enum Acquire<'s> {
    /// Taken.
    Held(Lease<'s>),
    /// Another run holds it; the text says who and until when.
    Busy(String),
}

impl<'s> Leases<'s> {
    pub(crate) fn new(
        sink: &'s dyn BackupSink,
        clock: &'s dyn Clock,
        owner: &'s str,
        ttl: Duration,
    ) -> Self {
        Self {
            sink,
            clock,
            owner,
            ttl,
            processes: &UnknownProcesses,
        }
    }

    /// The same leases, with `processes` telling who this run is and who is alive.
    pub(crate) fn processes(mut self, processes: &'s dyn Processes) -> Self {
        self.processes = processes;
        self
    }

    /// How often a run waiting for another's lease looks again.
    pub(crate) fn poll_interval(&self) -> Duration {
        (self.ttl / 6).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }

    /// Tries to take the lease of `database` under `prefix`. An error (kind from the sink) means
    /// the lease folder could not be read or written. Taking a lease over aborts the uploads
    /// its last record names.
    pub(crate) async fn acquire(&self, prefix: &str, database: &str) -> Result<Acquire<'s>, Error> {
        let dir = layout::lease_dir(prefix, database);
        let generations = generations(self.sink, &dir).await?;
        let (next, previous) = match generations.last() {
            None => (1, None),
            Some(&top) => match read(self.sink, &layout::lease_key(&dir, top)).await? {
                Some(r) if r.expires_at > self.clock.now() && r.owner != self.owner => {
                    if !self.died_here(&r) {
                        return Ok(Acquire::Busy(busy_reason(&r)));
                    }
                    tracing::info!(
                        "{dir}: the holder ({}) died on this machine; taking the lease over",
                        r.owner
                    );
                    (top + 1, Some(r))
                }
                // Expired, ours from a crashed run, or unreadable: take over.
                record => (top + 1, record),
            },
        };
        let mut lease = Lease::new(*self, dir, next - 1);
        if !lease.create_next().await? {
            return Ok(Acquire::Busy(
                "another run took the lease at the same moment".to_owned(),
            ));
        }
        lease.forget_older(&generations).await;
        if let Some(previous) = previous {
            abort_uploads(self.sink, &previous.uploads).await;
        }
        Ok(Acquire::Held(lease))
    }

    /// Whether `record`'s holder was a process of this machine and boot that no longer
    /// exists (and is not this process). Unknown identities never count as dead.
    fn died_here(&self, record: &LeaseRecord) -> bool {
        let p = self.processes;
        let (Some(host), Some(boot), Some(pid)) = (p.host(), p.boot_id(), record.pid) else {
            return false;
        };
        record.host.as_deref() == Some(host.as_str())
            && record.boot_id.as_deref() == Some(boot.as_str())
            && pid != p.pid()
            && p.is_alive(pid) == Some(false)
    }

    /// The record this holder writes now, valid for the lease's lifetime.
    fn record(&self, uploads: &[LeaseUpload]) -> LeaseRecord {
        let p = self.processes;
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::TimeDelta::MAX);
        LeaseRecord::new(self.owner, self.clock.now() + ttl)
            .holder(p.host(), p.boot_id(), p.pid())
            .uploads(uploads.to_vec())
    }
}

/// Why a live lease blocks: who holds it, where, and until when.
fn busy_reason(record: &LeaseRecord) -> String {
    format!(
        "another run ({}) holds the lease until {}",
        record.owner, record.expires_at
    )
}

/// Aborts the multipart uploads a dead holder recorded (best effort: a failure is logged and
/// left to the bucket's lifecycle rule).
pub(crate) async fn abort_uploads(sink: &dyn BackupSink, uploads: &[LeaseUpload]) {
    for upload in uploads {
        match sink.abort_upload(&upload.key, &upload.upload_id).await {
            Ok(true) => tracing::info!(
                "aborted the unfinished upload of {} a dead run left (started {})",
                upload.key,
                upload.started_at
            ),
            Ok(false) => {}
            Err(error) => tracing::warn!(
                "cannot abort the unfinished upload of {} a dead run left: {}",
                upload.key,
                Error::from(error).chain()
            ),
        }
    }
}

/// Aborts the uploads recorded in every configured database's lease whose holder is gone
/// (the lease lapsed, or its holder died on this machine). Best effort: problems are logged.
pub(crate) async fn abort_orphaned_uploads(engine: &crate::engine::Engine) {
    let leases = engine.leases();
    for account in &engine.config().accounts {
        for entry in &account.databases {
            let dir = layout::lease_dir(&account.prefix, &entry.name);
            let top = match generations(leases.sink, &dir).await {
                Ok(generations) => generations.last().copied(),
                Err(error) => {
                    tracing::warn!("{}", error.chain());
                    None
                }
            };
            let Some(top) = top else { continue };
            let record = read(leases.sink, &layout::lease_key(&dir, top)).await;
            if let Ok(Some(record)) = record
                && (record.expires_at <= leases.clock.now() || leases.died_here(&record))
            {
                abort_uploads(leases.sink, &record.uploads).await;
            }
        }
    }
}

impl<'s> Lease<'s> {
    fn new(leases: Leases<'s>, dir: String, generation: u64) -> Self {
        let (started_tx, started_rx) = mpsc::unbounded_channel();
        Self {
            leases,
            dir,
            generation,
            uploads: Vec::new(),
            started_tx,
            started_rx,
        }
    }

    /// An observer for the puts made under this lease: each multipart upload started is
    /// recorded in a new generation (by [`Lease::keep_alive`], which must be running) before
    /// its first part is sent.
    pub(crate) fn observer(&self) -> UploadObserver {
        let tx = self.started_tx.clone();
        UploadObserver::new(move |started| {
            let (done, recorded) = oneshot::channel();
            // When keep_alive has stopped, the sender is dropped and the put goes on.
            let _ = tx.send((started, done));
            Box::pin(async move {
                let _ = recorded.await;
            })
        })
    }

    /// Renews the lease every third of its lifetime, and records each upload an
    /// [`observer`](Self::observer) reports; returns only when the lease is lost (another
    /// run took it over, or renewing failed until it expired), with an error of kind
    /// [`ErrorKind::Busy`] that says why (and, after failed renewals, the sink's error).
    pub(crate) async fn keep_alive(&mut self) -> Error {
        let ttl = self.leases.ttl;
        let every = ttl / 3;
        let mut deadline = tokio::time::Instant::now() + ttl;
        let mut next = tokio::time::Instant::now() + every;
        loop {
            let recorded = tokio::select! {
                () = tokio::time::sleep_until(next) => None,
                Some((started, done)) = self.started_rx.recv() => {
                    let now = self.leases.clock.now();
                    let upload = LeaseUpload::new(started.key, started.upload_id, now);
                    self.uploads.push(upload);
                    Some(done)
                }
            };
            // A write slower than a sixth of the lifetime counts as failed and is retried.
            let attempt = tokio::time::timeout(ttl / 6, self.create_next()).await;
            let attempt = attempt.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Transient,
                    "writing the lease timed out",
                ))
            });
            if let Some(done) = recorded {
                let _ = done.send(());
            }
            let now = tokio::time::Instant::now();
            match attempt {
                Ok(true) => {
                    (deadline, next) = (now + ttl, now + every);
                    let old = [self.generation - 1];
                    self.forget_older(&old).await;
                }
                Ok(false) => {
                    return Error::new(
                        ErrorKind::Busy,
                        "another run took over the lease; stopping this backup",
                    );
                }
                Err(error) if now + every / 4 >= deadline => return expired(error),
                Err(error) => {
                    tracing::warn!(
                        "{}: renewing the lease failed, retrying: {}",
                        self.dir,
                        error.chain()
                    );
                    next = now + every / 4;
                }
            }
        }
    }

    /// Gives the lease back (best effort: an unreleased lease simply expires).
    pub(crate) async fn release(self) {
        let sink = self.leases.sink;
        let keys: Vec<String> = match generations(sink, &self.dir).await {
            Ok(gens) => gens
                .iter()
                .filter(|&&g| g <= self.generation)
                .map(|&g| layout::lease_key(&self.dir, g))
                .collect(),
            Err(_) => vec![layout::lease_key(&self.dir, self.generation)],
        };
        if let Err(error) = sink.delete_many(&keys).await {
            tracing::warn!(
                "{}: releasing the lease failed (it will expire): {}",
                self.dir,
                Error::from(error).chain()
            );
        }
    }

    /// Creates the next generation; `false` when another run created it first.
    async fn create_next(&mut self) -> Result<bool, Error> {
        let record = self.leases.record(&self.uploads);
        let body = Bytes::from(record.to_json());
        let next = layout::lease_key(&self.dir, self.generation + 1);
        let options = PutOptions::default().content_type("application/json");
        let created = self
            .leases
            .sink
            .put_if_absent(&next, body, options)
            .await
            .map_err(|e| Error::from(e).context(format_args!("cannot write the lease {next}")))?;
        if created {
            self.generation += 1;
        }
        Ok(created)
    }

    /// Deletes generations older than the held one (best effort).
    async fn forget_older(&self, generations: &[u64]) {
        let old: Vec<String> = generations
            .iter()
            .filter(|&&g| g < self.generation)
            .map(|&g| layout::lease_key(&self.dir, g))
            .collect();
        if !old.is_empty() {
            let _ = self.leases.sink.delete_many(&old).await;
        }
    }
}

/// The error of a lease that could not be renewed before it expired.
fn expired(error: Error) -> Error {
    Error::new(
        ErrorKind::Busy,
        format!(
            "the lease expired because it could not be renewed: {}",
            error.chain()
        ),
    )
    .with_source(error)
}

/// The generations present in `dir`, ascending.
async fn generations(sink: &dyn BackupSink, dir: &str) -> Result<Vec<u64>, Error> {
    let folder = format!("{dir}/");
    let infos: Vec<r2_sink::ObjectInfo> = sink
        .list(&folder)
        .try_collect()
        .await
        .map_err(|e| Error::from(e).context(format_args!("cannot list {folder}")))?;
    let mut gens: Vec<u64> = infos
        .iter()
        .filter_map(|i| layout::lease_generation(dir, &i.key))
        .collect();
    gens.sort_unstable();
    Ok(gens)
}

/// The record at `key`; `None` when there is none or it is not a lease record (a holder that
/// wrote garbage holds nothing).
async fn read(sink: &dyn BackupSink, key: &str) -> Result<Option<LeaseRecord>, Error> {
    let Some(bytes) = existing::read_small(sink, key).await? else {
        return Ok(None);
    };
    Ok(LeaseRecord::from_json(&bytes).ok())
}

#[cfg(test)]
mod tests {
    //! On paused tokio time: each test covers minutes of lease time in milliseconds.

    use chrono::{DateTime, Utc};
    use r2_sink::ObjectStoreSink;

    use super::*;
    use crate::clock::TokioClock;
    use crate::formats::LEASE_VERSION;

    const TTL: Duration = Duration::from_secs(30);
    const DIR: &str = "d1/_leases/ops-db";

    fn anchor() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T03:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    async fn generations_left(sink: &dyn BackupSink) -> Vec<u64> {
        generations(sink, DIR).await.unwrap_or_default()
    }

    fn holder(acquired: Result<Acquire<'_>, Error>) -> Option<Lease<'_>> {
        match acquired {
            Ok(Acquire::Held(lease)) => Some(lease),
            _ => None,
        }
    }

    fn busy<'a>(acquired: &'a Result<Acquire<'_>, Error>) -> Option<&'a str> {
        match acquired {
            Ok(Acquire::Busy(reason)) => Some(reason),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unrenewed_lease_expires_after_its_ttl_and_is_taken_over() {
        let sink = ObjectStoreSink::memory();
        let clock = TokioClock::starting_at(anchor());
        let a = Leases::new(&sink, &clock, "machine-a", TTL);
        let b = Leases::new(&sink, &clock, "machine-b", TTL);
        let held = holder(a.acquire("d1", "ops-db").await);
        assert!(held.is_some());
        let refused = b.acquire("d1", "ops-db").await;
        let reason = busy(&refused).unwrap_or_default();
        assert!(reason.contains("machine-a"), "{reason}");
        assert!(reason.contains("2026-11-30 03:00:30"), "{reason}");

        // machine-a stops renewing (it crashed): one second before expiry the lease still
        // holds, one second after it machine-b takes over with the next generation.
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(busy(&b.acquire("d1", "ops-db").await).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        let taken = holder(b.acquire("d1", "ops-db").await);
        assert_eq!(taken.as_ref().map(|l| l.generation), Some(2));
        assert_eq!(
            generations_left(&sink).await,
            [2],
            "the expired generation is deleted"
        );

        // If machine-a wakes up, its next renewal finds the generation taken: it stops.
        let lost = match held {
            Some(mut lease) => Some(lease.keep_alive().await),
            None => None,
        };
        assert_eq!(lost.as_ref().map(Error::kind), Some(ErrorKind::Busy));
        let message = lost.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("took over"), "{message}");
        if let Some(lease) = taken {
            lease.release().await;
        }
        assert!(generations_left(&sink).await.is_empty(), "released");
    }

    #[tokio::test(start_paused = true)]
    async fn renewal_keeps_the_lease_for_as_long_as_the_holder_lives() {
        let sink = ObjectStoreSink::memory();
        let clock = TokioClock::starting_at(anchor());
        let a = Leases::new(&sink, &clock, "machine-a", TTL);
        let b = Leases::new(&sink, &clock, "machine-b", TTL);
        let Some(mut lease) = holder(a.acquire("d1", "ops-db").await) else {
            panic!("the first run takes the lease");
        };
        let others = async {
            // Ten lifetimes of the lease: the holder renews every third of one.
            for _ in 0..10 {
                tokio::time::sleep(TTL).await;
                let reason = busy(&b.acquire("d1", "ops-db").await).map(str::to_owned);
                assert!(reason.is_some_and(|r| r.contains("machine-a")));
            }
        };
        tokio::select! {
            lost = lease.keep_alive() => panic!("the lease was lost: {lost}"),
            () = others => {}
        }
        assert_eq!(clock.now(), anchor() + chrono::Duration::seconds(300));
        assert!(
            lease.generation >= 30,
            "renewed every 10 s: {}",
            lease.generation
        );
        assert_eq!(
            generations_left(&sink).await,
            [lease.generation],
            "old ones forgotten"
        );
        lease.release().await;
        assert!(
            holder(b.acquire("d1", "ops-db").await).is_some(),
            "free once released"
        );
    }

    /// A record written before `version` existed is honoured until it expires.
    #[tokio::test(start_paused = true)]
    async fn a_record_without_a_version_is_honoured_until_it_expires() {
        let sink = ObjectStoreSink::memory();
        let clock = TokioClock::starting_at(anchor());
        let old = br#"{"owner":"older-host","expires_at":"2026-11-30T03:01:00Z"}"#;
        let created = sink
            .put_if_absent(
                &layout::lease_key(DIR, 4),
                Bytes::from_static(old),
                PutOptions::default(),
            )
            .await;
        assert!(matches!(created, Ok(true)));
        let a = Leases::new(&sink, &clock, "machine-a", TTL);
        let refused = a.acquire("d1", "ops-db").await;
        assert!(busy(&refused).is_some_and(|r| r.contains("older-host")));
        tokio::time::advance(Duration::from_secs(61)).await;
        let taken = holder(a.acquire("d1", "ops-db").await);
        assert_eq!(taken.map(|l| l.generation), Some(5));
        let record = existing::read_small(&sink, &layout::lease_key(DIR, 5)).await;
        let record = record
            .ok()
            .flatten()
            .and_then(|b| LeaseRecord::from_json(&b).ok());
        assert_eq!(
            record.map(|r| (r.version, r.owner, r.expires_at, r.host)),
            Some((
                LEASE_VERSION,
                "machine-a".to_owned(),
                anchor() + chrono::Duration::seconds(91),
                None
            ))
        );
    }

    /// A machine "here" with one live process (7) and a dead one (8), this process being 9.
    #[derive(Debug)]
    struct Here {
        boot: &'static str,
    }

    impl Processes for Here {
        fn host(&self) -> Option<String> {
            Some("machine-here".to_owned())
        }
        fn boot_id(&self) -> Option<String> {
            Some(self.boot.to_owned())
        }
        fn pid(&self) -> u32 {
            9
        }
        fn is_alive(&self, pid: u32) -> Option<bool> {
            Some(pid == 7 || pid == 9)
        }
    }

    async fn plant(sink: &dyn BackupSink, record: &LeaseRecord) {
        let body = Bytes::from(record.to_json());
        let key = layout::lease_key(DIR, 3);
        assert!(matches!(
            sink.put_if_absent(&key, body, PutOptions::default()).await,
            Ok(true)
        ));
    }

    /// Issue 15: a holder that died on this machine (same host and boot, pid gone) is taken
    /// over at once; a live one, one on another boot or machine, or one whose identity is
    /// unknown is waited for until its lease lapses.
    #[tokio::test(start_paused = true)]
    async fn a_holder_dead_on_this_machine_is_taken_over_at_once() {
        let expires = anchor() + chrono::Duration::seconds(120);
        let holder = |host: &str, boot: &str, pid: u32| {
            LeaseRecord::new("run-x", expires).holder(
                Some(host.to_owned()),
                Some(boot.to_owned()),
                pid,
            )
        };
        let cases = [
            (holder("machine-here", "boot-1", 8), true, "dead here"),
            (holder("machine-here", "boot-1", 7), false, "alive here"),
            (holder("machine-here", "boot-1", 9), false, "our own pid"),
            (holder("machine-here", "boot-0", 8), false, "another boot"),
            (
                holder("machine-there", "boot-1", 8),
                false,
                "another machine",
            ),
            (
                LeaseRecord::new("run-x", expires),
                false,
                "version 1 or unknown",
            ),
        ];
        for (record, taken, what) in cases {
            let sink = ObjectStoreSink::memory();
            let clock = TokioClock::starting_at(anchor());
            plant(&sink, &record).await;
            let here = Here { boot: "boot-1" };
            let leases = Leases::new(&sink, &clock, "run-y", TTL).processes(&here);
            let acquired = leases.acquire("d1", "ops-db").await;
            assert_eq!(holder_of(acquired).is_some(), taken, "{what}");
        }
        // Without a probe (the library's default) nothing is ever known to be dead.
        let sink = ObjectStoreSink::memory();
        let clock = TokioClock::starting_at(anchor());
        plant(&sink, &holder("machine-here", "boot-1", 8)).await;
        let leases = Leases::new(&sink, &clock, "run-y", TTL);
        assert!(busy(&leases.acquire("d1", "ops-db").await).is_some());
    }

    fn holder_of(acquired: Result<Acquire<'_>, Error>) -> Option<Lease<'_>> {
        holder(acquired)
    }

    /// Issue 15: each upload an observer reports is in a new generation before the put goes
    /// on, with the holder's identity, until the lease is released.
    #[tokio::test(start_paused = true)]
    async fn uploads_are_recorded_in_a_new_generation_before_the_put_goes_on() {
        let sink = ObjectStoreSink::memory();
        let clock = TokioClock::starting_at(anchor());
        let here = Here { boot: "boot-1" };
        let leases = Leases::new(&sink, &clock, "run-y", TTL).processes(&here);
        let Some(mut lease) = holder(leases.acquire("d1", "ops-db").await) else {
            panic!("free");
        };
        let observer = lease.observer();
        let put = async {
            observer
                .started(UploadStarted::new("d1/2026-11-30/ops-db.sql", "up-1"))
                .await;
            let top = generations_left(&sink).await.last().copied().unwrap_or(0);
            let key = layout::lease_key(DIR, top);
            let bytes = existing::read_small(&sink, &key).await.ok().flatten();
            bytes.and_then(|b| LeaseRecord::from_json(&b).ok())
        };
        let record = tokio::select! {
            lost = lease.keep_alive() => panic!("lost: {lost}"),
            record = put => record,
        };
        let record = record.unwrap_or_else(|| LeaseRecord::new("none", anchor()));
        assert_eq!(record.host.as_deref(), Some("machine-here"));
        assert_eq!(
            (record.boot_id.as_deref(), record.pid),
            (Some("boot-1"), Some(9))
        );
        let uploads: Vec<(&str, &str)> = record
            .uploads
            .iter()
            .map(|u| (u.key.as_str(), u.upload_id.as_str()))
            .collect();
        assert_eq!(uploads, [("d1/2026-11-30/ops-db.sql", "up-1")]);
        assert_eq!(lease.generation, 2, "a new generation, not a rewrite");
    }
}
