//! The dump itself: the steps `crate::dump::plan` orders for the catalog, each read from
//! SQLite row by row and written through the dump module's writer.

use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::Connection;

use super::schema::{self, Column};
use super::{SqliteDumpError, SqliteDumpOptions, SqliteDumpStats};
use crate::dump::plan::{Filter, Read, Step, plan};
use crate::dump::{Affinity, Cell, DumpWriter, Insert, push_ident};

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
        let tables = schema::tables(self.conn).map_err(|e| self.sqlite(None, e))?;
        let objects = if self.options.no_schema {
            Vec::new()
        } else {
            schema::objects(self.conn).map_err(|e| self.sqlite(None, e))?
        };
        let filter = Filter {
            tables: &self.options.tables,
            no_data: self.options.no_data,
            no_schema: self.options.no_schema,
        };
        let (steps, tables_written) = plan(&tables, &objects, filter);
        self.stats.tables = tables_written;
        for step in steps {
            match step {
                Step::Statement(sql) => self.out.statement(sql.as_bytes())?,
                Step::CreateTable(sql) => self.out.create_table(sql)?,
                Step::Stored(sql) => self.out.stored(sql)?,
                Step::Rows(table, read) => self.rows(table, read)?,
                Step::Fts5Config(table) => self.fts5_config(table)?,
                Step::Rebuild(table) => self.out.rebuild(table)?,
            }
        }
        let (_, written) = self.out.finish()?;
        self.stats.bytes = written.bytes;
        self.stats.oversized_statements = written.oversized_statements;
        self.stats.lossless_rewrites = written.lossless_rewrites;
        Ok(self.stats)
    }

    fn sqlite(&self, table: Option<&str>, e: rusqlite::Error) -> SqliteDumpError {
        SqliteDumpError::from_sqlite(self.path, table, e)
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
