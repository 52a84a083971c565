//! `d1-backup status`: is every database's newest backup fresh? parse → call → render → exit.

use std::fmt::Write as _;

use d1_backup_core::{DatabaseStatus, StatusOptions, StatusReport};

use crate::cli::{GlobalArgs, StatusArgs};
use crate::exit;
use crate::render::{self, human_bytes};
use crate::run::load_engine;

pub(crate) async fn status(global: &GlobalArgs, args: StatusArgs) -> u8 {
    let engine = match load_engine(&global.config) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let mut options = StatusOptions::new().only(args.only);
    if let Some(max_age) = args.max_age {
        options = options.max_age(max_age);
    }
    let report = match engine.status(&options).await {
        Ok(report) => report,
        Err(error) if error.kind() == d1_backup_core::ErrorKind::NotConfigured => {
            render::error(&error, render::command_hint(&error));
            return exit::USAGE;
        }
        Err(error) => {
            // Freshness that cannot be read is not freshness: monitoring must see a failure.
            render::error(
                &error,
                "check that the sink is reachable (`d1-backup config check`)",
            );
            return exit::FAILED;
        }
    };
    if args.json {
        render::json(&report);
    } else {
        print!("{}", table(&report));
    }
    // What is stale is the answer, not chatter: printed even with -q.
    for db in report.databases.iter().filter(|d| !d.fresh) {
        eprintln!("{}", stale_line(db));
    }
    if report.all_fresh() {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// One line per database on stdout.
fn table(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:<10} {:<17} {:>8} {:>10}  {:<8} {:<9} STATE",
        "DATABASE", "NEWEST", "FINISHED (UTC)", "AGE", "SIZE", "VERIFIED", "ENCRYPTED"
    );
    for db in &report.databases {
        let _ = writeln!(
            out,
            "{:<32} {:<10} {:<17} {:>8} {:>10}  {:<8} {:<9} {}",
            format!("{}/{}", db.account, db.name),
            db.newest_date.map_or("-".to_owned(), |d| d.to_string()),
            db.finished_at
                .map_or("-".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
            db.age_hours.map_or("-".to_owned(), |h| format!("{h:.1} h")),
            db.bytes.map_or("-".to_owned(), human_bytes),
            yes_no(db.verified, "FAILED"),
            yes_no(db.encrypted, "no"),
            if db.fresh { "fresh" } else { "STALE" },
        );
    }
    out
}

fn yes_no(value: Option<bool>, no: &str) -> String {
    match value {
        Some(true) => "yes".to_owned(),
        Some(false) => no.to_owned(),
        None => "-".to_owned(),
    }
}

/// What is wrong with a stale database and the command that backs it up now.
fn stale_line(db: &DatabaseStatus) -> String {
    let what = if db.newest_date.is_none() {
        "has no complete backup"
    } else {
        "is stale"
    };
    format!(
        "stale: {}/{} {what}: {}\nhint: back it up now with `d1-backup run --only {}/{}`",
        db.account,
        db.name,
        db.reason.as_deref().unwrap_or("not fresh"),
        db.account,
        db.name
    )
}
