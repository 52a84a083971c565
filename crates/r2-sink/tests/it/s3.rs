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
