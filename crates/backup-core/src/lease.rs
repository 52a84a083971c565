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
//! Time comes from the engine's [`Clock`] (when a record expires) and from `tokio::time`
//! (when to renew), so tests pause time instead of sleeping.

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use r2_sink::{BackupSink, PutOptions};

use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::existing;
use crate::formats::LeaseRecord;
use crate::layout;

/// What taking a lease needs: where, who, for how long, and what time it is.
#[derive(Clone, Copy)]
pub(crate) struct Leases<'s> {
    sink: &'s dyn BackupSink,
    clock: &'s dyn Clock,
    /// The holder's name written into every record (the engine's owner).
    owner: &'s str,
    /// How long a record is valid; the holder renews every third of it.
    ttl: Duration,
}

/// A held lease. Renew it with [`Lease::keep_alive`]; give it back with [`Lease::release`].
pub(crate) struct Lease<'s> {
    leases: Leases<'s>,
    /// The lease folder, from [`layout::lease_dir`].
    dir: String,
    /// The generation this holder created last.
    generation: u64,
}

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
        }
    }

    /// Tries to take the lease of `database` under `prefix`. An error (kind from the sink) means
    /// the lease folder could not be read or written.
    pub(crate) async fn acquire(&self, prefix: &str, database: &str) -> Result<Acquire<'s>, Error> {
        let dir = layout::lease_dir(prefix, database);
        let generations = generations(self.sink, &dir).await?;
        let next = match generations.last() {
            None => 1,
            Some(&top) => match read(self.sink, &layout::lease_key(&dir, top)).await? {
                Some(r) if r.expires_at > self.clock.now() && r.owner != self.owner => {
                    return Ok(Acquire::Busy(format!(
                        "another run ({}) holds the lease until {}",
                        r.owner, r.expires_at
                    )));
                }
                // Expired, ours from a crashed run, or unreadable: take over.
                _ => top + 1,
            },
        };
        let mut lease = Lease {
            leases: *self,
            dir,
            generation: next - 1,
        };
        if lease.create_next().await? {
            lease.forget_older(&generations).await;
            Ok(Acquire::Held(lease))
        } else {
            Ok(Acquire::Busy(
                "another run took the lease at the same moment".to_owned(),
            ))
        }
    }
}

impl Lease<'_> {
    /// Renews the lease every third of its lifetime; returns only when it is lost (another
    /// run took it over, or renewing failed until it expired), with an error of kind
    /// [`ErrorKind::Busy`] that says why (and, after failed renewals, the sink's error).
    pub(crate) async fn keep_alive(&mut self) -> Error {
        let ttl = self.leases.ttl;
        let every = ttl / 3;
        let mut deadline = tokio::time::Instant::now() + ttl;
        loop {
            tokio::time::sleep(every).await;
            match self.create_next().await {
                Ok(true) => {
                    deadline = tokio::time::Instant::now() + ttl;
                    let old = [self.generation - 1];
                    self.forget_older(&old).await;
                }
                Ok(false) => {
                    return Error::new(
                        ErrorKind::Busy,
                        "another run took over the lease; stopping this backup",
                    );
                }
                Err(error) if tokio::time::Instant::now() + every >= deadline => {
                    return Error::new(
                        ErrorKind::Busy,
                        format!(
                            "the lease expired because it could not be renewed: {}",
                            error.chain()
                        ),
                    )
                    .with_source(error);
                }
                Err(error) => {
                    tracing::warn!(
                        "{}: renewing the lease failed, retrying: {}",
                        self.dir,
                        error.chain()
                    );
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
        let Leases {
            sink,
            clock,
            owner,
            ttl,
        } = self.leases;
        let expires_at =
            clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::TimeDelta::MAX);
        let body = Bytes::from(LeaseRecord::new(owner, expires_at).to_json());
        let next = layout::lease_key(&self.dir, self.generation + 1);
        let options = PutOptions::default().content_type("application/json");
        let created = sink
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
            record,
            Some(LeaseRecord::new(
                "machine-a",
                anchor() + chrono::Duration::seconds(91)
            ))
        );
    }
}
