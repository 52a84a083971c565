//! Import (restore): init with the file's md5, upload, ingest, poll.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, ETAG};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::client::{D1Client, Payload};
use crate::error::{Error, ErrorKind, Result};
use crate::import_source::{ImportOptions, ImportSource};
use crate::secret::SignedUrl;
use crate::wire::{classify_text, message_list, message_text};

/// Progress of [`D1Client::import`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportEvent {
    /// The file is being uploaded (`bytes` long).
    Uploading {
        /// The file's size.
        bytes: u64,
    },
    /// D1 already had a file with this md5; no upload was needed.
    AlreadyUploaded,
    /// Ingestion started; it is identified by `bookmark`.
    Ingesting {
        /// The bookmark each poll sends.
        bookmark: String,
    },
    /// A poll was answered.
    Polled {
        /// Polls so far.
        polls: u32,
        /// The server's status text.
        status: String,
    },
    /// A message from the server.
    Message(String),
    /// A request failed transiently; the client waits and tries again.
    Retrying {
        /// Why, without secrets.
        reason: String,
        /// How long the client waits.
        delay: Duration,
    },
}

/// A finished import.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct CompletedImport {
    /// The database's bookmark after the import.
    pub final_bookmark: Option<String>,
    /// How many statements ran.
    pub num_queries: Option<u64>,
    /// Metadata, as sent.
    pub meta: Value,
    /// Poll requests it took.
    pub polls: u32,
}

type Events<'a> = &'a (dyn Fn(&ImportEvent) + Send + Sync);

impl D1Client {
    /// Imports `source` (a dump, no `BEGIN`/`COMMIT`) into a database and
    /// waits for it to finish, polling every [`ImportOptions::poll_interval`].
    /// A file source is streamed, never held in memory. The database serves
    /// no queries meanwhile; a failed import leaves it as it was. Limits:
    /// 5 GiB per file, 100 KB per statement.
    pub async fn import(
        &self,
        account_id: &str,
        database_id: &str,
        source: &ImportSource,
        options: &ImportOptions,
        events: &(dyn Fn(&ImportEvent) + Send + Sync),
    ) -> Result<CompletedImport> {
        let (etag, len) = source.md5_and_len().await?;
        let init = self
            .import_call(
                account_id,
                database_id,
                json!({"action": "init", "etag": etag}),
                events,
            )
            .await?;
        let mut state = if let Some(upload_url) = init.get("upload_url").and_then(Value::as_str) {
            let upload_url = SignedUrl::new(upload_url)?;
            events(&ImportEvent::Uploading { bytes: len });
            self.upload(&upload_url, source, len, &etag).await?;
            let filename = init
                .get("filename")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let body = json!({"action": "ingest", "etag": etag, "filename": filename});
            self.import_call(account_id, database_id, body, events)
                .await?
        } else {
            events(&ImportEvent::AlreadyUploaded);
            init
        };
        let bookmark = state
            .get("at_bookmark")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        events(&ImportEvent::Ingesting {
            bookmark: bookmark.clone(),
        });
        let mut polls = 0;
        loop {
            emit(events, &state);
            check_import(&state, database_id)?;
            if state.get("status").and_then(Value::as_str) == Some("complete") {
                let done = state.get("result").cloned().unwrap_or(Value::Null);
                return Ok(CompletedImport {
                    final_bookmark: done
                        .get("final_bookmark")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    num_queries: done.get("num_queries").and_then(Value::as_u64),
                    meta: done.get("meta").cloned().unwrap_or(Value::Null),
                    polls,
                });
            }
            tokio::time::sleep(options.poll_interval).await;
            let body = json!({"action": "poll", "current_bookmark": bookmark});
            state = self
                .import_call(account_id, database_id, body, events)
                .await?;
            polls += 1;
            let status = state
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            events(&ImportEvent::Polled { polls, status });
        }
    }

    async fn import_call(
        &self,
        account_id: &str,
        database_id: &str,
        body: Value,
        events: Events<'_>,
    ) -> Result<Value> {
        let doing = format!("importing into D1 database {database_id}");
        let url = self.inner.endpoint(&[
            "accounts",
            account_id,
            "d1",
            "database",
            database_id,
            "import",
        ]);
        let on_retry = |reason: &str, delay: Duration| {
            events(&ImportEvent::Retrying {
                reason: reason.to_owned(),
                delay,
            });
        };
        let envelope = self
            .inner
            .call(Method::POST, url, &Payload::Json(body), &doing, &on_retry)
            .await?;
        Ok(envelope.get("result").cloned().unwrap_or(Value::Null))
    }

    /// PUTs the file to the presigned URL and checks the returned ETag.
    async fn upload(
        &self,
        url: &SignedUrl,
        source: &ImportSource,
        len: u64,
        etag: &str,
    ) -> Result<()> {
        let mut backoff = self.inner.retry.backoff();
        let doing = format!("uploading the import file to {url}");
        loop {
            let started = Instant::now();
            // An explicit length: presigned PUTs refuse chunked uploads.
            let sent = self
                .inner
                .http
                .put(url.url().clone())
                .header(CONTENT_LENGTH, len)
                .body(source.body().await?)
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => {
                    let got = response
                        .headers()
                        .get(ETAG)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if got.trim_matches('"') == etag {
                        return Ok(());
                    }
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "{doing}: the stored file's ETag `{got}` is not its md5 {etag}; retry the import"
                        ),
                    ));
                }
                Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                    return Err(Error::new(
                        ErrorKind::UrlExpired,
                        format!(
                            "{doing}: the upload URL was refused ({}); start the import again",
                            response.status()
                        ),
                    ));
                }
                Ok(response) if response.status().is_server_error() => {
                    format!("the server answered {}", response.status())
                }
                Ok(response) => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("{doing}: the server answered {}", response.status()),
                    ));
                }
                Err(_) => "the connection failed".to_owned(),
            };
            let Some(delay) = backoff.next() else {
                return Err(Error::new(
                    ErrorKind::Transient,
                    format!("{doing}: {failure}; retry the import later"),
                ));
            };
            tracing::debug!(elapsed = ?started.elapsed(), ?delay, "retrying import upload");
            tokio::time::sleep(delay).await;
        }
    }
}

fn emit(events: Events<'_>, state: &Value) {
    for message in message_list(state.get("messages")) {
        events(&ImportEvent::Message(message));
    }
}

/// Fails on `status: error` or inner `success: false`.
pub(crate) fn check_import(state: &Value, database_id: &str) -> Result<()> {
    let failed = state.get("success").and_then(Value::as_bool) == Some(false)
        || state.get("status").and_then(Value::as_str) == Some("error");
    if !failed {
        return Ok(());
    }
    let reason = state
        .get("error")
        .and_then(message_text)
        .unwrap_or_else(|| "no reason given".to_owned());
    // The server quotes the failing statement, line breaks included: keep the message on one
    // line.
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    let kind = match classify_text(&reason) {
        Some(ErrorKind::ExportInProgress) => ErrorKind::ExportInProgress,
        _ => ErrorKind::ImportFailed,
    };
    Err(Error::new(
        kind,
        format!("importing into D1 database {database_id}: the import failed on the server: {reason}; the database is unchanged (a failed import changes nothing)"),
    )
    .with_server_message(Some(reason)))
}
