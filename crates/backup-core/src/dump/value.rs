//! SQL literals for single values: wrangler's forms, and lossless forms where wrangler's would
//! not restore the stored value. A value arrives as a [`Cell`], whatever its source.
//!
//! wrangler 4.164 writes every INTEGER and REAL through JavaScript `Number#toString`, wraps text
//! holding LF/CR in `replace(…,'\n',char(10))`, and writes blobs as `X'…'`. Each function here
//! first decides whether that form, once executed by SQLite and stored in a column of the given
//! affinity, gives back exactly the value that was read (same storage class, same bits). If it
//! does, the wrangler form is written, so the dump stays byte-identical; if not, a lossless form
//! is written and the caller counts a rewrite.

/// One value as a row source read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    /// SQL `NULL`.
    Null,
    /// An INTEGER, exact.
    Integer(i64),
    /// A REAL, exact.
    Real(f64),
    /// TEXT, as stored: normally UTF-8, but SQLite keeps whatever bytes it was given.
    Text(&'a [u8]),
    /// A BLOB.
    Blob(&'a [u8]),
    /// An exact SQL literal the source produced itself (SQLite's `quote()` on the server):
    /// written as it is, except that line breaks inside it become `char(10)`/`char(13)` so
    /// that the row stays on one line (see [`push_literal`]).
    Literal(&'a str),
}

#[cfg(feature = "sqlite")]
impl<'a> From<rusqlite::types::ValueRef<'a>> for Cell<'a> {
    fn from(value: rusqlite::types::ValueRef<'a>) -> Self {
        use rusqlite::types::ValueRef;
        match value {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Integer(i),
            ValueRef::Real(r) => Self::Real(r),
            ValueRef::Text(t) => Self::Text(t),
            ValueRef::Blob(b) => Self::Blob(b),
        }
    }
}

/// How a column converts a value on insert: SQLite's type affinity, STRICT-aware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Affinity {
    /// `INT` in the declared type.
    Integer,
    /// `CHAR`, `CLOB` or `TEXT`.
    Text,
    /// `BLOB`, no type at all, or `ANY` in a STRICT table: values are stored as given.
    Blob,
    /// `REAL`, `FLOA` or `DOUB`.
    Real,
    /// Anything else (including `ANY` outside STRICT tables).
    Numeric,
}

impl Affinity {
    /// The affinity of a column declared as `declared` (SQLite's rules, section 3.1 of
    /// "Datatypes In SQLite"); in a STRICT table `ANY` keeps values as they are.
    pub(crate) fn of(declared: &str, strict: bool) -> Self {
        let t = declared.to_ascii_uppercase();
        if strict && t == "ANY" {
            Self::Blob
        } else if t.contains("INT") {
            Self::Integer
        } else if ["CHAR", "CLOB", "TEXT"].iter().any(|s| t.contains(s)) {
            Self::Text
        } else if t.is_empty() || t.contains("BLOB") {
            Self::Blob
        } else if ["REAL", "FLOA", "DOUB"].iter().any(|s| t.contains(s)) {
            Self::Real
        } else {
            Self::Numeric
        }
    }
}

/// Whether a literal is wrangler's own form or a lossless replacement for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// Exactly what wrangler 4.164 writes.
    Wrangler,
    /// Differs from wrangler's form, which would not restore this value.
    Lossless,
}

/// Appends the SQL literal for `value`, stored in a column of affinity `affinity`, to `out`.
pub(crate) fn push_value(out: &mut Vec<u8>, value: Cell<'_>, affinity: Affinity) -> Form {
    match value {
        Cell::Null => {
            out.extend_from_slice(b"NULL");
            Form::Wrangler
        }
        Cell::Integer(i) => push_integer(out, i),
        Cell::Real(r) => push_real(out, r, affinity),
        Cell::Text(bytes) => push_text(out, bytes),
        Cell::Blob(bytes) => {
            push_blob(out, bytes);
            Form::Wrangler
        }
        Cell::Literal(literal) => {
            push_literal(out, literal);
            Form::Wrangler
        }
    }
}

/// An exact literal as SQLite's `quote()` wrote it. `quote()` leaves line breaks raw inside
/// text literals; they are written as `'…'||char(10)||'…'` (and `char(13)`), the same text, so
/// that each row stays one line as in D1's dump and a reader splitting lines (dropping a CR
/// before an LF) cannot change it. A line break can only be inside a text literal: blobs are
/// hex, numbers digits.
fn push_literal(out: &mut Vec<u8>, literal: &str) {
    out.reserve(literal.len());
    for &b in literal.as_bytes() {
        match b {
            b'\n' => out.extend_from_slice(b"'||char(10)||'"),
            b'\r' => out.extend_from_slice(b"'||char(13)||'"),
            _ => out.push(b),
        }
    }
}

/// Integers are written exactly. wrangler rounds them through a double, which only matters
/// beyond ±2^53.
fn push_integer(out: &mut Vec<u8>, i: i64) -> Form {
    let exact = i.to_string();
    out.extend_from_slice(exact.as_bytes());
    // Every integer up to 2^53 in magnitude is a double, and JavaScript prints it exactly.
    #[allow(clippy::cast_precision_loss)] // The rounding is what is being detected.
    let same = i.unsigned_abs() <= 1 << 53 || js_number(i as f64) == exact;
    if same { Form::Wrangler } else { Form::Lossless }
}

/// Reals use JavaScript's shortest round-trip form, which SQLite parses back exactly, except
/// where it reads as an integer literal: `-0.0` becomes `0`, and an integral value like `3.0`
/// becomes `3`, which comes back as REAL only in a REAL-affinity column.
fn push_real(out: &mut Vec<u8>, r: f64, affinity: Affinity) -> Form {
    if r == 0.0 && r.is_sign_negative() {
        // A REAL column never holds -0.0 (SQLite stores integral reals there as integers), so
        // this value sits in an untyped or ANY column and needs its sign.
        out.extend_from_slice(b"-0.0");
        return Form::Lossless;
    }
    let text = js_number(r);
    out.extend_from_slice(text.as_bytes());
    let integer_literal = !text.contains(['.', 'e']) && text.parse::<i64>().is_ok();
    if integer_literal && affinity != Affinity::Real {
        out.extend_from_slice(b".0");
        Form::Lossless
    } else {
        Form::Wrangler
    }
}

/// Text is quoted with `'` doubled. Text holding LF or CR gets wrangler's `replace()` wrapper
/// when that gives the text back; otherwise (a literal `\n` or `\r` next to a real newline) it is
/// written as a concatenation with `char(10)`/`char(13)`. Text that is not UTF-8 or holds NUL
/// cannot be a SQL string literal and is written as `CAST(X'…' AS TEXT)`.
fn push_text(out: &mut Vec<u8>, bytes: &[u8]) -> Form {
    let Some(text) = std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.contains('\0'))
    else {
        out.extend_from_slice(b"CAST(");
        push_blob(out, bytes);
        out.extend_from_slice(b" AS TEXT)");
        return Form::Lossless;
    };
    let lf = text.contains('\n');
    let cr = text.contains('\r');
    if !lf && !cr {
        push_quoted(out, text);
        Form::Wrangler
    } else if wrapper_restores(text, lf, cr) {
        push_wrapped(out, text, lf, cr);
        Form::Wrangler
    } else {
        push_concatenated(out, text);
        Form::Lossless
    }
}

/// Whether SQLite evaluating wrangler's `replace()` wrapper gives back `text`: the wrapper
/// also turns every backslash-n (or backslash-r) that was in the text into a newline.
fn wrapper_restores(text: &str, lf: bool, cr: bool) -> bool {
    let mut restored = text.replace('\n', "\\n").replace('\r', "\\r");
    if cr {
        restored = restored.replace("\\r", "\r");
    }
    if lf {
        restored = restored.replace("\\n", "\n");
    }
    restored == text
}

/// `'…'` with every `'` doubled.
pub(crate) fn push_quoted(out: &mut Vec<u8>, text: &str) {
    out.push(b'\'');
    for part in text.split_inclusive('\'') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('\'') {
            out.push(b'\'');
        }
    }
    out.push(b'\'');
}

/// wrangler's form: `replace(replace('a\r\nb','\r',char(13)),'\n',char(10))`.
fn push_wrapped(out: &mut Vec<u8>, text: &str, lf: bool, cr: bool) {
    if lf {
        out.extend_from_slice(b"replace(");
    }
    if cr {
        out.extend_from_slice(b"replace(");
    }
    let escaped = text.replace('\n', "\\n").replace('\r', "\\r");
    push_quoted(out, &escaped);
    if cr {
        out.extend_from_slice(b",'\\r',char(13))");
    }
    if lf {
        out.extend_from_slice(b",'\\n',char(10))");
    }
}

/// `'a\nb'||char(10)||'c'`: runs without newlines as literals, newlines as `char()`.
fn push_concatenated(out: &mut Vec<u8>, text: &str) {
    let mut first = true;
    let mut separator = |out: &mut Vec<u8>| {
        if !first {
            out.extend_from_slice(b"||");
        }
        first = false;
    };
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        if end > 0 {
            separator(out);
            push_quoted(out, &rest[..end]);
        }
        let Some(newline) = rest[end..].chars().next() else {
            break;
        };
        separator(out);
        out.extend_from_slice(if newline == '\n' {
            b"char(10)"
        } else {
            b"char(13)"
        });
        rest = &rest[end + 1..];
    }
}

/// `X'<lower-case hex>'`.
pub(crate) fn push_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2 + 3);
    out.extend_from_slice(b"X'");
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
    out.push(b'\'');
}

/// JavaScript's `Number#toString()` (ECMA-262 Number::toString, radix 10), with wrangler's
/// `9e999`/`-9e999` for the infinities.
pub(crate) fn js_number(v: f64) -> String {
    if v.is_nan() {
        // SQLite never stores NaN (it stores NULL instead).
        return "NULL".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "9e999" } else { "-9e999" }.to_owned();
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as JavaScript does.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    // value = 0.d1d2…dk × 10^n
    let n = exponent + 1;
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let mut s = String::with_capacity(digits.len() + 8);
    if v < 0.0 {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n(
            '0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        s.push_str(int);
        s.push('.');
        s.push_str(frac);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', usize::try_from(-n).unwrap_or(0)));
        s.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        s.push_str(first);
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        s.push('e');
        s.push(if n > 0 { '+' } else { '-' });
        s.push_str(&(n - 1).abs().to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(value: Cell<'_>, affinity: Affinity) -> (String, Form) {
        let mut out = Vec::new();
        let form = push_value(&mut out, value, affinity);
        (String::from_utf8(out).unwrap_or_default(), form)
    }

    #[test]
    fn numbers_follow_javascript() {
        let cases: &[(f64, &str)] = &[
            (0.1 + 0.2, "0.30000000000000004"),
            (1e300, "1e+300"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000_001, "0.000001"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (2.225_073_858_507_201_4e-308, "2.2250738585072014e-308"),
            (9.999_999_999_999_999e-301, "9.999999999999999e-301"),
            (123_456.789, "123456.789"),
            (-1e-10, "-1e-10"),
            (4.0, "4"),
            (-0.0, "0"),
            (9_223_372_036_854_775_807_f64, "9223372036854776000"),
            (4_611_686_018_427_387_904_f64, "4611686018427388000"),
            (f64::INFINITY, "9e999"),
            (f64::NEG_INFINITY, "-9e999"),
            (-2.25, "-2.25"),
            (1.5e-6, "0.0000015"),
            (1.234e22, "1.234e+22"),
        ];
        for &(v, want) in cases {
            assert_eq!(js_number(v), want, "{v:?}");
        }
    }

    #[test]
    fn integers_are_exact_and_flagged_beyond_2_pow_53() {
        assert_eq!(
            lit(Cell::Integer(9_007_199_254_740_992), Affinity::Integer),
            ("9007199254740992".into(), Form::Wrangler)
        );
        assert_eq!(
            lit(Cell::Integer(9_007_199_254_740_993), Affinity::Integer),
            ("9007199254740993".into(), Form::Lossless)
        );
        assert_eq!(
            lit(Cell::Integer(i64::MIN), Affinity::Blob),
            ("-9223372036854775808".into(), Form::Lossless)
        );
    }

    #[test]
    fn integral_reals_keep_their_class_outside_real_columns() {
        assert_eq!(
            lit(Cell::Real(4.0), Affinity::Real),
            ("4".into(), Form::Wrangler)
        );
        assert_eq!(
            lit(Cell::Real(3.0), Affinity::Blob),
            ("3.0".into(), Form::Lossless)
        );
        assert_eq!(
            lit(Cell::Real(-0.0), Affinity::Blob),
            ("-0.0".into(), Form::Lossless)
        );
        assert_eq!(
            lit(Cell::Real(1e20), Affinity::Blob),
            ("100000000000000000000".into(), Form::Wrangler)
        );
        assert_eq!(
            lit(Cell::Real(2.5), Affinity::Blob),
            ("2.5".into(), Form::Wrangler)
        );
    }

    #[test]
    fn text_forms() {
        let t = |s: &str| lit(Cell::Text(s.as_bytes()), Affinity::Text);
        assert_eq!(t("it's"), ("'it''s'".into(), Form::Wrangler));
        assert_eq!(
            t("line1\r\nline2\r\n"),
            (
                r"replace(replace('line1\r\nline2\r\n','\r',char(13)),'\n',char(10))".into(),
                Form::Wrangler
            )
        );
        assert_eq!(
            t("a\rb"),
            (r"replace('a\rb','\r',char(13))".into(), Form::Wrangler)
        );
        assert_eq!(
            t("\n"),
            (r"replace('\n','\n',char(10))".into(), Form::Wrangler)
        );
        // A literal backslash-n is safe without a real newline, and with one it is not.
        assert_eq!(t(r"C:\new"), (r"'C:\new'".into(), Form::Wrangler));
        assert_eq!(
            t("C:\\new\nx'"),
            (r"'C:\new'||char(10)||'x'''".into(), Form::Lossless)
        );
        assert_eq!(
            t("\\r\r\n"),
            (r"'\r'||char(13)||char(10)".into(), Form::Lossless)
        );
        assert_eq!(
            t("a\0b"),
            ("CAST(X'610062' AS TEXT)".into(), Form::Lossless)
        );
        assert_eq!(
            lit(Cell::Text(b"\xff\xfe"), Affinity::Text),
            ("CAST(X'fffe' AS TEXT)".into(), Form::Lossless)
        );
    }

    #[test]
    fn literals_stay_on_one_line() {
        let l = |s: &str| lit(Cell::Literal(s), Affinity::Blob);
        assert_eq!(
            l("'it''s\nfine\r\n'"),
            (
                "'it''s'||char(10)||'fine'||char(13)||''||char(10)||''".into(),
                Form::Wrangler
            )
        );
        assert_eq!(
            l("9223372036854775807"),
            ("9223372036854775807".into(), Form::Wrangler)
        );
        assert_eq!(l("X'00ff'"), ("X'00ff'".into(), Form::Wrangler));
    }

    #[test]
    fn blobs_are_lower_case_hex() {
        assert_eq!(
            lit(Cell::Blob(&[0, 0xDE, 0xAD]), Affinity::Text),
            ("X'00dead'".into(), Form::Wrangler)
        );
        assert_eq!(
            lit(Cell::Blob(&[]), Affinity::Blob),
            ("X''".into(), Form::Wrangler)
        );
    }

    #[test]
    fn affinity_rules() {
        assert_eq!(Affinity::of("BIGINT", false), Affinity::Integer);
        assert_eq!(Affinity::of("varchar(10)", false), Affinity::Text);
        assert_eq!(Affinity::of("", false), Affinity::Blob);
        assert_eq!(Affinity::of("DOUBLE PRECISION", false), Affinity::Real);
        assert_eq!(Affinity::of("ANY", false), Affinity::Numeric);
        assert_eq!(Affinity::of("ANY", true), Affinity::Blob);
        assert_eq!(Affinity::of("DECIMAL(10,2)", false), Affinity::Numeric);
    }
}
