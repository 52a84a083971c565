//! The crate's errors: configuration problems (found before any network call) and the few
//! failures that stop a whole run before it starts. A single database's failure is not an
//! `Error`: it is a `failed` entry in the [`RunReport`](crate::RunReport).

use std::fmt;
use std::path::PathBuf;

/// Something wrong with the configuration or the environment it names.
///
/// Every variant names the file and, where there is one, the field, says what is wrong and
/// how to fix it. Found before any network call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}; pass an existing file with --config", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the expected shape.
    #[error("invalid config file {}{}: {source}", path.display(), at_field(field))]
    Parse {
        /// The file.
        path: PathBuf,
        /// The field path (`accounts[0].prefix`), empty when the text is not TOML at all.
        field: String,
        /// The parser's message, with line, column and the offending key.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The file parsed but some values are wrong.
    #[error("invalid config file {}:\n{}", path.display(), Problems(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// Environment variables that the file names are unset or empty.
    #[error("missing secrets for config file {}:\n{}", path.display(), Problems(problems))]
    MissingSecrets {
        /// The file.
        path: PathBuf,
        /// One problem per missing variable.
        problems: Vec<Problem>,
    },
}

fn at_field(field: &str) -> String {
    if field.is_empty() || field == "." {
        String::new()
    } else {
        format!(", field {field}")
    }
}

/// One problem with one field of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The field path, e.g. `accounts[1].prefix`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub hint: String,
}

impl Problem {
    pub(crate) fn new(
        field: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.problem, self.hint)
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// A failure that stops a run (or a command) as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The sink could not be set up.
    #[error("cannot set up the {what} sink: {source}")]
    Sink {
        /// The sink, described without secrets.
        what: String,
        /// The sink's error.
        #[source]
        source: r2_sink::Error,
    },
    /// Reading the sink failed (listing backups).
    #[error("{0}")]
    Storage(String),
    /// A `--only` selector matched no configured database.
    #[error("{0}")]
    Selection(String),
    /// A secret the configuration names was not provided.
    #[error(
        "{field} names the secret `{var}`, which was not provided; set the environment variable {var}"
    )]
    MissingSecret {
        /// The field naming the secret.
        field: String,
        /// The variable name.
        var: String,
    },
    /// A field the configuration needs is absent (only possible for hand-built configs).
    #[error("the configuration has no {0}; add it to the file")]
    MissingField(String),
    /// A D1 API client could not be built.
    #[error("cannot set up the D1 API client for account {account}: {source}")]
    Client {
        /// The account's configured name.
        account: String,
        /// The client's error.
        #[source]
        source: Box<d1_export::Error>,
    },
}
