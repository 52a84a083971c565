//! Value encodings D1 uses: JavaScript's `Number#toString` (in the dump and, through
//! `JSON.stringify`, in query answers), the dump's SQL literals and the answers' JSON values.

use rusqlite::types::ValueRef;

/// JavaScript's `Number#toString` of a finite double: the shortest digits that round-trip,
/// in plain notation for 1e-7 < |v| < 1e21, else `d.ddde+N` / `de-N`.
pub fn js_number(out: &mut Vec<u8>, v: f64) {
    // Integral and below 2^53: the integer's digits (the common case, without formatting).
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 && v != 0.0 {
        #[allow(clippy::cast_possible_truncation)]
        let i = v as i64;
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = i.unsigned_abs();
        while n > 0 {
            at -= 1;
            digits[at] = b'0' + u8::try_from(n % 10).unwrap_or(0);
            n /= 10;
        }
        if i < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(&digits[at..]);
        return;
    }
    if v == 0.0 {
        out.push(b'0'); // -0 too
        return;
    }
    // Rust's `{:e}` is the shortest round-trip form: `-1.2345e3`, `5e-324`.
    let text = format!("{v:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let k = i32::try_from(digits.len()).unwrap_or(1);
    let n = exp + 1; // the decimal point's position after the first n digits
    if negative {
        out.push(b'-');
    }
    if k <= n && n <= 21 {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(
            b'0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        let n = usize::try_from(n).unwrap_or(0);
        out.extend_from_slice(&digits[..n]);
        out.push(b'.');
        out.extend_from_slice(&digits[n..]);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', usize::try_from(-n).unwrap_or(0)));
        out.extend_from_slice(&digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if n - 1 < 0 { b'-' } else { b'+' });
        out.extend_from_slice((n - 1).unsigned_abs().to_string().as_bytes());
    }
}

/// A cell as D1's dump writes it (wrangler 4.164 / D1's server-side dumper).
pub fn sql_literal(out: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.extend_from_slice(b"NULL"),
        #[allow(clippy::cast_precision_loss)] // D1's dumper is JavaScript: every number a double.
        ValueRef::Integer(i) => js_number(out, i as f64),
        ValueRef::Real(r) if r.is_finite() => js_number(out, r),
        ValueRef::Real(r) => out.extend_from_slice(if r > 0.0 { b"9e999" } else { b"-9e999" }),
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let (cr, lf) = (text.contains('\r'), text.contains('\n'));
            if lf {
                out.extend_from_slice(b"replace(");
            }
            if cr {
                out.extend_from_slice(b"replace(");
            }
            out.push(b'\'');
            for b in text.bytes() {
                match b {
                    b'\'' => out.extend_from_slice(b"''"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(b),
                }
            }
            out.push(b'\'');
            if cr {
                out.extend_from_slice(b",'\\r',char(13))");
            }
            if lf {
                out.extend_from_slice(b",'\\n',char(10))");
            }
        }
        ValueRef::Blob(bytes) => {
            out.extend_from_slice(b"X'");
            hex(out, bytes);
            out.push(b'\'');
        }
    }
}

/// Lower-case hex.
pub fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// A cell as D1's query API sends it (`JSON.stringify` of what its JavaScript reads): numbers
/// through a double (integers past ±2^53 rounded, `3.0` as `3`), non-finite reals `null`,
/// text as a string (invalid UTF-8 as U+FFFD), blobs as arrays of byte numbers.
pub fn json_value(out: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.extend_from_slice(b"null"),
        #[allow(clippy::cast_precision_loss)]
        ValueRef::Integer(i) => js_number(out, i as f64),
        ValueRef::Real(r) if r.is_finite() => js_number(out, r),
        ValueRef::Real(_) => out.extend_from_slice(b"null"),
        ValueRef::Text(bytes) => json_string(out, &String::from_utf8_lossy(bytes)),
        ValueRef::Blob(bytes) => {
            out.push(b'[');
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if *b >= 100 {
                    out.push(b'0' + b / 100);
                }
                if *b >= 10 {
                    out.push(b'0' + b / 10 % 10);
                }
                out.push(b'0' + b % 10);
            }
            out.push(b']');
        }
    }
}

/// A JSON string as `JSON.stringify` writes it.
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(v: f64) -> String {
        let mut out = Vec::new();
        js_number(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_as_javascript_writes_them() {
        assert_eq!(js(1.0), "1");
        assert_eq!(js(-0.0), "0");
        assert_eq!(js(4.25), "4.25");
        assert_eq!(js(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(js(1e300), "1e+300");
        assert_eq!(js(1e-7), "1e-7");
        assert_eq!(js(1.5e-7), "1.5e-7");
        assert_eq!(js(0.000001), "0.000001");
        assert_eq!(js(5e-324), "5e-324");
        assert_eq!(js(1e21), "1e+21");
        assert_eq!(js(1e20), "100000000000000000000");
        assert_eq!(js(-123.456), "-123.456");
        #[allow(clippy::cast_precision_loss)]
        {
            assert_eq!(js(9_007_199_254_740_993_i64 as f64), "9007199254740992");
            assert_eq!(js(i64::MAX as f64), "9223372036854776000");
            assert_eq!(
                js(4_611_686_018_427_387_904_i64 as f64),
                "4611686018427388000"
            );
        }
    }

    #[test]
    fn text_as_the_dump_writes_it() {
        let lit = |s: &str| {
            let mut out = Vec::new();
            sql_literal(&mut out, ValueRef::Text(s.as_bytes()));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(lit("it's"), "'it''s'");
        assert_eq!(lit("a\nb"), r"replace('a\nb','\n',char(10))");
        assert_eq!(lit("a\rb"), r"replace('a\rb','\r',char(13))");
        assert_eq!(
            lit("line1\r\nline2\r\n"),
            r"replace(replace('line1\r\nline2\r\n','\r',char(13)),'\n',char(10))"
        );
    }
}
