//! The public API: configuration checks, labels, forwarding impls.

use std::sync::Arc;

use r2_sink::testing::{S3TestServer, conformance};
use r2_sink::{
    AllowHttp, BackupSink, Credentials, ErrorKind, ObjectStoreSink, R2Options, S3Options,
};

#[test]
fn plain_http_needs_consent() {
    let options = S3Options::new("http://127.0.0.1:9", "b", Credentials::new("a", "s"));
    let error = ObjectStoreSink::s3(options.clone()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(ObjectStoreSink::s3(options.allow_http(AllowHttp::Yes)).is_ok());
}

#[test]
fn bad_config_is_refused() {
    let creds = || Credentials::new("a", "s");
    let cases = [
        ObjectStoreSink::s3(S3Options::new("https://h", "", creds())),
        ObjectStoreSink::s3(S3Options::new("not a url", "b", creds())),
        ObjectStoreSink::r2(R2Options::new("", "b", creds())),
        ObjectStoreSink::r2(R2Options::new("acct/../x", "b", creds())),
        ObjectStoreSink::r2(R2Options::new("acct", "b", creds()).jurisdiction("e u")),
    ];
    for (i, case) in cases.into_iter().enumerate() {
        assert_eq!(
            case.unwrap_err().kind(),
            ErrorKind::InvalidConfig,
            "case {i}"
        );
    }
}

#[test]
fn labels_name_the_target_without_secrets() {
    let creds = Credentials::new("AKIDSECRETID", "TOPSECRET");
    let s3 =
        ObjectStoreSink::s3(S3Options::new("https://s3.example.com", "b", creds.clone())).unwrap();
    assert_eq!(s3.describe(), "s3://b at https://s3.example.com");
    let r2 = ObjectStoreSink::r2(R2Options::new("1234abcd", "b", creds.clone()).jurisdiction("eu"))
        .unwrap();
    assert_eq!(r2.describe(), "r2://b (account 1234…, jurisdiction eu)");
    for text in [
        s3.describe(),
        r2.describe(),
        format!("{s3:?}"),
        format!("{r2:?}"),
    ] {
        assert!(
            !text.contains("TOPSECRET") && !text.contains("AKIDSECRETID"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_and_box_forward() {
    let server = S3TestServer::start().await.unwrap();
    let arc: Arc<dyn BackupSink> = Arc::new(server.sink().unwrap());
    conformance::put_get_roundtrip(&arc).await;
    conformance::metadata_survives_as_documented(&arc).await;
    let boxed: Box<dyn BackupSink> = Box::new(Arc::clone(&arc));
    conformance::list_in_key_order_with_prefix_isolation(&boxed).await;
    assert!(boxed.capabilities().stores_metadata);
    assert!(
        boxed
            .describe()
            .starts_with("s3://backups at http://127.0.0.1:")
    );
}
