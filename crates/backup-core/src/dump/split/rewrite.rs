//! The statements that give one row in pieces: an `INSERT` with the first piece of each long
//! value, then `UPDATE`s that append the rest, each at most the limit long.

use super::super::quote_ident;
use super::pieces;
use super::{Key, Value};

/// The least room an `UPDATE` must leave for a piece: a key so long that less is left would
/// take thousands of statements, and is refused instead.
const MIN_PIECE: usize = 1024;

/// One row to write in pieces.
pub(super) struct Row<'a> {
    /// The table, unquoted.
    pub(super) table: &'a str,
    /// The INSERT's columns, unquoted, in its order.
    pub(super) columns: &'a [String],
    /// The values as written (before the columns' affinity), one per column.
    pub(super) values: &'a [Value],
    /// The columns (by position in `columns`) that must be written whole: the key's.
    pub(super) whole: &'a [bool],
    /// How each `UPDATE` finds the row.
    pub(super) key: &'a Key,
}

/// The statements, each at most `limit` bytes; or why the row cannot be written so.
pub(super) fn rewrite(row: &Row<'_>, limit: usize) -> Result<Vec<String>, String> {
    let table = quote_ident(row.table);
    let names: Vec<String> = row.columns.iter().map(|c| quote_ident(c)).collect();
    let mut literals: Vec<String> = row.values.iter().map(Value::literal).collect();
    let head = format!("INSERT INTO {table} ({}) VALUES(", names.join(","));
    let overhead = head.len() + literals.len().saturating_sub(1) + ");".len();
    let deferred = deferred(row, &mut literals, overhead, limit)?;
    let written: usize = literals.iter().map(String::len).sum::<usize>() + overhead;
    let mut spare = limit.saturating_sub(written);
    let mut offsets = vec![0; literals.len()];
    // The first piece of each deferred value takes what the INSERT has room for.
    for &i in &deferred {
        let (piece, end) = piece(&row.values[i], 0, literals[i].len() + spare);
        spare = (spare + literals[i].len()).saturating_sub(piece.len());
        literals[i] = piece;
        offsets[i] = end;
    }
    let mut out = vec![format!("{head}{});", literals.join(","))];
    let key = row.key.sql();
    for &i in &deferred {
        let update = Update {
            table: &table,
            column: &names[i],
            key: &key,
        };
        update.append(&mut out, &row.values[i], offsets[i], limit)?;
    }
    Ok(out)
}

/// Which values the INSERT writes only the start of, largest first, and leaves each of them
/// as its shortest literal (`''`, `X''`) in `literals`, until the INSERT fits.
fn deferred(
    row: &Row<'_>,
    literals: &mut [String],
    overhead: usize,
    limit: usize,
) -> Result<Vec<usize>, String> {
    let mut total = overhead + literals.iter().map(String::len).sum::<usize>();
    let mut deferred = Vec::new();
    while total > limit {
        let longest = (0..literals.len())
            .filter(|&i| !row.whole[i] && !deferred.contains(&i))
            .filter(|&i| matches!(row.values[i], Value::Text(_) | Value::Blob(_)))
            .max_by_key(|&i| literals[i].len());
        let Some(i) = longest else {
            return Err(format!(
                "with every text and blob value cut short, its INSERT still takes {total} \
                 bytes (its key and other values are too long)"
            ));
        };
        let (empty, _) = piece(&row.values[i], 0, 0);
        total = total + empty.len() - literals[i].len();
        literals[i] = empty;
        deferred.push(i);
    }
    Ok(deferred)
}

/// The piece of a text or blob value from `start` that fits in `budget` bytes of SQL.
fn piece(value: &Value, start: usize, budget: usize) -> (String, usize) {
    match value {
        Value::Blob(bytes) => pieces::blob(bytes, start, budget),
        Value::Text(bytes) => pieces::text(bytes, start, budget),
        // Only text and blobs are deferred.
        _ => (value.literal(), start),
    }
}

/// The `UPDATE`s that append to one column.
struct Update<'a> {
    /// The table, quoted.
    table: &'a str,
    /// The column, quoted.
    column: &'a str,
    /// The `WHERE` condition.
    key: &'a str,
}

impl Update<'_> {
    /// Appends `UPDATE`s to `out` until the value from `at` on is written.
    fn append(
        &self,
        out: &mut Vec<String>,
        value: &Value,
        mut at: usize,
        limit: usize,
    ) -> Result<(), String> {
        let (table, column, key) = (self.table, self.column, self.key);
        // `||` makes text of both sides; the cast gives a blob back with the same bytes.
        let (open, close) = match value {
            Value::Blob(_) => (
                format!("UPDATE {table} SET {column} = CAST({column} || "),
                format!(" AS BLOB) WHERE {key};"),
            ),
            _ => (
                format!("UPDATE {table} SET {column} = {column} || "),
                format!(" WHERE {key};"),
            ),
        };
        let budget = limit.saturating_sub(open.len() + close.len());
        let len = match value {
            Value::Text(b) | Value::Blob(b) => b.len(),
            _ => 0,
        };
        if at < len && budget < MIN_PIECE {
            return Err(format!(
                "its key is too long: an UPDATE of column {column} would leave {budget} of \
                 its {limit} bytes for the value"
            ));
        }
        while at < len {
            let (piece, end) = piece(value, at, budget);
            if end == at {
                return Err(format!("no piece of column {column} fits in an UPDATE"));
            }
            out.push(format!("{open}{piece}{close}"));
            at = end;
        }
        Ok(())
    }
}
