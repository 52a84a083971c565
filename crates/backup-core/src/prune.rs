//! Pruning: list each account's folder, apply the [retention policy](crate::RetentionPolicy)
//! per database, delete what it expires (batched), and report every decision with its reason.
//!
//! Only keys that match the layout for a configured database are ever considered: other
//! folders, other files, leases and the backups of databases no longer configured are never
//! touched.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::catalog::{self, Found};
use crate::config::AccountConfig;
use crate::engine::Engine;
use crate::error::Error;
use crate::layout::{self, LayoutKey};
use crate::locks::Locks;
use crate::plan;
use crate::report::{PruneDecision, PruneReport, RunReport, StaleUpload, Status};
use crate::retention::{self, Action, Candidate, RetentionPolicy};
use crate::selector::Selector;

/// Whether a prune deletes or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneMode {
    /// Decide and delete.
    #[default]
    Delete,
    /// Decide and report, delete nothing.
    DryRun,
}

/// What a standalone prune covers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PruneOptions {
    /// The day retention counts from: the caller's "today" (the library reads no clock for it).
    pub today: NaiveDate,
    /// Databases to prune; empty means all configured ones.
    pub only: Vec<Selector>,
    /// Delete, or only report.
    pub mode: PruneMode,
}

impl PruneOptions {
    /// A prune of every configured database, counted from `today`.
    pub fn new(today: NaiveDate) -> Self {
        Self {
            today,
            only: Vec::new(),
            mode: PruneMode::Delete,
        }
    }

    /// Restricts the prune to the databases matching `selectors`.
    #[must_use]
    pub fn only(mut self, selectors: impl IntoIterator<Item = Selector>) -> Self {
        self.only = selectors.into_iter().collect();
        self
    }

    /// Sets whether anything is deleted.
    #[must_use]
    pub fn mode(mut self, mode: PruneMode) -> Self {
        self.mode = mode;
        self
    }
}

/// Applies retention to the selected databases, standalone (`d1-backup prune`).
pub(crate) async fn prune(engine: &Engine, options: &PruneOptions) -> Result<PruneReport, Error> {
    let targets = plan::select(engine.config(), &options.only)?;
    let wanted = plan::names_by_account(&targets);
    let mut report = prune_databases(engine, &wanted, options.today, options.mode).await;
    // Without --only, every unfinished upload of the layout counts (also of databases no
    // longer configured: an upload is never a backup); with it, those of the selection.
    let names = if options.only.is_empty() {
        None
    } else {
        Some(&wanted)
    };
    sweep_stale_uploads(engine, &wanted, names, options.mode, &mut report).await;
    Ok(report)
}

/// Applies retention after a run, only to the databases whose backup it completed (or
/// found complete): a database that failed keeps every old backup.
pub(crate) async fn prune_after(engine: &Engine, report: &RunReport) -> PruneReport {
    let mut wanted: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (i, account) in engine.config().accounts.iter().enumerate() {
        for db in &report.databases {
            if db.account == account.name && matches!(db.status, Status::Ok | Status::Skipped) {
                wanted.entry(i).or_default().push(&db.name);
            }
        }
    }
    let mut pruned = prune_databases(engine, &wanted, report.date, PruneMode::Delete).await;
    sweep_stale_uploads(engine, &wanted, None, PruneMode::Delete, &mut pruned).await;
    pruned
}

async fn prune_databases(
    engine: &Engine,
    wanted: &BTreeMap<usize, Vec<&str>>,
    today: NaiveDate,
    mode: PruneMode,
) -> PruneReport {
    let policy = RetentionPolicy::from(&engine.config().retention);
    let mut report = PruneReport {
        today,
        dry_run: mode == PruneMode::DryRun,
        decisions: Vec::new(),
        deleted: 0,
        stale_uploads: Vec::new(),
        errors: Vec::new(),
        replicas: Vec::new(),
    };
    // Read once, before any decision; unreadable rules turn every delete into a keep.
    let locks = Locks::for_prune(engine, &mut report.errors).await;
    let now = engine.clock().now();
    let lock = (&locks, now);
    for (&index, databases) in wanted {
        let account = &engine.config().accounts[index];
        match account_decisions(engine, account, databases, &policy, today, lock).await {
            Ok(decisions) => report.decisions.extend(decisions),
            Err(error) => report.errors.push(error.chain()),
        }
    }
    let doomed: Vec<String> = report
        .decisions
        .iter()
        .filter(|d| d.action == Action::Delete)
        .flat_map(|d| d.keys.iter().cloned())
        .collect();
    if mode == PruneMode::Delete && !doomed.is_empty() {
        match engine.sink().delete_many(&doomed).await {
            Ok(()) => report.deleted = doomed.len(),
            Err(e) => report.errors.push(
                Error::from(e)
                    .context("deleting expired backups failed")
                    .chain(),
            ),
        }
    }
    report
}

async fn account_decisions(
    engine: &Engine,
    account: &AccountConfig,
    databases: &[&str],
    policy: &RetentionPolicy,
    today: NaiveDate,
    lock: (&Locks, DateTime<Utc>),
) -> Result<Vec<PruneDecision>, Error> {
    let mut found = catalog::find_backups(engine, account, databases).await?;
    let mut decisions = Vec::new();
    for dates in by_database(&mut found) {
        let failed = failed_verifications(engine, account, dates, policy.min_keep).await?;
        let candidates: Vec<Candidate> = dates
            .iter()
            .zip(&failed)
            .map(|(f, &verification_failed)| Candidate {
                date: f.date,
                complete: f.complete.is_some(),
                verification_failed,
            })
            .collect();
        let verdicts = retention::decide(policy, &candidates, today);
        for f in dates.iter() {
            if let Some(verdict) = verdicts.get(&f.date) {
                push_decisions(&mut decisions, &account.name, f, verdict, today, lock);
            }
        }
    }
    Ok(decisions)
}

/// Records the decision for one date, and the deletion of stale dumps beside a kept backup.
/// A delete that a bucket lock rule forbids (for any of its objects) becomes a keep that
/// says so.
fn push_decisions(
    decisions: &mut Vec<PruneDecision>,
    account: &str,
    f: &Found,
    (action, reason): &(Action, String),
    today: NaiveDate,
    (locks, now): (&Locks, DateTime<Utc>),
) {
    let (keep, stale) = f.split_stale();
    let objects = |keys: &[String]| -> Vec<&catalog::Object> {
        f.keys.iter().filter(|o| keys.contains(&o.key)).collect()
    };
    let mut push = |action: Action, reason: String, keys: Vec<String>| {
        let (action, reason) = match locks
            .hold(&objects(&keys), now)
            .filter(|_| action == Action::Delete)
        {
            Some(locked) => (Action::Keep, locked),
            None => (action, reason),
        };
        decisions.push(PruneDecision {
            account: account.to_owned(),
            database: f.database.clone(),
            date: f.date,
            action,
            reason,
            keys,
        });
        action
    };
    let keys = if *action == Action::Delete {
        f.all_keys()
    } else {
        keep
    };
    let action = push(*action, reason.clone(), keys);
    // A dump the manifest does not name (the compression changed, or a forced rerun) is a
    // leftover once it is more than a day old.
    if action == Action::Keep && !stale.is_empty() && f.date < today - Duration::days(1) {
        let reason = "stale dump: the manifest names another object for this date".to_owned();
        push(Action::Delete, reason, stale);
    }
}

/// Which of one database's dates (in date order) a verification showed defective, reading
/// only what `min_keep` depends on: newest first, the verification records of complete
/// backups until `min_keep` backups not shown defective are found. Older records change no
/// decision (only `min_keep` looks at verification), so they are not read.
async fn failed_verifications(
    engine: &Engine,
    account: &AccountConfig,
    dates: &mut [Found],
    min_keep: u32,
) -> Result<Vec<bool>, Error> {
    let sink = engine.sink().as_ref();
    let mut failed = vec![false; dates.len()];
    let mut good = 0;
    for (i, f) in dates.iter_mut().enumerate().rev() {
        if good >= min_keep {
            break;
        }
        if f.complete.is_none() {
            continue;
        }
        let outcome = catalog::verification(sink, &account.prefix, f).await?;
        failed[i] = outcome.is_some_and(|(_, defective)| defective);
        // The listing may have taken a backup for complete that its manifest refutes.
        if f.complete.is_some() && !failed[i] {
            good += 1;
        }
    }
    Ok(failed)
}

/// Splits `found` (in database, date order) into one slice per database.
fn by_database(found: &mut [Found]) -> impl Iterator<Item = &mut [Found]> {
    found.chunk_by_mut(|a, b| a.database == b.database)
}

/// How long an upload stays unfinished before it counts as abandoned: the largest backup
/// (D1's 10 GB) exports and uploads in hours, and no run outlives its lease by a day.
const STALE_UPLOAD_HOURS: i64 = 24;

/// Aborts (or, in a dry run, reports) the multipart uploads under the layout of the accounts
/// in `accounts` that started more than [`STALE_UPLOAD_HOURS`] ago; with `names`, only those
/// of the named databases. Best effort, on sinks that list their open uploads: a failure to
/// list or abort is logged and the upload is left to the bucket's lifecycle rule.
async fn sweep_stale_uploads(
    engine: &Engine,
    accounts: &BTreeMap<usize, Vec<&str>>,
    names: Option<&BTreeMap<usize, Vec<&str>>>,
    mode: PruneMode,
    report: &mut PruneReport,
) {
    let sink = engine.sink().as_ref();
    if !sink.capabilities().lists_uploads {
        return;
    }
    let cutoff = engine.clock().now() - Duration::hours(STALE_UPLOAD_HOURS);
    for &index in accounts.keys() {
        let account = &engine.config().accounts[index];
        let uploads = match sink.list_uploads(&format!("{}/", account.prefix)).await {
            Ok(uploads) => uploads,
            Err(error) => {
                tracing::warn!(
                    "cannot list the unfinished uploads under {}/ (left to the bucket's lifecycle rule): {}",
                    account.prefix,
                    Error::from(error).chain()
                );
                continue;
            }
        };
        for upload in uploads {
            let Some((_, database, LayoutKey::Dump(_))) =
                layout::parse_key(&account.prefix, &upload.key)
            else {
                continue;
            };
            let selected = names.is_none_or(|names| {
                names
                    .get(&index)
                    .is_some_and(|n| n.contains(&database.as_str()))
            });
            let Some(started_at) = upload.initiated.map(DateTime::<Utc>::from) else {
                continue;
            };
            if !selected || started_at >= cutoff {
                continue;
            }
            let aborted = mode == PruneMode::Delete
                && match sink.abort_upload(&upload.key, &upload.upload_id).await {
                    Ok(aborted) => aborted,
                    Err(error) => {
                        tracing::warn!(
                            "cannot abort the unfinished upload of {} (started {started_at}): {}",
                            upload.key,
                            Error::from(error).chain()
                        );
                        false
                    }
                };
            report.stale_uploads.push(StaleUpload {
                account: account.name.clone(),
                key: upload.key,
                started_at,
                aborted,
            });
        }
    }
}
