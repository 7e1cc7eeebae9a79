//! SimpleCov JSON, both shapes Ruby projects have: SimpleCov's own `.resultset.json`
//! (`{"<command>": {"coverage": {"<file>": {"lines": [null, 1, 0], "branches": {…}}}}}`,
//! or the older `"<file>": [null, 1, 0]`) and simplecov-json's `coverage.json`
//! (`{"files": [{"filename", "coverage": {"lines": […]}}]}`). A line with a count is
//! relevant, covered when the count is above 0; branches count each branch reached.

use serde_json::Value;

use super::{Gathered, Tally};

fn lines(value: &Value) -> (u64, u64) {
    let lines = value.get("lines").unwrap_or(value);
    let mut counted = (0, 0);
    for line in lines.as_array().into_iter().flatten() {
        match line.as_u64() {
            Some(0) => counted.1 += 1,
            Some(_) => counted.0 += 1,
            None => {}
        }
    }
    counted
}

fn branches(value: &Value) -> (u64, u64) {
    let mut counted = (0, 0);
    // `{"[:if, 0, 3, 4, 3, 9]": {"[:then, 1, …]": 2, "[:else, 2, …]": 0}}`
    for conditions in value
        .get("branches")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for hits in conditions
            .1
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
        {
            match hits.as_u64() {
                Some(0) => counted.1 += 1,
                Some(_) => counted.0 += 1,
                None => {}
            }
        }
    }
    counted
}

pub(super) fn read(json: Value, into: &mut Gathered) -> Result<(), String> {
    let mut tally = Tally::default();
    if let Some(files) = json.get("files").and_then(Value::as_array) {
        for file in files {
            let name = file["filename"].as_str().unwrap_or_default();
            tally.add(name, lines(&file["coverage"]), branches(&file["coverage"]));
        }
    } else if let Some(runs) = json.as_object() {
        for run in runs.values() {
            let Some(coverage) = run.get("coverage").and_then(Value::as_object) else {
                return Err("not SimpleCov JSON: no `coverage` or `files`".into());
            };
            for (name, file) in coverage {
                tally.add(name, lines(file), branches(file));
            }
        }
    } else {
        return Err("not SimpleCov JSON: expected an object".into());
    }
    tally.into_gathered(into);
    Ok(())
}
