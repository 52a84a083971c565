//! The progress of a batched import, kept in the scratch directory until the import
//! completes: which backup, into which database, cut how, how many batches are in, and the
//! database's bookmark after the last one (so a resumed import can tell that nothing else
//! changed the database since).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const FORMAT: &str = "d1-backup-import-progress";

/// One import's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    format: String,
    version: u32,
    /// The backup's dump key and SHA-256.
    pub(super) backup_key: String,
    pub(super) backup_sha256: String,
    /// The target database's uuid.
    pub(super) target_uuid: String,
    /// The cut: batch limits and excluded names (lower-cased, sorted).
    pub(super) batch_bytes: u64,
    pub(super) batch_statements: u64,
    pub(super) excluded: Vec<String>,
    /// Batches in all, and imported so far.
    pub(super) batches: u64,
    pub(super) done: u64,
    /// The database's bookmark after batch `done`.
    pub(super) bookmark: Option<String>,
}

impl Checkpoint {
    #[allow(clippy::too_many_arguments)] // Each is one field of the file.
    pub(super) fn new(
        backup_key: &str,
        backup_sha256: &str,
        target_uuid: &str,
        batch_bytes: u64,
        batch_statements: u64,
        excluded: &[String],
        batches: u64,
    ) -> Self {
        let mut excluded: Vec<String> = excluded.iter().map(|e| e.to_ascii_lowercase()).collect();
        excluded.sort();
        excluded.dedup();
        Self {
            format: FORMAT.to_owned(),
            version: 1,
            backup_key: backup_key.to_owned(),
            backup_sha256: backup_sha256.to_owned(),
            target_uuid: target_uuid.to_owned(),
            batch_bytes,
            batch_statements,
            excluded,
            batches,
            done: 0,
            bookmark: None,
        }
    }

    /// Whether `other` describes the same import (same backup, target and cut).
    pub(super) fn same_import(&self, other: &Self) -> bool {
        self.backup_key == other.backup_key
            && self.backup_sha256 == other.backup_sha256
            && self.target_uuid == other.target_uuid
            && self.batch_bytes == other.batch_bytes
            && self.batch_statements == other.batch_statements
            && self.excluded == other.excluded
            && self.batches == other.batches
    }
}

/// Where the progress of an import into `uuid` is kept.
pub(super) fn path(scratch: &Path, uuid: &str) -> PathBuf {
    let safe: String = uuid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    scratch.join(format!("d1-backup-import-{safe}.progress.json"))
}

/// The progress kept at `path`, if any (an unreadable file counts as none: it cannot be
/// trusted to resume from).
pub(super) fn load(path: &Path) -> Option<Checkpoint> {
    let text = std::fs::read(path).ok()?;
    let progress: Checkpoint = serde_json::from_slice(&text).ok()?;
    (progress.format == FORMAT && progress.version == 1).then_some(progress)
}

/// Writes `progress` to `path` atomically.
pub(super) fn save(path: &Path, progress: &Checkpoint) -> Result<()> {
    let io = |e: std::io::Error| {
        Error::local_io(
            format!("cannot record the import's progress in {}", path.display()),
            e,
        )
    };
    let text = serde_json::to_vec_pretty(progress).map_err(|e| io(std::io::Error::other(e)))?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, text).map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}
