//! What monitoring reads (issue 17): `Engine::status` from listings, Prometheus metrics read
//! back by a Prometheus text parser, the metrics server answering while a backup runs, and
//! `[[notify]]` webhooks against a local server (delivered, failing, hanging).
// Sample values here are small whole numbers, exact in an f64.
#![allow(clippy::float_cmp, clippy::cast_precision_loss)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use d1_backup_core::chrono::{DateTime, Timelike, Utc};
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    Clock, DaemonEvent, Engine, Metrics, MetricsServer, Status, StatusOptions, StatusReport,
    TokioClock,
};
use d1_export::testing::Fault;
use r2_sink::{BackupSink, ObjectStoreSink};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// A clock that always reads the same time.
#[derive(Debug)]
struct Fixed(DateTime<Utc>);

impl Clock for Fixed {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// `ucca/ops-db` exists in the simulator; `rtopacks/new-db` is configured but never backed
/// up (the simulator does not have it, so its backup fails).
async fn world(extra: &str) -> (d1_export::testing::D1Simulator, String, Arc<dyn BackupSink>) {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 20));
    let text = config_text(
        &sim,
        "kind = \"fs\"\npath = \"/nonexistent-unused\"",
        r#""ops-db""#,
        r#""new-db""#,
    ) + extra;
    (sim, text, Arc::new(ObjectStoreSink::memory()))
}

fn engine_at(text: &str, sink: &Arc<dyn BackupSink>, now: DateTime<Utc>) -> Engine {
    Engine::builder(parse(text), secrets())
        .sink(sink.clone())
        .clock(Arc::new(Fixed(now)))
        .build()
        .unwrap()
}

async fn status_at(
    text: &str,
    sink: &Arc<dyn BackupSink>,
    now: DateTime<Utc>,
    options: StatusOptions,
) -> StatusReport {
    engine_at(text, sink, now).status(&options).await.unwrap()
}

fn fresh(report: &StatusReport) -> Vec<(String, bool)> {
    report
        .databases
        .iter()
        .map(|d| (format!("{}/{}", d.account, d.name), d.fresh))
        .collect()
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

#[tokio::test]
async fn status_tells_fresh_stale_missing_and_max_age_zero() {
    let (_sim, text, sink) = world("").await;
    let report = run(
        &engine(&text, Some(sink.clone())),
        d1_backup_core::RunOptions::new(date()),
    )
    .await;
    assert_eq!(report.databases[0].status, Status::Ok);
    assert_eq!(report.databases[1].status, Status::Failed);

    let now = Utc::now();
    let status = status_at(&text, &sink, now, StatusOptions::new()).await;
    assert_eq!(
        fresh(&status),
        [
            ("ucca/ops-db".to_owned(), true),
            ("rtopacks/new-db".to_owned(), false)
        ]
    );
    assert_eq!(status.max_age_hours, Some(26.0));
    let ops = &status.databases[0];
    assert_eq!(ops.newest_date, Some(date()));
    assert_eq!(ops.bytes, report.databases[0].bytes);
    assert_eq!(ops.encrypted, Some(false));
    assert_eq!(ops.verified, None);
    let finished = ops.finished_at.unwrap();
    assert!(finished <= now && now - finished < d1_backup_core::chrono::Duration::minutes(5));
    let missing = &status.databases[1];
    assert_eq!(missing.newest_date, None);
    assert_eq!(missing.reason.as_deref(), Some("no complete backup"));
    assert!(!status.all_fresh());

    // 27 hours later the default 26 h has passed; an explicit 100 h has not; 0 stales all.
    let later = now + d1_backup_core::chrono::Duration::hours(27);
    let stale = status_at(&text, &sink, later, StatusOptions::new()).await;
    assert!(!stale.databases[0].fresh);
    assert!(
        stale.databases[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("27.0 h old")
    );
    let lenient = status_at(
        &text,
        &sink,
        later,
        StatusOptions::new().max_age(hours(100)),
    )
    .await;
    assert!(lenient.databases[0].fresh);
    assert_eq!(lenient.max_age_hours, Some(100.0));
    let zero = status_at(
        &text,
        &sink,
        now,
        StatusOptions::new().max_age(Duration::ZERO),
    )
    .await;
    assert_eq!(
        fresh(&zero),
        [
            ("ucca/ops-db".to_owned(), false),
            ("rtopacks/new-db".to_owned(), false)
        ]
    );

    // --only narrows it to the fresh one.
    let only = status_at(
        &text,
        &sink,
        now,
        StatusOptions::new().only(vec!["ops-db".parse().unwrap()]),
    )
    .await;
    assert!(only.all_fresh());
    assert_eq!(only.databases.len(), 1);
}

#[tokio::test]
async fn a_scheduled_database_is_stale_after_its_next_run_plus_the_grace() {
    let hourly =
        "\n[[schedules]]\nname = \"hourly\"\ncron = \"0 * * * *\"\ndatabases = [\"ops-db\"]\n";
    let (_sim, text, sink) = world(hourly).await;
    run(
        &engine(&text, Some(sink.clone())),
        d1_backup_core::RunOptions::new(date()),
    )
    .await;
    let status = status_at(&text, &sink, Utc::now(), StatusOptions::new()).await;
    // The schedules decide per database, so there is no single maximum age.
    assert_eq!(status.max_age_hours, None);
    let ops = &status.databases[0];
    let finished = ops.finished_at.unwrap();
    let next_hour = (finished + d1_backup_core::chrono::Duration::hours(1))
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    let grace = d1_backup_core::chrono::Duration::from_std(d1_backup_core::SCHEDULE_GRACE).unwrap();
    assert_eq!(ops.stale_after, Some(next_hour + grace));
    assert!(ops.fresh);
    let after = status_at(
        &text,
        &sink,
        next_hour + grace + d1_backup_core::chrono::Duration::seconds(1),
        StatusOptions::new(),
    )
    .await;
    assert!(!after.databases[0].fresh);
    // A database no schedule covers keeps the 26 h default.
    let missing = &status.databases[1];
    assert_eq!(missing.stale_after, None);
}

#[tokio::test]
async fn status_json_is_the_documented_contract() {
    let (_sim, text, sink) = world("").await;
    run(
        &engine(&text, Some(sink.clone())),
        d1_backup_core::RunOptions::new(date()),
    )
    .await;
    let first = status_at(&text, &sink, Utc::now(), StatusOptions::new()).await;
    // The finish time comes from the store's clock; checked 90 minutes after it, the age is
    // fixed, and the times themselves are redacted (where they are not null).
    let finished = first.databases[0].finished_at.unwrap();
    let checked = finished + d1_backup_core::chrono::Duration::minutes(90);
    let status = status_at(&text, &sink, checked, StatusOptions::new()).await;
    assert_eq!(status.databases[0].age_hours, Some(1.5));
    let time = || {
        insta::dynamic_redaction(|value, _| {
            if value.as_str().is_some() {
                "[time]".into()
            } else {
                value
            }
        })
    };
    insta::assert_json_snapshot!(status, {
        ".checked_at" => "[time]",
        ".databases[].finished_at" => time(),
        ".databases[].stale_after" => time(),
    });
}

/// The metrics text as Prometheus reads it: each sample by name and labels.
fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("the metrics text parses")
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, db: Option<&str>) -> f64 {
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && db.is_none_or(|db| s.labels.get("database") == Some(db)))
        .unwrap_or_else(|| panic!("no sample {name} {db:?}"));
    match found.value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_runs_metrics_parse_and_carry_a_last_success_for_every_database() {
    let (sim, text, sink) = world("").await;
    let uuid = sim.database_uuid(UCCA, "ops-db").unwrap();
    sim.inject(&uuid, Fault::RateLimited(2));
    let engine = engine(&text, Some(sink.clone()));
    let report = run(&engine, d1_backup_core::RunOptions::new(date())).await;
    assert!(report.api_requests >= 4, "{}", report.api_requests);
    assert_eq!(report.rate_limited, 2);

    let mut metrics = Metrics::new();
    metrics.seed(&engine.status(&StatusOptions::new()).await.unwrap());
    metrics.record_run(&report);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d1_backup.prom");
    metrics.write_file(&file).await.unwrap();
    // Only the file is left: the temporary one was renamed onto it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["d1_backup.prom"]);
    let text = std::fs::read_to_string(&file).unwrap();
    let scrape = parse_metrics(&text);

    let ok = &report.databases[0];
    let success = sample(
        &scrape,
        "d1_backup_last_success_timestamp_seconds",
        Some("ops-db"),
    );
    assert!((success - ok.finished_at.unwrap().timestamp_millis() as f64 / 1000.0).abs() < 0.01);
    assert_eq!(
        sample(
            &scrape,
            "d1_backup_last_success_timestamp_seconds",
            Some("new-db")
        ),
        0.0
    );
    assert_eq!(
        sample(&scrape, "d1_backup_last_bytes", Some("ops-db")),
        ok.bytes.unwrap() as f64
    );
    assert_eq!(
        sample(&scrape, "d1_backup_failures_total", Some("ops-db")),
        0.0
    );
    assert_eq!(
        sample(&scrape, "d1_backup_failures_total", Some("new-db")),
        1.0
    );
    assert!(
        sample(
            &scrape,
            "d1_backup_last_attempt_timestamp_seconds",
            Some("new-db")
        ) > 0.0
    );
    assert!(sample(&scrape, "d1_backup_last_duration_seconds", Some("ops-db")) >= 0.0);
    assert_eq!(
        sample(&scrape, "d1_backup_api_requests_total", None),
        report.api_requests as f64
    );
    assert_eq!(sample(&scrape, "d1_backup_rate_limited_total", None), 2.0);
    assert_eq!(sample(&scrape, "d1_backup_runs_total", None), 1.0);
    let info = scrape
        .samples
        .iter()
        .find(|s| s.metric == "d1_backup_build_info")
        .unwrap();
    assert_eq!(info.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    // Every family has HELP, and the counters are typed as counters.
    for name in [
        "d1_backup_last_success_timestamp_seconds",
        "d1_backup_failures_total",
        "d1_backup_api_requests_total",
        "d1_backup_build_info",
    ] {
        assert!(scrape.docs.contains_key(name), "{name} has no HELP");
    }
    assert!(matches!(
        scrape
            .samples
            .iter()
            .find(|s| s.metric == "d1_backup_failures_total")
            .unwrap()
            .value,
        prometheus_parse::Value::Counter(_)
    ));
    // Label values are escaped: a quote does not end the value and a backslash is doubled
    // (prometheus-parse hands the value over still escaped; `promtool` in .ci/run and the
    // unit tests of `escape_label` check the rest of the rule).
    let mut odd = d1_backup_core::RunReport::clone(&report);
    odd.databases[0].account = "we\"ird\\acc".to_owned();
    let mut m = Metrics::new();
    m.record_run(&odd);
    let scrape = parse_metrics(&m.render());
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.labels.get("account") == Some(r#"we\"ird\\acc"#))
    );
}

/// GET `url`, its status and body.
async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_answers_while_a_backup_runs() {
    let nightly =
        "\n[[schedules]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\ndatabases = [\"ops-db\"]\n";
    let (sim, text, sink) = world(nightly).await;
    let text = text.replace("poll_interval_ms = 0", "poll_interval_ms = 50");
    let uuid = sim.database_uuid(UCCA, "ops-db").unwrap();
    // About two seconds of polls: the export is in flight while /metrics is read.
    sim.set_polls_before_complete(&uuid, 40);
    // Real time, one second before the schedule fires.
    let start: DateTime<Utc> = "2026-11-30T02:59:59Z".parse().unwrap();
    let engine = Engine::builder(parse(&text), secrets())
        .sink(sink)
        .clock(Arc::new(TokioClock::starting_at(start)))
        .build()
        .unwrap();
    let metrics = Arc::new(Mutex::new(Metrics::new()));
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), metrics.clone())
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let stop = CancellationToken::new();
    let serving = tokio::spawn(server.serve(stop.clone()));

    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let started_tx = Mutex::new(Some(started_tx));
    let finished = Arc::new(tokio::sync::Notify::new());
    let on_event = {
        let metrics = metrics.clone();
        let finished = finished.clone();
        move |event: DaemonEvent<'_>| {
            metrics.lock().unwrap().observe(&event);
            match event {
                DaemonEvent::RunStarted { .. } => {
                    if let Some(tx) = started_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                }
                DaemonEvent::RunFinished { .. } => finished.notify_one(),
                _ => {}
            }
        }
    };
    let daemon_stop = CancellationToken::new();
    let daemon = {
        let daemon_stop = daemon_stop.clone();
        async move {
            engine
                .run_schedules(&(), &daemon_stop, Duration::from_secs(5), &on_event)
                .await
        }
    };
    let probe = async {
        started_rx.await.unwrap();
        // Wait (on a condition, for at most 10 s) until D1 has the export.
        for _ in 0..1000 {
            if sim.exports_started(&uuid) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sim.exports_started(&uuid), 1, "the export started");
        // The backup is in flight: the endpoint answers, and no run has finished yet.
        let (code, body) = get(&format!("{base}/metrics")).await;
        assert_eq!(code, 200);
        let scrape = parse_metrics(&body);
        assert_eq!(sample(&scrape, "d1_backup_runs_total", None), 0.0);
        assert!(
            scrape
                .samples
                .iter()
                .any(|s| s.metric == "d1_backup_build_info")
        );
        assert_eq!(
            get(&format!("{base}/healthz")).await,
            (200, "ok\n".to_owned())
        );
        assert_eq!(get(&format!("{base}/nope")).await.0, 404);
        tokio::time::timeout(Duration::from_secs(30), finished.notified())
            .await
            .expect("the scheduled run finishes");
        let (_, body) = get(&format!("{base}/metrics")).await;
        let scrape = parse_metrics(&body);
        assert!(
            sample(
                &scrape,
                "d1_backup_last_success_timestamp_seconds",
                Some("ops-db")
            ) > 0.0
        );
        assert_eq!(sample(&scrape, "d1_backup_runs_total", None), 1.0);
        daemon_stop.cancel();
    };
    let (cut, ()) = tokio::join!(daemon, probe);
    assert!(!cut);
    stop.cancel();
    serving.await.unwrap();
}

/// Webhook requests the server received, by path.
async fn received(server: &MockServer) -> HashMap<String, Vec<serde_json::Value>> {
    let mut by_path: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let body = serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
        by_path
            .entry(request.url.path().to_owned())
            .or_default()
            .push(body);
    }
    by_path
}

#[tokio::test]
async fn webhooks_get_the_report_and_a_failing_or_hanging_one_changes_nothing() {
    let hooks = MockServer::start().await;
    for (at, answer) in [
        ("/ok/secret-token", ResponseTemplate::new(204)),
        ("/slack/T000/B000/XXXX", ResponseTemplate::new(200)),
        ("/broken", ResponseTemplate::new(500)),
        (
            "/hangs",
            ResponseTemplate::new(200).set_delay(Duration::from_secs(30)),
        ),
        ("/success-only", ResponseTemplate::new(200)),
    ] {
        Mock::given(method("POST"))
            .and(path(at))
            .respond_with(answer)
            .mount(&hooks)
            .await;
    }
    let uri = hooks.uri();
    let notify = format!(
        r#"
[[notify]]
url = "{uri}/ok/secret-token"
on = ["failure", "success"]

[[notify]]
name = "slack"
url = "{uri}/slack/T000/B000/XXXX"
format = "slack"

[[notify]]
url = "{uri}/broken"
retries = 2

[[notify]]
name = "slow"
url = "{uri}/hangs"
timeout_seconds = 1
retries = 0

[[notify]]
url = "{uri}/success-only"
on = ["success"]
"#
    );
    let (_sim, text, sink) = world(&notify).await;
    let report = run(
        &engine(&text, Some(sink)),
        d1_backup_core::RunOptions::new(date()),
    )
    .await;
    // The run's own outcome is what it was without webhooks: ops-db ok, new-db failed.
    assert_eq!(report.databases[0].status, Status::Ok);
    assert_eq!(report.databases[1].status, Status::Failed);
    assert!(!report.complete());

    let outcomes: Vec<(&str, u32, Option<&str>)> = report
        .notifications
        .iter()
        .map(|n| (n.name.as_str(), n.attempts, n.error.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("notify[0]", 1, None),
            ("slack", 1, None),
            (
                "notify[2]",
                3,
                Some("the webhook answered 500 Internal Server Error")
            ),
            ("slow", 1, Some("the webhook did not answer within 1 s")),
        ]
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        !json.contains("secret-token") && !json.contains("XXXX"),
        "{json}"
    );
    assert!(!format!("{:?}", engine(&text, None).config()).contains("secret-token"));

    let got = received(&hooks).await;
    let full = &got["/ok/secret-token"][0];
    assert_eq!(full["databases"][1]["name"], "new-db");
    assert_eq!(full["databases"][1]["status"], "failed");
    let slack = got["/slack/T000/B000/XXXX"][0]["text"].as_str().unwrap();
    assert!(
        slack.starts_with(":x: d1-backup run failed (2026-11-30): 1 ok, 0 skipped, 1 failed"),
        "{slack}"
    );
    assert!(slack.contains("rtopacks/new-db failed"), "{slack}");
    assert_eq!(got["/broken"].len(), 3);
    assert!(!got.contains_key("/success-only"));
}

#[tokio::test]
async fn a_notify_url_is_never_shown_in_a_config_error() {
    let (_sim, text, _sink) =
        world("\n[[notify]]\nurl = \"ftp://hooks.example/secret-token\"\non = []\n").await;
    let error =
        d1_backup_core::Config::from_toml(&text, std::path::Path::new("t.toml")).unwrap_err();
    let message = format!("{error} {error:?}");
    assert!(!message.contains("secret-token"), "{message}");
    let fields: Vec<&str> = error.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["notify[0].url", "notify[0].on"]);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn status_shows_what_the_verification_record_says() {
    let (_sim, text, sink) = world("").await;
    let text = text.replace(
        "poll_interval_ms = 0",
        "poll_interval_ms = 0\nverify = \"restore\"",
    );
    let scratch = tempfile::tempdir().unwrap();
    let engine = Engine::builder(parse(&text), secrets())
        .sink(sink.clone())
        .scratch_dir(scratch.path())
        .build()
        .unwrap();
    let report = run(&engine, d1_backup_core::RunOptions::new(date())).await;
    assert_eq!(report.databases[0].verified, Some(true));
    let status = engine.status(&StatusOptions::new()).await.unwrap();
    assert_eq!(status.databases[0].verified, Some(true));
    assert_eq!(status.databases[1].verified, None);
}
