//! The D1 dump format, in one place: what D1's export and `wrangler d1 export` write, and what
//! this crate writes and reads back.
//!
//! A dump is UTF-8 SQL, statements joined with `\n`, no trailing newline, no
//! `BEGIN`/`COMMIT`:
//!
//! 1. [`DUMP_HEAD`], `PRAGMA defer_foreign_keys=TRUE;` (an empty database dumps to exactly it);
//! 2. each table in creation order (`sqlite_sequence` last): its stored `CREATE TABLE` plus `;`
//!    ([`writer::create_table_sql`]), then one `INSERT INTO "t" ("a","b") VALUES(…);` per row;
//!    `sqlite_sequence` as `DELETE FROM sqlite_sequence;` plus its rows; D1's and SQLite's own
//!    tables skipped ([`TableClass`]);
//! 3. indexes, triggers and views, as stored plus `;`.
//!
//! The module is split by what each part knows, so that a new source of rows only reads:
//!
//! - [`names`]: identifier quoting ([`push_ident`], [`quote_ident`]) and the one rule for which
//!   tables are D1's or SQLite's own ([`TableClass`]).
//! - [`value`]: [`Cell`], one value as a source read it (typed, or an exact SQL literal from
//!   SQLite's `quote()`), and its SQL literal in wrangler's form, or a lossless form where
//!   wrangler's would not restore it ([`Affinity`], [`value::Form`]).
//! - [`writer`]: [`DumpWriter`], which joins statements and counts what D1's import would
//!   refuse, and [`Insert`], the `INSERT INTO "t" (…) VALUES(` of a table whose cells follow;
//!   the statements that recreate virtual tables and SQLite's own tables.
//! - [`plan`]: the order of a whole dump as data ([`plan::Step`]s) for a schema a source read:
//!   the roles of tables ([`plan::Role`]), the filters of `wrangler d1 export`, virtual tables
//!   after ordinary ones, objects last.
//! - [`vtab`]: the `CREATE VIRTUAL TABLE` parser (module, where the content lives, shadow
//!   tables).
//! - [`statements`]: the reader, [`DumpStatements`], which splits a dump into statements as
//!   `sqlite3_complete` would; its errors are [`RestoreError`] ([`error`]).
//! - `split` (feature `sqlite`): `Splitter`, which rewrites an `INSERT` longer than D1's
//!   statement limit into an `INSERT` and `UPDATE`s that fit and give the same row.
//! - [`defects`]: [`DefectScanner`], which reads a dump as it streams and names the tables
//!   whose rows D1's export wrote lossily ([`DefectKind`]), so they can be re-read online.
//!
//! # Row sources
//!
//! A source decides *what* the rows and cells are; this module decides *how* they are written.
//! There are three: a SQLite file read through rusqlite (`crate::sqlite`, feature
//! `sqlite`), whose cells are typed ([`Cell::Integer`], [`Cell::Text`], …) with the column's
//! [`Affinity`]; D1's query API for virtual tables appended to an export
//! (`crate::vtab_export`), whose cells are exact literals from `quote()` ([`Cell::Literal`]);
//! and the online export (`crate::online`), which reads `sqlite_schema` through the query API
//! into [`plan::Table`]s and [`plan::Object`]s, asks [`plan::plan`] for the steps, and for
//! each [`plan::Step::Rows`] reads the table's rows in pages and hands each row's typed cells
//! to [`DumpWriter::row`] under the table's [`Insert`]: the order of statements, the
//! encodings and the statement limits stay here. The per-table D1 export
//! appends to D1's own dump, so it has its own short order (`crate::vtab_export`) but the same
//! writer.
//!
//! Nothing here needs SQLite: the module is compiled without feature `sqlite`. Without it,
//! only the per-table D1 export writes (literal cells) and only [`DumpStatements`] reads, so
//! the typed encodings and the rules the SQLite side asks are unused there.
#![cfg_attr(not(feature = "sqlite"), allow(dead_code))]

pub(crate) mod defects;
pub(crate) mod error;
pub(crate) mod names;
pub(crate) mod plan;
#[cfg(feature = "sqlite")]
pub(crate) mod split;
pub(crate) mod statements;
pub(crate) mod value;
pub(crate) mod vtab;
pub(crate) mod writer;

pub use defects::{DefectKind, DefectScanner, Defects, SharedScanner, TableDefects};
pub use error::RestoreError;
#[cfg(feature = "sqlite")]
pub(crate) use error::snippet;
#[cfg(feature = "sqlite")]
pub(crate) use names::push_ident;
pub(crate) use names::{TableClass, quote_ident};
pub use statements::DumpStatements;
#[cfg(feature = "sqlite")]
pub(crate) use statements::{Kind, Statement};
pub(crate) use value::{Affinity, Cell};
pub(crate) use vtab::{Content, VirtualTable};
pub(crate) use writer::{DumpWriter, Insert};

/// The first statement of every D1 dump (and all of an empty one).
pub(crate) const DUMP_HEAD: &str = "PRAGMA defer_foreign_keys=TRUE;";

/// D1's import (and `wrangler d1 execute --file`) rejects statements longer than this many
/// bytes (`SQLITE_TOOBIG`), although SQLite restores them.
pub(crate) const D1_STATEMENT_LIMIT: usize = 100_000;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io;

    use super::plan::{Filter, Object, Read, Role, Step, Table, plan};
    use super::*;

    /// What a new row source does: read the schema into tables and objects, execute the
    /// plan's steps, hand each row's typed cells to the writer. Here the "database" is a map
    /// of rows; an online export reads the same through the query API.
    #[test]
    fn a_row_source_is_a_schema_rows_and_the_plans_steps() -> io::Result<()> {
        let table = |name: &str, sql: &str| Table {
            name: name.to_owned(),
            sql: sql.to_owned(),
            role: Role::of(name, sql, || Ok::<_, io::Error>(false)).unwrap_or(Role::Internal),
        };
        let tables = [
            table("_cf_KV", "CREATE TABLE _cf_KV (k, v)"),
            table(
                "t",
                "CREATE TABLE \"t\" (id INTEGER PRIMARY KEY AUTOINCREMENT, v)",
            ),
            table("sqlite_sequence", "CREATE TABLE sqlite_sequence(name,seq)"),
        ];
        let objects = [Object {
            name: "t_v".to_owned(),
            tbl_name: "t".to_owned(),
            sql: "CREATE INDEX t_v ON t(v)".to_owned(),
        }];
        let rows: BTreeMap<&str, (Vec<&str>, Vec<Vec<Cell<'_>>>)> = BTreeMap::from([
            (
                "t",
                (
                    vec!["id", "v"],
                    vec![
                        vec![Cell::Integer(1), Cell::Text(b"a\nb")],
                        vec![Cell::Integer(2), Cell::Real(-0.0)],
                    ],
                ),
            ),
            (
                "sqlite_sequence",
                (
                    vec!["name", "seq"],
                    vec![vec![Cell::Text(b"t"), Cell::Integer(2)]],
                ),
            ),
        ]);
        let filter = Filter {
            tables: &[],
            no_data: false,
            no_schema: false,
        };
        let mut out = DumpWriter::new(Vec::new());
        for step in plan(&tables, &objects, filter).0 {
            match step {
                Step::Statement(sql) => out.statement(sql.as_bytes())?,
                Step::CreateTable(sql) => out.create_table(sql)?,
                Step::Stored(sql) => out.stored(sql)?,
                Step::Rebuild(table) => out.rebuild(table)?,
                Step::Fts5Config(_) | Step::Rows(_, Read::WithRowid | Read::Module) => {
                    unreachable!("no virtual table here")
                }
                Step::Rows(table, Read::TableScan) => {
                    let (columns, table_rows) = &rows[table];
                    let insert = Insert::new(table, columns.iter().copied(), false);
                    for row in table_rows {
                        out.row(&insert, |cells| {
                            for cell in row {
                                cells.push(*cell, Affinity::Blob);
                            }
                            Ok::<_, io::Error>(())
                        })?;
                    }
                }
            }
        }
        let (dump, written) = out.finish()?;
        assert_eq!(
            String::from_utf8_lossy(&dump),
            "PRAGMA defer_foreign_keys=TRUE;\n\
             CREATE TABLE IF NOT EXISTS \"t\" (id INTEGER PRIMARY KEY AUTOINCREMENT, v);\n\
             INSERT INTO \"t\" (\"id\",\"v\") VALUES(1,replace('a\\nb','\\n',char(10)));\n\
             INSERT INTO \"t\" (\"id\",\"v\") VALUES(2,-0.0);\n\
             DELETE FROM sqlite_sequence;\n\
             INSERT INTO \"sqlite_sequence\" (\"name\",\"seq\") VALUES('t',2);\n\
             CREATE INDEX t_v ON t(v);"
        );
        assert_eq!(written.lossless_rewrites, 1);
        Ok(())
    }
}
