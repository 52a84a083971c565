//! Verification (feature `sqlite`): prove a backup by restoring it. For each selected
//! database, the newest complete backup (or the one of a given date) is read back from the
//! sink, its size and SHA-256 compared with the manifest, and it is restored into a scratch
//! SQLite file where `PRAGMA integrity_check` and `PRAGMA foreign_key_check` run and every
//! table's rows are counted. With `against_live`, the restored database is then compared
//! table by table with the live one (see [`LiveComparison`]). What was found is stored beside
//! the manifest as a verification record (`<db>.verification.json`), so `list` and operators
//! can see when each backup was last proven.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compression::Compression;
use crate::encryption::AgeIdentity;
use crate::engine::Engine;
use crate::error::error_chain;
use crate::error::{Error, ErrorKind};
use crate::formats::{VERIFICATION_KIND, VERIFICATION_VERSION, VerificationRecord};
use crate::layout;
use crate::live::{self, LiveComparison};
use crate::manifest::{self, Manifest, ManifestDump};
use crate::options::VerifyOptions;
use crate::plan::{self, Target};
use crate::restore;

/// One database's verification.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Verification {
    /// The account's configured name.
    pub account: String,
    /// The database name.
    pub database: String,
    /// The verified backup's date (null when there is none).
    pub date: Option<NaiveDate>,
    /// The dump's key.
    pub key: Option<String>,
    /// True when every check passed.
    pub ok: bool,
    /// Every problem found; empty when `ok`.
    pub problems: Vec<String>,
    /// True when the backup itself was shown to be defective (altered, does not restore, fails
    /// the integrity checks, or differs from the live database it was taken from), as opposed
    /// to a check that could not run. A rerun makes a defective backup again, and it never
    /// counts towards retention's `min_keep`.
    pub defective: bool,
    /// Rows per table of the restored database.
    pub tables: BTreeMap<String, u64>,
    /// Statements the restore executed.
    pub statements: u64,
    /// The comparison with the live database (`against_live`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveComparison>,
    /// Things worth knowing that do not fail the verification (e.g. differences where the live
    /// database has moved on, or a record that could not be stored).
    pub notes: Vec<String>,
    /// The key of the verification record written, if one was.
    pub record: Option<String>,
}

impl Verification {
    /// Nothing checked yet.
    fn new(target: &Target<'_>) -> Self {
        Self {
            account: target.account.name.clone(),
            database: target.entry.name.clone(),
            date: None,
            key: None,
            ok: false,
            defective: false,
            problems: Vec::new(),
            tables: BTreeMap::new(),
            statements: 0,
            live: None,
            notes: Vec::new(),
            record: None,
        }
    }
}

/// Verifies the selected databases' backups. Never exports anything. Encrypted backups are
/// refused at once, before anything is read or written, without an identity that is one of
/// their recipients.
pub(crate) async fn verify(
    engine: &Engine,
    options: &VerifyOptions,
) -> Result<Vec<Verification>, Error> {
    let targets = plan::select(engine.config(), &options.only)?;
    let mut found = Vec::with_capacity(targets.len());
    for target in &targets {
        let manifest = crate::catalog::newest_complete(
            engine,
            target.account,
            &target.entry.name,
            options.date,
        )
        .await;
        if let Ok(Some(manifest)) = &manifest {
            decryption_identity(engine, manifest)?;
        }
        found.push(manifest);
    }
    let mut results = Vec::new();
    for (target, manifest) in targets.iter().zip(found) {
        let mut v = Verification::new(target);
        match manifest {
            Ok(Some(manifest)) => {
                v = verify_backup(engine, target, &manifest, options).await;
                results.push(v);
                continue;
            }
            Ok(None) => v.problems.push(match options.date {
                Some(d) => {
                    format!("no complete backup dated {d}; list the backups to see what there is")
                }
                None => "no complete backup; back it up first".to_owned(),
            }),
            Err(error) => v.problems.push(error.chain()),
        }
        v.ok = v.problems.is_empty();
        results.push(v);
    }
    Ok(results)
}

/// The identity that decrypts the backup `manifest` describes (`None` when it is not
/// encrypted), checked to be one of its recipients: an error of kind
/// [`ErrorKind::Config`] when there is none or it is the wrong one.
pub(crate) fn decryption_identity(
    engine: &Engine,
    manifest: &Manifest,
) -> Result<Option<Arc<AgeIdentity>>, Error> {
    let Some(encryption) = &manifest.dump.encryption else {
        return Ok(None);
    };
    let what = format!(
        "the backup of {}/{} dated {}",
        manifest.account, manifest.database.name, manifest.date
    );
    let identity = engine.identity(&what)?;
    identity
        .check_can_decrypt(encryption)
        .map_err(|e| e.context(&what))?;
    Ok(Some(identity))
}

/// Verifies one complete backup and stores the record (when `options.record`).
pub(crate) async fn verify_backup(
    engine: &Engine,
    target: &Target<'_>,
    manifest: &Manifest,
    options: &VerifyOptions,
) -> Verification {
    let mut v = Verification::new(target);
    // Without the identity nothing could be checked: no record (it would say nothing of
    // the backup itself, and would replace what an earlier verification found).
    let identity = match decryption_identity(engine, manifest) {
        Ok(identity) => identity,
        Err(error) => {
            v.date = Some(manifest.date);
            v.key = Some(manifest.dump.key.clone());
            v.problems.push(error.chain());
            return v;
        }
    };
    verify_one(
        engine,
        target,
        manifest,
        identity.as_deref(),
        options,
        &mut v,
    )
    .await;
    v.ok = v.problems.is_empty();
    if options.record {
        write_record(engine, target, manifest, &mut v).await;
    }
    v
}

/// What a run verifies: its own options, else `[run] verify` (with the engine's scratch
/// directory).
pub(crate) fn verify_options(
    engine: &Engine,
    options: &crate::options::RunOptions,
) -> Option<VerifyOptions> {
    use crate::config::VerifyMode;
    if let Some(verify) = &options.verify {
        return Some(verify.clone());
    }
    let mode = engine.config().run.verify;
    if mode == VerifyMode::None {
        return None;
    }
    let Some(dir) = engine.scratch_dir() else {
        tracing::warn!(
            "[run] verify is set but the engine has no scratch directory (EngineBuilder::scratch_dir); backups are not verified"
        );
        return None;
    };
    Some(VerifyOptions::new(dir).against_live(mode == VerifyMode::AgainstLive))
}

/// `run --verify`: verifies each database this run backed up; one that does not verify
/// becomes `failed` (its backup stays, and the next run backs it up again).
pub(crate) async fn verify_after_run(
    engine: &Engine,
    date: NaiveDate,
    targets: &[Target<'_>],
    databases: &mut [crate::report::DatabaseReport],
    options: &VerifyOptions,
    cancel: &tokio_util::sync::CancellationToken,
) {
    use crate::report::Status;
    for (target, report) in targets.iter().zip(databases.iter_mut()) {
        if report.status != Status::Ok || cancel.is_cancelled() {
            continue;
        }
        let manifest = match crate::existing::complete_backup(
            engine.sink().as_ref(),
            &target.account.prefix,
            date,
            &target.entry.name,
        )
        .await
        {
            Ok(Some(manifest)) if manifest.dump.key == report.key => manifest,
            Ok(_) => {
                report.verified = Some(false);
                report.fail(Error::new(
                    ErrorKind::Storage,
                    "the backup was stored but its manifest cannot be found to verify it",
                ));
                continue;
            }
            Err(e) => {
                report.verified = Some(false);
                report.fail(Error::new(
                    ErrorKind::Storage,
                    format!("cannot verify the backup: {}", e.chain()),
                ));
                continue;
            }
        };
        let v = tokio::select! {
            v = verify_backup(engine, target, &manifest, options) => v,
            () = cancel.cancelled() => continue,
        };
        report.verified = Some(v.ok);
        report.notes.extend(v.notes);
        if !v.ok {
            report.fail(Error::new(
                ErrorKind::InvalidDump,
                format!(
                    "the backup was stored but does not verify: {}",
                    v.problems.join("; ")
                ),
            ));
        }
    }
}

/// Reads one backup from the sink, hashing it on the way, restores it into a scratch file
/// and checks it; with `against_live`, compares it with the live database. Everything found
/// goes into `v`.
async fn verify_one(
    engine: &Engine,
    target: &Target<'_>,
    manifest: &Manifest,
    identity: Option<&AgeIdentity>,
    options: &VerifyOptions,
    v: &mut Verification,
) {
    v.date = Some(manifest.date);
    v.key = Some(manifest.dump.key.clone());
    let key = &manifest.dump.key;
    let body = match engine.sink().get(key, None).await {
        Ok(body) => body,
        Err(e) => {
            return v
                .problems
                .push(format!("cannot read {key}: {}", error_chain(&e)));
        }
    };
    // Hash the stored bytes on their way to the restore.
    let (body, seen) = tallied(body);
    let reader = match decoded(body, &manifest.dump, identity).await {
        Ok(reader) => reader,
        Err(e) => {
            // A body that is not the age file its manifest says is defective; the caller's
            // key that does not open it is not.
            v.defective = e.kind() == ErrorKind::InvalidDump;
            v.problems.push(e.chain());
            return;
        }
    };
    let scratch = Scratch(options.scratch_dir.join(format!(
        "d1-backup-verify-{}-{}-{}.sqlite",
        std::process::id(),
        manifest.database.name,
        manifest.date
    )));
    let path = scratch.0.clone();
    let restored = tokio::task::spawn_blocking(move || restore_and_check(reader, &path))
        .await
        .unwrap_or_else(|e| {
            Err(Error::new(
                ErrorKind::LocalIo,
                format!("the restore task failed: {e}"),
            ))
        });
    let restore_finished = restored.is_ok();
    let (mut bytes, mut digest) = {
        let t = seen.lock().unwrap_or_else(PoisonError::into_inner);
        (t.0, hex::encode(t.1.clone().finalize()))
    };
    if !restore_finished {
        // The restore stopped early: hash the whole object on its own.
        match self::digest(engine, key).await {
            Ok((b, d)) => (bytes, digest) = (b, d),
            Err(e) => v.problems.push(e.chain()),
        }
    }
    record_restore(v, restored);
    if options.against_live && restore_finished {
        compare_live(engine, target, manifest, &scratch.0, v).await;
    }
    drop(scratch);
    record_digest(v, manifest, bytes, &digest);
}

/// Bytes and SHA-256 of the stored dump read so far.
pub(crate) type Tally = Arc<Mutex<(u64, Sha256)>>;

/// `body` as it was, counting and hashing every chunk that passes into the returned tally.
pub(crate) fn tallied(body: r2_sink::ByteStream) -> (r2_sink::ByteStream, Tally) {
    let tally: Tally = Arc::new(Mutex::new((0, Sha256::new())));
    let seen = Arc::clone(&tally);
    let body = body
        .inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                let mut t = seen.lock().unwrap_or_else(PoisonError::into_inner);
                t.0 += chunk.len() as u64;
                t.1.update(chunk);
            }
        })
        .boxed();
    (body, tally)
}

/// What a scratch restore found: its statistics, the checks' problems, rows per table.
type Restored = (restore::RestoreStats, Vec<String>, BTreeMap<String, u64>);

/// Restores the dump into a new SQLite file at `path` (statement by statement, going on past
/// refused ones so that one pass names every defect) and checks it. Runs on a blocking
/// thread. A dump that does not read back fails with kind `InvalidDump`; a read error is the
/// transport's (the hash check tells corruption from it).
fn restore_and_check(
    reader: impl std::io::Read,
    path: &std::path::Path,
) -> Result<Restored, Error> {
    let _ = std::fs::remove_file(path);
    let sqlite = |e: rusqlite::Error| {
        Error::new(
            ErrorKind::LocalIo,
            format!("SQLite cannot open the scratch file: {e}"),
        )
    };
    let conn = rusqlite::Connection::open(path).map_err(sqlite)?;
    let stats = restore::restore_dump_keep_going(std::io::BufReader::new(reader), &conn)
        .map_err(Error::from)?;
    let problems = restore::check_database(&conn).map_err(Error::from)?;
    let tables = restore::count_rows(&conn).map_err(Error::from)?;
    Ok((stats, problems, tables))
}

/// Records a scratch restore's outcome: what did not restore exactly, and the checks.
fn record_restore(v: &mut Verification, restored: Result<Restored, Error>) {
    match restored {
        Ok((stats, problems, tables)) => {
            v.statements = stats.statements;
            v.tables = tables;
            v.defective |= !problems.is_empty() || stats.failed > 0;
            for failure in &stats.failures {
                v.problems
                    .push(format!("the dump does not restore exactly: {failure}"));
            }
            let unlisted = stats.failed.saturating_sub(stats.failures.len() as u64);
            if unlisted > 0 {
                v.problems.push(format!(
                    "{unlisted} more statements of the dump were refused by SQLite"
                ));
            }
            v.problems.extend(problems);
        }
        Err(error) => {
            v.defective |= error.kind() == ErrorKind::InvalidDump;
            v.problems
                .push(format!("the dump does not restore: {}", error.message()));
        }
    }
}

/// Records whether the stored bytes are the ones the manifest vouches for.
fn record_digest(v: &mut Verification, manifest: &Manifest, bytes: u64, digest: &str) {
    let key = &manifest.dump.key;
    if bytes != manifest.dump.bytes {
        v.defective = true;
        v.problems.push(format!(
            "size mismatch: {key} has {bytes} bytes, the manifest records {}",
            manifest.dump.bytes
        ));
    } else if digest != manifest.dump.sha256 {
        v.defective = true;
        v.problems.push(format!(
            "sha256 mismatch: {key} hashes to {digest}, the manifest records {}; the stored dump was altered",
            manifest.dump.sha256
        ));
    }
}

/// Turns a comparison's findings into problems (those that fail) and notes.
fn record_comparison(v: &mut Verification, comparison: LiveComparison) {
    for f in &comparison.findings {
        let place = match (&f.column, &f.row) {
            (Some(c), Some(r)) => format!("{}.{c} at {r}", f.table),
            (None, Some(r)) => format!("{} at {r}", f.table),
            _ => f.table.clone(),
        };
        let values = match (&f.backup, &f.live) {
            (Some(b), Some(l)) => format!(" (backup {b}, live {l})"),
            _ => String::new(),
        };
        let line = format!(
            "{}: {place}{values}: {}",
            serde_json::to_value(f.kind)
                .ok()
                .and_then(|k| k.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default(),
            f.advice
        );
        if f.fails {
            v.defective = true;
            v.problems.push(line);
        } else {
            v.notes.push(line);
        }
    }
    let unlisted: u64 = comparison
        .tables
        .iter()
        .map(|t| t.differences)
        .sum::<u64>()
        .saturating_sub(comparison.findings.len() as u64);
    if unlisted > 0 {
        v.notes.push(format!(
            "{unlisted} more differences are counted in `live.tables` but not listed"
        ));
    }
    if comparison.moved_on {
        v.notes.push(
            "the live database has changed since the backup: differences are reported, not failed"
                .to_owned(),
        );
    }
    v.live = Some(comparison);
}

/// At most 100 problems, so a record stays small whatever was found.
fn capped(problems: &[String]) -> Vec<String> {
    const MAX: usize = 100;
    let mut out: Vec<String> = problems.iter().take(MAX).cloned().collect();
    if problems.len() > MAX {
        out.push(format!("… and {} more", problems.len() - MAX));
    }
    out
}

/// Removes a scratch database (and its journal) when dropped, also on error or cancellation.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut journal = self.0.clone().into_os_string();
        journal.push("-journal");
        let _ = std::fs::remove_file(journal);
    }
}

/// Compares the restored scratch database with the live one and records the outcome.
async fn compare_live(
    engine: &Engine,
    target: &Target<'_>,
    manifest: &Manifest,
    restored: &std::path::Path,
    v: &mut Verification,
) {
    let outcome = if let Some(path) = target.entry.sqlite.as_ref() {
        match live::SqliteSource::open(path) {
            Ok(source) => {
                let live = live::Live {
                    source: &source,
                    description: format!("local file {}", path.display()),
                    moved_on: live::local_changed_since(path, manifest.started_at),
                    backup_bookmark: None,
                    current_bookmark: None,
                    page_rows: 5_000,
                };
                live::compare(restored, &live).await
            }
            Err(e) => Err(e),
        }
    } else if let Some(client) = engine.clients()[target.account_index].as_ref() {
        let account_id = target.account.account_id_or_empty();
        match manifest
            .database
            .uuid
            .clone()
            .or_else(|| target.entry.id.clone())
        {
            Some(database_id) => {
                let live_bookmark = client
                    .current_bookmark(account_id, &database_id)
                    .await
                    .map_err(|e| {
                        v.notes.push(format!(
                            "cannot read the live bookmark ({}); differences are treated as corruption",
                            error_chain(&e)
                        ));
                    })
                    .ok();
                // An online read during which the database changed is the state of no single
                // bookmark: its rows may differ from any live state, so differences are
                // reported, not failed (except provably rounded integers).
                let read_while_moving =
                    manifest.dump.consistency == crate::manifest::DumpConsistency::Online;
                let moved_on = read_while_moving
                    || match (&manifest.database.bookmark, &live_bookmark) {
                        (Some(then), Some(now)) => then != now,
                        _ => false,
                    };
                let source = live::D1Source {
                    client,
                    account_id,
                    database_id: &database_id,
                };
                let live = live::Live {
                    source: &source,
                    description: format!("D1 database {database_id}"),
                    moved_on,
                    backup_bookmark: manifest.database.bookmark.clone(),
                    current_bookmark: live_bookmark,
                    page_rows: 500,
                };
                live::compare(restored, &live).await
            }
            None => Err(Error::new(
                ErrorKind::Config,
                "the manifest names no D1 database id",
            )),
        }
    } else {
        Err(Error::new(
            ErrorKind::Config,
            format!(
                "account {} has no API token configured",
                target.account.name
            ),
        ))
    };
    match outcome {
        Ok(comparison) => record_comparison(v, comparison),
        Err(error) => v.problems.push(format!(
            "cannot compare with the live database: {}",
            error.chain()
        )),
    }
}

/// Stores the verification record beside the manifest.
async fn write_record(
    engine: &Engine,
    target: &Target<'_>,
    manifest: &Manifest,
    v: &mut Verification,
) {
    let record = VerificationRecord {
        kind: VERIFICATION_KIND.to_owned(),
        version: VERIFICATION_VERSION,
        tool: manifest::tool(),
        verified_at: engine.clock().now(),
        account: v.account.clone(),
        database: v.database.clone(),
        date: manifest.date,
        key: manifest.dump.key.clone(),
        sha256: manifest.dump.sha256.clone(),
        ok: v.ok,
        defective: v.defective,
        problems: capped(&v.problems),
        tables: v.tables.clone(),
        live_matches: v
            .live
            .as_ref()
            .map(|l| l.tables.iter().all(|t| t.differences == 0)),
    };
    let key = layout::verification_key(&target.account.prefix, manifest.date, &v.database);
    let body = record.to_json();
    let stream = futures::stream::iter([Ok(bytes::Bytes::from(body))]).boxed();
    let options = r2_sink::PutOptions::default().content_type("application/json");
    match engine.sink().put_stream(&key, stream, options).await {
        Ok(_) => v.record = Some(key),
        Err(e) => v.notes.push(format!(
            "the verification record could not be stored at {key}: {}",
            error_chain(&e)
        )),
    }
}

/// Size and SHA-256 of a stored object, read whole.
pub(crate) async fn digest(engine: &Engine, key: &str) -> Result<(u64, String), Error> {
    let cannot_read = || format!("cannot read {key}");
    let mut body = engine
        .sink()
        .get(key, None)
        .await
        .map_err(|e| Error::from(e).context(cannot_read()))?;
    let (mut bytes, mut hasher) = (0u64, Sha256::new());
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            Error::new(crate::error::ErrorKind::Transient, cannot_read()).with_source(e)
        })?;
        bytes += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// The dump as a blocking reader: decrypted with `identity` when the manifest says it is
/// encrypted (the age header is read and the key tried before this returns), then
/// decompressed as the manifest says.
pub(crate) async fn decoded(
    body: r2_sink::ByteStream,
    dump: &ManifestDump,
    identity: Option<&AgeIdentity>,
) -> Result<impl std::io::Read + Send + use<>, Error> {
    use tokio_util::io::{StreamReader, SyncIoBridge};
    let reader: Box<dyn tokio::io::AsyncBufRead + Send + Unpin> = match (&dump.encryption, identity)
    {
        (None, _) => Box::new(StreamReader::new(body)),
        (Some(_), Some(identity)) => Box::new(tokio::io::BufReader::with_capacity(
            DECRYPTED_BUFFER,
            crate::encryption::decrypt(body, identity).await?,
        )),
        (Some(_), None) => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{} is encrypted and no identity was given", dump.key),
            ));
        }
    };
    let compression: Compression = dump.compression;
    let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match compression {
        #[cfg(feature = "compression")]
        Compression::Zstd => Box::new(async_compression::tokio::bufread::ZstdDecoder::new(reader)),
        #[cfg(feature = "compression")]
        Compression::Gzip => Box::new(async_compression::tokio::bufread::GzipDecoder::new(reader)),
        _ => Box::new(reader),
    };
    Ok(SyncIoBridge::new(reader))
}

/// The read buffer over a decrypted dump (age yields 64 KiB chunks).
const DECRYPTED_BUFFER: usize = 64 * 1024;
