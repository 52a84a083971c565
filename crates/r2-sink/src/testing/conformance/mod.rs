//! The [`BackupSink`] conformance suite: one function per guarantee of the trait's contract.
//!
//! Each function panics with a message naming the broken guarantee. Each works under its own
//! key prefix (`conformance/<function>/`), which it empties first, so the functions can run
//! in any order, on a shared sink, and again on a persistent store.
//!
//! # Panics
//!
//! Every function here panics when the sink breaks the guarantee it checks.
#![allow(
    clippy::missing_panics_doc,
    reason = "the module docs say once that every check panics on a broken guarantee"
)]

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};

use crate::{BackupSink, ObjectInfo, PutOptions, PutReceipt, Result};

/// Size of the large objects used here: three 16 MiB parts, the last short, not a multiple of any
/// power of two.
const LARGE: u64 = 33 * 1024 * 1024 + 12_345;

mod atomicity;
mod listing;
mod objects;

pub use atomicity::{
    failed_source_leaves_nothing, failed_source_mid_multipart_leaves_nothing,
    put_if_absent_creates_once, put_if_absent_race_has_one_winner,
};
pub use listing::{
    delete_many_ignores_missing, list_in_key_order_with_prefix_isolation, list_many_keys,
};
pub use objects::{
    empty_object, get_missing_is_not_found, head_present_and_absent, invalid_keys_are_refused,
    large_object_roundtrip, metadata_survives_as_documented, overwrite_replaces_whole_object,
    put_get_roundtrip, ranged_get, receipt_has_size_and_sha256,
};

/// Runs every check in this module, in order.
///
/// # Panics
///
/// When the sink breaks any guarantee.
pub async fn run_all(sink: &dyn BackupSink) {
    put_get_roundtrip(sink).await;
    receipt_has_size_and_sha256(sink).await;
    empty_object(sink).await;
    large_object_roundtrip(sink).await;
    ranged_get(sink).await;
    get_missing_is_not_found(sink).await;
    head_present_and_absent(sink).await;
    overwrite_replaces_whole_object(sink).await;
    list_in_key_order_with_prefix_isolation(sink).await;
    list_many_keys(sink).await;
    delete_many_ignores_missing(sink).await;
    put_if_absent_creates_once(sink).await;
    put_if_absent_race_has_one_winner(sink).await;
    failed_source_leaves_nothing(sink).await;
    failed_source_mid_multipart_leaves_nothing(sink).await;
    metadata_survives_as_documented(sink).await;
    invalid_keys_are_refused(sink).await;
}

fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error} ({:?})", std::error::Error::source(&error)),
    }
}

/// Deletes everything under `prefix` and returns it.
async fn fresh(sink: &dyn BackupSink, name: &str) -> String {
    let prefix = format!("conformance/{name}/");
    let keys: Vec<String> = ok(
        sink.list(&prefix).map_ok(|o| o.key).try_collect().await,
        "list",
    );
    ok(sink.delete_many(&keys).await, "delete_many");
    prefix
}

async fn put(sink: &dyn BackupSink, key: &str, data: &Bytes) -> PutReceipt {
    let body = stream::iter([Ok(data.clone())]).boxed();
    ok(sink.put_stream(key, body, PutOptions::default()).await, key)
}

async fn read(sink: &dyn BackupSink, key: &str, range: Option<std::ops::Range<u64>>) -> Bytes {
    let body = ok(sink.get(key, range).await, key);
    let chunks: Vec<Bytes> = match body.try_collect().await {
        Ok(chunks) => chunks,
        Err(error) => panic!("reading {key}: {error}"),
    };
    chunks.concat().into()
}

async fn list(sink: &dyn BackupSink, prefix: &str) -> Vec<ObjectInfo> {
    ok(sink.list(prefix).try_collect().await, prefix)
}
