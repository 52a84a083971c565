//! Restoring into a SQLite file: beside the path first, renamed onto it only once the
//! restore succeeded and the dump proved to match its manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::options::Force;
use crate::restore;

use super::{
    D1_MAX_STATEMENT_BYTES, PlannedTarget, RestorePlan, RestoreReport, Result, dump_error, refuse,
    wrong_target,
};
use crate::error::{Error, ErrorKind};

/// Restores the plan's backup into its SQLite file.
///
/// The dump is streamed from the sink (never held whole), hashed on the way and restored
/// into `<path>.partial-<pid>` beside the file; only when the size and SHA-256 match the
/// manifest and the restore succeeded is it renamed onto the path (atomically replacing
/// a file there, which the plan allows only with [`Force::Yes`]). On any failure or on
/// cancellation the partial file is removed and the path is left as it was.
pub(crate) async fn restore_to_sqlite(
    engine: &Engine,
    plan: &RestorePlan,
    cancel: &CancellationToken,
) -> Result<RestoreReport> {
    let PlannedTarget::Sqlite { path, .. } = &plan.target else {
        return Err(wrong_target("restore_to_sqlite", "a SQLite file"));
    };
    refuse(plan)?;
    let path = PathBuf::from(path);
    // The file may have changed since the plan was made.
    let existing = sqlite_refusals(&path, plan.force);
    if let Some(refusal) = existing.refusals.into_iter().next() {
        return Err(Error::new(ErrorKind::Refused, refusal));
    }
    let partial = partial_path(&path);
    let (reader, tally) = super::stored_dump(engine, &plan.manifest, cancel).await?;
    let restoring = partial.clone();
    let restored = tokio::task::spawn_blocking(move || restore_file(reader, &restoring))
        .await
        .map_err(|e| Error::new(ErrorKind::LocalIo, format!("the restore task failed: {e}")));
    let outcome = super::settle(
        engine,
        &plan.manifest,
        cancel,
        &tally,
        restored.and_then(|r| r),
    )
    .await;
    let (statements, tables, warnings) = match outcome {
        Ok(restored) => restored,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    if let Err(source) = std::fs::rename(&partial, &path) {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::local_io(
            format!(
                "cannot move the restored database {} to {}",
                partial.display(),
                path.display()
            ),
            source,
        ));
    }
    sync_parent(&path);
    Ok(RestoreReport {
        statements,
        tables,
        replaced: existing.bytes.is_some_and(|b| b > 0),
        warnings,
        ..RestoreReport::default()
    })
}

/// What is at a SQLite target path, and why restoring there would be refused.
struct ExistingFile {
    bytes: Option<u64>,
    refusals: Vec<String>,
}

fn sqlite_refusals(path: &Path, force: Force) -> ExistingFile {
    let shown = path.display();
    let mut refusals = Vec::new();
    let bytes = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            refusals.push(format!("{shown} is a directory; name a file"));
            None
        }
        Ok(meta) => Some(meta.len()),
        Err(_) => None,
    };
    if bytes.is_some_and(|b| b > 0) && force == Force::No {
        refusals.push(format!(
            "{shown} exists and is not empty ({} bytes); force the restore to replace it (the new file takes its place only once the restore succeeded)",
            bytes.unwrap_or_default()
        ));
    }
    for suffix in ["-wal", "-journal"] {
        let side = sidecar(path, suffix);
        if side.exists() {
            refusals.push(format!(
                "{} exists: a program may have {shown} open, or a crash left changes to apply; close or open it with sqlite3 first",
                side.display()
            ));
        }
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if parent.is_some_and(|p| !p.is_dir()) {
        refusals.push(format!(
            "the folder of {shown} does not exist; create it first"
        ));
    }
    ExistingFile { bytes, refusals }
}

pub(super) fn plan(plan: &mut RestorePlan, path: &Path, force: Force) {
    let existing = sqlite_refusals(path, force);
    if existing.refusals.is_empty() && existing.bytes.is_some_and(|b| b > 0) {
        plan.notes.push(format!(
            "{} ({} bytes) will be replaced once the restore succeeded",
            path.display(),
            existing.bytes.unwrap_or_default()
        ));
    }
    plan.refusals = existing.refusals;
    plan.target = PlannedTarget::Sqlite {
        path: path.display().to_string(),
        existing_bytes: existing.bytes,
    };
}

/// `<path><suffix>`, e.g. SQLite's `-wal` beside a database.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where a SQLite restore is written before it is renamed onto `path`.
fn partial_path(path: &Path) -> PathBuf {
    sidecar(path, &format!(".partial-{}", std::process::id()))
}

/// Restores the dump into a new SQLite file at `path` ([`restore::restore_to_path`]), then
/// checks it and counts its rows. Runs on a blocking thread; the caller removes the file when
/// this fails.
fn restore_file(
    reader: impl std::io::Read,
    path: &Path,
) -> Result<(u64, BTreeMap<String, u64>, Vec<String>)> {
    let target_error = |source: std::io::Error| {
        Error::local_io(format!("cannot create {}", path.display()), source)
    };
    // A leftover of this process id (a crash, a reused pid) is not worth keeping.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(target_error(e)),
        _ => {}
    }
    let stats = match restore::restore_to_path(std::io::BufReader::new(reader), path) {
        Ok(stats) => stats,
        Err(restore::RestoreError::Create { source, .. }) => return Err(target_error(source)),
        Err(e) => return Err(dump_error(e)),
    };
    let conn = rusqlite::Connection::open(path)
        .map_err(|e| target_error(std::io::Error::other(format!("SQLite cannot open it: {e}"))))?;
    let mut warnings = restore::check_database(&conn).map_err(dump_error)?;
    if stats.oversized_statements > 0 {
        warnings.push(format!(
            "{} statement(s) are longer than D1's {D1_MAX_STATEMENT_BYTES}-byte limit: the file itself (wrangler d1 execute, D1's import) is refused by D1; a restore into D1 by d1-backup rewrites such rows into statements that fit",
            stats.oversized_statements
        ));
    }
    let tables = restore::count_rows(&conn).map_err(dump_error)?;
    conn.close().map_err(|(_, e)| {
        target_error(std::io::Error::other(format!(
            "SQLite cannot close it: {e}"
        )))
    })?;
    Ok((stats.statements, tables, warnings))
}

/// Makes a rename durable (best effort: not every platform can sync a directory).
fn sync_parent(path: &Path) {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
}
