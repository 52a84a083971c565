//! Storing a dump: the SQL stream, optionally compressed, into the sink at its key, with the
//! SQL's own size and SHA-256 and progress reports on the way. Shared by every source.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use r2_sink::{ByteStream, PutOptions, PutReceipt};
use sha2::{Digest, Sha256};

use crate::compression::{self, Compression};
use crate::encryption::{self, Recipients};
use crate::progress::EventKind;
use crate::sinks::SharedSink;

tokio::task_local! {
    /// Told of each multipart upload a dump's put starts: set by the job around the work it
    /// does under its lease (which records the upload id before the first part is sent), so
    /// every source's put is observed without each threading it through.
    pub(crate) static UPLOAD_OBSERVER: Option<r2_sink::UploadObserver>;
}

/// How often transfer progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A stored dump.
pub(crate) struct Stored {
    pub(crate) receipt: PutReceipt,
    /// Size of the SQL before compression.
    pub(crate) sql_bytes: u64,
    /// Lower-case hex SHA-256 of the SQL before compression.
    pub(crate) sql_sha256: String,
}

/// What to store and how.
pub(crate) struct Put<'a> {
    pub(crate) sink: &'a SharedSink,
    pub(crate) key: &'a str,
    /// The SQL's size, when known (a hint for the part size, and the progress total).
    pub(crate) total: Option<u64>,
    pub(crate) compression: Compression,
    /// Encrypts the (compressed) bytes to these recipients, when set.
    pub(crate) encryption: Option<&'a Recipients>,
    pub(crate) metadata: BTreeMap<String, String>,
    /// Part size for this dump (a per-database override), else the sink's.
    pub(crate) part_size: Option<u64>,
}

/// Streams `sql` into the sink. The sink's put is atomic: on error nothing is left at the key.
pub(crate) async fn store(
    put: Put<'_>,
    sql: ByteStream,
    emit: &(dyn Fn(EventKind<'_>) + Sync),
) -> Result<Stored, r2_sink::Error> {
    let counted = Arc::new(AtomicU64::new(0));
    // Plain dumps are hashed by the sink; compressed or encrypted ones also need the SQL's
    // own hash.
    let hasher = (put.compression != Compression::None || put.encryption.is_some())
        .then(|| Arc::new(Mutex::new(Sha256::new())));
    let body = observed(sql, Arc::clone(&counted), hasher.clone());
    let body = compression::encode(body, put.compression);
    // Encrypted after compression (encrypted bytes do not compress), as the bytes stream.
    let body = match put.encryption {
        Some(recipients) => encryption::encrypt(body, recipients),
        None => body,
    };
    let mut options = PutOptions::default();
    options.content_type = Some(
        if put.encryption.is_some() {
            encryption::AGE_CONTENT_TYPE
        } else {
            put.compression.content_type()
        }
        .to_owned(),
    );
    // The SQL's size bounds the compressed size: a safe hint for choosing the part size.
    options.size_hint = put.total;
    options.metadata = put.metadata;
    options.part_size = put.part_size;
    options.upload_observer = UPLOAD_OBSERVER.try_with(Clone::clone).ok().flatten();
    let upload = put.sink.put_stream(put.key, body, options);
    tokio::pin!(upload);
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    let receipt = loop {
        tokio::select! {
            outcome = &mut upload => break outcome?,
            _ = ticker.tick() => emit(EventKind::Transferred {
                bytes: counted.load(Ordering::Relaxed),
                total: put.total,
            }),
        }
    };
    let (sql_bytes, sql_sha256) = match hasher {
        Some(hasher) => {
            let digest = hasher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .finalize();
            (counted.load(Ordering::Relaxed), hex::encode(digest))
        }
        None => (receipt.size, receipt.sha256_hex()),
    };
    Ok(Stored {
        receipt,
        sql_bytes,
        sql_sha256,
    })
}

/// Counts (and, when asked, hashes) every chunk of `body` on its way through.
fn observed(
    body: ByteStream,
    counted: Arc<AtomicU64>,
    hasher: Option<Arc<Mutex<Sha256>>>,
) -> ByteStream {
    body.inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if let Some(hasher) = &hasher {
                hasher
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .update(chunk);
            }
        }
    })
    .boxed()
}
