//! Translates POSIX regular expressions — basic (BRE, with the GNU extensions `\+ \? \|`),
//! extended (ERE) and Emacs syntax — into patterns for the `regex` crate, so that grep and
//! find can match them without a C regex library. The translation keeps POSIX meanings
//! that the `regex` crate spells differently: bracket expressions (`[]a]`, `[[:alpha:]]`,
//! `[a\]`), literal `*` at the start of an expression, literal `{` that opens no interval,
//! `^`/`$` that are literal in the middle of a BRE, stacked repetitions (`a**`), and the
//! GNU escapes `\< \> \` \'`. Back-references have no equivalent and are an error.

use std::fmt;

/// Which flavour of regular expression a pattern is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// POSIX basic (`grep`, `sed`, `find -regextype posix-basic`): `\( \) \{ \} \| \+ \?`.
    Basic,
    /// POSIX extended (`grep -E`, `sed -E`): `( ) { } | + ?`.
    Extended,
    /// Emacs (`find -regex` by default): `+ ?` unescaped, `\( \) \| \{ \}` escaped.
    Emacs,
}

/// A pattern that cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Translates `pattern` from `dialect` into the `regex` crate's syntax.
pub fn translate(pattern: &str, dialect: Dialect) -> Result<String, Error> {
    let mut t = Translator {
        chars: pattern.chars().collect(),
        pos: 0,
        dialect,
        out: String::with_capacity(pattern.len() + 8),
        groups: Vec::new(),
        last_atom: None,
        last_was_repeat: false,
        at_start: true,
    };
    t.run()?;
    Ok(t.out)
}

/// Escapes `c` for use outside or inside a bracket expression of the `regex` crate.
fn push_literal(out: &mut String, c: char) {
    if regex_syntax::is_meta_character(c) {
        out.push('\\');
    }
    out.push(c);
}

enum Token {
    Literal(char),
    Dot,
    Star,
    Plus,
    Question,
    Interval,
    GroupOpen,
    GroupClose,
    Alternation,
    Caret,
    Dollar,
    Bracket,
    /// A `regex` escape: its text and whether it can be repeated (`\w` can, `\b` cannot).
    Escape(&'static str, bool),
}

struct Translator {
    chars: Vec<char>,
    pos: usize,
    dialect: Dialect,
    out: String,
    /// Output offsets of the groups still open.
    groups: Vec<usize>,
    /// Output offset where the last repeatable atom starts, if the last item is one.
    last_atom: Option<usize>,
    /// Whether the last atom already carries a repetition operator.
    last_was_repeat: bool,
    /// At the start of the expression, a group or an alternative.
    at_start: bool,
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn run(&mut self) -> Result<(), Error> {
        while let Some(token) = self.next_token()? {
            match token {
                Token::Literal(c) => {
                    let mut s = String::new();
                    push_literal(&mut s, c);
                    self.atom(&s);
                }
                Token::Dot => self.atom("."),
                Token::Escape(text, true) => self.atom(text),
                Token::Escape(text, false) => self.assertion(text),
                Token::Bracket => {
                    let class = self.bracket()?;
                    self.atom(&class);
                }
                Token::Star => self.repeat_or_literal("*", '*'),
                Token::Plus => self.repeat_or_literal("+", '+'),
                Token::Question => self.repeat_or_literal("?", '?'),
                Token::Interval => {
                    let start = self.pos;
                    match (self.last_atom.is_some(), self.interval()?) {
                        (true, Some(rep)) => self.repeat(&rep),
                        _ => {
                            self.pos = start;
                            self.atom("\\{");
                        }
                    }
                }
                Token::GroupOpen => {
                    self.groups.push(self.out.len());
                    self.out.push('(');
                    self.last_atom = None;
                    self.at_start = true;
                }
                Token::GroupClose => match self.groups.pop() {
                    Some(start) => {
                        self.out.push(')');
                        self.last_atom = Some(start);
                        self.last_was_repeat = false;
                        self.at_start = false;
                    }
                    None if self.dialect == Dialect::Extended => self.atom("\\)"),
                    None => return Err(Error("Unmatched ) or \\)".into())),
                },
                Token::Alternation => {
                    self.out.push('|');
                    self.last_atom = None;
                    self.at_start = true;
                }
                Token::Caret => {
                    if self.dialect == Dialect::Extended || self.at_start {
                        self.assertion("^");
                    } else {
                        self.atom("\\^");
                    }
                }
                Token::Dollar => {
                    if self.dialect == Dialect::Extended || self.at_branch_end() {
                        self.assertion("$");
                    } else {
                        self.atom("\\$");
                    }
                }
            }
        }
        if !self.groups.is_empty() {
            return Err(Error("Unmatched ( or \\(".into()));
        }
        Ok(())
    }

    fn next_token(&mut self) -> Result<Option<Token>, Error> {
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        self.pos += 1;
        let extended = self.dialect == Dialect::Extended;
        let basic = self.dialect == Dialect::Basic;
        if c == '\\' {
            let Some(e) = self.peek() else {
                return Err(Error("Trailing backslash".into()));
            };
            self.pos += 1;
            return Ok(Some(match e {
                '(' if !extended => Token::GroupOpen,
                ')' if !extended => Token::GroupClose,
                '|' if !extended => Token::Alternation,
                '{' if !extended => Token::Interval,
                '+' if basic => Token::Plus,
                '?' if basic => Token::Question,
                '1'..='9' => {
                    return Err(Error(format!("back-references (\\{e}) are not supported")));
                }
                'w' => Token::Escape("\\w", true),
                'W' => Token::Escape("\\W", true),
                's' => Token::Escape("\\s", true),
                'S' => Token::Escape("\\S", true),
                'b' => Token::Escape("\\b", false),
                'B' => Token::Escape("\\B", false),
                '<' => Token::Escape("\\b{start}", false),
                '>' => Token::Escape("\\b{end}", false),
                '`' => Token::Escape("\\A", false),
                '\'' => Token::Escape("\\z", false),
                other => Token::Literal(other),
            }));
        }
        Ok(Some(match c {
            '.' => Token::Dot,
            '*' => Token::Star,
            '[' => Token::Bracket,
            '^' => Token::Caret,
            '$' => Token::Dollar,
            '+' if !basic => Token::Plus,
            '?' if !basic => Token::Question,
            '{' if extended => Token::Interval,
            '(' if extended => Token::GroupOpen,
            ')' if extended => Token::GroupClose,
            '|' if extended => Token::Alternation,
            other => Token::Literal(other),
        }))
    }

    fn atom(&mut self, text: &str) {
        self.last_atom = Some(self.out.len());
        self.out.push_str(text);
        self.last_was_repeat = false;
        self.at_start = false;
    }

    fn assertion(&mut self, text: &str) {
        self.out.push_str(text);
        self.last_atom = None;
        self.at_start = false;
    }

    /// Applies a repetition to the last atom; stacked repetitions (`a**`, `a+?`) apply to
    /// the repeated atom, as in POSIX, not as the `regex` crate's lazy `?`.
    fn repeat(&mut self, op: &str) {
        if let Some(start) = self.last_atom {
            if self.last_was_repeat {
                self.out.insert_str(start, "(?:");
                self.out.push(')');
            }
            self.out.push_str(op);
            self.last_was_repeat = true;
        }
    }

    /// A repetition operator with nothing to repeat is an ordinary character.
    fn repeat_or_literal(&mut self, op: &str, literal: char) {
        if self.last_atom.is_some() {
            self.repeat(op);
        } else {
            let mut s = String::new();
            push_literal(&mut s, literal);
            self.atom(&s);
        }
    }

    /// Whether `$` here ends a BRE branch: at the end, or before `\)` or `\|`.
    fn at_branch_end(&self) -> bool {
        matches!(
            (self.peek(), self.peek_at(1)),
            (None, _) | (Some('\\'), Some(')' | '|'))
        )
    }

    fn digits(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse().ok()
    }

    /// Parses an interval after its `{`: returns the `regex` repetition, or `None` when the
    /// text is no interval (then an ERE `{` is literal; in a BRE it is an error).
    fn interval(&mut self) -> Result<Option<String>, Error> {
        let min = self.digits();
        let (comma, max) = if self.peek() == Some(',') {
            self.pos += 1;
            (true, self.digits())
        } else {
            (false, None)
        };
        let closed = if self.dialect == Dialect::Extended {
            if self.peek() == Some('}') {
                self.pos += 1;
                true
            } else {
                false
            }
        } else if self.peek() == Some('\\') && self.peek_at(1) == Some('}') {
            self.pos += 2;
            true
        } else {
            false
        };
        if !closed || (min.is_none() && !comma) {
            if self.dialect == Dialect::Extended {
                return Ok(None);
            }
            return Err(Error("Invalid content of \\{\\}".into()));
        }
        let min = min.unwrap_or(0);
        if let Some(max) = max
            && max < min
        {
            return Err(Error("Invalid content of \\{\\}".into()));
        }
        Ok(Some(match (comma, max) {
            (false, _) => format!("{{{min}}}"),
            (true, None) => format!("{{{min},}}"),
            (true, Some(max)) => format!("{{{min},{max}}}"),
        }))
    }

    /// Reads a `[.c.]`, `[=c=]` or `[:name:]` after its `[`; returns the delimiter and the
    /// text between the delimiters.
    fn bracket_special(&mut self) -> Result<(char, String), Error> {
        let delim = self.peek().unwrap_or(':');
        self.pos += 1;
        let start = self.pos;
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(c), Some(']')) if c == delim => break,
                (None, _) => return Err(Error("Unmatched [, [^, [:, [., or [=".into())),
                _ => self.pos += 1,
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        self.pos += 2;
        Ok((delim, text))
    }

    /// One character of a bracket expression, or a character class.
    fn bracket_item(&mut self, c: char) -> Result<BracketItem, Error> {
        if c == '[' && matches!(self.peek(), Some(':' | '=' | '.')) {
            let (delim, text) = self.bracket_special()?;
            if delim == ':' {
                const CLASSES: [&str; 12] = [
                    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print",
                    "punct", "space", "upper", "xdigit",
                ];
                if !CLASSES.contains(&text.as_str()) {
                    return Err(Error("Invalid character class name".into()));
                }
                return Ok(BracketItem::Class(text));
            }
            let mut chars = text.chars();
            return match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(BracketItem::Char(c)),
                _ => Err(Error("Invalid collation character".into())),
            };
        }
        Ok(BracketItem::Char(c))
    }

    /// Translates a bracket expression after its `[`: backslash is an ordinary character,
    /// `]` first is literal, `-` first or last is literal.
    fn bracket(&mut self) -> Result<String, Error> {
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.pos += 1;
            out.push('^');
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err(Error("Unmatched [, [^, [:, [., or [=".into()));
            };
            self.pos += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            match self.bracket_item(c)? {
                BracketItem::Class(name) => {
                    out.push_str("[:");
                    out.push_str(&name);
                    out.push_str(":]");
                }
                BracketItem::Char(lo) => {
                    let is_range =
                        self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']');
                    if is_range {
                        self.pos += 1;
                        let end = self.peek().unwrap_or(']');
                        self.pos += 1;
                        let BracketItem::Char(hi) = self.bracket_item(end)? else {
                            return Err(Error("Invalid range end".into()));
                        };
                        if hi < lo {
                            return Err(Error("Invalid range end".into()));
                        }
                        push_literal(&mut out, lo);
                        out.push('-');
                        push_literal(&mut out, hi);
                    } else {
                        push_literal(&mut out, lo);
                    }
                }
            }
        }
        out.push(']');
        Ok(out)
    }
}

enum BracketItem {
    Char(char),
    Class(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bre(p: &str) -> String {
        translate(p, Dialect::Basic).unwrap()
    }

    fn ere(p: &str) -> String {
        translate(p, Dialect::Extended).unwrap()
    }

    #[test]
    fn basic_groups_and_intervals() {
        assert_eq!(bre(r"\(ab\)*c\{2,3\}"), "(ab)*c{2,3}");
        assert_eq!(bre(r"a\|b\+c\?"), "a|b+c?");
        assert_eq!(bre("(a)+{1}|?"), r"\(a\)\+\{1\}\|\?");
    }

    #[test]
    fn basic_anchors_are_literal_inside() {
        assert_eq!(bre("^a^b$c$"), r"^a\^b\$c$");
        assert_eq!(bre(r"\(^a$\)"), "(^a$)");
        assert_eq!(bre("*a"), r"\*a");
        assert_eq!(bre("^*a"), r"^\*a");
    }

    #[test]
    fn extended() {
        assert_eq!(ere("(a|b)+c{2}"), "(a|b)+c{2}");
        assert_eq!(ere("a{x"), r"a\{x");
        assert_eq!(ere("*a)"), r"\*a\)");
        assert_eq!(ere("a**"), "(?:a*)*");
        assert_eq!(ere("a+?"), "(?:a+)?");
        assert_eq!(ere(r"\<w\>"), r"\b{start}w\b{end}");
    }

    #[test]
    fn brackets() {
        assert_eq!(bre(r"[]a]"), r"[\]a]");
        assert_eq!(bre(r"[^]a-]"), r"[^\]a\-]");
        assert_eq!(bre(r"[a\]"), r"[a\\]");
        assert_eq!(bre("[[:alpha:]_-]"), r"[[:alpha:]_\-]");
        assert_eq!(bre("[a-z0-9]"), "[a-z0-9]");
        assert_eq!(bre("[[.-.]a]"), r"[\-a]");
        assert_eq!(bre("[a[]"), r"[a\[]");
        assert!(translate("[a", Dialect::Basic).is_err());
        assert!(translate("[[:nope:]]", Dialect::Basic).is_err());
    }

    #[test]
    fn errors() {
        assert!(translate(r"\(a\)\1", Dialect::Basic).is_err());
        assert!(translate(r"\(a", Dialect::Basic).is_err());
        assert!(translate(r"a\", Dialect::Basic).is_err());
        assert!(translate("(a", Dialect::Extended).is_err());
    }

    #[test]
    fn emacs() {
        let t = |p| translate(p, Dialect::Emacs).unwrap();
        assert_eq!(t(r".*/ab+c"), r".*/ab+c");
        assert_eq!(t(r"\(a\|b\)\{2\}"), "(a|b){2}");
        assert_eq!(t("a{2}"), r"a\{2\}");
    }

    #[test]
    fn translations_compile() {
        for p in [
            r"\(ab\)*c\{2,3\}",
            "^a^b$c$",
            "[]a]",
            "[^]a-]",
            r"[a\]",
            "a**",
        ] {
            regex_syntax::Parser::new().parse(&bre(p)).unwrap();
        }
    }
}
