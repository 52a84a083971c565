//! Creating databases and Time Travel restores, against the simulator (with a fake database
//! that keeps every state) and against wiremock for the failures whose outcome is unknown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use d1_export::testing::{D1Simulator, SimulatedDatabase, SimulatedRows};
use d1_export::{D1Client, DumpOptions, ErrorKind, RateLimit, TimeTravelPoint};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

use crate::support::{self, Seq, fail, fast_retry, ok};

const ACC: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const SIM_TOKEN: &str = "sim-token-tt";

/// A fake database that keeps every state it has had: `INSERT <word>` adds a row, any other
/// SQL reads the rows. State `i` has bookmark version `i + 1`.
#[derive(Debug)]
struct History {
    /// Every state, oldest first, and the index of the current one.
    states: Mutex<(Vec<Vec<String>>, usize)>,
}

impl History {
    fn new() -> Self {
        Self {
            states: Mutex::new((vec![Vec::new()], 0)),
        }
    }

    fn rows(&self) -> Vec<String> {
        let states = self.states.lock().unwrap();
        states.0[states.1].clone()
    }

    fn push(&self, rows: Vec<String>) {
        let mut states = self.states.lock().unwrap();
        states.0.push(rows);
        states.1 = states.0.len() - 1;
    }
}

fn bookmark_of(index: usize) -> String {
    format!("{:08x}-00000000-00004f6d-{:032x}", index + 1, index + 1)
}

impl SimulatedDatabase for History {
    fn query(&self, sql: &str, _: &[Value]) -> Result<Vec<SimulatedRows>, String> {
        if let Some(word) = sql.strip_prefix("INSERT ") {
            let mut rows = self.rows();
            rows.push(word.to_owned());
            self.push(rows);
            let mut result = SimulatedRows::default();
            result.changed_db = true;
            return Ok(vec![result]);
        }
        let rows = self.rows().into_iter().map(|r| vec![json!(r)]).collect();
        Ok(vec![SimulatedRows::new(vec!["v".to_owned()], rows)])
    }

    fn export(&self, _: &DumpOptions) -> Result<Bytes, String> {
        Ok(Bytes::from_static(b"PRAGMA defer_foreign_keys=TRUE;\n"))
    }

    fn import(&self, _: &[u8]) -> Result<u64, String> {
        Err("not in this fake".to_owned())
    }

    fn bookmark(&self) -> String {
        bookmark_of(self.states.lock().unwrap().1)
    }

    fn restore_bookmark(&self, bookmark: &str) -> Result<String, String> {
        let index = (0..self.states.lock().unwrap().0.len())
            .find(|i| bookmark_of(*i) == bookmark)
            .ok_or_else(|| format!("no state of this database has bookmark {bookmark}"))?;
        let rows = self.states.lock().unwrap().0[index].clone();
        self.push(rows);
        Ok(self.bookmark())
    }

    fn num_tables(&self) -> Option<u64> {
        Some(1)
    }
}

async fn world() -> (D1Simulator, D1Client) {
    let sim = D1Simulator::start().await;
    sim.add_account(ACC, SIM_TOKEN);
    let client = D1Client::builder(SIM_TOKEN.into())
        .base_url(sim.base_url())
        .retry(fast_retry())
        .rate_limit(RateLimit::new(1000, Duration::from_secs(1)))
        .build()
        .unwrap();
    (sim, client)
}

async fn rows(client: &D1Client, uuid: &str) -> Vec<String> {
    let raw = client.raw(ACC, uuid, "SELECT v", &[]).await.unwrap();
    raw[0]
        .rows
        .iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect()
}

async fn write(client: &D1Client, uuid: &str, word: &str) {
    client
        .query(ACC, uuid, &format!("INSERT {word}"), &[])
        .await
        .unwrap();
}

fn at(bookmark: &str) -> TimeTravelPoint {
    TimeTravelPoint::Bookmark(bookmark.to_owned())
}

#[tokio::test]
async fn creates_an_empty_database_with_its_location() {
    let (sim, client) = world().await;
    let created = client
        .create_database(ACC, "restored-1", Some("weur"))
        .await
        .unwrap();
    assert_eq!(created.name, "restored-1");
    assert_eq!(
        sim.database_uuid(ACC, "restored-1"),
        Some(created.uuid.clone())
    );
    assert_eq!(sim.location(&created.uuid).as_deref(), Some("weur"));
    let info = client.database_info(ACC, "restored-1").await.unwrap();
    assert_eq!(
        (info.uuid.as_str(), info.num_tables),
        (created.uuid.as_str(), Some(0))
    );

    // No hint: none recorded, and the hint is left out of the request.
    let plain = client.create_database(ACC, "plain", None).await.unwrap();
    assert_eq!(sim.location(&plain.uuid), None);
    assert_eq!(client.list_databases(ACC).await.unwrap().len(), 2);
}

#[tokio::test]
async fn refuses_bad_and_taken_names() {
    let (sim, client) = world().await;
    for bad in ["Ops", "my db", "", "a.b", "café"] {
        let err = client.create_database(ACC, bad, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        assert!(err.to_string().contains("lower-case letters"), "{err}");
    }
    assert_eq!(sim.requests(), 0, "refused before sending");

    // The simulator refuses them too, as D1 does, for clients that do not check.
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}/accounts/{ACC}/d1/database", sim.base_url()))
        .bearer_auth(SIM_TOKEN)
        .json(&json!({"name": "Bad Name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);

    client.create_database(ACC, "taken", None).await.unwrap();
    let err = client
        .create_database(ACC, "taken", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.api_code(), Some(7502));
    assert!(err.to_string().contains("pick another name"), "{err}");
    assert!(!err.is_retryable());

    let err = client
        .create_database(ACC, "x", Some("mars"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_created_database_has_the_factorys_backend() {
    let (sim, client) = world().await;
    sim.set_database_factory(Arc::new(|_: &str| -> Arc<dyn SimulatedDatabase> {
        Arc::new(History::new())
    }));
    let created = client.create_database(ACC, "backed", None).await.unwrap();
    write(&client, &created.uuid, "a").await;
    assert_eq!(rows(&client, &created.uuid).await, ["a"]);
    let info = client.database_info(ACC, &created.uuid).await.unwrap();
    assert_eq!(info.num_tables, Some(1), "from the backend");
}

#[tokio::test]
async fn restores_there_and_back() {
    let (sim, client) = world().await;
    let uuid = sim.add_backed_database(ACC, "tt", Arc::new(History::new()));
    write(&client, &uuid, "a").await;
    let after_a = client.current_bookmark(ACC, &uuid).await.unwrap();
    write(&client, &uuid, "b").await;
    write(&client, &uuid, "c").await;
    let before = client.current_bookmark(ACC, &uuid).await.unwrap();

    let restore = client
        .time_travel_restore(ACC, &uuid, at(&after_a))
        .await
        .unwrap();
    assert_eq!(rows(&client, &uuid).await, ["a"]);
    assert_eq!(restore.previous_bookmark, before);
    assert_ne!(restore.bookmark, after_a, "a restore is a new state");
    assert_eq!(
        client.current_bookmark(ACC, &uuid).await.unwrap(),
        restore.bookmark
    );
    assert!(restore.message.is_some_and(|m| m.contains(&after_a)));

    // Undo.
    let undo = client
        .time_travel_restore(ACC, &uuid, at(&restore.previous_bookmark))
        .await
        .unwrap();
    assert_eq!(rows(&client, &uuid).await, ["a", "b", "c"]);
    assert_eq!(undo.previous_bookmark, restore.bookmark);

    // By time: now is the current state.
    let by_time = client
        .time_travel_restore(ACC, &uuid, TimeTravelPoint::Timestamp(SystemTime::now()))
        .await
        .unwrap();
    assert_eq!(rows(&client, &uuid).await, ["a", "b", "c"]);
    assert_eq!(by_time.previous_bookmark, undo.bookmark);
    assert_eq!(sim.restores(&uuid), 3);
}

#[tokio::test]
async fn refuses_unknown_and_malformed_bookmarks() {
    let (sim, client) = world().await;
    let uuid = sim.add_backed_database(ACC, "tt", Arc::new(History::new()));
    let unknown = bookmark_of(41);
    let err = client
        .time_travel_restore(ACC, &uuid, at(&unknown))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains(&unknown), "{err}");
    assert!(err.to_string().contains("pass a bookmark D1 gave"), "{err}");
    for bad in ["not-a-bookmark", " "] {
        let err = client
            .time_travel_restore(ACC, &uuid, at(bad))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
    }
    assert_eq!(sim.restores(&uuid), 0);
    // A fixed-dump database cannot be restored; a missing one is not found.
    let fixed = sim.add_database(ACC, "fixed", "PRAGMA defer_foreign_keys=TRUE;\n");
    let err = client
        .time_travel_restore(ACC, &fixed, at(&bookmark_of(0)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = client
        .time_travel_restore(ACC, "missing", at(&bookmark_of(0)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn allows_ten_restores_per_ten_minutes() {
    let (sim, client) = world().await;
    let uuid = sim.add_backed_database(ACC, "tt", Arc::new(History::new()));
    let first = client.current_bookmark(ACC, &uuid).await.unwrap();
    for _ in 0..10 {
        client
            .time_travel_restore(ACC, &uuid, at(&first))
            .await
            .unwrap();
    }
    let err = client
        .time_travel_restore(ACC, &uuid, at(&first))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(
        err.retry_after()
            .is_some_and(|d| d > Duration::from_secs(500))
    );
    assert!(
        err.to_string()
            .contains("10 Time Travel restores per 10 minutes"),
        "{err}"
    );
    assert_eq!(sim.restores(&uuid), 10);
    // Ten minutes later the limit has passed.
    sim.set_clock_offset(Duration::from_secs(601));
    client
        .time_travel_restore(ACC, &uuid, at(&first))
        .await
        .unwrap();
}

#[tokio::test]
async fn refuses_points_outside_the_window() {
    let (sim, client) = world().await;
    let uuid = sim.add_backed_database(ACC, "tt", Arc::new(History::new()));
    let old = client.current_bookmark(ACC, &uuid).await.unwrap();
    write(&client, &uuid, "a").await;
    let current = client.current_bookmark(ACC, &uuid).await.unwrap();
    sim.set_clock_offset(Duration::from_hours(31 * 24));
    let err = client
        .time_travel_restore(ACC, &uuid, at(&old))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("30 days"), "{err}");
    let a_while_ago = TimeTravelPoint::Timestamp(SystemTime::now());
    let err = client
        .time_travel_restore(ACC, &uuid, a_while_ago)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = client
        .bookmark_at(ACC, &uuid, Some(SystemTime::now()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // The current state is still current, however old: it can be restored.
    client
        .time_travel_restore(ACC, &uuid, at(&current))
        .await
        .unwrap();
    assert_eq!(rows(&client, &uuid).await, ["a"]);
}

/// A changing request that timed out may have happened: it is not sent again.
#[tokio::test]
async fn a_timed_out_create_or_restore_is_not_sent_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(200, json!({})).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let client = D1Client::builder(support::TOKEN.into())
        .base_url(format!("{}/client/v4", server.uri()))
        .retry(fast_retry())
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client
        .create_database(support::ACCOUNT, "new-db", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("look it up by name"), "{err}");
    let err = client
        .time_travel_restore(support::ACCOUNT, support::DB, at(&bookmark_of(0)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    assert!(err.to_string().contains("current bookmark"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

/// A 429 or a 5xx: the first did nothing and is retried, the second may have done something.
#[tokio::test]
async fn a_refused_restore_is_retried_but_a_failed_one_is_not() {
    let server = MockServer::start().await;
    let done =
        json!({"bookmark": bookmark_of(2), "previous_bookmark": bookmark_of(1), "message": "ok"});
    Mock::given(method("POST"))
        .respond_with(Seq::new(vec![
            fail(429, 971, "slow down").insert_header("retry-after", "0"),
            ok(200, done),
            fail(502, 1, "bad gateway"),
        ]))
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let restore = client
        .time_travel_restore(support::ACCOUNT, support::DB, at(&bookmark_of(0)))
        .await
        .unwrap();
    assert_eq!(restore.bookmark, bookmark_of(2));
    let err = client
        .time_travel_restore(support::ACCOUNT, support::DB, at(&bookmark_of(0)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let query = server.received_requests().await.unwrap()[0]
        .url
        .query()
        .map(str::to_owned);
    assert_eq!(query, Some(format!("bookmark={}", bookmark_of(0))));
}

/// A fresh database answers the empty export.
#[tokio::test]
async fn a_created_database_without_a_factory_exports_nothing() {
    let (_sim, client) = world().await;
    let created = client.create_database(ACC, "empty", None).await.unwrap();
    let done = client
        .export(
            ACC,
            &created.uuid,
            &support::fast_export(),
            &|_: &d1_export::ExportEvent| {},
        )
        .await
        .unwrap();
    let download = client.download(&done.signed_url).await.unwrap();
    let bytes: Vec<Bytes> = futures::TryStreamExt::try_collect(download.into_stream())
        .await
        .unwrap();
    assert_eq!(bytes.concat(), b"PRAGMA defer_foreign_keys=TRUE;\n");
}
