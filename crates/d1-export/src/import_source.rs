//! Where an import's SQL comes from: memory or a file streamed from disk.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::io::AsyncReadExt;

use crate::error::{Error, ErrorKind, Result};

/// Read size for files: large enough for throughput, small enough to bound memory.
const CHUNK: usize = 256 * 1024;

/// The SQL to import: bytes in memory, or a file that is streamed (read
/// twice: once for its md5, once for the upload; never held in memory).
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum ImportSource {
    /// SQL already in memory.
    Bytes(Bytes),
    /// A file of SQL.
    File(PathBuf),
}

impl From<Bytes> for ImportSource {
    fn from(sql: Bytes) -> Self {
        Self::Bytes(sql)
    }
}

impl From<Vec<u8>> for ImportSource {
    fn from(sql: Vec<u8>) -> Self {
        Self::Bytes(sql.into())
    }
}

impl From<PathBuf> for ImportSource {
    fn from(path: PathBuf) -> Self {
        Self::File(path)
    }
}

impl From<&Path> for ImportSource {
    fn from(path: &Path) -> Self {
        Self::File(path.to_owned())
    }
}

/// How [`D1Client::import`](crate::D1Client::import) runs.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The pause between poll requests (default 1 s).
    pub poll_interval: Duration,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl ImportSource {
    /// The lowercase hex md5 (D1's etag) and the length in bytes.
    pub(crate) async fn md5_and_len(&self) -> Result<(String, u64)> {
        match self {
            Self::Bytes(sql) => Ok((hex(&Md5::digest(sql)), sql.len() as u64)),
            Self::File(path) => {
                let mut file = open(path).await?;
                let (mut hasher, mut len, mut buf) = (Md5::new(), 0u64, vec![0u8; CHUNK]);
                loop {
                    let n = file.read(&mut buf).await.map_err(|e| read_error(path, e))?;
                    if n == 0 {
                        return Ok((hex(&hasher.finalize()), len));
                    }
                    hasher.update(&buf[..n]);
                    len += n as u64;
                }
            }
        }
    }

    /// A fresh request body (each upload attempt needs its own).
    pub(crate) async fn body(&self) -> Result<reqwest::Body> {
        match self {
            Self::Bytes(sql) => Ok(reqwest::Body::from(sql.clone())),
            Self::File(path) => {
                let file = open(path).await?;
                let chunks = futures::stream::try_unfold(file, |mut file| async move {
                    let mut buf = vec![0u8; CHUNK];
                    let n = file.read(&mut buf).await?;
                    buf.truncate(n);
                    Ok::<_, std::io::Error>((n > 0).then(|| (Bytes::from(buf), file)))
                });
                Ok(reqwest::Body::wrap_stream(chunks))
            }
        }
    }
}

async fn open(path: &Path) -> Result<tokio::fs::File> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| read_error(path, e))
}

fn read_error(path: &Path, err: std::io::Error) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "could not read the import file {} ({err}): check the path and permissions",
            path.display()
        ),
    )
    .with_source(err)
}

fn hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn md5_of_bytes_and_file_agree() -> Result<()> {
        let sql = b"hello".to_vec();
        let (md5, len) = ImportSource::from(sql.clone()).md5_and_len().await?;
        assert_eq!((md5.as_str(), len), ("5d41402abc4b2a76b9719d911017c592", 5));
        let path = std::env::temp_dir().join(format!("d1-export-md5-{}.sql", std::process::id()));
        std::fs::write(&path, &sql).map_err(|e| read_error(&path, e))?;
        let from_file = ImportSource::from(path.as_path()).md5_and_len().await;
        let _ = std::fs::remove_file(&path);
        assert_eq!(from_file?.0, md5);
        Ok(())
    }

    #[tokio::test]
    async fn missing_file_is_invalid_input() {
        let err = ImportSource::from(Path::new("/nonexistent/x.sql"))
            .md5_and_len()
            .await
            .err();
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidInput));
    }
}
