//! Visual Studio TRX (`dotnet test --logger trx`): `<UnitTestResult testId testName
//! outcome duration="00:00:00.0123456">` with `<Output><ErrorInfo><Message>`, and the
//! class of each test in `<TestDefinitions><UnitTest id><TestMethod className>`, which
//! comes after the results: cases wait for it (up to [`super::MAX_TEST_CASES`]).

use std::collections::HashMap;
use std::io::BufRead;

use super::xml::{self, PendingCase, Xml};
use super::{Gathered, MAX_TEST_CASES, TestCase};

/// `hh:mm:ss.fffffff` in nanoseconds.
fn duration(text: Option<&str>) -> u64 {
    let Some(text) = text else { return 0 };
    let mut parts = text.trim().rsplitn(3, ':');
    let seconds: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let minutes: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let hours: f64 = parts
        .next()
        .and_then(|s| s.rsplit('.').next()?.parse().ok())
        .unwrap_or(0.0);
    let total = hours * 3600.0 + minutes * 60.0 + seconds;
    if total.is_finite() && total > 0.0 {
        (total * 1e9).min(u64::MAX as f64) as u64
    } else {
        0
    }
}

pub(super) fn read(input: impl BufRead, path: &str, into: &mut Gathered) -> Result<(), String> {
    let mut waiting: Vec<(String, TestCase)> = Vec::new();
    let mut classes: HashMap<String, String> = HashMap::new();
    let mut pending = PendingCase::default();
    let mut pending_id = String::new();
    let mut definition: Option<String> = None;
    xml::read(input, &["TestRun"], |event| {
        match event {
            Xml::Start("UnitTestResult", attrs) => {
                let status = match attrs.get("outcome").unwrap_or_default() {
                    "Passed" | "PassedButRunAborted" => "SUCCEEDED",
                    "Failed" => "FAILED",
                    "Error" | "Timeout" | "Aborted" => "ERROR",
                    "NotExecuted" | "NotRunnable" | "Disconnected" => "SKIPPED",
                    _ => "UNKNOWN",
                };
                pending_id = attrs.get("testId").unwrap_or_default().to_owned();
                pending.start(TestCase {
                    test_raw_data_path: path.to_owned(),
                    prefix: String::new(),
                    name: attrs.get("testName").unwrap_or_default().to_owned(),
                    status: status.to_owned(),
                    duration_in_nano_seconds: duration(attrs.get("duration")),
                    message: None,
                });
            }
            Xml::Start("UnitTest", attrs) => {
                definition = attrs.get("id").map(str::to_owned);
            }
            Xml::Start("TestMethod", attrs) => {
                if let (Some(id), Some(class)) = (&definition, attrs.get("className")) {
                    // `Namespace.Class, Assembly, Version=…`: the class alone.
                    let class = class.split(',').next().unwrap_or(class).trim();
                    classes.insert(id.clone(), class.to_owned());
                }
            }
            ref other => {
                if let Some(case) = pending.read(other, "Message", "UnitTestResult") {
                    if waiting.len() < MAX_TEST_CASES {
                        waiting.push((std::mem::take(&mut pending_id), case));
                    } else {
                        into.case(case);
                    }
                }
            }
        }
        Ok(())
    })?;
    for (id, mut case) in waiting {
        if let Some(class) = classes.get(&id) {
            case.prefix = class.clone();
        }
        into.case(case);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_are_hours_minutes_seconds() {
        assert_eq!(super::duration(Some("00:00:01.5000000")), 1_500_000_000);
        assert_eq!(super::duration(Some("01:02:03")), 3_723_000_000_000);
        assert_eq!(super::duration(Some("junk")), 0);
    }
}
