//! Cobertura XML (coverage.py's `coverage xml`, Istanbul's `cobertura` reporter, and the
//! JVM tools): `<class filename>` elements whose `<lines><line number hits branch
//! condition-coverage="50% (1/2)">` give each line's hits and branches. A file's classes
//! are added up; the lines repeated under `<methods>` are not counted twice.

use std::io::BufRead;

use super::xml::{self, Xml};
use super::{Gathered, Tally, number};

/// `50% (1/2)` → (1 covered, 1 missed).
fn condition_coverage(text: &str) -> Option<(u64, u64)> {
    let inner = text.split_once('(')?.1.split_once(')')?.0;
    let (covered, total) = inner.split_once('/')?;
    let covered: u64 = covered.trim().parse().ok()?;
    let total: u64 = total.trim().parse().ok()?;
    Some((covered.min(total), total.saturating_sub(covered)))
}

pub(super) fn read(input: impl BufRead, into: &mut Gathered) -> Result<(), String> {
    let mut tally = Tally::default();
    // The current class's file and depth: its lines are `<class><lines><line>`; those
    // under `<methods>` sit deeper and are not counted twice.
    let mut file: Option<(String, usize)> = None;
    xml::read(input, &["coverage"], |event| {
        match event {
            Xml::Start("class", attrs) => {
                file = attrs.get("filename").map(|f| (f.to_owned(), attrs.depth()));
            }
            Xml::End("class") => file = None,
            Xml::Start("line", attrs) => {
                if let Some((file, depth)) = &file
                    && attrs.depth() == depth + 2
                {
                    let hit = number(attrs.get("hits")) > 0;
                    let branches = if attrs.get("branch") == Some("true") {
                        attrs
                            .get("condition-coverage")
                            .and_then(condition_coverage)
                            .unwrap_or((0, 0))
                    } else {
                        (0, 0)
                    };
                    tally.add(file, (u64::from(hit), u64::from(!hit)), branches);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    tally.into_gathered(into);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn condition_coverage_is_read() {
        assert_eq!(super::condition_coverage("50% (1/2)"), Some((1, 1)));
        assert_eq!(super::condition_coverage("100% (4/4)"), Some((4, 0)));
        assert_eq!(super::condition_coverage("junk"), None);
    }
}
