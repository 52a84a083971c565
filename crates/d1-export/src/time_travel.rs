//! Time Travel: bookmarks (`GET …/time_travel/bookmark[?timestamp=…]`) and restores
//! (`POST …/time_travel/restore?bookmark=…|timestamp=…`).
//!
//! A bookmark names a state of the database; it changes whenever the data does. A backup
//! that records its export's bookmark can later tell whether the live database moved on.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{D1Client, Payload, ignore_retry};
use crate::databases::decode;
use crate::error::{Error, ErrorKind, Result};

/// The state a Time Travel restore returns a database to.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeTravelPoint {
    /// The state this bookmark names (from [`D1Client::current_bookmark`], a backup's
    /// manifest, or an earlier restore's [`TimeTravelRestore::previous_bookmark`]).
    Bookmark(String),
    /// The state current at this time, sent to the second, in UTC.
    Timestamp(SystemTime),
}

/// The answer to a Time Travel restore.
#[non_exhaustive]
#[derive(Debug, Clone, Deserialize)]
pub struct TimeTravelRestore {
    /// The bookmark of the database's new state (a restore is itself a new state).
    pub bookmark: String,
    /// The bookmark of the state before the restore: restore to it to undo.
    pub previous_bookmark: String,
    /// D1's message, as sent.
    #[serde(default)]
    pub message: Option<String>,
}

impl D1Client {
    /// The database's current bookmark.
    pub async fn current_bookmark(&self, account_id: &str, database_id: &str) -> Result<String> {
        self.bookmark_at(account_id, database_id, None).await
    }

    /// The bookmark of the database's state at `at` (`None`: now). D1 keeps 30 days of
    /// history on paid plans and 7 on free ones; older times are refused. Times are sent to
    /// the second, in UTC.
    pub async fn bookmark_at(
        &self,
        account_id: &str,
        database_id: &str,
        at: Option<SystemTime>,
    ) -> Result<String> {
        let doing = format!("reading the Time Travel bookmark of D1 database {database_id}");
        let mut url = self.inner.endpoint(&[
            "accounts",
            account_id,
            "d1",
            "database",
            database_id,
            "time_travel",
            "bookmark",
        ]);
        if let Some(at) = at {
            let timestamp = iso8601(at).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("{doing}: the time is before 1970; pass a time within D1's Time Travel window"),
                )
            })?;
            url.query_pairs_mut().append_pair("timestamp", &timestamp);
        }
        let envelope = self
            .inner
            .call(Method::GET, url, &Payload::None, &doing, &ignore_retry)
            .await?;
        envelope
            .pointer("/result/bookmark")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("{doing}: the answer has no `result.bookmark`; this client may need an update for this answer"),
                )
            })
    }
}

impl D1Client {
    /// Restores the database in place to the state at `to`, and returns the new bookmark and
    /// the one to undo with. Destructive: everything written since `to` is replaced (it
    /// stays reachable through `previous_bookmark`). D1 keeps 30 days of history on paid
    /// plans and 7 on free ones, and allows 10 restores per 10 minutes per database.
    ///
    /// A restore is sent again only when the first attempt provably did nothing (a 429, or a
    /// connect that failed); a 429 waits as [`RetryPolicy`](crate::RetryPolicy) allows. After
    /// a dropped connection, a timeout or a 5xx it may or may not have happened: the call
    /// fails with [`ErrorKind::OutcomeUnknown`]; read
    /// [`current_bookmark`](Self::current_bookmark) before restoring again.
    pub async fn time_travel_restore(
        &self,
        account_id: &str,
        database_id: &str,
        to: TimeTravelPoint,
    ) -> Result<TimeTravelRestore> {
        let (name, value) = match &to {
            TimeTravelPoint::Bookmark(bookmark) => ("bookmark", bookmark.trim().to_owned()),
            TimeTravelPoint::Timestamp(at) => ("timestamp", iso8601(*at).unwrap_or_default()),
        };
        let doing = format!("restoring D1 database {database_id} to Time Travel {name} {value}");
        if value.is_empty() {
            let what = match to {
                TimeTravelPoint::Bookmark(_) => {
                    "the bookmark is empty; pass one D1 gave (e.g. from current_bookmark or a backup's manifest)"
                }
                TimeTravelPoint::Timestamp(_) => {
                    "the time is before 1970; pass a time within D1's Time Travel window"
                }
            };
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{doing}: {what}"),
            ));
        }
        let mut url = self.inner.endpoint(&[
            "accounts",
            account_id,
            "d1",
            "database",
            database_id,
            "time_travel",
            "restore",
        ]);
        url.query_pairs_mut().append_pair(name, &value);
        let if_unknown = "the database may have been restored; read its current bookmark (current_bookmark) and compare it with the one before before restoring again";
        let envelope = self
            .inner
            .call_changing(Method::POST, url, &Payload::None, &doing, if_unknown)
            .await
            .map_err(|err| explain_refusal(err, &doing))?;
        let restore: TimeTravelRestore = decode(envelope.get("result"), &doing)?;
        if restore.bookmark.is_empty() || restore.previous_bookmark.is_empty() {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{doing}: the answer has an empty `bookmark` or `previous_bookmark`; this client may need an update for this answer"
                ),
            ));
        }
        Ok(restore)
    }
}

/// Adds what to do to D1's refusals of a restore.
fn explain_refusal(err: Error, doing: &str) -> Error {
    let said = err.server_message().unwrap_or_default().to_owned();
    match err.kind() {
        ErrorKind::RateLimited => err.reclassify(
            ErrorKind::RateLimited,
            format!("{doing}: D1 refused the restore for now ({said}): it allows 10 Time Travel restores per 10 minutes per database (and 1,200 API requests per 5 minutes per token); wait and try again"),
        ),
        ErrorKind::InvalidInput => err.reclassify(
            ErrorKind::InvalidInput,
            format!("{doing}: D1 refused the restore point ({said}): pass a bookmark D1 gave for this database, or a time within its Time Travel window (30 days on paid plans, 7 on free ones)"),
        ),
        _ => err,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, to the second, in UTC; `None` before 1970.
fn iso8601(at: SystemTime) -> Option<String> {
    at.duration_since(UNIX_EPOCH).ok()?;
    let at = chrono::DateTime::<chrono::Utc>::from(at);
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_utc_seconds() {
        let check = |secs: u64, expected: &str| {
            let at = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(iso8601(at).as_deref(), Some(expected), "{secs}");
        };
        check(0, "1970-01-01T00:00:00Z");
        check(951_782_400, "2000-02-29T00:00:00Z");
        check(1_767_225_599, "2025-12-31T23:59:59Z");
        check(4_107_542_400, "2100-03-01T00:00:00Z");
        // Sub-second parts are dropped, not rounded: D1 takes the time to the second.
        let at = UNIX_EPOCH + Duration::from_millis(1_767_225_599_999);
        assert_eq!(iso8601(at).as_deref(), Some("2025-12-31T23:59:59Z"));
        assert_eq!(iso8601(UNIX_EPOCH - Duration::from_secs(1)), None);
    }
}
