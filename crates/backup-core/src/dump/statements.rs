//! Splitting a dump into statements, a line at a time, with the tokenizer of SQLite's own
//! `sqlite3_complete`: a `;` ends a statement only outside quotes and comments, and in a
//! `CREATE TRIGGER` only the `;` after its final `END` (the body holds `;` of its own, and a
//! `CASE … END;` inside the body does not end it). Needs no SQLite: the restore into SQLite
//! (`crate::restore`) and the import into D1 (`crate::restore_backup`) both read through it.

use std::collections::VecDeque;
use std::io::BufRead;

use super::error::{RestoreError, snippet};

/// The longest statement read: SQLite's own default `SQLITE_MAX_SQL_LENGTH`. A longer one means
/// an unclosed quote swallowed the rest of the dump, and stopping there bounds memory.
const MAX_STATEMENT: usize = 1_000_000_000;

/// The most read at once when a line is long: a dump written on one line (or one endless
/// line) is still read, and its statements returned, piece by piece.
const CHUNK: usize = 64 * 1024;

/// The statements of a dump, read one at a time: D1's and wrangler's exports, or a sqlite3
/// `.dump` file.
///
/// Each item is `(line, statement)`: the line the statement starts on (from 1) and its text
/// from its first token to its final `;` (comments and whitespace between statements are left
/// out; those inside a statement, e.g. in stored `CREATE TABLE` text, are kept). Memory is
/// bounded by the longest statement. Accepted: LF or CRLF line endings, a UTF-8 BOM at the
/// start, several statements on one line, a last statement without a newline.
///
/// Errors end the iteration: [`RestoreError::Read`] when reading fails,
/// [`RestoreError::Truncated`] when the dump ends inside a statement (or without the final
/// `;`), [`RestoreError::Malformed`] for text that is not UTF-8. An importer that sends the
/// statements elsewhere (D1's import refuses `BEGIN`/`COMMIT`) reads them through
/// [`without_transaction`](Self::without_transaction), as the restore into SQLite
/// (`restore_dump`, feature `sqlite`) does.
#[derive(Debug)]
pub struct DumpStatements<R> {
    reader: R,
    /// Line breaks read so far: the line being read is `newlines + 1`.
    newlines: u64,
    /// Bytes were read after the last line break.
    partial: bool,
    /// The unfinished statement's bytes (and whitespace or comments before it).
    buf: Vec<u8>,
    /// How far `buf` has been scanned.
    scanned: usize,
    /// `buf[..dead]` is taken or skipped; it is dropped once per chunk, not once per
    /// statement, so a line of many short statements costs linear time, not quadratic.
    dead: usize,
    scanner: Scanner,
    /// Statements complete but not yet returned (one line can hold several).
    ready: VecDeque<Statement>,
    /// The error that ended reading, returned after the statements in `ready` that came
    /// before it.
    failed: Option<RestoreError>,
    /// Nothing more is read: the reader is exhausted, reading failed, or an error was
    /// returned.
    done: bool,
    /// Leave out `BEGIN`/`COMMIT`/`END`, refuse `ROLLBACK`.
    without_transaction: bool,
    /// Transaction statements left out.
    skipped: u64,
}

/// A statement with what the restore needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) line: u64,
    pub(crate) sql: String,
    pub(crate) kind: Kind,
}

/// What a statement is, from its first keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `CREATE [TEMP|UNIQUE] INDEX|VIEW|TRIGGER`: may name an object the dump creates later.
    Object,
    /// `INSERT` or `REPLACE`.
    Insert,
    /// `BEGIN`, `COMMIT` or `END`.
    Transaction,
    /// `ROLLBACK`: sqlite3 `.dump` writes it instead of `COMMIT` when reading the database failed.
    Rollback,
    /// Anything else.
    Other,
}

impl<R: BufRead> DumpStatements<R> {
    /// Statements of the dump read from `reader`, every one of them.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            newlines: 0,
            partial: false,
            buf: Vec::new(),
            scanned: 0,
            dead: 0,
            scanner: Scanner::default(),
            ready: VecDeque::new(),
            failed: None,
            done: false,
            without_transaction: false,
            skipped: 0,
        }
    }

    /// Leaves out the transaction framing of a sqlite3 `.dump` file (`BEGIN TRANSACTION;`,
    /// `COMMIT;`, `END;`), for a caller that runs the dump in its own transaction (D1's import
    /// refuses them), and turns a `ROLLBACK` (sqlite3 `.dump`'s mark of a failed dump) into a
    /// [`RestoreError::Malformed`] error.
    #[must_use]
    pub fn without_transaction(mut self) -> Self {
        self.without_transaction = true;
        self
    }

    /// Lines read so far (a last line without a line break counts).
    pub fn lines(&self) -> u64 {
        self.newlines + u64::from(self.partial)
    }

    /// Transaction statements left out so far (see [`without_transaction`](Self::without_transaction)).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next statement, with its kind.
    pub(crate) fn next_statement(&mut self) -> Option<Result<Statement, RestoreError>> {
        let result = self.next_inner();
        if matches!(result, Some(Err(_))) {
            self.done = true;
            self.ready.clear();
            self.failed = None;
        }
        result
    }

    fn next_inner(&mut self) -> Option<Result<Statement, RestoreError>> {
        loop {
            if let Some(statement) = self.ready.pop_front() {
                match statement.kind {
                    Kind::Transaction if self.without_transaction => self.skipped += 1,
                    Kind::Rollback if self.without_transaction => {
                        return Some(Err(RestoreError::Malformed {
                            line: statement.line,
                            message: "the dump ends in ROLLBACK, which sqlite3 .dump writes when \
                                      it could not read the whole database: it is incomplete"
                                .to_owned(),
                            snippet: snippet(&statement.sql),
                        }));
                    }
                    _ => return Some(Ok(statement)),
                }
                continue;
            }
            if self.done {
                return self.failed.take().map(Err);
            }
            if let Err(e) = self.read_chunk() {
                self.done = true;
                self.failed = Some(e);
            }
        }
    }

    /// Reads the rest of a line (at most [`CHUNK`] bytes of it) and scans it; complete
    /// statements go to `ready`.
    fn read_chunk(&mut self) -> Result<(), RestoreError> {
        let available = self.reader.fill_buf()?;
        if available.is_empty() {
            self.done = true;
            return self.finish();
        }
        let available = &available[..available.len().min(CHUNK)];
        let (len, newline) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let first = self.newlines == 0 && !self.partial;
        self.buf.extend_from_slice(&available[..len]);
        self.reader.consume(len);
        if first && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
        }
        self.scan()?;
        if newline {
            self.newlines += 1;
        }
        self.partial = !newline;
        if self.buf.len() > MAX_STATEMENT {
            return Err(RestoreError::Malformed {
                line: self.scanner.start_line,
                message: format!(
                    "a statement longer than {MAX_STATEMENT} bytes (SQLite's limit): \
                     probably an unclosed quote"
                ),
                snippet: snippet(&String::from_utf8_lossy(&self.buf[..200])),
            });
        }
        Ok(())
    }

    fn scan(&mut self) -> Result<(), RestoreError> {
        while self.scanned < self.buf.len() {
            let i = self.scanned;
            self.scanned += 1;
            match self.scanner.byte(self.buf[i], i, self.newlines + 1) {
                Step::More => {}
                Step::Empty => self.dead = i + 1,
                Step::Complete(start) => {
                    let statement = self.take(start, i)?;
                    self.ready.push_back(statement);
                }
            }
        }
        // Whitespace and comments between statements are not kept.
        if self.scanner.start.is_none() && self.scanner.lex == Lex::Code {
            self.buf.clear();
            self.scanned = 0;
        } else if self.dead > 0 {
            self.buf.drain(..self.dead);
            self.scanned -= self.dead;
            self.scanner.shift(self.dead);
        }
        self.dead = 0;
        Ok(())
    }

    /// Copies the statement `buf[start..=end]` out of the buffer, which drops it later.
    fn take(&mut self, start: usize, end: usize) -> Result<Statement, RestoreError> {
        let line = self.scanner.start_line;
        let kind = self.scanner.kind();
        self.scanner.reset();
        self.dead = end + 1;
        let bytes = &self.buf[start..=end];
        let sql = std::str::from_utf8(bytes)
            .map_err(|_| RestoreError::Malformed {
                line,
                message: "the statement is not valid UTF-8".to_owned(),
                snippet: snippet(&String::from_utf8_lossy(bytes)),
            })?
            .to_owned();
        Ok(Statement { line, sql, kind })
    }

    /// At the end of the input: a statement still open means the dump was cut short.
    fn finish(&mut self) -> Result<(), RestoreError> {
        self.scanner.end(self.buf.len());
        match self.scanner.start {
            None => Ok(()),
            Some(start) => Err(RestoreError::Truncated {
                line: self.scanner.start_line,
                snippet: snippet(&String::from_utf8_lossy(
                    &self.buf[start.min(self.buf.len())..],
                )),
            }),
        }
    }
}

impl<R: BufRead> Iterator for DumpStatements<R> {
    type Item = Result<(u64, String), RestoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_statement()
            .map(|r| r.map(|statement| (statement.line, statement.sql)))
    }
}

/// Where the lexer is inside the current token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Lex {
    #[default]
    Code,
    /// Inside an identifier or keyword that started at this index.
    Word(usize),
    /// After a `-` at this index (a comment if another `-` follows).
    Dash(usize),
    /// After a `/` at this index (a comment if `*` follows).
    Slash(usize),
    /// Inside a quoted string or identifier closed by this byte.
    Quoted(u8),
    /// Just after the closing quote, which may be the first of a doubled pair.
    QuoteEnd(u8),
    LineComment,
    BlockComment,
    /// Inside a block comment, after a `*`.
    BlockStar,
}

/// The tokens `sqlite3_complete` tells apart. Whitespace and comments change no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Semi = 0,
    Other = 2,
    Explain = 3,
    Create = 4,
    Temp = 5,
    Trigger = 6,
    End = 7,
}

/// `sqlite3_complete`'s state machine (`complete.c`): states INVALID, START, NORMAL, EXPLAIN,
/// CREATE, TRIGGER, SEMI, END by tokens SEMI, WS, OTHER, EXPLAIN, CREATE, TEMP, TRIGGER, END.
/// A statement is complete when a `;` leads to START.
const TRANSITIONS: [[u8; 8]; 8] = [
    [1, 0, 2, 3, 4, 2, 2, 2],
    [1, 1, 2, 3, 4, 2, 2, 2],
    [1, 2, 2, 2, 2, 2, 2, 2],
    [1, 3, 3, 2, 4, 2, 2, 2],
    [1, 4, 2, 2, 2, 4, 5, 2],
    [6, 5, 5, 5, 5, 5, 5, 5],
    [6, 6, 5, 5, 5, 5, 5, 7],
    [1, 7, 5, 5, 5, 5, 5, 5],
];
const START: u8 = 1;

/// What one byte did.
enum Step {
    More,
    /// A lone `;` with nothing before it.
    Empty,
    /// A statement starting at this index ends with this byte.
    Complete(usize),
}

#[derive(Debug, Default)]
struct Scanner {
    lex: Lex,
    state: u8,
    /// The buffer index of the statement's first token.
    start: Option<usize>,
    start_line: u64,
    /// The statement's first three tokens, words upper-cased, others empty.
    head: Vec<String>,
    /// The current word, upper-cased (up to 12 bytes: only keywords matter).
    word: Vec<u8>,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Scanner {
    fn byte(&mut self, b: u8, i: usize, line: u64) -> Step {
        loop {
            match self.lex {
                Lex::Quoted(q) => {
                    if b == q {
                        self.lex = if q == b']' {
                            Lex::Code
                        } else {
                            Lex::QuoteEnd(q)
                        };
                    }
                }
                Lex::QuoteEnd(q) if b == q => self.lex = Lex::Quoted(q),
                Lex::LineComment if b == b'\n' => self.lex = Lex::Code,
                Lex::BlockComment if b == b'*' => self.lex = Lex::BlockStar,
                Lex::LineComment | Lex::BlockComment => {}
                Lex::BlockStar => {
                    self.lex = match b {
                        b'/' => Lex::Code,
                        b'*' => Lex::BlockStar,
                        _ => Lex::BlockComment,
                    };
                }
                Lex::Dash(_) if b == b'-' => self.lex = Lex::LineComment,
                Lex::Slash(_) if b == b'*' => self.lex = Lex::BlockComment,
                Lex::Word(_) if is_word_byte(b) => {
                    if self.word.len() < 12 {
                        self.word.push(b.to_ascii_uppercase());
                    }
                }
                Lex::QuoteEnd(_) | Lex::Dash(_) | Lex::Slash(_) | Lex::Word(_) => {
                    // The token ended before this byte, which is looked at again.
                    self.end_token();
                    continue;
                }
                Lex::Code => return self.code(b, i, line),
            }
            return Step::More;
        }
    }

    /// Ends a pending word, `-` or `/` (a quoted token was counted when it opened).
    fn end_token(&mut self) {
        match std::mem::take(&mut self.lex) {
            Lex::Word(start) => {
                let token = match self.word.as_slice() {
                    b"CREATE" => Token::Create,
                    b"TEMP" | b"TEMPORARY" => Token::Temp,
                    b"TRIGGER" => Token::Trigger,
                    b"END" => Token::End,
                    b"EXPLAIN" => Token::Explain,
                    _ => Token::Other,
                };
                let word = String::from_utf8_lossy(&self.word).into_owned();
                self.word.clear();
                self.token(token, start, word);
            }
            Lex::Dash(start) | Lex::Slash(start) => self.token(Token::Other, start, String::new()),
            _ => {}
        }
    }

    fn code(&mut self, b: u8, i: usize, line: u64) -> Step {
        if self.start.is_none() {
            self.start_line = line;
        }
        match b {
            b';' => {
                self.state = TRANSITIONS[usize::from(self.state)][Token::Semi as usize];
                if self.state != START {
                    return Step::More;
                }
                return match self.start {
                    None => Step::Empty,
                    Some(start) => Step::Complete(start),
                };
            }
            b'-' => self.lex = Lex::Dash(i),
            b'/' => self.lex = Lex::Slash(i),
            b'\'' | b'"' | b'`' | b'[' => {
                self.token(Token::Other, i, String::new());
                self.lex = Lex::Quoted(if b == b'[' { b']' } else { b });
            }
            _ if is_word_byte(b) => {
                self.word.clear();
                self.word.push(b.to_ascii_uppercase());
                self.lex = Lex::Word(i);
            }
            _ if b.is_ascii_whitespace() => {}
            _ => self.token(Token::Other, i, String::new()),
        }
        Step::More
    }

    fn token(&mut self, token: Token, at: usize, word: String) {
        self.start.get_or_insert(at);
        if self.head.len() < 3 {
            self.head.push(word);
        }
        self.state = TRANSITIONS[usize::from(self.state)][token as usize];
    }

    /// At the end of the input.
    fn end(&mut self, len: usize) {
        if matches!(self.lex, Lex::Word(_) | Lex::Dash(_) | Lex::Slash(_)) {
            self.end_token();
        }
        if let Some(start) = self.start {
            self.start = Some(start.min(len));
        }
    }

    fn reset(&mut self) {
        self.start = None;
        self.head.clear();
        self.state = START;
    }

    /// The buffer lost its first `by` bytes: every index held moves down. All of them are
    /// past the last finished statement, so none is below `by`.
    fn shift(&mut self, by: usize) {
        if let Some(start) = &mut self.start {
            *start -= by;
        }
        if let Lex::Word(i) | Lex::Dash(i) | Lex::Slash(i) = &mut self.lex {
            *i -= by;
        }
    }

    fn kind(&self) -> Kind {
        let word = |i: usize| self.head.get(i).map_or("", String::as_str);
        let object = |w: &str| matches!(w, "INDEX" | "VIEW" | "TRIGGER");
        match word(0) {
            "CREATE" if object(word(1)) => Kind::Object,
            "CREATE" if matches!(word(1), "TEMP" | "TEMPORARY" | "UNIQUE") && object(word(2)) => {
                Kind::Object
            }
            "INSERT" | "REPLACE" => Kind::Insert,
            "BEGIN" | "COMMIT" | "END" => Kind::Transaction,
            "ROLLBACK" => Kind::Rollback,
            _ => Kind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An item as text: `<line>: <statement>`, or `error: <message>`.
    fn item_text(item: Result<(u64, String), RestoreError>) -> String {
        match item {
            Ok((line, sql)) => format!("{line}: {sql}"),
            Err(e) => format!("error: {e}"),
        }
    }

    /// Splits `dump` and returns its items as text ([`item_text`]); an error is the last.
    /// The same comes out when the reader hands over 3 bytes at a time.
    fn split(dump: &str) -> Vec<String> {
        let split = |reader: &mut dyn BufRead| -> Vec<String> {
            DumpStatements::new(reader).map(item_text).collect()
        };
        let whole = split(&mut dump.as_bytes());
        let pieces = split(&mut std::io::BufReader::with_capacity(3, dump.as_bytes()));
        assert_eq!(whole, pieces, "{dump}");
        whole
    }

    fn check(dump: &str, expected: &[(u64, &str)]) {
        let expected: Vec<String> = expected
            .iter()
            .map(|(line, sql)| format!("{line}: {sql}"))
            .collect();
        assert_eq!(split(dump), expected, "{dump}");
    }

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        check(
            "PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO \"t\" (\"a\",\"b\") VALUES('x;y','it''s;');",
            &[
                (1, "PRAGMA defer_foreign_keys=TRUE;"),
                (2, "INSERT INTO \"t\" (\"a\",\"b\") VALUES('x;y','it''s;');"),
            ],
        );
        check(
            "INSERT INTO \"a;\"\"b\" VALUES(1);\nINSERT INTO [c;d] VALUES(`e;`);",
            &[
                (1, "INSERT INTO \"a;\"\"b\" VALUES(1);"),
                (2, "INSERT INTO [c;d] VALUES(`e;`);"),
            ],
        );
        check(
            "CREATE TABLE t (\n  a TEXT, -- a comment; with 'quote\n  b /* block; \"x\" -- */ INT\n);",
            &[(
                1,
                "CREATE TABLE t (\n  a TEXT, -- a comment; with 'quote\n  b /* block; \"x\" -- */ INT\n);",
            )],
        );
        check(
            "SELECT 4-2; SELECT 8/2;SELECT -1;",
            &[(1, "SELECT 4-2;"), (1, "SELECT 8/2;"), (1, "SELECT -1;")],
        );
    }

    #[test]
    fn a_trigger_ends_only_after_its_end() {
        let trigger = "CREATE TRIGGER tr AFTER INSERT ON t\nBEGIN\n  UPDATE t SET b = CASE WHEN NEW.a > 0 THEN 'pos;' ELSE 'neg' END;\n  INSERT INTO log VALUES(NEW.a); -- ; END;\nEND;";
        check(
            &format!("{trigger}\nCREATE TEMP TRIGGER t2 BEFORE DELETE ON t BEGIN SELECT 1; END;"),
            &[
                (1, trigger),
                (
                    6,
                    "CREATE TEMP TRIGGER t2 BEFORE DELETE ON t BEGIN SELECT 1; END;",
                ),
            ],
        );
        // A table or column named like a keyword does not open a trigger.
        check(
            "CREATE TABLE \"trigger\" (\"end\");\nINSERT INTO \"trigger\" VALUES('END');",
            &[
                (1, "CREATE TABLE \"trigger\" (\"end\");"),
                (2, "INSERT INTO \"trigger\" VALUES('END');"),
            ],
        );
    }

    #[test]
    fn wranglers_newline_wrappers_stay_whole() {
        let insert =
            r"INSERT INTO t VALUES(replace(replace('a\r\nb;\n','\r',char(13)),'\n',char(10)));";
        check(insert, &[(1, insert)]);
        let insert = r"INSERT INTO t VALUES(replace('a\nb','\n',char(10)));";
        check(&format!("{insert}\n{insert}"), &[(1, insert), (2, insert)]);
    }

    #[test]
    fn crlf_bom_comments_and_empty_statements_between() {
        check(
            "\u{feff}PRAGMA x=1;\r\n-- a comment\r\n;;\r\n/* block */ INSERT INTO t\r\nVALUES(1); -- trailing\r\n\r\n",
            &[(1, "PRAGMA x=1;"), (4, "INSERT INTO t\r\nVALUES(1);")],
        );
    }

    #[test]
    fn a_dump_cut_short_is_truncated() {
        for (dump, line) in [
            ("CREATE TABLE t (a);\nINSERT INTO t VALUES('unfinished", 2),
            ("CREATE TABLE t (a);\nINSERT INTO t VALUES(1)", 2),
            ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN\nSELECT 1;\n", 1),
            ("SELECT 1;\nSELECT /* open", 2),
        ] {
            let err = DumpStatements::new(dump.as_bytes())
                .find_map(Result::err)
                .unwrap_or_else(|| panic!("{dump}"));
            assert!(
                matches!(&err, RestoreError::Truncated { line: l, .. } if *l == line),
                "{dump}: {err:?}"
            );
        }
        // A trailing comment after the last statement is not a truncation.
        check("SELECT 1;\n-- done", &[(1, "SELECT 1;")]);
    }

    #[test]
    fn transaction_framing_is_left_out_on_request() {
        let dump = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(a);\nCOMMIT;";
        let mut statements = DumpStatements::new(dump.as_bytes()).without_transaction();
        let kept: Vec<String> = statements
            .by_ref()
            .map(|s| s.map(|(_, sql)| sql))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept, ["PRAGMA foreign_keys=OFF;", "CREATE TABLE t(a);"]);
        assert_eq!((statements.skipped(), statements.lines()), (2, 4));
        assert_eq!(split(dump).len(), 4, "kept without the option");

        let failed = "BEGIN TRANSACTION;\nCREATE TABLE t(a);\nROLLBACK; -- due to errors";
        let err = DumpStatements::new(failed.as_bytes())
            .without_transaction()
            .find_map(Result::err)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("line 3: the dump ends in ROLLBACK"),
            "{err}"
        );
    }

    #[test]
    fn kinds_come_from_the_first_keywords() {
        let kinds = |dump: &str| -> Vec<Kind> {
            let mut statements = DumpStatements::new(dump.as_bytes());
            std::iter::from_fn(|| statements.next_statement())
                .map(|s| s.map_or(Kind::Other, |s| s.kind))
                .collect()
        };
        assert_eq!(
            kinds(
                "create unique index i on t(a);\nCREATE VIEW v AS SELECT 1;\nCREATE TEMP TRIGGER x \
                 AFTER INSERT ON t BEGIN SELECT 1; END;\nCREATE TABLE t(a);\ninsert into t values(1);\n\
                 REPLACE INTO t VALUES(2);\nBEGIN;\nEND TRANSACTION;\nROLLBACK;"
            ),
            [
                Kind::Object,
                Kind::Object,
                Kind::Object,
                Kind::Other,
                Kind::Insert,
                Kind::Insert,
                Kind::Transaction,
                Kind::Transaction,
                Kind::Rollback
            ]
        );
    }

    /// A dump on one line, or one very long line, is read a piece at a time.
    #[test]
    fn long_lines_are_read_in_pieces() {
        let insert = format!("INSERT INTO t VALUES('{}');", "x;".repeat(100_000));
        let one_line = format!("SELECT 1;{insert}SELECT -- c\n2;\n");
        let mut statements = DumpStatements::new(one_line.as_bytes());
        let got: Vec<(u64, usize)> = statements
            .by_ref()
            .map(|s| s.map(|(line, sql)| (line, sql.len())))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, [(1, 9), (1, insert.len()), (1, 14)]);
        assert_eq!(statements.lines(), 2);
    }

    /// Regression (the dump_reader fuzz target's 1 MB inputs): each statement, and each lone
    /// `;`, was drained from the front of the buffer holding the rest of its line, so a line
    /// of many short statements took time quadratic in its length (1 MB of `;` over a
    /// second, and 16 times that per doubling). Now a chunk's finished statements are
    /// dropped at once.
    #[test]
    fn a_line_of_many_statements_splits_in_linear_time() {
        // Statements left unfinished at a piece's end keep their place (`split` also reads
        // 3 bytes at a time): words, `-`, `/` and quotes.
        check(
            "SELECT 1;;SELECT 12-3;SELECT 8/2;SELECT 'a;b';SELECT \"x\" -- c\n;",
            &[
                (1, "SELECT 1;"),
                (1, "SELECT 12-3;"),
                (1, "SELECT 8/2;"),
                (1, "SELECT 'a;b';"),
                (1, "SELECT \"x\" -- c\n;"),
            ],
        );
        let mut dump = ";".repeat(8 << 20);
        dump.push_str(&"SELECT 1;".repeat(100_000));
        // 8 MiB on one line: quadratic, this took tens of seconds (the test would stall CI);
        // linear, well under one. The speed itself is shown by the `dump_reader` fuzz target's
        // runs (bench/FUZZ.md), not timed here.
        let count = DumpStatements::new(dump.as_bytes())
            .map(|s| s.map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(|s| s.len());
        assert_eq!(count, Ok(100_000));
    }

    /// Regression (found by the dump_reader fuzz target): an error in a piece of a line lost
    /// the statements that piece completed before it, so what came out depended on where
    /// the reader's pieces happened to end.
    #[test]
    fn statements_before_an_error_on_their_line_still_come() {
        let dump = b"SELECT 1; SELECT 2; SELECT '\xff';\nSELECT 3;";
        for capacity in [3, 64 * 1024] {
            let reader = std::io::BufReader::with_capacity(capacity, &dump[..]);
            let got: Vec<String> = DumpStatements::new(reader).map(item_text).collect();
            assert_eq!(
                got,
                [
                    "1: SELECT 1;",
                    "1: SELECT 2;",
                    "error: line 1: the statement is not valid UTF-8: SELECT '\u{fffd}';",
                ],
                "{capacity}"
            );
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_named() {
        let dump = b"SELECT 1;\nINSERT INTO t VALUES('\xff');";
        let err = DumpStatements::new(&dump[..])
            .find_map(Result::err)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("line 2: the statement is not valid UTF-8"),
            "{err}"
        );
    }
}
