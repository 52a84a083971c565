//! `D1Client::export`: the whole start/poll loop against stateful mocks.

use std::time::Duration;

use d1_export::{ErrorKind, ExportEvent};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::*;

const URL: &str = "https://bucket.example.com/dump.sql?X-Amz-Signature=SIGSECRET";

async fn mount_export(server: &MockServer, responses: Vec<ResponseTemplate>) {
    Mock::given(method("POST"))
        .and(path(export_path()))
        .respond_with(Seq::new(responses))
        .mount(server)
        .await;
}

fn requests_for(requests: &[Request], with_bookmark: bool) -> usize {
    requests
        .iter()
        .filter(|r| bookmark_of(r).is_some() == with_bookmark)
        .count()
}

#[tokio::test]
async fn completes_with_events_in_order_and_polls_plus_one_requests() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(export_path()))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_partial_json(json!({"output_format": "polling",
            "dump_options": {"no_data": false, "no_schema": true, "tables": ["a", "b"]}})))
        .respond_with(Seq::new(vec![
            active("bm-1", &["Generating dump.sql"]),
            active("bm-1", &[]),
            active("bm-1", &["Uploaded part 2", "Uploaded part 1"]),
            complete("bm-1", URL),
        ]))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let mut options = fast_export();
    options.dump.tables = vec!["a".into(), "b".into()];
    options.dump.no_schema = true;
    let recorder = Recorder::default();
    let done = client
        .export(ACCOUNT, DB, &options, &recorder.callback())
        .await
        .unwrap();

    assert_eq!(done.polls, 3);
    assert_eq!(done.bookmark, "bm-1");
    assert_eq!(done.filename.as_deref(), Some("dump.sql"));
    assert_eq!(done.signed_url.expose(), URL);
    assert!(!format!("{done:?}").contains("SIGSECRET"));
    let polled = |polls, status: &str| ExportEvent::Polled {
        polls,
        status: status.into(),
    };
    let message = |text: &str| ExportEvent::Message(text.into());
    assert_eq!(
        recorder.events(),
        vec![
            ExportEvent::Started {
                bookmark: "bm-1".into()
            },
            message("Generating dump.sql"),
            polled(1, "active"),
            polled(2, "active"),
            message("Uploaded part 2"),
            message("Uploaded part 1"),
            polled(3, "complete"),
            message("Finished uploading dump.sql in 4 parts."),
            ExportEvent::Completed {
                bookmark: "bm-1".into()
            },
        ]
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests.len() as u32,
        done.polls + 1,
        "no request beyond start + polls"
    );
    assert_eq!(requests_for(&requests, false), 1, "one start");
    assert!(
        requests[1..]
            .iter()
            .all(|r| bookmark_of(r).as_deref() == Some("bm-1"))
    );
}

#[tokio::test]
async fn immediate_completion_needs_no_poll() {
    let server = MockServer::start().await;
    mount_export(&server, vec![complete("bm-0", URL)]).await;
    let done = client(&server.uri())
        .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap();
    assert_eq!(done.polls, 0);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn poll_faults_retry_the_poll_with_the_same_bookmark() {
    let server = MockServer::start().await;
    mount_export(
        &server,
        vec![
            active("bm-7", &[]),
            ResponseTemplate::new(500).set_body_json(
                json!({"success": false, "errors": [{"code": 7500, "message": "internal"}]}),
            ),
            html(502),
            ResponseTemplate::new(200).set_body_raw("not json at all", "text/plain"),
            ResponseTemplate::new(503).set_body_json(json!({"code": 1, "error": "overloaded"})),
            active("bm-7", &[]),
            complete("bm-7", URL),
        ],
    )
    .await;
    let recorder = Recorder::default();
    let done = client(&server.uri())
        .export(ACCOUNT, DB, &fast_export(), &recorder.callback())
        .await
        .unwrap();
    assert_eq!(done.polls, 2, "failed attempts do not count as polls");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests_for(&requests, false), 1, "never a second start");
    assert!(
        requests[1..]
            .iter()
            .all(|r| bookmark_of(r).as_deref() == Some("bm-7"))
    );
    let retries: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ExportEvent::Retrying { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 4, "{retries:?}");
    assert!(
        retries[1].contains("502 Bad Gateway") && retries[1].contains("not JSON"),
        "{}",
        retries[1]
    );
    assert!(retries.iter().all(|r| !r.contains(TOKEN)));
}

#[tokio::test]
async fn poll_survives_a_dropped_connection() {
    // The raw server drops the second request (the first poll) unanswered.
    let body = |value: Value| {
        serde_json::to_vec(&json!({"success": true, "errors": [], "messages": [], "result": value}))
            .unwrap()
    };
    let server = RawServer::start(move |index, _| match index {
        0 => Plan::Fixed { status: 202, content_type: "application/json", body: body(json!({"success": true, "at_bookmark": "bm-d", "status": "active"})) },
        1 => Plan::Hang,
        _ => Plan::Fixed {
            status: 200,
            content_type: "application/json",
            body: body(json!({"success": true, "at_bookmark": "bm-d", "status": "complete", "result": {"signed_url": URL}})),
        },
    })
    .await;
    let done = client(&format!("http://{}", server.addr))
        .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap();
    assert_eq!(done.polls, 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "start, dropped poll, retried poll");
}

#[tokio::test]
async fn error_status_is_export_failed_with_the_server_message() {
    let server = MockServer::start().await;
    mount_export(
        &server,
        vec![
            active("bm-e", &[]),
            ok(200, json!({"success": true, "at_bookmark": "bm-e", "status": "error", "error": "D1 ran out of disk", "messages": ["Generating"]})),
        ],
    )
    .await;
    let recorder = Recorder::default();
    let err = client(&server.uri())
        .export(ACCOUNT, DB, &fast_export(), &recorder.callback())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExportFailed);
    assert_eq!(err.server_message(), Some("D1 ran out of disk"));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("D1 ran out of disk"), "{err}");
    assert!(
        recorder
            .events()
            .contains(&ExportEvent::Message("Generating".into())),
        "messages of the failed answer are shown"
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn inner_success_false_is_export_failed() {
    let server = MockServer::start().await;
    mount_export(
        &server,
        vec![ok(
            200,
            json!({"success": false, "error": "boom", "status": "active"}),
        )],
    )
    .await;
    let err = client(&server.uri())
        .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExportFailed);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

const BUSY: &str = "Currently processing a long-running export. Cannot start a new export until that completes or times out.";

#[tokio::test]
async fn export_in_progress_in_every_shape_is_its_own_kind() {
    let shapes = vec![
        fail(409, 7500, BUSY),
        fail(400, 7500, BUSY),
        ok(200, json!({"success": false, "error": BUSY})),
        ResponseTemplate::new(429).set_body_json(json!({"code": 7500, "error": BUSY})),
    ];
    for shape in shapes {
        let server = MockServer::start().await;
        mount_export(&server, vec![shape]).await;
        let err = client(&server.uri())
            .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExportInProgress, "{err}");
        assert!(err.is_retryable());
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "not retried without opt-in"
        );
    }
}

#[tokio::test]
async fn wait_if_busy_retries_the_start() {
    let server = MockServer::start().await;
    mount_export(
        &server,
        vec![
            fail(409, 7500, BUSY),
            ok(200, json!({"success": false, "error": BUSY})),
            active("bm-w", &[]),
            complete("bm-w", URL),
        ],
    )
    .await;
    let mut options = fast_export();
    options.wait_if_busy = Some(Duration::from_secs(5));
    let recorder = Recorder::default();
    let done = client(&server.uri())
        .export(ACCOUNT, DB, &options, &recorder.callback())
        .await
        .unwrap();
    assert_eq!(done.polls, 1);
    let retrying = recorder
        .events()
        .iter()
        .filter(|e| matches!(e, ExportEvent::Retrying { .. }))
        .count();
    assert_eq!(retrying, 2);
}

#[tokio::test]
async fn virtual_tables_are_their_own_kind() {
    let server = MockServer::start().await;
    let text = "D1 Export error: cannot export databases with Virtual Tables (fts5)";
    mount_export(
        &server,
        vec![
            active("bm-v", &[]),
            ok(
                200,
                json!({"success": true, "at_bookmark": "bm-v", "status": "error", "error": text}),
            ),
        ],
    )
    .await;
    let err = client(&server.uri())
        .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VirtualTablesUnsupported);
    assert!(err.to_string().contains("DumpOptions::tables"), "{err}");
}

#[tokio::test]
async fn max_wait_is_timed_out_and_unset_means_no_limit() {
    let server = MockServer::start().await;
    mount_export(&server, vec![active("bm-t", &[])]).await;
    let mut options = fast_export();
    options.poll_interval = Duration::from_millis(10);
    options.max_wait = Some(Duration::from_millis(100));
    let err = client(&server.uri())
        .export(ACCOUNT, DB, &options, &|_: &ExportEvent| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(crate::support::fast_export().max_wait.is_none());
}

#[tokio::test]
async fn rate_limit_storm_waits_for_retry_after() {
    let server = MockServer::start().await;
    let limited = || {
        fail(
            429,
            971,
            "Please wait and consider throttling your request speed",
        )
        .insert_header("retry-after", "0")
    };
    mount_export(
        &server,
        vec![
            limited(),
            limited(),
            active("bm-r", &[]),
            limited(),
            limited(),
            limited(),
            ResponseTemplate::new(429),
            complete("bm-r", URL),
        ],
    )
    .await;
    let recorder = Recorder::default();
    let done = client(&server.uri())
        .export(ACCOUNT, DB, &fast_export(), &recorder.callback())
        .await
        .unwrap();
    assert_eq!(done.polls, 1);
    assert_eq!(
        requests_for(&server.received_requests().await.unwrap(), false),
        3,
        "the start was retried, not repeated after success"
    );
    assert_eq!(
        recorder
            .events()
            .iter()
            .filter(|e| matches!(e, ExportEvent::Retrying { .. }))
            .count(),
        6
    );
}

#[tokio::test]
async fn retry_after_is_honoured_in_seconds() {
    let server = MockServer::start().await;
    mount_export(
        &server,
        vec![
            fail(429, 971, "slow down").insert_header("retry-after", "1"),
            complete("bm", URL),
        ],
    )
    .await;
    let start = std::time::Instant::now();
    client(&server.uri())
        .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn rate_limit_past_the_policy_is_rate_limited_with_retry_after() {
    let server = MockServer::start().await;
    mount_export(
        &server,
        vec![fail(429, 971, "slow down").insert_header("retry-after", "300")],
    )
    .await;
    let mut policy = fast_retry();
    policy.max_rate_limit_wait = Duration::from_mins(1);
    let client = d1_export::D1Client::builder(TOKEN.into())
        .base_url(format!("{}/client/v4/", server.uri()))
        .retry(policy)
        .build()
        .unwrap();
    let err = client
        .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_mins(5)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn unauthorized_is_not_retried_and_hides_the_token() {
    let server = MockServer::start().await;
    mount_export(&server, vec![fail(401, 10000, "Authentication error")]).await;
    let err = client(&server.uri())
        .export(ACCOUNT, DB, &fast_export(), &|_: &ExportEvent| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.api_code(), Some(10000));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(
        err.to_string()
            .contains("401 Unauthorized, code 10000: Authentication error"),
        "{err}"
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn start_and_poll_primitives() {
    let server = MockServer::start().await;
    mount_export(
        &server,
        vec![active("bm-p", &["hello"]), complete("bm-p", URL)],
    )
    .await;
    let client = client(&server.uri());
    let dump = d1_export::DumpOptions::default();
    let started = client.start_export(ACCOUNT, DB, &dump).await.unwrap();
    assert_eq!(started.bookmark, "bm-p");
    assert_eq!(started.messages, vec!["hello"]);
    assert!(matches!(started.state, d1_export::ExportState::Active));
    let polled = client
        .poll_export(ACCOUNT, DB, &dump, &started.bookmark)
        .await
        .unwrap();
    assert!(matches!(
        polled.state,
        d1_export::ExportState::Complete { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn default_pacing_is_one_poll_a_second_on_tokio_time() {
    let server = MockServer::start().await;
    mount_export(
        &server,
        vec![
            active("bm-s", &[]),
            active("bm-s", &[]),
            active("bm-s", &[]),
            complete("bm-s", URL),
        ],
    )
    .await;
    // No request timeout: with paused time, a pending timeout would fire while waiting on I/O.
    let client = d1_export::D1Client::builder(TOKEN.into())
        .base_url(format!("{}/client/v4", server.uri()))
        .no_request_timeout()
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let wall = std::time::Instant::now();
    let done = client
        .export(
            ACCOUNT,
            DB,
            &d1_export::ExportOptions::default(),
            &|_: &ExportEvent| {},
        )
        .await
        .unwrap();
    assert_eq!(done.polls, 3);
    let elapsed = start.elapsed();
    // Only a lower bound: while a request waits on I/O, paused time may jump
    // ahead to unrelated timers (the connection pool's idle timer).
    assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
    assert!(
        wall.elapsed() < Duration::from_secs(3),
        "paced on tokio time, not wall time"
    );
}
