//! `d1-backup daemon`: the configured schedules, until SIGTERM/SIGINT.

use std::time::Duration;

use d1_backup_core::DaemonEvent;
use d1_backup_core::tokio_util::sync::CancellationToken;

use crate::cli::{DaemonArgs, GlobalArgs};
use crate::exit;
use crate::render::{self, LogProgress};
use crate::run::{cancel_on_signal, load_engine};

pub(crate) async fn daemon(global: &GlobalArgs, args: &DaemonArgs) -> u8 {
    let engine = match load_engine(&global.config) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    if engine.config().schedules.is_empty() {
        eprintln!(
            "error: {} has no [[schedules]]\nhint: add one, e.g. [[schedules]] name = \"nightly\" cron = \"0 3 * * *\"",
            global.config.display()
        );
        return exit::USAGE;
    }
    let stop = CancellationToken::new();
    tokio::spawn(cancel_on_signal(stop.clone()));
    let quiet = global.quiet;
    let sink = engine.sink().describe();
    let events = move |event: DaemonEvent<'_>| match event {
        DaemonEvent::NextRuns(next) => {
            for (name, at) in next {
                tracing::info!("schedule {name}: next run at {at}");
                if !quiet {
                    eprintln!("next run of schedule {name}: {at}");
                }
            }
        }
        DaemonEvent::RunStarted { schedule } => eprintln!("schedule {schedule}: starting"),
        DaemonEvent::RunFinished { schedule, report } => {
            if !quiet {
                render::summary(report, &sink);
            }
            eprintln!(
                "schedule {schedule}: finished ({} failed)",
                report.count(d1_backup_core::Status::Failed)
            );
        }
        DaemonEvent::RunFailed { schedule, error } => {
            eprintln!("schedule {schedule}: could not run: {error}");
        }
        DaemonEvent::Draining { grace } => {
            eprintln!(
                "stopping: no new runs; the running backup has {}s to finish",
                grace.as_secs()
            );
        }
        _ => {}
    };
    let cut = engine
        .run_schedules(
            &LogProgress,
            &stop,
            Duration::from_secs(args.grace),
            &events,
        )
        .await;
    eprintln!("daemon stopped");
    if cut { exit::INTERRUPTED } else { exit::OK }
}
