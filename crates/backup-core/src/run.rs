//! A backup run: every selected database backed up ([`Job`](crate::job::Job)), concurrently
//! within limits, each independent of the others; then verification, retention and the
//! heartbeat, then the `[[notify]]` webhooks.

use futures::future::join_all;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::error::Error;
use crate::heartbeat::Heartbeat;
use crate::job::{Job, Limits};
use crate::options::RunOptions;
use crate::plan::{self, Resolved};
use crate::progress::Progress;
use crate::report::RunReport;

/// Backs up the selected databases.
///
/// Each database is independent: one failure is recorded in the report and the others go
/// on. Cancelling `cancel` stops starting new databases and abandons running ones (their
/// uploads are aborted, leaving nothing at their keys); the report then says
/// `interrupted`. Returns `Err` only when the run cannot start (a `--only` selector that
/// matches nothing).
pub(crate) async fn run(
    engine: &Engine,
    options: &RunOptions,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<RunReport, Error> {
    let started_at = engine.clock().now();
    let requests_before = engine.api_request_counts();
    let mut targets = plan::select(engine.config(), &options.only)?;
    if let Some(shard) = engine.shard() {
        targets.retain(|t| shard.contains(&t.account.name, &t.entry.name));
    }
    // A run that verifies encrypted backups needs the identity: refused before anything.
    #[cfg(feature = "sqlite")]
    if let (Some(recipients), Some(_)) = (
        engine.recipients(),
        crate::verify::verify_options(engine, options),
    ) {
        engine
            .identity("each backup the run verifies")?
            .check_can_decrypt(&recipients.manifest())?;
    }
    plan::log_plan(engine, &targets);
    let resolved = tokio::select! {
        resolved = plan::resolve(&targets, engine.clients()) => resolved,
        () = cancel.cancelled() => Resolved::new(),
    };
    let global = Semaphore::new(engine.config().run.concurrency);
    let per_account: Vec<Semaphore> = engine
        .config()
        .accounts
        .iter()
        .map(|_| Semaphore::new(engine.config().run.per_account_concurrency))
        .collect();
    let jobs = targets.iter().map(|target| {
        let limits = Limits {
            global: &global,
            account: &per_account[target.account_index],
        };
        Job::new(engine, target, options, progress, cancel).run(&resolved, limits)
    });
    #[cfg_attr(not(feature = "sqlite"), allow(unused_mut))]
    let mut databases = join_all(jobs).await;
    #[cfg(feature = "sqlite")]
    if let Some(verify) = crate::verify::verify_options(engine, options) {
        crate::verify::verify_after_run(
            engine,
            options.date,
            &targets,
            &mut databases,
            &verify,
            cancel,
        )
        .await;
    }
    let mut report = RunReport {
        date: options.date,
        databases,
        started_at,
        finished_at: engine.clock().now(),
        interrupted: cancel.is_cancelled(),
        prune: None,
        heartbeat: Vec::new(),
        api_requests: 0,
        rate_limited: 0,
        notifications: Vec::new(),
    };
    if engine.config().retention.prune_after_run && !report.interrupted {
        report.prune = Some(engine.prune_after(&report).await);
        report.finished_at = engine.clock().now();
    }
    report.heartbeat = engine.send_heartbeat(&Heartbeat::of_run(&report)).await;
    let requests = engine.api_request_counts().since(requests_before);
    report.api_requests = requests.sent;
    report.rate_limited = requests.rate_limited;
    // Last, so the webhooks see the whole report (the notifications themselves aside).
    report.notifications = crate::notify::notify(engine, &report).await;
    Ok(report)
}
