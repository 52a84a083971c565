//! `d1-backup daemon`: the configured schedules, until SIGTERM/SIGINT; with `[daemon]
//! metrics_listen`, the metrics of its runs on `GET /metrics` (and `GET /healthz`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{DaemonEvent, Engine, Metrics, MetricsServer, StatusOptions};

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
    let metrics = Arc::new(Mutex::new(Metrics::new()));
    if let Err(code) = serve_metrics(&engine, &metrics, &stop).await {
        return code;
    }
    let quiet = global.quiet;
    let sink = engine.sink().describe();
    let metrics_file = engine.config().run.metrics_file.clone();
    // One write at a time: two runs finishing close together must not share a temp file.
    let writing = Arc::new(tokio::sync::Mutex::new(()));
    let events = move |event: DaemonEvent<'_>| {
        let snapshot = {
            let mut metrics = metrics.lock().unwrap_or_else(PoisonError::into_inner);
            metrics.observe(&event);
            metrics.clone()
        };
        match event {
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
                render::notifications(&report.notifications);
                if let Some(path) = metrics_file.clone() {
                    let writing = Arc::clone(&writing);
                    tokio::spawn(async move {
                        let _one_at_a_time = writing.lock().await;
                        if let Err(error) = snapshot.write_file(&path).await {
                            render::error(
                                &error,
                                "check that [run] metrics_file's folder exists and is writable",
                            );
                        }
                    });
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
        }
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

/// With `[daemon] metrics_listen`: `/metrics` and `/healthz` served until `stop`. With it or
/// `[run] metrics_file`: each database's last success read from the sink first. An address
/// that cannot be bound is a usage error (exit 2), found before any backup runs.
async fn serve_metrics(
    engine: &Engine,
    metrics: &Arc<Mutex<Metrics>>,
    stop: &CancellationToken,
) -> Result<(), u8> {
    let listen = engine.config().daemon.metrics_listen.as_deref();
    if listen.is_none() && engine.config().run.metrics_file.is_none() {
        return Ok(());
    }
    let server = match listen {
        // Validation accepted the address, so it parses.
        Some(listen) => Some(bind(listen, metrics).await?),
        None => None,
    };
    match engine.status(&StatusOptions::new()).await {
        Ok(status) => metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seed(&status),
        Err(error) => tracing::warn!(
            "metrics: cannot list the sink for each database's last success; it shows after the first run: {error}"
        ),
    }
    if let Some(server) = server {
        if let Ok(bound) = server.local_addr() {
            tracing::info!("serving metrics on http://{bound}/metrics");
        }
        tokio::spawn(server.serve(stop.clone()));
    }
    Ok(())
}

async fn bind(listen: &str, metrics: &Arc<Mutex<Metrics>>) -> Result<MetricsServer, u8> {
    let Ok(address) = listen.parse() else {
        return Err(exit::USAGE);
    };
    MetricsServer::bind(address, Arc::clone(metrics))
        .await
        .map_err(|error| {
            render::error(
                &error,
                "choose a free port in [daemon] metrics_listen, or stop what holds it",
            );
            exit::USAGE
        })
}
