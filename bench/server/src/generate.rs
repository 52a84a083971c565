//! A synthetic dump in D1's export format, written streaming: `PRAGMA defer_foreign_keys`,
//! then per table its `CREATE TABLE` and its `INSERT` lines, as D1's export writes them.
//!
//! The rows are varied (names, e-mail addresses, JSON payloads, prose, random blobs as hex) so
//! the dump compresses like real data (zstd level 3: roughly 3–4×), not like one repeated byte.
//! The output is a pure function of the size and the seed.

use std::io::{self, Write};

use crate::vocab::{
    COUNTRIES, DOMAINS, FIRST, KINDS, LAST, MIMES, PATHS, Rng, WORDS, sentence, timestamp,
};

/// Table shares of the dump, by bytes: users, events, then attachments for the rest.
const USERS_SHARE: f64 = 0.15;
const EVENTS_SHARE: f64 = 0.70;

/// Appends `n` in decimal.
fn int(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `s` as an SQL string literal (quotes doubled).
fn text(out: &mut Vec<u8>, s: &str) {
    out.push(b'\'');
    for b in s.bytes() {
        if b == b'\'' {
            out.push(b'\'');
        }
        out.push(b);
    }
    out.push(b'\'');
}

fn user(out: &mut Vec<u8>, rng: &mut Rng, id: u64) {
    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
    out.extend_from_slice(
        br#"INSERT INTO "users" ("id","email","name","country","created_at","score","bio") VALUES("#,
    );
    int(out, id);
    out.push(b',');
    let email = format!(
        "{}.{}{}@{}",
        first.to_lowercase(),
        last.to_lowercase().replace([' ', '\''], ""),
        id,
        rng.pick(DOMAINS)
    );
    text(out, &email);
    out.push(b',');
    text(out, &format!("{first} {last}"));
    out.push(b',');
    if rng.below(10) == 0 {
        out.extend_from_slice(b"NULL");
    } else {
        text(out, rng.pick(COUNTRIES));
    }
    out.push(b',');
    text(out, &timestamp(rng));
    out.push(b',');
    let score = rng.below(50_000);
    out.extend_from_slice(format!("{}.{}", score / 10_000, score % 10_000).as_bytes());
    out.push(b',');
    let words = 4 + rng.below(30);
    text(out, &sentence(rng, words));
    out.extend_from_slice(b");\n");
}

fn event(out: &mut Vec<u8>, rng: &mut Rng, id: u64, users: u64) {
    out.extend_from_slice(
        br#"INSERT INTO "events" ("id","user_id","kind","payload","at") VALUES("#,
    );
    int(out, id);
    out.push(b',');
    int(out, 1 + rng.next_u64() % users.max(1));
    out.push(b',');
    text(out, rng.pick(KINDS));
    out.push(b',');
    let words = 2 + rng.below(8);
    let note = sentence(rng, words);
    let payload = format!(
        r#"{{"path":"{}/{}","ref":"{}","ms":{},"ua":"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/{}.0","note":"{note}"}}"#,
        rng.pick(PATHS),
        rng.below(100_000),
        rng.pick(WORDS),
        rng.below(5000),
        100 + rng.below(40),
    );
    text(out, &payload);
    out.push(b',');
    int(out, 1_600_000_000 + rng.next_u64() % 200_000_000);
    out.extend_from_slice(b");\n");
}

fn attachment(out: &mut Vec<u8>, rng: &mut Rng, id: u64, events: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(br#"INSERT INTO "attachments" ("id","event_id","mime","data") VALUES("#);
    int(out, id);
    out.push(b',');
    int(out, 1 + rng.next_u64() % events.max(1));
    out.push(b',');
    text(out, rng.pick(MIMES));
    out.extend_from_slice(b",X'");
    for _ in 0..(8 + rng.below(56)) {
        for byte in rng.next_u64().to_le_bytes() {
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 15)]);
        }
    }
    out.extend_from_slice(b"');\n");
}

/// Writes a dump of about `size` bytes (it ends at the first line boundary at or past `size`;
/// at least the schema) into `out`; returns the bytes written.
pub fn generate(size: u64, seed: u64, out: &mut impl Write) -> io::Result<u64> {
    let mut rng = Rng(seed | 1);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut written = 0u64;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let (users_end, events_end) = (
        (size as f64 * USERS_SHARE) as u64,
        (size as f64 * (USERS_SHARE + EVENTS_SHARE)) as u64,
    );
    let mut flush = |buf: &mut Vec<u8>, out: &mut dyn Write| -> io::Result<()> {
        written += buf.len() as u64;
        out.write_all(buf)?;
        buf.clear();
        Ok(())
    };
    buf.extend_from_slice(b"PRAGMA defer_foreign_keys=TRUE;\n");
    buf.extend_from_slice(
        b"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, country TEXT, created_at TEXT NOT NULL, score REAL, bio TEXT);\n",
    );
    let mut at = buf.len() as u64;
    let mut users = 0;
    while at < users_end {
        users += 1;
        let before = buf.len();
        user(&mut buf, &mut rng, users);
        at += (buf.len() - before) as u64;
        if buf.len() >= 1 << 20 {
            flush(&mut buf, out)?;
        }
    }
    buf.extend_from_slice(b"CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), kind TEXT NOT NULL, payload TEXT, at INTEGER NOT NULL);\n");
    let mut events = 0;
    while at < events_end {
        events += 1;
        let before = buf.len();
        event(&mut buf, &mut rng, events, users);
        at += (buf.len() - before) as u64;
        if buf.len() >= 1 << 20 {
            flush(&mut buf, out)?;
        }
    }
    buf.extend_from_slice(b"CREATE TABLE attachments (id INTEGER PRIMARY KEY, event_id INTEGER REFERENCES events(id), mime TEXT NOT NULL, data BLOB);\n");
    let mut attachments = 0;
    while at < size {
        attachments += 1;
        let before = buf.len();
        attachment(&mut buf, &mut rng, attachments, events);
        at += (buf.len() - before) as u64;
        if buf.len() >= 1 << 20 {
            flush(&mut buf, out)?;
        }
    }
    flush(&mut buf, out)?;
    out.flush()?;
    Ok(written)
}
