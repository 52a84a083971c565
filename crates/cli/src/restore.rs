//! `d1-backup restore`: parse → plan → (refuse | dry run | restore) → render → exit code.

use std::fmt::Write as _;

use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    Confirm, D1Import, Engine, Error, ErrorKind, EventKind, Existing, Force, ImportRefusal,
    NewDatabase, PlannedTarget, Progress, ProgressEvent, RestorePlan, RestoreReport,
    RestoreRequest, RestoreTarget,
};

use crate::cli::{GlobalArgs, RestoreArgs};
use crate::exit;
use crate::render::{self, human_bytes};
use crate::run::{cancel_on_signal, load_engine_with_identity};

pub(crate) async fn restore(global: &GlobalArgs, args: RestoreArgs) -> u8 {
    let engine = match load_engine_with_identity(&global.config, args.identity.as_deref())
        .and_then(|engine| crate::run::on_replica(engine, args.replica.as_deref()))
    {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    if args.time_travel {
        return crate::time_travel::time_travel(global, &engine, &args).await;
    }
    let request = request(&args);
    let plan = match engine.restore_plan(&request).await {
        Ok(plan) => plan,
        Err(error) => return failed(&error),
    };
    if !global.quiet {
        eprint!("{}", describe(&plan));
    }
    if args.dry_run {
        return dry_run(global, &args, &engine, &plan).await;
    }
    if !plan.allowed() {
        let refusal = plan.refusals.join("; ");
        if args.json {
            render::json(&output(&plan, false, None, Some(&refusal)));
        }
        eprintln!(
            "error: restore refused: {refusal}\nhint: {}",
            refusal_hint()
        );
        return exit::USAGE;
    }
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let printer = BatchPrinter {
        quiet: global.quiet,
    };
    let restored = carry_out(&engine, &plan, &cancel, &printer).await;
    if args.json {
        let error = restored.as_ref().err().map(ToString::to_string);
        render::json(&output(
            &plan,
            false,
            restored.as_ref().ok(),
            error.as_deref(),
        ));
    }
    match restored {
        Ok(report) => {
            if !global.quiet {
                eprint!("{}", summary(&plan, &report));
            }
            exit::OK
        }
        Err(error) => failed(&error),
    }
}

/// The library request the flags describe.
fn request(args: &RestoreArgs) -> RestoreRequest {
    let target = match (&args.to_sqlite, &args.to_d1) {
        (Some(path), _) => RestoreTarget::sqlite(path),
        (None, database) => {
            // clap requires exactly one of the two.
            RestoreTarget::d1(database.clone().unwrap_or_default(), args.account.clone())
        }
    };
    let mut request = RestoreRequest::new(args.database.clone(), target, std::env::temp_dir());
    request.date = args.date;
    request.force = if args.force { Force::Yes } else { Force::No };
    request.confirm = if args.yes { Confirm::Yes } else { Confirm::No };
    let mut d1 = D1Import::default();
    d1.exclude_tables.clone_from(&args.exclude_table);
    d1.batch_bytes = args.batch_mib.saturating_mul(1024 * 1024);
    d1.batch_statements = args.batch_statements;
    d1.existing = if args.resume {
        Existing::Resume
    } else if args.into_existing {
        Existing::ImportInto
    } else {
        Existing::Refuse
    };
    d1.create = args.create.then(|| NewDatabase::new(args.location.clone()));
    request.d1 = d1;
    request
}

async fn carry_out(
    engine: &Engine,
    plan: &RestorePlan,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<RestoreReport, Error> {
    match plan.target {
        PlannedTarget::D1 { .. } => {
            engine
                .restore_to_d1_with_progress(plan, cancel, progress)
                .await
        }
        _ => engine.restore_to_sqlite(plan, cancel).await,
    }
}

/// `--dry-run`: the plan, and for a D1 target the import checked (the whole backup read and
/// staged, nothing uploaded).
async fn dry_run(
    global: &GlobalArgs,
    args: &RestoreArgs,
    engine: &Engine,
    plan: &RestorePlan,
) -> u8 {
    let mut checked = None;
    let mut error = None;
    if matches!(plan.target, PlannedTarget::D1 { .. }) {
        match engine
            .check_d1_import(plan, &CancellationToken::new())
            .await
        {
            Ok(report) => checked = Some(report),
            Err(e) => error = Some(e),
        }
    }
    if args.json {
        let message = error.as_ref().map(ToString::to_string);
        render::json(&output(plan, true, checked.as_ref(), message.as_deref()));
    }
    if let Some(report) = &checked
        && !global.quiet
    {
        eprint!("{}", import_plan(report));
    }
    if !global.quiet {
        eprintln!("dry run: nothing was changed");
    }
    match error {
        Some(error) => failed(&error),
        None if plan.allowed() => exit::OK,
        None => exit::USAGE,
    }
}

/// What a checked import would send, for a person.
fn import_plan(report: &RestoreReport) -> String {
    let mut out = String::new();
    for excluded in &report.excluded {
        let _ = writeln!(
            out,
            "exclude  {} {}{}",
            excluded.kind,
            excluded.name,
            excluded
                .rows
                .map(|r| format!(" ({r} row(s))"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "import   {} statement(s), {} in {} batch(es){}",
        report.statements,
        human_bytes(report.uploaded_bytes.unwrap_or(0)),
        report.batches.unwrap_or(0),
        if report.split_rows > 0 {
            format!(
                "; {} row(s) over D1's 100 KB statement limit rewritten to fit",
                report.split_rows
            )
        } else {
            String::new()
        }
    );
    out
}

/// Prints each import batch as it starts and ends (stderr; nothing with --quiet).
struct BatchPrinter {
    quiet: bool,
}

impl Progress for BatchPrinter {
    fn event(&self, event: &ProgressEvent<'_>) {
        if self.quiet {
            return;
        }
        match event.kind {
            EventKind::ImportBatch {
                number,
                total,
                statements,
                bytes,
            } => eprintln!(
                "batch    {number}/{total}: importing {statements} statement(s), {} into {}",
                human_bytes(bytes),
                event.database
            ),
            EventKind::ImportBatchDone { number, total } => {
                eprintln!("batch    {number}/{total}: imported");
            }
            _ => {}
        }
    }
}

/// The `--json` document: the plan, and what the restore did or why it did not.
fn output(
    plan: &RestorePlan,
    dry_run: bool,
    restored: Option<&RestoreReport>,
    error: Option<&str>,
) -> serde_json::Value {
    let ok = error.is_none() && plan.allowed();
    serde_json::json!({
        "ok": ok,
        "dry_run": dry_run,
        "plan": plan,
        "restored": restored,
        "error": error,
    })
}

/// Prints the error and its hint; returns the exit code it means.
pub(crate) fn failed(error: &Error) -> u8 {
    let (hint, code) = match error.kind() {
        ErrorKind::Cancelled => (
            "run the restore again; the target was not changed unless the message says D1 \
             began ingesting",
            exit::INTERRUPTED,
        ),
        ErrorKind::NotFound => (
            "`d1-backup list` shows the backups; `d1-backup databases` the D1 databases",
            exit::FAILED,
        ),
        ErrorKind::InvalidDump => (
            "this backup cannot be trusted: restore another date (--date), and back up again",
            exit::FAILED,
        ),
        ErrorKind::Unsupported => (
            "D1 cannot import this dump as it is; --to-sqlite restores it locally",
            exit::FAILED,
        ),
        ErrorKind::ImportFailed => (
            "D1 left the database as it was; fix what the message says and run the restore again",
            exit::FAILED,
        ),
        ErrorKind::Refused => {
            if let Some(flags) = exclude_flags(error) {
                render::error(
                    error,
                    &format!(
                        "nothing was uploaded; {flags} restores the rest, --to-sqlite restores all of it locally"
                    ),
                );
                return exit::USAGE;
            }
            (refusal_hint(), exit::USAGE)
        }
        ErrorKind::Config if render::needs_identity(error) => (render::IDENTITY_HINT, exit::USAGE),
        ErrorKind::Config | ErrorKind::NotConfigured => (
            "check --database, --account and the config file; nothing was changed",
            exit::USAGE,
        ),
        _ => (
            "nothing was left at the target; fix what the message says and run again (-v shows each step)",
            exit::FAILED,
        ),
    };
    render::error(error, hint);
    code
}

/// What to do about a refused restore, in flags.
fn refusal_hint() -> &'static str {
    "nothing was changed; --force replaces a non-empty file, --yes confirms an import into D1 \
     or a Time Travel restore, --into-existing imports into a database that has tables, \
     --resume continues an interrupted import, --dry-run shows the plan"
}

/// `--exclude-table A --exclude-table B` for an import D1 would refuse for names it can
/// leave out.
fn exclude_flags(error: &Error) -> Option<String> {
    let refusal = std::error::Error::source(error)?.downcast_ref::<ImportRefusal>()?;
    (!refusal.exclude.is_empty()).then(|| {
        refusal
            .exclude
            .iter()
            .map(|name| format!("--exclude-table {}", shell_word(name)))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// `word` as one shell word.
pub(crate) fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The plan, for a person: the backup, the target, notes and refusals.
fn describe(plan: &RestorePlan) -> String {
    let b = &plan.backup;
    let mut out = format!(
        "backup   {}/{} {}  {}  {}  compression {}  sha256:{}\n",
        b.account,
        b.database,
        b.date,
        b.key,
        human_bytes(b.bytes),
        b.compression,
        b.sha256
    );
    let _ = writeln!(out, "target   {}", target(&plan.target));
    for note in &plan.notes {
        let _ = writeln!(out, "note     {note}");
    }
    for refusal in &plan.refusals {
        let _ = writeln!(out, "REFUSED  {refusal}");
    }
    out
}

fn target(target: &PlannedTarget) -> String {
    match target {
        PlannedTarget::Sqlite {
            path,
            existing_bytes,
            ..
        } => format!(
            "SQLite file {path} ({})",
            existing_bytes.map_or("does not exist".to_owned(), |b| format!(
                "exists, {}",
                human_bytes(b)
            ))
        ),
        PlannedTarget::D1 {
            account,
            database,
            create: true,
            location,
            ..
        } => format!(
            "new D1 database {account}/{database}, created by the restore{}",
            location
                .as_ref()
                .map(|l| format!(" (location hint {l})"))
                .unwrap_or_default()
        ),
        PlannedTarget::D1 {
            account,
            database,
            uuid,
            num_tables,
            ..
        } => format!(
            "D1 database {account}/{database} ({uuid}), {} table(s) now",
            num_tables.map_or("?".to_owned(), |n| n.to_string())
        ),
        _ => "unknown".to_owned(),
    }
}

fn destination(target: &PlannedTarget) -> String {
    match target {
        PlannedTarget::Sqlite { path, .. } => path.clone(),
        PlannedTarget::D1 {
            account,
            database,
            uuid,
            ..
        } => format!("D1 database {account}/{database} ({uuid})"),
        _ => "unknown".to_owned(),
    }
}

/// What the restore did, for a person.
fn summary(plan: &RestorePlan, report: &RestoreReport) -> String {
    let mut out = String::new();
    for (table, rows) in &report.tables {
        let _ = writeln!(out, "  {table:<32} {rows:>10} row(s)");
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning  {warning}");
    }
    let rows: u64 = report.tables.values().sum();
    let _ = write!(
        out,
        "restored {}/{} {} into {}: {} table(s), {rows} row(s), {} statement(s)",
        plan.backup.account,
        plan.backup.database,
        plan.backup.date,
        destination(&plan.target),
        report.tables.len(),
        report.statements,
    );
    if report.replaced {
        out.push_str(", replacing the previous file");
    }
    if report.stripped > 0 {
        let _ = write!(out, ", {} BEGIN/COMMIT left out", report.stripped);
    }
    if let Some(queries) = report.num_queries {
        let _ = write!(out, "; D1 ran {queries} statement(s)");
    }
    if let Some(bookmark) = &report.final_bookmark {
        let _ = write!(out, "; bookmark {bookmark}");
    }
    if let Some(batches) = report.batches {
        let first = report.first_batch.unwrap_or(1);
        if first > 1 {
            let _ = write!(out, "; batches {first} to {batches} of {batches} (resumed)");
        } else {
            let _ = write!(out, "; {batches} batch(es)");
        }
    }
    if report.split_rows > 0 {
        let _ = write!(
            out,
            "; {} long row(s) split to fit D1's statement limit",
            report.split_rows
        );
    }
    if let Some(uuid) = &report.created_uuid {
        let _ = write!(out, "; created the database ({uuid})");
    }
    for excluded in &report.excluded {
        let _ = write!(out, "\nleft out {} {}", excluded.kind, excluded.name);
        if let Some(rows) = excluded.rows {
            let _ = write!(out, " ({rows} row(s))");
        }
    }
    out.push('\n');
    out
}
