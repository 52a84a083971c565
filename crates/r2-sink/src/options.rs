//! Options for building an [`ObjectStoreSink`](crate::ObjectStoreSink).
//!
//! Constructors take the required fields; every setter is infallible. Validation happens
//! once, in the sink constructor.

use std::fmt;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// The smallest part S3 and R2 accept (except the last).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// The most parts one multipart upload may have.
pub const MAX_PARTS: u64 = 10_000;

/// An access key pair for S3 or R2. `Debug` shows only the start of the key id.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
}

impl Credentials {
    /// A key pair.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &Redacted::partial(&self.access_key_id))
            .field("secret_access_key", &Redacted::full())
            .finish()
    }
}

/// Shows at most the first four characters of a secret.
struct Redacted(String);

impl Redacted {
    fn partial(value: &str) -> Self {
        let shown: String = value.chars().take(4).collect();
        Self(format!("{shown}…"))
    }

    fn full() -> Self {
        Self("<redacted>".to_owned())
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether plain `http://` endpoints are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowHttp {
    /// Only `https://` (the default).
    #[default]
    No,
    /// `http://` too; for loopback test servers and trusted networks.
    Yes,
}

/// How hard the filesystem sink works to make a put survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Rely on the operating system to flush (a put is atomic, but may be lost in a crash).
    #[default]
    Default,
    /// `fsync` the file and its directory before a put returns.
    Fsync,
}

/// How big objects are cut into parts, and how many parts are in memory at once.
///
/// Memory for one put is bounded by `part_size × max_in_flight` plus small overhead,
/// whatever the object's size. Every part but the last has exactly `part_size` bytes, as R2
/// requires.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartOptions {
    /// Bytes per part (default 16 MiB: objects up to about 156 GiB in 10,000 parts). Raised
    /// when a put's size hint needs more, and never below 5 MiB.
    pub part_size: u64,
    /// Parts held in memory at once, counting the one being filled (default 4, at least 1).
    pub max_in_flight: usize,
}

impl Default for MultipartOptions {
    fn default() -> Self {
        Self {
            part_size: 16 * MIB,
            max_in_flight: 4,
        }
    }
}

impl MultipartOptions {
    /// Sets the part size in bytes.
    #[must_use]
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes;
        self
    }

    /// Sets how many parts may be in memory at once.
    #[must_use]
    pub fn max_in_flight(mut self, parts: usize) -> Self {
        self.max_in_flight = parts;
        self
    }

    /// The part size for an object of about `size_hint` bytes: the configured size, raised to
    /// fit `size_hint` in 10,000 parts (rounded up to whole MiB), never below 5 MiB.
    pub fn effective_part_size(&self, size_hint: Option<u64>) -> u64 {
        let needed = size_hint.map_or(0, |size| size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB);
        self.part_size.max(needed).max(MIN_PART_SIZE)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.max_in_flight.max(1)
    }
}

/// Retries of single HTTP requests (a failed part is retried on its own).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOptions {
    /// Retries per request after the first attempt (default 10).
    pub max_retries: usize,
    /// Wait before the first retry; doubles each time (default 100 ms).
    pub initial_backoff: Duration,
    /// The longest wait between retries (default 15 s).
    pub max_backoff: Duration,
    /// No retry starts later than this after the first attempt (default 3 minutes).
    pub retry_timeout: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            retry_timeout: Duration::from_mins(3),
        }
    }
}

impl RetryOptions {
    /// Sets the number of retries per request.
    #[must_use]
    pub fn max_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the first and the longest wait between retries.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the time after which no retry starts.
    #[must_use]
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }
}

/// Settings shared by the R2 and S3 constructors.
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpSettings {
    pub(crate) multipart: MultipartOptions,
    pub(crate) retry: RetryOptions,
    /// Whole-request timeout; `None` sizes it from the part size.
    pub(crate) request_timeout: Option<Duration>,
}

impl HttpSettings {
    /// The whole-request timeout: 30 s plus the time to send one part at 256 KiB/s
    /// (16 MiB parts: 94 s). `object_store`'s 30 s default is too short for large parts.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout.unwrap_or_else(|| {
            let part = self.multipart.effective_part_size(None);
            Duration::from_secs(30 + part / (256 * 1024))
        })
    }
}

/// Options for Cloudflare R2 (through its S3 API).
#[derive(Debug, Clone)]
pub struct R2Options {
    pub(crate) account_id: String,
    pub(crate) bucket: String,
    pub(crate) credentials: Credentials,
    pub(crate) jurisdiction: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) http: HttpSettings,
}

impl R2Options {
    /// R2 bucket `bucket` of account `account_id`.
    pub fn new(
        account_id: impl Into<String>,
        bucket: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            bucket: bucket.into(),
            credentials,
            jurisdiction: None,
            endpoint: None,
            http: HttpSettings::default(),
        }
    }

    /// A jurisdiction such as `eu` or `fedramp`: the endpoint becomes
    /// `https://<account>.<jurisdiction>.r2.cloudflarestorage.com`.
    #[must_use]
    pub fn jurisdiction(mut self, jurisdiction: impl Into<String>) -> Self {
        self.jurisdiction = Some(jurisdiction.into());
        self
    }

    /// Overrides the endpoint URL (for proxies and tests; `http://` is allowed here).
    #[must_use]
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Sets part size and parallelism.
    #[must_use]
    pub fn multipart(mut self, multipart: MultipartOptions) -> Self {
        self.http.multipart = multipart;
        self
    }

    /// Sets request retries.
    #[must_use]
    pub fn retry(mut self, retry: RetryOptions) -> Self {
        self.http.retry = retry;
        self
    }

    /// Sets the whole-request timeout (default: sized for one part, see [`MultipartOptions`]).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.http.request_timeout = Some(timeout);
        self
    }

    /// The endpoint URL these options select.
    pub fn endpoint_url(&self) -> String {
        if let Some(endpoint) = &self.endpoint {
            return endpoint.clone();
        }
        match &self.jurisdiction {
            Some(j) => format!("https://{}.{j}.r2.cloudflarestorage.com", self.account_id),
            None => format!("https://{}.r2.cloudflarestorage.com", self.account_id),
        }
    }
}

/// Options for any S3-compatible endpoint.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    pub(crate) credentials: Credentials,
    pub(crate) region: String,
    pub(crate) allow_http: AllowHttp,
    pub(crate) http: HttpSettings,
}

impl S3Options {
    /// Bucket `bucket` at `endpoint` (e.g. `https://s3.example.com`), region `us-east-1`,
    /// path-style requests.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            credentials,
            region: "us-east-1".to_owned(),
            allow_http: AllowHttp::No,
            http: HttpSettings::default(),
        }
    }

    /// Sets the signing region.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Allows or refuses plain `http://` endpoints (refused by default).
    #[must_use]
    pub fn allow_http(mut self, allow: AllowHttp) -> Self {
        self.allow_http = allow;
        self
    }

    /// Sets part size and parallelism.
    #[must_use]
    pub fn multipart(mut self, multipart: MultipartOptions) -> Self {
        self.http.multipart = multipart;
        self
    }

    /// Sets request retries.
    #[must_use]
    pub fn retry(mut self, retry: RetryOptions) -> Self {
        self.http.retry = retry;
        self
    }

    /// Sets the whole-request timeout (default: sized for one part, see [`MultipartOptions`]).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.http.request_timeout = Some(timeout);
        self
    }
}

/// Options for the local filesystem sink.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// Whether puts are fsynced.
    pub durability: Durability,
    /// Part size and parallelism of streaming puts.
    pub multipart: MultipartOptions,
}

impl LocalOptions {
    /// Sets durability (`Durability::Fsync` to fsync every put).
    #[must_use]
    pub fn fsync(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets part size and parallelism.
    #[must_use]
    pub fn multipart(mut self, multipart: MultipartOptions) -> Self {
        self.multipart = multipart;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(configured: u64, hint: Option<u64>, expected: u64) {
        let options = MultipartOptions::default().part_size(configured);
        assert_eq!(
            options.effective_part_size(hint),
            expected,
            "{configured} {hint:?}"
        );
    }

    #[test]
    fn part_size_fits_hint_and_minimum() {
        check(16 * MIB, None, 16 * MIB);
        check(16 * MIB, Some(100 * MIB), 16 * MIB);
        check(MIB, None, MIN_PART_SIZE);
        // 156 GiB fits 16 MiB parts; 200 GiB needs 21 MiB parts.
        check(16 * MIB, Some(156 * 1024 * MIB), 16 * MIB);
        check(16 * MIB, Some(200 * 1024 * MIB), 21 * MIB);
    }

    #[test]
    fn debug_redacts_credentials() {
        let text = format!("{:?}", Credentials::new("AKIAEXAMPLE", "very-secret"));
        assert!(!text.contains("very-secret"), "{text}");
        assert!(!text.contains("AKIAEXAMPLE"), "{text}");
        assert!(text.contains("AKIA…"), "{text}");
    }

    #[test]
    fn r2_endpoints() {
        let creds = Credentials::new("a", "b");
        let plain = R2Options::new("acct", "bk", creds.clone());
        assert_eq!(
            plain.endpoint_url(),
            "https://acct.r2.cloudflarestorage.com"
        );
        let eu = R2Options::new("acct", "bk", creds).jurisdiction("eu");
        assert_eq!(
            eu.endpoint_url(),
            "https://acct.eu.r2.cloudflarestorage.com"
        );
    }

    #[test]
    fn default_timeout_is_sized_for_parts() {
        let settings = HttpSettings::default();
        assert_eq!(settings.request_timeout(), Duration::from_secs(94));
    }
}
