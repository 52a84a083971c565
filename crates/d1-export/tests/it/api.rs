//! Builder, listing, info, query, raw, import, KV, and the shared budget.

use std::time::{Duration, Instant};

use d1_export::{
    ApiToken, D1Client, ErrorKind, ExportEvent, ImportEvent, ImportOptions, ImportSource, RateLimit,
};
use serde_json::json;
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn builder_checks_the_base_url_and_hides_the_token() {
    for bad in ["not a url", "mailto:x@y", "data:text/plain,hi"] {
        let err = D1Client::builder(TOKEN.into())
            .base_url(bad)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
    }
    let client = D1Client::builder(ApiToken::from(TOKEN.to_owned()))
        .build()
        .unwrap();
    let shown = format!("{client:?}");
    assert!(
        shown.contains("api.cloudflare.com/client/v4") && !shown.contains(TOKEN),
        "{shown}"
    );
    assert_eq!(
        format!("{:?}", ApiToken::from(TOKEN)),
        "ApiToken(<redacted>)"
    );
}

#[tokio::test]
async fn trailing_slash_user_agent_and_shared_http_client() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/client/v4/accounts/{ACCOUNT}/d1/database/my%20db")))
        .and(header("user-agent", "backup-bot/1"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ok(200, json!({"uuid": "u1", "name": "my db", "file_size": 12_288, "num_tables": 3, "version": "production"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = D1Client::builder(TOKEN.into())
        .base_url(format!("{}/client/v4/", server.uri()))
        .http_client(reqwest::Client::new())
        .user_agent("backup-bot/1")
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let info = client.database_info(ACCOUNT, "my db").await.unwrap();
    assert_eq!(
        (info.uuid.as_str(), info.file_size, info.num_tables),
        ("u1", Some(12_288), Some(3))
    );
}

#[tokio::test]
async fn missing_database_is_not_found_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(fail(404, 7404, "The database nope could not be found"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .database_info(ACCOUNT, "nope")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.api_code(), Some(7404));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn list_follows_every_page() {
    let server = MockServer::start().await;
    let page = |from: usize, n: usize| -> Vec<serde_json::Value> {
        (from..from + n).map(|i| json!({"uuid": format!("u{i}"), "name": format!("db{i}"), "created_at": "2026-01-01T00:00:00Z"})).collect()
    };
    for (number, items) in [(1, page(0, 100)), (2, page(100, 100)), (3, page(200, 5))] {
        Mock::given(method("GET"))
            .and(path(format!("/client/v4/accounts/{ACCOUNT}/d1/database")))
            .and(query_param("page", number.to_string()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"success": true, "errors": [], "messages": [], "result": items,
                    "result_info": {"page": number, "per_page": 100, "count": 0, "total_count": 205}})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let all = client(&server.uri()).list_databases(ACCOUNT).await.unwrap();
    assert_eq!(all.len(), 205);
    assert_eq!(all[204].name, "db204");
}

/// Regression: a server that caps `per_page` below what was asked and leaves out
/// `total_count` made the client stop after the first page, so databases on later pages
/// were reported as missing.
#[tokio::test]
async fn list_follows_pages_when_the_server_caps_per_page_without_a_total() {
    let server = MockServer::start().await;
    let pages = [vec!["a", "b"], vec!["c", "d"], vec!["e"]];
    for (number, names) in pages.iter().enumerate() {
        let items: Vec<serde_json::Value> = names
            .iter()
            .map(|n| json!({"uuid": format!("u-{n}"), "name": n}))
            .collect();
        Mock::given(method("GET"))
            .and(query_param("page", (number + 1).to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "success": true, "errors": [], "messages": [], "result": items,
                "result_info": {"page": number + 1, "per_page": 2, "count": names.len()}})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let all = client(&server.uri()).list_databases(ACCOUNT).await.unwrap();
    let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
}

/// A server that ignores `page` and answers the same full page forever must not loop.
#[tokio::test]
async fn list_stops_when_a_page_brings_nothing_new() {
    let server = MockServer::start().await;
    let items: Vec<serde_json::Value> = (0..100)
        .map(|i| json!({"uuid": format!("u{i}"), "name": format!("db{i}")}))
        .collect();
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "errors": [], "messages": [], "result": items})))
        .mount(&server)
        .await;
    let all = client(&server.uri()).list_databases(ACCOUNT).await.unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn list_without_result_info_stops_at_a_short_page_and_retries_html() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(Seq::new(vec![
            html(502),
            ok(200, json!([{"uuid": "a", "name": "a"}])),
        ]))
        .mount(&server)
        .await;
    let all = client(&server.uri()).list_databases(ACCOUNT).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn bad_request_is_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(fail(400, 7500, "near \"SELEC\": syntax error"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .query(ACCOUNT, DB, "SELEC 1", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("syntax error"), "{err}");
}

#[tokio::test]
async fn query_keeps_big_integers_exact_as_text() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/client/v4/accounts/{ACCOUNT}/d1/database/{DB}/query")))
        .and(body_json(json!({"sql": "SELECT CAST(id AS TEXT) AS id, n FROM t WHERE k = ?", "params": ["x"]})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"success":true,"errors":[],"messages":[],"result":[{"results":[{"id":"9223372036854775807","n":9007199254740993}],"success":true,"meta":{"rows_read":1}}]}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let results = client(&server.uri())
        .query(
            ACCOUNT,
            DB,
            "SELECT CAST(id AS TEXT) AS id, n FROM t WHERE k = ?",
            &[json!("x")],
        )
        .await
        .unwrap();
    let row = &results[0].results[0];
    assert_eq!(
        row["id"].as_str().unwrap().parse::<i64>().unwrap(),
        i64::MAX
    );
    assert_eq!(
        row["n"].as_i64(),
        Some(9_007_199_254_740_993),
        "JSON integers are not rounded client-side"
    );
    assert_eq!(results[0].meta["rows_read"], 1);
}

#[tokio::test]
async fn raw_returns_columns_and_rows() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/client/v4/accounts/{ACCOUNT}/d1/database/{DB}/raw")))
        .respond_with(ok(200, json!([{"results": {"columns": ["name", "sql"], "rows": [["t", "CREATE TABLE t(x)"]]}, "success": true, "meta": {}}])))
        .mount(&server)
        .await;
    let raw = client(&server.uri())
        .raw(ACCOUNT, DB, "SELECT name, sql FROM sqlite_schema", &[])
        .await
        .unwrap();
    assert_eq!(raw[0].columns, vec!["name", "sql"]);
    assert_eq!(raw[0].rows[0][1], "CREATE TABLE t(x)");
}

#[tokio::test]
async fn kv_put_writes_the_raw_value() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!(
            "/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces/ns1/values/heartbeat%2Fbackup"
        )))
        .and(wiremock::matchers::body_string("2026-11-30T03:00:00Z"))
        .respond_with(ok(200, json!(null)))
        .expect(1)
        .mount(&server)
        .await;
    client(&server.uri())
        .kv_put(ACCOUNT, "ns1", "heartbeat/backup", "2026-11-30T03:00:00Z")
        .await
        .unwrap();
}

fn import_options() -> ImportOptions {
    let mut options = ImportOptions::default();
    options.poll_interval = Duration::from_millis(1);
    options
}

/// A D1 import endpoint and an upload URL that checks what it receives.
async fn import_server(sql: &'static [u8]) -> MockServer {
    let server = MockServer::start().await;
    let etag = format!("{:x}", md5_digest(sql));
    let import_path = format!("/client/v4/accounts/{ACCOUNT}/d1/database/{DB}/import");
    let upload = format!("{}/upload/file.sql?{SIGNATURE}", server.uri());
    let init = json!({"success": true, "upload_url": upload, "filename": "file.sql"});
    Mock::given(method("POST"))
        .and(path(&import_path))
        .and(body_partial_json(json!({"action": "init", "etag": etag})))
        .respond_with(ok(200, init))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/file.sql"))
        .and(header("content-length", sql.len().to_string().as_str()))
        .and(wiremock::matchers::body_bytes(sql))
        .respond_with(
            ResponseTemplate::new(200).insert_header("etag", format!("\"{etag}\"").as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ingesting = json!({"success": true, "at_bookmark": "ib1", "status": "active", "messages": ["Ingesting"]});
    Mock::given(method("POST"))
        .and(path(&import_path))
        .and(body_partial_json(
            json!({"action": "ingest", "filename": "file.sql", "etag": etag}),
        ))
        .respond_with(ok(200, ingesting))
        .expect(1)
        .mount(&server)
        .await;
    let done = json!({"success": true, "at_bookmark": "ib1", "status": "complete",
                      "result": {"final_bookmark": "fb", "num_queries": 2, "meta": {}}});
    Mock::given(method("POST"))
        .and(path(&import_path))
        .and(body_partial_json(
            json!({"action": "poll", "current_bookmark": "ib1"}),
        ))
        .respond_with(Seq::new(vec![
            ok(
                200,
                json!({"success": true, "at_bookmark": "ib1", "status": "active"}),
            ),
            ok(200, done),
        ]))
        .expect(2)
        .mount(&server)
        .await;
    server
}

const IMPORT_SQL: &[u8] = b"PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(x);\n";

#[tokio::test]
async fn import_inits_uploads_ingests_and_polls() {
    let server = import_server(IMPORT_SQL).await;
    let events = std::sync::Mutex::new(Vec::new());
    let source = ImportSource::from(IMPORT_SQL.to_vec());
    let done = client(&server.uri())
        .import(
            ACCOUNT,
            DB,
            &source,
            &import_options(),
            &|e: &ImportEvent| {
                events.lock().unwrap().push(e.clone());
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (done.final_bookmark.as_deref(), done.num_queries, done.polls),
        (Some("fb"), Some(2), 2)
    );
    let events = events.lock().unwrap();
    assert_eq!(
        events[0],
        ImportEvent::Uploading {
            bytes: IMPORT_SQL.len() as u64
        }
    );
    assert!(events.contains(&ImportEvent::Message("Ingesting".into())));
}

#[tokio::test]
async fn import_streams_a_file_with_its_length() {
    let server = import_server(IMPORT_SQL).await;
    let file = std::env::temp_dir().join(format!("d1-export-it-import-{}.sql", std::process::id()));
    std::fs::write(&file, IMPORT_SQL).unwrap();
    let result = client(&server.uri())
        .import(
            ACCOUNT,
            DB,
            &file.as_path().into(),
            &import_options(),
            &|_: &ImportEvent| {},
        )
        .await;
    std::fs::remove_file(&file).unwrap();
    assert_eq!(result.unwrap().polls, 2);
}

#[tokio::test]
async fn import_failure_is_import_failed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(
            200,
            json!({"success": false, "status": "error", "error": "statement too long"}),
        ))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .import(
            ACCOUNT,
            DB,
            &b"x".to_vec().into(),
            &import_options(),
            &|_: &ImportEvent| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ImportFailed);
    assert_eq!(err.server_message(), Some("statement too long"));
}

fn md5_digest(data: &[u8]) -> u128 {
    use md5::Digest;
    u128::from_be_bytes(md5::Md5::digest(data).into())
}

#[tokio::test]
async fn concurrent_exports_share_one_request_budget() {
    let server = MockServer::start().await;
    // Each export: start (active), one poll (complete) = 2 requests; 8 exports = 16.
    Mock::given(method("POST"))
        .respond_with(|request: &wiremock::Request| {
            if bookmark_of(request).is_some() {
                complete("bm", "https://b.example/d.sql?sig=1")
            } else {
                active("bm", &[])
            }
        })
        .mount(&server)
        .await;
    let client = D1Client::builder(TOKEN.into())
        .base_url(format!("{}/client/v4", server.uri()))
        .rate_limit(RateLimit::new(20, Duration::from_secs(1)).with_burst(1))
        .build()
        .unwrap();
    let start = Instant::now();
    let runs = (0..8).map(|_| {
        let client = client.clone();
        async move {
            client
                .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
                .await
        }
    });
    for result in futures::future::join_all(runs).await {
        result.unwrap();
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 16);
    // 16 requests at 20/s with no burst need at least 15 intervals of 50 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "{:?}",
        start.elapsed()
    );
}
