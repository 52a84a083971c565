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
pub(crate) mod time_travel;

pub use time_travel::{TimeTravelPlan, TimeTravelReport, TimeTravelRequest};

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
    /// library reads no environment), and keeps the progress of a batched import until it
    /// completes (so that [`Existing::Resume`] finds it). The staged files are deleted
    /// afterwards.
    pub scratch_dir: PathBuf,
    /// How a restore into D1 imports (ignored for a SQLite target).
    pub d1: D1Import,
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
            d1: D1Import::default(),
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

/// The default bound of one import batch, in bytes of SQL (see [`D1Import::batch_bytes`]).
pub const DEFAULT_BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// The default bound of one import batch, in statements (see
/// [`D1Import::batch_statements`]).
pub const DEFAULT_BATCH_STATEMENTS: u64 = 100_000;

/// How a restore into D1 imports the dump.
///
/// The dump is imported in batches, each one an import of its own: **a batch is atomic** (D1
/// runs an import in one transaction and leaves the database as it was when it fails), **the
/// whole import is not** (a batch that fails leaves the batches before it imported).
/// [`Existing::Resume`] continues from the batch that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct D1Import {
    /// Tables (or indexes, triggers, views) left out, by name (case-insensitive, as SQLite
    /// compares names). A table goes with its rows, its indexes, its triggers and its
    /// `sqlite_sequence` and `sqlite_stat1` rows.
    pub exclude_tables: Vec<String>,
    /// The most bytes of SQL in one batch (default [`DEFAULT_BATCH_BYTES`]). A split row's
    /// statements stay together, so one batch can exceed it by one row.
    pub batch_bytes: u64,
    /// The most statements in one batch (default [`DEFAULT_BATCH_STATEMENTS`]).
    pub batch_statements: u64,
    /// What to do when the target already holds tables.
    pub existing: Existing,
    /// Create the target database first (it must not exist).
    pub create: Option<NewDatabase>,
}

impl Default for D1Import {
    fn default() -> Self {
        Self {
            exclude_tables: Vec::new(),
            batch_bytes: DEFAULT_BATCH_BYTES,
            batch_statements: DEFAULT_BATCH_STATEMENTS,
            existing: Existing::Refuse,
            create: None,
        }
    }
}

/// What a restore into D1 does with a target that already holds tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Existing {
    /// Refuse it (nothing is imported).
    #[default]
    Refuse,
    /// Import into it: the dump's statements run into its current content, nothing is
    /// deleted first (a `CREATE TABLE` of a name it has fails that batch).
    ImportInto,
    /// Continue the interrupted import of this same backup into it, from the batch that
    /// failed, provided nothing changed the database since the last batch imported (its
    /// bookmark is checked).
    Resume,
}

/// A D1 database to create as the target of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NewDatabase {
    /// D1's location hint (`wnam`, `enam`, `weur`, `eeur`, `apac`, `oc`); `None` lets D1
    /// choose.
    pub location: Option<String>,
}

impl NewDatabase {
    /// A new database, placed where `location` says (or where D1 chooses).
    pub fn new(location: Option<String>) -> Self {
        Self { location }
    }
}

/// Something a restore left out of a D1 import, as the caller asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExcludedObject {
    /// `table`, `virtual table`, `index`, `trigger`, `view`, or `row` (a `sqlite_sequence` or
    /// `sqlite_stat1` row about an excluded table).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// For a table: its rows left out.
    pub rows: Option<u64>,
}

/// A statement of a dump that D1 would refuse, found before anything was uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RefusedStatement {
    /// The line it starts on (from 1).
    pub line: u64,
    /// `table`, `index`, `trigger`, `view`, `virtual table` or `statement`.
    pub kind: String,
    /// The name of what it creates.
    pub name: Option<String>,
    /// The table it belongs to or writes.
    pub table: Option<String>,
    /// Why D1 would refuse it.
    pub reason: String,
}

/// Why an import into D1 was refused before any upload: every statement D1 would refuse
/// (the source of the [`ErrorKind::Refused`] error a restore returns).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ImportRefusal {
    /// Every refused statement, in dump order.
    pub statements: Vec<RefusedStatement>,
    /// The names that, left out, make the dump importable (when leaving them out can).
    pub exclude: Vec<String>,
}

impl ImportRefusal {
    pub(crate) fn new(statements: Vec<RefusedStatement>) -> Self {
        let mut exclude: Vec<String> = Vec::new();
        for s in &statements {
            let name = match s.kind.as_str() {
                "index" | "trigger" if s.table.is_some() => s.table.as_ref().or(s.name.as_ref()),
                _ => s.name.as_ref().or(s.table.as_ref()),
            };
            if let Some(name) = name
                && !exclude.iter().any(|e| e.eq_ignore_ascii_case(name))
            {
                exclude.push(name.clone());
            }
        }
        Self {
            statements,
            exclude,
        }
    }
}

impl std::fmt::Display for ImportRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "D1 would refuse {} statement(s) of this dump, so nothing was uploaded:",
            self.statements.len()
        )?;
        for s in &self.statements {
            let what = match (&s.name, &s.table) {
                (Some(name), Some(table)) if !name.eq_ignore_ascii_case(table) => {
                    format!("{} {name} on {table}", s.kind)
                }
                (Some(name), _) => format!("{} {name}", s.kind),
                (None, Some(table)) => format!("{} of table {table}", s.kind),
                (None, None) => s.kind.clone(),
            };
            write!(f, "\n  line {}: {what}: {}", s.line, s.reason)?;
        }
        if !self.exclude.is_empty() {
            write!(
                f,
                "\nleave out {} to restore the rest, or restore into SQLite, which takes them",
                self.exclude.join(", ")
            )?;
        }
        Ok(())
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
    /// How a D1 target imports.
    #[serde(skip)]
    d1: D1Import,
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
    /// Whether the stored dump is encrypted with age (decrypted with the identity on the
    /// way to the target).
    pub encrypted: bool,
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
        /// The database uuid (empty when the restore creates the database).
        uuid: String,
        /// Its tables before the import, when D1 reported them.
        num_tables: Option<u64>,
        /// Its size in bytes before the import, when D1 reported it.
        file_size: Option<u64>,
        /// The restore creates the database first.
        create: bool,
        /// With `create`: D1's location hint.
        location: Option<String>,
        /// Continuing an interrupted import: the batches already imported.
        resume_after: Option<u64>,
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
    /// D1: the batches the import was cut into.
    pub batches: Option<u64>,
    /// D1: the first batch this restore imported (greater than 1 when it resumed).
    pub first_batch: Option<u64>,
    /// D1: rows longer than D1's statement limit, rewritten into statements that fit.
    pub split_rows: u64,
    /// D1: what was left out, as asked.
    pub excluded: Vec<ExcludedObject>,
    /// D1: the uuid of the database the restore created.
    pub created_uuid: Option<String>,
    /// Findings that did not stop the restore (SQLite: failed integrity or foreign-key checks,
    /// statements too long for D1's import).
    pub warnings: Vec<String>,
}

/// Decides a restore without changing anything: finds the backup (reading the sink),
/// and checks the target (the file's state; for D1, the database through the list and
/// info endpoints). Refusals are in [`RestorePlan::refusals`], not errors, so a dry run
/// can show them; errors are what makes any plan impossible.
pub(crate) async fn restore_plan(engine: &Engine, request: &RestoreRequest) -> Result<RestorePlan> {
    let (account, entry) = restore_selection(engine, &request.database)?;
    let name = entry.name;
    let manifest = restore_manifest(engine, account, &name, request.date).await?;
    // An encrypted backup needs the identity of one of its recipients: refused now, before
    // anything is read or changed.
    crate::verify::decryption_identity(engine, &manifest)?;
    let mut plan = RestorePlan {
        backup: source_of(&account.name, &name, &manifest),
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
        d1: request.d1.clone(),
    };
    match &request.target {
        RestoreTarget::Sqlite { path } => sqlite::plan(&mut plan, path, request.force),
        RestoreTarget::D1 { database, account } => {
            d1::plan_d1(engine, &mut plan, database, account.as_deref(), request).await?;
        }
    }
    Ok(plan)
}

/// The backup a manifest describes.
fn source_of(account: &str, name: &str, manifest: &Manifest) -> RestoreSource {
    RestoreSource {
        account: account.to_owned(),
        database: name.to_owned(),
        date: manifest.date,
        key: manifest.dump.key.clone(),
        bytes: manifest.dump.bytes,
        sha256: manifest.dump.sha256.clone(),
        compression: manifest.dump.compression,
        encrypted: manifest.dump.encryption.is_some(),
        sql_bytes: manifest.dump.sql_bytes,
        bookmark: manifest.database.bookmark.clone(),
    }
}

/// The one configured database `selector` names: its account and entry.
fn restore_selection<'e>(
    engine: &'e Engine,
    selector: &Selector,
) -> Result<(&'e AccountConfig, crate::config::DatabaseEntry)> {
    let all = plan::all_targets(engine.config())?;
    let matching: Vec<_> = all
        .iter()
        .filter(|t| selector.matches(&t.account.name, &t.entry.name))
        .collect();
    match matching.as_slice() {
        [one] => Ok((one.account, one.entry.clone().into_owned())),
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
    let newest = crate::catalog::newest_complete(engine, account, name, date).await?;
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
    let identity = crate::verify::decryption_identity(engine, manifest)?;
    let (body, tally) =
        crate::verify::tallied(body.take_until(cancel.clone().cancelled_owned()).boxed());
    Ok((
        crate::verify::decoded(body, &manifest.dump, identity.as_deref()).await?,
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

/// `account/name, …` of `targets` (long lists cut, with a count).
fn qualified<'a, 'c: 'a>(targets: impl Iterator<Item = &'a plan::Target<'c>>) -> String {
    plan::some_of(targets.map(|t| format!("{}/{}", t.account.name, t.entry.name)))
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
