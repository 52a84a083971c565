//! Dumping a local SQLite database (e.g. wrangler's local D1 file) in D1's export format.
//!
//! This module is the SQLite *row source*: it reads the catalog and the rows through rusqlite
//! and hands typed cells to the writer of `crate::dump`, which owns the format itself (the
//! encodings, the quoting, the internal-table rule, the statements). What follows describes
//! the dump this source produces.
//!
//! [`dump_sqlite`] writes exactly what `wrangler d1 export` (4.164) and the D1 export API write,
//! byte for byte, wherever that format restores the database exactly; where it does not, it
//! writes lossless SQL instead, which SQLite and D1's import accept. The format:
//!
//! - UTF-8, statements joined with `\n`, no trailing newline, no `BEGIN`/`COMMIT`;
//!   `PRAGMA defer_foreign_keys=TRUE;` first (an empty database dumps to exactly that line).
//! - Tables in creation order (`sqlite_schema` rowid order, `sqlite_sequence` last), each as its
//!   stored `CREATE TABLE` plus `;` (with `IF NOT EXISTS` added when the stored name is quoted
//!   with `"` or `'`), then one `INSERT INTO "t" ("a","b") VALUES(…);` per row, in rowid order
//!   (primary-key order for `WITHOUT ROWID` tables), generated columns left out. Rowids of
//!   tables without an `INTEGER PRIMARY KEY` are not written, as in wrangler's dump.
//! - `sqlite_sequence` as `DELETE FROM sqlite_sequence;` plus its rows, `sqlite_stat1` as
//!   `ANALYZE sqlite_schema;` plus its rows; `_cf_*` and other `sqlite_*` tables are skipped.
//! - Then every index, trigger and view (in that order, as wrangler does: a trigger on a view
//!   therefore precedes the view, and a restore stops there).
//!
//! # Where the dump differs from wrangler's
//!
//! Only in values wrangler's encoding would not give back (each counted in
//! [`SqliteDumpStats::lossless_rewrites`]), and in virtual tables:
//!
//! - integers beyond ±2^53 are written exactly (wrangler rounds them through a double);
//! - a REAL that JavaScript prints as an integer (`3.0` → `3`, `-0.0` → `0`) is written `3.0` /
//!   `-0.0` where the column would otherwise store an INTEGER (untyped, `ANY`, `NUMERIC`, …);
//!   in REAL columns wrangler's `3` already comes back as REAL and is kept;
//! - text holding both a real newline and a literal backslash-`n` (or `r`), which wrangler's
//!   `replace(…,'\n',char(10))` wrapper would corrupt, is written as `'…'||char(10)||'…'`;
//! - text holding NUL or bytes that are not UTF-8 is written as `CAST(X'…' AS TEXT)`;
//! - virtual tables, which make wrangler's whole export fail, are written after all ordinary
//!   tables: their stored `CREATE VIRTUAL TABLE`, FTS5 settings replayed as
//!   `INSERT INTO "t" ("t",rank) VALUES('pgsz',…);`, then their content. An FTS table with its
//!   own content gets one `INSERT INTO "t" (rowid,"a","b") VALUES(…);` per row, read through
//!   the module; an external-content FTS table (`content='articles'`) gets
//!   `INSERT INTO "t" ("t") VALUES('rebuild');`; other modules get one INSERT per row of their
//!   declared columns. The shadow tables (`<t>_data`, `<t>_idx`, `<t>_content`, …) are not
//!   written: the `CREATE VIRTUAL TABLE` recreates them and the module refills them. A
//!   contentless FTS table (`content=''`) keeps nothing that can be read back, so it is
//!   recreated empty;
//! - indexes and triggers on skipped `_cf_*`/`sqlite_*` tables are left out (wrangler writes
//!   them, and they cannot be created without their table).
//!
//! # D1 import limits
//!
//! D1's import (and `wrangler d1 execute --file`) rejects any statement over 100,000 bytes.
//! Like wrangler's, this dump writes each row as one statement, so a row holding a blob of
//! roughly 50 KB or more (hex doubles it), or a very long text, cannot be imported into D1 even
//! though SQLite restores it. D1 also enforces foreign keys on import, and the creation order
//! can put a child table before its parent. Both are kept for byte-identity with wrangler;
//! [`SqliteDumpStats::oversized_statements`] counts the statements over the limit.
//!
//! # Reading
//!
//! The file is opened read-only (it is never written, and write access is not needed) and read
//! inside one read transaction, so the dump is a consistent snapshot even while another process
//! (wrangler dev) writes. WAL databases work, including committed data still in the `-wal`
//! file. As for any SQLite reader of a WAL database, the `-shm` and `-wal` files must exist or
//! be creatable next to it (SQLite may create them; the database file itself is never
//! changed). Output is streamed row by row.

mod dump;
mod error;
mod schema;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use error::{SqliteCause, SqliteDumpError};

/// What to dump; the same choices as `wrangler d1 export`'s flags.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct SqliteDumpOptions {
    /// Only these names (`--table`, repeatable). Like wrangler, a name is compared with the
    /// names of tables, indexes, triggers and views, so naming a table does not bring its
    /// indexes, and an unknown name is not an error. Naming a virtual table's shadow table
    /// writes it as a plain table, as wrangler does. Empty means everything.
    pub tables: Vec<String>,
    /// Leave out the rows (`--no-data`): schema statements only.
    pub no_data: bool,
    /// Leave out the schema (`--no-schema`): the PRAGMA line and INSERTs only.
    pub no_schema: bool,
}

/// What a dump wrote.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct SqliteDumpStats {
    /// Tables written (ordinary and virtual; not `sqlite_sequence`/`sqlite_stat*`).
    pub tables: usize,
    /// INSERT statements written for rows (including `sqlite_sequence`/`sqlite_stat1` rows and
    /// rows re-inserted into virtual tables).
    pub rows: u64,
    /// Bytes written to the output.
    pub bytes: u64,
    /// Values written differently from wrangler because its form would not restore them
    /// exactly.
    pub lossless_rewrites: u64,
    /// Statements longer than 100,000 bytes, which D1's import rejects (`SQLITE_TOOBIG`)
    /// although SQLite restores them: rows with a blob of roughly 50 KB or more, or very long
    /// text. wrangler's export writes the same statements.
    pub oversized_statements: u64,
}

/// Dumps the SQLite database at `path` into `out` in D1's export format (see the module docs).
///
/// Blocking: call it from async code through `spawn_blocking`. `out` receives the dump in
/// pieces (it is buffered internally and flushed at the end); on error, what was written so
/// far is incomplete.
///
/// ```no_run
/// use std::path::Path;
/// use d1_backup_core::sqlite::{dump_sqlite, SqliteDumpOptions};
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mut file = std::fs::File::create("backup.sql")?;
/// let stats = dump_sqlite(Path::new("local.sqlite"), &SqliteDumpOptions::default(), &mut file)?;
/// println!("{} rows, {} bytes", stats.rows, stats.bytes);
/// # Ok(())
/// # }
/// ```
pub fn dump_sqlite(
    path: &Path,
    options: &SqliteDumpOptions,
    out: &mut dyn Write,
) -> Result<SqliteDumpStats, SqliteDumpError> {
    let conn = open(path)?;
    let sqlite = |e| SqliteDumpError::from_sqlite(path, None, e);
    // One read transaction for the whole dump: every query sees the same snapshot.
    let tx = conn.unchecked_transaction().map_err(sqlite)?;
    let stats = dump::Dumper::new(&tx, path, options, out).run()?;
    tx.rollback().map_err(sqlite)?;
    Ok(stats)
}

fn open(path: &Path) -> Result<Connection, SqliteDumpError> {
    let open_error = |source| SqliteDumpError::Open {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(open_error)?;
    if meta.is_dir() {
        return Err(open_error(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| SqliteDumpError::from_sqlite(path, None, e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| SqliteDumpError::from_sqlite(path, None, e))?;
    Ok(conn)
}
