//! Checks of atomicity: conditional create and failed puts.

use bytes::Bytes;

use super::{LARGE, fresh, list, ok, put, read};
use crate::testing::data::failing_body;
use crate::{BackupSink, ErrorKind, PutOptions};

/// `put_if_absent` creates once, then reports the key taken and leaves the object alone.
pub async fn put_if_absent_creates_once(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "put_if_absent_creates_once").await;
    let key = format!("{prefix}lease");
    let first = Bytes::from_static(b"first");
    assert!(ok(
        sink.put_if_absent(&key, first.clone(), PutOptions::default())
            .await,
        "create"
    ));
    let second = Bytes::from_static(b"second");
    assert!(!ok(
        sink.put_if_absent(&key, second, PutOptions::default())
            .await,
        "create again"
    ));
    assert_eq!(
        read(sink, &key, None).await,
        first,
        "the first object stays"
    );
}

/// Of several racing `put_if_absent` calls exactly one wins.
pub async fn put_if_absent_race_has_one_winner(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "put_if_absent_race_has_one_winner").await;
    let key = format!("{prefix}lease");
    let racers = (0..8)
        .map(|i| sink.put_if_absent(&key, Bytes::from(format!("{i}")), PutOptions::default()));
    let results = futures::future::join_all(racers).await;
    let wins = results
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(wins, 1, "exactly one creator wins");
}

/// A body that fails leaves nothing new at the key, and the error says the source failed.
pub async fn failed_source_leaves_nothing(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "failed_source_leaves_nothing").await;
    let key = format!("{prefix}obj");
    let error = sink
        .put_stream(&key, failing_body(1000), PutOptions::default())
        .await
        .err();
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::SourceFailed));
    assert!(
        ok(sink.head(&key).await, "head").is_none(),
        "nothing at the key"
    );
    assert!(
        list(sink, &prefix).await.is_empty(),
        "nothing under the prefix"
    );
    // With an object already there, a failed put leaves it untouched.
    put(sink, &key, &Bytes::from_static(b"old")).await;
    let error = sink
        .put_stream(&key, failing_body(10), PutOptions::default())
        .await
        .err();
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::SourceFailed));
    assert_eq!(read(sink, &key, None).await, Bytes::from_static(b"old"));
}

/// A body that fails after several parts were uploaded leaves nothing at the key.
pub async fn failed_source_mid_multipart_leaves_nothing(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "failed_source_mid_multipart_leaves_nothing").await;
    let key = format!("{prefix}obj");
    let error = sink
        .put_stream(&key, failing_body(LARGE), PutOptions::default())
        .await
        .err();
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::SourceFailed));
    assert!(
        ok(sink.head(&key).await, "head").is_none(),
        "nothing at the key"
    );
    assert!(
        list(sink, &prefix).await.is_empty(),
        "nothing under the prefix"
    );
}
