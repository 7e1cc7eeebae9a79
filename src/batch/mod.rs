//! Batch builds, as CodeBuild's `StartBuildBatch` runs them: the `batch` section expanded
//! into builds ([`mod@plan`]: build-list, build-graph, build-matrix, build-fanout), run in
//! parallel as their dependencies allow ([`mod@schedule`], through the [`Launcher`] seam),
//! and a record shaped like `BatchGetBuildBatches` (`build-batch.json`). Each build is an
//! ordinary build with its own workspace, number and record; they share one store.

pub mod plan;
pub mod schedule;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use plan::{Job, plan};
pub use schedule::{Launcher, Outcome, batch_status, run_all};

/// The reference of a batch's record in the store (`batches/<project>/<number>`).
pub fn batch_ref(project: &str, number: u64) -> String {
    format!(
        "batches/{}/{number}",
        crate::lifecycle::cache::encode_ref_part(project)
    )
}

/// `build-batch.json`: a batch as `BatchGetBuildBatches` describes one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    pub id: String,
    pub arn: String,
    pub build_batch_number: u64,
    pub project_name: String,
    pub start_time: String,
    pub end_time: Option<String>,
    pub current_phase: String,
    pub build_batch_status: String,
    pub initiator: String,
    pub buildspec: String,
    pub phases: Vec<BatchPhase>,
    pub build_groups: Vec<BuildGroup>,
    pub build_batch_config: BatchConfig,
    /// Each report group of the batch's builds merged into one report (a fanout's shards
    /// add up to the whole suite).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<crate::reports::Report>,
}

/// The batch's reports: the reports of its builds merged by report group, in the order
/// groups are first met.
pub fn merged_reports(outcomes: &[Option<Outcome>], batch_id: &str) -> Vec<crate::reports::Report> {
    let mut groups: Vec<(&str, Vec<crate::reports::Report>)> = Vec::new();
    for report in outcomes.iter().flatten().flat_map(|o| &o.reports) {
        match groups
            .iter_mut()
            .find(|(g, _)| *g == report.report_group_arn)
        {
            Some((_, reports)) => reports.push(report.clone()),
            None => groups.push((&report.report_group_arn, vec![report.clone()])),
        }
    }
    let uuid = batch_id.rsplit(':').next().unwrap_or(batch_id);
    groups
        .into_iter()
        .filter_map(|(group, reports)| crate::reports::merge(&reports, &format!("{group}:{uuid}")))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPhase {
    pub phase_type: String,
    pub phase_status: String,
    pub start_time: String,
    pub end_time: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildGroup {
    pub identifier: String,
    pub depends_on: Vec<String>,
    pub ignore_failure: bool,
    /// Absent for a build that never started (a dependency failed, or fast-fail).
    pub current_build_summary: Option<BuildSummary>,
    /// What the build ran with: buildspec, image, variables, and settings accepted
    /// without meaning here.
    pub settings: GroupSettings,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSummary {
    pub arn: Option<String>,
    pub build_number: Option<u64>,
    pub requested_on: Option<String>,
    pub build_status: String,
    /// Where its build.json, build.log and artifacts are.
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSettings {
    pub buildspec: Option<String>,
    pub image: Option<String>,
    pub compute_type: Option<String>,
    pub variables: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchConfig {
    pub fast_fail: bool,
    pub parallel_builds: usize,
    pub timeout_in_mins: u64,
    pub combine_artifacts: bool,
}

/// The group of one job and how it ended.
pub fn build_group(job: &Job, outcome: Option<&Outcome>) -> BuildGroup {
    BuildGroup {
        identifier: job.identifier.clone(),
        depends_on: job.depend_on.clone(),
        ignore_failure: job.ignore_failure,
        current_build_summary: outcome.map(|o| BuildSummary {
            arn: o.build_arn.clone(),
            build_number: o.build_number,
            requested_on: o.started.clone(),
            build_status: o.status.as_str().to_owned(),
            location: o.out_dir.as_ref().map(|d| d.display().to_string()),
            message: o.message.clone(),
        }),
        settings: GroupSettings {
            buildspec: job.buildspec.clone(),
            image: job.image.clone(),
            compute_type: job.compute_type.clone(),
            variables: job.variables.clone(),
            accepted: job.accepted.clone(),
        },
    }
}

/// A console shared by the builds of a batch: each build writes whole lines, each
/// prefixed with its identifier (`[linux] …`), never interleaved within a line.
pub struct PrefixedConsole {
    prefix: String,
    pending: Vec<u8>,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl PrefixedConsole {
    pub fn new(identifier: &str, out: Arc<Mutex<Box<dyn Write + Send>>>) -> Self {
        PrefixedConsole {
            prefix: format!("[{identifier}] "),
            pending: Vec::new(),
            out,
        }
    }

    fn emit(&mut self, line: &[u8]) -> std::io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(self.prefix.as_bytes())?;
        out.write_all(line)
    }
}

impl Write for PrefixedConsole {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let mut line = std::mem::take(&mut self.pending);
            line.push(b'\n');
            self.emit(&line)?;
        }
        self.out.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

impl Drop for PrefixedConsole {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
