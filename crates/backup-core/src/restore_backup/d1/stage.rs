//! The first pass of an import into D1: the whole dump read, checked against D1's rules and
//! staged, before anything is uploaded.
//!
//! Every statement is classified ([`objects`](super::objects)); objects the caller excluded
//! are left out with everything that belongs to them; names D1 refuses and statements that
//! cannot be made to fit are collected (all of them, so one refusal names every one); a row
//! too long for D1 is rewritten into statements that fit ([`Splitter`]). What is kept goes to
//! three framed files ([`frames`](super::frames)): the `CREATE TABLE`s (all in the first
//! batch: D1 enforces foreign keys during an import, and a dump can create a child table
//! before its parent), the rows of ordinary tables by table, and everything else in dump
//! order (indexes, triggers, views, virtual tables, SQLite's own tables).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::dump::DumpStatements;
use crate::dump::split::Splitter;
use crate::error::{Error, ErrorKind, Result};
use crate::restore_backup::{ExcludedObject, ImportRefusal, RefusedStatement, RestoreReport};

use super::frames::FrameWriter;
use super::objects::{self, Object};
use crate::dump::names::refused_by_d1;

/// What the caller asks of the staging.
pub(super) struct StageOptions<'a> {
    /// Names of tables (or indexes, triggers, views) to leave out.
    pub(super) exclude: &'a [String],
    /// D1's statement limit, in bytes.
    pub(super) limit: usize,
}

/// A staged dump: its files (removed on drop), the order to import them in, and what the
/// staging found.
pub(super) struct Staged {
    /// `(file, start, end)` in import order: the tables, each table's rows (parents before
    /// children), the rest.
    pub(super) ranges: Vec<(PathBuf, u64, u64)>,
    files: Vec<PathBuf>,
    /// Statements, rows per table, transaction statements left out.
    pub(super) report: RestoreReport,
    /// What was left out.
    pub(super) excluded: Vec<ExcludedObject>,
    /// Rows rewritten to fit D1's statement limit.
    pub(super) split_rows: u64,
    /// What D1 would refuse; non-empty means nothing may be uploaded.
    pub(super) refused: Vec<RefusedStatement>,
    /// Excluded names that matched nothing.
    pub(super) unmatched: Vec<String>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Staged {
    /// The refusal, when D1 would refuse anything or an exclusion matched nothing.
    pub(super) fn refusal(&self) -> Option<Error> {
        if !self.unmatched.is_empty() {
            let mut tables: Vec<&str> = self.report.tables.keys().map(String::as_str).collect();
            tables.truncate(20);
            return Some(Error::new(
                ErrorKind::Refused,
                format!(
                    "the dump has no table, index, trigger or view named {}; nothing was uploaded (its tables: {})",
                    self.unmatched.join(", "),
                    tables.join(", ")
                ),
            ));
        }
        if self.refused.is_empty() {
            return None;
        }
        let refusal = ImportRefusal::new(self.refused.clone());
        Some(Error::new(ErrorKind::Refused, refusal.to_string()).with_source(refusal))
    }
}

/// Reads `reader` to its end and stages it in `dir` under file names starting with `stem`.
/// Runs on a blocking thread.
pub(super) fn stage(
    reader: impl Read,
    dir: &Path,
    stem: &str,
    options: &StageOptions<'_>,
) -> Result<Staged> {
    let mut pass = Stager::create(dir, stem, options)?;
    let mut statements = DumpStatements::new(std::io::BufReader::new(reader)).without_transaction();
    for statement in statements.by_ref() {
        let (line, sql) = statement.map_err(super::super::dump_error)?;
        pass.statement(line, &sql)
            .map_err(|e| write_error(&pass.staged.files[ROWS], e))?;
    }
    pass.finish(statements.skipped())
}

/// The staged files, by index into [`Staged::files`].
const SCHEMA: usize = 0;
const ROWS: usize = 1;
const TAIL: usize = 2;
const TRIGGERS: usize = 3;

fn write_error(path: &Path, error: std::io::Error) -> Error {
    Error::local_io(
        format!("cannot write the staged dump {}", path.display()),
        error,
    )
}

/// The state of the first pass.
struct Stager<'a> {
    options: &'a StageOptions<'a>,
    schema: FrameWriter,
    rows: FrameWriter,
    tail: FrameWriter,
    /// `CREATE TRIGGER`s, last: a trigger can come before the view it is on in a dump (the
    /// schema's order after the view was recreated), and D1 refuses a trigger on a view that
    /// does not exist yet.
    triggers: FrameWriter,
    splitter: Splitter,
    /// `(name, CREATE TABLE)` of the ordinary tables kept, in dump order.
    tables: Vec<(String, String)>,
    virtual_tables: Vec<String>,
    /// Tables refused for their names (their rows are left out with them).
    refused_tables: Vec<String>,
    /// `(table, start, end)` of each run of one table's rows in the rows file.
    segments: Vec<(String, u64, u64)>,
    /// Which exclusions matched something.
    used: Vec<bool>,
    /// What is being found; its files are removed if staging fails.
    staged: Staged,
    /// What was left out, by (kind, name).
    excluded: BTreeMap<(String, String), ExcludedObject>,
}

impl<'a> Stager<'a> {
    /// Creates the staged files.
    fn create(dir: &Path, stem: &str, options: &'a StageOptions<'a>) -> Result<Self> {
        let files: Vec<PathBuf> = ["schema", "rows", "tail", "triggers"]
            .iter()
            .map(|suffix| dir.join(format!("{stem}.{suffix}")))
            .collect();
        let staged = Staged {
            ranges: Vec::new(),
            files,
            report: RestoreReport::default(),
            excluded: Vec::new(),
            split_rows: 0,
            refused: Vec::new(),
            unmatched: Vec::new(),
        };
        let open = |i: usize| {
            FrameWriter::create(&staged.files[i]).map_err(|e| write_error(&staged.files[i], e))
        };
        let (schema, rows, tail, triggers) =
            (open(SCHEMA)?, open(ROWS)?, open(TAIL)?, open(TRIGGERS)?);
        let splitter = Splitter::new(options.limit).map_err(|e| {
            Error::new(
                ErrorKind::LocalIo,
                format!("cannot prepare the row splitter: {e}"),
            )
        })?;
        Ok(Self {
            options,
            schema,
            rows,
            tail,
            triggers,
            splitter,
            tables: Vec::new(),
            virtual_tables: Vec::new(),
            refused_tables: Vec::new(),
            segments: Vec::new(),
            used: vec![false; options.exclude.len()],
            staged,
            excluded: BTreeMap::new(),
        })
    }

    /// Closes the files and puts the findings together, with the import order of the
    /// staged ranges.
    fn finish(self, skipped: u64) -> Result<Staged> {
        let Self {
            options,
            schema,
            rows,
            tail,
            triggers,
            tables,
            segments,
            used,
            mut staged,
            excluded,
            ..
        } = self;
        let lens = [schema.position(), 0, tail.position(), triggers.position()];
        for (i, writer) in [schema, rows, tail, triggers].into_iter().enumerate() {
            writer
                .finish()
                .map_err(|e| write_error(&staged.files[i], e))?;
        }
        staged.report.stripped = skipped;
        staged.excluded = excluded.into_values().collect();
        staged.unmatched = options
            .exclude
            .iter()
            .zip(used)
            .filter(|(_, used)| !used)
            .map(|(name, _)| name.clone())
            .collect();
        let file = |i: usize| staged.files[i].clone();
        let mut ranges = vec![(file(SCHEMA), 0, lens[SCHEMA])];
        for (_, start, end) in ordered(&tables, segments) {
            ranges.push((file(ROWS), start, end));
        }
        ranges.push((file(TAIL), 0, lens[TAIL]));
        ranges.push((file(TRIGGERS), 0, lens[TRIGGERS]));
        staged.ranges = ranges;
        Ok(staged)
    }

    fn statement(&mut self, line: u64, sql: &str) -> std::io::Result<()> {
        let object = objects::classify(sql);
        if self.exclude(&object, sql) {
            return Ok(());
        }
        if let Some(name) = object.created().filter(|n| refused_by_d1(n)) {
            if matches!(object, Object::Table { .. }) {
                self.refused_tables.push(name.to_owned());
            }
            self.refuse(line, &object, Some(name), reserved_reason(&object));
            return Ok(());
        }
        if let Some(table) = object.table().filter(|t| refused_by_d1(t)) {
            let refused = self
                .refused_tables
                .iter()
                .any(|t| objects::same_name(t, table));
            // The rows of a refused table go with it; anything else on such a name is named.
            if !(refused && matches!(object, Object::Insert { .. })) {
                self.refuse(line, &object, object.created(), reserved_reason(&object));
            }
            return Ok(());
        }
        let bare = sql.trim_end_matches(';').trim();
        if bare.eq_ignore_ascii_case("PRAGMA defer_foreign_keys=TRUE") {
            // Every batch starts with its own.
            return Ok(());
        }
        if bare
            .replace(['"', '`'], "")
            .eq_ignore_ascii_case("DELETE FROM sqlite_sequence")
            && !self.has_autoincrement()
        {
            // No table kept creates sqlite_sequence (those that did were left out).
            return Ok(());
        }
        self.count(&object, sql);
        match &object {
            Object::Table {
                name,
                virtual_table: false,
            } => {
                if sql.len() > self.options.limit {
                    self.refuse(line, &object, Some(name), too_long(sql, "a CREATE TABLE"));
                    return Ok(());
                }
                if let Err(e) = self.splitter.add_table(line, sql) {
                    tracing::debug!("the splitter does not know table {name}: {e}");
                }
                self.tables.push((name.clone(), sql.to_owned()));
                self.staged.report.statements += 1;
                self.schema.push(sql, false)
            }
            Object::Table { name, .. } => {
                self.virtual_tables.push(name.clone());
                self.tail_statement(line, &object, sql)
            }
            Object::Insert { table, .. } if self.is_ordinary(table) => {
                let table = table.clone();
                self.row(line, &object, &table, sql)
            }
            _ => self.tail_statement(line, &object, sql),
        }
    }

    /// Leaves the statement out when it belongs to an excluded name; records it.
    fn exclude(&mut self, object: &Object, sql: &str) -> bool {
        let names = [object.created(), object.table()];
        let Some(index) = self.options.exclude.iter().position(|excluded| {
            names
                .iter()
                .flatten()
                .any(|name| objects::same_name(name, excluded))
        }) else {
            return false;
        };
        self.used[index] = true;
        match (object, object.created()) {
            (Object::Insert { table, .. }, _) => {
                let own = ["table", "virtual table"]
                    .iter()
                    .map(|kind| ((*kind).to_owned(), table.clone()))
                    .find(|key| self.excluded.contains_key(key));
                if let Some(entry) = own.and_then(|key| self.excluded.get_mut(&key)) {
                    if !super::is_module_command(sql, table) {
                        entry.rows = Some(entry.rows.unwrap_or(0) + 1);
                    }
                } else {
                    // A row of sqlite_sequence or sqlite_stat1 about an excluded table.
                    let key = (
                        "row".to_owned(),
                        format!("{table}: {}", object.table().unwrap_or_default()),
                    );
                    self.excluded.entry(key.clone()).or_insert(ExcludedObject {
                        kind: key.0,
                        name: key.1,
                        rows: None,
                    });
                }
            }
            (_, Some(name)) => {
                let kind = object.kind().to_owned();
                let rows = matches!(object, Object::Table { .. }).then_some(0);
                self.excluded
                    .entry((kind.clone(), name.to_owned()))
                    .or_insert(ExcludedObject {
                        kind,
                        name: name.to_owned(),
                        rows,
                    });
            }
            _ => {}
        }
        true
    }

    fn refuse(&mut self, line: u64, object: &Object, name: Option<&str>, reason: String) {
        self.staged.refused.push(RefusedStatement {
            line,
            kind: object.kind().to_owned(),
            name: name.map(str::to_owned),
            table: object.table().map(str::to_owned),
            reason,
        });
    }

    fn count(&mut self, object: &Object, sql: &str) {
        if let Object::Insert { table, .. } | Object::Table { name: table, .. } = object {
            let rows = self.staged.report.tables.entry(table.clone()).or_default();
            if matches!(object, Object::Insert { .. }) && !super::is_module_command(sql, table) {
                *rows += 1;
            }
        }
    }

    /// Whether a kept table is `AUTOINCREMENT` (which creates `sqlite_sequence`).
    fn has_autoincrement(&self) -> bool {
        self.tables
            .iter()
            .any(|(_, sql)| sql.to_ascii_uppercase().contains("AUTOINCREMENT"))
    }

    fn is_ordinary(&self, table: &str) -> bool {
        self.tables
            .iter()
            .any(|(t, _)| objects::same_name(t, table))
    }

    /// A row of an ordinary table: to the rows file, split when too long.
    fn row(&mut self, line: u64, object: &Object, table: &str, sql: &str) -> std::io::Result<()> {
        let start = self.rows.position();
        if sql.len() > self.options.limit {
            match self.splitter.split(line, sql) {
                Ok(pieces) => {
                    self.staged.split_rows += 1;
                    for (i, piece) in pieces.iter().enumerate() {
                        self.rows.push(piece, i > 0)?;
                    }
                    self.staged.report.statements += pieces.len() as u64;
                }
                Err(e) => self.refuse(line, object, None, e.reason()),
            }
        } else {
            self.rows.push(sql, false)?;
            self.staged.report.statements += 1;
        }
        let end = self.rows.position();
        match self.segments.last_mut() {
            Some((last, _, last_end)) if last == table && *last_end == start => *last_end = end,
            _ => self.segments.push((table.to_owned(), start, end)),
        }
        Ok(())
    }

    /// Anything but a table or a row of an ordinary table: kept in dump order, after the rows.
    fn tail_statement(&mut self, line: u64, object: &Object, sql: &str) -> std::io::Result<()> {
        if sql.len() > self.options.limit {
            let what = match object {
                Object::Insert { .. } => {
                    "an INSERT into a virtual table or one of SQLite's own tables"
                }
                Object::Index { .. } => "a CREATE INDEX",
                Object::Trigger { .. } => "a CREATE TRIGGER",
                Object::View { .. } => "a CREATE VIEW",
                Object::Table { .. } => "a CREATE VIRTUAL TABLE",
                Object::Other => "a statement",
            };
            self.refuse(line, object, object.created(), too_long(sql, what));
            return Ok(());
        }
        self.staged.report.statements += 1;
        if matches!(object, Object::Trigger { .. }) {
            return self.triggers.push(sql, false);
        }
        self.tail.push(sql, false)
    }
}

fn reserved_reason(object: &Object) -> String {
    match object {
        Object::Index { table, .. } | Object::Trigger { table, .. } if refused_by_d1(table) => {
            format!(
                "it belongs to table {table}, and D1 refuses every name starting with _cf_, in any case (not authorized: SQLITE_AUTH)"
            )
        }
        _ => "D1 refuses every name starting with _cf_, in any case (not authorized: SQLITE_AUTH)"
            .to_owned(),
    }
}

fn too_long(sql: &str, what: &str) -> String {
    format!(
        "{what} of {} bytes is longer than D1's {}-byte statement limit and cannot be split",
        sql.len(),
        crate::dump::D1_STATEMENT_LIMIT
    )
}

/// The row segments in import order: each table's rows after those of the tables it
/// references (so that a batch boundary does not leave a row before the parent row it needs;
/// within one batch D1 defers the checks to its end). Cycles and self-references keep the
/// dump's order.
fn ordered(
    tables: &[(String, String)],
    segments: Vec<(String, u64, u64)>,
) -> Vec<(String, u64, u64)> {
    let rank = rank_by_references(tables);
    let mut segments: Vec<(usize, (String, u64, u64))> = segments
        .into_iter()
        .map(|s| {
            (
                rank.get(&s.0.to_ascii_lowercase())
                    .copied()
                    .unwrap_or(usize::MAX),
                s,
            )
        })
        .collect();
    // Stable: a table's runs stay in dump order.
    segments.sort_by_key(|(rank, _)| *rank);
    segments.into_iter().map(|(_, s)| s).collect()
}

/// Each table's place in an order where referenced tables come first (by lower-cased name).
fn rank_by_references(tables: &[(String, String)]) -> HashMap<String, usize> {
    let parents = references(tables);
    let mut rank = HashMap::new();
    let mut visiting = Vec::new();
    for (name, _) in tables {
        visit(
            &name.to_ascii_lowercase(),
            &parents,
            &mut visiting,
            &mut rank,
        );
    }
    rank
}

fn visit(
    name: &str,
    parents: &HashMap<String, Vec<String>>,
    visiting: &mut Vec<String>,
    rank: &mut HashMap<String, usize>,
) {
    if rank.contains_key(name) || visiting.iter().any(|v| v == name) {
        return;
    }
    visiting.push(name.to_owned());
    for parent in parents.get(name).into_iter().flatten() {
        visit(parent, parents, visiting, rank);
    }
    visiting.pop();
    let next = rank.len();
    rank.insert(name.to_owned(), next);
}

/// The tables each table's foreign keys reference, read by SQLite from the `CREATE TABLE`s
/// (lower-cased names; self-references left out).
fn references(tables: &[(String, String)]) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    let Ok(conn) = rusqlite::Connection::open_in_memory() else {
        return out;
    };
    for (_, sql) in tables {
        let _ = conn.execute_batch(sql);
    }
    for (name, _) in tables {
        let parents: Vec<String> = conn
            .prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")
            .and_then(|mut s| {
                s.query_map([name], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.to_ascii_lowercase())
            .filter(|p| *p != name.to_ascii_lowercase())
            .collect();
        out.insert(name.to_ascii_lowercase(), parents);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(dump: &str, exclude: &[&str]) -> Staged {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let exclude: Vec<String> = exclude.iter().map(|e| (*e).to_owned()).collect();
        let options = StageOptions {
            exclude: &exclude,
            limit: crate::dump::D1_STATEMENT_LIMIT,
        };
        stage(dump.as_bytes(), dir.path(), "t", &options).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_excluded_table_goes_with_everything_of_its_own() {
        let dump = "PRAGMA defer_foreign_keys=TRUE;\n\
                    CREATE TABLE docs (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);\n\
                    INSERT INTO \"docs\" (\"id\",\"body\") VALUES(1,'a');\n\
                    CREATE TABLE keep (a);\n\
                    INSERT INTO \"keep\" (\"a\") VALUES(1);\n\
                    CREATE VIRTUAL TABLE f USING fts5(v);\n\
                    INSERT INTO \"f\" (\"v\") VALUES('x');\n\
                    INSERT INTO \"f\" (\"v\") VALUES('y');\n\
                    DELETE FROM sqlite_sequence;\n\
                    INSERT INTO \"sqlite_sequence\" (\"name\",\"seq\") VALUES('docs',1);\n\
                    CREATE INDEX docs_body ON docs(body);\n\
                    CREATE TRIGGER docs_t AFTER INSERT ON docs BEGIN SELECT 1; END;";
        let staged = staged(dump, &["DOCS", "f"]);
        assert!(staged.refusal().is_none());
        let excluded: Vec<(&str, &str, Option<u64>)> = staged
            .excluded
            .iter()
            .map(|e| (e.kind.as_str(), e.name.as_str(), e.rows))
            .collect();
        assert_eq!(
            excluded,
            [
                ("index", "docs_body", None),
                ("row", "sqlite_sequence: docs", None),
                ("table", "docs", Some(1)),
                ("trigger", "docs_t", None),
                ("virtual table", "f", Some(2)),
            ]
        );
        // Kept: the table `keep`, its row; no sqlite_sequence statement (no table kept needs it).
        assert_eq!(staged.report.statements, 2, "{:?}", staged.report);
        assert_eq!(staged.report.tables.get("keep"), Some(&1));
    }

    #[test]
    fn every_refused_name_is_collected_and_unknown_exclusions_named() {
        let dump = "CREATE TABLE \"_CF_upper\" (a);\nINSERT INTO \"_CF_upper\" (\"a\") VALUES(1);\n\
                    CREATE TABLE ok (a);\nCREATE INDEX i ON \"_CF_upper\"(a);\nCREATE TABLE _cf_x (b);";
        let staged = staged(dump, &[]);
        let refused: Vec<(u64, &str)> = staged
            .refused
            .iter()
            .map(|r| (r.line, r.kind.as_str()))
            .collect();
        assert_eq!(refused, [(1, "table"), (4, "index"), (5, "table")]);
        let message = staged.refusal().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("leave out _CF_upper, _cf_x"), "{message}");
        let unknown = staged_names(dump);
        assert!(
            unknown.contains("nope") && unknown.contains("ok"),
            "{unknown}"
        );
    }

    fn staged_names(dump: &str) -> String {
        staged(dump, &["nope", "_CF_upper", "_cf_x"])
            .refusal()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }
}
