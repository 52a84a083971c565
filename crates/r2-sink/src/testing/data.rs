//! Deterministic test bodies of any size that cost no memory beyond one shared pattern.

use std::sync::OnceLock;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};

use crate::ByteStream;

/// Length of the repeating pattern: a prime, so it never lines up with part sizes.
const PATTERN_LEN: usize = 1_000_003;

fn pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| {
        // xorshift64: cheap, deterministic, not compressible.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes: Vec<u8> = (0..PATTERN_LEN)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        Bytes::from(bytes)
    })
}

/// Yields the chunks of a pattern body: `len` bytes in slices of at most `chunk` bytes.
fn pattern_chunks(len: u64, chunk: usize) -> impl Iterator<Item = Bytes> {
    let chunk = chunk.clamp(1, PATTERN_LEN) as u64;
    let mut offset = 0u64;
    std::iter::from_fn(move || {
        if offset >= len {
            return None;
        }
        let start = usize::try_from(offset % PATTERN_LEN as u64).unwrap_or(0);
        let take = chunk.min(len - offset).min((PATTERN_LEN - start) as u64);
        offset += take;
        let end = start + usize::try_from(take).unwrap_or(0);
        Some(pattern().slice(start..end))
    })
}

/// A body of `len` deterministic bytes, in chunks of at most `chunk` bytes (slices of one
/// shared buffer, so any size costs no extra memory).
pub fn pattern_body(len: u64, chunk: usize) -> ByteStream {
    stream::iter(pattern_chunks(len, chunk).map(Ok)).boxed()
}

/// The bytes of [`pattern_body`]`(len, _)`, collected (for small sizes).
pub fn pattern_bytes(len: u64) -> Bytes {
    pattern_chunks(len, PATTERN_LEN)
        .collect::<Vec<_>>()
        .concat()
        .into()
}

/// SHA-256 of [`pattern_body`]`(len, _)`.
pub fn pattern_sha256(len: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for chunk in pattern_chunks(len, PATTERN_LEN) {
        hasher.update(&chunk);
    }
    hasher.finalize().into()
}

/// A body that yields `ok_bytes` pattern bytes and then fails with an I/O error.
pub fn failing_body(ok_bytes: u64) -> ByteStream {
    let failure = std::io::Error::other("injected source failure");
    pattern_body(ok_bytes, 64 * 1024)
        .chain(stream::once(async move { Err(failure) }))
        .boxed()
}

/// Reads a whole stream, returning its length and SHA-256.
pub async fn digest(body: ByteStream) -> std::io::Result<(u64, [u8; 32])> {
    body.try_fold(
        (0u64, Sha256::new()),
        |(len, mut hasher), chunk| async move {
            hasher.update(&chunk);
            Ok((len + chunk.len() as u64, hasher))
        },
    )
    .await
    .map(|(len, hasher)| (len, hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pattern_body_is_consistent() {
        for (len, chunk) in [
            (0, 7),
            (10, 3),
            (2_000_100, 65_536),
            (PATTERN_LEN as u64 + 5, 4096),
        ] {
            let (got_len, sha) = digest(pattern_body(len, chunk)).await.unwrap_or_default();
            assert_eq!(got_len, len);
            assert_eq!(sha, pattern_sha256(len));
        }
        assert_eq!(pattern_bytes(5).len(), 5);
    }
}
