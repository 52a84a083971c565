//! `d1-backup restore`: parse → plan → (refuse | dry run | restore) → render → exit code.

use std::fmt::Write as _;

use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    Confirm, Engine, Error, ErrorKind, Force, PlannedTarget, RestorePlan, RestoreReport,
    RestoreRequest, RestoreTarget,
};

use crate::cli::{GlobalArgs, RestoreArgs};
use crate::exit;
use crate::render::{self, human_bytes};
use crate::run::{cancel_on_signal, load_engine};

pub(crate) async fn restore(global: &GlobalArgs, args: RestoreArgs) -> u8 {
    let engine = match load_engine(&global.config) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let request = request(&args);
    let plan = match engine.restore_plan(&request).await {
        Ok(plan) => plan,
        Err(error) => return failed(&error),
    };
    if !global.quiet {
        eprint!("{}", describe(&plan));
    }
    if args.dry_run {
        if args.json {
            render::json(&output(&plan, true, None, None));
        }
        if !global.quiet {
            eprintln!("dry run: nothing was changed");
        }
        return if plan.allowed() {
            exit::OK
        } else {
            exit::USAGE
        };
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
    let restored = carry_out(&engine, &plan, &cancel).await;
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
    request
}

async fn carry_out(
    engine: &Engine,
    plan: &RestorePlan,
    cancel: &CancellationToken,
) -> Result<RestoreReport, Error> {
    match plan.target {
        PlannedTarget::D1 { .. } => engine.restore_to_d1(plan, cancel).await,
        _ => engine.restore_to_sqlite(plan, cancel).await,
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
fn failed(error: &Error) -> u8 {
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
        ErrorKind::Refused => (refusal_hint(), exit::USAGE),
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
    "nothing was changed; --force replaces a non-empty file, --yes confirms an import into D1, \
     --dry-run shows the plan"
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
    out.push('\n');
    out
}
