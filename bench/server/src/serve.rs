//! A lean emulation of the parts of the Cloudflare D1 API a backup uses, with the same wire
//! format as `d1_export::testing::D1Simulator` (and D1): the database list, `/raw` (answering
//! the schema query with a schema that has no virtual table), the polling export (202 `active`
//! for `polls` polls, then 200 `complete` with a signed URL) and the signed URL itself, served
//! from a file with `Range` support.
//!
//! One thread per connection, HTTP/1.1 keep-alive, and the dump sent with `std::io::copy` from
//! the file to the socket, which Linux turns into sendfile(2): serving 1 GiB costs a fraction
//! of a CPU-second, so the server does not compete with what is measured.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A database the server exports.
#[derive(Debug, Clone)]
pub struct Db {
    pub name: String,
    pub uuid: String,
    pub dump: PathBuf,
}

/// What the server serves.
#[derive(Debug)]
pub struct Settings {
    pub account: String,
    pub token: String,
    pub polls: u32,
    pub dbs: Vec<Db>,
}

#[derive(Debug, Default)]
struct Counters {
    api: AtomicU64,
    raw: AtomicU64,
    export_starts: AtomicU64,
    export_polls: AtomicU64,
    downloads: AtomicU64,
}

struct Shared {
    settings: Settings,
    origin: String,
    /// Polls left per running export, by bookmark.
    exports: Mutex<HashMap<String, u32>>,
    next_export: AtomicU64,
    counters: Counters,
}

/// The signed URL a peer (curl, rclone) downloads for `db`: the same bytes and the same
/// server as the export's own URL.
pub fn signed_url(origin: &str, db: &Db, bookmark: &str) -> String {
    format!(
        "{origin}/signed/{}-{bookmark}.sql?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=5ec2e7f00d",
        db.uuid
    )
}

/// Binds `listen`, prints what a client needs, then serves forever.
pub fn run(listen: &str, settings: Settings) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let origin = format!("http://{}", listener.local_addr()?);
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "api {origin}/client/v4")?;
    for db in &settings.dbs {
        let size = std::fs::metadata(&db.dump)?.len();
        writeln!(
            stdout,
            "db {} {} {size} {}",
            db.name,
            db.uuid,
            signed_url(&origin, db, "peer")
        )?;
    }
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    drop(stdout);
    let shared = Arc::new(Shared {
        settings,
        origin,
        exports: Mutex::new(HashMap::new()),
        next_export: AtomicU64::new(1),
        counters: Counters::default(),
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let _ = connection(stream, &shared);
        });
    }
    Ok(())
}

/// One parsed request.
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

/// Serves requests on one connection until the client closes it.
fn connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut pending = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut pending)? {
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        respond(&mut stream, shared, &request)?;
        if close {
            break;
        }
    }
    Ok(())
}

fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let mut buf = [0u8; 8192];
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

fn respond(stream: &mut TcpStream, shared: &Shared, request: &Request) -> io::Result<()> {
    if let Some(file) = request.path.strip_prefix("/signed/") {
        return download(stream, shared, request, file);
    }
    if request.path == "/stats" {
        let c = &shared.counters;
        let body = format!(
            r#"{{"api":{},"raw":{},"export_starts":{},"export_polls":{},"downloads":{}}}"#,
            c.api.load(Ordering::Relaxed),
            c.raw.load(Ordering::Relaxed),
            c.export_starts.load(Ordering::Relaxed),
            c.export_polls.load(Ordering::Relaxed),
            c.downloads.load(Ordering::Relaxed),
        );
        return send_json(stream, 200, &body);
    }
    shared.counters.api.fetch_add(1, Ordering::Relaxed);
    let (status, body) = api(shared, request);
    send_json(stream, status, &body)
}

fn send_json(stream: &mut TcpStream, status: u16, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}

fn failure(status: u16, code: u32, message: &str) -> (u16, String) {
    (
        status,
        format!(
            r#"{{"success":false,"errors":[{{"code":{code},"message":"{message}"}}],"messages":[],"result":null}}"#
        ),
    )
}

fn envelope(status: u16, result: &str) -> (u16, String) {
    (
        status,
        format!(r#"{{"success":true,"errors":[],"messages":[],"result":{result}}}"#),
    )
}

/// The API routes: `GET …/d1/database`, `POST …/d1/database/{id}/raw`, `POST …/export`.
fn api(shared: &Shared, request: &Request) -> (u16, String) {
    let settings = &shared.settings;
    let segments: Vec<&str> = request
        .path
        .trim_start_matches("/client/v4/")
        .split('/')
        .collect();
    let ["accounts", account, "d1", "database", rest @ ..] = segments.as_slice() else {
        return failure(404, 7000, "No route for that URI");
    };
    let bearer = format!("Bearer {}", settings.token);
    if *account != settings.account || request.header("authorization") != Some(bearer.as_str()) {
        return failure(401, 10000, "Authentication error");
    }
    let find = |id: &str| settings.dbs.iter().find(|d| d.uuid == id || d.name == id);
    match (request.method.as_str(), rest) {
        ("GET", []) => list(settings, &request.query),
        ("POST", [id, "raw"]) => match find(id) {
            Some(_) => {
                shared.counters.raw.fetch_add(1, Ordering::Relaxed);
                schema()
            }
            None => failure(404, 7404, "The database could not be found"),
        },
        ("POST", [id, "export"]) => match find(id) {
            Some(db) => export(shared, db, &request.body),
            None => failure(404, 7404, "The database could not be found"),
        },
        _ => failure(404, 7000, "No route for that URI"),
    }
}

fn list(settings: &Settings, query: &str) -> (u16, String) {
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
    (200, body)
}

/// `sqlite_schema` as `/raw` sends it: the generator's three tables, no virtual table.
fn schema() -> (u16, String) {
    envelope(
        200,
        r#"[{"results":{"columns":["type","name","tbl_name","sql"],"rows":[["table","users","users","CREATE TABLE users (id INTEGER PRIMARY KEY)"],["table","events","events","CREATE TABLE events (id INTEGER PRIMARY KEY)"],["table","attachments","attachments","CREATE TABLE attachments (id INTEGER PRIMARY KEY)"]]},"success":true,"meta":{"duration":0.1}}]"#,
    )
}

fn export(shared: &Shared, db: &Db, body: &[u8]) -> (u16, String) {
    let body = String::from_utf8_lossy(body);
    let mut exports = shared
        .exports
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let Some(bookmark) = body
        .split_once(r#""current_bookmark":""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(bookmark, _)| bookmark.to_owned())
    else {
        shared
            .counters
            .export_starts
            .fetch_add(1, Ordering::Relaxed);
        let n = shared.next_export.fetch_add(1, Ordering::Relaxed);
        let bookmark = format!("{n:08x}-00000001-00004f8a-{}", &db.uuid[24..]);
        exports.insert(bookmark.clone(), shared.settings.polls);
        return envelope(
            202,
            &format!(
                r#"{{"success":true,"type":"export","at_bookmark":"{bookmark}","status":"active","messages":["Generating {}-{bookmark}.sql"]}}"#,
                db.uuid
            ),
        );
    };
    shared.counters.export_polls.fetch_add(1, Ordering::Relaxed);
    let Some(remaining) = exports.get_mut(&bookmark) else {
        return failure(400, 7500, "Unknown bookmark");
    };
    if *remaining > 0 {
        *remaining -= 1;
        return envelope(
            202,
            &format!(
                r#"{{"success":true,"type":"export","at_bookmark":"{bookmark}","status":"active","messages":["Uploaded part {}"]}}"#,
                shared.settings.polls - *remaining
            ),
        );
    }
    let file = format!("{}-{bookmark}.sql", db.uuid);
    let url = signed_url(&shared.origin, db, &bookmark);
    envelope(
        200,
        &format!(
            r#"{{"success":true,"type":"export","at_bookmark":"{bookmark}","status":"complete","result":{{"filename":"{file}","signed_url":"{url}"}},"messages":["Finished uploading {file} in 1 parts."]}}"#
        ),
    )
}

/// `GET`/`HEAD /signed/<uuid>-<bookmark>.sql?…X-Amz-Signature=…`, with `Range: bytes=N-[M]`.
fn download(
    stream: &mut TcpStream,
    shared: &Shared,
    request: &Request,
    file: &str,
) -> io::Result<()> {
    let db = shared
        .settings
        .dbs
        .iter()
        .find(|d| file.starts_with(&d.uuid));
    let Some(db) = db.filter(|_| request.query.contains("X-Amz-Signature=")) else {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        let head = format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        return stream.write_all(body.as_bytes());
    };
    shared.counters.downloads.fetch_add(1, Ordering::Relaxed);
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
    let (status, from, len, extra) = match range {
        Some((from, to)) => (
            "206 Partial Content",
            from,
            to - from + 1,
            format!("content-range: bytes {from}-{to}/{total}\r\n"),
        ),
        None => ("200 OK", 0, total, String::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/octet-stream\r\ncontent-length: {len}\r\netag: {etag}\r\naccept-ranges: bytes\r\nlast-modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n{extra}\r\n"
    );
    stream.write_all(head.as_bytes())?;
    if request.method == "HEAD" {
        return Ok(());
    }
    dump.seek(SeekFrom::Start(from))?;
    // File → socket: the standard library uses sendfile(2) here on Linux.
    let sent = io::copy(&mut dump.take(len), stream)?;
    if sent < len {
        return Err(io::Error::other("the dump file is shorter than it was"));
    }
    Ok(())
}
