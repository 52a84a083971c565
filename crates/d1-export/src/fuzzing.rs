//! One entry point for the fuzz targets (feature `fuzzing`): every decoder that turns a D1
//! API answer into a value or an [`Error`], fed one status and body, so the decoders can stay
//! private. Never enable the feature in production builds.

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::Value;

use crate::databases::{DatabaseInfo, DatabaseSummary, decode};
use crate::error::Error;
use crate::query::QueryResult;
use crate::secret::SignedUrl;

/// Decodes `body` as the answer `status` of every D1 endpoint this crate reads: the envelope,
/// then on success an export start/poll, a database list page, database details, `/query` and
/// `/raw` results, an import step and a Time Travel bookmark; and `body` as the first chunk of
/// a download. Panics only if a decoder breaks its contract: an error that cannot be
/// displayed, or a signed URL that shows its query. Statuses outside `100..=999` (which no
/// HTTP client hands over) are ignored.
#[doc(hidden)]
pub fn fuzz_decode(status: u16, body: &[u8]) {
    let Ok(status) = StatusCode::from_u16(status) else {
        return;
    };
    sniff_download(body);
    let envelope = match crate::wire::parse_reply(status, Some("application/json"), body) {
        Ok(envelope) => envelope,
        Err(err) => return show(&err),
    };
    let doing = "fuzzing";
    let reply = crate::export::parse_export_reply(&envelope, None, doing);
    let _ = reply.messages.len();
    match reply.outcome {
        Ok(status) => {
            if let crate::export::ExportState::Complete { signed_url, .. } = &status.state {
                check_redacted(signed_url);
            }
            let _ = format!("{status:?}");
        }
        Err(err) => show(&err),
    }
    let previous = crate::export::parse_export_reply(&envelope, Some("bookmark"), doing);
    if let Err(err) = previous.outcome {
        show(&err);
    }
    decoded::<Vec<DatabaseSummary>>(&envelope);
    decoded::<DatabaseInfo>(&envelope);
    decoded::<Vec<QueryResult>>(&envelope);
    if let Some(items) = envelope.get("result").and_then(Value::as_array) {
        for item in items {
            if let Err(err) = crate::query::parse_raw(item, doing) {
                show(&err);
            }
        }
    }
    let _ = envelope
        .pointer("/result_info/per_page")
        .and_then(Value::as_u64);
    let _ = envelope.pointer("/result/bookmark").and_then(Value::as_str);
    let state = envelope.get("result").unwrap_or(&Value::Null);
    if let Err(err) = crate::import::check_import(state, "database") {
        show(&err);
    }
    if let Some(url) = state.get("upload_url").and_then(Value::as_str) {
        match SignedUrl::new(url) {
            Ok(url) => check_redacted(&url),
            Err(err) => show(&err),
        }
    }
}

fn decoded<T: serde::de::DeserializeOwned + std::fmt::Debug>(envelope: &Value) {
    match decode::<T>(envelope.get("result"), "fuzzing") {
        Ok(value) => {
            let _ = format!("{value:?}");
        }
        Err(err) => show(&err),
    }
}

/// The first chunk of a download, refused if it is an error page.
fn sniff_download(body: &[u8]) {
    let Ok(url) = SignedUrl::new("https://bucket.example.com/dump.sql?X-Amz-Signature=fuzz") else {
        return;
    };
    if let Err(err) = crate::download::sniff(&Bytes::copy_from_slice(body), &url) {
        show(&err);
        assert!(!err.to_string().contains("X-Amz-Signature"), "{err}");
    }
}

/// Renders an error the ways a caller would, source chain included.
fn show(err: &Error) {
    let _ = (
        err.to_string(),
        format!("{err:?}"),
        err.kind(),
        err.is_retryable(),
    );
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let _ = inner.to_string();
        source = inner.source();
    }
}

/// A signed URL shows neither its query (the signature) nor its fragment.
fn check_redacted(url: &SignedUrl) {
    for shown in [url.to_string(), format!("{url:?}"), url.redacted()] {
        assert!(!shown.contains(['?', '#']), "{shown}");
    }
}

#[cfg(test)]
mod tests {
    use super::fuzz_decode;

    /// Every decoder runs on the documented answers without panicking.
    #[test]
    fn documented_answers_decode() {
        for (status, body) in [
            (
                202,
                r#"{"success":true,"errors":[],"messages":[],"result":{"success":true,"type":"export","at_bookmark":"b","status":"active","messages":["Uploaded part 2"]}}"#,
            ),
            (
                200,
                r#"{"success":true,"result":{"at_bookmark":"b","status":"complete","result":{"filename":"f.sql","signed_url":"https://h/p.sql?X-Amz-Signature=s#frag"}}}"#,
            ),
            (
                200,
                r#"{"success":true,"result":[{"uuid":"u","name":"n"}],"result_info":{"per_page":1}}"#,
            ),
            (
                200,
                r#"{"success":true,"result":[{"results":{"columns":["a"],"rows":[[1]]}}]}"#,
            ),
            (403, "<Error><Code>AccessDenied</Code></Error>"),
            (0, "{}"),
            (999, ""),
        ] {
            fuzz_decode(status, body.as_bytes());
        }
    }
}
