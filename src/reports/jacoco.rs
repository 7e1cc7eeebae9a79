//! JaCoCo XML (`jacoco:report`, Gradle's `jacocoTestReport`): per `<sourcefile name>` in a
//! `<package name>`, its own `<counter type="LINE|BRANCH" missed covered>` (the counters
//! of its lines, classes and methods are not added again). The file's path is the
//! package's directory and the file's name.

use std::io::BufRead;

use super::xml::{self, Xml};
use super::{Gathered, Tally, number};

pub(super) fn read(input: impl BufRead, into: &mut Gathered) -> Result<(), String> {
    let mut tally = Tally::default();
    let mut package = String::new();
    // The current sourcefile and its depth: its own counters are its children.
    let mut file: Option<(String, usize)> = None;
    xml::read(input, &["report"], |event| {
        match event {
            Xml::Start("package", attrs) => {
                package = attrs.get("name").unwrap_or_default().to_owned()
            }
            Xml::Start("sourcefile", attrs) => {
                let name = attrs.get("name").unwrap_or_default();
                let path = if package.is_empty() {
                    name.to_owned()
                } else {
                    format!("{package}/{name}")
                };
                file = Some((path, attrs.depth()));
            }
            Xml::End("sourcefile") => file = None,
            Xml::Start("counter", attrs) => {
                if let Some((file, depth)) = &file
                    && attrs.depth() == depth + 1
                {
                    let counted = (number(attrs.get("covered")), number(attrs.get("missed")));
                    match attrs.get("type") {
                        Some("LINE") => tally.add(file, counted, (0, 0)),
                        Some("BRANCH") => tally.add(file, (0, 0), counted),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    tally.into_gathered(into);
    Ok(())
}
