//! Restoring a backup (feature `sqlite`): one database's newest complete backup (or the one of
//! a given date) read back from the sink, its size and SHA-256 checked against the manifest as
//! it streams, into a SQLite file or into a D1 database through D1's import API.
//!
//! [`Engine::restore_plan`] decides everything that can be decided without changing anything
//! (which backup, which target, what would be refused); [`Engine::restore_to_sqlite`] and
//! [`Engine::restore_to_d1`] carry a plan out. A restore never leaves a half-restored target:
//! a SQLite file is restored beside its path and renamed into place only once the restore and
//! the integrity check succeeded; a D1 import is uploaded only once the whole dump was read,
//! checked and found within D1's statement limit, and D1 leaves a database whose import failed
//! as it was.

pub(crate) mod d1;
pub(crate) mod sqlite;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::PoisonError;

use chrono::NaiveDate;
use futures::StreamExt;
use serde::Serialize;
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::compression::Compression;
use crate::config::AccountConfig;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Manifest;
use crate::options::Force;
use crate::plan;
use crate::selector::Selector;
use crate::verify::Tally;

/// D1 rejects a whole import that holds a statement longer than this (bytes).
pub const D1_MAX_STATEMENT_BYTES: usize = crate::dump::D1_STATEMENT_LIMIT;

/// What to restore, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreRequest {
    /// The database whose backup is restored: `NAME` or `ACCOUNT/NAME`; it must match exactly
    /// one configured database.
    pub database: Selector,
    /// The backup date; `None` takes the newest complete backup.
    pub date: Option<NaiveDate>,
    /// Where the backup goes.
    pub target: RestoreTarget,
    /// [`Force::Yes`] lets a SQLite restore replace a non-empty file (atomically, once the
    /// restore succeeded); [`Force::No`] refuses one.
    pub force: Force,
    /// Whether the caller confirmed a D1 import (which blocks the target database while it
    /// runs and adds to its current content). Without it a D1 restore is refused.
    pub confirm: Confirm,
    /// Where a D1 restore stages the dump it uploads (the caller's temporary directory; the
    /// library reads no environment). The staged file is deleted afterwards.
    pub scratch_dir: PathBuf,
}

impl RestoreRequest {
    /// Restores the newest complete backup of `database` into `target`, refusing to replace
    /// a non-empty file or to import into D1 without confirmation.
    pub fn new(database: Selector, target: RestoreTarget, scratch_dir: impl Into<PathBuf>) -> Self {
        Self {
            database,
            date: None,
            target,
            force: Force::No,
            confirm: Confirm::No,
            scratch_dir: scratch_dir.into(),
        }
    }
}

/// Where a backup is restored to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreTarget {
    /// A SQLite file.
    #[non_exhaustive]
    Sqlite {
        /// The file.
        path: PathBuf,
    },
    /// A D1 database.
    #[non_exhaustive]
    D1 {
        /// Its name or uuid.
        database: String,
        /// The configured account it belongs to; `None` means the backup's own account.
        account: Option<String>,
    },
}

impl RestoreTarget {
    /// A SQLite file at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self::Sqlite { path: path.into() }
    }

    /// The D1 database `database` (name or uuid) of the configured account `account`, or of
    /// the backup's account when `None`.
    pub fn d1(database: impl Into<String>, account: Option<String>) -> Self {
        Self::D1 {
            database: database.into(),
            account,
        }
    }
}

/// Whether the caller confirmed an operation that changes a live database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confirm {
    /// Not confirmed: the operation is refused.
    #[default]
    No,
    /// Confirmed.
    Yes,
}

/// What a restore would do, decided without changing anything.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RestorePlan {
    /// The backup to restore.
    pub backup: RestoreSource,
    /// Where it would go.
    pub target: PlannedTarget,
    /// Why the restore would be refused as requested; empty when it would go ahead.
    pub refusals: Vec<String>,
    /// What the restore would do to the target that its owner should know.
    pub notes: Vec<String>,
    #[serde(skip)]
    manifest: Manifest,
    #[serde(skip)]
    force: Force,
    /// The index of the target's account in the configuration (D1 targets).
    #[serde(skip)]
    account_index: Option<usize>,
    #[serde(skip)]
    scratch_dir: PathBuf,
}

impl RestorePlan {
    /// Whether the restore would go ahead (no refusal).
    pub fn allowed(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// The backup a restore reads, as its manifest records it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RestoreSource {
    /// The account's configured name.
    pub account: String,
    /// The database name.
    pub database: String,
    /// The backup's date.
    pub date: NaiveDate,
    /// The dump's key.
    pub key: String,
    /// The stored dump's size in bytes.
    pub bytes: u64,
    /// The stored dump's SHA-256 (lower-case hex).
    pub sha256: String,
    /// How the stored dump is compressed.
    pub compression: Compression,
    /// The SQL text's size before compression.
    pub sql_bytes: u64,
    /// The D1 bookmark the export was taken at (null for local databases).
    pub bookmark: Option<String>,
}

/// The target of a restore plan.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlannedTarget {
    /// A SQLite file.
    #[non_exhaustive]
    Sqlite {
        /// The file.
        path: String,
        /// Its current size, when it exists.
        existing_bytes: Option<u64>,
    },
    /// A D1 database.
    #[non_exhaustive]
    D1 {
        /// The configured account's name.
        account: String,
        /// The Cloudflare account id.
        account_id: String,
        /// The database name.
        database: String,
        /// The database uuid.
        uuid: String,
        /// Its tables before the import, when D1 reported them.
        num_tables: Option<u64>,
        /// Its size in bytes before the import, when D1 reported it.
        file_size: Option<u64>,
    },
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct RestoreReport {
    /// SQLite: statements executed. D1: statements uploaded.
    pub statements: u64,
    /// SQLite: rows per table of the restored file. D1: `INSERT` statements (rows) per table
    /// of the uploaded dump.
    pub tables: BTreeMap<String, u64>,
    /// SQLite: whether an existing file was replaced.
    pub replaced: bool,
    /// D1: `BEGIN`/`COMMIT` statements removed from the dump (D1's import rejects them).
    pub stripped: u64,
    /// D1: the bytes uploaded.
    pub uploaded_bytes: Option<u64>,
    /// D1: the statements D1 reports it ran.
    pub num_queries: Option<u64>,
    /// D1: the database's bookmark after the import (a Time Travel point).
    pub final_bookmark: Option<String>,
    /// Findings that did not stop the restore (SQLite: failed integrity or foreign-key checks,
    /// statements too long for D1's import).
    pub warnings: Vec<String>,
}

/// Decides a restore without changing anything: finds the backup (reading the sink),
/// and checks the target (the file's state; for D1, the database through the list and
/// info endpoints). Refusals are in [`RestorePlan::refusals`], not errors, so a dry run
/// can show them; errors are what makes any plan impossible.
pub(crate) async fn restore_plan(engine: &Engine, request: &RestoreRequest) -> Result<RestorePlan> {
    let (account, name) = restore_selection(engine, &request.database)?;
    let manifest = restore_manifest(engine, account, &name, request.date).await?;
    let mut plan = RestorePlan {
        backup: RestoreSource {
            account: account.name.clone(),
            database: name,
            date: manifest.date,
            key: manifest.dump.key.clone(),
            bytes: manifest.dump.bytes,
            sha256: manifest.dump.sha256.clone(),
            compression: manifest.dump.compression,
            sql_bytes: manifest.dump.sql_bytes,
            bookmark: manifest.database.bookmark.clone(),
        },
        target: PlannedTarget::Sqlite {
            path: String::new(),
            existing_bytes: None,
        },
        refusals: Vec::new(),
        notes: Vec::new(),
        manifest,
        force: request.force,
        account_index: None,
        scratch_dir: request.scratch_dir.clone(),
    };
    match &request.target {
        RestoreTarget::Sqlite { path } => sqlite::plan(&mut plan, path, request.force),
        RestoreTarget::D1 { database, account } => {
            d1::plan_d1(
                engine,
                &mut plan,
                database,
                account.as_deref(),
                request.confirm,
            )
            .await?;
        }
    }
    Ok(plan)
}

/// The one configured database `selector` names: its account and name.
fn restore_selection<'e>(
    engine: &'e Engine,
    selector: &Selector,
) -> Result<(&'e AccountConfig, String)> {
    let all = plan::all_targets(engine.config())?;
    let matching: Vec<_> = all
        .iter()
        .filter(|t| selector.matches(&t.account.name, &t.entry.name))
        .collect();
    match matching.as_slice() {
        [one] => Ok((one.account, one.entry.name.clone())),
        [] => Err(Error::new(
            ErrorKind::NotConfigured,
            format!(
                "the database selector {selector} matches no configured database; configured: {}",
                qualified(all.iter())
            ),
        )),
        several => Err(Error::new(
            ErrorKind::NotConfigured,
            format!(
                "the database selector {selector} matches {}; name one as ACCOUNT/NAME",
                qualified(several.iter().copied())
            ),
        )),
    }
}

/// The manifest of the newest complete backup of `name` (of `date` when given).
async fn restore_manifest(
    engine: &Engine,
    account: &AccountConfig,
    name: &str,
    date: Option<NaiveDate>,
) -> Result<Manifest> {
    let found = crate::prune::find_backups(engine, account, &[name]).await?;
    let newest = found
        .into_iter()
        .filter(|f| date.is_none_or(|d| f.date == d))
        .filter_map(|f| f.complete)
        .max_by_key(|m| m.date);
    newest.ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            match date {
                Some(d) => format!(
                    "{}/{name} has no complete backup dated {d}; list the backups to see what there is",
                    account.name
                ),
                None => format!(
                    "{}/{name} has no complete backup; back it up first",
                    account.name
                ),
            },
        )
    })
}

/// The stored dump as a blocking reader (decompressed, ending early on cancellation), and
/// the running size and SHA-256 of the stored bytes read so far.
async fn stored_dump(
    engine: &Engine,
    manifest: &Manifest,
    cancel: &CancellationToken,
) -> Result<(impl std::io::Read + Send + 'static, Tally)> {
    let key = &manifest.dump.key;
    let body = engine
        .sink()
        .get(key, None)
        .await
        .map_err(|e| Error::from(e).context(format_args!("cannot read {key}")))?;
    let (body, tally) =
        crate::verify::tallied(body.take_until(cancel.clone().cancelled_owned()).boxed());
    Ok((
        crate::verify::decoded(body, manifest.dump.compression),
        tally,
    ))
}

/// Turns a finished read of the stored dump into its outcome: cancelled, altered (size or
/// SHA-256 differ from the manifest, which wins over any other failure), or as `read` says.
async fn settle<T>(
    engine: &Engine,
    manifest: &Manifest,
    cancel: &CancellationToken,
    tally: &Tally,
    read: Result<T>,
) -> Result<T> {
    if cancel.is_cancelled() {
        return Err(Error::new(
            ErrorKind::Cancelled,
            "cancelled while reading the backup; the target was not changed",
        ));
    }
    let (mut bytes, mut digest) = {
        let t = tally.lock().unwrap_or_else(PoisonError::into_inner);
        (t.0, hex::encode(t.1.clone().finalize()))
    };
    if read.is_err() {
        // The read stopped early: hash the whole object to tell a bad dump from an altered one.
        if let Ok(whole) = crate::verify::digest(engine, &manifest.dump.key).await {
            (bytes, digest) = whole;
        }
    }
    let key = &manifest.dump.key;
    if bytes != manifest.dump.bytes {
        return Err(Error::new(
            ErrorKind::InvalidDump,
            format!(
                "size mismatch: {key} has {bytes} bytes, the manifest records {}; the stored dump cannot be trusted, nothing was restored",
                manifest.dump.bytes
            ),
        ));
    }
    if digest != manifest.dump.sha256 {
        return Err(Error::new(
            ErrorKind::InvalidDump,
            format!(
                "sha256 mismatch: {key} hashes to {digest}, the manifest records {}; the stored dump was altered, nothing was restored",
                manifest.dump.sha256
            ),
        ));
    }
    read
}

/// `account/name, …` of `targets`.
fn qualified<'a, 'c: 'a>(targets: impl Iterator<Item = &'a plan::Target<'c>>) -> String {
    targets
        .map(|t| format!("{}/{}", t.account.name, t.entry.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn wrong_target(method: &str, kind: &str) -> Error {
    Error::new(
        ErrorKind::NotConfigured,
        format!(
            "{method} needs a plan whose target is {kind}; call the method matching the plan's target"
        ),
    )
}

fn refuse(plan: &RestorePlan) -> Result<()> {
    if plan.allowed() {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::Refused, plan.refusals.join("; ")))
    }
}

/// A dump that does not read back or restore (kind `InvalidDump`, or `LocalIo` when the
/// disk failed).
fn dump_error(error: crate::restore::RestoreError) -> Error {
    Error::from(error).context("the dump does not restore")
}

/// A statement D1 would refuse: longer than its limit. D1 would reject the whole import, so
/// nothing is uploaded.
fn statement_too_large(line: u64, table: Option<&str>, bytes: usize) -> Error {
    let table = table.map(|t| format!(" (table {t})")).unwrap_or_default();
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "line {line}: a statement of {bytes} bytes{table} is longer than D1's {D1_MAX_STATEMENT_BYTES}-byte statement limit, and D1 would reject the whole import; nothing was uploaded (restore it into SQLite instead, or shorten that row)"
        ),
    )
}
