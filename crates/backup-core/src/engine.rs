//! The [`Engine`]: a validated configuration joined to its sink and its D1 clients.

use std::collections::HashMap;
use std::sync::Arc;

use d1_export::{ApiToken, D1Client, RateLimit, RequestCounts};

use crate::shard::Shard;
use r2_sink::BackupSink;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::encryption::{AgeIdentity, Recipients};
use crate::error::{Error, ErrorKind};
use crate::locks::LockSource;
use crate::processes::{Processes, UnknownProcesses};
use crate::secrets::Secrets;
use crate::sinks;
use crate::sinks::SharedSink;

/// Runs backups for one configuration. Cheap to share: build it once and call
/// [`Engine::run`](crate::Engine::run) for each run.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    sink: SharedSink,
    /// One client per account, in `config.accounts` order (`None` for accounts with only
    /// local databases). Accounts that name the same
    /// token variable share one client, and so one request budget: D1's rate limit is per
    /// token, not per account.
    clients: Vec<Option<D1Client>>,
    /// Names this engine in leases, so operators can tell which run holds one.
    owner: String,
    /// Where verifications restore their scratch databases.
    scratch_dir: Option<std::path::PathBuf>,
    /// Every HTTP call the engine makes goes through this one client (the caller's, or one
    /// built once by [`EngineBuilder::build`]): the D1 clients share it, and so do the
    /// heartbeat pings.
    http: reqwest::Client,
    /// The time leases and schedules are decided by.
    clock: Arc<dyn Clock>,
    /// The share of the databases this engine's runs back up (`None`: all of them).
    shard: Option<Shard>,
    /// Who this run is in its leases, and whether a holder on this machine still lives.
    processes: Arc<dyn Processes>,
    /// The public keys every dump is encrypted to (`[encryption]`); `None`: plain dumps.
    recipients: Option<Arc<Recipients>>,
    /// The identity the caller gave to decrypt backups; without one, `[encryption]
    /// identity_file` is read when a backup must be decrypted.
    identity: Option<Arc<AgeIdentity>>,
    /// Where the R2 bucket's lock rules are read (`[sink] lock_token_env`); `None`: unchecked.
    locks: Option<LockSource>,
    /// `[[replicas]]`, built: every backup is also written to each, in config order.
    replicas: Vec<sinks::Replica>,
}

/// Builds an [`Engine`]. Setters cannot fail; [`EngineBuilder::build`] can.
#[derive(Debug)]
#[must_use]
pub struct EngineBuilder {
    config: Config,
    secrets: Secrets,
    sink: Option<SharedSink>,
    user_agent: Option<String>,
    owner: Option<String>,
    scratch_dir: Option<std::path::PathBuf>,
    http_client: Option<reqwest::Client>,
    clock: Option<Arc<dyn Clock>>,
    shard: Option<Shard>,
    processes: Option<Arc<dyn Processes>>,
    identity: Option<AgeIdentity>,
}

impl Engine {
    /// Starts building an engine for a validated `config` and the `secrets` it names.
    pub fn builder(config: Config, secrets: Secrets) -> EngineBuilder {
        EngineBuilder {
            config,
            secrets,
            sink: None,
            user_agent: None,
            owner: None,
            scratch_dir: None,
            http_client: None,
            clock: None,
            shard: None,
            processes: None,
            identity: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The sink backups are written to.
    pub fn sink(&self) -> &SharedSink {
        &self.sink
    }

    /// The replicas every backup is also written to (`[[replicas]]`), in config order.
    pub(crate) fn replicas(&self) -> &[sinks::Replica] {
        &self.replicas
    }

    /// This engine reading and pruning the replica `which` (its index from 0, or its name)
    /// instead of the main sink: `list`, `verify`, `restore` and prune of a replica. The
    /// returned engine's `[retention] keep_days` is the replica's; it writes to no replica
    /// and reads no bucket lock rules. An error of kind
    /// [`Config`](crate::ErrorKind::Config) when no replica is called `which`.
    pub fn on_replica(&self, which: &str) -> Result<Engine, Error> {
        let index = which
            .parse::<usize>()
            .ok()
            .filter(|i| *i < self.replicas.len())
            .or_else(|| self.replicas.iter().position(|r| r.label == which))
            .ok_or_else(|| {
                let known: Vec<String> = (0..self.replicas.len())
                    .map(|i| format!("{i} ({})", self.replicas[i].label))
                    .collect();
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "there is no replica {which:?}; the configured replicas are: {}",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
        Ok(self.for_replica(index))
    }

    /// This engine on the replica at `index` (which must exist).
    pub(crate) fn for_replica(&self, index: usize) -> Engine {
        let replica = &self.replicas[index];
        let mut config = self.config.clone();
        config.retention.keep_days = replica.keep_days;
        config.replicas.clear();
        Engine {
            config,
            sink: Arc::clone(&replica.sink),
            clients: self.clients.clone(),
            owner: self.owner.clone(),
            scratch_dir: self.scratch_dir.clone(),
            http: self.http.clone(),
            clock: Arc::clone(&self.clock),
            shard: self.shard,
            processes: Arc::clone(&self.processes),
            recipients: self.recipients.clone(),
            identity: self.identity.clone(),
            locks: None,
            replicas: Vec::new(),
        }
    }

    pub(crate) fn clients(&self) -> &[Option<D1Client>] {
        &self.clients
    }

    /// The HTTP client every call of this engine goes through.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Where the bucket's lock rules are read, when `[sink] lock_token_env` is set.
    pub(crate) fn lock_source(&self) -> Option<&LockSource> {
        self.locks.as_ref()
    }

    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// The directory for scratch databases, when the builder was given one.
    pub fn scratch_dir(&self) -> Option<&std::path::Path> {
        self.scratch_dir.as_deref()
    }

    /// The clock leases and schedules are decided by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The share of the databases this engine's runs back up (`None`: all of them).
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// The D1 API requests this engine's clients have sent since it was built, and how many
    /// were answered 429: each distinct client (one per token) counted once. A run's share
    /// is the difference between a reading before and after it
    /// ([`RunReport::api_requests`](crate::RunReport::api_requests)).
    pub fn api_request_counts(&self) -> RequestCounts {
        let mut distinct: Vec<&D1Client> = Vec::new();
        for client in self.clients.iter().flatten() {
            if !distinct.iter().any(|c| c.same_client(client)) {
                distinct.push(client);
            }
        }
        distinct
            .into_iter()
            .fold(RequestCounts::default(), |sum, c| sum + c.request_counts())
    }

    /// Who this engine is in its leases, and its probe for holders on this machine.
    pub fn processes(&self) -> &Arc<dyn Processes> {
        &self.processes
    }

    /// The leases of this engine: its sink, clock, owner name, processes and
    /// `[run] lease_seconds`.
    /// The public keys dumps are encrypted to, when `[encryption]` is set.
    pub(crate) fn recipients(&self) -> Option<&Recipients> {
        self.recipients.as_deref()
    }

    /// Whether the caller gave an identity ([`EngineBuilder::identity`]).
    pub(crate) fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// The identity that decrypts backups: the caller's, else `[encryption] identity_file`
    /// read now. An error of kind [`ErrorKind::Config`](crate::ErrorKind::Config) when there
    /// is neither or the file is unusable; `what` says what needs it.
    pub(crate) fn identity(&self, what: &str) -> Result<Arc<AgeIdentity>, Error> {
        if let Some(identity) = &self.identity {
            return Ok(Arc::clone(identity));
        }
        match self
            .config
            .encryption
            .as_ref()
            .and_then(|e| e.identity_file.as_deref())
        {
            Some(path) => AgeIdentity::from_file(path).map(Arc::new),
            None => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{what} is encrypted with age and no identity was given to decrypt it: set [encryption] identity_file to the age identity file (key.txt) of one of its recipients, or give the identity to the engine"
                ),
            )),
        }
    }

    pub(crate) fn leases(&self) -> crate::lease::Leases<'_> {
        crate::lease::Leases::new(
            self.sink().as_ref(),
            self.clock().as_ref(),
            self.owner(),
            std::time::Duration::from_secs(self.config().run.lease_seconds),
        )
        .processes(self.processes.as_ref())
    }
}

impl EngineBuilder {
    /// Uses `sink` instead of the one `[sink]` describes (embedding, tests, custom sinks).
    pub fn sink(mut self, sink: Arc<dyn BackupSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Names this engine in the leases it takes (e.g. `host-a pid 4242`); by default a name
    /// unique to this process and moment.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Where verifications configured by `[run] verify` restore their scratch databases (the
    /// caller's temporary directory; the library reads no environment). Without it, such
    /// verifications are skipped with a note.
    pub fn scratch_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.scratch_dir = Some(dir.into());
        self
    }

    /// Sends every HTTP call the engine makes through `client`: the D1 API calls and dump
    /// downloads of every account, and the heartbeat URL ping. An embedding service shares
    /// its connection pool, proxy, TLS and default headers this way; the client's own
    /// connect timeout applies. Without it, [`build`](Self::build) builds one client (10 s
    /// connect timeout) and shares it the same way. Per-request limits (the D1 API's request
    /// timeout, the ping's 20 s) and the [`user_agent`](Self::user_agent) of D1 calls apply
    /// either way.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The clock that decides when leases expire and schedules fire (default
    /// [`SystemClock`](crate::SystemClock)). Tests pass a [`TokioClock`](crate::TokioClock)
    /// and pause tokio's time; a service may pass its own time source.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Makes the engine one of N shards ([`Shard`]): its runs back up only the selected
    /// databases in its share, and each token's request budget
    /// (`[cloudflare] requests_per_five_minutes`, default 900) is divided by N, so N shards
    /// running at once stay inside Cloudflare's limit together.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = Some(shard);
        self
    }

    /// Who this process is (machine, boot, pid), written into every lease it takes, and how
    /// to tell whether a lease's holder on this machine still lives: a lease whose holder
    /// died on this machine (same host and boot, its pid gone, not this process) is taken
    /// over at once rather than after it lapses. By default
    /// [`UnknownProcesses`](crate::UnknownProcesses): nothing is known, leases lapse.
    pub fn processes(mut self, processes: Arc<dyn Processes>) -> Self {
        self.processes = Some(processes);
        self
    }

    /// The age identity that decrypts encrypted backups (verify, restore), instead of
    /// `[encryption] identity_file`. Backing up never needs it.
    pub fn identity(mut self, identity: AgeIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The user agent sent to the Cloudflare API.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Builds the sink (unless one was given) and one D1 client per distinct token.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) when secrets it needs were
    /// not given (all of them named at once, each with its field; the sink's are not needed
    /// when a [`sink`](Self::sink) was given), or when the sink or a client cannot be set up.
    pub fn build(self) -> Result<Engine, Error> {
        let custom_sink = self.sink.is_some();
        let recipients = match &self.config.encryption {
            Some(encryption) => Some(Arc::new(encryption.resolve()?)),
            None => None,
        };
        self.secrets.check_fields(&self.config, |field| {
            !(custom_sink && field.starts_with("sink."))
        })?;
        let http = match self.http_client {
            Some(client) => client,
            None => default_http_client()?,
        };
        let sink = match self.sink {
            Some(sink) => sink,
            None => sinks::from_config(&self.config.sink, "sink", &self.config.run, &self.secrets)?,
        };
        let mut replicas = Vec::with_capacity(self.config.replicas.len());
        for (i, replica) in self.config.replicas.iter().enumerate() {
            let at = format!("replicas[{i}]");
            replicas.push(sinks::Replica {
                label: replica.label(i),
                sink: sinks::from_config(&replica.sink, &at, &self.config.run, &self.secrets)?,
                keep_days: replica.keep_days.unwrap_or(self.config.retention.keep_days),
            });
        }
        let user_agent = self
            .user_agent
            .unwrap_or_else(|| concat!("d1-backup/", env!("CARGO_PKG_VERSION")).to_owned());
        let mut by_token: HashMap<&str, D1Client> = HashMap::new();
        let mut clients = Vec::with_capacity(self.config.accounts.len());
        for (i, account) in self.config.accounts.iter().enumerate() {
            let Some(token_env) = account.token_env.as_deref().filter(|_| account.needs_api())
            else {
                clients.push(None); // Only local databases: no API client.
                continue;
            };
            if let Some(client) = by_token.get(token_env) {
                clients.push(Some(client.clone()));
                continue;
            }
            let token = self.secrets.get(token_env).ok_or_else(|| {
                sinks::missing_secret(&format!("accounts[{i}].token_env"), token_env)
            })?;
            let mut builder = D1Client::builder(ApiToken::from(token.to_owned()))
                .http_client(http.clone())
                .user_agent(user_agent.clone());
            if let Some(base) = &self.config.cloudflare.api_base_url {
                builder = builder.base_url(base.clone());
            }
            let requests = request_budget(&self.config, self.shard);
            builder = builder.rate_limit(RateLimit::per_five_minutes(requests));
            let client = builder.build().map_err(|source| {
                Error::from(source).context(format_args!(
                    "cannot set up the D1 API client for account {}",
                    account.name
                ))
            })?;
            by_token.insert(token_env, client.clone());
            clients.push(Some(client));
        }
        let locks = lock_source(&self.config, &self.secrets, &http, &user_agent)?;
        let owner = self.owner.unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            format!("pid {} #{nanos:08x}", std::process::id())
        });
        Ok(Engine {
            replicas,
            config: self.config,
            sink,
            clients,
            owner,
            scratch_dir: self.scratch_dir,
            http,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            shard: self.shard,
            processes: self.processes.unwrap_or_else(|| Arc::new(UnknownProcesses)),
            recipients,
            identity: self.identity.map(Arc::new),
            locks,
        })
    }
}

/// The requests each token may make per five minutes: the configured budget (default
/// [`RateLimit::default`]'s), divided among the shards.
pub(crate) fn request_budget(config: &Config, shard: Option<Shard>) -> u32 {
    let budget = config
        .cloudflare
        .requests_per_five_minutes
        .unwrap_or_else(|| RateLimit::default().requests);
    shard.map_or(budget, |shard| shard.share_of(budget))
}

/// The client an engine builds when the caller gives none: D1's default connect timeout, and
/// the rest of reqwest's defaults.
fn default_http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|source| {
            Error::new(ErrorKind::Config, "cannot set up the HTTP client").with_source(source)
        })
}

/// The lock rules' source `[sink] lock_token_env` describes: a Cloudflare API client with the
/// lock token (at `[cloudflare] api_base_url`, through the engine's HTTP client), or none when
/// the secret was not given (the lock checks then fail, naming it).
fn lock_source(
    config: &Config,
    secrets: &Secrets,
    http: &reqwest::Client,
    user_agent: &str,
) -> Result<Option<LockSource>, Error> {
    let (Some(var), Some(account_id), Some(bucket)) = (
        config.lock_token_env(),
        config.sink.account_id.as_ref(),
        config.sink.bucket.as_ref(),
    ) else {
        return Ok(None);
    };
    let client = match secrets.get(var) {
        Some(token) => {
            let mut builder = D1Client::builder(ApiToken::from(token.to_owned()))
                .http_client(http.clone())
                .user_agent(user_agent.to_owned());
            if let Some(base) = &config.cloudflare.api_base_url {
                builder = builder.base_url(base.clone());
            }
            Some(builder.build().map_err(|source| {
                Error::from(source).context("cannot set up the client for the bucket's lock rules")
            })?)
        }
        None => None,
    };
    Ok(Some(LockSource {
        client,
        account_id: account_id.clone(),
        bucket: bucket.clone(),
        jurisdiction: config.sink.jurisdiction.clone(),
        token_env: var.to_owned(),
    }))
}
