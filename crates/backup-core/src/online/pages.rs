//! One table's rows, page by page: the page's SELECT (exact cell forms, keyset order), the
//! cells it answers, and how the next page's size follows from this one's.
//!
//! D1's JSON sends every number through a double and every text as a JSON string, so a
//! plain `SELECT` rounds integers beyond ±2^53, turns `3.0` into `3`, loses `-0.0` and the
//! infinities, and cannot carry blobs or text that is not UTF-8. Each cell is therefore
//! selected as one value whose form says its storage class ([`exact`]):
//!
//! | stored                   | answered                        |
//! |--------------------------|---------------------------------|
//! | NULL                     | `null`                          |
//! | INTEGER                  | `"i<decimal>"` (`CAST AS TEXT`) |
//! | REAL, finite, not zero   | a JSON number (shortest round-trip form, exact) |
//! | REAL zero                | `"r-0.0"` or `"r0.0"`           |
//! | REAL infinite            | `"r<CAST AS TEXT>"` (`rInf`, `r-Inf`) |
//!
//! SQLite prints `-0.0` as `0.0` and JSON sends it as `0`: only a math function tells the
//! zeros apart (`atan2(-0.0, -1.0)` is -π). D1 has SQLite's math functions; where `atan2`
//! is missing ([`Zeros::Unsigned`]), every zero is read as `0.0`.
//! | TEXT, ASCII without NUL  | `"a<the text>"` (JSON carries it exactly) |
//! | other TEXT               | `"t<hex of its bytes>"`         |
//! | BLOB                     | `"b<hex>"`                      |

use std::fmt::Write as _;

use serde_json::Value;

use super::protocol;
use super::schema::{Key, Shape};
use crate::dump::value::push_value;
use crate::dump::{Affinity, Cell, quote_ident};
use crate::error::Error;

/// The answer size a page aims at: far below D1's limits, large enough that a GiB takes
/// about a thousand requests.
pub(super) const PAGE_BYTES: usize = 1024 * 1024;
/// Rows of a table's first page, before its row width is known.
pub(super) const FIRST_PAGE_ROWS: usize = 128;
/// Rows a page at most, however narrow the rows.
pub(super) const MAX_PAGE_ROWS: usize = 20_000;

/// Whether the server can tell `-0.0` from `0.0` (it has `atan2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Zeros {
    Signed,
    Unsigned,
}

/// One column's value in its exact form (see the module docs).
pub(super) fn exact(column: &str, zeros: Zeros) -> String {
    let c = quote_ident(column);
    let zero = match zeros {
        Zeros::Signed => format!("CASE WHEN atan2({c}, -1.0) < 0 THEN 'r-0.0' ELSE 'r0.0' END"),
        Zeros::Unsigned => "'r0.0'".to_owned(),
    };
    format!(
        "CASE typeof({c}) WHEN 'integer' THEN 'i'||CAST({c} AS TEXT) \
         WHEN 'real' THEN CASE WHEN {c} = 0 THEN {zero} \
         WHEN abs({c}) > 1.7976931348623157e308 THEN 'r'||CAST({c} AS TEXT) ELSE {c} END \
         WHEN 'text' THEN CASE WHEN instr({c}, char(0)) = 0 \
         AND {c} NOT GLOB '*[^'||char(1)||'-'||char(127)||']*' THEN 'a'||{c} \
         ELSE 't'||hex({c}) END \
         WHEN 'blob' THEN 'b'||hex({c}) END"
    )
}

/// A cell as answered, owned until the row is written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Owned {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Owned {
    /// The cell an exact form stands for.
    pub(super) fn decode(value: &Value) -> Result<Self, Error> {
        let bad = || protocol("a page answered a value in an unexpected form");
        let hex_of = |s: &str| hex::decode(s).map_err(|_| bad());
        Ok(match value {
            Value::Null => Self::Null,
            Value::Number(n) => Self::Real(n.as_f64().ok_or_else(bad)?),
            Value::String(s) => match s.split_at_checked(1) {
                Some(("i", digits)) => Self::Integer(digits.parse().map_err(|_| bad())?),
                Some(("r", real)) => Self::Real(parse_real(real).ok_or_else(bad)?),
                Some(("a", text)) => Self::Text(text.as_bytes().to_vec()),
                Some(("t", hex)) => Self::Text(hex_of(hex)?),
                Some(("b", hex)) => Self::Blob(hex_of(hex)?),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        })
    }

    pub(super) fn as_cell(&self) -> Cell<'_> {
        match self {
            Self::Null => Cell::Null,
            Self::Integer(i) => Cell::Integer(*i),
            Self::Real(r) => Cell::Real(*r),
            Self::Text(t) => Cell::Text(t),
            Self::Blob(b) => Cell::Blob(b),
        }
    }
}

/// SQLite's text for a zero or infinite REAL.
fn parse_real(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// Where the next page starts.
#[derive(Debug, Clone, Default)]
pub(super) enum After {
    /// At the table's start.
    #[default]
    Start,
    /// After this rowid.
    Rowid(i64),
    /// After this primary key (a `WITHOUT ROWID` table), its cells in key order.
    Key(Vec<Owned>),
}

/// The SELECT of one page of `limit` rows after `after`: the rowid first (as text) for rowid
/// tables, `NULL` for `WITHOUT ROWID` ones, then one exact value per column.
pub(super) fn page_sql(shape: &Shape, after: &After, limit: usize, zeros: Zeros) -> String {
    let mut sql = String::from("SELECT ");
    match &shape.key {
        Key::Rowid(rowid) => {
            let _ = write!(sql, "CAST({rowid} AS TEXT)");
        }
        Key::PrimaryKey(_) => sql.push_str("NULL"),
    }
    for (column, _) in &shape.columns {
        sql.push_str(", ");
        sql.push_str(&exact(column, zeros));
    }
    sql.push_str(&page_tail(shape, after));
    let _ = write!(sql, " LIMIT {limit}");
    sql
}

/// ` FROM "t" WHERE <after the key> ORDER BY <key>`: where a page starts, in key order.
pub(super) fn page_tail(shape: &Shape, after: &After) -> String {
    let mut sql = format!(" FROM {}", quote_ident(&shape.name));
    match (&shape.key, after) {
        (Key::Rowid(rowid), After::Rowid(last)) => {
            let _ = write!(sql, " WHERE {rowid} > {last}");
        }
        (Key::PrimaryKey(key), After::Key(last)) => {
            sql.push_str(" WHERE ");
            sql.push_str(&after_key(shape, key, last));
        }
        _ => {}
    }
    sql.push_str(" ORDER BY ");
    match &shape.key {
        Key::Rowid(rowid) => sql.push_str(rowid),
        Key::PrimaryKey(key) => {
            let order: Vec<String> = key
                .iter()
                .map(|k| {
                    let column = quote_ident(&shape.columns[k.index].0);
                    let direction = if k.descending { " DESC" } else { "" };
                    format!("{column} COLLATE {}{direction}", quote_ident(&k.collation))
                })
                .collect();
            sql.push_str(&order.join(", "));
        }
    }
    sql
}

/// `(k1 > v1) OR (k1 = v1 AND k2 > v2) OR …`, each comparison in the key column's
/// collation and direction, the values as exact SQL literals.
fn after_key(shape: &Shape, key: &[super::schema::KeyColumn], last: &[Owned]) -> String {
    let mut terms = Vec::with_capacity(key.len());
    for (i, k) in key.iter().enumerate() {
        let mut term = Vec::new();
        for (j, earlier) in key.iter().enumerate().take(i) {
            term.push(compare(shape, earlier, "=", &last[j]));
        }
        let op = if k.descending { "<" } else { ">" };
        term.push(compare(shape, k, op, &last[i]));
        terms.push(format!("({})", term.join(" AND ")));
    }
    terms.join(" OR ")
}

fn compare(shape: &Shape, k: &super::schema::KeyColumn, op: &str, value: &Owned) -> String {
    let mut literal = Vec::new();
    push_value(&mut literal, value.as_cell(), Affinity::Blob);
    format!(
        "{} COLLATE {} {op} {}",
        quote_ident(&shape.columns[k.index].0),
        quote_ident(&k.collation),
        String::from_utf8_lossy(&literal)
    )
}

/// The next page's rows: enough rows of the width just seen for about [`PAGE_BYTES`], at
/// most four times as many as this page (rows may widen further on).
pub(super) fn next_limit(limit: usize, rows: usize, bytes: usize) -> usize {
    if rows == 0 {
        return limit;
    }
    let width = (bytes / rows).max(1);
    (PAGE_BYTES / width).clamp(1, (limit * 4).min(MAX_PAGE_ROWS))
}

/// A rough size of an answered value, for [`next_limit`].
pub(super) fn answered_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + 3,
        _ => 8,
    }
}

/// Whether D1 refused a page for the size of its answer (or of a value in it): an SQL error
/// naming `SQLITE_TOOBIG` or a response too large, never a rate limit or a network failure.
pub(super) fn refused_for_size(error: &d1_export::Error) -> bool {
    use d1_export::ErrorKind as D;
    if matches!(
        error.kind(),
        D::RateLimited | D::Transient | D::Unauthorized | D::NotFound
    ) {
        return false;
    }
    let text =
        format!("{} {}", error, error.server_message().unwrap_or_default()).to_ascii_lowercase();
    ["toobig", "too large", "too big", "response size"]
        .iter()
        .any(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::super::schema::KeyColumn;
    use super::*;

    fn shape(key: Key) -> Shape {
        Shape {
            name: "t".to_owned(),
            columns: vec![
                ("a".to_owned(), Affinity::Text),
                ("b".to_owned(), Affinity::Integer),
            ],
            key,
            with_rowid: false,
        }
    }

    #[test]
    fn exact_forms_decode() -> Result<(), Error> {
        let d = |v: Value| Owned::decode(&v);
        assert_eq!(d("i9223372036854775807".into())?, Owned::Integer(i64::MAX));
        assert_eq!(d("t410A00".into())?, Owned::Text(b"A\n\0".to_vec()));
        assert_eq!(d("aA\n'x".into())?, Owned::Text(b"A\n'x".to_vec()));
        assert_eq!(d("b".into())?, Owned::Blob(Vec::new()));
        assert_eq!(d(Value::from(0.1))?, Owned::Real(0.1));
        assert_eq!(d(Value::from(3))?, Owned::Real(3.0));
        assert_eq!(d("rInf".into())?, Owned::Real(f64::INFINITY));
        assert!(matches!(d("r-0.0".into())?, Owned::Real(z) if z == 0.0 && z.is_sign_negative()));
        assert_eq!(d(Value::Null)?, Owned::Null);
        assert!(d("x1".into()).is_err());
        assert!(d(Value::Bool(true)).is_err());
        Ok(())
    }

    #[test]
    fn pages_follow_the_key() {
        let rowid = shape(Key::Rowid("rowid"));
        let sql = page_sql(&rowid, &After::Rowid(-5), 10, Zeros::Signed);
        assert!(
            sql.starts_with("SELECT CAST(rowid AS TEXT), CASE typeof(\"a\")"),
            "{sql}"
        );
        assert!(
            sql.ends_with(" FROM \"t\" WHERE rowid > -5 ORDER BY rowid LIMIT 10"),
            "{sql}"
        );
        let key = shape(Key::PrimaryKey(vec![
            KeyColumn {
                index: 1,
                descending: true,
                collation: "BINARY".to_owned(),
            },
            KeyColumn {
                index: 0,
                descending: false,
                collation: "NOCASE".to_owned(),
            },
        ]));
        let after = After::Key(vec![Owned::Integer(7), Owned::Text(b"it's".to_vec())]);
        let sql = page_sql(&key, &after, 3, Zeros::Unsigned);
        assert!(
            sql.ends_with(
                " WHERE (\"b\" COLLATE \"BINARY\" < 7) OR (\"b\" COLLATE \"BINARY\" = 7 AND \
                 \"a\" COLLATE \"NOCASE\" > 'it''s') ORDER BY \"b\" COLLATE \"BINARY\" DESC, \
                 \"a\" COLLATE \"NOCASE\" LIMIT 3"
            ),
            "{sql}"
        );
    }

    #[test]
    fn page_size_follows_row_width() {
        assert_eq!(next_limit(128, 128, 128 * 100), 512);
        assert_eq!(next_limit(10_000, 10_000, 10_000 * 10), MAX_PAGE_ROWS);
        assert_eq!(next_limit(128, 2, 4 * PAGE_BYTES), 1);
        assert_eq!(next_limit(128, 0, 0), 128);
    }
}
