//! Cucumber JSON (cucumber-jvm, cucumber-js, cucumber-ruby `--format json`): an array of
//! features, each with `elements` (scenarios; backgrounds are not test cases) whose
//! `steps` have a `result` with `status` (passed, failed, skipped, pending, undefined,
//! ambiguous), `duration` in nanoseconds and `error_message`. A scenario failed when a
//! step failed (or is ambiguous), was skipped when its steps did not all run, and
//! succeeded when every step passed; its duration is its steps' (hooks included).

use serde_json::Value;

use super::xml::Bounded;
use super::{Gathered, TestCase};

pub(super) fn read(json: Value, path: &str, into: &mut Gathered) -> Result<(), String> {
    let features = json
        .as_array()
        .ok_or("not Cucumber JSON: expected an array of features")?;
    for feature in features {
        let prefix = feature["name"].as_str().unwrap_or_default();
        for element in feature["elements"].as_array().into_iter().flatten() {
            if element["type"].as_str() == Some("background") {
                continue;
            }
            let mut statuses = Vec::new();
            let mut duration = 0u64;
            let mut message = Bounded::default();
            let steps = ["before", "steps", "after"]
                .into_iter()
                .flat_map(|key| element[key].as_array().into_iter().flatten());
            for step in steps {
                let result = &step["result"];
                let status = result["status"].as_str().unwrap_or("unknown");
                duration = duration.saturating_add(result["duration"].as_u64().unwrap_or(0));
                if let Some(error) = result["error_message"].as_str() {
                    message.push(error);
                }
                statuses.push(status.to_owned());
            }
            let status = if statuses.iter().any(|s| s == "failed" || s == "ambiguous") {
                "FAILED"
            } else if statuses.is_empty() || statuses.iter().all(|s| s == "passed") {
                "SUCCEEDED"
            } else if statuses
                .iter()
                .any(|s| matches!(s.as_str(), "skipped" | "pending" | "undefined"))
            {
                "SKIPPED"
            } else {
                "UNKNOWN"
            };
            into.case(TestCase {
                test_raw_data_path: path.to_owned(),
                prefix: prefix.to_owned(),
                name: element["name"].as_str().unwrap_or_default().to_owned(),
                status: status.to_owned(),
                duration_in_nano_seconds: duration,
                message: Some(message.text.trim().to_owned()).filter(|m| !m.is_empty()),
            });
        }
    }
    Ok(())
}
