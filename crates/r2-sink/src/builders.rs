//! Turns validated options into `object_store` stores, plus a secret-free label for each.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::error::{Error, ErrorKind, Result};
use crate::options::{
    AllowHttp, Credentials, Durability, HttpSettings, LocalOptions, R2Options, S3Options,
};

/// A built store and its label.
type Built = (Arc<dyn ObjectStore>, String);

/// A built S3 store: the store, the same store seen through its upload-id API, its label.
type BuiltS3 = (Arc<dyn ObjectStore>, Arc<dyn MultipartStore>, String);

/// Settings common to R2 and generic S3.
struct S3Target<'a> {
    endpoint: &'a str,
    bucket: &'a str,
    region: &'a str,
    credentials: &'a Credentials,
    allow_http: AllowHttp,
    http: &'a HttpSettings,
    /// R2 refuses object tagging headers.
    disable_tagging: bool,
}

pub(crate) fn r2(options: &R2Options) -> Result<BuiltS3> {
    let account = &options.account_id;
    if account.is_empty() || !account.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(config("R2 account id must be non-empty and alphanumeric"));
    }
    if let Some(j) = &options.jurisdiction
        && (j.is_empty() || !j.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(config("R2 jurisdiction must be a name such as \"eu\""));
    }
    let endpoint = options.endpoint_url();
    let allow_http = r2_allow_http(options);
    let store = build_s3(&S3Target {
        endpoint: &endpoint,
        bucket: &options.bucket,
        region: "auto",
        credentials: &options.credentials,
        allow_http,
        http: &options.http,
        disable_tagging: true,
    })?;
    let shown: String = account.chars().take(4).collect();
    let jurisdiction = options
        .jurisdiction
        .as_ref()
        .map(|j| format!(", jurisdiction {j}"))
        .unwrap_or_default();
    let at = if options.endpoint.is_some() {
        format!(", at {}", strip_userinfo(&endpoint))
    } else {
        String::new()
    };
    let label = format!(
        "r2://{} (account {shown}…{jurisdiction}{at})",
        options.bucket
    );
    Ok((store.clone(), store, label))
}

/// An explicit R2 endpoint is the caller saying which scheme to use (proxies, tests).
pub(crate) fn r2_allow_http(options: &R2Options) -> AllowHttp {
    if options.endpoint.is_some() {
        AllowHttp::Yes
    } else {
        AllowHttp::No
    }
}

pub(crate) fn s3(options: &S3Options) -> Result<BuiltS3> {
    let store = build_s3(&S3Target {
        endpoint: &options.endpoint,
        bucket: &options.bucket,
        region: &options.region,
        credentials: &options.credentials,
        allow_http: options.allow_http,
        http: &options.http,
        disable_tagging: false,
    })?;
    let label = format!(
        "s3://{} at {}",
        options.bucket,
        strip_userinfo(&options.endpoint)
    );
    Ok((store.clone(), store, label))
}

fn build_s3(target: &S3Target<'_>) -> Result<Arc<AmazonS3>> {
    check_endpoint(target.endpoint, target.allow_http)?;
    if target.bucket.is_empty() {
        return Err(config("bucket name must not be empty"));
    }
    let http = target.http;
    let client = ClientOptions::new()
        .with_timeout(http.request_timeout())
        .with_connect_timeout(Duration::from_secs(10))
        .with_allow_http(target.allow_http == AllowHttp::Yes);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: http.retry.initial_backoff,
            max_backoff: http.retry.max_backoff,
            base: 2.0,
        },
        max_retries: http.retry.max_retries,
        retry_timeout: http.retry.retry_timeout,
    };
    let store = AmazonS3Builder::new()
        .with_endpoint(target.endpoint)
        .with_region(target.region)
        .with_bucket_name(target.bucket)
        .with_access_key_id(&target.credentials.access_key_id)
        .with_secret_access_key(&target.credentials.secret_access_key)
        .with_allow_http(target.allow_http == AllowHttp::Yes)
        .with_virtual_hosted_style_request(false)
        .with_disable_tagging(target.disable_tagging)
        .with_client_options(client)
        .with_retry(retry)
        .build()
        .map_err(|e| Error::new(ErrorKind::InvalidConfig, "S3 client").with_source(e))?;
    Ok(Arc::new(store))
}

fn check_endpoint(endpoint: &str, allow_http: AllowHttp) -> Result<()> {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Err(config("endpoint must be a URL such as https://host"));
    };
    if rest.is_empty() {
        return Err(config("endpoint has no host"));
    }
    match (scheme, allow_http) {
        ("https", _) | ("http", AllowHttp::Yes) => Ok(()),
        ("http", AllowHttp::No) => Err(config(
            "endpoint uses http:// but plain HTTP was not allowed (S3Options::allow_http)",
        )),
        _ => Err(config("endpoint scheme must be https or http")),
    }
}

pub(crate) fn local(root: &std::path::Path, options: &LocalOptions) -> Result<Built> {
    let context = || format!("local sink at {}", root.display());
    std::fs::create_dir_all(root)
        .map_err(|e| Error::new(ErrorKind::InvalidConfig, context()).with_source(e))?;
    let store = LocalFileSystem::new_with_prefix(root)
        .map_err(|e| Error::new(ErrorKind::InvalidConfig, context()).with_source(e))?
        .with_fsync(options.durability == Durability::Fsync)
        .with_automatic_cleanup(true);
    Ok((Arc::new(store), format!("fs:{}", root.display())))
}

fn config(message: &str) -> Error {
    Error::new(ErrorKind::InvalidConfig, message)
}

/// Drops any `user:password@` from a URL so labels never show secrets.
fn strip_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_schemes() {
        let check = |url, allow, ok: bool| {
            assert_eq!(check_endpoint(url, allow).is_ok(), ok, "{url} {allow:?}");
        };
        check("https://s3.example.com", AllowHttp::No, true);
        check("http://127.0.0.1:9000", AllowHttp::No, false);
        check("http://127.0.0.1:9000", AllowHttp::Yes, true);
        check("ftp://x", AllowHttp::Yes, false);
        check("s3.example.com", AllowHttp::Yes, false);
    }

    #[test]
    fn labels_hide_secrets() {
        assert_eq!(strip_userinfo("http://u:p@h:1/x"), "http://h:1/x");
        assert_eq!(strip_userinfo("https://h"), "https://h");
        let options = R2Options::new("1234567890abcdef", "backups", Credentials::new("AK", "SK"));
        let (_, _, label) = r2(&options).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(label, "r2://backups (account 1234…)");
    }
}
