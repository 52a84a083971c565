//! The conformance suite on the filesystem sink, plus its atomicity: no temporary files left.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use r2_sink::testing::{failing_body, pattern_body, pattern_sha256};
use r2_sink::{
    BackupSink, Durability, LocalOptions, MultipartOptions, ObjectStoreSink, PutOptions,
};

use crate::Fixture;

#[allow(clippy::unused_async, reason = "conformance_suite! awaits every setup")]
async fn setup() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::local(dir.path(), LocalOptions::default()).unwrap();
    Fixture {
        sink,
        _keep: Box::new(dir),
    }
}

conformance_suite!(setup);

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

fn small_parts() -> LocalOptions {
    LocalOptions::default().multipart(
        MultipartOptions::default()
            .part_size(5 << 20)
            .max_in_flight(2),
    )
}

#[tokio::test]
async fn creates_missing_root_and_describes_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b");
    let sink = ObjectStoreSink::local(&root, LocalOptions::default()).unwrap();
    assert!(root.is_dir());
    assert_eq!(sink.describe(), format!("fs:{}", root.display()));
}

#[tokio::test]
async fn fsync_durability_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::local(dir.path(), small_parts().fsync(Durability::Fsync)).unwrap();
    let len = 12 << 20;
    let receipt = sink
        .put_stream("x/y", pattern_body(len, 65_536), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(receipt.sha256, pattern_sha256(len));
    assert_eq!(files_under(dir.path()), [dir.path().join("x/y")]);
}

#[tokio::test]
async fn failed_put_leaves_no_file_or_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::local(dir.path(), small_parts()).unwrap();
    let error = sink
        .put_stream("d/obj", failing_body(23 << 20), PutOptions::default())
        .await;
    assert!(error.is_err());
    assert_eq!(
        files_under(dir.path()),
        Vec::<PathBuf>::new(),
        "no file, no temp file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_put_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::local(dir.path(), small_parts()).unwrap();
    // 12 MiB, then a body that never ends: the put can only be dropped.
    let body = pattern_body(12 << 20, 65_536)
        .chain(futures::stream::pending())
        .boxed();
    let put = sink.put_stream("d/obj", body, PutOptions::default());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), put)
            .await
            .is_err()
    );
    for _ in 0..100 {
        if files_under(dir.path()).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("temporary files left: {:?}", files_under(dir.path()));
}
