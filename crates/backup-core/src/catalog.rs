//! What the sink holds for some databases, decided from object listings.
//!
//! One streamed listing of an account's folder gives, per database and date, the objects of
//! the layout with their sizes and modification times. A backup is complete from the listing
//! alone when it has one manifest and one dump and the manifest was written no earlier than
//! the dump (a run writes the dump, then the manifest naming it). Only where the listing cannot
//! tell (a manifest beside several dumps, a dump newer than its manifest, a store that reports no
//! times, an object too large or empty to be a manifest) is the manifest read, and then it
//! decides exactly as before: it parses and its dump exists with the size it records.
//! Verification records are read only when a caller asks ([`verification`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt, stream};
use r2_sink::BackupSink;

use crate::config::AccountConfig;
use crate::engine::Engine;
use crate::error::Error;
use crate::existing;
use crate::formats::Manifest;
use crate::layout::{self, LayoutKey};

/// Manifests are small; an object this size or larger (or empty) is read, not trusted.
const MAX_MANIFEST: u64 = 1024 * 1024;

/// How many manifests or records are read at once.
const READS_AT_ONCE: usize = 8;

/// An object of the layout, as the listing shows it.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub(crate) key: String,
    pub(crate) kind: LayoutKey,
    pub(crate) size: u64,
    pub(crate) modified: Option<SystemTime>,
}

/// One database's objects for one date, and what they make.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) database: String,
    pub(crate) date: NaiveDate,
    /// Every object of the layout for this database and date.
    pub(crate) keys: Vec<Object>,
    /// The key of the dump the manifest vouches for, when the backup is complete.
    pub(crate) complete: Option<String>,
    /// The manifest, when it was read (the listing could not decide, or a caller needed it).
    pub(crate) manifest: Option<Manifest>,
}

impl Found {
    pub(crate) fn all_keys(&self) -> Vec<String> {
        self.keys.iter().map(|o| o.key.clone()).collect()
    }

    /// The dump of the backup: the complete one, else any dump of the date.
    pub(crate) fn dump(&self) -> Option<&Object> {
        match &self.complete {
            Some(key) => self.keys.iter().find(|o| o.key == *key),
            None => self.keys.iter().find(|o| o.kind.is_dump()),
        }
    }

    pub(crate) fn has(&self, kind: &LayoutKey) -> bool {
        self.keys.iter().any(|o| o.kind == *kind)
    }

    /// Splits the keys into those of the backup and stale dumps the manifest does not name.
    pub(crate) fn split_stale(&self) -> (Vec<String>, Vec<String>) {
        let Some(dump) = &self.complete else {
            return (self.all_keys(), Vec::new());
        };
        let (keep, stale): (Vec<_>, Vec<_>) = self.keys.iter().partition(|o| {
            o.key == *dump || matches!(o.kind, LayoutKey::Manifest | LayoutKey::Verification)
        });
        let names = |v: Vec<&Object>| v.into_iter().map(|o| o.key.clone()).collect();
        (names(keep), names(stale))
    }

    /// What the listing alone says: `Some(dump key)` when complete, `None` when there is no
    /// manifest, `Err(())` when the manifest must be read.
    fn decide_from_listing(&self) -> Result<Option<String>, ()> {
        let mut manifests = self.keys.iter().filter(|o| o.kind == LayoutKey::Manifest);
        let Some(manifest) = manifests.next() else {
            return Ok(None);
        };
        let mut dumps = self.keys.iter().filter(|o| o.kind.is_dump());
        let dump = match (dumps.next(), dumps.next()) {
            // Whatever the manifest says, there is no dump to vouch for.
            (None, _) => return Ok(None),
            (Some(dump), None) => dump,
            (Some(_), Some(_)) => return Err(()),
        };
        let written_after = match (manifest.modified, dump.modified) {
            (Some(m), Some(d)) => m >= d,
            _ => false,
        };
        if written_after && (1..MAX_MANIFEST).contains(&manifest.size) {
            Ok(Some(dump.key.clone()))
        } else {
            Err(())
        }
    }

    /// Reads the manifest and decides from it: it parses, and its dump is listed with the
    /// size it records.
    async fn read_manifest(&mut self, sink: &dyn BackupSink, prefix: &str) -> Result<(), Error> {
        let key = layout::manifest_key(prefix, self.date, &self.database);
        // An unreadable manifest is an error: deciding without it could delete a good backup.
        let manifest = existing::read_manifest(sink, &key).await?.filter(|m| {
            self.keys
                .iter()
                .any(|o| o.key == m.dump.key && o.size == m.dump.bytes)
        });
        self.complete = manifest.as_ref().map(|m| m.dump.key.clone());
        self.manifest = manifest;
        Ok(())
    }
}

/// Every backup (complete or not) of `databases` under the account's prefix, by database and
/// date: one streamed listing, plus a manifest read only where the listing cannot decide.
pub(crate) async fn find_backups(
    engine: &Engine,
    account: &AccountConfig,
    databases: &[&str],
) -> Result<Vec<Found>, Error> {
    let sink = engine.sink().as_ref();
    let prefix = account.prefix.as_str();
    let mut found = scan(sink, prefix, databases).await?;
    let mut undecided = Vec::new();
    for f in &mut found {
        match f.decide_from_listing() {
            Ok(complete) => f.complete = complete,
            Err(()) => undecided.push(f),
        }
    }
    stream::iter(undecided)
        .map(|f| f.read_manifest(sink, prefix))
        .buffer_unordered(READS_AT_ONCE)
        .try_collect::<()>()
        .await?;
    Ok(found)
}

/// Lists `prefix/` once, page by page, keeping only the layout's keys of `databases`.
async fn scan(
    sink: &dyn BackupSink,
    prefix: &str,
    databases: &[&str],
) -> Result<Vec<Found>, Error> {
    let folder = format!("{prefix}/");
    let mut listing = sink.list(&folder);
    let mut by_date: BTreeMap<(String, NaiveDate), Vec<Object>> = BTreeMap::new();
    while let Some(info) = listing
        .try_next()
        .await
        .map_err(|e| Error::from(e).context(format_args!("cannot list {folder}")))?
    {
        if let Some((date, name, kind)) = layout::parse_key(prefix, &info.key)
            && databases.contains(&name.as_str())
        {
            by_date.entry((name, date)).or_default().push(Object {
                key: info.key,
                kind,
                size: info.size,
                modified: info.last_modified,
            });
        }
    }
    Ok(by_date
        .into_iter()
        .map(|((database, date), keys)| Found {
            database,
            date,
            keys,
            complete: None,
            manifest: None,
        })
        .collect())
}

/// What the verification record of a complete backup says (`ok`, `defective`), when there is
/// one for the same dump (same SHA-256): reads the record, and the manifest if it was not
/// read yet. `None` without a record or for an incomplete backup.
pub(crate) async fn verification(
    sink: &dyn BackupSink,
    prefix: &str,
    found: &mut Found,
) -> Result<Option<(bool, bool)>, Error> {
    if found.complete.is_none() || !found.has(&LayoutKey::Verification) {
        return Ok(None);
    }
    if found.manifest.is_none() {
        found.read_manifest(sink, prefix).await?;
    }
    Ok(match &found.manifest {
        Some(manifest) => existing::verification_outcome(sink, prefix, manifest).await,
        None => None,
    })
}

/// Reads the manifest of every complete backup in `found` that was decided from the listing.
pub(crate) async fn read_manifests(
    sink: &dyn BackupSink,
    prefix: &str,
    found: &mut [Found],
) -> Result<(), Error> {
    stream::iter(
        found
            .iter_mut()
            .filter(|f| f.complete.is_some() && f.manifest.is_none()),
    )
    .map(|f| f.read_manifest(sink, prefix))
    .buffer_unordered(READS_AT_ONCE)
    .try_collect::<()>()
    .await
}

/// The manifest of the newest complete backup of `name` (of `date` when given), read and
/// checked against the listing; only that backup's manifest (and any newer one the listing
/// took for complete but that is not) is read.
pub(crate) async fn newest_complete(
    engine: &Engine,
    account: &AccountConfig,
    name: &str,
    date: Option<NaiveDate>,
) -> Result<Option<Manifest>, Error> {
    let sink = engine.sink().as_ref();
    let mut found = find_backups(engine, account, &[name]).await?;
    found.retain(|f| f.complete.is_some() && date.is_none_or(|d| f.date == d));
    while let Some(mut newest) = found.pop() {
        if newest.manifest.is_none() {
            newest.read_manifest(sink, &account.prefix).await?;
        }
        if let Some(manifest) = newest.manifest.filter(|_| newest.complete.is_some()) {
            return Ok(Some(manifest));
        }
    }
    Ok(None)
}
