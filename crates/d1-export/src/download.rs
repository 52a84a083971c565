//! Downloading a finished export from its signed URL, resuming on drops.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE, RETRY_AFTER, USER_AGENT,
};

use crate::client::D1Client;
use crate::error::{Error, ErrorKind, Result};
use crate::policy::RetryPolicy;
use crate::secret::SignedUrl;

/// A dump being downloaded: its announced size and its bytes.
///
/// The stream is byte-exact and continuous: if the connection drops, the
/// client resumes with `Range: bytes=N-` where it left off. Nothing is
/// buffered beyond the chunk in hand.
pub struct Download {
    content_length: Option<u64>,
    stream: BoxStream<'static, Result<Bytes>>,
}

impl Download {
    /// The dump's size in bytes, from `Content-Length`, if the server sent it.
    /// The stream fails rather than end short of it.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The dump's bytes. After an `Err` item the stream ends.
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        self.stream
    }
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

impl D1Client {
    /// Downloads a finished export. No API token is sent (the URL carries its
    /// own signature) and the request budget is not charged.
    ///
    /// Fails with [`ErrorKind::UrlExpired`] if the URL is refused (403, also
    /// when it expires mid-download): start a fresh export. An HTML or XML
    /// body is an error, never data.
    pub async fn download(&self, url: &SignedUrl) -> Result<Download> {
        let mut body = Body {
            http: self.inner.http.clone(),
            url: url.clone(),
            user_agent: self.inner.user_agent.clone(),
            idle: self.inner.request_timeout,
            backoff: Box::new(self.inner.retry.backoff()),
            retry: self.inner.retry.clone(),
            current: None,
            pos: 0,
            total: None,
            etag: None,
            skip: 0,
            recovering: false,
            done: false,
        };
        let first = body.next_chunk().await.transpose()?;
        if let Some(chunk) = &first {
            sniff(chunk, url)?;
        }
        let content_length = body.total;
        let stream = futures::stream::unfold((body, first), |(mut body, pending)| async move {
            match pending {
                Some(chunk) => Some((Ok(chunk), (body, None))),
                None => body.next_chunk().await.map(|item| (item, (body, None))),
            }
        });
        Ok(Download {
            content_length,
            stream: stream.boxed(),
        })
    }
}

/// The resumable body: which bytes the caller has, and the current response.
struct Body {
    http: reqwest::Client,
    url: SignedUrl,
    user_agent: String,
    /// The longest wait for headers or for the next chunk.
    idle: Option<Duration>,
    /// Delays for the current run of failures; reset whenever bytes arrive.
    backoff: Box<dyn Iterator<Item = Duration> + Send>,
    retry: RetryPolicy,
    /// The response being read; `None` means (re)open before reading.
    current: Option<BoxStream<'static, std::result::Result<Bytes, ()>>>,
    /// Bytes handed out so far: the next byte wanted is at this offset.
    pos: u64,
    /// The object's full size, once known.
    total: Option<u64>,
    etag: Option<String>,
    /// Bytes to drop from the current response before handing any out
    /// (a server that ignored `Range` re-sends from zero).
    skip: u64,
    /// Set by a failure, cleared by the next received bytes.
    recovering: bool,
    done: bool,
}

impl Body {
    async fn next_chunk(&mut self) -> Option<Result<Bytes>> {
        let result = self.next_inner().await;
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result.transpose()
    }

    async fn next_inner(&mut self) -> Result<Option<Bytes>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let Some(current) = self.current.as_mut() else {
                self.open().await?;
                continue;
            };
            // An idle timeout counts as a dropped connection.
            let next = match self.idle {
                Some(limit) => tokio::time::timeout(limit, current.next())
                    .await
                    .unwrap_or(Some(Err(()))),
                None => current.next().await,
            };
            match next {
                Some(Ok(chunk)) => {
                    if let Some(chunk) = self.take(chunk)? {
                        return Ok(Some(chunk));
                    }
                }
                Some(Err(())) => self.broke_off("the connection dropped").await?,
                None if self.total.is_some_and(|total| self.pos < total) => {
                    self.broke_off("the body ended early").await?;
                }
                None => return Ok(None),
            }
        }
    }

    /// Accounts for a received chunk; `None` if it was all skipped.
    fn take(&mut self, mut chunk: Bytes) -> Result<Option<Bytes>> {
        if self.skip > 0 {
            let drop = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            chunk = chunk.slice(drop..);
            self.skip -= drop as u64;
        }
        if chunk.is_empty() {
            return Ok(None);
        }
        self.pos += chunk.len() as u64;
        if self.recovering {
            // Progress ends a run of failures: the next one starts a fresh backoff.
            self.backoff = Box::new(self.retry.backoff());
            self.recovering = false;
        }
        if let Some(total) = self.total.filter(|total| self.pos > *total) {
            return Err(self.error(
                ErrorKind::Protocol,
                &format!("the server sent more than the announced {total} bytes"),
            ));
        }
        Ok(Some(chunk))
    }

    /// Drops the current response and waits before resuming.
    async fn broke_off(&mut self, what: &str) -> Result<()> {
        self.current = None;
        self.pause(what, None).await
    }

    async fn pause(&mut self, what: &str, hint: Option<Duration>) -> Result<()> {
        let Some(delay) = self.backoff.next() else {
            return Err(self.error(
                ErrorKind::Transient,
                &format!(
                    "{what} at byte {} and resuming failed {} times in a row; retry the download",
                    self.pos, self.retry.max_retries
                ),
            ));
        };
        self.recovering = true;
        let delay = hint.map_or(delay, |hint| hint.max(delay));
        tracing::debug!(url = %self.url, pos = self.pos, ?delay, what, "resuming download");
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Sends the GET (ranged past byte 0) and adopts its body.
    async fn open(&mut self) -> Result<()> {
        let mut request = self
            .http
            .get(self.url.url().clone())
            .header(USER_AGENT, self.user_agent.as_str());
        if self.pos > 0 {
            request = request.header(RANGE, format!("bytes={}-", self.pos));
        }
        let sent = match self.idle {
            Some(limit) => tokio::time::timeout(limit, request.send()).await.ok(),
            None => Some(request.send().await),
        };
        let Some(Ok(response)) = sent else {
            return self.pause("could not connect", None).await;
        };
        let status = response.status();
        match status.as_u16() {
            200 | 206 => self.adopt(response),
            416 if self.total.is_some_and(|total| self.pos >= total) => {
                self.done = true;
                Ok(())
            }
            401 | 403 => Err(self.refused(response).await),
            404 => Err(self.error(
                ErrorKind::NotFound,
                "the dump was not found (404): start a fresh export",
            )),
            408 | 429 | 500..=599 => {
                let hint = header(&response, RETRY_AFTER)
                    .and_then(|v| v.trim().parse().ok())
                    .map(Duration::from_secs);
                self.pause(&format!("the server answered {status}"), hint)
                    .await
            }
            _ => Err(self.error(
                ErrorKind::Protocol,
                &format!("the server answered {status}"),
            )),
        }
    }

    /// Takes over a 200/206 response after checking it continues the bytes
    /// already handed out.
    fn adopt(&mut self, response: reqwest::Response) -> Result<()> {
        if let Some(kind) =
            header(&response, CONTENT_TYPE).filter(|t| t.contains("html") || t.contains("xml"))
        {
            return Err(self.error(
                ErrorKind::Protocol,
                &format!("the server answered {} with a {kind} page instead of the dump; start a fresh export", response.status()),
            ));
        }
        let length: Option<u64> =
            header(&response, CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
        let etag = header(&response, ETAG);
        if response.status() == StatusCode::PARTIAL_CONTENT {
            let (start, total) = parse_content_range(header(&response, CONTENT_RANGE).as_deref())
                .ok_or_else(|| {
                self.error(
                    ErrorKind::Protocol,
                    "a 206 answer has no usable Content-Range",
                )
            })?;
            if start != self.pos || (self.total.is_some() && total.is_some() && self.total != total)
            {
                return Err(self.error(
                    ErrorKind::Protocol,
                    "a resumed answer does not continue where the download stopped",
                ));
            }
            self.total = self.total.or(total);
        } else if self.pos == 0 {
            self.total = length;
            self.etag = etag;
        } else {
            // Range ignored: skip what the caller already has, but only if
            // this is provably the same object.
            let same = length.is_some()
                && length == self.total
                && (self.etag.is_none() || etag == self.etag);
            if !same {
                return Err(self.error(
                    ErrorKind::Transient,
                    "the server ignored the Range request and the object cannot be shown to be the same; download again from the start",
                ));
            }
            self.skip = self.pos;
        }
        // The transport error itself is not kept: it names the signed URL.
        self.current = Some(
            response
                .bytes_stream()
                .map(|item| item.map_err(drop))
                .boxed(),
        );
        Ok(())
    }

    /// The error for a refused URL, naming the S3 error code if any.
    async fn refused(&mut self, response: reqwest::Response) -> Error {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
        let code = between(&text, "<Code>", "</Code>").unwrap_or("no error code");
        self.error(
            ErrorKind::UrlExpired,
            &format!("the signed URL was refused ({status}, {code}): it has expired (they last an hour) or is invalid; start a fresh export"),
        )
        .with_status(status.as_u16())
        .with_server_message(Some(code.to_owned()))
    }

    fn error(&self, kind: ErrorKind, what: &str) -> Error {
        Error::new(
            kind,
            format!("downloading the export from {}: {what}", self.url),
        )
    }
}

/// Refuses a first chunk that is an XML or HTML error page.
pub(crate) fn sniff(chunk: &Bytes, url: &SignedUrl) -> Result<()> {
    let start = chunk
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &chunk[i..]);
    if start.first() != Some(&b'<') {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&start[..start.len().min(4096)]);
    let (kind, what) = if text.contains("AccessDenied") || text.contains("Expired") {
        (
            ErrorKind::UrlExpired,
            "an access-denied XML page: the URL has expired or is invalid; start a fresh export",
        )
    } else {
        (
            ErrorKind::Protocol,
            "an XML or HTML page instead of the dump; start a fresh export",
        )
    };
    Err(Error::new(
        kind,
        format!("downloading the export from {url}: the server answered {what}"),
    ))
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `bytes 100-199/1000` → (100, Some(1000)); `/*` gives no total.
fn parse_content_range(value: Option<&str>) -> Option<(u64, Option<u64>)> {
    let rest = value?.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let from = text.find(open)? + open.len();
    let len = text[from..].find(close)?;
    Some(&text[from..from + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            parse_content_range(Some("bytes 100-199/1000")),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range(Some("bytes 5-9/*")), Some((5, None)));
        assert_eq!(parse_content_range(Some("items 1-2/3")), None);
        assert_eq!(parse_content_range(None), None);
    }
}
