//! Optional streaming compression of dumps (feature `compression`).
//!
//! Off by default: a plain `.sql` dump is what `wrangler d1 execute --file` and D1's import
//! take as is. With compression the dump is encoded as it streams, so memory stays bounded.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a dump is compressed in the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// Plain SQL, `.sql`.
    #[default]
    None,
    /// Zstandard, `.sql.zst`.
    Zstd,
    /// gzip, `.sql.gz`.
    Gzip,
}

impl Compression {
    /// The dump's file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "sql",
            Compression::Zstd => "sql.zst",
            Compression::Gzip => "sql.gz",
        }
    }

    /// The content type stored with the dump.
    pub fn content_type(self) -> &'static str {
        match self {
            Compression::None => "application/sql",
            Compression::Zstd => "application/zstd",
            Compression::Gzip => "application/gzip",
        }
    }

    /// Whether this build can write it.
    pub fn is_available(self) -> bool {
        self == Compression::None || cfg!(feature = "compression")
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        })
    }
}

/// Encodes `body` as it streams. Without the `compression` feature only `None` is accepted
/// (configuration validation refuses the others first).
pub(crate) fn encode(body: r2_sink::ByteStream, compression: Compression) -> r2_sink::ByteStream {
    match compression {
        Compression::None => body,
        #[cfg(feature = "compression")]
        Compression::Zstd | Compression::Gzip => encoding::encode(body, compression),
        #[cfg(not(feature = "compression"))]
        Compression::Zstd | Compression::Gzip => {
            use futures::StreamExt;
            futures::stream::once(async {
                Err(std::io::Error::other(
                    "this build has no compression support (feature `compression`)",
                ))
            })
            .boxed()
        }
    }
}

#[cfg(feature = "compression")]
mod encoding {
    use async_compression::tokio::bufread::{GzipEncoder, ZstdEncoder};
    use futures::StreamExt;
    use tokio_util::io::{ReaderStream, StreamReader};

    use super::Compression;

    /// Read size of the encoder's output: large enough to keep per-chunk overhead low.
    const CHUNK: usize = 256 * 1024;

    pub(super) fn encode(
        body: r2_sink::ByteStream,
        compression: Compression,
    ) -> r2_sink::ByteStream {
        let reader = StreamReader::new(body);
        match compression {
            Compression::Gzip => {
                ReaderStream::with_capacity(GzipEncoder::new(reader), CHUNK).boxed()
            }
            // Level 3 (zstd's default) compresses SQL dumps well at streaming speed.
            _ => ReaderStream::with_capacity(ZstdEncoder::new(reader), CHUNK).boxed(),
        }
    }
}

#[cfg(all(test, feature = "compression"))]
mod tests {
    use futures::{StreamExt, TryStreamExt};

    use super::*;

    async fn roundtrip(compression: Compression, input: Vec<u8>) -> Vec<u8> {
        use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
        use tokio::io::AsyncReadExt;
        let chunks: Vec<std::io::Result<bytes::Bytes>> = input
            .chunks(7000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let encoded: Vec<bytes::Bytes> = encode(futures::stream::iter(chunks).boxed(), compression)
            .try_collect()
            .await
            .unwrap_or_default();
        let encoded = encoded.concat();
        let mut out = Vec::new();
        let reader = &encoded[..];
        let read = match compression {
            Compression::Gzip => GzipDecoder::new(reader).read_to_end(&mut out).await,
            _ => ZstdDecoder::new(reader).read_to_end(&mut out).await,
        };
        assert!(read.is_ok());
        out
    }

    #[tokio::test]
    async fn both_codecs_round_trip() {
        let input: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("INSERT {i};\n").into_bytes())
            .collect();
        for compression in [Compression::Zstd, Compression::Gzip] {
            assert_eq!(
                roundtrip(compression, input.clone()).await,
                input,
                "{compression}"
            );
        }
        assert_eq!(
            roundtrip(Compression::Zstd, Vec::new()).await,
            Vec::<u8>::new()
        );
    }
}
