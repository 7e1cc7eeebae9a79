//! What the console shows, read from the store and nothing else: projects, a project's
//! builds (newest first, paged, filtered by status), one build (record, log, artifacts,
//! reports), a report with its group's trend, and a batch. Each view is a plain serializable
//! value: the JSON API returns it as is and the pages render it, so the two never disagree.
//!
//! Everything here is blocking (the store is): the server calls it on blocking threads.
//! Names from URLs are checked before they name anything: a project or group must be the
//! store's own encoding of a name (so `..`, `/` or a NUL never reach a reference), and an
//! artifact file is looked up in its tree's manifest, never on a filesystem.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::batch::batch_ref;
use crate::lifecycle::cache::{decode_ref_part, encode_ref_part};
use crate::lifecycle::keep::{log_ref, record_ref};
use crate::reports::{Report, kept};
use crate::store::{EntryKind, Store, StoreError, Tree, TreeEntry};

/// Why a view could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The store holds it, but it cannot be read (corrupt, not JSON).
    #[error("{0}")]
    Damaged(String),
    /// The store cannot be reached (gone, unreadable, the server down).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for ViewError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { .. } | StoreError::Missing(_) => {
                ViewError::Damaged(e.to_string())
            }
            StoreError::BadRefName(name) => ViewError::BadRequest(format!("invalid name {name:?}")),
            other => ViewError::Unavailable(other.to_string()),
        }
    }
}

pub type ViewResult<T> = Result<T, ViewError>;

/// The console's access to the store. Build summaries are cached by the digest of their
/// record (a record blob never changes), so a long history is read once.
pub struct Console {
    store: Store,
    summaries: Mutex<HashMap<String, Arc<BuildSummary>>>,
}

/// Past this many cached summaries the cache starts again (bounded memory).
const SUMMARY_CACHE_LIMIT: usize = 200_000;

/// How many builds a history page lists.
pub const PAGE_SIZE: usize = 25;

/// How many lines of a log a build page shows (the whole log is one link away).
pub const LOG_PAGE_LINES: usize = 5_000;

/// One build in a list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSummary {
    pub project: String,
    /// The project as URLs name it (the store's encoding).
    pub project_key: String,
    pub build_number: u64,
    /// CodeBuild's status, or `DAMAGED` when the record cannot be read.
    pub build_status: String,
    pub current_phase: String,
    pub initiator: String,
    pub start_time: String,
    pub end_time: Option<String>,
    pub duration_seconds: Option<f64>,
    pub source_version: Option<String>,
    /// Why the record cannot be read.
    pub damaged: Option<String>,
}

impl BuildSummary {
    fn of(project_key: &str, number: u64, record: &Value) -> BuildSummary {
        let text = |key: &str| record[key].as_str().unwrap_or_default().to_owned();
        let start = text("startTime");
        let end = record["endTime"].as_str().map(str::to_owned);
        BuildSummary {
            project: decode_ref_part(project_key),
            project_key: project_key.to_owned(),
            build_number: number,
            build_status: text("buildStatus"),
            current_phase: text("currentPhase"),
            initiator: text("initiator"),
            duration_seconds: end.as_deref().and_then(|end| seconds_between(&start, end)),
            start_time: start,
            end_time: end,
            source_version: record["resolvedSourceVersion"].as_str().map(str::to_owned),
            damaged: None,
        }
    }

    fn damaged(project_key: &str, number: u64, reason: String) -> BuildSummary {
        BuildSummary {
            project: decode_ref_part(project_key),
            project_key: project_key.to_owned(),
            build_number: number,
            build_status: "DAMAGED".to_owned(),
            current_phase: String::new(),
            initiator: String::new(),
            start_time: String::new(),
            end_time: None,
            duration_seconds: None,
            source_version: None,
            damaged: Some(reason),
        }
    }
}

/// Seconds from one record time to another.
pub fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let from: jiff::Timestamp = from.parse().ok()?;
    let to: jiff::Timestamp = to.parse().ok()?;
    Some((to.as_microsecond() - from.as_microsecond()) as f64 / 1e6)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSummary {
    pub project: String,
    pub project_key: String,
    pub builds: usize,
    pub batches: usize,
    pub latest: Option<BuildSummary>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectsView {
    pub projects: Vec<ProjectSummary>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    pub project: String,
    pub project_key: String,
    /// Every build of the project, whatever the filter.
    pub total: usize,
    pub page: usize,
    pub page_size: usize,
    pub status: Option<String>,
    pub builds: Vec<BuildSummary>,
    pub has_more: bool,
    /// The project's batches, newest first (at most 20).
    pub batches: Vec<u64>,
}

/// A phase of the timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseBar {
    pub phase: String,
    /// Its status; `IN_PROGRESS` for the running one.
    pub status: String,
    /// Seconds from the build's start.
    pub offset_seconds: f64,
    pub duration_seconds: f64,
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    /// As the record holds it: secret values are masked (`***`); a parameter or secret
    /// shows where it comes from.
    pub value: String,
    pub kind: String,
    pub secret: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactFile {
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub target: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSetView {
    pub identifier: String,
    pub reference: String,
    pub files: Vec<ArtifactFile>,
    /// Why the set cannot be listed.
    pub damaged: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportLink {
    pub group: String,
    pub group_key: String,
    pub build_number: u64,
    pub kind: String,
    pub status: String,
    pub result: String,
}

/// Where a build is, as its record says.
#[derive(Debug, Clone)]
pub struct BuildState {
    pub ended: bool,
    pub status: String,
    /// When a running build must have ended (past it, its process is gone).
    pub deadline: Option<jiff::Timestamp>,
}

/// A line of the log, with what it is.
#[derive(Debug, Serialize)]
pub struct LogLine {
    /// `container` for the build's own lines, `failed` for a failed command or phase,
    /// `output` for the commands' output.
    pub class: &'static str,
    pub text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildView {
    pub summary: BuildSummary,
    pub phases: Vec<PhaseBar>,
    pub environment: Vec<EnvVar>,
    pub image: String,
    pub runtimes: Vec<String>,
    pub buildspec: String,
    pub artifacts: Vec<ArtifactSetView>,
    pub cache: Option<Value>,
    pub reports: Vec<ReportLink>,
    pub exported: Vec<Value>,
    /// Whether the build is still running (its log streams live).
    pub live: bool,
    /// The record, as the store keeps it.
    pub record: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogView {
    /// The last [`LOG_PAGE_LINES`] lines.
    pub lines: Vec<LogLine>,
    /// How many lines came before them.
    pub skipped_lines: usize,
    pub bytes: usize,
    /// Whether this is all of it (the build ended and its log was kept).
    pub complete: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportView {
    pub group: String,
    pub group_key: String,
    pub build_number: u64,
    /// Test cases failed first; coverage lowest first.
    pub report: Report,
    pub trend: Vec<kept::Point>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchNode {
    pub identifier: String,
    pub depends_on: Vec<String>,
    pub status: String,
    pub build_number: Option<u64>,
    pub ignore_failure: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    pub project: String,
    pub project_key: String,
    pub batch_number: u64,
    pub status: String,
    pub nodes: Vec<BatchNode>,
    pub record: Value,
}

/// A URL's project (or group) segment: the store's encoding of a name, nothing else.
pub fn checked_key(key: &str) -> ViewResult<String> {
    if key.is_empty() || encode_ref_part(&decode_ref_part(key)) != key {
        return Err(ViewError::BadRequest(format!("invalid name {key:?}")));
    }
    Ok(key.to_owned())
}

/// Classifies a log line.
pub fn log_line(text: &str) -> LogLine {
    let class = if let Some(rest) = text.strip_prefix("[Container] ") {
        if rest.contains("Command did not exit successfully")
            || rest.contains("State: FAILED")
            || rest.contains("State: FAULT")
            || rest.contains("State: TIMED_OUT")
            || rest.contains("Phase context status code: COMMAND_EXECUTION_ERROR")
        {
            "failed"
        } else {
            "container"
        }
    } else {
        "output"
    };
    LogLine {
        class,
        text: text.to_owned(),
    }
}

impl Console {
    pub fn new(store: Store) -> Console {
        Console {
            store,
            summaries: Mutex::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Fails when a local store's directory is gone (reading it would only find nothing).
    fn available(&self) -> ViewResult<()> {
        if !self.store.is_remote() && !self.store.root().is_dir() {
            return Err(ViewError::Unavailable(format!(
                "{} does not exist",
                self.store.root().display()
            )));
        }
        Ok(())
    }

    /// The build numbers of a project, newest first.
    fn numbers(&self, project_key: &str) -> ViewResult<Vec<u64>> {
        let mut numbers: Vec<u64> = self
            .store
            .list_refs(&format!("builds/{project_key}"))?
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        Ok(numbers)
    }

    fn record(&self, project_key: &str, number: u64) -> ViewResult<(String, Value)> {
        let project = decode_ref_part(project_key);
        let digest = self
            .store
            .get_ref(&record_ref(&project, number))?
            .ok_or_else(|| ViewError::NotFound(format!("no build {project}:{number}")))?;
        let bytes = self.store.get_blob(&digest).map_err(|e| {
            ViewError::Damaged(format!("the record of build {project}:{number}: {e}"))
        })?;
        let record = serde_json::from_slice(&bytes).map_err(|e| {
            ViewError::Damaged(format!(
                "the record of build {project}:{number} is not a build record: {e}"
            ))
        })?;
        Ok((digest, record))
    }

    fn summary(&self, project_key: &str, number: u64) -> Arc<BuildSummary> {
        let project = decode_ref_part(project_key);
        let digest = match self.store.get_ref(&record_ref(&project, number)) {
            Ok(Some(digest)) => digest,
            Ok(None) => {
                return Arc::new(BuildSummary::damaged(
                    project_key,
                    number,
                    "the record is gone".to_owned(),
                ));
            }
            Err(e) => return Arc::new(BuildSummary::damaged(project_key, number, e.to_string())),
        };
        if let Some(hit) = self.cache().get(&digest) {
            return hit.clone();
        }
        let summary = Arc::new(match self.record(project_key, number) {
            Ok((_, record)) => BuildSummary::of(project_key, number, &record),
            Err(e) => BuildSummary::damaged(project_key, number, e.to_string()),
        });
        let mut cache = self.cache();
        if cache.len() >= SUMMARY_CACHE_LIMIT {
            cache.clear();
        }
        // A running build's record changes under the same ref: keyed by digest, the
        // next read of the ref finds the new one.
        if summary.damaged.is_none() {
            cache.insert(digest, summary.clone());
        }
        summary
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<BuildSummary>>> {
        self.summaries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn projects(&self) -> ViewResult<ProjectsView> {
        self.available()?;
        let keys = self.store.list_ref_dirs("builds")?;
        let projects = keys
            .par_iter()
            .map(|key| -> ViewResult<ProjectSummary> {
                let numbers = self.numbers(key)?;
                let batches = self.store.list_refs(&format!("batches/{key}"))?.len();
                Ok(ProjectSummary {
                    project: decode_ref_part(key),
                    project_key: key.clone(),
                    builds: numbers.len(),
                    batches,
                    latest: numbers
                        .first()
                        .map(|&n| self.summary(key, n).as_ref().clone()),
                })
            })
            .collect::<ViewResult<Vec<_>>>()?;
        Ok(ProjectsView { projects })
    }

    /// A page (from 1) of a project's builds, newest first, only those of `status` if
    /// given.
    pub fn history(
        &self,
        project_key: &str,
        page: usize,
        status: Option<&str>,
    ) -> ViewResult<HistoryView> {
        self.available()?;
        let project_key = checked_key(project_key)?;
        let numbers = self.numbers(&project_key)?;
        if numbers.is_empty() {
            return Err(ViewError::NotFound(format!(
                "no project {}",
                decode_ref_part(&project_key)
            )));
        }
        let page = page.max(1);
        let skip = (page - 1) * PAGE_SIZE;
        let (builds, has_more) = match status {
            None => {
                let chosen: Vec<u64> = numbers.iter().copied().skip(skip).take(PAGE_SIZE).collect();
                let builds = chosen
                    .par_iter()
                    .map(|&n| self.summary(&project_key, n).as_ref().clone())
                    .collect();
                (builds, numbers.len() > skip + PAGE_SIZE)
            }
            Some(status) => {
                // Read in slices, in parallel, until the page is full.
                let mut matched = Vec::new();
                let mut has_more = false;
                for slice in numbers.chunks(256) {
                    let summaries: Vec<Arc<BuildSummary>> = slice
                        .par_iter()
                        .map(|&n| self.summary(&project_key, n))
                        .collect();
                    matched.extend(summaries.into_iter().filter(|s| s.build_status == status));
                    if matched.len() > skip + PAGE_SIZE {
                        has_more = true;
                        break;
                    }
                }
                let builds = matched
                    .into_iter()
                    .skip(skip)
                    .take(PAGE_SIZE)
                    .map(|s| s.as_ref().clone())
                    .collect();
                (builds, has_more)
            }
        };
        let mut batches: Vec<u64> = self
            .store
            .list_refs(&format!("batches/{project_key}"))?
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        batches.sort_unstable_by(|a, b| b.cmp(a));
        batches.truncate(20);
        Ok(HistoryView {
            project: decode_ref_part(&project_key),
            project_key,
            total: numbers.len(),
            page,
            page_size: PAGE_SIZE,
            status: status.map(str::to_owned),
            builds,
            has_more,
            batches,
        })
    }

    pub fn build(&self, project_key: &str, number: u64) -> ViewResult<BuildView> {
        self.available()?;
        let project_key = checked_key(project_key)?;
        let (_, record) = self.record(&project_key, number)?;
        let summary = BuildSummary::of(&project_key, number, &record);
        let live = !record["buildComplete"].as_bool().unwrap_or(true);
        let phases = phase_bars(&record, live);
        let environment = record["environment"]["environmentVariables"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let kind = v["type"].as_str().unwrap_or("PLAINTEXT").to_owned();
                EnvVar {
                    name: v["name"].as_str().unwrap_or_default().to_owned(),
                    value: v["value"].as_str().unwrap_or_default().to_owned(),
                    secret: kind != "PLAINTEXT",
                    kind,
                }
            })
            .collect();
        let artifacts = record["store"]["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|set| {
                let identifier = set["name"].as_str().unwrap_or_default().to_owned();
                let reference = set["value"].as_str().unwrap_or_default().to_owned();
                match self.tree(&reference) {
                    Ok(tree) => ArtifactSetView {
                        identifier,
                        reference,
                        files: tree
                            .entries
                            .into_iter()
                            .filter(|e| e.kind != EntryKind::Dir)
                            .map(|e| ArtifactFile {
                                path: e.path,
                                kind: e.kind,
                                size: e.size,
                                target: e.target,
                            })
                            .collect(),
                        damaged: None,
                    },
                    Err(e) => ArtifactSetView {
                        identifier,
                        reference,
                        files: Vec::new(),
                        damaged: Some(e.to_string()),
                    },
                }
            })
            .collect();
        let reports = record["reports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_value::<Report>(r.clone()).ok())
            .map(|r| {
                let group = r
                    .report_group_arn
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                ReportLink {
                    group_key: encode_ref_part(&group),
                    group,
                    build_number: number,
                    result: r.result_text(),
                    kind: r.kind.clone(),
                    status: r.status.clone(),
                }
            })
            .collect();
        Ok(BuildView {
            summary,
            phases,
            environment,
            image: record["environment"]["image"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            runtimes: record["environment"]["runtimes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            buildspec: record["buildspec"].as_str().unwrap_or_default().to_owned(),
            artifacts,
            cache: record.get("cache").cloned(),
            exported: record["exportedEnvironmentVariables"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            reports,
            live,
            record,
        })
    }

    /// The build's log as it stands, and whether that is all of it: the whole kept log
    /// once the build ended, its live stream while it runs.
    pub fn log_bytes(&self, project_key: &str, number: u64) -> ViewResult<(Vec<u8>, bool)> {
        self.available()?;
        let project_key = checked_key(project_key)?;
        let (_, record) = self.record(&project_key, number)?;
        self.log_of(&decode_ref_part(&project_key), number, &record)
    }

    /// [`Console::log_bytes`] of a build whose record was read already.
    fn log_of(&self, project: &str, number: u64, record: &Value) -> ViewResult<(Vec<u8>, bool)> {
        if let Some(reference) = record["store"]["log"].as_str() {
            let digest = self
                .store
                .get_ref(reference)?
                .ok_or_else(|| ViewError::Damaged(format!("the log {reference} is gone")))?;
            let bytes = self
                .store
                .get_blob(&digest)
                .map_err(|e| ViewError::Damaged(format!("the log of {project}:{number}: {e}")))?;
            return Ok((bytes, true));
        }
        let chunks = self.store.read_stream(&log_ref(project, number), 0)?;
        let complete = record["buildComplete"].as_bool().unwrap_or(false);
        if chunks.is_empty() && complete {
            return Err(ViewError::NotFound(format!(
                "build {project}:{number} kept no log in the store"
            )));
        }
        Ok((chunks.concat(), false))
    }

    pub fn log(&self, project_key: &str, number: u64) -> ViewResult<LogView> {
        let (bytes, complete) = self.log_bytes(project_key, number)?;
        Ok(log_view(&bytes, complete))
    }

    /// The log of a build just viewed (its record is not read again).
    pub fn log_for(&self, view: &BuildView) -> ViewResult<LogView> {
        let summary = &view.summary;
        let (bytes, complete) =
            self.log_of(&summary.project, summary.build_number, &view.record)?;
        Ok(log_view(&bytes, complete))
    }

    /// The live stream's chunks from `seq` on (contiguous only).
    pub fn log_chunks(
        &self,
        project_key: &str,
        number: u64,
        seq: u64,
    ) -> ViewResult<Vec<bytes::Bytes>> {
        let project = decode_ref_part(&checked_key(project_key)?);
        Ok(self.store.read_stream(&log_ref(&project, number), seq)?)
    }

    /// Whether the build's record says it ended, its status, and when it must have ended
    /// at the latest (its start, its timeout and a minute's grace).
    pub fn build_state(&self, project_key: &str, number: u64) -> ViewResult<BuildState> {
        let (_, record) = self.record(&checked_key(project_key)?, number)?;
        let start: Option<jiff::Timestamp> =
            record["startTime"].as_str().and_then(|t| t.parse().ok());
        let minutes = record["timeoutInMinutes"]
            .as_i64()
            .unwrap_or(0)
            .clamp(0, 36 * 60);
        Ok(BuildState {
            ended: record["buildComplete"].as_bool().unwrap_or(false),
            status: record["buildStatus"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            deadline: start.and_then(|s| {
                s.checked_add(jiff::SignedDuration::from_mins(minutes + 1))
                    .ok()
            }),
        })
    }

    fn tree(&self, reference: &str) -> ViewResult<Tree> {
        let digest = self
            .store
            .get_ref(reference)?
            .ok_or_else(|| ViewError::Damaged(format!("the artifact set {reference} is gone")))?;
        Ok(self.store.get_tree(&digest)?)
    }

    /// An artifact set of a build, by identifier.
    pub fn artifact_set(
        &self,
        project_key: &str,
        number: u64,
        identifier: &str,
    ) -> ViewResult<(String, Tree)> {
        self.available()?;
        let project_key = checked_key(project_key)?;
        let (_, record) = self.record(&project_key, number)?;
        let reference = record["store"]["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|set| set["name"].as_str() == Some(identifier))
            .and_then(|set| set["value"].as_str())
            .ok_or_else(|| {
                ViewError::NotFound(format!(
                    "build {}:{number} has no artifact set {identifier}",
                    decode_ref_part(&project_key)
                ))
            })?
            .to_owned();
        Ok((reference.clone(), self.tree(&reference)?))
    }

    /// The content of one file of a tree, checked against its digest.
    pub fn file_content(&self, entry: &TreeEntry) -> ViewResult<Vec<u8>> {
        let blob = entry.blob().ok_or_else(|| {
            ViewError::Damaged(format!("{}: no content in the manifest", entry.path))
        })?;
        let bytes = self.store.get_blob(blob)?;
        let content = match &entry.pack {
            None => bytes,
            Some(_) => {
                let start = usize::try_from(entry.offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::try_from(entry.size).unwrap_or(usize::MAX));
                bytes
                    .get(start..end)
                    .ok_or_else(|| {
                        ViewError::Damaged(format!("{}: its pack is short", entry.path))
                    })?
                    .to_vec()
            }
        };
        if Some(crate::digest::sha256_hex(&content).as_str()) != entry.digest.as_deref() {
            return Err(ViewError::Damaged(format!(
                "{}: the content does not match its digest",
                entry.path
            )));
        }
        Ok(content)
    }

    pub fn report(&self, group_key: &str, number: u64) -> ViewResult<ReportView> {
        self.available()?;
        let group_key = checked_key(group_key)?;
        let group = decode_ref_part(&group_key);
        let mut report = kept::read(&self.store, &group, number)
            .map_err(ViewError::Damaged)?
            .ok_or_else(|| ViewError::NotFound(format!("no report {group}:{number}")))?;
        report.sort_worst_first();
        let (trend, _) = kept::trend(&self.store, &group, 20)?;
        Ok(ReportView {
            group,
            group_key,
            build_number: number,
            report,
            trend,
        })
    }

    pub fn batch(&self, project_key: &str, number: u64) -> ViewResult<BatchView> {
        self.available()?;
        let project_key = checked_key(project_key)?;
        let project = decode_ref_part(&project_key);
        let digest = self
            .store
            .get_ref(&batch_ref(&project, number))?
            .ok_or_else(|| ViewError::NotFound(format!("no batch {project}:{number}")))?;
        let record: Value =
            serde_json::from_slice(&self.store.get_blob(&digest)?).map_err(|e| {
                ViewError::Damaged(format!("the record of batch {project}:{number}: {e}"))
            })?;
        let nodes = record["buildGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| BatchNode {
                identifier: g["identifier"].as_str().unwrap_or_default().to_owned(),
                depends_on: g["dependsOn"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect(),
                status: g["currentBuildSummary"]["buildStatus"]
                    .as_str()
                    .unwrap_or("NOT_STARTED")
                    .to_owned(),
                build_number: g["currentBuildSummary"]["buildNumber"].as_u64(),
                ignore_failure: g["ignoreFailure"].as_bool().unwrap_or(false),
            })
            .collect();
        Ok(BatchView {
            project,
            project_key,
            batch_number: number,
            status: record["buildBatchStatus"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            nodes,
            record,
        })
    }
}

/// The last [`LOG_PAGE_LINES`] lines of a log, classified.
fn log_view(bytes: &[u8], complete: bool) -> LogView {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    let skipped_lines = all.len().saturating_sub(LOG_PAGE_LINES);
    LogView {
        lines: all[skipped_lines..].iter().map(|l| log_line(l)).collect(),
        skipped_lines,
        bytes: bytes.len(),
        complete,
    }
}

/// The record's phases as timeline bars (COMPLETED, which has no length, left out; the
/// running phase of a live build drawn up to now).
fn phase_bars(record: &Value, live: bool) -> Vec<PhaseBar> {
    let start = record["startTime"].as_str().unwrap_or_default();
    let mut bars: Vec<PhaseBar> = record["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["phaseType"] != "COMPLETED")
        .map(|p| {
            let from = p["startTime"].as_str().unwrap_or_default();
            let to = p["endTime"].as_str();
            PhaseBar {
                phase: p["phaseType"].as_str().unwrap_or_default().to_owned(),
                status: p["phaseStatus"]
                    .as_str()
                    .unwrap_or("IN_PROGRESS")
                    .to_owned(),
                offset_seconds: seconds_between(start, from).unwrap_or(0.0).max(0.0),
                duration_seconds: to
                    .and_then(|to| seconds_between(from, to))
                    .unwrap_or(0.0)
                    .max(0.0),
                message: p["contexts"][0]["message"]
                    .as_str()
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned),
            }
        })
        .collect();
    if live && let Some(phase) = record["currentPhase"].as_str() {
        let offset = bars
            .last()
            .map_or(0.0, |b| b.offset_seconds + b.duration_seconds);
        let now = jiff::Timestamp::now().to_string();
        bars.push(PhaseBar {
            phase: phase.to_owned(),
            status: "IN_PROGRESS".to_owned(),
            offset_seconds: offset,
            duration_seconds: seconds_between(start, &now).map_or(0.0, |s| (s - offset).max(0.0)),
            message: None,
        });
    }
    bars
}
