//! What the engine reports: the run report (what happened to each database), the prune
//! report and the heartbeat outcomes it holds. Their JSON forms are public contracts
//! (`d1-backup run --json`, `prune --json`): fields are only ever added; arrays are never
//! null.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::retention::Action;

/// The outcome of one run.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RunReport {
    /// The date folder the run wrote to (`YYYY-MM-DD`).
    pub date: NaiveDate,
    /// One entry per selected database, in configuration order.
    pub databases: Vec<DatabaseReport>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run finished.
    pub finished_at: DateTime<Utc>,
    /// Whether the caller cancelled the run before every database finished.
    pub interrupted: bool,
    /// Retention applied after the run to the databases it backed up (null when
    /// `retention.prune_after_run` is false or the run was interrupted).
    pub prune: Option<PruneReport>,
    /// What happened to each configured heartbeat target (empty when none is configured).
    pub heartbeat: Vec<HeartbeatOutcome>,
    /// Requests this run sent to the D1 API (every attempt, retries included), across its
    /// tokens. Read from the engine's clients before and after the run, so runs of one
    /// engine at the same time count each other's requests too.
    pub api_requests: u64,
    /// Of those, the requests the D1 API answered 429 Too Many Requests.
    pub rate_limited: u64,
    /// What happened to each `[[notify]]` webhook that this run concerned (empty when none
    /// is configured or none wanted this outcome). A notification that failed does not
    /// change anything else in the report.
    pub notifications: Vec<NotifyOutcome>,
}

impl RunReport {
    /// Number of databases with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.databases.iter().filter(|d| d.status == status).count()
    }

    /// True when no database failed (a `leased` database did not fail; see
    /// [`complete`](Self::complete)).
    pub fn succeeded(&self) -> bool {
        self.count(Status::Failed) == 0
    }

    /// True when every selected database has a complete backup for the date (`ok` or
    /// `skipped`) and the run was not interrupted: the only outcome a scheduler should count
    /// as success.
    pub fn complete(&self) -> bool {
        !self.interrupted
            && self
                .databases
                .iter()
                .all(|d| matches!(d.status, Status::Ok | Status::Skipped))
    }
}

/// A database's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Backed up in this run.
    Ok,
    /// Not backed up in this run, on purpose (for example, already backed up).
    Skipped,
    /// The backup failed; `error` says why. No object was written at `key`.
    Failed,
    /// Not backed up: another run held the database's lease for the whole wait (`[run]
    /// wait_for_lease_minutes`) and no complete backup appeared; `reason` says who.
    Leased,
}

impl Status {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Leased => "leased",
        }
    }
}

/// One database's line in the report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DatabaseReport {
    /// The account's configured name.
    pub account: String,
    /// The database name.
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// The object key the dump is (or would have been) written to.
    pub key: String,
    /// Bytes of the dump as stored; null unless `ok`.
    pub bytes: Option<u64>,
    /// Lower-case hex SHA-256 of the stored object; null unless `ok`.
    pub sha256: Option<String>,
    /// Why the backup failed (the message with its causes); null unless `failed`.
    pub error: Option<String>,
    /// What kind of failure it was, as a stable snake_case word ([`ErrorKind::as_str`]); null
    /// unless `failed`.
    pub error_kind: Option<ErrorKind>,
    /// Whether running again without any change may succeed ([`Error::is_retryable`]); null
    /// unless `failed`.
    pub retryable: Option<bool>,
    /// The typed error behind `error`, for callers that match on it (not in the JSON).
    #[serde(skip)]
    pub cause: Option<Error>,
    /// Why the database was skipped, or who held its lease; null unless `skipped` or
    /// `leased`.
    pub reason: Option<String>,
    /// What went wrong on the way to success (a refused signed URL, a cancelled export that
    /// a fresh one replaced). Never null.
    pub notes: Vec<String>,
    /// The Cloudflare account id (null for an account of local databases only).
    pub account_id: Option<String>,
    /// The database uuid, when it was resolved.
    pub database_id: Option<String>,
    /// The D1 bookmark the dump was taken at.
    pub bookmark: Option<String>,
    /// Exports started for this database in this run (a refused signed URL starts a fresh one).
    pub exports: u32,
    /// When work on this database started; null if it never started.
    pub started_at: Option<DateTime<Utc>>,
    /// When work on this database ended; null if it never started.
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether the stored backup verified (`run --verify`); absent when not verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// What happened to each `[[replicas]]` entry's copy, in config order (empty when none
    /// is configured, or when the backup never reached the replicas).
    pub replicas: Vec<ReplicaReport>,
}

/// One replica's copy of a database's backup.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ReplicaReport {
    /// The replica's name, else `replicas[i]` (never a bucket, endpoint or secret).
    pub target: String,
    /// `ok` when the dump and its manifest are on the replica, else `failed`.
    pub status: Status,
    /// The dump's key on the replica (the same layout as the main sink's).
    pub key: String,
    /// Why the copy failed (the message with its causes); null unless `failed`.
    pub error: Option<String>,
}

impl DatabaseReport {
    /// Marks the entry `failed` with `error`.
    pub(crate) fn fail(&mut self, error: Error) {
        self.status = Status::Failed;
        self.error = Some(error.chain());
        self.error_kind = Some(error.kind());
        self.retryable = Some(error.is_retryable());
        self.cause = Some(error);
    }

    /// A `failed` entry with nothing done yet; the run fills it in.
    pub(crate) fn new(account: &crate::config::AccountConfig, name: &str, key: String) -> Self {
        Self {
            account: account.name.clone(),
            name: name.to_owned(),
            status: Status::Failed,
            key,
            bytes: None,
            sha256: None,
            error: None,
            error_kind: None,
            retryable: None,
            cause: None,
            reason: None,
            notes: Vec::new(),
            account_id: account.account_id.clone(),
            database_id: None,
            bookmark: None,
            exports: 0,
            started_at: None,
            finished_at: None,
            verified: None,
            replicas: Vec::new(),
        }
    }
}

/// Every decision of a prune. Its JSON is the `prune --json` contract.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// The day retention counted from.
    pub today: NaiveDate,
    /// True when nothing was deleted on purpose.
    pub dry_run: bool,
    /// One decision per database and date (and per stale object), in key order.
    pub decisions: Vec<PruneDecision>,
    /// Objects deleted.
    pub deleted: usize,
    /// Multipart uploads of the layout left unfinished for more than a day (by runs that
    /// died before recording them, or whose lease was never taken over), aborted or, in a
    /// dry run, to be aborted. Empty where the store cannot list its open uploads.
    pub stale_uploads: Vec<StaleUpload>,
    /// Problems that stopped part of the prune (listing or deleting failed); nothing is
    /// deleted for a database whose backups could not all be read. A replica's problems
    /// are here too, each prefixed with the replica's name.
    pub errors: Vec<String>,
    /// Retention applied to each `[[replicas]]` entry with its own `keep_days`, in config
    /// order (empty when none is configured).
    pub replicas: Vec<ReplicaPrune>,
}

/// Retention applied to one replica.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ReplicaPrune {
    /// The replica's name, else `replicas[i]`.
    pub target: String,
    /// Its decisions, deletions and errors (`replicas` is always empty here).
    #[serde(flatten)]
    pub prune: PruneReport,
}

impl PruneReport {
    /// Adds a replica's prune; its errors also land in `errors`, named.
    pub(crate) fn add_replica(&mut self, target: String, prune: PruneReport) {
        self.errors.extend(
            prune
                .errors
                .iter()
                .map(|e| format!("replica {target}: {e}")),
        );
        self.replicas.push(ReplicaPrune { target, prune });
    }
}

/// A multipart upload under the layout that has stayed unfinished for more than a day.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StaleUpload {
    /// The account's configured name.
    pub account: String,
    /// The key the upload would have completed at.
    pub key: String,
    /// When the store says it started.
    pub started_at: DateTime<Utc>,
    /// True when it was aborted (false in a dry run, or when the abort failed: see `errors`).
    pub aborted: bool,
}

/// One keep-or-delete decision.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PruneDecision {
    /// The account's configured name.
    pub account: String,
    /// The database name.
    pub database: String,
    /// The backup's date.
    pub date: NaiveDate,
    /// Keep or delete.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// The objects concerned.
    pub keys: Vec<String>,
}

/// What happened to one heartbeat target.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HeartbeatOutcome {
    /// `kv`, `object` or `url`.
    pub target: &'static str,
    /// Where, without secrets (the KV key, the object key, the URL without its query).
    pub destination: String,
    /// Why it failed; null when delivered.
    pub error: Option<String>,
}

/// What happened to one `[[notify]]` webhook. The URL is a secret and is never in it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct NotifyOutcome {
    /// The entry's `name`, or `notify[i]` (its position in the file).
    pub name: String,
    /// Attempts made (1 + the retries used).
    pub attempts: u32,
    /// Why the last attempt failed; null when delivered.
    pub error: Option<String>,
}
