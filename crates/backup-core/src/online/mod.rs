//! The online source (`export = "online"`): a live D1 database read through the query API,
//! table by table in keyset pages, and written in D1's dump format by the dump module's
//! writer. **No D1 export is ever started**, so the database keeps serving queries: each
//! request holds it for one page (about [`pages::PAGE_BYTES`] of answer), not for the
//! whole dump.
//!
//! This module is a row source of `crate::dump` (see its "Row sources"): it reads
//! `sqlite_schema` through `/raw` ([`schema`]), asks `crate::dump::plan` for the steps in
//! D1's order, and reads each table's rows in pages ([`pages`]) as typed, exact cells, which
//! the writer encodes exactly as it does for the local SQLite source: byte-identical to
//! D1's export wherever that export is lossless, a lossless form where it is not (integers
//! beyond ±2^53, integral REALs outside REAL columns, `-0.0`, text with NUL or invalid
//! UTF-8, text mixing real newlines and a literal backslash-n). Virtual tables, FTS5
//! settings, `sqlite_sequence`, `sqlite_stat1`, indexes, triggers and views come out as the
//! local source writes them.
//!
//! # Pages
//!
//! Rowid tables (and virtual tables) are paged by rowid, `WITHOUT ROWID` tables by their
//! primary key in its b-tree's order (directions and collations included), so each page is
//! one index range and the order is the export's. The first page of a table has
//! [`pages::FIRST_PAGE_ROWS`] rows; later pages are sized from the row width seen so that an
//! answer is about 1 MiB. A page D1 refuses for its size is split (fewer rows), not failed.
//!
//! # Budget and failures
//!
//! Every request goes through the engine's `D1Client`: the token's shared request budget,
//! and its retries of 429 (`retry-after`), 5xx and dropped connections. A page that still
//! fails with a retryable error is asked again up to [`PAGE_RETRIES`] times, after a pause,
//! from the same key: the table is never read again from its start.
//!
//! # Consistency
//!
//! The read is not one transaction. The Time Travel bookmark is read before the schema and
//! after the last page: unchanged, the dump is a snapshot of that bookmark
//! (`consistency = "snapshot"`); changed, it is `"online"`, with both bookmarks in the
//! manifest and a note in the report, or, under `[run] require_snapshot`, the stream fails
//! before it ends, so the upload is aborted and nothing is left at the key.
//!
//! # Memory
//!
//! One page at a time: the dump streams into the sink as it is read, like the export's
//! download.

mod pages;
mod schema;
mod wide;

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use d1_export::D1Client;
use futures::StreamExt;
use r2_sink::{ByteStream, ErrorKind as SinkErrorKind};
use serde_json::Value;

use crate::compression::Compression;
use crate::dump::plan::{Filter, Read, Role, Step, plan};
use crate::dump::{DumpWriter, Insert};
use crate::encryption::Recipients;
use crate::error::{Error, ErrorKind};
use crate::manifest::DumpConsistency;
use crate::progress::EventKind;
use crate::sinks::SharedSink;
use crate::store::{self, Put};
use crate::transfer::{Failure, Transferred};

use pages::{After, Owned, Zeros};
use schema::{Key, Shape};

/// Times a failed page is asked again (after the client's own retries), from the same key.
pub(crate) const PAGE_RETRIES: u32 = 3;
/// The pause before a page is asked again; doubled each time.
const PAGE_RETRY_PAUSE: Duration = Duration::from_secs(2);
/// Bytes of SQL gathered before they are handed to the sink.
const CHUNK_BYTES: usize = 256 * 1024;

/// One online backup.
pub(crate) struct Request<'a> {
    pub(crate) client: &'a D1Client,
    pub(crate) sink: &'a SharedSink,
    pub(crate) account_id: &'a str,
    pub(crate) database_id: &'a str,
    pub(crate) key: &'a str,
    pub(crate) compression: Compression,
    /// Encrypts the stored dump to these recipients, when set.
    pub(crate) encryption: Option<&'a Recipients>,
    pub(crate) part_size: Option<u64>,
    /// Fail, leaving nothing at the key, when the database changed while it was read.
    pub(crate) require_snapshot: bool,
}

/// What the reader learned, for the manifest and the report.
#[derive(Debug, Default)]
struct Outcome {
    before: Option<String>,
    after: Option<String>,
    virtual_tables: Vec<String>,
    rows: u64,
    pages: u64,
    /// Pages asked again after a failure, and pages split for their size.
    retried_pages: u64,
    split_pages: u64,
    /// The server has no `atan2`: REAL `-0.0` was read as `0.0`.
    unsigned_zeros: bool,
}

/// Reads the database online and stores its dump at `key`.
pub(crate) async fn run(
    request: &Request<'_>,
    emit: &(dyn Fn(EventKind<'_>) + Sync),
) -> Result<Transferred, Failure> {
    let reader = Reader::new(
        request.client.clone(),
        (request.account_id, request.database_id),
        request.require_snapshot,
    );
    let error: Arc<Mutex<Option<Error>>> = Arc::default();
    let outcome: Arc<Mutex<Outcome>> = Arc::default();
    let body = stream(reader, Arc::clone(&error), Arc::clone(&outcome));
    emit(EventKind::DownloadStarted {
        content_length: None,
    });
    let mut metadata = BTreeMap::new();
    metadata.insert("d1-database-id".to_owned(), request.database_id.to_owned());
    metadata.insert("source".to_owned(), "online".to_owned());
    let put = Put {
        sink: request.sink,
        key: request.key,
        total: None,
        compression: request.compression,
        encryption: request.encryption,
        metadata,
        part_size: request.part_size,
    };
    let stored = store::store(put, body, emit).await;
    let outcome = std::mem::take(&mut *outcome.lock().unwrap_or_else(PoisonError::into_inner));
    let stored = match stored {
        Ok(stored) => stored,
        Err(sink_error) => {
            let source = error.lock().unwrap_or_else(PoisonError::into_inner).take();
            let error = match source {
                Some(error) if sink_error.kind() == SinkErrorKind::SourceFailed => error,
                _ => Error::from(sink_error)
                    .context(format_args!("upload to {} failed", request.key)),
            };
            return Err(Failure {
                error,
                exports: 0,
                bookmark: outcome.before,
            });
        }
    };
    Ok(transferred(stored, outcome))
}

fn transferred(stored: store::Stored, outcome: Outcome) -> Transferred {
    let moved = outcome.before != outcome.after;
    let mut notes = vec![format!(
        "read online through the query API (no D1 export): {} rows in {} pages",
        outcome.rows, outcome.pages
    )];
    if outcome.retried_pages + outcome.split_pages > 0 {
        notes.push(format!(
            "{} page(s) asked again after a failure, {} split for their size",
            outcome.retried_pages, outcome.split_pages
        ));
    }
    if outcome.unsigned_zeros {
        notes.push("the server has no atan2() (SQLite's math functions), so a REAL -0.0 outside REAL columns was read and stored as 0.0".to_owned());
    }
    let consistency = if moved {
        notes.push(format!(
            "the database changed while it was read (bookmark {} before, {} after): the dump is consistent per page, not one snapshot; set [run] require_snapshot to fail instead",
            outcome.before.as_deref().unwrap_or("?"),
            outcome.after.as_deref().unwrap_or("?"),
        ));
        DumpConsistency::Online
    } else {
        DumpConsistency::Snapshot
    };
    Transferred {
        stored,
        bookmark: outcome.before,
        bookmark_after: outcome.after.filter(|_| moved),
        exports: 0,
        notes,
        consistency,
        virtual_tables: outcome.virtual_tables,
        export: Some("online"),
        export_reason: None,
    }
}

/// The reader as the sink's body: an error ends it (the upload is aborted) and is kept in
/// `error` for the caller; what was learned goes to `outcome` at the end.
fn stream(
    reader: Reader,
    error: Arc<Mutex<Option<Error>>>,
    outcome: Arc<Mutex<Outcome>>,
) -> ByteStream {
    futures::stream::unfold(Some(reader), move |state| {
        let error = Arc::clone(&error);
        let outcome = Arc::clone(&outcome);
        async move {
            let mut reader = state?;
            match reader.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), Some(reader))),
                Ok(None) => {
                    *outcome.lock().unwrap_or_else(PoisonError::into_inner) =
                        std::mem::take(&mut reader.outcome);
                    None
                }
                Err(e) => {
                    let as_io = io::Error::other(e.chain());
                    *outcome.lock().unwrap_or_else(PoisonError::into_inner) =
                        std::mem::take(&mut reader.outcome);
                    *error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                    Some((Err(as_io), None))
                }
            }
        }
    })
    .boxed()
}

/// One piece of the dump still to write, owned (the plan's steps borrow the catalog).
#[derive(Debug)]
enum Work {
    Statement(&'static str),
    CreateTable(String),
    Stored(String),
    Rebuild(String),
    Fts5Config(String),
    /// A table's rows: its stored SQL, how it is read, then (once known) its shape and
    /// where the next page starts.
    Rows {
        table: String,
        sql: String,
        read: Read,
        paging: Option<Paging>,
    },
}

#[derive(Debug)]
struct Paging {
    shape: Shape,
    insert: Insert,
    after: After,
    limit: usize,
}

/// The state of one online read.
pub(crate) struct Reader {
    client: D1Client,
    account_id: String,
    database_id: String,
    require_snapshot: bool,
    steps: VecDeque<Work>,
    /// Statements not yet handed to the sink.
    writer: DumpWriter<Vec<u8>>,
    started: bool,
    finished: bool,
    /// Whether `-0.0` can be read as such (the server has `atan2`).
    zeros: Zeros,
    outcome: Outcome,
}

impl Reader {
    fn new(client: D1Client, ids: (&str, &str), require_snapshot: bool) -> Self {
        Self {
            client,
            account_id: ids.0.to_owned(),
            database_id: ids.1.to_owned(),
            require_snapshot,
            steps: VecDeque::new(),
            writer: DumpWriter::new(Vec::new()),
            started: false,
            finished: false,
            zeros: Zeros::Signed,
            outcome: Outcome::default(),
        }
    }

    /// The next piece of SQL, `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if !self.started {
            self.started = true;
            self.start().await?;
        }
        while let Some(work) = self.steps.pop_front() {
            match work {
                Work::Statement(sql) => self.writer.statement(sql.as_bytes()).map_err(write)?,
                Work::CreateTable(sql) => self.writer.create_table(&sql).map_err(write)?,
                Work::Stored(sql) => self.writer.stored(&sql).map_err(write)?,
                Work::Rebuild(table) => self.writer.rebuild(&table).map_err(write)?,
                Work::Fts5Config(table) => self.fts5_config(&table).await?,
                Work::Rows {
                    table,
                    sql,
                    read,
                    paging,
                } => {
                    let mut paging = match paging {
                        Some(paging) => paging,
                        None => self.paging(&table, &sql, read).await?,
                    };
                    if !self.page(&mut paging).await? {
                        self.steps.push_front(Work::Rows {
                            table,
                            sql,
                            read,
                            paging: Some(paging),
                        });
                    }
                }
            }
            if self.writer.get_mut().len() >= CHUNK_BYTES {
                return Ok(Some(std::mem::take(self.writer.get_mut())));
            }
        }
        if !self.finished {
            self.finished = true;
            self.finish().await?;
        }
        let rest = std::mem::take(self.writer.get_mut());
        Ok(Some(rest).filter(|r| !r.is_empty()))
    }

    /// The bookmark before, the catalog, and the plan's steps.
    async fn start(&mut self) -> Result<(), Error> {
        self.outcome.before = Some(self.bookmark().await?);
        // D1 has SQLite's math functions; a server without them cannot tell -0.0 from 0.0.
        if let Err(error) = self.raw("SELECT atan2(0.0, -1.0)", &[]).await {
            if error.is_retryable() {
                return Err(Error::from(error).context("reading the database online failed"));
            }
            self.zeros = Zeros::Unsigned;
            self.outcome.unsigned_zeros = true;
        }
        let rows = self.rows(schema::SCHEMA_SQL, &[]).await?;
        let (tables, objects) = schema::catalog(rows)?;
        let filter = Filter {
            tables: &[],
            no_data: false,
            no_schema: false,
        };
        self.outcome.virtual_tables = tables
            .iter()
            .filter(|t| matches!(t.role, Role::Virtual(_)))
            .map(|t| t.name.clone())
            .collect();
        let sql_of = |name: &str| {
            tables
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.sql.clone())
                .unwrap_or_default()
        };
        for step in plan(&tables, &objects, filter).0 {
            self.steps.push_back(match step {
                Step::Statement(sql) => Work::Statement(sql),
                Step::CreateTable(sql) => Work::CreateTable(sql.to_owned()),
                Step::Stored(sql) => Work::Stored(sql.to_owned()),
                Step::Rebuild(table) => Work::Rebuild(table.to_owned()),
                Step::Fts5Config(table) => Work::Fts5Config(table.to_owned()),
                Step::Rows(table, read) => Work::Rows {
                    table: table.to_owned(),
                    sql: sql_of(table),
                    read,
                    paging: None,
                },
            });
        }
        Ok(())
    }

    /// The bookmark after: a moved database fails here under `require_snapshot`, before
    /// the stream ends, so that the upload is aborted.
    async fn finish(&mut self) -> Result<(), Error> {
        let after = self.bookmark().await?;
        let before = self.outcome.before.clone().unwrap_or_default();
        self.outcome.after = Some(after.clone());
        if self.require_snapshot && before != after {
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "the database changed while it was read online (bookmark {before} before, {after} after) and a snapshot is required ([run] require_snapshot): nothing was stored; back it up again when it is quieter, or use D1's export"
                ),
            ));
        }
        Ok(())
    }

    async fn bookmark(&self) -> Result<String, Error> {
        self.client
            .current_bookmark(&self.account_id, &self.database_id)
            .await
            .map_err(|e| Error::from(e).context("cannot read the database's bookmark"))
    }

    /// What reading a table's pages needs.
    async fn paging(&mut self, table: &str, sql: &str, read: Read) -> Result<Paging, Error> {
        let with_rowid = read == Read::WithRowid;
        let virtual_table = read != Read::TableScan;
        let shape = self.shape(table, sql, virtual_table, with_rowid).await?;
        let insert = Insert::new(
            table,
            shape.columns.iter().map(|(c, _)| c.as_str()),
            with_rowid,
        );
        Ok(Paging {
            shape,
            insert,
            after: After::Start,
            limit: pages::FIRST_PAGE_ROWS,
        })
    }

    /// Reads and writes one page; true once the table is read to its end.
    async fn page(&mut self, paging: &mut Paging) -> Result<bool, Error> {
        let rows = self.page_rows(paging).await?;
        self.outcome.pages += 1;
        let mut bytes = 0;
        let columns = paging.shape.columns.len();
        for row in &rows {
            if row.len() != columns + 1 {
                return Err(protocol("a page answered a row of the wrong width"));
            }
            bytes += row.iter().map(pages::answered_bytes).sum::<usize>();
            let cells = row[1..]
                .iter()
                .map(Owned::decode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.context(format_args!("reading table {}", paging.shape.name)))?;
            let rowid = match &paging.shape.key {
                Key::Rowid(_) => Some(
                    row[0]
                        .as_str()
                        .and_then(|r| r.parse::<i64>().ok())
                        .ok_or_else(|| protocol("a page answered a row without its rowid"))?,
                ),
                Key::PrimaryKey(_) => None,
            };
            let shape = &paging.shape;
            self.writer
                .row(&paging.insert, |out| {
                    if shape.with_rowid {
                        let rowid = rowid.unwrap_or_default();
                        out.push(
                            crate::dump::Cell::Integer(rowid),
                            crate::dump::Affinity::Integer,
                        );
                    }
                    for (cell, (_, affinity)) in cells.iter().zip(&shape.columns) {
                        out.push(cell.as_cell(), *affinity);
                    }
                    Ok::<_, io::Error>(())
                })
                .map_err(write)?;
            paging.after = match (&paging.shape.key, rowid) {
                (Key::Rowid(_), Some(rowid)) => After::Rowid(rowid),
                (Key::PrimaryKey(key), _) => {
                    After::Key(key.iter().map(|k| cells[k.index].clone()).collect())
                }
                (Key::Rowid(_), None) => After::Start,
            };
            self.outcome.rows += 1;
        }
        let full = rows.len() >= paging.limit;
        paging.limit = pages::next_limit(paging.limit, rows.len(), bytes);
        Ok(!full)
    }

    /// The rows of the next page, asked again after a retryable failure and split when D1
    /// refuses it for its size.
    async fn page_rows(&mut self, paging: &mut Paging) -> Result<Vec<Vec<Value>>, Error> {
        let mut failures = 0;
        loop {
            let sql = pages::page_sql(&paging.shape, &paging.after, paging.limit, self.zeros);
            let error = match self.raw(&sql, &[]).await {
                Ok(rows) => return Ok(rows),
                Err(error) => error,
            };
            let table = &paging.shape.name;
            if pages::refused_for_size(&error) {
                self.outcome.split_pages += 1;
                if paging.limit > 1 {
                    paging.limit /= 2;
                    continue;
                }
                // One row is too wide for an answer: read it in pieces.
                return self.wide_row(paging).await;
            }
            if error.is_retryable() && failures < PAGE_RETRIES {
                tokio::time::sleep(PAGE_RETRY_PAUSE * 2u32.pow(failures)).await;
                failures += 1;
                self.outcome.retried_pages += 1;
                continue;
            }
            return Err(Error::from(error).context(format_args!(
                "reading table {table} online failed (after {failures} retries of the page)"
            )));
        }
    }

    /// FTS5 settings (`rank`, `pgsz`, …) as the local source writes them.
    async fn fts5_config(&mut self, table: &str) -> Result<(), Error> {
        let rows = self
            .rows(&schema::fts5_config_sql(table, self.zeros), &[])
            .await?;
        let insert = Insert::fts5_config(table);
        for row in rows {
            let cells = row
                .iter()
                .map(Owned::decode)
                .collect::<Result<Vec<_>, _>>()?;
            self.writer
                .row(&insert, |out| {
                    for cell in &cells {
                        out.push(cell.as_cell(), crate::dump::Affinity::Blob);
                    }
                    Ok::<_, io::Error>(())
                })
                .map_err(write)?;
        }
        Ok(())
    }

    async fn raw(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, d1_export::Error> {
        let results = self
            .client
            .raw(&self.account_id, &self.database_id, sql, params)
            .await?;
        Ok(results
            .into_iter()
            .next()
            .map(|r| r.rows)
            .unwrap_or_default())
    }

    /// One query's rows; a failure as the crate's error.
    async fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, Error> {
        self.raw(sql, params)
            .await
            .map_err(|e| Error::from(e).context("reading the database online failed"))
    }
}

fn protocol(what: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("the query API answered unexpectedly: {what}"),
    )
}

/// Writing into memory does not fail; should it, it is a local error.
fn write(error: io::Error) -> Error {
    Error::local_io("writing the dump failed", error)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use std::sync::Arc;

    use d1_export::RetryPolicy;
    use d1_export::testing::{D1Simulator, Fault, SimulatedDatabase};

    use super::*;
    use crate::testing::SqliteD1;

    const ACCOUNT: &str = "e5a9830215a8d88961dc6c80a8c7442a";

    async fn read_all(client: D1Client, uuid: &str) -> (Vec<u8>, Outcome) {
        let mut reader = Reader::new(client, (ACCOUNT, uuid), false);
        let mut dump = Vec::new();
        while let Some(chunk) = reader.next_chunk().await.unwrap_or_else(|e| panic!("{e}")) {
            dump.extend(chunk);
        }
        (dump, reader.outcome)
    }

    /// A page that fails even after the client's retries (here: none) is asked again from
    /// the same key, after a pause on tokio's clock; nothing is read twice.
    #[tokio::test]
    async fn a_page_failing_past_the_clients_retries_is_asked_again_from_its_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("db.sqlite");
        let db = SqliteD1::open(&path).unwrap_or_else(|e| panic!("{e}"));
        db.query(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
             INSERT INTO t SELECT i, 'row ' || i FROM n",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sim = D1Simulator::start().await;
        sim.add_account(ACCOUNT, "token");
        let uuid = sim.add_backed_database(ACCOUNT, "db", Arc::new(db));
        let client = D1Client::builder("token".into())
            .base_url(sim.base_url())
            .retry(RetryPolicy::none())
            .no_request_timeout()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let (clean, _) = read_all(client.clone(), &uuid).await;
        let queries = sim.queries(&uuid);
        // The fourth query (the table's second page) and its first retry are cut off.
        sim.inject(
            &uuid,
            Fault::QueryDropped {
                after: queries + 3,
                count: 2,
            },
        );
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        let (dump, outcome) = read_all(client, &uuid).await;
        assert!(dump == clean, "the dump changed");
        assert_eq!(outcome.retried_pages, 2);
        assert_eq!(sim.queries(&uuid) - queries, queries + 2);
        assert!(
            started.elapsed() >= PAGE_RETRY_PAUSE * 3,
            "{:?}",
            started.elapsed()
        );
    }
}
