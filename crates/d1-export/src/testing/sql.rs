//! `/query` and `/raw` for databases with a real database behind them.

use serde_json::{Map, Value, json};
use wiremock::{Request, ResponseTemplate};

use super::database::{SimulatedDatabase, SimulatedRows, check_d1_sql};
use super::{envelope, failure};

/// D1's API code for a statement it refused or that failed.
const SQL_ERROR: u32 = 7500;

/// How rows are sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// `/query`: one object per row, column name to value.
    Objects,
    /// `/raw`: `{columns, rows}`.
    Arrays,
}

/// Answers `POST …/query` or `…/raw`: `{"sql", "params"}` or `{"batch": [{sql, params}, …]}`.
pub(super) fn query(
    db: &dyn SimulatedDatabase,
    request: &Request,
    shape: Shape,
    answer_limit: Option<usize>,
) -> ResponseTemplate {
    let statements = match statements(&request.body) {
        Ok(statements) => statements,
        Err(message) => return failure(400, 7400, &message),
    };
    if let Some(message) = statements
        .iter()
        .find_map(|(sql, _)| check_d1_sql(sql.as_bytes()).err())
    {
        return failure(400, SQL_ERROR, &message);
    }
    let outcome = match statements.as_slice() {
        [(sql, params)] => db.query(sql, params),
        _ => db.batch(&statements),
    };
    let too_large = |results: &[SimulatedRows]| {
        answer_limit.is_some_and(|limit| {
            let bytes: usize = results
                .iter()
                .map(|r| serde_json::to_vec(&r.rows).map_or(0, |v| v.len()))
                .sum();
            bytes > limit
        })
    };
    match outcome {
        Ok(results) if too_large(&results) => failure(
            400,
            SQL_ERROR,
            "D1_ERROR: response too large: SQLITE_TOOBIG",
        ),
        Ok(results) => envelope(
            200,
            &Value::Array(results.iter().map(|r| result(r, shape)).collect()),
        ),
        Err(message) => failure(400, SQL_ERROR, &message),
    }
}

/// The `(sql, params)` pairs of a query body.
fn statements(body: &[u8]) -> Result<Vec<(String, Vec<Value>)>, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("the request body is not JSON ({e})"))?;
    let one = |item: &Value| -> Result<(String, Vec<Value>), String> {
        let sql = item
            .get("sql")
            .and_then(Value::as_str)
            .ok_or("a query needs `sql`, a string")?;
        let params = match item.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(params)) => params.clone(),
            Some(_) => return Err("`params` must be an array".to_owned()),
        };
        Ok((sql.to_owned(), params))
    };
    match body.get("batch") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().map(one).collect(),
        Some(_) => Err("`batch` must be a non-empty array".to_owned()),
        None => Ok(vec![one(&body)?]),
    }
}

/// One statement's entry of the `result` array.
fn result(rows: &SimulatedRows, shape: Shape) -> Value {
    let results = match shape {
        Shape::Arrays => json!({"columns": rows.columns, "rows": rows.rows}),
        Shape::Objects => Value::Array(
            rows.rows
                .iter()
                .map(|row| {
                    // Like a JavaScript object: a repeated column name keeps its last value.
                    let object: Map<String, Value> = rows
                        .columns
                        .iter()
                        .cloned()
                        .zip(row.iter().cloned())
                        .collect();
                    Value::Object(object)
                })
                .collect(),
        ),
    };
    json!({"results": results, "success": true, "meta": meta(rows)})
}

/// D1's `meta` for one statement.
pub(super) fn meta(rows: &SimulatedRows) -> Value {
    json!({"served_by": "d1-simulator", "served_by_region": "WEUR", "served_by_primary": true,
           "timings": {"sql_duration_ms": 0.1}, "duration": 0.1,
           "changes": rows.changes, "last_row_id": rows.last_row_id, "changed_db": rows.changed_db,
           "size_after": 8192, "rows_read": rows.rows_read, "rows_written": rows.rows_written})
}
