//! A proxy in front of the D1 simulator that applies Cloudflare's own rate limit: at most
//! 1,200 API requests per token in any five minutes, answered 429 beyond that (the simulator
//! itself never refuses for volume). It records when each token's requests went out, so the
//! bench can report the busiest windows next to the client's budget.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Cloudflare's limit: requests per token per window.
pub const CLOUDFLARE_LIMIT: usize = 1200;
pub const CLOUDFLARE_WINDOW: Duration = Duration::from_secs(300);

/// What the gate saw.
#[derive(Debug, Default)]
pub struct Gate {
    /// Send times of the requests let through, per bearer token.
    sent: Mutex<HashMap<String, Vec<Instant>>>,
    /// 429 answers the gate gave.
    pub refused: AtomicU64,
    client: reqwest::Client,
}

impl Gate {
    /// Requests let through per token, in token order.
    pub fn per_token(&self) -> Vec<(String, Vec<Instant>)> {
        let sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = sent.iter().map(|(t, v)| (t.clone(), v.clone())).collect();
        all.sort();
        all
    }

    pub fn reset(&self) {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.refused.store(0, Ordering::Relaxed);
    }

    /// Takes one request's worth of `token`'s budget, or says it is over Cloudflare's limit.
    fn admit(&self, token: &str) -> bool {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        let times = sent.entry(token.to_owned()).or_default();
        let now = Instant::now();
        let recent = times
            .iter()
            .rev()
            .take_while(|t| now.duration_since(**t) < CLOUDFLARE_WINDOW)
            .count();
        if recent >= CLOUDFLARE_LIMIT {
            return false;
        }
        times.push(now);
        true
    }
}

/// The most requests in any window of `width` among `times` (sorted).
pub fn busiest(times: &[Instant], width: Duration) -> usize {
    let mut start = 0;
    let mut best = 0;
    for (end, t) in times.iter().enumerate() {
        while t.duration_since(times[start]) >= width {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

/// Starts the gate in front of `upstream` (`http://127.0.0.1:PORT`); returns its origin.
pub async fn start(upstream: String, gate: Arc<Gate>) -> std::io::Result<String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let origin = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (upstream, gate) = (upstream.clone(), Arc::clone(&gate));
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    forward(request, upstream.clone(), Arc::clone(&gate))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(origin)
}

async fn forward(
    request: Request<Incoming>,
    upstream: String,
    gate: Arc<Gate>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let token = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !gate.admit(&token) {
        gate.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(reply(
            429,
            &[("retry-after", "60")],
            Bytes::from_static(br#"{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[],"result":null}"#),
        ));
    }
    let method = request.method().clone();
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut headers = request.headers().clone();
    headers.remove(hyper::header::HOST);
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(reply(400, &[], Bytes::new())),
    };
    let answer = gate
        .client
        .request(method, format!("{upstream}{target}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(answer) = answer else {
        return Ok(reply(
            502,
            &[],
            Bytes::from_static(b"gate: upstream failed"),
        ));
    };
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let retry_after = answer
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = answer.bytes().await.unwrap_or_default();
    let mut extra = vec![("content-type", content_type.as_str())];
    if let Some(value) = retry_after.as_deref() {
        extra.push(("retry-after", value));
    }
    Ok(reply(status, &extra, body))
}

fn reply(status: u16, headers: &[(&str, &str)], body: Bytes) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
