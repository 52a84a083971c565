//! `DefectScanner` over wrangler 4.164's real `export.sql` of every fixture: exactly the tables
//! the fixture's `notes.md` calls lossy are flagged, apart from the one documented false
//! positive (text with a line feed, `DefectKind::NewlineEscape`, which the export cannot tell
//! from text that also held a backslash-n), which flags exactly the tables with such text.
//!
//! The fixtures are read here as `corpus.rs` reads them, without sharing its code, so this test
//! runs without feature `sqlite`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use d1_backup_core::{DefectKind, DefectScanner, Defects};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrangler")
}

/// The tables `notes.md` calls lossy: the ``` `table` ``` or ``` `table.column` ``` names on
/// its "lossy in wrangler 4.164.0: yes" line that are tables of `expected.json`.
fn lossy_tables(case: &str, tables: &BTreeSet<String>) -> BTreeSet<String> {
    let notes = std::fs::read_to_string(fixtures().join(case).join("notes.md")).unwrap();
    let line = notes
        .lines()
        .find(|l| l.starts_with("lossy in wrangler 4.164.0:"))
        .unwrap_or_else(|| panic!("{case}: notes.md has no lossy line"));
    if !line.contains(": yes") {
        return BTreeSet::new();
    }
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(|quoted| quoted.split('.').next().unwrap_or_default().to_owned())
        .filter(|name| tables.contains(name))
        .collect()
}

/// The tables of `expected.json`, and those with a text cell holding a line feed.
fn tables_and_multiline(case: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(fixtures().join(case).join("expected.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let mut all = BTreeSet::new();
    let mut multiline = BTreeSet::new();
    for table in json["tables"].as_array().unwrap() {
        let name = table["name"].as_str().unwrap().to_owned();
        let rows = table["rows"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let has_lf = rows.iter().flat_map(|r| r.as_array().unwrap()).any(|cell| {
            cell["t"] == "text" && cell["v"].as_str().is_some_and(|v| v.contains('\n'))
        });
        if has_lf {
            multiline.insert(name.clone());
        }
        all.insert(name);
    }
    (all, multiline)
}

fn scan(dump: &[u8], chunk: usize) -> Defects {
    let mut scanner = DefectScanner::new();
    for piece in dump.chunks(chunk) {
        scanner.feed(piece);
    }
    scanner.finish()
}

#[test]
fn exactly_the_tables_the_notes_call_lossy_are_flagged() {
    let mut cases: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("expected.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 10, "fixture cases: {cases:?}");
    let mut scanned = 0;
    for case in &cases {
        let Ok(dump) = std::fs::read(fixtures().join(case).join("export.sql")) else {
            // fts5: every full export fails, so there is no dump to scan.
            assert!(
                fixtures().join(case).join("export-error.txt").is_file(),
                "{case}"
            );
            continue;
        };
        scanned += 1;
        let (tables, multiline) = tables_and_multiline(case);
        let lossy = lossy_tables(case, &tables);
        let defects = scan(&dump, 4096);
        assert_eq!(
            defects,
            scan(&dump, 7),
            "{case}: chunking changed the result"
        );
        assert!(defects.outside_rows().kinds().next().is_none(), "{case}");
        let flagged = |pick: &dyn Fn(DefectKind) -> bool| -> BTreeSet<String> {
            defects
                .tables()
                .filter(|t| defects.table(t).unwrap().kinds().any(|(k, _)| pick(k)))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            flagged(&|k| k != DefectKind::NewlineEscape),
            lossy,
            "{case}: {defects:#?}"
        );
        assert_eq!(
            flagged(&|k| k == DefectKind::NewlineEscape),
            multiline,
            "{case}: {defects:#?}"
        );
    }
    assert_eq!(scanned, 9);
}

/// The kinds and first lines in `numbers`, the one fixture wrangler exports lossily.
#[test]
fn numbers_flags_its_lossy_tables_at_their_first_lossy_row() {
    let dump = std::fs::read(fixtures().join("numbers/export.sql")).unwrap();
    let defects = scan(&dump, 1 << 16);
    let kinds =
        |table: &str| -> Vec<(DefectKind, u64)> { defects.table(table).unwrap().kinds().collect() };
    // Line 10 is 2^53 itself, which 2^53+1 (line 11) is also written as: flagged.
    assert_eq!(kinds("ints"), [(DefectKind::LargeInteger, 10)]);
    assert_eq!(
        kinds("dynamic"),
        [
            (DefectKind::LargeInteger, 64),
            (DefectKind::IntegerForReal, 56),
        ]
    );
    assert_eq!(
        kinds("strict_any"),
        [
            (DefectKind::LargeInteger, 82),
            (DefectKind::IntegerForReal, 77),
        ]
    );
}
