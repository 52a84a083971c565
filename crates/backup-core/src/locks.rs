//! R2 bucket lock rules (`[sink] lock_token_env`): which objects retention may not delete
//! yet, and what `config check` says about each account's folder.
//!
//! The rules are read once per prune (or `config check`) through the Cloudflare API with the
//! token `lock_token_env` names. An object is locked while an enabled rule whose prefix starts
//! its key holds it: `Age` until its last write plus the age, `Date` until the date,
//! `Indefinite` for ever. A backup (its dump, manifest and record) is deleted only when none
//! of its objects is locked, so no half-deleted backup is left. When the rules cannot be read,
//! nothing is deleted: a bucket that refuses deletes is not pruned blindly.

use std::time::SystemTime;

use chrono::{DateTime, Duration, Utc};
use d1_export::{D1Client, LockCondition, LockRule};

use crate::catalog::Object;
use crate::config::RetentionConfig;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};

/// Where the bucket's lock rules are read from, built by the engine from `[sink]`.
#[derive(Debug)]
pub(crate) struct LockSource {
    /// A client with the lock token; `None` when the secret was not given.
    pub(crate) client: Option<D1Client>,
    pub(crate) account_id: String,
    pub(crate) bucket: String,
    pub(crate) jurisdiction: Option<String>,
    /// The name of the secret (the environment variable), never its value.
    pub(crate) token_env: String,
}

impl LockSource {
    /// Reads the rules; errors name the secret's variable and what to do about it.
    pub(crate) async fn read(&self) -> Result<Vec<LockRule>, Error> {
        let var = &self.token_env;
        let Some(client) = &self.client else {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "sink.lock_token_env names `{var}`, which is not set or empty, so the lock rules of bucket {} cannot be read; export {var}=<a token that can read the bucket's R2 settings>",
                    self.bucket
                ),
            ));
        };
        client
            .bucket_lock_rules(&self.account_id, &self.bucket, self.jurisdiction.as_deref())
            .await
            .map_err(|e| {
                let refused = e.kind() == d1_export::ErrorKind::Unauthorized;
                let error = Error::from(e);
                if refused {
                    error.context(format_args!(
                        "the token in `{var}` (sink.lock_token_env) was refused: give it permission to read R2 settings (Workers R2 Storage Read) on account {}",
                        self.account_id
                    ))
                } else {
                    error
                }
            })
    }
}

/// The lock rules as retention sees them.
#[derive(Debug)]
pub(crate) enum Locks {
    /// No `lock_token_env`: deletes are not checked against rules.
    Unchecked,
    /// The bucket's rules.
    Rules(Vec<LockRule>),
    /// The rules could not be read (the error is in the prune report): delete nothing.
    Unreadable,
}

impl Locks {
    /// Reads the engine's lock rules once, for a prune; a failure to read them goes to
    /// `errors` and makes the prune delete nothing.
    pub(crate) async fn for_prune(engine: &Engine, errors: &mut Vec<String>) -> Self {
        let Some(source) = engine.lock_source() else {
            return Self::Unchecked;
        };
        match source.read().await {
            Ok(rules) => Self::Rules(rules),
            Err(error) => {
                errors.push(
                    error
                        .context("nothing was deleted: the bucket's lock rules could not be read")
                        .chain(),
                );
                Self::Unreadable
            }
        }
    }
}

/// How long a lock holds an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Until {
    Time(DateTime<Utc>),
    /// An `Age` rule over an object whose store reports no modification time.
    Unknown,
    Indefinitely,
}

impl Locks {
    /// Why `objects` may not be deleted at `now`, or `None` when they may.
    pub(crate) fn hold(&self, objects: &[&Object], now: DateTime<Utc>) -> Option<String> {
        let rules = match self {
            Self::Unchecked => return None,
            Self::Unreadable => {
                return Some(
                    "not deleted: the bucket's lock rules could not be read (see errors)"
                        .to_owned(),
                );
            }
            Self::Rules(rules) => rules,
        };
        let (rule, until) = objects
            .iter()
            .filter_map(|o| lock_on(rules, &o.key, o.modified, now))
            .max_by_key(|(_, until)| *until)?;
        Some(match until {
            Until::Time(time) => format!(
                "locked by bucket lock rule {} until {}",
                rule.id,
                time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Until::Unknown => format!(
                "locked by bucket lock rule {} (an age lock, and the store reports no modification time)",
                rule.id
            ),
            Until::Indefinitely => format!("locked by bucket lock rule {} indefinitely", rule.id),
        })
    }
}

/// The rule that holds `key` longest at `now`, and until when; `None` when none holds it.
fn lock_on<'r>(
    rules: &'r [LockRule],
    key: &str,
    modified: Option<SystemTime>,
    now: DateTime<Utc>,
) -> Option<(&'r LockRule, Until)> {
    rules
        .iter()
        .filter(|rule| rule.applies_to(key))
        .filter_map(|rule| {
            let until = match rule.condition {
                LockCondition::Indefinite => Until::Indefinitely,
                LockCondition::Date { until } => Until::Time(until),
                LockCondition::Age { max_age_seconds } => match modified {
                    None => Until::Unknown,
                    Some(at) => Until::Time(DateTime::<Utc>::from(at) + age(max_age_seconds)),
                },
                _ => Until::Unknown,
            };
            (until > Until::Time(now)).then_some((rule, until))
        })
        .max_by_key(|(_, until)| *until)
}

/// Seconds as days, for messages.
fn days(seconds: u64) -> f64 {
    // Exact for any lock shorter than 2^53 seconds; a message needs no more.
    #[allow(clippy::cast_precision_loss)]
    let seconds = seconds as f64;
    seconds / 86_400.0
}

fn age(seconds: u64) -> Duration {
    Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 1000))
}

/// Whether an enabled rule covers the folder `prefix/`: its prefix is empty, starts the
/// folder, or lies inside it (then it covers part of the folder).
pub(crate) fn covers(rule: &LockRule, prefix: &str) -> Coverage {
    let folder = format!("{prefix}/");
    if !rule.enabled {
        Coverage::None
    } else if folder.starts_with(&rule.prefix) {
        Coverage::Whole
    } else if rule.prefix.starts_with(&folder) {
        Coverage::Part
    } else {
        Coverage::None
    }
}

/// How much of an account's folder a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coverage {
    None,
    Whole,
    Part,
}

/// The rule's lock in words.
pub(crate) fn length(condition: LockCondition) -> String {
    match condition {
        LockCondition::Age { max_age_seconds } => {
            let days = days(max_age_seconds);
            format!("objects locked for {days:.1} day(s) after they are written")
        }
        LockCondition::Date { until } => format!(
            "objects locked until {}",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        LockCondition::Indefinite => "objects locked indefinitely".to_owned(),
        _ => "a lock of a kind this release does not know".to_owned(),
    }
}

/// Why retention and the rule disagree (a config that cannot prune as configured), or
/// `None` when retention can delete what it expires.
pub(crate) fn conflict(
    condition: LockCondition,
    retention: &RetentionConfig,
    now: DateTime<Utc>,
) -> Option<String> {
    let keep_days = retention.keep_days;
    match condition {
        LockCondition::Age { max_age_seconds } => {
            let keep = u64::from(keep_days) * 86_400;
            (max_age_seconds > keep).then(|| {
                format!(
                    "retention keep_days = {keep_days} is shorter than the lock ({:.1} days): prune keeps each expired backup until the lock lapses; set keep_days to at least {} or shorten the lock",
                    days(max_age_seconds),
                    max_age_seconds.div_ceil(86_400)
                )
            })
        }
        LockCondition::Date { until } => (until > now).then(|| {
            format!(
                "nothing under it can be deleted before {}: prune keeps every expired backup until then",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        }),
        LockCondition::Indefinite => Some(
            "retention can never delete what it locks: this config can never prune (remove the rule, or give it an Age of at most keep_days)".to_owned(),
        ),
        _ => Some("a lock of a kind this release does not know: prune may keep what retention expires".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::layout::LayoutKey;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a time")
    }

    fn object(key: &str, modified: Option<&str>) -> Object {
        Object {
            key: key.to_owned(),
            kind: LayoutKey::Manifest,
            size: 1,
            modified: modified.map(|t| SystemTime::from(at(t))),
        }
    }

    const DAY: u64 = 86_400;

    #[test]
    fn hold_names_the_rule_and_the_end_of_the_lock() {
        let now = at("2026-03-10T12:00:00Z");
        let rules = vec![
            LockRule::new(
                "week",
                "prod/",
                LockCondition::Age {
                    max_age_seconds: 7 * DAY,
                },
            ),
            LockRule::new("other", "staging/", LockCondition::Indefinite),
            {
                let mut off = LockRule::new("off", "", LockCondition::Indefinite);
                off.enabled = false;
                off
            },
        ];
        let locks = Locks::Rules(rules);
        let check = |key: &str, modified: Option<&str>, expected: Option<&str>| {
            let o = object(key, modified);
            assert_eq!(
                locks.hold(&[&o], now).as_deref(),
                expected,
                "{key} {modified:?}"
            );
        };
        check(
            "prod/2026-03-05/db.sql",
            Some("2026-03-05T01:00:00Z"),
            Some("locked by bucket lock rule week until 2026-03-12T01:00:00Z"),
        );
        check("prod/2026-03-01/db.sql", Some("2026-03-01T01:00:00Z"), None);
        check(
            "prod/2026-03-01/db.sql",
            None,
            Some(
                "locked by bucket lock rule week (an age lock, and the store reports no modification time)",
            ),
        );
        check(
            "staging/x",
            Some("2020-01-01T00:00:00Z"),
            Some("locked by bucket lock rule other indefinitely"),
        );
        check("elsewhere/x", None, None);
        // One locked object keeps the whole backup.
        let (old, new) = (
            object("prod/a", Some("2026-01-01T00:00:00Z")),
            object("prod/b", Some("2026-03-09T00:00:00Z")),
        );
        assert!(locks.hold(&[&old, &new], now).is_some());
        assert!(Locks::Unchecked.hold(&[&new], now).is_none());
        assert!(
            Locks::Unreadable
                .hold(&[&old], now)
                .is_some_and(|r| r.contains("could not be read"))
        );
    }

    #[test]
    fn a_date_lock_holds_until_its_date_and_the_longest_rule_wins() {
        let now = at("2026-03-10T12:00:00Z");
        let rules = vec![
            LockRule::new(
                "day",
                "p",
                LockCondition::Age {
                    max_age_seconds: DAY,
                },
            ),
            LockRule::new(
                "date",
                "p/",
                LockCondition::Date {
                    until: at("2026-04-01T00:00:00Z"),
                },
            ),
            LockRule::new(
                "past",
                "",
                LockCondition::Date {
                    until: at("2026-01-01T00:00:00Z"),
                },
            ),
        ];
        let o = object("p/x", Some("2026-03-10T00:00:00Z"));
        assert_eq!(
            Locks::Rules(rules).hold(&[&o], now).as_deref(),
            Some("locked by bucket lock rule date until 2026-04-01T00:00:00Z")
        );
    }

    #[test]
    fn coverage_of_a_folder() {
        let check = |rule_prefix: &str, enabled: bool, expected: Coverage| {
            let mut rule = LockRule::new("r", rule_prefix, LockCondition::Indefinite);
            rule.enabled = enabled;
            assert_eq!(covers(&rule, "backups/prod"), expected, "{rule_prefix:?}");
        };
        check("", true, Coverage::Whole);
        check("backups/", true, Coverage::Whole);
        check("backups/prod/", true, Coverage::Whole);
        check("backups/prod/2026-", true, Coverage::Part);
        check("backups/staging/", true, Coverage::None);
        check("backups/prod/", false, Coverage::None);
    }

    #[test]
    fn conflicts_with_retention() {
        let now = at("2026-03-10T12:00:00Z");
        let retention = RetentionConfig::default(); // keep_days = 30
        let check = |condition: LockCondition, conflict_expected: bool| {
            assert_eq!(
                conflict(condition, &retention, now).is_some(),
                conflict_expected,
                "{condition:?}"
            );
        };
        check(
            LockCondition::Age {
                max_age_seconds: 30 * DAY,
            },
            false,
        );
        check(
            LockCondition::Age {
                max_age_seconds: 30 * DAY + 1,
            },
            true,
        );
        check(LockCondition::Indefinite, true);
        check(
            LockCondition::Date {
                until: at("2026-03-11T00:00:00Z"),
            },
            true,
        );
        check(
            LockCondition::Date {
                until: at("2026-03-01T00:00:00Z"),
            },
            false,
        );
    }
}
