//! The [`Engine`]: a validated configuration joined to its sink and its D1 clients.

use std::collections::HashMap;
use std::sync::Arc;

use d1_export::{ApiToken, D1Client, RateLimit};
use r2_sink::BackupSink;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::sinks::SharedSink;
use crate::secrets::Secrets;
use crate::sinks;

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
    /// The time leases and schedules are decided by.
    clock: Arc<dyn Clock>,
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
    clock: Option<Arc<dyn Clock>>,
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
            clock: None,
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

    pub(crate) fn clients(&self) -> &[Option<D1Client>] {
        &self.clients
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

    /// The clock that decides when leases expire and schedules fire (default
    /// [`SystemClock`](crate::SystemClock)). Tests pass a [`TokioClock`](crate::TokioClock)
    /// and pause tokio's time; a service may pass its own time source.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The user agent sent to the Cloudflare API.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Builds the sink (unless one was given) and one D1 client per distinct token.
    pub fn build(self) -> Result<Engine, Error> {
        let sink = match self.sink {
            Some(sink) => sink,
            None => sinks::from_config(&self.config.sink, &self.config.run, &self.secrets)?,
        };
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
            let token = self
                .secrets
                .get(token_env)
                .ok_or_else(|| {
                    sinks::missing_secret(&format!("accounts[{i}].token_env"), token_env)
                })?;
            let mut builder =
                D1Client::builder(ApiToken::from(token.to_owned())).user_agent(user_agent.clone());
            if let Some(base) = &self.config.cloudflare.api_base_url {
                builder = builder.base_url(base.clone());
            }
            if let Some(requests) = self.config.cloudflare.requests_per_five_minutes {
                builder = builder.rate_limit(RateLimit::per_five_minutes(requests));
            }
            let client = builder.build().map_err(|source| {
                Error::from(source).context(format_args!(
                    "cannot set up the D1 API client for account {}",
                    account.name
                ))
            })?;
            by_token.insert(token_env, client.clone());
            clients.push(Some(client));
        }
        let owner = self.owner.unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            format!("pid {} #{nanos:08x}", std::process::id())
        });
        Ok(Engine {
            config: self.config,
            sink,
            clients,
            owner,
            scratch_dir: self.scratch_dir,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        })
    }
}
