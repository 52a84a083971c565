//! Client-side encryption of dumps with [age](https://age-encryption.org/v1), to X25519
//! recipients (`[encryption]`).
//!
//! The stored object is a standard age file, so `age --decrypt -i key.txt <object>` gives
//! the dump back without d1-backup (compressed dumps are encrypted after compression: pipe
//! the result through `zstd -d` or `gzip -d`). Encryption happens as the bytes stream, in
//! bounded memory: age encrypts 64 KiB chunks, and each chunk of the body is passed on as
//! soon as it is sealed. Only public keys are needed to back up; an [`AgeIdentity`] (the
//! secret key) is needed only to read a backup back (verify, restore).

use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use r2_sink::ByteStream;

use crate::error::{Error, ErrorKind};
use crate::formats::ManifestEncryption;

/// The object key's suffix of an encrypted dump: `<db>.sql.age`, `<db>.sql.zst.age`.
pub const AGE_EXTENSION: &str = "age";

/// The `format` an age-encrypted dump's manifest records.
pub const AGE_FORMAT: &str = "age";

/// The content type stored with an encrypted dump.
pub(crate) const AGE_CONTENT_TYPE: &str = "application/octet-stream";

/// The public keys dumps are encrypted to: parsed `age1…` X25519 recipients.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
}

impl Recipients {
    /// Parses `age1…` public keys; the error names the first entry that does not parse (by
    /// its position and its text: a public key is not a secret) and is of kind
    /// [`ErrorKind::Config`]. An empty list is refused too: nobody could read the backups.
    pub fn parse<S: AsRef<str>>(keys: &[S]) -> Result<Self, Error> {
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                parse_recipient(key.as_ref()).map_err(|why| {
                    Error::new(ErrorKind::Config, format!("recipient {}: {why}", i + 1))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "no age recipient: nobody could decrypt the backups",
            ));
        }
        Ok(Self { keys })
    }

    /// The recipients' public keys (`age1…`), as the manifest records them.
    pub fn public_keys(&self) -> Vec<String> {
        self.keys.iter().map(ToString::to_string).collect()
    }

    /// What a manifest records of this encryption.
    pub(crate) fn manifest(&self) -> ManifestEncryption {
        ManifestEncryption {
            format: AGE_FORMAT.to_owned(),
            recipients: self.public_keys(),
        }
    }
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.public_keys()).finish()
    }
}

/// Why a recipient entry is not an age X25519 public key. Its `Display` says what is wrong
/// and how to fix it, and never shows a secret key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadRecipient {
    /// An `AGE-SECRET-KEY-1…` written where a public key belongs (not echoed).
    SecretKey,
    /// Anything else: the entry (at most 80 characters) and age's reason.
    Invalid { shown: String, why: String },
}

impl fmt::Display for BadRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretKey => f.write_str(
                "is an age secret key (AGE-SECRET-KEY-1…), not a public key: write the public key age-keygen printed (`age-keygen -y key.txt` shows it), and keep the secret key out of this file",
            ),
            Self::Invalid { shown, why } => write!(
                f,
                "{shown:?} is not an age X25519 public key ({why}); it starts with \"age1\" (`age-keygen -y key.txt` prints it)"
            ),
        }
    }
}

/// Parses one `age1…` X25519 public key.
pub(crate) fn parse_recipient(key: &str) -> Result<age::x25519::Recipient, BadRecipient> {
    let key = key.trim();
    if key.starts_with("AGE-SECRET-KEY-") {
        // Never echo a secret key, even one written in the wrong place.
        return Err(BadRecipient::SecretKey);
    }
    age::x25519::Recipient::from_str(key).map_err(|why| BadRecipient::Invalid {
        shown: shorten(key),
        why: why.to_string(),
    })
}

/// At most the first 80 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The recipients listed in a recipients file: one `age1…` key per line, blank lines and
/// `#` comments ignored (age's own format). An entry that does not parse is named by its
/// line.
pub fn read_recipients_file(path: &Path) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the recipients file {}: {e}", path.display()),
        )
    })?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        parse_recipient(line).map_err(|why| {
            Error::new(
                ErrorKind::Config,
                format!("{} line {}: {why}", path.display(), n + 1),
            )
        })?;
        keys.push(line.to_owned());
    }
    Ok(keys)
}

/// The secret key(s) that decrypt backups: age X25519 identities (`AGE-SECRET-KEY-1…`).
///
/// Its `Debug` shows only the public keys; nothing here ever prints, logs or returns the
/// secret in an error.
#[derive(Clone)]
pub struct AgeIdentity {
    keys: Vec<age::x25519::Identity>,
}

impl AgeIdentity {
    /// Reads an age identity file (as `age-keygen -o key.txt` writes it: `#` comments and one
    /// `AGE-SECRET-KEY-1…` per line). Errors are of kind [`ErrorKind::Config`] and name the
    /// file and line, never its content.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read the age identity file {}: {e}", path.display()),
            )
        })?;
        Self::from_reader(std::io::BufReader::new(file), &path.display().to_string())
    }

    /// Parses identities from text in the identity file format; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        Self::from_reader(text.as_bytes(), origin)
    }

    fn from_reader(reader: impl BufRead, origin: &str) -> Result<Self, Error> {
        let mut keys = Vec::new();
        for (n, line) in reader.lines().enumerate() {
            let line = line
                .map_err(|e| Error::new(ErrorKind::Config, format!("cannot read {origin}: {e}")))?;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = age::x25519::Identity::from_str(line).map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "{origin} line {}: not an age X25519 identity (a line \"AGE-SECRET-KEY-1…\", as age-keygen writes it)",
                        n + 1
                    ),
                )
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{origin} holds no age identity (AGE-SECRET-KEY-1…)"),
            ));
        }
        Ok(Self { keys })
    }

    /// The public keys (`age1…`) of these identities.
    pub fn public_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }

    /// Checks that one of these identities is among the recipients a backup was encrypted
    /// to, so a wrong key is refused before anything is read or written. The error is of
    /// kind [`ErrorKind::Config`] and names both sides' public keys.
    pub(crate) fn check_can_decrypt(&self, encryption: &ManifestEncryption) -> Result<(), Error> {
        let mine = self.public_keys();
        if encryption.recipients.iter().any(|r| mine.contains(r)) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Config,
            format!(
                "the age identity given (public key {}) is not one this backup was encrypted to ({}); give the identity of one of those recipients",
                mine.join(", "),
                encryption.recipients.join(", ")
            ),
        ))
    }
}

impl fmt::Debug for AgeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeIdentity")
            .field("public_keys", &self.public_keys())
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Encrypts `body` to `recipients` as it streams: each chunk of the body goes out as soon
/// as age has sealed it (age holds at most one 64 KiB chunk), so memory stays bounded.
pub(crate) fn encrypt(body: ByteStream, recipients: &Recipients) -> ByteStream {
    let out = Buffer::default();
    let writer =
        age::Encryptor::with_recipients(recipients.keys.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| std::io::Error::other(format!("cannot encrypt: {e}")))
            .and_then(|encryptor| encryptor.wrap_output(out.clone()));
    let writer = match writer {
        Ok(writer) => writer,
        Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
    };
    let state = Sealing {
        body,
        writer: Some(writer),
        out,
    };
    futures::stream::try_unfold(state, Sealing::next).boxed()
}

/// The state of [`encrypt`]'s stream.
struct Sealing {
    body: ByteStream,
    /// `None` once the age stream is finished (the body ended).
    writer: Option<age::stream::StreamWriter<Buffer>>,
    /// What the writer has sealed and not yet passed on.
    out: Buffer,
}

impl Sealing {
    async fn next(mut self) -> std::io::Result<Option<(Bytes, Self)>> {
        loop {
            let Some(writer) = self.writer.as_mut() else {
                return Ok(None);
            };
            match self.body.try_next().await? {
                Some(chunk) => writer.write_all(&chunk)?,
                None => {
                    if let Some(writer) = self.writer.take() {
                        writer.finish()?;
                    }
                }
            }
            let sealed = self.out.take();
            if !sealed.is_empty() || self.writer.is_none() {
                return Ok(Some((sealed, self)));
            }
        }
    }
}

/// A `Write` whose bytes are taken out as they come.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The plaintext of an age-encrypted body, as an async reader. The header is read (and the
/// identity tried) before this returns, so a wrong key fails here, before anything is
/// written; a damaged or truncated body fails while it is read. (Only what restores needs
/// it: feature `sqlite`.)
#[cfg(feature = "sqlite")]
pub(crate) async fn decrypt(
    body: ByteStream,
    identity: &AgeIdentity,
) -> Result<impl tokio::io::AsyncRead + Send + Unpin + use<>, Error> {
    use tokio_util::compat::FuturesAsyncReadCompatExt;
    let decryptor = age::Decryptor::new_async_buffered(body.into_async_read())
        .await
        .map_err(decrypt_error)?;
    let reader = decryptor
        .decrypt_async(identity.keys.iter().map(|k| k as &dyn age::Identity))
        .map_err(decrypt_error)?;
    Ok(reader.compat())
}

#[cfg(feature = "sqlite")]
fn decrypt_error(e: age::DecryptError) -> Error {
    match e {
        age::DecryptError::NoMatchingKeys => Error::new(
            ErrorKind::Config,
            "the age identity given does not decrypt the stored dump (it was encrypted to other recipients than its manifest records)",
        ),
        age::DecryptError::Io(e) => Error::new(
            ErrorKind::Transient,
            format!("cannot read the encrypted dump: {e}"),
        ),
        other => Error::new(
            ErrorKind::InvalidDump,
            format!("the stored dump is not a valid age file: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair() -> (AgeIdentity, Recipients) {
        let key = age::x25519::Identity::generate();
        let public = key.to_public().to_string();
        (
            AgeIdentity { keys: vec![key] },
            Recipients::parse(&[public]).unwrap_or_else(|_| unreachable!()),
        )
    }

    #[cfg(feature = "sqlite")]
    fn chunks(input: &[u8], size: usize) -> ByteStream {
        let chunks: Vec<std::io::Result<Bytes>> = input
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks).boxed()
    }

    #[cfg(feature = "sqlite")]
    async fn sealed(input: &[u8], recipients: &Recipients) -> Vec<u8> {
        let out: Vec<Bytes> = encrypt(chunks(input, 7000), recipients)
            .try_collect()
            .await
            .unwrap_or_default();
        out.concat()
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn round_trips_through_age_itself() {
        let (identity, recipients) = keypair();
        for input in [Vec::new(), b"x".to_vec(), vec![b'a'; 200_000]] {
            let stored = sealed(&input, &recipients).await;
            assert!(stored.starts_with(b"age-encryption.org/v1\n"));
            // age's own synchronous reader decrypts what the stream wrote.
            let decryptor = age::Decryptor::new(&stored[..]).map_err(|e| e.to_string());
            let mut plain = Vec::new();
            let read = decryptor.and_then(|d| {
                let mut r = d
                    .decrypt(identity.keys.iter().map(|k| k as &dyn age::Identity))
                    .map_err(|e| e.to_string())?;
                std::io::Read::read_to_end(&mut r, &mut plain).map_err(|e| e.to_string())
            });
            assert!(read.is_ok(), "{read:?}");
            assert_eq!(plain, input);
            // And ours.
            let reader = decrypt(chunks(&stored, 999), &identity).await;
            let mut ours = Vec::new();
            let read = match reader {
                Ok(mut r) => tokio::io::AsyncReadExt::read_to_end(&mut r, &mut ours)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.chain()),
            };
            assert!(read.is_ok(), "{read:?}");
            assert_eq!(ours, input);
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_wrong_identity_is_refused_at_the_header() {
        let (_, recipients) = keypair();
        let (stranger, _) = keypair();
        let stored = sealed(b"CREATE TABLE t(x);", &recipients).await;
        let error = decrypt(chunks(&stored, 100), &stranger).await.err();
        assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Config));
        let encryption = recipients.manifest();
        assert!(stranger.check_can_decrypt(&encryption).is_err());
    }

    #[test]
    fn identities_never_show_their_secret() {
        let key = age::x25519::Identity::generate();
        let secret = age::secrecy::ExposeSecret::expose_secret(&key.to_string()).to_owned();
        let text = format!("# created: today\n# public key: x\n{secret}\n");
        let identity = AgeIdentity::parse(&text, "key.txt");
        let shown = format!("{identity:?}");
        assert!(identity.is_ok(), "{shown}");
        assert!(!shown.contains(&secret), "{shown}");
        assert!(shown.contains(&key.to_public().to_string()), "{shown}");
        // A damaged line is named by number, never quoted.
        let damaged = format!("{}x\n", &secret[..secret.len() - 1]);
        let error = AgeIdentity::parse(&damaged, "key.txt").map(|_| ());
        let message = format!("{error:?}");
        assert!(message.contains("key.txt line 1"), "{message}");
        assert!(!message.contains(&secret[20..]), "{message}");
    }

    #[test]
    fn recipients_name_the_bad_entry() {
        let (_, good) = keypair();
        let good = good.public_keys().remove(0);
        let error = Recipients::parse(&[good.clone(), "age1nope".to_owned()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("recipient 2"), "{error}");
        assert!(error.contains("age1nope"), "{error}");
        let secret = age::x25519::Identity::generate().to_string();
        let secret = age::secrecy::ExposeSecret::expose_secret(&secret).to_owned();
        let error = Recipients::parse(std::slice::from_ref(&secret))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("secret key"), "{error}");
        assert!(!error.contains(&secret), "{error}");
        assert!(Recipients::parse::<String>(&[]).is_err());
    }
}
