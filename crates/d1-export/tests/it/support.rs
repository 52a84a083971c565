//! Shared fixtures: a fast client, envelope builders, a sequence responder,
//! and a raw TCP server for download faults wiremock cannot produce.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use d1_export::{ApiToken, D1Client, Error, ExportEvent, ExportOptions, RetryPolicy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::{Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "tok-SECRET-4f1c9e";
pub const ACCOUNT: &str = "acc123";
pub const DB: &str = "db-uuid-1";
pub const SIGNATURE: &str = "X-Amz-Signature=SIGSECRET";

/// Retries fast so fault tests take milliseconds.
pub fn fast_retry() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    policy.initial_backoff = Duration::from_millis(1);
    policy.max_backoff = Duration::from_millis(5);
    policy.default_retry_after = Duration::from_millis(10);
    policy.max_retries = 5;
    policy
}

pub fn client(base: &str) -> D1Client {
    D1Client::builder(ApiToken::from(TOKEN))
        .base_url(format!("{base}/client/v4"))
        .retry(fast_retry())
        .request_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn fast_export() -> ExportOptions {
    let mut options = ExportOptions::default();
    options.poll_interval = Duration::from_millis(1);
    options.busy_retry_interval = Duration::from_millis(5);
    options
}

pub fn export_path() -> String {
    format!("/client/v4/accounts/{ACCOUNT}/d1/database/{DB}/export")
}

pub fn ok(status: u16, result: Value) -> ResponseTemplate {
    let mut body = serde_json::Map::new();
    body.insert("success".into(), Value::Bool(true));
    body.insert("errors".into(), json!([]));
    body.insert("messages".into(), json!([]));
    body.insert("result".into(), result);
    ResponseTemplate::new(status).set_body_json(Value::Object(body))
}

pub fn fail(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null
    }))
}

pub fn active(bookmark: &str, messages: &[&str]) -> ResponseTemplate {
    ok(
        202,
        json!({"success": true, "type": "export", "at_bookmark": bookmark, "status": "active", "messages": messages}),
    )
}

pub fn complete(bookmark: &str, url: &str) -> ResponseTemplate {
    ok(
        200,
        json!({"success": true, "type": "export", "at_bookmark": bookmark, "status": "complete",
               "result": {"filename": "dump.sql", "signed_url": url},
               "messages": ["Finished uploading dump.sql in 4 parts."]}),
    )
}

pub fn html(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_raw("<html><body>502 Bad Gateway</body></html>", "text/html")
}

/// Answers with the templates in order, repeating the last one.
pub struct Seq {
    templates: Vec<ResponseTemplate>,
    next: AtomicUsize,
}

impl Seq {
    pub fn new(templates: Vec<ResponseTemplate>) -> Self {
        Self {
            templates,
            next: AtomicUsize::new(0),
        }
    }
}

impl Respond for Seq {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let i = self
            .next
            .fetch_add(1, Ordering::SeqCst)
            .min(self.templates.len() - 1);
        self.templates[i].clone()
    }
}

/// Records every event, for asserting order.
#[derive(Default, Clone)]
pub struct Recorder(pub Arc<Mutex<Vec<ExportEvent>>>);

impl Recorder {
    pub fn callback(&self) -> impl Fn(&ExportEvent) + Send + Sync + use<> {
        let events = self.0.clone();
        move |event: &ExportEvent| events.lock().unwrap().push(event.clone())
    }

    pub fn events(&self) -> Vec<ExportEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// Fails if the token or a signed URL's query shows in the error.
pub fn assert_no_secret(err: &Error) {
    let mut shown = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        shown = format!("{shown} {inner} {inner:?}");
        source = inner.source();
    }
    assert!(!shown.contains(TOKEN), "token leaked: {shown}");
    assert!(!shown.contains("SIGSECRET"), "signature leaked: {shown}");
}

/// The bookmark a request body carries, if any.
pub fn bookmark_of(request: &Request) -> Option<String> {
    let body: Value = serde_json::from_slice(&request.body).ok()?;
    body.get("current_bookmark")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A deterministic byte at `offset` of a generated dump.
pub fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(31) ^ (offset >> 9)) as u8
}

pub fn pattern_bytes(len: u64) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

/// What the raw server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub target: String,
    pub range_start: Option<u64>,
    pub headers: String,
}

/// How the raw server answers one request.
pub enum Plan {
    /// Close without answering.
    Hang,
    /// Status, extra headers, and body bytes `[from, to)` of the pattern of
    /// `total` bytes; `cut_after` closes the socket after that many.
    Body {
        status: u16,
        headers: Vec<String>,
        total: u64,
        from: u64,
        cut_after: Option<u64>,
    },
    /// A fixed status, content type and body.
    Fixed {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0; each connection answers one
/// request per the plan function, which gets the request number.
pub struct RawServer {
    pub addr: std::net::SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

type PlanFn = dyn Fn(usize, &Seen) -> Plan + Send + Sync;

impl RawServer {
    pub async fn start(plan: impl Fn(usize, &Seen) -> Plan + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let plan: Arc<PlanFn> = Arc::new(plan);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (plan, log) = (plan.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, plan, log).await;
                });
            }
        });
        Self { addr, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}?{SIGNATURE}&X-Amz-Expires=3600", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    mut socket: TcpStream,
    plan: Arc<PlanFn>,
    log: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let target = text.split_whitespace().nth(1).unwrap_or("").to_owned();
    let range_start = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("range: bytes=")
                .map(str::to_owned)
        })
        .and_then(|r| {
            r.trim_end_matches('-')
                .trim()
                .trim_end_matches('-')
                .parse()
                .ok()
        });
    let seen = Seen {
        target,
        range_start,
        headers: text,
    };
    let index = {
        let mut log = log.lock().unwrap();
        log.push(seen.clone());
        log.len() - 1
    };
    match plan(index, &seen) {
        Plan::Hang => Ok(()),
        Plan::Fixed {
            status,
            content_type,
            body,
        } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&body).await?;
            socket.shutdown().await
        }
        Plan::Body {
            status,
            headers,
            total,
            from,
            cut_after,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/sql\r\ncontent-length: {}\r\nconnection: close\r\n",
                total - from
            );
            for h in headers {
                head.push_str(&h);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            socket.write_all(head.as_bytes()).await?;
            let end = cut_after.map_or(total, |n| (from + n).min(total));
            let mut chunk = vec![0u8; 64 * 1024];
            let mut offset = from;
            while offset < end {
                let len = (end - offset).min(chunk.len() as u64) as usize;
                for (i, b) in chunk[..len].iter_mut().enumerate() {
                    *b = pattern(offset + i as u64);
                }
                socket.write_all(&chunk[..len]).await?;
                offset += len as u64;
            }
            socket.flush().await?;
            // Dropping the socket closes it; if cut short, the client sees a
            // body shorter than its Content-Length.
            Ok(())
        }
    }
}
