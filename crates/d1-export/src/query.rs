//! SQL queries (`/query`, `/raw`) and the Workers KV heartbeat write.
//!
//! D1 sends values as JSON numbers, so integers beyond ±2^53 arrive already
//! rounded by the server. To read such a value exactly, select it as text:
//! `SELECT CAST(id AS TEXT) AS id FROM t`; the text comes back unchanged.

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::client::{D1Client, Payload, ignore_retry};
use crate::databases::decode;
use crate::error::{Error, ErrorKind, Result};

/// The outcome of one statement sent to `/query`.
#[non_exhaustive]
#[derive(Debug, Clone, Deserialize)]
pub struct QueryResult {
    /// One map per row, column name to value.
    #[serde(default)]
    pub results: Vec<Map<String, Value>>,
    /// Whether the statement succeeded.
    #[serde(default)]
    pub success: Option<bool>,
    /// `rows_read`, `rows_written`, `duration` and the like, as sent.
    #[serde(default)]
    pub meta: Value,
}

/// The outcome of one statement sent to `/raw`: column names and row arrays.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct RawResult {
    /// Column names in order.
    pub columns: Vec<String>,
    /// One array per row, in column order.
    pub rows: Vec<Vec<Value>>,
    /// Metadata, as sent.
    pub meta: Value,
}

impl D1Client {
    /// Runs SQL through `/query` and returns one result per statement.
    /// `params` bind `?` placeholders. Transient failures are retried, so
    /// prefer read-only statements (schema discovery, verification).
    pub async fn query(
        &self,
        account_id: &str,
        database_id: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<QueryResult>> {
        let envelope = self
            .sql_call(account_id, database_id, "query", sql, params)
            .await?;
        decode(
            envelope.get("result"),
            &format!("querying D1 database {database_id}"),
        )
    }

    /// Runs SQL through `/raw` (rows as arrays, smaller answers).
    pub async fn raw(
        &self,
        account_id: &str,
        database_id: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<RawResult>> {
        let envelope = self
            .sql_call(account_id, database_id, "raw", sql, params)
            .await?;
        let doing = format!("querying D1 database {database_id}");
        let items = envelope
            .get("result")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("{doing}: the answer has no `result` list"),
                )
            })?;
        items.iter().map(|item| parse_raw(item, &doing)).collect()
    }

    async fn sql_call(
        &self,
        account_id: &str,
        database_id: &str,
        endpoint: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Value> {
        let doing = format!("querying D1 database {database_id}");
        let url = self.inner.endpoint(&[
            "accounts",
            account_id,
            "d1",
            "database",
            database_id,
            endpoint,
        ]);
        let body = json!({ "sql": sql, "params": params });
        self.inner
            .call(
                Method::POST,
                url,
                &Payload::Json(body),
                &doing,
                &ignore_retry,
            )
            .await
    }

    /// Writes a Workers KV value (the deployment's heartbeat).
    pub async fn kv_put(
        &self,
        account_id: &str,
        namespace_id: &str,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<()> {
        let doing = format!("writing key {key} of Workers KV namespace {namespace_id}");
        let url = self.inner.endpoint(&[
            "accounts",
            account_id,
            "storage",
            "kv",
            "namespaces",
            namespace_id,
            "values",
            key,
        ]);
        self.inner
            .call(
                Method::PUT,
                url,
                &Payload::Raw(value.into()),
                &doing,
                &ignore_retry,
            )
            .await?;
        Ok(())
    }
}

/// `{results: {columns, rows}, meta}`; `columns`/`rows` at the top level
/// are accepted too.
pub(crate) fn parse_raw(item: &Value, doing: &str) -> Result<RawResult> {
    #[derive(Deserialize)]
    struct Shape {
        #[serde(default)]
        columns: Vec<String>,
        #[serde(default)]
        rows: Vec<Vec<Value>>,
    }
    let holder = item
        .get("results")
        .filter(|r| r.is_object())
        .unwrap_or(item);
    let shape: Shape = decode(Some(holder), doing)?;
    Ok(RawResult {
        columns: shape.columns,
        rows: shape.rows,
        meta: item.get("meta").cloned().unwrap_or(Value::Null),
    })
}
