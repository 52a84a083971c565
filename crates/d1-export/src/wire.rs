//! The Cloudflare API envelope and how its failures map to [`ErrorKind`]s.
//!
//! Every JSON endpoint answers `{success, errors, messages, result}`; some
//! answer a non-standard `{code, error}`; edge errors (502, 520, ...) can be
//! HTML. `messages` items may be strings or `{code, message}` objects.

use reqwest::StatusCode;
use serde_json::Value;

use crate::error::{Error, ErrorKind};

/// The text of a `messages`/`errors` item: a string, or an object's
/// `message` (or `error`) field.
pub(crate) fn message_text(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => map
            .get("message")
            .or_else(|| map.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// All texts of an array of messages; anything else gives none.
pub(crate) fn message_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(message_text).collect())
        .unwrap_or_default()
}

/// The first error code and the joined error messages of a failed body.
fn body_errors(body: &Value) -> (Option<i64>, Option<String>) {
    if let Some(errors) = body
        .get("errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        let code = errors
            .iter()
            .find_map(|e| e.get("code").and_then(Value::as_i64));
        let texts: Vec<String> = errors.iter().filter_map(message_text).collect();
        return (code, (!texts.is_empty()).then(|| texts.join("; ")));
    }
    // The non-standard `{code, error}` shape.
    let code = body.get("code").and_then(Value::as_i64);
    let text = body
        .get("error")
        .and_then(message_text)
        .or_else(|| body.get("message").and_then(message_text));
    (code, text)
}

/// Turns one HTTP answer into the envelope (on success) or an error.
pub(crate) fn parse_reply(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> crate::Result<Value> {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        let what = content_type.unwrap_or("no content type");
        let kind = if status.is_success() {
            ErrorKind::Transient
        } else {
            classify(status, None, "")
        };
        let detail = format!(
            "{} with a body that is not JSON ({what}, {} bytes)",
            status_text(status),
            body.len()
        );
        return Err(api_error(kind, status, None, None, &detail));
    };
    let success = json.get("success").and_then(Value::as_bool);
    let has_error_field = json.get("error").is_some_and(|e| !e.is_null());
    if status.is_success() && (success == Some(true) || (success.is_none() && !has_error_field)) {
        return Ok(json);
    }
    let (code, text) = body_errors(&json);
    let kind = classify(status, code, text.as_deref().unwrap_or(""));
    let detail = describe(status, code, text.as_deref());
    Err(api_error(kind, status, code, text, &detail))
}

/// Maps status, API code and message to a kind. The message wins for the
/// two D1 conditions that arrive under varying statuses.
pub(crate) fn classify(status: StatusCode, code: Option<i64>, text: &str) -> ErrorKind {
    if let Some(kind) = classify_text(text) {
        return kind;
    }
    match (status.as_u16(), code) {
        (_, Some(10000)) | (401 | 403, _) => ErrorKind::Unauthorized,
        (_, Some(7404)) | (404, _) => ErrorKind::NotFound,
        (429, _) => ErrorKind::RateLimited,
        (408 | 500..=599, _) => ErrorKind::Transient,
        (400 | 413 | 422, _) => ErrorKind::InvalidInput,
        _ => ErrorKind::Protocol,
    }
}

/// Recognises "export already running" and "virtual tables" by their text.
pub(crate) fn classify_text(text: &str) -> Option<ErrorKind> {
    let lower = text.to_ascii_lowercase();
    if lower.contains("long-running export") || lower.contains("cannot start a new export") {
        Some(ErrorKind::ExportInProgress)
    } else if lower.contains("virtual table") {
        Some(ErrorKind::VirtualTablesUnsupported)
    } else {
        None
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// `401 Unauthorized, code 10000: Authentication error`.
fn describe(status: StatusCode, code: Option<i64>, text: Option<&str>) -> String {
    let out = status_text(status);
    match (code, text) {
        (Some(code), Some(text)) => format!("{out}, code {code}: {text}"),
        (Some(code), None) => format!("{out}, code {code}"),
        (None, Some(text)) => format!("{out}: {text}"),
        (None, None) => out,
    }
}

/// Builds the error with a message that says what to do.
pub(crate) fn api_error(
    kind: ErrorKind,
    status: StatusCode,
    code: Option<i64>,
    server: Option<String>,
    detail: &str,
) -> Error {
    let message = match kind {
        ErrorKind::Unauthorized => format!(
            "D1 API refused the token ({detail}): check that the API token is valid and has the D1 permission for this account"
        ),
        ErrorKind::NotFound => {
            format!(
                "D1 API found no such account or database ({detail}): check the account id and the database id or name"
            )
        }
        ErrorKind::RateLimited => format!(
            "D1 API rate limit reached ({detail}): the limit is 1,200 requests per 5 minutes per token; wait, and lower the client's RateLimit if other tools share the token"
        ),
        ErrorKind::ExportInProgress => format!(
            "D1 is already exporting or importing this database ({detail}): wait for it to finish, or set ExportOptions::wait_if_busy"
        ),
        ErrorKind::VirtualTablesUnsupported => format!(
            "D1 cannot export a database with virtual tables such as FTS5 ({detail}): export named real tables with DumpOptions::tables"
        ),
        ErrorKind::Transient => {
            format!("D1 API answered {detail}: this is usually temporary, retry later")
        }
        ErrorKind::InvalidInput => {
            format!("D1 API rejected the request ({detail}): check the SQL, ids and options sent")
        }
        _ => format!(
            "D1 API answered unexpectedly ({detail}): this client may need an update for this answer"
        ),
    };
    Error::new(kind, message)
        .with_status(status.as_u16())
        .with_api_code(code)
        .with_server_message(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, expected: Option<ErrorKind>) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        let got = parse_reply(status, Some("application/json"), body.as_bytes())
            .err()
            .map(|e| e.kind());
        assert_eq!(got, expected, "{status} {body}");
    }

    #[test]
    fn classifies_answers() {
        let ok = r#"{"success":true,"errors":[],"messages":[],"result":[]}"#;
        check(200, ok, None);
        check(202, ok, None);
        check(
            401,
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#,
            Some(ErrorKind::Unauthorized),
        );
        check(
            403,
            r#"{"success":false,"errors":[{"code":10000,"message":"x"}]}"#,
            Some(ErrorKind::Unauthorized),
        );
        check(
            404,
            r#"{"success":false,"errors":[{"code":7404,"message":"not found"}]}"#,
            Some(ErrorKind::NotFound),
        );
        check(
            400,
            r#"{"success":false,"errors":[{"code":7404,"message":"nope"}]}"#,
            Some(ErrorKind::NotFound),
        );
        check(
            429,
            r#"{"success":false,"errors":[]}"#,
            Some(ErrorKind::RateLimited),
        );
        check(502, "<html>Bad gateway</html>", Some(ErrorKind::Transient));
        check(200, "<html>oops</html>", Some(ErrorKind::Transient));
        check(
            503,
            r#"{"code":1,"error":"overloaded"}"#,
            Some(ErrorKind::Transient),
        );
        check(
            400,
            r#"{"code":7500,"error":"SQL error"}"#,
            Some(ErrorKind::InvalidInput),
        );
        check(
            409,
            r#"{"success":false,"errors":[{"code":7500,"message":"Currently processing a long-running export. Cannot start a new export until that completes or times out."}]}"#,
            Some(ErrorKind::ExportInProgress),
        );
        check(
            200,
            r#"{"success":false,"errors":[{"code":1,"message":"weird"}]}"#,
            Some(ErrorKind::Protocol),
        );
        check(418, "{}", Some(ErrorKind::Protocol));
    }

    #[test]
    fn messages_as_strings_or_objects() {
        let value: Value = serde_json::json!(["a", {"code": 1, "message": "b"}, 3, {"error": "c"}]);
        assert_eq!(message_list(Some(&value)), vec!["a", "b", "c"]);
    }

    #[test]
    fn unauthorized_message_says_what_to_do() {
        let body =
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#;
        let err = parse_reply(StatusCode::UNAUTHORIZED, None, body.as_bytes())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "D1 API refused the token (401 Unauthorized, code 10000: Authentication error): check that the API token is valid and has the D1 permission for this account"
            )
        );
    }
}
