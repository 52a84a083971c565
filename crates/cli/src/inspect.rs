//! `list`, `databases` and `config check`: read-only answers for operators.

use std::fmt::Write as _;

use d1_backup_core::{ListDetail, VerifyOptions};

use crate::cli::{GlobalArgs, JsonArgs, ListArgs, VerifyArgs};
use crate::exit;
use crate::render::{self, human_bytes};
use crate::run::load_engine;

pub(crate) async fn list(global: &GlobalArgs, args: ListArgs) -> u8 {
    let engine = match load_engine(&global.config)
        .and_then(|engine| crate::run::on_replica(engine, args.replica.as_deref()))
    {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    // The JSON keeps `sha256` filled, which takes each complete backup's manifest; the
    // table does not show it, so it is made from the listing alone.
    let detail = if args.json {
        ListDetail::Manifests
    } else {
        ListDetail::Listing
    };
    let backups = match engine.list_backups_with(&args.only, detail).await {
        Ok(backups) => backups,
        Err(error) => {
            render::error(
                &error,
                "check --only, and that the sink is reachable (`d1-backup config check`)",
            );
            return exit::FAILED;
        }
    };
    if args.json {
        render::json(&serde_json::json!({ "backups": backups }));
        return exit::OK;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:<10} {:>10}  {:<8} {:<10} {:<9} KEY",
        "DATABASE", "DATE", "SIZE", "COMPRESS", "STATE", "VERIFIED"
    );
    for b in &backups {
        let _ = writeln!(
            out,
            "{:<32} {:<10} {:>10}  {:<8} {:<10} {:<9} {}",
            format!("{}/{}", b.account, b.database),
            b.date.to_string(),
            b.bytes.map_or("-".to_owned(), human_bytes),
            b.compression.map_or("-".to_owned(), |c| c.to_string()),
            if b.complete { "complete" } else { "INCOMPLETE" },
            match b.verified {
                Some(true) => "yes",
                Some(false) => "FAILED",
                None => "-",
            },
            b.key.as_deref().unwrap_or("-"),
        );
    }
    let complete = backups.iter().filter(|b| b.complete).count();
    let _ = writeln!(
        out,
        "{} backup(s), {complete} complete, {} incomplete",
        backups.len(),
        backups.len() - complete
    );
    print!("{out}");
    exit::OK
}

pub(crate) async fn databases(global: &GlobalArgs, args: &JsonArgs) -> u8 {
    let engine = match load_engine(&global.config) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let accounts = engine.remote_databases().await;
    let failed = accounts.iter().any(|a| a.error.is_some());
    if args.json {
        render::json(&serde_json::json!({ "accounts": accounts }));
    } else {
        let mut out = String::new();
        if accounts.is_empty() {
            out.push_str(
                "no account exports through the D1 API (every database is a local file)\n",
            );
        }
        for account in &accounts {
            let _ = writeln!(
                out,
                "account {} ({})",
                account.account,
                account.account_id.as_deref().unwrap_or("-")
            );
            if let Some(error) = &account.error {
                let _ = writeln!(out, "  ERROR {error}");
                continue;
            }
            for db in &account.databases {
                let mark = if db.configured {
                    "backed up"
                } else {
                    "NOT BACKED UP"
                };
                let size = db.file_size.map_or("?".to_owned(), human_bytes);
                let _ = writeln!(
                    out,
                    "  {:<32} {:>10}  {:<13} {}",
                    db.name, size, mark, db.uuid
                );
            }
            for name in &account.missing {
                let _ = writeln!(
                    out,
                    "  {name:<32} {:>10}  MISSING       configured, but the token cannot see it",
                    "-"
                );
            }
        }
        print!("{out}");
    }
    if failed { exit::FAILED } else { exit::OK }
}

pub(crate) async fn check(global: &GlobalArgs, args: &JsonArgs) -> u8 {
    let engine = match load_engine(&global.config) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let checks = engine.check().await;
    let ok = checks.iter().all(|c| c.ok);
    let warnings = checks.iter().filter(|c| c.ok && c.warning).count();
    if args.json {
        render::json(&serde_json::json!({
            "config": global.config,
            "ok": ok,
            "warnings": warnings,
            "checks": checks
        }));
    } else {
        let mut out = format!("ok       config {} is valid\n", global.config.display());
        for c in &checks {
            let _ = writeln!(
                out,
                "{:<8} {}: {}",
                match (c.ok, c.warning) {
                    (false, _) => "FAILED",
                    (true, true) => "WARNING",
                    (true, false) => "ok",
                },
                c.what,
                c.detail
            );
        }
        print!("{out}");
    }
    if ok { exit::OK } else { exit::FAILED }
}

pub(crate) async fn verify(global: &GlobalArgs, args: VerifyArgs) -> u8 {
    let engine =
        match crate::run::load_engine_with_identity(&global.config, args.identity.as_deref())
            .and_then(|engine| crate::run::on_replica(engine, args.replica.as_deref()))
        {
            Ok(engine) => engine,
            Err(code) => return code,
        };
    let mut options = VerifyOptions::new(std::env::temp_dir())
        .only(args.only)
        .against_live(args.against_live);
    options.date = args.date;
    let results = match engine.verify(&options).await {
        Ok(results) => results,
        Err(error) => {
            render::error(&error, render::command_hint(&error));
            return exit::USAGE;
        }
    };
    let ok = results.iter().all(|v| v.ok);
    if args.json {
        render::json(&serde_json::json!({ "ok": ok, "databases": results }));
    }
    if !global.quiet {
        let mut out = String::new();
        for v in &results {
            let who = format!("{}/{}", v.account, v.database);
            let date = v.date.map_or("-".to_owned(), |d| d.to_string());
            let live = match &v.live {
                Some(l) if l.tables.iter().all(|t| t.differences == 0) => {
                    ", identical to the live database".to_owned()
                }
                Some(_) => ", differs from the live database".to_owned(),
                None => String::new(),
            };
            if v.ok {
                let rows: u64 = v.tables.values().sum();
                let _ = writeln!(
                    out,
                    "ok       {who:<32} {date}  {} table(s), {rows} row(s) restored and checked{live}",
                    v.tables.len()
                );
            } else {
                let _ = writeln!(
                    out,
                    "FAILED   {who:<32} {date}  {} problem(s){live}",
                    v.problems.len()
                );
                for problem in &v.problems {
                    let _ = writeln!(out, "  - {problem}");
                }
            }
            for note in &v.notes {
                let _ = writeln!(out, "  note: {note}");
            }
        }
        if !ok {
            out.push_str(
                "hint: a backup that fails verification cannot be trusted: back it up again \
                 (`d1-backup run --force --date <date>`), then verify again\n",
            );
        }
        eprint!("{out}");
    }
    if ok { exit::OK } else { exit::FAILED }
}
