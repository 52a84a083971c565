//! [`D1Client::export`]: start, poll continually, report progress, finish.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::D1Client;
use crate::error::{Error, ErrorKind, Result};
use crate::export::{
    CompletedExport, ExportEvent, ExportOptions, ExportState, ExportStatus, Reply,
};

/// The caller's progress callback.
type Events<'a> = &'a (dyn Fn(&ExportEvent) + Send + Sync);

impl D1Client {
    /// Runs a whole export and returns the signed URL of the finished dump.
    ///
    /// Sends one start request, then polls with the export's bookmark every
    /// [`poll_interval`](ExportOptions::poll_interval) until the server
    /// reports `complete`. Without faults that is `1 + polls` requests.
    /// Transient failures while polling (5xx, HTML or other non-JSON bodies,
    /// dropped connections) retry the *poll*, never start a second export.
    ///
    /// `events` sees, in order: [`Started`](ExportEvent::Started) once, then
    /// per poll a [`Polled`](ExportEvent::Polled) followed by that answer's
    /// [`Message`](ExportEvent::Message)s (the start answer's messages follow
    /// `Started`), [`Retrying`](ExportEvent::Retrying) before any wait
    /// caused by a failure, and [`Completed`](ExportEvent::Completed) last.
    /// Keep the callback quick; it runs between requests.
    ///
    /// If the start request itself is retried after a dropped connection and
    /// the first attempt did reach the server, D1 answers "export in
    /// progress"; that surfaces as [`ErrorKind::ExportInProgress`] unless
    /// [`wait_if_busy`](ExportOptions::wait_if_busy) is set.
    pub async fn export(
        &self,
        account_id: &str,
        database_id: &str,
        options: &ExportOptions,
        events: &(dyn Fn(&ExportEvent) + Send + Sync),
    ) -> Result<CompletedExport> {
        let run = self.run_export(account_id, database_id, options, events);
        match options.max_wait {
            None => run.await,
            Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "the export of D1 database {database_id} did not complete within {limit:?} (ExportOptions::max_wait): \
                         raise the limit; the server may still be running it and refuse new exports until it ends"
                    ),
                ))
            }),
        }
    }

    async fn run_export(
        &self,
        account_id: &str,
        database_id: &str,
        options: &ExportOptions,
        events: Events<'_>,
    ) -> Result<CompletedExport> {
        let on_retry = |reason: &str, delay: Duration| {
            events(&ExportEvent::Retrying {
                reason: reason.to_owned(),
                delay,
            });
        };
        let mut sent_at = Instant::now();
        let mut status = self
            .start_when_free(account_id, database_id, options, events, &mut sent_at)
            .await?;
        events(&ExportEvent::Started {
            bookmark: status.bookmark.clone(),
        });
        emit_messages(events, &status.messages);
        let mut polls: u32 = 0;
        loop {
            if let ExportState::Complete {
                signed_url,
                filename,
            } = status.state
            {
                events(&ExportEvent::Completed {
                    bookmark: status.bookmark.clone(),
                });
                return Ok(CompletedExport {
                    signed_url,
                    bookmark: status.bookmark,
                    filename,
                    polls,
                });
            }
            tokio::time::sleep_until(sent_at + options.poll_interval).await;
            sent_at = Instant::now();
            let bookmark = status.bookmark.clone();
            let reply = self
                .export_request(
                    account_id,
                    database_id,
                    &options.dump,
                    Some(&bookmark),
                    &on_retry,
                )
                .await;
            polls += 1;
            let next = take_reply(events, reply, polls)?;
            status = next;
        }
    }

    /// Sends the start request, waiting out a busy database if the caller
    /// opted in.
    async fn start_when_free(
        &self,
        account_id: &str,
        database_id: &str,
        options: &ExportOptions,
        events: Events<'_>,
        sent_at: &mut Instant,
    ) -> Result<ExportStatus> {
        let on_retry = |reason: &str, delay: Duration| {
            events(&ExportEvent::Retrying {
                reason: reason.to_owned(),
                delay,
            });
        };
        let busy_deadline = options.wait_if_busy.map(|limit| Instant::now() + limit);
        loop {
            *sent_at = Instant::now();
            let reply = self
                .export_request(account_id, database_id, &options.dump, None, &on_retry)
                .await;
            emit_messages_on_failure(events, &reply);
            match reply.outcome {
                Err(err) if err.kind() == ErrorKind::ExportInProgress => {
                    let delay = options.busy_retry_interval;
                    match busy_deadline {
                        Some(deadline) if Instant::now() + delay <= deadline => {
                            events(&ExportEvent::Retrying {
                                reason: err.to_string(),
                                delay,
                            });
                            tokio::time::sleep(delay).await;
                        }
                        _ => return Err(err),
                    }
                }
                outcome => return outcome,
            }
        }
    }
}

/// Emits a poll's events and returns its status, or its error (after the
/// failed answer's messages; no `Polled` for a failed poll).
fn take_reply(events: Events<'_>, reply: Reply, polls: u32) -> Result<ExportStatus> {
    match reply.outcome {
        Ok(status) => {
            events(&ExportEvent::Polled {
                polls,
                status: status.status.clone(),
            });
            emit_messages(events, &status.messages);
            Ok(status)
        }
        Err(err) => {
            emit_messages(events, &reply.messages);
            Err(err)
        }
    }
}

fn emit_messages(events: Events<'_>, messages: &[String]) {
    for message in messages {
        events(&ExportEvent::Message(message.clone()));
    }
}

/// A failed start's messages are still worth showing.
fn emit_messages_on_failure(events: Events<'_>, reply: &Reply) {
    if reply.outcome.is_err() {
        emit_messages(events, &reply.messages);
    }
}
