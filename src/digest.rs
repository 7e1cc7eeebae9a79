//! sha256 as wasmbuild writes it: lowercase hex. One home for the helpers the shell
//! (`hash-files`), the lifecycle (artifacts, cache keys), the runtimes, pip and the store
//! share, so a digest means the same thing everywhere.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex sha256 of everything `reader` yields, and its length.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), len));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// Whether `s` is a digest as wasmbuild writes them: 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lowercase_hex_sha256() {
        let known = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        assert_eq!(sha256_hex(b"hello world"), known);
        assert_eq!(
            sha256_reader(&b"hello world"[..]).unwrap(),
            (known.to_owned(), 11)
        );
        assert!(is_digest(known));
        assert!(!is_digest(&known.to_uppercase()));
        assert!(!is_digest(&known[1..]));
    }
}
