//! `D1Client::download`: status and body checks, resume, bounded memory.

use d1_export::{Download, ErrorKind, SignedUrl};
use futures::StreamExt;

use crate::support::*;

async fn collect(download: Download) -> Result<Vec<u8>, d1_export::Error> {
    let mut stream = download.into_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn full(total: u64) -> Plan {
    Plan::Body {
        status: 200,
        headers: vec!["etag: \"abc\"".into()],
        total,
        from: 0,
        cut_after: None,
    }
}

fn cut(total: u64, after: u64) -> Plan {
    Plan::Body {
        status: 200,
        headers: vec!["etag: \"abc\"".into()],
        total,
        from: 0,
        cut_after: Some(after),
    }
}

fn partial(total: u64, from: u64) -> Plan {
    partial_cut(total, from, None)
}

fn partial_cut(total: u64, from: u64, cut_after: Option<u64>) -> Plan {
    Plan::Body {
        status: 206,
        headers: vec![
            format!("content-range: bytes {from}-{}/{total}", total - 1),
            "etag: \"abc\"".into(),
        ],
        total,
        from,
        cut_after,
    }
}

async fn download(server: &RawServer) -> Result<Download, d1_export::Error> {
    let url = SignedUrl::new(server.url("/dump.sql")).unwrap();
    client("http://127.0.0.1:9").download(&url).await
}

#[tokio::test]
async fn streams_the_whole_body_without_the_token() {
    let server = RawServer::start(|_, _| full(300_000)).await;
    let download = download(&server).await.unwrap();
    assert_eq!(download.content_length(), Some(300_000));
    assert_eq!(collect(download).await.unwrap(), pattern_bytes(300_000));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].target.contains("SIGSECRET"),
        "the signed query is sent as is"
    );
    assert!(
        !seen[0]
            .headers
            .to_ascii_lowercase()
            .contains("authorization"),
        "no token to R2"
    );
}

#[tokio::test]
async fn dropped_connection_resumes_with_range_byte_exact() {
    let total = 1_000_000;
    let server = RawServer::start(move |index, seen| match (index, seen.range_start) {
        (0, None) => cut(total, 300_000),
        (_, Some(from)) if from < 600_000 => partial_cut(total, from, Some(300_000)),
        (_, Some(from)) => partial(total, from),
        _ => Plan::Hang,
    })
    .await;
    let body = collect(download(&server).await.unwrap()).await.unwrap();
    assert_eq!(body.len() as u64, total);
    assert!(
        body == pattern_bytes(total),
        "byte-exact across two resumes"
    );
    let ranges: Vec<_> = server.seen().iter().map(|s| s.range_start).collect();
    assert_eq!(ranges, vec![None, Some(300_000), Some(600_000)]);
}

#[tokio::test]
async fn range_ignored_skips_bytes_already_delivered() {
    let total = 500_000;
    let server = RawServer::start(move |index, _| {
        if index == 0 {
            cut(total, 200_000)
        } else {
            full(total)
        }
    })
    .await;
    let body = collect(download(&server).await.unwrap()).await.unwrap();
    assert!(body == pattern_bytes(total));
    assert_eq!(server.seen()[1].range_start, Some(200_000));
}

#[tokio::test]
async fn drop_before_any_byte_restarts_from_zero() {
    let server =
        RawServer::start(|index, _| if index == 0 { Plan::Hang } else { full(10_000) }).await;
    let body = collect(download(&server).await.unwrap()).await.unwrap();
    assert!(body == pattern_bytes(10_000));
    assert!(server.seen().iter().all(|s| s.range_start.is_none()));
}

#[tokio::test]
async fn short_bodies_that_never_finish_end_in_a_transient_error() {
    let server = RawServer::start(|_, seen| {
        let from = seen.range_start.unwrap_or(0);
        if from == 0 {
            cut(1000, 100)
        } else {
            partial_cut(1000, from, Some(0))
        }
    })
    .await;
    let err = collect(download(&server).await.unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.is_retryable());
    assert!(err.to_string().contains("at byte 100"), "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn refused_url_is_url_expired_and_redacted() {
    let xml = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>".to_vec();
    let server = RawServer::start(move |_, _| Plan::Fixed {
        status: 403,
        content_type: "application/xml",
        body: xml.clone(),
    })
    .await;
    let err = download(&server).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UrlExpired);
    assert_eq!(err.status(), Some(403));
    assert!(
        err.to_string().contains("AccessDenied") && err.to_string().contains("/dump.sql"),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1, "403 is not retried");
    assert_no_secret(&err);
}

#[tokio::test]
async fn xml_or_html_bodies_are_never_data() {
    let cases: Vec<(&'static str, &'static [u8], ErrorKind)> = vec![
        (
            "text/html",
            b"<html>Bad gateway</html>",
            ErrorKind::Protocol,
        ),
        (
            "application/xml",
            b"<Error><Code>InternalError</Code></Error>",
            ErrorKind::Protocol,
        ),
        (
            "application/octet-stream",
            b"  <?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>",
            ErrorKind::UrlExpired,
        ),
        (
            "application/octet-stream",
            b"<!DOCTYPE html><p>oops</p>",
            ErrorKind::Protocol,
        ),
    ];
    for (content_type, body, kind) in cases {
        let server = RawServer::start(move |_, _| Plan::Fixed {
            status: 200,
            content_type,
            body: body.to_vec(),
        })
        .await;
        let err = download(&server).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{content_type}: {err}");
        assert_no_secret(&err);
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let server = RawServer::start(|index, _| match index {
        0 => Plan::Fixed {
            status: 503,
            content_type: "text/html",
            body: b"<html>busy</html>".to_vec(),
        },
        1 => Plan::Fixed {
            status: 500,
            content_type: "application/xml",
            body: b"<Error/>".to_vec(),
        },
        _ => full(4096),
    })
    .await;
    let body = collect(download(&server).await.unwrap()).await.unwrap();
    assert!(body == pattern_bytes(4096));
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn missing_object_is_not_found() {
    let server = RawServer::start(|_, _| Plan::Fixed {
        status: 404,
        content_type: "application/xml",
        body: b"<Error><Code>NoSuchKey</Code></Error>".to_vec(),
    })
    .await;
    assert_eq!(
        download(&server).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Resident memory of this process in KiB (Linux).
fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn half_a_gibibyte_streams_through_in_bounded_memory() {
    const TOTAL: u64 = 512 * 1024 * 1024;
    let server = RawServer::start(|_, _| full(TOTAL)).await;
    let before = vm_rss_kib();
    let download = download(&server).await.unwrap();
    assert_eq!(download.content_length(), Some(TOTAL));
    let mut stream = download.into_stream();
    let (mut seen, mut peak) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        // Spot-check content, then drop the chunk.
        assert_eq!(chunk[0], pattern(seen));
        assert_eq!(
            chunk[chunk.len() - 1],
            pattern(seen + chunk.len() as u64 - 1)
        );
        seen += chunk.len() as u64;
        if seen % (64 * 1024 * 1024) < chunk.len() as u64 {
            peak = peak.max(vm_rss_kib().unwrap_or(0));
        }
    }
    assert_eq!(seen, TOTAL);
    if let (Some(before), true) = (before, peak > 0) {
        // Other tests run concurrently and allocators keep freed memory, so the
        // bound is loose; collecting the body would add at least 512 MiB.
        assert!(
            peak < before + 256 * 1024,
            "RSS grew from {before} KiB to {peak} KiB"
        );
    }
}
