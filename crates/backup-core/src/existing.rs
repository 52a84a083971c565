//! Reading what the sink already holds: complete backups (dump + matching manifest).

use bytes::Bytes;
use chrono::NaiveDate;
use futures::StreamExt;
use r2_sink::{BackupSink, PutOptions};

use crate::error::{Error, ErrorKind};
use crate::formats::{Manifest, VerificationRecord};
use crate::layout;

/// Manifests and leases are small; anything larger is not one of ours.
const MAX_SMALL_OBJECT: usize = 1024 * 1024;

/// The manifest of the complete backup of `database` for `date`, if there is one: the manifest
/// parses, and its dump exists with the size it records. A dump without a manifest, or whose
/// size disagrees, is not a complete backup.
pub(crate) async fn complete_backup(
    sink: &dyn BackupSink,
    prefix: &str,
    date: NaiveDate,
    database: &str,
) -> Result<Option<Manifest>, Error> {
    let key = layout::manifest_key(prefix, date, database);
    let Some(manifest) = read_manifest(sink, &key).await? else {
        return Ok(None);
    };
    let dump = sink
        .head(&manifest.dump.key)
        .await
        .map_err(|e| Error::from(e).context(format_args!("cannot check {}", manifest.dump.key)))?;
    Ok(dump
        .filter(|info| info.size == manifest.dump.bytes)
        .map(|_| manifest))
}

/// Reads and parses the manifest at `key`; `None` when there is none. A manifest that does
/// not parse is an error of kind [`ErrorKind::InvalidDump`] naming the key.
pub(crate) async fn read_manifest(
    sink: &dyn BackupSink,
    key: &str,
) -> Result<Option<Manifest>, Error> {
    match read_small(sink, key).await? {
        Some(bytes) => Manifest::from_json(&bytes)
            .map(Some)
            .map_err(|e| e.context(key)),
        None => Ok(None),
    }
}

/// Reads a small object (a manifest, a lease) whole; `None` when there is none.
pub(crate) async fn read_small(sink: &dyn BackupSink, key: &str) -> Result<Option<Vec<u8>>, Error> {
    let cannot_read = |e: r2_sink::Error| Error::from(e).context(format_args!("cannot read {key}"));
    let mut body = match sink.get(key, None).await {
        Ok(body) => body,
        Err(e) if e.kind() == r2_sink::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot_read(e)),
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        // The body broke off mid-read (a dropped connection): worth another try.
        let chunk = chunk.map_err(|e| {
            Error::new(ErrorKind::Transient, format!("cannot read {key}: {e}")).with_source(e)
        })?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_SMALL_OBJECT {
            return Err(Error::new(
                ErrorKind::InvalidDump,
                format!("{key} is too large to be a d1-backup record"),
            ));
        }
    }
    Ok(Some(bytes))
}

/// Whether the last verification of this backup showed it defective: its verification record
/// says so for the same dump (same SHA-256). Such a backup is not skipped by a rerun: it is
/// made again.
pub(crate) async fn failed_verification(
    sink: &dyn BackupSink,
    prefix: &str,
    manifest: &Manifest,
) -> bool {
    verification_outcome(sink, prefix, manifest)
        .await
        .is_some_and(|(_, defective)| defective)
}

/// What the verification record of this backup says (`ok`, `defective`), when there is one
/// for the same dump (same SHA-256).
pub(crate) async fn verification_outcome(
    sink: &dyn BackupSink,
    prefix: &str,
    manifest: &Manifest,
) -> Option<(bool, bool)> {
    let key = layout::verification_key(prefix, manifest.date, &manifest.database.name);
    let bytes = read_small(sink, &key).await.ok()??;
    let record = VerificationRecord::from_json(&bytes).ok()?;
    (record.sha256 == manifest.dump.sha256).then_some((record.ok, record.defective))
}

/// Stores `manifest` beside its dump.
pub(crate) async fn write_manifest(
    sink: &dyn BackupSink,
    prefix: &str,
    manifest: &Manifest,
) -> Result<(), Error> {
    let key = layout::manifest_key(prefix, manifest.date, &manifest.database.name);
    let body = futures::stream::iter([Ok(Bytes::from(manifest.to_json()))]).boxed();
    let options = PutOptions::default().content_type("application/json");
    sink.put_stream(&key, body, options)
        .await
        .map(|_| ())
        .map_err(|e| Error::from(e).context(format_args!("cannot write the manifest {key}")))
}
