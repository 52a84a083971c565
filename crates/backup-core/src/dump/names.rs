//! Names in a dump: how identifiers are quoted, and which tables belong to D1 or SQLite
//! rather than to the user.

/// Appends `"name"` with every `"` doubled: the one way this crate quotes an identifier, in
/// dumps and in the queries that read a database.
pub(crate) fn push_ident(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    for part in name.split_inclusive('"') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// [`push_ident`] as a `String`.
pub(crate) fn quote_ident(name: &str) -> String {
    let mut out = Vec::with_capacity(name.len() + 2);
    push_ident(&mut out, name);
    // Only ASCII quotes were added to valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Whether D1 refuses to create or read an object named `name`: every name starting with
/// `_cf_` in any case (`_CF_upper`, `_Cf_x`; `not authorized: SQLITE_AUTH`). Wider than
/// [`TableClass::D1`], which is what D1's export skips (the exact prefix): older databases and
/// local files can hold names the export writes and the import refuses.
pub(crate) fn refused_by_d1(name: &str) -> bool {
    name.as_bytes()
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"_cf_"))
}

/// What a table is to a dump, by its name alone: the one rule for "internal" tables.
///
/// D1's export skips every table whose name starts with `_cf_` (D1's own) or `sqlite_`
/// (SQLite's own), except that `sqlite_sequence` is written as `DELETE FROM sqlite_sequence;`
/// plus its rows, and (by the local dumper, as wrangler's) `sqlite_stat1` as
/// `ANALYZE sqlite_schema;` plus its rows. The prefixes are compared exactly, as D1's dumper
/// compares them; SQLite refuses to create any other table whose name starts with `sqlite_`
/// in any case.
///
/// Each use asks the question it needs:
///
/// - the dumpers write [`User`](Self::User) tables and the two special ones, nothing else;
/// - the per-table D1 export ([`is_internal`](Self::is_internal)) names only user tables;
/// - the comparison with the live database ([`holds_content`](Self::holds_content)) compares
///   user tables and `sqlite_sequence`, not statistics that `ANALYZE` rewrites;
/// - a restored database's row counts ([`is_sqlite_own`](Self::is_sqlite_own)) leave out
///   SQLite's tables only (a `_cf_*` table a sqlite3 `.dump` restored is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableClass {
    /// A table of the user's: its `CREATE TABLE` and rows are written.
    User,
    /// `sqlite_sequence` (AUTOINCREMENT counters).
    Sequence,
    /// `sqlite_stat1`, `sqlite_stat4`, …: query-planner statistics.
    Stat,
    /// `_cf_*`: D1's own tables, neither exported nor restored (D1 refuses to create them).
    D1,
    /// Any other `sqlite_*` table: never written.
    Sqlite,
}

impl TableClass {
    /// The class of the table named `name`.
    pub(crate) fn of(name: &str) -> Self {
        if name == "sqlite_sequence" {
            Self::Sequence
        } else if name.starts_with("sqlite_stat") {
            Self::Stat
        } else if name.starts_with("_cf_") {
            Self::D1
        } else if name.starts_with("sqlite_") {
            Self::Sqlite
        } else {
            Self::User
        }
    }

    /// D1's or SQLite's own table (`_cf_*`, `sqlite_*`): not a user table.
    pub(crate) fn is_internal(self) -> bool {
        self != Self::User
    }

    /// A table whose rows are the database's content: a user table or `sqlite_sequence`.
    pub(crate) fn holds_content(self) -> bool {
        matches!(self, Self::User | Self::Sequence)
    }

    /// One of SQLite's own tables (`sqlite_*`).
    pub(crate) fn is_sqlite_own(self) -> bool {
        matches!(self, Self::Sequence | Self::Stat | Self::Sqlite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_double_their_quotes() {
        let mut out = Vec::new();
        push_ident(&mut out, "odd \"name\" here");
        assert_eq!(out, b"\"odd \"\"name\"\" here\"");
        assert_eq!(quote_ident("a\"\"b"), "\"a\"\"\"\"b\"");
        assert_eq!(quote_ident(""), "\"\"");
    }

    #[test]
    fn table_classes() {
        for (name, class) in [
            ("users", TableClass::User),
            ("Sqlite_sequence", TableClass::User),
            ("sqlite_sequence", TableClass::Sequence),
            ("sqlite_stat1", TableClass::Stat),
            ("sqlite_stat4", TableClass::Stat),
            ("_cf_METADATA", TableClass::D1),
            ("_cf_KV", TableClass::D1),
            ("cf_x", TableClass::User),
            ("sqlite_schema", TableClass::Sqlite),
            ("sqlite_autoindex_t_1", TableClass::Sqlite),
        ] {
            assert_eq!(TableClass::of(name), class, "{name}");
        }
        let all = [
            TableClass::User,
            TableClass::Sequence,
            TableClass::Stat,
            TableClass::D1,
            TableClass::Sqlite,
        ];
        let pick = |f: fn(TableClass) -> bool| -> Vec<TableClass> {
            all.iter().copied().filter(|c| f(*c)).collect()
        };
        assert_eq!(pick(|c| !c.is_internal()), [TableClass::User]);
        assert_eq!(
            pick(TableClass::holds_content),
            [TableClass::User, TableClass::Sequence]
        );
        assert_eq!(
            pick(TableClass::is_sqlite_own),
            [TableClass::Sequence, TableClass::Stat, TableClass::Sqlite]
        );
    }
    #[test]
    fn reserved_names_are_d1s_in_any_case() {
        for name in ["_cf_KV", "_CF_upper", "_Cf_x", "_cF_"] {
            assert!(refused_by_d1(name), "{name}");
        }
        for name in ["cf_x", "_cfx", "x_cf_", "_c", "", "_cé"] {
            assert!(!refused_by_d1(name), "{name}");
        }
    }
}
