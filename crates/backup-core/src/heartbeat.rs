//! Heartbeats: after each run (and each prune) a JSON record that says it happened, written
//! to every configured target: a Workers KV key, an object in the sink, a ping URL.
//!
//! A heartbeat that cannot be delivered is reported, never a reason to fail the backups.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use r2_sink::PutOptions;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::error_chain;
use crate::prune::PruneReport;
use crate::report::{RunReport, Status};

/// The heartbeat record format version.
pub const HEARTBEAT_VERSION: u32 = 1;

/// The record a heartbeat carries (a persisted format: fields are only added).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Heartbeat {
    /// Always `d1-backup-heartbeat`.
    pub kind: &'static str,
    /// [`HEARTBEAT_VERSION`].
    pub version: u32,
    /// The tool and version.
    pub tool: String,
    /// `run` or `prune`.
    pub event: &'static str,
    /// `ok` when nothing failed, `failed` otherwise, `interrupted` when cancelled.
    pub status: &'static str,
    /// The run's date folder, or the prune's "today".
    pub date: NaiveDate,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run finished.
    pub finished_at: DateTime<Utc>,
    /// Counts.
    pub totals: Totals,
    /// One line per database (empty for a prune).
    pub databases: Vec<HeartbeatDatabase>,
}

/// Counts in a heartbeat.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Totals {
    /// Databases in the run.
    pub databases: usize,
    /// Backed up.
    pub ok: usize,
    /// Already backed up.
    pub skipped: usize,
    /// Failed.
    pub failed: usize,
    /// Bytes written by this run.
    pub bytes: u64,
    /// Objects deleted by retention.
    pub deleted: usize,
}

/// One database in a heartbeat.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HeartbeatDatabase {
    /// Account name.
    pub account: String,
    /// Database name.
    pub name: String,
    /// `ok`, `skipped` or `failed`.
    pub status: Status,
    /// The dump's key.
    pub key: String,
    /// The error, when failed.
    pub error: Option<String>,
}

impl Heartbeat {
    /// The record of a run.
    pub fn of_run(report: &RunReport) -> Self {
        let ok = report.count(Status::Ok);
        let failed = report.count(Status::Failed);
        Self {
            kind: "d1-backup-heartbeat",
            version: HEARTBEAT_VERSION,
            tool: crate::manifest::tool(),
            event: "run",
            status: status(
                report.interrupted,
                failed + prune_errors(report.prune.as_ref()),
            ),
            date: report.date,
            started_at: report.started_at,
            finished_at: report.finished_at,
            totals: Totals {
                databases: report.databases.len(),
                ok,
                skipped: report.count(Status::Skipped),
                failed,
                bytes: report
                    .databases
                    .iter()
                    .filter(|d| d.status == Status::Ok)
                    .filter_map(|d| d.bytes)
                    .sum(),
                deleted: report.prune.as_ref().map_or(0, |p| p.deleted),
            },
            databases: report
                .databases
                .iter()
                .map(|d| HeartbeatDatabase {
                    account: d.account.clone(),
                    name: d.name.clone(),
                    status: d.status,
                    key: d.key.clone(),
                    error: d.error.clone(),
                })
                .collect(),
        }
    }

    /// The record of a standalone prune.
    pub fn of_prune(report: &PruneReport, started_at: DateTime<Utc>) -> Self {
        Self {
            kind: "d1-backup-heartbeat",
            version: HEARTBEAT_VERSION,
            tool: crate::manifest::tool(),
            event: "prune",
            status: status(false, report.errors.len()),
            date: report.today,
            started_at,
            finished_at: Utc::now(),
            totals: Totals {
                deleted: report.deleted,
                ..Totals::default()
            },
            databases: Vec::new(),
        }
    }

    fn failed(&self) -> bool {
        self.status != "ok"
    }
}

fn status(interrupted: bool, failures: usize) -> &'static str {
    if interrupted {
        "interrupted"
    } else if failures > 0 {
        "failed"
    } else {
        "ok"
    }
}

fn prune_errors(prune: Option<&PruneReport>) -> usize {
    prune.map_or(0, |p| p.errors.len())
}

/// What happened to one heartbeat target.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HeartbeatOutcome {
    /// `kv`, `object` or `url`.
    pub target: &'static str,
    /// Where, without secrets (the KV key, the object key, the URL without its query).
    pub destination: String,
    /// Why it failed; null when delivered.
    pub error: Option<String>,
}

/// How long a ping may take: a slow monitoring service must not hold the run up.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

impl Engine {
    /// Writes `heartbeat` to every configured target. Never fails: each target's outcome is
    /// returned.
    pub async fn send_heartbeat(&self, heartbeat: &Heartbeat) -> Vec<HeartbeatOutcome> {
        let config = &self.config().heartbeat;
        let body = Bytes::from(serde_json::to_vec_pretty(heartbeat).unwrap_or_default());
        let mut outcomes = Vec::new();
        if let Some(kv) = &config.kv {
            let found = self
                .config()
                .accounts
                .iter()
                .position(|a| a.name == kv.account);
            let error = match found {
                Some(i) => match &self.clients()[i] {
                    Some(client) => client
                        .kv_put(
                            self.config().accounts[i].account_id_or_empty(),
                            &kv.namespace_id,
                            &kv.key,
                            body.clone(),
                        )
                        .await
                        .err()
                        .map(|e| error_chain(&e)),
                    None => Some(format!(
                        "account {:?} has no API token configured",
                        kv.account
                    )),
                },
                None => Some(format!("no account named {:?}", kv.account)),
            };
            outcomes.push(HeartbeatOutcome {
                target: "kv",
                destination: format!("{}/{}", kv.namespace_id, kv.key),
                error,
            });
        }
        if let Some(key) = &config.object {
            let mut options = PutOptions::default();
            options.content_type = Some("application/json".to_owned());
            let stream = futures::stream::iter([Ok(body.clone())]).boxed();
            let error = self
                .sink()
                .put_stream(key, stream, options)
                .await
                .err()
                .map(|e| error_chain(&e));
            outcomes.push(HeartbeatOutcome {
                target: "object",
                destination: key.clone(),
                error,
            });
        }
        if let Some(url) = &config.url {
            let target = match (&config.fail_url, heartbeat.failed()) {
                (Some(fail), true) => fail.clone(),
                (None, true) => format!("{}/fail", url.trim_end_matches('/')),
                _ => url.clone(),
            };
            outcomes.push(ping(self.http(), &target, body).await);
        }
        outcomes
    }
}

/// Posts `body` to `url` through the engine's one HTTP client (never a client of its own, so
/// an embedding service's pool, proxy and headers apply).
async fn ping(http: &reqwest::Client, url: &str, body: Bytes) -> HeartbeatOutcome {
    // Ping URLs carry a secret (the check id in the path, or a token in the query): show the
    // scheme and host only.
    let shown = reqwest::Url::parse(url).map_or_else(
        |_| "the heartbeat URL".to_owned(),
        |u| format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or_default()),
    );
    let result = http
        .post(url)
        .timeout(PING_TIMEOUT)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let error = match result {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("{shown} answered {}", response.status())),
        Err(e) => Some(format!(
            "cannot reach {shown}: {}",
            error_chain(&e.without_url())
        )),
    };
    HeartbeatOutcome {
        target: "url",
        destination: shown,
        error,
    }
}
