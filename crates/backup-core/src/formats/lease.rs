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
//! - Version 2 added who the holder is, for a run on the same machine to tell a dead holder
//!   (`host`, `boot_id`, `pid`: each absent when the holder did not know it), and the
//!   multipart uploads the holder has in flight (`uploads`, left out when empty), so a later
//!   run can abort what a dead one left. A version 1 record has none of them: it is honoured
//!   until it expires.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// The lease record format version this crate writes.
pub const LEASE_VERSION: u32 = 2;

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
    /// The holder's machine (e.g. `/etc/machine-id`), when it knew it (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The holder machine's boot (e.g. Linux's `boot_id`), so that a process id reused after
    /// a reboot is not mistaken for the holder (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The holder's process id on `host` (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Multipart uploads the holder started and had not finished when it wrote this
    /// generation (version 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<LeaseUpload>,
}

/// A multipart upload in flight, recorded in the lease before its first part is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LeaseUpload {
    /// The key the upload completes at.
    pub key: String,
    /// The store's upload id.
    pub upload_id: String,
    /// When the upload started.
    pub started_at: DateTime<Utc>,
}

impl LeaseUpload {
    /// An upload of `key` with id `upload_id`, started at `started_at`.
    pub fn new(
        key: impl Into<String>,
        upload_id: impl Into<String>,
        started_at: DateTime<Utc>,
    ) -> Self {
        Self {
            key: key.into(),
            upload_id: upload_id.into(),
            started_at,
        }
    }
}

fn first_version() -> u32 {
    1
}

impl LeaseRecord {
    /// A record of the current version, with no holder identity and no uploads.
    pub fn new(owner: impl Into<String>, expires_at: DateTime<Utc>) -> Self {
        Self {
            version: LEASE_VERSION,
            owner: owner.into(),
            expires_at,
            host: None,
            boot_id: None,
            pid: None,
            uploads: Vec::new(),
        }
    }

    /// The record with the holder's machine, boot and process id.
    #[must_use]
    pub fn holder(mut self, host: Option<String>, boot_id: Option<String>, pid: u32) -> Self {
        self.host = host;
        self.boot_id = boot_id;
        self.pid = Some(pid);
        self
    }

    /// The record with `uploads` in flight.
    #[must_use]
    pub fn uploads(mut self, uploads: Vec<LeaseUpload>) -> Self {
        self.uploads = uploads;
        self
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
        let record = LeaseRecord::new("pid 4242 #1a2b3c4d", at("2026-11-30T03:10:00Z"))
            .holder(Some("4c4c4544".to_owned()), Some("9f1e".to_owned()), 4242)
            .uploads(vec![LeaseUpload::new(
                "d1/2026-11-30/ops-db.sql",
                "upload-7",
                at("2026-11-30T03:08:00Z"),
            )]);
        insta::assert_json_snapshot!("lease_v2", record);
        assert_eq!(LeaseRecord::from_json(&record.to_json()).ok(), Some(record));
        // Without identity or uploads, only the version 1 fields are written.
        let bare = LeaseRecord::new("host-a pid 4242", at("2026-11-30T03:10:00Z"));
        assert_eq!(
            String::from_utf8_lossy(&bare.to_json()),
            r#"{"version":2,"owner":"host-a pid 4242","expires_at":"2026-11-30T03:10:00Z"}"#
        );
    }

    /// Records written before `version` existed, and version 1 ones (this crate's earlier
    /// snapshot), are read with no identity and no uploads; newer ones are honoured.
    #[test]
    fn reads_records_without_a_version_and_newer_ones() {
        let v1 = LeaseRecord {
            version: 1,
            ..LeaseRecord::new("host-a pid 4242", at("2026-11-30T03:10:00Z"))
        };
        let written =
            br#"{"version":1,"owner":"host-a pid 4242","expires_at":"2026-11-30T03:10:00Z"}"#;
        assert_eq!(LeaseRecord::from_json(written).ok(), Some(v1));
        let old = br#"{"owner":"crashed-host","expires_at":"2026-11-29T03:10:00Z"}"#;
        let read = LeaseRecord::from_json(old).ok();
        assert_eq!(
            read.map(|r| (r.version, r.owner, r.expires_at, r.host, r.pid)),
            Some((
                1,
                "crashed-host".to_owned(),
                at("2026-11-29T03:10:00Z"),
                None,
                None
            ))
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
