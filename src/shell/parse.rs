//! Parsing with `brush-parser`'s bash grammar, and the options the interpreter uses for words,
//! arithmetic and here-documents. Syntax errors become [`ShellError::Syntax`] with the line
//! and column; nothing here runs anything.

use brush_parser::{ParseError, ParserOptions, ast};

use super::ShellError;

/// Options for scripts and words: bash, with extglob off as in a non-interactive bash.
pub(crate) fn options() -> ParserOptions {
    ParserOptions {
        enable_extended_globbing: false,
        posix_mode: false,
        sh_mode: false,
        tilde_expansion_at_word_start: true,
        tilde_expansion_after_colon: false,
        ..ParserOptions::default()
    }
}

/// Options for assignment values: a tilde also expands after each `:` (as in `PATH=~/bin:~/x`).
pub(crate) fn assignment_options() -> ParserOptions {
    ParserOptions {
        tilde_expansion_after_colon: true,
        ..options()
    }
}

/// Options for text that is not at the start of a shell word (arithmetic, where `~` is
/// bitwise not).
pub(crate) fn no_tilde_options() -> ParserOptions {
    ParserOptions {
        tilde_expansion_at_word_start: false,
        ..options()
    }
}

/// Runs one of brush-parser's parsers on user input: a panic of it (it unwraps some numbers,
/// e.g. `{1..99999999999999999999}`) becomes `None`, never a crash of wasmbuild.
/// The panic is silent: its message would only confuse a user whose input is handled.
pub(crate) fn contained<T>(parse: impl FnOnce() -> T) -> Option<T> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    thread_local! {
        static QUIET: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(|quiet| quiet.get()) == 0 {
                previous(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(quiet.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).ok();
    QUIET.with(|quiet| quiet.set(quiet.get() - 1));
    result
}

/// Deepest syntactic nesting a script may have (brackets and compound commands, roughly
/// counted before parsing): the parser, the interpreter and dropping the tree all recurse
/// once per level, and a stack overflow would abort wasmbuild.
pub(crate) const MAX_SYNTAX_DEPTH: usize = 1000;

/// A rough upper bound of the nesting of `text`: `(` and `{` add a level wherever they are
/// (quotes are not understood), `)` and `}` remove one; the words opening compound commands
/// (`if`, `while`, …) add one at the start of a command, their closers remove one, except in
/// single quotes, comments and here-document bodies (so that the text of a here-document,
/// code of another language, never counts). Only meant to catch thousands of levels.
fn rough_nesting(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let (mut depth, mut max, mut max_line) = (0usize, 0usize, 1usize);
    let mut line = 1;
    let mut command_start = true;
    // Here-documents announced on this line: (delimiter, tabs stripped).
    let mut pending: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    let count = |b: u8, depth: &mut usize| match b {
        b'(' | b'{' => *depth += 1,
        b')' | b'}' => *depth = depth.saturating_sub(1),
        _ => {}
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            line += 1;
            i += 1;
            command_start = true;
            // The bodies of the here-documents of the line just ended.
            for (delimiter, strip) in std::mem::take(&mut pending) {
                while i < bytes.len() {
                    let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    let body_line = &text[i..end];
                    let body_line = if strip {
                        body_line.trim_start_matches('\t')
                    } else {
                        body_line
                    };
                    let last = body_line == delimiter;
                    if !last {
                        for &c in &bytes[i..end] {
                            count(c, &mut depth);
                        }
                        max = max.max(depth);
                    }
                    i = (end + 1).min(bytes.len());
                    line += 1;
                    if last {
                        break;
                    }
                }
            }
            continue;
        }
        count(b, &mut depth);
        if b.is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &text[start..i];
            if command_start {
                match word {
                    "if" | "while" | "until" | "for" | "case" | "select" => depth += 1,
                    "fi" | "done" | "esac" => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            command_start = matches!(word, "then" | "do" | "else" | "elif" | "time");
        } else if b == b'\'' || (b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace())) {
            // A single-quoted string or a comment: brackets count, words do not.
            let close = if b == b'#' { b'\n' } else { b'\'' };
            i += 1;
            while i < bytes.len() && bytes[i] != close {
                count(bytes[i], &mut depth);
                if bytes[i] == b'\n' {
                    line += 1;
                }
                i += 1;
            }
            if b == b'\'' {
                i += 1;
            }
            command_start = false;
        } else if bytes[i..].starts_with(b"<<") && !bytes[i..].starts_with(b"<<<") {
            // Bytes, not `text[i..]`: `i` may be inside a character (`é` in `echo héllo`).
            i += 2;
            let strip = bytes.get(i) == Some(&b'-');
            if strip {
                i += 1;
            }
            while bytes.get(i).is_some_and(|c| *c == b' ' || *c == b'\t') {
                i += 1;
            }
            let start = i;
            while bytes
                .get(i)
                .is_some_and(|c| !c.is_ascii_whitespace() && !b";&|<>()".contains(c))
            {
                i += 1;
            }
            let delimiter: String = text[start..i]
                .chars()
                .filter(|c| !matches!(c, '\'' | '"' | '\\'))
                .collect();
            if !delimiter.is_empty() {
                pending.push((delimiter, strip));
            }
            command_start = false;
        } else {
            if !b.is_ascii_whitespace() {
                command_start = matches!(b, b';' | b'&' | b'|' | b'(' | b'{' | b'!');
            }
            i += 1;
        }
        if depth > max {
            max = depth;
            max_line = line;
        }
    }
    (max, max_line)
}

/// Parses a whole script.
pub(crate) fn parse_program(text: &str, file: &str) -> Result<ast::Program, ShellError> {
    let (depth, line) = rough_nesting(text);
    if depth > MAX_SYNTAX_DEPTH {
        return Err(ShellError::Syntax {
            file: file.to_owned(),
            line,
            column: 1,
            message: format!("syntax error: nesting too deep (limit {MAX_SYNTAX_DEPTH} levels)"),
        });
    }
    let mut parser = brush_parser::Parser::new(std::io::Cursor::new(text), &options());
    // The parser is a third-party crate working on user input: contain any panic of it.
    let result = contained(|| parser.parse_program());
    match result {
        Some(Ok(program)) => Ok(program),
        Some(Err(err)) => Err(syntax_error(&err, text, file)),
        None => Err(ShellError::Syntax {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: "syntax error: the parser could not read this script".into(),
        }),
    }
}

fn syntax_error(err: &ParseError, text: &str, file: &str) -> ShellError {
    let (line, column, message) = match err {
        ParseError::ParsingNear(pos) => {
            let token = token_at(text, pos.index);
            let message = if token.is_empty() {
                "syntax error".to_owned()
            } else {
                format!("syntax error near unexpected token `{token}'")
            };
            (pos.line, pos.column, message)
        }
        ParseError::ParsingAtEndOfInput => {
            let (line, column) = end_position(text);
            (
                line,
                column,
                "syntax error: unexpected end of file".to_owned(),
            )
        }
        ParseError::Tokenizing { inner, position } => {
            let (line, column) = position
                .as_ref()
                .map_or_else(|| end_position(text), |p| (p.line, p.column));
            (line, column, format!("syntax error: {inner}"))
        }
    };
    ShellError::Syntax {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// The shell token that starts at char index `index`, for the message.
fn token_at(text: &str, index: usize) -> String {
    let rest: String = text.chars().skip(index).collect();
    let rest = rest.trim_start_matches([' ', '\t']);
    const OPERATORS: [&str; 12] = [
        ";;&", ";;", ";&", "&&", "||", "|&", ";", "&", "|", "(", ")", "\n",
    ];
    for op in OPERATORS {
        if rest.starts_with(op) {
            return if op == "\n" {
                "newline".into()
            } else {
                op.into()
            };
        }
    }
    rest.chars()
        .take_while(|c| !c.is_whitespace() && !";&|()<>".contains(*c))
        .collect()
}

fn end_position(text: &str) -> (usize, usize) {
    let trimmed = text.trim_end_matches('\n');
    let line = trimmed.lines().count().max(1);
    let column = trimmed.lines().last().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax(text: &str) -> (usize, usize, String) {
        match parse_program(text, "t.sh") {
            Err(ShellError::Syntax {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let (line, column, message) = syntax("echo ok\nif true; then\n  echo x\nfi fi\n");
        assert_eq!(line, 4);
        assert!(column >= 1, "{column}");
        assert!(message.contains("syntax error"), "{message}");
        let (line, _, message) = syntax("echo ok\nif true; then echo x\n");
        assert_eq!(line, 2);
        assert!(message.contains("end of file"), "{message}");
        let (line, _, _) = syntax("echo 'unterminated\n");
        assert!(line >= 1);
    }
}

#[cfg(test)]
mod nesting_tests {
    use super::rough_nesting;

    #[test]
    fn text_beyond_ascii_is_scanned_whole_characters() {
        // Found by the buildspec fuzzer: any non-ASCII character outside quotes panicked.
        assert_eq!(rough_nesting("echo héllo ✓ 😀 <<EOF\né\nEOF\n").0, 0);
        assert_eq!(rough_nesting("(é(").0, 2);
    }

    #[test]
    fn rough_nesting_counts_code_not_data() {
        assert_eq!(rough_nesting("echo hi").0, 0);
        assert_eq!(rough_nesting("if a; then if b; then c; fi; fi").0, 2);
        assert_eq!(rough_nesting("while a; do ( { b; } ); done").0, 3);
        assert_eq!(rough_nesting("echo for if while").0, 0);
        let python = format!(
            "cat > x.py <<'EOF'\n{}EOF\necho done",
            "if x:\n    pass\n".repeat(5000)
        );
        assert_eq!(rough_nesting(&python).0, 0);
        let tabs = format!(
            "cat <<-END\n{}\tEND\nif a; then b; fi",
            "for x in y:\n".repeat(3000)
        );
        assert_eq!(rough_nesting(&tabs).0, 1);
        assert_eq!(
            rough_nesting(&format!("echo '{}'", "if ".repeat(3000))).0,
            0
        );
        assert_eq!(
            rough_nesting(&format!("# {}\necho", "while ".repeat(3000))).0,
            0
        );
        assert_eq!(rough_nesting(&"(".repeat(3000)).0, 3000);
        assert_eq!(
            rough_nesting(&format!("cat <<EOF\n{}\nEOF", "{".repeat(3000))).0,
            3000
        );
    }
}
