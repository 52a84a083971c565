//! What monitoring reads, as a new user tries it (issue 17): `status` after a run, with a
//! database added, and with `--max-age 0`; the metrics file and the daemon's `/metrics`, each
//! checked by `promtool check metrics`; a failing run posting its report to webhooks, one of
//! which fails and one hangs, without changing the exit code.

use std::io::Write as _;
use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::commands::{TOKEN, World, terminate};
use crate::text;

/// `promtool check metrics` on `metrics`. Skipped, saying why, where promtool is not
/// installed, except when `D1_BACKUP_REQUIRE_PROMTOOL` is set, as `.ci/run` sets it after
/// installing Debian's `prometheus` package.
fn promtool_check(what: &str, metrics: &str) {
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            assert!(
                std::env::var_os("D1_BACKUP_REQUIRE_PROMTOOL").is_none(),
                "promtool is required here but cannot be run: {error}"
            );
            eprintln!(
                "skipping `promtool check metrics` of {what}: promtool is not installed ({error}); `apt-get install prometheus` provides it"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool refused {what}:\n{}{}\n{metrics}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// The sample lines of `metrics` for `name`.
fn samples<'m>(metrics: &'m str, name: &str) -> Vec<&'m str> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .collect()
}

#[tokio::test]
async fn status_is_fresh_after_a_run_and_names_what_is_missing_or_stale() {
    let world = World::new("").await;
    let output = world.run(&["run"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let output = world.run(&["status"]).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    for db in ["ucca/ops-db", "ucca/engine-db"] {
        let line = stdout.lines().find(|l| l.starts_with(db)).unwrap();
        assert!(line.ends_with("fresh"), "{line}");
    }

    // A database added to the file, never backed up: exit 1, named, with the fix.
    let file = world.dir.path().join("d1-backup.toml");
    let config = std::fs::read_to_string(&file).unwrap().replace(
        r#"databases = ["ops-db", "engine-db"]"#,
        r#"databases = ["ops-db", "engine-db", "forgotten-db"]"#,
    );
    std::fs::write(&file, config).unwrap();
    let output = world.run(&["status", "--json"]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("stale: ucca/forgotten-db has no complete backup")
            && stderr.contains("d1-backup run --only ucca/forgotten-db"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["max_age_hours"], 26.0);
    let fresh: Vec<(&str, bool)> = report["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["fresh"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        fresh,
        [
            ("ops-db", true),
            ("engine-db", true),
            ("forgotten-db", false)
        ]
    );
    assert!(report["databases"][0]["bytes"].as_u64().unwrap() > 0);

    // --only the fresh ones: 0 again; --max-age 0: everything is stale.
    let only = world.run(&["status", "--only", "ops-db"]).await;
    assert_eq!(only.status.code(), Some(0), "{}", text(&only.stderr));
    let zero = world
        .run(&["status", "--max-age", "0", "--only", "ops-db"])
        .await;
    assert_eq!(zero.status.code(), Some(1));
    assert!(text(&zero.stderr).contains("stale: ucca/ops-db is stale"));

    // Usage and configuration errors are 2.
    let bad = world.run(&["status", "--max-age=-3"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("is not a number of hours"));
    std::fs::write(&file, "[sink]\nkind = \"fs\"\npath = \"x\"\nbogus = 1\n").unwrap();
    let broken = world.run(&["status"]).await;
    assert_eq!(broken.status.code(), Some(2), "{}", text(&broken.stderr));
}

#[tokio::test]
async fn a_runs_metrics_file_has_every_database_and_passes_promtool() {
    // engine-db's export fails: the file must still carry its (zero) last success.
    let world = World::new("").await;
    world.sim.inject(
        "00000000-0000-4000-8000-000000000002",
        d1_export::testing::Fault::ExportError("disk on fire".to_owned()),
    );
    let out_dir = world.dir.path().join("textfile");
    std::fs::create_dir(&out_dir).unwrap();
    let output = world
        .run(&["run", "--metrics-file", "textfile/d1_backup.prom"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let names: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["d1_backup.prom"],
        "only the file, no temporary left"
    );
    let metrics = std::fs::read_to_string(out_dir.join("d1_backup.prom")).unwrap();
    let success = samples(&metrics, "d1_backup_last_success_timestamp_seconds");
    assert_eq!(success.len(), 2, "{metrics}");
    assert!(
        success
            .iter()
            .any(|l| l.contains("database=\"engine-db\"") && l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        samples(&metrics, "d1_backup_failures_total")
            .contains(&"d1_backup_failures_total{account=\"ucca\",database=\"engine-db\"} 1")
    );
    assert!(
        samples(&metrics, "d1_backup_api_requests_total")[0] != "d1_backup_api_requests_total 0"
    );
    promtool_check("the metrics file", &metrics);
}

/// A port free a moment ago on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_daemon_serves_metrics_while_a_backup_runs() {
    let port = free_port();
    let world = World::new(&format!(
        "\n[daemon]\nmetrics_listen = \"127.0.0.1:{port}\"\n\n[[schedules]]\nname = \"every-second\"\ncron = \"* * * * * *\"\ndatabases = [\"ops-db\"]\n"
    ))
    .await;
    // A first backup, so the daemon starts with a last success to show.
    let output = world.run(&["run", "--only", "engine-db"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let ops = "00000000-0000-4000-8000-000000000001";
    world.sim.set_polls_before_complete(ops, 100_000); // the export never completes
    let child = world.daemon();
    world.wait_for_exports(ops, 1).await;
    assert_eq!(world.sim.exports_started(ops), 1, "the backup is running");

    let base = format!("http://127.0.0.1:{port}");
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = response.text().await.unwrap();
    let success = samples(&metrics, "d1_backup_last_success_timestamp_seconds");
    assert_eq!(success.len(), 2, "every database: {metrics}");
    assert!(
        success
            .iter()
            .any(|l| l.contains("engine-db") && !l.ends_with(" 0")),
        "engine-db's backup from the listing: {metrics}"
    );
    promtool_check("the daemon's /metrics", &metrics);
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    let output = terminate(child).await;
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "the listener closed"
    );
}

#[tokio::test]
async fn a_failing_run_posts_its_report_and_a_broken_webhook_changes_nothing() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook/private-part"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/down/private-part"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/slow/private-part"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_mins(1)))
        .mount(&hooks)
        .await;
    let uri = hooks.uri();
    let world = World::new(&format!(
        "\n[[notify]]\nurl = \"{uri}/hook/private-part\"\n\n[[notify]]\nname = \"pager\"\nurl = \"{uri}/down/private-part\"\nretries = 1\n\n[[notify]]\nurl = \"{uri}/slow/private-part\"\ntimeout_seconds = 1\nretries = 0\n"
    ))
    .await;
    world.sim.inject(
        "00000000-0000-4000-8000-000000000002",
        d1_export::testing::Fault::ExportError("disk on fire".to_owned()),
    );
    let output = world.run(&["run", "--json"]).await;
    let stderr = text(&output.stderr);
    // Exit 1 for the failed database, exactly as without webhooks.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("notification pager not sent after 2 attempt(s): the webhook answered 503")
            && stderr.contains("notification notify[2] not sent after 1 attempt(s): the webhook did not answer within 1 s"),
        "{stderr}"
    );
    let all = format!("{}{stderr}", text(&output.stdout));
    assert!(
        !all.contains("private-part") && !all.contains(TOKEN),
        "{all}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["notifications"][0]["error"], Value::Null);
    assert_eq!(report["notifications"][1]["attempts"], 2);

    let received = hooks.received_requests().await.unwrap();
    let posted = received
        .iter()
        .find(|r| r.url.path() == "/hook/private-part")
        .unwrap();
    let posted: Value = serde_json::from_slice(&posted.body).unwrap();
    assert_eq!(posted["databases"][1]["name"], "engine-db");
    assert_eq!(posted["databases"][1]["status"], "failed");
    assert!(
        posted["databases"][1]["error"]
            .as_str()
            .unwrap()
            .contains("disk on fire")
    );
}

#[tokio::test]
async fn a_metrics_address_in_use_is_a_usage_error_before_any_backup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let world = World::new(&format!(
        "\n[daemon]\nmetrics_listen = \"127.0.0.1:{port}\"\n\n[[schedules]]\nname = \"every-second\"\ncron = \"* * * * * *\"\n"
    ))
    .await;
    let output = world.run(&["daemon"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen for metrics on 127.0.0.1:{port}"))
            && stderr.contains("hint: choose a free port in [daemon] metrics_listen"),
        "{stderr}"
    );
    assert_eq!(
        world
            .sim
            .exports_started("00000000-0000-4000-8000-000000000001"),
        0
    );
    drop(taken);
}
