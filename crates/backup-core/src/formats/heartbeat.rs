//! The heartbeat record: the JSON document a heartbeat carries after each run and each prune
//! (to a Workers KV key, an object in the sink, a ping URL; the sending is in
//! `crate::heartbeat`).
//!
//! A persisted format (public API) read by monitoring, never by d1-backup itself: fields are
//! only added, and `version` changes when a reader would have to behave differently.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::report::{PruneReport, RunReport, Status};

/// The heartbeat record format version.
pub const HEARTBEAT_VERSION: u32 = 1;

/// The `kind` every heartbeat carries.
pub const HEARTBEAT_KIND: &str = "d1-backup-heartbeat";

/// The record a heartbeat carries (a persisted format: fields are only added).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Heartbeat {
    /// Always [`HEARTBEAT_KIND`] (`d1-backup-heartbeat`).
    pub kind: &'static str,
    /// [`HEARTBEAT_VERSION`].
    pub version: u32,
    /// The tool and version.
    pub tool: String,
    /// `run` or `prune`.
    pub event: &'static str,
    /// `ok` when every database has its backup, `failed` otherwise (a database failed or
    /// was `leased` by another run), `interrupted` when cancelled.
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
    /// Not backed up because another run held the lease (added later: absent in older
    /// records).
    pub leased: usize,
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
    /// `ok`, `skipped`, `failed` or `leased` (not backed up: another run held its lease).
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
        let leased = report.count(Status::Leased);
        Self {
            kind: HEARTBEAT_KIND,
            version: HEARTBEAT_VERSION,
            tool: super::manifest::tool(),
            event: "run",
            status: status(
                report.interrupted,
                failed + leased + prune_errors(report.prune.as_ref()),
            ),
            date: report.date,
            started_at: report.started_at,
            finished_at: report.finished_at,
            totals: Totals {
                databases: report.databases.len(),
                ok,
                skipped: report.count(Status::Skipped),
                failed,
                leased,
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
            kind: HEARTBEAT_KIND,
            version: HEARTBEAT_VERSION,
            tool: super::manifest::tool(),
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

    /// Whether the run or prune it records did not fully succeed.
    pub(crate) fn failed(&self) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn sample() -> Heartbeat {
        Heartbeat {
            kind: HEARTBEAT_KIND,
            version: HEARTBEAT_VERSION,
            tool: "d1-backup 0.1.0".to_owned(),
            event: "run",
            status: status(false, 1),
            date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default(),
            started_at: at("2026-11-30T03:00:00Z"),
            finished_at: at("2026-11-30T03:04:10Z"),
            totals: Totals {
                databases: 2,
                ok: 1,
                skipped: 0,
                failed: 1,
                leased: 0,
                bytes: 382_976,
                deleted: 2,
            },
            databases: vec![
                HeartbeatDatabase {
                    account: "ucca".to_owned(),
                    name: "ops-db".to_owned(),
                    status: Status::Ok,
                    key: "d1/2026-11-30/ops-db.sql".to_owned(),
                    error: None,
                },
                HeartbeatDatabase {
                    account: "ucca".to_owned(),
                    name: "engine-db".to_owned(),
                    status: Status::Failed,
                    key: "d1/2026-11-30/engine-db.sql".to_owned(),
                    error: Some("the D1 API token was refused".to_owned()),
                },
            ],
        }
    }

    /// The persisted format is public: this snapshot changes only on purpose.
    #[test]
    fn snapshot_of_the_format() {
        let heartbeat = sample();
        assert!(heartbeat.failed());
        insta::assert_json_snapshot!("heartbeat_v1", heartbeat);
    }

    #[test]
    fn status_words() {
        assert_eq!(status(true, 3), "interrupted");
        assert_eq!(status(false, 1), "failed");
        assert_eq!(status(false, 0), "ok");
    }
}
