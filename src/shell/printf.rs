//! Text formatting of the builtins: `printf` formats (C conversions with flags, width and
//! precision, `%b`, `%q`, format reuse), `echo -e` escapes and `$'...'` (ANSI-C) quoting.

use super::arithmetic::parse_integer;

/// Decodes the escapes of `$'...'`.
pub(crate) fn ansi_c_unescape(text: &str) -> String {
    let (out, _) = unescape(text, Escapes::AnsiC);
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `echo -e` escapes; the flag says `\c` was met (stop all output).
pub(crate) fn echo_unescape(text: &str) -> (Vec<u8>, bool) {
    unescape(text, Escapes::Echo)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escapes {
    /// `$'...'`: `\nnn` octal, `\cX` control characters.
    AnsiC,
    /// `echo -e` and `%b`: `\0nnn` octal, `\c` stops.
    Echo,
    /// A printf format: `\nnn` octal, `\c` is kept.
    Format,
}

fn unescape(text: &str, mode: Escapes) -> (Vec<u8>, bool) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    let push_char = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 >= chars.len() {
            push_char(&mut out, c);
            i += 1;
            continue;
        }
        let e = chars[i + 1];
        i += 2;
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'e' | 'E' => out.push(0x1b),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '\'' if mode != Escapes::Echo => out.push(b'\''),
            '"' if mode != Escapes::Echo => out.push(b'"'),
            '?' if mode == Escapes::AnsiC => out.push(b'?'),
            'c' if mode == Escapes::Echo => return (out, true),
            'c' if mode == Escapes::AnsiC && i < chars.len() => {
                out.push((chars[i] as u32 & 0x1f) as u8);
                i += 1;
            }
            '0'..='7' => {
                // Echo wants `\0nnn`; the others `\nnn`.
                let (start, max) = if mode == Escapes::Echo {
                    if e != '0' {
                        out.push(b'\\');
                        push_char(&mut out, e);
                        continue;
                    }
                    (i, 3)
                } else {
                    (i - 1, 3)
                };
                let mut end = start;
                while end < chars.len() && end - start < max && ('0'..='7').contains(&chars[end]) {
                    end += 1;
                }
                let digits: String = chars[start..end].iter().collect();
                out.push(
                    u32::from_str_radix(if digits.is_empty() { "0" } else { &digits }, 8)
                        .unwrap_or(0) as u8,
                );
                i = end;
            }
            'x' => {
                let mut end = i;
                while end < chars.len() && end - i < 2 && chars[end].is_ascii_hexdigit() {
                    end += 1;
                }
                if end == i {
                    out.extend_from_slice(b"\\x");
                } else {
                    let digits: String = chars[i..end].iter().collect();
                    out.push(u8::from_str_radix(&digits, 16).unwrap_or(0));
                    i = end;
                }
            }
            'u' | 'U' => {
                let max = if e == 'u' { 4 } else { 8 };
                let mut end = i;
                while end < chars.len() && end - i < max && chars[end].is_ascii_hexdigit() {
                    end += 1;
                }
                let digits: String = chars[i..end].iter().collect();
                match u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    Some(ch) => {
                        push_char(&mut out, ch);
                        i = end;
                    }
                    None => {
                        out.push(b'\\');
                        push_char(&mut out, e);
                    }
                }
            }
            other => {
                out.push(b'\\');
                push_char(&mut out, other);
            }
        }
    }
    (out, false)
}

/// The result of `printf`: the bytes and what was wrong with the format or arguments.
pub(crate) struct Formatted {
    pub bytes: Vec<u8>,
    pub invalid: Vec<String>,
    /// A conversion character printf does not know; the output stops there.
    pub bad_conversion: Option<char>,
    /// A field width or precision past [`MAX_FIELD_WIDTH`] was asked (and cut to it).
    pub too_wide: bool,
}

/// The widest field or precision `printf` makes (bash would build any size in memory).
pub(crate) const MAX_FIELD_WIDTH: usize = 1 << 20;

#[derive(Default)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alternate: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Formats `args` with `format`, reusing the format while arguments remain.
pub(crate) fn format(format: &str, args: &[String]) -> Formatted {
    let mut out = Formatted {
        bytes: Vec::new(),
        invalid: Vec::new(),
        bad_conversion: None,
        too_wide: false,
    };
    let mut next = 0;
    loop {
        let before = next;
        let stop = format_once(format, args, &mut next, &mut out);
        if stop || next >= args.len() || next == before {
            break;
        }
    }
    out
}

/// One pass over the format; returns true when `\c` stopped the output.
fn format_once(format: &str, args: &[String], next: &mut usize, out: &mut Formatted) -> bool {
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut literal = String::new();
    let take_arg = |next: &mut usize| -> Option<String> {
        let arg = args.get(*next).cloned();
        if arg.is_some() {
            *next += 1;
        }
        arg
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            literal.push(c);
            if i + 1 < chars.len() {
                literal.push(chars[i + 1]);
            }
            i += 2;
            continue;
        }
        if c != '%' {
            literal.push(c);
            i += 1;
            continue;
        }
        out.bytes.extend(unescape(&literal, Escapes::Format).0);
        literal.clear();
        i += 1;
        if i >= chars.len() {
            out.bytes.push(b'%');
            break;
        }
        if chars[i] == '%' {
            out.bytes.push(b'%');
            i += 1;
            continue;
        }
        let mut spec = Spec::default();
        while i < chars.len() {
            match chars[i] {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alternate = true,
                _ => break,
            }
            i += 1;
        }
        if i < chars.len() && chars[i] == '*' {
            let w = take_arg(next).and_then(|a| parse_integer(&a)).unwrap_or(0);
            if w < 0 {
                spec.left = true;
            }
            spec.width = Some(usize::try_from(w.unsigned_abs()).unwrap_or(usize::MAX));
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i > start {
                spec.width = Some(
                    chars[start..i]
                        .iter()
                        .collect::<String>()
                        .parse()
                        .unwrap_or(usize::MAX),
                );
            }
        }
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            if i < chars.len() && chars[i] == '*' {
                let p = take_arg(next).and_then(|a| parse_integer(&a)).unwrap_or(0);
                spec.precision = Some(usize::try_from(p.max(0)).unwrap_or(usize::MAX));
                i += 1;
            } else {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                // `%.s` is precision 0; digits past usize are too wide.
                spec.precision = Some(if i == start {
                    0
                } else {
                    chars[start..i]
                        .iter()
                        .collect::<String>()
                        .parse()
                        .unwrap_or(usize::MAX)
                });
            }
        }
        for value in [&mut spec.width, &mut spec.precision].into_iter().flatten() {
            if *value > MAX_FIELD_WIDTH {
                *value = MAX_FIELD_WIDTH;
                out.too_wide = true;
            }
        }
        // Length modifiers are accepted and ignored.
        while i < chars.len() && matches!(chars[i], 'h' | 'l' | 'L' | 'j' | 'z' | 't') {
            i += 1;
        }
        let Some(&conversion) = chars.get(i) else {
            break;
        };
        i += 1;
        match conversion {
            's' => {
                let arg = take_arg(next).unwrap_or_default();
                let text: String = match spec.precision {
                    Some(p) => arg.chars().take(p).collect(),
                    None => arg,
                };
                out.bytes.extend(pad(&spec, text, false).into_bytes());
            }
            'b' => {
                let arg = take_arg(next).unwrap_or_default();
                let (bytes, stop) = echo_unescape(&arg);
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let text: String = match spec.precision {
                    Some(p) => text.chars().take(p).collect(),
                    None => text,
                };
                out.bytes.extend(pad(&spec, text, false).into_bytes());
                if stop {
                    return true;
                }
            }
            'q' => {
                let arg = take_arg(next).unwrap_or_default();
                out.bytes
                    .extend(pad(&spec, quote_q(&arg), false).into_bytes());
            }
            'c' => {
                let arg = take_arg(next).unwrap_or_default();
                let text: String = arg.chars().take(1).collect();
                out.bytes.extend(pad(&spec, text, false).into_bytes());
            }
            'd' | 'i' | 'u' | 'o' | 'x' | 'X' => {
                let n = take_arg(next).map_or(0, |a| number_arg(&a, out));
                out.bytes
                    .extend(format_integer(&spec, conversion, n).into_bytes());
            }
            'f' | 'F' | 'e' | 'E' | 'g' | 'G' | 'a' | 'A' => {
                let x = take_arg(next).map_or(0.0, |a| float_arg(&a, out));
                out.bytes
                    .extend(format_float(&spec, conversion, x).into_bytes());
            }
            other => {
                out.bad_conversion = Some(other);
                return true;
            }
        }
    }
    out.bytes.extend(unescape(&literal, Escapes::Format).0);
    false
}

fn number_arg(arg: &str, out: &mut Formatted) -> i64 {
    if let Some(rest) = arg.strip_prefix(['\'', '"']) {
        return rest.chars().next().map_or(0, |c| c as i64);
    }
    match parse_integer(arg) {
        Some(n) => n,
        None => {
            out.invalid.push(arg.to_owned());
            // Like bash: the leading digits count.
            let digits: String = arg
                .trim()
                .chars()
                .enumerate()
                .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
                .map(|(_, c)| c)
                .collect();
            digits.parse().unwrap_or(0)
        }
    }
}

fn float_arg(arg: &str, out: &mut Formatted) -> f64 {
    if let Some(rest) = arg.strip_prefix(['\'', '"']) {
        return rest.chars().next().map_or(0.0, |c| c as u32 as f64);
    }
    match arg.trim().parse::<f64>() {
        Ok(x) => x,
        Err(_) => match parse_integer(arg) {
            Some(n) => n as f64,
            None => {
                out.invalid.push(arg.to_owned());
                0.0
            }
        },
    }
}

fn pad(spec: &Spec, text: String, numeric: bool) -> String {
    let width = spec.width.unwrap_or(0);
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if spec.left {
        format!("{text}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        // Zeros go after the sign or `0x` prefix.
        let sign_len = text
            .find(|c: char| !matches!(c, '-' | '+' | ' '))
            .unwrap_or(0);
        let prefix_len = if text[sign_len..].starts_with("0x") || text[sign_len..].starts_with("0X")
        {
            sign_len + 2
        } else {
            sign_len
        };
        format!(
            "{}{}{}",
            &text[..prefix_len],
            "0".repeat(fill),
            &text[prefix_len..]
        )
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

fn format_integer(spec: &Spec, conversion: char, n: i64) -> String {
    let mut digits = match conversion {
        'd' | 'i' => n.unsigned_abs().to_string(),
        'u' => (n as u64).to_string(),
        'o' => format!("{:o}", n as u64),
        'x' => format!("{:x}", n as u64),
        _ => format!("{:X}", n as u64),
    };
    if let Some(p) = spec.precision
        && digits.len() < p
    {
        digits = format!("{}{digits}", "0".repeat(p - digits.len()));
    }
    if spec.precision == Some(0) && n == 0 {
        digits.clear();
    }
    let prefix = match conversion {
        'd' | 'i' if n < 0 => "-",
        'd' | 'i' if spec.plus => "+",
        'd' | 'i' if spec.space => " ",
        'o' if spec.alternate && !digits.starts_with('0') => "0",
        'x' if spec.alternate && n != 0 => "0x",
        'X' if spec.alternate && n != 0 => "0X",
        _ => "",
    };
    let zero_ok = spec.precision.is_none();
    let text = format!("{prefix}{digits}");
    pad(
        &Spec {
            zero: spec.zero && zero_ok,
            ..Spec {
                left: spec.left,
                width: spec.width,
                ..Spec::default()
            }
        },
        text,
        true,
    )
}

fn format_float(spec: &Spec, conversion: char, x: f64) -> String {
    let precision = spec.precision.unwrap_or(6);
    let body = match conversion {
        'f' | 'F' => format!("{:.*}", precision, x.abs()),
        'e' | 'E' => c_exponent(x.abs(), precision, conversion == 'E'),
        'g' | 'G' => {
            let p = precision.max(1);
            if x == 0.0 {
                "0".to_owned()
            } else {
                let exp_form = format!("{:.*e}", p - 1, x.abs());
                let exponent: i32 = exp_form
                    .split('e')
                    .nth(1)
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0);
                let text = if exponent < -4 || exponent >= p as i32 {
                    c_exponent(x.abs(), p - 1, conversion == 'G')
                } else {
                    format!("{:.*}", (p as i32 - 1 - exponent).max(0) as usize, x.abs())
                };
                if spec.alternate {
                    text
                } else {
                    strip_zeros(&text)
                }
            }
        }
        _ => format!("{}", x.abs()),
    };
    let body = if x.is_infinite() {
        "inf".to_owned()
    } else if x.is_nan() {
        "nan".to_owned()
    } else {
        body
    };
    let sign = if x.is_sign_negative() && x != 0.0 {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    pad(
        &Spec {
            left: spec.left,
            zero: spec.zero,
            width: spec.width,
            ..Spec::default()
        },
        format!("{sign}{body}"),
        true,
    )
}

/// `1.5e+03` as C prints it (Rust prints `1.5e3`).
fn c_exponent(x: f64, precision: usize, upper: bool) -> String {
    let text = format!("{:.*e}", precision, x);
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}{e}{sign}{:02}", exponent.abs())
}

fn strip_zeros(text: &str) -> String {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    format!("{mantissa}{exponent}")
}

/// `%q`: bash's backslash quoting.
fn quote_q(arg: &str) -> String {
    if arg.is_empty() {
        return "''".into();
    }
    if arg.chars().any(|c| c.is_control()) {
        let mut out = String::from("$'");
        for c in arg.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\{:03o}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    let mut out = String::with_capacity(arg.len());
    for (i, c) in arg.chars().enumerate() {
        let special = matches!(
            c,
            ' ' | '\''
                | '"'
                | '\\'
                | '$'
                | '`'
                | '!'
                | '&'
                | '|'
                | ';'
                | '('
                | ')'
                | '<'
                | '>'
                | '*'
                | '?'
                | '['
                | ']'
                | '{'
                | '}'
                | '#'
                | ','
        ) || (c == '~' && i == 0);
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        String::from_utf8(format(fmt, &args).bytes).unwrap()
    }

    #[test]
    fn conversions_match_c() {
        assert_eq!(f("%s-%s\\n", &["a", "b", "c"]), "a-b\nc-\n");
        assert_eq!(
            f("%5d|%-5d|%05d", &["42", "42", "-42"]),
            "   42|42   |-0042"
        );
        assert_eq!(
            f("%x %X %o %#x", &["255", "255", "8", "255"]),
            "ff FF 10 0xff"
        );
        assert_eq!(
            f("%.2f %e %g %g", &["3.14159", "1500", "0.0001", "100000"]),
            "3.14 1.500000e+03 0.0001 100000"
        );
        assert_eq!(f("%g", &["1000000"]), "1e+06");
        assert_eq!(f("%c%c", &["abc", "x"]), "ax");
        assert_eq!(f("%b", &["a\\tb\\n"]), "a\tb\n");
        assert_eq!(f("%q", &["a b"]), "a\\ b");
        assert_eq!(f("%d", &["'A"]), "65");
        assert_eq!(f("%%|%.3s|%*d", &["abcdef", "4", "7"]), "%|abc|   7");
        assert_eq!(f("\\101\\x41", &[]), "AA");
    }

    #[test]
    fn echo_escapes_stop_at_backslash_c() {
        let (bytes, stop) = echo_unescape("a\\tb\\cignored");
        assert_eq!(bytes, b"a\tb");
        assert!(stop);
        assert_eq!(echo_unescape("\\0101").0, b"A");
        assert_eq!(ansi_c_unescape("a\\nb\\'\\x41"), "a\nb'A");
    }
}
