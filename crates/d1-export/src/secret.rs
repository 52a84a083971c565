//! Values that must never be shown: the API token and signed URLs.
//!
//! Both types redact themselves in `Debug` and `Display`, so they can sit in
//! structs that derive `Debug` and in error messages without leaking.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// A Cloudflare API token.
///
/// The token is only ever written into the `Authorization` header of requests
/// to the D1 API. `Debug` prints `ApiToken(<redacted>)` and there is no
/// `Display`, so it cannot end up in logs or error messages by accident.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// Returns the token text.
    ///
    /// Avoid this: every use is a chance to leak the token. The client needs
    /// no help to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for ApiToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for ApiToken {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// A presigned download URL for a finished export.
///
/// Its query string carries the signature, so `Debug` and `Display` show only
/// `scheme://host/path` (the query is removed). The URL is valid for about an
/// hour; past that a download fails with [`ErrorKind::UrlExpired`].
#[derive(Clone, PartialEq, Eq)]
pub struct SignedUrl(url::Url);

impl SignedUrl {
    /// Parses a signed URL. Only `http` and `https` URLs are accepted.
    pub fn new(url: impl Into<String>) -> crate::Result<Self> {
        let text = url.into();
        let parsed = url::Url::parse(&text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the signed URL is not a valid URL ({e}); pass the URL D1 returned unchanged"
                ),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the signed URL has scheme `{}`; only http and https URLs can be downloaded",
                    parsed.scheme()
                ),
            ));
        }
        Ok(Self(parsed))
    }

    /// Returns the full URL, signature included.
    ///
    /// Avoid this: anyone holding the full URL can read the dump until it
    /// expires.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Returns `scheme://host[:port]/path`, the form safe to show.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    pub(crate) fn url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Debug for SignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignedUrl({})", self.redacted())
    }
}

impl fmt::Display for SignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Drops user info, query and fragment from a URL.
pub(crate) fn redact_url(url: &url::Url) -> String {
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    format!(
        "{}://{}{port}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let token = ApiToken::from("s3cr3t-token");
        assert_eq!(format!("{token:?}"), "ApiToken(<redacted>)");
        assert_eq!(token.expose(), "s3cr3t-token");
    }

    #[test]
    fn signed_url_hides_query() -> crate::Result<()> {
        let url =
            SignedUrl::new("https://u:p@bucket.example.com:8443/a/b.sql?X-Amz-Signature=abc#f")?;
        assert_eq!(url.to_string(), "https://bucket.example.com:8443/a/b.sql");
        assert_eq!(
            format!("{url:?}"),
            "SignedUrl(https://bucket.example.com:8443/a/b.sql)"
        );
        assert!(url.expose().contains("X-Amz-Signature=abc"));
        Ok(())
    }

    #[test]
    fn signed_url_rejects_other_schemes() {
        let err = SignedUrl::new("ftp://x/y?sig=1").err();
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidInput));
        assert!(SignedUrl::new("not a url").is_err());
    }
}
