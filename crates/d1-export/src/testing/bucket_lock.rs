//! R2 bucket lock rules (`GET /accounts/{a}/r2/buckets/{b}/lock`), as the simulator serves
//! them: each bucket has its own token (an R2 admin token, not the D1 one) and its rules
//! as raw JSON, so tests can serve malformed ones too.

use serde_json::Value;
use wiremock::{Request, ResponseTemplate};

use super::{State, envelope, failure};

/// One simulated bucket's lock configuration.
#[derive(Debug, Clone)]
pub(super) struct BucketLock {
    /// The token allowed to read the rules; any other is refused with 403.
    pub(super) token: String,
    /// `result.rules`, as served.
    pub(super) rules: Value,
    /// The `cf-r2-jurisdiction` header of the last read, if it had one.
    pub(super) jurisdiction: Option<String>,
    /// How many reads it answered.
    pub(super) reads: u32,
}

/// Answers a read of the lock rules of `bucket` of `account`.
pub(super) fn read(
    state: &mut State,
    account: &str,
    bucket: &str,
    request: &Request,
) -> ResponseTemplate {
    let key = (account.to_owned(), bucket.to_owned());
    let Some(lock) = state.bucket_locks.get_mut(&key) else {
        return failure(404, 10006, "The specified bucket does not exist.");
    };
    let bearer = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if bearer != Some(format!("Bearer {}", lock.token).as_str()) {
        return failure(403, 10000, "Authentication error");
    }
    lock.reads += 1;
    lock.jurisdiction = request
        .headers
        .get("cf-r2-jurisdiction")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    envelope(200, &serde_json::json!({ "rules": lock.rules }))
}
