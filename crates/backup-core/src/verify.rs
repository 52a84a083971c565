//! Verification (feature `sqlite`): prove a backup by restoring it. For each selected
//! database, the newest complete backup (or the one of a given date) is read back from the
//! sink, its size and SHA-256 compared with the manifest, and it is restored into a scratch
//! SQLite file where `PRAGMA integrity_check` and `PRAGMA foreign_key_check` run and every
//! table's rows are counted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compression::Compression;
use crate::engine::Engine;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::plan::{self, Selector};
use crate::restore;
use crate::run::error_chain;

/// What to verify.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The backup date to verify; `None` takes each database's newest complete backup.
    pub date: Option<NaiveDate>,
    /// Databases to verify; empty means all configured ones.
    pub only: Vec<Selector>,
    /// Where scratch databases are restored (the caller's temporary directory; the library
    /// reads no environment). Each is deleted after its checks.
    pub scratch_dir: PathBuf,
}

impl VerifyOptions {
    /// Verifies every configured database's newest backup, restoring under `scratch_dir`.
    pub fn new(scratch_dir: impl Into<PathBuf>) -> Self {
        Self {
            date: None,
            only: Vec::new(),
            scratch_dir: scratch_dir.into(),
        }
    }
}

/// One database's verification.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Verification {
    /// The account's configured name.
    pub account: String,
    /// The database name.
    pub database: String,
    /// The verified backup's date (null when there is none).
    pub date: Option<NaiveDate>,
    /// The dump's key.
    pub key: Option<String>,
    /// True when every check passed.
    pub ok: bool,
    /// Every problem found; empty when `ok`.
    pub problems: Vec<String>,
    /// Rows per table of the restored database.
    pub tables: BTreeMap<String, u64>,
    /// Statements the restore executed.
    pub statements: u64,
}

impl Engine {
    /// Verifies the selected databases' backups. Never exports anything.
    pub async fn verify(&self, options: &VerifyOptions) -> Result<Vec<Verification>, Error> {
        let targets = plan::select(self.config(), &options.only).map_err(Error::Selection)?;
        let mut results = Vec::new();
        for target in &targets {
            let account = target.account;
            let mut v = Verification {
                account: account.name.clone(),
                database: target.entry.name.clone(),
                date: None,
                key: None,
                ok: false,
                problems: Vec::new(),
                tables: BTreeMap::new(),
                statements: 0,
            };
            let found = self
                .find_backups(account, &[target.entry.name.as_str()])
                .await;
            let manifest = found.map(|all| {
                all.into_iter()
                    .filter(|f| options.date.is_none_or(|d| f.date == d))
                    .filter_map(|f| f.complete)
                    .max_by_key(|m| m.date)
            });
            match manifest {
                Ok(Some(manifest)) => {
                    self.verify_one(&manifest, &options.scratch_dir, &mut v)
                        .await;
                }
                Ok(None) => v.problems.push(match options.date {
                    Some(d) => format!(
                        "no complete backup dated {d}; `d1-backup list` shows what there is"
                    ),
                    None => "no complete backup; run `d1-backup run` first".to_owned(),
                }),
                Err(error) => v.problems.push(error),
            }
            v.ok = v.problems.is_empty();
            results.push(v);
        }
        Ok(results)
    }

    async fn verify_one(
        &self,
        manifest: &Manifest,
        scratch: &std::path::Path,
        v: &mut Verification,
    ) {
        v.date = Some(manifest.date);
        v.key = Some(manifest.dump.key.clone());
        let body = match self.sink().get(&manifest.dump.key, None).await {
            Ok(body) => body,
            Err(e) => {
                return v.problems.push(format!(
                    "cannot read {}: {}",
                    manifest.dump.key,
                    error_chain(&e)
                ));
            }
        };
        // Hash the stored bytes on their way to the restore.
        let seen = Arc::new(Mutex::new((0u64, Sha256::new())));
        let tally = Arc::clone(&seen);
        let body = body
            .inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    let mut t = tally.lock().unwrap_or_else(PoisonError::into_inner);
                    t.0 += chunk.len() as u64;
                    t.1.update(chunk);
                }
            })
            .boxed();
        let reader = decoded(body, manifest.dump.compression);
        let scratch_file = scratch.join(format!(
            "d1-backup-verify-{}-{}-{}.sqlite",
            std::process::id(),
            manifest.database.name,
            manifest.date
        ));
        let path = scratch_file.clone();
        let restored = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(&path);
            let outcome = (|| {
                let conn = rusqlite::Connection::open(&path).map_err(|e| e.to_string())?;
                let stats = restore::restore_dump(std::io::BufReader::new(reader), &conn)
                    .map_err(|e| e.to_string())?;
                let problems = restore::check_database(&conn).map_err(|e| e.to_string())?;
                let tables = restore::count_rows(&conn).map_err(|e| e.to_string())?;
                Ok::<_, String>((stats, problems, tables))
            })();
            let _ = std::fs::remove_file(&path);
            outcome
        })
        .await;
        let restore_finished = matches!(restored, Ok(Ok(_)));
        let (mut bytes, mut digest) = {
            let t = seen.lock().unwrap_or_else(PoisonError::into_inner);
            (t.0, hex::encode(t.1.clone().finalize()))
        };
        if !restore_finished {
            // The restore stopped early: hash the whole object on its own.
            match self.digest(&manifest.dump.key).await {
                Ok((b, d)) => (bytes, digest) = (b, d),
                Err(e) => v.problems.push(e),
            }
        }
        match restored {
            Ok(Ok((stats, problems, tables))) => {
                v.statements = stats.statements;
                v.tables = tables;
                v.problems.extend(problems);
            }
            Ok(Err(error)) => v
                .problems
                .push(format!("the dump does not restore: {error}")),
            Err(error) => v.problems.push(format!("the restore task failed: {error}")),
        }
        if bytes != manifest.dump.bytes {
            v.problems.push(format!(
                "size mismatch: {} has {bytes} bytes, the manifest records {}",
                manifest.dump.key, manifest.dump.bytes
            ));
        } else if digest != manifest.dump.sha256 {
            v.problems.push(format!(
                "sha256 mismatch: {} hashes to {digest}, the manifest records {}; the stored dump was altered",
                manifest.dump.key, manifest.dump.sha256
            ));
        }
    }
}

impl Engine {
    /// Size and SHA-256 of a stored object, read whole.
    async fn digest(&self, key: &str) -> Result<(u64, String), String> {
        let mut body = self
            .sink()
            .get(key, None)
            .await
            .map_err(|e| format!("cannot read {key}: {}", error_chain(&e)))?;
        let (mut bytes, mut hasher) = (0u64, Sha256::new());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("cannot read {key}: {e}"))?;
            bytes += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((bytes, hex::encode(hasher.finalize())))
    }
}

/// The dump as a blocking reader, decompressed as the manifest says.
fn decoded(body: r2_sink::ByteStream, compression: Compression) -> impl std::io::Read + Send {
    use tokio_util::io::{StreamReader, SyncIoBridge};
    let reader = StreamReader::new(body);
    let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match compression {
        #[cfg(feature = "compression")]
        Compression::Zstd => Box::new(async_compression::tokio::bufread::ZstdDecoder::new(reader)),
        #[cfg(feature = "compression")]
        Compression::Gzip => Box::new(async_compression::tokio::bufread::GzipDecoder::new(reader)),
        _ => Box::new(reader),
    };
    SyncIoBridge::new(reader)
}
