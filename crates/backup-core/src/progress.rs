//! Progress events for the caller's display.
//!
//! The library never prints: it reports what happens through [`Progress`], whose default
//! method does nothing, so `&()` is a valid no-op reporter. Implementations must be cheap and
//! must not block: they are called from the tasks doing the work.

use d1_export::ExportEvent;

/// Receives progress events. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// Called for every event of every database in a run.
    fn event(&self, event: &ProgressEvent<'_>) {
        let _ = event;
    }
}

/// The no-op reporter.
impl Progress for () {}

/// One event, naming the database it concerns.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ProgressEvent<'a> {
    /// The account's configured name.
    pub account: &'a str,
    /// The database name.
    pub database: &'a str,
    /// What happened.
    pub kind: EventKind<'a>,
}

/// What happened to a database.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum EventKind<'a> {
    /// An export is being started (attempt 1, or 2 after a refused signed URL).
    ExportStarted {
        /// The attempt number, from 1.
        attempt: u32,
    },
    /// Something the D1 client reported while exporting: a poll, a server message, a retry.
    Export(&'a ExportEvent),
    /// The dump's download started.
    DownloadStarted {
        /// The dump's size when the server announced it.
        content_length: Option<u64>,
    },
    /// Bytes streamed so far from the download into the sink.
    Transferred {
        /// Bytes so far.
        bytes: u64,
        /// The dump's size when known.
        total: Option<u64>,
    },
    /// The backup is complete.
    Done {
        /// The object key.
        key: &'a str,
        /// Bytes written.
        bytes: u64,
    },
    /// The database was not backed up in this run, on purpose.
    Skipped {
        /// Why.
        reason: &'a str,
    },
    /// Another run held the database's lease for the whole wait: not backed up.
    Leased {
        /// Who held it, and until when.
        reason: &'a str,
    },
    /// A restore into D1 starts importing one batch (the event names the target database).
    ImportBatch {
        /// The batch, from 1.
        number: u64,
        /// Batches in all.
        total: u64,
        /// Statements in it.
        statements: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A restore into D1 imported one batch, and D1 confirmed it.
    ImportBatchDone {
        /// The batch, from 1.
        number: u64,
        /// Batches in all.
        total: u64,
    },
    /// The backup failed.
    Failed {
        /// The error message.
        error: &'a str,
    },
}
