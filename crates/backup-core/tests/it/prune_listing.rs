//! Prune and list decide from object listings (issue 15, item 3): the decisions on a varied
//! bucket, and the reads they cost, counted by a sink wrapper.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use d1_backup_core::chrono::NaiveDate;
use d1_backup_core::{Action, ListDetail, PruneMode, PruneOptions};
use futures::StreamExt;
use futures::stream::BoxStream;
use r2_sink::{BackupSink, ByteStream, ObjectInfo, ObjectStoreSink, PutOptions, PutReceipt};

use crate::support::*;

/// Forwards to a sink and counts list calls, gets and heads.
#[derive(Debug)]
struct Counting {
    inner: ObjectStoreSink,
    lists: AtomicU64,
    gets: AtomicU64,
    heads: AtomicU64,
}

impl Counting {
    fn reads(&self) -> (u64, u64, u64) {
        let n = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
        (n(&self.lists), n(&self.gets), n(&self.heads))
    }
}

#[async_trait]
impl BackupSink for Counting {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> r2_sink::Result<PutReceipt> {
        self.inner.put_stream(key, body, options).await
    }
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> r2_sink::Result<ByteStream> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key, range).await
    }
    async fn head(&self, key: &str) -> r2_sink::Result<Option<ObjectInfo>> {
        self.heads.fetch_add(1, Ordering::Relaxed);
        self.inner.head(key).await
    }
    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, r2_sink::Result<ObjectInfo>> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix)
    }
    async fn delete_many(&self, keys: &[String]) -> r2_sink::Result<()> {
        self.inner.delete_many(keys).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        body: Bytes,
        options: PutOptions,
    ) -> r2_sink::Result<bool> {
        self.inner.put_if_absent(key, body, options).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

const CONFIG: &str = r#"
[sink]
kind = "fs"
path = "/nonexistent-unused"

[retention]
keep_days = 3
min_keep = 3
prune_after_run = false

[[accounts]]
name = "ucca"
account_id = "e5a9830215a8d88961dc6c80a8c7442a"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = ["ops-db", "plain-db"]

[[accounts]]
name = "rtopacks"
account_id = "f95d45376ebeeeaf011a4f0ec0fb7b38"
token_env = "RTO_API_TOKEN"
prefix = "rtopacks"
databases = ["rto-x"]
"#;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
}

fn sha(key: &str) -> String {
    format!("{:064x}", key.len())
}

async fn put(sink: &dyn BackupSink, key: &str, body: Vec<u8>) {
    let body = futures::stream::iter([Ok(Bytes::from(body))]).boxed();
    sink.put_stream(key, body, PutOptions::default())
        .await
        .unwrap();
}

/// A dump of `len` bytes at `key`.
async fn dump_of(sink: &dyn BackupSink, key: &str, len: usize) {
    put(sink, key, vec![b'-'; len]).await;
}

/// The manifest of `db` on day `d`, naming `key` with `bytes`.
async fn manifest(sink: &dyn BackupSink, db: &str, d: u32, key: &str, bytes: usize) {
    let date = day(d);
    let sha = sha(key);
    let json = format!(
        r#"{{"kind":"d1-backup-manifest","version":1,"tool":"test","account":"ucca","account_id":null,
"database":{{"name":"{db}","uuid":null,"bookmark":null,"sqlite":null}},"date":"{date}",
"started_at":"{date}T03:00:00Z","finished_at":"{date}T03:00:01Z",
"dump":{{"key":"{key}","bytes":{bytes},"sha256":"{sha}","compression":"none","sql_bytes":{bytes},"sql_sha256":"{sha}"}}}}"#
    );
    put(
        sink,
        &format!("d1/{date}/{db}.manifest.json"),
        json.into_bytes(),
    )
    .await;
}

/// A verification record of `db` on day `d` about the dump at `key`.
async fn verification(sink: &dyn BackupSink, db: &str, d: u32, key: &str, ok: bool) {
    let date = day(d);
    let json = format!(
        r#"{{"kind":"d1-backup-verification","version":1,"tool":"test","verified_at":"{date}T05:00:00Z",
"account":"ucca","database":"{db}","date":"{date}","key":"{key}","sha256":"{}","ok":{ok},"defective":{}}}"#,
        sha(key),
        !ok
    );
    put(
        sink,
        &format!("d1/{date}/{db}.verification.json"),
        json.into_bytes(),
    )
    .await;
}

/// A complete backup of `db` on day `d`: the dump, then its manifest.
async fn complete(sink: &dyn BackupSink, db: &str, d: u32) -> String {
    let key = format!("d1/{}/{db}.sql", day(d));
    dump_of(sink, &key, 100 + d as usize).await;
    manifest(sink, db, d, &key, 100 + d as usize).await;
    key
}

/// ops-db: every case the listing meets; plain-db: 20 complete days and nothing else.
async fn fixture(sink: &dyn BackupSink) {
    let k = complete(sink, "ops-db", 20).await;
    verification(sink, "ops-db", 20, &k, false).await; // defective: not counted by min_keep
    dump_of(sink, "d1/2026-01-19/ops-db.sql", 50).await; // no manifest yet, recent
    let k = complete(sink, "ops-db", 18).await;
    verification(sink, "ops-db", 18, &k, true).await;
    manifest(sink, "ops-db", 17, "d1/2026-01-17/ops-db.sql", 117).await; // no dump
    // A dump rewritten after its manifest, with another size: the manifest is read.
    manifest(sink, "ops-db", 16, "d1/2026-01-16/ops-db.sql", 116).await;
    dump_of(sink, "d1/2026-01-16/ops-db.sql", 7).await;
    complete(sink, "ops-db", 15).await;
    // Two dumps (the compression changed): the manifest says which one is the backup.
    dump_of(sink, "d1/2026-01-14/ops-db.sql.gz", 30).await;
    complete(sink, "ops-db", 14).await;
    complete(sink, "ops-db", 12).await;
    complete(sink, "ops-db", 10).await;
    dump_of(sink, "d1/2026-01-08/ops-db.sql", 9).await; // an old leftover
    for d in 1..=20 {
        complete(sink, "plain-db", d).await;
    }
    // Not ours: never listed as a backup, never deleted.
    put(sink, "d1/2026-01-10/stranger.txt", b"x".to_vec()).await;
    put(
        sink,
        "d1/_leases/ops-db/00000000000000000001.json",
        b"{}".to_vec(),
    )
    .await;
}

fn counting() -> Arc<Counting> {
    Arc::new(Counting {
        inner: ObjectStoreSink::memory(),
        lists: AtomicU64::new(0),
        gets: AtomicU64::new(0),
        heads: AtomicU64::new(0),
    })
}

#[tokio::test]
async fn prune_decides_from_the_listing_as_it_did_from_every_manifest() {
    let sink = counting();
    fixture(sink.as_ref()).await;
    let engine = engine(CONFIG, Some(sink.clone()));
    sink.reads();
    let today = day(20);
    let report = engine
        .prune(&PruneOptions::new(today).mode(PruneMode::DryRun))
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let ops: Vec<(u32, Action, &str, Vec<&str>)> = report
        .decisions
        .iter()
        .filter(|d| d.database == "ops-db")
        .map(|d| {
            let reason = d.reason.split([' ', ':']).next().unwrap_or("");
            let keys = d
                .keys
                .iter()
                .map(|k| k.rsplit('/').next().unwrap())
                .collect();
            (
                d.date.format("%d").to_string().parse().unwrap(),
                d.action,
                reason,
                keys,
            )
        })
        .collect();
    let (keep, delete) = (Action::Keep, Action::Delete);
    let all = |s: &'static str| vec!["ops-db.manifest.json", "ops-db.sql", s];
    let two = || vec!["ops-db.manifest.json", "ops-db.sql"];
    let expected = vec![
        (8, delete, "incomplete", vec!["ops-db.sql"]),
        (10, delete, "expired", two()),
        (12, delete, "expired", two()),
        (14, keep, "one", two()), // min_keep: 18, 15, 14 (20 is defective)
        (14, delete, "stale", vec!["ops-db.sql.gz"]),
        (15, keep, "one", two()),
        (16, delete, "incomplete", two()),
        (17, delete, "incomplete", vec!["ops-db.manifest.json"]),
        (18, keep, "one", all("ops-db.verification.json")),
        (19, keep, "incomplete,", vec!["ops-db.sql"]),
        (20, keep, "within", all("ops-db.verification.json")),
    ];
    assert_eq!(ops, expected);
    let plain = report.decisions.iter().filter(|d| d.database == "plain-db");
    let kept: Vec<u32> = plain
        .filter(|d| d.action == Action::Keep)
        .map(|d| d.date.format("%d").to_string().parse().unwrap())
        .collect();
    assert_eq!(kept, [18, 19, 20]);
    // Two lists (one per account); reads only where the listing cannot decide: the manifests
    // of the 16th (dump newer) and the 14th (two dumps), and for min_keep the records of the
    // 20th and 18th with their manifests. None for plain-db's 20 backups.
    assert_eq!(sink.reads(), (2, 6, 0));
}

#[tokio::test]
async fn list_reads_no_manifest_per_backup_unless_asked() {
    let sink = counting();
    fixture(sink.as_ref()).await;
    let engine = engine(CONFIG, Some(sink.clone()));
    sink.reads();
    let fast = engine.list_backups(&[]).await.unwrap();
    // The two undecided manifests, and the two records with their manifests.
    assert_eq!(sink.reads(), (2, 6, 0));
    let full = engine
        .list_backups_with(&[], ListDetail::Manifests)
        .await
        .unwrap();
    let complete = full.iter().filter(|b| b.complete).count();
    assert_eq!(complete, 6 + 20);
    assert!(
        full.iter()
            .filter(|b| b.complete)
            .all(|b| b.sha256.is_some())
    );
    assert_eq!(fast.len(), full.len());
    for (a, b) in fast.iter().zip(&full) {
        let strip = |l: &d1_backup_core::BackupListing| {
            let mut l = l.clone();
            l.sha256 = None;
            format!("{l:?}")
        };
        assert_eq!(strip(a), strip(b));
    }
    let verified: Vec<_> = fast
        .iter()
        .filter_map(|b| b.verified.map(|v| (b.date.to_string(), v)))
        .collect();
    assert_eq!(
        verified,
        [
            ("2026-01-18".to_owned(), true),
            ("2026-01-20".to_owned(), false)
        ]
    );
    let stale = fast
        .iter()
        .find(|b| b.date == day(14) && b.database == "ops-db");
    assert_eq!(
        stale.and_then(|b| b.key.as_deref()),
        Some("d1/2026-01-14/ops-db.sql")
    );
}
