//! The lease record: the content of one lease generation,
//! `<prefix>/_leases/<db>/<generation>.json` (see [`crate::layout`]), shared between every
//! machine that backs up into the same bucket.
//!
//! A persisted format (public API) read by other runs, possibly of other d1-backup versions:
//!
//! - `version` was added after the first release. A record without it is version 1 (the
//!   fields had the same meaning), so leases written by older runs are still honoured.
//! - `owner` and `expires_at` keep their meaning in every version, and a reader honours them
//!   whatever the `version` (unknown fields are ignored): an older d1-backup never takes over a
//!   live lease written by a newer one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// The lease record format version this crate writes.
pub const LEASE_VERSION: u32 = 1;

/// The content of one lease generation: who holds the database, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LeaseRecord {
    /// The format version ([`LEASE_VERSION`] when written by this crate; 1 when absent).
    #[serde(default = "first_version")]
    pub version: u32,
    /// Who holds the lease (the engine's owner name, e.g. `pid 4242 #1a2b3c4d`).
    pub owner: String,
    /// When the lease lapses unless its holder renews it by creating the next generation.
    pub expires_at: DateTime<Utc>,
}

fn first_version() -> u32 {
    1
}

impl LeaseRecord {
    /// A record of the current version.
    pub fn new(owner: impl Into<String>, expires_at: DateTime<Utc>) -> Self {
        Self {
            version: LEASE_VERSION,
            owner: owner.into(),
            expires_at,
        }
    }

    /// Parses a lease record of any version; an object that is not one is an [`Error`] of
    /// kind [`ErrorKind::InvalidDump`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidDump,
                format!("not a d1-backup lease record: {e}"),
            )
            .with_source(e)
        })
    }

    /// The JSON text stored in the sink (compact).
    pub fn to_json(&self) -> Vec<u8> {
        // A string, a number and a date cannot fail to serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    /// The persisted format is public: this snapshot changes only on purpose.
    #[test]
    fn snapshot_of_the_format() {
        let record = LeaseRecord::new("host-a pid 4242", at("2026-11-30T03:10:00Z"));
        insta::assert_json_snapshot!("lease_v1", record);
        assert_eq!(
            String::from_utf8_lossy(&record.to_json()),
            r#"{"version":1,"owner":"host-a pid 4242","expires_at":"2026-11-30T03:10:00Z"}"#
        );
        assert_eq!(LeaseRecord::from_json(&record.to_json()).ok(), Some(record));
    }

    /// Records written before `version` existed are version 1; newer ones are honoured.
    #[test]
    fn reads_records_without_a_version_and_newer_ones() {
        let old = br#"{"owner":"crashed-host","expires_at":"2026-11-29T03:10:00Z"}"#;
        assert_eq!(
            LeaseRecord::from_json(old).ok(),
            Some(LeaseRecord::new("crashed-host", at("2026-11-29T03:10:00Z")))
        );
        let newer = br#"{"version":7,"owner":"b","expires_at":"2026-11-29T03:10:00Z","host":"x"}"#;
        let read = LeaseRecord::from_json(newer).ok();
        assert_eq!(
            read.map(|r| (r.version, r.owner)),
            Some((7, "b".to_owned()))
        );
        let error = LeaseRecord::from_json(b"{\"owner\":1}").err();
        assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::InvalidDump));
    }
}
