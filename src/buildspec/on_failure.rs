//! A phase's `on-failure`: `ABORT`, `CONTINUE`, `RETRY`, `RETRY-count`, `RETRY-regex` and
//! `RETRY-count-regex`, as CodeBuild spells them.

use serde::de::{Deserialize, Deserializer};

use super::de::scalar;

/// Retries when `RETRY` names no count.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
/// The largest count `RETRY-count` accepts.
pub const MAX_RETRY_ATTEMPTS: u32 = 100;

/// What to do when a command of a phase fails.
#[derive(Debug, Clone, Default)]
pub enum OnFailure {
    /// Stop the build (the default).
    #[default]
    Abort,
    /// Carry on with the next phase.
    Continue,
    /// Run the phase again, at most `attempts` more times; with a `pattern`, only when the
    /// failure's message matches it.
    Retry {
        attempts: u32,
        pattern: Option<regex::Regex>,
    },
}

impl PartialEq for OnFailure {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (OnFailure::Abort, OnFailure::Abort) | (OnFailure::Continue, OnFailure::Continue) => {
                true
            }
            (
                OnFailure::Retry {
                    attempts: a,
                    pattern: p,
                },
                OnFailure::Retry {
                    attempts: b,
                    pattern: q,
                },
            ) => {
                a == b
                    && p.as_ref().map(regex::Regex::as_str) == q.as_ref().map(regex::Regex::as_str)
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for OnFailure {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "ABORT" => return Ok(OnFailure::Abort),
            "CONTINUE" => return Ok(OnFailure::Continue),
            "RETRY" => {
                return Ok(OnFailure::Retry {
                    attempts: DEFAULT_RETRY_ATTEMPTS,
                    pattern: None,
                });
            }
            _ => {}
        }
        let Some(rest) = text.strip_prefix("RETRY-") else {
            return Err(format!(
                "invalid on-failure `{text}`: expected ABORT, CONTINUE, RETRY, RETRY-count, \
                 RETRY-regex or RETRY-count-regex"
            ));
        };
        // Leading digits are the count when they are all there is or a `-` follows them;
        // otherwise the whole rest is the pattern (`RETRY-5xx` retries on /5xx/).
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (count, pattern) = if digits > 0 && digits == rest.len() {
            (Some(rest), None)
        } else if digits > 0 && rest[digits..].starts_with('-') {
            (Some(&rest[..digits]), Some(&rest[digits + 1..]))
        } else {
            (None, Some(rest))
        };
        let attempts = match count {
            None => DEFAULT_RETRY_ATTEMPTS,
            Some(count) => count
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_RETRY_ATTEMPTS).contains(n))
                .ok_or_else(|| {
                    format!(
                        "invalid on-failure `{text}`: the retry count must be 1 to {MAX_RETRY_ATTEMPTS}"
                    )
                })?,
        };
        let pattern = match pattern {
            None => None,
            Some("") => {
                return Err(format!(
                    "invalid on-failure `{text}`: the retry pattern is empty"
                ));
            }
            Some(pattern) => Some(regex::Regex::new(pattern).map_err(|e| {
                format!(
                    "invalid on-failure `{text}`: bad regex `{pattern}`: {}",
                    regex_problem(&e)
                )
            })?),
        };
        Ok(OnFailure::Retry { attempts, pattern })
    }
}

/// The one-line reason of a regex error (its display draws the pattern over several lines).
fn regex_problem(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or(""))
        .trim()
        .to_owned()
}

impl<'de> Deserialize<'de> for OnFailure {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "ABORT, CONTINUE or RETRY[-count][-regex]", str::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(text: &str) -> (u32, Option<String>) {
        match text.parse::<OnFailure>().unwrap() {
            OnFailure::Retry { attempts, pattern } => {
                (attempts, pattern.map(|p| p.as_str().to_owned()))
            }
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn every_spelling() {
        assert_eq!("ABORT".parse::<OnFailure>(), Ok(OnFailure::Abort));
        assert_eq!("CONTINUE".parse::<OnFailure>(), Ok(OnFailure::Continue));
        assert_eq!(retry("RETRY"), (3, None));
        assert_eq!(retry("RETRY-5"), (5, None));
        assert_eq!(retry("RETRY-timed out"), (3, Some("timed out".into())));
        assert_eq!(
            retry("RETRY-2-exit status 1"),
            (2, Some("exit status 1".into()))
        );
        assert_eq!(retry("RETRY-5xx"), (3, Some("5xx".into())));
        assert_eq!(retry("RETRY-1-a-b"), (1, Some("a-b".into())));
    }

    #[test]
    fn bad_spellings_say_why() {
        for (text, why) in [
            ("abort", "expected ABORT"),
            ("RETRY-", "the retry pattern is empty"),
            ("RETRY-3-", "the retry pattern is empty"),
            ("RETRY-0", "retry count must be 1 to 100"),
            ("RETRY-101", "retry count must be 1 to 100"),
            ("RETRY-99999999999", "retry count must be 1 to 100"),
            ("RETRY-2-(x", "bad regex `(x`: unclosed group"),
        ] {
            let error = text.parse::<OnFailure>().unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn equality_compares_patterns_by_text() {
        assert_eq!(retry("RETRY-a"), retry("RETRY-3-a"));
        assert_ne!(
            "RETRY-a".parse::<OnFailure>(),
            "RETRY-b".parse::<OnFailure>()
        );
        assert_ne!(
            "RETRY-a".parse::<OnFailure>(),
            "RETRY-2-a".parse::<OnFailure>()
        );
    }
}
