//! Just enough of SQLite's tokenizer to read the head of a dump statement: which table an
//! `INSERT` writes, its column list, where its `VALUES(…)` tuple is, and what kind of statement
//! anything else is. The values themselves are left to SQLite.

use std::ops::Range;

/// One token, with comments and whitespace skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A bare word: a keyword or an unquoted identifier (upper-cased in [`Token::is`]).
    Word(String),
    /// A quoted identifier (`"…"`, `[…]`, `` `…` ``) or string (`'…'`), unquoted.
    Quoted(String),
    /// One byte of punctuation: `(`, `)`, `,`, `.`, `;`, …
    Punct(u8),
    /// A number or anything else that is neither a name nor punctuation.
    Other,
}

impl Token {
    /// Whether this is the bare word `word` (ASCII case-insensitive).
    pub(super) fn is(&self, word: &str) -> bool {
        matches!(self, Self::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// The name this token spells, if it is one (a bare word or anything quoted).
    fn name(&self) -> Option<&str> {
        match self {
            Self::Word(w) | Self::Quoted(w) => Some(w),
            _ => None,
        }
    }
}

/// The tokens of a statement, each with where it ends.
pub(super) struct Lexer<'a> {
    sql: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(sql: &'a str) -> Self {
        Self {
            sql: sql.as_bytes(),
            pos: 0,
        }
    }

    /// The next token, [`Token::Other`] at the end.
    fn token(&mut self) -> Token {
        self.next().unwrap_or(Token::Other)
    }

    /// The next token as a name, if it is one.
    fn name(&mut self) -> Option<String> {
        self.next()?.name().map(str::to_owned)
    }

    /// Where the last token returned ends.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    fn skip_blank(&mut self) {
        let s = self.sql;
        loop {
            match (s.get(self.pos), s.get(self.pos + 1)) {
                (Some(b), _) if b.is_ascii_whitespace() => self.pos += 1,
                (Some(b'-'), Some(b'-')) => {
                    let rest = &s[self.pos..];
                    self.pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                }
                (Some(b'/'), Some(b'*')) => {
                    let rest = &s[self.pos + 2..];
                    self.pos += 2 + rest
                        .windows(2)
                        .position(|w| w == b"*/")
                        .map_or(rest.len(), |i| i + 2);
                }
                _ => return,
            }
        }
    }

    /// A quoted token from `self.pos` (the opening quote), closed by `close`, where a doubled
    /// closing quote stands for itself (except in `[…]`).
    fn quoted(&mut self, close: u8) -> Token {
        let mut text = Vec::new();
        let mut i = self.pos + 1;
        while let Some(&b) = self.sql.get(i) {
            i += 1;
            if b != close {
                text.push(b);
            } else if close != b']' && self.sql.get(i) == Some(&close) {
                text.push(b);
                i += 1;
            } else {
                break;
            }
        }
        self.pos = i;
        Token::Quoted(String::from_utf8_lossy(&text).into_owned())
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        self.skip_blank();
        let &b = self.sql.get(self.pos)?;
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        Some(match b {
            b'"' | b'\'' | b'`' => self.quoted(b),
            b'[' => self.quoted(b']'),
            _ if word(b) => {
                let start = self.pos;
                let len = self.sql[start..].iter().take_while(|&&b| word(b)).count();
                self.pos += len;
                let text = String::from_utf8_lossy(&self.sql[start..self.pos]).into_owned();
                if b.is_ascii_digit() {
                    Token::Other
                } else {
                    Token::Word(text)
                }
            }
            _ => {
                self.pos += 1;
                Token::Punct(b)
            }
        })
    }
}

/// The parts of a one-row `INSERT INTO t [(cols)] VALUES(…);` the splitter needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InsertHead {
    /// The table, unquoted (a schema qualifier is dropped).
    pub(super) table: String,
    /// The column list, unquoted, if the statement has one.
    pub(super) columns: Option<Vec<String>>,
    /// The bytes of `VALUES(…)`, which SQLite runs on its own to read the values as written.
    pub(super) values: Range<usize>,
}

/// Reads `sql` as a plain one-row `INSERT INTO … VALUES(…)`; otherwise says what it is.
pub(super) fn insert(sql: &str) -> Result<InsertHead, String> {
    let mut lexer = Lexer::new(sql);
    if !lexer.token().is("INSERT") {
        return Err(describe(sql));
    }
    if !lexer.token().is("INTO") {
        return Err("an INSERT OR …, which only a plain INSERT INTO can be split from".into());
    }
    let mut table = lexer.name().ok_or_else(|| describe(sql))?;
    let mut token = lexer.token();
    if token == Token::Punct(b'.') {
        table = lexer.name().ok_or_else(|| describe(sql))?;
        token = lexer.token();
    }
    let mut columns = None;
    if token == Token::Punct(b'(') {
        columns =
            Some(column_list(&mut lexer).ok_or("an INSERT whose column list does not parse")?);
        token = lexer.token();
    }
    if token.is("SELECT") || token.is("WITH") {
        return Err("an INSERT … SELECT, whose values only the source database knows".into());
    }
    if !token.is("VALUES") {
        return Err("an INSERT without a VALUES(…) tuple".into());
    }
    let start = lexer.pos() - "VALUES".len();
    let end = tuple_end(&mut lexer).ok_or("an INSERT whose VALUES(…) does not parse")?;
    match (lexer.next(), lexer.next()) {
        (None | Some(Token::Punct(b';')), None) => Ok(InsertHead {
            table,
            columns,
            values: start..end,
        }),
        (Some(Token::Punct(b',')), _) => Err("an INSERT of several rows".into()),
        _ => Err("an INSERT with clauses after its VALUES(…) (upsert or RETURNING)".into()),
    }
}

/// `a, "b", [c])`, after the `(`.
fn column_list(lexer: &mut Lexer<'_>) -> Option<Vec<String>> {
    let mut columns = Vec::new();
    loop {
        columns.push(lexer.name()?);
        match lexer.next()? {
            Token::Punct(b',') => {}
            Token::Punct(b')') => return Some(columns),
            _ => return None,
        }
    }
}

/// Where the `(…)` after `VALUES` ends (just after its `)`), nested parentheses included.
fn tuple_end(lexer: &mut Lexer<'_>) -> Option<usize> {
    if lexer.next()? != Token::Punct(b'(') {
        return None;
    }
    let mut depth = 1_usize;
    while depth > 0 {
        match lexer.next()? {
            Token::Punct(b'(') => depth += 1,
            Token::Punct(b')') => depth -= 1,
            _ => {}
        }
    }
    Some(lexer.pos())
}

/// What a statement is, for messages: "a CREATE TABLE statement", "an UPDATE statement".
pub(super) fn describe(sql: &str) -> String {
    let words: Vec<String> = Lexer::new(sql)
        .take(4)
        .map_while(|t| match t {
            Token::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let kind = match words.as_slice() {
        ["CREATE", "TEMP" | "TEMPORARY" | "UNIQUE", kind, ..] => {
            format!("CREATE {kind}")
        }
        ["CREATE", "VIRTUAL", "TABLE", ..] => "CREATE VIRTUAL TABLE".to_owned(),
        ["CREATE", kind, ..] => format!("CREATE {kind}"),
        [first, ..] => (*first).to_owned(),
        [] => return "a statement".to_owned(),
    };
    let article = if kind.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind} statement")
}

/// The name of the table a `CREATE [VIRTUAL] TABLE [IF NOT EXISTS] [schema.]name …` creates,
/// and whether it is virtual; `None` for any other statement.
pub(super) fn created_table(sql: &str) -> Option<(String, bool)> {
    let mut lexer = Lexer::new(sql).peekable();
    if !lexer.next()?.is("CREATE") {
        return None;
    }
    let mut token = lexer.next()?;
    if token.is("TEMP") || token.is("TEMPORARY") {
        token = lexer.next()?;
    }
    let virtual_table = token.is("VIRTUAL");
    if virtual_table {
        token = lexer.next()?;
    }
    if !token.is("TABLE") {
        return None;
    }
    let mut name = lexer.next()?;
    if name.is("IF") {
        lexer.next()?; // NOT
        lexer.next()?; // EXISTS
        name = lexer.next()?;
    }
    if lexer.peek() == Some(&Token::Punct(b'.')) {
        lexer.next();
        name = lexer.next()?;
    }
    Some((name.name()?.to_owned(), virtual_table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(sql: &str) -> (String, Option<Vec<String>>, String) {
        let head = insert(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        (head.table, head.columns, sql[head.values].to_owned())
    }

    #[test]
    fn insert_forms_of_every_dump() {
        let cols = |c: &[&str]| Some(c.iter().map(|&s| s.to_owned()).collect::<Vec<_>>());
        assert_eq!(
            head(r#"INSERT INTO "t" ("a","b""c") VALUES(1,'x)''(');"#),
            ("t".into(), cols(&["a", "b\"c"]), "VALUES(1,'x)''(')".into())
        );
        assert_eq!(
            head(r#"INSERT INTO "odd ""name""" VALUES(replace('a\nb','\n',char(10)));"#),
            (
                "odd \"name\"".into(),
                None,
                r"VALUES(replace('a\nb','\n',char(10)))".into()
            )
        );
        assert_eq!(
            head("insert into main.[t t] (x) values (X'00', -9e999) ;"),
            ("t t".into(), cols(&["x"]), "values (X'00', -9e999)".into())
        );
        assert_eq!(head("INSERT INTO t VALUES(1)").0, "t");
    }

    #[test]
    fn what_cannot_be_split_is_named() {
        let refused = |sql: &str| insert(sql).err().unwrap_or_default();
        assert_eq!(refused("CREATE TABLE t(a);"), "a CREATE TABLE statement");
        assert_eq!(
            refused("create unique index i on t(a);"),
            "a CREATE INDEX statement"
        );
        assert_eq!(refused("UPDATE t SET a = 1;"), "an UPDATE statement");
        assert!(refused("INSERT INTO t SELECT * FROM u;").contains("SELECT"));
        assert!(refused("INSERT INTO t(a) VALUES(1),(2);").contains("several rows"));
        assert!(refused("INSERT OR REPLACE INTO t VALUES(1);").contains("plain"));
        assert!(refused("INSERT INTO t VALUES(1) RETURNING a;").contains("RETURNING"));
    }

    #[test]
    fn created_tables() {
        assert_eq!(
            created_table("CREATE TABLE IF NOT EXISTS \"a\"\"b\" (x)"),
            Some(("a\"b".into(), false))
        );
        assert_eq!(
            created_table("create virtual table main.docs using fts5(body)"),
            Some(("docs".into(), true))
        );
        assert_eq!(created_table("CREATE INDEX i ON t(a)"), None);
    }
}
