//! Listing databases and reading one database's details.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{D1Client, Payload, ignore_retry};
use crate::error::{Error, ErrorKind, Result};

/// One database as the list endpoint describes it (no sizes).
#[non_exhaustive]
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSummary {
    /// The database id.
    pub uuid: String,
    /// The database name.
    pub name: String,
    /// When it was created (ISO 8601).
    #[serde(default)]
    pub created_at: Option<String>,
    /// The storage backend version, e.g. `production`.
    #[serde(default)]
    pub version: Option<String>,
    /// The jurisdiction (e.g. `eu`), if restricted.
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

/// One database's details.
#[non_exhaustive]
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseInfo {
    /// The database id.
    pub uuid: String,
    /// The database name.
    pub name: String,
    /// The database file's size in bytes.
    #[serde(default)]
    pub file_size: Option<u64>,
    /// How many tables it has.
    #[serde(default)]
    pub num_tables: Option<u64>,
    /// When it was created (ISO 8601).
    #[serde(default)]
    pub created_at: Option<String>,
    /// The storage backend version, e.g. `production`.
    #[serde(default)]
    pub version: Option<String>,
    /// The jurisdiction (e.g. `eu`), if restricted.
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// The read replication settings, as sent.
    #[serde(default)]
    pub read_replication: Option<Value>,
}

/// Page size for listing; the API caps it, and fewer pages mean fewer requests.
const PER_PAGE: usize = 100;
/// A guard against a server that never stops paging.
const MAX_PAGES: u32 = 10_000;

impl D1Client {
    /// Lists every database of the account, following all pages.
    pub async fn list_databases(&self, account_id: &str) -> Result<Vec<DatabaseSummary>> {
        let doing = format!("listing the D1 databases of account {account_id}");
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = self
                .inner
                .endpoint(&["accounts", account_id, "d1", "database"]);
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &PER_PAGE.to_string());
            let envelope = self
                .inner
                .call(Method::GET, url, &Payload::None, &doing, &ignore_retry)
                .await?;
            let items: Vec<DatabaseSummary> = decode(envelope.get("result"), &doing)?;
            let got = items.len();
            // A server that ignores `page` would repeat itself: only new databases count.
            let before = all.len();
            for item in items {
                if !all.iter().any(|d: &DatabaseSummary| d.uuid == item.uuid) {
                    all.push(item);
                }
            }
            let info = |field: &str| {
                envelope
                    .pointer(&format!("/result_info/{field}"))
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
            };
            // The server may cap `per_page` below what was asked (it says so in
            // result_info.per_page), and may leave `total_count` out.
            let page_size = info("per_page").map_or(PER_PAGE, |n| n.clamp(1, PER_PAGE));
            let done = got == 0
                || all.len() == before
                || match info("total_count") {
                    Some(total) => all.len() >= total,
                    None => got < page_size,
                };
            if done {
                return Ok(all);
            }
        }
        Err(Error::new(
            ErrorKind::Protocol,
            format!("{doing}: the list did not end after {MAX_PAGES} pages"),
        ))
    }

    /// Reads one database's details; `id_or_name` is its uuid or its name.
    pub async fn database_info(&self, account_id: &str, id_or_name: &str) -> Result<DatabaseInfo> {
        let doing = format!("reading D1 database {id_or_name} of account {account_id}");
        let url = self
            .inner
            .endpoint(&["accounts", account_id, "d1", "database", id_or_name]);
        let envelope = self
            .inner
            .call(Method::GET, url, &Payload::None, &doing, &ignore_retry)
            .await?;
        decode(envelope.get("result"), &doing)
    }
}

/// Deserializes an envelope's `result` into `T`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    result: Option<&Value>,
    doing: &str,
) -> Result<T> {
    let value = result.cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("{doing}: the D1 API answer has an unexpected shape ({e})"),
        )
        .with_source(e)
    })
}
