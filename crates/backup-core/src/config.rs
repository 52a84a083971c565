//! The configuration file: its serde model (a public contract) and its loading.
//!
//! Field names here are the TOML keys operators write, so they are public API: fields are only
//! ever added, never renamed or removed. Validation lives in [`crate::validate`]; this module
//! only turns text into typed values.
//!
//! The same model can be built in code, without any file: [`Config::builder`] and the
//! constructors and setters of each part (in `config/builder.rs` and `config/setters.rs`) are validated by the same
//! rules when [`ConfigBuilder::build`] runs.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::compression::Compression;
use crate::error::{ConfigError, Error};

mod builder;
mod setters;
mod validate;

pub use builder::ConfigBuilder;

/// The whole configuration: read from a file ([`Config::load`], [`Config::from_toml`]) or
/// built in code ([`Config::builder`]), validated by the same rules either way.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Cloudflare API settings shared by every account.
    #[serde(default)]
    pub cloudflare: CloudflareConfig,
    /// Where backups are written.
    pub sink: SinkConfig,
    /// How long backups are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// How runs are carried out (concurrency, polling).
    #[serde(default)]
    pub run: RunConfig,
    /// Where to record that a run (or prune) happened.
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    /// When `d1-backup daemon` runs backups.
    #[serde(default)]
    pub schedules: Vec<ScheduleConfig>,
    /// How `d1-backup daemon` serves what monitoring reads (`[daemon]`).
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Who is told when a run fails (or succeeds): `[[notify]]` webhooks.
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
    /// The Cloudflare accounts whose databases are backed up, each with its own token.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Client-side encryption of every dump with age (`[encryption]`); none when absent.
    #[serde(default)]
    pub encryption: Option<EncryptionConfig>,
    /// `[[replicas]]`: further sinks every backup is also written to (streamed once from the
    /// source), each with its own manifests and retention.
    #[serde(default)]
    pub replicas: Vec<ReplicaConfig>,
}

/// `[[replicas]]`: another place every backup is written to, with the keys of `[sink]` plus
/// an optional `name` and `keep_days`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplicaConfig {
    /// What reports and `--replica NAME` call this replica (default: `replicas[i]`).
    pub name: Option<String>,
    /// Days of backups this replica keeps (default: `[retention] keep_days`).
    pub keep_days: Option<u32>,
    /// Where this replica's dumps go: the keys of `[sink]`.
    pub sink: SinkConfig,
}

// Not `#[serde(flatten)]`: a flattened struct silently ignores unknown keys, and a mistyped
// key must be an error here as it is in `[sink]`.
impl<'de> Deserialize<'de> for ReplicaConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(deserializer)?;
        let name = table
            .remove("name")
            .map(toml::Value::try_into::<String>)
            .transpose()
            .map_err(|e| D::Error::custom(format_args!("name: {e}")))?;
        let keep_days = table
            .remove("keep_days")
            .map(toml::Value::try_into::<u32>)
            .transpose()
            .map_err(|e| D::Error::custom(format_args!("keep_days: {e}")))?;
        let sink = SinkConfig::deserialize(toml::Value::Table(table)).map_err(D::Error::custom)?;
        Ok(Self {
            name,
            keep_days,
            sink,
        })
    }
}

impl ReplicaConfig {
    /// A replica writing to `sink`, named `replicas[i]` and keeping `[retention] keep_days`.
    pub fn new(sink: SinkConfig) -> Self {
        Self {
            name: None,
            keep_days: None,
            sink,
        }
    }

    /// Names the replica (for reports and `--replica NAME`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Days of backups this replica keeps.
    #[must_use]
    pub fn keep_days(mut self, days: u32) -> Self {
        self.keep_days = Some(days);
        self
    }

    /// What reports call the replica at `index`: its name, else `replicas[index]`.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("replicas[{index}]"))
    }
}

/// `[encryption]`: every dump is encrypted with [age](https://age-encryption.org/v1) to
/// these X25519 public keys as it streams (after compression), and stored as
/// `<db>.sql.age` (`<db>.sql.zst.age`, …). Backing up needs only the public keys; the
/// identity (secret key) is needed only to read a backup back (verify, restore).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EncryptionConfig {
    /// `age1…` public keys (as `age-keygen` prints them).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A file of `age1…` public keys, one per line (`#` comments allowed), relative to the
    /// config file; its keys are added to `recipients`.
    pub recipients_file: Option<PathBuf>,
    /// The age identity file (`AGE-SECRET-KEY-1…`, as `age-keygen -o key.txt` writes it),
    /// relative to the config file: used only to verify and restore. Not needed to back up;
    /// better kept off the machines that only back up.
    pub identity_file: Option<PathBuf>,
}

impl EncryptionConfig {
    /// Encrypts to `recipients` (`age1…` public keys).
    pub fn new<S: Into<String>>(recipients: impl IntoIterator<Item = S>) -> Self {
        Self {
            recipients: recipients.into_iter().map(Into::into).collect(),
            recipients_file: None,
            identity_file: None,
        }
    }

    /// Adds the keys of a recipients file.
    #[must_use]
    pub fn recipients_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.recipients_file = Some(path.into());
        self
    }

    /// Sets the identity file verify and restore decrypt with.
    #[must_use]
    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity_file = Some(path.into());
        self
    }

    /// Every recipient: `recipients`, then the recipients file's keys (read now). Errors are
    /// of kind [`Config`](crate::ErrorKind::Config) and name the bad entry.
    pub fn resolve(&self) -> Result<crate::encryption::Recipients, Error> {
        let mut keys = self.recipients.clone();
        if let Some(path) = &self.recipients_file {
            keys.extend(crate::encryption::read_recipients_file(path)?);
        }
        crate::encryption::Recipients::parse(&keys)
    }
}

/// `[heartbeat]`: where each run and prune records that it happened. Every target is
/// optional; a failed heartbeat is reported but never fails the backups.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HeartbeatConfig {
    /// A Workers KV key, written with the named account's token.
    pub kv: Option<KvHeartbeat>,
    /// An object key in the sink, e.g. `_heartbeat/ucca-backup.json`.
    pub object: Option<String>,
    /// A URL to ping (healthchecks-style) after each run.
    pub url: Option<String>,
    /// The URL pinged instead when the run failed (default: `url` + `/fail`).
    pub fail_url: Option<String>,
}

/// `[daemon]`: what the long-running `d1-backup daemon` serves besides its schedules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DaemonConfig {
    /// The address (`host:port`) to serve Prometheus metrics on (`GET /metrics`) and a
    /// liveness check (`GET /healthz`), e.g. `"127.0.0.1:9187"`. Off when not set.
    pub metrics_listen: Option<String>,
}

/// One `[[notify]]` entry: a webhook told about runs, e.g.
/// `{ url = "https://hooks.slack.com/services/…", format = "slack" }`. A notification that
/// cannot be sent is reported, never a reason to fail the run.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NotifyConfig {
    /// A name for logs and reports (default: `notify[i]`, its position). The URL itself is
    /// treated as a secret and never shown.
    pub name: Option<String>,
    /// Where the notification is POSTed (http or https).
    pub url: String,
    /// Which runs are notified: `["failure"]` (the default) or `["failure", "success"]`.
    #[serde(default = "default_notify_on")]
    pub on: Vec<NotifyOn>,
    /// How long one attempt may take, in seconds (default 10).
    #[serde(default = "default_notify_timeout")]
    pub timeout_seconds: u64,
    /// Attempts made again after a failed one (default 2).
    #[serde(default = "default_notify_retries")]
    pub retries: u32,
    /// `json` (the run report, the default) or `slack` (`{"text": …}`, a short summary).
    #[serde(default)]
    pub format: NotifyFormat,
}

impl fmt::Debug for NotifyConfig {
    // The URL is a secret (Slack and most webhook URLs carry their credential in the path).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("name", &self.name)
            .field("url", &"<redacted>")
            .field("on", &self.on)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("retries", &self.retries)
            .field("format", &self.format)
            .finish()
    }
}

/// Which runs a `[[notify]]` entry is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NotifyOn {
    /// A run that did not end with every selected database backed up
    /// ([`RunReport::complete`](crate::RunReport::complete) is false).
    Failure,
    /// A run that backed up every selected database.
    Success,
}

/// The body a `[[notify]]` entry sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NotifyFormat {
    /// The run report as `run --json` prints it (`application/json`).
    #[default]
    Json,
    /// `{"text": "…"}`, a summary Slack's (and Mattermost's, Discord's `/slack`) incoming
    /// webhooks display.
    Slack,
}

fn default_notify_on() -> Vec<NotifyOn> {
    vec![NotifyOn::Failure]
}

fn default_notify_timeout() -> u64 {
    10
}

fn default_notify_retries() -> u32 {
    2
}

/// One `[[schedules]]` entry: a cron expression (five fields, UTC) and the databases it
/// covers, e.g. `{ name = "small", cron = "0 3 * * *", databases = ["ucca/ops-db"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ScheduleConfig {
    /// A name for logs.
    pub name: String,
    /// Minute, hour, day of month, month, day of week (UTC).
    pub cron: String,
    /// Databases (`NAME` or `ACCOUNT/NAME`) this schedule backs up; empty means all.
    #[serde(default)]
    pub databases: Vec<String>,
}

/// `[heartbeat] kv = { account, namespace_id, key }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KvHeartbeat {
    /// The `[[accounts]]` entry whose account and token write the value.
    pub account: String,
    /// The KV namespace id.
    pub namespace_id: String,
    /// The key.
    pub key: String,
}

/// `[cloudflare]`: API settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CloudflareConfig {
    /// Override of `https://api.cloudflare.com/client/v4` (proxies, tests).
    pub api_base_url: Option<String>,
    /// The request budget of each API token, per five minutes (default 900). Cloudflare
    /// allows 1,200 and then refuses every call for up to five minutes; every call made with
    /// a token (by every database of every account using it) counts against it.
    pub requests_per_five_minutes: Option<u32>,
    /// How many days of Time Travel history D1 keeps for these accounts (default 30, the
    /// paid plans'; the free plan keeps 7). A restore to a backup's bookmark older than this
    /// is refused before D1 is asked.
    pub time_travel_days: Option<u32>,
}

/// The kind of storage behind `[sink]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SinkKind {
    /// Cloudflare R2 through its S3 API.
    R2,
    /// Any S3-compatible endpoint.
    S3,
    /// A local directory.
    Fs,
}

impl fmt::Display for SinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SinkKind::R2 => "r2",
            SinkKind::S3 => "s3",
            SinkKind::Fs => "fs",
        })
    }
}

/// `[sink]`: where dumps go. Which fields apply depends on `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SinkConfig {
    /// `r2`, `s3` or `fs`.
    pub kind: SinkKind,
    /// Bucket name (`r2`, `s3`).
    pub bucket: Option<String>,
    /// Cloudflare account that owns the R2 bucket (`r2`).
    pub account_id: Option<String>,
    /// Endpoint URL: required for `s3`, an optional override for `r2`.
    pub endpoint: Option<String>,
    /// Region; R2 uses `auto`.
    pub region: Option<String>,
    /// R2 jurisdiction (`eu`, `fedramp`), which selects the jurisdiction's endpoint.
    pub jurisdiction: Option<String>,
    /// Name of the environment variable holding the access key id (`r2`, `s3`).
    pub access_key_id_env: Option<String>,
    /// Name of the environment variable holding the secret access key (`r2`, `s3`).
    pub secret_access_key_env: Option<String>,
    /// Directory for `fs`. Relative paths are relative to the config file (in code: to the
    /// process's working directory).
    pub path: Option<PathBuf>,
    /// Name of the environment variable holding a Cloudflare API token that can read the
    /// bucket's R2 settings (`r2`): when set, `config check` reports the bucket's lock rules
    /// and retention keeps the objects they lock instead of failing on them.
    #[serde(default)]
    pub lock_token_env: Option<String>,
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionConfig {
    /// Days of backups to keep (the seed deployment keeps 30): a backup dated D expires when
    /// D ≤ today − keep_days, so 30 keeps today and the 29 days before.
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
    /// Also keep the newest backup of each of the newest N days (beyond `keep_days`).
    pub keep_daily: Option<u32>,
    /// Also keep the newest backup of each of the newest N ISO weeks.
    pub keep_weekly: Option<u32>,
    /// Also keep the newest backup of each of the newest N months.
    pub keep_monthly: Option<u32>,
    /// Never delete the newest N complete backups of a database (default 3, at least 1).
    #[serde(default = "default_min_keep")]
    pub min_keep: u32,
    /// Prune after each run, for the databases that run backed up (default true).
    #[serde(default = "default_true")]
    pub prune_after_run: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            keep_days: default_keep_days(),
            keep_daily: None,
            keep_weekly: None,
            keep_monthly: None,
            min_keep: default_min_keep(),
            prune_after_run: true,
        }
    }
}

fn default_min_keep() -> u32 {
    3
}

fn default_true() -> bool {
    true
}

fn default_keep_days() -> u32 {
    30
}

/// `[run]`: how a run is carried out. Every field is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RunConfig {
    /// Databases backed up at once, across all accounts.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Databases backed up at once within one account (an export blocks its database, and
    /// every export spends the token's shared request budget).
    #[serde(default = "default_per_account")]
    pub per_account_concurrency: usize,
    /// Milliseconds between export polls (D1 cancels exports that are not polled continually).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Compression of dumps: `none` (default), `zstd` or `gzip`.
    #[serde(default)]
    pub compression: Compression,
    /// Give up on an export still running after this many minutes (default: no limit; D1
    /// has no export time limit and a 10 GB database can take hours).
    pub max_wait_minutes: Option<u64>,
    /// Multipart part size in MiB for uploads (default 16; at least 5). Larger parts allow
    /// larger objects under R2's 10,000-part limit.
    pub part_size_mib: Option<u64>,
    /// Lifetime of a database's lease in seconds (default 120). A run renews it every third
    /// of that; a crashed run's lease blocks other runs at most this long (a run on the same
    /// machine takes over a dead holder's lease at once).
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// When another run holds a database's lease, wait for it (to finish the backup, or for
    /// its lease to lapse) up to this many minutes before reporting the database `leased`
    /// (default 15; 0 reports it at once).
    #[serde(default = "default_wait_for_lease_minutes")]
    pub wait_for_lease_minutes: u64,
    /// When D1 refuses an export because another one (or an import) is running on the
    /// database, wait for it up to this many minutes, retrying, instead of failing at once
    /// (default 15; 0 fails at once).
    #[serde(default = "default_wait_if_busy_minutes")]
    pub wait_if_busy_minutes: u64,
    /// Verify every backup a run makes, as `run --verify` does (so scheduled and daemon runs
    /// prove their backups too): `none` (default), `restore` (size, SHA-256, a restore with
    /// integrity and foreign-key checks) or `against-live` (also compared table by table with
    /// the live database).
    #[serde(default)]
    pub verify: VerifyMode,
    /// How each D1 database is read (`d1`, the default: D1's export endpoint; `online`:
    /// through the query API, table by table in pages, without blocking the database;
    /// `auto`: online above `online_above_mib`; below it D1's export, read again online when
    /// the dump shows a mark of D1's losses as it streams). A database entry may override it;
    /// a local SQLite database ignores it.
    #[serde(default)]
    pub export: ExportMode,
    /// Fail an `online` backup whose database changed while it was read (its Time Travel
    /// bookmark moved), instead of storing it with `consistency = "online"` (default false).
    #[serde(default)]
    pub require_snapshot: bool,
    /// For `export = "auto"`: databases larger than this many MiB (D1's `file_size`) are read
    /// online, smaller ones through D1's export (default 256).
    #[serde(default = "default_online_above_mib")]
    pub online_above_mib: u64,
    /// After each run, write Prometheus metrics (text format) to this file, atomically, for
    /// node_exporter's textfile collector. Relative paths are relative to the config file (in
    /// code: to the process's working directory).
    pub metrics_file: Option<PathBuf>,
}

/// How a D1 database is read: `[run] export`, a database's `export`, or a run's override.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExportMode {
    /// D1's export endpoint (the default): byte-identical to D1's dump, with its losses, and
    /// the database serves no queries while it runs.
    #[default]
    D1,
    /// The query API, table by table in keyset pages with exact values: no export is
    /// started, the database keeps serving, and the dump is a snapshot only when the
    /// database did not change while it was read.
    Online,
    /// D1's export for databases up to `[run] online_above_mib`, online above.
    Auto,
}

impl ExportMode {
    /// The config spelling: `d1`, `online` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportMode::D1 => "d1",
            ExportMode::Online => "online",
            ExportMode::Auto => "auto",
        }
    }
}

impl fmt::Display for ExportMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_online_above_mib() -> u64 {
    256
}

/// `[run] verify`: what each run proves about the backups it makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum VerifyMode {
    /// No verification (the default).
    #[default]
    None,
    /// Restore each new backup into a scratch SQLite file and check it.
    Restore,
    /// Also compare it with the live database.
    AgainstLive,
}

fn default_lease_seconds() -> u64 {
    120
}

/// Long enough for a dead holder's lease (2 minutes by default) to lapse with margin, and
/// for a typical concurrent backup to finish; short enough that a run stuck behind a live
/// holder still ends, and reports it, well within an hourly schedule.
fn default_wait_for_lease_minutes() -> u64 {
    15
}

fn default_wait_if_busy_minutes() -> u64 {
    15
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            per_account_concurrency: default_per_account(),
            poll_interval_ms: default_poll_interval_ms(),
            compression: Compression::None,
            max_wait_minutes: None,
            part_size_mib: None,
            lease_seconds: default_lease_seconds(),
            wait_for_lease_minutes: default_wait_for_lease_minutes(),
            wait_if_busy_minutes: default_wait_if_busy_minutes(),
            verify: VerifyMode::None,
            export: ExportMode::D1,
            require_snapshot: false,
            online_above_mib: default_online_above_mib(),
            metrics_file: None,
        }
    }
}

fn default_concurrency() -> usize {
    4
}

fn default_per_account() -> usize {
    2
}

fn default_poll_interval_ms() -> u64 {
    1000
}

/// One `[[accounts]]` entry: a Cloudflare account, its token and its databases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AccountConfig {
    /// A short name used in reports and in `--only account/db`.
    pub name: String,
    /// The 32-hex-digit Cloudflare account id (not needed when every database is local).
    pub account_id: Option<String>,
    /// Name of the environment variable holding this account's API token (not needed when
    /// every database is local).
    pub token_env: Option<String>,
    /// A wrangler state directory (`.wrangler/state/v3/d1`): every local D1 database in it is
    /// backed up, named by its file name. Relative paths are relative to the config file (in
    /// code: to the process's working directory).
    pub wrangler_state: Option<PathBuf>,
    /// `wrangler_state` as the file wrote it, before it was resolved (see
    /// [`DatabaseEntry::sqlite_as_written`]).
    #[serde(skip)]
    pub(crate) wrangler_state_as_written: Option<PathBuf>,
    /// Key prefix in the sink, e.g. `d1` gives `d1/<date>/<db>.sql`.
    pub prefix: String,
    /// The databases to back up.
    #[serde(default)]
    pub databases: Vec<DatabaseEntry>,
}

/// `a/b/../c` → `a/c`, without touching the filesystem (the path may not exist yet).
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl Config {
    /// The parsed `[[schedules]]` (validation already parsed each one).
    pub fn schedules(&self) -> Vec<crate::schedule::Schedule> {
        self.schedules
            .iter()
            .filter_map(|s| crate::schedule::Schedule::new(&s.name, &s.cron, &s.databases).ok())
            .collect()
    }
}

impl AccountConfig {
    /// The wrangler state directory as the configuration wrote it (see
    /// [`DatabaseEntry::sqlite_as_written`]).
    pub(crate) fn wrangler_state_as_written(&self) -> Option<&Path> {
        self.wrangler_state_as_written
            .as_deref()
            .or(self.wrangler_state.as_deref())
    }

    /// Whether some database of this account is exported through the D1 API (and so needs
    /// `account_id` and `token_env`).
    pub fn needs_api(&self) -> bool {
        self.databases.iter().any(|db| db.sqlite.is_none())
    }

    /// The account id, or `""` for an account holding only local databases.
    pub fn account_id_or_empty(&self) -> &str {
        self.account_id.as_deref().unwrap_or_default()
    }
}

/// A database to back up: a bare name (`"ops-db"`) or a table
/// (`{ name = "x", id = "<uuid>", compression = "zstd", ... }`) whose optional fields override
/// `[run]` for this database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabaseEntry {
    /// The database name, as D1 lists it; also the dump's file name.
    pub name: String,
    /// The database uuid; when given, the name is not looked up.
    pub id: Option<String>,
    /// A local SQLite file (e.g. a wrangler local D1 database) to dump instead of exporting
    /// through the API. Relative paths are relative to the config file (in code: to the
    /// process's working directory).
    pub sqlite: Option<PathBuf>,
    /// Overrides `run.poll_interval_ms`.
    pub poll_interval_ms: Option<u64>,
    /// Overrides `run.max_wait_minutes`.
    pub max_wait_minutes: Option<u64>,
    /// Overrides `run.part_size_mib`.
    pub part_size_mib: Option<u64>,
    /// Overrides `run.compression`.
    pub compression: Option<Compression>,
    /// `sqlite` as the file wrote it, before it was resolved against the file's folder: what
    /// a manifest records (a resolved path says nothing on another machine and discloses the
    /// host's layout). `None` in code, where paths are taken as given.
    sqlite_as_written: Option<PathBuf>,
    /// Overrides `run.export` (ignored for a local SQLite database, which is read exactly).
    pub export: Option<ExportMode>,
}

impl DatabaseEntry {
    /// The local file as the configuration wrote it: relative to the config file when the
    /// file said so, as given when built in code. This is what manifests record.
    pub fn sqlite_as_written(&self) -> Option<&Path> {
        self.sqlite_as_written.as_deref().or(self.sqlite.as_deref())
    }

    /// An entry for the file at `path`, found in the account's wrangler state directory
    /// (recorded as the configuration wrote that directory, joined with the file's place in
    /// it).
    pub(crate) fn found_in_state(name: String, path: PathBuf, account: &AccountConfig) -> Self {
        let as_written = account
            .wrangler_state
            .as_deref()
            .and_then(|state| path.strip_prefix(state).ok())
            .zip(account.wrangler_state_as_written())
            .map(|(inside, written)| written.join(inside));
        Self {
            sqlite: Some(path),
            sqlite_as_written: as_written,
            ..Self::named(name)
        }
    }

    /// An entry by name alone.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// The table form of an entry; the derive gives exact "unknown field" messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    name: String,
    id: Option<String>,
    sqlite: Option<PathBuf>,
    poll_interval_ms: Option<u64>,
    max_wait_minutes: Option<u64>,
    part_size_mib: Option<u64>,
    compression: Option<Compression>,
    export: Option<ExportMode>,
}

impl From<Table> for DatabaseEntry {
    fn from(t: Table) -> Self {
        Self {
            name: t.name,
            id: t.id,
            sqlite: t.sqlite,
            poll_interval_ms: t.poll_interval_ms,
            max_wait_minutes: t.max_wait_minutes,
            part_size_mib: t.part_size_mib,
            compression: t.compression,
            sqlite_as_written: None,
            export: t.export,
        }
    }
}

impl<'de> Deserialize<'de> for DatabaseEntry {
    // Hand-written so that a wrong entry gets a precise message rather than serde's
    // "data did not match any variant of untagged enum".
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = DatabaseEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a database name ("ops-db") or a table ({ name = "ops-db", id = "<uuid>" })"#,
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DatabaseEntry, E> {
                Ok(DatabaseEntry::named(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DatabaseEntry, A::Error> {
                Table::deserialize(de::value::MapAccessDeserializer::new(map)).map(Into::into)
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    ///
    /// Errors are of kind [`Config`](crate::ErrorKind::Config) and name the file, the field
    /// and what is expected; [`Error::problems`] lists every invalid field, and the cause is
    /// the [`ConfigError`](crate::ConfigError) in detail.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates configuration text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, Error> {
        let parse_error = |field: String, source: toml::de::Error| ConfigError::Parse {
            path: origin.to_path_buf(),
            field,
            source: Box::new(source),
        };
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| parse_error(String::new(), e))?;
        // serde_path_to_error names the field (`accounts[0].databases[2].id`) that the TOML
        // error's line and column point at.
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            parse_error(field, e.into_inner())
        })?;
        validate::validate(&config, origin)?;
        let mut config = config;
        config.normalize_prefixes();
        let base = origin
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let base =
            &lexically_normal(&std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf()));
        for account in &mut config.accounts {
            // Local paths are relative to the file that names them, not to the caller's
            // working directory (cron and systemd start elsewhere).
            account
                .wrangler_state_as_written
                .clone_from(&account.wrangler_state);
            if let Some(dir) = &mut account.wrangler_state {
                *dir = lexically_normal(&base.join(&*dir));
            }
            for db in &mut account.databases {
                db.sqlite_as_written.clone_from(&db.sqlite);
                if let Some(file) = &mut db.sqlite {
                    *file = lexically_normal(&base.join(&*file));
                }
            }
        }
        if let (SinkKind::Fs, Some(path)) = (config.sink.kind, &mut config.sink.path) {
            *path = lexically_normal(&base.join(&*path));
        }
        for replica in &mut config.replicas {
            if let (SinkKind::Fs, Some(path)) = (replica.sink.kind, &mut replica.sink.path) {
                *path = lexically_normal(&base.join(&*path));
            }
        }
        if let Some(encryption) = &mut config.encryption {
            for path in [
                &mut encryption.recipients_file,
                &mut encryption.identity_file,
            ]
            .into_iter()
            .flatten()
            {
                *path = lexically_normal(&base.join(&*path));
            }
        }
        if let Some(path) = &mut config.run.metrics_file {
            *path = lexically_normal(&base.join(&*path));
        }
        validate::validate_files(&config, origin)?;
        Ok(config)
    }

    /// Normalizes every account's prefix (`backups/d1/` → `backups/d1`), after validation,
    /// for a file and a configuration built in code alike.
    fn normalize_prefixes(&mut self) {
        for account in &mut self.accounts {
            // Validation accepted the prefix, so normalizing cannot fail; keep it as written
            // if it somehow does.
            if let Ok(prefix) = crate::layout::normalize_prefix(&account.prefix) {
                account.prefix = prefix;
            }
        }
    }

    /// Fields that are set but not used by `sink.kind` (for example `path` with `kind = "s3"`),
    /// as `(field, why)`. They are not errors: one file may carry settings for several kinds.
    pub fn ignored_fields(&self) -> Vec<(String, String)> {
        let sink = &self.sink;
        let kind = sink.kind;
        let remote_only = [
            ("bucket", sink.bucket.is_some()),
            ("endpoint", sink.endpoint.is_some()),
            ("region", sink.region.is_some()),
            ("access_key_id_env", sink.access_key_id_env.is_some()),
            (
                "secret_access_key_env",
                sink.secret_access_key_env.is_some(),
            ),
        ];
        let r2_only = [
            ("account_id", sink.account_id.is_some()),
            ("jurisdiction", sink.jurisdiction.is_some()),
            ("lock_token_env", sink.lock_token_env.is_some()),
        ];
        let mut unused: Vec<(&str, bool)> = Vec::new();
        match kind {
            SinkKind::Fs => {
                unused.extend(remote_only);
                unused.extend(r2_only);
            }
            SinkKind::S3 => {
                unused.push(("path", sink.path.is_some()));
                unused.extend(r2_only);
            }
            SinkKind::R2 => unused.push(("path", sink.path.is_some())),
        }
        unused
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(field, _)| {
                (
                    format!("sink.{field}"),
                    format!("not used when sink.kind = \"{kind}\""),
                )
            })
            .collect()
    }

    /// The variable `[sink] lock_token_env` names, when the sink is R2 (the only kind with
    /// bucket lock rules). Optional: without its value, `config check` fails that check and
    /// prune deletes nothing, but backing up goes on.
    pub(crate) fn lock_token_env(&self) -> Option<&str> {
        self.sink
            .lock_token_env
            .as_deref()
            .filter(|_| self.sink.kind == SinkKind::R2)
    }

    /// Every environment variable the file names as a required secret, with the field that
    /// names it, in file order. The caller reads them (the library never reads the
    /// environment). `[sink] lock_token_env` is optional and not among them.
    pub fn secret_env_vars(&self) -> Vec<(String, &str)> {
        let mut vars = Vec::new();
        if matches!(self.sink.kind, SinkKind::R2 | SinkKind::S3) {
            if let Some(var) = &self.sink.access_key_id_env {
                vars.push(("sink.access_key_id_env".to_owned(), var.as_str()));
            }
            if let Some(var) = &self.sink.secret_access_key_env {
                vars.push(("sink.secret_access_key_env".to_owned(), var.as_str()));
            }
        }
        for (i, replica) in self.replicas.iter().enumerate() {
            if matches!(replica.sink.kind, SinkKind::R2 | SinkKind::S3) {
                for (field, var) in [
                    ("access_key_id_env", &replica.sink.access_key_id_env),
                    ("secret_access_key_env", &replica.sink.secret_access_key_env),
                ] {
                    if let Some(var) = var {
                        vars.push((format!("replicas[{i}].{field}"), var.as_str()));
                    }
                }
            }
        }
        for (i, account) in self.accounts.iter().enumerate() {
            if let Some(var) = account.token_env.as_deref().filter(|_| account.needs_api()) {
                vars.push((format!("accounts[{i}].token_env"), var));
            }
        }
        vars
    }
}
