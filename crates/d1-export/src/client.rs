//! `D1Client`, its builder, and the one place requests are sent and retried.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::policy::{Limiter, RateLimit, RetryPolicy};
use crate::secret::ApiToken;
use crate::wire;

const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
const DEFAULT_USER_AGENT: &str = concat!("d1-export/", env!("CARGO_PKG_VERSION"));

/// A client for the Cloudflare D1 HTTP API.
///
/// Cheap to clone: clones share the connection pool, the settings and one
/// request budget ([`RateLimit`]). Build one client per API token and clone
/// it; separately built clients do not share a budget.
#[derive(Clone)]
pub struct D1Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    base: url::Url,
    token: ApiToken,
    pub(crate) user_agent: String,
    /// Applied per API request, and as the idle limit between download chunks.
    pub(crate) request_timeout: Option<Duration>,
    /// Shared by every request to the API made through this client.
    limiter: Limiter,
    pub(crate) retry: RetryPolicy,
    /// API requests sent through this client and its clones (every attempt, retries
    /// included); read by [`D1Client::request_counts`].
    sent: AtomicU64,
    /// Of those, the ones the API answered 429.
    rate_limited: AtomicU64,
}

/// How many API requests a client (with its clones) has sent since it was built
/// ([`D1Client::request_counts`]). Signed-URL downloads are not API requests and are not
/// counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCounts {
    /// Requests sent to the API, every attempt counted (a retried call counts each try).
    pub sent: u64,
    /// Requests the API answered `429 Too Many Requests`.
    pub rate_limited: u64,
}

impl RequestCounts {
    /// The requests counted in `self` but not in `earlier` (a run's share of a client's
    /// totals); saturates at zero.
    #[must_use]
    pub fn since(self, earlier: RequestCounts) -> RequestCounts {
        RequestCounts {
            sent: self.sent.saturating_sub(earlier.sent),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
        }
    }
}

impl std::ops::Add for RequestCounts {
    type Output = RequestCounts;
    fn add(self, other: RequestCounts) -> RequestCounts {
        RequestCounts {
            sent: self.sent + other.sent,
            rate_limited: self.rate_limited + other.rate_limited,
        }
    }
}

impl D1Client {
    /// The API requests this client and its clones have sent so far, and how many were
    /// answered 429: for metrics (a run reads it before and after).
    pub fn request_counts(&self) -> RequestCounts {
        RequestCounts {
            sent: self.inner.sent.load(Ordering::Relaxed),
            rate_limited: self.inner.rate_limited.load(Ordering::Relaxed),
        }
    }

    /// Whether `self` and `other` are clones of one client (one budget, one count).
    pub fn same_client(&self, other: &D1Client) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for D1Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("D1Client")
            .field("base_url", &self.inner.base.as_str())
            .field("user_agent", &self.inner.user_agent)
            .field("token", &self.inner.token)
            .finish_non_exhaustive()
    }
}

/// Builds a [`D1Client`]. Setters cannot fail; [`build`](Self::build) can.
#[derive(Debug)]
#[must_use]
pub struct D1ClientBuilder {
    token: ApiToken,
    base_url: String,
    http: Option<reqwest::Client>,
    user_agent: String,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    rate_limit: RateLimit,
    retry: RetryPolicy,
}

impl D1Client {
    /// Starts building a client that authenticates with `token`.
    pub fn builder(token: ApiToken) -> D1ClientBuilder {
        D1ClientBuilder {
            token,
            base_url: DEFAULT_BASE_URL.to_owned(),
            http: None,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Some(Duration::from_mins(1)),
            rate_limit: RateLimit::default(),
            retry: RetryPolicy::default(),
        }
    }
}

impl D1ClientBuilder {
    /// Overrides the API base URL (default `https://api.cloudflare.com/client/v4`).
    /// Paths such as `/accounts/{id}/d1/database` are appended to it; a
    /// trailing slash is fine.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Uses the caller's `reqwest::Client`, sharing its connection pool. Its
    /// own connect timeout then applies instead of [`connect_timeout`](Self::connect_timeout).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Sets the `User-Agent` sent with every request.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Sets the TCP/TLS connect timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the limit per API request, and the longest a download may go
    /// without receiving a byte before it resumes (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Removes the per-request limit (the connect timeout still applies).
    pub fn no_request_timeout(mut self) -> Self {
        self.request_timeout = None;
        self
    }

    /// Sets the request budget shared by all clones of the client.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Sets how failed requests are retried.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Builds the client. Fails if the base URL is not an absolute http(s)
    /// URL or the HTTP client cannot be created.
    pub fn build(self) -> Result<D1Client> {
        let base = parse_base_url(&self.base_url)?;
        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .build()
                .map_err(|e| {
                    Error::transport(
                        ErrorKind::InvalidInput,
                        "could not create the HTTP client",
                        e,
                    )
                })?,
        };
        Ok(D1Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: self.token,
                user_agent: self.user_agent,
                request_timeout: self.request_timeout,
                limiter: Limiter::new(&self.rate_limit),
                retry: self.retry,
                sent: AtomicU64::new(0),
                rate_limited: AtomicU64::new(0),
            }),
        })
    }
}

fn parse_base_url(text: &str) -> Result<url::Url> {
    let invalid = |why: String| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the D1 API base URL `{text}` is invalid ({why}): pass an absolute URL such as {DEFAULT_BASE_URL}"
            ),
        )
    };
    let mut url = url::Url::parse(text).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid("not an http or https URL".to_owned()));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// A request body.
pub(crate) enum Payload {
    None,
    Json(Value),
    Raw(bytes::Bytes),
}

/// Which failed attempts a call may send again.
#[derive(Clone, Copy)]
enum Resend<'a> {
    /// Any retryable failure (the request may safely run twice).
    Always,
    /// Only a 429 or a failed connect; otherwise the outcome is unknown, and `if_unknown`
    /// says how to find it out.
    OnlyIfNothingHappened { if_unknown: &'a str },
}

/// Called before each retry with the reason and the delay.
pub(crate) type OnRetry<'a> = &'a (dyn Fn(&str, Duration) + Send + Sync);

impl Inner {
    /// `{base}/{segments...}`, each segment percent-encoded.
    pub(crate) fn endpoint(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends one API request, retrying per the policy, and returns the
    /// envelope of a successful answer. `doing` prefixes error messages.
    /// Only for requests that may be sent twice (reads, polls, queries the
    /// caller knows to be safe); see [`call_changing`](Self::call_changing).
    pub(crate) async fn call(
        &self,
        method: Method,
        url: url::Url,
        payload: &Payload,
        doing: &str,
        on_retry: OnRetry<'_>,
    ) -> Result<Value> {
        self.call_with(method, url, payload, &[], doing, on_retry, Resend::Always)
            .await
    }

    /// [`call`](Self::call) with extra request headers (such as R2's `cf-r2-jurisdiction`).
    pub(crate) async fn call_with_headers(
        &self,
        url: url::Url,
        headers: &[(&str, &str)],
        doing: &str,
    ) -> Result<Value> {
        let payload = Payload::None;
        let resend = Resend::Always;
        self.call_with(
            Method::GET,
            url,
            &payload,
            headers,
            doing,
            &ignore_retry,
            resend,
        )
        .await
    }

    /// Sends a request that changes something and must not happen twice (creating a
    /// database, a Time Travel restore). It is sent again only when the first attempt
    /// provably did nothing: a 429 (refused before any work) or a failed connect (never
    /// sent). Any other failure after sending (a dropped connection, a timeout, a 5xx) is
    /// [`ErrorKind::OutcomeUnknown`], with `if_unknown` telling the caller how to find out.
    pub(crate) async fn call_changing(
        &self,
        method: Method,
        url: url::Url,
        payload: &Payload,
        doing: &str,
        if_unknown: &str,
    ) -> Result<Value> {
        let resend = Resend::OnlyIfNothingHappened { if_unknown };
        self.call_with(method, url, payload, &[], doing, &ignore_retry, resend)
            .await
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the private core of call, call_with_headers and call_changing"
    )]
    async fn call_with(
        &self,
        method: Method,
        url: url::Url,
        payload: &Payload,
        headers: &[(&str, &str)],
        doing: &str,
        on_retry: OnRetry<'_>,
        resend: Resend<'_>,
    ) -> Result<Value> {
        let mut backoff = self.retry.backoff();
        let mut rate_limited_for = Duration::ZERO;
        loop {
            self.limiter.acquire().await;
            let err = match self
                .send_once(method.clone(), url.clone(), payload, headers)
                .await
            {
                Ok(envelope) => return Ok(envelope),
                Err(err) => err,
            };
            let delay = match err.kind() {
                ErrorKind::RateLimited => {
                    let wait = err.retry_after().unwrap_or(self.retry.default_retry_after);
                    if rate_limited_for + wait > self.retry.max_rate_limit_wait {
                        return Err(err.context(doing));
                    }
                    rate_limited_for += wait;
                    self.limiter.block_until(tokio::time::Instant::now() + wait);
                    wait
                }
                ErrorKind::Transient => match resend {
                    Resend::OnlyIfNothingHappened { if_unknown } if !err.was_unsent() => {
                        let message = format!(
                            "{doing}: the request was sent but its outcome is unknown ({err}): {if_unknown}"
                        );
                        return Err(err.reclassify(ErrorKind::OutcomeUnknown, message));
                    }
                    _ => match backoff.next() {
                        Some(delay) => delay,
                        None => return Err(err.context(doing)),
                    },
                },
                _ => return Err(err.context(doing)),
            };
            tracing::debug!(path = url.path(), ?delay, error = %err, "retrying D1 API request");
            on_retry(&err.to_string(), delay);
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: url::Url,
        payload: &Payload,
        headers: &[(&str, &str)],
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose())
            .header(USER_AGENT, &self.user_agent);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(timeout) = self.request_timeout {
            request = request.timeout(timeout);
        }
        request = match payload {
            Payload::None => request,
            Payload::Json(value) => request.json(value),
            Payload::Raw(bytes) => request.body(bytes.clone()),
        };
        self.sent.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(|e| {
            let connect = e.is_connect();
            let err = Error::transport(
                ErrorKind::Transient,
                "could not reach the D1 API (network error or timeout)",
                e,
            );
            if connect { err.unsent() } else { err }
        })?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let retry_after = retry_after(&response);
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|e| {
            Error::transport(
                ErrorKind::Transient,
                format!("the D1 API answer ({status}) was cut off"),
                e,
            )
        })?;
        tracing::trace!(%status, bytes = body.len(), "D1 API answered");
        wire::parse_reply(status, content_type.as_deref(), &body).map_err(|e| {
            if status == StatusCode::TOO_MANY_REQUESTS {
                e.with_retry_after(retry_after)
            } else {
                e
            }
        })
    }
}

/// `retry-after` in whole seconds; HTTP dates are not used by the API.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let text = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A no-op retry observer.
pub(crate) fn ignore_retry(_: &str, _: Duration) {}
