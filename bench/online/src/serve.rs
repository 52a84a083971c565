//! A local stand-in for D1, serving SQLite files, with the wire format of
//! `d1_export::testing::D1Simulator` (and D1):
//!
//! - `GET …/d1/database[?name=]` (list) and `GET …/d1/database/{id}` (info, `file_size` =
//!   the SQLite file's size);
//! - `POST …/d1/database/{id}/raw` and `…/query`: the request's SQL (`{"sql","params"}` or
//!   `{"batch":[…]}`) run on the SQLite file, read-only, one connection per HTTP connection;
//!   answers as D1 sends them (numbers through a double, blobs as byte arrays, errors as
//!   HTTP 400 code 7500 `<message>: SQLITE_<CODE>`; D1's limits applied: statements over
//!   100,000 bytes refused with `statement too long: SQLITE_TOOBIG`, more than 100 bound
//!   parameters, results over 50 MB; a write fails with SQLITE_READONLY);
//! - `GET …/d1/database/{id}/time_travel/bookmark`: a fixed bookmark (nothing writes), the
//!   same as the export's `at_bookmark`;
//! - `POST …/d1/database/{id}/export`: the polling export (202 `active` for `polls` polls and
//!   at least `size / export_rate` seconds, then 200 `complete` with a signed URL), and the
//!   signed URL itself, serving the D1 dump of the same file with `Range` support.
//!
//! Every request is timed (the time to run it and build its answer, D1 busy with it; and
//! until its answer's last byte is written) and sized; `GET /stats` answers the totals (`?reset=1` also resets them), `--log FILE` gets one
//! CSV line per request, and `POST /shutdown` prints the totals and exits.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::{Connection, OpenFlags, Statement};
use serde_json::Value;

use crate::encode::{json_string, json_value};

/// A database the stand-in serves.
#[derive(Debug, Clone)]
pub struct Db {
    pub name: String,
    pub uuid: String,
    pub sqlite: PathBuf,
    pub dump: PathBuf,
}

#[derive(Debug)]
pub struct Settings {
    pub account: String,
    pub token: String,
    pub polls: u32,
    /// D1's export rate to emulate, bytes of dump per second (0: polls only).
    pub export_rate: f64,
    pub dbs: Vec<Db>,
    pub log: Option<PathBuf>,
}

/// Totals since the start or the last reset.
#[derive(Debug, Default, Clone)]
struct Stats {
    /// Requests and answer bytes by kind (list, info, bookmark, raw, query, export, download, other).
    by_kind: HashMap<&'static str, (u64, u64)>,
    /// The longest API request (downloads are R2's, not D1's): ms, kind.
    longest_ms: f64,
    longest_kind: &'static str,
    longest_raw_ms: f64,
    /// The longest API request including writing its answer.
    longest_total_ms: f64,
    largest_answer: u64,
    /// Time in `/raw` and `/query` (D1 busy with our queries), summed.
    query_ms: f64,
    /// Export durations (start to `complete`), ms: the longest, and how many completed.
    export_ms: f64,
    exports_completed: u64,
    rows_read: u64,
}

struct Shared {
    settings: Settings,
    origin: String,
    started: Instant,
    exports: Mutex<HashMap<String, (Instant, u32, u64)>>,
    stats: Mutex<Stats>,
    log: Option<Mutex<BufWriter<File>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn signed_url(origin: &str, db: &Db, bookmark: &str) -> String {
    format!(
        "{origin}/signed/{}-{bookmark}.sql?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=5ec2e7f00d",
        db.uuid
    )
}

fn bookmark_of(db: &Db) -> String {
    format!("00000001-00000000-00004f6d-{:0>32}", &db.uuid[24..])
}

pub fn run(listen: &str, settings: Settings) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let origin = format!("http://{}", listener.local_addr()?);
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "api {origin}/client/v4")?;
    writeln!(stdout, "stats {origin}/stats")?;
    for db in &settings.dbs {
        let size = std::fs::metadata(&db.dump)?.len();
        let file_size = std::fs::metadata(&db.sqlite)?.len();
        writeln!(
            stdout,
            "db {} {} {size} {file_size} {}",
            db.name,
            db.uuid,
            signed_url(&origin, db, "peer")
        )?;
    }
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    drop(stdout);
    let log = match &settings.log {
        Some(path) => {
            let mut file = BufWriter::new(File::create(path)?);
            writeln!(
                file,
                "t_s,kind,db,status,busy_ms,total_ms,answer_bytes,rows"
            )?;
            Some(Mutex::new(file))
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        settings,
        origin,
        started: Instant::now(),
        exports: Mutex::new(HashMap::new()),
        stats: Mutex::new(Stats::default()),
        log,
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut conns = HashMap::new();
            let _ = connection(stream, &shared, &mut conns);
        });
    }
    Ok(())
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What one request was, for the statistics.
struct Outcome {
    kind: &'static str,
    /// The time to run the request and build its answer (D1 busy with it), before the answer
    /// is written; zero for downloads.
    busy: Duration,
    db: String,
    status: u16,
    bytes: u64,
    rows: u64,
}

fn connection(
    mut stream: TcpStream,
    shared: &Shared,
    conns: &mut HashMap<String, Connection>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut pending = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut pending)? {
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let start = Instant::now();
        let outcome = respond(&mut stream, shared, &request, conns)?;
        if let Some(outcome) = outcome {
            record(shared, &outcome, start.elapsed());
        }
        if close {
            break;
        }
    }
    Ok(())
}

fn record(shared: &Shared, o: &Outcome, took: Duration) {
    let total_ms = took.as_secs_f64() * 1000.0;
    let ms = o.busy.as_secs_f64() * 1000.0;
    {
        let mut s = lock(&shared.stats);
        let entry = s.by_kind.entry(o.kind).or_default();
        entry.0 += 1;
        entry.1 += o.bytes;
        s.rows_read += o.rows;
        if o.kind != "download" {
            s.longest_total_ms = s.longest_total_ms.max(total_ms);
            if ms > s.longest_ms {
                s.longest_ms = ms;
                s.longest_kind = o.kind;
            }
            s.largest_answer = s.largest_answer.max(o.bytes);
        }
        if matches!(o.kind, "raw" | "query") {
            s.query_ms += ms;
            s.longest_raw_ms = s.longest_raw_ms.max(ms);
        }
    }
    if let Some(log) = &shared.log {
        let _ = writeln!(
            lock(log),
            "{:.3},{},{},{},{ms:.3},{total_ms:.3},{},{}",
            shared.started.elapsed().as_secs_f64(),
            o.kind,
            o.db,
            o.status,
            o.bytes,
            o.rows
        );
    }
}

fn stats_json(s: &Stats) -> String {
    let kinds = [
        "list", "info", "bookmark", "raw", "query", "export", "download", "other",
    ];
    let get = |k: &str| s.by_kind.get(k).copied().unwrap_or((0, 0));
    let api: (u64, u64) = kinds
        .iter()
        .filter(|k| **k != "download")
        .map(|k| get(k))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let mut out = format!(
        r#"{{"api_requests":{},"api_bytes":{},"longest_ms":{:.3},"longest_kind":"{}","longest_query_ms":{:.3},"longest_with_answer_ms":{:.3},"largest_answer_bytes":{},"query_ms_total":{:.3},"rows_read":{},"export_ms":{:.3},"exports_completed":{}"#,
        api.0,
        api.1,
        s.longest_ms,
        s.longest_kind,
        s.longest_raw_ms,
        s.longest_total_ms,
        s.largest_answer,
        s.query_ms,
        s.rows_read,
        s.export_ms,
        s.exports_completed
    );
    for k in kinds {
        let (n, b) = get(k);
        out.push_str(&format!(r#","{k}":{n},"{k}_bytes":{b}"#));
    }
    out.push('}');
    out
}

fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let mut buf = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if pending.len() > 64 * 1024 {
            return Ok(None);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    pending.drain(..head_end);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while pending.len() < length {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        pending.extend_from_slice(&buf[..n]);
    }
    let body = pending.drain(..length).collect();
    Ok(Some(Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
    }))
}

fn send(stream: &mut TcpStream, status: u16, kind: &str, body: &[u8]) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut all = Vec::with_capacity(head.len() + body.len());
    all.extend_from_slice(head.as_bytes());
    all.extend_from_slice(body);
    stream.write_all(&all)
}

fn failure(status: u16, code: u32, message: &str) -> (u16, Vec<u8>) {
    let mut out = format!(r#"{{"success":false,"errors":[{{"code":{code},"message":"#).into_bytes();
    json_string(&mut out, message);
    out.extend_from_slice(br#"}],"messages":[],"result":null}"#);
    (status, out)
}

fn envelope(status: u16, result: &[u8]) -> (u16, Vec<u8>) {
    let mut out = br#"{"success":true,"errors":[],"messages":[],"result":"#.to_vec();
    out.extend_from_slice(result);
    out.push(b'}');
    (status, out)
}

fn respond(
    stream: &mut TcpStream,
    shared: &Shared,
    request: &Request,
    conns: &mut HashMap<String, Connection>,
) -> io::Result<Option<Outcome>> {
    if let Some(file) = request.path.strip_prefix("/signed/") {
        return download(stream, shared, request, file).map(Some);
    }
    if request.path == "/stats" {
        let body = {
            let mut s = lock(&shared.stats);
            let body = stats_json(&s);
            if request.query.contains("reset=1") {
                *s = Stats::default();
            }
            body
        };
        if let Some(log) = &shared.log {
            let _ = lock(log).flush();
        }
        send(stream, 200, "application/json", body.as_bytes())?;
        return Ok(None);
    }
    if request.path == "/shutdown" && request.method == "POST" {
        let body = stats_json(&lock(&shared.stats));
        if let Some(log) = &shared.log {
            let _ = lock(log).flush();
        }
        println!("stats {body}");
        send(stream, 200, "application/json", body.as_bytes())?;
        std::process::exit(0);
    }
    let started = Instant::now();
    let (kind, db, status, body, rows) = api(shared, request, conns);
    let busy = started.elapsed();
    send(stream, status, "application/json", &body)?;
    Ok(Some(Outcome {
        kind,
        busy,
        db,
        status,
        bytes: body.len() as u64,
        rows,
    }))
}

type Answer = (&'static str, String, u16, Vec<u8>, u64);

fn api(shared: &Shared, request: &Request, conns: &mut HashMap<String, Connection>) -> Answer {
    let settings = &shared.settings;
    let segments: Vec<&str> = request
        .path
        .trim_start_matches("/client/v4/")
        .split('/')
        .collect();
    let other = |(status, body): (u16, Vec<u8>)| ("other", String::new(), status, body, 0);
    let ["accounts", account, "d1", "database", rest @ ..] = segments.as_slice() else {
        return other(failure(404, 7000, "No route for that URI"));
    };
    let bearer = format!("Bearer {}", settings.token);
    if *account != settings.account || request.header("authorization") != Some(bearer.as_str()) {
        return other(failure(401, 10000, "Authentication error"));
    }
    let find = |id: &str| settings.dbs.iter().find(|d| d.uuid == id || d.name == id);
    let not_found = || failure(404, 7404, "The database could not be found");
    let with = |kind: &'static str, id: &str, (status, body): (u16, Vec<u8>)| {
        (kind, id.to_owned(), status, body, 0)
    };
    match (request.method.as_str(), rest) {
        ("GET", []) => with("list", "", list(settings, &request.query)),
        ("GET", [id]) => with("info", id, find(id).map_or_else(not_found, info)),
        ("GET", [id, "time_travel", "bookmark"]) => with(
            "bookmark",
            id,
            find(id).map_or_else(not_found, |db| {
                envelope(
                    200,
                    format!(r#"{{"bookmark":"{}"}}"#, bookmark_of(db)).as_bytes(),
                )
            }),
        ),
        ("POST", [id, endpoint @ ("raw" | "query")]) => {
            let kind = if *endpoint == "raw" { "raw" } else { "query" };
            let Some(db) = find(id) else {
                return with(kind, id, not_found());
            };
            let started = Instant::now();
            let (status, body, rows) = sql(db, conns, &request.body, kind == "raw", started);
            (kind, id.to_string(), status, body, rows)
        }
        ("POST", [id, "export"]) => with(
            "export",
            id,
            find(id).map_or_else(not_found, |db| export(shared, db, &request.body)),
        ),
        _ => other(failure(404, 7000, "No route for that URI")),
    }
}

fn list(settings: &Settings, query: &str) -> (u16, Vec<u8>) {
    let name = query
        .split('&')
        .find_map(|p| p.strip_prefix("name="))
        .filter(|n| !n.is_empty());
    let page: usize = query
        .split('&')
        .find_map(|p| p.strip_prefix("page="))
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let items: Vec<String> = settings
        .dbs
        .iter()
        .filter(|d| page == 1 && name.is_none_or(|n| n == d.name))
        .map(|d| {
            format!(
                r#"{{"uuid":"{}","name":"{}","created_at":"2026-01-01T00:00:00.000Z","version":"production","jurisdiction":null}}"#,
                d.uuid, d.name
            )
        })
        .collect();
    let body = format!(
        r#"{{"success":true,"errors":[],"messages":[],"result":[{}],"result_info":{{"page":{page},"per_page":100,"count":{},"total_count":{}}}}}"#,
        items.join(","),
        items.len(),
        settings.dbs.len()
    );
    (200, body.into_bytes())
}

fn info(db: &Db) -> (u16, Vec<u8>) {
    let file_size = std::fs::metadata(&db.sqlite).map_or(0, |m| m.len());
    let tables = Connection::open_with_flags(&db.sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .unwrap_or(0);
    envelope(
        200,
        format!(
            r#"{{"uuid":"{}","name":"{}","created_at":"2026-01-01T00:00:00.000Z","version":"production","num_tables":{tables},"file_size":{file_size},"jurisdiction":null,"read_replication":{{"mode":"disabled"}}}}"#,
            db.uuid, db.name
        )
        .as_bytes(),
    )
}

/// D1's limits (developers.cloudflare.com/d1/platform/limits): bound parameters per query,
/// and the query result's size.
const MAX_PARAMS: usize = 100;
const MAX_RESULT: usize = 50_000_000;

/// D1's answer to SQL that controls transactions itself.
const TRANSACTION_REFUSED: &str = "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.: SQLITE_AUTH";

/// `/raw` or `/query`: runs the body's statements; (status, body, rows returned).
fn sql(
    db: &Db,
    conns: &mut HashMap<String, Connection>,
    body: &[u8],
    raw: bool,
    started: Instant,
) -> (u16, Vec<u8>, u64) {
    let fail = |(status, body): (u16, Vec<u8>)| (status, body, 0);
    let statements = match statements(body) {
        Ok(s) => s,
        Err(message) => return fail(failure(400, 7400, &message)),
    };
    for (text, params) in &statements {
        if text.len() > 100_000 {
            return fail(failure(400, 7500, "statement too long: SQLITE_TOOBIG"));
        }
        if params.len() > MAX_PARAMS {
            return fail(failure(400, 7500, "too many SQL variables: SQLITE_ERROR"));
        }
        let first = text
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("");
        if ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"]
            .iter()
            .any(|w| first.eq_ignore_ascii_case(w))
        {
            return fail(failure(400, 7500, TRANSACTION_REFUSED));
        }
    }
    if !conns.contains_key(&db.uuid) {
        match Connection::open_with_flags(&db.sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY) {
            Ok(c) => {
                c.set_prepared_statement_cache_capacity(64);
                if let Err(e) = add_math_functions(&c) {
                    return fail(failure(400, 7500, &d1_error(&e)));
                }
                conns.insert(db.uuid.clone(), c);
            }
            Err(e) => return fail(failure(400, 7500, &d1_error(&e))),
        }
    }
    let conn = &conns[&db.uuid];
    let mut results = Vec::with_capacity(1 << 20);
    results.push(b'[');
    let mut total_rows = 0;
    for (i, (text, params)) in statements.iter().enumerate() {
        if i > 0 {
            results.push(b',');
        }
        match run_statement(conn, text, params, raw, &mut results, started) {
            Ok(rows) => total_rows += rows,
            Err(message) => return fail(failure(400, 7500, &message)),
        }
    }
    results.push(b']');
    if results.len() > MAX_RESULT {
        // D1's limit ("Maximum query result size: 50 MB"); the wording is this stand-in's.
        return fail(failure(
            400,
            7500,
            &format!(
                "D1_ERROR: the query result is {} bytes, over the 50 MB limit: SQLITE_TOOBIG",
                results.len()
            ),
        ));
    }
    let (status, body) = envelope(200, &results);
    (status, body, total_rows)
}

/// `atan2(Y, X)`, one of SQLite's math functions, which D1 has and the bundled SQLite is
/// built without (d1-backup's online export uses it to tell `-0.0` from `0.0`). NULL or
/// non-numeric arguments give NULL, as in SQLite.
fn add_math_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    let number = |v: ValueRef<'_>| match v {
        #[allow(clippy::cast_precision_loss)]
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(r) => Some(r),
        _ => None,
    };
    conn.create_scalar_function(
        "atan2",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            Ok(number(ctx.get_raw(0))
                .zip(number(ctx.get_raw(1)))
                .map(|(y, x)| y.atan2(x)))
        },
    )
}

fn statements(body: &[u8]) -> Result<Vec<(String, Vec<Value>)>, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("the request body is not JSON ({e})"))?;
    let one = |item: &Value| -> Result<(String, Vec<Value>), String> {
        let sql = item
            .get("sql")
            .and_then(Value::as_str)
            .ok_or("a query needs `sql`, a string")?;
        let params = match item.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(p)) => p.clone(),
            Some(_) => return Err("`params` must be an array".to_owned()),
        };
        Ok((sql.to_owned(), params))
    };
    match body.get("batch") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().map(one).collect(),
        Some(_) => Err("`batch` must be a non-empty array".to_owned()),
        None => Ok(vec![one(&body)?]),
    }
}

fn bind(statement: &mut Statement<'_>, params: &[Value]) -> Result<(), String> {
    let count = statement.parameter_count();
    if count != params.len() {
        return Err(format!(
            "Wrong number of parameter bindings for SQL query. Expected {count}, got {}: SQLITE_RANGE",
            params.len()
        ));
    }
    for (i, p) in params.iter().enumerate() {
        let r = match p {
            Value::Null => statement.raw_bind_parameter(i + 1, rusqlite::types::Null),
            Value::Bool(b) => statement.raw_bind_parameter(i + 1, i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(v) => statement.raw_bind_parameter(i + 1, v),
                None => statement.raw_bind_parameter(i + 1, n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => statement.raw_bind_parameter(i + 1, s.as_str()),
            Value::Array(items) => {
                let bytes = items
                    .iter()
                    .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or("Type 'object' not supported for value: SQLITE_MISMATCH")?;
                statement.raw_bind_parameter(i + 1, bytes)
            }
            Value::Object(_) => {
                return Err("Type 'object' not supported for value: SQLITE_MISMATCH".to_owned());
            }
        };
        r.map_err(|e| d1_error(&e))?;
    }
    Ok(())
}

/// Runs one `sql` text (usually one statement), appending one result object per statement.
fn run_statement(
    conn: &Connection,
    text: &str,
    params: &[Value],
    raw: bool,
    out: &mut Vec<u8>,
    started: Instant,
) -> Result<u64, String> {
    let mut statement = match conn.prepare_cached(text) {
        Ok(s) => s,
        Err(rusqlite::Error::MultipleStatement) => {
            // Several statements in one `sql`: one result each, `params` bound to each one
            // that has placeholders (as the simulator does).
            let mut batch = rusqlite::Batch::new(conn, text);
            let mut total = 0;
            let mut first = true;
            while let Some(mut statement) = batch.next().map_err(|e| d1_error(&e))? {
                if statement.parameter_count() > 0 {
                    bind(&mut statement, params)?;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                total += write_result(&mut statement, raw, out, started)?;
            }
            return Ok(total);
        }
        Err(e) => return Err(d1_error(&e)),
    };
    bind(&mut statement, params)?;
    write_result(&mut statement, raw, out, started)
}

/// Runs a prepared, bound statement and appends its result object.
fn write_result(
    statement: &mut Statement<'_>,
    raw: bool,
    out: &mut Vec<u8>,
    started: Instant,
) -> Result<u64, String> {
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let mut rows_out = Vec::with_capacity(1 << 20);
    let mut count = 0u64;
    {
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next().map_err(|e| d1_error(&e))? {
            if count > 0 {
                rows_out.push(b',');
            }
            count += 1;
            rows_out.push(if raw { b'[' } else { b'{' });
            for (i, name) in columns.iter().enumerate() {
                if i > 0 {
                    rows_out.push(b',');
                }
                if !raw {
                    json_string(&mut rows_out, name);
                    rows_out.push(b':');
                }
                json_value(&mut rows_out, row.get_ref(i).map_err(|e| d1_error(&e))?);
            }
            rows_out.push(if raw { b']' } else { b'}' });
        }
    }
    out.extend_from_slice(b"{\"results\":");
    if raw {
        out.extend_from_slice(b"{\"columns\":[");
        for (i, name) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_string(out, name);
        }
        out.extend_from_slice(b"],\"rows\":[");
        out.extend_from_slice(&rows_out);
        out.extend_from_slice(b"]}");
    } else {
        out.push(b'[');
        out.extend_from_slice(&rows_out);
        out.push(b']');
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    out.extend_from_slice(
        format!(
            r#","success":true,"meta":{{"served_by":"d1-bench-online","served_by_region":"WEUR","served_by_primary":true,"timings":{{"sql_duration_ms":{ms:.3}}},"duration":{ms:.3},"changes":0,"last_row_id":0,"changed_db":false,"size_after":0,"rows_read":{count},"rows_written":0}}}}"#
        )
        .as_bytes(),
    );
    Ok(count)
}

fn d1_error(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let text = message.clone().unwrap_or_else(|| failure.to_string());
            let code = match failure.extended_code & 0xff {
                8 => "SQLITE_READONLY",
                18 => "SQLITE_TOOBIG",
                19 => "SQLITE_CONSTRAINT",
                20 => "SQLITE_MISMATCH",
                23 => "SQLITE_AUTH",
                25 => "SQLITE_RANGE",
                _ => "SQLITE_ERROR",
            };
            format!("{text}: {code}")
        }
        other => format!("{other}: SQLITE_ERROR"),
    }
}

fn export(shared: &Shared, db: &Db, body: &[u8]) -> (u16, Vec<u8>) {
    let body = String::from_utf8_lossy(body);
    let size = std::fs::metadata(&db.dump).map_or(0, |m| m.len());
    let mut exports = lock(&shared.exports);
    let Some(bookmark) = body
        .split_once(r#""current_bookmark":""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(bookmark, _)| bookmark.to_owned())
    else {
        // Exported at the database's current bookmark, as D1 does (a second start replaces a
        // running export here; D1 would refuse it).
        let bookmark = bookmark_of(db);
        exports.insert(bookmark.clone(), (Instant::now(), shared.settings.polls, 0));
        return envelope(
            202,
            format!(
                r#"{{"success":true,"type":"export","at_bookmark":"{bookmark}","status":"active","messages":["Generating {}-{bookmark}.sql"]}}"#,
                db.uuid
            )
            .as_bytes(),
        );
    };
    let Some((started, remaining, polled)) = exports.get_mut(&bookmark) else {
        return failure(400, 7500, "Unknown bookmark");
    };
    *polled += 1;
    #[allow(clippy::cast_precision_loss)]
    let due = if shared.settings.export_rate > 0.0 {
        Duration::from_secs_f64(size as f64 / shared.settings.export_rate)
    } else {
        Duration::ZERO
    };
    if *remaining > 0 || started.elapsed() < due {
        *remaining = remaining.saturating_sub(1);
        return envelope(
            202,
            format!(
                r#"{{"success":true,"type":"export","at_bookmark":"{bookmark}","status":"active","messages":["Uploaded part {polled}"]}}"#
            )
            .as_bytes(),
        );
    }
    let took = started.elapsed().as_secs_f64() * 1000.0;
    exports.remove(&bookmark);
    {
        let mut s = lock(&shared.stats);
        s.export_ms = s.export_ms.max(took);
        s.exports_completed += 1;
    }
    let file = format!("{}-{bookmark}.sql", db.uuid);
    let url = signed_url(&shared.origin, db, &bookmark);
    envelope(
        200,
        format!(
            r#"{{"success":true,"type":"export","at_bookmark":"{bookmark}","status":"complete","result":{{"filename":"{file}","signed_url":"{url}"}},"messages":["Finished uploading {file} in 1 parts."]}}"#
        )
        .as_bytes(),
    )
}

fn download(
    stream: &mut TcpStream,
    shared: &Shared,
    request: &Request,
    file: &str,
) -> io::Result<Outcome> {
    let db = shared
        .settings
        .dbs
        .iter()
        .find(|d| file.starts_with(&d.uuid));
    let Some(db) = db.filter(|_| request.query.contains("X-Amz-Signature=")) else {
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        send(stream, 403, "application/xml", body)?;
        return Ok(Outcome {
            kind: "download",
            busy: Duration::ZERO,
            db: String::new(),
            status: 403,
            bytes: body.len() as u64,
            rows: 0,
        });
    };
    let mut dump = File::open(&db.dump)?;
    let total = dump.metadata()?.len();
    let range = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(from, to)| {
            let from: u64 = from.trim().parse().ok()?;
            let to: u64 = to.trim().parse().unwrap_or(total.saturating_sub(1));
            (from < total && from <= to).then_some((from, to.min(total - 1)))
        });
    let etag = format!("\"bench-{total:x}\"");
    let (status, code, from, len, extra) = match range {
        Some((from, to)) => (
            "206 Partial Content",
            206,
            from,
            to - from + 1,
            format!("content-range: bytes {from}-{to}/{total}\r\n"),
        ),
        None => ("200 OK", 200, 0, total, String::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/octet-stream\r\ncontent-length: {len}\r\netag: {etag}\r\naccept-ranges: bytes\r\nlast-modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n{extra}\r\n"
    );
    stream.write_all(head.as_bytes())?;
    let mut sent = 0;
    if request.method != "HEAD" {
        dump.seek(SeekFrom::Start(from))?;
        // File → socket: the standard library uses sendfile(2) here on Linux.
        sent = io::copy(&mut dump.take(len), stream)?;
    }
    Ok(Outcome {
        kind: "download",
        busy: Duration::ZERO,
        db: db.uuid.clone(),
        status: code,
        bytes: sent,
        rows: 0,
    })
}
