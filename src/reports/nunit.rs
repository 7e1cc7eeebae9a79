//! NUnit XML. Version 2 (`<test-results>`): `<test-case name="Ns.Class.Method"
//! executed result success time>` with result Success, Failure, Error, Ignored, Skipped,
//! NotRunnable, Inconclusive or Cancelled. Version 3 (`<test-run>`): `<test-case name
//! fullname classname result="Passed|Failed|Skipped|Inconclusive|Warning" label
//! duration>` (`Failed` with `label="Error"` is an error). Both put the message in
//! `<failure>` or `<reason>` → `<message>`.

use std::io::BufRead;

use super::xml::{self, PendingCase, Xml};
use super::{Gathered, TestCase, seconds_to_ns};

pub(super) fn read_v2(input: impl BufRead, path: &str, into: &mut Gathered) -> Result<(), String> {
    read(input, path, into, &["test-results"], |attrs| {
        let result = attrs.get("result").unwrap_or_default();
        let status = if attrs
            .get("executed")
            .is_some_and(|e| e.eq_ignore_ascii_case("false"))
        {
            "SKIPPED"
        } else {
            match result {
                "Success" => "SUCCEEDED",
                "Failure" => "FAILED",
                "Error" => "ERROR",
                "Ignored" | "Skipped" | "NotRunnable" => "SKIPPED",
                _ => "UNKNOWN",
            }
        };
        let full = attrs.get("name").unwrap_or_default();
        let (prefix, name) = full.rsplit_once('.').unwrap_or(("", full));
        (
            prefix.to_owned(),
            name.to_owned(),
            status,
            seconds_to_ns(attrs.get("time")),
        )
    })
}

pub(super) fn read_v3(input: impl BufRead, path: &str, into: &mut Gathered) -> Result<(), String> {
    read(input, path, into, &["test-run"], |attrs| {
        let status = match (attrs.get("result").unwrap_or_default(), attrs.get("label")) {
            ("Passed", _) => "SUCCEEDED",
            ("Failed", Some("Error")) => "ERROR",
            ("Failed", _) => "FAILED",
            ("Skipped", _) => "SKIPPED",
            _ => "UNKNOWN",
        };
        let prefix = attrs
            .get("classname")
            .map(str::to_owned)
            .or_else(|| {
                let full = attrs.get("fullname").unwrap_or_default();
                full.rsplit_once('.').map(|(p, _)| p.to_owned())
            })
            .unwrap_or_default();
        let name = attrs
            .get("methodname")
            .or(attrs.get("name"))
            .unwrap_or_default()
            .to_owned();
        (prefix, name, status, seconds_to_ns(attrs.get("duration")))
    })
}

type Head = (String, String, &'static str, u64);

fn read(
    input: impl BufRead,
    path: &str,
    into: &mut Gathered,
    root: &[&str],
    head: impl Fn(&xml::Element) -> Head,
) -> Result<(), String> {
    let mut pending = PendingCase::default();
    xml::read(input, root, |event| {
        match event {
            Xml::Start("test-case", attrs) => {
                let (prefix, name, status, duration) = head(attrs);
                pending.start(TestCase {
                    test_raw_data_path: path.to_owned(),
                    prefix,
                    name,
                    status: status.to_owned(),
                    duration_in_nano_seconds: duration,
                    message: None,
                });
            }
            ref other => {
                if let Some(case) = pending.read(other, "message", "test-case") {
                    into.case(case);
                }
            }
        }
        Ok(())
    })
}
