//! A dump of arbitrary bytes through the dump reader: `DumpStatements` to the end, then
//! `restore_dump` and `restore_dump_keep_going` into in-memory databases. Never a panic, every
//! error displays, and:
//!
//! - the statements do not depend on how the reader hands over the bytes;
//! - a failed `restore_dump` leaves nothing behind and no transaction open;
//! - a dump `restore_dump` takes is taken by `restore_dump_keep_going` the same way.
//!
//! A dump is SQL, and SQL can loop (a recursive CTE) or multiply rows: SQLite's own work is
//! bounded here (VM steps, value sizes, no ATTACH, no process-wide pragmas) so that what the
//! fuzzer measures is the reader's.
#![no_main]

use std::io::BufReader;

use d1_backup_core::{DumpStatements, RestoreError, restore_dump, restore_dump_keep_going};
use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;

/// VM instructions between progress checks, and checks before SQLite is interrupted.
const STEP: i32 = 1_000;
const BUDGET: u32 = 5_000;

fuzz_target!(|data: &[u8]| {
    let whole = split(DumpStatements::new(data));
    let pieces = split(DumpStatements::new(BufReader::with_capacity(5, data)));
    assert_eq!(
        whole, pieces,
        "the statements depend on how the bytes arrive"
    );
    let _ = split(DumpStatements::new(data).without_transaction());

    let conn = connection();
    let strict = restore_dump(data, &conn);
    check_after(&conn, &strict);
    let conn = connection();
    let lenient = restore_dump_keep_going(data, &conn);
    check_after(&conn, &lenient);
    if let (Ok(strict), lenient) = (&strict, &lenient) {
        match lenient {
            Ok(lenient) => assert_eq!(strict, lenient, "keep-going differs on a clean dump"),
            Err(e) => panic!("keep-going failed on a dump restore_dump took: {e}"),
        }
    }
});

/// Every item, statements as `(line, sql)` and the error as its text.
fn split(
    statements: impl Iterator<Item = Result<(u64, String), RestoreError>>,
) -> Vec<Result<(u64, String), String>> {
    statements
        .map(|item| item.map_err(|e| e.to_string()))
        .collect()
}

/// An in-memory database whose work is bounded (see the file's comment).
fn connection() -> Connection {
    let Ok(mut conn) = Connection::open_in_memory() else {
        panic!("no in-memory SQLite");
    };
    let _ = conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, 4 << 20);
    let _ = conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
    let mut checks = 0u32;
    let _ = conn.progress_handler(
        STEP,
        Some(move || {
            checks += 1;
            checks > BUDGET
        }),
    );
    let _ = conn.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
        AuthAction::Attach { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. }
            if matches!(
                pragma_name.to_ascii_lowercase().as_str(),
                "hard_heap_limit"
                    | "soft_heap_limit"
                    | "temp_store_directory"
                    | "data_store_directory"
            ) =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }));
    conn
}

/// No transaction stays open; a failed `restore_dump` leaves no schema object behind.
fn check_after(conn: &Connection, result: &Result<d1_backup_core::RestoreStats, RestoreError>) {
    assert!(
        conn.is_autocommit(),
        "a transaction stayed open: {result:?}"
    );
    let Err(err) = result else {
        return;
    };
    let _ = (err.to_string(), format!("{err:?}"));
    if matches!(err, RestoreError::Sqlite(_)) {
        // The budget interrupted SQLite itself (its COMMIT, say): nothing to compare.
        return;
    }
    let objects: rusqlite::Result<i64> = conn.query_row(
        "SELECT (SELECT count(*) FROM sqlite_schema) + (SELECT count(*) FROM sqlite_temp_schema)",
        [],
        |row| row.get(0),
    );
    if let Ok(objects) = objects {
        assert_eq!(objects, 0, "a failed restore left objects behind: {err}");
    }
}
