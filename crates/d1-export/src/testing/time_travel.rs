//! Time Travel: `GET …/time_travel/bookmark[?timestamp=…]` and
//! `POST …/time_travel/restore?bookmark=…|timestamp=…`, with D1's limits: 30 days of history
//! and at most 10 restores per 10 minutes per database.

use std::collections::HashMap;

use serde_json::json;
use wiremock::{Request, ResponseTemplate};

use super::{Database, State, bookmark_of, envelope, failure, find, not_found};

/// How far back Time Travel reaches (D1's paid plans).
const WINDOW_SECS: i64 = 30 * 24 * 60 * 60;
/// Restores allowed per database within [`RATE_PERIOD_SECS`].
const RATE_LIMIT: usize = 10;
/// The period the restore limit is counted over.
const RATE_PERIOD_SECS: i64 = 10 * 60;

/// Answers `GET …/time_travel/bookmark`: the current bookmark, or the one current at
/// `timestamp`.
pub(super) fn bookmark(
    state: &State,
    account: &str,
    id: &str,
    request: &Request,
) -> ResponseTemplate {
    let Some(db) = find(state, account, id) else {
        return not_found();
    };
    let query = query_of(request);
    let Some(timestamp) = query.get("timestamp") else {
        return envelope(200, &json!({ "bookmark": bookmark_of(db) }));
    };
    match at_time(state, db, timestamp) {
        Ok(bookmark) => envelope(200, &json!({ "bookmark": bookmark })),
        Err(refusal) => refusal.answer(),
    }
}

/// Answers `POST …/time_travel/restore`.
pub(super) fn restore(
    state: &mut State,
    account: &str,
    id: &str,
    request: &Request,
) -> ResponseTemplate {
    let now = state.now();
    let Some(db) = find(state, account, id) else {
        return not_found();
    };
    let Some(backend) = db.backend.clone() else {
        return failure(
            400,
            7500,
            &format!(
                "the simulated database {} serves a fixed dump only; add it with add_backed_database to restore it",
                db.uuid
            ),
        );
    };
    let recent: Vec<i64> = db
        .restores
        .iter()
        .copied()
        .filter(|at| *at > now - RATE_PERIOD_SECS)
        .collect();
    if recent.len() >= RATE_LIMIT {
        let wait = recent[0] + RATE_PERIOD_SECS - now;
        return failure(
            429,
            7429,
            "Too many Time Travel restores: a database allows 10 restores per 10 minutes. Please try again later.",
        )
        .insert_header("retry-after", wait.max(1).to_string().as_str());
    }
    let query = query_of(request);
    let target = match (query.get("bookmark"), query.get("timestamp")) {
        (Some(bookmark), _) => match check_bookmark(db, bookmark, now) {
            Ok(()) => bookmark.clone(),
            Err(refusal) => return refusal.answer(),
        },
        (None, Some(timestamp)) => match at_time(state, db, timestamp) {
            Ok(bookmark) => bookmark,
            Err(refusal) => return refusal.answer(),
        },
        (None, None) => {
            return failure(
                400,
                7400,
                "The request is malformed: pass a `bookmark` or a `timestamp` query parameter",
            );
        }
    };
    let previous = backend.bookmark();
    let restored = match backend.restore_bookmark(&target) {
        Ok(restored) => restored,
        Err(why) => {
            return failure(
                400,
                7500,
                &format!("Could not restore to bookmark {target}: {why}"),
            );
        }
    };
    let uuid = db.uuid.clone();
    if let Some(db) = state.databases.iter_mut().find(|d| d.uuid == uuid) {
        db.restores.retain(|at| *at > now - RATE_PERIOD_SECS);
        db.restores.push(now);
    }
    envelope(
        200,
        &json!({"bookmark": restored, "previous_bookmark": previous,
                "message": format!("Database restored to bookmark {target}")}),
    )
}

/// Refuses a bookmark that is not of D1's form, or whose state stopped being current
/// before the window.
fn check_bookmark(db: &Database, bookmark: &str, now: i64) -> Result<(), Refusal> {
    if !is_bookmark(bookmark) {
        return Err(Refusal(
            400,
            7400,
            format!(
                "Invalid bookmark `{bookmark}`: a bookmark looks like 00000001-00000000-00004f6d-<32 hex digits>"
            ),
        ));
    }
    let position = db.seen.iter().position(|(seen, _)| seen == bookmark);
    // The state a bookmark names was current until the next one appeared.
    let current_until = position.map(|i| db.seen.get(i + 1).map_or(now, |(_, at)| *at));
    if current_until.is_some_and(|until| until < now - WINDOW_SECS) {
        return Err(Refusal(
            400,
            7500,
            format!(
                "Bookmark {bookmark} is older than the Time Travel window of 30 days and can no longer be restored"
            ),
        ));
    }
    Ok(())
}

/// The bookmark current at `timestamp` (simulated time), or D1's refusal of the time.
fn at_time(state: &State, db: &Database, timestamp: &str) -> Result<String, Refusal> {
    let now = state.now();
    let Some(at) = parse_time(timestamp) else {
        return Err(Refusal(
            400,
            7400,
            format!(
                "Invalid timestamp `{timestamp}`: use an ISO 8601 date and time such as 2026-01-01T00:00:00Z or Unix seconds"
            ),
        ));
    };
    if at > now {
        return Err(Refusal(
            400,
            7500,
            format!("Timestamp {timestamp} is in the future"),
        ));
    }
    if at < now - WINDOW_SECS {
        return Err(Refusal(
            400,
            7500,
            format!("Timestamp {timestamp} is older than the Time Travel window of 30 days"),
        ));
    }
    let offset = i64::try_from(state.clock_offset.as_secs()).unwrap_or(i64::MAX);
    let from_backend = db
        .backend
        .as_ref()
        .and_then(|backend| backend.bookmark_at(at.saturating_sub(offset)));
    let seen = || {
        db.seen
            .iter()
            .rev()
            .find(|(_, since)| *since <= at)
            .map(|(bookmark, _)| bookmark.clone())
    };
    Ok(from_backend
        .or_else(seen)
        .unwrap_or_else(|| bookmark_of(db)))
}

/// Unix seconds from ISO 8601 (with or without a zone; none is UTC) or from digits.
fn parse_time(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
    .map(|at| at.and_utc().timestamp())
}

/// D1's form: `00000001-00000000-00004f6d-<32 hex digits>`.
fn is_bookmark(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 4
        && parts
            .iter()
            .zip([8, 8, 8, 32])
            .all(|(part, len)| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A refusal D1 answers with: status, API code, message.
struct Refusal(u16, u32, String);

impl Refusal {
    fn answer(&self) -> ResponseTemplate {
        failure(self.0, self.1, &self.2)
    }
}

fn query_of(request: &Request) -> HashMap<String, String> {
    request.url.query_pairs().into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_bookmarks() {
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("1970-01-01T00:00:05"), Some(5));
        assert_eq!(parse_time("1767225599"), Some(1_767_225_599));
        assert_eq!(parse_time("yesterday"), None);
        assert!(is_bookmark(
            "00000001-00000000-00004f6d-0123456789abcdef0123456789abcdef"
        ));
        assert!(!is_bookmark("00000001-00000000-00004f6d"));
        assert!(!is_bookmark(
            "0000000z-00000000-00004f6d-0123456789abcdef0123456789abcdef"
        ));
    }
}
