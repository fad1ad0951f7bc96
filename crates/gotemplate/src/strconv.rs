//! The parts of Go's `strconv` that templates observe: reading string, character and number
//! literals, `Quote` (for `%q`) and float formatting, both fmt's `%v` (shortest digits, `%e`
//! form from exponent 6 on: `1e+06`) and `encoding/json`'s (`%f` form up to 1e21).

use super::ast::Num;

/// Unquotes a Go string literal: `"..."` with escapes, or a raw `` `...` `` (carriage returns
/// dropped). `None` is Go's "invalid syntax".
pub(crate) fn unquote(s: &str) -> Option<String> {
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        return Some(s[1..s.len() - 1].replace('\r', ""));
    }
    if s.len() < 2 || !s.starts_with('"') || !s.ends_with('"') {
        return None;
    }
    let bytes = unescape(&s[1..s.len() - 1], '"')?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The code point of a Go character constant such as `'a'`, `'\n'` or `'\x41'`.
pub(crate) fn unquote_char(s: &str) -> Option<u32> {
    let body = s.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut chars = body.chars();
    let first = chars.next()?;
    if first != '\\' {
        return (chars.next().is_none() && first != '\'').then_some(first as u32);
    }
    let (value, rest) = escape(&body[1..], '\'')?;
    rest.is_empty().then_some(value)
}

/// Decodes the body of a quoted literal. Byte escapes (`\xff`, `\377`) may produce invalid UTF-8,
/// as in Go; callers convert lossily.
fn unescape(body: &str, quote: char) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if c == quote || c == '\n' {
            return None;
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let is_byte = matches!(rest.as_bytes().get(1), Some(b'x' | b'0'..=b'7'));
        let (value, tail) = escape(&rest[1..], quote)?;
        if is_byte {
            out.push(u8::try_from(value).ok()?);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(char::from_u32(value)?.encode_utf8(&mut buf).as_bytes());
        }
        rest = tail;
    }
    Some(out)
}

/// One escape sequence, `s` starting after the backslash. Returns the value and the remainder.
fn escape(s: &str, quote: char) -> Option<(u32, &str)> {
    let c = s.chars().next()?;
    let simple = match c {
        'a' => Some(7),
        'b' => Some(8),
        'f' => Some(12),
        'n' => Some(10),
        'r' => Some(13),
        't' => Some(9),
        'v' => Some(11),
        '\\' => Some(u32::from('\\')),
        '\'' | '"' if c == quote => Some(c as u32),
        _ => None,
    };
    if let Some(v) = simple {
        return Some((v, &s[1..]));
    }
    let (digits, radix) = match c {
        'x' => (2, 16),
        'u' => (4, 16),
        'U' => (8, 16),
        '0'..='7' => (3, 8),
        _ => return None,
    };
    let start = usize::from(radix == 16);
    let hex = s.get(start..start + digits)?;
    let value = u32::from_str_radix(hex, radix).ok()?;
    if radix == 8 && value > 255 {
        return None;
    }
    if matches!(c, 'u' | 'U') && char::from_u32(value).is_none() {
        return None;
    }
    Some((value, &s[start + digits..]))
}

/// Go's `strconv.Quote`: printable characters kept, the rest escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The shortest decimal digits that round-trip `f` (finite, non-negative) and the decimal
/// exponent of the first digit: 1234.5 is ("12345", 3).
fn shortest(f: f64) -> (String, i32) {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        None
    }
}

fn sign(f: f64) -> &'static str {
    if f.is_sign_negative() {
        "-"
    } else {
        ""
    }
}

/// `d.ddde±XX` from digits and exponent (Go always writes at least two exponent digits).
fn exp_form(digits: &str, exp: i32) -> String {
    let mut out = digits[..1].to_owned();
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let sign = if exp < 0 { '-' } else { '+' };
    out.push_str(&format!("e{sign}{:02}", exp.unsigned_abs()));
    out
}

/// Plain decimal form from digits and exponent, with no trailing zeros beyond the digits.
fn fixed_form(digits: &str, exp: i32) -> String {
    if exp < 0 {
        let zeros = "0".repeat(exp.unsigned_abs() as usize - 1);
        return format!("0.{zeros}{digits}");
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

/// fmt's `%v` (and shortest `%g`) for a float64.
pub(crate) fn format_float_v(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_owned();
    }
    let (digits, exp) = shortest(f.abs());
    let body = if !(-4..6).contains(&exp) {
        exp_form(&digits, exp)
    } else {
        fixed_form(&digits, exp)
    };
    format!("{}{body}", sign(f))
}

/// `encoding/json`'s float64 encoding; `None` for NaN and infinities, which Go refuses.
pub(crate) fn format_float_json(f: f64) -> Option<String> {
    if special(f).is_some() {
        return None;
    }
    let abs = f.abs();
    let (digits, exp) = shortest(abs);
    let body = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go cleans `e-07` to `e-7` but keeps `e+21`.
        let s = exp_form(&digits, exp);
        match s.find("e-0") {
            Some(i) => format!("{}e-{}", &s[..i], &s[i + 3..]),
            None => s,
        }
    } else {
        fixed_form(&digits, exp)
    };
    Some(format!("{}{body}", sign(f)))
}

/// `%e` with a precision.
pub(crate) fn format_float_e(f: f64, prec: usize) -> String {
    if let Some(s) = special(f) {
        return s.to_owned();
    }
    let sci = format!("{:.*e}", prec, f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign_char = if exp < 0 { '-' } else { '+' };
    format!("{}{mantissa}e{sign_char}{:02}", sign(f), exp.unsigned_abs())
}

/// `%f` with a precision.
pub(crate) fn format_float_f(f: f64, prec: usize) -> String {
    if let Some(s) = special(f) {
        return s.to_owned();
    }
    format!("{}{:.*}", sign(f), prec, f.abs())
}

/// `%g` with a precision: `prec` significant digits, trailing zeros dropped, `%e` form when the
/// exponent is below -4 or at least the precision.
pub(crate) fn format_float_g(f: f64, prec: usize) -> String {
    if let Some(s) = special(f) {
        return s.to_owned();
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let mut eprec = prec as i32;
    if eprec > digits.len() as i32 && digits.len() as i32 > exp {
        eprec = digits.len() as i32;
    }
    let body = if exp < -4 || exp >= eprec {
        exp_form(&digits, exp)
    } else {
        fixed_form(&digits, exp)
    };
    format!("{}{body}", sign(f))
}

/// Go's `newNumber` followed by `idealConstant`: character constants and integer-looking text
/// are ints, text with `.eEpP` (and not hex) is a float64.
pub(crate) fn number(text: &str) -> Result<Num, String> {
    if text.starts_with('\'') {
        let c =
            unquote_char(text).ok_or_else(|| format!("malformed character constant: {text}"))?;
        return Ok(Num::Int(i64::from(c)));
    }
    if text.ends_with('i') {
        return Err(format!("complex constant {text} is not supported"));
    }
    let clean = text.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = digits.to_ascii_lowercase();
    let int = if let Some(hex) = lower.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = lower.strip_prefix("0o") {
        u64::from_str_radix(oct, 8).ok()
    } else if let Some(bin) = lower.strip_prefix("0b") {
        u64::from_str_radix(bin, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        u64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<u64>().ok()
    };
    let is_hex = lower.starts_with("0x");
    let looks_float = !is_hex && text.contains(['.', 'e', 'E', 'p', 'P']);
    if let (Some(u), false) = (int, looks_float) {
        let signed = if neg {
            0i64.checked_sub_unsigned(u)
        } else {
            i64::try_from(u).ok()
        };
        return Ok(signed.map_or(Num::Overflow, Num::Int));
    }
    if is_hex {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    match clean.parse::<f64>() {
        Ok(f) if f.is_finite() && looks_float => Ok(Num::Float(f)),
        Ok(_) if !looks_float => Err(format!("integer overflow: {text:?}")),
        _ => Err(format!("illegal number syntax: {text:?}")),
    }
}
