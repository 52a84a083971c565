//! Manifests: the versioned JSON record written beside each dump, after the dump is complete.
//!
//! A dump without its manifest is not a backup: listing, verification and retention treat it
//! as incomplete. The manifest is a persisted format (public API): fields are only added, and
//! `version` changes when a reader would have to behave differently.
//!
//! Fields added after the first release are optional: they default when absent and are
//! left out when at their default, so older manifests still read and older readers (which
//! ignore unknown fields) still read newer ones. `dump.consistency`, `dump.virtual_tables`,
//! `dump.export`, `dump.export_reason` and `database.bookmark_after` are such fields.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::compression::Compression;
use crate::error::{Error, ErrorKind};

/// The newest manifest format version this crate reads and writes: 2 marks a backup whose
/// dump is encrypted (`dump.encryption`), which a release before encryption would misread
/// as a plain dump; it refuses version 2 as newer instead. Manifests of plain dumps are
/// still written as [`PLAIN_MANIFEST_VERSION`], so older releases keep reading them.
pub const MANIFEST_VERSION: u32 = 2;

/// The version of a manifest whose dump is not encrypted (the first format).
pub const PLAIN_MANIFEST_VERSION: u32 = 1;

/// The `kind` field every manifest carries, so a stray JSON object is never taken for one.
pub const MANIFEST_KIND: &str = "d1-backup-manifest";

/// The record of one complete backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// Always [`MANIFEST_KIND`].
    pub kind: String,
    /// The format version ([`MANIFEST_VERSION`] when written by this crate).
    pub version: u32,
    /// The tool that wrote it, e.g. `d1-backup 0.1.0`.
    pub tool: String,
    /// The account's configured name.
    pub account: String,
    /// The Cloudflare account id the database belongs to (null for local-only accounts).
    pub account_id: Option<String>,
    /// The database.
    pub database: ManifestDatabase,
    /// The date folder of the backup.
    pub date: NaiveDate,
    /// When the backup started.
    pub started_at: DateTime<Utc>,
    /// When the dump object was complete.
    pub finished_at: DateTime<Utc>,
    /// The dump object.
    pub dump: ManifestDump,
}

/// The database a manifest describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestDatabase {
    /// The database name.
    pub name: String,
    /// The D1 uuid (null for a local SQLite file).
    pub uuid: Option<String>,
    /// The D1 bookmark the export was taken at (null for a local SQLite file).
    pub bookmark: Option<String>,
    /// The local SQLite file the dump was made from (null for D1 exports).
    pub sqlite: Option<String>,
    /// An online read's bookmark after its last page, when the database moved while it was
    /// read (`dump.consistency = "online"`); `bookmark` is then the one before its first
    /// page. Left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bookmark_after: Option<String>,
}

/// The dump object a manifest vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestDump {
    /// The object key.
    pub key: String,
    /// Bytes stored (compressed, when compressed).
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// How the stored bytes are compressed.
    pub compression: Compression,
    /// Bytes of the SQL text before compression.
    pub sql_bytes: u64,
    /// Lower-case hex SHA-256 of the SQL text before compression.
    pub sql_sha256: String,
    /// Whether the dump is one snapshot of the database or was read table by table (a D1
    /// database with virtual tables). Left out when `snapshot`.
    #[serde(default, skip_serializing_if = "DumpConsistency::is_snapshot")]
    pub consistency: DumpConsistency,
    /// The virtual tables (FTS5, …) the dump recreates, with their content, written by
    /// d1-backup rather than by D1's export: appended after the per-table export of a D1
    /// database, or written by the local SQLite dumper. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_tables: Vec<String>,
    /// How the dump was read from D1: `d1` (D1's export endpoint) or `online` (the query
    /// API, page by page), as `[run] export` chose; `auto` choices are recorded as the mode
    /// they chose, with `auto` in [`export_reason`](Self::export_reason). Left out for local
    /// SQLite files and by releases before the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
    /// Why `export = "auto"` chose what it chose. Left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_reason: Option<String>,
    /// How the stored bytes are encrypted (after compression), when `[encryption]` is set:
    /// `bytes`/`sha256` are then those of the encrypted object, `sql_bytes`/`sql_sha256`
    /// those of the SQL text. Left out for plain dumps (and the manifest's version is 2 when
    /// present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ManifestEncryption>,
}

/// The encryption of a dump (`dump.encryption` in the manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestEncryption {
    /// The format: `age` (<https://age-encryption.org/v1>, X25519 recipients); the object
    /// decrypts with `age --decrypt -i key.txt`.
    pub format: String,
    /// The public keys (`age1…`) the dump was encrypted to: whoever holds one of their
    /// identities can read it.
    pub recipients: Vec<String>,
}

/// How consistent a dump is (`dump.consistency` in the manifest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DumpConsistency {
    /// One point in time: a whole-database D1 export (at `database.bookmark`) or a local
    /// SQLite file read in one transaction. The default, and what manifests without the
    /// field mean.
    #[default]
    Snapshot,
    /// Read table by table: a D1 database with virtual tables, which D1 refuses to export
    /// whole. Its real tables come from one export (at `database.bookmark`); the virtual
    /// tables' content, `sqlite_sequence`, indexes, triggers and views were read through the
    /// query API just after it, each query at its own moment. A write between them can make
    /// the parts disagree (a row missing from a full-text index, say).
    PerTable,
    /// Read online through the query API, page by page, while the database changed: its
    /// bookmark before the first page (`database.bookmark`) differs from the one after the
    /// last (`database.bookmark_after`). Every row is exact as it was when its page was read,
    /// but rows of different pages may be from different moments.
    Online,
    /// A value written by a newer d1-backup; read as "not known to be a snapshot".
    #[serde(other)]
    Unknown,
}

impl DumpConsistency {
    /// The JSON spelling: `snapshot`, `per-table`, `online` (`unknown` for a newer writer's value).
    pub fn as_str(self) -> &'static str {
        match self {
            DumpConsistency::Snapshot => "snapshot",
            DumpConsistency::PerTable => "per-table",
            DumpConsistency::Online => "online",
            DumpConsistency::Unknown => "unknown",
        }
    }

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference.
    fn is_snapshot(&self) -> bool {
        *self == DumpConsistency::Snapshot
    }
}

impl Manifest {
    /// Parses a manifest, refusing objects that are not manifests or come from a newer format.
    ///
    /// Every refusal is an [`Error`] of kind [`ErrorKind::InvalidDump`]: the stored object
    /// is not a manifest this crate can vouch for (not JSON of the right shape, another
    /// `kind`, or a `version` newer than [`MANIFEST_VERSION`], for which the message says to
    /// upgrade). Its backup counts as incomplete.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidDump,
                format!("not a d1-backup manifest: {e}"),
            )
            .with_source(e)
        })?;
        if manifest.kind != MANIFEST_KIND {
            return Err(Error::new(
                ErrorKind::InvalidDump,
                format!("kind is {:?}, not {MANIFEST_KIND:?}", manifest.kind),
            ));
        }
        if manifest.version > MANIFEST_VERSION {
            return Err(Error::new(
                ErrorKind::InvalidDump,
                format!(
                    "manifest version {} is newer than this tool understands ({MANIFEST_VERSION}); upgrade d1-backup",
                    manifest.version
                ),
            ));
        }
        Ok(manifest)
    }

    /// The JSON text stored in the sink (pretty, so operators can read it in a console).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings, numbers and dates cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// The tool name and version written into manifests.
pub(crate) fn tool() -> String {
    concat!("d1-backup ", env!("CARGO_PKG_VERSION")).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let at = DateTime::parse_from_rfc3339("2026-11-30T03:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        Manifest {
            kind: MANIFEST_KIND.to_owned(),
            version: PLAIN_MANIFEST_VERSION,
            tool: "d1-backup 0.1.0".to_owned(),
            account: "ucca".to_owned(),
            account_id: Some("e5a9830215a8d88961dc6c80a8c7442a".to_owned()),
            database: ManifestDatabase {
                name: "ops-db".to_owned(),
                uuid: Some("4b1e2f6a-9c1d-4e8f-a2b3-c4d5e6f7a8b9".to_owned()),
                bookmark: Some("00000001-00000002-00004f8a-0123".to_owned()),
                sqlite: None,
                bookmark_after: None,
            },
            date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default(),
            started_at: at,
            finished_at: at,
            dump: ManifestDump {
                key: "d1/2026-11-30/ops-db.sql".to_owned(),
                bytes: 382_976,
                sha256: "ab".repeat(32),
                compression: Compression::None,
                sql_bytes: 382_976,
                sql_sha256: "ab".repeat(32),
                consistency: DumpConsistency::Snapshot,
                virtual_tables: Vec::new(),
                export: None,
                export_reason: None,
                encryption: None,
            },
        }
    }

    /// The persisted format is public: this snapshot changes only on purpose.
    #[test]
    fn snapshot_of_the_format() {
        let json: serde_json::Value =
            serde_json::from_slice(&sample().to_json()).unwrap_or_default();
        let expected = serde_json::json!({
            "kind": "d1-backup-manifest", "version": 1, "tool": "d1-backup 0.1.0",
            "account": "ucca", "account_id": "e5a9830215a8d88961dc6c80a8c7442a",
            "database": {"name": "ops-db", "uuid": "4b1e2f6a-9c1d-4e8f-a2b3-c4d5e6f7a8b9",
                         "bookmark": "00000001-00000002-00004f8a-0123", "sqlite": null},
            "date": "2026-11-30",
            "started_at": "2026-11-30T03:00:00Z", "finished_at": "2026-11-30T03:00:00Z",
            "dump": {"key": "d1/2026-11-30/ops-db.sql", "bytes": 382_976, "sha256": "ab".repeat(32),
                     "compression": "none", "sql_bytes": 382_976, "sql_sha256": "ab".repeat(32)}
        });
        assert_eq!(json, expected);
    }

    /// A per-table dump says so; a snapshot leaves both fields out (the snapshot above), so
    /// manifests written before they existed read as snapshots.
    #[test]
    fn per_table_dumps_name_their_virtual_tables() {
        let mut manifest = sample();
        manifest.dump.consistency = DumpConsistency::PerTable;
        manifest.dump.virtual_tables = vec!["articles_fts".to_owned(), "notes_fts".to_owned()];
        let json: serde_json::Value =
            serde_json::from_slice(&manifest.to_json()).unwrap_or_default();
        assert_eq!(json["dump"]["consistency"], "per-table");
        assert_eq!(
            json["dump"]["virtual_tables"],
            serde_json::json!(["articles_fts", "notes_fts"])
        );
        assert_eq!(
            Manifest::from_json(&manifest.to_json()).ok(),
            Some(manifest.clone())
        );
        let mut newer = json;
        newer["dump"]["consistency"] = "per-shard".into();
        let read = Manifest::from_json(newer.to_string().as_bytes()).map(|m| m.dump.consistency);
        assert_eq!(read.ok(), Some(DumpConsistency::Unknown));
    }

    /// An online read that saw the database move says so, with both bookmarks and the mode.
    #[test]
    fn online_dumps_record_mode_and_both_bookmarks() {
        let mut manifest = sample();
        manifest.dump.consistency = DumpConsistency::Online;
        manifest.dump.export = Some("online".to_owned());
        manifest.database.bookmark_after = Some("00000002-00000002-00004f8a-0123".to_owned());
        let json: serde_json::Value =
            serde_json::from_slice(&manifest.to_json()).unwrap_or_default();
        assert_eq!(json["dump"]["consistency"], "online");
        assert_eq!(json["dump"]["export"], "online");
        assert_eq!(
            json["database"]["bookmark_after"],
            "00000002-00000002-00004f8a-0123"
        );
        assert_eq!(
            Manifest::from_json(&manifest.to_json()).ok(),
            Some(manifest)
        );
    }

    fn encrypted() -> Manifest {
        let mut manifest = sample();
        manifest.version = MANIFEST_VERSION;
        manifest.dump.key = "d1/2026-11-30/ops-db.sql.zst.age".to_owned();
        manifest.dump.compression = Compression::Zstd;
        manifest.dump.bytes = 41_203;
        manifest.dump.sha256 = "cd".repeat(32);
        manifest.dump.encryption = Some(ManifestEncryption {
            format: "age".to_owned(),
            recipients: vec![
                "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".to_owned(),
            ],
        });
        manifest
    }

    /// An encrypted dump's manifest is version 2 (older releases refuse it rather than
    /// misread it), records format and recipients, and reads back; plain ones stay version 1.
    #[test]
    fn encrypted_dumps_record_format_and_recipients() {
        let manifest = encrypted();
        let json: serde_json::Value =
            serde_json::from_slice(&manifest.to_json()).unwrap_or_default();
        assert_eq!(json["version"], 2);
        assert_eq!(json["dump"]["encryption"]["format"], "age");
        assert_eq!(
            Manifest::from_json(&manifest.to_json()).ok(),
            Some(manifest)
        );
        let plain: serde_json::Value =
            serde_json::from_slice(&sample().to_json()).unwrap_or_default();
        assert!(plain["dump"].get("encryption").is_none());
    }

    #[test]
    fn round_trips_and_refuses_strangers() {
        let manifest = sample();
        assert_eq!(
            Manifest::from_json(&manifest.to_json()).ok(),
            Some(manifest.clone())
        );
        let kind = |bytes: &[u8]| Manifest::from_json(bytes).err().map(|e| e.kind());
        assert_eq!(kind(b"{}"), Some(ErrorKind::InvalidDump));
        let mut stranger = manifest.clone();
        stranger.kind = "d1-backup-heartbeat".to_owned();
        assert_eq!(kind(&stranger.to_json()), Some(ErrorKind::InvalidDump));
        let mut newer = manifest;
        newer.version = MANIFEST_VERSION + 1;
        let error = Manifest::from_json(&newer.to_json()).err();
        assert_eq!(
            error.as_ref().map(Error::kind),
            Some(ErrorKind::InvalidDump)
        );
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("upgrade"), "{message}");
    }

    /// The persisted format is public: this snapshot changes only on purpose. A manifest
    /// written by the first release (no `consistency`, no `virtual_tables`) still reads.
    #[test]
    fn insta_snapshot_and_first_release_manifests_read() {
        insta::assert_json_snapshot!("manifest_v1", sample());
        let mut per_table = sample();
        per_table.dump.consistency = DumpConsistency::PerTable;
        per_table.dump.virtual_tables = vec!["articles_fts".to_owned()];
        insta::assert_json_snapshot!("manifest_v1_per_table", per_table);
        let mut online = sample();
        online.dump.consistency = DumpConsistency::Online;
        online.dump.export = Some("online".to_owned());
        online.dump.export_reason = Some("auto: the database is large".to_owned());
        online.database.bookmark_after = Some("00000002-00000002-00004f8a-0123".to_owned());
        insta::assert_json_snapshot!("manifest_v1_online", online);
        insta::assert_json_snapshot!("manifest_v2_encrypted", encrypted());
        let first_release = br#"{"kind":"d1-backup-manifest","version":1,"tool":"d1-backup 0.1.0",
            "account":"ucca","account_id":null,
            "database":{"name":"ops-db","uuid":null,"bookmark":null,"sqlite":"ops.sqlite"},
            "date":"2026-11-30","started_at":"2026-11-30T03:00:00Z",
            "finished_at":"2026-11-30T03:00:01Z",
            "dump":{"key":"d1/2026-11-30/ops-db.sql","bytes":1,"sha256":"00","compression":"none",
                    "sql_bytes":1,"sql_sha256":"00"}}"#;
        let read = Manifest::from_json(first_release).ok().map(|m| m.dump);
        assert_eq!(
            read.as_ref().map(|d| d.consistency),
            Some(DumpConsistency::Snapshot)
        );
        assert_eq!(read.map(|d| d.virtual_tables.len()), Some(0));
    }
}
