//! Export options, events and results, and the start/poll primitives.
//!
//! The whole export loop lives in `export_run.rs`; this file knows the wire
//! format of one export request and its answer.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{D1Client, OnRetry, Payload, ignore_retry};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::SignedUrl;
use crate::wire::{classify_text, message_list, message_text};

/// What the dump contains. The default is every table, schema and data.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpOptions {
    /// Only these tables (empty: all). Naming real tables skips D1's
    /// virtual-table check; indexes, triggers and views are then kept only
    /// if their own names are listed too.
    pub tables: Vec<String>,
    /// Leave out the rows (schema only).
    pub no_data: bool,
    /// Leave out the schema (rows only).
    pub no_schema: bool,
}

/// How [`D1Client::export`] runs.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// What the dump contains.
    pub dump: DumpOptions,
    /// The pause between poll requests, measured from one request's start to
    /// the next (default 1 s). D1 cancels an export that is not polled
    /// continually, so keep this short.
    pub poll_interval: Duration,
    /// A client-side limit on the whole export; `None` (the default) waits as
    /// long as the server keeps working. Exceeding it is [`ErrorKind::TimedOut`].
    pub max_wait: Option<Duration>,
    /// If another export is running, keep trying to start for this long
    /// instead of failing with [`ErrorKind::ExportInProgress`] (default `None`).
    pub wait_if_busy: Option<Duration>,
    /// The pause between start attempts while waiting for a busy database
    /// (default 10 s).
    pub busy_retry_interval: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            dump: DumpOptions::default(),
            poll_interval: Duration::from_secs(1),
            max_wait: None,
            wait_if_busy: None,
            busy_retry_interval: Duration::from_secs(10),
        }
    }
}

/// Progress of [`D1Client::export`], delivered to the caller's callback.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportEvent {
    /// The server accepted the export; it is identified by `bookmark`.
    Started {
        /// The bookmark every poll sends back.
        bookmark: String,
    },
    /// A poll request was answered (not emitted for the start request).
    Polled {
        /// Polls so far, counting this one.
        polls: u32,
        /// The server's status: `active`, `complete`, ...
        status: String,
    },
    /// A message from the server, such as `Uploaded part 2` (incremental).
    Message(String),
    /// A request failed transiently, was rate limited, or the database was
    /// busy; the client waits `delay` and tries again.
    Retrying {
        /// Why, without secrets.
        reason: String,
        /// How long the client waits.
        delay: Duration,
    },
    /// The dump is ready to download.
    Completed {
        /// The export's bookmark.
        bookmark: String,
    },
}

/// A finished export.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct CompletedExport {
    /// Where to download the dump; valid for about an hour.
    pub signed_url: SignedUrl,
    /// The export's bookmark.
    pub bookmark: String,
    /// The dump's file name, e.g. `<db-uuid>-<bookmark>.sql`.
    pub filename: Option<String>,
    /// How many poll requests it took (the start request not counted).
    pub polls: u32,
}

/// Where an export stands after one start or poll request.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum ExportState {
    /// Still running: poll again with the bookmark.
    Active,
    /// Done.
    Complete {
        /// Where to download the dump.
        signed_url: SignedUrl,
        /// The dump's file name.
        filename: Option<String>,
    },
}

/// The answer to one start or poll request.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct ExportStatus {
    /// The export's bookmark (stable for its whole run).
    pub bookmark: String,
    /// The server's status text: `active`, `complete`, ...
    pub status: String,
    /// Messages new since the previous request.
    pub messages: Vec<String>,
    /// Where the export stands.
    pub state: ExportState,
}

/// One answer, with a failure kept apart so its messages are not lost.
pub(crate) struct Reply {
    pub(crate) messages: Vec<String>,
    pub(crate) outcome: Result<ExportStatus>,
}

impl D1Client {
    /// Starts an export: one request. Poll it with [`poll_export`](Self::poll_export)
    /// at once and continually, or D1 cancels it. Most callers want
    /// [`export`](Self::export).
    pub async fn start_export(
        &self,
        account_id: &str,
        database_id: &str,
        dump: &DumpOptions,
    ) -> Result<ExportStatus> {
        self.export_request(account_id, database_id, dump, None, &ignore_retry)
            .await
            .outcome
    }

    /// Polls a running export: one request (retried on transient failures
    /// with the same bookmark).
    pub async fn poll_export(
        &self,
        account_id: &str,
        database_id: &str,
        dump: &DumpOptions,
        bookmark: &str,
    ) -> Result<ExportStatus> {
        self.export_request(account_id, database_id, dump, Some(bookmark), &ignore_retry)
            .await
            .outcome
    }

    pub(crate) async fn export_request(
        &self,
        account_id: &str,
        database_id: &str,
        dump: &DumpOptions,
        bookmark: Option<&str>,
        on_retry: OnRetry<'_>,
    ) -> Reply {
        let doing = match bookmark {
            None => format!("starting an export of D1 database {database_id}"),
            Some(_) => format!("polling the export of D1 database {database_id}"),
        };
        let url = self.inner.endpoint(&[
            "accounts",
            account_id,
            "d1",
            "database",
            database_id,
            "export",
        ]);
        let mut body = json!({
            "output_format": "polling",
            "dump_options": {"no_data": dump.no_data, "no_schema": dump.no_schema, "tables": dump.tables},
        });
        if let (Some(bookmark), Some(map)) = (bookmark, body.as_object_mut()) {
            map.insert(
                "current_bookmark".to_owned(),
                Value::String(bookmark.to_owned()),
            );
        }
        match self
            .inner
            .call(Method::POST, url, &Payload::Json(body), &doing, on_retry)
            .await
        {
            Ok(envelope) => parse_export_reply(&envelope, bookmark, &doing),
            Err(err) => Reply {
                messages: Vec::new(),
                outcome: Err(err),
            },
        }
    }
}

/// Reads `result` of an export answer: status, bookmark, messages, and on
/// completion `result.result.signed_url`.
pub(crate) fn parse_export_reply(
    envelope: &Value,
    previous_bookmark: Option<&str>,
    doing: &str,
) -> Reply {
    let inner = envelope.get("result").unwrap_or(&Value::Null);
    let messages = message_list(inner.get("messages"));
    let outcome = parse_outcome(inner, previous_bookmark, doing);
    Reply { messages, outcome }
}

fn parse_outcome(
    inner: &Value,
    previous_bookmark: Option<&str>,
    doing: &str,
) -> Result<ExportStatus> {
    if !inner.is_object() {
        return Err(protocol(doing, "the answer has no `result` object"));
    }
    let status = inner
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if inner.get("success").and_then(Value::as_bool) == Some(false) || status == "error" {
        return Err(export_failed(inner, doing));
    }
    let bookmark = inner
        .get("at_bookmark")
        .and_then(Value::as_str)
        .or(previous_bookmark)
        .ok_or_else(|| protocol(doing, "the answer has no `at_bookmark`"))?
        .to_owned();
    let signed = inner
        .pointer("/result/signed_url")
        .or_else(|| inner.get("signed_url"))
        .and_then(Value::as_str);
    let state = match (status.as_str(), signed) {
        (_, Some(url)) => ExportState::Complete {
            signed_url: SignedUrl::new(url)
                .map_err(|e| protocol(doing, &format!("the signed URL is unusable: {e}")))?,
            filename: inner
                .pointer("/result/filename")
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        ("complete", None) => {
            return Err(protocol(
                doing,
                "the export is complete but the answer has no signed URL",
            ));
        }
        // `active`, or a status this client does not know yet: keep polling.
        _ => ExportState::Active,
    };
    Ok(ExportStatus {
        bookmark,
        status,
        messages: message_list(inner.get("messages")),
        state,
    })
}

/// The error for `status: error` or an inner `success: false`.
fn export_failed(inner: &Value, doing: &str) -> Error {
    let reason = inner
        .get("error")
        .and_then(message_text)
        .or_else(|| {
            let texts = message_list(inner.get("errors"));
            (!texts.is_empty()).then(|| texts.join("; "))
        })
        .unwrap_or_else(|| "no reason given".to_owned());
    let (kind, text) = match classify_text(&reason) {
        Some(ErrorKind::ExportInProgress) => (
            ErrorKind::ExportInProgress,
            format!(
                "D1 is already exporting or importing this database ({reason}): wait for it to finish, or set ExportOptions::wait_if_busy"
            ),
        ),
        Some(ErrorKind::VirtualTablesUnsupported) => (
            ErrorKind::VirtualTablesUnsupported,
            format!(
                "D1 cannot export a database with virtual tables such as FTS5 ({reason}): export named real tables with DumpOptions::tables"
            ),
        ),
        _ => (
            ErrorKind::ExportFailed,
            format!(
                "the export failed on the server: {reason}; start a new export, and check the database if it fails again"
            ),
        ),
    };
    Error::new(kind, format!("{doing}: {text}")).with_server_message(Some(reason))
}

fn protocol(doing: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("{doing}: {what}; this client may need an update for this answer"),
    )
}
