//! Shell patterns (`*`, `?`, `[...]` with ranges, negation and `[:classes:]`, backslash
//! escapes) as used by globbing, `case`, `[[ == ]]` and `${x#pattern}`. Quoted characters
//! reach here escaped with a backslash, so they match only themselves.

#[derive(Debug, Clone)]
enum Token {
    Literal(char),
    AnyChar,
    AnyString,
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug, Clone)]
enum ClassItem {
    Char(char),
    Range(char, char),
    Named(String),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    pub(crate) fn new(pattern: &str) -> Self {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' if i + 1 < chars.len() => {
                    tokens.push(Token::Literal(chars[i + 1]));
                    i += 2;
                }
                '*' => {
                    if !matches!(tokens.last(), Some(Token::AnyString)) {
                        tokens.push(Token::AnyString);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::AnyChar);
                    i += 1;
                }
                '[' => match parse_class(&chars, i + 1) {
                    Some((token, next)) => {
                        tokens.push(token);
                        i = next;
                    }
                    None => {
                        tokens.push(Token::Literal('['));
                        i += 1;
                    }
                },
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        Pattern { tokens }
    }

    /// Whether the whole of `text` matches.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        self.matches_chars(&text)
    }

    fn matches_chars(&self, text: &[char]) -> bool {
        // Iterative matching with backtracking to the last `*`: linear in practice.
        let tokens = &self.tokens;
        let (mut t, mut s) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while s < text.len() {
            if t < tokens.len() {
                match &tokens[t] {
                    Token::AnyString => {
                        star = Some((t, s));
                        t += 1;
                        continue;
                    }
                    token if token_matches(token, text[s]) => {
                        t += 1;
                        s += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            match star {
                Some((star_t, star_s)) => {
                    t = star_t + 1;
                    s = star_s + 1;
                    star = Some((star_t, star_s + 1));
                }
                None => return false,
            }
        }
        tokens[t..]
            .iter()
            .all(|tok| matches!(tok, Token::AnyString))
    }

    /// Whether the pattern has any wildcard (so globbing must read directories).
    pub(crate) fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    /// Whether the pattern starts with a literal `.` (only such patterns match hidden files).
    pub(crate) fn starts_with_dot(&self) -> bool {
        matches!(self.tokens.first(), Some(Token::Literal('.')))
    }
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyChar => true,
        Token::AnyString => true,
        Token::Class { negated, items } => {
            let hit = items.iter().any(|item| match item {
                ClassItem::Char(x) => *x == c,
                ClassItem::Range(a, b) => (*a..=*b).contains(&c),
                ClassItem::Named(name) => class_contains(name, c),
            });
            hit != *negated
        }
    }
}

fn class_contains(name: &str, c: char) -> bool {
    match name {
        "alnum" => c.is_ascii_alphanumeric(),
        "alpha" => c.is_ascii_alphabetic(),
        "blank" => c == ' ' || c == '\t',
        "cntrl" => c.is_ascii_control(),
        "digit" => c.is_ascii_digit(),
        "graph" => c.is_ascii_graphic(),
        "lower" => c.is_ascii_lowercase(),
        "print" => c.is_ascii_graphic() || c == ' ',
        "punct" => c.is_ascii_punctuation(),
        "space" => c.is_ascii_whitespace() || c == '\x0b',
        "upper" => c.is_ascii_uppercase(),
        "xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

/// Parses a bracket expression whose `[` was just before `start`; `None` if it never closes.
fn parse_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let mut negated = false;
    if i < chars.len() && (chars[i] == '!' || chars[i] == '^') {
        negated = true;
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && !first {
            return Some((Token::Class { negated, items }, i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars[i + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                items.push(ClassItem::Named(rest[..end].to_owned()));
                i += 2 + rest[..end].chars().count() + 2;
                continue;
            }
        }
        let (lo, next) = if c == '\\' && i + 1 < chars.len() {
            (chars[i + 1], i + 2)
        } else {
            (c, i + 1)
        };
        if chars.get(next) == Some(&'-') && next + 1 < chars.len() && chars[next + 1] != ']' {
            let (hi, after) = if chars[next + 1] == '\\' && next + 2 < chars.len() {
                (chars[next + 2], next + 3)
            } else {
                (chars[next + 1], next + 2)
            };
            items.push(ClassItem::Range(lo, hi));
            i = after;
        } else {
            items.push(ClassItem::Char(lo));
            i = next;
        }
    }
    None
}

/// Removes the escaping backslashes of a pattern (the text a literal pattern stands for).
pub(crate) fn unescape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            } else {
                out.push('\\');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Which end of the value `${x#p}`-style operators trim, and how greedily.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trim {
    ShortestPrefix,
    LongestPrefix,
    ShortestSuffix,
    LongestSuffix,
}

/// `${x#p}`, `${x##p}`, `${x%p}`, `${x%%p}`.
#[cfg(test)]
pub(crate) fn trim(value: &str, pattern: &str, how: Trim) -> String {
    trim_while(value, pattern, how, &|_| true).unwrap_or_default()
}

/// [`trim`], asking `go_on` before each match attempt (each is linear in the value, so a
/// long value takes quadratic time): `None` when it says no (the session was stopped).
pub(crate) fn trim_while(
    value: &str,
    pattern: &str,
    how: Trim,
    go_on: &dyn Fn(usize) -> bool,
) -> Option<String> {
    let pattern = Pattern::new(pattern);
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let mut stopped = false;
    let mut try_match = |text: &[char]| {
        if !go_on(0) {
            stopped = true;
            return true;
        }
        pattern.matches_chars(text)
    };
    let found = match how {
        Trim::ShortestPrefix => (0..=n).find(|&i| try_match(&chars[..i])),
        Trim::LongestPrefix => (0..=n).rev().find(|&i| try_match(&chars[..i])),
        Trim::ShortestSuffix => (0..=n).rev().find(|&i| try_match(&chars[i..])),
        Trim::LongestSuffix => (0..=n).find(|&i| try_match(&chars[i..])),
    };
    if stopped {
        return None;
    }
    Some(match (found, how) {
        (None, _) => value.to_owned(),
        (Some(i), Trim::ShortestPrefix | Trim::LongestPrefix) => chars[i..].iter().collect(),
        (Some(i), Trim::ShortestSuffix | Trim::LongestSuffix) => chars[..i].iter().collect(),
    })
}

/// Where `${x/p/r}` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    First,
    All,
    Prefix,
    Suffix,
}

/// `${x/p/r}`, `${x//p/r}`, `${x/#p/r}`, `${x/%p/r}`: the longest match at the earliest place.
#[cfg(test)]
pub(crate) fn replace(value: &str, pattern: &str, replacement: &str, how: Replace) -> String {
    replace_while(value, pattern, replacement, how, &|_| true).unwrap_or_default()
}

/// [`replace`], asking `go_on` with the length of the result so far at each position of
/// the value: `None` when it says no (the session was stopped, the result is too large).
pub(crate) fn replace_while(
    value: &str,
    pattern: &str,
    replacement: &str,
    how: Replace,
    go_on: &dyn Fn(usize) -> bool,
) -> Option<String> {
    let pattern = Pattern::new(pattern);
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    match how {
        Replace::Prefix => Some(
            match (0..=n)
                .rev()
                .find(|&i| !go_on(0) || pattern.matches_chars(&chars[..i]))
            {
                _ if !go_on(0) => return None,
                Some(i) => format!("{replacement}{}", chars[i..].iter().collect::<String>()),
                None => value.to_owned(),
            },
        ),
        Replace::Suffix => Some(
            match (0..=n).find(|&i| !go_on(0) || pattern.matches_chars(&chars[i..])) {
                _ if !go_on(0) => return None,
                Some(i) => format!("{}{replacement}", chars[..i].iter().collect::<String>()),
                None => value.to_owned(),
            },
        ),
        Replace::First | Replace::All => {
            let mut out = String::new();
            let mut start = 0;
            let mut replaced = false;
            while start < n {
                if replaced && how == Replace::First {
                    break;
                }
                if !go_on(out.len()) {
                    return None;
                }
                let mut stopped = false;
                let found = (start + 1..=n).rev().find(|&end| {
                    if !go_on(out.len()) {
                        stopped = true;
                        return true;
                    }
                    pattern.matches_chars(&chars[start..end])
                });
                if stopped {
                    return None;
                }
                match found {
                    Some(end) => {
                        out.push_str(replacement);
                        start = end;
                        replaced = true;
                    }
                    None => {
                        out.push(chars[start]);
                        start += 1;
                    }
                }
            }
            out.extend(&chars[start..]);
            Some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_classes_and_escapes() {
        let m = |p: &str, t: &str| Pattern::new(p).matches(t);
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[[:digit:]]*", "1abc"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("[]]", "]"));
        assert!(m("[", "["));
        assert!(m("*a*b*", "xxaybz"));
        assert!(m("", ""));
        assert!(m("*", ""));
    }

    #[test]
    fn trimming_and_replacing() {
        assert_eq!(
            trim("a/b/c.tar.gz", "*/", Trim::ShortestPrefix),
            "b/c.tar.gz"
        );
        assert_eq!(trim("a/b/c.tar.gz", "*/", Trim::LongestPrefix), "c.tar.gz");
        assert_eq!(trim("c.tar.gz", ".*", Trim::ShortestSuffix), "c.tar");
        assert_eq!(trim("c.tar.gz", ".*", Trim::LongestSuffix), "c");
        assert_eq!(replace("aXbXc", "X", "-", Replace::First), "a-bXc");
        assert_eq!(replace("aXbXc", "X", "-", Replace::All), "a-b-c");
        assert_eq!(replace("abc", "a", "z", Replace::Prefix), "zbc");
        assert_eq!(replace("abc", "c", "z", Replace::Suffix), "abz");
        assert_eq!(replace("aaa", "a*", "x", Replace::All), "x");
    }
}
