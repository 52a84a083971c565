//! Writing a dump: statements joined as D1 joins them, rows encoded cell by cell, and the
//! statements that recreate what a plain `CREATE TABLE` does not (SQLite's own tables, virtual
//! tables).

use std::io::{self, Write};

use super::D1_STATEMENT_LIMIT;
use super::names::push_ident;
use super::value::{Affinity, Cell, Form, push_value};

/// What makes `sqlite_sequence` exist, and empties it, before its rows.
pub(crate) const SEQUENCE_HEAD: &str = "DELETE FROM sqlite_sequence;";

/// What makes `sqlite_stat1` exist before its rows (wrangler's statement).
pub(crate) const STAT_HEAD: &str = "ANALYZE sqlite_schema;";

/// Statements joined with `\n`, no trailing newline, bytes and oversized statements counted.
///
/// Every statement of a dump goes through [`statement`](Self::statement) (or
/// [`row`](Self::row), which builds one from cells), whatever its source.
#[derive(Debug)]
pub(crate) struct DumpWriter<W> {
    out: W,
    /// Bytes written to `out`.
    bytes: u64,
    /// Statements longer than [`D1_STATEMENT_LIMIT`].
    oversized: u64,
    /// Values written differently from wrangler, whose form would not restore them.
    lossless_rewrites: u64,
    /// Whether a statement precedes the next one (which then starts with `\n`).
    started: bool,
    /// The row being built, reused across rows.
    row: Vec<u8>,
}

impl<W: Write> DumpWriter<W> {
    /// A writer at the start of a dump (whose first statement is
    /// [`DUMP_HEAD`](super::DUMP_HEAD)).
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            bytes: 0,
            oversized: 0,
            lossless_rewrites: 0,
            started: false,
            row: Vec::with_capacity(4096),
        }
    }

    /// A writer that continues a dump whose earlier statements were written elsewhere: its
    /// first statement starts with the joining `\n` unless those bytes ended with one.
    pub(crate) fn continuing(out: W, after_newline: bool) -> Self {
        let mut writer = Self::new(out);
        writer.started = !after_newline;
        writer
    }

    /// Writes one statement.
    pub(crate) fn statement(&mut self, sql: &[u8]) -> io::Result<()> {
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

    /// A stored `CREATE` (index, trigger, view, virtual table) as the dump writes it: plus `;`.
    pub(crate) fn stored(&mut self, sql: &str) -> io::Result<()> {
        let mut statement = Vec::with_capacity(sql.len() + 1);
        statement.extend_from_slice(sql.as_bytes());
        statement.push(b';');
        self.statement(&statement)
    }

    /// A stored `CREATE TABLE` as the dump writes it ([`create_table_sql`]).
    pub(crate) fn create_table(&mut self, sql: &str) -> io::Result<()> {
        self.statement(create_table_sql(sql).as_bytes())
    }

    /// `INSERT INTO "t" ("t") VALUES('rebuild');`: an external-content FTS table re-indexes
    /// its content table.
    pub(crate) fn rebuild(&mut self, table: &str) -> io::Result<()> {
        let mut sql = b"INSERT INTO ".to_vec();
        push_ident(&mut sql, table);
        sql.extend_from_slice(b" (");
        push_ident(&mut sql, table);
        sql.extend_from_slice(b") VALUES('rebuild');");
        self.statement(&sql)
    }

    /// One row: `insert`'s prefix, the cells `fill` pushes, `);`. An error from `fill` writes
    /// nothing.
    pub(crate) fn row<E: From<io::Error>>(
        &mut self,
        insert: &Insert,
        fill: impl FnOnce(&mut Cells<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        row.extend_from_slice(&insert.prefix);
        let mut cells = Cells {
            out: &mut row,
            count: 0,
            lossless: 0,
        };
        let filled = fill(&mut cells);
        let lossless = cells.lossless;
        let written = filled.and_then(|()| {
            row.extend_from_slice(b");");
            self.lossless_rewrites += lossless;
            self.statement(&row).map_err(E::from)
        });
        self.row = row;
        written
    }

    /// The output, e.g. to take what a chunk wrote.
    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Flushes the output and returns it with the counts.
    pub(crate) fn finish(mut self) -> io::Result<(W, Written)> {
        self.out.flush()?;
        let written = Written {
            bytes: self.bytes,
            oversized_statements: self.oversized,
            lossless_rewrites: self.lossless_rewrites,
        };
        Ok((self.out, written))
    }
}

/// What a [`DumpWriter`] counted.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Written {
    /// Bytes written.
    pub(crate) bytes: u64,
    /// Statements longer than D1's import accepts.
    pub(crate) oversized_statements: u64,
    /// Values written in a lossless form instead of wrangler's.
    pub(crate) lossless_rewrites: u64,
}

/// The cells of one row, pushed in column order.
pub(crate) struct Cells<'a> {
    out: &'a mut Vec<u8>,
    count: usize,
    lossless: u64,
}

impl Cells<'_> {
    /// Appends a cell stored in a column of `affinity` (which decides whether wrangler's
    /// form of a number gives it back; [`Affinity::Blob`] when unknown).
    pub(crate) fn push(&mut self, cell: Cell<'_>, affinity: Affinity) {
        if self.count > 0 {
            self.out.push(b',');
        }
        self.count += 1;
        if push_value(self.out, cell, affinity) == Form::Lossless {
            self.lossless += 1;
        }
    }
}

/// `INSERT INTO "t" ("a","b") VALUES(`: what every row of a table starts with.
#[derive(Debug, Clone)]
pub(crate) struct Insert {
    prefix: Vec<u8>,
}

impl Insert {
    /// Rows of `table` naming `columns`, with `rowid` first when `with_rowid` (virtual tables
    /// whose rowids are kept).
    pub(crate) fn new<'c>(
        table: &str,
        columns: impl IntoIterator<Item = &'c str>,
        with_rowid: bool,
    ) -> Self {
        let mut prefix = b"INSERT INTO ".to_vec();
        push_ident(&mut prefix, table);
        prefix.extend_from_slice(b" (");
        if with_rowid {
            prefix.extend_from_slice(b"rowid");
        }
        for (i, column) in columns.into_iter().enumerate() {
            if i > 0 || with_rowid {
                prefix.push(b',');
            }
            push_ident(&mut prefix, column);
        }
        prefix.extend_from_slice(b") VALUES(");
        Self { prefix }
    }

    /// FTS5 settings replayed into table `table`: `INSERT INTO "t" ("t",rank) VALUES(`, then
    /// the key and the value (`rank`, `pgsz`, `automerge`, … from `<t>_config`).
    pub(crate) fn fts5_config(table: &str) -> Self {
        let mut prefix = b"INSERT INTO ".to_vec();
        push_ident(&mut prefix, table);
        prefix.extend_from_slice(b" (");
        push_ident(&mut prefix, table);
        prefix.extend_from_slice(b",rank) VALUES(");
        Self { prefix }
    }
}

/// The stored `CREATE TABLE` as wrangler writes it: `IF NOT EXISTS` is added when the stored
/// text matches JavaScript's `/CREATE TABLE ['"].*/` (anywhere, as the regex is unanchored).
pub(crate) fn create_table_sql(sql: &str) -> String {
    let quoted = sql.contains("CREATE TABLE '") || sql.contains("CREATE TABLE \"");
    match sql.get(13..) {
        Some(rest) if quoted => format!("CREATE TABLE IF NOT EXISTS {rest};"),
        _ => format!("{sql};"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_not_exists_only_for_quoted_names() {
        assert_eq!(
            create_table_sql("CREATE TABLE \"order\" (id)"),
            "CREATE TABLE IF NOT EXISTS \"order\" (id);"
        );
        assert_eq!(
            create_table_sql("CREATE TABLE 'a''b'(v)"),
            "CREATE TABLE IF NOT EXISTS 'a''b'(v);"
        );
        assert_eq!(
            create_table_sql("CREATE TABLE [b n] (x)"),
            "CREATE TABLE [b n] (x);"
        );
        assert_eq!(
            create_table_sql("CREATE TABLE t (x)"),
            "CREATE TABLE t (x);"
        );
    }

    fn text(writer: DumpWriter<Vec<u8>>) -> (String, Written) {
        let (out, written) = writer.finish().unwrap_or_else(|e| panic!("{e}"));
        (String::from_utf8(out).unwrap_or_default(), written)
    }

    #[test]
    fn statements_are_joined_and_rows_encoded() -> io::Result<()> {
        let mut w = DumpWriter::new(Vec::new());
        w.statement(super::super::DUMP_HEAD.as_bytes())?;
        w.create_table("CREATE TABLE \"t\" (a, \"b\"\"c\")")?;
        let insert = Insert::new("t", ["a", "b\"c"], false);
        w.row(&insert, |cells| {
            cells.push(Cell::Integer(1), Affinity::Blob);
            cells.push(Cell::Real(3.0), Affinity::Blob);
            Ok::<_, io::Error>(())
        })?;
        w.row(&insert, |_| Err(io::Error::other("the source failed")))
            .err()
            .ok_or_else(|| io::Error::other("expected the row to fail"))?;
        w.rebuild("f")?;
        w.row(&Insert::fts5_config("f"), |cells| {
            cells.push(Cell::Literal("'pgsz'"), Affinity::Blob);
            cells.push(Cell::Literal("64"), Affinity::Blob);
            Ok::<_, io::Error>(())
        })?;
        w.row(&Insert::new("v", ["x"], true), |cells| {
            cells.push(Cell::Integer(7), Affinity::Integer);
            cells.push(Cell::Null, Affinity::Blob);
            Ok::<_, io::Error>(())
        })?;
        w.stored("CREATE INDEX i ON t(a)")?;
        let (dump, written) = text(w);
        assert_eq!(
            dump,
            "PRAGMA defer_foreign_keys=TRUE;\n\
             CREATE TABLE IF NOT EXISTS \"t\" (a, \"b\"\"c\");\n\
             INSERT INTO \"t\" (\"a\",\"b\"\"c\") VALUES(1,3.0);\n\
             INSERT INTO \"f\" (\"f\") VALUES('rebuild');\n\
             INSERT INTO \"f\" (\"f\",rank) VALUES('pgsz',64);\n\
             INSERT INTO \"v\" (rowid,\"x\") VALUES(7,NULL);\n\
             CREATE INDEX i ON t(a);"
        );
        assert_eq!(written.bytes, dump.len() as u64);
        assert_eq!(written.lossless_rewrites, 1);
        assert_eq!(written.oversized_statements, 0);
        Ok(())
    }

    #[test]
    fn a_continued_dump_joins_onto_what_came_before() -> io::Result<()> {
        let mut after_statement = DumpWriter::continuing(Vec::new(), false);
        after_statement.statement(b"SELECT 1;")?;
        assert_eq!(text(after_statement).0, "\nSELECT 1;");
        let mut after_newline = DumpWriter::continuing(Vec::new(), true);
        after_newline.statement(b"SELECT 1;")?;
        after_newline.statement(&vec![b'x'; D1_STATEMENT_LIMIT + 1])?;
        let (dump, written) = text(after_newline);
        assert!(dump.starts_with("SELECT 1;\nxxx"));
        assert_eq!(written.oversized_statements, 1);
        Ok(())
    }
}
