//! Pruning: list each account's folder, apply the [retention policy](crate::RetentionPolicy)
//! per database, delete what it expires (batched), and report every decision with its reason.
//!
//! Only keys that match the layout for a configured database are ever considered: other
//! folders, other files, leases and the backups of databases no longer configured are never
//! touched.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use futures::{StreamExt, stream};

use crate::config::AccountConfig;
use crate::engine::Engine;
use crate::error::Error;
use crate::existing;
use crate::layout::{self, LayoutKey};
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
    let found = find_backups(engine, account, databases).await?;
    let mut decisions = Vec::new();
    for (database, dates) in group_by_database(&found) {
        let candidates: Vec<Candidate> = dates
            .iter()
            .map(|f| Candidate {
                date: f.date,
                complete: f.complete.is_some(),
                verification_failed: f.verified.is_some_and(|(_, defective)| defective),
            })
            .collect();
        let verdicts = retention::decide(policy, &candidates, today);
        for f in dates {
            let Some((action, reason)) = verdicts.get(&f.date) else {
                continue;
            };
            let (keep, stale) = f.split_stale();
            decisions.push(PruneDecision {
                account: account.name.clone(),
                database: database.to_owned(),
                date: f.date,
                action: *action,
                reason: reason.clone(),
                keys: if *action == Action::Delete {
                    f.all_keys()
                } else {
                    keep
                },
            });
            // A dump the manifest does not name (the compression changed, or a forced
            // rerun) is a leftover once it is more than a day old.
            if *action == Action::Keep && !stale.is_empty() && f.date < today - Duration::days(1) {
                decisions.push(PruneDecision {
                    account: account.name.clone(),
                    database: database.to_owned(),
                    date: f.date,
                    action: Action::Delete,
                    reason: "stale dump: the manifest names another object for this date"
                        .to_owned(),
                    keys: stale,
                });
            }
        }
    }
    Ok(decisions)
}

/// Every backup (complete or not) of `databases` under the account's prefix.
pub(crate) async fn find_backups(
    engine: &Engine,
    account: &AccountConfig,
    databases: &[&str],
) -> Result<Vec<Found>, Error> {
    let listing = existing::list_keys(engine.sink().as_ref(), &account.prefix).await?;
    let mut by_date: BTreeMap<(String, NaiveDate), Vec<Object>> = BTreeMap::new();
    for info in listing {
        if let Some((date, name, kind)) = layout::parse_key(&account.prefix, &info.key)
            && databases.contains(&name.as_str())
        {
            by_date
                .entry((name, date))
                .or_default()
                .push((info.key, kind, info.size));
        }
    }
    let sink = engine.sink().as_ref();
    let prefix = account.prefix.as_str();
    let checks = by_date
        .into_iter()
        .map(|((name, date), objects)| async move {
            let manifest_present = objects.iter().any(|(_, k, _)| *k == LayoutKey::Manifest);
            let complete = if manifest_present {
                let key = layout::manifest_key(prefix, date, &name);
                // An unreadable manifest stops the prune of this account: deciding without it
                // could delete a good backup.
                existing::read_manifest(sink, &key).await?.filter(|m| {
                    objects
                        .iter()
                        .any(|(k, _, size)| *k == m.dump.key && *size == m.dump.bytes)
                })
            } else {
                None
            };
            let verified = match &complete {
                Some(manifest)
                    if objects
                        .iter()
                        .any(|(_, k, _)| *k == LayoutKey::Verification) =>
                {
                    existing::verification_outcome(sink, prefix, manifest).await
                }
                _ => None,
            };
            Ok::<_, Error>(Found {
                database: name,
                date,
                keys: objects,
                complete,
                verified,
            })
        });
    stream::iter(checks)
        .buffered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// An object of the layout: key, kind, size.
pub(crate) type Object = (String, LayoutKey, u64);

/// One database's objects for one date.
pub(crate) struct Found {
    pub(crate) database: String,
    pub(crate) date: NaiveDate,
    /// Every object of the layout for this database and date: key, kind, size.
    pub(crate) keys: Vec<Object>,
    /// The manifest, when it is valid and its dump exists with the recorded size.
    pub(crate) complete: Option<crate::formats::Manifest>,
    /// What the verification record of this dump says (`ok`, `defective`), when there is one.
    pub(crate) verified: Option<(bool, bool)>,
}

impl Found {
    fn all_keys(&self) -> Vec<String> {
        self.keys.iter().map(|(k, _, _)| k.clone()).collect()
    }

    /// Splits the keys into those of the backup and stale dumps the manifest does not name.
    fn split_stale(&self) -> (Vec<String>, Vec<String>) {
        let Some(manifest) = &self.complete else {
            return (self.all_keys(), Vec::new());
        };
        let (keep, stale): (Vec<_>, Vec<_>) = self.keys.iter().partition(|(k, kind, _)| {
            *k == manifest.dump.key || matches!(kind, LayoutKey::Manifest | LayoutKey::Verification)
        });
        let names = |v: Vec<&Object>| v.into_iter().map(|(k, _, _)| k.clone()).collect();
        (names(keep), names(stale))
    }
}

fn group_by_database(found: &[Found]) -> BTreeMap<&str, Vec<&Found>> {
    let mut groups: BTreeMap<&str, Vec<&Found>> = BTreeMap::new();
    for f in found {
        groups.entry(f.database.as_str()).or_default().push(f);
    }
    groups
}
