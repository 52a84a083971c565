//! `POST …/export`: start, poll, complete or fail, with the faults that apply.

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::{Export, Fault, State, envelope, failure, find, not_found};
use crate::DumpOptions;

pub(super) fn export(
    state: &mut State,
    account: &str,
    id: &str,
    request: &Request,
) -> ResponseTemplate {
    let Some(db) = find(state, account, id) else {
        return not_found();
    };
    let (uuid, polls, fault) = (db.uuid.clone(), db.polls_before_complete, db.fault.clone());
    let backend = db.backend.clone();
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let polling = body.get("current_bookmark").is_some();
    if let Some(response) = counted_fault(state, &uuid, fault.as_ref(), polling) {
        return response;
    }
    let Some(bookmark) = body
        .get("current_bookmark")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        if fault == Some(Fault::ExportInProgress) {
            return failure(
                409,
                7500,
                "Currently processing a long-running export. Cannot start a new export until that completes or times out.",
            );
        }
        let started = state.exports_started.entry(uuid.clone()).or_insert(0);
        *started += 1;
        // A backed database is exported at its current bookmark, as D1 does.
        let (bookmark, outcome) = match &backend {
            Some(db) => (db.bookmark(), Some(db.export(&dump_options(&body)))),
            None => (
                format!("0000000{}-00000001-00004f8a-{}", *started, &uuid[24..]),
                None,
            ),
        };
        state.exports.insert(
            format!("{uuid} {bookmark}"),
            Export {
                uuid: uuid.clone(),
                remaining_polls: polls,
                outcome,
            },
        );
        let messages = json!([format!("Generating {uuid}-{bookmark}.sql")]);
        return envelope(
            202,
            &json!({"success": true, "type": "export", "at_bookmark": bookmark, "status": "active", "messages": messages}),
        );
    };
    let Some(export) = state
        .exports
        .get_mut(&format!("{uuid} {bookmark}"))
        .filter(|e| e.uuid == uuid)
    else {
        return failure(400, 7500, "Unknown bookmark");
    };
    if export.remaining_polls > 0 {
        export.remaining_polls -= 1;
        return envelope(
            202,
            &json!({"success": true, "type": "export", "at_bookmark": bookmark, "status": "active", "messages": [format!("Uploaded part {}", polls - export.remaining_polls)]}),
        );
    }
    let refused = match (fault.as_ref(), export.outcome.as_ref()) {
        (Some(Fault::ExportError(message)), _) | (_, Some(Err(message))) => Some(message.clone()),
        _ => None,
    };
    if let Some(message) = refused {
        return envelope(
            200,
            &json!({"success": false, "type": "export", "at_bookmark": bookmark, "status": "error", "error": message, "messages": []}),
        );
    }
    let file = format!("{uuid}-{bookmark}.sql");
    let url = format!(
        "{}/signed/{file}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=5ec2e7f00d5ec2e7",
        state.base
    );
    envelope(
        200,
        &json!({"success": true, "type": "export", "at_bookmark": bookmark, "status": "complete",
                         "result": {"filename": file, "signed_url": url},
                         "messages": [format!("Finished uploading {file} in 1 parts.")]}),
    )
}

/// Answers with the fault's failure while it has hits left.
fn counted_fault(
    state: &mut State,
    uuid: &str,
    fault: Option<&Fault>,
    polling: bool,
) -> Option<ResponseTemplate> {
    let (limit, response) = match fault? {
        Fault::ServerErrors(n) if polling => (*n, failure(500, 7500, "Internal error")),
        Fault::BadGatewayHtml(n) if polling => (
            *n,
            ResponseTemplate::new(502)
                .insert_header("content-type", "text/html")
                .set_body_string("<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"),
        ),
        Fault::BusyFor(n) if !polling => (
            *n,
            envelope(200, &json!({"success": false, "type": "export", "status": "error",
                "error": "Currently processing a long-running export. Cannot start a new export until that completes or times out."})),
        ),
        Fault::RateLimited(n) => (
            *n,
            failure(429, 971, "Please wait and consider throttling your request speed").insert_header("retry-after", "0"),
        ),
        _ => return None,
    };
    let db = state.databases.iter_mut().find(|d| d.uuid == uuid)?;
    if db.fault_hits >= limit {
        return None;
    }
    db.fault_hits += 1;
    Some(response)
}

/// The request's `dump_options`, as the client sends them.
fn dump_options(body: &Value) -> DumpOptions {
    let options = body.get("dump_options");
    let flag = |name: &str| {
        options
            .and_then(|o| o.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    DumpOptions {
        tables: options
            .and_then(|o| o.get("tables"))
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        no_data: flag("no_data"),
        no_schema: flag("no_schema"),
    }
}
