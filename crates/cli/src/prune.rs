//! `d1-backup prune`: retention alone.

use d1_backup_core::chrono::Utc;
use d1_backup_core::{Heartbeat, PruneMode, PruneOptions};

use crate::cli::{GlobalArgs, PruneArgs};
use crate::exit;
use crate::render;
use crate::run::load_engine;

pub(crate) async fn prune(global: &GlobalArgs, args: PruneArgs) -> u8 {
    let engine = match load_engine(&global.config) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let started_at = Utc::now();
    let today = args.date.unwrap_or_else(|| started_at.date_naive());
    let mode = if args.dry_run {
        PruneMode::DryRun
    } else {
        PruneMode::Delete
    };
    let options = PruneOptions::new(today).only(args.only).mode(mode);
    let report = match engine.prune(&options).await {
        Ok(report) => report,
        Err(error) => {
            render::error(&error, render::command_hint(&error));
            return exit::USAGE;
        }
    };
    if !global.quiet {
        render::prune_summary(&report, render::Detail::Everything);
    }
    if !report.dry_run {
        let outcomes = engine
            .send_heartbeat(&Heartbeat::of_prune(&report, started_at))
            .await;
        if !global.quiet {
            render::heartbeat(&outcomes);
        }
    }
    if args.json {
        render::json(&report);
    }
    if report.errors.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    }
}
