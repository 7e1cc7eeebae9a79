//! Reports kept in the store (`reports/<group>/<number>`, written by the lifecycle): one
//! report by group and build number, and a group's trend over its last builds. Read by
//! `wasmbuild reports` and by the web console.

use serde::Serialize;

use super::{Report, percent};
use crate::lifecycle::cache::encode_ref_part;
use crate::lifecycle::reports::report_ref;
use crate::store::{Store, StoreError};

/// The report of group `group` from build `number`: `Ok(None)` if there is none,
/// `Err` with the reason if the store's copy cannot be read.
pub fn read(store: &Store, group: &str, number: u64) -> Result<Option<Report>, String> {
    let Some(digest) = store
        .get_ref(&report_ref(group, number))
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    decode(store, &digest).map(Some)
}

/// The report a blob holds.
pub fn decode(store: &Store, digest: &str) -> Result<Report, String> {
    let bytes = store.get_blob(digest).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("damaged report: {e}"))
}

/// One build of a group's trend.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    pub build_number: u64,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_coverage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_coverage: Option<f64>,
}

impl Point {
    fn of(build_number: u64, report: &Report) -> Point {
        let tests = report.test_summary.as_ref();
        let coverage = report.code_coverage_summary.as_ref();
        Point {
            build_number,
            status: report.status.clone(),
            pass_rate: tests.map(|t| {
                let passed = t.status_counts.get("SUCCEEDED").copied().unwrap_or(0);
                percent(passed, t.total - passed)
            }),
            total: tests.map(|t| t.total),
            duration_seconds: tests.map(|t| t.duration_in_nano_seconds as f64 / 1e9),
            line_coverage: coverage.map(|c| c.line_coverage_percentage),
            branch_coverage: coverage.map(|c| c.branch_coverage_percentage),
        }
    }
}

/// A group's trend over its last `last` builds, oldest first, and the builds whose report
/// could not be read (left out of the trend).
pub fn trend(store: &Store, group: &str, last: u64) -> Result<(Vec<Point>, Vec<u64>), StoreError> {
    let mut numbers: Vec<(u64, String)> = store
        .list_refs_recursive(&format!("reports/{}/", encode_ref_part(group)))?
        .into_iter()
        .filter_map(|info| Some((info.name.rsplit('/').next()?.parse().ok()?, info.value)))
        .collect();
    numbers.sort_by_key(|(n, _)| *n);
    let skip = numbers
        .len()
        .saturating_sub(usize::try_from(last).unwrap_or(usize::MAX));
    let mut points = Vec::new();
    let mut damaged = Vec::new();
    for (number, digest) in numbers.into_iter().skip(skip) {
        match decode(store, &digest) {
            Ok(report) => points.push(Point::of(number, &report)),
            Err(_) => damaged.push(number),
        }
    }
    Ok((points, damaged))
}
