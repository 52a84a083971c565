//! Listing unfinished multipart uploads (S3 `ListMultipartUploads`), which `object_store` does
//! not offer: one signed GET per page of up to 1,000 uploads.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::options::{AllowHttp, Credentials};

/// A multipart upload the store holds open: started, neither completed nor aborted.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    /// The key the upload would complete at.
    pub key: String,
    /// The store's upload id.
    pub upload_id: String,
    /// When the upload started, as the store reports it.
    pub initiated: Option<SystemTime>,
}

impl OpenUpload {
    /// Builds the description (for implementors of [`BackupSink`](crate::BackupSink)).
    pub fn new(
        key: impl Into<String>,
        upload_id: impl Into<String>,
        initiated: Option<SystemTime>,
    ) -> Self {
        Self {
            key: key.into(),
            upload_id: upload_id.into(),
            initiated,
        }
    }
}

/// Signs and sends `ListMultipartUploads` requests for one bucket (path-style).
pub(crate) struct UploadLister {
    client: reqwest::Client,
    /// `<endpoint>/<bucket>`, without a trailing slash.
    bucket_url: String,
    region: String,
    credentials: Credentials,
}

/// What the lister needs; the same settings the sink's store was built from.
pub(crate) struct ListerTarget<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) bucket: &'a str,
    pub(crate) region: &'a str,
    pub(crate) credentials: &'a Credentials,
    pub(crate) allow_http: AllowHttp,
    pub(crate) timeout: Duration,
}

impl UploadLister {
    pub(crate) fn new(target: &ListerTarget<'_>) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(target.timeout)
            .connect_timeout(Duration::from_secs(10))
            .https_only(target.allow_http == AllowHttp::No)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::InvalidConfig, "HTTP client for listing uploads")
                    .with_source(e)
            })?;
        Ok(Self {
            client,
            bucket_url: format!(
                "{}/{}",
                target.endpoint.trim_end_matches('/'),
                encode(target.bucket)
            ),
            region: target.region.to_owned(),
            credentials: target.credentials.clone(),
        })
    }

    /// Every open upload whose key starts with `prefix`, in key order, page after page.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<OpenUpload>> {
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let page = self.page(prefix, markers.as_ref()).await?;
            uploads.extend(page.uploads.into_iter().map(|upload| OpenUpload {
                initiated: upload.initiated.as_deref().and_then(parse_time),
                key: upload.key,
                upload_id: upload.upload_id,
            }));
            if !page.is_truncated {
                return Ok(uploads);
            }
            let next = match (page.next_key_marker, page.next_upload_id_marker) {
                (Some(key), Some(id)) if !key.is_empty() => (key, id),
                _ => {
                    return Err(Error::new(
                        ErrorKind::Permanent,
                        format!(
                            "list multipart uploads under {prefix:?}: a truncated page without next markers"
                        ),
                    ));
                }
            };
            if markers.as_ref() == Some(&next) {
                return Err(Error::new(
                    ErrorKind::Permanent,
                    format!("list multipart uploads under {prefix:?}: the store repeated a page"),
                ));
            }
            markers = Some(next);
        }
    }

    async fn page(&self, prefix: &str, markers: Option<&(String, String)>) -> Result<Page> {
        let context = || format!("list multipart uploads under {prefix:?}");
        let mut query = vec![("prefix", prefix.to_owned()), ("uploads", String::new())];
        if let Some((key, id)) = markers {
            query.insert(0, ("key-marker", key.clone()));
            query.push(("upload-id-marker", id.clone()));
        }
        let query: Vec<String> = query
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        let url = format!("{}?{}", self.bucket_url, query.join("&"));
        let headers = self.sign(&url).map_err(|e| {
            Error::new(ErrorKind::InvalidConfig, format!("{}: signing", context())).with_source(e)
        })?;
        let mut request = self.client.get(&url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::new(ErrorKind::Transient, context()).with_source(e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| Error::new(ErrorKind::Transient, context()).with_source(e))?;
        if !status.is_success() {
            let kind = match status.as_u16() {
                401 | 403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                429 | 500..=599 => ErrorKind::Transient,
                _ => ErrorKind::Permanent,
            };
            let code = s3_error_code(&body);
            return Err(Error::new(
                kind,
                format!("{}: HTTP {status}{code}", context()),
            ));
        }
        quick_xml::de::from_str(&body).map_err(|e| {
            Error::new(
                ErrorKind::Permanent,
                format!(
                    "{}: the answer is not a ListMultipartUploadsResult",
                    context()
                ),
            )
            .with_source(e)
        })
    }

    /// The SigV4 headers for a GET of `url` (S3 flavour: single encoding, no normalization).
    fn sign(
        &self,
        url: &str,
    ) -> std::result::Result<Vec<(String, String)>, Box<dyn std::error::Error + Send + Sync>> {
        let identity = aws_credential_types::Credentials::new(
            &self.credentials.access_key_id,
            &self.credentials.secret_access_key,
            None,
            None,
            "r2-sink",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let signable =
            SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(b""))?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }
}

/// One page of `ListMultipartUploads`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<PageUpload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageUpload {
    key: String,
    upload_id: String,
    initiated: Option<String>,
}

fn parse_time(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(SystemTime::from)
}

/// ` (Code)` from an S3 error body, or nothing.
fn s3_error_code(body: &str) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct S3Error {
        code: String,
    }
    quick_xml::de::from_str::<S3Error>(body)
        .map(|error| format!(" ({})", error.code))
        .unwrap_or_default()
}

/// Percent-encodes a query value or path segment as S3 expects (RFC 3986 unreserved kept).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_page_as_s3_writes_it() -> std::result::Result<(), quick_xml::DeError> {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>backups</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>d1/2026-12-01/b.sql</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>d1/2026-12-01/a.sql</Key><UploadId>id-1</UploadId>
    <Initiated>2026-12-01T03:00:00.000Z</Initiated><StorageClass>STANDARD</StorageClass></Upload>
  <Upload><Key>d1/2026-12-01/b.sql</Key><UploadId>id-2</UploadId>
    <Initiated>2026-12-01T03:00:01Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let page: Page = quick_xml::de::from_str(body)?;
        assert!(page.is_truncated);
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("id-2"));
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[1].key, "d1/2026-12-01/b.sql");
        let at = page.uploads[0].initiated.as_deref().and_then(parse_time);
        // 2026-12-01T03:00:00Z is 1,796,094,000 s after the epoch, 498,915 hours.
        let expected = SystemTime::UNIX_EPOCH + Duration::from_hours(498_915);
        assert_eq!(at, Some(expected));
        Ok(())
    }

    #[test]
    fn an_empty_page_has_no_uploads() -> std::result::Result<(), quick_xml::DeError> {
        let body = "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";
        let page: Page = quick_xml::de::from_str(body)?;
        assert!(page.uploads.is_empty() && !page.is_truncated);
        Ok(())
    }

    #[test]
    fn encodes_like_s3() {
        assert_eq!(
            encode("d1/2026-12-01/a b+c.sql"),
            "d1%2F2026-12-01%2Fa%20b%2Bc.sql"
        );
        assert_eq!(
            s3_error_code("<Error><Code>AccessDenied</Code></Error>"),
            " (AccessDenied)"
        );
    }
}
