//! R2's multipart rules: the test server enforces them exactly as R2 does, and the sink
//! passes them by construction.

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use r2_sink::testing::{R2Rules, S3TestServer, digest, pattern_body, pattern_sha256};
use r2_sink::{BackupSink, MultipartOptions, ObjectStoreSink, PutOptions};

const MIB: u64 = 1 << 20;

/// Asserts every part but the last has the same size, the last no larger, summing to `len`.
fn assert_equal_parts(parts: &[u64], part_size: u64, len: u64) {
    let (last, rest) = parts.split_last().unwrap();
    assert!(rest.iter().all(|&p| p == part_size), "parts {parts:?}");
    assert!(*last <= part_size && *last > 0, "last part {last}");
    assert_eq!(parts.iter().sum::<u64>(), len);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rejects_unequal_parts_like_r2() {
    let server = S3TestServer::start_with(R2Rules::Enforce).await.unwrap();
    let sink = ObjectStoreSink::s3(server.s3_options()).unwrap();
    let store = sink.object_store();
    let mut upload = store.put_multipart(&Path::from("unequal")).await.unwrap();
    for size in [5 * MIB, 6 * MIB, MIB] {
        let part = PutPayload::from(vec![0u8; usize::try_from(size).unwrap()]);
        upload.put_part(part).await.unwrap();
    }
    let error = upload.complete().await.unwrap_err().to_string();
    assert!(error.contains("InvalidPart"), "{error}");
    assert!(
        error.contains("All non-trailing parts must have the same length"),
        "{error}"
    );
    upload.abort().await.unwrap();
    assert!(server.list_multipart_uploads().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_sink_uploads_100_mib_in_equal_parts() {
    let server = S3TestServer::start_with(R2Rules::Enforce).await.unwrap();
    let sink = ObjectStoreSink::r2(server.r2_options()).unwrap();
    // Not a multiple of the 16 MiB part size, fed in chunks that straddle part boundaries.
    let len = 100 * MIB + 12_345;
    let receipt = sink
        .put_stream("big", pattern_body(len, 100_003), PutOptions::default())
        .await
        .unwrap();
    assert_eq!((receipt.size, receipt.sha256), (len, pattern_sha256(len)));
    let uploads = server.completed_uploads();
    assert_eq!(uploads.len(), 1);
    assert_equal_parts(&uploads[0].part_sizes, 16 * MIB, len);
    assert_eq!(uploads[0].part_sizes.len(), 7);
    assert_eq!(
        digest(sink.get("big", None).await.unwrap()).await.unwrap(),
        (len, pattern_sha256(len))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_hint_raises_part_size() {
    let server = S3TestServer::start_with(R2Rules::Enforce).await.unwrap();
    let multipart = MultipartOptions::default().part_size(5 * MIB);
    let sink = ObjectStoreSink::r2(server.r2_options().multipart(multipart)).unwrap();
    // A hint of 60,000 MiB needs 6 MiB parts to stay within 10,000 parts.
    let options = PutOptions::default().size_hint(60_000 * MIB);
    let len = 20 * MIB;
    sink.put_stream("hinted", pattern_body(len, 65_536), options)
        .await
        .unwrap();
    assert_equal_parts(&server.completed_uploads()[0].part_sizes, 6 * MIB, len);
}
