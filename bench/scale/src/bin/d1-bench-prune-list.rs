//! `d1-bench-prune-list`: what `prune --dry-run` and `list` cost over many backups (issue 15,
//! item 3; see `bench/README.md`).
//!
//! Starts `r2_sink::testing::S3TestServer` (s3s-fs in-process), fills its data directory
//! directly (much faster than 70,000 PUTs; s3s-fs serves plain files) with `--databases`
//! databases × `--days` days of small dumps and manifests, and verification records for some
//! (every 20th database: its newest 3 days verified ok; every 100th: its newest day
//! defective), then times `Engine::prune` (dry run) and `Engine::list_backups` through a sink
//! wrapper that counts calls and listed objects, then `Engine::list_backups_with(…,
//! ListDetail::Manifests)` (what `list --json` reads). It prints a fingerprint of the
//! decisions and of each listing, so two builds can be shown to decide the same (the
//! build before issue 15 has no `ListDetail`: its `list` read every manifest, like
//! `list --json` now).
//!
//! With `--store memory` the same objects go into an in-memory store instead (object_store's
//! `InMemory`, which lists without rescanning a directory tree), and `--latency-ms N` adds N ms
//! to every read and to every page of 1,000 listed keys, a model of a remote store's round
//! trip (R2 over the internet): then the wall time is the tool's own cost plus its requests
//! times the round trip, not the in-process S3 server's directory walks.
//!
//! With `--store url --endpoint URL [--bucket B]` the objects go by PUT (64 at a time) into an
//! S3 server started outside the bench (`moto_server`, the `s3s-fs` binary), which must have
//! the bucket; the keys come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. The bucket must
//! hold nothing else under `acct*/`. A bare listing of every account's folder is timed first,
//! as the floor `prune` and `list` cannot go under on that server.
//!
//! ```text
//! d1-bench-prune-list [--databases 1000] [--days 35] [--accounts 1] [--store s3|memory|url]
//!                     [--endpoint URL] [--bucket bench] [--latency-ms 0]
//! ```

#[path = "../counting.rs"]
mod counting;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use counting::{Calls, Counting, Snapshot};
use d1_backup_core::{Config, Engine, ListDetail, PruneMode, PruneOptions, Secrets, StatusOptions};
use r2_sink::testing::S3TestServer;
use r2_sink::{BackupSink, ObjectStoreSink, PutOptions};

#[path = "../delayed.rs"]
mod delayed;
use bytes::Bytes;
use delayed::Delayed;
use futures::{StreamExt, TryStreamExt};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Settings {
    databases: usize,
    days: i64,
    accounts: usize,
    /// `s3` (the in-process s3s-fs server) or `memory`.
    store: String,
    /// Added to every read and every listed page.
    latency_ms: u64,
    /// With `--store url`: an S3 endpoint started by hand (moto, s3s-fs's binary, MinIO),
    /// its bucket (created if missing), and its keys from `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` (default `bench`/`bench`).
    endpoint: String,
    bucket: String,
}

fn parse_args() -> BoxResult<Settings> {
    let mut s = Settings {
        databases: 1000,
        days: 35,
        accounts: 1,
        store: "s3".to_owned(),
        latency_ms: 0,
        endpoint: String::new(),
        bucket: "bench".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--databases" => s.databases = value.parse()?,
            "--days" => s.days = value.parse()?,
            "--accounts" => s.accounts = value.parse()?,
            "--store" if ["s3", "memory", "url"].contains(&value.as_str()) => s.store = value,
            "--endpoint" => s.endpoint = value,
            "--bucket" => s.bucket = value,
            "--latency-ms" => s.latency_ms = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(s)
}

fn db_name(i: usize) -> String {
    format!("tenant-{i:05}")
}

fn manifest(account: &str, db: &str, date: NaiveDate, key: &str, bytes: usize) -> String {
    let sha = format!(
        "{:064x}",
        bytes as u64 * 7919 + date.to_string().len() as u64
    );
    format!(
        r#"{{"kind":"d1-backup-manifest","version":1,"tool":"d1-backup bench","account":"{account}","account_id":null,
"database":{{"name":"{db}","uuid":null,"bookmark":null,"sqlite":null}},"date":"{date}",
"started_at":"{date}T03:00:00Z","finished_at":"{date}T03:00:01Z",
"dump":{{"key":"{key}","bytes":{bytes},"sha256":"{sha}","compression":"none","sql_bytes":{bytes},"sql_sha256":"{sha}"}}}}
"#
    )
}

fn verification(
    account: &str,
    db: &str,
    date: NaiveDate,
    key: &str,
    bytes: usize,
    ok: bool,
) -> String {
    let sha = format!(
        "{:064x}",
        bytes as u64 * 7919 + date.to_string().len() as u64
    );
    format!(
        r#"{{"kind":"d1-backup-verification","version":1,"tool":"d1-backup bench","verified_at":"{date}T05:00:00Z",
"account":"{account}","database":"{db}","date":"{date}","key":"{key}","sha256":"{sha}","ok":{ok},"defective":{}}}
"#,
        !ok
    )
}

/// Writes `key` as a file under `root` (s3s-fs serves plain files).
fn write_file(root: &Path, key: &str, body: &[u8]) -> std::io::Result<()> {
    let path = root.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, body)
}

/// Fills the bucket through `write`, dumps before their manifests (as runs write them);
/// returns the number of objects written.
fn fill(
    s: &Settings,
    today: NaiveDate,
    mut write: impl FnMut(&str, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    let mut objects = 0;
    for i in 0..s.databases {
        let account = format!("acct{}", i % s.accounts);
        let db = db_name(i);
        for back in 0..s.days {
            let date = today - Duration::days(back);
            let key = format!("{account}/{date}/{db}.sql");
            let bytes = 200 + (i * 37 + back as usize * 11) % 600;
            write(&key, &vec![b'-'; bytes])?;
            let m = manifest(&account, &db, date, &key, bytes);
            write(
                &format!("{account}/{date}/{db}.manifest.json"),
                m.as_bytes(),
            )?;
            objects += 2;
            let verified_ok = i % 20 == 0 && back < 3;
            let defective = i % 100 == 7 && back == 0;
            if verified_ok || defective {
                let v = verification(&account, &db, date, &key, bytes, verified_ok);
                write(
                    &format!("{account}/{date}/{db}.verification.json"),
                    v.as_bytes(),
                )?;
                objects += 1;
            }
        }
    }
    Ok(objects)
}

fn config_text(s: &Settings) -> String {
    let mut text = String::from(
        "[sink]\nkind = \"fs\"\npath = \"unused\"  # the bench passes its own sink\n\n\
         [retention]\nkeep_days = 30\nmin_keep = 3\nprune_after_run = false\n\n",
    );
    for a in 0..s.accounts {
        let names: Vec<String> = (0..s.databases)
            .filter(|i| i % s.accounts == a)
            .map(|i| format!("\"{}\"", db_name(i)))
            .collect();
        text.push_str(&format!(
            "[[accounts]]\nname = \"acct{a}\"\naccount_id = \"{a:032x}\"\ntoken_env = \"TOKEN_{a}\"\nprefix = \"acct{a}\"\ndatabases = [{}]\n\n",
            names.join(", ")
        ));
    }
    text
}

/// An S3 sink on the server at `--endpoint` (plain HTTP allowed, region us-east-1).
fn url_sink(s: &Settings) -> BoxResult<ObjectStoreSink> {
    if s.endpoint.is_empty() {
        return Err("--store url needs --endpoint URL".into());
    }
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "bench".to_owned());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "bench".to_owned());
    let options = r2_sink::S3Options::new(
        &s.endpoint,
        &s.bucket,
        r2_sink::Credentials::new(key, secret),
    )
    .allow_http(r2_sink::AllowHttp::Yes);
    Ok(ObjectStoreSink::s3(options)?)
}

fn fingerprint(items: impl Iterator<Item = String>) -> (usize, u64) {
    let mut hasher = DefaultHasher::new();
    let mut n = 0;
    for item in items {
        item.hash(&mut hasher);
        n += 1;
    }
    (n, hasher.finish())
}

fn row(what: &str, secs: f64, c: Snapshot, fp: (usize, u64)) {
    // object_store lists 1,000 keys a page; a list call costs at least one request.
    let pages = c.listed.div_ceil(1000).max(c.lists);
    println!(
        "| {what} | {secs:.2} s | {} | {} list calls, {} objects listed (≈ {pages} pages), {} gets, {} heads | {} items, fingerprint {:016x} |",
        pages + c.gets + c.heads,
        c.lists,
        c.listed,
        c.gets,
        c.heads,
        fp.0,
        fp.1
    );
}

#[tokio::main]
async fn main() -> BoxResult<()> {
    let s = parse_args()?;
    let today = NaiveDate::from_ymd_opt(2026, 12, 6).ok_or("date")?;
    let started = Instant::now();
    let (store, objects, _server): (Arc<dyn BackupSink>, usize, Option<S3TestServer>) = if s.store
        == "memory"
    {
        let sink = ObjectStoreSink::memory();
        let mut bodies = Vec::new();
        let objects = fill(&s, today, |key, body| {
            bodies.push((key.to_owned(), Bytes::copy_from_slice(body)));
            Ok(())
        })?;
        for (key, body) in bodies {
            sink.put_if_absent(&key, body, PutOptions::default())
                .await?;
        }
        (Arc::new(sink), objects, None)
    } else if s.store == "url" {
        let sink = url_sink(&s)?;
        let mut bodies = Vec::new();
        let objects = fill(&s, today, |key, body| {
            bodies.push((key.to_owned(), Bytes::copy_from_slice(body)));
            Ok(())
        })?;
        let existing = sink.list("acct").try_collect::<Vec<_>>().await?.len();
        if existing == 0 {
            // Dumps first, then manifests and records, as runs write them: a listing showing
            // a dump newer than its manifest makes the catalog read the manifest.
            let (dumps, rest): (Vec<_>, Vec<_>) = bodies
                .into_iter()
                .partition(|(key, _)| key.ends_with(".sql"));
            for phase in [dumps, rest] {
                futures::stream::iter(phase)
                    .map(|(key, body)| {
                        let sink = &sink;
                        async move { sink.put_if_absent(&key, body, PutOptions::default()).await }
                    })
                    .buffer_unordered(64)
                    .try_collect::<Vec<_>>()
                    .await?;
            }
        } else if existing != objects {
            return Err(format!("the bucket holds {existing} objects under acct*, not the {objects} this fixture has: empty it first").into());
        }
        (Arc::new(sink), objects, None)
    } else {
        let server = S3TestServer::start().await?;
        let root = server.data_dir().join(S3TestServer::BUCKET);
        let objects = fill(&s, today, |key, body| write_file(&root, key, body))?;
        (Arc::new(server.sink()?), objects, Some(server))
    };
    println!(
        "# d1-bench-prune-list: {} databases × {} days, {} accounts, {objects} objects in {} (filled in {:.1} s), {} ms per read and per listed page, today {today}, keep_days 30, min_keep 3",
        s.databases,
        s.days,
        s.accounts,
        s.store,
        started.elapsed().as_secs_f64(),
        s.latency_ms
    );
    let calls = Arc::new(Calls::default());
    let sink = Arc::new(Counting {
        inner: Delayed {
            inner: store,
            latency: std::time::Duration::from_millis(s.latency_ms),
        },
        calls: Arc::clone(&calls),
    });
    let config = Config::from_toml(&config_text(&s), Path::new("bench-prune-list.toml"))?;
    let secrets =
        Secrets::from_pairs((0..s.accounts).map(|a| (format!("TOKEN_{a}"), format!("token-{a}"))));
    let engine = Engine::builder(config, secrets)
        .sink(Arc::clone(&sink) as Arc<dyn BackupSink>)
        .owner("bench-prune-list")
        .build()?;
    println!("\n| command | wall | requests | calls | result |\n|---|---|---|---|---|");

    // The floor: one bare listing of every account's folder, nothing read.
    let before = calls.snapshot();
    let t = Instant::now();
    let mut keys = Vec::new();
    for a in 0..s.accounts {
        let listed: Vec<_> = sink.list(&format!("acct{a}/")).try_collect().await?;
        keys.extend(listed.into_iter().map(|o| o.key));
    }
    let secs = t.elapsed().as_secs_f64();
    row(
        "bare listing",
        secs,
        calls.snapshot() - before,
        fingerprint(keys.into_iter()),
    );

    let before = calls.snapshot();
    let t = Instant::now();
    let report = engine
        .prune(&PruneOptions::new(today).mode(PruneMode::DryRun))
        .await?;
    let secs = t.elapsed().as_secs_f64();
    if !report.errors.is_empty() {
        return Err(format!("prune errors: {:?}", report.errors).into());
    }
    let fp = fingerprint(report.decisions.iter().map(|d| format!("{d:?}")));
    row("prune --dry-run", secs, calls.snapshot() - before, fp);

    let before = calls.snapshot();
    let t = Instant::now();
    let listing = engine.list_backups(&[]).await?;
    let secs = t.elapsed().as_secs_f64();
    let fp = fingerprint(listing.iter().map(|l| format!("{l:?}")));
    row("list", secs, calls.snapshot() - before, fp);

    // What `status` reads (issue 17): the same listings, plus the verification record (and
    // manifest) of each database's newest backup where one exists.
    let before = calls.snapshot();
    let t = Instant::now();
    let status = engine.status(&StatusOptions::new()).await?;
    let secs = t.elapsed().as_secs_f64();
    let fp = fingerprint(
        status
            .databases
            .iter()
            .map(|d| format!("{:?} {:?} {:?}", d.name, d.newest_date, d.verified)),
    );
    row("status", secs, calls.snapshot() - before, fp);

    // What `list --json` reads: every complete backup's manifest, for `sha256`. Its
    // fingerprint is comparable with `list` before issue 15, which always read them.
    let before = calls.snapshot();
    let t = Instant::now();
    let listing = engine.list_backups_with(&[], ListDetail::Manifests).await?;
    let secs = t.elapsed().as_secs_f64();
    let fp = fingerprint(listing.iter().map(|l| format!("{l:?}")));
    row("list --json", secs, calls.snapshot() - before, fp);
    Ok(())
}
