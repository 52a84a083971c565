use super::*;

use DefectKind::{
    IntegerForReal, LargeInteger, NewlineEscape, NonFinite, Nul, ReplacementCharacter, Unrecognized,
};

/// Every table with its kinds and their first lines, `""` for outside any table.
fn found(defects: &Defects) -> Vec<(String, DefectKind, u64)> {
    let mut out: Vec<_> = defects
        .tables
        .iter()
        .flat_map(|(t, d)| d.kinds().map(move |(k, l)| (t.clone(), k, l)))
        .collect();
    out.extend(defects.outside.kinds().map(|(k, l)| (String::new(), k, l)));
    out
}

fn scan_in(chunks: impl IntoIterator<Item = Vec<u8>>) -> Defects {
    let mut scanner = DefectScanner::new();
    for chunk in chunks {
        scanner.feed(&chunk);
    }
    scanner.finish()
}

/// A tiny deterministic generator (xorshift), so the random splits are the same every run.
fn splits(len: usize, seed: u64) -> Vec<usize> {
    let mut x = seed;
    let mut at = 0;
    let mut cuts = Vec::new();
    while at < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        at += 1 + usize::try_from(x % 7).unwrap_or(0);
        cuts.push(at.min(len));
    }
    cuts
}

/// Scans `input` whole, a byte at a time and in random pieces, and expects the same
/// `(table, kind, line)`s every way.
fn check(input: &[u8], expected: &[(&str, DefectKind, u64)]) {
    let expected: Vec<_> = expected
        .iter()
        .map(|(t, k, l)| ((*t).to_owned(), *k, *l))
        .collect();
    let whole = scan_in([input.to_vec()]);
    assert_eq!(
        found(&whole),
        expected,
        "whole: {}",
        String::from_utf8_lossy(input)
    );
    let bytes = scan_in(input.iter().map(|b| vec![*b]));
    assert_eq!(found(&bytes), expected, "byte by byte");
    for seed in 1..4 {
        let mut start = 0;
        let pieces = splits(input.len(), seed).into_iter().map(|end| {
            let piece = input[start..end].to_vec();
            start = end;
            piece
        });
        let pieces: Vec<_> = pieces.collect();
        assert_eq!(found(&scan_in(pieces)), expected, "seed {seed}");
    }
}

const HEAD: &str = "PRAGMA defer_foreign_keys=TRUE;\n";

#[test]
fn large_integers_in_columns_without_real_affinity() {
    let dump = format!(
        "{HEAD}CREATE TABLE ints (id INTEGER PRIMARY KEY, v INTEGER);\n\
         INSERT INTO \"ints\" (\"id\",\"v\") VALUES(1,9007199254740991);\n\
         INSERT INTO \"ints\" (\"id\",\"v\") VALUES(2,9007199254740992);\n\
         INSERT INTO \"ints\" (\"id\",\"v\") VALUES(3,-9223372036854776000);\n\
         CREATE TABLE reals (id INTEGER PRIMARY KEY, v REAL);\n\
         INSERT INTO \"reals\" (\"id\",\"v\") VALUES(1,9223372036854776000);\n\
         INSERT INTO \"reals\" (\"id\",\"v\") VALUES(2,1);\n\
         CREATE TABLE n (v NUMERIC);\n\
         INSERT INTO \"n\" (\"v\") VALUES(1e+21);\n\
         INSERT INTO \"n\" (\"v\") VALUES(-9.223372036854776e18);"
    );
    check(
        dump.as_bytes(),
        &[("ints", LargeInteger, 4), ("n", LargeInteger, 11)],
    );
}

#[test]
fn integers_in_columns_without_affinity_may_be_reals() {
    let dump = format!(
        "{HEAD}CREATE TABLE \"d\" (\n  id INTEGER PRIMARY KEY, -- it's the key\n  u,\n  b BLOB /* , x INT */\n);\n\
         INSERT INTO \"d\" (\"id\",\"u\",\"b\") VALUES(1,2.5,X'00');\n\
         INSERT INTO \"d\" (\"id\",\"u\",\"b\") VALUES(2,'3',NULL);\n\
         INSERT INTO \"d\" (\"id\",\"b\") VALUES(3,0);\n\
         CREATE TABLE s (id INTEGER PRIMARY KEY, v ANY, r REAL) STRICT;\n\
         INSERT INTO \"s\" (\"id\",\"v\",\"r\") VALUES(1,1,1);\n\
         INSERT INTO \"unseen\" (\"a\") VALUES(7);\n\
         CREATE TABLE Mixed (id INTEGER PRIMARY KEY, r REAL, u);\n\
         INSERT INTO \"main\".\"MIXED\" (\"ID\",\"R\",\"u\") VALUES(1,2,100000000000000000000);\n\
         INSERT INTO \"sqlite_sequence\" (\"name\",\"seq\") VALUES('d',3);"
    );
    check(
        dump.as_bytes(),
        &[
            ("d", IntegerForReal, 9),
            ("s", IntegerForReal, 11),
            ("unseen", IntegerForReal, 12),
        ],
    );
}

#[test]
fn words_newline_wrappers_and_replacement_characters() {
    let dump = format!(
        "{HEAD}CREATE TABLE t (id INTEGER PRIMARY KEY, v);\n\
         INSERT INTO \"t\" (\"id\",\"v\") VALUES(1,'replace(''a\\nb'') Infinity');\n\
         INSERT INTO \"t\" (\"id\",\"v\") VALUES(2,-Infinity);\n\
         INSERT INTO \"t\" (\"id\",\"v\") VALUES(3,9e999);\n\
         INSERT INTO \"j\" (\"v\") VALUES(replace(replace('{{\\r\\n\"a\":\"x\\ny\"}}','\\r',char(13)),'\\n',char(10)));\n\
         INSERT INTO \"u\" (\"v\") VALUES('bad \u{FFFD} byte');\n\
         INSERT INTO \"w\" (\"v\") VALUES(NaN);\n\
         INSERT INTO \"w\" (\"v\") VALUES(bogus);"
    );
    check(
        dump.as_bytes(),
        &[
            ("j", NewlineEscape, 6),
            ("t", NonFinite, 4),
            ("u", ReplacementCharacter, 7),
            ("w", NonFinite, 8),
            ("w", Unrecognized, 9),
        ],
    );
}

#[test]
fn nul_bytes_name_their_table_or_the_dump() {
    let dump = b"PRAGMA\0 defer_foreign_keys=TRUE;\nCREATE TABLE t (v TEXT);\n\
                 INSERT INTO \"t\" (\"v\") VALUES('a\0;b');\n\
                 INSERT INTO \"t\" (\"v\") VALUES('\xEF\xBF\xBD');";
    check(
        dump,
        &[("t", ReplacementCharacter, 4), ("t", Nul, 3), ("", Nul, 1)],
    );
}

#[test]
fn quotes_comments_and_triggers_do_not_confuse_it() {
    let dump = format!(
        "{HEAD}CREATE TABLE \"odd \"\"t\"\" here\" (\"v\" INTEGER, [w] REAL, `x` TEXT);\n\
         INSERT INTO \"odd \"\"t\"\" here\" (\"v\",\"w\",\"x\") VALUES(1,9007199254740993,'; INSERT INTO \"z\" VALUES(9e30000); --');\n\
         CREATE TRIGGER tr AFTER INSERT ON \"odd \"\"t\"\" here\" BEGIN\n  INSERT INTO q VALUES(Infinity);\n  UPDATE q SET a = 1;\nEND;\n\
         CREATE VIEW v AS SELECT 9007199254740993 AS big;\n\
         INSERT INTO \"odd \"\"t\"\" here\" (\"v\",\"w\",\"x\") VALUES(9007199254740993,1,'x');"
    );
    check(dump.as_bytes(), &[("odd \"t\" here", LargeInteger, 9)]);
}

#[test]
fn a_lossless_dump_flags_nothing() {
    let dump = format!(
        "{HEAD}CREATE TABLE IF NOT EXISTS \"books\" (\n  id INTEGER PRIMARY KEY,\n  price REAL,\n  title TEXT DEFAULT 'x, y',\n  n NUMERIC(10,2) NOT NULL,\n  CHECK (price > 0),\n  UNIQUE (title)\n);\n\
         INSERT INTO \"books\" (\"id\",\"price\",\"title\",\"n\") VALUES(1,10,'it''s',5);\n\
         INSERT INTO \"books\" (\"id\",\"price\",\"title\",\"n\") VALUES(2,-0.5,'C:\\x',-1.5);\n\
         INSERT INTO \"books\" VALUES(3,1e-7,NULL,X'');\n\
         DELETE FROM sqlite_sequence;\n\
         INSERT INTO \"sqlite_sequence\" (\"name\",\"seq\") VALUES('books',3);\n\
         CREATE INDEX i ON books(n);"
    );
    check(dump.as_bytes(), &[]);
}

#[test]
fn an_unfinished_dump_still_reports_what_it_saw() {
    check(
        b"CREATE TABLE t (v INTEGER);\nINSERT INTO \"t\" (\"v\") VALUES(1,12345678901234567",
        &[("t", LargeInteger, 2)],
    );
}

#[test]
fn a_shared_scanner_sees_every_chunk_that_passes() {
    let shared = SharedScanner::new();
    let chunks = [
        &b"CREATE TABLE t (v INTEGER);\nINSERT INTO \"t\" (\"v\") VALUES(900719925"[..],
        &b"4740993);"[..],
    ];
    let body = futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, io::Error>(Bytes::from_static(c))),
    );
    let passed: Vec<_> = futures::executor::block_on(shared.inspect(body).collect::<Vec<_>>());
    assert_eq!(passed.len(), 2);
    let defects = shared.finish();
    assert_eq!(defects.tables().collect::<Vec<_>>(), ["t"]);
    assert!(shared.finish().is_empty(), "finish leaves a fresh scanner");
}

#[test]
fn a_long_row_is_not_kept() {
    let mut scanner = DefectScanner::new();
    scanner.feed(b"CREATE TABLE t (v);\nINSERT INTO \"t\" (\"v\") VALUES('");
    for _ in 0..256 {
        scanner.feed(&[b'a'; 8192]);
    }
    assert!(
        scanner.lexer_kept() <= lex::KEEP,
        "the 2 MiB literal is not held"
    );
    scanner.feed(b"\xEF\xBF\xBD');");
    let defects = scanner.finish();
    assert!(
        defects
            .table("t")
            .is_some_and(|t| t.has(ReplacementCharacter))
    );
}
