//! The SQL of one piece of a long value: as many of its bytes, from a given offset, as fit in
//! a given number of bytes of SQL.
//!
//! A blob piece is `X'…'` (two bytes of SQL per byte). A text piece is a concatenation of
//! segments, each exact for any bytes in a UTF-8 database:
//!
//! - `'…'` for a run of valid UTF-8 without NUL, CR or LF (`'` doubled): SQLite copies the
//!   bytes of a string literal as they are, so this costs one byte per byte;
//! - `char(10)` and `char(13)` for line breaks, so that each statement stays on one line (as
//!   every row of a D1 dump does, and a reader that splits lines cannot change it);
//! - `CAST(X'…' AS TEXT)` for NUL and bytes that are not UTF-8: the cast keeps the bytes, and
//!   `||` concatenates text bytes without looking at them.
//!
//! A piece never cuts a character of a `'…'` run, so each literal is valid UTF-8; a piece may
//! end anywhere else (invalid bytes are taken one at a time). `a||b||c…` nests one level per
//! `||`, and SQLite refuses expressions nested deeper than 1,000 (`SQLITE_MAX_EXPR_DEPTH`):
//! segments are grouped by [`GROUP`] in parentheses, so a piece of 100,000 bytes nests a few
//! hundred levels at most.

/// Segments per parenthesized group of a text piece.
const GROUP: usize = 100;

/// `X'…'`: the bytes of `bytes[start..]` that fit in `budget` bytes of SQL, and where they
/// end. Empty (`X''`) when less than one byte fits.
pub(super) fn blob(bytes: &[u8], start: usize, budget: usize) -> (String, usize) {
    let room = budget.saturating_sub(3) / 2;
    let end = bytes.len().min(start + room);
    let mut out = Vec::with_capacity(3 + 2 * (end - start));
    super::super::value::push_blob(&mut out, &bytes[start..end]);
    (String::from_utf8_lossy(&out).into_owned(), end)
}

/// What the text at some offset starts with.
enum Next {
    /// A character to write inside `'…'`, of this many bytes.
    Plain(usize),
    /// `\n` or `\r`.
    Newline(u8),
    /// NUL or a byte that does not start a valid UTF-8 character.
    Raw,
}

fn next(bytes: &[u8], at: usize) -> Next {
    let window = &bytes[at..bytes.len().min(at + 4)];
    let valid = match std::str::from_utf8(window) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&window[..e.valid_up_to()]).unwrap_or_default(),
    };
    match valid.chars().next() {
        Some('\n') => Next::Newline(b'\n'),
        Some('\r') => Next::Newline(b'\r'),
        Some('\0') | None => Next::Raw,
        Some(c) => Next::Plain(c.len_utf8()),
    }
}

/// A text piece being built: its segments and their total length.
#[derive(Default)]
struct Segments {
    list: Vec<String>,
    bytes: usize,
}

impl Segments {
    /// The length of the SQL with `n` segments holding `bytes` bytes: `||` between them, and
    /// `(…)` around each group when there is more than one.
    fn cost(n: usize, bytes: usize) -> usize {
        let groups = n.div_ceil(GROUP);
        let parens = if groups > 1 { 2 * groups } else { 0 };
        bytes + 2 * n.saturating_sub(1) + parens
    }

    /// How many bytes a new segment may have within `budget`.
    fn room(&self, budget: usize) -> usize {
        budget.saturating_sub(Self::cost(self.list.len() + 1, self.bytes))
    }

    fn push(&mut self, segment: String) {
        self.bytes += segment.len();
        self.list.push(segment);
    }

    fn render(self) -> String {
        if self.list.is_empty() {
            return "''".to_owned();
        }
        if self.list.len() <= GROUP {
            return self.list.join("||");
        }
        let groups: Vec<String> = self
            .list
            .chunks(GROUP)
            .map(|group| format!("({})", group.join("||")))
            .collect();
        groups.join("||")
    }
}

/// A text piece: the bytes of `bytes[start..]` that fit in `budget` bytes of SQL, and where
/// they end. Empty (`''`) when nothing fits.
pub(super) fn text(bytes: &[u8], start: usize, budget: usize) -> (String, usize) {
    let mut segments = Segments::default();
    let mut at = start;
    while at < bytes.len() {
        let room = segments.room(budget);
        let taken = match next(bytes, at) {
            Next::Plain(_) => quoted_run(bytes, at, room.saturating_sub(2)),
            Next::Newline(b) if room >= 8 => Some((format!("char({b})"), 1)),
            Next::Newline(_) => None,
            Next::Raw => raw_run(bytes, at, room.saturating_sub(14) / 2),
        };
        let Some((segment, len)) = taken else { break };
        segments.push(segment);
        at += len;
    }
    (segments.render(), at)
}

/// `'…'` holding the characters from `at` that are neither NUL nor line breaks, at most
/// `room` bytes of them once `'` is doubled; `None` if not one fits.
fn quoted_run(bytes: &[u8], at: usize, room: usize) -> Option<(String, usize)> {
    let (mut end, mut cost) = (at, 0);
    while end < bytes.len() {
        let Next::Plain(len) = next(bytes, end) else {
            break;
        };
        let add = if bytes[end] == b'\'' { 2 } else { len };
        if cost + add > room {
            break;
        }
        cost += add;
        end += len;
    }
    if end == at {
        return None;
    }
    let text = std::str::from_utf8(&bytes[at..end]).ok()?;
    let mut out = Vec::with_capacity(cost + 2);
    super::super::value::push_quoted(&mut out, text);
    Some((String::from_utf8(out).ok()?, end - at))
}

/// `CAST(X'…' AS TEXT)` holding the NUL and invalid bytes from `at`, at most `room` of them;
/// `None` if not one fits.
fn raw_run(bytes: &[u8], at: usize, room: usize) -> Option<(String, usize)> {
    let mut end = at;
    while end < bytes.len() && end - at < room && matches!(next(bytes, end), Next::Raw) {
        end += 1;
    }
    if end == at {
        return None;
    }
    let (hex, _) = blob(bytes, at, 3 + 2 * (end - at));
    Some((format!("CAST({hex} AS TEXT)"), end - at))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts `bytes` into text pieces of `budget` bytes of SQL each.
    fn pieces(bytes: &[u8], budget: usize) -> Vec<String> {
        let (mut at, mut out) = (0, Vec::new());
        while at < bytes.len() {
            let (sql, end) = text(bytes, at, budget);
            assert!(sql.len() <= budget, "{sql} > {budget}");
            assert!(end > at, "no progress at {at}");
            out.push(sql);
            at = end;
        }
        out
    }

    #[test]
    fn text_segments() {
        assert_eq!(pieces(b"it's", 100), ["'it''s'"]);
        assert_eq!(
            pieces(b"a\nb\r\0\xff", 100),
            ["'a'||char(10)||'b'||char(13)||CAST(X'00ff' AS TEXT)"]
        );
        // A 4-byte character is never cut: it goes whole into the next piece.
        assert_eq!(pieces("ab😀".as_bytes(), 6), ["'ab'", "'😀'"]);
        assert_eq!(pieces(b"''", 4), ["''''", "''''"]);
    }

    #[test]
    fn many_segments_are_grouped() {
        let sql = text(&b"a\n".repeat(150), 0, 100_000).0;
        assert!(sql.starts_with("('a'||char(10)||"), "{sql}");
        assert_eq!(sql.matches('(').count(), 150 + 3);
        assert_eq!(sql.len(), Segments::cost(300, 150 * 3 + 150 * 8));
    }

    #[test]
    fn blob_pieces() {
        assert_eq!(blob(&[0, 1, 2], 1, 7), ("X'0102'".to_owned(), 3));
        assert_eq!(blob(&[0, 1, 2], 0, 6), ("X'00'".to_owned(), 1));
        assert_eq!(blob(&[0], 0, 4), ("X''".to_owned(), 0));
    }
}
