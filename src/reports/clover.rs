//! Clover XML (OpenClover, PHPUnit's `--coverage-clover`, Istanbul's `clover` reporter):
//! per `<file name path>`, its `<metrics statements coveredstatements conditionals
//! coveredconditionals>` — statements stand for lines, conditionals for branches.

use std::io::BufRead;

use super::xml::{self, Xml};
use super::{Gathered, Tally, number};

pub(super) fn read(input: impl BufRead, into: &mut Gathered) -> Result<(), String> {
    let mut tally = Tally::default();
    // The current file and its depth: its own metrics are its children (a class's metrics
    // inside it are not added again).
    let mut file: Option<(String, usize)> = None;
    xml::read(input, &["coverage"], |event| {
        match event {
            Xml::Start("file", attrs) => {
                file = attrs
                    .get("path")
                    .or(attrs.get("name"))
                    .map(|f| (f.to_owned(), attrs.depth()));
            }
            Xml::End("file") => file = None,
            Xml::Start("metrics", attrs) => {
                if let Some((file, depth)) = &file
                    && attrs.depth() == depth + 1
                {
                    let statements = number(attrs.get("statements"));
                    let covered = number(attrs.get("coveredstatements")).min(statements);
                    let conditionals = number(attrs.get("conditionals"));
                    let covered_conditionals =
                        number(attrs.get("coveredconditionals")).min(conditionals);
                    tally.add(
                        file,
                        (covered, statements - covered),
                        (covered_conditionals, conditionals - covered_conditionals),
                    );
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    tally.into_gathered(into);
    Ok(())
}
