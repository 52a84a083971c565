//! Leases: two runs (on two machines) never back up the same database at the same time.
//!
//! A lease is a chain of small objects `<prefix>/_leases/<db>/<generation>.json`, each created
//! with a conditional put ([`BackupSink::put_if_absent`]), so of two runs racing for the same
//! generation exactly one wins (on stores whose conditional create is atomic: R2, S3, memory).
//! The holder renews by creating the next generation before the current one expires; a run
//! that crashed stops renewing, its lease expires, and the next run takes over by creating the
//! next generation. A holder whose renewal finds the next generation taken has lost the lease
//! and stops. The lease folder is outside the date layout, so retention never sees it.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use r2_sink::{BackupSink, PutOptions};
use serde::{Deserialize, Serialize};

use crate::error::error_chain;
use crate::existing;

/// The content of one lease generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    owner: String,
    expires_at: DateTime<Utc>,
}

/// A held lease. Renew it with [`Lease::keep_alive`]; give it back with [`Lease::release`].
pub(crate) struct Lease<'s> {
    sink: &'s dyn BackupSink,
    dir: String,
    owner: String,
    ttl: Duration,
    generation: u64,
}

/// The outcome of trying to take a lease.
pub(crate) enum Acquire<'s> {
    /// Taken.
    Held(Lease<'s>),
    /// Another run holds it; the text says who and until when.
    Busy(String),
}

/// The folder holding the lease of `database` under `prefix`.
pub(crate) fn lease_dir(prefix: &str, database: &str) -> String {
    format!("{prefix}/_leases/{database}")
}

fn key(dir: &str, generation: u64) -> String {
    format!("{dir}/{generation:020}.json")
}

/// Tries to take the lease in `dir` for `owner`, valid for `ttl`.
pub(crate) async fn acquire<'s>(
    sink: &'s dyn BackupSink,
    dir: String,
    owner: &str,
    ttl: Duration,
) -> Result<Acquire<'s>, String> {
    let generations = generations(sink, &dir).await?;
    let next = match generations.last() {
        None => 1,
        Some(&top) => {
            let current = read(sink, &key(&dir, top)).await?;
            match current {
                Some(r) if r.expires_at > Utc::now() && r.owner != owner => {
                    return Ok(Acquire::Busy(format!(
                        "another run ({}) holds the lease until {}",
                        r.owner, r.expires_at
                    )));
                }
                // Expired, ours from a crashed run, or unreadable: take over.
                _ => top + 1,
            }
        }
    };
    let mut lease = Lease {
        sink,
        dir,
        owner: owner.to_owned(),
        ttl,
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

impl Lease<'_> {
    /// Renews the lease every third of its lifetime; returns only when it is lost (another
    /// run took it over, or renewing failed until it expired), with the reason.
    pub(crate) async fn keep_alive(&mut self) -> String {
        let every = self.ttl / 3;
        let mut deadline = tokio::time::Instant::now() + self.ttl;
        loop {
            tokio::time::sleep(every).await;
            match self.create_next().await {
                Ok(true) => {
                    deadline = tokio::time::Instant::now() + self.ttl;
                    let old = [self.generation - 1];
                    self.forget_older(&old).await;
                }
                Ok(false) => {
                    return "another run took over the lease; stopping this backup".to_owned();
                }
                Err(error) if tokio::time::Instant::now() + every >= deadline => {
                    return format!("the lease expired because it could not be renewed: {error}");
                }
                Err(error) => {
                    tracing::warn!("{}: renewing the lease failed, retrying: {error}", self.dir);
                }
            }
        }
    }

    /// Gives the lease back (best effort: an unreleased lease simply expires).
    pub(crate) async fn release(self) {
        let keys: Vec<String> = match generations(self.sink, &self.dir).await {
            Ok(gens) => gens
                .iter()
                .filter(|&&g| g <= self.generation)
                .map(|&g| key(&self.dir, g))
                .collect(),
            Err(_) => vec![key(&self.dir, self.generation)],
        };
        if let Err(error) = self.sink.delete_many(&keys).await {
            tracing::warn!(
                "{}: releasing the lease failed (it will expire): {}",
                self.dir,
                error_chain(&error)
            );
        }
    }

    /// Creates the next generation; `false` when another run created it first.
    async fn create_next(&mut self) -> Result<bool, String> {
        let record = Record {
            owner: self.owner.clone(),
            expires_at: Utc::now() + self.ttl,
        };
        let body = Bytes::from(serde_json::to_vec(&record).unwrap_or_default());
        let next = key(&self.dir, self.generation + 1);
        let mut options = PutOptions::default();
        options.content_type = Some("application/json".to_owned());
        let created = self
            .sink
            .put_if_absent(&next, body, options)
            .await
            .map_err(|e| format!("cannot write the lease {next}: {}", error_chain(&e)))?;
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
            .map(|&g| key(&self.dir, g))
            .collect();
        if !old.is_empty() {
            let _ = self.sink.delete_many(&old).await;
        }
    }
}

/// The generations present in `dir`, ascending.
async fn generations(sink: &dyn BackupSink, dir: &str) -> Result<Vec<u64>, String> {
    let folder = format!("{dir}/");
    let infos: Vec<r2_sink::ObjectInfo> = sink
        .list(&folder)
        .try_collect()
        .await
        .map_err(|e| format!("cannot list {folder}: {}", error_chain(&e)))?;
    let mut gens: Vec<u64> = infos
        .iter()
        .filter_map(|i| {
            i.key
                .strip_prefix(&folder)?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    gens.sort_unstable();
    Ok(gens)
}

async fn read(sink: &dyn BackupSink, key: &str) -> Result<Option<Record>, String> {
    let Some(bytes) = existing::read_small(sink, key).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&bytes).ok())
}
