//! Time Travel bookmarks: `GET …/time_travel/bookmark[?timestamp=…]`.
//!
//! A bookmark names a state of the database; it changes whenever the data does. A backup
//! that records its export's bookmark can later tell whether the live database moved on.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::Value;

use crate::client::{D1Client, Payload, ignore_retry};
use crate::error::{Error, ErrorKind, Result};

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
