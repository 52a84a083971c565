//! Listing databases, reading one database's details, and creating a database.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

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

impl D1Client {
    /// Creates an empty database named `name` and returns its summary (with its new uuid).
    /// `location` is D1's `primary_location_hint` (`wnam`, `enam`, `weur`, `eeur`, `apac`,
    /// `oc`); `None` lets D1 pick the region nearest the caller.
    ///
    /// The name is checked here first: D1 takes lower-case ASCII letters, digits, `-` and
    /// `_` ([`ErrorKind::InvalidInput`] otherwise). A name already in use is
    /// [`ErrorKind::AlreadyExists`].
    ///
    /// Creating is not idempotent, so it is sent again only when the first attempt provably
    /// did nothing (a 429, or a connect that failed). After a dropped connection, a timeout or
    /// a 5xx the database may or may not exist; rather than send it again (and then be told
    /// that the name is taken, not knowing by whom), the call fails with
    /// [`ErrorKind::OutcomeUnknown`]: look the name up with
    /// [`database_info`](Self::database_info) before creating again.
    pub async fn create_database(
        &self,
        account_id: &str,
        name: &str,
        location: Option<&str>,
    ) -> Result<DatabaseSummary> {
        let doing = format!("creating D1 database {name} in account {account_id}");
        check_database_name(name).map_err(|why| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{doing}: the name {why}; D1 database names are lower-case letters (a-z), digits, `-` and `_`"),
            )
        })?;
        let mut body = json!({ "name": name });
        if let Some(location) = location {
            body["primary_location_hint"] = Value::from(location);
        }
        let url = self
            .inner
            .endpoint(&["accounts", account_id, "d1", "database"]);
        let if_unknown = format!(
            "the database may have been created; look it up by name (database_info {name}) before creating it again"
        );
        let envelope = self
            .inner
            .call_changing(Method::POST, url, &Payload::Json(body), &doing, &if_unknown)
            .await
            .map_err(|err| already_exists(err, &doing, name))?;
        decode(envelope.get("result"), &doing)
    }
}

/// D1's code for a database name that is taken.
const NAME_TAKEN: i64 = 7502;

/// Turns D1's "a database with that name already exists" into [`ErrorKind::AlreadyExists`].
fn already_exists(err: Error, doing: &str, name: &str) -> Error {
    let taken = err.api_code() == Some(NAME_TAKEN)
        || err
            .server_message()
            .is_some_and(|m| m.to_ascii_lowercase().contains("already exists"));
    if !taken {
        return err;
    }
    let said = err.server_message().unwrap_or("already exists").to_owned();
    err.reclassify(
        ErrorKind::AlreadyExists,
        format!("{doing}: D1 refused the name ({said}): a database named {name} exists already; pick another name, or use the existing database"),
    )
}

/// Why `name` is not a D1 database name, if it is not one.
fn check_database_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("is empty".to_owned());
    }
    match name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
    {
        Some(bad) => Err(format!("`{name}` has {bad:?}")),
        None => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names() {
        let check = |name: &str, expected: Option<&str>| {
            assert_eq!(
                check_database_name(name).err().as_deref(),
                expected,
                "{name}"
            );
        };
        check("ops-db_2", None);
        check("0", None);
        check("", Some("is empty"));
        check("Ops", Some("`Ops` has 'O'"));
        check("my db", Some("`my db` has ' '"));
        check("caf\u{e9}", Some("`caf\u{e9}` has '\u{e9}'"));
        check("a.b", Some("`a.b` has '.'"));
    }
}
