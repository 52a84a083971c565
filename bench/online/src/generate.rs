//! A synthetic SQLite database whose D1 dump is about `size` bytes, deterministic from
//! (size, seed): the tables of `bench/server`'s synthetic dump (`users`, `events` with JSON
//! payloads, `attachments` with blobs) plus `event_tags`, a WITHOUT ROWID table keyed by
//! (text, integer), and an index. Values are the kinds D1's export writes losslessly (no
//! integer past 2^53, no non-finite real), so the `d1` and `online` dumps can be compared
//! byte for byte; some `bio` texts hold line feeds (the dump's `replace(…,char(10))` form).

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};

use d1_bench_server::vocab::{
    COUNTRIES, DOMAINS, FIRST, KINDS, LAST, MIMES, PATHS, Rng, WORDS, sentence, timestamp,
};

use crate::encode::sql_literal;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Table shares of the dump, by bytes: users, events, event_tags, then attachments.
const USERS_SHARE: f64 = 0.15;
const EVENTS_SHARE: f64 = 0.55;
const TAGS_SHARE: f64 = 0.10;

pub const SCHEMA: &str = "\
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, country TEXT, created_at TEXT NOT NULL, score REAL, bio TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), kind TEXT NOT NULL, payload TEXT, at INTEGER NOT NULL);
CREATE TABLE event_tags (tag TEXT NOT NULL, event_id INTEGER NOT NULL REFERENCES events(id), weight REAL, note TEXT, PRIMARY KEY (tag, event_id)) WITHOUT ROWID;
CREATE TABLE attachments (id INTEGER PRIMARY KEY, event_id INTEGER REFERENCES events(id), mime TEXT NOT NULL, data BLOB);
CREATE INDEX events_user ON events (user_id);";

const TAGS: &[&str] = &[
    "mobile",
    "desktop",
    "beta",
    "returning",
    "campaign:spring",
    "campaign:summer",
    "a/b:left",
    "a/b:right",
    "vip",
    "trial",
    "région:eu",
    "ユーザー",
    "bot?",
    "internal",
    "referral",
];

/// The bytes a row takes in the dump (`INSERT INTO "t" ("c",…) VALUES(…);` and a newline).
fn line_len(prefix: usize, values: &[ValueRef<'_>], scratch: &mut Vec<u8>) -> u64 {
    scratch.clear();
    for v in values {
        sql_literal(scratch, *v);
    }
    (prefix + scratch.len() + values.len() + 3) as u64
}

/// Creates the database at `path` (which must not exist); returns (rows, estimated dump bytes).
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]
pub fn generate(path: &str, size: u64, seed: u64) -> BoxResult<(u64, u64)> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
         PRAGMA cache_size = -65536;",
    )?;
    conn.execute_batch(SCHEMA)?;
    let mut rng = Rng(seed | 1);
    let mut scratch = Vec::new();
    let mut at = 32 + SCHEMA.len() as u64;
    let ends = [
        (size as f64 * USERS_SHARE) as u64,
        (size as f64 * (USERS_SHARE + EVENTS_SHARE)) as u64,
        (size as f64 * (USERS_SHARE + EVENTS_SHARE + TAGS_SHARE)) as u64,
        size,
    ];
    let mut rows = 0u64;
    conn.execute_batch("BEGIN")?;

    let mut users = 0u64;
    {
        let mut insert = conn.prepare(
            "INSERT INTO users (id, email, name, country, created_at, score, bio) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?;
        let prefix = r#"INSERT INTO "users" ("id","email","name","country","created_at","score","bio") VALUES("#.len();
        while at < ends[0] {
            users += 1;
            let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
            let email = format!(
                "{}.{}{}@{}",
                first.to_lowercase(),
                last.to_lowercase().replace([' ', '\''], ""),
                users,
                rng.pick(DOMAINS)
            );
            let name = format!("{first} {last}");
            let country = (rng.below(10) != 0).then(|| rng.pick(COUNTRIES));
            let created = timestamp(&mut rng);
            let score = rng.below(50_000) as f64 / 10_000.0;
            let words = 4 + rng.below(30);
            let mut bio = sentence(&mut rng, words);
            if rng.below(16) == 0 {
                bio.push('\n');
                let words = 3 + rng.below(10);
                bio.push_str(&sentence(&mut rng, words));
            }
            at += line_len(
                prefix,
                &[
                    ValueRef::Integer(users as i64),
                    ValueRef::Text(email.as_bytes()),
                    ValueRef::Text(name.as_bytes()),
                    country.map_or(ValueRef::Null, |c| ValueRef::Text(c.as_bytes())),
                    ValueRef::Text(created.as_bytes()),
                    ValueRef::Real(score),
                    ValueRef::Text(bio.as_bytes()),
                ],
                &mut scratch,
            );
            insert.execute(params![
                users as i64,
                email,
                name,
                country,
                created,
                score,
                bio
            ])?;
        }
    }
    rows += users;
    at += 160;

    let mut events = 0u64;
    {
        let mut insert = conn.prepare(
            "INSERT INTO events (id, user_id, kind, payload, at) VALUES (?, ?, ?, ?, ?)",
        )?;
        let prefix = r#"INSERT INTO "events" ("id","user_id","kind","payload","at") VALUES("#.len();
        while at < ends[1] {
            events += 1;
            let user = 1 + rng.next_u64() % users.max(1);
            let kind = rng.pick(KINDS);
            let words = 2 + rng.below(8);
            let note = sentence(&mut rng, words);
            let payload = format!(
                r#"{{"path":"{}/{}","ref":"{}","ms":{},"ua":"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/{}.0","note":"{note}"}}"#,
                rng.pick(PATHS),
                rng.below(100_000),
                rng.pick(WORDS),
                rng.below(5000),
                100 + rng.below(40),
            );
            let when = 1_600_000_000 + rng.next_u64() % 200_000_000;
            at += line_len(
                prefix,
                &[
                    ValueRef::Integer(events as i64),
                    ValueRef::Integer(user as i64),
                    ValueRef::Text(kind.as_bytes()),
                    ValueRef::Text(payload.as_bytes()),
                    ValueRef::Integer(when as i64),
                ],
                &mut scratch,
            );
            insert.execute(params![
                events as i64,
                user as i64,
                kind,
                payload,
                when as i64
            ])?;
        }
    }
    rows += events;
    at += 200;

    {
        // Inserted in random key order, so the table's pages interleave as in a real one.
        let mut insert = conn.prepare(
            "INSERT OR IGNORE INTO event_tags (tag, event_id, weight, note) VALUES (?, ?, ?, ?)",
        )?;
        let prefix = r#"INSERT INTO "event_tags" ("tag","event_id","weight","note") VALUES("#.len();
        while at < ends[2] {
            let tag = rng.pick(TAGS);
            let event = 1 + rng.next_u64() % events.max(1);
            let weight = (1 + rng.below(999_999)) as f64 / 1000.0;
            let words = rng.below(12);
            let note = (words > 0).then(|| sentence(&mut rng, words));
            let inserted = insert.execute(params![tag, event as i64, weight, note])?;
            if inserted == 1 {
                rows += 1;
                at += line_len(
                    prefix,
                    &[
                        ValueRef::Text(tag.as_bytes()),
                        ValueRef::Integer(event as i64),
                        ValueRef::Real(weight),
                        note.as_deref()
                            .map_or(ValueRef::Null, |n| ValueRef::Text(n.as_bytes())),
                    ],
                    &mut scratch,
                );
            }
        }
    }
    at += 120;

    let mut attachments = 0u64;
    {
        let mut insert =
            conn.prepare("INSERT INTO attachments (id, event_id, mime, data) VALUES (?, ?, ?, ?)")?;
        let prefix = r#"INSERT INTO "attachments" ("id","event_id","mime","data") VALUES("#.len();
        let mut data = Vec::new();
        while at < ends[3] {
            attachments += 1;
            let event = 1 + rng.next_u64() % events.max(1);
            let mime = rng.pick(MIMES);
            data.clear();
            // Mostly small blobs, some of 8–40 KiB (wide rows for the page sizing).
            let words = if rng.below(50) == 0 {
                1024 + rng.below(4096)
            } else {
                8 + rng.below(56)
            };
            for _ in 0..words {
                data.extend_from_slice(&rng.next_u64().to_le_bytes());
            }
            at += line_len(
                prefix,
                &[
                    ValueRef::Integer(attachments as i64),
                    ValueRef::Integer(event as i64),
                    ValueRef::Text(mime.as_bytes()),
                    ValueRef::Blob(&data),
                ],
                &mut scratch,
            );
            insert.execute(params![attachments as i64, event as i64, mime, data])?;
        }
    }
    rows += attachments;
    conn.execute_batch("COMMIT")?;
    Ok((rows, at))
}
