//! Notifications: after a run, each `[[notify]]` webhook whose `on` includes the run's outcome
//! gets a POST: the run report as JSON (`format = "json"`), or a one-message summary for
//! Slack-compatible incoming webhooks (`format = "slack"`).
//!
//! A notification that cannot be sent (refused, unreachable, too slow) is retried, then
//! reported in [`RunReport::notifications`]; it never changes the run's result. Webhook URLs
//! carry their credential (Slack's path, a token in the query), so they are never shown:
//! entries are named by `name` or position, and errors are reqwest's without the URL.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{NotifyConfig, NotifyFormat, NotifyOn};
use crate::engine::Engine;
use crate::error::error_chain;
use crate::report::{NotifyOutcome, RunReport, Status};

/// The wait before the first retry; each later one waits twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Sends the report to every webhook that wants this outcome, one after the other. Never
/// fails: each entry's outcome is returned.
pub(crate) async fn notify(engine: &Engine, report: &RunReport) -> Vec<NotifyOutcome> {
    let outcome = if report.complete() {
        NotifyOn::Success
    } else {
        NotifyOn::Failure
    };
    let mut outcomes = Vec::new();
    for (index, entry) in engine.config().notify.iter().enumerate() {
        if !entry.on.contains(&outcome) {
            continue;
        }
        let name = entry
            .name
            .clone()
            .unwrap_or_else(|| format!("notify[{index}]"));
        let (content_type, body) = body(entry.format, report);
        let (attempts, error) = send(engine.http(), entry, content_type, body).await;
        outcomes.push(NotifyOutcome {
            name,
            attempts,
            error,
        });
    }
    outcomes
}

fn body(format: NotifyFormat, report: &RunReport) -> (&'static str, Bytes) {
    let json = match format {
        NotifyFormat::Slack => serde_json::json!({ "text": slack_text(report) }),
        // The report holds no secret (errors and heartbeat destinations are already
        // redacted where they are made), so it is sent as `run --json` prints it.
        _ => serde_json::to_value(report).unwrap_or_default(),
    };
    (
        "application/json",
        Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
    )
}

/// One POST per attempt, `retries` more after a failure, waiting longer each time.
async fn send(
    http: &reqwest::Client,
    entry: &NotifyConfig,
    content_type: &str,
    body: Bytes,
) -> (u32, Option<String>) {
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = http
            .post(&entry.url)
            .timeout(Duration::from_secs(entry.timeout_seconds))
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await;
        let error = match result {
            Ok(response) if response.status().is_success() => return (attempts, None),
            Ok(response) => format!("the webhook answered {}", response.status()),
            Err(e) if e.is_timeout() => format!(
                "the webhook did not answer within {} s",
                entry.timeout_seconds
            ),
            Err(e) => format!(
                "cannot reach the webhook: {}",
                error_chain(&e.without_url())
            ),
        };
        if attempts > entry.retries {
            return (attempts, Some(error));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The Slack message: the outcome, the counts, and each database that did not succeed.
fn slack_text(report: &RunReport) -> String {
    let verdict = if report.complete() {
        ":white_check_mark: d1-backup run succeeded"
    } else if report.interrupted {
        ":warning: d1-backup run interrupted"
    } else {
        ":x: d1-backup run failed"
    };
    let mut text = format!(
        "{verdict} ({}): {} ok, {} skipped, {} failed, {} leased",
        report.date,
        report.count(Status::Ok),
        report.count(Status::Skipped),
        report.count(Status::Failed),
        report.count(Status::Leased),
    );
    for db in &report.databases {
        let why = match db.status {
            Status::Failed => db.error.as_deref().unwrap_or("failed"),
            Status::Leased => db.reason.as_deref().unwrap_or("leased"),
            _ => continue,
        };
        let _ = write!(
            text,
            "\n• {}/{} {}: {why}",
            db.account,
            db.name,
            db.status.as_str()
        );
    }
    text
}
