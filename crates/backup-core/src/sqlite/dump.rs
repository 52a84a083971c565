//! The dump itself: wrangler's statement order, read row by row from SQLite and written
//! through the dump module's writer.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::Connection;

use super::schema::{self, Column, Role, Table};
use super::{SqliteDumpError, SqliteDumpOptions, SqliteDumpStats};
use crate::dump::writer::{SEQUENCE_HEAD, STAT_HEAD};
use crate::dump::{Affinity, Cell, Content, DumpWriter, Insert, VirtualTable, push_ident};

/// One dump in progress.
pub(crate) struct Dumper<'a> {
    conn: &'a Connection,
    path: &'a Path,
    options: &'a SqliteDumpOptions,
    out: DumpWriter<BufWriter<&'a mut dyn Write>>,
    stats: SqliteDumpStats,
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
            out: DumpWriter::new(BufWriter::with_capacity(64 * 1024, out)),
            stats: SqliteDumpStats::default(),
        }
    }

    pub(crate) fn run(mut self) -> Result<SqliteDumpStats, SqliteDumpError> {
        self.out.head()?;
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
                Role::Sequence => self.internal(table, SEQUENCE_HEAD)?,
                Role::Stat => self.internal(table, STAT_HEAD)?,
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
        let (_, written) = self.out.finish()?;
        self.stats.bytes = written.bytes;
        self.stats.oversized_statements = written.oversized_statements;
        self.stats.lossless_rewrites = written.lossless_rewrites;
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
            self.out.create_table(&table.sql)?;
        }
        self.rows(&table.name, Read::TableScan)
    }

    /// `sqlite_sequence` and `sqlite_stat*`, which SQLite creates itself: wrangler's statement
    /// that makes the table exist (`DELETE FROM sqlite_sequence;` also empties it), then the
    /// rows.
    fn internal(&mut self, table: &Table, head: &str) -> Result<(), SqliteDumpError> {
        if !self.options.no_schema {
            self.out.statement(head.as_bytes())?;
        }
        self.rows(&table.name, Read::TableScan)
    }

    fn virtual_table(&mut self, table: &Table, vtab: &VirtualTable) -> Result<(), SqliteDumpError> {
        self.stats.tables += 1;
        if !self.options.no_schema {
            self.out.stored(&table.sql)?;
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
            Content::External => Ok(self.out.rebuild(&table.name)?),
            Content::Contentless => Ok(()),
        }
    }

    /// FTS5 settings (`rank`, `pgsz`, `automerge`, …) live in `<t>_config`; `version` is
    /// written by the module itself.
    fn fts5_config(&mut self, name: &str) -> Result<(), SqliteDumpError> {
        let mut sql = b"SELECT k, v FROM main.".to_vec();
        push_ident(&mut sql, &format!("{name}_config"));
        sql.extend_from_slice(b" WHERE k <> 'version' ORDER BY k");
        let sql = String::from_utf8_lossy(&sql).into_owned();
        let err = |e| SqliteDumpError::from_sqlite(self.path, Some(name), e);
        let mut stmt = self.conn.prepare(&sql).map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let insert = Insert::fts5_config(name);
        while let Some(row) = rows.next().map_err(err)? {
            self.out.row(&insert, |cells| {
                for i in 0..2 {
                    cells.push(Cell::from(row.get_ref(i).map_err(err)?), Affinity::Blob);
                }
                Ok::<_, SqliteDumpError>(())
            })?;
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
        let with_rowid = read == Read::WithRowid;
        let insert = Insert::new(table, columns.iter().map(|c| c.name.as_str()), with_rowid);
        let mut stmt = self
            .conn
            .prepare(&select(table, &columns, read))
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let affinities: Vec<Affinity> = with_rowid
            .then_some(Affinity::Integer)
            .into_iter()
            .chain(columns.iter().map(|c| c.affinity))
            .collect();
        while let Some(row) = rows.next().map_err(err)? {
            self.out.row(&insert, |cells| {
                for (i, affinity) in affinities.iter().enumerate() {
                    cells.push(Cell::from(row.get_ref(i).map_err(err)?), *affinity);
                }
                Ok::<_, SqliteDumpError>(())
            })?;
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
                self.out.stored(&object.sql)?;
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

/// The SELECT that reads a table's rows in dump order: the columns [`Insert::new`] names,
/// `rowid` first when [`Read::WithRowid`].
///
/// `NOT INDEXED` makes SQLite scan the table's own b-tree: rowid order for rowid tables,
/// primary-key order (with its `DESC` and collations) for `WITHOUT ROWID` tables, never the
/// order of a covering index. Virtual tables are read in rowid order when rowids are kept.
fn select(table: &str, columns: &[Column], read: Read) -> String {
    let with_rowid = read == Read::WithRowid;
    let mut select = b"SELECT ".to_vec();
    if with_rowid {
        select.extend_from_slice(b"rowid");
    }
    for (i, column) in columns.iter().enumerate() {
        if i > 0 || with_rowid {
            select.push(b',');
        }
        push_ident(&mut select, &column.name);
    }
    select.extend_from_slice(b" FROM main.");
    push_ident(&mut select, table);
    match read {
        Read::TableScan => select.extend_from_slice(b" NOT INDEXED"),
        Read::WithRowid => select.extend_from_slice(b" ORDER BY rowid"),
        Read::Module => {}
    }
    String::from_utf8_lossy(&select).into_owned()
}
