//! Comparing a restored backup with the live database (feature `sqlite`), for
//! `Engine::verify` with `VerifyOptions::against_live`.
//!
//! Both sides are read with the same SQL, through SQLite for the restored scratch file (and for a
//! local source file) and through D1's query API for a D1 database, so nothing depends on how
//! either side would print a value. Every cell is fetched as its storage class plus an exact
//! form: integers as decimal text (the query API sends numbers as doubles, which rounds integers
//! beyond ±2^53), text and blobs as hex (exact bytes, invalid UTF-8 and NUL included), reals as
//! numbers (a double's shortest form is exact), with `±0.0` and `±Inf` as text. Rows are read
//! page by page in rowid order (primary-key order for `WITHOUT ROWID` tables) and compared as
//! they come, so memory stays bounded by a page whatever the database's size.
//!
//! Each table gets a row count and a content fingerprint (SHA-256 over its rows in order) on
//! each side. A difference names the table, the column and the row key, says what kind it is
//! (an integer the export rounded, bytes that differ, a storage class that changed, rows
//! missing or extra) and what the user can do about it. Where the live database has moved on
//! since the export (its bookmark or file changed), differences are reported as such and do
//! not fail the verification, except integers the export provably rounded.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::dump::{Content, TableClass, VirtualTable, quote_ident};
use crate::error::{Error, ErrorKind, error_chain};

/// The largest integer a double holds exactly (2^53); beyond it D1's export rounds.
const EXACT_LIMIT: i64 = 1 << 53;
/// Differences recorded per table; more are counted, not listed.
const FINDINGS_PER_TABLE: usize = 20;
/// Something SQL can be read from: a SQLite file or a D1 database.
#[async_trait::async_trait]
pub(crate) trait SqlSource: Send + Sync {
    /// Runs one read-only statement with text parameters; rows as JSON values.
    async fn rows(&self, sql: &str, params: &[String]) -> Result<Vec<Vec<Value>>, Error>;
}

/// A SQLite file, read through rusqlite on the blocking pool.
pub(crate) struct SqliteSource {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl SqliteSource {
    /// Opens `path` read-only.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(path, flags)
            .map_err(|e| local(format!("cannot open {}: {e}", path.display()), e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }
}

#[async_trait::async_trait]
impl SqlSource for SqliteSource {
    async fn rows(&self, sql: &str, params: &[String]) -> Result<Vec<Vec<Value>>, Error> {
        let conn = Arc::clone(&self.conn);
        let (sql, params) = (sql.to_owned(), params.to_vec());
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let mut statement = conn.prepare(&sql).map_err(sqlite)?;
            let columns = statement.column_count();
            let mut rows = statement
                .query(rusqlite::params_from_iter(params.iter()))
                .map_err(sqlite)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite)? {
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    use rusqlite::types::ValueRef;
                    values.push(match row.get_ref(i).map_err(sqlite)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(v) => Value::from(v),
                        ValueRef::Real(v) => Value::from(v),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Value::from(String::from_utf8_lossy(t).into_owned())
                        }
                    });
                }
                out.push(values);
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::LocalIo, format!("the SQLite task failed: {e}")))?
    }
}

/// A D1 database, read through the query API (`/raw`).
pub(crate) struct D1Source<'a> {
    pub(crate) client: &'a d1_export::D1Client,
    pub(crate) account_id: &'a str,
    pub(crate) database_id: &'a str,
}

#[async_trait::async_trait]
impl SqlSource for D1Source<'_> {
    async fn rows(&self, sql: &str, params: &[String]) -> Result<Vec<Vec<Value>>, Error> {
        let params: Vec<Value> = params.iter().map(|p| Value::from(p.as_str())).collect();
        let results = self
            .client
            .raw(self.account_id, self.database_id, sql, &params)
            .await
            .map_err(|e| {
                // The whole chain in the message, as a comparison's problem shows only it.
                let error = Error::from(e);
                Error::new(error.kind(), error_chain(&error)).with_source(error)
            })?;
        Ok(results
            .into_iter()
            .next()
            .map(|r| r.rows)
            .unwrap_or_default())
    }
}

/// How the backup compares with the live database.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct LiveComparison {
    /// What was compared with: `D1 database <uuid>` or `local file <path>`.
    pub source: String,
    /// True when the live database has changed since the backup was made (its bookmark, or
    /// the local file's modification time, says so). Differences are then reported, and only
    /// integers the export provably rounded fail the verification.
    pub moved_on: bool,
    /// The bookmark the export was taken at, when known.
    pub backup_bookmark: Option<String>,
    /// The live database's bookmark now, when known.
    pub live_bookmark: Option<String>,
    /// Every table compared, in name order.
    pub tables: Vec<TableComparison>,
    /// The differences found (at most 20 per table are listed; `TableComparison::differences`
    /// counts them all).
    pub findings: Vec<Finding>,
}

/// One table on both sides.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TableComparison {
    /// The table's name.
    pub table: String,
    /// Rows in the restored backup (null when the backup lacks the table).
    pub backup_rows: Option<u64>,
    /// Rows in the live database (null when the live database lacks the table).
    pub live_rows: Option<u64>,
    /// SHA-256 (first 16 bytes, hex) over the backup's rows in order.
    pub backup_fingerprint: Option<String>,
    /// The same over the live rows.
    pub live_fingerprint: Option<String>,
    /// Rows or cells that differ.
    pub differences: u64,
}

/// What kind of difference a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    /// The live integer lies beyond ±2^53 and the backup holds it rounded through a double.
    RoundedInteger,
    /// A text value's bytes differ.
    TextBytes,
    /// A blob's bytes differ.
    BlobBytes,
    /// The value is numerically equal but its storage class changed (e.g. REAL 3.0 restored
    /// as INTEGER 3).
    StorageClass,
    /// Any other value difference.
    Value,
    /// A live row the backup does not have.
    MissingRow,
    /// A backup row the live database does not have.
    ExtraRow,
    /// A table that exists on one side only, or whose columns differ.
    Schema,
}

/// One difference between the backup and the live database.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// What kind of difference.
    pub kind: FindingKind,
    /// The table.
    pub table: String,
    /// The column, for a cell difference.
    pub column: Option<String>,
    /// The row key: `id=5` for an `INTEGER PRIMARY KEY`, the primary key of a `WITHOUT ROWID`
    /// table, or the row's position in rowid order for other tables (whose rowids a dump does
    /// not keep).
    pub row: Option<String>,
    /// The value in the backup (abbreviated).
    pub backup: Option<String>,
    /// The value in the live database (abbreviated).
    pub live: Option<String>,
    /// Whether this difference fails the verification (false when the live database has
    /// moved on and the difference may be a later change).
    pub fails: bool,
    /// What the difference means and what to do about it.
    pub advice: String,
}

/// A cell in its exact form.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Cell {
    fn decode(class: &Value, value: &Value) -> Result<Self, Error> {
        let unexpected = |what: String| Error::new(ErrorKind::Protocol, what);
        let text = || {
            value
                .as_str()
                .ok_or_else(|| unexpected(format!("unexpected value {value}")))
        };
        match class.as_str() {
            Some("null") => Ok(Self::Null),
            Some("integer") => text()?
                .parse()
                .map(Self::Int)
                .map_err(|_| unexpected(format!("unexpected integer {value}"))),
            Some("real") => match value {
                Value::Number(n) => n
                    .as_f64()
                    .map(Self::Real)
                    .ok_or_else(|| unexpected(format!("unexpected real {value}"))),
                Value::String(s) => parse_real(s)
                    .map(Self::Real)
                    .ok_or_else(|| unexpected(format!("unexpected real {value}"))),
                _ => Err(unexpected(format!("unexpected real {value}"))),
            },
            Some("text") => hex::decode(text()?)
                .map(Self::Text)
                .map_err(|e| unexpected(e.to_string())),
            Some("blob") => hex::decode(text()?)
                .map(Self::Blob)
                .map_err(|e| unexpected(e.to_string())),
            _ => Err(unexpected(format!("unexpected storage class {class}"))),
        }
    }

    fn hash_into(&self, hasher: &mut Sha256) {
        match self {
            Self::Null => hasher.update([0]),
            Self::Int(v) => {
                hasher.update([1]);
                hasher.update(v.to_le_bytes());
            }
            Self::Real(v) => {
                hasher.update([2]);
                hasher.update(v.to_bits().to_le_bytes());
            }
            Self::Text(b) | Self::Blob(b) => {
                hasher.update([if matches!(self, Self::Text(_)) { 3 } else { 4 }]);
                hasher.update((b.len() as u64).to_le_bytes());
                hasher.update(b);
            }
        }
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Real(a), Self::Real(b)) => a.to_bits() == b.to_bits(),
            _ => self == other,
        }
    }

    fn display(&self) -> String {
        fn short(s: &str) -> String {
            if s.chars().count() > 60 {
                format!("{}…", s.chars().take(60).collect::<String>())
            } else {
                s.to_owned()
            }
        }
        match self {
            Self::Null => "NULL".to_owned(),
            Self::Int(v) => format!("INTEGER {v}"),
            Self::Real(v) => format!("REAL {v:?}"),
            Self::Text(b) => format!("TEXT {:?}", short(&String::from_utf8_lossy(b))),
            Self::Blob(b) => format!("BLOB of {} bytes X'{}'", b.len(), short(&hex::encode(b))),
        }
    }
}

fn parse_real(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// A SQLite failure of either side, as its message.
fn sqlite(e: rusqlite::Error) -> Error {
    local(e.to_string(), e)
}

/// A local SQLite failure: `message` is the whole text a comparison's problem shows.
fn local(message: String, e: rusqlite::Error) -> Error {
    let kind = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            ErrorKind::Busy
        }
        _ => ErrorKind::LocalIo,
    };
    Error::new(kind, message).with_source(e)
}

/// A table as both sides read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableShape {
    name: String,
    columns: Vec<String>,
    /// Primary-key columns in key order (`WITHOUT ROWID` tables).
    key: Vec<String>,
    without_rowid: bool,
    /// The `INTEGER PRIMARY KEY` column aliasing the rowid, if any.
    rowid_alias: Option<String>,
}

impl TableShape {
    fn cells_sql(&self) -> String {
        let mut cells = String::new();
        for c in &self.columns {
            let q = quote_ident(c);
            let _ = write!(
                cells,
                ", typeof({q}), CASE typeof({q}) WHEN 'integer' THEN CAST({q} AS TEXT) \
                 WHEN 'real' THEN CASE WHEN {q} = 0 OR {q} > 1.7976931348623157e308 \
                 OR {q} < -1.7976931348623157e308 THEN CAST({q} AS TEXT) ELSE {q} END \
                 WHEN 'null' THEN NULL ELSE hex({q}) END"
            );
        }
        cells
    }

    /// The page query: a key column first (rowid or position), then two per column.
    fn page_sql(&self, limit: usize) -> String {
        let table = quote_ident(&self.name);
        let cells = self.cells_sql();
        if self.without_rowid {
            let order: Vec<String> = self.key.iter().map(|k| quote_ident(k)).collect();
            format!(
                "SELECT NULL{cells} FROM {table} ORDER BY {} LIMIT {limit} OFFSET CAST(?1 AS INTEGER)",
                order.join(", ")
            )
        } else {
            let rowid = self.rowid_name();
            format!(
                "SELECT CAST({rowid} AS TEXT){cells} FROM {table} WHERE {rowid} > CAST(?1 AS INTEGER) ORDER BY {rowid} LIMIT {limit}"
            )
        }
    }

    /// A name for the rowid that no column shadows.
    fn rowid_name(&self) -> &'static str {
        ["rowid", "_rowid_", "oid"]
            .into_iter()
            .find(|n| !self.columns.iter().any(|c| c.eq_ignore_ascii_case(n)))
            .unwrap_or("rowid")
    }
}

/// Reads the comparable tables of a database: ordinary tables and FTS tables with their own
/// content, and `sqlite_sequence` ([`TableClass::holds_content`]); not shadow tables,
/// `_cf_*` or the other `sqlite_*`.
async fn shapes(source: &dyn SqlSource) -> Result<Vec<TableShape>, Error> {
    let rows = source
        .rows(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name",
            &[],
        )
        .await?;
    let all: Vec<(String, String)> = rows
        .into_iter()
        .filter_map(|r| {
            let name = r.first()?.as_str()?.to_owned();
            let sql = r.get(1).and_then(Value::as_str).unwrap_or("").to_owned();
            Some((name, sql))
        })
        .collect();
    let virtual_tables: Vec<(&str, VirtualTable)> = all
        .iter()
        .filter_map(|(n, sql)| Some((n.as_str(), VirtualTable::parse(sql)?)))
        .collect();
    let mut shapes = Vec::new();
    for (name, sql) in &all {
        let skipped = !TableClass::of(name).holds_content()
            || virtual_tables.iter().any(|(v, vt)| vt.is_shadow(v, name));
        // A virtual table is compared only where it holds its own content (FTS without
        // `content=`); an external-content one reads its content table, compared already.
        let readable = VirtualTable::parse(sql).is_none_or(|vt| vt.content == Content::Own);
        if skipped || !readable {
            continue;
        }
        let info = source
            .rows(&format!("PRAGMA table_xinfo({})", quote_ident(name)), &[])
            .await?;
        // cid, name, type, notnull, dflt_value, pk, hidden
        let mut columns = Vec::new();
        let mut keyed: Vec<(i64, String, String)> = Vec::new();
        for column in &info {
            let Some(column_name) = column.get(1).and_then(Value::as_str) else {
                continue;
            };
            let hidden = column.get(6).and_then(Value::as_i64).unwrap_or(0);
            if hidden == 1 {
                continue;
            }
            columns.push(column_name.to_owned());
            let pk = column.get(5).and_then(Value::as_i64).unwrap_or(0);
            if pk > 0 {
                let declared = column.get(2).and_then(Value::as_str).unwrap_or("");
                keyed.push((pk, column_name.to_owned(), declared.to_ascii_uppercase()));
            }
        }
        keyed.sort();
        let without_rowid = is_without_rowid(sql);
        let rowid_alias = match keyed.as_slice() {
            [(_, column, declared)] if !without_rowid && declared == "INTEGER" => {
                Some(column.clone())
            }
            _ => None,
        };
        shapes.push(TableShape {
            name: name.clone(),
            columns,
            key: keyed.into_iter().map(|(_, c, _)| c).collect(),
            without_rowid,
            rowid_alias,
        });
    }
    Ok(shapes)
}

fn is_without_rowid(sql: &str) -> bool {
    crate::dump::plan::TableOptions::of(sql).without_rowid
}

/// One row as read: its rowid (rowid tables) and cells.
struct Row {
    rowid: Option<i64>,
    cells: Vec<Cell>,
}

/// Reads a table page by page.
struct Pages<'a> {
    source: &'a dyn SqlSource,
    shape: &'a TableShape,
    sql: String,
    limit: usize,
    after: String,
    offset: u64,
    buffer: VecDeque<Row>,
    done: bool,
    rows: u64,
    hasher: Sha256,
}

impl<'a> Pages<'a> {
    fn new(source: &'a dyn SqlSource, shape: &'a TableShape, limit: usize) -> Self {
        Self {
            source,
            shape,
            sql: shape.page_sql(limit),
            limit,
            after: i64::MIN.to_string(),
            offset: 0,
            buffer: VecDeque::new(),
            done: false,
            rows: 0,
            hasher: Sha256::new(),
        }
    }

    async fn next(&mut self) -> Result<Option<Row>, Error> {
        if self.buffer.is_empty() && !self.done {
            let param = if self.shape.without_rowid {
                self.offset.to_string()
            } else {
                self.after.clone()
            };
            let page = self.source.rows(&self.sql, &[param]).await?;
            self.done = page.len() < self.limit;
            for values in page {
                let row = self.decode(&values)?;
                if let Some(rowid) = row.rowid {
                    self.after = rowid.to_string();
                }
                self.offset += 1;
                self.buffer.push_back(row);
            }
        }
        let row = self.buffer.pop_front();
        if let Some(row) = &row {
            self.rows += 1;
            for cell in &row.cells {
                cell.hash_into(&mut self.hasher);
            }
        }
        Ok(row)
    }

    fn decode(&self, values: &[Value]) -> Result<Row, Error> {
        let context = |e: Error| e.context(format_args!("reading table {}", self.shape.name));
        let unexpected = |what: String| context(Error::new(ErrorKind::Protocol, what));
        if values.len() != 1 + 2 * self.shape.columns.len() {
            return Err(unexpected(format!(
                "expected {} values a row, got {}",
                1 + 2 * self.shape.columns.len(),
                values.len()
            )));
        }
        let rowid = match &values[0] {
            Value::String(s) => Some(
                s.parse()
                    .map_err(|_| unexpected(format!("unexpected rowid {s:?}")))?,
            ),
            _ => None,
        };
        let cells = values[1..]
            .chunks(2)
            .map(|pair| Cell::decode(&pair[0], &pair[1]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(context)?;
        Ok(Row { rowid, cells })
    }

    fn fingerprint(&self) -> String {
        hex::encode(&self.hasher.clone().finalize()[..16])
    }
}

/// Where the live side is, and whether it has moved on.
pub(crate) struct Live<'a> {
    pub(crate) source: &'a dyn SqlSource,
    pub(crate) description: String,
    pub(crate) moved_on: bool,
    pub(crate) backup_bookmark: Option<String>,
    pub(crate) current_bookmark: Option<String>,
    /// Rows a page (the query API has per-request limits).
    pub(crate) page_rows: usize,
}

/// Compares the restored database at `restored` with the live one.
pub(crate) async fn compare(restored: &Path, live: &Live<'_>) -> Result<LiveComparison, Error> {
    let backup = SqliteSource::open(restored)?;
    let backup_shapes = shapes(&backup).await?;
    let live_shapes = shapes(live.source)
        .await
        .map_err(|e| e.context("cannot read the live schema"))?;
    let mut out = LiveComparison {
        source: live.description.clone(),
        moved_on: live.moved_on,
        backup_bookmark: live.backup_bookmark.clone(),
        live_bookmark: live.current_bookmark.clone(),
        ..LiveComparison::default()
    };
    let mut names: Vec<&str> = backup_shapes
        .iter()
        .chain(&live_shapes)
        .map(|s| s.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let b = backup_shapes.iter().find(|s| s.name == name);
        let l = live_shapes.iter().find(|s| s.name == name);
        let table = match (b, l) {
            (Some(b), Some(l)) if b.columns == l.columns => {
                compare_table(&backup, b, live, l, &mut out.findings).await?
            }
            (b, l) => {
                let what = match (b, l) {
                    (None, _) => "the backup has no such table".to_owned(),
                    (_, None) => "the live database has no such table".to_owned(),
                    (Some(b), Some(l)) => format!(
                        "the columns differ: backup ({}), live ({})",
                        b.columns.join(", "),
                        l.columns.join(", ")
                    ),
                };
                out.findings.push(Finding {
                    kind: FindingKind::Schema,
                    table: name.to_owned(),
                    column: None,
                    row: None,
                    backup: None,
                    live: None,
                    fails: !live.moved_on,
                    advice: format!(
                        "{what}; {}",
                        if live.moved_on {
                            "the live schema has changed since the backup"
                        } else {
                            "the backup does not hold this table as the live database has it: back up again, forcing it (`RunOptions::force`), and verify"
                        }
                    ),
                });
                TableComparison {
                    table: name.to_owned(),
                    backup_rows: None,
                    live_rows: None,
                    backup_fingerprint: None,
                    live_fingerprint: None,
                    differences: 1,
                }
            }
        };
        out.tables.push(table);
    }
    Ok(out)
}

async fn compare_table(
    backup: &dyn SqlSource,
    shape: &TableShape,
    live: &Live<'_>,
    live_shape: &TableShape,
    findings: &mut Vec<Finding>,
) -> Result<TableComparison, Error> {
    let mut b = Pages::new(backup, shape, 5_000);
    let mut l = Pages::new(live.source, live_shape, live.page_rows);
    let mut differences = 0u64;
    let mut listed = 0usize;
    let mut note = |finding: Finding, differences: &mut u64| {
        *differences += 1;
        if listed < FINDINGS_PER_TABLE {
            listed += 1;
            findings.push(finding);
        }
    };
    let keyed = shape.rowid_alias.is_some();
    let (mut next_b, mut next_l) = (b.next().await?, l.next().await?);
    loop {
        match (next_b.take(), next_l.take()) {
            (None, None) => break,
            (Some(rb), Some(rl)) => {
                // Rows keyed by their INTEGER PRIMARY KEY are matched by key; others by
                // position (a dump does not keep their rowids).
                let (kb, kl) = (rb.rowid.unwrap_or(0), rl.rowid.unwrap_or(0));
                if keyed && kb < kl {
                    note(
                        row_finding(shape, &rb, b.rows, FindingKind::ExtraRow, live),
                        &mut differences,
                    );
                    (next_b, next_l) = (b.next().await?, Some(rl));
                    continue;
                }
                if keyed && kl < kb {
                    note(
                        row_finding(shape, &rl, l.rows, FindingKind::MissingRow, live),
                        &mut differences,
                    );
                    (next_b, next_l) = (Some(rb), l.next().await?);
                    continue;
                }
                for (i, (cb, cl)) in rb.cells.iter().zip(&rl.cells).enumerate() {
                    if !cb.same(cl) {
                        note(
                            cell_finding(shape, i, &rb, &rl, b.rows, cb, cl, live),
                            &mut differences,
                        );
                    }
                }
                (next_b, next_l) = (b.next().await?, l.next().await?);
            }
            (Some(rb), None) => {
                note(
                    row_finding(shape, &rb, b.rows, FindingKind::ExtraRow, live),
                    &mut differences,
                );
                next_b = b.next().await?;
            }
            (None, Some(rl)) => {
                note(
                    row_finding(shape, &rl, l.rows, FindingKind::MissingRow, live),
                    &mut differences,
                );
                next_l = l.next().await?;
            }
        }
    }
    Ok(TableComparison {
        table: shape.name.clone(),
        backup_rows: Some(b.rows),
        live_rows: Some(l.rows),
        backup_fingerprint: Some(b.fingerprint()),
        live_fingerprint: Some(l.fingerprint()),
        differences,
    })
}

/// How a row is named in a finding.
fn row_key(shape: &TableShape, row: &Row, position: u64) -> String {
    if let (Some(alias), Some(rowid)) = (&shape.rowid_alias, row.rowid) {
        return format!("{alias}={rowid}");
    }
    if shape.without_rowid {
        let parts: Vec<String> = shape
            .key
            .iter()
            .filter_map(|k| {
                let i = shape.columns.iter().position(|c| c == k)?;
                Some(format!("{k}={}", row.cells.get(i)?.display()))
            })
            .collect();
        return parts.join(", ");
    }
    format!("row {position} in rowid order")
}

fn row_finding(
    shape: &TableShape,
    row: &Row,
    position: u64,
    kind: FindingKind,
    live: &Live<'_>,
) -> Finding {
    let advice = if live.moved_on {
        "the live database has changed since the backup; this row may be a later change"
    } else if kind == FindingKind::MissingRow {
        "the backup lacks a row the live database has (and had at the export's bookmark): back up again, forcing it (`RunOptions::force`), verify, and report it if it recurs"
    } else {
        "the backup holds a row the live database does not have at the export's bookmark: back up again, forcing it (`RunOptions::force`), and verify"
    };
    Finding {
        kind,
        table: shape.name.clone(),
        column: None,
        row: Some(row_key(shape, row, position)),
        backup: None,
        live: None,
        fails: !live.moved_on,
        advice: advice.to_owned(),
    }
}

#[allow(clippy::too_many_arguments)] // Private; each argument is part of the one finding.
#[allow(clippy::float_cmp)] // Exact equality is the question asked.
fn cell_finding(
    shape: &TableShape,
    column: usize,
    backup_row: &Row,
    live_row: &Row,
    position: u64,
    backup: &Cell,
    live_cell: &Cell,
    live: &Live<'_>,
) -> Finding {
    let rounded = match (live_cell, backup) {
        #[allow(clippy::cast_precision_loss)] // The rounding is what is detected.
        (Cell::Int(v), Cell::Int(_) | Cell::Real(_))
            if !(-EXACT_LIMIT..=EXACT_LIMIT).contains(v) =>
        {
            let as_double = *v as f64;
            match backup {
                #[allow(clippy::cast_precision_loss)]
                Cell::Int(b) => *b as f64 == as_double && b != v,
                Cell::Real(b) => *b == as_double,
                _ => false,
            }
        }
        _ => false,
    };
    let numeric_equal = match (backup, live_cell) {
        #[allow(clippy::cast_precision_loss)]
        (Cell::Int(i), Cell::Real(r)) | (Cell::Real(r), Cell::Int(i)) => *i as f64 == *r,
        (Cell::Real(a), Cell::Real(b)) => a == b, // 0.0 and -0.0
        _ => false,
    };
    let (kind, advice) = if rounded {
        (
            FindingKind::RoundedInteger,
            "D1's export writes integers beyond ±2^53 through a double and rounds them \
             (workers-sdk#15378): this value cannot be backed up exactly through the export API. \
             Store such values as TEXT (or keep them within ±9007199254740991), or back the \
             database up from a local copy with `{ name, sqlite = \"…\" }`, whose dump keeps them"
                .to_owned(),
        )
    } else if live.moved_on {
        (
            FindingKind::Value,
            "the live database has changed since the backup; this may be a later change".to_owned(),
        )
    } else if numeric_equal {
        (
            FindingKind::StorageClass,
            "the export writes integral REALs (3.0, -0.0) as integers, so a column without REAL \
             affinity restores them as INTEGER (or -0.0 as 0): declare the column REAL, or accept \
             the change (the number is equal)"
                .to_owned(),
        )
    } else {
        let kind = match (backup, live_cell) {
            (Cell::Text(_), Cell::Text(_)) => FindingKind::TextBytes,
            (Cell::Blob(_), Cell::Blob(_)) => FindingKind::BlobBytes,
            _ => FindingKind::Value,
        };
        (
            kind,
            "the restored value differs from the live one at the export's bookmark, a known class \
             of D1 export escaping defects (workers-sdk#6452, #9042): back up again, forcing it (`RunOptions::force`); \
             if it persists, report the table and row to Cloudflare and keep this value elsewhere"
                .to_owned(),
        )
    };
    let row = if shape.rowid_alias.is_some() || shape.without_rowid {
        row_key(shape, live_row, position)
    } else {
        row_key(shape, backup_row, position)
    };
    Finding {
        kind,
        table: shape.name.clone(),
        column: shape.columns.get(column).cloned(),
        row: Some(row),
        backup: Some(backup.display()),
        live: Some(live_cell.display()),
        fails: rounded || !live.moved_on,
        advice,
    }
}

/// Whether a local source file changed after `since`: its (or its `-wal`'s) modification time.
pub(crate) fn local_changed_since(path: &Path, since: chrono::DateTime<chrono::Utc>) -> bool {
    let mut wal = PathBuf::from(path);
    wal.as_mut_os_string().push("-wal");
    [path.to_path_buf(), wal].iter().any(|p| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| chrono::DateTime::<chrono::Utc>::from(t) > since)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_schema_text() {
        assert!(is_without_rowid(
            "CREATE TABLE t (a PRIMARY KEY) WITHOUT ROWID"
        ));
        assert!(is_without_rowid(
            "CREATE TABLE t (a PRIMARY KEY) without  rowid ;"
        ));
        assert!(!is_without_rowid("CREATE TABLE t (a PRIMARY KEY)"));
        assert!(is_without_rowid(
            "CREATE TABLE t (a PRIMARY KEY) WITHOUT ROWID, STRICT"
        ));
    }

    #[test]
    fn cells_decode_exactly() {
        let c = |t: &str, v: Value| Cell::decode(&Value::from(t), &v).unwrap();
        assert_eq!(
            c("integer", "9007199254740993".into()),
            Cell::Int(9_007_199_254_740_993)
        );
        assert!(c("real", "-0.0".into()).same(&Cell::Real(-0.0)));
        assert!(!c("real", "0.0".into()).same(&Cell::Real(-0.0)));
        assert_eq!(c("real", "-Inf".into()), Cell::Real(f64::NEG_INFINITY));
        assert_eq!(c("real", 0.1.into()), Cell::Real(0.1));
        assert_eq!(c("text", "410A00".into()), Cell::Text(b"A\n\0".to_vec()));
        assert_eq!(c("blob", "".into()), Cell::Blob(Vec::new()));
        assert_eq!(c("null", Value::Null), Cell::Null);
        assert!(Cell::decode(&Value::from("integer"), &Value::from(1.5)).is_err());
    }
}
