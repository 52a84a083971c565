//! The schedule loop ([`Engine::run_schedules`](crate::Engine::run_schedules)): runs each
//! [`Schedule`] at its cron time until the caller says stop.
//!
//! The loop owns no process: the caller supplies the stop token (the CLI ties it to
//! SIGTERM/SIGINT) and a grace period. On stop, no new run starts; a running one gets the
//! grace period to finish, then it is cancelled (its uploads abort, nothing partial stays).
//!
//! The loop reads the time from the engine's [`Clock`](crate::Clock) and waits with
//! `tokio::time`, so with a [`TokioClock`](crate::TokioClock) and paused tokio time a test sees
//! a schedule fire at its cron time without waiting for it.

use crate::clock;
use crate::engine::Engine;
use crate::options::RunOptions;
use crate::progress::Progress;
use crate::report::RunReport;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the schedule loop reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum DaemonEvent<'a> {
    /// The next time each schedule fires.
    NextRuns(&'a [(String, DateTime<Utc>)]),
    /// A scheduled run starts.
    RunStarted {
        /// The schedule.
        schedule: &'a str,
    },
    /// A scheduled run finished (possibly interrupted).
    RunFinished {
        /// The schedule.
        schedule: &'a str,
        /// Its report.
        report: &'a RunReport,
    },
    /// A scheduled run could not start.
    RunFailed {
        /// The schedule.
        schedule: &'a str,
        /// Why.
        error: String,
    },
    /// Stop was requested while a run was going: it gets the grace period.
    Draining {
        /// The grace period.
        grace: Duration,
    },
}

/// Runs the configured schedules until `stop` is cancelled. A failed run is reported and
/// the loop goes on. A schedule whose time passed while another ran fires once, at once.
/// Returns whether a run had to be cut short after the grace period.
///
/// Fire times come from the engine's [`clock`](Engine::clock); the loop sleeps with
/// `tokio::time` until the next one.
pub(crate) async fn run_schedules(
    engine: &Engine,
    progress: &dyn Progress,
    stop: &CancellationToken,
    grace: Duration,
    events: &(dyn Fn(DaemonEvent<'_>) + Sync),
) -> bool {
    let schedules = engine.config().schedules();
    let now = engine.clock().now();
    let mut next: Vec<(String, DateTime<Utc>)> = schedules
        .iter()
        .filter_map(|s| s.next_after(now).map(|t| (s.name.clone(), t)))
        .collect();
    loop {
        events(DaemonEvent::NextRuns(&next));
        let Some((index, &(_, at))) = next.iter().enumerate().min_by_key(|(_, (_, t))| *t) else {
            stop.cancelled().await;
            return false;
        };
        let wait = clock::until(engine.clock().now(), at);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return false,
        }
        let schedule = &schedules[index];
        events(DaemonEvent::RunStarted {
            schedule: &schedule.name,
        });
        let options = RunOptions::new(at.date_naive()).only(schedule.only.clone());
        let cut = scheduled_run(
            engine,
            &schedule.name,
            &options,
            progress,
            stop,
            grace,
            events,
        )
        .await;
        if stop.is_cancelled() {
            return cut;
        }
        match schedule.next_after(at) {
            Some(t) => next[index].1 = t,
            None => {
                next.remove(index);
            }
        }
    }
}

async fn scheduled_run(
    engine: &Engine,
    name: &str,
    options: &RunOptions,
    progress: &dyn Progress,
    stop: &CancellationToken,
    grace: Duration,
    events: &(dyn Fn(DaemonEvent<'_>) + Sync),
) -> bool {
    let cancel = CancellationToken::new();
    let run = engine.run(options, progress, &cancel);
    tokio::pin!(run);
    let outcome = tokio::select! {
        outcome = &mut run => outcome,
        () = stop.cancelled() => {
            events(DaemonEvent::Draining { grace });
            tokio::select! {
                outcome = &mut run => outcome,
                () = tokio::time::sleep(grace) => {
                    cancel.cancel();
                    run.await
                }
            }
        }
    };
    match outcome {
        Ok(report) => {
            events(DaemonEvent::RunFinished {
                schedule: name,
                report: &report,
            });
            report.interrupted
        }
        Err(error) => {
            events(DaemonEvent::RunFailed {
                schedule: name,
                error: crate::error::error_chain(&error),
            });
            false
        }
    }
}
