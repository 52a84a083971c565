//! Which tables D1's export wrote lossily, found while the dump streams past.
//!
//! D1's export (and `wrangler d1 export`) writes some values in a form that does not restore
//! them: [`DefectScanner`] reads a dump chunk by chunk, as it goes to the sink, and names every
//! table with at least one row whose text shows such a form ([`DefectKind`]), with the first
//! line of each kind. `auto` exports use it to re-read exactly those tables online.
//!
//! The scanner is a push lexer (quotes, names, `--` and `/* */` comments, triggers whose
//! statements end only at `END;`, as `sqlite3_complete` splits a dump) feeding a parser of
//! the two statements that matter: `CREATE TABLE`, whose declared column types give each
//! column's affinity, and `INSERT INTO "t" (…) VALUES(…)`, whose values are judged by the
//! affinity of their column. It holds one `CREATE TABLE`'s tokens and one token of at most
//! 4 KiB, never a row and never the dump, so memory is bounded by the schema.
//! ([`DumpStatements`](super::DumpStatements) is not reused: it pulls from a reader, keeps a
//! whole statement as a `String` and stops at the first NUL or invalid UTF-8, where this
//! must be pushed chunks, keep nothing of a row and read on past a defect.)
//!
//! # What can and cannot be seen in the text
//!
//! A dump's text cannot tell every lossy value from a lossless one, so some kinds are
//! *possible* defects: a false positive costs a table re-read online, a false negative loses
//! data, so the scanner flags wherever the text is ambiguous. Each kind's documentation says
//! when it is certain and when it may be a false positive. What no text can show:
//!
//! - a REAL `-0.0` in a REAL column, written `0`: it restores as REAL `0.0`, so only the
//!   sign of zero is lost; it is not flagged (SQLite compares `-0.0 = 0.0`, and the fixtures
//!   call such columns lossless);
//! - a REAL whose column is declared REAL, INTEGER or NUMERIC and that D1 wrote as an integer
//!   (`1.0` as `1`): these come back exactly because of the column's affinity (REAL turns
//!   the integer back into a REAL; INTEGER and NUMERIC had already stored it as an integer),
//!   so there is nothing to flag.
//!
//! A table whose `CREATE TABLE` was not in the dump before its rows (a `--table` dump of rows
//! only, `sqlite_sequence`) has unknown columns: they are judged as if they had no affinity,
//! the most cautious reading, except `sqlite_` tables, whose integers are SQLite's own.
//!
//! # Throughput
//!
//! Measured once by hand, not a test (a benchmark, 2026-12-06, on the 2 shared cores of the
//! build machine at a load average of about 4): a 200 MiB dump from the benchmark's
//! generator (`users`, `events` with JSON, `attachments` with hex blobs), fed in 64 KiB
//! chunks, scanned at 146–176 MiB/s over three runs (1.14–1.37 s). To reproduce:
//!
//! ```text
//! (cd bench/server && cargo build --release)
//! target/release/d1-bench-server gen --size 200MiB --out /tmp/dump.sql
//! cargo bench -p d1-backup-core --bench defects -- /tmp/dump.sql
//! ```

mod lex;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::{Stream, StreamExt};

use self::lex::{Kind, Lexer, Tok};
use super::value::Affinity;

/// One way a row's text shows that D1 wrote a value lossily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DefectKind {
    /// An integral number of magnitude from 2^53 to 2^63, in a column not declared REAL:
    /// `9007199254740992`, `9223372036854776000`, `-9.2e18`. D1 passes integers through a
    /// JavaScript number, so any integer beyond ±2^53 comes out rounded (and ±2^63 comes back
    /// as a REAL). A false positive when the value really was 2^53 exactly, or a REAL of that
    /// size in a column without REAL affinity.
    LargeInteger,
    /// An integer literal in a column with no affinity (no declared type, `BLOB`, `ANY` in a
    /// STRICT table, or a table whose `CREATE TABLE` the dump did not show): D1 writes REAL
    /// `1.0` as `1` and `-0.0` as `0`, and such a column restores them as INTEGER. A false
    /// positive for every integer that really was one: the text cannot tell them apart.
    IntegerForReal,
    /// A bare `Infinity`, `-Infinity` or `NaN` where a value belongs (older exports wrote a
    /// non-finite REAL so): it is not SQL, so the row does not restore. Today's `9e999` form
    /// restores as infinity and is not flagged.
    NonFinite,
    /// Any other bare word, or a number that does not parse, where a value belongs: the scanner
    /// does not know what D1 meant, so it flags rather than guesses.
    Unrecognized,
    /// A text value written as `replace('…\n…','\n',char(10))` (or with `'\r',char(13)`):
    /// D1 writes each line feed as the two characters `\n`, so text that held both a line feed
    /// and a backslash followed by `n` (JSON with an escaped newline) comes back with the
    /// backslash-n turned into a line feed too. Both spellings are the same two characters in
    /// the export, so every wrapped value is flagged: a false positive for each table with
    /// multi-line text that never held a backslash-n.
    NewlineEscape,
    /// U+FFFD in a text literal: D1 writes invalid UTF-8 so. A false positive when the text
    /// really held U+FFFD.
    ReplacementCharacter,
    /// A NUL byte: SQLite's reader stops there, so nothing after it restores. Flagged on the
    /// table whose `INSERT` holds it (or outside any table); the scan reads on past it.
    Nul,
}

/// The defects of one table: each kind with the first line it was seen on (1-based).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDefects {
    kinds: BTreeMap<DefectKind, u64>,
}

impl TableDefects {
    /// Each kind seen, with the line of the first statement that showed it, in kind order.
    pub fn kinds(&self) -> impl Iterator<Item = (DefectKind, u64)> + '_ {
        self.kinds.iter().map(|(kind, line)| (*kind, *line))
    }

    /// The first line any defect was seen on.
    pub fn first_line(&self) -> u64 {
        self.kinds.values().copied().min().unwrap_or(0)
    }

    /// Whether `kind` was seen.
    pub fn has(&self, kind: DefectKind) -> bool {
        self.kinds.contains_key(&kind)
    }

    fn add(&mut self, kind: DefectKind, line: u64) {
        self.kinds.entry(kind).or_insert(line);
    }
}

/// What [`DefectScanner::finish`] found: the tables with defects, and those outside any
/// table's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defects {
    tables: BTreeMap<String, TableDefects>,
    outside: TableDefects,
}

impl Defects {
    /// The names of the tables with at least one defect, in name order (as `INSERT INTO`
    /// names them, unquoted).
    pub fn tables(&self) -> impl Iterator<Item = &str> + '_ {
        self.tables.keys().map(String::as_str)
    }

    /// The defects of `table`, if it has any.
    pub fn table(&self, table: &str) -> Option<&TableDefects> {
        self.tables.get(table)
    }

    /// Defects outside any `INSERT` (a NUL byte in the schema, say): no table can be named, so
    /// a caller that must be exact re-reads the whole database.
    pub fn outside_rows(&self) -> &TableDefects {
        &self.outside
    }

    /// No defect anywhere.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.outside.kinds.is_empty()
    }
}

/// A column's affinity, or none known (judged as [`Affinity::Blob`]).
type Columns = Vec<(String, Affinity)>;

/// Where the parser is within the current statement.
enum Stmt {
    /// Before the first token.
    Start,
    /// `CREATE …`: its tokens so far (`None` once past the cap: the table stays unknown).
    Create(Option<Vec<(Kind, Vec<u8>)>>),
    /// `CREATE TRIGGER`: ends only at `END;`; `end` is whether the last token was `END`.
    Trigger { end: bool },
    /// `INSERT …`.
    Insert(Insert),
    /// Anything else, up to its `;`.
    Other,
}

/// The most tokens of one `CREATE` statement kept (SQLite's default limit of 2,000 columns
/// needs about 10,000), and the most bytes kept of each: at most 5 MiB. A longer statement
/// leaves its table unknown, and a longer name matches no column, both judged cautiously.
const CREATE_TOKENS: usize = 20_000;
const CREATE_TOKEN_BYTES: usize = 256;

/// An `INSERT` statement being read.
struct Insert {
    phase: Phase,
    table: Option<String>,
    names: Vec<String>,
    /// The affinity of each value's column, resolved at `VALUES`.
    affinities: Vec<Affinity>,
    /// The table is one of SQLite's own (`sqlite_sequence`, `sqlite_stat1`).
    internal: bool,
    /// Parenthesis depth inside `VALUES`; 1 is a row's value list.
    depth: u32,
    column: usize,
}

#[derive(PartialEq, Eq)]
enum Phase {
    /// `INSERT [OR …]`, up to `INTO`.
    Head,
    /// After `INTO` (or a schema name and `.`): the table's name.
    Name,
    /// After the name: `(` columns `)` or `VALUES`.
    AfterName,
    Columns,
    /// After the column list, before `VALUES`.
    BeforeValues,
    Values,
}

/// A streaming detector of D1 export defects: [`feed`](Self::feed) it the dump's bytes in
/// chunks split anywhere, then [`finish`](Self::finish).
///
/// ```
/// use d1_backup_core::{DefectKind, DefectScanner};
///
/// let mut scanner = DefectScanner::new();
/// scanner.feed(b"PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER);\n");
/// scanner.feed(b"INSERT INTO \"t\" (\"id\",\"v\") VALUES(1,92233720368547");
/// scanner.feed(b"76000);");
/// let defects = scanner.finish();
/// assert_eq!(defects.tables().collect::<Vec<_>>(), ["t"]);
/// assert_eq!(defects.table("t").map(|t| t.first_line()), Some(3));
/// assert!(defects.table("t").is_some_and(|t| t.has(DefectKind::LargeInteger)));
/// ```
pub struct DefectScanner {
    lexer: Lexer,
    stmt: Stmt,
    /// The line the current statement started on (0 before its first token).
    stmt_line: u64,
    /// The line being read, 1-based.
    line: u64,
    /// Columns of each table whose `CREATE TABLE` went past, by name in ASCII lower case
    /// (SQLite's names ignore ASCII case).
    schema: HashMap<String, Columns>,
    found: Defects,
}

impl Default for DefectScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for DefectScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefectScanner")
            .field("line", &self.line)
            .field("found", &self.found)
            .finish_non_exhaustive()
    }
}

impl DefectScanner {
    /// A scanner at the start of a dump.
    pub fn new() -> Self {
        Self {
            lexer: Lexer::new(),
            stmt: Stmt::Start,
            stmt_line: 0,
            line: 1,
            schema: HashMap::new(),
            found: Defects::default(),
        }
    }

    /// Reads the next bytes of the dump.
    pub fn feed(&mut self, chunk: &[u8]) {
        let Self {
            lexer,
            stmt,
            stmt_line,
            line,
            schema,
            found,
        } = self;
        let mut parser = Parser {
            stmt,
            stmt_line,
            line: *line,
            schema,
            found,
        };
        for &b in chunk {
            if b == 0 {
                // SQLite stops here; the scanner reads on as if it were any byte, so the
                // rest of the dump still lexes as it would have.
                parser.nul();
            }
            lexer.byte(b, &mut |tok| parser.token(&tok));
            if b == b'\n' {
                parser.line += 1;
            }
        }
        *line = parser.line;
    }

    /// How many bytes of the current token the lexer holds.
    #[cfg(test)]
    fn lexer_kept(&self) -> usize {
        self.lexer.kept()
    }

    /// The end of the dump: what was found.
    pub fn finish(mut self) -> Defects {
        let Self {
            lexer,
            stmt,
            stmt_line,
            line,
            schema,
            found,
        } = &mut self;
        let mut parser = Parser {
            stmt,
            stmt_line,
            line: *line,
            schema,
            found,
        };
        lexer.finish(&mut |tok| parser.token(&tok));
        std::mem::take(&mut self.found)
    }
}

/// The scanner's state but the lexer, borrowed for one chunk.
struct Parser<'a> {
    stmt: &'a mut Stmt,
    stmt_line: &'a mut u64,
    line: u64,
    schema: &'a mut HashMap<String, Columns>,
    found: &'a mut Defects,
}

impl Parser<'_> {
    fn flag(&mut self, kind: DefectKind) {
        let line = *self.stmt_line;
        let table = match self.stmt {
            Stmt::Insert(Insert {
                table: Some(table), ..
            }) => self.found.tables.entry(table.clone()).or_default(),
            _ => &mut self.found.outside,
        };
        table.add(kind, line);
    }

    fn nul(&mut self) {
        if *self.stmt_line == 0 {
            *self.stmt_line = self.line;
        }
        self.flag(DefectKind::Nul);
    }

    fn token(&mut self, tok: &Tok<'_>) {
        if matches!(self.stmt, Stmt::Start) {
            if tok.kind == Kind::Punct(b';') {
                return;
            }
            *self.stmt_line = self.line;
        }
        if tok.kind == Kind::Punct(b';') && !matches!(self.stmt, Stmt::Trigger { end: false }) {
            self.end_statement();
            return;
        }
        match self.stmt {
            Stmt::Start => *self.stmt = start(tok),
            Stmt::Create(tokens) => {
                let trigger = tokens.as_ref().is_some_and(|t| {
                    t.len() <= 2
                        && tok.kind == Kind::Word
                        && tok.text.eq_ignore_ascii_case(b"TRIGGER")
                });
                if trigger {
                    *self.stmt = Stmt::Trigger { end: false };
                } else if let Some(t) = tokens {
                    if t.len() < CREATE_TOKENS {
                        let kept = tok.text.len().min(CREATE_TOKEN_BYTES);
                        t.push((tok.kind, tok.text[..kept].to_vec()));
                    } else {
                        *tokens = None;
                    }
                }
            }
            Stmt::Trigger { end } => {
                *end = tok.kind == Kind::Word && tok.text.eq_ignore_ascii_case(b"END");
            }
            Stmt::Insert(_) => self.insert_token(tok),
            Stmt::Other => {}
        }
    }

    fn end_statement(&mut self) {
        if let Stmt::Create(Some(tokens)) = std::mem::replace(self.stmt, Stmt::Start)
            && let Some((name, columns)) = create_table(&tokens)
        {
            self.schema.insert(name.to_ascii_lowercase(), columns);
        }
        *self.stmt = Stmt::Start;
        *self.stmt_line = 0;
    }

    fn insert_token(&mut self, tok: &Tok<'_>) {
        let Stmt::Insert(insert) = self.stmt else {
            return;
        };
        match insert.phase {
            // `INSERT [OR …] INTO` and `REPLACE INTO`: the name follows `INTO`.
            Phase::Head => {
                if is_word(tok, b"INTO") {
                    insert.phase = Phase::Name;
                }
            }
            Phase::Name if is_name(tok) => {
                insert.internal = starts_with_ignore_case(tok.text, b"sqlite_");
                insert.table = Some(String::from_utf8_lossy(tok.text).into_owned());
                insert.phase = Phase::AfterName;
            }
            Phase::AfterName => match tok.kind {
                Kind::Punct(b'(') => insert.phase = Phase::Columns,
                Kind::Punct(b'.') => insert.phase = Phase::Name,
                _ if is_word(tok, b"VALUES") => self.start_values(),
                _ => *self.stmt = Stmt::Other,
            },
            Phase::Columns => match tok.kind {
                Kind::Punct(b')') => insert.phase = Phase::BeforeValues,
                Kind::Punct(_) => {}
                _ => insert
                    .names
                    .push(String::from_utf8_lossy(tok.text).into_owned()),
            },
            Phase::BeforeValues if is_word(tok, b"VALUES") => self.start_values(),
            Phase::Name | Phase::BeforeValues => *self.stmt = Stmt::Other,
            Phase::Values => self.value_token(tok),
        }
    }

    fn start_values(&mut self) {
        let Stmt::Insert(insert) = self.stmt else {
            return;
        };
        let columns = insert
            .table
            .as_ref()
            .and_then(|t| self.schema.get(&t.to_ascii_lowercase()));
        insert.affinities = match columns {
            Some(columns) if insert.names.is_empty() => columns.iter().map(|c| c.1).collect(),
            Some(columns) => insert
                .names
                .iter()
                .map(|n| {
                    columns
                        .iter()
                        .find(|c| c.0.eq_ignore_ascii_case(n))
                        .map_or(Affinity::Blob, |c| c.1)
                })
                .collect(),
            None => Vec::new(),
        };
        insert.phase = Phase::Values;
    }

    fn value_token(&mut self, tok: &Tok<'_>) {
        let Stmt::Insert(insert) = self.stmt else {
            return;
        };
        let top = insert.depth == 1;
        let affinity = insert
            .affinities
            .get(insert.column)
            .copied()
            .unwrap_or(Affinity::Blob);
        let internal = insert.internal;
        let kind = match tok.kind {
            Kind::Punct(b'(') => {
                insert.depth += 1;
                None
            }
            Kind::Punct(b')') => {
                insert.depth = insert.depth.saturating_sub(1);
                None
            }
            Kind::Punct(b',') if insert.depth <= 1 => {
                insert.column = if top { insert.column + 1 } else { 0 };
                None
            }
            Kind::Str(s) if s.replacement => Some(DefectKind::ReplacementCharacter),
            Kind::Number if top => number(tok, affinity, internal),
            Kind::Word if top => word(tok),
            _ => None,
        };
        if let Some(kind) = kind {
            self.flag(kind);
        }
    }
}

/// The statement a first token starts.
fn start(tok: &Tok<'_>) -> Stmt {
    if is_word(tok, b"CREATE") {
        Stmt::Create(Some(Vec::new()))
    } else if is_word(tok, b"INSERT") || is_word(tok, b"REPLACE") {
        Stmt::Insert(Insert {
            phase: Phase::Head,
            table: None,
            names: Vec::new(),
            affinities: Vec::new(),
            internal: false,
            depth: 0,
            column: 0,
        })
    } else {
        Stmt::Other
    }
}

fn is_word(tok: &Tok<'_>, word: &[u8]) -> bool {
    tok.kind == Kind::Word && tok.text.eq_ignore_ascii_case(word)
}

fn is_name(tok: &Tok<'_>) -> bool {
    matches!(tok.kind, Kind::Word | Kind::Name | Kind::Str(_))
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// 2^53: above it, not every integer is a double.
const EXACT: f64 = 9_007_199_254_740_992.0;
/// 2^63: the largest magnitude D1 can have rounded an integer to.
const INT64: f64 = 9_223_372_036_854_775_808.0;

/// The defect a number in a column of `affinity` shows, if any.
fn number(tok: &Tok<'_>, affinity: Affinity, internal: bool) -> Option<DefectKind> {
    if affinity == Affinity::Real {
        return None;
    }
    let digits = tok.text.iter().all(u8::is_ascii_digit);
    let value = std::str::from_utf8(tok.text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok());
    let Some(value) = value.filter(|_| !tok.truncated) else {
        return Some(DefectKind::Unrecognized);
    };
    if value.fract() == 0.0 && (EXACT..=INT64).contains(&value) {
        Some(DefectKind::LargeInteger)
    } else if digits
        && value < INT64
        && !internal
        && matches!(affinity, Affinity::Blob | Affinity::Text)
    {
        Some(DefectKind::IntegerForReal)
    } else {
        None
    }
}

/// The defect a bare word where a value belongs shows, if any.
fn word(tok: &Tok<'_>) -> Option<DefectKind> {
    let text = tok.text;
    if text.eq_ignore_ascii_case(b"NULL") || text.eq_ignore_ascii_case(b"X") {
        None
    } else if text.eq_ignore_ascii_case(b"replace") {
        Some(DefectKind::NewlineEscape)
    } else if text.eq_ignore_ascii_case(b"Infinity")
        || text.eq_ignore_ascii_case(b"NaN")
        || text.eq_ignore_ascii_case(b"Inf")
    {
        Some(DefectKind::NonFinite)
    } else {
        Some(DefectKind::Unrecognized)
    }
}

/// Words that end a column's declared type.
const CONSTRAINTS: [&[u8]; 11] = [
    b"CONSTRAINT",
    b"PRIMARY",
    b"NOT",
    b"NULL",
    b"UNIQUE",
    b"CHECK",
    b"DEFAULT",
    b"COLLATE",
    b"REFERENCES",
    b"GENERATED",
    b"AS",
];

/// Words that start a table constraint rather than a column.
const TABLE_CONSTRAINTS: [&[u8]; 5] = [b"CONSTRAINT", b"PRIMARY", b"UNIQUE", b"CHECK", b"FOREIGN"];

/// The table and its columns' affinities, from a `CREATE TABLE` statement's tokens (the
/// `CREATE` itself not included); `None` for any other `CREATE`.
fn create_table(tokens: &[(Kind, Vec<u8>)]) -> Option<(String, Columns)> {
    let word = |i: usize, w: &[u8]| {
        tokens
            .get(i)
            .is_some_and(|(k, t)| *k == Kind::Word && t.eq_ignore_ascii_case(w))
    };
    let mut i = usize::from(word(0, b"TEMP") || word(0, b"TEMPORARY"));
    if !word(i, b"TABLE") {
        return None;
    }
    i += 1;
    if word(i, b"IF") {
        i += 3;
    }
    let mut name = &tokens.get(i)?.1;
    if tokens.get(i + 1).is_some_and(|t| t.0 == Kind::Punct(b'.')) {
        i += 2;
        name = &tokens.get(i)?.1;
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let body = tokens.get(i + 1..)?;
    if body.first()?.0 != Kind::Punct(b'(') {
        return None;
    }
    // Split the body at its top-level commas; what follows the closing parenthesis holds
    // the table options (`STRICT`).
    let mut defs: Vec<&[(Kind, Vec<u8>)]> = Vec::new();
    let (mut depth, mut start, mut end) = (0u32, 1usize, body.len());
    for (j, (kind, _)) in body.iter().enumerate() {
        match kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    defs.push(&body[start..j]);
                    end = j + 1;
                    break;
                }
            }
            Kind::Punct(b',') if depth == 1 => {
                defs.push(&body[start..j]);
                start = j + 1;
            }
            _ => {}
        }
    }
    let strict = body[end.min(body.len())..]
        .iter()
        .any(|(k, t)| *k == Kind::Word && t.eq_ignore_ascii_case(b"STRICT"));
    let columns = defs
        .into_iter()
        .filter_map(|def| column(def, strict))
        .collect();
    Some((name, columns))
}

/// A column definition's name and affinity; `None` for a table constraint.
fn column(def: &[(Kind, Vec<u8>)], strict: bool) -> Option<(String, Affinity)> {
    let ((kind, name), rest) = def.split_first()?;
    if *kind == Kind::Word
        && TABLE_CONSTRAINTS
            .iter()
            .any(|w| name.eq_ignore_ascii_case(w))
    {
        return None;
    }
    let mut declared = String::new();
    for (kind, text) in rest {
        let stop = *kind != Kind::Word || CONSTRAINTS.iter().any(|w| text.eq_ignore_ascii_case(w));
        if stop {
            break;
        }
        if !declared.is_empty() {
            declared.push(' ');
        }
        declared.push_str(&String::from_utf8_lossy(text));
    }
    Some((
        String::from_utf8_lossy(name).into_owned(),
        Affinity::of(&declared, strict),
    ))
}

/// A [`DefectScanner`] shared between a body stream that feeds it and the caller that reads
/// the result once the upload is over.
///
/// Each clone is the same scanner. A body that is streamed twice (an upload retried from the
/// start) needs a fresh `SharedScanner` per attempt, or the dump is scanned twice (which finds
/// the same tables, with the same lines).
#[derive(Clone, Debug, Default)]
pub struct SharedScanner {
    inner: Arc<Mutex<DefectScanner>>,
}

impl SharedScanner {
    /// A scanner at the start of a dump.
    pub fn new() -> Self {
        Self::default()
    }

    /// `body` unchanged, with every chunk fed to the scanner as it passes (errors pass
    /// untouched). The type fits `r2_sink::ByteStream` once boxed.
    pub fn inspect<S>(&self, body: S) -> impl Stream<Item = io::Result<Bytes>> + Send + use<S>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        body.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                inner
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .feed(chunk);
            }
        })
    }

    /// What was found in everything that passed, leaving a fresh scanner behind.
    pub fn finish(&self) -> Defects {
        let scanner =
            std::mem::take(&mut *self.inner.lock().unwrap_or_else(PoisonError::into_inner));
        scanner.finish()
    }
}

#[cfg(test)]
mod tests;
