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
//! [`check_d1_sql`]) and `time_travel/bookmark`. Queries keep working while an export or
//! import runs; D1 would block them. Faults apply to both kinds of database.
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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

mod database;
mod export;
mod import;
mod r2;
mod sql;

pub use database::{D1_STATEMENT_LIMIT, SimulatedDatabase, SimulatedRows, check_d1_sql};

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
        let mut state = self.lock();
        let uuid = format!("00000000-0000-4000-8000-{:012x}", state.databases.len() + 1);
        state.databases.push(Database {
            account_id: account_id.to_owned(),
            uuid: uuid.clone(),
            name: name.to_owned(),
            dump,
            backend,
            polls_before_complete: 2,
            fault: None,
            fault_hits: 0,
        });
        uuid
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
        let ["accounts", account, "d1", "database", rest @ ..] = segments.as_slice() else {
            return failure(404, 7000, "No route for that URI");
        };
        if !authorized(&state, account, request) {
            return failure(401, 10000, "Authentication error");
        }
        match (request.method.as_str(), rest) {
            ("GET", []) => list(&state, account, request),
            ("GET", [id]) => match find(&state, account, id) {
                Some(db) => envelope(200, &info(db)),
                None => not_found(),
            },
            ("POST", [id, "export"]) => export::export(&mut state, account, id, request),
            ("GET", [id, "time_travel", "bookmark"]) => match find(&state, account, id) {
                Some(db) => sql::bookmark(&bookmark_of(db), request),
                None => not_found(),
            },
            ("POST", [id, endpoint @ ("query" | "raw" | "import")]) => {
                backed(&mut state, account, id, endpoint, request)
            }
            _ => failure(404, 7000, "No route for that URI"),
        }
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
    let file_size = if db.backend.is_some() {
        8192
    } else {
        db.dump.len() * 2
    };
    json!({"uuid": db.uuid, "name": db.name, "created_at": "2026-01-01T00:00:00.000Z",
           "version": "production", "num_tables": 3, "file_size": file_size,
           "jurisdiction": null, "read_replication": {"mode": "disabled"}})
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
        .map(|d| json!({"uuid": d.uuid, "name": d.name, "created_at": "2026-01-01T00:00:00.000Z", "version": "production", "jurisdiction": null}))
        .collect();
    let body = json!({"success": true, "errors": [], "messages": [], "result": items,
                      "result_info": {"page": page, "per_page": per_page, "count": items.len(), "total_count": mine.len()}});
    ResponseTemplate::new(200).set_body_json(body)
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
