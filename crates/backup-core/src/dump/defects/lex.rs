//! A push lexer for dump SQL: bytes in, tokens out, state kept between chunks so that a chunk
//! may end anywhere (inside a string, a comment, a number or a UTF-8 sequence). It keeps no
//! text beyond one token's first [`KEEP`] bytes, so its memory is constant.

/// The most bytes of one word, name or string literal kept (names are compared, literals only
/// inspected through [`Str`]'s flags). A longer token is marked [`Tok::truncated`].
pub(super) const KEEP: usize = 4096;

/// What a string literal held, learnt while it streamed past.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Str {
    /// The literal held U+FFFD (`EF BF BD`).
    pub(super) replacement: bool,
}

/// One token. `text` is the token's first [`KEEP`] bytes (a quoted name or literal unquoted,
/// with doubled quotes undone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A bare word: keyword or unquoted name.
    Word,
    /// A numeric literal (`12`, `1.5`, `1e+21`), without its sign.
    Number,
    /// A `'…'` literal.
    Str(Str),
    /// A `"…"`, `` `…` `` or `[…]` name.
    Name,
    /// Any other byte outside quotes and comments (`(`, `,`, `;`, `-`, …).
    Punct(u8),
}

/// A token as handed to the scanner.
pub(super) struct Tok<'a> {
    pub(super) kind: Kind,
    pub(super) text: &'a [u8],
    /// The token was longer than [`KEEP`] bytes; `text` is its start.
    pub(super) truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Word,
    Number,
    /// Inside a quoted token closed by `close`; `Kind` says which.
    Quoted {
        close: u8,
        name: bool,
    },
    /// Just after a closing quote: a second one is an escaped quote.
    QuoteEnd {
        close: u8,
        name: bool,
    },
    /// After `-`: a second `-` starts a comment.
    Dash,
    /// After `/`: a `*` starts a comment.
    Slash,
    LineComment,
    BlockComment,
    /// Inside a block comment, after `*`.
    BlockStar,
}

/// The lexer's state between chunks.
pub(super) struct Lexer {
    state: State,
    buf: Vec<u8>,
    truncated: bool,
    str: Str,
    /// How far into `EF BF BD` the literal's last bytes are.
    fffd: u8,
}

impl Lexer {
    pub(super) fn new() -> Self {
        Self {
            state: State::Code,
            buf: Vec::new(),
            truncated: false,
            str: Str::default(),
            fffd: 0,
        }
    }

    /// How many bytes of the current token are held.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.buf.capacity()
    }

    fn push(&mut self, b: u8) {
        if self.buf.len() < KEEP {
            self.buf.push(b);
        } else {
            self.truncated = true;
        }
    }

    fn emit(&mut self, kind: Kind, out: &mut impl FnMut(Tok<'_>)) {
        out(Tok {
            kind,
            text: &self.buf,
            truncated: self.truncated,
        });
        self.buf.clear();
        self.truncated = false;
    }

    /// Feeds one byte (not `\0`, which the scanner handles) and hands complete tokens to `out`.
    pub(super) fn byte(&mut self, b: u8, out: &mut impl FnMut(Tok<'_>)) {
        match self.state {
            State::Code => self.code(b, out),
            State::Word | State::Number => {
                let number = self.state == State::Number;
                let exponent_sign = number
                    && matches!(b, b'+' | b'-')
                    && matches!(self.buf.last(), Some(b'e' | b'E'));
                if is_word_byte(b) || exponent_sign {
                    self.push(b);
                } else {
                    // A lone `.` (between `"main"` and `"t"`) is punctuation.
                    let kind = match (number, self.buf.as_slice()) {
                        (true, b".") => Kind::Punct(b'.'),
                        (true, _) => Kind::Number,
                        (false, _) => Kind::Word,
                    };
                    self.emit(kind, out);
                    self.state = State::Code;
                    self.code(b, out);
                }
            }
            State::Quoted { close, name } => self.quoted(b, close, name),
            State::QuoteEnd { close, name } => {
                if b == close {
                    self.push(b);
                    self.state = State::Quoted { close, name };
                } else {
                    let kind = if name {
                        Kind::Name
                    } else {
                        Kind::Str(self.str)
                    };
                    self.emit(kind, out);
                    self.state = State::Code;
                    self.code(b, out);
                }
            }
            State::Dash => {
                if b == b'-' {
                    self.state = State::LineComment;
                } else {
                    self.buf.clear();
                    self.emit(Kind::Punct(b'-'), out);
                    self.state = State::Code;
                    self.code(b, out);
                }
            }
            State::Slash => {
                if b == b'*' {
                    self.state = State::BlockComment;
                } else {
                    self.emit(Kind::Punct(b'/'), out);
                    self.state = State::Code;
                    self.code(b, out);
                }
            }
            State::LineComment => {
                if b == b'\n' {
                    self.state = State::Code;
                }
            }
            State::BlockComment => {
                if b == b'*' {
                    self.state = State::BlockStar;
                }
            }
            State::BlockStar => {
                self.state = match b {
                    b'/' => State::Code,
                    b'*' => State::BlockStar,
                    _ => State::BlockComment,
                };
            }
        }
    }

    fn code(&mut self, b: u8, out: &mut impl FnMut(Tok<'_>)) {
        self.state = match b {
            b'\'' => {
                self.str = Str::default();
                self.fffd = 0;
                State::Quoted {
                    close: b'\'',
                    name: false,
                }
            }
            b'"' | b'`' => State::Quoted {
                close: b,
                name: true,
            },
            b'[' => State::Quoted {
                close: b']',
                name: true,
            },
            b'-' => State::Dash,
            b'/' => State::Slash,
            b'0'..=b'9' | b'.' => {
                self.push(b);
                State::Number
            }
            _ if is_word_byte(b) => {
                self.push(b);
                State::Word
            }
            _ if b.is_ascii_whitespace() => State::Code,
            _ => {
                self.emit(Kind::Punct(b), out);
                State::Code
            }
        };
    }

    fn quoted(&mut self, b: u8, close: u8, name: bool) {
        if b == close {
            // `]` cannot be escaped by doubling; the others can.
            self.state = if close == b']' {
                State::QuoteEnd { close: 0, name }
            } else {
                State::QuoteEnd { close, name }
            };
            return;
        }
        if !name {
            self.fffd = match (self.fffd, b) {
                (_, 0xEF) => 1,
                (1, 0xBF) => 2,
                (2, 0xBD) => {
                    self.str.replacement = true;
                    0
                }
                _ => 0,
            };
        }
        self.push(b);
    }

    /// The end of the dump: a token still open is handed out (an unclosed literal as it is).
    pub(super) fn finish(&mut self, out: &mut impl FnMut(Tok<'_>)) {
        match self.state {
            State::Word => self.emit(Kind::Word, out),
            State::Number => self.emit(Kind::Number, out),
            State::Quoted { name: true, .. } | State::QuoteEnd { name: true, .. } => {
                self.emit(Kind::Name, out);
            }
            State::Quoted { .. } | State::QuoteEnd { .. } => self.emit(Kind::Str(self.str), out),
            State::Dash => self.emit(Kind::Punct(b'-'), out),
            State::Slash => self.emit(Kind::Punct(b'/'), out),
            State::Code | State::LineComment | State::BlockComment | State::BlockStar => {}
        }
        self.state = State::Code;
    }
}

/// Bytes of a bare word or number, as `sqlite3_complete` sees them (non-ASCII included).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.' || b >= 0x80
}
