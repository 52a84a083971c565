//! Freshness ([`Engine::status`](crate::Engine::status)): for every selected database, its
//! newest complete backup and whether it is recent enough, decided from the listings that
//! `list` and `prune` read (one per account; see `catalog`).
//!
//! What "recent enough" means:
//! - a maximum age given by the caller ([`StatusOptions::max_age`]) applies to every database;
//!   zero makes every database stale;
//! - otherwise a database covered by `[[schedules]]` is stale once the first time one of its
//!   schedules fires after its newest backup finished, plus [`SCHEDULE_GRACE`], has passed
//!   (the scheduled run had that long to finish);
//! - otherwise it is stale once its newest backup is older than [`DEFAULT_MAX_AGE`] (a daily
//!   run from cron or a timer, with two hours' slack).
//!
//! A database with no complete backup is never fresh.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::catalog::{self, Found};
use crate::engine::Engine;
use crate::error::Error;
use crate::layout::LayoutKey;
use crate::plan::{self, Target};
use crate::schedule::Schedule;
use crate::selector::Selector;

/// The maximum age when neither the caller nor a schedule says otherwise: 26 hours, a daily
/// backup with two hours' slack.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_hours(26);

/// How long after a schedule's fire time its backup may still be missing before the database
/// counts as stale: two hours, for the run to export, upload and write its manifest.
pub const SCHEDULE_GRACE: Duration = Duration::from_hours(2);

/// What [`Engine::status`](crate::Engine::status) checks.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StatusOptions {
    /// The databases to check (empty: every configured database).
    pub only: Vec<Selector>,
    /// The oldest a newest backup may be and still be fresh, for every database; `None`
    /// decides from the schedules, else [`DEFAULT_MAX_AGE`].
    pub max_age: Option<Duration>,
}

impl StatusOptions {
    /// Checks every configured database, with the maximum age from the schedules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks only the databases these selectors match.
    #[must_use]
    pub fn only(mut self, only: Vec<Selector>) -> Self {
        self.only = only;
        self
    }

    /// One maximum age for every database (zero: every database is stale).
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }
}

/// What `status` found. Its JSON is the `status --json` contract: fields are only added.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// When the check was made (the engine's clock).
    pub checked_at: DateTime<Utc>,
    /// The maximum age applied to every database, in hours; null when the schedules decide
    /// per database (see each database's `stale_after`).
    pub max_age_hours: Option<f64>,
    /// One entry per selected database, in configuration order.
    pub databases: Vec<DatabaseStatus>,
}

impl StatusReport {
    /// True when every selected database is fresh.
    pub fn all_fresh(&self) -> bool {
        self.databases.iter().all(|d| d.fresh)
    }
}

/// One database's newest complete backup and its freshness.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DatabaseStatus {
    /// The account's configured name.
    pub account: String,
    /// The database name.
    pub name: String,
    /// The date folder of the newest complete backup; null when there is none.
    pub newest_date: Option<NaiveDate>,
    /// When that backup finished (its manifest was written); null when there is none.
    pub finished_at: Option<DateTime<Utc>>,
    /// How old it is at `checked_at`, in hours (two decimals); null when there is none.
    pub age_hours: Option<f64>,
    /// The size of its dump as stored, in bytes; null when there is none.
    pub bytes: Option<u64>,
    /// What its verification record says (true: it restored and checked out); null when it
    /// was never verified or there is no backup.
    pub verified: Option<bool>,
    /// Whether its dump is encrypted (an `.age` object); null when there is no backup.
    pub encrypted: Option<bool>,
    /// Whether the backup is recent enough.
    pub fresh: bool,
    /// When it stops being fresh; null when there is no backup.
    pub stale_after: Option<DateTime<Utc>>,
    /// Why it is not fresh, in words; null when fresh.
    pub reason: Option<String>,
}

/// The freshness of the selected databases' newest complete backups.
pub(crate) async fn status(
    engine: &Engine,
    options: &StatusOptions,
) -> Result<StatusReport, Error> {
    let targets = plan::select(engine.config(), &options.only)?;
    let now = engine.clock().now();
    let schedules = engine.config().schedules();
    let sink = engine.sink().as_ref();
    let mut newest: Vec<Option<Newest>> = vec![None; targets.len()];
    for (index, names) in plan::names_by_account(&targets) {
        let account = &engine.config().accounts[index];
        let found = catalog::find_backups(engine, account, &names).await?;
        for mut f in newest_complete_each(found) {
            let verified = catalog::verification(sink, &account.prefix, &mut f).await?;
            if let Some(slot) = targets
                .iter()
                .position(|t| t.account_index == index && t.entry.name == f.database)
            {
                newest[slot] = Newest::of(&f, verified.map(|(ok, _)| ok));
            }
        }
    }
    let databases = targets
        .iter()
        .zip(newest)
        .map(|(target, newest)| database_status(target, newest, now, options.max_age, &schedules))
        .collect();
    let max_age_hours = match options.max_age {
        Some(max_age) => Some(hours(max_age)),
        None if schedules.is_empty() => Some(hours(DEFAULT_MAX_AGE)),
        None => None,
    };
    Ok(StatusReport {
        checked_at: now,
        max_age_hours,
        databases,
    })
}

/// The newest complete backup of each database in `found` (sorted by database, then date).
fn newest_complete_each(found: Vec<Found>) -> Vec<Found> {
    let mut newest: Vec<Found> = Vec::new();
    for f in found.into_iter().filter(|f| f.complete.is_some()) {
        match newest.last_mut() {
            Some(last) if last.database == f.database => *last = f,
            _ => newest.push(f),
        }
    }
    newest
}

/// What `status` shows of a newest complete backup.
#[derive(Debug, Clone)]
struct Newest {
    date: NaiveDate,
    finished_at: DateTime<Utc>,
    bytes: u64,
    encrypted: bool,
    verified: Option<bool>,
}

impl Newest {
    /// From the listing: the manifest's modification time is when the backup finished (the
    /// manifest is written last); a manifest that was read says it itself.
    fn of(found: &Found, verified: Option<bool>) -> Option<Self> {
        let dump = found.dump()?;
        let finished_at = match &found.manifest {
            Some(manifest) => Some(manifest.finished_at),
            None => found
                .keys
                .iter()
                .find(|o| o.kind == LayoutKey::Manifest)
                .and_then(|o| o.modified)
                .map(DateTime::<Utc>::from),
        }?;
        Some(Self {
            date: found.date,
            finished_at,
            bytes: dump.size,
            encrypted: dump.kind.is_encrypted(),
            verified,
        })
    }
}

fn database_status(
    target: &Target<'_>,
    newest: Option<Newest>,
    now: DateTime<Utc>,
    max_age: Option<Duration>,
    schedules: &[Schedule],
) -> DatabaseStatus {
    let mut status = DatabaseStatus {
        account: target.account.name.clone(),
        name: target.entry.name.clone(),
        newest_date: None,
        finished_at: None,
        age_hours: None,
        bytes: None,
        verified: None,
        encrypted: None,
        fresh: false,
        stale_after: None,
        reason: Some("no complete backup".to_owned()),
    };
    let Some(newest) = newest else {
        return status;
    };
    let age = (now - newest.finished_at).to_std().unwrap_or_default();
    let stale_after = stale_after(target, newest.finished_at, max_age, schedules);
    // Zero means "everything is stale", even a backup whose time is ahead of the clock.
    let fresh = max_age != Some(Duration::ZERO) && now < stale_after;
    status.newest_date = Some(newest.date);
    status.finished_at = Some(newest.finished_at);
    status.age_hours = Some(hours(age));
    status.bytes = Some(newest.bytes);
    status.verified = newest.verified;
    status.encrypted = Some(newest.encrypted);
    status.fresh = fresh;
    status.stale_after = Some(stale_after);
    status.reason = (!fresh).then(|| {
        format!(
            "the newest complete backup ({}) is {:.1} h old; it was due by {}",
            newest.date,
            hours(age),
            stale_after.format("%Y-%m-%d %H:%M UTC")
        )
    });
    status
}

/// When a backup that finished at `finished` stops being fresh.
fn stale_after(
    target: &Target<'_>,
    finished: DateTime<Utc>,
    max_age: Option<Duration>,
    schedules: &[Schedule],
) -> DateTime<Utc> {
    let plus =
        |d: Duration| finished + chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
    if let Some(max_age) = max_age {
        return plus(max_age);
    }
    let grace = chrono::Duration::from_std(SCHEDULE_GRACE).unwrap_or_default();
    schedules
        .iter()
        .filter(|s| {
            s.only.is_empty()
                || s.only
                    .iter()
                    .any(|sel| sel.matches(&target.account.name, &target.entry.name))
        })
        .filter_map(|s| s.next_after(finished))
        .min()
        .map_or_else(|| plus(DEFAULT_MAX_AGE), |next| next + grace)
}

/// A duration in hours, rounded to two decimals.
fn hours(d: Duration) -> f64 {
    (d.as_secs_f64() / 36.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::hours;
    use std::time::Duration;

    #[test]
    fn hours_round_to_two_decimals() {
        assert!((hours(Duration::from_mins(90)) - 1.5).abs() < f64::EPSILON);
        assert!((hours(Duration::from_secs(100)) - 0.03).abs() < f64::EPSILON);
        assert!(hours(Duration::ZERO).abs() < f64::EPSILON);
    }
}
