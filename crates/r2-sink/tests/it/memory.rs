//! The conformance suite on the in-memory sink.

use r2_sink::{BackupSink, ObjectStoreSink, testing::conformance};

use crate::Fixture;

#[allow(clippy::unused_async, reason = "conformance_suite! awaits every setup")]
async fn setup() -> Fixture {
    Fixture {
        sink: ObjectStoreSink::memory(),
        _keep: Box::new(()),
    }
}

conformance_suite!(setup);

#[tokio::test]
async fn run_all_passes_on_one_shared_sink() {
    let sink = ObjectStoreSink::memory();
    conformance::run_all(&sink).await;
    assert_eq!(sink.describe(), "memory");
}
