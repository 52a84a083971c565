//! Verification: a backup is proven by restoring it.

use std::sync::Arc;

use d1_backup_core::{RunOptions, VerifyOptions};
use futures::StreamExt;
use r2_sink::{BackupSink, ObjectStoreSink, PutOptions};

use crate::support::*;

const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";

#[tokio::test]
async fn good_backups_verify_and_altered_ones_do_not() {
    let sim = simulator().await;
    let ops = dump("ops-db", 500);
    sim.add_database(UCCA, "ops-db", ops.clone());
    sim.add_database(UCCA, "engine-db", dump("engine-db", 300));
    let mut bad = b"PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE n (v REAL);\n".to_vec();
    bad.extend_from_slice(b"INSERT INTO \"n\" (\"v\") VALUES(Infinity);\n");
    sim.add_database(RTO, "rto-ops-db", bad);
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let dbs = r#""ops-db", { name = "engine-db", compression = "zstd" }"#;
    let text = config_text(&sim, UNUSED_SINK, dbs, r#""rto-ops-db""#);
    let engine = engine(&text, Some(sink.clone()));
    run(&engine, RunOptions::new(date())).await;
    let scratch = tempfile::tempdir().unwrap();

    let results = engine
        .verify(&VerifyOptions::new(scratch.path()))
        .await
        .unwrap();
    let ok: Vec<(&str, bool)> = results
        .iter()
        .map(|v| (v.database.as_str(), v.ok))
        .collect();
    assert_eq!(
        ok,
        [("ops-db", true), ("engine-db", true), ("rto-ops-db", false)],
        "{results:#?}"
    );
    assert_eq!(results[0].tables.get("items"), Some(&500));
    assert_eq!(
        results[1].tables.get("items"),
        Some(&300),
        "compressed dumps are decoded"
    );
    let problem = &results[2].problems[0];
    assert!(
        problem.contains("line 3") && problem.contains("Infinity"),
        "{problem}"
    );

    // One flipped byte in a stored dump.
    let mut altered = ops.clone();
    let last = altered.len() - 3;
    altered[last] ^= 0x01;
    let body = futures::stream::iter([Ok(bytes::Bytes::from(altered))]).boxed();
    sink.put_stream("d1/2026-11-30/ops-db.sql", body, PutOptions::default())
        .await
        .unwrap();
    let results = engine
        .verify(&VerifyOptions::new(scratch.path()))
        .await
        .unwrap();
    assert!(!results[0].ok);
    assert!(
        results[0]
            .problems
            .iter()
            .any(|p| p.contains("sha256 mismatch")),
        "{:?}",
        results[0].problems
    );
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "scratch files are removed"
    );
}

/// A database with the values exports get wrong: big integers, -0.0, integral reals in an
/// untyped column, text with newlines and backslashes, blobs, a WITHOUT ROWID table and a
/// table without INTEGER PRIMARY KEY.
fn tricky_database(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, r REAL, u, txt TEXT, b BLOB);
         INSERT INTO t VALUES (1, 9007199254740993, -0.0, 3.0, 'a\\nb' || char(10) || 'c', X'00ff');
         INSERT INTO t VALUES (2, -9223372036854775808, 1e-300, 'x', '', X'');
         INSERT INTO t VALUES (5, NULL, 9e999, NULL, NULL, NULL);
         CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
         INSERT INTO kv VALUES ('b', 2), ('a', 1.5);
         CREATE TABLE loose (v TEXT);
         INSERT INTO loose VALUES ('one'), ('two');
         DELETE FROM loose WHERE v = 'one';
         INSERT INTO loose VALUES ('three');",
    )
    .unwrap();
}

#[tokio::test]
async fn against_live_a_local_backup_matches_its_source_and_leaves_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tricky.sqlite");
    tricky_database(&db);
    let (engine, sink) = local_engine(
        dir.path(),
        r#"{ name = "tricky", sqlite = "tricky.sqlite" }"#,
        "",
    );
    run(&engine, RunOptions::new(date())).await;
    let scratch = tempfile::tempdir().unwrap();
    let results = engine
        .verify(&VerifyOptions::new(scratch.path()).against_live(true))
        .await
        .unwrap();
    let v = &results[0];
    assert!(v.ok, "{v:#?}");
    let live = v.live.as_ref().unwrap();
    assert!(!live.moved_on, "{live:#?}");
    let names: Vec<&str> = live.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, ["kv", "loose", "t"]);
    for t in &live.tables {
        assert_eq!(t.differences, 0, "{t:?}");
        assert_eq!(t.backup_fingerprint, t.live_fingerprint, "{t:?}");
        assert!(t.live_rows.unwrap() > 0);
    }
    // The record beside the manifest says what was proven.
    let key = v.record.as_deref().unwrap();
    assert_eq!(key, "local/2026-11-30/tricky.verification.json");
    let record: serde_json::Value =
        serde_json::from_slice(&read(sink.as_ref(), key).await).unwrap();
    assert_eq!(record["kind"], "d1-backup-verification");
    assert_eq!(record["ok"], true);
    assert_eq!(record["live_matches"], true);
    assert_eq!(record["tables"]["t"], 3);
    // `list` still sees one complete backup, and the record is not taken for a dump.
    let listed = engine.list_backups(&[]).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(listed[0].complete);
    assert_eq!(
        listed[0].key.as_deref(),
        Some("local/2026-11-30/tricky.sql")
    );
    assert_eq!(listed[0].verified, Some(true));

    // The source changes after the backup: differences are reported, not failed.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("UPDATE t SET txt = 'changed' WHERE id = 2; INSERT INTO t (id) VALUES (9);")
        .unwrap();
    drop(conn);
    let results = engine
        .verify(&VerifyOptions::new(scratch.path()).against_live(true))
        .await
        .unwrap();
    let v = &results[0];
    assert!(v.ok, "{v:#?}");
    let live = v.live.as_ref().unwrap();
    assert!(live.moved_on);
    let t = live.tables.iter().find(|t| t.table == "t").unwrap();
    assert_eq!(
        (t.backup_rows, t.live_rows, t.differences),
        (Some(3), Some(4), 2)
    );
    let kinds: Vec<(String, Option<String>, Option<String>)> = live
        .findings
        .iter()
        .map(|f| {
            (
                serde_json::to_value(f.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                f.column.clone(),
                f.row.clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "value".to_owned(),
                Some("txt".to_owned()),
                Some("id=2".to_owned())
            ),
            ("missing_row".to_owned(), None, Some("id=9".to_owned())),
        ]
    );
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("changed since the backup")),
        "{:?}",
        v.notes
    );
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_backup_that_differs_from_an_unchanged_source_fails_naming_table_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tricky.sqlite");
    tricky_database(&db);
    let (engine, sink) = local_engine(
        dir.path(),
        r#"{ name = "tricky", sqlite = "tricky.sqlite" }"#,
        "",
    );
    run(&engine, RunOptions::new(date())).await;
    // Corrupt the stored dump the way exports do (rounded big integer, altered blob), and
    // give it a matching manifest so only the comparison can tell.
    let key = "local/2026-11-30/tricky.sql";
    let sql = String::from_utf8(read(sink.as_ref(), key).await).unwrap();
    let altered = sql
        .replace("9007199254740993", "9007199254740992")
        .replace("X'00ff'", "X'00fe'")
        .replace("('b',2)", "('b',2.0)");
    assert_ne!(sql, altered);
    let body = futures::stream::iter([Ok(bytes::Bytes::from(altered.clone()))]).boxed();
    sink.put_stream(key, body, PutOptions::default())
        .await
        .unwrap();
    let manifest_key = "local/2026-11-30/tricky.manifest.json";
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&read(sink.as_ref(), manifest_key).await).unwrap();
    manifest["dump"]["bytes"] = altered.len().into();
    manifest["dump"]["sha256"] = sha256_hex(altered.as_bytes()).into();
    manifest["started_at"] = "2999-01-01T00:00:00Z".into(); // the source has not changed since
    let body = futures::stream::iter([Ok(bytes::Bytes::from(
        serde_json::to_vec(&manifest).unwrap(),
    ))])
    .boxed();
    sink.put_stream(manifest_key, body, PutOptions::default())
        .await
        .unwrap();

    let scratch = tempfile::tempdir().unwrap();
    let v = &engine
        .verify(&VerifyOptions::new(scratch.path()).against_live(true))
        .await
        .unwrap()[0];
    assert!(!v.ok);
    let live = v.live.as_ref().unwrap();
    let found: Vec<(String, &str, &str)> = live
        .findings
        .iter()
        .map(|f| {
            (
                serde_json::to_value(f.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                f.column.as_deref().unwrap_or(""),
                f.row.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        found.contains(&("rounded_integer".to_owned(), "big", "id=1")),
        "{found:?}"
    );
    assert!(
        found.contains(&("blob_bytes".to_owned(), "b", "id=1")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(k, c, _)| k == "storage_class" && *c == "v"),
        "{found:?}"
    );
    let problems = v.problems.join("\n");
    assert!(problems.contains("t.big at id=1"), "{problems}");
    assert!(
        problems.contains("TEXT"),
        "the advice says what to do: {problems}"
    );
    // The failed verification is recorded, and a rerun backs the database up again.
    let record: serde_json::Value = serde_json::from_slice(
        &read(sink.as_ref(), "local/2026-11-30/tricky.verification.json").await,
    )
    .unwrap();
    assert_eq!(record["ok"], false);
    assert_eq!(record["defective"], true);
    let report = run(&engine, RunOptions::new(date())).await;
    assert_eq!(
        report.databases[0].status,
        d1_backup_core::Status::Ok,
        "{report:#?}"
    );
    assert_ne!(
        read(sink.as_ref(), key).await,
        altered.as_bytes(),
        "backed up again"
    );
}

#[tokio::test]
async fn run_verify_proves_each_new_backup_and_fails_one_that_does_not_restore() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 50));
    let mut bad = b"PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE n (v REAL);\n".to_vec();
    bad.extend_from_slice(b"INSERT INTO \"n\" (\"v\") VALUES(Infinity);");
    let bad_uuid = sim.add_database(RTO, "rto-ops-db", bad);
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-ops-db""#);
    let engine = engine(&text, Some(sink.clone()));
    let scratch = tempfile::tempdir().unwrap();
    let options = RunOptions::new(date()).verify(VerifyOptions::new(scratch.path()));
    let report = run(&engine, options.clone()).await;
    let ops = &report.databases[0];
    assert_eq!(
        (ops.status, ops.verified),
        (d1_backup_core::Status::Ok, Some(true)),
        "{ops:#?}"
    );
    let rto = &report.databases[1];
    assert_eq!(
        (rto.status, rto.verified),
        (d1_backup_core::Status::Failed, Some(false))
    );
    let error = rto.error.as_deref().unwrap();
    assert!(
        error.contains("does not verify") && error.contains("Infinity"),
        "{error}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["databases"][0]["verified"], true);
    // The stored backup is kept (it is all there is), and the next run makes it again.
    assert!(
        keys(sink.as_ref(), "rtopacks")
            .await
            .iter()
            .any(|k| k.ends_with("rto-ops-db.sql"))
    );
    run(&engine, options).await;
    assert_eq!(sim.exports_started(&bad_uuid), 2);
    // Without --verify the report has no `verified` field at all (the contract is unchanged).
    let plain = run(&engine, RunOptions::new(date())).await;
    assert!(
        serde_json::to_value(&plain).unwrap()["databases"][0]
            .get("verified")
            .is_none()
    );
}

/// A D1 database `name` backed by `db` (and a second, fixed one), backed up once.
async fn backed_d1(
    name: &str,
    db: Arc<d1_backup_core::testing::SqliteD1>,
) -> (d1_export::testing::D1Simulator, d1_backup_core::Engine) {
    let sim = simulator().await;
    sim.add_backed_database(UCCA, name, db);
    sim.add_database(RTO, "rto-ops-db", dump("rto-ops-db", 3));
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let text = config_text(&sim, UNUSED_SINK, &format!("{name:?}"), r#""rto-ops-db""#);
    let engine = engine(&text, Some(sink));
    run(&engine, RunOptions::new(date())).await;
    (sim, engine)
}

fn kinds(live: &d1_backup_core::LiveComparison) -> Vec<(String, String, String)> {
    live.findings
        .iter()
        .map(|f| {
            (
                serde_json::to_value(f.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                f.column.clone().unwrap_or_default(),
                f.row.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn against_live_d1_through_the_query_api_exactly_and_with_bookmarks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tricky.sqlite");
    tricky_database(&path);
    let db = Arc::new(d1_backup_core::testing::SqliteD1::open(&path).unwrap());
    let (_sim, engine) = backed_d1("tricky", db.clone()).await;
    let scratch = tempfile::tempdir().unwrap();
    let only = |name: &str| {
        VerifyOptions::new(scratch.path())
            .only([name.parse().unwrap()])
            .against_live(true)
    };

    let v = &engine.verify(&only("tricky")).await.unwrap()[0];
    assert!(v.ok, "{v:#?}");
    let live = v.live.as_ref().unwrap();
    assert!(!live.moved_on);
    assert_eq!(live.backup_bookmark, live.live_bookmark);
    assert!(
        live.tables
            .iter()
            .all(|t| t.differences == 0 && t.live_rows.is_some()),
        "{live:#?}"
    );
    // Exactly: a big integer, -0.0 and blobs cross the JSON API intact.
    let t = live.tables.iter().find(|t| t.table == "t").unwrap();
    assert_eq!(t.backup_fingerprint, t.live_fingerprint);

    // The live database moves on: its bookmark changes, differences become notes.
    d1_export::testing::SimulatedDatabase::query(&*db, "UPDATE t SET big = 7 WHERE id = 1", &[])
        .unwrap();
    let v = &engine.verify(&only("tricky")).await.unwrap()[0];
    assert!(v.ok, "{v:#?}");
    let live = v.live.as_ref().unwrap();
    assert!(live.moved_on);
    assert_ne!(live.backup_bookmark, live.live_bookmark);
    assert_eq!(
        kinds(live),
        [("value".to_owned(), "big".to_owned(), "id=1".to_owned())]
    );
    assert!(!live.findings[0].fails);
}

#[tokio::test]
async fn against_live_flags_what_a_lossy_export_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tricky.sqlite");
    tricky_database(&path);
    // What D1's export writes for this database: big integers through a double, integral
    // reals without their `.0`.
    let mut exact = Vec::new();
    d1_backup_core::sqlite::dump_sqlite(
        &path,
        &d1_backup_core::sqlite::SqliteDumpOptions::default(),
        &mut exact,
    )
    .unwrap();
    let lossy = String::from_utf8(exact)
        .unwrap()
        .replace("9007199254740993", "9007199254740992")
        .replace("-9223372036854775808", "-9223372036854776000")
        .replace(",3.0,", ",3,");
    let db = Arc::new(
        d1_backup_core::testing::SqliteD1::open(&path)
            .unwrap()
            .with_export_override(lossy),
    );
    let (_sim, engine) = backed_d1("tricky", db).await;
    let scratch = tempfile::tempdir().unwrap();
    let options = VerifyOptions::new(scratch.path()).only(["tricky".parse().unwrap()]);

    // Without the live database the dump looks fine: it restores and checks out.
    let v = &engine.verify(&options).await.unwrap()[0];
    assert!(v.ok, "{v:#?}");
    // Against it, every rounded value is named.
    let v = &engine
        .verify(&options.clone().against_live(true))
        .await
        .unwrap()[0];
    assert!(!v.ok);
    let found = kinds(v.live.as_ref().unwrap());
    for expected in [
        ("rounded_integer", "big", "id=1"),
        ("rounded_integer", "big", "id=2"),
        ("storage_class", "u", "id=1"),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
        );
        assert!(found.contains(&expected), "{expected:?} in {found:?}");
    }
    assert!(v.problems.iter().any(|p| p.contains("rounded integer: t.big at id=2 (backup REAL -9.223372036854776e18, live INTEGER -9223372036854775808)")), "{:#?}", v.problems);
}

/// The real thing: wrangler's own export of the `numbers` fixture (lossy as D1's is), served
/// for a D1 database whose live content is the fixture's `local.sqlite`.
#[tokio::test]
async fn against_live_names_every_cell_the_real_export_got_wrong() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrangler/numbers");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numbers.sqlite");
    std::fs::copy(fixture.join("local.sqlite"), &path).unwrap();
    let export = std::fs::read(fixture.join("export.sql")).unwrap();
    let db = Arc::new(
        d1_backup_core::testing::SqliteD1::open(&path)
            .unwrap()
            .with_export_override(export),
    );
    let (_sim, engine) = backed_d1("numbers", db).await;
    let scratch = tempfile::tempdir().unwrap();
    let options = VerifyOptions::new(scratch.path())
        .only(["numbers".parse().unwrap()])
        .against_live(true);
    let v = &engine.verify(&options).await.unwrap()[0];
    assert!(!v.ok && v.defective);
    // The two rows STRICT refuses are named by line, and the restore went on.
    let problems = v.problems.join("\n");
    assert!(
        problems.contains("line 82") && problems.contains("line 83"),
        "{problems}"
    );
    assert!(
        problems.contains("cannot store REAL value in INTEGER column strict_any.i"),
        "{problems}"
    );
    // Every cell the notes list, with its table, column and row key.
    let found = kinds(v.live.as_ref().unwrap());
    let expected = [
        ("rounded_integer", "v", "ints", "id=9"),
        ("rounded_integer", "v", "ints", "id=12"),
        ("rounded_integer", "v", "ints", "id=13"),
        ("rounded_integer", "v", "ints", "id=14"),
        ("rounded_integer", "v", "ints", "id=15"),
        ("rounded_integer", "v", "ints", "id=16"),
        ("rounded_integer", "v", "ints", "id=17"),
        ("rounded_integer", "v", "ints", "id=19"),
        ("rounded_integer", "a", "dynamic", "id=9"),
        ("rounded_integer", "n", "dynamic", "id=9"),
        ("rounded_integer", "u", "dynamic", "id=9"),
        ("rounded_integer", "a", "dynamic", "id=12"),
        ("rounded_integer", "n", "dynamic", "id=12"),
        ("storage_class", "u", "dynamic", "id=3"),
        ("storage_class", "u", "dynamic", "id=10"),
        ("storage_class", "v", "strict_any", "id=1"),
        ("missing_row", "", "strict_any", "id=6"),
        ("missing_row", "", "strict_any", "id=7"),
    ];
    let live = v.live.as_ref().unwrap();
    let with_table: Vec<(String, String, String, String)> = live
        .findings
        .iter()
        .map(|f| {
            (
                serde_json::to_value(f.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                f.column.clone().unwrap_or_default(),
                f.table.clone(),
                f.row.clone().unwrap_or_default(),
            )
        })
        .collect();
    for (kind, column, table, row) in expected {
        let e = (
            kind.to_owned(),
            column.to_owned(),
            table.to_owned(),
            row.to_owned(),
        );
        assert!(with_table.contains(&e), "{e:?} not in {with_table:#?}");
    }
    assert_eq!(
        with_table.len(),
        expected.len(),
        "nothing else differs: {found:#?}"
    );
}
