//! Test reports and code coverage, as CodeBuild's `reports` section makes them: the report
//! files a build leaves are read in the format the buildspec names, into a report shaped
//! like CodeBuild's `Report` (a summary) and its test cases or per-file coverage.
//!
//! This module owns the formats and the report model, nothing else: it reads bytes it is
//! given and never opens a path (the lifecycle selects the files through the workspace's
//! capability). Formats: tests — JUnit XML (`junit`), Cucumber JSON (`cucumber`), TestNG
//! XML (`testng`), NUnit XML v2 and v3 (`nunit`), Visual Studio TRX (`trx`); coverage —
//! Cobertura XML (`cobertura`), JaCoCo XML (`jacoco`), Clover XML (`clover`), SimpleCov
//! JSON (`simplecov`). XML is streamed (`xml`: DTDs and their entities are never
//! expanded); memory is bounded: at most [`MAX_TEST_CASES`] cases and [`MAX_FILES`] files
//! are kept per report (counts stay exact; the report says `truncated`), messages at most
//! [`xml::MAX_MESSAGE_BYTES`], a JSON file at most [`MAX_JSON_BYTES`]. [`kept`] reads the
//! reports the lifecycle kept in the store back (`wasmbuild reports`, the web console).

mod clover;
mod cobertura;
mod cucumber;
mod jacoco;
mod junit;
pub mod kept;
mod nunit;
mod simplecov;
mod testng;
mod trx;
mod xml;

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

pub use xml::{MAX_MESSAGE_BYTES, MAX_XML_DEPTH};

/// Most test cases kept per report.
pub const MAX_TEST_CASES: usize = 200_000;
/// Most files kept per coverage report.
pub const MAX_FILES: usize = 100_000;
/// Largest JSON report file read (JSON is read whole).
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// A test case's status, as CodeBuild names them.
pub const STATUSES: [&str; 5] = ["SUCCEEDED", "FAILED", "SKIPPED", "ERROR", "UNKNOWN"];

/// Whether a format is a test format: every one but the coverage formats (an unknown
/// format makes an INCOMPLETE test report).
pub fn is_test_format(format: &str) -> bool {
    !matches!(
        format,
        "CLOVERXML" | "COBERTURAXML" | "JACOCOXML" | "SIMPLECOV"
    )
}

/// One test case (CodeBuild's `TestCase`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCase {
    /// The file it was read from, relative to the report's base directory.
    pub test_raw_data_path: String,
    /// The class or suite.
    pub prefix: String,
    pub name: String,
    /// One of [`STATUSES`].
    pub status: String,
    pub duration_in_nano_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The coverage of one file (CodeBuild's `CodeCoverage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCoverage {
    pub file_path: String,
    pub line_coverage_percentage: f64,
    pub lines_covered: u64,
    pub lines_missed: u64,
    pub branch_coverage_percentage: f64,
    pub branches_covered: u64,
    pub branches_missed: u64,
}

impl FileCoverage {
    fn new(file_path: String, lines: Counted, branches: Counted) -> Self {
        let CoverageSummary {
            line_coverage_percentage,
            lines_covered,
            lines_missed,
            branch_coverage_percentage,
            branches_covered,
            branches_missed,
        } = CoverageSummary::new(lines, branches);
        FileCoverage {
            file_path,
            line_coverage_percentage,
            lines_covered,
            lines_missed,
            branch_coverage_percentage,
            branches_covered,
            branches_missed,
        }
    }
}

/// `covered` of `covered + missed`, in percent with two decimals; 0 of 0 is 0.
pub fn percent(covered: u64, missed: u64) -> f64 {
    let total = covered + missed;
    if total == 0 {
        return 0.0;
    }
    (covered as f64 * 10_000.0 / total as f64).round() / 100.0
}

/// What the files of one report held, gathered with bounded memory.
#[derive(Debug, Default)]
pub struct Gathered {
    pub cases: Vec<TestCase>,
    /// Cases by status, all of them (also those not kept).
    pub counts: BTreeMap<String, u64>,
    pub duration_ns: u64,
    pub files: Vec<FileCoverage>,
    /// Summed over every file, also those not kept.
    pub lines: (u64, u64),
    pub branches: (u64, u64),
    pub truncated: bool,
}

impl Gathered {
    pub(crate) fn case(&mut self, case: TestCase) {
        *self.counts.entry(case.status.clone()).or_default() += 1;
        self.duration_ns = self
            .duration_ns
            .saturating_add(case.duration_in_nano_seconds);
        if self.cases.len() < MAX_TEST_CASES {
            self.cases.push(case);
        } else {
            self.truncated = true;
        }
    }

    pub(crate) fn file(&mut self, file: FileCoverage) {
        self.lines.0 += file.lines_covered;
        self.lines.1 += file.lines_missed;
        self.branches.0 += file.branches_covered;
        self.branches.1 += file.branches_missed;
        if self.files.len() < MAX_FILES {
            self.files.push(file);
        } else {
            self.truncated = true;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Coverage added up by file, in the order files are first met: at most [`MAX_FILES`]
/// files are kept apart; the others count in the totals only.
/// (covered, missed).
type Counted = (u64, u64);

#[derive(Debug, Default)]
pub(crate) struct Tally {
    index: std::collections::HashMap<String, usize>,
    /// File, lines, branches.
    files: Vec<(String, Counted, Counted)>,
    overflow: ((u64, u64), (u64, u64)),
    truncated: bool,
}

impl Tally {
    /// Adds (covered, missed) lines and branches to `file`.
    pub(crate) fn add(&mut self, file: &str, lines: (u64, u64), branches: (u64, u64)) {
        let add = |to: &mut (u64, u64), more: (u64, u64)| {
            to.0 = to.0.saturating_add(more.0);
            to.1 = to.1.saturating_add(more.1);
        };
        match self.index.get(file) {
            Some(&i) => {
                add(&mut self.files[i].1, lines);
                add(&mut self.files[i].2, branches);
            }
            None if self.files.len() < MAX_FILES => {
                self.index.insert(file.to_owned(), self.files.len());
                self.files.push((file.to_owned(), lines, branches));
            }
            None => {
                add(&mut self.overflow.0, lines);
                add(&mut self.overflow.1, branches);
                self.truncated = true;
            }
        }
    }

    pub(crate) fn into_gathered(self, into: &mut Gathered) {
        for (file, lines, branches) in self.files {
            into.file(FileCoverage::new(file, lines, branches));
        }
        into.lines.0 += self.overflow.0.0;
        into.lines.1 += self.overflow.0.1;
        into.branches.0 += self.overflow.1.0;
        into.branches.1 += self.overflow.1.1;
        into.truncated |= self.truncated;
    }
}

/// Reads one report file of `format` (one of the buildspec's `REPORT_FORMATS`) into
/// `into`; `path` names it in the cases. The `Err` says why the file could not be read
/// (malformed, another format, too large): the report is then INCOMPLETE.
pub fn read_file(
    format: &str,
    path: &str,
    input: impl BufRead,
    into: &mut Gathered,
) -> Result<(), String> {
    match format {
        "JUNITXML" => junit::read(input, path, into),
        "TESTNGXML" => testng::read(input, path, into),
        "NUNITXML" => nunit::read_v2(input, path, into),
        "NUNIT3XML" => nunit::read_v3(input, path, into),
        "VISUALSTUDIOTRX" => trx::read(input, path, into),
        "CUCUMBERJSON" => cucumber::read(read_json(input)?, path, into),
        "COBERTURAXML" => cobertura::read(input, into),
        "JACOCOXML" => jacoco::read(input, into),
        "CLOVERXML" => clover::read(input, into),
        "SIMPLECOV" => simplecov::read(read_json(input)?, into),
        other => Err(format!("unknown report format {other}")),
    }
}

fn read_json(input: impl BufRead) -> Result<serde_json::Value, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    input
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(format!(
            "a JSON report over {MAX_JSON_BYTES} bytes (MAX_JSON_BYTES) is not read"
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("malformed JSON: {e}"))
}

/// Seconds written as a decimal (`0.012`, `1,234.5`) in nanoseconds; 0 when unreadable.
pub(crate) fn seconds_to_ns(text: Option<&str>) -> u64 {
    let Some(text) = text else { return 0 };
    let seconds: f64 = text.trim().replace(',', "").parse().unwrap_or(0.0);
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1e9).min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// A whole number attribute; 0 when absent or unreadable.
pub(crate) fn number(text: Option<&str>) -> u64 {
    text.and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// The stored form of one report: the summary CodeBuild's `Report` has, with every case
/// or file (as `DescribeTestCases` / `DescribeCodeCoverages` would list them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `<report group name>:<build id's uuid>`, as the end of CodeBuild's report ARN.
    pub arn: String,
    /// `TEST` or `CODE_COVERAGE`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The report group: `<project>-<group>` as CodeBuild names buildspec groups.
    pub report_group_arn: String,
    pub name: String,
    pub execution_id: String,
    /// SUCCEEDED, FAILED or INCOMPLETE.
    pub status: String,
    pub created: String,
    pub file_format: String,
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_summary: Option<TestSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_coverage_summary: Option<CoverageSummary>,
    /// The files read, relative to the base directory.
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_cases: Vec<TestCase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_coverages: Vec<FileCoverage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestSummary {
    pub total: u64,
    pub status_counts: BTreeMap<String, u64>,
    pub duration_in_nano_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoverageSummary {
    pub line_coverage_percentage: f64,
    pub lines_covered: u64,
    pub lines_missed: u64,
    pub branch_coverage_percentage: f64,
    pub branches_covered: u64,
    pub branches_missed: u64,
}

impl CoverageSummary {
    /// From (covered, missed) lines and branches.
    fn new(lines: Counted, branches: Counted) -> Self {
        CoverageSummary {
            line_coverage_percentage: percent(lines.0, lines.1),
            lines_covered: lines.0,
            lines_missed: lines.1,
            branch_coverage_percentage: percent(branches.0, branches.1),
            branches_covered: branches.0,
            branches_missed: branches.1,
        }
    }
}

impl Report {
    /// The report of a group from what its files held; `problems` are the files that
    /// could not be read (with why), which make it INCOMPLETE.
    pub fn new(
        identity: Identity,
        format: &str,
        files: Vec<String>,
        gathered: Gathered,
        problems: &[String],
    ) -> Report {
        let test = is_test_format(format);
        let status = if !problems.is_empty() || files.is_empty() {
            "INCOMPLETE"
        } else if test
            && gathered
                .counts
                .keys()
                .any(|s| s != "SUCCEEDED" && s != "SKIPPED")
        {
            "FAILED"
        } else {
            "SUCCEEDED"
        };
        let status_reason = if files.is_empty() && problems.is_empty() {
            Some("no report files matched".to_owned())
        } else if problems.is_empty() {
            None
        } else {
            Some(problems.join("; "))
        };
        let mut status_counts: BTreeMap<String, u64> =
            STATUSES.iter().map(|s| ((*s).to_owned(), 0)).collect();
        for (status, count) in &gathered.counts {
            *status_counts.entry(status.clone()).or_default() += count;
        }
        Report {
            arn: identity.arn,
            kind: if test { "TEST" } else { "CODE_COVERAGE" }.to_owned(),
            report_group_arn: identity.group,
            name: identity.name,
            execution_id: identity.execution_id,
            status: status.to_owned(),
            created: identity.created,
            file_format: format.to_owned(),
            truncated: gathered.truncated,
            status_reason,
            test_summary: test.then(|| TestSummary {
                total: gathered.total(),
                status_counts,
                duration_in_nano_seconds: gathered.duration_ns,
            }),
            code_coverage_summary: (!test)
                .then(|| CoverageSummary::new(gathered.lines, gathered.branches)),
            files,
            test_cases: gathered.cases,
            code_coverages: gathered.files,
        }
    }

    /// The summary alone (what build.json lists).
    pub fn summary(&self) -> Report {
        Report {
            test_cases: Vec::new(),
            code_coverages: Vec::new(),
            ..self.clone()
        }
    }

    /// Orders the test cases failed first (then errors, unknown, skipped, passed; by
    /// suite and name within each) and the coverage lowest first, as people read them.
    pub fn sort_worst_first(&mut self) {
        let rank = |status: &str| match status {
            "FAILED" => 0,
            "ERROR" => 1,
            "UNKNOWN" => 2,
            "SKIPPED" => 3,
            _ => 4,
        };
        self.test_cases.sort_by(|a, b| {
            rank(&a.status)
                .cmp(&rank(&b.status))
                .then(a.prefix.cmp(&b.prefix))
                .then(a.name.cmp(&b.name))
        });
        self.code_coverages.sort_by(|a, b| {
            a.line_coverage_percentage
                .total_cmp(&b.line_coverage_percentage)
                .then(a.file_path.cmp(&b.file_path))
        });
    }

    /// `33/35 passed` or `lines 96.68%, branches 93.75%`.
    pub fn result_text(&self) -> String {
        if let Some(t) = &self.test_summary {
            let passed = t.status_counts.get("SUCCEEDED").copied().unwrap_or(0);
            return format!("{passed}/{} passed", t.total);
        }
        if let Some(c) = &self.code_coverage_summary {
            return format!(
                "lines {:.2}%, branches {:.2}%",
                c.line_coverage_percentage, c.branch_coverage_percentage
            );
        }
        String::new()
    }

    /// One line for the build log.
    pub fn log_line(&self) -> String {
        let mut line = format!(
            "Report {} ({}): {}",
            self.name, self.file_format, self.status
        );
        if let Some(t) = &self.test_summary {
            let counts: Vec<String> = t
                .status_counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| format!("{n} {}", s.to_lowercase()))
                .collect();
            line.push_str(&format!(
                ", {} test case(s){}{}, {:.3} s",
                t.total,
                if counts.is_empty() { "" } else { ": " },
                counts.join(", "),
                t.duration_in_nano_seconds as f64 / 1e9
            ));
        }
        if let Some(c) = &self.code_coverage_summary {
            line.push_str(&format!(
                ", lines {:.2}% ({} of {}), branches {:.2}% ({} of {})",
                c.line_coverage_percentage,
                c.lines_covered,
                c.lines_covered + c.lines_missed,
                c.branch_coverage_percentage,
                c.branches_covered,
                c.branches_covered + c.branches_missed
            ));
        }
        if self.truncated {
            line.push_str(" (truncated)");
        }
        if let Some(reason) = &self.status_reason {
            line.push_str(&format!(" — {reason}"));
        }
        line
    }
}

/// The reports of one group from several builds (a batch's shards) as one summary:
/// counts, durations and covered lines added up, FAILED if any failed, INCOMPLETE if any
/// is, `arn` naming the batch. `None` for no reports.
pub fn merge(reports: &[Report], arn: &str) -> Option<Report> {
    let first = reports.first()?;
    let mut merged = Report {
        arn: arn.to_owned(),
        files: Vec::new(),
        status_reason: None,
        truncated: false,
        test_cases: Vec::new(),
        code_coverages: Vec::new(),
        ..first.clone()
    };
    let mut reasons = Vec::new();
    let mut lines = (0, 0);
    let mut branches = (0, 0);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut total, mut duration) = (0u64, 0u64);
    for report in reports {
        merged.files.extend(report.files.iter().cloned());
        merged.truncated |= report.truncated;
        reasons.extend(report.status_reason.iter().cloned());
        if let Some(t) = &report.test_summary {
            total += t.total;
            duration = duration.saturating_add(t.duration_in_nano_seconds);
            for (status, n) in &t.status_counts {
                *counts.entry(status.clone()).or_default() += n;
            }
        }
        if let Some(c) = &report.code_coverage_summary {
            lines = (lines.0 + c.lines_covered, lines.1 + c.lines_missed);
            branches = (
                branches.0 + c.branches_covered,
                branches.1 + c.branches_missed,
            );
        }
    }
    let statuses: Vec<&str> = reports.iter().map(|r| r.status.as_str()).collect();
    merged.status = if statuses.contains(&"INCOMPLETE") {
        "INCOMPLETE"
    } else if statuses.contains(&"FAILED") {
        "FAILED"
    } else {
        "SUCCEEDED"
    }
    .to_owned();
    merged.status_reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    if merged.test_summary.is_some() {
        merged.test_summary = Some(TestSummary {
            total,
            status_counts: counts,
            duration_in_nano_seconds: duration,
        });
    }
    if merged.code_coverage_summary.is_some() {
        merged.code_coverage_summary = Some(CoverageSummary::new(lines, branches));
    }
    Some(merged)
}

/// Who a report belongs to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub arn: String,
    pub group: String,
    pub name: String,
    pub execution_id: String,
    pub created: String,
}
