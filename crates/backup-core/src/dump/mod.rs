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
//!
//! # Row sources
//!
//! A source decides *what* the rows and cells are; this module decides *how* they are written.
//! Today there are two: a SQLite file read through rusqlite (`crate::sqlite`, feature
//! `sqlite`), whose cells are typed ([`Cell::Integer`], [`Cell::Text`], …) with the column's
//! [`Affinity`], and D1's query API (`crate::vtab_export`), whose cells are exact literals
//! from `quote()` ([`Cell::Literal`]). A further source (an online export through the query
//! API) reads `sqlite_schema` into [`plan::Table`]s and [`plan::Object`]s, asks
//! [`plan::plan`] for the steps, and for each [`plan::Step::Rows`] reads the table's rows and
//! hands each row's cells to [`DumpWriter::row`] under the table's [`Insert`]: the order of
//! statements, the encodings and the statement limits stay here. The per-table D1 export
//! appends to D1's own dump, so it has its own short order (`crate::vtab_export`) but the same
//! writer.
//!
//! Nothing here needs SQLite: the module is compiled without feature `sqlite`. Without it,
//! only the per-table D1 export writes (literal cells) and only [`DumpStatements`] reads, so
//! the typed encodings and the rules the SQLite side asks are unused there.
#![cfg_attr(not(feature = "sqlite"), allow(dead_code))]

pub(crate) mod error;
pub(crate) mod names;
pub(crate) mod plan;
pub(crate) mod statements;
pub(crate) mod value;
pub(crate) mod vtab;
pub(crate) mod writer;

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
