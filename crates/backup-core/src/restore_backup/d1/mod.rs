//! Restoring into a D1 database through D1's import API.
//!
//! Nothing is uploaded before the whole dump was read, matched against its manifest and
//! checked against D1's rules ([`stage`]): names D1 refuses, statements too long to fit
//! (rows are rewritten to fit; a long `CREATE` cannot be), excluded objects left out. The
//! staged statements are then imported in bounded batches ([`batches`]), each one an import of
//! its own and checked before the next; the progress is kept ([`progress`]) so that an
//! interrupted import resumes at the batch that failed ([`checkpoint`]).

mod batches;
mod checkpoint;
mod frames;
mod objects;
mod stage;

use std::sync::atomic::{AtomicU8, Ordering};

use d1_export::{D1Client, ImportEvent, ImportOptions, ImportSource};
use tokio_util::sync::CancellationToken;

use crate::config::AccountConfig;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::progress::{EventKind, Progress, ProgressEvent};

use self::batches::{Batch, BatchLimits, Batches};
use self::checkpoint::Checkpoint;
use self::stage::{StageOptions, Staged};
use super::{
    Confirm, D1_MAX_STATEMENT_BYTES, Existing, PlannedTarget, RestorePlan, RestoreReport,
    RestoreRequest, Result, refuse, wrong_target,
};

/// Fills in a D1 target: the account (the backup's, or the configured one named), the
/// database found by name or uuid through the list endpoint (or, when the restore creates
/// it, the name checked free), its tables and size, and what the import would be refused for.
pub(super) async fn plan_d1(
    engine: &Engine,
    plan: &mut RestorePlan,
    database: &str,
    account: Option<&str>,
    request: &RestoreRequest,
) -> Result<()> {
    let wanted = account.unwrap_or(&plan.backup.account);
    let (index, target_account, client) = d1_account(engine, wanted)?;
    let account_id = target_account.account_id_or_empty();
    let listed = client.list_databases(account_id).await.map_err(|e| {
        Error::from(e).context(format_args!(
            "cannot list the databases of account {wanted} ({account_id})"
        ))
    })?;
    plan.account_index = Some(index);
    let found = listed
        .into_iter()
        .find(|d| d.name == database || d.uuid == database);
    if let Some(create) = &request.d1.create {
        plan_new_database(plan, database, found.is_some(), request.confirm);
        plan.target = PlannedTarget::D1 {
            account: target_account.name.clone(),
            account_id: account_id.to_owned(),
            database: database.to_owned(),
            uuid: String::new(),
            num_tables: None,
            file_size: None,
            create: true,
            location: create.location.clone(),
            resume_after: None,
        };
        return Ok(());
    }
    let Some(found) = found else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "D1 database {database:?} does not exist in account {wanted} ({account_id}); create it with the restore, or check the name against the databases the token can list"
            ),
        ));
    };
    let info = client.database_info(account_id, &found.uuid).await.ok();
    let num_tables = info.as_ref().and_then(|i| i.num_tables);
    explain_import(plan, &found.name, &found.uuid, num_tables, request);
    let resume_after = match request.d1.existing {
        Existing::Resume => plan_resume(plan, &found.name, &found.uuid),
        _ => None,
    };
    plan.target = PlannedTarget::D1 {
        account: target_account.name.clone(),
        account_id: account_id.to_owned(),
        database: found.name,
        uuid: found.uuid,
        num_tables,
        file_size: info.and_then(|i| i.file_size),
        create: false,
        location: None,
        resume_after,
    };
    Ok(())
}

/// A restore into a database it creates: the name must be free and valid.
fn plan_new_database(plan: &mut RestorePlan, name: &str, exists: bool, confirm: Confirm) {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        plan.refusals.push(format!(
            "{name:?} is not a name D1 accepts for a new database: use lower-case letters, digits, - and _"
        ));
    }
    if exists {
        plan.refusals.push(format!(
            "a D1 database named {name} already exists in this account: a restore that creates its target needs a new name (or import into {name} without creating it)"
        ));
    }
    plan.notes.push(format!(
        "D1 database {name} is created first, then the backup is imported into it; if the import fails, the new database stays, holding the batches imported so far"
    ));
    if confirm == Confirm::No {
        plan.refusals.push(format!(
            "creating D1 database {name} and importing into it changes the account; confirm the import to go ahead"
        ));
    }
}

/// A resumed import: the kept progress must be of this backup, into this database.
fn plan_resume(plan: &mut RestorePlan, name: &str, uuid: &str) -> Option<u64> {
    let path = checkpoint::path(&plan.scratch_dir, uuid);
    let Some(kept) = checkpoint::load(&path) else {
        plan.refusals.push(format!(
            "there is no interrupted import into {name} to resume (no progress in {}); import without resuming",
            path.display()
        ));
        return None;
    };
    if kept.backup_key != plan.backup.key || kept.backup_sha256 != plan.backup.sha256 {
        plan.refusals.push(format!(
            "the interrupted import into {name} was of another backup ({}); resume it with that backup, or import this one without resuming",
            kept.backup_key
        ));
        return None;
    }
    plan.notes.push(format!(
        "resuming: batches 1 to {} of {} are in {name} already; the import continues with batch {}",
        kept.done,
        kept.batches,
        kept.done + 1
    ));
    Some(kept.done)
}

/// The configured account named `wanted`, with its index and its D1 client.
fn d1_account<'e>(
    engine: &'e Engine,
    wanted: &str,
) -> Result<(usize, &'e AccountConfig, &'e D1Client)> {
    let accounts = &engine.config().accounts;
    let Some(index) = accounts.iter().position(|a| a.name == wanted) else {
        let known: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
        return Err(Error::new(
            ErrorKind::NotConfigured,
            format!(
                "account {wanted} is not a configured account; configured: {}",
                known.join(", ")
            ),
        ));
    };
    let Some(client) = &engine.clients()[index] else {
        return Err(Error::new(
            ErrorKind::NotConfigured,
            format!(
                "account {wanted} has no D1 API client (no token_env, or only local databases configured); name an account with D1 databases and a token"
            ),
        ));
    };
    Ok((index, &accounts[index], client))
}

/// What importing into `name` means, as the plan's notes, and the refusals an unconfirmed
/// import or a non-empty target gets.
fn explain_import(
    plan: &mut RestorePlan,
    name: &str,
    uuid: &str,
    num_tables: Option<u64>,
    request: &RestoreRequest,
) {
    plan.notes.push(format!(
        "D1 database {name} serves no queries while each batch is imported; a batch is atomic (a failed one leaves the database as it was), the whole import is not (the batches before a failed one stay imported)"
    ));
    match (num_tables, request.d1.existing) {
        (Some(0), _) | (_, Existing::Resume) => {}
        (tables, Existing::ImportInto) => plan.notes.push(format!(
            "{name} already has {} table(s): the dump's statements run into its current content, nothing is deleted first, and a CREATE TABLE of a name that exists fails that batch",
            tables.map_or("an unknown number of".to_owned(), |n| n.to_string())
        )),
        (Some(n), _) => plan.refusals.push(format!(
            "{name} already has {n} table(s): importing into a database that is not empty mixes the backup with what is there; import into an empty or new database, or ask explicitly to import into the existing content"
        )),
        (None, _) => plan.refusals.push(format!(
            "D1 did not report whether {name} has tables: importing into a database that is not empty mixes the backup with what is there; ask explicitly to import into the existing content to go ahead"
        )),
    }
    if plan.manifest.database.uuid.as_deref() == Some(uuid) {
        plan.notes
            .push(format!("{name} is the database this backup was taken from"));
    }
    if request.confirm == Confirm::No {
        plan.refusals.push(format!(
            "importing into D1 database {name} ({uuid}) changes a live database: it serves no queries during the import, and the dump's statements run into its current content (nothing is deleted first); confirm the import to go ahead"
        ));
    }
}

/// The batches an import of the plan's backup would send, found by reading and staging the
/// whole backup without uploading anything (a dry run of [`restore_to_d1`]).
pub(crate) async fn check_import(
    engine: &Engine,
    plan: &RestorePlan,
    cancel: &CancellationToken,
) -> Result<RestoreReport> {
    if !matches!(plan.target, PlannedTarget::D1 { .. }) {
        return Err(wrong_target("check_d1_import", "a D1 database"));
    }
    let (staged, batches) = stage_backup(engine, plan, cancel).await?;
    Ok(report_of(&staged, &batches))
}

/// Imports the plan's backup into its D1 database through D1's import API, in batches.
///
/// The dump is streamed from the sink, hashed on the way, decompressed and staged in the
/// request's scratch directory ([`stage`]). Nothing is uploaded unless the whole dump matches
/// its manifest and D1 would accept every statement of it. Then each batch is written,
/// imported and checked in turn; the progress is recorded after each one, so that a failed
/// or cancelled import can be resumed from the batch that did not complete. Cancellation
/// before a batch's upload finished leaves that batch out; once D1 began ingesting a batch,
/// it finishes (or fails) on its own. The staged files are always removed.
pub(crate) async fn restore_to_d1(
    engine: &Engine,
    plan: &RestorePlan,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let PlannedTarget::D1 {
        account,
        uuid,
        account_id,
        database,
        create,
        location,
        ..
    } = &plan.target
    else {
        return Err(wrong_target("restore_to_d1", "a D1 database"));
    };
    refuse(plan)?;
    let client = plan
        .account_index
        .and_then(|i| engine.clients().get(i).cloned().flatten())
        .ok_or_else(|| wrong_target("restore_to_d1", "a D1 database of an account with a token"))?;
    let (staged, batches) = stage_backup(engine, plan, cancel).await?;
    let mut report = report_of(&staged, &batches);
    let uuid = if *create {
        let created = client
            .create_database(account_id, database, location.as_deref())
            .await
            .map_err(|e| {
                Error::from(e).context(format_args!("cannot create D1 database {database}"))
            })?;
        tracing::info!("created D1 database {database} ({})", created.uuid);
        report.created_uuid = Some(created.uuid.clone());
        created.uuid
    } else {
        uuid.clone()
    };
    let target = Target {
        client: &client,
        account,
        account_id,
        uuid: &uuid,
        name: database,
        progress,
    };
    let mut kept = start_progress(plan, &target, batches.len() as u64).await?;
    checkpoint::save(&checkpoint::path(&plan.scratch_dir, &uuid), &kept)?;
    report.first_batch = Some(kept.done + 1);
    let imported = import_batches(
        engine,
        plan,
        &target,
        &staged,
        &batches,
        &mut kept,
        &mut report,
        cancel,
    )
    .await;
    if imported.is_err() && kept.done == 0 {
        // Nothing went in: there is nothing to resume, a new attempt starts afresh.
        let _ = std::fs::remove_file(checkpoint::path(&plan.scratch_dir, &uuid));
    }
    imported?;
    let _ = std::fs::remove_file(checkpoint::path(&plan.scratch_dir, &uuid));
    Ok(report)
}

/// The database a restore imports into.
struct Target<'a> {
    client: &'a D1Client,
    /// The configured account's name.
    account: &'a str,
    account_id: &'a str,
    uuid: &'a str,
    name: &'a str,
    /// Where batch events go.
    progress: &'a dyn Progress,
}

impl Target<'_> {
    fn event(&self, kind: EventKind<'_>) {
        self.progress.event(&ProgressEvent {
            account: self.account,
            database: self.name,
            kind,
        });
    }
}

/// Reads, checks and stages the backup; counts its batches. Refuses (before any upload) a
/// dump D1 would refuse.
async fn stage_backup(
    engine: &Engine,
    plan: &RestorePlan,
    cancel: &CancellationToken,
) -> Result<(Staged, Vec<Batch>)> {
    let (reader, tally) = super::stored_dump(engine, &plan.manifest, cancel).await?;
    let stem = format!(
        "d1-backup-import-{}-{}-{}",
        std::process::id(),
        plan.backup.database,
        plan.backup.date
    );
    let scratch = plan.scratch_dir.clone();
    let exclude = plan.d1.exclude_tables.clone();
    let limits = limits(plan);
    let staged = tokio::task::spawn_blocking(move || {
        let options = StageOptions {
            exclude: &exclude,
            limit: D1_MAX_STATEMENT_BYTES,
        };
        let staged = stage::stage(reader, &scratch, &stem, &options)?;
        let batches = batches::count(&staged.ranges, limits).map_err(|e| {
            Error::local_io("cannot read the staged dump back to cut it into batches", e)
        })?;
        Ok((staged, batches))
    })
    .await
    .map_err(|e| Error::new(ErrorKind::LocalIo, format!("the staging task failed: {e}")))
    .and_then(|r| r);
    let (staged, batches) = super::settle(engine, &plan.manifest, cancel, &tally, staged).await?;
    if let Some(refusal) = staged.refusal() {
        return Err(refusal);
    }
    Ok((staged, batches))
}

fn limits(plan: &RestorePlan) -> BatchLimits {
    BatchLimits {
        bytes: plan.d1.batch_bytes.max(1),
        statements: plan.d1.batch_statements.max(2),
    }
}

/// What the staging found, as the start of the restore's report.
fn report_of(staged: &Staged, batches: &[Batch]) -> RestoreReport {
    let mut report = staged.report.clone();
    report.statements += batches.len() as u64;
    report.uploaded_bytes = Some(batches.iter().map(|b| b.bytes).sum());
    report.batches = Some(batches.len() as u64);
    report.split_rows = staged.split_rows;
    report.excluded.clone_from(&staged.excluded);
    report
}

/// The progress to start from: a fresh one, or (resuming) the kept one, once the database's
/// bookmark shows that nothing changed it since its last batch.
async fn start_progress(
    plan: &RestorePlan,
    target: &Target<'_>,
    batches: u64,
) -> Result<Checkpoint> {
    let fresh = Checkpoint::new(
        &plan.backup.key,
        &plan.backup.sha256,
        target.uuid,
        limits(plan).bytes,
        limits(plan).statements,
        &plan.d1.exclude_tables,
        batches,
    );
    if plan.d1.existing != Existing::Resume {
        return Ok(fresh);
    }
    let path = checkpoint::path(&plan.scratch_dir, target.uuid);
    let refused = |why: String| Error::new(ErrorKind::Refused, why);
    let Some(kept) = checkpoint::load(&path) else {
        return Err(refused(format!(
            "there is no interrupted import into {} to resume; nothing was imported",
            target.name
        )));
    };
    if !kept.same_import(&fresh) {
        return Err(refused(format!(
            "the interrupted import into {} was of another backup, or cut with other batch limits or exclusions ({} batches of at most {} bytes and {} statements, excluding [{}]); resume with the same options, nothing was imported",
            target.name,
            kept.batches,
            kept.batch_bytes,
            kept.batch_statements,
            kept.excluded.join(", ")
        )));
    }
    let now = target
        .client
        .current_bookmark(target.account_id, target.uuid)
        .await
        .map_err(|e| Error::from(e).context("cannot read the target's bookmark to resume"))?;
    if kept.bookmark.as_deref().is_some_and(|b| b != now) {
        return Err(refused(format!(
            "{} changed since batch {} was imported (its bookmark was {}, it is {now}): resuming could duplicate or miss rows; nothing was imported. Restore into a new database, or import everything again into the existing content",
            target.name,
            kept.done,
            kept.bookmark.as_deref().unwrap_or_default()
        )));
    }
    Ok(kept)
}

/// Imports the batches after `progress.done`, one at a time, recording the progress after
/// each.
#[allow(clippy::too_many_arguments)] // One import's parts; grouping them would not help.
async fn import_batches(
    engine: &Engine,
    plan: &RestorePlan,
    target: &Target<'_>,
    staged: &Staged,
    batches: &[Batch],
    progress: &mut Checkpoint,
    report: &mut RestoreReport,
    cancel: &CancellationToken,
) -> Result<()> {
    let total = batches.len();
    let path = checkpoint::path(&plan.scratch_dir, target.uuid);
    let file = plan.scratch_dir.join(format!(
        "d1-backup-import-{}-{}.batch.sql",
        std::process::id(),
        target.uuid
    ));
    let mut cutter = Batches::new(&staged.ranges, limits(plan), true);
    let mut queries = 0u64;
    for batch in batches {
        let done = batch.number as u64 <= progress.done;
        let cut = cutter.next_batch((!done).then_some(file.as_path()));
        let cut = cut.map_err(|e| {
            Error::local_io(
                format!("cannot write batch {} to {}", batch.number, file.display()),
                e,
            )
        })?;
        if done {
            continue;
        }
        if let Err(e) = ready(cut, batch, total, progress.done, target, cancel) {
            let _ = std::fs::remove_file(&file);
            return Err(e);
        }
        tracing::info!(
            "{}: importing batch {} of {total} ({} statements, {} bytes)",
            target.name,
            batch.number,
            batch.statements,
            batch.bytes
        );
        target.event(EventKind::ImportBatch {
            number: batch.number as u64,
            total: total as u64,
            statements: batch.statements,
            bytes: batch.bytes,
        });
        let imported = import_one(engine, target, &file, batch, total, progress.done, cancel).await;
        let _ = std::fs::remove_file(&file);
        queries += record(imported?, batch, total, progress, report, &path, target)?;
    }
    report.num_queries = Some(queries);
    Ok(())
}

/// Refuses to import a batch cut differently from its count (the staged files changed), or
/// once the restore was cancelled.
fn ready(
    cut: Option<Batch>,
    batch: &Batch,
    total: usize,
    done: u64,
    target: &Target<'_>,
    cancel: &CancellationToken,
) -> Result<()> {
    if cut != Some(*batch) {
        return Err(Error::new(
            ErrorKind::LocalIo,
            format!(
                "batch {} was cut differently the second time ({cut:?}, counted {batch:?}); the staged dump changed on disk, nothing more was imported",
                batch.number
            ),
        ));
    }
    if cancel.is_cancelled() {
        return Err(Error::new(
            ErrorKind::Cancelled,
            format!(
                "cancelled before batch {} of {total}: batches 1 to {done} are in {}; resume the import to continue",
                batch.number, target.name
            ),
        ));
    }
    Ok(())
}

/// Records an imported batch in the checkpoint and the report; returns the statements D1
/// says it ran.
fn record(
    done: d1_export::CompletedImport,
    batch: &Batch,
    total: usize,
    progress: &mut Checkpoint,
    report: &mut RestoreReport,
    path: &std::path::Path,
    target: &Target<'_>,
) -> Result<u64> {
    let queries = done.num_queries.unwrap_or(0);
    if done.num_queries.is_some_and(|n| n != batch.statements) {
        report.warnings.push(format!(
            "batch {} of {total}: D1 reports {queries} statement(s) run, the batch holds {}",
            batch.number, batch.statements
        ));
    }
    progress.done = batch.number as u64;
    progress.bookmark.clone_from(&done.final_bookmark);
    report.final_bookmark = done.final_bookmark;
    checkpoint::save(path, progress)?;
    target.event(EventKind::ImportBatchDone {
        number: batch.number as u64,
        total: total as u64,
    });
    Ok(queries)
}

/// Imports one batch file.
async fn import_one(
    engine: &Engine,
    target: &Target<'_>,
    file: &std::path::Path,
    batch: &Batch,
    total: usize,
    done: u64,
    cancel: &CancellationToken,
) -> Result<d1_export::CompletedImport> {
    let mut options = ImportOptions::default();
    options.poll_interval = std::time::Duration::from_millis(engine.config().run.poll_interval_ms);
    let phase = AtomicU8::new(PREPARING);
    let events = |event: &ImportEvent| log_import(target.name, event, &phase);
    let source = ImportSource::File(file.to_path_buf());
    let which = if total == 1 {
        "the import".to_owned()
    } else {
        format!("batch {} of {total}", batch.number)
    };
    let before = if done == 0 {
        String::new()
    } else {
        format!(
            "; batches 1 to {done} are imported, resume the import to continue from batch {}",
            batch.number
        )
    };
    let imported = tokio::select! {
        imported = target.client.import(target.account_id, target.uuid, &source, &options, &events) => imported,
        () = cancel.cancelled() => {
            return Err(Error::new(
                ErrorKind::Cancelled,
                format!("{which}: {}{before}", cancelled(target.name, phase.load(Ordering::Relaxed))),
            ));
        }
    };
    imported.map_err(|e| {
        Error::from(e).context(format_args!(
            "{which} into D1 database {} failed, and D1 left the database as it was before it{before}",
            target.name
        ))
    })
}

/// How far an import got, for the message of a cancelled one: before the upload finished D1
/// has nothing to ingest; once the ingest request is sent, D1 may import without us.
const PREPARING: u8 = 0;
const UPLOADING: u8 = 1;
const INGESTING: u8 = 2;

fn cancelled(database: &str, phase: u8) -> String {
    match phase {
        PREPARING => format!(
            "cancelled before the upload; {database} was not changed (unless D1 already held this very file and began ingesting it)"
        ),
        UPLOADING => format!(
            "cancelled during the upload or as D1 was asked to ingest it: {database} is unchanged unless D1 began ingesting; check it before retrying"
        ),
        _ => format!(
            "cancelled after D1 began ingesting the dump into {database}: the import goes on (or fails) on D1's side; check the database before retrying"
        ),
    }
}

/// Logs the import's progress (the library's progress events describe backups) and records
/// its phase.
fn log_import(database: &str, event: &ImportEvent, phase: &AtomicU8) {
    match event {
        ImportEvent::Uploading { bytes } => {
            phase.store(UPLOADING, Ordering::Relaxed);
            tracing::info!("{database}: uploading the dump ({bytes} bytes)");
        }
        ImportEvent::AlreadyUploaded => {
            phase.store(INGESTING, Ordering::Relaxed);
            tracing::info!("{database}: D1 already has this file; ingesting");
        }
        ImportEvent::Ingesting { .. } => {
            phase.store(INGESTING, Ordering::Relaxed);
            tracing::info!("{database}: D1 is ingesting the dump");
        }
        ImportEvent::Message(message) => tracing::info!("{database}: {message}"),
        ImportEvent::Retrying { reason, delay } => {
            tracing::warn!("{database}: retrying in {delay:?}: {reason}");
        }
        other => tracing::debug!("{database}: {other:?}"),
    }
}

/// An FTS command written as an INSERT (`INSERT INTO "t" ("t") VALUES('rebuild')`, or a
/// setting `INSERT INTO "t" ("t",rank) VALUES('pgsz',…)`): its first column is the table's
/// own name. Not a row.
fn is_module_command(sql: &str, table: &str) -> bool {
    let head: String = sql.chars().take(512).collect();
    let Some(open) = head.find('(') else {
        return false;
    };
    let columns = head[open + 1..].trim_start();
    let quoted = crate::dump::quote_ident(table);
    [quoted.as_str(), table].iter().any(|name| {
        columns.strip_prefix(name).is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.starts_with(',') || rest.starts_with(')')
        })
    })
}
