//! One database's backup: export, download, stream into the sink.
//!
//! The dump is never held in memory: the download's byte stream is the sink's upload body.
//! If the signed URL is refused or the download breaks beyond the client's resuming, one fresh
//! export is started (an export blocks the database, so never more than [`MAX_EXPORTS`]).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use d1_export::{CompletedExport, D1Client, ErrorKind as D1ErrorKind, ExportOptions};
use futures::StreamExt;
use r2_sink::{ByteStream, ErrorKind as SinkErrorKind};

use crate::compression::Compression;
use crate::progress::EventKind;
use crate::run::{SharedSink, error_chain};
use crate::store::{self, Stored};

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
    pub(crate) part_size: Option<u64>,
}

/// A database's dump, stored.
pub(crate) struct Transferred {
    pub(crate) stored: Stored,
    /// The D1 bookmark the dump was taken at (none for local files).
    pub(crate) bookmark: Option<String>,
    /// Exports started (0 for local files).
    pub(crate) exports: u32,
    /// Why more than one export was needed, one line per abandoned export.
    pub(crate) notes: Vec<String>,
}

pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) exports: u32,
    pub(crate) bookmark: Option<String>,
}

impl Failure {
    pub(crate) fn cancelled() -> Self {
        Self {
            message: crate::run::CANCELLED.to_owned(),
            exports: 0,
            bookmark: None,
        }
    }
}

/// Why one attempt failed, and whether a fresh export could help.
struct AttemptError {
    message: String,
    fresh_export_helps: bool,
}

pub(crate) async fn run(
    request: &Request<'_>,
    emit: &(dyn Fn(EventKind<'_>) + Sync),
) -> Result<Transferred, Failure> {
    let mut options = ExportOptions::default();
    options.poll_interval = request.poll_interval;
    options.max_wait = request.max_wait;
    options.wait_if_busy = request.wait_if_busy;
    // Knocking on a busy database is paced like polling (5 polls' worth, at least 50 ms).
    options.busy_retry_interval = (request.poll_interval * 5).max(Duration::from_millis(50));
    let mut last_bookmark = None;
    let mut reasons = Vec::new();
    for attempt in 1..=MAX_EXPORTS {
        emit(EventKind::ExportStarted { attempt });
        let export = request
            .client
            .export(
                request.account_id,
                request.database_id,
                &options,
                &|event| {
                    emit(EventKind::Export(event));
                },
            )
            .await;
        let export = match export {
            Ok(export) => export,
            Err(error) => {
                reasons.push(format!("export failed: {}", error_chain(&error)));
                // The server cancels exports whose polling paused; a fresh one may succeed.
                // Refusals (auth, missing database, virtual tables, busy, max wait) will not.
                if matches!(
                    error.kind(),
                    D1ErrorKind::ExportFailed | D1ErrorKind::Transient | D1ErrorKind::Protocol
                ) {
                    continue;
                }
                return Err(failure(&reasons, attempt, last_bookmark));
            }
        };
        last_bookmark = Some(export.bookmark.clone());
        match stream_into_sink(request, &export, emit).await {
            Ok(stored) => {
                return Ok(Transferred {
                    stored,
                    bookmark: Some(export.bookmark),
                    exports: attempt,
                    notes: reasons
                        .iter()
                        .enumerate()
                        .map(|(i, r)| format!("export {}: {r}; a fresh export was started", i + 1))
                        .collect(),
                });
            }
            Err(error) => {
                reasons.push(error.message);
                if !error.fresh_export_helps {
                    return Err(failure(&reasons, attempt, last_bookmark));
                }
            }
        }
    }
    Err(failure(&reasons, MAX_EXPORTS, last_bookmark))
}

fn failure(reasons: &[String], exports: u32, bookmark: Option<String>) -> Failure {
    let message = if reasons.len() > 1 {
        reasons
            .iter()
            .enumerate()
            .map(|(i, r)| format!("export {}: {r}", i + 1))
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        reasons.join("; ")
    };
    Failure {
        message,
        exports,
        bookmark,
    }
}

async fn stream_into_sink(
    request: &Request<'_>,
    export: &CompletedExport,
    emit: &(dyn Fn(EventKind<'_>) + Sync),
) -> Result<Stored, AttemptError> {
    let download = request
        .client
        .download(&export.signed_url)
        .await
        .map_err(|error| AttemptError {
            fresh_export_helps: d1_error_helped_by_fresh_export(&error),
            message: format!("download failed: {}", error_chain(&error)),
        })?;
    let total = download.content_length();
    emit(EventKind::DownloadStarted {
        content_length: total,
    });
    // The sink sees an io::Error; keep the client's own error to decide what to do next.
    let source_error: Arc<Mutex<Option<d1_export::Error>>> = Arc::default();
    let body = checked_body(download, Arc::clone(&source_error));
    let mut metadata = BTreeMap::new();
    metadata.insert("d1-database-id".to_owned(), request.database_id.to_owned());
    metadata.insert("d1-bookmark".to_owned(), export.bookmark.clone());
    let put = store::Put {
        sink: request.sink,
        key: request.key,
        total,
        compression: request.compression,
        metadata,
        part_size: request.part_size,
    };
    store::store(put, body, emit).await.map_err(|error| {
        let source = source_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match source {
            Some(d1) if error.kind() == SinkErrorKind::SourceFailed => AttemptError {
                fresh_export_helps: d1_error_helped_by_fresh_export(&d1),
                message: format!("download failed: {}", error_chain(&d1)),
            },
            _ => AttemptError {
                fresh_export_helps: false,
                message: format!("upload to {} failed: {}", request.key, error_chain(&error)),
            },
        }
    })
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

fn d1_error_helped_by_fresh_export(error: &d1_export::Error) -> bool {
    matches!(error.kind(), D1ErrorKind::UrlExpired) || error.is_retryable()
}
