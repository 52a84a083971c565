//! `POST …/import` (init, ingest, poll) and the presigned PUT its upload goes to.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::database::{SimulatedDatabase, SimulatedRows, check_d1_sql};
use super::{State, envelope, failure, sql};

/// Where presigned upload URLs point, under the API server's origin.
pub(super) const UPLOAD_PATH: &str = "/r2-upload/";

/// One ingested import, answered by the next poll.
#[derive(Debug)]
pub(super) struct ImportRun {
    filename: String,
    /// `num_queries` and the final bookmark, or D1's error message.
    outcome: Result<(u64, String), String>,
}

/// Answers one import request for the backed database `uuid`.
pub(super) fn import(
    state: &mut State,
    uuid: &str,
    db: &Arc<dyn SimulatedDatabase>,
    request: &Request,
) -> ResponseTemplate {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return failure(400, 7400, "the request body is not JSON");
    };
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    match (text("action").as_deref(), text("etag"), text("filename")) {
        (Some("init"), Some(etag), _) if is_md5_hex(&etag) => init(state, uuid, db, &etag),
        (Some("ingest"), Some(etag), Some(filename)) => ingest(state, uuid, db, &etag, &filename),
        (Some("poll"), ..) => match text("current_bookmark") {
            Some(bookmark) => poll(state, uuid, &bookmark),
            None => failure(400, 7400, "poll needs `current_bookmark`"),
        },
        (Some("init"), ..) => failure(400, 7400, "init needs `etag`, the file's md5 in hex"),
        (Some("ingest"), ..) => failure(400, 7400, "ingest needs `etag` and `filename`"),
        _ => failure(400, 7400, "`action` must be init, ingest or poll"),
    }
}

/// Hands out an upload URL, or ingests at once if this file was uploaded before.
fn init(
    state: &mut State,
    uuid: &str,
    db: &Arc<dyn SimulatedDatabase>,
    etag: &str,
) -> ResponseTemplate {
    let filename = format!("import-{etag}.sql");
    if state
        .uploads
        .get(&(uuid.to_owned(), filename.clone()))
        .is_some_and(|file| md5_hex(file).eq_ignore_ascii_case(etag))
    {
        return ingest(state, uuid, db, etag, &filename);
    }
    let upload_url = format!(
        "{}{UPLOAD_PATH}{uuid}/{filename}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=1dc0ffee1dc0ffee",
        state.api
    );
    envelope(
        200,
        &json!({"success": true, "filename": filename, "upload_url": upload_url}),
    )
}

/// Stores a PUT to an upload URL and answers its md5 as the `ETag`, as R2 does.
pub(super) fn upload(state: &mut State, path: &str, request: &Request) -> ResponseTemplate {
    let signed = request
        .url
        .query_pairs()
        .any(|(name, _)| name == "X-Amz-Signature");
    let target = path
        .strip_prefix(UPLOAD_PATH)
        .and_then(|p| p.split_once('/'));
    let (Some((uuid, filename)), true, "PUT") = (target, signed, request.method.as_str()) else {
        return ResponseTemplate::new(403)
            .insert_header("content-type", "application/xml")
            .set_body_string("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
    };
    let file = Bytes::copy_from_slice(&request.body);
    let etag = format!("\"{}\"", md5_hex(&file));
    state
        .uploads
        .insert((uuid.to_owned(), filename.to_owned()), file);
    ResponseTemplate::new(200).insert_header("etag", etag.as_str())
}

/// Runs the uploaded file through the database; the outcome waits for the first poll.
fn ingest(
    state: &mut State,
    uuid: &str,
    db: &Arc<dyn SimulatedDatabase>,
    etag: &str,
    filename: &str,
) -> ResponseTemplate {
    let Some(file) = state
        .uploads
        .get(&(uuid.to_owned(), filename.to_owned()))
        .cloned()
    else {
        return failure(400, 7400, "no file was uploaded under that filename");
    };
    let bookmark = db.bookmark();
    let outcome = if md5_hex(&file).eq_ignore_ascii_case(etag) {
        check_d1_sql(&file)
            .and_then(|()| db.import(&file))
            .map(|queries| (queries, db.bookmark()))
    } else {
        Err("the uploaded file's md5 does not match the etag given at init".to_owned())
    };
    if outcome.is_ok() {
        *state.imports_done.entry(uuid.to_owned()).or_insert(0) += 1;
    }
    state.imports.insert(
        (uuid.to_owned(), bookmark.clone()),
        ImportRun {
            filename: filename.to_owned(),
            outcome,
        },
    );
    envelope(
        200,
        &json!({"success": true, "type": "import", "at_bookmark": bookmark, "status": "active",
                "messages": [format!("Ingesting {filename}")], "errors": []}),
    )
}

/// Reports how an ingested import ended.
fn poll(state: &State, uuid: &str, bookmark: &str) -> ResponseTemplate {
    let Some(run) = state.imports.get(&(uuid.to_owned(), bookmark.to_owned())) else {
        return failure(400, 7500, "Unknown bookmark");
    };
    match &run.outcome {
        Ok((num_queries, final_bookmark)) => {
            let rows = SimulatedRows {
                changed_db: true,
                ..SimulatedRows::default()
            };
            envelope(
                200,
                &json!({"success": true, "type": "import", "at_bookmark": bookmark, "status": "complete",
                        "result": {"success": true, "final_bookmark": final_bookmark,
                                   "num_queries": num_queries, "meta": sql::meta(&rows)},
                        "messages": [format!("Imported {} in {num_queries} queries.", run.filename)],
                        "errors": []}),
            )
        }
        Err(message) => envelope(
            200,
            &json!({"success": false, "type": "import", "at_bookmark": bookmark, "status": "error",
                    "error": message, "messages": [], "errors": []}),
        ),
    }
}

fn is_md5_hex(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn md5_hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(32);
    for byte in Md5::digest(data) {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
