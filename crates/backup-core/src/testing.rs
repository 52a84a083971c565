//! Test support (feature `testing`): [`SqliteD1`], a real SQLite database behind the D1 API
//! simulator of [`d1_export::testing`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use d1_backup_core::testing::SqliteD1;
//! use d1_export::testing::{D1Simulator, SimulatedDatabase};
//!
//! let db = Arc::new(SqliteD1::open("/tmp/app.sqlite")?);
//! db.query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])?;
//! let sim = D1Simulator::start().await;
//! sim.add_account("e5a9830215a8d88961dc6c80a8c7442a", "test-token");
//! let uuid = sim.add_backed_database("e5a9830215a8d88961dc6c80a8c7442a", "app", db.clone());
//! # let _ = uuid;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use d1_export::DumpOptions;
use d1_export::testing::{SimulatedDatabase, SimulatedRows, check_d1_sql};
use rusqlite::backup::Progress;
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Batch, Connection, MAIN_DB, Statement};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::dump::value::js_number;
use crate::dump::{DumpStatements, TableClass, VirtualTable};
use crate::sqlite::{SqliteDumpOptions, dump_sqlite};

/// A [`SimulatedDatabase`] backed by a real SQLite file, answering as D1 would:
///
/// - **query**: every statement of the SQL in turn, `params` bound to each statement that has
///   placeholders, all in one savepoint (all or nothing). Values come back in D1's JSON form:
///   numbers through a double, as D1's JavaScript sends them (integers beyond ±2^53 rounded,
///   `3.0` as `3`, ±Infinity as `null`), text as strings, blobs as arrays of byte numbers.
///   Errors read `<SQLite's message>: SQLITE_<CODE>`. `rows_read` counts the rows returned and
///   `rows_written` the rows changed.
/// - **export**: [`dump_sqlite`] of the file with the request's options, except that, as D1
///   does, a database with a virtual table (FTS5, …) cannot be exported unless `tables` lists
///   only real tables: `D1 Export error: cannot export databases with Virtual Tables (fts5)`.
///   [`with_export_override`](Self::with_export_override) serves fixed bytes instead.
/// - **import**: the file's statements in order in one transaction, rolled back on any error,
///   as D1's import runs them: foreign keys enforced, no statement set aside or skipped (so
///   the failures D1 reports, such as a child table's rows before its parent table, happen
///   here too, where the lenient [`restore_dump`](crate::restore_dump) would succeed).
/// - **bookmark**: D1's form, `<version>-00000000-00004f6d-<32 hex>`; the version goes up by
///   one with every query that changed the database, every import and every restore.
/// - **Time Travel**: every state is kept, exactly (a page-for-page copy through SQLite's
///   backup API, in `<path>.time-travel/<instance>/<version>.sqlite`, removed on drop), with
///   the time it became current: [`restore_bookmark`](SimulatedDatabase::restore_bookmark)
///   copies one back in place as a new state (so the state before stays restorable), and
///   [`bookmark_at`](SimulatedDatabase::bookmark_at) answers from these times.
/// - **Reserved names**: as D1 does, any table whose name starts with `_cf_` in any case is
///   refused to queries and imports, for creating, reading, writing, indexing and dropping:
///   `not authorized: SQLITE_AUTH`. Exports (which skip such tables) and
///   [`with_connection`](Self::with_connection) are not restricted, so a copy of a wrangler
///   file with its `_cf_METADATA` works.
/// - **num_tables**: the tables D1 counts, not `sqlite_*` nor `_cf_*`.
///
/// Foreign keys are enforced, as D1 enforces them. Requests are serialized on one connection.
pub struct SqliteD1 {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Writes so far, plus one: the bookmark's first part.
    version: AtomicU64,
    /// Served by every export instead of a dump of the file.
    export_override: Option<Bytes>,
    /// This instance's snapshots, one file per state; removed on drop.
    history_dir: PathBuf,
    /// Every state so far, oldest first. Locked after `conn` when both are.
    history: Mutex<Vec<Kept>>,
}

/// One state of the database in its Time Travel history.
#[derive(Debug)]
struct Kept {
    /// The bookmark's version.
    version: u64,
    /// When it became current (Unix seconds).
    since: i64,
    /// Its snapshot, or why it could not be written (a restore to it then fails with that).
    snapshot: Result<PathBuf, String>,
}

/// Tells apart the history directories of instances opened on the same path.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl Drop for SqliteD1 {
    fn drop(&mut self) {
        // Best effort: a leftover snapshot directory harms nothing but disk space.
        let _ = std::fs::remove_dir_all(&self.history_dir);
        if let Some(parent) = self.history_dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

impl fmt::Debug for SqliteD1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteD1")
            .field("path", &self.path)
            .field("version", &self.version.load(Ordering::SeqCst))
            .field(
                "export_override_bytes",
                &self.export_override.as_ref().map(Bytes::len),
            )
            .finish_non_exhaustive()
    }
}

impl SqliteD1 {
    /// Opens (or creates) the SQLite file at `path`, read-write. Exports read the file
    /// through a connection of their own, so it must be a file, not `:memory:`. Queries and
    /// imports write to it: open a copy of a fixture, never the fixture itself.
    pub fn open(path: impl AsRef<Path>) -> rusqlite::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        add_math_functions(&conn)?;
        refuse_reserved_tables(&mut conn)?;
        let mut history_dir = path.clone().into_os_string();
        history_dir.push(".time-travel");
        let instance = format!(
            "{}-{}",
            std::process::id(),
            INSTANCES.fetch_add(1, Ordering::SeqCst)
        );
        let history_dir = PathBuf::from(history_dir).join(instance);
        std::fs::create_dir_all(&history_dir).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!(
                    "could not create the Time Travel directory {}: {e}",
                    history_dir.display()
                )),
            )
        })?;
        let db = Self {
            path,
            conn: Mutex::new(conn),
            version: AtomicU64::new(1),
            export_override: None,
            history_dir,
            history: Mutex::new(Vec::new()),
        };
        db.keep(&db.lock(), 1);
        Ok(db)
    }

    /// Makes every export serve `dump` as it is, whatever the options, instead of a dump of
    /// the file: e.g. a real wrangler `export.sql`, with its losses, next to the
    /// `local.sqlite` it was exported from.
    #[must_use]
    pub fn with_export_override(mut self, dump: impl Into<Bytes>) -> Self {
        self.export_override = Some(dump.into());
        self
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection, e.g. to set up content or check what an import wrote.
    /// Writes made through it do not move the bookmark: they become part of the current
    /// bookmark's state (its Time Travel snapshot is taken again). D1's refusal of `_cf_*`
    /// tables does not apply to it.
    pub fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let mut conn = self.lock();
        // Failing to lift or restore the authorizer only changes what `f` may touch.
        let _ = conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let before = (conn.total_changes(), schema_version(&conn, false).ok());
        let out = f(&conn);
        let _ = refuse_reserved_tables(&mut conn);
        if (conn.total_changes(), schema_version(&conn, false).ok()) != before {
            let version = self.version.load(Ordering::SeqCst);
            self.history().retain(|kept| kept.version != version);
            self.keep(&conn, version);
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn history(&self) -> MutexGuard<'_, Vec<Kept>> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the bookmark after a change, keeping the new state.
    fn bump(&self, conn: &Connection) {
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        self.keep(conn, version);
    }

    /// Snapshots the current state as `version`'s.
    fn keep(&self, conn: &Connection, version: u64) {
        let file = self.history_dir.join(format!("{version}.sqlite"));
        let snapshot = snapshot(conn, &file)
            .map(|()| file)
            .map_err(|e| e.to_string());
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.history().push(Kept {
            version,
            since,
            snapshot,
        });
    }

    /// The bookmark of `version`.
    fn bookmark_of(&self, version: u64) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.path.to_string_lossy().as_bytes());
        hasher.update(version.to_be_bytes());
        let digest = hasher.finalize();
        format!(
            "{version:08x}-00000000-00004f6d-{}",
            hex::encode(&digest[..16])
        )
    }

    /// Runs the statements in one savepoint; moves the bookmark if anything changed.
    fn run(&self, statements: &[(&str, &[Value])]) -> Result<Vec<SimulatedRows>, String> {
        for (sql, _) in statements {
            check_d1_sql(sql.as_bytes())?;
        }
        let conn = self.lock();
        conn.execute_batch("SAVEPOINT d1_request")
            .map_err(d1_error)?;
        let mut results = Vec::new();
        let outcome = statements
            .iter()
            .try_for_each(|(sql, params)| run_sql(&conn, sql, params, &mut results));
        let end = match outcome {
            Ok(()) => "RELEASE d1_request",
            Err(_) => "ROLLBACK TO d1_request; RELEASE d1_request",
        };
        // The statement's own error matters more than a failed clean-up after it.
        let ended = conn.execute_batch(end);
        outcome?;
        ended.map_err(d1_error)?;
        if results.iter().any(|r| r.changed_db) {
            self.bump(&conn);
        }
        Ok(results)
    }
}

/// D1 has SQLite's math functions (`SQLITE_ENABLE_MATH_FUNCTIONS`); the bundled SQLite is
/// built without them. `atan2` is the one a backup uses (the online reader tells `-0.0` from
/// `0.0` with it), registered as SQLite defines it.
fn add_math_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "atan2",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let arg = |i| -> rusqlite::Result<Option<f64>> {
                Ok(match ctx.get_raw(i) {
                    ValueRef::Integer(v) => {
                        #[allow(clippy::cast_precision_loss)] // As SQLite converts it.
                        Some(v as f64)
                    }
                    ValueRef::Real(v) => Some(v),
                    ValueRef::Text(t) => std::str::from_utf8(t)
                        .ok()
                        .and_then(|t| t.trim().parse().ok()),
                    ValueRef::Null | ValueRef::Blob(_) => None,
                })
            };
            Ok(match (arg(0)?, arg(1)?) {
                (Some(y), Some(x)) => Some(y.atan2(x)),
                _ => None,
            })
        },
    )
}

impl SimulatedDatabase for SqliteD1 {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<SimulatedRows>, String> {
        self.run(&[(sql, params)])
    }

    fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<SimulatedRows>, String> {
        let borrowed: Vec<(&str, &[Value])> = statements
            .iter()
            .map(|(sql, params)| (sql.as_str(), params.as_slice()))
            .collect();
        self.run(&borrowed)
    }

    fn export(&self, options: &DumpOptions) -> Result<Bytes, String> {
        if let Some(dump) = &self.export_override {
            return Ok(dump.clone());
        }
        // Held so that the dump is of the state the current bookmark names.
        let conn = self.lock();
        refuse_virtual_tables(&conn, &options.tables)?;
        let mut sqlite_options = SqliteDumpOptions::default();
        sqlite_options.tables.clone_from(&options.tables);
        sqlite_options.no_data = options.no_data;
        sqlite_options.no_schema = options.no_schema;
        let mut out = Vec::new();
        dump_sqlite(&self.path, &sqlite_options, &mut out)
            .map_err(|e| format!("D1 Export error: {e}"))?;
        Ok(out.into())
    }

    fn import(&self, sql: &[u8]) -> Result<u64, String> {
        check_d1_sql(sql)?;
        let conn = self.lock();
        conn.execute_batch("BEGIN").map_err(d1_error)?;
        let result = import_statements(&conn, sql).and_then(|count| {
            conn.execute_batch("COMMIT")
                .map(|()| count)
                .map_err(d1_error)
        });
        if result.is_err() && !conn.is_autocommit() {
            // On failure the transaction is gone either way; the import's error is the answer.
            let _ = conn.execute_batch("ROLLBACK");
        }
        if result.as_ref().is_ok_and(|count| *count > 0) {
            self.bump(&conn);
        }
        result
    }

    fn bookmark(&self) -> String {
        self.bookmark_of(self.version.load(Ordering::SeqCst))
    }

    fn restore_bookmark(&self, bookmark: &str) -> Result<String, String> {
        let mut conn = self.lock();
        let snapshot = self
            .history()
            .iter()
            .find(|kept| self.bookmark_of(kept.version) == bookmark)
            .map(|kept| kept.snapshot.clone())
            .ok_or_else(|| format!("bookmark {bookmark} names no state of this database"))?
            .map_err(|e| format!("the state of bookmark {bookmark} was not kept ({e})"))?;
        conn.restore(MAIN_DB, &snapshot, None::<fn(Progress)>)
            .map_err(d1_error)?;
        self.bump(&conn);
        Ok(self.bookmark())
    }

    fn bookmark_at(&self, unix_seconds: i64) -> Option<String> {
        let history = self.history();
        let kept = history
            .iter()
            .rev()
            .find(|kept| kept.since <= unix_seconds)?;
        Some(self.bookmark_of(kept.version))
    }

    fn num_tables(&self) -> Option<u64> {
        self.lock()
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND lower(name) NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND lower(name) NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .ok()
            .and_then(|n| u64::try_from(n).ok())
    }
}

/// Copies the database page for page into a new file at `file`. The copy is written without
/// a journal or fsync: it is scratch for this process, and a crash loses the history anyway.
fn snapshot(conn: &Connection, file: &Path) -> rusqlite::Result<()> {
    let mut copy = Connection::open(file)?;
    copy.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    let backup = rusqlite::backup::Backup::new(conn, &mut copy)?;
    backup.run_to_completion(1 << 16, Duration::ZERO, None::<fn(Progress)>)
}

/// Installs D1's refusal of tables whose name starts with `_cf_` in any case: any statement
/// that creates, reads, writes, indexes, alters or drops one fails to prepare with
/// `not authorized` (`SQLITE_AUTH`).
fn refuse_reserved_tables(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.authorizer(Some(|context: AuthContext<'_>| {
        if table_of(&context.action).is_some_and(is_reserved) {
            Authorization::Deny
        } else {
            Authorization::Allow
        }
    }))
}

/// The table an action touches, if it names one.
fn table_of<'a>(action: &AuthAction<'a>) -> Option<&'a str> {
    use AuthAction as A;
    match *action {
        A::CreateIndex { table_name, .. }
        | A::CreateTable { table_name }
        | A::CreateTempIndex { table_name, .. }
        | A::CreateTempTable { table_name }
        | A::CreateTempTrigger { table_name, .. }
        | A::CreateTrigger { table_name, .. }
        | A::Delete { table_name }
        | A::DropIndex { table_name, .. }
        | A::DropTable { table_name }
        | A::DropTempIndex { table_name, .. }
        | A::DropTempTable { table_name }
        | A::DropTempTrigger { table_name, .. }
        | A::DropTrigger { table_name, .. }
        | A::Insert { table_name }
        | A::Read { table_name, .. }
        | A::Update { table_name, .. }
        | A::AlterTable { table_name, .. }
        | A::Analyze { table_name }
        | A::CreateVtable { table_name, .. }
        | A::DropVtable { table_name, .. } => Some(table_name),
        _ => None,
    }
}

/// Whether D1 reserves the name: `_cf_` in any case.
fn is_reserved(name: &str) -> bool {
    name.get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("_cf_"))
}

/// Runs an import's statements in order, as D1 does: foreign keys enforced, nothing set
/// aside or skipped (unlike [`restore_dump`](crate::restore_dump), which is lenient on
/// purpose). Returns how many ran.
fn import_statements(conn: &Connection, sql: &[u8]) -> Result<u64, String> {
    let mut count = 0;
    for statement in DumpStatements::new(sql) {
        let (line, statement) = statement.map_err(|e| format!("{e}: SQLITE_ERROR"))?;
        conn.execute_batch(&statement).map_err(|e| {
            let snippet: String = statement.chars().take(120).collect();
            format!(
                "{} (statement on line {line}: {})",
                d1_error(e),
                snippet.replace(['\n', '\r'], " ")
            )
        })?;
        count += 1;
    }
    Ok(count)
}

/// Runs each statement of `sql`, appending one result per statement.
fn run_sql(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    results: &mut Vec<SimulatedRows>,
) -> Result<(), String> {
    let mut batch = Batch::new(conn, sql);
    let (before, mut bound) = (results.len(), false);
    while let Some(mut statement) = batch.next().map_err(d1_error)? {
        let count = statement.parameter_count();
        if count > 0 {
            if count != params.len() {
                return Err(format!(
                    "Wrong number of parameter bindings for SQL query. Expected {count}, got {}: SQLITE_RANGE",
                    params.len()
                ));
            }
            for (i, param) in params.iter().enumerate() {
                statement
                    .raw_bind_parameter(i + 1, sql_value(param)?)
                    .map_err(d1_error)?;
            }
            bound = true;
        }
        results.push(run_statement(conn, &mut statement)?);
    }
    if results.len() == before {
        return Err("No SQL statements detected.: SQLITE_ERROR".to_owned());
    }
    if !bound && !params.is_empty() {
        return Err(format!(
            "Wrong number of parameter bindings for SQL query. Expected 0, got {}: SQLITE_RANGE",
            params.len()
        ));
    }
    Ok(())
}

fn run_statement(
    conn: &Connection,
    statement: &mut Statement<'_>,
) -> Result<SimulatedRows, String> {
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let readonly = statement.readonly();
    let schema_before = schema_version(conn, readonly)?;
    let changes_before = conn.total_changes();
    let mut rows = Vec::new();
    let mut cursor = statement.raw_query();
    while let Some(row) = cursor.next().map_err(d1_error)? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(d1_value).map_err(d1_error))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(values);
    }
    drop(cursor);
    let changes = conn.total_changes().saturating_sub(changes_before);
    let mut result = SimulatedRows::new(columns, rows);
    result.changes = changes;
    result.rows_written = changes;
    result.last_row_id = conn.last_insert_rowid();
    result.changed_db = changes > 0 || schema_version(conn, readonly)? != schema_before;
    Ok(result)
}

/// `PRAGMA schema_version`, which DDL moves; not read for read-only statements.
fn schema_version(conn: &Connection, readonly: bool) -> Result<i64, String> {
    if readonly {
        return Ok(0);
    }
    conn.query_row("PRAGMA schema_version", [], |row| row.get(0))
        .map_err(d1_error)
}

/// A value as D1 sends it (see [`SqliteD1`]).
fn d1_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        #[allow(clippy::cast_precision_loss)] // D1 sends integers through a double, too.
        ValueRef::Integer(i) => d1_number(i as f64),
        ValueRef::Real(r) => d1_number(r),
        ValueRef::Text(text) => Value::String(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::Array(bytes.iter().map(|b| Value::from(*b)).collect()),
    }
}

/// What a JSON reader gets from JavaScript's `JSON.stringify(v)`: `null` for non-finite
/// numbers; an integral value below 1e21 written out in digits (the shortest round-trip
/// digits, then zeros: 2^63 is `9223372036854776000`), so that it reads as an integer where it
/// fits one; anything else as the double itself.
fn d1_number(v: f64) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    if v.fract() == 0.0 && v.abs() < 1e21 {
        // JavaScript's own digits, as the dump writes them.
        if let Ok(number) = serde_json::from_str::<Value>(&js_number(v)) {
            return number;
        }
    }
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// A JSON parameter as SQLite binds it: arrays of byte numbers become blobs.
fn sql_value(param: &Value) -> Result<SqlValue, String> {
    Ok(match param {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Array(items) => SqlValue::Blob(
            items
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or("Type 'object' not supported for value: a blob is an array of byte numbers: SQLITE_MISMATCH")?,
        ),
        Value::Object(_) => {
            return Err("Type 'object' not supported for value: SQLITE_MISMATCH".to_owned());
        }
    })
}

/// Refuses, as D1 does, to export a virtual table: any when no tables are named, else a named
/// one. Tables D1 skips (`_cf_*`, `sqlite_*`) are not checked.
fn refuse_virtual_tables(conn: &Connection, tables: &[String]) -> Result<(), String> {
    let mut statement = conn
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' ORDER BY rowid",
        )
        .map_err(d1_error)?;
    let virtual_tables = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(d1_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(d1_error)?;
    let refused = virtual_tables.iter().find(|(name, _)| {
        !TableClass::of(name).is_internal() && (tables.is_empty() || tables.contains(name))
    });
    match refused {
        Some((_, sql)) => Err(format!(
            "D1 Export error: cannot export databases with Virtual Tables ({})",
            module_of(sql)
        )),
        None => Ok(()),
    }
}

/// The module of `CREATE VIRTUAL TABLE … USING module(…)`, lower-cased.
fn module_of(sql: &str) -> String {
    VirtualTable::parse(sql)
        .map(|vtab| vtab.module)
        .filter(|module| !module.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// SQLite's message with its primary result code, as D1 words errors.
fn d1_error(e: rusqlite::Error) -> String {
    match e {
        // D1 words every authorizer refusal alike, where SQLite says `access to t.c is
        // prohibited` for a read.
        rusqlite::Error::SqliteFailure(failure, _) if failure.extended_code & 0xff == 23 => {
            "not authorized: SQLITE_AUTH".to_owned()
        }
        rusqlite::Error::SqliteFailure(failure, message) => {
            let text = message.unwrap_or_else(|| failure.to_string());
            format!("{text}: {}", code_name(failure.extended_code & 0xff))
        }
        other => format!("{other}: SQLITE_ERROR"),
    }
}

fn code_name(code: i32) -> &'static str {
    match code {
        2 => "SQLITE_INTERNAL",
        3 => "SQLITE_PERM",
        4 => "SQLITE_ABORT",
        5 => "SQLITE_BUSY",
        6 => "SQLITE_LOCKED",
        7 => "SQLITE_NOMEM",
        8 => "SQLITE_READONLY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        11 => "SQLITE_CORRUPT",
        13 => "SQLITE_FULL",
        18 => "SQLITE_TOOBIG",
        19 => "SQLITE_CONSTRAINT",
        20 => "SQLITE_MISMATCH",
        21 => "SQLITE_MISUSE",
        23 => "SQLITE_AUTH",
        25 => "SQLITE_RANGE",
        26 => "SQLITE_NOTADB",
        _ => "SQLITE_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_d1_sends_them() {
        // `js` is what D1's `JSON.stringify` writes; a reader must get the same JSON value.
        let check = |v: f64, js: &str| {
            let read: Value = serde_json::from_str(js).unwrap_or_else(|e| panic!("{js}: {e}"));
            assert_eq!(d1_number(v), read, "{v:e}");
        };
        check(1.0, "1");
        check(-0.0, "0");
        check(1.5, "1.5");
        check(0.1 + 0.2, "0.30000000000000004");
        #[allow(clippy::cast_precision_loss)]
        {
            check(9_007_199_254_740_993_i64 as f64, "9007199254740992");
            check(i64::MAX as f64, "9223372036854776000");
            check(i64::MIN as f64, "-9223372036854776000");
            assert_eq!(
                d1_number(i64::MAX as f64).as_u64(),
                Some(9_223_372_036_854_776_000)
            );
        }
        check(1e21, "1e+21");
        check(5e-324, "5e-324");
        check(f64::INFINITY, "null");
    }

    #[test]
    fn module_names() {
        assert_eq!(
            module_of("CREATE VIRTUAL TABLE t USING fts5(a, content='x')"),
            "fts5"
        );
        assert_eq!(module_of("CREATE VIRTUAL TABLE t using RTree(id)"), "rtree");
    }
}
