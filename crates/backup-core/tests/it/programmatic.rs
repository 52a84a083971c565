//! A Rust service embedding the crate: the whole configuration built in code (no file, no
//! TOML), secrets given in code, its own `reqwest::Client`, and failures it can match on.

use std::path::Path;

use d1_backup_core::reqwest;
use d1_backup_core::{
    AccountConfig, CloudflareConfig, Config, ConfigBuilder, DatabaseEntry, Engine, ErrorKind,
    HeartbeatConfig, KvHeartbeat, Problem, RetentionConfig, RunConfig, RunOptions, ScheduleConfig,
    Secrets, SinkConfig, SinkKind, Status, VerifyMode,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// The seed account as a service would describe it.
fn ucca() -> AccountConfig {
    AccountConfig::new("ucca", "d1")
        .account_id(UCCA)
        .token_env("CF_API_TOKEN")
        .database(DatabaseEntry::named("ops-db"))
}

const UCCA_TOML: &str = r#"
[[accounts]]
name = "ucca"
account_id = "e5a9830215a8d88961dc6c80a8c7442a"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = ["ops-db"]
"#;

#[test]
fn a_configuration_built_in_code_equals_the_file_that_says_the_same() {
    let code = Config::builder(
        SinkConfig::r2(UCCA, "ucca-backups")
            .credentials("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY")
            .jurisdiction("eu"),
    )
    .cloudflare(
        CloudflareConfig::default()
            .api_base_url("http://127.0.0.1:8787/client/v4")
            .requests_per_five_minutes(600),
    )
    .retention(
        RetentionConfig::default()
            .keep_days(14)
            .keep_weekly(8)
            .min_keep(2)
            .no_prune_after_run(),
    )
    .run(
        RunConfig::default()
            .concurrency(8)
            .per_account_concurrency(3)
            .poll_interval_ms(500)
            .part_size_mib(64)
            .lease_seconds(120)
            .wait_if_busy_minutes(0)
            .verify(VerifyMode::Restore),
    )
    .heartbeat(
        HeartbeatConfig::default()
            .kv(KvHeartbeat::new(
                "ucca",
                "86582e393ca2475e9e0f85c262221be3",
                "ucca-backup",
            ))
            .object("_heartbeat/ucca.json")
            .url("https://hc-ping.com/abc"),
    )
    .schedule(ScheduleConfig::new("nightly", "0 3 * * *").databases(["ucca/ops-db"]))
    .account(
        ucca()
            .prefix_with_slash()
            .database(DatabaseEntry::named("mcp-db").id("4b1e2f6a-9c1d-4e8f-a2b3-c4d5e6f7a8b9"))
            .database(
                DatabaseEntry::named("big-db")
                    .max_wait_minutes(600)
                    .poll_interval_ms(2000),
            ),
    )
    .build()
    .unwrap();

    let file = r#"
[cloudflare]
api_base_url = "http://127.0.0.1:8787/client/v4"
requests_per_five_minutes = 600

[sink]
kind = "r2"
account_id = "e5a9830215a8d88961dc6c80a8c7442a"
bucket = "ucca-backups"
jurisdiction = "eu"
access_key_id_env = "R2_ACCESS_KEY_ID"
secret_access_key_env = "R2_SECRET_ACCESS_KEY"

[retention]
keep_days = 14
keep_weekly = 8
min_keep = 2
prune_after_run = false

[run]
concurrency = 8
per_account_concurrency = 3
poll_interval_ms = 500
part_size_mib = 64
lease_seconds = 120
wait_if_busy_minutes = 0
verify = "restore"

[heartbeat]
kv = { account = "ucca", namespace_id = "86582e393ca2475e9e0f85c262221be3", key = "ucca-backup" }
object = "_heartbeat/ucca.json"
url = "https://hc-ping.com/abc"

[[schedules]]
name = "nightly"
cron = "0 3 * * *"
databases = ["ucca/ops-db"]

[[accounts]]
name = "ucca"
account_id = "e5a9830215a8d88961dc6c80a8c7442a"
token_env = "CF_API_TOKEN"
prefix = "d1/"
databases = [
  "ops-db",
  { name = "mcp-db", id = "4b1e2f6a-9c1d-4e8f-a2b3-c4d5e6f7a8b9" },
  { name = "big-db", max_wait_minutes = 600, poll_interval_ms = 2000 },
]
"#;
    let loaded = Config::from_toml(file, Path::new("/etc/d1-backup.toml")).unwrap();
    // Debug shows every field: the two are the same configuration, prefix normalized alike.
    assert_eq!(format!("{code:#?}"), format!("{loaded:#?}"));
    assert_eq!(code.accounts[0].prefix, "d1");
    assert_eq!(code.sink.kind, SinkKind::R2);
    assert_eq!(code.schedules().len(), 1);
}

/// `prefix` with a trailing slash, which both the loader and the builder normalize away.
trait PrefixWithSlash {
    fn prefix_with_slash(self) -> Self;
}

impl PrefixWithSlash for AccountConfig {
    fn prefix_with_slash(mut self) -> Self {
        self.prefix = format!("{}/", self.prefix);
        self
    }
}

fn file_problems(toml: &str) -> Vec<Problem> {
    match Config::from_toml(toml, Path::new("/etc/d1-backup.toml")) {
        Err(error) if !error.problems().is_empty() => error.problems().to_vec(),
        other => panic!("the file should be invalid: {other:?}"),
    }
}

/// Builds `code` and loads `toml`: both must be refused with the same problems (field,
/// problem and hint), whose fields are `expected`, in order.
fn check(code: ConfigBuilder, toml: &str, expected: &[&str]) {
    let error = code
        .build()
        .expect_err(&format!("should be refused: {toml}"));
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(!error.is_retryable());
    let fields: Vec<&str> = error.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, expected, "{toml}");
    assert_eq!(error.problems(), file_problems(toml), "{toml}");
    let message = error.to_string();
    for field in expected {
        assert!(message.contains(field), "{field} not in {message}");
    }
}

fn fs_code() -> SinkConfig {
    SinkConfig::fs("/var/backups")
}

const FS_TOML: &str = "[sink]\nkind = \"fs\"\npath = \"/var/backups\"\n";

#[test]
fn a_bad_configuration_names_the_same_fields_as_the_file_would() {
    check(
        Config::builder(fs_code())
            .retention(RetentionConfig::default().keep_days(0))
            .account(ucca()),
        &format!("{FS_TOML}[retention]\nkeep_days = 0\n{UCCA_TOML}"),
        &["retention.keep_days"],
    );
    check(
        Config::builder(fs_code()).account(
            AccountConfig::new("ucca", "")
                .account_id(UCCA)
                .token_env("CF_API_TOKEN")
                .database(DatabaseEntry::named("ops-db")),
        ),
        &format!(
            "{FS_TOML}{}",
            UCCA_TOML.replace("prefix = \"d1\"", "prefix = \"\"")
        ),
        &["accounts[0].prefix"],
    );
    check(
        Config::builder(fs_code()).account(
            AccountConfig::new("ucca", "d1/../x")
                .account_id(UCCA)
                .token_env("CF_API_TOKEN")
                .database(DatabaseEntry::named("ops-db")),
        ),
        &format!(
            "{FS_TOML}{}",
            UCCA_TOML.replace("prefix = \"d1\"", "prefix = \"d1/../x\"")
        ),
        &["accounts[0].prefix"],
    );
    check(
        Config::builder(fs_code()).account(ucca().database(DatabaseEntry::named("ops-db"))),
        &format!(
            "{FS_TOML}{}",
            UCCA_TOML.replace("[\"ops-db\"]", "[\"ops-db\", \"ops-db\"]")
        ),
        &["accounts[0].databases[1]"],
    );
    check(
        Config::builder(fs_code()).account(ucca().database(DatabaseEntry::named("a/b").id("x/y"))),
        &format!(
            "{FS_TOML}{}",
            UCCA_TOML.replace(
                "[\"ops-db\"]",
                "[\"ops-db\", { name = \"a/b\", id = \"x/y\" }]"
            )
        ),
        &[
            "accounts[0].databases[1].name",
            "accounts[0].databases[1].id",
        ],
    );
    check(
        Config::builder(fs_code()).account(ucca().token_env("v1.0-abc def")),
        &format!(
            "{FS_TOML}{}",
            UCCA_TOML.replace("\"CF_API_TOKEN\"", "\"v1.0-abc def\"")
        ),
        &["accounts[0].token_env"],
    );
    check(
        Config::builder(fs_code())
            .account(AccountConfig::new("a/b", "d1").database(DatabaseEntry::named("ops-db"))),
        &format!(
            "{FS_TOML}[[accounts]]\nname = \"a/b\"\nprefix = \"d1\"\ndatabases = [\"ops-db\"]\n"
        ),
        &[
            "accounts[0].name",
            "accounts[0].account_id",
            "accounts[0].token_env",
        ],
    );
    check(
        Config::builder(
            SinkConfig::new(SinkKind::S3)
                .bucket("b")
                .credentials("K", "S"),
        )
        .account(ucca()),
        &format!(
            "[sink]\nkind = \"s3\"\nbucket = \"b\"\naccess_key_id_env = \"K\"\nsecret_access_key_env = \"S\"\n{UCCA_TOML}"
        ),
        &["sink.endpoint"],
    );
    check(
        Config::builder(SinkConfig::s3("127.0.0.1:9000", "b").credentials("K", "S"))
            .account(ucca()),
        &format!(
            "[sink]\nkind = \"s3\"\nendpoint = \"127.0.0.1:9000\"\nbucket = \"b\"\naccess_key_id_env = \"K\"\nsecret_access_key_env = \"S\"\n{UCCA_TOML}"
        ),
        &["sink.endpoint"],
    );
    check(
        Config::builder(SinkConfig::new(SinkKind::R2)).account(ucca()),
        &format!("[sink]\nkind = \"r2\"\n{UCCA_TOML}"),
        &[
            "sink.bucket",
            "sink.access_key_id_env",
            "sink.secret_access_key_env",
            "sink.account_id",
        ],
    );
    check(
        Config::builder(SinkConfig::new(SinkKind::Fs)).account(ucca()),
        &format!("[sink]\nkind = \"fs\"\n{UCCA_TOML}"),
        &["sink.path"],
    );
    check(
        Config::builder(fs_code())
            .cloudflare(
                CloudflareConfig::default()
                    .api_base_url("api.cloudflare.com")
                    .requests_per_five_minutes(0),
            )
            .account(ucca()),
        &format!(
            "[cloudflare]\napi_base_url = \"api.cloudflare.com\"\nrequests_per_five_minutes = 0\n{FS_TOML}{UCCA_TOML}"
        ),
        &[
            "cloudflare.api_base_url",
            "cloudflare.requests_per_five_minutes",
        ],
    );
    check(
        Config::builder(fs_code())
            .run(
                RunConfig::default()
                    .concurrency(0)
                    .poll_interval_ms(20_000)
                    .lease_seconds(5),
            )
            .account(ucca().database(DatabaseEntry::named("big").part_size_mib(2))),
        &format!(
            "{FS_TOML}[run]\nconcurrency = 0\npoll_interval_ms = 20000\nlease_seconds = 5\n{}",
            UCCA_TOML.replace(
                "[\"ops-db\"]",
                "[\"ops-db\", { name = \"big\", part_size_mib = 2 }]"
            )
        ),
        &[
            "run.concurrency",
            "run.lease_seconds",
            "run.poll_interval_ms",
            "accounts[0].databases[1].part_size_mib",
        ],
    );
    check(
        Config::builder(fs_code())
            .heartbeat(
                HeartbeatConfig::default()
                    .kv(KvHeartbeat::new("nobody", "a/b", ""))
                    .object("/abs")
                    .fail_url("https://x/fail"),
            )
            .account(ucca()),
        &format!(
            "{FS_TOML}[heartbeat]\nkv = {{ account = \"nobody\", namespace_id = \"a/b\", key = \"\" }}\nobject = \"/abs\"\nfail_url = \"https://x/fail\"\n{UCCA_TOML}"
        ),
        &[
            "heartbeat.kv.account",
            "heartbeat.kv.namespace_id",
            "heartbeat.kv.key",
            "heartbeat.object",
            "heartbeat.fail_url",
        ],
    );
    check(
        Config::builder(fs_code())
            .schedule(ScheduleConfig::new("nightly", "every day"))
            .schedule(ScheduleConfig::new("nightly", "0 3 * * *").databases(["nope"]))
            .account(ucca()),
        &format!(
            "{FS_TOML}[[schedules]]\nname = \"nightly\"\ncron = \"every day\"\n\n[[schedules]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\ndatabases = [\"nope\"]\n{UCCA_TOML}"
        ),
        &[
            "schedules[0].cron",
            "schedules[1].name",
            "schedules[1].databases",
        ],
    );
    check(Config::builder(fs_code()), FS_TOML, &["accounts"]);
}

#[test]
fn secrets_given_in_code_are_checked_all_at_once_and_never_shown() {
    let config =
        Config::builder(SinkConfig::r2(UCCA, "backups").credentials("R2_KEY_ID", "R2_SECRET"))
            .account(ucca())
            .account(
                AccountConfig::new("rtopacks", "rtopacks")
                    .account_id(RTO)
                    .token_env("RTO_TOKEN")
                    .database(DatabaseEntry::named("rto-db")),
            )
            .build()
            .unwrap();
    let partial = Secrets::new()
        .with("R2_KEY_ID", "key-id-value")
        .with("CF_API_TOKEN", "  ");
    let error = partial.check(&config).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    let fields: Vec<&str> = error.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "sink.secret_access_key_env",
            "accounts[0].token_env",
            "accounts[1].token_env"
        ],
        "a blank value is missing"
    );
    let message = error.to_string();
    assert!(
        message.contains("`R2_SECRET`") && message.contains("Secrets::with"),
        "{message}"
    );
    assert!(
        !message.contains("--") && !message.contains("export "),
        "no CLI or shell hint: {message}"
    );
    // The engine refuses to build for the same reason, naming every field at once.
    let engine = Engine::builder(config.clone(), partial.clone())
        .build()
        .unwrap_err();
    assert_eq!(engine.problems().len(), 3, "{engine}");

    let complete = partial
        .with("R2_SECRET", "secret-key-value")
        .with("CF_API_TOKEN", "ucca-token-value\n")
        .with("RTO_TOKEN", "rto-token-value");
    complete.check(&config).unwrap();
    let debug = format!("{complete:?}");
    assert!(debug.contains("CF_API_TOKEN"), "{debug}");
    for value in [
        "key-id-value",
        "secret-key-value",
        "ucca-token-value",
        "rto-token-value",
    ] {
        assert!(!debug.contains(value), "{debug}");
    }
    // With its own sink the engine needs no sink keys.
    let tokens_only = Secrets::new()
        .with("CF_API_TOKEN", "t1")
        .with("RTO_TOKEN", "t2");
    let memory: std::sync::Arc<dyn r2_sink::BackupSink> =
        std::sync::Arc::new(r2_sink::ObjectStoreSink::memory());
    Engine::builder(config, tokens_only)
        .sink(memory)
        .build()
        .unwrap();
}

/// The seed accounts against the simulator, in code; `ucca_dbs` and `rto_dbs` by name.
fn simulated(
    sim: &d1_export::testing::D1Simulator,
    ucca_dbs: &[&str],
    rto_dbs: &[&str],
) -> ConfigBuilder {
    Config::builder(SinkConfig::fs("/nonexistent-unused"))
        .cloudflare(
            CloudflareConfig::default()
                .api_base_url(sim.base_url())
                .requests_per_five_minutes(1_000_000),
        )
        .run(RunConfig::default().poll_interval_ms(0))
        .account(
            AccountConfig::new("ucca", "d1")
                .account_id(UCCA)
                .token_env("CF_API_TOKEN")
                .databases(ucca_dbs.iter().map(|n| DatabaseEntry::named(*n))),
        )
        .account(
            AccountConfig::new("rtopacks", "rtopacks")
                .account_id(RTO)
                .token_env("RTO_API_TOKEN")
                .databases(rto_dbs.iter().map(|n| DatabaseEntry::named(*n))),
        )
}

fn code_secrets() -> Secrets {
    Secrets::new()
        .with("CF_API_TOKEN", UCCA_TOKEN)
        .with("RTO_API_TOKEN", RTO_TOKEN)
}

#[tokio::test]
async fn a_failed_database_can_be_matched_on_and_says_whether_to_retry() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    sim.add_database(RTO, "rto-ops-db", dump("rto-ops-db", 10));
    sim.add_account(RTO, "rotated-token"); // the configured RTO token is refused from now on
    let config = simulated(&sim, &["ops-db", "no-such-db"], &["rto-ops-db"])
        .build()
        .unwrap();
    let memory: std::sync::Arc<dyn r2_sink::BackupSink> =
        std::sync::Arc::new(r2_sink::ObjectStoreSink::memory());
    let engine = Engine::builder(config, code_secrets())
        .sink(memory)
        .build()
        .unwrap();
    let report = run(&engine, RunOptions::new(date())).await;

    let ok = &report.databases[0];
    assert_eq!(
        (ok.status, ok.error_kind, ok.retryable),
        (Status::Ok, None, None)
    );
    assert!(ok.cause.is_none());

    let missing = &report.databases[1];
    assert_eq!(missing.name, "no-such-db");
    assert_eq!(missing.status, Status::Failed);
    assert_eq!(
        missing.cause.as_ref().map(d1_backup_core::Error::kind),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(missing.error_kind, Some(ErrorKind::NotFound));
    assert_eq!(missing.retryable, Some(false));

    let refused = &report.databases[2];
    assert_eq!(refused.name, "rto-ops-db");
    assert_eq!(
        refused.cause.as_ref().map(d1_backup_core::Error::kind),
        Some(ErrorKind::Unauthorized)
    );
    assert_eq!(refused.error_kind, Some(ErrorKind::Unauthorized));
    assert_eq!(refused.retryable, Some(false));
    let cause = refused.cause.as_ref().unwrap();
    assert!(!cause.is_retryable());
    assert!(!cause.chain().contains(RTO_TOKEN), "{}", cause.chain());
    // The typed cause keeps d1-export's error in its source chain.
    let d1 = std::error::Error::source(cause)
        .and_then(|s| s.downcast_ref::<d1_export::Error>())
        .map(d1_export::Error::kind);
    assert_eq!(d1, Some(d1_export::ErrorKind::Unauthorized));
}

/// A ping server that answers only requests carrying the embedder's header.
async fn header_checking_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-embedder", "svc-7"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/client/v4/accounts/{UCCA}/d1/database")))
        .and(header("x-embedder", "svc-7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "success": true, "errors": [], "messages": [], "result": [],
            "result_info": { "page": 1, "per_page": 100, "count": 0, "total_count": 0 }
        })))
        .mount(&server)
        .await;
    server
}

fn embedder_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-embedder",
        reqwest::header::HeaderValue::from_static("svc-7"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test]
async fn heartbeat_pings_go_through_the_callers_client() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let ping = header_checking_server().await;
    let config = simulated(&sim, &["ops-db"], &["rto-x"])
        .heartbeat(HeartbeatConfig::default().url(format!("{}/ping/abc", ping.uri())))
        .build()
        .unwrap();
    let memory: std::sync::Arc<dyn r2_sink::BackupSink> =
        std::sync::Arc::new(r2_sink::ObjectStoreSink::memory());
    let engine = Engine::builder(config, code_secrets())
        .sink(memory)
        .http_client(embedder_client())
        .build()
        .unwrap();
    let only = || RunOptions::new(date()).only(["ucca/ops-db".parse().unwrap()]);
    for _ in 0..2 {
        let report = run(&engine, only()).await;
        assert!(report.succeeded(), "{report:#?}");
        assert_eq!(report.heartbeat.len(), 1);
        assert_eq!(report.heartbeat[0].error, None, "{:?}", report.heartbeat);
    }
    let pings = ping.received_requests().await.unwrap();
    assert_eq!(
        pings.len(),
        2,
        "one ping per run, each through the caller's client"
    );
    assert!(pings.iter().all(|p| p.headers.get("x-embedder").is_some()));

    // Without the caller's client the same ping carries no such header, and is refused.
    let plain = Engine::builder(
        simulated(&sim, &["ops-db"], &["rto-x"])
            .heartbeat(HeartbeatConfig::default().url(format!("{}/ping/abc", ping.uri())))
            .build()
            .unwrap(),
        code_secrets(),
    )
    .sink(std::sync::Arc::new(r2_sink::ObjectStoreSink::memory()))
    .build()
    .unwrap();
    let report = run(&plain, only()).await;
    assert!(
        report.heartbeat[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("404"))
    );
}

#[tokio::test]
async fn d1_api_calls_go_through_the_callers_client() {
    let api = header_checking_server().await;
    let config = Config::builder(SinkConfig::fs("/nonexistent-unused"))
        .cloudflare(CloudflareConfig::default().api_base_url(format!("{}/client/v4", api.uri())))
        .account(ucca())
        .build()
        .unwrap();
    let engine = Engine::builder(config, Secrets::new().with("CF_API_TOKEN", "t"))
        .sink(std::sync::Arc::new(r2_sink::ObjectStoreSink::memory()))
        .http_client(embedder_client())
        .build()
        .unwrap();
    let listed = engine.remote_databases().await;
    assert_eq!(
        listed[0].error, None,
        "the header reached the API: {listed:?}"
    );
    assert_eq!(listed[0].missing, ["ops-db"]);
    let requests = api.received_requests().await.unwrap();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.headers.get("x-embedder").is_some())
    );
}

#[cfg(feature = "sqlite")]
mod local {
    //! Back up, list, prune, verify and restore, all with a configuration built in code.

    use std::path::{Path, PathBuf};

    use d1_backup_core::chrono::Duration;
    use d1_backup_core::tokio_util::sync::CancellationToken;
    use d1_backup_core::{
        AccountConfig, Config, DatabaseEntry, Engine, PruneOptions, RestoreRequest, RestoreTarget,
        RetentionConfig, RunOptions, Secrets, SinkConfig, Status, VerifyOptions,
    };

    use crate::support::date;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/databases")
            .join(name)
    }

    #[tokio::test]
    async fn a_service_backs_up_lists_prunes_verifies_and_restores_with_code_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let config = Config::builder(SinkConfig::fs(&backups))
            .retention(
                RetentionConfig::default()
                    .keep_days(7)
                    .min_keep(1)
                    .no_prune_after_run(),
            )
            .account(AccountConfig::new("local", "local/").databases([
                DatabaseEntry::named("shop").sqlite(example("shop.sqlite")),
                DatabaseEntry::named("blog").sqlite(example("blog.sqlite")),
            ]))
            .build()
            .unwrap();
        // Local databases need no secret at all.
        let engine = Engine::builder(config, Secrets::new())
            .owner("programmatic-test")
            .build()
            .unwrap();
        let cancel = CancellationToken::new();

        let old = date() - Duration::days(20);
        for day in [old, date()] {
            let report = engine
                .run(&RunOptions::new(day), &(), &cancel)
                .await
                .unwrap();
            assert!(report.succeeded(), "{report:#?}");
            assert!(report.prune.is_none(), "prune_after_run is off");
        }
        let shop = backups.join("local/2026-11-30/shop.sql");
        assert!(shop.is_file(), "the fs sink wrote under the given path");

        let listed = engine.list_backups(&[]).await.unwrap();
        let found: Vec<(&str, String, bool)> = listed
            .iter()
            .map(|l| (l.database.as_str(), l.date.to_string(), l.complete))
            .collect();
        assert_eq!(
            found,
            [
                ("blog", "2026-11-10".to_owned(), true),
                ("blog", "2026-11-30".to_owned(), true),
                ("shop", "2026-11-10".to_owned(), true),
                ("shop", "2026-11-30".to_owned(), true),
            ]
        );

        let pruned = engine.prune(&PruneOptions::new(date())).await.unwrap();
        assert!(pruned.errors.is_empty(), "{pruned:?}");
        assert!(
            pruned.deleted >= 4,
            "dumps and manifests of 2026-11-10: {pruned:?}"
        );
        let left: Vec<String> = engine
            .list_backups(&[])
            .await
            .unwrap()
            .iter()
            .map(|l| format!("{}/{}", l.database, l.date))
            .collect();
        assert_eq!(left, ["blog/2026-11-30", "shop/2026-11-30"]);

        let verified = engine.verify(&VerifyOptions::new(&scratch)).await.unwrap();
        assert_eq!(verified.len(), 2);
        assert!(verified.iter().all(|v| v.ok), "{verified:#?}");

        let target = dir.path().join("restored-shop.sqlite");
        let request = RestoreRequest::new(
            "local/shop".parse().unwrap(),
            RestoreTarget::sqlite(&target),
            &scratch,
        );
        let plan = engine.restore_plan(&request).await.unwrap();
        assert!(plan.allowed(), "{:?}", plan.refusals);
        let restored = engine.restore_to_sqlite(&plan, &cancel).await.unwrap();
        assert_eq!(restored.tables.get("orders"), Some(&4));
        let conn = rusqlite::Connection::open(&target).unwrap();
        let orders: i64 = conn
            .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
            .unwrap();
        assert_eq!(orders, 4);
        let statuses: Vec<Status> = engine
            .run(&RunOptions::new(date()), &(), &cancel)
            .await
            .unwrap()
            .databases
            .iter()
            .map(|d| d.status)
            .collect();
        assert_eq!(
            statuses,
            [Status::Skipped, Status::Skipped],
            "already backed up"
        );
    }
}
