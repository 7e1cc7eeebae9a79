//! Limits checked before serde_yaml reads a buildspec, so hostile text costs little: the
//! size ([`MAX_BUILDSPEC_BYTES`]), valid UTF-8 (the first bad byte named by line and
//! column), and the nesting depth of collections ([`MAX_BUILDSPEC_DEPTH`]).
//!
//! The depth is measured on libyaml's own event stream (the parser serde_yaml uses), so it
//! is exactly the depth serde_yaml would see, flow (`[[[`) and block (`- - -`) alike, with
//! quotes, comments and block scalars understood as YAML understands them. The scan stops
//! at the first collection deeper than the limit: libyaml's cost grows with the depth of
//! the open flow collections, so deep nesting is refused before it gets expensive
//! (100,000 nested `[` took 31 s to reach serde_yaml's own recursion limit).

use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_yaml;

/// Largest buildspec read, in bytes (4 MiB; CodeBuild's own limit is far lower).
pub const MAX_BUILDSPEC_BYTES: usize = 4 << 20;

/// Deepest nesting of mappings and sequences in a buildspec (a real one nests about 6).
pub const MAX_BUILDSPEC_DEPTH: usize = 64;

/// A limit exceeded: 1-based line and column, and the message.
#[derive(Debug)]
pub(super) struct Exceeded {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The text of `bytes` if it is UTF-8, else where the first bad byte is (1-based line and
/// column, the column counted in characters as serde_yaml counts it).
pub(super) fn utf8(bytes: &[u8]) -> Result<&str, Exceeded> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        // The prefix is valid UTF-8, so this counts characters.
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        let bad = bytes[e.valid_up_to()];
        Exceeded {
            line,
            column,
            message: format!("invalid UTF-8 (byte 0x{bad:02x}): a buildspec must be UTF-8 text"),
        }
    })
}

/// Refuses text longer than [`MAX_BUILDSPEC_BYTES`].
pub(super) fn size(len: usize) -> Result<(), Exceeded> {
    if len > MAX_BUILDSPEC_BYTES {
        return Err(Exceeded {
            line: 1,
            column: 1,
            message: format!(
                "the buildspec is {len} bytes, over the limit of {MAX_BUILDSPEC_BYTES} bytes \
                 (MAX_BUILDSPEC_BYTES)"
            ),
        });
    }
    Ok(())
}

/// Refuses collections nested deeper than [`MAX_BUILDSPEC_DEPTH`], at the first one too
/// deep. Syntax errors are left to serde_yaml, which meets them at the same place.
pub(super) fn depth(text: &str) -> Result<(), Exceeded> {
    let mut parser = Parser::new(text);
    let mut depth = 0usize;
    while let Some((kind, line, column)) = parser.next_event() {
        match kind {
            unsafe_yaml::YAML_SEQUENCE_START_EVENT | unsafe_yaml::YAML_MAPPING_START_EVENT => {
                depth += 1;
                if depth > MAX_BUILDSPEC_DEPTH {
                    return Err(Exceeded {
                        line,
                        column,
                        message: format!(
                            "mappings and sequences nested more than {MAX_BUILDSPEC_DEPTH} \
                             deep (MAX_BUILDSPEC_DEPTH)"
                        ),
                    });
                }
            }
            unsafe_yaml::YAML_SEQUENCE_END_EVENT | unsafe_yaml::YAML_MAPPING_END_EVENT => {
                depth = depth.saturating_sub(1);
            }
            unsafe_yaml::YAML_STREAM_END_EVENT => break,
            _ => {}
        }
    }
    Ok(())
}

/// A libyaml event parser over borrowed text, deleted on drop.
struct Parser<'a> {
    parser: Box<unsafe_yaml::yaml_parser_t>,
    _text: &'a str,
    done: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        // SAFETY: `yaml_parser_initialize` fully initializes the parser it is given (it
        // zeroes it first); the input pointer stays valid for `'a`, which the parser (held
        // here with the text's lifetime) does not outlive. Initialization only fails on
        // allocation failure, after which the parser is zeroed and parsing reports an
        // error at once.
        unsafe {
            let mut parser: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>> = Box::new_uninit();
            let failed = unsafe_yaml::yaml_parser_initialize(parser.as_mut_ptr()).fail;
            let mut parser = parser.assume_init();
            let done = failed;
            if !failed {
                unsafe_yaml::yaml_parser_set_input_string(
                    &mut *parser,
                    text.as_ptr(),
                    text.len() as u64,
                );
            }
            Parser {
                parser,
                _text: text,
                done,
            }
        }
    }

    /// The next event's type and 1-based start line and column; `None` after the end or
    /// an error.
    fn next_event(&mut self) -> Option<(unsafe_yaml::yaml_event_type_t, usize, usize)> {
        if self.done {
            return None;
        }
        // SAFETY: the parser was initialized with valid input; an event filled by a
        // successful `yaml_parser_parse` is deleted right after its fields are read.
        unsafe {
            let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
            if unsafe_yaml::yaml_parser_parse(&mut *self.parser, event.as_mut_ptr()).fail {
                self.done = true;
                return None;
            }
            let mut event = event.assume_init();
            let kind = event.type_;
            let mark = event.start_mark;
            unsafe_yaml::yaml_event_delete(&mut event);
            if kind == unsafe_yaml::YAML_STREAM_END_EVENT {
                self.done = true;
            }
            Some((
                kind,
                usize::try_from(mark.line)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1),
                usize::try_from(mark.column)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1),
            ))
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: the parser was initialized (or zeroed by a failed initialization, which
        // `yaml_parser_delete` accepts) and is deleted once.
        unsafe { unsafe_yaml::yaml_parser_delete(&mut *self.parser) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_where_it_gets_too_deep() {
        let started = std::time::Instant::now();
        let error = depth(&"[".repeat(100_000)).expect_err("refused");
        assert_eq!((error.line, error.column), (1, MAX_BUILDSPEC_DEPTH + 1));
        let error = depth(&"- ".repeat(100_000)).expect_err("refused");
        assert_eq!(error.line, 1);
        let error = depth(&"{a: ".repeat(100_000)).expect_err("refused");
        assert!(error.message.contains("MAX_BUILDSPEC_DEPTH"));
        assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
        // Brackets in quotes, comments and block scalars are text, not nesting.
        let text = format!(
            "a: \"{0}\"\nb: '{0}'\n# {0}\nc: |\n  {0}\nd: [[[1]]]\n",
            "[".repeat(500)
        );
        assert!(depth(&text).is_ok());
    }

    #[test]
    fn invalid_utf8_is_located() {
        let error = utf8(b"version: 0.2\nphases:\n  b\xc3\xa9\xffx\n").unwrap_err();
        assert_eq!((error.line, error.column), (3, 5));
        assert!(error.message.contains("0xff"), "{}", error.message);
        assert!(utf8("ok é\n".as_bytes()).is_ok());
    }
}
