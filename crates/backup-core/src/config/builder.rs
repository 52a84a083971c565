//! The configuration built in code: [`Config::builder`], and constructors and chainable
//! setters for every part, for callers outside this crate (the structs are
//! `#[non_exhaustive]`, so they cannot be written as literals there).
//!
//! Setters cannot fail; [`ConfigBuilder::build`] validates the whole configuration by the
//! same rules as a file (every problem at once, each naming its field, e.g.
//! `accounts[0].prefix`) and normalizes prefixes as the loader does. Paths are taken as given:
//! absolute, or relative to the process's working directory (a file's paths are relative to
//! the file instead). Fields that name a secret (`token_env`, `access_key_id_env`,
//! `secret_access_key_env`) name it in [`Secrets`](crate::Secrets): an environment variable
//! for the command, any name of the same shape (letters, digits, `_`) given to
//! [`Secrets::with`](crate::Secrets::with) in code.

use std::path::PathBuf;

use super::{
    AccountConfig, CloudflareConfig, Config, DaemonConfig, DatabaseEntry, ExportMode,
    HeartbeatConfig, NotifyConfig, RetentionConfig, RunConfig, ScheduleConfig, SinkConfig,
    SinkKind,
};
use crate::compression::Compression;
use crate::error::{ConfigError, Error};

/// Builds a [`Config`] in code. Setters cannot fail; [`ConfigBuilder::build`] can.
///
/// Every part not set keeps the default a file that leaves its table out gets.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
}

impl Config {
    /// Starts a configuration that writes to `sink`, with default `[cloudflare]`,
    /// `[retention]`, `[run]`, no heartbeat, no schedule and no account yet.
    pub fn builder(sink: SinkConfig) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                cloudflare: CloudflareConfig::default(),
                sink,
                retention: RetentionConfig::default(),
                run: RunConfig::default(),
                heartbeat: HeartbeatConfig::default(),
                schedules: Vec::new(),
                daemon: DaemonConfig::default(),
                notify: Vec::new(),
                accounts: Vec::new(),
                encryption: None,
                replicas: Vec::new(),
            },
        }
    }
}

impl ConfigBuilder {
    /// Sets the Cloudflare API settings (`[cloudflare]`).
    pub fn cloudflare(mut self, cloudflare: CloudflareConfig) -> Self {
        self.config.cloudflare = cloudflare;
        self
    }

    /// Sets how long backups are kept (`[retention]`).
    pub fn retention(mut self, retention: RetentionConfig) -> Self {
        self.config.retention = retention;
        self
    }

    /// Sets how runs are carried out (`[run]`).
    pub fn run(mut self, run: RunConfig) -> Self {
        self.config.run = run;
        self
    }

    /// Sets where runs and prunes record that they happened (`[heartbeat]`).
    pub fn heartbeat(mut self, heartbeat: HeartbeatConfig) -> Self {
        self.config.heartbeat = heartbeat;
        self
    }

    /// Also writes every backup to this replica (`[[replicas]]`).
    pub fn replica(mut self, replica: super::ReplicaConfig) -> Self {
        self.config.replicas.push(replica);
        self
    }

    /// Encrypts every dump with age (`[encryption]`).
    pub fn encryption(mut self, encryption: super::EncryptionConfig) -> Self {
        self.config.encryption = Some(encryption);
        self
    }

    /// Adds a schedule (one `[[schedules]]` entry).
    pub fn schedule(mut self, schedule: ScheduleConfig) -> Self {
        self.config.schedules.push(schedule);
        self
    }

    /// Sets what the daemon serves (`[daemon]`).
    pub fn daemon(mut self, daemon: DaemonConfig) -> Self {
        self.config.daemon = daemon;
        self
    }

    /// Adds a webhook told about runs (one `[[notify]]` entry).
    pub fn notify(mut self, notify: NotifyConfig) -> Self {
        self.config.notify.push(notify);
        self
    }

    /// Adds an account (one `[[accounts]]` entry); `accounts[i]` in problems counts them in
    /// the order they were added.
    pub fn account(mut self, account: AccountConfig) -> Self {
        self.config.accounts.push(account);
        self
    }

    /// Validates the configuration by the same rules as a file and normalizes each prefix
    /// (`backups/d1/` → `backups/d1`). An invalid one is an [`Error`] of kind
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) whose
    /// [`problems`](Error::problems) name every wrong field.
    pub fn build(self) -> Result<Config, Error> {
        let mut problems = super::validate::problems(&self.config);
        if problems.is_empty() {
            super::validate::check_files(&self.config, &mut problems);
        }
        if !problems.is_empty() {
            return Err(ConfigError::InvalidValues { problems }.into());
        }
        let mut config = self.config;
        config.normalize_prefixes();
        Ok(config)
    }
}

impl SinkConfig {
    /// A sink of `kind` with no field set; the constructors below set what each kind needs.
    pub fn new(kind: SinkKind) -> Self {
        Self {
            kind,
            bucket: None,
            account_id: None,
            endpoint: None,
            region: None,
            jurisdiction: None,
            access_key_id_env: None,
            secret_access_key_env: None,
            path: None,
            lock_token_env: None,
        }
    }

    /// A local directory (`kind = "fs"`), taken as given: absolute, or relative to the
    /// process's working directory.
    pub fn fs(path: impl Into<PathBuf>) -> Self {
        Self::new(SinkKind::Fs).path(path)
    }

    /// An R2 bucket of the Cloudflare account `account_id` (`kind = "r2"`). Name its keys
    /// with [`SinkConfig::credentials`].
    pub fn r2(account_id: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self::new(SinkKind::R2)
            .account_id(account_id)
            .bucket(bucket)
    }

    /// A bucket behind any S3-compatible `endpoint` (`kind = "s3"`); an `http://` endpoint is
    /// accepted as the caller's explicit choice. Name its keys with
    /// [`SinkConfig::credentials`].
    pub fn s3(endpoint: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self::new(SinkKind::S3).endpoint(endpoint).bucket(bucket)
    }

    /// Names the secrets holding the access key id and the secret access key (`r2`, `s3`).
    #[must_use]
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.access_key_id_env = Some(access_key_id.into());
        self.secret_access_key_env = Some(secret_access_key.into());
        self
    }

    /// Names the secret holding a Cloudflare API token that can read the R2 bucket's
    /// settings (`r2`): its lock rules are then reported by [`Engine::check`] and respected
    /// by retention (see [`SinkConfig::lock_token_env`]).
    ///
    /// [`Engine::check`]: crate::Engine::check
    #[must_use]
    pub fn lock_token(mut self, lock_token: impl Into<String>) -> Self {
        self.lock_token_env = Some(lock_token.into());
        self
    }

    /// Sets the bucket (`r2`, `s3`).
    #[must_use]
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// Sets the Cloudflare account that owns the R2 bucket (`r2`).
    #[must_use]
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// Sets the endpoint URL (required for `s3`, an override for `r2`).
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the region (R2 uses `auto`).
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the R2 jurisdiction (`eu`, `fedramp`).
    #[must_use]
    pub fn jurisdiction(mut self, jurisdiction: impl Into<String>) -> Self {
        self.jurisdiction = Some(jurisdiction.into());
        self
    }

    /// Sets the directory (`fs`), taken as given.
    #[must_use]
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl AccountConfig {
    /// An account named `name` (in reports and selectors) writing under `prefix`, with no
    /// database yet. An account whose databases are exported through the D1 API also needs
    /// [`account_id`](Self::account_id) and [`token_env`](Self::token_env).
    pub fn new(name: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            account_id: None,
            token_env: None,
            wrangler_state: None,
            wrangler_state_as_written: None,
            prefix: prefix.into(),
            databases: Vec::new(),
        }
    }

    /// Sets the Cloudflare account id.
    #[must_use]
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// Names the secret holding this account's API token (see
    /// [`Secrets::with`](crate::Secrets::with)). Accounts naming the same secret share one
    /// D1 client and its request budget.
    #[must_use]
    pub fn token_env(mut self, name: impl Into<String>) -> Self {
        self.token_env = Some(name.into());
        self
    }

    /// Backs up every local D1 database in a wrangler state directory, taken as given.
    #[must_use]
    pub fn wrangler_state(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wrangler_state = Some(dir.into());
        self
    }

    /// Adds a database.
    #[must_use]
    pub fn database(mut self, database: DatabaseEntry) -> Self {
        self.databases.push(database);
        self
    }

    /// Adds several databases.
    #[must_use]
    pub fn databases(mut self, databases: impl IntoIterator<Item = DatabaseEntry>) -> Self {
        self.databases.extend(databases);
        self
    }
}

impl DatabaseEntry {
    /// Sets the D1 database uuid, so the name is not looked up.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Dumps this local SQLite file instead of exporting through the API (feature
    /// `sqlite`), taken as given: absolute, or relative to the process's working directory.
    #[must_use]
    pub fn sqlite(mut self, path: impl Into<PathBuf>) -> Self {
        self.sqlite = Some(path.into());
        self
    }

    /// Overrides `run.poll_interval_ms` for this database.
    #[must_use]
    pub fn poll_interval_ms(mut self, ms: u64) -> Self {
        self.poll_interval_ms = Some(ms);
        self
    }

    /// Overrides `run.max_wait_minutes` for this database.
    #[must_use]
    pub fn max_wait_minutes(mut self, minutes: u64) -> Self {
        self.max_wait_minutes = Some(minutes);
        self
    }

    /// Overrides `run.part_size_mib` for this database.
    #[must_use]
    pub fn part_size_mib(mut self, mib: u64) -> Self {
        self.part_size_mib = Some(mib);
        self
    }

    /// Overrides `run.compression` for this database.
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Overrides `run.export` for this database.
    #[must_use]
    pub fn export(mut self, mode: ExportMode) -> Self {
        self.export = Some(mode);
        self
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const ACCOUNT: &str = "e5a9830215a8d88961dc6c80a8c7442a";

    fn account() -> AccountConfig {
        AccountConfig::new("ucca", "backups/d1/")
            .account_id(ACCOUNT)
            .token_env("CF_API_TOKEN")
            .database(DatabaseEntry::named("ops-db"))
    }

    fn fields(result: Result<Config, Error>) -> Vec<String> {
        let error = result.expect_err("should be refused");
        assert_eq!(error.kind(), ErrorKind::Config);
        error.problems().iter().map(|p| p.field.clone()).collect()
    }

    #[test]
    fn a_valid_configuration_builds_with_the_file_defaults_and_normalized_prefixes() {
        let config = Config::builder(SinkConfig::fs("/var/backups"))
            .account(account())
            .build()
            .expect("valid");
        assert_eq!(config.accounts[0].prefix, "backups/d1");
        assert_eq!(config.retention.keep_days, 30);
        assert_eq!(config.run.concurrency, 4);
        assert!(config.retention.prune_after_run);
        assert_eq!(config.sink.path, Some(PathBuf::from("/var/backups")));
    }

    #[test]
    fn relative_paths_are_taken_as_given() {
        let config = Config::builder(SinkConfig::fs("out"))
            .account(
                AccountConfig::new("local", "local")
                    .database(DatabaseEntry::named("shop").sqlite("db/shop.sqlite")),
            )
            .build();
        // Without the `sqlite` feature the entry is refused, but never for its path.
        if let Ok(config) = config {
            assert_eq!(config.sink.path, Some(PathBuf::from("out")));
            assert_eq!(
                config.accounts[0].databases[0].sqlite,
                Some(PathBuf::from("db/shop.sqlite"))
            );
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let built = Config::builder(SinkConfig::new(SinkKind::S3))
            .retention(RetentionConfig::default().keep_days(0).min_keep(0))
            .run(RunConfig::default().concurrency(0).part_size_mib(1))
            .account(
                account()
                    .token_env("not a name")
                    .database(DatabaseEntry::named("a/b")),
            )
            .account(AccountConfig::new("", "/abs"))
            .build();
        assert_eq!(
            fields(built),
            [
                "sink.bucket",
                "sink.access_key_id_env",
                "sink.secret_access_key_env",
                "sink.endpoint",
                "retention.keep_days",
                "retention.min_keep",
                "run.concurrency",
                "run.part_size_mib",
                "accounts[0].token_env",
                "accounts[0].databases[1].name",
                "accounts[1].name",
                "accounts[1].prefix",
            ]
        );
    }

    #[test]
    fn no_account_is_a_problem_too() {
        assert_eq!(
            fields(Config::builder(SinkConfig::fs("/b")).build()),
            ["accounts"]
        );
    }

    #[test]
    fn remote_sinks_need_their_credentials_named() {
        let r2 = SinkConfig::r2(ACCOUNT, "bucket").credentials("R2_KEY_ID", "R2_SECRET");
        assert!(Config::builder(r2).account(account()).build().is_ok());
        let s3 = SinkConfig::s3("http://127.0.0.1:9000", "bucket");
        assert_eq!(
            fields(Config::builder(s3).account(account()).build()),
            ["sink.access_key_id_env", "sink.secret_access_key_env"]
        );
    }
}
