//! [`MetricsServer`] (feature `metrics-server`): `GET /metrics` and `GET /healthz` over
//! HTTP/1.1, for `d1-backup daemon`'s `[daemon] metrics_listen`.
//!
//! The caller starts it and owns it: it binds the address it is given, serves the
//! [`Metrics`] the caller shares with it (the caller records runs into the same value), and
//! stops when the caller's token is cancelled. Nothing is global; an embedding service may
//! run several, or none and render [`Metrics`] into its own endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind};
use crate::metrics::{METRICS_CONTENT_TYPE, Metrics};

/// Serves shared [`Metrics`] on `GET /metrics` and answers `GET /healthz` with `ok` while
/// the process runs. Any other path is 404; a method other than GET or HEAD is 405.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    metrics: Arc<Mutex<Metrics>>,
}

impl MetricsServer {
    /// Binds `address` (port 0 picks a free port; see [`local_addr`](Self::local_addr)).
    /// Fails with [`ErrorKind::LocalIo`] when the address cannot be bound (in use, not an
    /// address of this host, a privileged port).
    pub async fn bind(address: SocketAddr, metrics: Arc<Mutex<Metrics>>) -> Result<Self, Error> {
        let listener = TcpListener::bind(address).await.map_err(|e| {
            Error::new(
                ErrorKind::LocalIo,
                format!("cannot listen for metrics on {address}"),
            )
            .with_source(e)
        })?;
        Ok(Self { listener, metrics })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener.local_addr().map_err(|e| {
            Error::new(ErrorKind::LocalIo, "cannot read the metrics address").with_source(e)
        })
    }

    /// Answers requests until `stop` is cancelled; then closes every connection.
    pub async fn serve(self, stop: CancellationToken) {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = stop.cancelled() => break,
            };
            // Reap finished connections so the set does not grow without bound.
            while connections.try_join_next().is_some() {}
            let Ok((socket, _)) = accepted else {
                continue;
            };
            let metrics = Arc::clone(&self.metrics);
            connections.spawn(async move {
                let service = service_fn(move |request| {
                    let answer = answer(&request, &metrics);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service);
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "metrics connection ended with an error");
                }
            });
        }
        connections.shutdown().await;
    }
}

fn answer(request: &Request<Incoming>, metrics: &Mutex<Metrics>) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET is served\n");
    }
    match request.uri().path() {
        "/metrics" => {
            // A panic elsewhere while the lock was held leaves whole values behind (every
            // update is a plain assignment), so the metrics are still worth serving.
            let text = metrics
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .render();
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(METRICS_CONTENT_TYPE),
            );
            response
        }
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: GET /metrics or /healthz\n",
        ),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
