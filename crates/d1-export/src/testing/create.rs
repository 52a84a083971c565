//! `POST /accounts/{a}/d1/database`: creating a database, with D1's refusals.

use bytes::Bytes;
use serde_json::Value;
use wiremock::{Request, ResponseTemplate};

use super::{State, envelope, failure, info};

/// What D1 exports from a database without tables.
const EMPTY_EXPORT: &str = "PRAGMA defer_foreign_keys=TRUE;\n";

/// D1's code for a name in use.
const NAME_TAKEN: u32 = 7502;

/// The regions D1 takes as `primary_location_hint`.
const LOCATIONS: [&str; 6] = ["wnam", "enam", "weur", "eeur", "apac", "oc"];

/// Creates a database from `{"name", "primary_location_hint"?}`.
pub(super) fn create(state: &mut State, account: &str, request: &Request) -> ResponseTemplate {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return failure(400, 7400, "The request is malformed: the body is not JSON");
    };
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return failure(
            400,
            7400,
            "The request is malformed: `name` is required and must be a string",
        );
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
    {
        return failure(
            400,
            7400,
            &format!(
                "Invalid database name `{name}`: use only lowercase letters, numbers, hyphens and underscores"
            ),
        );
    }
    let location = match body.get("primary_location_hint") {
        None | Some(Value::Null) => None,
        Some(Value::String(hint)) if LOCATIONS.contains(&hint.as_str()) => Some(hint.clone()),
        Some(other) => {
            return failure(
                400,
                7400,
                &format!(
                    "Invalid primary_location_hint {other}: use one of {}",
                    LOCATIONS.join(", ")
                ),
            );
        }
    };
    if state
        .databases
        .iter()
        .any(|d| d.account_id == account && d.name == name)
    {
        return failure(400, NAME_TAKEN, "A database with that name already exists");
    }
    let backend = state.factory.as_ref().map(|factory| (factory.0)(name));
    let dump = if backend.is_some() {
        Bytes::new()
    } else {
        Bytes::from_static(EMPTY_EXPORT.as_bytes())
    };
    let uuid = state.push_database(account, name, dump, backend);
    let now = state.now();
    let Some(db) = state.databases.iter_mut().find(|d| d.uuid == uuid) else {
        return failure(500, 7500, "the simulator lost the database it created");
    };
    db.location = location;
    db.created_at = chrono::DateTime::<chrono::Utc>::from_timestamp(now, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    envelope(200, &info(db))
}
