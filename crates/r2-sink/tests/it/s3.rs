//! The conformance suite on S3 and R2 sinks against the in-process S3 server.

use r2_sink::ObjectStoreSink;
use r2_sink::testing::{R2Rules, S3TestServer};

use crate::Fixture;

async fn setup() -> Fixture {
    let server = S3TestServer::start().await.unwrap();
    Fixture {
        sink: server.sink().unwrap(),
        _keep: Box::new(server),
    }
}

conformance_suite!(setup);

mod r2 {
    use super::*;

    /// The R2 constructor against a server enforcing R2's part rule.
    async fn setup() -> Fixture {
        let server = S3TestServer::start_with(R2Rules::Enforce).await.unwrap();
        Fixture {
            sink: ObjectStoreSink::r2(server.r2_options()).unwrap(),
            _keep: Box::new(server),
        }
    }

    conformance_suite!(setup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_many_sends_batches_of_1000() {
    use r2_sink::BackupSink;
    let server = S3TestServer::start().await.unwrap();
    let sink = server.sink().unwrap();
    let keys: Vec<String> = (0..2_001).map(|i| format!("gone/{i}")).collect();
    sink.delete_many(&keys).await.unwrap();
    assert_eq!(
        server.delete_objects_requests(),
        3,
        "2,001 keys in 3 requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_open_uploads_page_by_page_with_their_start() {
    use r2_sink::BackupSink;
    use std::time::{Duration, SystemTime};
    let server = S3TestServer::start().await.unwrap();
    for sink in [
        server.sink().unwrap(),
        ObjectStoreSink::r2(server.r2_options()).unwrap(),
    ] {
        assert!(sink.capabilities().lists_uploads);
        assert!(sink.list_uploads("d1/").await.unwrap().is_empty());
    }
    let sink = server.sink().unwrap();
    // More than one page (S3 answers at most 1,000 a request), under two prefixes.
    let mut ids = Vec::new();
    for i in 0..1_003 {
        let key = format!("d1/2026-12-0{}/db {i}.sql", 1 + i % 3);
        ids.push((key.clone(), server.start_upload(&key).await.unwrap()));
    }
    let other = server
        .start_upload("rtopacks/2026-12-01/x.sql")
        .await
        .unwrap();
    let before = SystemTime::now();
    server.age_open_uploads(Duration::from_hours(48));

    let listed = sink.list_uploads("d1/").await.unwrap();
    assert_eq!(listed.len(), 1_003);
    let mut expected = ids.clone();
    expected.sort();
    let got: Vec<(String, String)> = listed
        .iter()
        .map(|u| (u.key.clone(), u.upload_id.clone()))
        .collect();
    assert_eq!(got, expected, "every upload once, in key order");
    for upload in &listed {
        let started = upload.initiated.expect("S3 reports when an upload started");
        assert!(started < before - Duration::from_hours(24), "{upload:?}");
    }
    let others = sink.list_uploads("rtopacks/").await.unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].upload_id, other);

    // Aborted uploads are no longer listed.
    let (key, id) = &ids[0];
    assert!(sink.abort_upload(key, id).await.unwrap());
    assert_eq!(sink.list_uploads("d1/").await.unwrap().len(), 1_002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_uploads_with_a_wrong_key_is_permission_denied_without_the_secret() {
    use r2_sink::{BackupSink, Credentials, ErrorKind, S3Options};
    let server = S3TestServer::start().await.unwrap();
    let options = S3Options::new(
        server.endpoint(),
        server.bucket(),
        Credentials::new(server.access_key_id(), "not-the-secret-key-0123"),
    )
    .allow_http(r2_sink::AllowHttp::Yes)
    .retry(S3TestServer::test_retry());
    let sink = ObjectStoreSink::s3(options).unwrap();
    let error = sink.list_uploads("d1/").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("not-the-secret-key-0123"), "{shown}");
    assert!(shown.contains("list multipart uploads"), "{shown}");
}
