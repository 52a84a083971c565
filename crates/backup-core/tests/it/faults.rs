//! The fault suite: every failure a nightly backup meets, end to end — the D1 simulator, the
//! engine, and a real S3 server that enforces R2's equal-part rule — with the same invariants
//! checked after each one (see `docs/faults.md` for the scenario table):
//!
//! * nothing at a final key unless it is complete and byte-exact (and its manifest agrees);
//! * no unfinished multipart upload on the server, no lease left in the bucket;
//! * a good backup (the previous day's, or the same day's when forced) never replaced or deleted;
//! * the report says what happened (status, error or reason, notes, exports started);
//! * no secret (API tokens, the S3 secret key, a signed URL's signature) in any output: reports
//!   (`Debug` and JSON), progress events, logs, errors, stored objects and their metadata.
//!
//! Waits of the D1 client (backoff, `retry-after`, a busy database) run on tokio's paused
//! clock, driven by [`on_paused_clock`]: the suite checks the waits without sleeping through them.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    Engine, EventKind, Force, Manifest, Progress, ProgressEvent, RunOptions, RunReport, Selector,
    Status,
};
use d1_export::ExportEvent;
use d1_export::testing::{D1Simulator, Fault};
use futures::TryStreamExt;
use r2_sink::testing::{R2Rules, S3TestServer};
use r2_sink::{AllowHttp, BackupSink, MultipartOptions, ObjectStoreSink, RetryOptions, S3Options};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{
    RTO_TOKEN, UCCA, UCCA_TOKEN, config_text, date, dump, parse, secrets, sha256_hex,
};

const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";
const MIB: usize = 1 << 20;
/// The part size of every S3 sink in the suite.
const PART: usize = 5 * MIB;
const YESTERDAY: &str = "d1/2026-11-29/";

/// Values that must never appear in any output: both API tokens, the S3 secret key, and the
/// simulator's signed-URL signature (its parameter name and its value).
const SECRETS: [&str; 5] = [
    UCCA_TOKEN,
    RTO_TOKEN,
    S3TestServer::SECRET_ACCESS_KEY,
    "X-Amz-Signature",
    "5ec2e7f00d5ec2e7",
];

// ---------------------------------------------------------------------------------------------
// The world: simulator, S3 server, sink, and the registry of everything the suite produced.

struct World {
    sim: Arc<D1Simulator>,
    s3: S3TestServer,
    sink: Arc<dyn BackupSink>,
    leaks: Leaks,
    /// Routes this test thread's logs into `leaks` for as long as the world lives.
    _logs: tracing::subscriber::DefaultGuard,
}

impl World {
    async fn new() -> Self {
        let leaks = Leaks::default();
        let logs = tracing::subscriber::set_default(Capture::new(leaks.clone()));
        let sim = D1Simulator::start().await;
        sim.add_account(UCCA, UCCA_TOKEN);
        let s3 = S3TestServer::start_with(R2Rules::Enforce).await.unwrap();
        let sink = small_parts(&s3);
        Self {
            sim: Arc::new(sim),
            s3,
            sink,
            leaks,
            _logs: logs,
        }
    }

    /// Adds `name` to the simulator with `dump` as its export; returns its uuid.
    fn database(&self, name: &str, dump: &[u8]) -> String {
        self.sim.add_database(UCCA, name, dump.to_vec())
    }

    /// An engine over the world's sink, for the ucca databases `dbs`, with `run` added to
    /// `[run]`.
    fn engine(&self, owner: &str, dbs: &str, run: &str) -> Engine {
        engine_on(&self.sim, self.sink.clone(), owner, dbs, run)
    }

    /// Like [`World::engine`], with retention that would delete yesterday's backup if it were
    /// applied to a database whose backup failed today (`keep_days = 1`, `min_keep = 1`).
    fn ruthless_engine(&self, owner: &str, dbs: &str, run: &str) -> Engine {
        let run = format!("{run}\n[retention]\nkeep_days = 1\nmin_keep = 1\n");
        engine_on(&self.sim, self.sink.clone(), owner, dbs, &run)
    }

    /// Runs `engine` as `options` say, recording the report and the events for the leak scan.
    async fn run(&self, engine: &Engine, options: RunOptions, progress: &Recorder) -> RunReport {
        let report = engine
            .run(&options, progress, &CancellationToken::new())
            .await
            .unwrap();
        self.leaks.report(&report);
        self.leaks
            .record("progress events", progress.events().join("\n"));
        report
    }

    /// A complete, good backup of `name` dated `day` made by a separate simulator (so this
    /// world's fault counters stay untouched); returns the dump.
    async fn seed(&self, name: &str, day: &str) -> Vec<u8> {
        let other = D1Simulator::start().await;
        other.add_account(UCCA, UCCA_TOKEN);
        let body = dump(&format!("{name} as of {day}"), 2_000);
        other.add_database(UCCA, name, body.clone());
        let engine = engine_on(
            &other,
            self.sink.clone(),
            "seeder",
            &format!("\"{name}\""),
            "",
        );
        let options = RunOptions::new(day.parse().unwrap()).only(only(&[name]));
        let report = self.run(&engine, options, &Recorder::default()).await;
        assert_eq!(report.databases[0].status, Status::Ok, "{report:#?}");
        body
    }

    /// Every object under `prefix`: key, bytes, ETag.
    async fn snapshot(&self, prefix: &str) -> Vec<(String, Vec<u8>, Option<String>)> {
        let infos: Vec<r2_sink::ObjectInfo> = self.sink.list(prefix).try_collect().await.unwrap();
        let mut objects = Vec::new();
        for info in infos {
            let bytes = read(self.sink.as_ref(), &info.key).await;
            objects.push((info.key, bytes, info.etag));
        }
        objects
    }

    /// The dump at `key` is `expected`, byte for byte, and its manifest agrees.
    async fn assert_backup(&self, key: &str, expected: &[u8]) {
        let stored = read(self.sink.as_ref(), key).await;
        assert!(
            stored == expected,
            "{key}: {} bytes stored, {} expected",
            stored.len(),
            expected.len()
        );
        let manifest_key = key.replace(".sql", ".manifest.json");
        let manifest = Manifest::from_json(&read(self.sink.as_ref(), &manifest_key).await).unwrap();
        assert_eq!(manifest.dump.key, key);
        assert_eq!(manifest.dump.bytes, expected.len() as u64);
        assert_eq!(manifest.dump.sha256, sha256_hex(expected));
    }

    /// Nothing at `key` and no manifest beside it.
    async fn assert_absent(&self, key: &str) {
        assert!(self.sink.head(key).await.unwrap().is_none(), "{key} exists");
        let manifest_key = key.replace(".sql", ".manifest.json");
        assert!(
            self.sink.head(&manifest_key).await.unwrap().is_none(),
            "{manifest_key} exists"
        );
    }

    /// No unfinished multipart upload on the server and no lease in the bucket.
    async fn assert_nothing_left_over(&self) {
        assert_eq!(
            self.s3.list_multipart_uploads().await,
            Vec::<String>::new(),
            "unfinished multipart uploads"
        );
        let leases = keys(self.sink.as_ref(), "d1/_leases/").await;
        assert!(leases.is_empty(), "leases left behind: {leases:?}");
    }

    /// Scans every stored object (content of small JSON objects, metadata of all) and
    /// everything recorded, for secrets.
    async fn assert_no_secrets(&self) {
        let infos: Vec<r2_sink::ObjectInfo> = self.sink.list("").try_collect().await.unwrap();
        for info in infos {
            let head = self.sink.head(&info.key).await.unwrap();
            self.leaks
                .record(&format!("metadata of {}", info.key), format!("{head:?}"));
            if std::path::Path::new(&info.key)
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
            {
                let body = read(self.sink.as_ref(), &info.key).await;
                self.leaks.record(&info.key, text(&body));
            }
        }
        self.leaks.assert_clean();
    }
}

fn engine_on(
    sim: &D1Simulator,
    sink: Arc<dyn BackupSink>,
    owner: &str,
    dbs: &str,
    run: &str,
) -> Engine {
    let mut text = config_text(sim, UNUSED_SINK, dbs, "\"rto-unused\"");
    if run.contains("poll_interval_ms") {
        text = text.replace("poll_interval_ms = 0\n", "");
    }
    // `run` may end with its own `[retention]` table, which replaces the default one.
    let (run, retention) = run.split_once("[retention]").unwrap_or((run, ""));
    if !retention.is_empty() {
        text = text.replace("[retention]\nkeep_days = 30\n", "");
        text.push_str(&format!("\n[retention]{retention}"));
    }
    let text = text.replace("[run]\n", &format!("[run]\n{run}\n"));
    Engine::builder(parse(&text), secrets())
        .sink(sink)
        .owner(owner)
        .build()
        .unwrap()
}

/// An S3 sink on `s3` with 5 MiB parts, so multipart uploads stay small. (`[run]
/// part_size_mib` only shapes a sink the engine builds from `[sink]`, not a given one.)
fn small_parts(s3: &S3TestServer) -> Arc<dyn BackupSink> {
    let multipart = MultipartOptions::default().part_size(PART as u64);
    Arc::new(ObjectStoreSink::s3(s3.s3_options().multipart(multipart)).unwrap())
}

fn only(names: &[&str]) -> Vec<Selector> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}

fn today(names: &[&str]) -> RunOptions {
    RunOptions::new(date()).only(only(names))
}

/// A dump of at least `bytes` bytes in D1's format, unique per `name`.
fn dump_of(name: &str, bytes: usize) -> Vec<u8> {
    let mut body = dump(name, bytes / 64);
    let mut i = 0;
    while body.len() < bytes {
        body.extend_from_slice(
            format!("INSERT INTO \"items\" VALUES({i},'{name} pad');\n").as_bytes(),
        );
        i += 1;
    }
    body
}

async fn read(sink: &dyn BackupSink, key: &str) -> Vec<u8> {
    let chunks: Vec<bytes::Bytes> = sink
        .get(key, None)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

async fn keys(sink: &dyn BackupSink, prefix: &str) -> Vec<String> {
    let infos: Vec<r2_sink::ObjectInfo> = sink.list(prefix).try_collect().await.unwrap();
    infos.into_iter().map(|i| i.key).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The leak registry and the log capture that feeds it.

/// Every output the suite produced, by what it is; `assert_clean` scans them all.
#[derive(Clone, Default)]
struct Leaks(Arc<Mutex<Vec<(String, String)>>>);

impl Leaks {
    fn record(&self, what: &str, text: impl Into<String>) {
        self.0.lock().unwrap().push((what.to_owned(), text.into()));
    }

    fn report(&self, report: &RunReport) {
        self.record("report (Debug)", format!("{report:?}"));
        self.record("report (JSON)", serde_json::to_string(report).unwrap());
    }

    fn contains(&self, needle: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|(_, text)| text.contains(needle))
    }

    fn assert_clean(&self) {
        let outputs = self.0.lock().unwrap();
        assert!(
            outputs.iter().any(|(what, _)| what == "log"),
            "no log was captured"
        );
        for (what, text) in outputs.iter() {
            for secret in SECRETS {
                assert!(
                    !text.contains(secret),
                    "{secret:?} leaked into {what}:\n{text}"
                );
            }
        }
    }
}

/// A minimal `tracing` subscriber that writes every event and span field of this
/// workspace's crates (and the HTTP and storage clients they use) into the leak registry.
struct Capture {
    leaks: Leaks,
    next_span: AtomicU64,
}

impl Capture {
    fn new(leaks: Leaks) -> Self {
        Self {
            leaks,
            next_span: AtomicU64::new(1),
        }
    }
}

/// Formats visited fields as ` name=value`.
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        let target = metadata.target();
        // The test servers' own logs are not the tool's output.
        !target.starts_with("r2_sink::testing")
            && [
                "d1_backup_core",
                "d1_export",
                "r2_sink",
                "object_store",
                "reqwest",
            ]
            .iter()
            .any(|ours| target.starts_with(ours))
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut fields);
        self.leaks.record("log", fields.0);
        tracing::span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = Fields(String::from("span fields"));
        values.record(&mut fields);
        self.leaks.record("log", fields.0);
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(format!(
            "{} {}",
            event.metadata().level(),
            event.metadata().target()
        ));
        event.record(&mut fields);
        self.leaks.record("log", fields.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// ---------------------------------------------------------------------------------------------
// Progress recording, and tokio's paused clock driven by what the client says it waits for.

/// A hook called when an export starts: (database, attempt).
type OnExportStarted = Box<dyn Fn(&str, u32) + Send + Sync>;

/// Records every progress event, and each wait the D1 client announces (`Retrying`).
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    /// (database, reason, delay) of every announced retry.
    retries: Mutex<Vec<(String, String, Duration)>>,
    /// Announced delays the paused clock has not yet been advanced by.
    pending: Mutex<Vec<Duration>>,
    on_export_started: Option<OnExportStarted>,
}

impl Recorder {
    fn with_hook(hook: impl Fn(&str, u32) + Send + Sync + 'static) -> Self {
        Self {
            on_export_started: Some(Box::new(hook)),
            ..Self::default()
        }
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// The announced retries of `database`: (reason, delay).
    fn retries_of(&self, database: &str) -> Vec<(String, Duration)> {
        self.retries
            .lock()
            .unwrap()
            .iter()
            .filter(|(db, _, _)| db == database)
            .map(|(_, reason, delay)| (reason.clone(), *delay))
            .collect()
    }

    fn take_pending(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.pending.lock().unwrap())
    }
}

impl Progress for Recorder {
    fn event(&self, event: &ProgressEvent<'_>) {
        self.events.lock().unwrap().push(format!(
            "{}/{}: {:?}",
            event.account, event.database, event.kind
        ));
        match event.kind {
            EventKind::Export(ExportEvent::Retrying { reason, delay }) => {
                self.retries.lock().unwrap().push((
                    event.database.to_owned(),
                    reason.clone(),
                    *delay,
                ));
                self.pending.lock().unwrap().push(*delay);
            }
            EventKind::ExportStarted { attempt } => {
                if let Some(hook) = &self.on_export_started {
                    hook(event.database, attempt);
                }
            }
            _ => {}
        }
    }
}

/// What [`on_paused_clock`] measured.
struct Clocked<T> {
    output: T,
    /// Virtual time that passed.
    elapsed: Duration,
    /// The part of it that was announced waits (the rest is nudges).
    announced: Duration,
    /// Wall-clock time the whole drive took.
    wall: Duration,
}

/// Real time after which a drive is declared stalled.
const WATCHDOG: Duration = Duration::from_secs(30);
/// Virtual time added per idle millisecond of real time, so short timers (the request
/// budget's pacing) still fire while nothing announced a wait.
const NUDGE: Duration = Duration::from_millis(1);

/// Runs `work` with tokio's clock paused and auto-advance held off (a running blocking task
/// inhibits it: otherwise, while a request waits on the simulator's thread, the runtime would
/// jump to the next timer — the client's 60 s request timeout — and fail the request).
/// Whenever the D1 client announces a wait (`Retrying`), the clock is advanced by exactly that
/// delay; otherwise it creeps by [`NUDGE`] per real millisecond. Only for current-thread tests.
async fn on_paused_clock<F: Future>(work: F, progress: &Recorder) -> Clocked<F::Output> {
    tokio::time::pause();
    let start = tokio::time::Instant::now();
    let wall = std::time::Instant::now();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let inhibitor = tokio::task::spawn_blocking(move || {
        let _ = stopped.recv_timeout(WATCHDOG);
    });
    let mut announced = Duration::ZERO;
    tokio::pin!(work);
    let output = loop {
        tokio::select! {
            biased;
            output = &mut work => break output,
            () = nap() => {}
        }
        assert!(
            wall.elapsed() < WATCHDOG,
            "stalled on the paused clock; events:\n{}",
            progress.events().join("\n")
        );
        let delays = progress.take_pending();
        if delays.is_empty() {
            tokio::time::advance(NUDGE).await;
        }
        for delay in delays {
            announced += delay;
            tokio::time::advance(delay).await;
        }
    };
    drop(stop);
    inhibitor.await.unwrap();
    let elapsed = start.elapsed();
    tokio::time::resume();
    Clocked {
        output,
        elapsed,
        announced,
        wall: wall.elapsed(),
    }
}

/// One real millisecond, spent on a blocking thread (tokio's timers are paused).
async fn nap() {
    tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// A switchable TCP proxy in front of the S3 server: "S3 down" for real.

/// Forwards connections to the S3 server until switched down; then it closes every new
/// connection at once and cuts every open one, as an unreachable store does.
struct Gate {
    endpoint: String,
    down: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Gate {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (down, watching) = watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if *watching.borrow() {
                    continue; // dropped: the client sees its connection closed
                }
                let mut cut = watching.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Self {
            endpoint,
            down,
            accept,
        }
    }

    fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// An S3 sink that reaches the server only through this gate.
    fn sink(&self) -> Arc<dyn BackupSink> {
        let options = S3Options::new(
            self.endpoint.clone(),
            S3TestServer::BUCKET,
            r2_sink::Credentials::new(S3TestServer::ACCESS_KEY_ID, S3TestServer::SECRET_ACCESS_KEY),
        )
        .allow_http(AllowHttp::Yes)
        // Retries a little slower than `test_retry`, so a test has time to cut the store
        // off while a part is being retried.
        .retry(
            RetryOptions::default()
                .max_retries(4)
                .backoff(Duration::from_millis(50), Duration::from_millis(400)),
        )
        .multipart(MultipartOptions::default().part_size(PART as u64));
        Arc::new(ObjectStoreSink::s3(options).unwrap())
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// 1–5: the D1 side — rate limits, 5xx while polling, export errors, busy, cancelled.

#[tokio::test]
async fn a_429_storm_waits_what_retry_after_says_and_exports_once() {
    let world = World::new().await;
    let body = dump_of("ops-db", 64 * 1024);
    let uuid = world.database("ops-db", &body);
    world.sim.inject(&uuid, Fault::RateLimited(6));
    let engine = world.engine("machine-a", "\"ops-db\"", "");
    let progress = Recorder::default();
    let before = world.sim.requests();
    let clocked =
        on_paused_clock(world.run(&engine, today(&["ops-db"]), &progress), &progress).await;
    let report = clocked.output;
    let db = &report.databases[0];
    assert_eq!(db.status, Status::Ok, "{report:#?}");
    assert_eq!((db.exports, world.sim.exports_started(&uuid)), (1, 1));
    // Each 429 is announced with the wait the server asked for (the simulator sends
    // `retry-after: 0`), not the client's 10 s default for a 429 without one, nor a backoff.
    let retries = progress.retries_of("ops-db");
    assert_eq!(retries.len(), 6, "{retries:?}");
    for (reason, delay) in &retries {
        assert!(reason.contains("429"), "{reason}");
        assert_eq!(*delay, Duration::ZERO, "{reason}");
    }
    assert!(
        clocked.elapsed < Duration::from_secs(10),
        "{:?}",
        clocked.elapsed
    );
    // Requests: list, schema query, start, two `active` polls, the `complete` poll, the
    // download — and the six refused ones, each retried once, none repeated after success.
    assert_eq!(world.sim.requests() - before, 7 + 6);
    world.assert_backup(&db.key, &body).await;
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

#[tokio::test]
async fn server_errors_and_html_502s_while_polling_retry_the_poll_not_the_export() {
    let world = World::new().await;
    let ops = dump_of("ops-db", 64 * 1024);
    let engine_db = dump_of("engine-db", 64 * 1024);
    let ops_id = world.database("ops-db", &ops);
    let engine_id = world.database("engine-db", &engine_db);
    world.sim.inject(&ops_id, Fault::ServerErrors(3));
    world.sim.inject(&engine_id, Fault::BadGatewayHtml(3));
    let engine = world.engine("machine-a", r#""ops-db", "engine-db""#, "");
    let progress = Recorder::default();
    let clocked = on_paused_clock(
        world.run(&engine, today(&["ops-db", "engine-db"]), &progress),
        &progress,
    )
    .await;
    let report = clocked.output;
    let cases = [
        (&report.databases[0], &ops, &ops_id, "500"),
        (&report.databases[1], &engine_db, &engine_id, "502"),
    ];
    for (db, body, uuid, status) in cases {
        assert_eq!(db.status, Status::Ok, "{report:#?}");
        assert_eq!(db.exports, 1, "{}", db.name);
        assert_eq!(
            world.sim.exports_started(uuid),
            1,
            "{}: one export",
            db.name
        );
        assert!(db.notes.is_empty(), "{:?}", db.notes);
        let retries = progress.retries_of(&db.name);
        assert_eq!(retries.len(), 3, "{retries:?}");
        for (reason, delay) in &retries {
            assert!(reason.contains(status), "{}: {reason}", db.name);
            assert!(
                !reason.contains("<html"),
                "the HTML page is not quoted: {reason}"
            );
            assert!(
                *delay >= Duration::from_millis(250),
                "backed off: {delay:?}"
            );
        }
        world.assert_backup(&db.key, body).await;
    }
    // The backoff ran on the paused clock: announced and advanced in full, never slept.
    assert!(
        clocked.announced >= Duration::from_secs(3),
        "{:?}",
        clocked.announced
    );
    assert!(clocked.elapsed >= clocked.announced);
    assert!(
        clocked.wall < clocked.announced,
        "{:?} of wall time for {:?} of backoff",
        clocked.wall,
        clocked.announced
    );
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

#[tokio::test]
async fn an_export_error_fails_after_one_fresh_export_and_yesterday_survives_retention() {
    let world = World::new().await;
    let yesterday = world.seed("ops-db", "2026-11-29").await;
    let before = world.snapshot(YESTERDAY).await;
    let uuid = world.database("ops-db", &dump_of("ops-db", 4096));
    let message = "D1 Export error: the export failed (internal error 0x1f)";
    world.sim.inject(&uuid, Fault::ExportError(message.into()));
    let engine = world.ruthless_engine("machine-a", "\"ops-db\"", "");
    let report = world
        .run(&engine, today(&["ops-db"]), &Recorder::default())
        .await;

    let db = &report.databases[0];
    assert_eq!(db.status, Status::Failed, "{report:#?}");
    assert!(!report.succeeded());
    // One fresh export after the failure, never more (an export blocks the database).
    assert_eq!((db.exports, world.sim.exports_started(&uuid)), (2, 2));
    let error = db.error.as_deref().unwrap();
    assert!(error.starts_with("export 1: export failed: "), "{error}");
    assert!(error.contains("; export 2: export failed: "), "{error}");
    assert_eq!(
        error.matches(message).count(),
        2,
        "D1's reason, per export: {error}"
    );
    assert!(db.bytes.is_none() && db.sha256.is_none() && db.reason.is_none());
    world.assert_absent(&db.key).await;
    // keep_days = 1 and min_keep = 1 would expire yesterday's backup, but retention never
    // prunes a database whose backup failed in the run.
    let prune = report.prune.as_ref().unwrap();
    assert_eq!(prune.deleted, 0, "{prune:#?}");
    assert_eq!(world.snapshot(YESTERDAY).await, before);
    world
        .assert_backup("d1/2026-11-29/ops-db.sql", &yesterday)
        .await;
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

#[tokio::test]
async fn a_busy_database_is_waited_for_up_to_wait_if_busy_minutes_then_fails_clearly() {
    let world = World::new().await;
    let busy = world.database("ops-db", &dump_of("ops-db", 4096));
    world.sim.inject(&busy, Fault::ExportInProgress);
    let body = dump_of("engine-db", 4096);
    let freed = world.database("engine-db", &body);
    world.sim.inject(&freed, Fault::BusyFor(3));
    // poll_interval_ms = 200 makes the busy retries one second apart: 60 in the minute.
    let engine = world.engine(
        "machine-a",
        r#""ops-db", "engine-db""#,
        "wait_if_busy_minutes = 1\npoll_interval_ms = 200",
    );
    let progress = Recorder::default();
    let clocked = on_paused_clock(
        world.run(&engine, today(&["ops-db", "engine-db"]), &progress),
        &progress,
    )
    .await;
    let report = clocked.output;

    let failed = &report.databases[0];
    assert_eq!(failed.status, Status::Failed, "{report:#?}");
    let error = failed.error.as_deref().unwrap();
    assert!(
        error.contains("Currently processing a long-running export"),
        "D1's words: {error}"
    );
    assert_eq!(world.sim.exports_started(&busy), 0, "D1 never started one");
    let waits = progress.retries_of("ops-db");
    let waited: Duration = waits.iter().map(|(_, delay)| *delay).sum();
    assert!(
        (55..=60).contains(&waits.len()),
        "{} busy retries, one a second for a minute",
        waits.len()
    );
    assert!(
        waited >= Duration::from_secs(55) && waited <= Duration::from_mins(1),
        "{waited:?}"
    );
    assert!(
        clocked.elapsed >= Duration::from_secs(55),
        "{:?}",
        clocked.elapsed
    );
    world.assert_absent(&failed.key).await;

    // The other database was busy three times, waited, then backed up with one export.
    let ok = &report.databases[1];
    assert_eq!(ok.status, Status::Ok, "{report:#?}");
    assert_eq!(progress.retries_of("engine-db").len(), 3);
    assert_eq!(world.sim.exports_started(&freed), 1);
    world.assert_backup(&ok.key, &body).await;
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

/// `ops-db` alone, refused as busy for longer than `wait_if_busy_minutes = 1`: its report.
async fn busy_for_longer_than_the_wait() -> d1_backup_core::DatabaseReport {
    let world = World::new().await;
    let busy = world.database("ops-db", &dump_of("ops-db", 4096));
    world.sim.inject(&busy, Fault::ExportInProgress);
    let engine = world.engine(
        "machine-a",
        "\"ops-db\"",
        "wait_if_busy_minutes = 1\npoll_interval_ms = 200",
    );
    let progress = Recorder::default();
    let clocked =
        on_paused_clock(world.run(&engine, today(&["ops-db"]), &progress), &progress).await;
    assert_eq!(world.sim.exports_started(&busy), 0);
    clocked.output.databases[0].clone()
}

/// After waiting `run.wait_if_busy_minutes`, the error says it waited, how long, and which
/// config key sets the wait (not the library option the engine set from it).
#[tokio::test]
async fn a_busy_failure_says_it_waited_and_names_wait_if_busy_minutes() {
    let db = busy_for_longer_than_the_wait().await;
    let error = db.error.as_deref().unwrap();
    assert!(!error.contains("ExportOptions::wait_if_busy"), "{error}");
    assert!(error.contains("wait_if_busy_minutes"), "{error}");
    assert!(
        error.contains("1 minute") || error.contains("60 s"),
        "{error}"
    );
}

/// `exports` counts exports started for this database in this run: one D1 refused to start
/// (busy, 409) is not one.
#[tokio::test]
async fn an_export_refused_as_busy_is_not_counted_as_started() {
    let db = busy_for_longer_than_the_wait().await;
    assert_eq!(db.status, Status::Failed);
    assert_eq!(db.exports, 0, "{db:#?}");
}

#[tokio::test]
async fn an_export_cancelled_by_the_server_gets_exactly_one_fresh_export() {
    let world = World::new().await;
    let body = dump_of("ops-db", 64 * 1024);
    let uuid = world.database("ops-db", &body);
    // D1 cancels an export that is not polled continually; it surfaces as `status: "error"`.
    let cancelled = "Export cancelled: the export was not polled for 10 seconds";
    world
        .sim
        .inject(&uuid, Fault::ExportError(cancelled.into()));
    // The server recovers as the second export starts (a no-op fault replaces the first).
    let (sim, id) = (Arc::clone(&world.sim), uuid.clone());
    let progress = Recorder::with_hook(move |_, attempt| {
        if attempt == 2 {
            sim.inject(&id, Fault::ServerErrors(0));
        }
    });
    let engine = world.engine("machine-a", "\"ops-db\"", "");
    let report = world.run(&engine, today(&["ops-db"]), &progress).await;

    let db = &report.databases[0];
    assert_eq!(db.status, Status::Ok, "{report:#?}");
    assert_eq!((db.exports, world.sim.exports_started(&uuid)), (2, 2));
    assert_eq!(db.notes.len(), 1, "{:?}", db.notes);
    let note = &db.notes[0];
    assert!(
        note.starts_with("export 1: export failed: ")
            && note.contains(cancelled)
            && note.ends_with("; a fresh export was started"),
        "{note}"
    );
    world.assert_backup(&db.key, &body).await;
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

// ---------------------------------------------------------------------------------------------
// 6–7: the download — dropped mid-body, refused or expired signed URL.

#[tokio::test]
async fn a_download_dropped_mid_body_resumes_byte_exact_in_equal_parts() {
    let world = World::new().await;
    let body = dump_of("ops-db", 12 * MIB + 4321);
    let uuid = world.database("ops-db", &body);
    world
        .sim
        .inject(&uuid, Fault::DropDownload(7 * MIB as u64 + 123));
    let engine = world.engine("machine-a", "\"ops-db\"", "");
    let report = world
        .run(&engine, today(&["ops-db"]), &Recorder::default())
        .await;

    let db = &report.databases[0];
    assert_eq!(db.status, Status::Ok, "{report:#?}");
    assert_eq!((db.exports, world.sim.exports_started(&uuid)), (1, 1));
    assert_eq!(db.sha256.as_deref(), Some(sha256_hex(&body).as_str()));
    world.assert_backup(&db.key, &body).await;
    // The server enforced R2's rule; the parts it completed were equal but the last.
    let uploads = world.s3.completed_uploads();
    let parts = &uploads.iter().find(|u| u.key == db.key).unwrap().part_sizes;
    let part = PART as u64;
    assert_eq!(parts, &[part, part, body.len() as u64 - 2 * part]);
    assert!(
        world.leaks.contains("resuming download"),
        "the resume went through the client's Range path"
    );
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

#[tokio::test]
async fn a_refused_or_expired_signed_url_gets_one_fresh_export_and_no_more() {
    let world = World::new().await;
    let body = dump_of("ops-db", 64 * 1024);
    let once = world.database("ops-db", &body);
    world.sim.inject(&once, Fault::RefuseSignedUrl(1));
    let yesterday = world.seed("engine-db", "2026-11-29").await;
    let always = world.database("engine-db", &dump_of("engine-db", 4096));
    world.sim.inject(&always, Fault::RefuseSignedUrl(u32::MAX));
    let engine = world.ruthless_engine("machine-a", r#""ops-db", "engine-db""#, "");
    let report = world
        .run(
            &engine,
            today(&["ops-db", "engine-db"]),
            &Recorder::default(),
        )
        .await;

    let ok = &report.databases[0];
    assert_eq!(ok.status, Status::Ok, "{report:#?}");
    assert_eq!((ok.exports, world.sim.exports_started(&once)), (2, 2));
    let note = &ok.notes[0];
    assert!(
        note.starts_with("export 1: download failed: ") && note.contains("403"),
        "{note}"
    );
    world.assert_backup(&ok.key, &body).await;

    let failed = &report.databases[1];
    assert_eq!(failed.status, Status::Failed);
    assert_eq!((failed.exports, world.sim.exports_started(&always)), (2, 2));
    let error = failed.error.as_deref().unwrap();
    assert!(
        error.contains("export 1: download failed: ")
            && error.contains("export 2: download failed: "),
        "{error}"
    );
    world.assert_absent(&failed.key).await;
    world
        .assert_backup("d1/2026-11-29/engine-db.sql", &yesterday)
        .await;
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

// ---------------------------------------------------------------------------------------------
// 8–9: the sink — part failures, S3 failing or unreachable.

#[tokio::test]
async fn failed_parts_and_a_failed_completion_are_retried_and_the_object_is_exact() {
    let world = World::new().await;
    let ops = dump_of("ops-db", 12 * MIB + 7);
    let engine_db = dump_of("engine-db", 11 * MIB + 3);
    world.database("ops-db", &ops);
    world.database("engine-db", &engine_db);
    let engine = world.engine("machine-a", r#""ops-db", "engine-db""#, "");

    // The second UploadPart request and its first retry answer 500.
    world.s3.fail_upload_parts(2, 2);
    let report = world
        .run(&engine, today(&["ops-db"]), &Recorder::default())
        .await;
    assert_eq!(report.databases[0].status, Status::Ok, "{report:#?}");
    assert_eq!(
        world.s3.upload_part_requests(),
        3 + 2,
        "three parts, two retries"
    );
    world.assert_backup("d1/2026-11-30/ops-db.sql", &ops).await;

    // CompleteMultipartUpload answers 500 once.
    world.s3.fail_complete_multipart_uploads(1);
    let report = world
        .run(&engine, today(&["engine-db"]), &Recorder::default())
        .await;
    assert_eq!(report.databases[0].status, Status::Ok, "{report:#?}");
    world
        .assert_backup("d1/2026-11-30/engine-db.sql", &engine_db)
        .await;
    let part = PART as u64;
    for upload in world.s3.completed_uploads() {
        let (last, rest) = upload.part_sizes.split_last().unwrap();
        assert!(
            rest.iter().all(|p| *p == part) && *last <= part,
            "{upload:?}"
        );
    }
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

#[tokio::test]
async fn s3_down_before_the_run_fails_before_any_export_and_touches_nothing() {
    let world = World::new().await;
    let gate = Gate::start(&world.s3.endpoint()).await;
    let yesterday = world.seed("ops-db", "2026-11-29").await;
    let before = world.snapshot("").await;
    let uuid = world.database("ops-db", &dump_of("ops-db", 4096));
    let engine = engine_on(
        &world.sim,
        gate.sink(),
        "machine-a",
        "\"ops-db\"",
        "[retention]\nkeep_days = 1\nmin_keep = 1\n",
    );
    gate.set_down(true);
    let report = world
        .run(&engine, today(&["ops-db"]), &Recorder::default())
        .await;
    gate.set_down(false);

    let db = &report.databases[0];
    assert_eq!(db.status, Status::Failed, "{report:#?}");
    let error = db.error.as_deref().unwrap();
    assert!(
        error.starts_with("cannot take the lease: cannot list d1/_leases/ops-db/"),
        "{error}"
    );
    assert_eq!(
        world.sim.exports_started(&uuid),
        0,
        "no export (it would block the database) when the sink is unreachable"
    );
    assert_eq!(db.exports, 0);
    assert_eq!(
        world.snapshot("").await,
        before,
        "nothing written, nothing deleted"
    );
    world
        .assert_backup("d1/2026-11-29/ops-db.sql", &yesterday)
        .await;
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

#[tokio::test]
async fn s3_failing_mid_upload_aborts_and_never_replaces_a_good_backup() {
    let world = World::new().await;
    let yesterday = world.seed("ops-db", "2026-11-29").await;
    let good = world.seed("ops-db", "2026-11-30").await;
    let before = world.snapshot("d1/2026-11-").await;
    let uuid = world.database("ops-db", &dump_of("ops-db", 12 * MIB));
    let engine = world.ruthless_engine("machine-a", "\"ops-db\"", "");
    // From the second part on, every UploadPart answers 500: the upload cannot complete.
    world.s3.fail_upload_parts(2, u64::MAX);
    let report = world
        .run(
            &engine,
            today(&["ops-db"]).force(Force::Yes),
            &Recorder::default(),
        )
        .await;

    let db = &report.databases[0];
    assert_eq!(db.status, Status::Failed, "{report:#?}");
    let error = db.error.as_deref().unwrap();
    assert!(
        error.starts_with("upload to d1/2026-11-30/ops-db.sql failed: "),
        "{error}"
    );
    // A failed upload is the sink's problem: no fresh export for it.
    assert_eq!((db.exports, world.sim.exports_started(&uuid)), (1, 1));
    assert!(world.s3.upload_part_requests() >= 2);
    // The forced run never replaced today's good backup, and retention kept yesterday's.
    assert_eq!(world.snapshot("d1/2026-11-").await, before);
    world.assert_backup("d1/2026-11-30/ops-db.sql", &good).await;
    world
        .assert_backup("d1/2026-11-29/ops-db.sql", &yesterday)
        .await;
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}

/// Current behaviour, pinned: when the store becomes unreachable mid-upload, the abort cannot
/// reach it either, so the incomplete multipart upload and the lease stay behind (nothing
/// partial is visible at the key). d1-backup has no command that aborts stale multipart
/// uploads; the lease expires after `lease_seconds` (the same engine takes it over at once).
#[tokio::test]
async fn s3_unreachable_mid_upload_leaves_nothing_at_the_key_and_a_rerun_completes() {
    let world = World::new().await;
    let gate = Gate::start(&world.s3.endpoint()).await;
    let yesterday = world.seed("ops-db", "2026-11-29").await;
    let body = dump_of("ops-db", 12 * MIB);
    let uuid = world.database("ops-db", &body);
    let engine = engine_on(&world.sim, gate.sink(), "machine-a", "\"ops-db\"", "");
    // Hold the upload open (parts from the second on answer 500), then cut the store off.
    world.s3.fail_upload_parts(2, u64::MAX);
    let cut = async {
        while world.s3.upload_part_requests() < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        gate.set_down(true);
    };
    let progress = Recorder::default();
    let (report, ()) = tokio::join!(world.run(&engine, today(&["ops-db"]), &progress), cut);
    gate.set_down(false);
    world.s3.fail_upload_parts(1, 0);

    let db = &report.databases[0];
    assert_eq!(db.status, Status::Failed, "{report:#?}");
    assert!(
        db.error
            .as_deref()
            .unwrap()
            .starts_with("upload to d1/2026-11-30/ops-db.sql failed: "),
        "{report:#?}"
    );
    world.assert_absent(&db.key).await;
    world
        .assert_backup("d1/2026-11-29/ops-db.sql", &yesterday)
        .await;
    let orphans = world.s3.list_multipart_uploads().await;
    assert_eq!(
        orphans.len(),
        1,
        "the abort could not reach the store: {orphans:?}"
    );
    let leases = keys(world.sink.as_ref(), "d1/_leases/ops-db/").await;
    assert_eq!(
        leases.len(),
        1,
        "the lease could not be released: {leases:?}"
    );

    // The next run (same owner) takes its own stale lease over and completes; taking over
    // aborts the upload the lease recorded (issue 15).
    let report = world
        .run(&engine, today(&["ops-db"]), &Recorder::default())
        .await;
    assert_eq!(report.databases[0].status, Status::Ok, "{report:#?}");
    assert_eq!(world.sim.exports_started(&uuid), 2);
    world.assert_backup(&db.key, &body).await;
    assert!(world.s3.list_multipart_uploads().await.is_empty());
    assert!(keys(world.sink.as_ref(), "d1/_leases/").await.is_empty());
    world.assert_no_secrets().await;
}

// ---------------------------------------------------------------------------------------------
// 11: concurrent runs on one bucket.

#[tokio::test]
async fn concurrent_runs_on_one_bucket_export_each_database_exactly_once() {
    let world = World::new().await;
    let ops = dump_of("ops-db", 64 * 1024);
    let engine_db = dump_of("engine-db", 64 * 1024);
    let ops_id = world.database("ops-db", &ops);
    let engine_id = world.database("engine-db", &engine_db);
    for uuid in [&ops_id, &engine_id] {
        world.sim.set_polls_before_complete(uuid, 20);
    }
    let dbs = r#""ops-db", "engine-db""#;
    let slow = "poll_interval_ms = 10";
    // Three machines, each with its own client to the bucket, start at the same moment.
    let machines: Vec<Engine> = ["machine-a", "machine-b", "machine-c"]
        .iter()
        .map(|owner| engine_on(&world.sim, small_parts(&world.s3), owner, dbs, slow))
        .collect();
    let progress = Recorder::default();
    let options = today(&["ops-db", "engine-db"]);
    let (a, b, c) = tokio::join!(
        world.run(&machines[0], options.clone(), &progress),
        world.run(&machines[1], options.clone(), &progress),
        world.run(&machines[2], options.clone(), &progress),
    );
    for (i, (uuid, body)) in [(&ops_id, &ops), (&engine_id, &engine_db)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(world.sim.exports_started(uuid), 1, "exactly one export");
        let outcomes: Vec<&d1_backup_core::DatabaseReport> =
            [&a, &b, &c].iter().map(|r| &r.databases[i]).collect();
        let ok = outcomes.iter().filter(|d| d.status == Status::Ok).count();
        assert_eq!(ok, 1, "{outcomes:#?}");
        for skipped in outcomes.iter().filter(|d| d.status != Status::Ok) {
            assert_eq!(skipped.status, Status::Skipped, "{skipped:#?}");
            let reason = skipped.reason.as_deref().unwrap();
            assert!(
                reason.contains("holds the lease")
                    || reason.contains("took the lease")
                    || reason.contains("already backed up"),
                "{reason}"
            );
        }
        world.assert_backup(&outcomes[0].key, body).await;
    }
    world.assert_nothing_left_over().await;

    // While one machine holds the lease, another waits for it and finds its backup complete
    // (issue 15: never a skip on a lease alone).
    let next_day = || RunOptions::new("2026-12-01".parse().unwrap()).only(only(&["ops-db"]));
    let holding = world.run(&machines[0], next_day(), &progress);
    let meanwhile = async {
        while world.sim.exports_started(&ops_id) < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        world.run(&machines[1], next_day(), &progress).await
    };
    let (held, skipped) = tokio::join!(holding, meanwhile);
    assert_eq!(held.databases[0].status, Status::Ok, "{held:#?}");
    assert_eq!(skipped.databases[0].status, Status::Skipped, "{skipped:#?}");
    let reason = skipped.databases[0].reason.as_deref().unwrap();
    assert!(reason.starts_with("already backed up"), "{reason}");
    assert_eq!(world.sim.exports_started(&ops_id), 2);
    world.assert_nothing_left_over().await;
    world.assert_no_secrets().await;
}
