//! D1's export of a SQLite file, in D1's format (wrangler 4.164's `dumpSql`, which D1 runs
//! server-side; `../../shared/fixtures/wrangler/README.md` describes it):
//! `PRAGMA defer_foreign_keys=TRUE;`, then per table (creation order, `sqlite_sequence` last)
//! its `CREATE TABLE` and one `INSERT INTO "t" ("c",…) VALUES(…);` per row, then indexes,
//! triggers and views; statements joined by `\n`, no trailing newline. Values as D1 writes
//! them (`encode::sql_literal`), losses included.

use std::io::{self, Write};

use rusqlite::{Connection, OpenFlags};

use crate::encode::sql_literal;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Writes the dump of the SQLite file at `path` into `out`; returns the bytes written.
pub fn dump(path: &str, out: &mut impl Write) -> BoxResult<u64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut written = 0u64;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    buf.extend_from_slice(b"PRAGMA defer_foreign_keys=TRUE;");
    let tables: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql NOT NULL \
             ORDER BY tbl_name = 'sqlite_sequence', rowid",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut flush = |buf: &mut Vec<u8>, out: &mut dyn Write| -> io::Result<()> {
        written += buf.len() as u64;
        out.write_all(buf)?;
        buf.clear();
        Ok(())
    };
    for (name, sql) in &tables {
        let stat = name.starts_with("sqlite_stat");
        if name.starts_with("_cf_")
            || (name.starts_with("sqlite_") && name != "sqlite_sequence" && !stat)
        {
            continue;
        }
        if sql.starts_with("CREATE VIRTUAL TABLE") {
            return Err("D1 Export error: cannot export databases with Virtual Tables".into());
        }
        buf.push(b'\n');
        if name == "sqlite_sequence" {
            buf.extend_from_slice(b"DELETE FROM sqlite_sequence;");
        } else if stat {
            buf.extend_from_slice(b"ANALYZE sqlite_schema;");
        } else if let Some(rest) = sql
            .strip_prefix("CREATE TABLE ")
            .filter(|r| r.starts_with('"') || r.starts_with('\''))
        {
            buf.extend_from_slice(b"CREATE TABLE IF NOT EXISTS ");
            buf.extend_from_slice(rest.as_bytes());
            buf.push(b';');
        } else {
            buf.extend_from_slice(sql.as_bytes());
            buf.push(b';');
        }
        // Columns in declaration order; generated ones (hidden 2 and 3) are left out.
        let columns: Vec<(String, i64)> = conn
            .prepare(&format!("PRAGMA table_xinfo({})", quote_ident(name)))?
            .query_map([], |r| Ok((r.get(1)?, r.get(6)?)))?
            .collect::<Result<_, _>>()?;
        let kept: Vec<usize> = (0..columns.len()).filter(|&i| columns[i].1 == 0).collect();
        let prefix = format!(
            "INSERT INTO {} ({}) VALUES(",
            quote_ident(name),
            kept.iter()
                .map(|&i| quote_ident(&columns[i].0))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut statement = conn.prepare(&format!("SELECT * FROM {}", quote_ident(name)))?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            buf.push(b'\n');
            buf.extend_from_slice(prefix.as_bytes());
            for (n, &i) in kept.iter().enumerate() {
                if n > 0 {
                    buf.push(b',');
                }
                sql_literal(&mut buf, row.get_ref(i)?);
            }
            buf.extend_from_slice(b");");
            if buf.len() >= 1 << 20 {
                flush(&mut buf, out)?;
            }
        }
    }
    let objects: Vec<String> = conn
        .prepare(
            "SELECT sql FROM sqlite_schema WHERE sql NOT NULL AND type IN ('index', 'trigger', 'view') \
             ORDER BY type COLLATE NOCASE",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for sql in objects {
        buf.push(b'\n');
        buf.extend_from_slice(sql.as_bytes());
        buf.push(b';');
    }
    flush(&mut buf, out)?;
    out.flush()?;
    Ok(written)
}
