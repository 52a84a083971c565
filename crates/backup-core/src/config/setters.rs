//! Chainable setters for the parts of a [`Config`](super::Config) that have defaults
//! (`[cloudflare]`, `[retention]`, `[run]`, `[heartbeat]`) and constructors for the others
//! (`[[schedules]]`, the KV heartbeat), for callers outside this crate. Setters cannot fail;
//! [`ConfigBuilder::build`](super::ConfigBuilder::build) validates the result.

use super::{
    CloudflareConfig, DaemonConfig, ExportMode, HeartbeatConfig, KvHeartbeat, NotifyConfig,
    NotifyFormat, NotifyOn, RetentionConfig, RunConfig, ScheduleConfig, VerifyMode,
};
use crate::compression::Compression;

impl CloudflareConfig {
    /// Overrides the API base URL (proxies, tests).
    #[must_use]
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
        self
    }

    /// Sets each API token's request budget per five minutes (default 900).
    #[must_use]
    pub fn requests_per_five_minutes(mut self, requests: u32) -> Self {
        self.requests_per_five_minutes = Some(requests);
        self
    }

    /// Sets the days of Time Travel history D1 keeps (default 30; 7 on the free plan).
    #[must_use]
    pub fn time_travel_days(mut self, days: u32) -> Self {
        self.time_travel_days = Some(days);
        self
    }
}

impl RetentionConfig {
    /// Sets the days of backups to keep.
    #[must_use]
    pub fn keep_days(mut self, days: u32) -> Self {
        self.keep_days = days;
        self
    }

    /// Also keeps the newest backup of each of the newest `days` days.
    #[must_use]
    pub fn keep_daily(mut self, days: u32) -> Self {
        self.keep_daily = Some(days);
        self
    }

    /// Also keeps the newest backup of each of the newest `weeks` ISO weeks.
    #[must_use]
    pub fn keep_weekly(mut self, weeks: u32) -> Self {
        self.keep_weekly = Some(weeks);
        self
    }

    /// Also keeps the newest backup of each of the newest `months` months.
    #[must_use]
    pub fn keep_monthly(mut self, months: u32) -> Self {
        self.keep_monthly = Some(months);
        self
    }

    /// Never deletes the newest `count` complete backups of a database.
    #[must_use]
    pub fn min_keep(mut self, count: u32) -> Self {
        self.min_keep = count;
        self
    }

    /// Does not prune after each run (`prune_after_run = false`); prune with
    /// [`Engine::prune`](crate::Engine::prune) instead.
    #[must_use]
    pub fn no_prune_after_run(mut self) -> Self {
        self.prune_after_run = false;
        self
    }
}

impl RunConfig {
    /// Writes Prometheus metrics to `path` after each run (`[run] metrics_file`).
    #[must_use]
    pub fn metrics_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.metrics_file = Some(path.into());
        self
    }

    /// Sets how many databases are backed up at once, across all accounts.
    #[must_use]
    pub fn concurrency(mut self, databases: usize) -> Self {
        self.concurrency = databases;
        self
    }

    /// Sets how many databases are backed up at once within one account.
    #[must_use]
    pub fn per_account_concurrency(mut self, databases: usize) -> Self {
        self.per_account_concurrency = databases;
        self
    }

    /// Sets the milliseconds between export polls.
    #[must_use]
    pub fn poll_interval_ms(mut self, ms: u64) -> Self {
        self.poll_interval_ms = ms;
        self
    }

    /// Sets the compression of dumps.
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Gives up on an export still running after `minutes`.
    #[must_use]
    pub fn max_wait_minutes(mut self, minutes: u64) -> Self {
        self.max_wait_minutes = Some(minutes);
        self
    }

    /// Sets the multipart part size in MiB.
    #[must_use]
    pub fn part_size_mib(mut self, mib: u64) -> Self {
        self.part_size_mib = Some(mib);
        self
    }

    /// Sets the lifetime of a database's lease in seconds.
    #[must_use]
    pub fn lease_seconds(mut self, seconds: u64) -> Self {
        self.lease_seconds = seconds;
        self
    }

    /// Sets how long to wait for another run's lease of a database (minutes; 0: not at all).
    #[must_use]
    pub fn wait_for_lease_minutes(mut self, minutes: u64) -> Self {
        self.wait_for_lease_minutes = minutes;
        self
    }

    /// Sets how long to wait for another export or import of a database to finish.
    #[must_use]
    pub fn wait_if_busy_minutes(mut self, minutes: u64) -> Self {
        self.wait_if_busy_minutes = minutes;
        self
    }

    /// Sets what each run proves about the backups it makes.
    #[must_use]
    pub fn verify(mut self, verify: VerifyMode) -> Self {
        self.verify = verify;
        self
    }

    /// Sets how D1 databases are read (`d1`, `online` or `auto`).
    #[must_use]
    pub fn export(mut self, mode: ExportMode) -> Self {
        self.export = mode;
        self
    }

    /// Fails an online backup whose database changed while it was read.
    #[must_use]
    pub fn require_snapshot(mut self, require: bool) -> Self {
        self.require_snapshot = require;
        self
    }

    /// Sets the size above which `auto` reads a database online, in MiB.
    #[must_use]
    pub fn online_above_mib(mut self, mib: u64) -> Self {
        self.online_above_mib = mib;
        self
    }
}

impl HeartbeatConfig {
    /// Writes each heartbeat to a Workers KV key.
    #[must_use]
    pub fn kv(mut self, kv: KvHeartbeat) -> Self {
        self.kv = Some(kv);
        self
    }

    /// Writes each heartbeat to this object key in the sink.
    #[must_use]
    pub fn object(mut self, key: impl Into<String>) -> Self {
        self.object = Some(key.into());
        self
    }

    /// Pings this URL after each run (through the engine's HTTP client).
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Pings this URL instead when the run failed (default: `url` + `/fail`).
    #[must_use]
    pub fn fail_url(mut self, url: impl Into<String>) -> Self {
        self.fail_url = Some(url.into());
        self
    }
}

impl KvHeartbeat {
    /// The KV key `key` of namespace `namespace_id`, written with the token of the account
    /// named `account`.
    pub fn new(
        account: impl Into<String>,
        namespace_id: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        Self {
            account: account.into(),
            namespace_id: namespace_id.into(),
            key: key.into(),
        }
    }
}

impl ScheduleConfig {
    /// A schedule named `name` running at `cron` (five fields, UTC) for every database.
    pub fn new(name: impl Into<String>, cron: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            cron: cron.into(),
            databases: Vec::new(),
        }
    }

    /// Restricts the schedule to these databases (`NAME` or `ACCOUNT/NAME`).
    #[must_use]
    pub fn databases<S: Into<String>>(mut self, databases: impl IntoIterator<Item = S>) -> Self {
        self.databases = databases.into_iter().map(Into::into).collect();
        self
    }
}

impl DaemonConfig {
    /// Serves `/metrics` and `/healthz` at `address` (`host:port`).
    #[must_use]
    pub fn metrics_listen(mut self, address: impl Into<String>) -> Self {
        self.metrics_listen = Some(address.into());
        self
    }
}

impl NotifyConfig {
    /// A webhook at `url`, told about failed runs, with the run report as JSON, a 10 s
    /// timeout and 2 retries.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            name: None,
            url: url.into(),
            on: vec![NotifyOn::Failure],
            timeout_seconds: 10,
            retries: 2,
            format: NotifyFormat::Json,
        }
    }

    /// Names the entry in logs and reports (the URL is never shown).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Which runs are notified.
    #[must_use]
    pub fn on(mut self, on: impl IntoIterator<Item = NotifyOn>) -> Self {
        self.on = on.into_iter().collect();
        self
    }

    /// How long one attempt may take, in seconds.
    #[must_use]
    pub fn timeout_seconds(mut self, seconds: u64) -> Self {
        self.timeout_seconds = seconds;
        self
    }

    /// Attempts made again after a failed one.
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The body sent.
    #[must_use]
    pub fn format(mut self, format: NotifyFormat) -> Self {
        self.format = format;
        self
    }
}
