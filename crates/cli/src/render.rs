//! Everything the command shows: the per-database summary, the JSON report, errors and the
//! progress log. Reports go to stdout only with `--json`; everything else goes to stderr.

use std::fmt::Write as _;

use d1_backup_core::d1_export::ExportEvent;
use d1_backup_core::{
    Action, ErrorKind, EventKind, HeartbeatOutcome, NotifyOutcome, Progress, ProgressEvent,
    PruneReport, RunReport, Status,
};

/// Prints an error and a one-line hint of what to do.
pub(crate) fn error(error: &dyn std::error::Error, hint: &str) {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            let _ = write!(message, ": {text}");
        }
        source = inner.source();
    }
    eprintln!("error: {message}\nhint: {hint}");
}

/// The hint for a command that could not start (`run`, `prune`, `verify`, `list`): a
/// selector that matched nothing names `--only`; anything else gets its kind's hint.
pub(crate) fn command_hint(error: &d1_backup_core::Error) -> &'static str {
    match error.kind() {
        ErrorKind::Config if needs_identity(error) => IDENTITY_HINT,
        ErrorKind::NotConfigured => {
            "check --only (NAME or ACCOUNT/NAME) against the databases in the config file"
        }
        kind => failure_hint(kind).unwrap_or("fix what the message says and run again"),
    }
}

/// What to do when an encrypted backup cannot be decrypted: nothing was read or written.
pub(crate) const IDENTITY_HINT: &str = "nothing was changed; pass the age identity file of one of the backup's recipients with --identity key.txt, or set [encryption] identity_file";

/// Whether `error` is about the age identity that decrypts a backup (missing or wrong).
pub(crate) fn needs_identity(error: &d1_backup_core::Error) -> bool {
    error.chain().contains("age identity")
}

/// The human summary on stderr: one line per database, then the totals.
pub(crate) fn summary(report: &RunReport, sink: &str) {
    let mut out = String::new();
    for db in &report.databases {
        let who = format!("{}/{}", db.account, db.name);
        let _ = match db.status {
            Status::Ok => writeln!(
                out,
                "ok       {who:<32} {:>10}  {}  sha256:{}{}",
                human_bytes(db.bytes.unwrap_or(0)),
                db.key,
                db.sha256.as_deref().map_or("-", |s| &s[..s.len().min(16)]),
                if db.verified == Some(true) {
                    "  verified"
                } else {
                    ""
                },
            ),
            Status::Skipped => writeln!(
                out,
                "skipped  {who:<32} {}",
                skip_reason(db.reason.as_deref().unwrap_or(""))
            ),
            Status::Leased => writeln!(
                out,
                "LEASED   {who:<32} {}",
                db.reason
                    .as_deref()
                    .unwrap_or("another run holds the lease")
            ),
            Status::Failed => {
                let _ = writeln!(
                    out,
                    "FAILED   {who:<32} {}",
                    db.error.as_deref().unwrap_or("unknown error")
                );
                match db.error_kind.and_then(failure_hint) {
                    Some(hint) => writeln!(out, "         {:<32} hint: {hint}", ""),
                    None => Ok(()),
                }
            }
            _ => writeln!(out, "{:<8} {who}", db.status.as_str()),
        };
    }
    let _ = writeln!(
        out,
        "{} database(s) for {}: {} ok, {} skipped, {} failed{}{} -> {sink}",
        report.databases.len(),
        report.date,
        report.count(Status::Ok),
        report.count(Status::Skipped),
        report.count(Status::Failed),
        match report.count(Status::Leased) {
            0 => String::new(),
            n => format!(", {n} leased by another run"),
        },
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        },
    );
    eprint!("{out}");
}

/// A skip reason with the library's advice turned into this command's flag.
fn skip_reason(reason: &str) -> String {
    match reason.strip_suffix(d1_backup_core::ALREADY_BACKED_UP_HINT) {
        Some(head) => format!("{head}use --force to back up again"),
        None => reason.to_owned(),
    }
}

/// What an operator can do about a database that failed with `kind`, in this command's
/// terms; `None` where the message says it all.
pub(crate) fn failure_hint(kind: ErrorKind) -> Option<&'static str> {
    Some(match kind {
        ErrorKind::Unauthorized => {
            "the credentials were refused: `d1-backup config check` tests each token and the sink"
        }
        ErrorKind::NotFound => "`d1-backup databases` lists what each token can access",
        ErrorKind::RateLimited => {
            "run again later; lower [cloudflare] requests_per_five_minutes if other tools share the token"
        }
        ErrorKind::Busy => {
            "run again later (complete backups are skipped), or set [run] wait_if_busy_minutes"
        }
        ErrorKind::Transient | ErrorKind::Cancelled => {
            "run again: complete backups are skipped, this one is retried"
        }
        ErrorKind::TimedOut => "raise [run] max_wait_minutes (or the database's own) and run again",
        ErrorKind::Config | ErrorKind::NotConfigured => {
            "fix the config file; `d1-backup config check` tests it"
        }
        ErrorKind::InvalidDump => {
            "back it up again with `d1-backup run --force`, then `d1-backup verify`"
        }
        _ => return None,
    })
}

/// The last line after a run that did not fully succeed: what to do next.
pub(crate) fn run_hint(report: &RunReport) {
    if report.interrupted {
        eprintln!(
            "hint: run again to finish; databases already backed up for the date are skipped"
        );
    } else if report.count(Status::Failed) > 0 {
        eprintln!(
            "hint: fix what each FAILED line says, then run again (complete backups are skipped); \
             `d1-backup config check` tests tokens and the sink, -v shows each step"
        );
    } else if report.count(Status::Leased) > 0 {
        eprintln!(
            "hint: another run is backing up each LEASED database; run again later (its backup is \
             then found complete), or raise [run] wait_for_lease_minutes"
        );
    }
}

/// How much of a prune to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Every decision (standalone `prune`).
    Everything,
    /// Deletions only (after a run, where keeping is the normal case).
    Deletions,
}

/// The prune's decisions on stderr, each with its reason.
pub(crate) fn prune_summary(report: &PruneReport, detail: Detail) {
    let mut out = String::new();
    for d in &report.decisions {
        if detail == Detail::Deletions && d.action == Action::Keep {
            continue;
        }
        let verb = match (d.action, report.dry_run) {
            (Action::Keep, _) => "keep",
            (Action::Delete, true) => "would delete",
            (Action::Delete, false) => "delete",
            _ => "?",
        };
        let _ = writeln!(
            out,
            "{verb:<12} {}/{} {}  {} ({} object(s))",
            d.account,
            d.database,
            d.date,
            d.reason,
            d.keys.len()
        );
    }
    for upload in &report.stale_uploads {
        let verb = match (report.dry_run, upload.aborted) {
            (true, _) => "would abort",
            (false, true) => "abort",
            (false, false) => "NOT aborted",
        };
        let _ = writeln!(
            out,
            "{verb:<12} {}  unfinished upload started {} (more than a day ago)",
            upload.key,
            upload.started_at.format("%Y-%m-%d %H:%M UTC")
        );
    }
    for error in &report.errors {
        let _ = writeln!(out, "ERROR        {error}");
    }
    let deletes = report
        .decisions
        .iter()
        .filter(|d| d.action == Action::Delete)
        .count();
    let _ = writeln!(
        out,
        "retention from {}: {} decision(s), {deletes} deletion(s){}",
        report.today,
        report.decisions.len(),
        if report.dry_run {
            " (dry run: nothing deleted)".to_owned()
        } else {
            format!(", {} object(s) deleted", report.deleted)
        },
    );
    eprint!("{out}");
}

/// Heartbeat outcomes on stderr (failures only matter, but deliveries reassure).
pub(crate) fn heartbeat(outcomes: &[HeartbeatOutcome]) {
    for o in outcomes {
        match &o.error {
            None => eprintln!("heartbeat {} -> {}: delivered", o.target, o.destination),
            Some(error) => eprintln!(
                "heartbeat {} -> {}: FAILED: {error}",
                o.target, o.destination
            ),
        }
    }
}

/// Notifications that could not be sent, as warnings (a delivered one is not worth a line:
/// the webhook's receiver shows it). They never change the exit code.
pub(crate) fn notifications(outcomes: &[NotifyOutcome]) {
    for o in outcomes {
        if let Some(error) = &o.error {
            tracing::warn!(
                "notification {} not sent after {} attempt(s): {error}",
                o.name,
                o.attempts
            );
        }
    }
}

/// A report as JSON on stdout.
pub(crate) fn json(report: &impl serde::Serialize) {
    match serde_json::to_string_pretty(report) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("error: cannot encode the report as JSON: {error}"),
    }
}

pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // Display only.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Progress as log lines (tracing, on stderr): starts, server messages and ends at `info`,
/// polls and transfer counts at `debug`.
pub(crate) struct LogProgress;

impl Progress for LogProgress {
    fn event(&self, event: &ProgressEvent<'_>) {
        let db = format!("{}/{}", event.account, event.database);
        match event.kind {
            EventKind::ExportStarted { attempt } => {
                tracing::info!("{db}: starting export (attempt {attempt})");
            }
            EventKind::Export(ExportEvent::Message(message)) => tracing::info!("{db}: {message}"),
            EventKind::Export(ExportEvent::Retrying { reason, delay }) => {
                tracing::warn!("{db}: retrying in {delay:?}: {reason}");
            }
            EventKind::Export(other) => tracing::debug!("{db}: {other:?}"),
            EventKind::DownloadStarted { content_length } => {
                tracing::info!(
                    "{db}: downloading dump ({})",
                    content_length.map_or("size unknown".to_owned(), human_bytes)
                );
            }
            EventKind::Transferred { bytes, total } => {
                tracing::debug!(
                    "{db}: {} of {}",
                    human_bytes(bytes),
                    total.map_or("?".to_owned(), human_bytes)
                );
            }
            EventKind::Done { key, bytes } => {
                tracing::info!("{db}: stored {} at {key}", human_bytes(bytes));
            }
            EventKind::Skipped { reason } => tracing::info!("{db}: skipped: {reason}"),
            EventKind::Leased { reason } => tracing::error!("{db}: {reason}"),
            EventKind::Failed { error } => tracing::error!("{db}: {error}"),
            _ => tracing::trace!("{db}: {:?}", event.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_well() {
        for (bytes, expected) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (382_976, "374.0 KiB"),
            (754_974_720, "720.0 MiB"),
        ] {
            assert_eq!(human_bytes(bytes), expected);
        }
    }
}
