//! A stateful D1 API simulator for tests (feature `testing`).
//!
//! [`D1Simulator`] runs a [`wiremock`] server on `127.0.0.1:0` that answers the parts of the
//! Cloudflare API a backup uses, with the real wire format: the list endpoint (paged), the
//! polling export (202 `active` for a configurable number of polls, then 200 `complete` with a
//! signed URL that the same server serves), per-account bearer tokens, and faults to inject.
//! Downstream crates use it to test their integration without a Cloudflare account.
//!
//! A database either serves a fixed dump ([`D1Simulator::add_database`]) or has a real
//! database behind it ([`D1Simulator::add_backed_database`] with a [`SimulatedDatabase`], such
//! as `d1_backup_core::testing::SqliteD1`). A backed database also answers, in D1's wire
//! format: `/query` and `/raw` (single statements and `batch`, rows as D1 sends them, SQL
//! errors as HTTP 400 with code 7500), exports built from the request's `dump_options` (a
//! refusal, such as FTS5's, becomes the export's `status: "error"`), the import protocol
//! (init, a presigned PUT whose `ETag` is the body's md5, ingest, poll; D1's refusal of
//! transaction statements and of statements over 100,000 bytes included, see
//! [`check_d1_sql`]), `time_travel/bookmark` and `time_travel/restore` (when the database
//! keeps history: [`SimulatedDatabase::restore_bookmark`], [`SimulatedDatabase::bookmark_at`]).
//! Queries keep working while an export or import runs; D1 would block them. Faults apply to
//! both kinds of database.
//!
//! Time Travel follows D1's limits on the simulator's clock ([`D1Simulator::set_clock_offset`]):
//! a state that stopped being current more than 30 days ago, or a timestamp older than that
//! or in the future, is refused (400); at most 10 restores per 10 minutes per database (429
//! with `retry-after`); a bookmark not of D1's form, or one the database does not know, is
//! refused (400, naming it). A restore answers `bookmark`, `previous_bookmark` and `message`.
//!
//! `GET /accounts/{a}/r2/buckets/{b}/lock` serves the lock rules set with
//! [`D1Simulator::set_bucket_lock`], to that bucket's own token only (403 otherwise).
//!
//! `POST /accounts/{a}/d1/database` creates a database as D1 does: names of lower-case
//! letters, digits, `-` and `_` only, a taken name refused (400, code 7502), a
//! `primary_location_hint` among D1's regions kept ([`D1Simulator::location`]). Behind it is
//! what [`D1Simulator::set_database_factory`] makes, or else a fixed database with D1's empty
//! export. `num_tables` in a database's details is the backend's count
//! ([`SimulatedDatabase::num_tables`]) or the `CREATE TABLE`s of a fixed dump.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use d1_export::testing::D1Simulator;
//! let sim = D1Simulator::start().await;
//! sim.add_account("e5a9830215a8d88961dc6c80a8c7442a", "test-token");
//! let uuid = sim.add_database("e5a9830215a8d88961dc6c80a8c7442a", "ops-db", "PRAGMA defer_foreign_keys=TRUE;\n");
//! let client = d1_export::D1Client::builder("test-token".into())
//!     .base_url(sim.base_url())
//!     .build()?;
//! # let _ = (client, uuid);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

mod bucket_lock;
mod create;
mod database;
mod export;
mod import;
mod r2;
mod sql;
mod time_travel;

pub use database::{D1_STATEMENT_LIMIT, SimulatedDatabase, SimulatedRows, check_d1_sql};

/// Makes the database behind a database created through the API, given its name (see
/// [`D1Simulator::set_database_factory`]).
pub type DatabaseFactory = Arc<dyn Fn(&str) -> Arc<dyn SimulatedDatabase> + Send + Sync>;

/// A fault the simulator injects into one database's exports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The export ends with `status: "error"` and this message.
    ExportError(String),
    /// Starting the export is refused: another export is running.
    ExportInProgress,
    /// The first `n` export starts are refused, as inner `success: false` inside a 200
    /// envelope, because "another export is running" (the other form D1 uses).
    BusyFor(u32),
    /// The first `n` downloads of the signed URL answer 403 with R2's XML `AccessDenied`.
    RefuseSignedUrl(u32),
    /// The first `n` export polls answer 500 with a JSON error envelope.
    ServerErrors(u32),
    /// The first `n` export polls answer 502 with an HTML edge page.
    BadGatewayHtml(u32),
    /// The first `n` export requests (start or poll) answer 429 with
    /// `retry-after: 0` (a storm without the wait).
    RateLimited(u32),
    /// The first download sends this many bytes of the body, then drops the
    /// connection; later requests with `Range: bytes=N-` get a 206.
    DropDownload(u64),
    /// After `after` `/query` or `/raw` requests, the next `count` answer 429 with
    /// `retry-after: 0` (a storm in the middle of a read, without the wait).
    QueryRateLimited {
        /// Requests answered normally first.
        after: u32,
        /// Requests answered 429.
        count: u32,
    },
    /// After `after` `/query` or `/raw` requests, the next `count` are cut off: the
    /// answer announces a longer body than it sends, as a dropped connection looks.
    QueryDropped {
        /// Requests answered normally first.
        after: u32,
        /// Requests cut off.
        count: u32,
    },
    /// `/query` and `/raw` answers whose rows take more than this many bytes of JSON are
    /// refused, as D1 refuses answers too large for it
    /// (`D1_ERROR: response too large: SQLITE_TOOBIG`).
    AnswerLimit(usize),
}

#[derive(Debug)]
struct Database {
    account_id: String,
    uuid: String,
    name: String,
    /// What a fixed database's exports serve (empty for a backed one).
    dump: Bytes,
    /// The real database behind a backed one.
    backend: Option<Arc<dyn SimulatedDatabase>>,
    polls_before_complete: u32,
    fault: Option<Fault>,
    /// How many requests the counted faults have already hit.
    fault_hits: u32,
    /// When it was created, as the API writes it.
    created_at: String,
    /// The `primary_location_hint` it was created with through the API.
    location: Option<String>,
    /// Every bookmark the simulator saw current, in order, with the simulated time (Unix
    /// seconds) it first saw it: the Time Travel window is checked against these.
    seen: Vec<(String, i64)>,
    /// The simulated times of its Time Travel restores (the rate limit counts them).
    restores: Vec<i64>,
}

#[derive(Debug)]
struct Export {
    uuid: String,
    remaining_polls: u32,
    /// A backed database's dump, or why it could not be made (`None` for a fixed database,
    /// whose `dump` is served).
    outcome: Option<Result<Bytes, String>>,
}

#[derive(Debug, Default)]
struct State {
    /// The download server's origin.
    base: String,
    /// The API server's origin (upload URLs point there).
    api: String,
    tokens: HashMap<String, String>,
    databases: Vec<Database>,
    /// Exports by `"<uuid> <bookmark>"`.
    exports: HashMap<String, Export>,
    exports_started: HashMap<String, u32>,
    downloads: HashMap<String, u32>,
    requests: u64,
    page_size: Option<usize>,
    /// Workers KV values by (account, namespace, key).
    kv: HashMap<(String, String, String), Bytes>,
    /// Uploaded import files by (database uuid, filename).
    uploads: HashMap<(String, String), Bytes>,
    /// Ingested imports by (database uuid, bookmark), until polled.
    imports: HashMap<(String, String), import::ImportRun>,
    /// Imports completed without error, by database uuid.
    imports_done: HashMap<String, u32>,
    /// `/query` and `/raw` requests, by database uuid.
    queries: HashMap<String, u32>,
    /// Makes the backend of a database created through the API.
    factory: Option<Factory>,
    /// How far the simulated clock is ahead of the system clock.
    clock_offset: Duration,
    /// R2 bucket lock rules by (account, bucket).
    bucket_locks: HashMap<(String, String), bucket_lock::BucketLock>,
}

/// A [`DatabaseFactory`], debug-printable.
struct Factory(DatabaseFactory);

impl fmt::Debug for Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseFactory")
    }
}

impl State {
    /// The simulated time in Unix seconds: the system clock plus the offset.
    fn now(&self) -> i64 {
        let now = SystemTime::now() + self.clock_offset;
        now.duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    fn push_database(
        &mut self,
        account_id: &str,
        name: &str,
        dump: Bytes,
        backend: Option<Arc<dyn SimulatedDatabase>>,
    ) -> String {
        let uuid = format!("00000000-0000-4000-8000-{:012x}", self.databases.len() + 1);
        let now = self.now();
        let mut db = Database {
            account_id: account_id.to_owned(),
            uuid: uuid.clone(),
            name: name.to_owned(),
            dump,
            backend,
            polls_before_complete: 2,
            fault: None,
            fault_hits: 0,
            // Fixed, so that answers stay the same from run to run; the create endpoint sets
            // the time of creation instead.
            created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            location: None,
            seen: Vec::new(),
            restores: Vec::new(),
        };
        db.seen.push((bookmark_of(&db), now));
        self.databases.push(db);
        uuid
    }

    /// Records the bookmark of database `id` if it is new (after a request that may have
    /// changed it).
    fn observe(&mut self, account: &str, id: &str) {
        let now = self.now();
        if let Some(db) = self
            .databases
            .iter_mut()
            .find(|d| d.account_id == account && (d.uuid == id || d.name == id))
        {
            let current = bookmark_of(db);
            if db.seen.last().is_none_or(|(last, _)| *last != current) {
                db.seen.push((current, now));
            }
        }
    }
}

/// A simulated Cloudflare D1 API. See the [module docs](self).
#[derive(Debug)]
pub struct D1Simulator {
    server: MockServer,
    state: Arc<Mutex<State>>,
    /// Serves signed-URL downloads; a raw server so it can drop connections.
    r2_server: tokio::task::JoinHandle<()>,
}

impl Drop for D1Simulator {
    fn drop(&mut self) {
        self.r2_server.abort();
    }
}

impl D1Simulator {
    /// Starts the simulator on a free loopback port.
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let (r2, r2_origin) = r2::start().await;
        let state = Arc::new(Mutex::new(State {
            base: r2_origin,
            api: server.uri(),
            ..State::default()
        }));
        let r2_server = tokio::spawn(r2::serve(r2, Arc::clone(&state)));
        Mock::given(any())
            .respond_with(Responder {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        Self {
            server,
            state,
            r2_server,
        }
    }

    /// The API base URL to configure (`http://127.0.0.1:PORT/client/v4`).
    pub fn base_url(&self) -> String {
        format!("{}/client/v4", self.server.uri())
    }

    /// Adds an account whose API token is `token`.
    pub fn add_account(&self, account_id: &str, token: &str) {
        self.lock()
            .tokens
            .insert(account_id.to_owned(), token.to_owned());
    }

    /// Adds a database whose export serves `dump`; returns its uuid.
    pub fn add_database(&self, account_id: &str, name: &str, dump: impl Into<Bytes>) -> String {
        self.push_database(account_id, name, dump.into(), None)
    }

    /// Adds a database with `db` behind it; returns its uuid. Its queries, exports (built
    /// from each request's `dump_options`), imports and bookmarks go to `db` (see the
    /// [module docs](self)).
    pub fn add_backed_database(
        &self,
        account_id: &str,
        name: &str,
        db: Arc<dyn SimulatedDatabase>,
    ) -> String {
        self.push_database(account_id, name, Bytes::new(), Some(db))
    }

    fn push_database(
        &self,
        account_id: &str,
        name: &str,
        dump: Bytes,
        backend: Option<Arc<dyn SimulatedDatabase>>,
    ) -> String {
        self.lock().push_database(account_id, name, dump, backend)
    }

    /// Sets what is behind a database created through the API
    /// (`POST /accounts/{a}/d1/database`): `factory(name)` is called once per created
    /// database, while the simulator holds its lock (so it must not call the simulator).
    /// Without a factory, a created database is a fixed one whose export is D1's empty
    /// export, `PRAGMA defer_foreign_keys=TRUE;\n`, and which answers no queries.
    pub fn set_database_factory(&self, factory: DatabaseFactory) {
        self.lock().factory = Some(Factory(factory));
    }

    /// Moves the simulated clock `offset` ahead of the system clock, e.g. 31 days to put
    /// today's bookmarks outside the Time Travel window. It governs the window, the restore
    /// rate limit and new databases' `created_at`; a timestamp sent to the API is read on
    /// this clock and handed to [`SimulatedDatabase::bookmark_at`] on the system clock.
    pub fn set_clock_offset(&self, offset: Duration) {
        self.lock().clock_offset = offset;
    }

    /// The uuid of the database named `name` in `account_id`, if there is one.
    pub fn database_uuid(&self, account_id: &str, name: &str) -> Option<String> {
        self.lock()
            .databases
            .iter()
            .find(|d| d.account_id == account_id && d.name == name)
            .map(|d| d.uuid.clone())
    }

    /// The `primary_location_hint` database `uuid` was created with through the API.
    pub fn location(&self, uuid: &str) -> Option<String> {
        self.lock()
            .databases
            .iter()
            .find(|d| d.uuid == uuid)
            .and_then(|d| d.location.clone())
    }

    /// Time Travel restores of `uuid` so far.
    pub fn restores(&self, uuid: &str) -> usize {
        self.lock()
            .databases
            .iter()
            .find(|d| d.uuid == uuid)
            .map_or(0, |d| d.restores.len())
    }

    /// Sets how many polls answer `active` before an export of `uuid` completes.
    pub fn set_polls_before_complete(&self, uuid: &str, polls: u32) {
        self.with_database(uuid, |db| db.polls_before_complete = polls);
    }

    /// Injects `fault` into the exports of `uuid`.
    pub fn inject(&self, uuid: &str, fault: Fault) {
        self.with_database(uuid, |db| db.fault = Some(fault));
    }

    /// Makes the list endpoint answer at most `size` databases a page.
    pub fn set_page_size(&self, size: usize) {
        self.lock().page_size = Some(size);
    }

    /// Exports started for `uuid` so far.
    pub fn exports_started(&self, uuid: &str) -> u32 {
        self.lock().exports_started.get(uuid).copied().unwrap_or(0)
    }

    /// Imports of `uuid` that completed without error so far.
    pub fn imports_done(&self, uuid: &str) -> u32 {
        self.lock().imports_done.get(uuid).copied().unwrap_or(0)
    }

    /// `/query` and `/raw` requests for `uuid` answered so far (refused ones included).
    pub fn queries(&self, uuid: &str) -> u32 {
        self.lock().queries.get(uuid).copied().unwrap_or(0)
    }

    /// The Workers KV value at `key` of namespace `ns`, if one was written.
    pub fn kv_value(&self, account_id: &str, ns: &str, key: &str) -> Option<Bytes> {
        self.lock()
            .kv
            .get(&(account_id.to_owned(), ns.to_owned(), key.to_owned()))
            .cloned()
    }

    /// Serves `rules` (the JSON array of `result.rules`, as sent: malformed rules are
    /// served as given) as the lock rules of R2 bucket `bucket` of `account_id`, to
    /// requests with `token`; any other token gets 403 (code 10000). A bucket without
    /// rules set answers 404.
    pub fn set_bucket_lock(&self, account_id: &str, bucket: &str, token: &str, rules: Value) {
        let lock = bucket_lock::BucketLock {
            token: token.to_owned(),
            rules,
            jurisdiction: None,
            reads: 0,
        };
        self.lock()
            .bucket_locks
            .insert((account_id.to_owned(), bucket.to_owned()), lock);
    }

    /// How many times the lock rules of `bucket` were read, and the `cf-r2-jurisdiction`
    /// header of the last read.
    pub fn bucket_lock_reads(&self, account_id: &str, bucket: &str) -> (u32, Option<String>) {
        self.lock()
            .bucket_locks
            .get(&(account_id.to_owned(), bucket.to_owned()))
            .map_or((0, None), |l| (l.reads, l.jurisdiction.clone()))
    }

    /// Requests answered so far (API and downloads).
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    fn with_database(&self, uuid: &str, f: impl FnOnce(&mut Database)) {
        if let Some(db) = self.lock().databases.iter_mut().find(|d| d.uuid == uuid) {
            f(db);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Responder {
    state: Arc<Mutex<State>>,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests += 1;
        let path = request.url.path().to_owned();
        if path.starts_with(import::UPLOAD_PATH) {
            return import::upload(&mut state, &path, request);
        }
        let segments: Vec<&str> = path.trim_start_matches("/client/v4/").split('/').collect();
        if let [
            "accounts",
            account,
            "storage",
            "kv",
            "namespaces",
            ns,
            "values",
            key,
        ] = segments.as_slice()
        {
            return kv_put(&mut state, account, ns, key, request);
        }
        if let ["accounts", account, "r2", "buckets", bucket, "lock"] = segments.as_slice()
            && request.method.as_str() == "GET"
        {
            return bucket_lock::read(&mut state, account, bucket, request);
        }
        let ["accounts", account, "d1", "database", rest @ ..] = segments.as_slice() else {
            return failure(404, 7000, "No route for that URI");
        };
        if !authorized(&state, account, request) {
            return failure(401, 10000, "Authentication error");
        }
        let response = match (request.method.as_str(), rest) {
            ("GET", []) => list(&state, account, request),
            ("POST", []) => create::create(&mut state, account, request),
            ("GET", [id]) => match find(&state, account, id) {
                Some(db) => envelope(200, &info(db)),
                None => not_found(),
            },
            ("POST", [id, "export"]) => export::export(&mut state, account, id, request),
            ("GET", [id, "time_travel", "bookmark"]) => {
                time_travel::bookmark(&state, account, id, request)
            }
            ("POST", [id, "time_travel", "restore"]) => {
                time_travel::restore(&mut state, account, id, request)
            }
            ("POST", [id, endpoint @ ("query" | "raw" | "import")]) => {
                backed(&mut state, account, id, endpoint, request)
            }
            _ => failure(404, 7000, "No route for that URI"),
        };
        if let [id, ..] = rest {
            state.observe(account, id);
        }
        response
    }
}

/// `/query`, `/raw` and `/import`, which only a backed database answers.
fn backed(
    state: &mut State,
    account: &str,
    id: &str,
    endpoint: &str,
    request: &Request,
) -> ResponseTemplate {
    let Some(db) = find(state, account, id) else {
        return not_found();
    };
    let uuid = db.uuid.clone();
    let Some(backend) = db.backend.clone() else {
        return failure(
            400,
            7500,
            &format!(
                "the simulated database {uuid} serves a fixed dump only; add it with add_backed_database to {endpoint} it"
            ),
        );
    };
    if endpoint == "import" {
        return import::import(state, &uuid, &backend, request);
    }
    let asked = {
        let count = state.queries.entry(uuid.clone()).or_insert(0);
        *count += 1;
        *count
    };
    let fault = find(state, account, id).and_then(|db| db.fault.clone());
    match fault {
        Some(Fault::QueryRateLimited { after, count })
            if asked > after && asked <= after + count =>
        {
            return failure(
                429,
                971,
                "Please wait and consider throttling your request speed",
            )
            .insert_header("retry-after", "0");
        }
        Some(Fault::QueryDropped { after, count }) if asked > after && asked <= after + count => {
            return ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_raw(b"{\"success\": tr".to_vec(), "application/json")
                .insert_header("content-length", "4096");
        }
        _ => {}
    }
    let limit = match fault {
        Some(Fault::AnswerLimit(limit)) => Some(limit),
        _ => None,
    };
    let shape = if endpoint == "raw" {
        sql::Shape::Arrays
    } else {
        sql::Shape::Objects
    };
    sql::query(backend.as_ref(), request, shape, limit)
}

/// A backed database's bookmark; a fixed one's never changes.
fn bookmark_of(db: &Database) -> String {
    match &db.backend {
        Some(backend) => backend.bookmark(),
        None => format!("00000001-00000000-00004f6d-{:0>32}", &db.uuid[24..]),
    }
}

fn kv_put(
    state: &mut State,
    account: &str,
    ns: &str,
    key: &str,
    request: &Request,
) -> ResponseTemplate {
    if !authorized(state, account, request) {
        return failure(401, 10000, "Authentication error");
    }
    if request.method.as_str() != "PUT" {
        return failure(405, 10000, "Method not allowed");
    }
    let key = percent_decode(key);
    state.kv.insert(
        (account.to_owned(), ns.to_owned(), key),
        Bytes::copy_from_slice(&request.body),
    );
    envelope(200, &Value::Null)
}

/// Decodes `%XX` escapes of a path segment.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| segment.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn authorized(state: &State, account: &str, request: &Request) -> bool {
    let Some(token) = state.tokens.get(account) else {
        return false;
    };
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}"))
}

fn find<'s>(state: &'s State, account: &str, id: &str) -> Option<&'s Database> {
    state
        .databases
        .iter()
        .find(|d| d.account_id == account && (d.uuid == id || d.name == id))
}

fn info(db: &Database) -> Value {
    // A backed database's size is not known without a dump; any plausible number will do.
    let (file_size, num_tables) = match &db.backend {
        Some(backend) => (8192, backend.num_tables().unwrap_or(3)),
        None => (db.dump.len() * 2, fixed_tables(&db.dump)),
    };
    json!({"uuid": db.uuid, "name": db.name, "created_at": db.created_at,
           "version": "production", "num_tables": num_tables, "file_size": file_size,
           "jurisdiction": null, "read_replication": {"mode": "disabled"}})
}

/// The tables D1 would count in a fixed dump: its `CREATE TABLE` lines, not of `sqlite_*`
/// or `_cf_*` tables.
fn fixed_tables(dump: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(dump);
    let counted = text.lines().filter(|line| {
        line.strip_prefix("CREATE TABLE ").is_some_and(|rest| {
            let name = rest
                .trim_start_matches("IF NOT EXISTS ")
                .trim_start_matches(['"', '`', '['])
                .to_ascii_lowercase();
            !name.starts_with("sqlite_") && !name.starts_with("_cf_")
        })
    });
    counted.count() as u64
}

fn list(state: &State, account: &str, request: &Request) -> ResponseTemplate {
    let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
    let asked = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100usize);
    let per_page = state.page_size.map_or(asked, |cap| asked.min(cap)).max(1);
    let page = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let mine: Vec<&Database> = state
        .databases
        .iter()
        .filter(|d| d.account_id == account)
        .filter(|d| {
            query
                .get("name")
                .is_none_or(|n| n.is_empty() || *n == d.name)
        })
        .collect();
    let items: Vec<Value> = mine
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|d| summary(d))
        .collect();
    let body = json!({"success": true, "errors": [], "messages": [], "result": items,
                      "result_info": {"page": page, "per_page": per_page, "count": items.len(), "total_count": mine.len()}});
    ResponseTemplate::new(200).set_body_json(body)
}

/// A database as the list endpoint and the create endpoint describe it.
fn summary(db: &Database) -> Value {
    json!({"uuid": db.uuid, "name": db.name, "created_at": db.created_at,
           "version": "production", "jurisdiction": null})
}

fn envelope(status: u16, result: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"success": true, "errors": [], "messages": [], "result": result}))
}

fn failure(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null}))
}

fn not_found() -> ResponseTemplate {
    failure(404, 7404, "The database could not be found")
}
