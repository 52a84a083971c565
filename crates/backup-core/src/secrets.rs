//! Secrets named by the configuration, resolved by the caller.
//!
//! The file only names environment variables; the library never reads the environment. The
//! caller (the CLI, or an embedding service with its own secret store) passes a lookup
//! function ([`Secrets::resolve`]), or gives the values in code ([`Secrets::with`]), and every
//! missing secret is reported at once, before any network call.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use crate::config::Config;
use crate::error::{ConfigError, Error, Problem};

/// The secrets a configuration needs, keyed by the name the configuration gives them
/// (`token_env`, `access_key_id_env`, `secret_access_key_env`: an environment variable's name
/// in a file, any such name in code).
///
/// `Debug` shows the names only, never the values.
///
/// In code, without any environment variable:
///
/// ```
/// use d1_backup_core::Secrets;
///
/// let secrets = Secrets::new()
///     .with("CF_API_TOKEN", "token-from-my-vault")
///     .with("R2_SECRET", "key-from-my-vault");
/// assert!(!format!("{secrets:?}").contains("my-vault"));
/// ```
#[derive(Clone, Default)]
pub struct Secrets {
    values: HashMap<String, String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.values.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Secrets")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Looks up every variable `config` names with `lookup` (for example
    /// `|name| std::env::var(name).ok()`). Unset and empty values are both missing; all of
    /// them are reported in one error that names the field naming each variable.
    pub fn resolve(
        config: &Config,
        origin: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let mut values = HashMap::new();
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for (field, var) in config.secret_env_vars() {
            // Accounts may share a token; report each variable once.
            if !seen.insert(var) {
                continue;
            }
            match lookup(var).filter(|v| !v.trim().is_empty()) {
                Some(value) => {
                    values.insert(var.to_owned(), value.trim().to_owned());
                }
                None => problems.push(Problem::new(
                    field,
                    format!("names the environment variable `{var}`, which is not set or empty"),
                    format!("export {var}=<secret> before running d1-backup"),
                )),
            }
        }
        // The lock token is optional: without it only the lock checks fail (`config check`,
        // and prune, which then deletes nothing), so its absence is not an error here.
        if let Some(var) = config.lock_token_env()
            && let Some(value) = lookup(var).filter(|v| !v.trim().is_empty())
        {
            values.insert(var.to_owned(), value.trim().to_owned());
        }
        if problems.is_empty() {
            Ok(Self { values })
        } else {
            Err(ConfigError::MissingSecrets {
                path: origin.to_path_buf(),
                problems,
            }
            .into())
        }
    }

    /// No secret yet; add each with [`Secrets::with`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the secret named `name`, e.g. the name an account's
    /// [`token_env`](crate::AccountConfig::token_env) gives. Surrounding whitespace is
    /// trimmed, as from the environment; a blank value counts as missing.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.values
            .insert(name.into(), value.into().trim().to_owned());
        self
    }

    /// Checks that every secret `config` names was given (and is not blank), reporting all
    /// missing ones at once, each with the field naming it. [`EngineBuilder::build`]
    /// checks the ones it needs itself; this is for callers that want to know earlier.
    ///
    /// [`EngineBuilder::build`]: crate::EngineBuilder::build
    pub fn check(&self, config: &Config) -> Result<(), Error> {
        self.check_fields(config, |_| true)
    }

    /// [`Secrets::check`] for the fields `wanted` accepts.
    pub(crate) fn check_fields(
        &self,
        config: &Config,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<(), Error> {
        let mut seen = HashSet::new();
        let problems: Vec<Problem> = config
            .secret_env_vars()
            .into_iter()
            .filter(|(field, var)| wanted(field) && seen.insert(*var))
            .filter(|(_, var)| self.get(var).is_none_or(|v| v.trim().is_empty()))
            .map(|(field, var)| {
                Problem::new(
                    field,
                    format!("names the secret `{var}`, which was not given or is blank"),
                    format!("give its value with `Secrets::with(\"{var}\", value)`"),
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::SecretsNotGiven { problems }.into())
        }
    }

    /// Builds secrets from explicit `(name, value)` pairs (embedding, tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `var`, if it was resolved.
    pub(crate) fn get(&self, var: &str) -> Option<&str> {
        self.values.get(var).map(String::as_str)
    }
}
