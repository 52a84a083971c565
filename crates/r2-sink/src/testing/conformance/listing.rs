//! Checks of listing and batched deletes.

use bytes::Bytes;
use futures::{StreamExt, stream};

use super::{fresh, list, ok, put};
use crate::{BackupSink, ObjectInfo};

/// Listing yields exactly the keys with the string prefix, in byte order.
pub async fn list_in_key_order_with_prefix_isolation(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "list_in_key_order_with_prefix_isolation").await;
    // Inserted out of order; '-' < '/' < '0' in byte order, so directories interleave.
    let names = [
        "p/a0",
        "p/a/b",
        "p/a-c",
        "p/b",
        "p/a/a/deep",
        "q/a",
        "p2/x",
        "p/ä",
    ];
    for name in names {
        put(sink, &format!("{prefix}{name}"), &Bytes::from(name)).await;
    }
    let keys = |infos: Vec<ObjectInfo>| -> Vec<String> {
        infos
            .into_iter()
            .map(|i| i.key[prefix.len()..].to_owned())
            .collect()
    };
    let all = keys(list(sink, &prefix).await);
    let mut sorted: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    sorted.sort();
    assert_eq!(all, sorted, "everything, in byte order");
    assert_eq!(
        keys(list(sink, &format!("{prefix}p/a")).await),
        ["p/a-c", "p/a/a/deep", "p/a/b", "p/a0"],
        "a string prefix, not a directory"
    );
    assert_eq!(
        keys(list(sink, &format!("{prefix}p/")).await).len(),
        6,
        "p/ excludes p2/"
    );
    assert!(
        list(sink, &format!("{prefix}none/")).await.is_empty(),
        "empty prefix"
    );
    let info = &list(sink, &format!("{prefix}p/b")).await[0];
    assert_eq!(info.size, 3, "listed objects carry their size");
}

/// Listing and deleting work past S3's 1,000-keys-per-request pages.
pub async fn list_many_keys(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "list_many_keys").await;
    let keys: Vec<String> = (0..1_100).map(|i| format!("{prefix}k{i:05}")).collect();
    let x = Bytes::from_static(b"x");
    let puts = stream::iter(keys.iter().map(|key| put(sink, key, &x)));
    puts.buffer_unordered(16).collect::<Vec<_>>().await;
    let listed: Vec<String> = list(sink, &prefix)
        .await
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(listed, keys, "all 1,100 keys, in order");
    ok(sink.delete_many(&keys).await, "delete 1,100 keys");
    assert!(list(sink, &prefix).await.is_empty(), "all deleted");
}

/// `delete_many` deletes what exists and ignores what does not.
pub async fn delete_many_ignores_missing(sink: &dyn BackupSink) {
    let prefix = fresh(sink, "delete_many_ignores_missing").await;
    let (a, b, c) = (
        format!("{prefix}a"),
        format!("{prefix}b"),
        format!("{prefix}c"),
    );
    put(sink, &a, &Bytes::from_static(b"a")).await;
    put(sink, &c, &Bytes::from_static(b"c")).await;
    ok(
        sink.delete_many(&[a.clone(), b.clone()]).await,
        "delete with a missing key",
    );
    let left: Vec<String> = list(sink, &prefix)
        .await
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(left, [c], "only the undeleted key is left");
    ok(sink.delete_many(&[]).await, "delete nothing");
}
