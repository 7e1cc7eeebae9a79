//! Shell-style wildcard matching (`*`, `?`, `[...]`, `\`) of one name, as used by grep's
//! `--include`/`--exclude` and the archive tools' member selection.

/// Whether `name` matches the wildcard `pattern` (no special treatment of `/` or `.`).
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches(&pattern, &name)
}

fn matches(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, name index).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match bracket(&pattern[p + 1..], name[n]) {
                Some((len, true)) => Some(len + 1),
                Some((_, false)) => None,
                None => (name[n] == '[').then_some(1),
            },
            Some('\\') if p + 1 < pattern.len() => (pattern[p + 1] == name[n]).then_some(2),
            Some(&c) => (c == name[n]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                p += len;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                p = sp;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches `c` against a bracket expression whose text follows the `[`: returns the length
/// of that text (through its `]`) and whether `c` matches, or `None` when there is no
/// closing `]` (then the `[` is an ordinary character).
fn bracket(rest: &[char], c: char) -> Option<(usize, bool)> {
    let mut i = 0;
    let negate = matches!(rest.first(), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let &lo = rest.get(i)?;
        if lo == ']' && !first {
            break;
        }
        first = false;
        if rest.get(i + 1) == Some(&'-') && rest.get(i + 2).is_some_and(|&hi| hi != ']') {
            let hi = rest[i + 2];
            found |= lo <= c && c <= hi;
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
    Some((i + 1, found != negate))
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn wildcards() {
        assert!(fnmatch("*.rs", "main.rs"));
        assert!(!fnmatch("*.rs", "main.rs.bak"));
        assert!(fnmatch("a?c*", "abcdef"));
        assert!(fnmatch("[a-c]x[!0-9]", "bxz"));
        assert!(!fnmatch("[a-c]x[!0-9]", "bx1"));
        assert!(fnmatch("\\*", "*"));
        assert!(fnmatch("*", ""));
        assert!(fnmatch("*a*b", "xxaxxb"));
        assert!(fnmatch("a[b", "a[b"));
    }
}
