//! Retention as a pure policy: given one database's backups and "today", decide for each date
//! whether to keep or delete it, and why. No I/O here; [`crate::prune`] lists and deletes.
//!
//! Safety rules come first and cannot be overridden by the others:
//! - the newest `min_keep` complete backups are always kept, counting only backups whose last
//!   verification did not fail (a backup proven bad never stands in for a good one);
//! - backups dated after `today` are kept;
//! - incomplete leftovers (a dump without a manifest, or the reverse) are kept for a day, as a
//!   run may still be writing them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate};

use crate::config::RetentionConfig;

/// What the policy keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Backups dated within the last `keep_days` days (today included) are kept: a backup
    /// dated D expires when D ≤ today − keep_days.
    pub keep_days: u32,
    /// Also keep the newest backup of each of the newest N days that have one.
    pub keep_daily: u32,
    /// Also keep the newest backup of each of the newest N ISO weeks that have one.
    pub keep_weekly: u32,
    /// Also keep the newest backup of each of the newest N months that have one.
    pub keep_monthly: u32,
    /// Never delete the newest N complete backups, whatever the other rules say.
    pub min_keep: u32,
}

impl From<&RetentionConfig> for RetentionPolicy {
    fn from(config: &RetentionConfig) -> Self {
        Self {
            keep_days: config.keep_days,
            keep_daily: config.keep_daily.unwrap_or(0),
            keep_weekly: config.keep_weekly.unwrap_or(0),
            keep_monthly: config.keep_monthly.unwrap_or(0),
            min_keep: config.min_keep,
        }
    }
}

/// One date's backup of one database, as found in the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) date: NaiveDate,
    /// A manifest whose dump exists with the recorded size.
    pub(crate) complete: bool,
    /// Its verification record showed it defective (it does not count towards `min_keep`).
    pub(crate) verification_failed: bool,
}

/// Keep or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Action {
    /// Kept.
    Keep,
    /// Deleted (or, in a dry run, would be).
    Delete,
}

/// Decides for every candidate (one per date) whether to keep it, with the reason.
pub(crate) fn decide(
    policy: &RetentionPolicy,
    candidates: &[Candidate],
    today: NaiveDate,
) -> BTreeMap<NaiveDate, (Action, String)> {
    // Newest first; `good` leaves out backups a verification showed defective.
    let newest_dates = |keep: &dyn Fn(&Candidate) -> bool| -> Vec<NaiveDate> {
        let set: BTreeSet<NaiveDate> = candidates
            .iter()
            .filter(|c| keep(c))
            .map(|c| c.date)
            .collect();
        set.into_iter().rev().collect()
    };
    let complete = newest_dates(&|c| c.complete);
    let good = newest_dates(&|c| c.complete && !c.verification_failed);
    let newest = |n: u32| {
        complete
            .iter()
            .take(n as usize)
            .copied()
            .collect::<BTreeSet<_>>()
    };
    let min_keep: BTreeSet<NaiveDate> = good
        .iter()
        .take(policy.min_keep as usize)
        .copied()
        .collect();
    let daily = newest(policy.keep_daily);
    let weekly = newest_per_period(&complete, policy.keep_weekly, |d| {
        let w = d.iso_week();
        (w.year(), w.week())
    });
    let monthly = newest_per_period(&complete, policy.keep_monthly, |d| (d.year(), d.month()));
    let expired_on_or_before = today - Duration::days(i64::from(policy.keep_days));

    candidates
        .iter()
        .map(|c| {
            let d = c.date;
            let decision = if d > today {
                (Action::Keep, format!("dated after today ({today})"))
            } else if !c.complete {
                if d >= today - Duration::days(1) {
                    (Action::Keep, "incomplete, but recent: a run may still be writing it".to_owned())
                } else {
                    (Action::Delete, "incomplete leftover (no manifest, or no dump of the recorded size) older than a day".to_owned())
                }
            } else if min_keep.contains(&d) {
                (Action::Keep, format!("one of the newest {} complete backups (min_keep)", policy.min_keep))
            } else if d > expired_on_or_before {
                (Action::Keep, format!("within keep_days = {} (expires after {})", policy.keep_days, d + Duration::days(i64::from(policy.keep_days)) - Duration::days(1)))
            } else if daily.contains(&d) {
                (Action::Keep, format!("one of the newest {} daily backups (keep_daily)", policy.keep_daily))
            } else if weekly.contains(&d) {
                (Action::Keep, format!("newest backup of its ISO week, one of the newest {} weeks (keep_weekly)", policy.keep_weekly))
            } else if monthly.contains(&d) {
                (Action::Keep, format!("newest backup of its month, one of the newest {} months (keep_monthly)", policy.keep_monthly))
            } else {
                (Action::Delete, format!("expired: dated on or before {expired_on_or_before} (keep_days = {}) and kept by no other rule", policy.keep_days))
            };
            (d, decision)
        })
        .collect()
}

/// The newest date in each of the newest `n` periods that have a date (`dates` newest first).
fn newest_per_period<K: PartialEq>(
    dates: &[NaiveDate],
    n: u32,
    period: impl Fn(NaiveDate) -> K,
) -> BTreeSet<NaiveDate> {
    let mut kept = BTreeSet::new();
    let mut last: Option<K> = None;
    for &d in dates {
        if kept.len() >= n as usize {
            break;
        }
        let p = period(d);
        if last.as_ref() != Some(&p) {
            kept.insert(d);
            last = Some(p);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn policy(keep_days: u32) -> RetentionPolicy {
        RetentionPolicy {
            keep_days,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            min_keep: 3,
        }
    }

    /// Every complete backup from `first` to `last` inclusive.
    fn daily_range(first: &str, last: &str) -> Vec<Candidate> {
        day(first)
            .iter_days()
            .take_while(|d| *d <= day(last))
            .map(|date| Candidate {
                date,
                complete: true,
                verification_failed: false,
            })
            .collect()
    }

    fn kept(policy: &RetentionPolicy, candidates: &[Candidate], today: &str) -> Vec<NaiveDate> {
        decide(policy, candidates, day(today))
            .into_iter()
            .filter(|(_, (a, _))| *a == Action::Keep)
            .map(|(d, _)| d)
            .collect()
    }

    /// Table-driven: (policy, backups, today) → the dates kept.
    fn check(policy: &RetentionPolicy, candidates: &[Candidate], today: &str, expected: &[&str]) {
        let expected: Vec<NaiveDate> = expected.iter().map(|s| day(s)).collect();
        assert_eq!(kept(policy, candidates, today), expected, "today {today}");
    }

    #[test]
    fn the_rolling_window_keeps_today_and_the_days_before() {
        let all = daily_range("2026-01-01", "2026-03-01");
        let k = kept(&policy(30), &all, "2026-03-01");
        assert_eq!(k.len(), 30);
        assert_eq!(k.first(), Some(&day("2026-01-31")));
        assert_eq!(k.last(), Some(&day("2026-03-01")));
        check(
            &policy(1),
            &daily_range("2026-01-01", "2026-01-10"),
            "2026-01-10",
            &["2026-01-08", "2026-01-09", "2026-01-10"],
        );
    }

    #[test]
    fn backups_that_failed_verification_do_not_count_towards_min_keep() {
        // Months without backups; the newest two were proven bad by `verify`.
        let mut old = daily_range("2025-01-01", "2025-01-10");
        for c in old.iter_mut().rev().take(2) {
            c.verification_failed = true;
        }
        check(
            &policy(30),
            &old,
            "2026-06-01",
            &["2025-01-06", "2025-01-07", "2025-01-08"],
        );
    }

    #[test]
    fn min_keep_survives_a_long_outage() {
        // The last backup was months ago: keep_days alone would delete everything.
        let old = daily_range("2025-01-01", "2025-01-10");
        check(
            &policy(30),
            &old,
            "2026-06-01",
            &["2025-01-08", "2025-01-09", "2025-01-10"],
        );
        let mut p = policy(30);
        p.min_keep = 0;
        check(&p, &old, "2026-06-01", &[]);
    }

    #[test]
    fn incomplete_backups_never_count_and_are_cleaned_after_a_day() {
        let mut c = daily_range("2026-01-01", "2026-01-05");
        for candidate in &mut c[3..] {
            candidate.complete = false; // 01-04 and 01-05 failed half-way
        }
        let d = decide(&policy(1), &c, day("2026-01-05"));
        assert_eq!(
            d[&day("2026-01-05")].0,
            Action::Keep,
            "today's leftover may be in progress"
        );
        assert_eq!(d[&day("2026-01-04")].0, Action::Keep, "yesterday's too");
        // min_keep counts complete backups only: the three complete ones stay.
        for s in ["2026-01-01", "2026-01-02", "2026-01-03"] {
            assert_eq!(d[&day(s)].0, Action::Keep, "{s}");
        }
        let later = decide(&policy(1), &c, day("2026-01-07"));
        assert_eq!(later[&day("2026-01-04")].0, Action::Delete);
        assert!(later[&day("2026-01-04")].1.contains("incomplete"));
    }

    #[test]
    fn future_dates_are_kept() {
        check(
            &policy(1),
            &daily_range("2026-01-01", "2026-01-03"),
            "2025-12-01",
            &["2026-01-01", "2026-01-02", "2026-01-03"],
        );
    }

    #[test]
    fn grandfather_father_son() {
        // Two years of daily backups; keep 7 days, 4 weekly, 12 monthly.
        let all = daily_range("2024-12-01", "2026-11-30");
        let p = RetentionPolicy {
            keep_days: 7,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 12,
            min_keep: 3,
        };
        let k = kept(&p, &all, "2026-11-30");
        // 7 days + Sundays of 4 ISO weeks (some inside the 7 days) + month ends.
        let days: Vec<String> = k.iter().map(ToString::to_string).collect();
        for expected in [
            "2026-11-30",
            "2026-11-24",
            "2026-11-22",
            "2026-11-15",
            "2026-10-31",
            "2025-12-31",
        ] {
            assert!(
                days.contains(&expected.to_owned()),
                "{expected} not kept: {days:?}"
            );
        }
        assert!(
            !days.contains(&"2025-11-30".to_owned()),
            "13th month back is not kept: {days:?}"
        );
        assert!(!days.contains(&"2026-11-01".to_owned()));
        assert_eq!(k.len(), 7 + 2 + 11, "{days:?}");
    }

    #[test]
    fn every_decision_has_a_reason() {
        let all = daily_range("2026-01-01", "2026-03-01");
        for (_, (_, reason)) in decide(&policy(30), &all, day("2026-03-01")) {
            assert!(!reason.is_empty());
        }
    }
}
