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

    /// The replicas a dump's put also writes to, and where each one's outcome is left: set by
    /// the job around its work, so every source's put tees without threading it through.
    pub(crate) static REPLICA_PUTS: Arc<ReplicaPuts>;
}

/// Chunks buffered per target while the tee waits for the slowest one: memory stays bounded
/// at this many chunks per target, and the slowest target paces the stream.
const TEE_DEPTH: usize = 4;

/// The replicas a job writes to, and the outcome of the last put to each (a retried export
/// puts again; the last attempt is the one that counts).
pub(crate) struct ReplicaPuts {
    sinks: Vec<SharedSink>,
    /// One slot per replica, in config order: `None` until a put to it ended.
    outcomes: Mutex<Vec<Option<Result<PutReceipt, r2_sink::Error>>>>,
}

impl ReplicaPuts {
    pub(crate) fn new(sinks: Vec<SharedSink>) -> Self {
        let outcomes = Mutex::new(sinks.iter().map(|_| None).collect());
        Self { sinks, outcomes }
    }

    /// Each replica's outcome, in config order (`None`: no put reached it).
    pub(crate) fn take(&self) -> Vec<Option<Result<PutReceipt, r2_sink::Error>>> {
        std::mem::take(&mut *self.outcomes.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn record(&self, outcomes: Vec<Result<PutReceipt, r2_sink::Error>>) {
        *self.outcomes.lock().unwrap_or_else(PoisonError::into_inner) =
            outcomes.into_iter().map(Some).collect();
    }
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
    let replicas = REPLICA_PUTS.try_with(Arc::clone).ok();
    let replica_sinks = replicas.as_ref().map_or(&[][..], |r| &r.sinks[..]);
    let (main_body, replica_bodies, feed) = tee(body, replica_sinks.len());
    let mut replica_options = options.clone();
    // Lease records name the main sink's uploads only.
    replica_options.upload_observer = None;
    let replica_puts = futures::future::join_all(
        replica_sinks
            .iter()
            .zip(replica_bodies)
            .map(|(sink, body)| sink.put_stream(put.key, body, replica_options.clone())),
    );
    let upload = async {
        let (main, (), replica_outcomes) = futures::future::join3(
            put.sink.put_stream(put.key, main_body, options),
            feed,
            replica_puts,
        )
        .await;
        if let Some(replicas) = &replicas {
            replicas.record(replica_outcomes);
        }
        main
    };
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

/// Splits `body` into one stream for the main sink and `replicas` more, fed by the returned
/// future through a bounded channel each ([`TEE_DEPTH`] chunks): the slowest reader paces
/// the source. A replica that stops reading (its put failed) is dropped and the others go
/// on; when the main put stops reading, or the source fails, every stream still fed ends
/// with an error, so no put commits a truncated object.
fn tee(
    mut body: ByteStream,
    replicas: usize,
) -> (
    ByteStream,
    Vec<ByteStream>,
    impl std::future::Future<Output = ()> + Send,
) {
    use futures::SinkExt;
    type Tx = futures::channel::mpsc::Sender<std::io::Result<bytes::Bytes>>;
    let channel = || futures::channel::mpsc::channel::<std::io::Result<bytes::Bytes>>(TEE_DEPTH);
    let (main_tx, main_rx) = channel();
    let mut replica_feeds: Vec<Option<Tx>> = Vec::with_capacity(replicas);
    let mut replica_bodies = Vec::with_capacity(replicas);
    for _ in 0..replicas {
        let (tx, rx) = channel();
        replica_feeds.push(Some(tx));
        replica_bodies.push(rx.boxed());
    }
    let feed = async move {
        let mut main_tx = main_tx;
        let failed = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Err(error)) => break Some(error),
                Some(Ok(chunk)) => chunk,
            };
            if main_tx.send(Ok(chunk.clone())).await.is_err() {
                break Some(std::io::Error::other(
                    "the upload to the main sink failed, so the replica's copy is abandoned",
                ));
            }
            for slot in &mut replica_feeds {
                if let Some(tx) = slot
                    && tx.send(Ok(chunk.clone())).await.is_err()
                {
                    // That replica's put ended (failed); its outcome says why.
                    *slot = None;
                }
            }
        };
        if let Some(error) = failed {
            let copy = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
            for tx in replica_feeds.iter_mut().flatten() {
                let _ = tx.send(Err(copy(&error))).await;
            }
            let _ = main_tx.send(Err(error)).await;
        }
        // Dropping the senders ends each stream cleanly after the last chunk.
    };
    (main_rx.boxed(), replica_bodies, feed)
}
