//! The simulator with a database behind it (`add_backed_database`), driven through the
//! client: queries with every value type, SQL errors, exports built from `dump_options`,
//! the import protocol, and Time Travel bookmarks. The database here is a small fake; the
//! SQLite one lives in `d1-backup-core` (`testing::SqliteD1`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use d1_export::testing::{D1Simulator, Fault, SimulatedDatabase, SimulatedRows};
use d1_export::{
    D1Client, DumpOptions, ErrorKind, ExportEvent, ImportEvent, ImportOptions, ImportSource,
    RateLimit,
};
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::support::{assert_no_secret, fast_export, fast_retry};

const ACC: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const SIM_TOKEN: &str = "sim-token-backed";
const VIRTUAL: &str = "D1 Export error: cannot export databases with Virtual Tables (fts5)";

/// A fake database: one row of every value type, writes counted, exports describing their
/// options, a refusal without `tables` (as D1 refuses a database with FTS5 tables).
#[derive(Debug, Default)]
struct Fake {
    version: AtomicU64,
    imported: Mutex<Vec<Vec<u8>>>,
    exported: Mutex<Vec<DumpOptions>>,
}

impl SimulatedDatabase for Fake {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<SimulatedRows>, String> {
        if sql.contains("missing") {
            return Err("no such table: missing: SQLITE_ERROR".to_owned());
        }
        if sql.starts_with("INSERT") {
            self.version.fetch_add(1, Ordering::SeqCst);
            let mut rows = SimulatedRows::default();
            rows.changes = 1;
            rows.changed_db = true;
            return Ok(vec![rows]);
        }
        let columns = ["i", "big", "r", "t", "b", "n", "param"].map(str::to_owned);
        let row = vec![
            json!(42),
            json!(9_223_372_036_854_776_000_u64),
            json!(1.5),
            json!("text"),
            json!([0, 1, 255]),
            Value::Null,
            params.first().cloned().unwrap_or(Value::Null),
        ];
        Ok(vec![SimulatedRows::new(columns.to_vec(), vec![row])])
    }

    fn export(&self, options: &DumpOptions) -> Result<Bytes, String> {
        self.exported.lock().unwrap().push(options.clone());
        if options.tables.is_empty() {
            return Err(VIRTUAL.to_owned());
        }
        Ok(Bytes::from(format!(
            "PRAGMA defer_foreign_keys=TRUE;\n-- {} v{}",
            options.tables.join(","),
            self.version.load(Ordering::SeqCst)
        )))
    }

    fn import(&self, sql: &[u8]) -> Result<u64, String> {
        if sql.windows(4).any(|w| w == b"FAIL") {
            return Err("UNIQUE constraint failed: t.id: SQLITE_CONSTRAINT".to_owned());
        }
        self.imported.lock().unwrap().push(sql.to_vec());
        self.version.fetch_add(1, Ordering::SeqCst);
        Ok(sql.split(|b| *b == b';').count() as u64 - 1)
    }

    fn bookmark(&self) -> String {
        let v = self.version.load(Ordering::SeqCst);
        format!("{:08x}-00000000-00004f6d-{v:032x}", v + 1)
    }
}

async fn world() -> (D1Simulator, D1Client, Arc<Fake>, String) {
    let sim = D1Simulator::start().await;
    sim.add_account(ACC, SIM_TOKEN);
    let fake = Arc::new(Fake::default());
    let uuid = sim.add_backed_database(ACC, "backed", fake.clone());
    let client = D1Client::builder(SIM_TOKEN.into())
        .base_url(sim.base_url())
        .retry(fast_retry())
        .rate_limit(RateLimit::new(1000, Duration::from_secs(1)))
        .build()
        .unwrap();
    (sim, client, fake, uuid)
}

fn fast_import() -> ImportOptions {
    let mut options = ImportOptions::default();
    options.poll_interval = Duration::from_millis(1);
    options
}

#[tokio::test]
async fn query_and_raw_carry_every_value_type_and_params() {
    let (sim, client, _, uuid) = world().await;
    let results = client
        .query(ACC, &uuid, "SELECT * FROM t WHERE k = ?", &[json!("k1")])
        .await
        .unwrap();
    let row = &results[0].results[0];
    assert_eq!(row["i"].as_i64(), Some(42));
    assert_eq!(row["big"].as_u64(), Some(9_223_372_036_854_776_000));
    assert_eq!(row["r"].as_f64(), Some(1.5));
    assert_eq!(row["t"], "text");
    assert_eq!(row["b"], json!([0, 1, 255]));
    assert!(row["n"].is_null());
    assert_eq!(row["param"], "k1");
    assert_eq!(results[0].success, Some(true));
    assert_eq!(results[0].meta["rows_read"], 1);
    assert_eq!(results[0].meta["changes"], 0);

    let raw = client
        .raw(ACC, &uuid, "SELECT * FROM t", &[])
        .await
        .unwrap();
    assert_eq!(raw[0].columns, ["i", "big", "r", "t", "b", "n", "param"]);
    assert_eq!(raw[0].rows[0][4], json!([0, 1, 255]));
    assert_eq!(sim.queries(&uuid), 2);
}

#[tokio::test]
async fn sql_errors_are_invalid_input_with_d1s_message() {
    let (_sim, client, _, uuid) = world().await;
    let err = client
        .query(ACC, &uuid, "SELECT * FROM missing", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.api_code(), Some(7500));
    assert_eq!(
        err.server_message(),
        Some("no such table: missing: SQLITE_ERROR")
    );
    assert_no_secret(&err);
    // D1 runs each request in a transaction of its own and refuses SQL that manages one.
    let err = client
        .query(ACC, &uuid, "BEGIN TRANSACTION; SELECT 1;", &[])
        .await
        .unwrap_err();
    assert!(
        err.server_message()
            .is_some_and(|m| m.ends_with("SQLITE_AUTH")),
        "{err}"
    );
}

#[tokio::test]
async fn a_batch_body_gets_one_result_per_statement() {
    let (sim, _, _, uuid) = world().await;
    let url = format!("{}/accounts/{ACC}/d1/database/{uuid}/query", sim.base_url());
    let body = json!({"batch": [{"sql": "SELECT 1", "params": ["a"]}, {"sql": "INSERT INTO t VALUES(1)"}]});
    let answer: Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(SIM_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = answer["result"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{answer}");
    assert_eq!(results[0]["results"][0]["param"], "a");
    assert_eq!(results[1]["meta"]["changes"], 1);
    assert_eq!(results[1]["meta"]["changed_db"], true);
}

#[tokio::test]
async fn export_passes_dump_options_and_reports_a_refusal_as_d1_does() {
    let (sim, client, fake, uuid) = world().await;
    let err = client
        .export(ACC, &uuid, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VirtualTablesUnsupported, "{err}");
    assert_eq!(err.server_message(), Some(VIRTUAL));

    let mut options = fast_export();
    options.dump.tables = vec!["articles".into(), "comments".into()];
    options.dump.no_data = true;
    let done = client
        .export(ACC, &uuid, &options, &|_: &ExportEvent| {})
        .await
        .unwrap();
    assert_eq!(
        done.bookmark,
        fake.bookmark(),
        "exported at the current bookmark"
    );
    let chunks: Vec<Bytes> = client
        .download(&done.signed_url)
        .await
        .unwrap()
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        chunks.concat(),
        b"PRAGMA defer_foreign_keys=TRUE;\n-- articles,comments v0"
    );
    assert_eq!(fake.exported.lock().unwrap()[1], options.dump);
    assert_eq!(sim.exports_started(&uuid), 2);
}

#[tokio::test]
async fn faults_apply_to_backed_databases() {
    let (sim, client, _, uuid) = world().await;
    sim.inject(&uuid, Fault::ExportInProgress);
    let mut options = fast_export();
    options.dump.tables = vec!["t".into()];
    let err = client
        .export(ACC, &uuid, &options, &|_: &ExportEvent| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExportInProgress);
}

#[tokio::test]
async fn import_uploads_checks_the_md5_ingests_and_moves_the_bookmark() {
    let (sim, client, fake, uuid) = world().await;
    let before = client.current_bookmark(ACC, &uuid).await.unwrap();
    let sql = b"CREATE TABLE t (id INTEGER PRIMARY KEY);\nINSERT INTO t VALUES(1);".to_vec();
    let events = Mutex::new(Vec::new());
    let done = client
        .import(
            ACC,
            &uuid,
            &ImportSource::from(sql.clone()),
            &fast_import(),
            &|e: &ImportEvent| events.lock().unwrap().push(e.clone()),
        )
        .await
        .unwrap();
    assert_eq!(done.num_queries, Some(2));
    let after = client.current_bookmark(ACC, &uuid).await.unwrap();
    assert_ne!(before, after);
    assert_eq!(done.final_bookmark.as_deref(), Some(after.as_str()));
    assert_eq!(*fake.imported.lock().unwrap(), std::slice::from_ref(&sql));
    assert_eq!(sim.imports_done(&uuid), 1);
    assert!(
        events.lock().unwrap()[0]
            == ImportEvent::Uploading {
                bytes: sql.len() as u64
            }
    );

    // The same file again: D1 has it already and ingests it without an upload.
    let events = Mutex::new(Vec::new());
    client
        .import(
            ACC,
            &uuid,
            &ImportSource::from(sql),
            &fast_import(),
            &|e: &ImportEvent| events.lock().unwrap().push(e.clone()),
        )
        .await
        .unwrap();
    assert!(
        events
            .lock()
            .unwrap()
            .contains(&ImportEvent::AlreadyUploaded)
    );
    assert_eq!(sim.imports_done(&uuid), 2);
}

#[tokio::test]
async fn import_refuses_transactions_and_reports_the_databases_error() {
    let (sim, client, fake, uuid) = world().await;
    for (sql, expected) in [
        (
            &b"BEGIN TRANSACTION;\nCREATE TABLE t (a);\nCOMMIT;"[..],
            "SQLITE_AUTH",
        ),
        (&b"INSERT INTO t VALUES('FAIL');"[..], "SQLITE_CONSTRAINT"),
    ] {
        let err = client
            .import(
                ACC,
                &uuid,
                &ImportSource::from(sql.to_vec()),
                &fast_import(),
                &|_: &ImportEvent| {},
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ImportFailed, "{err}");
        assert!(
            err.server_message().is_some_and(|m| m.ends_with(expected)),
            "{err}"
        );
    }
    assert!(fake.imported.lock().unwrap().is_empty());
    assert_eq!(sim.imports_done(&uuid), 0);
}

#[tokio::test]
async fn an_upload_whose_body_differs_from_its_md5_is_refused() {
    let (sim, _, _, uuid) = world().await;
    let api = format!(
        "{}/accounts/{ACC}/d1/database/{uuid}/import",
        sim.base_url()
    );
    let http = reqwest::Client::new();
    let call = |body: Value| {
        let request = http.post(&api).bearer_auth(SIM_TOKEN).json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let etag = "0123456789abcdef0123456789abcdef";
    let init = call(json!({"action": "init", "etag": etag})).await;
    let upload_url = init["result"]["upload_url"].as_str().unwrap();
    let put = http
        .put(upload_url)
        .body("CREATE TABLE t (a);")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let got = put.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(got, format!("\"{:032x}\"", md5_of(b"CREATE TABLE t (a);")));
    let filename = init["result"]["filename"].as_str().unwrap();
    let ingest = call(json!({"action": "ingest", "etag": etag, "filename": filename})).await;
    let bookmark = ingest["result"]["at_bookmark"].as_str().unwrap();
    let poll = call(json!({"action": "poll", "current_bookmark": bookmark})).await;
    assert_eq!(poll["result"]["status"], "error", "{poll}");
    assert!(
        poll["result"]["error"].as_str().unwrap().contains("md5"),
        "{poll}"
    );
    assert_eq!(sim.imports_done(&uuid), 0);
    // Without the signature the upload URL is refused, as R2 refuses it.
    let unsigned = upload_url.split('?').next().unwrap();
    let put = http.put(unsigned).body("x").send().await.unwrap();
    assert_eq!(put.status(), 403);
}

fn md5_of(data: &[u8]) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(data).into())
}

#[tokio::test]
async fn bookmarks_through_time_travel() {
    let (sim, client, fake, uuid) = world().await;
    let now = client.current_bookmark(ACC, &uuid).await.unwrap();
    assert_eq!(now, fake.bookmark());
    let an_hour_ago = SystemTime::now() - Duration::from_hours(1);
    let then = client
        .bookmark_at(ACC, &uuid, Some(an_hour_ago))
        .await
        .unwrap();
    assert_eq!(
        then, now,
        "the fake keeps no history and the simulator saw none older"
    );
    client
        .query(ACC, &uuid, "INSERT INTO t VALUES(1)", &[])
        .await
        .unwrap();
    assert_ne!(client.current_bookmark(ACC, &uuid).await.unwrap(), now);

    // A fixed-dump database has a bookmark that never changes; it serves no queries.
    let fixed = sim.add_database(ACC, "fixed", "PRAGMA defer_foreign_keys=TRUE;");
    let a = client.current_bookmark(ACC, &fixed).await.unwrap();
    assert_eq!(a, client.current_bookmark(ACC, &fixed).await.unwrap());
    let err = client
        .query(ACC, &fixed, "SELECT 1", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = client
        .current_bookmark(ACC, "no-such-db")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
