//! Selecting databases by name: [`Selector`], `NAME` (in any account), `ACCOUNT/NAME`, or
//! `ACCOUNT/*` (every database of an account), as runs, prunes, verifications, restores and
//! schedules take them.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// Selects databases by name: `name` (in any account), `account/name`, or `account/*` (every
/// database of the account; `*` alone selects every database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    account: Option<String>,
    name: String,
}

impl Selector {
    /// Whether the database `name` of the account named `account` is selected.
    pub fn matches(&self, account: &str, name: &str) -> bool {
        self.account.as_deref().is_none_or(|a| a == account)
            && (self.name == name || self.is_wildcard())
    }

    /// Whether it selects every database of its account (`ACCOUNT/*`), or of every account
    /// (`*`).
    pub fn is_wildcard(&self) -> bool {
        self.name == WILDCARD
    }
}

/// The name that selects every database.
const WILDCARD: &str = "*";

impl FromStr for Selector {
    type Err = Error;

    /// Parses `NAME`, `ACCOUNT/NAME` or `ACCOUNT/*`; anything else is an error of kind
    /// [`Config`](ErrorKind::Config).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (account, name) = match s.split_once('/') {
            Some((account, name)) => (Some(account.to_owned()), name),
            None => (None, s),
        };
        if name.is_empty() || name.contains('/') || account.as_deref() == Some("") {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{s:?} is not a database selector: write NAME, ACCOUNT/NAME or ACCOUNT/* (every database of the account)"
                ),
            ));
        }
        Ok(Self {
            account,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(account) => write!(f, "{account}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() {
        fn check(input: &str, expected: Option<(Option<&str>, &str)>) {
            let got = input.parse::<Selector>().ok();
            let got = got
                .as_ref()
                .map(|s| (s.account.as_deref(), s.name.as_str()));
            assert_eq!(got, expected, "{input:?}");
        }
        check("ops-db", Some((None, "ops-db")));
        check("ucca/ops-db", Some((Some("ucca"), "ops-db")));
        check("", None);
        check("/ops-db", None);
        check("ucca/", None);
        check("a/b/c", None);
        check("ucca/*", Some((Some("ucca"), "*")));
    }

    #[test]
    fn an_account_wildcard_selects_the_account() {
        let all: Selector = "ucca/*".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(all.matches("ucca", "ops-db") && all.matches("ucca", "x"));
        assert!(!all.matches("rtopacks", "ops-db"));
        assert_eq!(all.to_string(), "ucca/*");
        let one: Selector = "ucca/ops-db".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(!one.is_wildcard() && !one.matches("ucca", "x"));
    }
}
