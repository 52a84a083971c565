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
        let known = some_of(
            all.iter()
                .map(|t| format!("{}/{}", t.account.name, t.entry.name)),
        );
        let accounts = some_of(config.accounts.iter().map(|a| format!("{}/*", a.name)));
        return Err(Error::new(
            ErrorKind::NotConfigured,
            format!(
                "the selector {unmatched} matches no configured database; configured: {known} (whole accounts: {accounts})"
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

/// API calls one database's backup through D1's export takes: the schema query (for virtual
/// tables), the export's start and its poll (more polls for a large database); the download
/// from the signed URL is R2's, not the API's. 3,000 databases took 3.0 per database.
const CALLS_PER_EXPORT: usize = 3;

/// D1's list endpoint's page size as the client asks it.
const LIST_PAGE: usize = 100;

/// Logs (at `info`, so `run -v` shows it) what the run is about to do: how many databases in
/// which accounts, the API calls expected per token, and the time that takes at each token's
/// budget.
pub(crate) fn log_plan(engine: &crate::engine::Engine, targets: &[Target<'_>]) {
    let config = engine.config();
    let shard = engine
        .shard()
        .map(|s| format!(" (shard {s})"))
        .unwrap_or_default();
    // Per account: its remote databases, and whether any needs the list endpoint.
    let mut accounts: BTreeMap<usize, (usize, bool)> = BTreeMap::new();
    let mut local = 0;
    for t in targets {
        let account = accounts.entry(t.account_index).or_default();
        if t.entry.sqlite.is_some() {
            local += 1;
        } else {
            account.0 += 1;
            account.1 |= t.entry.id.is_none();
        }
    }
    tracing::info!(
        "plan{shard}: {} database(s) in {} account(s), {local} of them local",
        thousands(targets.len()),
        accounts.len()
    );
    let mut by_token: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (index, (remote, unresolved)) in accounts {
        let account = &config.accounts[index];
        let Some(token) = account.token_env.as_deref().filter(|_| remote > 0) else {
            continue;
        };
        let listing = if unresolved {
            account.databases.len().max(remote).div_ceil(LIST_PAGE)
        } else {
            0
        };
        let entry = by_token.entry(token).or_default();
        entry.0 += remote;
        entry.1 += remote * CALLS_PER_EXPORT + listing;
    }
    let budget = crate::engine::request_budget(config, engine.shard()).max(1) as usize;
    for (token, (databases, calls)) in by_token {
        // The client paces requests evenly over the five minutes (bursts of 10 only).
        let minutes = (calls * 5).div_ceil(budget);
        tracing::info!(
            "plan: token {token}: {} database(s), about {} API calls ({CALLS_PER_EXPORT} per export); at {budget} per 5 minutes that takes about {minutes} minute(s) or more",
            thousands(databases),
            thousands(calls),
        );
    }
}

/// The most names a message lists before it says how many more there are.
const LISTED: usize = 10;

/// `a, b, c` — or, for long lists, the first [`LISTED`] and `… and 2,990 more`.
pub(crate) fn some_of(names: impl IntoIterator<Item = String>) -> String {
    let mut shown = Vec::with_capacity(LISTED);
    let mut more = 0usize;
    for name in names {
        if shown.len() < LISTED {
            shown.push(name);
        } else {
            more += 1;
        }
    }
    let text = shown.join(", ");
    if more == 0 {
        return text;
    }
    format!("{text} … and {} more", thousands(more))
}

/// `2990` as `2,990`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut_with_a_count() {
        assert_eq!(some_of(["a".to_owned(), "b".to_owned()]), "a, b");
        let many = some_of((0..3000).map(|i| format!("db-{i}")));
        assert!(many.starts_with("db-0, db-1,"), "{many}");
        assert!(many.ends_with("db-9 … and 2,990 more"), "{many}");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
