//! JUnit XML, in the shapes real tools write it: a `<testsuites>` root (pytest, Jest's
//! jest-junit, go-junit-report, Gradle's aggregate) or a `<testsuite>` root (Maven
//! Surefire/Failsafe, Gradle per class), suites nested in suites, `<testcase>` with
//! `classname` (the prefix; the suite's name when absent), `name`, `time` in seconds, and a
//! `<failure>`, `<error>` or `<skipped>` child whose `message` (else its text) is the
//! message. `<system-out>` and properties are not kept.

use std::io::BufRead;

use super::xml::{self, Bounded, Xml};
use super::{Gathered, TestCase, seconds_to_ns};

struct Case {
    prefix: String,
    name: String,
    status: &'static str,
    duration: u64,
    message: Option<Bounded>,
    /// Inside `<failure>`/`<error>`/`<skipped>`: its text is the message.
    in_outcome: bool,
}

pub(super) fn read(input: impl BufRead, path: &str, into: &mut Gathered) -> Result<(), String> {
    let mut suites: Vec<String> = Vec::new();
    let mut case: Option<Case> = None;
    xml::read(input, &["testsuites", "testsuite"], |event| {
        match event {
            Xml::Start("testsuite", attrs) => {
                suites.push(attrs.get("name").unwrap_or_default().to_owned());
            }
            Xml::Start("testcase", attrs) => {
                let prefix = attrs
                    .get("classname")
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .or_else(|| suites.last().cloned())
                    .unwrap_or_default();
                case = Some(Case {
                    prefix,
                    name: attrs.get("name").unwrap_or_default().to_owned(),
                    status: "SUCCEEDED",
                    duration: seconds_to_ns(attrs.get("time")),
                    message: None,
                    in_outcome: false,
                });
            }
            Xml::Start(outcome @ ("failure" | "error" | "skipped"), attrs) => {
                if let Some(case) = &mut case {
                    // A failure wins over an error, either over a skip.
                    let status = match outcome {
                        "failure" => "FAILED",
                        "error" => "ERROR",
                        _ => "SKIPPED",
                    };
                    if case.status == "SUCCEEDED"
                        || (case.status == "SKIPPED" && status != "SKIPPED")
                        || (case.status == "ERROR" && status == "FAILED")
                    {
                        case.status = status;
                    }
                    let mut message = Bounded::default();
                    if let Some(text) = attrs.get("message").filter(|m| !m.is_empty()) {
                        message.push(text);
                        case.in_outcome = false;
                    } else {
                        case.in_outcome = true;
                    }
                    case.message.get_or_insert(message);
                }
            }
            Xml::Text(text) => {
                if let Some(Case {
                    in_outcome: true,
                    message: Some(message),
                    ..
                }) = &mut case
                {
                    message.push(text);
                }
            }
            Xml::End("failure" | "error" | "skipped") => {
                if let Some(case) = &mut case {
                    case.in_outcome = false;
                }
            }
            Xml::End("testcase") => {
                if let Some(case) = case.take() {
                    into.case(TestCase {
                        test_raw_data_path: path.to_owned(),
                        prefix: case.prefix,
                        name: case.name,
                        status: case.status.to_owned(),
                        duration_in_nano_seconds: case.duration,
                        message: case
                            .message
                            .map(|m| m.text.trim().to_owned())
                            .filter(|m| !m.is_empty()),
                    });
                }
            }
            Xml::End("testsuite") => {
                suites.pop();
            }
            _ => {}
        }
        Ok(())
    })
}
