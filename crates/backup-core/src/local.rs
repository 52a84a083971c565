//! The local source: a SQLite file (e.g. a wrangler local D1 database) dumped by this crate
//! in D1's export format and stored like any export (feature `sqlite`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::Compression;
use crate::encryption::Recipients;
use crate::error::{Error, ErrorKind};
use crate::progress::EventKind;
use crate::sinks::SharedSink;
use crate::store::{self, Put};
use crate::transfer::{Failure, Transferred};

/// Dumps `path` and stores the dump at `key`.
pub(crate) async fn transfer(
    sink: &SharedSink,
    key: &str,
    path: &Path,
    format: (Compression, Option<&Recipients>),
    part_size: Option<u64>,
    emit: &(dyn Fn(EventKind<'_>) + Sync),
) -> Result<Transferred, Failure> {
    emit(EventKind::DownloadStarted {
        content_length: None,
    });
    let (body, dumper) = imp::dump_stream(path.to_path_buf());
    let mut metadata = BTreeMap::new();
    metadata.insert("source".to_owned(), "sqlite".to_owned());
    let put = Put {
        sink,
        key,
        total: None,
        compression: format.0,
        encryption: format.1,
        metadata,
        part_size,
    };
    let upload = store::store(put, body, emit).await;
    // The dump's own error says more than the sink's "source failed".
    let dump = dumper.await.map_err(|e| {
        Failure::new(Error::new(
            ErrorKind::LocalIo,
            format!("the dump task failed: {e}"),
        ))
    })?;
    match (upload, dump) {
        (Ok(stored), Ok(virtual_tables)) => Ok(Transferred {
            stored,
            bookmark: None,
            bookmark_after: None,
            exports: 0,
            notes: Vec::new(),
            // One read transaction: a snapshot, virtual tables included.
            consistency: crate::manifest::DumpConsistency::Snapshot,
            virtual_tables,
            export: None,
            export_reason: None,
        }),
        (_, Err(error)) => Err(Failure::new(error)),
        (Err(error), Ok(_)) => Err(Failure::new(Error::new(
            ErrorKind::LocalIo,
            format!(
                "upload to {key} failed: {}",
                crate::error::error_chain(&error)
            ),
        ))),
    }
}

#[cfg(feature = "sqlite")]
mod imp {
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};

    use bytes::Bytes;
    use futures::StreamExt;
    use r2_sink::ByteStream;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    use rusqlite::{Connection, OpenFlags};

    use crate::dump::VirtualTable;
    use crate::error::{Error, ErrorKind};
    use crate::sqlite::{SqliteDumpOptions, dump_sqlite};

    /// Chunks handed from the dumping thread to the upload; with the channel's depth this
    /// bounds the memory the local source uses.
    const CHUNK: usize = 256 * 1024;
    const DEPTH: usize = 8;

    /// Runs the dump on a blocking thread and streams its output. The handle ends with the
    /// names of the virtual tables the dump wrote, or the dump's error (the stream then ends
    /// with an error too, so the put aborts).
    pub(super) fn dump_stream(
        path: PathBuf,
    ) -> (ByteStream, JoinHandle<Result<Vec<String>, Error>>) {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(DEPTH);
        let handle = tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let result = dump_sqlite(&path, &SqliteDumpOptions::default(), &mut out)
                .map_err(|e| {
                    // The whole chain in the message: the run reports only the message.
                    let error = Error::from(e);
                    Error::new(error.kind(), error.chain()).with_source(error)
                })
                .and_then(|_| {
                    out.flush()
                        .map_err(|e| Error::new(ErrorKind::LocalIo, e.to_string()).with_source(e))
                })
                .and_then(|()| virtual_tables(&path));
            if let Err(error) = &result {
                let _ = tx.blocking_send(Err(io::Error::other(error.to_string())));
            }
            result
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed();
        (stream, handle)
    }

    /// The virtual tables of the database (the dump writes each), for the manifest.
    fn virtual_tables(path: &Path) -> Result<Vec<String>, Error> {
        let read = |e: rusqlite::Error| {
            let message = format!("cannot read the schema of {}: {e}", path.display());
            Error::new(ErrorKind::LocalIo, message).with_source(e)
        };
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(read)?;
        let mut stmt = conn
            .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql NOT NULL ORDER BY rowid")
            .map_err(read)?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(read)?;
        let mut names = Vec::new();
        for row in rows {
            let (name, sql) = row.map_err(read)?;
            if VirtualTable::parse(&sql).is_some() {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// An `io::Write` that sends full chunks over the channel (blocking when it is full).
    struct ChannelWriter {
        tx: mpsc::Sender<io::Result<Bytes>>,
        buf: Vec<u8>,
    }

    impl ChannelWriter {
        fn send(&mut self) -> io::Result<()> {
            if self.buf.is_empty() {
                return Ok(());
            }
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
            // A closed channel means the upload stopped: stop dumping.
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
        }
    }

    impl Write for ChannelWriter {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.buf.extend_from_slice(data);
            if self.buf.len() >= CHUNK {
                self.send()?;
            }
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            self.send()
        }
    }
}

#[cfg(not(feature = "sqlite"))]
mod imp {
    use std::path::PathBuf;

    use futures::StreamExt;
    use r2_sink::ByteStream;
    use tokio::task::JoinHandle;

    use crate::error::{Error, ErrorKind};

    const MISSING: &str = "this build cannot dump local SQLite files (feature `sqlite`)";

    pub(super) fn dump_stream(
        _path: PathBuf,
    ) -> (ByteStream, JoinHandle<Result<Vec<String>, Error>>) {
        let stream = futures::stream::once(async { Err(std::io::Error::other(MISSING)) }).boxed();
        (
            stream,
            tokio::spawn(async { Err(Error::new(ErrorKind::LocalIo, MISSING)) }),
        )
    }
}
