//! R2 bucket lock rules (`GET /accounts/{id}/r2/buckets/{bucket}/lock`): which objects of a
//! bucket cannot be deleted or overwritten, and until when.
//!
//! Read through the same Cloudflare API client as D1 (same base URL, bearer token, retries
//! and error mapping); the token needs permission to read the bucket's R2 settings.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::client::D1Client;
use crate::error::{Error, ErrorKind, Result};

/// One lock rule of an R2 bucket, as Cloudflare answers it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRule {
    /// The rule's unique id (its name in the dashboard).
    pub id: String,
    /// Whether the rule is in effect; a disabled rule locks nothing.
    pub enabled: bool,
    /// The key prefix the rule applies to; empty: every object of the bucket.
    pub prefix: String,
    /// How long an object under the prefix stays locked.
    pub condition: LockCondition,
}

/// How long a [`LockRule`] keeps an object.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockCondition {
    /// Until the object is this many seconds old (from its last write).
    Age {
        /// The lock's length in seconds.
        max_age_seconds: u64,
    },
    /// Until this time, whatever the object's age.
    Date {
        /// The end of the lock.
        until: DateTime<Utc>,
    },
    /// For ever (until the rule is removed).
    Indefinite,
}

impl LockRule {
    /// An enabled rule (for callers that build rules themselves, such as tests).
    pub fn new(id: impl Into<String>, prefix: impl Into<String>, condition: LockCondition) -> Self {
        Self {
            id: id.into(),
            enabled: true,
            prefix: prefix.into(),
            condition,
        }
    }

    /// Whether the rule applies to `key` (it is enabled and `key` starts with its prefix).
    pub fn applies_to(&self, key: &str) -> bool {
        self.enabled && key.starts_with(&self.prefix)
    }
}

/// The wire form of a rule; `condition` is decoded by its `type`.
#[derive(Deserialize)]
struct WireRule {
    id: String,
    enabled: bool,
    #[serde(default)]
    prefix: Option<String>,
    condition: WireCondition,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum WireCondition {
    Age {
        #[serde(rename = "maxAgeSeconds")]
        max_age_seconds: u64,
    },
    Date {
        date: String,
    },
    Indefinite,
}

#[derive(Deserialize)]
struct WireLock {
    #[serde(default)]
    rules: Vec<WireRule>,
}

impl D1Client {
    /// The lock rules of the R2 bucket `bucket` of `account_id`, in the order Cloudflare
    /// gives them. `jurisdiction` (`eu`, `fedramp`) names where the bucket lives, when not in
    /// the default one. A bucket without rules gives an empty list.
    ///
    /// An answer that is not the documented shape (an unknown condition type, a date that
    /// does not parse) is [`ErrorKind::Protocol`]: a caller deciding what it may delete
    /// should not guess.
    pub async fn bucket_lock_rules(
        &self,
        account_id: &str,
        bucket: &str,
        jurisdiction: Option<&str>,
    ) -> Result<Vec<LockRule>> {
        let doing = format!("reading the lock rules of R2 bucket {bucket}");
        let url = self
            .inner
            .endpoint(&["accounts", account_id, "r2", "buckets", bucket, "lock"]);
        let headers: Vec<(&str, &str)> = jurisdiction
            .map(|j| ("cf-r2-jurisdiction", j))
            .into_iter()
            .collect();
        let envelope = self.inner.call_with_headers(url, &headers, &doing).await?;
        decode_lock(envelope.get("result"), &doing)
    }
}

/// Decodes `result` of a lock answer into rules.
pub(crate) fn decode_lock(result: Option<&Value>, doing: &str) -> Result<Vec<LockRule>> {
    let shape = |why: String| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "{doing}: the answer has an unexpected shape ({why}); this client may need an update for this answer"
            ),
        )
    };
    let value = result.cloned().unwrap_or(Value::Null);
    let lock: WireLock = if value.is_null() {
        WireLock { rules: Vec::new() }
    } else {
        serde_json::from_value(value).map_err(|e| shape(e.to_string()))?
    };
    lock.rules
        .into_iter()
        .map(|rule| {
            let condition = match rule.condition {
                WireCondition::Age { max_age_seconds } => LockCondition::Age { max_age_seconds },
                WireCondition::Indefinite => LockCondition::Indefinite,
                WireCondition::Date { date } => LockCondition::Date {
                    until: parse_date(&date).ok_or_else(|| {
                        shape(format!(
                            "rule {}: the date `{date}` does not parse",
                            rule.id
                        ))
                    })?,
                },
            };
            Ok(LockRule {
                id: rule.id,
                enabled: rule.enabled,
                prefix: rule.prefix.unwrap_or_default(),
                condition,
            })
        })
        .collect()
}

/// An RFC 3339 time, or a bare `YYYY-MM-DD` (midnight UTC).
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(result: &Value) -> Result<Vec<LockRule>> {
        decode_lock(Some(result), "reading")
    }

    #[test]
    fn conditions_of_each_type() {
        let rules = decode(&json!({"rules": [
            {"id": "a", "enabled": true, "prefix": "p/", "condition": {"type": "Age", "maxAgeSeconds": 86400}},
            {"id": "d", "enabled": false, "condition": {"type": "Date", "date": "2030-01-02T03:04:05Z"}},
            {"id": "i", "enabled": true, "prefix": "", "condition": {"type": "Indefinite"}},
            {"id": "day", "enabled": true, "condition": {"type": "Date", "date": "2031-05-06"}},
        ]}))
        .expect("decodes");
        assert_eq!(rules.len(), 4);
        assert_eq!(
            rules[0].condition,
            LockCondition::Age {
                max_age_seconds: 86400
            }
        );
        assert_eq!(rules[0].prefix, "p/");
        assert!(!rules[1].enabled);
        assert_eq!(rules[1].prefix, "");
        assert_eq!(
            rules[1].condition,
            LockCondition::Date {
                until: "2030-01-02T03:04:05Z".parse().expect("time")
            }
        );
        assert_eq!(rules[2].condition, LockCondition::Indefinite);
        assert_eq!(
            rules[3].condition,
            LockCondition::Date {
                until: "2031-05-06T00:00:00Z".parse().expect("time")
            }
        );
        assert!(rules[0].applies_to("p/x") && !rules[0].applies_to("q/x"));
        assert!(
            !rules[1].applies_to("anything"),
            "a disabled rule locks nothing"
        );
    }

    #[test]
    fn empty_and_malformed_answers() {
        assert_eq!(decode(&json!({})).expect("no rules"), Vec::new());
        assert_eq!(decode_lock(None, "r").expect("no result"), Vec::new());
        for bad in [
            json!({"rules": [{"id": "x", "enabled": true, "condition": {"type": "Forever"}}]}),
            json!({"rules": [{"id": "x", "enabled": true, "condition": {"type": "Date", "date": "soon"}}]}),
            json!({"rules": [{"id": "x", "enabled": true, "condition": {"type": "Age"}}]}),
            json!({"rules": "none"}),
        ] {
            let err = decode(&bad).expect_err("refused");
            assert_eq!(err.kind(), ErrorKind::Protocol, "{bad}");
            assert!(err.to_string().contains("unexpected shape"), "{err}");
        }
    }
}
