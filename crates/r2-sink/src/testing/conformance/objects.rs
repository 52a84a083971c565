//! Checks of single objects: put, get, ranges, head, metadata, keys.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::{StreamExt, stream};

use super::{LARGE, fresh, ok, put, read};
use crate::testing::data::{digest, pattern_body, pattern_bytes, pattern_sha256};
use crate::{BackupSink, ErrorKind, PutOptions, Result};

/// A put body in several chunks comes back byte for byte.
pub async fn put_get_roundtrip(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "put_get_roundtrip").await;
    let key = format!("{prefix}a/b.bin");
    let data = pattern_bytes(300_000);
    let body = pattern_body(300_000, 7_777);
    ok(
        sink.put_stream(&key, body, PutOptions::default()).await,
        "put",
    );
    assert_eq!(
        read(sink, &key, None).await,
        data,
        "get returns what was put"
    );
}

/// The receipt's size and SHA-256 describe the bytes put.
pub async fn receipt_has_size_and_sha256(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "receipt_has_size_and_sha256").await;
    let key = format!("{prefix}obj");
    let body = pattern_body(123_457, 1_000);
    let receipt = ok(
        sink.put_stream(&key, body, PutOptions::default()).await,
        "put",
    );
    assert_eq!(receipt.key, key);
    assert_eq!(receipt.size, 123_457, "receipt size");
    assert_eq!(receipt.sha256, pattern_sha256(123_457), "receipt sha256");
    assert_eq!(receipt.sha256_hex(), hex::encode(pattern_sha256(123_457)));
}

/// An empty body stores an empty object.
pub async fn empty_object(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "empty_object").await;
    let key = format!("{prefix}empty");
    let receipt = ok(
        sink.put_stream(&key, stream::empty().boxed(), PutOptions::default())
            .await,
        "put",
    );
    assert_eq!(receipt.size, 0);
    assert_eq!(receipt.sha256, pattern_sha256(0));
    let info = ok(sink.head(&key).await, "head");
    assert_eq!(
        info.map(|i| i.size),
        Some(0),
        "empty object exists with size 0"
    );
    assert!(read(sink, &key, None).await.is_empty());
}

/// An object larger than several parts round-trips, and the receipt matches it.
pub async fn large_object_roundtrip(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "large_object_roundtrip").await;
    let key = format!("{prefix}large");
    let options = PutOptions::default().size_hint(LARGE);
    let receipt = ok(
        sink.put_stream(&key, pattern_body(LARGE, 100_000), options)
            .await,
        "put",
    );
    assert_eq!(
        (receipt.size, receipt.sha256),
        (LARGE, pattern_sha256(LARGE)),
        "receipt"
    );
    let (len, sha) = match digest(ok(sink.get(&key, None).await, "get")).await {
        Ok(digest) => digest,
        Err(error) => panic!("reading large object: {error}"),
    };
    assert_eq!(
        (len, sha),
        (LARGE, pattern_sha256(LARGE)),
        "large object read back"
    );
    assert_eq!(
        ok(sink.head(&key).await, "head").map(|i| i.size),
        Some(LARGE)
    );
}

/// Ranged gets return the bytes asked for, cut at the end; bad ranges are refused.
pub async fn ranged_get(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "ranged_get").await;
    let key = format!("{prefix}obj");
    let data = pattern_bytes(1000);
    put(sink, &key, &data).await;
    assert_eq!(
        read(sink, &key, Some(10..20)).await,
        data.slice(10..20),
        "middle range"
    );
    assert_eq!(
        read(sink, &key, Some(0..1)).await,
        data.slice(0..1),
        "first byte"
    );
    assert_eq!(
        read(sink, &key, Some(990..5000)).await,
        data.slice(990..),
        "range past end"
    );
    for bad in [5..5, 1000..1010, 2000..3000] {
        let kind = sink
            .get(&key, Some(bad.clone()))
            .await
            .err()
            .map(|e| e.kind());
        assert_eq!(
            kind,
            Some(ErrorKind::InvalidInput),
            "range {bad:?} is refused"
        );
    }
}

/// Getting a missing key fails with `NotFound`.
pub async fn get_missing_is_not_found(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "get_missing_is_not_found").await;
    let kind = sink
        .get(&format!("{prefix}missing"), None)
        .await
        .err()
        .map(|e| e.kind());
    assert_eq!(kind, Some(ErrorKind::NotFound));
    let kind = sink
        .get(&format!("{prefix}missing"), Some(0..1))
        .await
        .err()
        .map(|e| e.kind());
    assert_eq!(
        kind,
        Some(ErrorKind::NotFound),
        "ranged get of a missing key"
    );
}

/// `head` describes a present object and returns `None` for an absent one, including a key
/// that is only a prefix of other keys.
pub async fn head_present_and_absent(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "head_present_and_absent").await;
    let key = format!("{prefix}dir/obj");
    put(sink, &key, &Bytes::from_static(b"12345")).await;
    let info = ok(sink.head(&key).await, "head").unwrap_or_else(|| panic!("{key} missing"));
    assert_eq!((info.key.as_str(), info.size), (key.as_str(), 5));
    assert!(info.last_modified.is_some(), "head has a modification time");
    assert!(ok(sink.head(&format!("{prefix}absent")).await, "head").is_none());
    assert!(
        ok(sink.head(&format!("{prefix}dir")).await, "head").is_none(),
        "a prefix is no object"
    );
}

/// A second put replaces the first object whole.
pub async fn overwrite_replaces_whole_object(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "overwrite_replaces_whole_object").await;
    let key = format!("{prefix}obj");
    put(sink, &key, &pattern_bytes(5000)).await;
    put(sink, &key, &Bytes::from_static(b"short")).await;
    assert_eq!(read(sink, &key, None).await, Bytes::from_static(b"short"));
}

/// Content type and user metadata come back from `head` where the sink stores them.
pub async fn metadata_survives_as_documented(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "metadata_survives_as_documented").await;
    let metadata: BTreeMap<String, String> = [("sha256", "abc123"), ("source-db", "db-1")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
    let mut options = PutOptions::default().content_type("application/gzip");
    options.metadata.clone_from(&metadata);
    let small = format!("{prefix}small");
    let body = stream::iter([Ok(Bytes::from_static(b"x"))]).boxed();
    ok(
        sink.put_stream(&small, body, options.clone()).await,
        "put small",
    );
    let large = format!("{prefix}large");
    ok(
        sink.put_stream(&large, pattern_body(LARGE, 1 << 20), options.clone())
            .await,
        "put large",
    );
    let lease = format!("{prefix}lease");
    ok(
        sink.put_if_absent(&lease, Bytes::from_static(b"l"), options)
            .await,
        "create",
    );
    for key in [small, large, lease] {
        let info = ok(sink.head(&key).await, "head").unwrap_or_else(|| panic!("{key} missing"));
        if sink.capabilities().stores_metadata {
            assert_eq!(
                info.content_type.as_deref(),
                Some("application/gzip"),
                "{key}"
            );
            assert_eq!(info.metadata, metadata, "{key}");
        } else {
            assert!(
                info.metadata.is_empty(),
                "{key}: no metadata where none is stored"
            );
        }
    }
}

/// Malformed keys are refused with `InvalidInput` by every operation.
pub async fn invalid_keys_are_refused(sink: &dyn BackupSink) {
    for key in ["", "/abs", "dir/", "a//b", "a/../b", "./a"] {
        let kind = |r: Result<()>| r.err().map(|e| e.kind());
        let put = sink
            .put_stream(key, stream::empty().boxed(), PutOptions::default())
            .await;
        assert_eq!(
            kind(put.map(drop)),
            Some(ErrorKind::InvalidInput),
            "put {key:?}"
        );
        assert_eq!(
            kind(sink.head(key).await.map(drop)),
            Some(ErrorKind::InvalidInput),
            "head {key:?}"
        );
        assert_eq!(
            kind(sink.get(key, None).await.map(drop)),
            Some(ErrorKind::InvalidInput),
            "get {key:?}"
        );
        let create = sink
            .put_if_absent(key, Bytes::new(), PutOptions::default())
            .await;
        assert_eq!(
            kind(create.map(drop)),
            Some(ErrorKind::InvalidInput),
            "create {key:?}"
        );
        let delete = sink.delete_many(&[key.to_owned()]).await;
        assert_eq!(
            kind(delete),
            Some(ErrorKind::InvalidInput),
            "delete {key:?}"
        );
    }
}
