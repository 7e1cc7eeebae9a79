//! Limits checked before serde_yaml reads a buildspec, so hostile text costs little: the
//! size ([`MAX_BUILDSPEC_BYTES`]) and valid UTF-8 (the first bad byte named by line and
//! column). The nesting depth ([`MAX_BUILDSPEC_DEPTH`]) is measured by the outline.

/// Largest buildspec read, in bytes (4 MiB; CodeBuild's own limit is far lower).
pub const MAX_BUILDSPEC_BYTES: usize = 4 << 20;

/// Deepest nesting of mappings and sequences in a buildspec (a real one nests about 6).
pub const MAX_BUILDSPEC_DEPTH: usize = 64;

/// A located problem (a limit exceeded, a warning): 1-based line and column, and the message.
#[derive(Debug)]
pub(super) struct Located {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The text of `bytes` if it is UTF-8, else where the first bad byte is (1-based line and
/// column, the column counted in characters as serde_yaml counts it).
pub(super) fn utf8(bytes: &[u8]) -> Result<&str, Located> {
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
        Located {
            line,
            column,
            message: format!("invalid UTF-8 (byte 0x{bad:02x}): a buildspec must be UTF-8 text"),
        }
    })
}

/// Refuses text longer than [`MAX_BUILDSPEC_BYTES`].
pub(super) fn size(len: usize) -> Result<(), Located> {
    if len > MAX_BUILDSPEC_BYTES {
        return Err(Located {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_located() {
        let error = utf8(b"version: 0.2\nphases:\n  b\xc3\xa9\xffx\n").unwrap_err();
        assert_eq!((error.line, error.column), (3, 5));
        assert!(error.message.contains("0xff"), "{}", error.message);
        assert!(utf8("ok é\n".as_bytes()).is_ok());
    }
}
