//! Secrets named by the configuration, resolved by the caller.
//!
//! The file only names environment variables; the library never reads the environment. The
//! caller (the CLI, or an embedding service with its own secret store) passes a lookup
//! function, and every missing secret is reported at once, before any network call.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use crate::config::Config;
use crate::error::{ConfigError, Problem};

/// The secrets a configuration needs, keyed by the variable name the file gives.
///
/// `Debug` shows the variable names only, never the values.
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
    ) -> Result<Self, ConfigError> {
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
        if problems.is_empty() {
            Ok(Self { values })
        } else {
            Err(ConfigError::MissingSecrets {
                path: origin.to_path_buf(),
                problems,
            })
        }
    }

    /// Builds secrets from explicit `(variable name, value)` pairs (embedding, tests).
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
