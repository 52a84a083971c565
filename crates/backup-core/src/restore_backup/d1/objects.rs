//! What a dump statement creates or writes, read from its first tokens: enough to check its
//! names against D1's rules and to leave a table out with everything that belongs to it.

/// How far into a statement its head is read: names, keywords and the first literal of a
/// `sqlite_sequence` or `sqlite_stat1` row are all well within it.
const HEAD: usize = 4096;

/// What one statement is, for the import's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Object {
    /// `CREATE TABLE` (`virtual_table`: `CREATE VIRTUAL TABLE`).
    Table { name: String, virtual_table: bool },
    /// `CREATE [UNIQUE] INDEX name ON table`.
    Index { name: String, table: String },
    /// `CREATE TRIGGER name … ON table`.
    Trigger { name: String, table: String },
    /// `CREATE VIEW name`.
    View { name: String },
    /// `INSERT INTO table`, with the first text literal of its values (the table a
    /// `sqlite_sequence` or `sqlite_stat1` row is about).
    Insert {
        table: String,
        first_text: Option<String>,
    },
    /// Anything else (`PRAGMA`, `DELETE FROM sqlite_sequence`, `ANALYZE`, …).
    Other,
}

impl Object {
    /// What it is, in words: `table`, `virtual table`, `index`, `trigger`, `view`.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Table {
                virtual_table: true,
                ..
            } => "virtual table",
            Self::Table { .. } => "table",
            Self::Index { .. } => "index",
            Self::Trigger { .. } => "trigger",
            Self::View { .. } => "view",
            Self::Insert { .. } | Self::Other => "statement",
        }
    }

    /// The name of what it creates.
    pub(super) fn created(&self) -> Option<&str> {
        match self {
            Self::Table { name, .. }
            | Self::Index { name, .. }
            | Self::Trigger { name, .. }
            | Self::View { name } => Some(name),
            Self::Insert { .. } | Self::Other => None,
        }
    }

    /// The table it belongs to or writes: a table itself, an index's or trigger's table, an
    /// INSERT's table, and for a row of `sqlite_sequence` or `sqlite_stat*`, the table the row
    /// is about.
    pub(super) fn table(&self) -> Option<&str> {
        match self {
            Self::Table { name, .. } => Some(name),
            Self::Index { table, .. } | Self::Trigger { table, .. } => Some(table),
            Self::Insert { table, first_text } => {
                let about = table == "sqlite_sequence" || table.starts_with("sqlite_stat");
                if about {
                    first_text.as_deref()
                } else {
                    Some(table)
                }
            }
            Self::View { .. } | Self::Other => None,
        }
    }
}

/// Two names SQLite takes as the same (case folded for ASCII, as SQLite folds them).
pub(super) fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// What `sql` is.
pub(super) fn classify(sql: &str) -> Object {
    let tokens = tokens(head(sql));
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => w.to_ascii_uppercase(),
        _ => String::new(),
    };
    match (word(0).as_str(), word(1).as_str()) {
        ("CREATE", _) => create(&tokens[1..]),
        ("INSERT" | "REPLACE", _) => insert(&tokens[1..]),
        _ => Object::Other,
    }
}

fn create(tokens: &[Token]) -> Object {
    let mut rest = tokens;
    let skip = |words: &[&str], rest: &mut &[Token]| {
        while let Some(Token::Word(w)) = rest.first() {
            if words.iter().any(|k| w.eq_ignore_ascii_case(k)) {
                *rest = &rest[1..];
            } else {
                break;
            }
        }
    };
    skip(&["TEMP", "TEMPORARY", "UNIQUE", "VIRTUAL"], &mut rest);
    let virtual_table = tokens
        .iter()
        .take(3)
        .any(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("VIRTUAL")));
    let Some(Token::Word(what)) = rest.first() else {
        return Object::Other;
    };
    let what = what.to_ascii_uppercase();
    rest = &rest[1..];
    skip(&["IF", "NOT", "EXISTS"], &mut rest);
    let Some((name, after)) = qualified_name(rest) else {
        return Object::Other;
    };
    let on = || {
        let at = after
            .iter()
            .position(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("ON")))?;
        qualified_name(&after[at + 1..]).map(|(table, _)| table)
    };
    match what.as_str() {
        "TABLE" => Object::Table {
            name,
            virtual_table,
        },
        "VIEW" => Object::View { name },
        "INDEX" => on().map_or(Object::Other, |table| Object::Index { name, table }),
        "TRIGGER" => on().map_or(Object::Other, |table| Object::Trigger { name, table }),
        _ => Object::Other,
    }
}

fn insert(tokens: &[Token]) -> Object {
    let Some(into) = tokens
        .iter()
        .position(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("INTO")))
    else {
        return Object::Other;
    };
    let Some((table, after)) = qualified_name(&tokens[into + 1..]) else {
        return Object::Other;
    };
    let values = after
        .iter()
        .position(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("VALUES")));
    let first_text = values.and_then(|at| {
        after[at..].iter().find_map(|t| match t {
            Token::Str(s) => Some(s.clone()),
            _ => None,
        })
    });
    Object::Insert { table, first_text }
}

/// `name` or `schema.name` at the start of `tokens`: the name, and the tokens after it.
fn qualified_name(tokens: &[Token]) -> Option<(String, &[Token])> {
    let name = |t: &Token| match t {
        Token::Word(w) | Token::Name(w) | Token::Str(w) => Some(w.clone()),
        Token::Punct(_) => None,
    };
    let first = name(tokens.first()?)?;
    if tokens.get(1) == Some(&Token::Punct('.')) {
        let second = name(tokens.get(2)?)?;
        return Some((second, &tokens[3..]));
    }
    Some((first, &tokens[1..]))
}

/// The statement's first [`HEAD`] bytes, cut at a character boundary.
fn head(sql: &str) -> &str {
    let mut end = sql.len().min(HEAD);
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    &sql[..end]
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A bare word: keyword or unquoted name.
    Word(String),
    /// A `"…"`, `` `…` `` or `[…]` name, unquoted.
    Name(String),
    /// A `'…'` literal, unquoted.
    Str(String),
    Punct(char),
}

/// The tokens of `sql`, comments and whitespace left out; an unclosed quote ends them.
fn tokens(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '-' if chars.peek().is_some_and(|(_, n)| *n == '-') => {
                for (_, n) in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek().is_some_and(|(_, n)| *n == '*') => {
                chars.next();
                let mut star = false;
                for (_, n) in chars.by_ref() {
                    if star && n == '/' {
                        break;
                    }
                    star = n == '*';
                }
            }
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let mut text = String::new();
                let mut closed = false;
                while let Some((_, n)) = chars.next() {
                    if n == close {
                        if close != ']' && chars.peek().is_some_and(|(_, m)| *m == close) {
                            chars.next();
                        } else {
                            closed = true;
                            break;
                        }
                    }
                    text.push(n);
                }
                if !closed {
                    break;
                }
                out.push(if c == '\'' {
                    Token::Str(text)
                } else {
                    Token::Name(text)
                });
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let mut end = at + c.len_utf8();
                while let Some((i, n)) = chars.peek().copied() {
                    if n.is_alphanumeric() || n == '_' || n == '$' {
                        end = i + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(sql[at..end].to_owned()));
            }
            c => out.push(Token::Punct(c)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Object {
        Object::Table {
            name: name.to_owned(),
            virtual_table: false,
        }
    }

    #[test]
    fn statements_are_classified_in_every_dump_form() {
        let check = |sql: &str, expected: Object| assert_eq!(classify(sql), expected, "{sql}");
        check("CREATE TABLE t (a);", table("t"));
        check("create table if not exists \"a\"\"b\" (a);", table("a\"b"));
        check("CREATE TABLE [x y](a);", table("x y"));
        check("CREATE TABLE main.`_CF_upper` (a);", table("_CF_upper"));
        check(
            "CREATE VIRTUAL TABLE f USING fts5(v);",
            Object::Table {
                name: "f".to_owned(),
                virtual_table: true,
            },
        );
        check(
            "CREATE UNIQUE INDEX IF NOT EXISTS i ON \"t\"(lower(a));",
            Object::Index {
                name: "i".to_owned(),
                table: "t".to_owned(),
            },
        );
        check(
            "CREATE TRIGGER trg_x AFTER UPDATE OF status ON invoices\nBEGIN UPDATE t SET a = 1; END;",
            Object::Trigger {
                name: "trg_x".to_owned(),
                table: "invoices".to_owned(),
            },
        );
        check(
            "CREATE TRIGGER tv INSTEAD OF INSERT ON \"v w\" BEGIN SELECT 1; END;",
            Object::Trigger {
                name: "tv".to_owned(),
                table: "v w".to_owned(),
            },
        );
        check(
            "CREATE VIEW v AS SELECT * FROM t;",
            Object::View {
                name: "v".to_owned(),
            },
        );
        check(
            "INSERT INTO \"sqlite_sequence\" (\"name\",\"seq\") VALUES('invoices',4);",
            Object::Insert {
                table: "sqlite_sequence".to_owned(),
                first_text: Some("invoices".to_owned()),
            },
        );
        check(
            "INSERT INTO items VALUES(1);",
            Object::Insert {
                table: "items".to_owned(),
                first_text: None,
            },
        );
        check("PRAGMA defer_foreign_keys=TRUE;", Object::Other);
        check("DELETE FROM sqlite_sequence;", Object::Other);
    }

    #[test]
    fn rows_of_sqlite_tables_belong_to_the_table_they_describe() {
        let row = classify(
            "INSERT INTO \"sqlite_stat1\" (\"tbl\",\"idx\",\"stat\") VALUES('archive',NULL,'3');",
        );
        assert_eq!(row.table(), Some("archive"));
        let row = classify("INSERT INTO \"t\" (\"a\") VALUES('x');");
        assert_eq!(row.table(), Some("t"));
    }
}
