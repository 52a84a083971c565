//! The verification record: what the last `verify` of a backup found, stored beside its
//! manifest as `<db>.verification.json` (see [`crate::layout::verification_key`]).
//!
//! A persisted format (public API): fields are only added, and `version` changes when a reader
//! would have to behave differently. Retention and reruns read it (a backup shown defective
//! is made again and never counts towards `min_keep`), so it is defined here, independent of
//! the `sqlite` feature that writes it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// The `kind` of every verification record.
pub const VERIFICATION_KIND: &str = "d1-backup-verification";
/// The verification record format's version.
pub const VERIFICATION_VERSION: u32 = 1;

/// What a verification found, stored beside the manifest as `<db>.verification.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VerificationRecord {
    /// Always [`VERIFICATION_KIND`].
    pub kind: String,
    /// [`VERIFICATION_VERSION`].
    pub version: u32,
    /// The tool and version that verified.
    pub tool: String,
    /// When the verification finished.
    pub verified_at: DateTime<Utc>,
    /// The account's configured name.
    pub account: String,
    /// The database name.
    pub database: String,
    /// The backup's date.
    pub date: NaiveDate,
    /// The verified dump's key.
    pub key: String,
    /// The SHA-256 the manifest records for it.
    pub sha256: String,
    /// True when every check passed.
    pub ok: bool,
    /// True when the backup itself was shown to be defective (altered, does not restore,
    /// fails the integrity checks, or differs from the live database), as opposed to a check
    /// that could not run. Read as `false` when absent.
    #[serde(default)]
    pub defective: bool,
    /// Every problem found.
    #[serde(default)]
    pub problems: Vec<String>,
    /// Rows per table of the restored database.
    #[serde(default)]
    pub tables: BTreeMap<String, u64>,
    /// Whether the live database was compared, and whether it matched (null when not compared).
    pub live_matches: Option<bool>,
}

impl VerificationRecord {
    /// Parses a verification record, refusing objects that are not one (another `kind`, or
    /// not JSON of the right shape) with an [`Error`] of kind [`ErrorKind::InvalidDump`].
    ///
    /// Records of a newer `version` are read as far as their fields go (fields are only
    /// added), so an older d1-backup still sees that a backup was found defective.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let record: Self = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidDump,
                format!("not a d1-backup verification record: {e}"),
            )
            .with_source(e)
        })?;
        if record.kind != VERIFICATION_KIND {
            return Err(Error::new(
                ErrorKind::InvalidDump,
                format!("kind is {:?}, not {VERIFICATION_KIND:?}", record.kind),
            ));
        }
        Ok(record)
    }

    /// The JSON text stored in the sink (pretty, with a final newline).
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, numbers, booleans and dates cannot fail to serialize.
        let mut body = serde_json::to_vec_pretty(self).unwrap_or_default();
        body.push(b'\n');
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VerificationRecord {
        let at = DateTime::parse_from_rfc3339("2026-11-30T04:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        VerificationRecord {
            kind: VERIFICATION_KIND.to_owned(),
            version: VERIFICATION_VERSION,
            tool: "d1-backup 0.1.0".to_owned(),
            verified_at: at,
            account: "ucca".to_owned(),
            database: "ops-db".to_owned(),
            date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default(),
            key: "d1/2026-11-30/ops-db.sql".to_owned(),
            sha256: "ab".repeat(32),
            ok: false,
            defective: true,
            problems: vec!["PRAGMA integrity_check: row 3 missing from index".to_owned()],
            tables: BTreeMap::from([("notes".to_owned(), 3), ("users".to_owned(), 12)]),
            live_matches: None,
        }
    }

    /// The persisted format is public: this snapshot changes only on purpose.
    #[test]
    fn snapshot_of_the_format() {
        insta::assert_json_snapshot!("verification_v1", sample());
    }

    #[test]
    fn round_trips_reads_sparse_records_and_refuses_strangers() {
        let record = sample();
        assert_eq!(
            VerificationRecord::from_json(&record.to_json()).ok(),
            Some(record)
        );
        let sparse = br#"{"kind":"d1-backup-verification","version":1,"tool":"d1-backup 0.1.0",
            "verified_at":"2026-11-30T04:00:00Z","account":"ucca","database":"ops-db",
            "date":"2026-11-30","key":"d1/2026-11-30/ops-db.sql","sha256":"00","ok":true}"#;
        let read = VerificationRecord::from_json(sparse).ok();
        assert_eq!(read.map(|r| (r.ok, r.defective)), Some((true, false)));
        let kind = |bytes: &[u8]| VerificationRecord::from_json(bytes).err().map(|e| e.kind());
        assert_eq!(kind(b"{}"), Some(ErrorKind::InvalidDump));
        let stranger = String::from_utf8_lossy(sparse).replace("-verification", "-manifest");
        assert_eq!(kind(stranger.as_bytes()), Some(ErrorKind::InvalidDump));
    }
}
