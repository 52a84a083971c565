//! Integration tests of `r2-sink`: the conformance suite on every backend, R2 part rules,
//! failure handling, and the public API. One test binary, one module per topic.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::any::Any;

use r2_sink::ObjectStoreSink;

/// A sink plus whatever must stay alive for it (a temporary directory, a server).
struct Fixture {
    sink: ObjectStoreSink,
    _keep: Box<dyn Any + Send>,
}

/// Generates one `#[tokio::test]` per conformance check, each on a fresh sink from `$setup`.
macro_rules! conformance_suite {
    ($setup:path) => {
        conformance_suite!(@each $setup;
            put_get_roundtrip, receipt_has_size_and_sha256, empty_object,
            large_object_roundtrip, ranged_get, get_missing_is_not_found,
            head_present_and_absent, overwrite_replaces_whole_object,
            list_in_key_order_with_prefix_isolation, list_many_keys,
            delete_many_ignores_missing, put_if_absent_creates_once,
            put_if_absent_race_has_one_winner, failed_source_leaves_nothing,
            failed_source_mid_multipart_leaves_nothing, metadata_survives_as_documented,
            invalid_keys_are_refused);
    };
    (@each $setup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $setup().await;
                r2_sink::testing::conformance::$name(&fixture.sink).await;
            }
        )*
    };
}

mod api;
mod failures;
mod fs;
mod memory;
mod r2_rules;
mod s3;
