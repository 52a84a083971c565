//! Read-only questions an operator asks: what backups are there, which databases can each
//! token see, and does the configuration work. None of them starts an export (an export
//! blocks its database).

use bytes::Bytes;
use chrono::NaiveDate;
use serde::Serialize;

use crate::compression::Compression;
use crate::config::ExportMode;
use crate::engine::Engine;
use crate::error::error_chain;
use crate::error::{Error, ErrorKind};
use crate::locks;
use crate::plan;
use crate::selector::Selector;

/// One backup found in the sink.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupListing {
    /// The account's configured name.
    pub account: String,
    /// The database name.
    pub database: String,
    /// The backup's date.
    pub date: NaiveDate,
    /// The dump's key (the one the manifest names when complete), or null if there is none.
    pub key: Option<String>,
    /// The dump's size in bytes, when there is a dump.
    pub bytes: Option<u64>,
    /// Whether the backup is complete: a valid manifest whose dump exists with its size.
    pub complete: bool,
    /// How the dump is compressed, when there is a dump.
    pub compression: Option<Compression>,
    /// Whether the dump is encrypted with age (its key ends in `.age`), when there is a
    /// dump. Decided from the key: listing needs no identity.
    pub encrypted: Option<bool>,
    /// The SHA-256 the manifest records, when complete.
    pub sha256: Option<String>,
    /// What the last `verify` of this backup found (true: it restored and checked out),
    /// when it was verified; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// The D1 databases one account's token can see.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AccountDatabases {
    /// The account's configured name.
    pub account: String,
    /// The Cloudflare account id (null for local-only accounts).
    pub account_id: Option<String>,
    /// Why the list could not be read; null when it could.
    pub error: Option<String>,
    /// Every database the token can see, by name.
    pub databases: Vec<RemoteDatabase>,
    /// Configured databases the token cannot see.
    pub missing: Vec<String>,
}

/// A database D1 lists.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RemoteDatabase {
    /// The name.
    pub name: String,
    /// The uuid.
    pub uuid: String,
    /// The database file's size in bytes, when D1 reported it.
    pub file_size: Option<u64>,
    /// Whether the configuration backs it up.
    pub configured: bool,
}

/// One check of `config check`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it passed.
    pub ok: bool,
    /// True for a check that passed with something the operator should know (such as a
    /// bucket lock that retention cannot prune under); `ok` stays true.
    pub warning: bool,
    /// What was found, or what is wrong and how to fix it.
    pub detail: String,
}

/// What `list` reads beyond the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ListDetail {
    /// The listing, and only the objects it cannot decide from: a manifest where the
    /// listing cannot tell whether the backup is complete, and the verification records
    /// there are (with their manifests, to check that a record is about the same dump).
    /// `sha256` is filled only where a manifest was read.
    #[default]
    Listing,
    /// Also every complete backup's manifest, so `sha256` is always filled (one small read
    /// per backup).
    Manifests,
}

/// Every backup of the selected databases, complete or not, by account, database, date.
pub(crate) async fn list_backups(
    engine: &Engine,
    only: &[Selector],
    detail: ListDetail,
) -> Result<Vec<BackupListing>, Error> {
    let targets = plan::select(engine.config(), only)?;
    let wanted = plan::names_by_account(&targets);
    let sink = engine.sink().as_ref();
    let mut listings = Vec::new();
    for (index, databases) in wanted {
        let account = &engine.config().accounts[index];
        let mut found = crate::catalog::find_backups(engine, account, &databases).await?;
        if detail == ListDetail::Manifests {
            crate::catalog::read_manifests(sink, &account.prefix, &mut found).await?;
        }
        for mut f in found {
            let verified = crate::catalog::verification(sink, &account.prefix, &mut f).await?;
            listings.push(listing(&account.name, &f, verified));
        }
    }
    Ok(listings)
}

fn listing(
    account: &str,
    f: &crate::catalog::Found,
    verified: Option<(bool, bool)>,
) -> BackupListing {
    let dump = f.dump();
    BackupListing {
        account: account.to_owned(),
        database: f.database.clone(),
        date: f.date,
        key: dump.map(|o| o.key.clone()),
        bytes: dump.map(|o| o.size),
        complete: f.complete.is_some(),
        compression: dump.and_then(|o| o.kind.compression()),
        encrypted: dump.map(|o| o.kind.is_encrypted()),
        sha256: f
            .manifest
            .as_ref()
            .filter(|_| f.complete.is_some())
            .map(|m| m.dump.sha256.clone()),
        verified: verified.map(|(ok, _)| ok),
    }
}

/// The D1 databases each account's token can see, marking the configured ones, and the
/// configured ones it cannot see. Sizes come from one info call per database.
pub(crate) async fn remote_databases(engine: &Engine) -> Vec<AccountDatabases> {
    let mut out = Vec::new();
    for (i, account) in engine.config().accounts.iter().enumerate() {
        let Some(client) = &engine.clients()[i] else {
            continue;
        };
        let account_id = account.account_id_or_empty();
        let mut entry = AccountDatabases {
            account: account.name.clone(),
            account_id: account.account_id.clone(),
            error: None,
            databases: Vec::new(),
            missing: Vec::new(),
        };
        match client.list_databases(account_id).await {
            Ok(list) => {
                for db in list {
                    let file_size = client
                        .database_info(account_id, &db.uuid)
                        .await
                        .ok()
                        .and_then(|info| info.file_size);
                    let configured = account
                        .databases
                        .iter()
                        .any(|c| c.name == db.name || c.id.as_deref() == Some(&db.uuid));
                    entry.databases.push(RemoteDatabase {
                        name: db.name,
                        uuid: db.uuid,
                        file_size,
                        configured,
                    });
                }
                entry.missing = account
                    .databases
                    .iter()
                    .filter(|c| c.sqlite.is_none())
                    .filter(|c| {
                        !entry
                            .databases
                            .iter()
                            .any(|d| d.name == c.name || c.id.as_deref() == Some(&d.uuid))
                    })
                    .map(|c| c.name.clone())
                    .collect();
            }
            Err(e) => entry.error = Some(error_chain(&e)),
        }
        out.push(entry);
    }
    out
}

/// Checks, without exporting anything, that each token can list its databases, that each
/// configured database exists (local files included), and that the sink is reachable and
/// writable (a probe object is put, read back and deleted).
pub(crate) async fn check(engine: &Engine) -> Vec<Check> {
    let mut checks = Vec::new();
    // D1's reported sizes, for what `export = "auto"` would choose.
    let mut sizes = std::collections::HashMap::new();
    for remote in engine.remote_databases().await {
        for db in &remote.databases {
            sizes.insert((remote.account.clone(), db.name.clone()), db.file_size);
        }
        let what = format!("account {}: token lists databases", remote.account);
        if let Some(error) = &remote.error {
            checks.push(Check {
                what,
                ok: false,
                warning: false,
                detail: format!("{error}; check the token's D1 permission for this account"),
            });
            continue;
        }
        checks.push(Check {
            what,
            ok: true,
            warning: false,
            detail: format!("{} database(s) visible", remote.databases.len()),
        });
        for name in &remote.missing {
            checks.push(Check {
                what: format!("database {}/{name}", remote.account),
                ok: false,
                warning: false,
                detail: "configured but not found: check its name against the databases the token can list"
                    .to_owned(),
            });
        }
    }
    match plan::all_targets(engine.config()) {
        Ok(targets) => {
            for t in targets.iter().filter(|t| t.entry.sqlite.is_none()) {
                let size = sizes
                    .get(&(t.account.name.clone(), t.entry.name.clone()))
                    .copied()
                    .flatten();
                checks.push(Check {
                    what: format!("database {}/{}: export mode", t.account.name, t.entry.name),
                    ok: true,
                    warning: false,
                    detail: export_mode_detail(&engine.config().run, t.entry.export, size),
                });
            }
            for t in targets.iter().filter(|t| t.entry.sqlite.is_some()) {
                let path = t
                    .entry
                    .sqlite
                    .as_deref()
                    .unwrap_or_else(|| std::path::Path::new(""));
                let ok = path.is_file();
                checks.push(Check {
                    what: format!("database {}/{}", t.account.name, t.entry.name),
                    ok,
                    warning: false,
                    detail: if ok {
                        format!("local file {}", path.display())
                    } else {
                        format!("{} is not a readable file", path.display())
                    },
                });
            }
        }
        Err(error) => checks.push(Check {
            what: "local databases".to_owned(),
            ok: false,
            warning: false,
            detail: error.chain(),
        }),
    }
    checks.extend(encryption_check(engine));
    checks.extend(lock_checks(engine).await);
    checks.push(probe_sink(engine).await);
    checks
}

/// `[encryption]`: the recipients, and whether the identity (when one is given) is one of
/// theirs. Backing up needs no identity, so its absence is not a failure.
fn encryption_check(engine: &Engine) -> Option<Check> {
    let recipients = engine.recipients()?;
    let keys = recipients.public_keys();
    let to = format!("dumps encrypted with age to {}", keys.join(", "));
    let has_identity = engine.has_identity()
        || engine
            .config()
            .encryption
            .as_ref()
            .is_some_and(|e| e.identity_file.is_some());
    if !has_identity {
        return Some(Check {
            what: "encryption".to_owned(),
            ok: true,
            warning: false,
            detail: format!(
                "{to}; no identity configured (only verify and restore need one, with the identity file)"
            ),
        });
    }
    let identity = engine
        .identity("a backup")
        .and_then(|i| i.check_can_decrypt(&recipients.manifest()));
    Some(match identity {
        Ok(()) => Check {
            what: "encryption".to_owned(),
            ok: true,
            warning: false,
            detail: format!("{to}; the identity given decrypts them"),
        },
        Err(error) => Check {
            what: "encryption".to_owned(),
            ok: false,
            warning: false,
            detail: format!("{to}; {}", error.chain()),
        },
    })
}

/// `[sink] lock_token_env`: for each account's folder, the enabled bucket lock rules that
/// cover it, their length, and a warning where retention would try to delete what they lock.
/// A missing or refused token fails one check naming its variable.
async fn lock_checks(engine: &Engine) -> Vec<Check> {
    let Some(source) = engine.lock_source() else {
        return Vec::new();
    };
    let rules = match source.read().await {
        Ok(rules) => rules,
        Err(error) => {
            return vec![Check {
                what: format!("bucket {}: lock rules", source.bucket),
                ok: false,
                warning: false,
                detail: error.chain(),
            }];
        }
    };
    let now = engine.clock().now();
    let retention = &engine.config().retention;
    let mut checks = Vec::new();
    for account in &engine.config().accounts {
        let what = format!(
            "account {}: bucket lock on {}/",
            account.name, account.prefix
        );
        let mut details = Vec::new();
        let mut warnings = Vec::new();
        for rule in &rules {
            let coverage = match locks::covers(rule, &account.prefix) {
                locks::Coverage::None => continue,
                locks::Coverage::Whole => "covers it",
                locks::Coverage::Part => "covers part of it",
            };
            details.push(format!(
                "rule {} (prefix \"{}\") {coverage}: {}",
                rule.id,
                rule.prefix,
                locks::length(rule.condition)
            ));
            if let Some(conflict) = locks::conflict(rule.condition, retention, now) {
                warnings.push(format!("rule {}: {conflict}", rule.id));
            }
        }
        let detail = if details.is_empty() {
            "no enabled lock rule covers it: anyone who can write the bucket can delete its backups"
                .to_owned()
        } else {
            details.extend(warnings.iter().cloned());
            details.join("; ")
        };
        checks.push(Check {
            what,
            ok: true,
            warning: !warnings.is_empty(),
            detail,
        });
    }
    checks
}

/// How a D1 database will be read, in words: its mode, where it comes from, what it costs.
fn export_mode_detail(
    run: &crate::config::RunConfig,
    entry: Option<ExportMode>,
    size: Option<u64>,
) -> String {
    let mode = entry.unwrap_or(run.export);
    let from = if entry.is_some() {
        "the database's export"
    } else {
        "[run] export"
    };
    let what = match mode {
        ExportMode::D1 => {
            "D1's export endpoint: byte-identical to D1's dump (with its losses); the database serves no queries while it runs".to_owned()
        }
        ExportMode::Online => {
            "the query API, page by page with exact values; no D1 export, the database keeps serving".to_owned()
        }
        ExportMode::Auto => {
            let threshold = run.online_above_mib.saturating_mul(1024 * 1024);
            let choice = match size {
                Some(size) if size > threshold => "online at its current size",
                Some(_) => "D1's export at its current size",
                None => "decided at each run from its size",
            };
            format!(
                "D1's export up to [run] online_above_mib = {} MiB, online above: {choice}",
                run.online_above_mib
            )
        }
    };
    let snapshot = if mode == ExportMode::D1 || !run.require_snapshot {
        ""
    } else {
        "; fails rather than keep a dump read while the database changed ([run] require_snapshot)"
    };
    format!("{mode} ({from}): {what}{snapshot}")
}

async fn probe_sink(engine: &Engine) -> Check {
    let sink = engine.sink().as_ref();
    let what = format!("sink {} is writable", sink.describe());
    let key = format!(
        "_d1-backup-probe/{}.txt",
        engine.owner().replace([' ', '#', '/'], "-")
    );
    let body = Bytes::from_static(b"d1-backup config check probe; safe to delete\n");
    let steps = async {
        let put = futures::stream::iter([Ok(body.clone())]);
        sink.put_stream(&key, Box::pin(put), r2_sink::PutOptions::default())
            .await
            .map_err(|e| Error::from(e).context("put failed"))?;
        let head = sink
            .head(&key)
            .await
            .map_err(|e| Error::from(e).context("head failed"))?;
        if head.map(|h| h.size) != Some(body.len() as u64) {
            return Err(Error::new(
                ErrorKind::Storage,
                "the probe object did not read back with its size",
            ));
        }
        sink.delete_many(std::slice::from_ref(&key))
            .await
            .map_err(|e| Error::from(e).context("delete failed"))
    };
    match steps.await {
        Ok(()) => Check {
            what,
            ok: true,
            warning: false,
            detail: "put, head and delete of a probe object succeeded".to_owned(),
        },
        Err(error) => Check {
            what,
            ok: false,
            warning: false,
            detail: format!(
                "{}; check the bucket, endpoint and credentials",
                error.chain()
            ),
        },
    }
}
