//! End to end against the `testing` feature's D1 simulator, as a new user
//! would run it: export, download, and each fault it can inject.

use std::fmt::Write as _;

use d1_export::testing::{D1Simulator, Fault};
use std::time::Duration;

use d1_export::{D1Client, ErrorKind, ExportEvent, RateLimit};
use futures::TryStreamExt;

use crate::support::{assert_no_secret, fast_export};

const ACC: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const SIM_TOKEN: &str = "sim-token-1";

fn dump(rows: usize) -> Vec<u8> {
    let mut sql = String::from(
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n",
    );
    for i in 0..rows {
        writeln!(
            sql,
            "INSERT INTO \"t\" (\"id\",\"v\") VALUES({i},'row {i}');"
        )
        .unwrap();
    }
    sql.into_bytes()
}

async fn world() -> (D1Simulator, D1Client) {
    let sim = D1Simulator::start().await;
    sim.add_account(ACC, SIM_TOKEN);
    let client = D1Client::builder(SIM_TOKEN.into())
        .base_url(sim.base_url())
        .retry(crate::support::fast_retry())
        // The default budget (3 requests/s after a burst of 10) would pace these tests.
        .rate_limit(RateLimit::new(1000, Duration::from_secs(1)))
        .build()
        .unwrap();
    (sim, client)
}

async fn export_and_download(client: &D1Client, uuid: &str) -> d1_export::Result<(u32, Vec<u8>)> {
    let done = client
        .export(ACC, uuid, &fast_export(), &|_: &ExportEvent| {})
        .await?;
    let download = client.download(&done.signed_url).await?;
    let chunks: Vec<bytes::Bytes> = download.into_stream().try_collect().await?;
    Ok((done.polls, chunks.concat()))
}

#[tokio::test]
async fn exports_byte_exact_within_polls_plus_three_requests() {
    let (sim, client) = world().await;
    let body = dump(2000);
    let uuid = sim.add_database(ACC, "ops-db", body.clone());
    sim.set_polls_before_complete(&uuid, 5);
    let (polls, got) = export_and_download(&client, &uuid).await.unwrap();
    assert!(got == body);
    assert!(
        sim.requests() <= u64::from(polls) + 3,
        "{} requests for {polls} polls",
        sim.requests()
    );
    assert_eq!(sim.exports_started(&uuid), 1);
}

#[tokio::test]
async fn finds_databases_by_name_across_pages() {
    let (sim, client) = world().await;
    for i in 0..7 {
        sim.add_database(ACC, &format!("db-{i}"), dump(1));
    }
    sim.set_page_size(3);
    let all = client.list_databases(ACC).await.unwrap();
    assert_eq!(all.len(), 7);
    let info = client.database_info(ACC, "db-6").await.unwrap();
    assert_eq!(info.uuid, all[6].uuid);
    assert!(info.file_size.is_some());
}

#[tokio::test]
async fn each_fault_has_its_own_kind() {
    let (sim, client) = world().await;
    let fts = sim.add_database(ACC, "fts", dump(1));
    sim.inject(
        &fts,
        Fault::ExportError(
            "D1 Export error: cannot export databases with Virtual Tables (fts5)".into(),
        ),
    );
    let failed = sim.add_database(ACC, "failed", dump(1));
    sim.inject(&failed, Fault::ExportError("disk on fire".into()));
    let busy = sim.add_database(ACC, "busy", dump(1));
    sim.inject(&busy, Fault::ExportInProgress);
    let expired = sim.add_database(ACC, "expired", dump(1));
    sim.inject(&expired, Fault::RefuseSignedUrl(u32::MAX));
    for (uuid, kind) in [
        (&fts, ErrorKind::VirtualTablesUnsupported),
        (&failed, ErrorKind::ExportFailed),
        (&busy, ErrorKind::ExportInProgress),
        (&expired, ErrorKind::UrlExpired),
    ] {
        let err = export_and_download(&client, uuid).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert_no_secret(&err);
        assert!(!err.to_string().contains("5ec2e7f00d5ec2e7"), "{err}");
    }
    assert_eq!(sim.exports_started(&busy), 0);
}

#[tokio::test]
async fn a_refused_first_url_is_cured_by_a_fresh_export() {
    let (sim, client) = world().await;
    let body = dump(10);
    let uuid = sim.add_database(ACC, "once", body.clone());
    sim.inject(&uuid, Fault::RefuseSignedUrl(1));
    let err = export_and_download(&client, &uuid).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UrlExpired);
    let (_, got) = export_and_download(&client, &uuid).await.unwrap();
    assert!(got == body);
    assert_eq!(sim.exports_started(&uuid), 2);
}

#[tokio::test]
async fn another_accounts_token_is_unauthorized() {
    let (sim, _) = world().await;
    sim.add_account("other", "other-token");
    let uuid = sim.add_database("other", "theirs", dump(1));
    let client = D1Client::builder(SIM_TOKEN.into())
        .base_url(sim.base_url())
        .build()
        .unwrap();
    let err = client
        .export("other", &uuid, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.to_string().contains(SIM_TOKEN));
    assert_eq!(sim.requests(), 1, "401 is never retried");
}

/// Failed requests a counted fault causes.
fn fault_hits(fault: &Fault) -> u64 {
    match fault {
        Fault::ServerErrors(n) | Fault::BadGatewayHtml(n) | Fault::RateLimited(n) => u64::from(*n),
        _ => 0,
    }
}

#[tokio::test]
async fn survives_poll_faults_rate_limits_and_a_dropped_download() {
    let (sim, client) = world().await;
    let body = dump(5000);
    let faults = [
        Fault::ServerErrors(3),
        Fault::BadGatewayHtml(3),
        Fault::RateLimited(4),
        Fault::DropDownload(10_000),
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let uuid = sim.add_database(ACC, &format!("db-{i}"), body.clone());
        sim.inject(&uuid, fault.clone());
        let (before, start) = (sim.requests(), std::time::Instant::now());
        let (polls, got) = export_and_download(&client, &uuid)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert!(got == body, "{fault:?}: byte-exact");
        // start + polls + download, plus one resumed download or the failed requests.
        let extra = u64::from(matches!(fault, Fault::DropDownload(_))) + fault_hits(&fault);
        assert_eq!(
            sim.requests() - before,
            u64::from(polls) + 2 + extra,
            "{fault:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "{fault:?}");
        assert_eq!(sim.exports_started(&uuid), 1, "{fault:?}: one export");
    }
}

/// Collects everything the client logs, at every level.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_show_the_token_or_a_signature() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (sim, client) = world().await;
    for fault in [
        Fault::BadGatewayHtml(2),
        Fault::DropDownload(100),
        Fault::RefuseSignedUrl(1),
    ] {
        let uuid = sim.add_database(ACC, "logged", dump(100));
        sim.inject(&uuid, fault);
        let _ = export_and_download(&client, &uuid).await;
    }
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("retrying") && text.contains("resuming download"),
        "the faults were logged: {text}"
    );
    assert!(!text.contains(SIM_TOKEN), "token in logs");
    assert!(
        !text.contains("X-Amz-Signature") && !text.contains("5ec2e7f00d5ec2e7"),
        "signature in logs"
    );
}
