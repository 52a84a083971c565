//! D1 databases with virtual tables, which D1's export refuses whole ("D1 Export error: cannot
//! export databases with Virtual Tables (fts5)").
//!
//! Before exporting, one query reads `sqlite_schema` through the query API ([`plan`]). Without
//! a virtual table the export is the usual one. With one, the dump object is built in two
//! parts, streamed into the sink as one upload:
//!
//! 1. D1's export of the real tables only (`dump_options.tables`: every table that is not
//!    virtual, not a virtual table's shadow table, not `_cf_*`/`sqlite_*`), which D1 allows.
//!    Indexes, triggers and views are not named: the export would write a trigger on an FTS
//!    table before the table exists.
//! 2. A tail read through the query API ([`tail`]) and appended after the exported bytes, in
//!    the order that restores: `sqlite_sequence` (`DELETE FROM sqlite_sequence;` plus its
//!    rows); each virtual table's stored `CREATE VIRTUAL TABLE`, its FTS5 settings and its
//!    content (written as `crate::dump::vtab` describes: rows of FTS tables with their own
//!    content, `'rebuild'` for external content, nothing for contentless); then every index,
//!    view and trigger (views before triggers, as a trigger may be on a view).
//!
//! This module is a row source of the dump module (`crate::dump`): it decides what is read and
//! in which order, and writes through `DumpWriter`. Values are read with SQLite's `quote()` on
//! the server, so they arrive as exact SQL literals (integers past 2^53 included) and are
//! written unchanged (`Cell::Literal`). Rows are paged by rowid, a page
//! sized to stay far under D1's 30 s and response limits. The result is not one snapshot: the
//! manifest says `per-table` (see `crate::manifest::DumpConsistency`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use d1_export::{D1Client, RawResult};
use futures::StreamExt;
use r2_sink::ByteStream;
use serde_json::Value;

use crate::dump::plan::Role;
use crate::dump::writer::{Cells, SEQUENCE_HEAD};
use crate::dump::{
    Affinity, Cell, Content, DumpWriter, Insert, TableClass, VirtualTable, quote_ident,
};

/// Rows per page when reading a virtual table: the first page's size and the bounds the
/// size adapts within, aiming at about [`PAGE_BYTES`] of SQL per page.
const PAGE_ROWS_FIRST: usize = 256;
const PAGE_ROWS_MAX: usize = 4096;
const PAGE_BYTES: usize = 1024 * 1024;

/// How a D1 database is exported.
#[derive(Debug)]
pub(crate) enum Plan {
    /// No virtual table: one export of the whole database, a snapshot.
    Whole,
    /// Virtual tables: the real tables exported, the rest appended.
    PerTable(Arc<PerTable>),
}

/// What a per-table backup exports and appends.
#[derive(Debug, Default)]
pub(crate) struct PerTable {
    /// The real tables, in creation order: `dump_options.tables`.
    pub(crate) tables: Vec<String>,
    /// Whether `sqlite_sequence` exists (its rows are appended).
    sequence: bool,
    /// The virtual tables, in creation order.
    virtual_tables: Vec<Virtual>,
    /// Every index, view and trigger's stored SQL (without its `;`), in the order that
    /// restores.
    objects: Vec<String>,
}

#[derive(Debug)]
struct Virtual {
    name: String,
    sql: String,
    parsed: VirtualTable,
}

impl PerTable {
    /// The virtual tables' names, in dump order.
    pub(crate) fn virtual_table_names(&self) -> Vec<String> {
        self.virtual_tables.iter().map(|v| v.name.clone()).collect()
    }
}

/// One row of `sqlite_schema`.
#[derive(Debug, Clone)]
struct SchemaRow {
    kind: String,
    name: String,
    tbl_name: String,
    sql: Option<String>,
}

/// Reads the database's schema (one query) and decides how to export it.
pub(crate) async fn plan(
    client: &D1Client,
    account_id: &str,
    database_id: &str,
) -> Result<Plan, ReadError> {
    let rows = first_rows(
        client
            .raw(
                account_id,
                database_id,
                "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid",
                &[],
            )
            .await?,
    );
    let rows = rows
        .into_iter()
        .map(|row| match row.as_slice() {
            [
                Value::String(kind),
                Value::String(name),
                Value::String(tbl_name),
                sql,
            ] => Ok(SchemaRow {
                kind: kind.clone(),
                name: name.clone(),
                tbl_name: tbl_name.clone(),
                sql: sql.as_str().map(str::to_owned),
            }),
            _ => Err(protocol("a row of sqlite_schema has an unexpected shape")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(plan_of(&rows))
}

/// The plan for a schema, rows in `sqlite_schema` rowid (creation) order.
fn plan_of(rows: &[SchemaRow]) -> Plan {
    let mut plan = PerTable::default();
    let mut candidates = Vec::new();
    for row in rows.iter().filter(|r| r.kind == "table") {
        let Some(sql) = &row.sql else { continue };
        // Shadow tables are told apart below, once every virtual table is known.
        let Ok(role) = Role::of(&row.name, sql, || Ok::<_, Infallible>(false));
        match role {
            Role::Sequence => plan.sequence = true,
            Role::Virtual(parsed) => plan.virtual_tables.push(Virtual {
                name: row.name.clone(),
                sql: sql.clone(),
                parsed,
            }),
            Role::Ordinary | Role::Shadow => candidates.push(row.name.clone()),
            // `_cf_*` and the other `sqlite_*` tables: D1's own, neither exported nor restored.
            Role::Stat | Role::Internal => {}
        }
    }
    if plan.virtual_tables.is_empty() {
        return Plan::Whole;
    }
    let is_shadow = |table: &str| {
        plan.virtual_tables
            .iter()
            .any(|v| v.parsed.is_shadow(&v.name, table))
    };
    let (shadows, tables): (Vec<String>, Vec<String>) =
        candidates.into_iter().partition(|t| is_shadow(t));
    plan.tables = tables;
    // Objects on tables the dump does not recreate could not be created on restore.
    let on_kept_table = |row: &&SchemaRow| {
        !TableClass::of(&row.tbl_name).is_internal() && !shadows.iter().any(|s| s == &row.tbl_name)
    };
    for kind in ["index", "view", "trigger"] {
        plan.objects.extend(
            rows.iter()
                .filter(|r| r.kind == kind)
                .filter(on_kept_table)
                .filter_map(|r| r.sql.clone()),
        );
    }
    Plan::PerTable(Arc::new(plan))
}

/// The appended part of a per-table dump, read through the query API as the sink consumes it.
///
/// `body_ended_with_newline` says whether the bytes before it ended with `\n` (D1's dump does
/// not, so the tail starts with one); it is read when the tail's first statement is written,
/// after the body was consumed. A query error ends the stream with an `io::Error` (so the
/// upload aborts) and is kept in `error` for the caller's message.
pub(crate) fn tail(
    client: D1Client,
    ids: (String, String),
    plan: &PerTable,
    body_ended_with_newline: Arc<AtomicBool>,
    error: Arc<Mutex<Option<ReadError>>>,
) -> ByteStream {
    let tail = Tail {
        client,
        account_id: ids.0,
        database_id: ids.1,
        steps: steps(plan),
        writer: None,
        body_ended_with_newline,
    };
    futures::stream::unfold(Some(tail), move |state| {
        let error = Arc::clone(&error);
        async move {
            let mut tail = state?;
            match tail.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), Some(tail))),
                Ok(None) => None,
                Err(e) => {
                    let as_io = io::Error::other(crate::error::error_chain(&e));
                    *error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                    Some((Err(as_io), None))
                }
            }
        }
    })
    .boxed()
}

/// One piece of the tail, in order.
#[derive(Debug)]
enum Step {
    /// A stored `CREATE` (virtual table, index, view, trigger), written with its `;`.
    Stored(String),
    /// `'rebuild'` of an external-content FTS table.
    Rebuild(String),
    /// `DELETE FROM sqlite_sequence;` and its rows (nothing when it has none).
    Sequence,
    /// FTS5 settings of a table, replayed from `<table>_config`.
    Fts5Config(String),
    /// A virtual table's rows.
    Rows(Rows),
}

/// A virtual table read page by page, by rowid.
#[derive(Debug)]
struct Rows {
    table: String,
    /// Whether rowids are written (FTS tables with their own content) or only the declared
    /// columns (other modules).
    with_rowid: bool,
    /// The declared columns, read before the first page.
    columns: Option<Vec<String>>,
    /// The last rowid read (an SQL integer literal).
    after: Option<String>,
    /// Rows asked for per page.
    limit: usize,
}

fn steps(plan: &PerTable) -> VecDeque<Step> {
    let mut steps = VecDeque::new();
    if plan.sequence {
        steps.push_back(Step::Sequence);
    }
    for vtab in &plan.virtual_tables {
        steps.push_back(Step::Stored(vtab.sql.clone()));
        if vtab.parsed.module == "fts5" {
            steps.push_back(Step::Fts5Config(vtab.name.clone()));
        }
        let rows = |with_rowid| {
            Step::Rows(Rows {
                table: vtab.name.clone(),
                with_rowid,
                columns: None,
                after: None,
                limit: PAGE_ROWS_FIRST,
            })
        };
        match vtab.parsed.content {
            Content::Own => steps.push_back(rows(true)),
            Content::Other => steps.push_back(rows(false)),
            Content::External => steps.push_back(Step::Rebuild(vtab.name.clone())),
            // Nothing readable is kept: the table comes back empty.
            Content::Contentless => {}
        }
    }
    steps.extend(plan.objects.iter().cloned().map(Step::Stored));
    steps
}

struct Tail {
    client: D1Client,
    account_id: String,
    database_id: String,
    steps: VecDeque<Step>,
    /// The tail's statements, into the chunk being built; created at the first statement,
    /// once the body was consumed and whether it ended with `\n` is known.
    writer: Option<DumpWriter<Vec<u8>>>,
    body_ended_with_newline: Arc<AtomicBool>,
}

impl Tail {
    /// The next non-empty piece of SQL, `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        loop {
            let Some(step) = self.steps.pop_front() else {
                return Ok(None);
            };
            match step {
                Step::Stored(sql) => self.out().stored(&sql)?,
                Step::Rebuild(table) => self.out().rebuild(&table)?,
                Step::Sequence => self.sequence().await?,
                Step::Fts5Config(table) => self.fts5_config(&table).await?,
                Step::Rows(mut rows) => {
                    if !self.page(&mut rows).await? {
                        self.steps.push_front(Step::Rows(rows));
                    }
                }
            }
            let chunk = self
                .writer
                .as_mut()
                .map(|w| std::mem::take(w.get_mut()))
                .unwrap_or_default();
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
    }

    /// The writer, continuing the exported body.
    fn out(&mut self) -> &mut DumpWriter<Vec<u8>> {
        let after_newline = &self.body_ended_with_newline;
        self.writer.get_or_insert_with(|| {
            DumpWriter::continuing(Vec::new(), after_newline.load(Ordering::Acquire))
        })
    }

    async fn sequence(&mut self) -> Result<(), ReadError> {
        let rows = self
            .rows("SELECT quote(name), quote(seq) FROM sqlite_sequence", &[])
            .await?;
        // With no row there is nothing to restore, and the table may not exist there.
        if rows.is_empty() {
            return Ok(());
        }
        let out = self.out();
        out.statement(SEQUENCE_HEAD.as_bytes())?;
        let insert = Insert::new("sqlite_sequence", ["name", "seq"], false);
        for row in rows {
            out.row(&insert, |cells| literals(cells, &row))?;
        }
        Ok(())
    }

    /// FTS5 settings (`rank`, `pgsz`, …) as the local dumper writes them; `version` is the
    /// module's own.
    async fn fts5_config(&mut self, table: &str) -> Result<(), ReadError> {
        let sql = format!(
            "SELECT quote(k), quote(v) FROM {} WHERE k <> 'version' ORDER BY k",
            quote_ident(&format!("{table}_config"))
        );
        let insert = Insert::fts5_config(table);
        for row in self.rows(&sql, &[]).await? {
            self.out().row(&insert, |cells| literals(cells, &row))?;
        }
        Ok(())
    }

    /// Reads one page of `rows` into the writer; true once the table is read to its end.
    async fn page(&mut self, rows: &mut Rows) -> Result<bool, ReadError> {
        if rows.columns.is_none() {
            rows.columns = Some(self.columns(&rows.table).await?);
        }
        let columns = rows.columns.clone().unwrap_or_default();
        let params: Vec<Value> = rows.after.iter().cloned().map(Value::String).collect();
        let sql = page_sql(&rows.table, &columns, rows.after.is_some(), rows.limit);
        let page = self.rows(&sql, &params).await?;
        let insert = Insert::new(
            &rows.table,
            columns.iter().map(String::as_str),
            rows.with_rowid,
        );
        let out = self.out();
        let start = out.get_mut().len();
        for row in &page {
            let Some(Value::String(rowid)) = row.first() else {
                return Err(protocol(
                    "a page of a virtual table has a row without its rowid",
                ));
            };
            let values = if rows.with_rowid { row } else { &row[1..] };
            out.row(&insert, |cells| literals(cells, values))?;
            rows.after = Some(rowid.clone());
        }
        let full = page.len() >= rows.limit;
        rows.limit = next_limit(rows.limit, out.get_mut().len() - start, full);
        Ok(!full)
    }

    /// The declared columns of a table (`PRAGMA table_info`, which leaves out hidden ones).
    async fn columns(&self, table: &str) -> Result<Vec<String>, ReadError> {
        let result = self
            .client
            .raw(
                &self.account_id,
                &self.database_id,
                &format!("PRAGMA table_info({})", quote_ident(table)),
                &[],
            )
            .await?;
        let first = result.into_iter().next().unwrap_or_default();
        let at = first.columns.iter().position(|c| c == "name").unwrap_or(1);
        first
            .rows
            .iter()
            .map(|row| match row.get(at) {
                Some(Value::String(name)) => Ok(name.clone()),
                _ => Err(protocol("PRAGMA table_info answered a row without a name")),
            })
            .collect()
    }

    async fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, ReadError> {
        let result = self
            .client
            .raw(&self.account_id, &self.database_id, sql, params)
            .await?;
        Ok(first_rows(result))
    }
}

/// The SELECT of one page: every value through `quote()`, the rowid first (the paging key).
/// After the first page, `?1` is the last rowid read, as text (exact past 2^53).
fn page_sql(table: &str, columns: &[String], after: bool, limit: usize) -> String {
    let values: Vec<String> = std::iter::once("quote(rowid)".to_owned())
        .chain(columns.iter().map(|c| format!("quote({})", quote_ident(c))))
        .collect();
    let filter = if after {
        " WHERE rowid > CAST(?1 AS INTEGER)"
    } else {
        ""
    };
    format!(
        "SELECT {} FROM {}{filter} ORDER BY rowid LIMIT {limit}",
        values.join(", "),
        quote_ident(table)
    )
}

/// The next page's row count: halved when a page was far over [`PAGE_BYTES`], doubled when a
/// full page was far under it.
fn next_limit(limit: usize, bytes: usize, full: bool) -> usize {
    if bytes > 2 * PAGE_BYTES {
        (limit / 2).max(1)
    } else if full && bytes < PAGE_BYTES / 4 {
        (limit * 2).min(PAGE_ROWS_MAX)
    } else {
        limit
    }
}

/// A row of `quote()` results as the cells of a row. `quote()` answers text; a number is
/// accepted as written (a server that sends it unquoted), anything else is refused before
/// anything of the row is written.
fn literals(cells: &mut Cells<'_>, row: &[Value]) -> Result<(), ReadError> {
    if row
        .iter()
        .any(|v| !matches!(v, Value::String(_) | Value::Number(_) | Value::Null))
    {
        return Err(protocol("quote() answered a value that is not text"));
    }
    for value in row {
        match value {
            Value::String(literal) => cells.push(Cell::Literal(literal), Affinity::Blob),
            Value::Number(n) => cells.push(Cell::Literal(&n.to_string()), Affinity::Blob),
            _ => cells.push(Cell::Null, Affinity::Blob),
        }
    }
    Ok(())
}

fn first_rows(results: Vec<RawResult>) -> Vec<Vec<Value>> {
    results
        .into_iter()
        .next()
        .map(|r| r.rows)
        .unwrap_or_default()
}

fn protocol(what: &'static str) -> ReadError {
    ReadError::Unexpected(what)
}

/// Why reading the schema or a table through the query API failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The API call failed.
    #[error(transparent)]
    Api(#[from] d1_export::Error),
    /// The answer had an unexpected shape.
    #[error("the query API answered unexpectedly: {0}")]
    Unexpected(&'static str),
    /// Writing the dump failed (it is written into memory, so this does not happen).
    #[error("writing the dump failed: {0}")]
    Write(#[from] io::Error),
}

impl ReadError {
    /// As the crate's error: the client's, classified, or a protocol error.
    pub(crate) fn into_error(self) -> crate::error::Error {
        match self {
            ReadError::Api(error) => error.into(),
            unexpected @ ReadError::Unexpected(_) => {
                crate::error::Error::new(crate::error::ErrorKind::Protocol, unexpected.to_string())
            }
            ReadError::Write(error) => {
                crate::error::Error::local_io("writing the dump failed", error)
            }
        }
    }

    /// The client's error, when the call itself failed.
    pub(crate) fn api(&self) -> Option<&d1_export::Error> {
        match self {
            ReadError::Api(error) => Some(error),
            ReadError::Unexpected(_) | ReadError::Write(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, name: &str, tbl_name: &str, sql: Option<&str>) -> SchemaRow {
        SchemaRow {
            kind: kind.to_owned(),
            name: name.to_owned(),
            tbl_name: tbl_name.to_owned(),
            sql: sql.map(str::to_owned),
        }
    }

    /// The fixture `fts5` database's schema, plus a view, a trigger on it and an autoindex.
    fn fts5_schema() -> Vec<SchemaRow> {
        let fts = |name: &str, sql: &str| row("table", name, name, Some(sql));
        vec![
            row(
                "table",
                "_cf_METADATA",
                "_cf_METADATA",
                Some("CREATE TABLE _cf_METADATA (key INTEGER PRIMARY KEY, value BLOB)"),
            ),
            row(
                "table",
                "articles",
                "articles",
                Some("CREATE TABLE articles (id INTEGER PRIMARY KEY)"),
            ),
            fts(
                "articles_fts",
                "CREATE VIRTUAL TABLE articles_fts USING fts5(title, body, content='articles', content_rowid='id')",
            ),
            fts(
                "articles_fts_data",
                "CREATE TABLE 'articles_fts_data'(id INTEGER PRIMARY KEY, block BLOB)",
            ),
            fts(
                "articles_fts_idx",
                "CREATE TABLE 'articles_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID",
            ),
            row(
                "index",
                "sqlite_autoindex_articles_fts_idx_1",
                "articles_fts_idx",
                None,
            ),
            fts(
                "articles_fts_docsize",
                "CREATE TABLE 'articles_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB)",
            ),
            fts(
                "articles_fts_config",
                "CREATE TABLE 'articles_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID",
            ),
            row(
                "trigger",
                "articles_ai",
                "articles",
                Some("CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN SELECT 1; END"),
            ),
            row(
                "table",
                "sqlite_sequence",
                "sqlite_sequence",
                Some("CREATE TABLE sqlite_sequence(name,seq)"),
            ),
            row(
                "table",
                "comments",
                "comments",
                Some("CREATE TABLE comments (id INTEGER PRIMARY KEY AUTOINCREMENT)"),
            ),
            fts(
                "notes_fts",
                "CREATE VIRTUAL TABLE notes_fts USING fts5(note, tag UNINDEXED)",
            ),
            fts(
                "notes_fts_content",
                "CREATE TABLE 'notes_fts_content'(id INTEGER PRIMARY KEY, c0, c1)",
            ),
            row(
                "view",
                "v",
                "v",
                Some("CREATE VIEW v AS SELECT * FROM comments"),
            ),
            row(
                "trigger",
                "v_ins",
                "v",
                Some("CREATE TRIGGER v_ins INSTEAD OF INSERT ON v BEGIN SELECT 1; END"),
            ),
            row(
                "index",
                "comments_id",
                "comments",
                Some("CREATE INDEX comments_id ON comments(id)"),
            ),
            row(
                "index",
                "cf_index",
                "_cf_METADATA",
                Some("CREATE INDEX cf_index ON _cf_METADATA(value)"),
            ),
        ]
    }

    fn per_table(rows: &[SchemaRow]) -> Arc<PerTable> {
        match plan_of(rows) {
            Plan::PerTable(plan) => plan,
            Plan::Whole => panic!("expected a per-table plan"),
        }
    }

    #[test]
    fn a_schema_without_virtual_tables_is_exported_whole() {
        let rows: Vec<SchemaRow> = fts5_schema()
            .into_iter()
            .filter(|r| r.sql.as_deref().is_none_or(|s| !s.contains("VIRTUAL")))
            .collect();
        assert!(matches!(plan_of(&rows), Plan::Whole));
        assert!(matches!(plan_of(&[]), Plan::Whole));
    }

    #[test]
    fn real_tables_are_exported_and_the_rest_appended_in_restore_order() {
        let plan = per_table(&fts5_schema());
        assert_eq!(plan.tables, ["articles", "comments"]);
        assert!(plan.sequence);
        assert_eq!(plan.virtual_table_names(), ["articles_fts", "notes_fts"]);
        assert_eq!(
            plan.objects,
            [
                "CREATE INDEX comments_id ON comments(id)",
                "CREATE VIEW v AS SELECT * FROM comments",
                "CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN SELECT 1; END",
                "CREATE TRIGGER v_ins INSTEAD OF INSERT ON v BEGIN SELECT 1; END",
            ]
        );
        let steps: Vec<String> = steps(&plan)
            .iter()
            .map(|s| match s {
                Step::Stored(sql) => sql.chars().take(40).collect(),
                Step::Rebuild(t) => format!("rebuild {t}"),
                Step::Sequence => "sequence".to_owned(),
                Step::Fts5Config(t) => format!("config {t}"),
                Step::Rows(r) => format!("rows {} {}", r.table, r.with_rowid),
            })
            .collect();
        assert_eq!(
            steps[..7],
            [
                "sequence",
                "CREATE VIRTUAL TABLE articles_fts USING ",
                "config articles_fts",
                "rebuild articles_fts",
                "CREATE VIRTUAL TABLE notes_fts USING fts",
                "config notes_fts",
                "rows notes_fts true",
            ]
        );
        assert_eq!(steps.len(), 11);
    }

    #[test]
    fn pages_select_quoted_values_by_rowid() {
        let columns = ["note".to_owned(), "a \"b\"".to_owned()];
        assert_eq!(
            page_sql("n\"fts", &columns, false, 256),
            "SELECT quote(rowid), quote(\"note\"), quote(\"a \"\"b\"\"\") FROM \"n\"\"fts\" ORDER BY rowid LIMIT 256"
        );
        assert!(
            page_sql("t", &columns, true, 8)
                .ends_with(" FROM \"t\" WHERE rowid > CAST(?1 AS INTEGER) ORDER BY rowid LIMIT 8")
        );
    }

    #[test]
    fn page_size_adapts_to_the_bytes_read() {
        for (limit, bytes, full, expected) in [
            (256, 10_000, true, 512),
            (256, 10_000, false, 256),
            (4096, 10_000, true, 4096),
            (256, 3 * PAGE_BYTES, true, 128),
            (1, 3 * PAGE_BYTES, true, 1),
            (256, PAGE_BYTES, true, 256),
        ] {
            assert_eq!(next_limit(limit, bytes, full), expected, "{limit} {bytes}");
        }
    }

    #[test]
    fn literals_are_written_as_quoted() {
        let row = [
            Value::from("9223372036854775807"),
            Value::from("'it''s\nfine'"),
            Value::Null,
            Value::from(1.5),
        ];
        let mut out = DumpWriter::continuing(Vec::new(), true);
        let insert = Insert::new("t", ["a", "b", "c", "d"], false);
        out.row(&insert, |cells| literals(cells, &row))
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = [Value::Null, Value::Bool(true)];
        assert!(out.row(&insert, |cells| literals(cells, &refused)).is_err());
        assert_eq!(
            String::from_utf8_lossy(out.get_mut()),
            "INSERT INTO \"t\" (\"a\",\"b\",\"c\",\"d\") VALUES(\
             9223372036854775807,'it''s'||char(10)||'fine',NULL,1.5);"
        );
    }
}
