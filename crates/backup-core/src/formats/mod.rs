//! Persisted formats: every JSON document d1-backup stores or sends, in one place.
//!
//! Each is public API, read by other runs, other d1-backup versions, operators and monitoring:
//!
//! | record | where | `kind` | current `version` |
//! |---|---|---|---|
//! | [`Manifest`] | beside each dump, `<db>.manifest.json` | [`MANIFEST_KIND`] | [`MANIFEST_VERSION`] |
//! | [`VerificationRecord`] | beside the manifest, `<db>.verification.json` | [`VERIFICATION_KIND`] | [`VERIFICATION_VERSION`] |
//! | [`Heartbeat`] | KV, an object, a ping URL | [`HEARTBEAT_KIND`] | [`HEARTBEAT_VERSION`] |
//! | [`LeaseRecord`] | `_leases/<db>/<generation>.json` | (none) | [`LEASE_VERSION`] |
//!
//! The rules for all of them: fields are only added, never renamed or given a new meaning;
//! a field added later is optional for readers (records written before it still read); and
//! `version` changes only when a reader would have to behave differently. Each has a snapshot
//! test of its JSON (`src/formats/snapshots/`): a snapshot changes only on purpose.
//! Key names come from [`crate::layout`], not from here.

pub(crate) mod heartbeat;
pub(crate) mod lease;
pub(crate) mod manifest;
pub(crate) mod verification;

pub use heartbeat::{HEARTBEAT_KIND, HEARTBEAT_VERSION, Heartbeat, HeartbeatDatabase, Totals};
pub use lease::{LEASE_VERSION, LeaseRecord, LeaseUpload};
pub use manifest::{
    DumpConsistency, MANIFEST_KIND, MANIFEST_VERSION, Manifest, ManifestDatabase, ManifestDump,
    ManifestEncryption, PLAIN_MANIFEST_VERSION,
};
pub use verification::{VERIFICATION_KIND, VERIFICATION_VERSION, VerificationRecord};
