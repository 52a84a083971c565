//! A row too wide for any page: D1 refused even a page of one row for its size. The row is
//! read in pieces: its key, then each column's storage class and size, then the bytes of
//! each long text or blob in chunks (`substr` of its bytes, as hex), halved while D1 still
//! refuses them. The pieces make the same answer a page would have given.

use std::fmt::Write as _;

use serde_json::Value;

use super::pages::{self, Owned};
use super::schema::Key;
use super::{Paging, Reader, protocol};
use crate::dump::value::push_value;
use crate::dump::{Affinity, quote_ident};
use crate::error::Error;

/// Bytes of a value asked for at once, at first; halved while refused.
const FIRST_CHUNK: usize = 512 * 1024;
/// Below this a chunk is not split further: D1 refusing it is an error.
const SMALLEST_CHUNK: usize = 1024;

impl Reader {
    /// The next row of `paging`, read in pieces, as a page of one row would answer it (no
    /// row: the table has ended).
    pub(super) async fn wide_row(&mut self, paging: &Paging) -> Result<Vec<Vec<Value>>, Error> {
        let shape = &paging.shape;
        let table = quote_ident(&shape.name);
        // The key first: a page of keys only, one row.
        let sql = format!(
            "{}{} LIMIT 1",
            key_only(paging, self.zeros),
            pages::page_tail(shape, &paging.after)
        );
        let keys = self.rows(&sql, &[]).await?;
        let Some(key) = keys.into_iter().next() else {
            return Ok(Vec::new());
        };
        let predicate = predicate(paging, &key)?;
        let mut row = vec![key.first().cloned().unwrap_or(Value::Null)];
        for (column, _) in &shape.columns {
            row.push(self.wide_cell(&table, column, &predicate).await?);
        }
        Ok(vec![row])
    }

    /// One cell of the row, in its exact form, long texts and blobs in chunks.
    async fn wide_cell(
        &mut self,
        table: &str,
        column: &str,
        predicate: &str,
    ) -> Result<Value, Error> {
        let c = quote_ident(column);
        let head = self
            .rows(
                &format!(
                    "SELECT typeof({c}), CASE WHEN typeof({c}) IN ('text', 'blob') \
                     THEN length(CAST({c} AS BLOB)) ELSE {} END FROM {table}{predicate}",
                    pages::exact(column, self.zeros)
                ),
                &[],
            )
            .await?;
        let Some([class, value]) = head
            .into_iter()
            .next()
            .and_then(|r| <[Value; 2]>::try_from(r).ok())
        else {
            return Err(protocol("a wide row disappeared while it was read"));
        };
        let prefix = match class.as_str() {
            Some("text") => "t",
            Some("blob") => "b",
            _ => return Ok(value),
        };
        let length = value
            .as_u64()
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| protocol("a wide value's length is not a number"))?;
        let mut hex = String::with_capacity(1 + 2 * length);
        hex.push_str(prefix);
        let mut chunk = FIRST_CHUNK;
        let mut at = 0;
        while at < length {
            let sql = format!(
                "SELECT hex(substr(CAST({c} AS BLOB), {}, {chunk})) FROM {table}{predicate}",
                at + 1
            );
            match self.raw(&sql, &[]).await {
                Ok(rows) => {
                    let piece = rows
                        .first()
                        .and_then(|r| r.first())
                        .and_then(Value::as_str)
                        .ok_or_else(|| protocol("a wide value's chunk is missing"))?;
                    hex.push_str(piece);
                    at += chunk;
                }
                Err(error) if pages::refused_for_size(&error) && chunk > SMALLEST_CHUNK => {
                    chunk /= 2;
                    self.outcome.split_pages += 1;
                }
                Err(error) => {
                    return Err(Error::from(error)
                        .context(format_args!("reading a wide value of column {column}")));
                }
            }
        }
        Ok(Value::String(hex))
    }
}

/// The SELECT of the next row's key alone: a page's first value, then the primary key's
/// exact cells for `WITHOUT ROWID` tables.
fn key_only(paging: &Paging, zeros: pages::Zeros) -> String {
    let shape = &paging.shape;
    let mut select = String::from("SELECT ");
    match &shape.key {
        Key::Rowid(rowid) => {
            let _ = write!(select, "CAST({rowid} AS TEXT)");
        }
        Key::PrimaryKey(key) => {
            select.push_str("NULL");
            for k in key {
                select.push_str(", ");
                select.push_str(&pages::exact(&shape.columns[k.index].0, zeros));
            }
        }
    }
    select
}

/// `WHERE` naming exactly the row whose key was read.
fn predicate(paging: &Paging, key: &[Value]) -> Result<String, Error> {
    match &paging.shape.key {
        Key::Rowid(rowid) => {
            let id = key
                .first()
                .and_then(Value::as_str)
                .and_then(|r| r.parse::<i64>().ok())
                .ok_or_else(|| protocol("a wide row's key has no rowid"))?;
            Ok(format!(" WHERE {rowid} = {id}"))
        }
        Key::PrimaryKey(columns) => {
            let mut terms = Vec::new();
            for (k, value) in columns.iter().zip(key.iter().skip(1)) {
                let cell = Owned::decode(value)?;
                let mut literal = Vec::new();
                push_value(&mut literal, cell.as_cell(), Affinity::Blob);
                terms.push(format!(
                    "{} COLLATE {} = {}",
                    quote_ident(&paging.shape.columns[k.index].0),
                    quote_ident(&k.collation),
                    String::from_utf8_lossy(&literal)
                ));
            }
            Ok(format!(" WHERE {}", terms.join(" AND ")))
        }
    }
}
