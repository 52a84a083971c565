//! Failure handling against the S3 server: retried parts, aborted uploads, dropped puts.

use std::time::Duration;

use futures::StreamExt;
use r2_sink::testing::{R2Rules, S3TestServer, digest, pattern_body, pattern_sha256};
use r2_sink::{BackupSink, ErrorKind, MultipartOptions, ObjectStoreSink, PutOptions};

const MIB: u64 = 1 << 20;

/// 5 MiB parts, so multipart tests stay small.
fn sink(server: &S3TestServer, in_flight: usize) -> ObjectStoreSink {
    let multipart = MultipartOptions::default()
        .part_size(5 * MIB)
        .max_in_flight(in_flight);
    ObjectStoreSink::s3(server.s3_options().multipart(multipart)).unwrap()
}

/// Asserts nothing is at `key` and no multipart upload or part file is left on the server.
async fn assert_nothing_left(server: &S3TestServer, sink: &ObjectStoreSink, key: &str) {
    assert!(
        sink.head(key).await.unwrap().is_none(),
        "no object at {key}"
    );
    assert_eq!(
        server.list_multipart_uploads().await,
        Vec::<String>::new(),
        "no open upload"
    );
    assert!(
        server.stored_files().is_empty(),
        "no stored files: {:?}",
        server.stored_files()
    );
}

/// Waits up to 5 s for the server to have no open multipart upload.
async fn wait_for_no_uploads(server: &S3TestServer) {
    for _ in 0..250 {
        if server.list_multipart_uploads().await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let files: Vec<_> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    panic!(
        "uploads left open: {:?}; data dir: {files:?}",
        server.list_multipart_uploads().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_part_is_retried() {
    let server = S3TestServer::start_with(R2Rules::Enforce).await.unwrap();
    let sink = sink(&server, 4);
    server.fail_upload_parts(2, 1);
    let len = 23 * MIB + 7;
    let receipt = sink
        .put_stream("k", pattern_body(len, 65_536), PutOptions::default())
        .await
        .unwrap();
    assert_eq!((receipt.size, receipt.sha256), (len, pattern_sha256(len)));
    assert_eq!(
        server.upload_part_requests(),
        5 + 1,
        "five parts, one retried"
    );
    let stored = digest(sink.get("k", None).await.unwrap()).await.unwrap();
    assert_eq!(stored, (len, pattern_sha256(len)));
    assert!(server.list_multipart_uploads().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_cannot_complete_is_aborted() {
    let server = S3TestServer::start().await.unwrap();
    let sink = sink(&server, 4);
    server.fail_upload_parts(3, u64::MAX);
    let error = sink
        .put_stream("k", pattern_body(40 * MIB, 65_536), PutOptions::default())
        .await;
    let error = error.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(error.is_retryable());
    assert_nothing_left(&server, &sink, "k").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_completion_is_aborted() {
    let server = S3TestServer::start().await.unwrap();
    let sink = sink(&server, 4);
    server.fail_complete_multipart_uploads(u64::MAX);
    let error = sink
        .put_stream("k", pattern_body(12 * MIB, 65_536), PutOptions::default())
        .await;
    assert!(error.is_err());
    assert_nothing_left(&server, &sink, "k").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_error_mid_upload_aborts_it() {
    let server = std::sync::Arc::new(S3TestServer::start().await.unwrap());
    let sink = sink(&server, 4);
    // The source fails only once two parts have reached the server, so the abort has
    // uploaded parts to clean up whatever the machine's speed.
    let watched = std::sync::Arc::clone(&server);
    let after_two_parts = futures::stream::once(async move {
        while watched.upload_part_requests() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(std::io::Error::other("injected source failure"))
    });
    let body = pattern_body(17 * MIB, 65_536)
        .chain(after_two_parts)
        .boxed();
    let error = sink.put_stream("k", body, PutOptions::default()).await;
    assert_eq!(error.unwrap_err().kind(), ErrorKind::SourceFailed);
    assert!(
        server.upload_part_requests() >= 2,
        "parts were uploaded before the failure"
    );
    assert_nothing_left(&server, &sink, "k").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_put_aborts_its_upload() {
    let server = S3TestServer::start().await.unwrap();
    let sink = sink(&server, 2);
    // 17 MiB, then a body that never ends: the put can only be dropped.
    let body = pattern_body(17 * MIB, 65_536)
        .chain(futures::stream::pending())
        .boxed();
    let put = sink.put_stream("k", body, PutOptions::default());
    let started = async {
        while server.list_multipart_uploads().await.is_empty() || server.upload_part_requests() < 3
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        result = put => panic!("put finished: {result:?}"),
        () = started => {}
    }
    // The put future is dropped here; its upload must be aborted in the background.
    wait_for_no_uploads(&server).await;
    assert_nothing_left(&server, &sink, "k").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_in_flight_are_bounded() {
    let server = S3TestServer::start().await.unwrap();
    for in_flight in [1, 3] {
        let sink = sink(&server, in_flight);
        sink.put_stream("k", pattern_body(31 * MIB, 65_536), PutOptions::default())
            .await
            .unwrap();
        let seen = server.max_concurrent_part_uploads();
        assert!(
            seen <= in_flight as u64,
            "{seen} parts at once with max {in_flight}"
        );
    }
}
