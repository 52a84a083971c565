//! Virtual tables (FTS5 and others), which wrangler refuses to export at all.
//!
//! A virtual table is recreated from its stored `CREATE VIRTUAL TABLE`, which also recreates its
//! shadow tables (so those are never written), and then refilled through the module:
//!
//! - FTS tables with their own content (FTS5 without `content=`, FTS3/4 likewise): one
//!   `INSERT INTO "t" (rowid,"a","b") VALUES(…);` per row, read through the module, so rowids
//!   and values come back and the module rebuilds its index;
//! - external-content FTS tables (`content='other_table'`):
//!   `INSERT INTO "t" ("t") VALUES('rebuild');`, which re-indexes the content table (written
//!   earlier in the dump, because virtual tables come after all ordinary tables);
//! - contentless FTS tables (`content=''`) hold no readable content: only the `CREATE` is
//!   written, and their index starts empty;
//! - other modules (R*Tree, …): one INSERT per row over the declared columns.
//!
//! FTS5 configuration (`rank`, `pgsz`, `automerge`, … in `<t>_config`) is replayed with
//! `INSERT INTO "t" ("t",rank) VALUES('<key>',<value>);` after the `CREATE`.
//!
//! The parsing needs no SQLite: the local dumper (`crate::sqlite`), the per-table D1 export
//! (`crate::vtab_export`, on `sqlite_schema` rows read through the query API), the comparison
//! with the live database and the D1 test double all use it.

/// A parsed `CREATE VIRTUAL TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VirtualTable {
    /// The module name, lower-case (`fts5`, `fts4`, `rtree`, …).
    pub(crate) module: String,
    /// Where the table's content lives.
    pub(crate) content: Content,
}

/// Where a virtual table's content lives, which decides how it is refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// Readable through the module, rows carry their rowid (FTS3/4/5 with their own content).
    Own,
    /// Another table (`content='t'`): rebuilt after that table's rows.
    External,
    /// `content=''`: nothing to read.
    Contentless,
    /// Another module: readable through the module, declared columns only.
    Other,
}

impl VirtualTable {
    /// Parses stored `CREATE VIRTUAL TABLE … USING module(args)` text; `None` for anything else.
    pub(crate) fn parse(sql: &str) -> Option<Self> {
        let head = sql.get(..20)?;
        if !head.eq_ignore_ascii_case("CREATE VIRTUAL TABLE") {
            return None;
        }
        let after_using = find_using(sql)?;
        let rest = sql[after_using..].trim_start();
        let module_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let module = rest[..module_len].to_ascii_lowercase();
        let args = rest[module_len..]
            .trim_start()
            .strip_prefix('(')
            .and_then(|a| a.rfind(')').map(|end| &a[..end]))
            .unwrap_or("");
        let content = if matches!(module.as_str(), "fts3" | "fts4" | "fts5") {
            match option(args, "content") {
                None => Content::Own,
                Some(v) if v.is_empty() => Content::Contentless,
                Some(_) => Content::External,
            }
        } else {
            Content::Other
        };
        Some(Self { module, content })
    }

    /// The suffixes of the shadow tables the module creates, named `<table>_<suffix>`
    /// (SQLite's `xShadowName` for the modules it ships). Unknown modules: none.
    pub(crate) fn shadow_suffixes(&self) -> &'static [&'static str] {
        match self.module.as_str() {
            "fts5" => &["config", "content", "data", "docsize", "idx"],
            "fts3" | "fts4" => &["content", "docsize", "segdir", "segments", "stat"],
            "rtree" | "rtree_i32" | "geopoly" => &["node", "parent", "rowid"],
            _ => &[],
        }
    }

    /// Whether `table` is a shadow table of this virtual table, which is named `name`
    /// (SQLite compares names ignoring ASCII case).
    pub(crate) fn is_shadow(&self, name: &str, table: &str) -> bool {
        let Some(suffix) = table
            .get(..name.len())
            .filter(|head| head.eq_ignore_ascii_case(name))
            .and_then(|_| table[name.len()..].strip_prefix('_'))
        else {
            return false;
        };
        self.shadow_suffixes()
            .iter()
            .any(|s| s.eq_ignore_ascii_case(suffix))
    }
}

/// The byte offset just after the `USING` keyword, outside quotes.
fn find_using(sql: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' | b'`' => quote = Some(b),
                b'[' => quote = Some(b']'),
                _ if is_word_at(bytes, i, b"USING") => return Some(i + 5),
                _ => {}
            },
        }
        i += 1;
    }
    None
}

fn is_word_at(bytes: &[u8], i: usize, word: &[u8]) -> bool {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let end = i + word.len();
    end <= bytes.len()
        && bytes[i..end].eq_ignore_ascii_case(word)
        && (i == 0 || !ident(bytes[i - 1]))
        && (end == bytes.len() || !ident(bytes[end]))
}

/// The value of `key = value` among the module arguments, unquoted.
fn option(args: &str, key: &str) -> Option<String> {
    split_args(args).into_iter().find_map(|arg| {
        let (k, v) = arg.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| unquote(v.trim()))
    })
}

/// Splits module arguments at top-level commas, honouring quotes and parentheses.
fn split_args(args: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in args.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '[' => quote = Some(']'),
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    parts.push(&args[start..i]);
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    parts.push(&args[start..]);
    parts
}

fn unquote(v: &str) -> String {
    for q in ['\'', '"', '`'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            let doubled = format!("{q}{q}");
            return v[1..v.len() - 1].replace(&doubled, &q.to_string());
        }
    }
    if v.len() >= 2 && v.starts_with('[') && v.ends_with(']') {
        return v[1..v.len() - 1].to_owned();
    }
    v.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Option<(String, Content)> {
        VirtualTable::parse(sql).map(|v| (v.module, v.content))
    }

    #[test]
    fn fts5_content_options() {
        assert_eq!(
            parse(
                "CREATE VIRTUAL TABLE articles_fts USING fts5(\n  title, body,\n  \
                 content='articles', content_rowid='id',\n  tokenize='unicode61 remove_diacritics 2'\n)"
            ),
            Some(("fts5".into(), Content::External))
        );
        assert_eq!(
            parse("CREATE VIRTUAL TABLE notes_fts USING fts5(note, tag UNINDEXED)"),
            Some(("fts5".into(), Content::Own))
        );
        assert_eq!(
            parse("CREATE VIRTUAL TABLE c USING FTS5(a, content='')"),
            Some(("fts5".into(), Content::Contentless))
        );
        assert_eq!(
            parse("CREATE VIRTUAL TABLE \"using x\" USING rtree(id, a, b)"),
            Some(("rtree".into(), Content::Other))
        );
        assert_eq!(parse("CREATE TABLE t (x)"), None);
    }

    #[test]
    fn shadow_tables_by_module() {
        let fts5 = VirtualTable::parse("CREATE VIRTUAL TABLE notes_fts USING fts5(note)");
        let rtree = VirtualTable::parse("CREATE VIRTUAL TABLE geo USING rtree(id, x0, x1)");
        let (Some(fts5), Some(rtree)) = (fts5, rtree) else {
            panic!("both parse");
        };
        for (vtab, table, expected) in [
            (&fts5, "notes_fts_data", true),
            (&fts5, "NOTES_FTS_Config", true),
            (&fts5, "notes_fts_content", true),
            (&fts5, "notes_fts_segments", false),
            (&fts5, "notes_fts", false),
            (&fts5, "notes_fts_", false),
            (&fts5, "notes_ftsx_data", false),
            (&fts5, "other_data", false),
            (&rtree, "geo_node", true),
            (&rtree, "geo_data", false),
        ] {
            let name = if vtab.module == "fts5" {
                "notes_fts"
            } else {
                "geo"
            };
            assert_eq!(vtab.is_shadow(name, table), expected, "{table}");
        }
    }
}
