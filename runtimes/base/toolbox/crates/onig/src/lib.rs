//! The part of the `onig` 6.5 API that findutils uses (`Regex::with_options`, `Syntax`,
//! `RegexOptions`, `is_match`, `find`), implemented over the pure-Rust `regex` crate with
//! `posix-regex` translating the POSIX and Emacs syntaxes. It replaces the real bindings,
//! whose Oniguruma C library cannot be built for `wasm32-wasip1` without a WASI C
//! toolchain. Differences from Oniguruma: no back-references, and POSIX leftmost-longest
//! whole-string matching for `is_match` (which is what `find -regex` means anyway).

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use posix_regex::Dialect;

/// Compile options; only `IGNORECASE` changes anything here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegexOptions(u32);

impl RegexOptions {
    pub const REGEX_OPTION_NONE: RegexOptions = RegexOptions(0);
    pub const REGEX_OPTION_IGNORECASE: RegexOptions = RegexOptions(1);
    pub const REGEX_OPTION_EXTEND: RegexOptions = RegexOptions(2);
    pub const REGEX_OPTION_MULTILINE: RegexOptions = RegexOptions(4);
    pub const REGEX_OPTION_SINGLELINE: RegexOptions = RegexOptions(8);

    pub fn contains(self, other: RegexOptions) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for RegexOptions {
    type Output = RegexOptions;
    fn bitor(self, rhs: RegexOptions) -> RegexOptions {
        RegexOptions(self.0 | rhs.0)
    }
}

impl BitOrAssign for RegexOptions {
    fn bitor_assign(&mut self, rhs: RegexOptions) {
        self.0 |= rhs.0;
    }
}

/// A pattern syntax.
#[derive(Debug)]
pub struct Syntax {
    dialect: Dialect,
}

static POSIX_BASIC: Syntax = Syntax {
    dialect: Dialect::Basic,
};
static POSIX_EXTENDED: Syntax = Syntax {
    dialect: Dialect::Extended,
};
static EMACS: Syntax = Syntax {
    dialect: Dialect::Emacs,
};

impl Syntax {
    pub fn posix_basic() -> &'static Syntax {
        &POSIX_BASIC
    }

    /// GNU grep's syntax: a BRE with `\+ \? \|`, which `posix-regex` always accepts.
    pub fn grep() -> &'static Syntax {
        &POSIX_BASIC
    }

    pub fn posix_extended() -> &'static Syntax {
        &POSIX_EXTENDED
    }

    pub fn emacs() -> &'static Syntax {
        &EMACS
    }

    /// The options the syntax implies: none.
    pub fn options(&self) -> RegexOptions {
        RegexOptions::REGEX_OPTION_NONE
    }
}

/// A pattern that does not compile.
#[derive(Debug, Clone)]
pub struct Error {
    message: String,
}

impl Error {
    pub fn description(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    /// Finds the pattern anywhere.
    search: regex::Regex,
    /// Matches the whole text.
    whole: regex::Regex,
}

impl Regex {
    /// Compiles a POSIX extended pattern.
    pub fn new(pattern: &str) -> Result<Regex, Error> {
        Regex::with_options(
            pattern,
            RegexOptions::REGEX_OPTION_NONE,
            Syntax::posix_extended(),
        )
    }

    pub fn with_options(
        pattern: &str,
        options: RegexOptions,
        syntax: &Syntax,
    ) -> Result<Regex, Error> {
        let translated = posix_regex::translate(pattern, syntax.dialect).map_err(|e| Error {
            message: e.to_string(),
        })?;
        let flags = if options.contains(RegexOptions::REGEX_OPTION_IGNORECASE) {
            "(?si)"
        } else {
            "(?s)"
        };
        let build = |text: String| {
            regex::Regex::new(&text).map_err(|e| Error {
                message: e.to_string(),
            })
        };
        Ok(Regex {
            search: build(format!("{flags}(?:{translated})"))?,
            whole: build(format!("{flags}\\A(?:{translated})\\z"))?,
        })
    }

    /// Whether the pattern matches all of `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.whole.is_match(text)
    }

    /// The first match in `text`, as byte offsets.
    pub fn find(&self, text: &str) -> Option<(usize, usize)> {
        self.search.find(text).map(|m| (m.start(), m.end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_search() {
        let r = Regex::with_options(
            r".*/ab\{1,3\}c",
            RegexOptions::REGEX_OPTION_NONE,
            Syntax::posix_basic(),
        )
        .unwrap();
        assert!(r.is_match("./abbc"));
        assert!(!r.is_match("./abbcd"));
        assert_eq!(r.find("x./abc"), Some((0, 6)));
        let r = Regex::with_options(
            "a|ab",
            RegexOptions::REGEX_OPTION_IGNORECASE,
            Syntax::posix_extended(),
        )
        .unwrap();
        assert!(r.is_match("AB"));
    }
}
