//! One database's backup: export, download, stream into the sink.
//!
//! The dump is never held in memory: the download's byte stream is the sink's upload body.
//! If the signed URL is refused or the download breaks beyond the client's resuming, one fresh
//! export is started (an export blocks the database, so never more than [`MAX_EXPORTS`]).
//!
//! One query reads the schema first. A database with virtual tables, which D1 refuses to
//! export, is exported table by table and its virtual tables, indexes, triggers and views are
//! appended to the same upload (`crate::vtab_export`).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use d1_export::{CompletedExport, D1Client, ErrorKind as D1ErrorKind, ExportOptions};
use futures::StreamExt;
use r2_sink::{ByteStream, ErrorKind as SinkErrorKind};

use crate::compression::Compression;
use crate::dump::DUMP_HEAD;
use crate::encryption::Recipients;
use crate::error::{Error, ErrorKind, error_chain};
use crate::manifest::DumpConsistency;
use crate::progress::EventKind;
use crate::sinks::SharedSink;
use crate::store::{self, Stored};
use crate::vtab_export::{self, PerTable, Plan, ReadError};

/// Exports started per database per run at most.
pub(crate) const MAX_EXPORTS: u32 = 2;

pub(crate) struct Request<'a> {
    pub(crate) client: &'a D1Client,
    pub(crate) sink: &'a SharedSink,
    pub(crate) account_id: &'a str,
    pub(crate) database_id: &'a str,
    pub(crate) key: &'a str,
    pub(crate) poll_interval: Duration,
    pub(crate) max_wait: Option<Duration>,
    /// How long to wait for another export of the database to finish.
    pub(crate) wait_if_busy: Option<Duration>,
    pub(crate) compression: Compression,
    /// Encrypts the stored dump to these recipients, when set.
    pub(crate) encryption: Option<&'a Recipients>,
    pub(crate) part_size: Option<u64>,
    /// Sees D1's exported bytes as they stream (`auto`'s defect scan), when set.
    pub(crate) inspector: Option<&'a dyn DumpInspector>,
}

/// What `export = "auto"` needs from a scanner of D1's dump: to see the exported bytes as
/// they stream into the sink, and afterwards to name the tables whose rows D1 wrote lossily.
/// `crate::dump::defects::SharedScanner` (built separately for issue 13) fits it: `inspect`
/// is its `inspect(body).boxed()`, `defective_tables` its `finish()`'s `tables()` (all of
/// them when `outside_rows()` is not empty).
pub(crate) trait DumpInspector: Send + Sync {
    /// `body`, unchanged, every chunk seen on its way.
    fn inspect(&self, body: ByteStream) -> ByteStream;
    /// The tables with a defect in what passed (empty: none), starting afresh.
    fn defective_tables(&self) -> Vec<String>;
}

impl DumpInspector for crate::dump::SharedScanner {
    fn inspect(&self, body: ByteStream) -> ByteStream {
        // A fresh export streams from its start: forget what an abandoned attempt showed.
        let _ = self.finish();
        crate::dump::SharedScanner::inspect(self, body).boxed()
    }

    fn defective_tables(&self) -> Vec<String> {
        let defects = self.finish();
        let mut tables: Vec<String> = defects.tables().map(str::to_owned).collect();
        if defects.outside_rows().kinds().next().is_some() {
            // A defect outside any table's rows (a NUL in the schema, say): the whole dump is
            // suspect, and the online read replaces all of it anyway.
            tables.push("the dump outside any table's rows".to_owned());
        }
        tables
    }
}

/// A database's dump, stored.
pub(crate) struct Transferred {
    pub(crate) stored: Stored,
    /// The D1 bookmark the dump was taken at (none for local files); for an online read,
    /// the one before its first page.
    pub(crate) bookmark: Option<String>,
    /// An online read's bookmark after its last page, when it differs from `bookmark`.
    pub(crate) bookmark_after: Option<String>,
    /// Exports started (0 for local files).
    pub(crate) exports: u32,
    /// Why more than one export was needed, one line per abandoned export; and that the
    /// database was exported table by table, when it was.
    pub(crate) notes: Vec<String>,
    /// One snapshot, or read table by table (a D1 database with virtual tables).
    pub(crate) consistency: DumpConsistency,
    /// The virtual tables the dump recreates, written by this crate rather than by D1.
    pub(crate) virtual_tables: Vec<String>,
    /// How the dump was read from D1 (`d1`, `online`; none for local files).
    pub(crate) export: Option<&'static str>,
    /// Why `auto` chose it.
    pub(crate) export_reason: Option<String>,
}

/// Why a database's dump was not stored, with what was spent on it.
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) exports: u32,
    pub(crate) bookmark: Option<String>,
}

impl Failure {
    /// A failure before any export started.
    pub(crate) fn new(error: Error) -> Self {
        Self {
            error,
            exports: 0,
            bookmark: None,
        }
    }
}

/// Why one attempt failed, and whether a fresh export could help.
struct AttemptError {
    error: Error,
    fresh_export_helps: bool,
}

/// What to do after an export was refused or failed.
enum Next {
    /// Start another export (with the plan as it now is).
    Retry,
    /// Give up.
    Fail,
}

pub(crate) async fn run(
    request: &Request<'_>,
    emit: &(dyn Fn(EventKind<'_>) + Sync),
) -> Result<Transferred, Failure> {
    let mut plan = read_plan(request).await.unwrap_or_else(|error| {
        // A token may be allowed to export but not to query: try the whole export, whose
        // refusal says whether a virtual table is in the way.
        let error = error_chain(&error);
        tracing::debug!("cannot read the schema first ({error}); exporting whole");
        Plan::Whole
    });
    let mut last_bookmark = None;
    let mut reasons = Vec::new();
    let mut exports = 0;
    for _ in 0..MAX_EXPORTS {
        let export = match &plan {
            // No real table: nothing to export, and the database is never blocked.
            Plan::PerTable(per_table) if per_table.tables.is_empty() => None,
            _ => {
                let started = std::sync::atomic::AtomicBool::new(false);
                let outcome = export_once(request, &mut plan, exports + 1, &started, emit).await;
                // Only an export the server accepted counts (a busy database refuses the start).
                if started.load(std::sync::atomic::Ordering::Relaxed) {
                    exports += 1;
                }
                match outcome {
                    Ok(export) => Some(export),
                    Err((reason, next)) => {
                        reasons.push(reason);
                        match next {
                            Next::Retry => continue,
                            Next::Fail => return Err(failure(&reasons, exports, last_bookmark)),
                        }
                    }
                }
            }
        };
        if let Some(export) = &export {
            last_bookmark = Some(export.bookmark.clone());
        }
        match stream_into_sink(request, export.as_ref(), &plan, emit).await {
            Ok(stored) => {
                let bookmark = export.map(|e| e.bookmark);
                return Ok(transferred(stored, bookmark, exports, &reasons, &plan));
            }
            Err(error) => {
                reasons.push(error.error);
                if !error.fresh_export_helps {
                    return Err(failure(&reasons, exports, last_bookmark));
                }
            }
        }
    }
    Err(failure(&reasons, exports, last_bookmark))
}

/// One export as `plan` says (whole, or the real tables by name). On failure: why, and
/// whether to start another (`plan` may have changed to per-table meanwhile).
async fn export_once(
    request: &Request<'_>,
    plan: &mut Plan,
    attempt: u32,
    started: &std::sync::atomic::AtomicBool,
    emit: &(dyn Fn(EventKind<'_>) + Sync),
) -> Result<CompletedExport, (Error, Next)> {
    let mut options = export_options(request);
    options.dump.tables = export_tables(plan);
    emit(EventKind::ExportStarted { attempt });
    let export = request
        .client
        .export(
            request.account_id,
            request.database_id,
            &options,
            &|event| {
                if matches!(event, d1_export::ExportEvent::Started { .. }) {
                    started.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                emit(EventKind::Export(event));
            },
        )
        .await;
    let error = match export {
        Ok(export) => return Ok(export),
        Err(error) => error,
    };
    if error.kind() == D1ErrorKind::ExportInProgress {
        // The reason says it all in the config's terms; the client's own text would name
        // the library option the engine set from `[run] wait_if_busy_minutes`.
        return Err((
            Error::new(ErrorKind::Busy, busy_reason(request, &error)),
            Next::Fail,
        ));
    }
    let kind = error.kind();
    let reason = Error::from(error).context("export failed");
    if kind == D1ErrorKind::VirtualTablesUnsupported && matches!(plan, Plan::Whole) {
        // The schema was not readable before, or a virtual table appeared since: read it now.
        return match read_plan(request).await {
            Ok(per_table @ Plan::PerTable(_)) => {
                *plan = per_table;
                Err((reason, Next::Retry))
            }
            Ok(Plan::Whole) => Err((reason, Next::Fail)),
            Err(read) => {
                let reason = Error::new(
                    reason.kind(),
                    format!(
                        "{}; the schema could not be read through the query API to export the real tables one by one: {}; the API token needs D1 read access",
                        reason.chain(),
                        error_chain(&read)
                    ),
                );
                Err((reason, Next::Fail))
            }
        };
    }
    // The server cancels exports whose polling paused; a fresh one may succeed.
    // Refusals (auth, missing database, virtual tables, busy, max wait) will not.
    let next = if matches!(
        kind,
        D1ErrorKind::ExportFailed | D1ErrorKind::Transient | D1ErrorKind::Protocol
    ) {
        Next::Retry
    } else {
        Next::Fail
    };
    Err((reason, next))
}

/// Why a busy database was not exported, in the config's terms.
fn busy_reason(request: &Request<'_>, error: &d1_export::Error) -> String {
    let server = error
        .server_message()
        .map(|m| format!(" (D1: {m})"))
        .unwrap_or_default();
    match request.wait_if_busy {
        Some(wait) => {
            let minutes = wait.as_secs() / 60;
            format!(
                "another export or import kept running on the database{server} for the whole wait of {minutes} minute(s) ([run] wait_if_busy_minutes = {minutes}); back it up later, or raise wait_if_busy_minutes"
            )
        }
        None => format!(
            "D1 is already exporting or importing this database{server}; set [run] wait_if_busy_minutes to wait for it, or back it up later"
        ),
    }
}

async fn read_plan(request: &Request<'_>) -> Result<Plan, ReadError> {
    vtab_export::plan(request.client, request.account_id, request.database_id).await
}

fn export_options(request: &Request<'_>) -> ExportOptions {
    let mut options = ExportOptions::default();
    options.poll_interval = request.poll_interval;
    options.max_wait = request.max_wait;
    options.wait_if_busy = request.wait_if_busy;
    // Knocking on a busy database is paced like polling (5 polls' worth, at least 50 ms).
    options.busy_retry_interval = (request.poll_interval * 5).max(Duration::from_millis(50));
    options
}

/// `dump_options.tables`: empty (everything) for a whole export, else the real tables.
fn export_tables(plan: &Plan) -> Vec<String> {
    match plan {
        Plan::Whole => Vec::new(),
        Plan::PerTable(per_table) => per_table.tables.clone(),
    }
}

fn transferred(
    stored: Stored,
    bookmark: Option<String>,
    exports: u32,
    reasons: &[Error],
    plan: &Plan,
) -> Transferred {
    let mut notes: Vec<String> = reasons
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "export {}: {}; a fresh export was started",
                i + 1,
                r.chain()
            )
        })
        .collect();
    let (consistency, virtual_tables) = match plan {
        Plan::Whole => (DumpConsistency::Snapshot, Vec::new()),
        Plan::PerTable(per_table) => {
            let names = per_table.virtual_table_names();
            notes.push(format!(
                "the database has virtual tables ({}), which D1 cannot export: its real tables were exported by name and the virtual tables, sqlite_sequence, indexes, triggers and views read through the query API and appended, so the dump is per table, not one snapshot",
                names.join(", ")
            ));
            (DumpConsistency::PerTable, names)
        }
    };
    Transferred {
        stored,
        bookmark,
        bookmark_after: None,
        exports,
        notes,
        consistency,
        virtual_tables,
        export: Some("d1"),
        export_reason: None,
    }
}

/// The failure after every attempt: the last attempt's kind, every attempt's reason.
fn failure(reasons: &[Error], exports: u32, bookmark: Option<String>) -> Failure {
    let error = match reasons {
        [] => Error::new(ErrorKind::ExportFailed, "no export was attempted"),
        [only] => only.clone(),
        [.., last] => {
            let message = reasons
                .iter()
                .enumerate()
                .map(|(i, r)| format!("export {}: {}", i + 1, r.chain()))
                .collect::<Vec<_>>()
                .join("; ");
            Error::new(last.kind(), message)
        }
    };
    Failure {
        error,
        exports,
        bookmark,
    }
}

async fn stream_into_sink(
    request: &Request<'_>,
    export: Option<&CompletedExport>,
    plan: &Plan,
    emit: &(dyn Fn(EventKind<'_>) + Sync),
) -> Result<Stored, AttemptError> {
    // The sink sees an io::Error; keep the client's own error to decide what to do next.
    let source_error: Arc<Mutex<Option<d1_export::Error>>> = Arc::default();
    let tail_error: Arc<Mutex<Option<ReadError>>> = Arc::default();
    let mut metadata = BTreeMap::new();
    metadata.insert("d1-database-id".to_owned(), request.database_id.to_owned());
    let (body, total) = if let Some(export) = export {
        metadata.insert("d1-bookmark".to_owned(), export.bookmark.clone());
        let download = request
            .client
            .download(&export.signed_url)
            .await
            .map_err(|error| AttemptError {
                fresh_export_helps: d1_error_helped_by_fresh_export(&error),
                error: Error::from(error).context("download failed"),
            })?;
        let total = download.content_length();
        let body = checked_body(download, Arc::clone(&source_error));
        let body = match request.inspector {
            Some(inspector) => inspector.inspect(body),
            None => body,
        };
        (body, total)
    } else {
        // No export (a database whose only tables are virtual): the dump's head line alone.
        let head = Bytes::from_static(DUMP_HEAD.as_bytes());
        let total = Some(head.len() as u64);
        (futures::stream::iter([Ok(head)]).boxed(), total)
    };
    let (body, total) = match plan {
        Plan::Whole => (body, total),
        // The final size is unknown: no total (the sink's default part size fits any D1
        // database, and a too-small hint would be worse than none).
        Plan::PerTable(per_table) => (
            with_tail(request, body, per_table, Arc::clone(&tail_error)),
            None,
        ),
    };
    emit(EventKind::DownloadStarted {
        content_length: total,
    });
    let put = store::Put {
        sink: request.sink,
        key: request.key,
        total,
        compression: request.compression,
        encryption: request.encryption,
        metadata,
        part_size: request.part_size,
    };
    store::store(put, body, emit)
        .await
        .map_err(|error| attempt_error(request, error, &source_error, &tail_error))
}

/// `body` followed by the appended part of a per-table dump.
fn with_tail(
    request: &Request<'_>,
    body: ByteStream,
    plan: &PerTable,
    error: Arc<Mutex<Option<ReadError>>>,
) -> ByteStream {
    let ended_with_newline = Arc::new(AtomicBool::new(false));
    let last = Arc::clone(&ended_with_newline);
    let body = body.inspect(move |chunk| {
        if let Ok(chunk) = chunk
            && let Some(&byte) = chunk.last()
        {
            last.store(byte == b'\n', Ordering::Release);
        }
    });
    let ids = (
        request.account_id.to_owned(),
        request.database_id.to_owned(),
    );
    let tail = vtab_export::tail(request.client.clone(), ids, plan, ended_with_newline, error);
    body.chain(tail).boxed()
}

/// What a failed put means: the download's or the query API's failure (the sink only saw
/// "source failed"), else the upload's own.
fn attempt_error(
    request: &Request<'_>,
    error: r2_sink::Error,
    source_error: &Mutex<Option<d1_export::Error>>,
    tail_error: &Mutex<Option<ReadError>>,
) -> AttemptError {
    let source_failed = error.kind() == SinkErrorKind::SourceFailed;
    if let Some(d1) = take(source_error).filter(|_| source_failed) {
        return AttemptError {
            fresh_export_helps: d1_error_helped_by_fresh_export(&d1),
            error: Error::from(d1).context("download failed"),
        };
    }
    if let Some(read) = take(tail_error).filter(|_| source_failed) {
        return AttemptError {
            fresh_export_helps: read.api().is_some_and(d1_error_helped_by_fresh_export),
            error: read
                .into_error()
                .context("reading the virtual tables through the query API failed"),
        };
    }
    AttemptError {
        fresh_export_helps: false,
        error: Error::from(error).context(format_args!("upload to {} failed", request.key)),
    }
}

/// The download as the sink's body: client errors become `io::Error`s (the original kept in
/// `source_error`), bytes are counted into `counted`, and a body shorter or longer than the
/// announced `Content-Length` ends in an error, so the sink aborts instead of storing it.
fn checked_body(
    download: d1_export::Download,
    source_error: Arc<Mutex<Option<d1_export::Error>>>,
) -> ByteStream {
    let counted = Arc::new(AtomicU64::new(0));
    let total = download.content_length();
    let at_end = Arc::clone(&counted);
    let body = download.into_stream().map(move |chunk| match chunk {
        Ok(chunk) => {
            counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok(chunk)
        }
        Err(error) => {
            let as_io = io::Error::other(error_chain(&error));
            *source_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
            Err(as_io)
        }
    });
    let length_check = futures::stream::once(async move {
        let got = at_end.load(Ordering::Relaxed);
        match total {
            Some(expected) if expected != got => Some(Err(io::Error::other(format!(
                "the download ended after {got} bytes but the server announced {expected}"
            )))),
            _ => None,
        }
    })
    .filter_map(futures::future::ready);
    body.chain(length_check).boxed()
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn d1_error_helped_by_fresh_export(error: &d1_export::Error) -> bool {
    matches!(error.kind(), D1ErrorKind::UrlExpired) || error.is_retryable()
}
