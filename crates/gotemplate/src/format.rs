//! Go's `fmt` as templates reach it: how an action prints a value (`%v`), `print`, `println` and
//! `printf` with the common verbs, flags, width and precision, including Go's `%!verb(type=value)`
//! / `%!v(MISSING)` / `%!(EXTRA ...)` renderings of misuse.

use super::json::marshal;
use super::strconv::{format_float_e, format_float_f, format_float_g, format_float_v, quote};
use super::value::{Print, Value};

/// Go's fmt refuses widths and precisions beyond this (`%!(BADWIDTH)`), which also keeps a
/// template from asking for a gigabyte of padding.
const MAX_WIDTH: i64 = 1_000_000;

/// fmt's `%v` of a single value, as `fmt.Fprint(w, v)` writes it.
pub(crate) fn sprint_value(v: &Value) -> String {
    let mut out = String::new();
    write_arg(&mut out, &Spec::verb('v'), v, 0);
    out
}

/// `fmt.Sprint`: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        write_arg(&mut out, &Spec::verb('v'), arg, 0);
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: always a space between operands, and a final newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_arg(&mut out, &Spec::verb('v'), arg, 0);
    }
    out.push('\n');
    out
}

/// One parsed `%` directive.
#[derive(Debug, Clone, Default)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
    verb: char,
}

impl Spec {
    fn verb(verb: char) -> Spec {
        Spec {
            verb,
            ..Spec::default()
        }
    }
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut arg_num = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        if spec.minus {
            spec.zero = false;
        }
        // Width: digits or `*` (taken from the next argument, which must be an int).
        if chars.peek() == Some(&'*') {
            chars.next();
            match args.get(arg_num) {
                Some(Value::Int(w)) if w.abs() <= MAX_WIDTH => {
                    spec.width = Some(w.unsigned_abs() as usize);
                    if *w < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            arg_num += 1;
        } else if let Some(w) = read_num(&mut chars) {
            if w > MAX_WIDTH as usize {
                out.push_str("%!(BADWIDTH)");
            } else {
                spec.width = Some(w);
            }
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            if chars.peek() == Some(&'*') {
                chars.next();
                match args.get(arg_num) {
                    Some(Value::Int(p)) if (0..=MAX_WIDTH).contains(p) => {
                        spec.prec = Some(*p as usize);
                    }
                    _ => out.push_str("%!(BADPREC)"),
                }
                arg_num += 1;
            } else {
                let p = read_num(&mut chars).unwrap_or(0);
                if p > MAX_WIDTH as usize {
                    out.push_str("%!(BADPREC)");
                } else {
                    spec.prec = Some(p);
                }
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        spec.verb = verb;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(arg_num) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(arg) => {
                write_arg(&mut out, &spec, arg, 0);
                arg_num += 1;
            }
        }
    }
    if arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[arg_num..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if matches!(arg, Value::Nil) {
                out.push_str("<nil>");
            } else {
                out.push_str(&type_string(arg));
                out.push('=');
                write_arg(&mut out, &Spec::verb('v'), arg, 0);
            }
        }
        out.push(')');
    }
    out
}

fn read_num(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
    }
    n
}

/// `%T`.
fn type_string(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".to_owned(),
        other => other.type_name().to_owned(),
    }
}

fn write_arg(out: &mut String, spec: &Spec, v: &Value, depth: usize) {
    if spec.verb == 'T' {
        pad(out, spec, &type_string(v));
        return;
    }
    if let Some(text) = stringer(v) {
        if matches!(spec.verb, 'v' | 's' | 'q' | 'x' | 'X') {
            write_string(out, spec, &text);
            return;
        }
    }
    match v {
        Value::Nil if depth > 0 || spec.verb == 'v' => pad(out, spec, "<nil>"),
        Value::Nil => out.push_str(&format!("%!{}(<nil>)", spec.verb)),
        Value::Bool(b) => match spec.verb {
            'v' | 't' => pad(out, spec, if *b { "true" } else { "false" }),
            _ => bad_verb(out, spec, v),
        },
        Value::Int(i) => write_int(out, spec, *i, v),
        Value::Float(f) => write_float(out, spec, *f, v),
        Value::String(s) => match spec.verb {
            'v' | 's' | 'q' | 'x' | 'X' => write_string(out, spec, s),
            _ => bad_verb(out, spec, v),
        },
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_arg(out, spec, item, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, val)) in m.entries().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_string(out, spec, k);
                out.push(':');
                write_arg(out, spec, val, depth + 1);
            }
            out.push(']');
        }
        Value::Struct(s) => {
            out.push('{');
            for (i, field) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if spec.plus && spec.verb == 'v' {
                    out.push_str(field.name);
                    out.push(':');
                }
                write_arg(out, spec, &field.value, depth + 1);
            }
            out.push('}');
        }
    }
}

/// The `String()` result of a value whose Go type has one (here: marshals to JSON).
fn stringer(v: &Value) -> Option<String> {
    let print = match v {
        Value::List(l) => l.print(),
        Value::Map(m) if m.print() == Print::Json && m.is_nil() => return Some("{}".to_owned()),
        Value::Map(m) => m.print(),
        Value::Struct(s) => s.print,
        _ => Print::Go,
    };
    (print == Print::Json).then(|| marshal(v).unwrap_or_default())
}

fn bad_verb(out: &mut String, spec: &Spec, v: &Value) {
    out.push_str(&format!("%!{}({}=", spec.verb, type_string(v)));
    write_arg(out, &Spec::verb('v'), v, 0);
    out.push(')');
}

fn write_string(out: &mut String, spec: &Spec, s: &str) {
    let s = match spec.prec {
        Some(p) if matches!(spec.verb, 'v' | 's' | 'q') => s.chars().take(p).collect(),
        _ => s.to_owned(),
    };
    match spec.verb {
        'q' => pad(out, spec, &quote(&s)),
        'x' => pad(out, spec, &hex(s.as_bytes(), false)),
        'X' => pad(out, spec, &hex(s.as_bytes(), true)),
        _ => pad(out, spec, &s),
    }
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

fn write_int(out: &mut String, spec: &Spec, i: i64, v: &Value) {
    let magnitude = i.unsigned_abs();
    let digits = match spec.verb {
        'v' | 'd' => magnitude.to_string(),
        'b' => format!("{magnitude:b}"),
        'o' | 'O' => format!("{magnitude:o}"),
        'x' => format!("{magnitude:x}"),
        'X' => format!("{magnitude:X}"),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}');
            return pad(out, spec, &c.to_string());
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}');
            let quoted = quote(&c.to_string());
            let inner = &quoted[1..quoted.len() - 1];
            let inner = if inner == "\\\"" { "\"" } else { inner };
            let inner = if inner == "'" { "\\'" } else { inner };
            return pad(out, spec, &format!("'{inner}'"));
        }
        'U' => return pad(out, spec, &format!("U+{magnitude:04X}")),
        _ => return bad_verb(out, spec, v),
    };
    let prefix = match (spec.sharp, spec.verb) {
        (true, 'b') => "0b",
        (true, 'o') => "0",
        (_, 'O') => "0o",
        (true, 'x') => "0x",
        (true, 'X') => "0X",
        _ => "",
    };
    let sign = sign_of(i < 0, spec);
    pad_number(out, spec, sign, &format!("{prefix}{digits}"));
}

fn sign_of(negative: bool, spec: &Spec) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn write_float(out: &mut String, spec: &Spec, f: f64, v: &Value) {
    let text = match (spec.verb, spec.prec) {
        ('v' | 'g' | 'G', None) => format_float_v(f),
        ('v' | 'g' | 'G', Some(p)) => format_float_g(f, p),
        ('e' | 'E', p) => format_float_e(f, p.unwrap_or(6)),
        ('f' | 'F', p) => format_float_f(f, p.unwrap_or(6)),
        _ => return bad_verb(out, spec, v),
    };
    if !f.is_finite() {
        // Infinities keep their sign ("+Inf") and, like NaN, are never zero-padded.
        let spec = Spec {
            zero: false,
            ..spec.clone()
        };
        return pad(out, &spec, &text);
    }
    let text = if matches!(spec.verb, 'E' | 'G') {
        text.to_uppercase()
    } else {
        text
    };
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    pad_number(out, spec, sign_of(negative, spec), body);
}

/// Pads a number: zeros go between the sign and the digits.
fn pad_number(out: &mut String, spec: &Spec, sign: &str, digits: &str) {
    let len = sign.chars().count() + digits.chars().count();
    match spec.width {
        Some(w) if spec.zero && w > len => {
            out.push_str(sign);
            out.push_str(&"0".repeat(w - len));
            out.push_str(digits);
        }
        _ => pad(out, spec, &format!("{sign}{digits}")),
    }
}

fn pad(out: &mut String, spec: &Spec, s: &str) {
    let len = s.chars().count();
    let fill = spec.width.map_or(0, |w| w.saturating_sub(len));
    if spec.minus {
        out.push_str(s);
        out.push_str(&" ".repeat(fill));
    } else {
        out.push_str(&" ".repeat(fill));
        out.push_str(s);
    }
}
