//! Prometheus metrics ([`Metrics`]) in the text exposition format (version 0.0.4, what
//! node_exporter's textfile collector, Prometheus' scrapes and `promtool check metrics` read).
//!
//! The caller owns the [`Metrics`] value: the command records one run into it and writes a
//! file ([`Metrics::write_file`]); the daemon keeps one for its lifetime (so its counters
//! count across runs) and serves it ([`MetricsServer`](crate::MetricsServer), feature
//! `metrics-server`). Nothing here is global. The format is written here rather than through
//! a metrics crate: eight families of plain gauges and counters need no registry, and the
//! escaping rules of the format are the only subtle part (tested below).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::daemon::DaemonEvent;
use crate::error::{Error, ErrorKind};
use crate::report::{RunReport, Status};
use crate::status::StatusReport;

/// The `Content-Type` of [`Metrics::render`]'s text, for an HTTP answer.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What is known of one database.
#[derive(Debug, Clone, Default)]
struct Database {
    last_success: Option<DateTime<Utc>>,
    last_attempt: Option<DateTime<Utc>>,
    last_bytes: Option<u64>,
    last_duration: Option<f64>,
    failures: u64,
}

/// The metrics of one process's runs: per database (labels `account`, `database`) the last
/// success, attempt, size and duration and a failure counter, plus the D1 API requests and
/// 429 answers of every run recorded. Each family is documented in `docs/metrics.md`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    databases: BTreeMap<(String, String), Database>,
    api_requests: u64,
    rate_limited: u64,
    runs: u64,
}

impl Metrics {
    /// No database known yet, every counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes each database's last success (its newest complete backup's finish time) and
    /// size from a [`StatusReport`], so that a database not backed up by the recorded runs
    /// still shows when it last was, and one never backed up shows 0.
    pub fn seed(&mut self, status: &StatusReport) {
        for db in &status.databases {
            let entry = self.database(&db.account, &db.name);
            if let Some(finished) = db.finished_at
                && entry.last_success.is_none_or(|t| t < finished)
            {
                entry.last_success = Some(finished);
                entry.last_bytes = db.bytes;
            }
        }
    }

    /// Records a run: each database's attempt (its start), duration, and a success (`ok`:
    /// its finish time and size) or failure (`failed` counts one), and the run's API
    /// requests. `skipped` and `leased` databases record an attempt only.
    pub fn record_run(&mut self, report: &RunReport) {
        self.runs += 1;
        self.api_requests += report.api_requests;
        self.rate_limited += report.rate_limited;
        for db in &report.databases {
            let entry = self.database(&db.account, &db.name);
            if db.status == Status::Failed {
                entry.failures += 1;
            }
            // A database that failed before its work started (its name did not resolve) was
            // attempted when the run started; one the run never reached (interrupted) was not.
            let Some(started) = db
                .started_at
                .or_else(|| (db.status == Status::Failed).then_some(report.started_at))
            else {
                continue;
            };
            let finished = db.finished_at.unwrap_or(report.finished_at);
            entry.last_attempt = Some(started);
            entry.last_duration = Some(seconds(finished - started));
            if db.status == Status::Ok {
                entry.last_success = Some(finished);
                entry.last_bytes = db.bytes;
            }
        }
    }

    /// Records what the schedule loop reports: a finished run ([`record_run`](Self::record_run)).
    pub fn observe(&mut self, event: &DaemonEvent<'_>) {
        if let DaemonEvent::RunFinished { report, .. } = event {
            self.record_run(report);
        }
    }

    fn database(&mut self, account: &str, name: &str) -> &mut Database {
        self.databases
            .entry((account.to_owned(), name.to_owned()))
            .or_default()
    }

    /// The metrics in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let per_db: [(&str, &str, &str, Getter); 5] = [
            (
                "d1_backup_last_success_timestamp_seconds",
                "gauge",
                "Unix time the newest complete backup of the database finished; 0 if it has none.",
                |d| Some(d.last_success.map_or(0.0, timestamp)),
            ),
            (
                "d1_backup_last_attempt_timestamp_seconds",
                "gauge",
                "Unix time the last backup attempt of the database started.",
                |d| d.last_attempt.map(timestamp),
            ),
            (
                "d1_backup_last_bytes",
                "gauge",
                "Size in bytes of the newest complete backup of the database, as stored.",
                #[allow(clippy::cast_precision_loss)]
                |d| d.last_bytes.map(|b| b as f64),
            ),
            (
                "d1_backup_last_duration_seconds",
                "gauge",
                "How long the last backup attempt of the database took, in seconds.",
                |d| d.last_duration,
            ),
            (
                "d1_backup_failures_total",
                "counter",
                "Failed backup attempts of the database since this process started.",
                #[allow(clippy::cast_precision_loss)]
                |d| Some(d.failures as f64),
            ),
        ];
        for (name, kind, help, get) in per_db {
            header(&mut out, name, kind, help);
            for ((account, database), d) in &self.databases {
                if let Some(value) = get(d) {
                    let _ = writeln!(
                        out,
                        "{name}{{account=\"{}\",database=\"{}\"}} {}",
                        escape_label(account),
                        escape_label(database),
                        number(value)
                    );
                }
            }
        }
        let run_level = [
            (
                "d1_backup_runs_total",
                "Backup runs recorded since this process started.",
                self.runs,
            ),
            (
                "d1_backup_api_requests_total",
                "Requests sent to the Cloudflare D1 API by the recorded runs, retries included.",
                self.api_requests,
            ),
            (
                "d1_backup_rate_limited_total",
                "Requests of the recorded runs the D1 API answered 429 Too Many Requests.",
                self.rate_limited,
            ),
        ];
        for (name, help, value) in run_level {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        header(
            &mut out,
            "d1_backup_build_info",
            "gauge",
            "Always 1; the version label names the d1-backup release.",
        );
        let _ = writeln!(
            out,
            "d1_backup_build_info{{version=\"{}\"}} 1",
            escape_label(env!("CARGO_PKG_VERSION"))
        );
        out
    }

    /// Writes [`render`](Self::render)'s text to `path` atomically: into a temporary file
    /// beside it, then renamed onto it, so a collector never reads half a file.
    pub async fn write_file(&self, path: &Path) -> Result<(), Error> {
        let temp = temp_path(path);
        let failed = |doing: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::LocalIo,
                format!("cannot {doing} the metrics file {}", path.display()),
            )
            .with_source(e)
        };
        if let Err(e) = tokio::fs::write(&temp, self.render()).await {
            return Err(failed("write", e));
        }
        if let Err(e) = tokio::fs::rename(&temp, path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(failed("replace", e));
        }
        Ok(())
    }
}

type Getter = fn(&Database) -> Option<f64>;

/// `.<name>.tmp-<pid>` in the same folder (a rename across file systems is not atomic);
/// the leading dot keeps the textfile collector, which reads `*.prom`, from reading it.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "metrics".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the format wants it: `\`, `"` and line feeds escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A HELP text as the format wants it: `\` and line feeds escaped (quotes are literal).
fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, others as Rust writes them.
fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[allow(clippy::cast_precision_loss)]
fn timestamp(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

#[allow(clippy::cast_precision_loss)]
fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds().max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(escape_label(input), expected, "{input:?}");
    }

    #[test]
    fn label_values_are_escaped_as_the_format_says() {
        check("plain", "plain");
        check(r"back\slash", r"back\\slash");
        check("a \"quoted\" name", r#"a \"quoted\" name"#);
        check("two\nlines", r"two\nlines");
        check("é ü 日本", "é ü 日本");
    }

    #[test]
    fn help_keeps_quotes_and_escapes_the_rest() {
        assert_eq!(escape_help("a \"b\" c\\d\ne"), "a \"b\" c\\\\d\\ne");
    }

    #[test]
    fn numbers_are_integers_when_whole() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1_764_000_000.0), "1764000000");
        assert_eq!(number(1.25), "1.25");
    }

    #[test]
    fn the_temp_file_is_a_hidden_sibling() {
        let temp = temp_path(Path::new("/var/lib/textfile/d1.prom"));
        assert_eq!(temp.parent(), Some(Path::new("/var/lib/textfile")));
        assert!(
            temp.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".d1.prom.tmp-"))
        );
    }
}
