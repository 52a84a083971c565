//! The order of a whole dump, as data: which statements and which tables' rows, in D1's
//! order, for a schema a source has read. A source turns the [`Step`]s into text through
//! [`DumpWriter`](super::DumpWriter), reading rows where a step asks for them; the order and
//! the filters are decided here once, whatever the source.

use super::names::TableClass;
use super::vtab::{Content, VirtualTable};
use super::writer::{SEQUENCE_HEAD, STAT_HEAD};

/// What a `type='table'` row of `sqlite_schema` is, for the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// A table the dump writes with its `CREATE` and rows.
    Ordinary,
    /// `sqlite_sequence`: `DELETE FROM sqlite_sequence;` then its rows.
    Sequence,
    /// `sqlite_stat1` (or another `sqlite_stat*`): `ANALYZE sqlite_schema;` then its rows.
    Stat,
    /// A virtual table, recreated from its `CREATE VIRTUAL TABLE` and its content.
    Virtual(VirtualTable),
    /// A shadow table of a virtual table: recreated by the virtual table, not written (unless
    /// named in the table filter, as wrangler does).
    Shadow,
    /// `_cf_*` and other `sqlite_*` tables, never written.
    Internal,
}

impl Role {
    /// The role of table `name` stored as `sql`; `is_shadow` is asked only for a user table
    /// that is not virtual (a source knows shadow tables from SQLite's `PRAGMA table_list`,
    /// or from the virtual tables' names, [`VirtualTable::is_shadow`]).
    pub(crate) fn of<E>(
        name: &str,
        sql: &str,
        is_shadow: impl FnOnce() -> Result<bool, E>,
    ) -> Result<Self, E> {
        Ok(match TableClass::of(name) {
            TableClass::Sequence => Self::Sequence,
            TableClass::Stat => Self::Stat,
            TableClass::D1 | TableClass::Sqlite => Self::Internal,
            TableClass::User => match VirtualTable::parse(sql) {
                Some(vtab) => Self::Virtual(vtab),
                None if is_shadow()? => Self::Shadow,
                None => Self::Ordinary,
            },
        })
    }
}

/// One table of `sqlite_schema`, in dump order: creation (rowid) order, `sqlite_sequence`
/// last.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) sql: String,
    pub(crate) role: Role,
}

/// An index, trigger or view, in dump order: indexes, then triggers, then views (wrangler's
/// `ORDER BY type COLLATE NOCASE`), each in creation order.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) name: String,
    pub(crate) tbl_name: String,
    pub(crate) sql: String,
}

/// What to dump; the choices of `wrangler d1 export`'s flags.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter<'a> {
    /// Only these names (tables, indexes, triggers, views); empty means everything.
    pub(crate) tables: &'a [String],
    /// Schema statements only.
    pub(crate) no_data: bool,
    /// Rows only (and the first line).
    pub(crate) no_schema: bool,
}

/// How a table's rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// An ordinary table (or `sqlite_sequence`, `sqlite_stat1`), in its own b-tree's order:
    /// rowid order, primary-key order for `WITHOUT ROWID` tables.
    TableScan,
    /// A virtual table whose rowids are kept (FTS with its own content): rowid first, in
    /// rowid order.
    WithRowid,
    /// Another virtual table: declared columns, in the module's order.
    Module,
}

/// One step of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// A statement written as it is (the first line, `DELETE FROM sqlite_sequence;`, …).
    Statement(&'static str),
    /// A stored `CREATE TABLE`, as [`DumpWriter::create_table`](super::DumpWriter::create_table)
    /// writes it.
    CreateTable(&'a str),
    /// A stored `CREATE` written with its `;` (virtual table, index, trigger, view).
    Stored(&'a str),
    /// One INSERT per row of the table.
    Rows(&'a str, Read),
    /// The FTS5 settings of the table (`<t>_config` but `version`).
    Fts5Config(&'a str),
    /// `'rebuild'` of an external-content FTS table.
    Rebuild(&'a str),
}

/// The steps of a dump of `tables` and `objects`, and how many tables it writes (ordinary
/// and virtual; not `sqlite_sequence`/`sqlite_stat*`).
///
/// The first line; tables in order (a shadow table only when named, as wrangler writes it);
/// virtual tables after every ordinary table, so that external content is there to be
/// indexed; then indexes, triggers and views, except those on skipped internal tables, which
/// could not be created without their table.
pub(crate) fn plan<'a>(
    tables: &'a [Table],
    objects: &'a [Object],
    filter: Filter<'_>,
) -> (Vec<Step<'a>>, usize) {
    let selected = |name: &str| filter.tables.is_empty() || filter.tables.iter().any(|t| t == name);
    let schema = !filter.no_schema;
    let data = !filter.no_data;
    let mut steps = vec![Step::Statement(super::DUMP_HEAD)];
    let mut count = 0;
    let mut virtual_tables = Vec::new();
    for table in tables.iter().filter(|t| selected(&t.name)) {
        let name = table.name.as_str();
        let (head, create) = match &table.role {
            Role::Internal => continue,
            Role::Shadow if filter.tables.is_empty() => continue,
            Role::Virtual(vtab) => {
                virtual_tables.push((table, vtab));
                continue;
            }
            Role::Sequence => (Some(Step::Statement(SEQUENCE_HEAD)), false),
            Role::Stat => (Some(Step::Statement(STAT_HEAD)), false),
            Role::Ordinary | Role::Shadow => (None, true),
        };
        if create {
            count += 1;
        }
        let head = head.or(create.then_some(Step::CreateTable(&table.sql)));
        steps.extend(head.filter(|_| schema));
        steps.extend(data.then_some(Step::Rows(name, Read::TableScan)));
    }
    for (table, vtab) in virtual_tables {
        count += 1;
        let name = table.name.as_str();
        if schema {
            steps.push(Step::Stored(&table.sql));
            if vtab.module == "fts5" {
                steps.push(Step::Fts5Config(name));
            }
        }
        let content = match vtab.content {
            Content::Own => Some(Step::Rows(name, Read::WithRowid)),
            Content::Other => Some(Step::Rows(name, Read::Module)),
            Content::External => Some(Step::Rebuild(name)),
            // Nothing readable is kept: the table comes back empty.
            Content::Contentless => None,
        };
        steps.extend(content.filter(|_| data));
    }
    if schema {
        let internal = |tbl_name: &str| {
            tables
                .iter()
                .any(|t| t.role == Role::Internal && t.name == tbl_name)
        };
        steps.extend(
            objects
                .iter()
                .filter(|o| selected(&o.name) && !internal(&o.tbl_name))
                .map(|o| Step::Stored(&o.sql)),
        );
    }
    (steps, count)
}

/// The table options a `CREATE TABLE` ends with (after its column list's closing
/// parenthesis): `WITHOUT ROWID` and `STRICT`, in any case and order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TableOptions {
    /// `WITHOUT ROWID`: rows live in the primary key's b-tree; there is no rowid.
    pub(crate) without_rowid: bool,
    /// `STRICT`: declared types are enforced, and `ANY` keeps values as given.
    pub(crate) strict: bool,
}

impl TableOptions {
    /// The options of the table whose stored `CREATE TABLE` is `sql`.
    pub(crate) fn of(sql: &str) -> Self {
        let options = sql.rsplit_once(')').map_or("", |(_, rest)| rest);
        let words: Vec<String> = options
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        Self {
            without_rowid: words
                .windows(2)
                .any(|w| w[0] == "WITHOUT" && w[1] == "ROWID"),
            strict: words.iter().any(|w| w == "STRICT"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, sql: &str, shadow: bool) -> Table {
        let role = Role::of(name, sql, || Ok::<_, ()>(shadow)).unwrap_or(Role::Internal);
        Table {
            name: name.to_owned(),
            sql: sql.to_owned(),
            role,
        }
    }

    fn schema() -> (Vec<Table>, Vec<Object>) {
        let tables = vec![
            table("_cf_KV", "CREATE TABLE _cf_KV (k, v)", false),
            table(
                "t",
                "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)",
                false,
            ),
            table("f", "CREATE VIRTUAL TABLE f USING fts5(a)", false),
            table(
                "f_data",
                "CREATE TABLE 'f_data'(id INTEGER PRIMARY KEY, block BLOB)",
                true,
            ),
            table(
                "e",
                "CREATE VIRTUAL TABLE e USING fts5(a, content='t')",
                false,
            ),
            table(
                "sqlite_stat1",
                "CREATE TABLE sqlite_stat1(tbl,idx,stat)",
                false,
            ),
            table(
                "sqlite_sequence",
                "CREATE TABLE sqlite_sequence(name,seq)",
                false,
            ),
        ];
        let object = |name: &str, tbl_name: &str| Object {
            name: name.to_owned(),
            tbl_name: tbl_name.to_owned(),
            sql: format!("CREATE INDEX {name} ON {tbl_name}(v)"),
        };
        (tables, vec![object("i", "t"), object("cf", "_cf_KV")])
    }

    #[test]
    fn a_whole_dump_in_d1s_order() {
        let (tables, objects) = schema();
        let filter = Filter {
            tables: &[],
            no_data: false,
            no_schema: false,
        };
        let (steps, count) = plan(&tables, &objects, filter);
        assert_eq!(
            steps,
            [
                Step::Statement("PRAGMA defer_foreign_keys=TRUE;"),
                Step::CreateTable("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)"),
                Step::Rows("t", Read::TableScan),
                Step::Statement("ANALYZE sqlite_schema;"),
                Step::Rows("sqlite_stat1", Read::TableScan),
                Step::Statement("DELETE FROM sqlite_sequence;"),
                Step::Rows("sqlite_sequence", Read::TableScan),
                Step::Stored("CREATE VIRTUAL TABLE f USING fts5(a)"),
                Step::Fts5Config("f"),
                Step::Rows("f", Read::WithRowid),
                Step::Stored("CREATE VIRTUAL TABLE e USING fts5(a, content='t')"),
                Step::Fts5Config("e"),
                Step::Rebuild("e"),
                Step::Stored("CREATE INDEX i ON t(v)"),
            ]
        );
        assert_eq!(count, 3);
    }

    #[test]
    fn filters_choose_names_rows_or_schema() {
        let (tables, objects) = schema();
        let named = ["f_data".to_owned(), "i".to_owned()];
        let filter = Filter {
            tables: &named,
            no_data: true,
            no_schema: false,
        };
        let (steps, count) = plan(&tables, &objects, filter);
        assert_eq!(
            steps,
            [
                Step::Statement("PRAGMA defer_foreign_keys=TRUE;"),
                Step::CreateTable("CREATE TABLE 'f_data'(id INTEGER PRIMARY KEY, block BLOB)"),
                Step::Stored("CREATE INDEX i ON t(v)"),
            ]
        );
        assert_eq!(count, 1);
        let filter = Filter {
            tables: &[],
            no_data: false,
            no_schema: true,
        };
        let (steps, count) = plan(&tables, &objects, filter);
        assert_eq!(steps.len(), 6, "{steps:?}");
        assert!(
            steps[1..]
                .iter()
                .all(|s| matches!(s, Step::Rows(..) | Step::Rebuild(_)))
        );
        assert_eq!(count, 3);
    }
}
