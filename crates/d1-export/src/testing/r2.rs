//! The simulator's signed-URL server: a raw HTTP/1.1 server, because a
//! dropped connection mid-body cannot be produced through wiremock.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Fault, State};

/// Binds the download server; returns it with its origin (`http://127.0.0.1:PORT`).
///
/// # Panics
///
/// If no loopback port can be bound (test support only).
#[allow(clippy::expect_used)]
pub(super) async fn start() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0 for the download server");
    let origin = format!(
        "http://{}",
        listener
            .local_addr()
            .expect("the download server's address")
    );
    (listener, origin)
}

/// Accepts connections until aborted; one request per connection.
pub(super) async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((socket, _)) = listener.accept().await {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = answer(socket, &state).await;
        });
    }
}

/// What to send for one download request.
struct Reply {
    status: &'static str,
    headers: Vec<String>,
    body: Bytes,
    /// Bytes of `body` to send before dropping the connection.
    cut_after: Option<usize>,
}

async fn answer(mut socket: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let range = text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let value = value.trim().strip_prefix("bytes=")?;
        name.eq_ignore_ascii_case("range")
            .then(|| value.trim_end_matches('-').parse::<u64>().ok())?
    });
    let reply = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests += 1;
        plan(
            &mut state,
            path.strip_prefix("/signed/").unwrap_or(""),
            query,
            range,
        )
    };
    let mut out = format!(
        "HTTP/1.1 {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for header in &reply.headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    socket.write_all(out.as_bytes()).await?;
    let sent = reply
        .cut_after
        .unwrap_or(reply.body.len())
        .min(reply.body.len());
    socket.write_all(&reply.body[..sent]).await?;
    socket.flush().await?;
    if reply.cut_after.is_none() {
        socket.shutdown().await?;
    }
    // Dropping the socket here closes it, short of the announced length if cut.
    Ok(())
}

fn plan(state: &mut State, file: &str, query: &str, range: Option<u64>) -> Reply {
    let Some(db) = state
        .databases
        .iter()
        .find(|d| !file.is_empty() && file.starts_with(&d.uuid))
    else {
        return denied();
    };
    let (uuid, mut dump, fault) = (db.uuid.clone(), db.dump.clone(), db.fault.clone());
    // A backed database's exports each serve their own dump: `<uuid>-<bookmark>.sql`.
    let bookmark = file
        .strip_prefix(uuid.as_str())
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(".sql"));
    if let Some(Some(Ok(own))) = bookmark
        .and_then(|b| state.exports.get(&format!("{uuid} {b}")))
        .map(|export| export.outcome.as_ref())
    {
        dump = own.clone();
    }
    if !query.contains("X-Amz-Signature=") {
        return denied();
    }
    let count = state.downloads.entry(uuid).or_insert(0);
    *count += 1;
    if let Some(Fault::RefuseSignedUrl(n)) = fault
        && *count <= n
    {
        return denied();
    }
    let total = dump.len();
    let sql = "content-type: application/octet-stream".to_owned();
    let etag = format!("etag: \"sim-{total:x}\"");
    if let Some(from) = range
        .and_then(|r| usize::try_from(r).ok())
        .filter(|r| *r <= total)
    {
        let content_range = format!(
            "content-range: bytes {from}-{}/{total}",
            total.saturating_sub(1)
        );
        return Reply {
            status: "206 Partial Content",
            headers: vec![sql, etag, content_range],
            body: dump.slice(from..),
            cut_after: None,
        };
    }
    let cut_after = match fault {
        Some(Fault::DropDownload(after)) if *count == 1 => {
            Some(usize::try_from(after).unwrap_or(total))
        }
        _ => None,
    };
    Reply {
        status: "200 OK",
        headers: vec![sql, etag],
        body: dump,
        cut_after,
    }
}

fn denied() -> Reply {
    Reply {
        status: "403 Forbidden",
        headers: vec!["content-type: application/xml".to_owned()],
        body: Bytes::from_static(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        ),
        cut_after: None,
    }
}
