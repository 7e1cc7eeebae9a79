//! TestNG XML (`testng-results.xml`): `<test-method>` elements inside `<class name>`, with
//! `status` PASS/FAIL/SKIP, `name`, `duration-ms`, and an `<exception>` whose `<message>`
//! is the message. Configuration methods (`is-config="true"`: `@BeforeMethod` and such)
//! are not test cases.

use std::io::BufRead;

use super::xml::{self, PendingCase, Xml};
use super::{Gathered, TestCase, number};

pub(super) fn read(input: impl BufRead, path: &str, into: &mut Gathered) -> Result<(), String> {
    let mut class = String::new();
    let mut pending = PendingCase::default();
    xml::read(input, &["testng-results"], |event| {
        match event {
            Xml::Start("class", attrs) => class = attrs.get("name").unwrap_or_default().to_owned(),
            Xml::Start("test-method", attrs) if attrs.get("is-config") != Some("true") => {
                let status = match attrs.get("status").unwrap_or_default() {
                    "PASS" => "SUCCEEDED",
                    "FAIL" => "FAILED",
                    "SKIP" => "SKIPPED",
                    _ => "UNKNOWN",
                };
                pending.start(TestCase {
                    test_raw_data_path: path.to_owned(),
                    prefix: class.clone(),
                    name: attrs.get("name").unwrap_or_default().to_owned(),
                    status: status.to_owned(),
                    duration_in_nano_seconds: number(attrs.get("duration-ms"))
                        .saturating_mul(1_000_000),
                    message: None,
                });
            }
            ref other => {
                if let Some(case) = pending.read(other, "message", "test-method") {
                    into.case(case);
                }
            }
        }
        Ok(())
    })
}
