//! Pruning: list each account's folder, apply the [retention policy](crate::RetentionPolicy)
//! per database, delete what it expires (batched), and report every decision with its reason.
//!
//! Only keys that match the layout for a configured database are ever considered: other
//! folders, other files, leases and the backups of databases no longer configured are never
//! touched.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

use crate::catalog::{self, Found};
use crate::config::AccountConfig;
use crate::engine::Engine;
use crate::error::Error;
use crate::plan;
use crate::report::{PruneDecision, PruneReport, RunReport, Status};
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
    Ok(prune_databases(engine, &wanted, options.today, options.mode).await)
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
    prune_databases(engine, &wanted, report.date, PruneMode::Delete).await
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
        errors: Vec::new(),
    };
    for (&index, databases) in wanted {
        let account = &engine.config().accounts[index];
        match account_decisions(engine, account, databases, &policy, today).await {
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
                push_decisions(&mut decisions, &account.name, f, verdict, today);
            }
        }
    }
    Ok(decisions)
}

/// Records the decision for one date, and the deletion of stale dumps beside a kept backup.
fn push_decisions(
    decisions: &mut Vec<PruneDecision>,
    account: &str,
    f: &Found,
    (action, reason): &(Action, String),
    today: NaiveDate,
) {
    let (keep, stale) = f.split_stale();
    decisions.push(PruneDecision {
        account: account.to_owned(),
        database: f.database.clone(),
        date: f.date,
        action: *action,
        reason: reason.clone(),
        keys: if *action == Action::Delete {
            f.all_keys()
        } else {
            keep
        },
    });
    // A dump the manifest does not name (the compression changed, or a forced rerun) is a
    // leftover once it is more than a day old.
    if *action == Action::Keep && !stale.is_empty() && f.date < today - Duration::days(1) {
        decisions.push(PruneDecision {
            account: account.to_owned(),
            database: f.database.clone(),
            date: f.date,
            action: Action::Delete,
            reason: "stale dump: the manifest names another object for this date".to_owned(),
            keys: stale,
        });
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
