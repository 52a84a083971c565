//! The dump itself: wrangler's statement order, written row by row.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::Connection;

use super::schema::{self, Column, Role, Table};
use super::value::{self, Affinity, Form};
use super::vtab::{Content, VirtualTable};
use super::{SqliteDumpError, SqliteDumpOptions, SqliteDumpStats};

/// D1's import (and `wrangler d1 execute --file`) rejects longer statements.
const D1_STATEMENT_LIMIT: usize = 100_000;

/// Statements joined with `\n`, no trailing newline, bytes counted.
struct Output<'a> {
    out: BufWriter<&'a mut dyn Write>,
    bytes: u64,
    /// Statements longer than [`D1_STATEMENT_LIMIT`].
    oversized: u64,
    started: bool,
}

impl Output<'_> {
    fn statement(&mut self, sql: &[u8]) -> std::io::Result<()> {
        if self.started {
            self.out.write_all(b"\n")?;
            self.bytes += 1;
        }
        self.started = true;
        if sql.len() > D1_STATEMENT_LIMIT {
            self.oversized += 1;
        }
        self.out.write_all(sql)?;
        self.bytes += sql.len() as u64;
        Ok(())
    }
}

/// One dump in progress.
pub(crate) struct Dumper<'a> {
    conn: &'a Connection,
    path: &'a Path,
    options: &'a SqliteDumpOptions,
    out: Output<'a>,
    stats: SqliteDumpStats,
    /// The statement being built, reused across rows.
    buf: Vec<u8>,
}

impl<'a> Dumper<'a> {
    pub(crate) fn new(
        conn: &'a Connection,
        path: &'a Path,
        options: &'a SqliteDumpOptions,
        out: &'a mut dyn Write,
    ) -> Self {
        Self {
            conn,
            path,
            options,
            out: Output {
                out: BufWriter::with_capacity(64 * 1024, out),
                bytes: 0,
                oversized: 0,
                started: false,
            },
            stats: SqliteDumpStats::default(),
            buf: Vec::with_capacity(4096),
        }
    }

    pub(crate) fn run(mut self) -> Result<SqliteDumpStats, SqliteDumpError> {
        self.out.statement(b"PRAGMA defer_foreign_keys=TRUE;")?;
        let tables = schema::tables(self.conn).map_err(|e| self.sqlite(None, e))?;
        let mut virtual_tables = Vec::new();
        for table in &tables {
            if !self.selected(&table.name) {
                continue;
            }
            match &table.role {
                Role::Internal => {}
                // A shadow table is recreated by its virtual table; wrangler writes it like any
                // table when it is named explicitly, and so does this.
                Role::Shadow if self.options.tables.is_empty() => {}
                Role::Virtual(vtab) => virtual_tables.push((table, vtab)),
                Role::Sequence => self.internal(table, b"DELETE FROM sqlite_sequence;")?,
                Role::Stat => self.internal(table, b"ANALYZE sqlite_schema;")?,
                Role::Ordinary | Role::Shadow => self.ordinary(table)?,
            }
        }
        // After every ordinary table, so that external content is there to be indexed.
        for (table, vtab) in virtual_tables {
            self.virtual_table(table, vtab)?;
        }
        if !self.options.no_schema {
            self.objects(&tables)?;
        }
        let Output {
            mut out,
            bytes,
            oversized,
            ..
        } = self.out;
        out.flush()?;
        self.stats.bytes = bytes;
        self.stats.oversized_statements = oversized;
        Ok(self.stats)
    }

    fn selected(&self, name: &str) -> bool {
        self.options.tables.is_empty() || self.options.tables.iter().any(|t| t == name)
    }

    fn sqlite(&self, table: Option<&str>, e: rusqlite::Error) -> SqliteDumpError {
        SqliteDumpError::from_sqlite(self.path, table, e)
    }

    fn ordinary(&mut self, table: &Table) -> Result<(), SqliteDumpError> {
        self.stats.tables += 1;
        if !self.options.no_schema {
            self.out
                .statement(schema::create_table_sql(&table.sql).as_bytes())?;
        }
        self.rows(&table.name, Read::TableScan)
    }

    /// `sqlite_sequence` and `sqlite_stat*`, which SQLite creates itself: wrangler's statement
    /// that makes the table exist (`DELETE FROM sqlite_sequence;` also empties it), then the
    /// rows.
    fn internal(&mut self, table: &Table, head: &[u8]) -> Result<(), SqliteDumpError> {
        if !self.options.no_schema {
            self.out.statement(head)?;
        }
        self.rows(&table.name, Read::TableScan)
    }

    fn virtual_table(&mut self, table: &Table, vtab: &VirtualTable) -> Result<(), SqliteDumpError> {
        self.stats.tables += 1;
        if !self.options.no_schema {
            self.out.statement(format!("{};", table.sql).as_bytes())?;
            if vtab.module == "fts5" {
                self.fts5_config(&table.name)?;
            }
        }
        if self.options.no_data {
            return Ok(());
        }
        match vtab.content {
            Content::Own => self.rows(&table.name, Read::WithRowid),
            Content::Other => self.rows(&table.name, Read::Module),
            Content::External => {
                self.buf.clear();
                self.buf.extend_from_slice(b"INSERT INTO ");
                schema::push_ident(&mut self.buf, &table.name);
                self.buf.extend_from_slice(b" (");
                schema::push_ident(&mut self.buf, &table.name);
                self.buf.extend_from_slice(b") VALUES('rebuild');");
                self.out.statement(&self.buf)?;
                Ok(())
            }
            Content::Contentless => Ok(()),
        }
    }

    /// FTS5 settings (`rank`, `pgsz`, `automerge`, …) live in `<t>_config`; `version` is
    /// written by the module itself.
    fn fts5_config(&mut self, name: &str) -> Result<(), SqliteDumpError> {
        let mut sql = b"SELECT k, v FROM main.".to_vec();
        schema::push_ident(&mut sql, &format!("{name}_config"));
        sql.extend_from_slice(b" WHERE k <> 'version' ORDER BY k");
        let sql = String::from_utf8_lossy(&sql).into_owned();
        let err = |e| SqliteDumpError::from_sqlite(self.path, Some(name), e);
        let mut stmt = self.conn.prepare(&sql).map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            self.buf.clear();
            self.buf.extend_from_slice(b"INSERT INTO ");
            schema::push_ident(&mut self.buf, name);
            self.buf.extend_from_slice(b" (");
            schema::push_ident(&mut self.buf, name);
            self.buf.extend_from_slice(b",rank) VALUES(");
            for i in 0..2 {
                if i > 0 {
                    self.buf.push(b',');
                }
                let v = row.get_ref(i).map_err(err)?;
                if value::push_value(&mut self.buf, v, Affinity::Blob) == Form::Lossless {
                    self.stats.lossless_rewrites += 1;
                }
            }
            self.buf.extend_from_slice(b");");
            self.out.statement(&self.buf)?;
        }
        Ok(())
    }

    /// One `INSERT INTO "t" ("a","b") VALUES(…);` per row, in rowid (or primary-key) order.
    fn rows(&mut self, table: &str, read: Read) -> Result<(), SqliteDumpError> {
        if self.options.no_data {
            return Ok(());
        }
        let err = |e| SqliteDumpError::from_sqlite(self.path, Some(table), e);
        let columns = schema::columns(self.conn, table).map_err(err)?;
        let (select, prefix) = row_statements(table, &columns, read);
        let mut stmt = self.conn.prepare(&select).map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let affinities: Vec<Affinity> = (read == Read::WithRowid)
            .then_some(Affinity::Integer)
            .into_iter()
            .chain(columns.iter().map(|c| c.affinity))
            .collect();
        while let Some(row) = rows.next().map_err(err)? {
            self.buf.clear();
            self.buf.extend_from_slice(&prefix);
            for (i, affinity) in affinities.iter().enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                let v = row.get_ref(i).map_err(err)?;
                if value::push_value(&mut self.buf, v, *affinity) == Form::Lossless {
                    self.stats.lossless_rewrites += 1;
                }
            }
            self.buf.extend_from_slice(b");");
            self.out.statement(&self.buf)?;
            self.stats.rows += 1;
        }
        Ok(())
    }

    /// Indexes, triggers and views, as stored plus `;`. Objects on skipped internal tables
    /// are left out, as they could not be created without their table.
    fn objects(&mut self, tables: &[Table]) -> Result<(), SqliteDumpError> {
        let internal: HashSet<&str> = tables
            .iter()
            .filter(|t| matches!(t.role, Role::Internal))
            .map(|t| t.name.as_str())
            .collect();
        let objects = schema::objects(self.conn).map_err(|e| self.sqlite(None, e))?;
        for object in objects {
            if self.selected(&object.name) && !internal.contains(object.tbl_name.as_str()) {
                self.out.statement(format!("{};", object.sql).as_bytes())?;
            }
        }
        Ok(())
    }
}

/// How a table's rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// An ordinary table, scanned in its own b-tree's order.
    TableScan,
    /// A virtual table whose rowids are kept (FTS with its own content): rowid first.
    WithRowid,
    /// Another virtual table: declared columns, in the module's order.
    Module,
}

/// The SELECT that reads a table's rows in dump order, and the INSERT prefix for each row.
///
/// `NOT INDEXED` makes SQLite scan the table's own b-tree: rowid order for rowid tables,
/// primary-key order (with its `DESC` and collations) for `WITHOUT ROWID` tables, never the
/// order of a covering index. Virtual tables are read in rowid order when rowids are kept.
fn row_statements(table: &str, columns: &[Column], read: Read) -> (String, Vec<u8>) {
    let with_rowid = read == Read::WithRowid;
    let mut select = b"SELECT ".to_vec();
    let mut prefix = b"INSERT INTO ".to_vec();
    schema::push_ident(&mut prefix, table);
    prefix.extend_from_slice(b" (");
    if with_rowid {
        select.extend_from_slice(b"rowid");
        prefix.extend_from_slice(b"rowid");
    }
    for (i, column) in columns.iter().enumerate() {
        if i > 0 || with_rowid {
            select.push(b',');
            prefix.push(b',');
        }
        schema::push_ident(&mut select, &column.name);
        schema::push_ident(&mut prefix, &column.name);
    }
    prefix.extend_from_slice(b") VALUES(");
    select.extend_from_slice(b" FROM main.");
    schema::push_ident(&mut select, table);
    match read {
        Read::TableScan => select.extend_from_slice(b" NOT INDEXED"),
        Read::WithRowid => select.extend_from_slice(b" ORDER BY rowid"),
        Read::Module => {}
    }
    (String::from_utf8_lossy(&select).into_owned(), prefix)
}
