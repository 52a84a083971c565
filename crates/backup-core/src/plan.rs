//! Planning: which configured databases a run covers (`--only`), and their uuids.
//!
//! Names are resolved through D1's list endpoint once per account per run, and only for
//! accounts where some selected database has no configured `id`. A database the account does
//! not have is a failure of that database alone.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use d1_export::D1Client;

use crate::config::{AccountConfig, Config, DatabaseEntry};
use crate::error::{Error, ErrorKind};
use crate::selector::Selector;

/// One database selected for a run.
#[derive(Debug, Clone)]
pub(crate) struct Target<'c> {
    pub(crate) account_index: usize,
    pub(crate) account: &'c AccountConfig,
    /// Configured, or found in the account's wrangler state directory.
    pub(crate) entry: Cow<'c, DatabaseEntry>,
}

/// Every database of every account, in configuration order: the listed ones, then those found
/// in the account's wrangler state directory (by name; a listed name wins).
pub(crate) fn all_targets(config: &Config) -> Result<Vec<Target<'_>>, Error> {
    let mut targets = Vec::new();
    for (account_index, account) in config.accounts.iter().enumerate() {
        for entry in &account.databases {
            targets.push(Target {
                account_index,
                account,
                entry: Cow::Borrowed(entry),
            });
        }
        if let Some(state) = &account.wrangler_state {
            for (name, path) in crate::wrangler::wrangler_databases(state)? {
                if !account.databases.iter().any(|db| db.name == name) {
                    let entry = DatabaseEntry::found_in_state(name, path, account);
                    targets.push(Target {
                        account_index,
                        account,
                        entry: Cow::Owned(entry),
                    });
                }
            }
        }
    }
    Ok(targets)
}

/// Selects the databases matching `only` (all when empty), in configuration order.
///
/// Every selector must match something, so a typo is an error instead of a silent no-op.
pub(crate) fn select<'c>(config: &'c Config, only: &[Selector]) -> Result<Vec<Target<'c>>, Error> {
    let all = all_targets(config)?;
    if let Some(unmatched) = only.iter().find(|sel| {
        !all.iter()
            .any(|t| sel.matches(&t.account.name, &t.entry.name))
    }) {
        let known: Vec<String> = all
            .iter()
            .map(|t| format!("{}/{}", t.account.name, t.entry.name))
            .collect();
        return Err(Error::new(
            ErrorKind::NotConfigured,
            format!(
                "the selector {unmatched} matches no configured database; configured: {}",
                known.join(", ")
            ),
        ));
    }
    Ok(all
        .into_iter()
        .filter(|t| {
            only.is_empty()
                || only
                    .iter()
                    .any(|sel| sel.matches(&t.account.name, &t.entry.name))
        })
        .collect())
}

/// The selected database names of each account, by account index.
pub(crate) fn names_by_account<'t>(targets: &'t [Target<'_>]) -> BTreeMap<usize, Vec<&'t str>> {
    let mut names: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for t in targets {
        names
            .entry(t.account_index)
            .or_default()
            .push(&t.entry.name);
    }
    names
}

/// The uuid of each selected database, or why it has none.
pub(crate) type Resolved = HashMap<(usize, String), Result<String, Error>>;

/// Resolves names to uuids: configured ids as given, others through one list call per account.
/// Local databases need no id (they resolve to an empty one).
pub(crate) async fn resolve(targets: &[Target<'_>], clients: &[Option<D1Client>]) -> Resolved {
    let mut resolved = Resolved::new();
    let mut listings: HashMap<usize, Result<HashMap<String, String>, Error>> = HashMap::new();
    for target in targets {
        let slot = (target.account_index, target.entry.name.clone());
        if target.entry.sqlite.is_some() {
            resolved.insert(slot, Ok(String::new()));
            continue;
        }
        if let Some(id) = &target.entry.id {
            resolved.insert(slot, Ok(id.clone()));
            continue;
        }
        let Some(client) = &clients[target.account_index] else {
            resolved.insert(
                slot,
                Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "account {} has no API token configured",
                        target.account.name
                    ),
                )),
            );
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) =
            listings.entry(target.account_index)
        {
            slot.insert(list(target.account, client).await);
        }
        let outcome = match &listings[&target.account_index] {
            Ok(names) => names.get(&target.entry.name).cloned().ok_or_else(|| {
                Error::new(ErrorKind::NotFound, format!(
                    "database {:?} does not exist in account {} ({}); check the name against the databases its token can list",
                    target.entry.name, target.account.name, target.account.account_id_or_empty()
                ))
            }),
            Err(error) => Err(error.clone()),
        };
        resolved.insert(slot, outcome);
    }
    resolved
}

async fn list(
    account: &AccountConfig,
    client: &D1Client,
) -> Result<HashMap<String, String>, Error> {
    match client.list_databases(account.account_id_or_empty()).await {
        Ok(databases) => Ok(databases.into_iter().map(|d| (d.name, d.uuid)).collect()),
        Err(error) => Err(Error::from(error).context(format_args!(
            "cannot list the databases of account {} ({})",
            account.name,
            account.account_id_or_empty(),
        ))),
    }
}
