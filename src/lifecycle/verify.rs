//! `wasmbuild verify`: the plan (the source built twice in independent workspaces, with
//! deliberate perturbations — build ids, workspace host paths, host time, the order files
//! are created in the source copy — and no cache), and the comparison of the two builds'
//! artifacts: sets paired by identifier, files by path, content by sha256; each difference
//! described with a short unified diff for text and the first differing byte for binary
//! content.

use std::path::Path;

use serde::Serialize;

use super::artifacts::{ArtifactFile, ArtifactSet};
use super::log::BuildLog;
use super::record::BuildRecord;
use super::workspace::CopyOrder;
use super::{BuildControl, BuildRequest, BuildServices, Status};

/// One of the two builds of `verify`, and what it perturbs.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// `first` or `second`.
    pub label: &'static str,
    /// Name of its workspace's parent directory (so the host paths differ in length too).
    pub workspace: &'static str,
    /// The order the source copy's files are created in.
    pub order: CopyOrder,
}

/// The two builds, in order.
pub const PASSES: [Pass; 2] = [
    Pass {
        label: "first",
        workspace: "w",
        order: CopyOrder::Parallel,
    },
    Pass {
        label: "second",
        workspace: "workspace-of-the-second-build",
        order: CopyOrder::Reversed,
    },
];

/// One build of the two, for the report.
#[derive(Debug, Serialize)]
pub struct BuildSummary {
    pub id: String,
    pub status: Status,
    /// Where its artifacts, record and log are.
    pub output: String,
}

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// Both builds succeeded with identical artifacts.
    pub reproducible: bool,
    pub deterministic: bool,
    pub first: BuildSummary,
    pub second: BuildSummary,
    #[serde(flatten)]
    pub comparison: Comparison,
}

/// How `verify` ended.
pub enum Verified {
    /// A build was stopped (Ctrl-C): its record, nothing compared.
    Stopped(Box<BuildRecord>),
    /// Both builds ran; `first` is the first build's record (for its secret mask).
    Compared {
        verification: Verification,
        first: Box<BuildRecord>,
    },
}

/// Runs the two builds of [`PASSES`] and compares their artifacts. `prepare` gives each
/// pass its request, services and log (the caller chooses output directories); the plan
/// sets the workspace under `scratch`, the copy order, no cache, and a different second of
/// host time; `report` hears each build start and end.
pub fn verify<E>(
    scratch: &Path,
    deterministic: bool,
    control: &BuildControl,
    mut prepare: impl FnMut(&Pass) -> Result<(BuildRequest, BuildServices, BuildLog), E>,
    report: impl Fn(&str),
) -> Result<Verified, E> {
    // Each build's record and where its output is.
    let mut builds = Vec::new();
    for pass in &PASSES {
        if !builds.is_empty() {
            wait_for_next_second();
        }
        let (mut request, services, log) = prepare(pass)?;
        request.work_parent = Some(scratch.join(pass.workspace));
        request.copy_order = pass.order;
        // Two independent builds: neither restores what the other saved.
        request.use_cache = false;
        report(&format!(
            "{} build of {}",
            pass.label,
            request.src_dir.display()
        ));
        let record = super::run(&request, &services, log, control.clone());
        report(&format!(
            "{} build {} {}",
            pass.label,
            record.id,
            record.build_status.as_str()
        ));
        if record.build_status == Status::Stopped {
            return Ok(Verified::Stopped(Box::new(record)));
        }
        builds.push((record, request.out_dir.display().to_string()));
    }
    let [(first, first_output), (second, second_output)]: [_; 2] =
        builds.try_into().map_err(|_| ()).expect("two builds");
    let comparison = compare(&first, &second);
    let both_succeeded = [&first, &second]
        .iter()
        .all(|r| r.build_status == Status::Succeeded);
    let summary = |record: &BuildRecord, output| BuildSummary {
        id: record.id.clone(),
        status: record.build_status,
        output,
    };
    Ok(Verified::Compared {
        verification: Verification {
            reproducible: both_succeeded && comparison.differences.is_empty(),
            deterministic,
            first: summary(&first, first_output),
            second: summary(&second, second_output),
            comparison,
        },
        first: Box::new(first),
    })
}

/// Lets the host clock move on to the next second, so the two builds see different times.
fn wait_for_next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let rest = 1_000_000_000 - u64::from(now.subsec_nanos());
    std::thread::sleep(std::time::Duration::from_nanos(rest + 10_000_000));
}

/// How one artifact file differs between the two builds.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Difference {
    /// Only one build produced the file (`in_first` says which).
    Missing { path: String, in_first: bool },
    /// Text content differs.
    Text { path: String, diff: String },
    /// Binary content differs.
    Binary {
        path: String,
        first_difference_at: u64,
        first_size: u64,
        second_size: u64,
    },
    /// A symlink points elsewhere.
    Symlink {
        path: String,
        first_target: String,
        second_target: String,
    },
}

impl Difference {
    pub fn path(&self) -> &str {
        match self {
            Difference::Missing { path, .. }
            | Difference::Text { path, .. }
            | Difference::Binary { path, .. }
            | Difference::Symlink { path, .. } => path,
        }
    }
}

/// The outcome of comparing two builds' artifacts.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub files_compared: usize,
    pub differences: Vec<Difference>,
}

fn sets(record: &BuildRecord) -> Vec<&ArtifactSet> {
    record
        .artifacts
        .iter()
        .chain(record.secondary_artifacts.iter())
        .collect()
}

/// Compares every artifact file of `first` with the same file of `second`.
pub fn compare(first: &BuildRecord, second: &BuildRecord) -> Comparison {
    let mut differences = Vec::new();
    let mut files_compared = 0;
    let (first_sets, second_sets) = (sets(first), sets(second));
    let mut identifiers: Vec<&str> = first_sets
        .iter()
        .chain(second_sets.iter())
        .map(|s| s.artifact_identifier.as_str())
        .collect();
    identifiers.sort();
    identifiers.dedup();
    for identifier in identifiers {
        let find = |sets: &[&'_ ArtifactSet]| {
            sets.iter()
                .find(|s| s.artifact_identifier == identifier)
                .map(|s| (*s).clone())
        };
        let (a, b) = (find(&first_sets), find(&second_sets));
        let files = |set: &Option<ArtifactSet>| -> Vec<ArtifactFile> {
            set.as_ref().map(|s| s.files.clone()).unwrap_or_default()
        };
        let (a_files, b_files) = (files(&a), files(&b));
        let mut paths: Vec<&str> = a_files
            .iter()
            .chain(b_files.iter())
            .map(|f| f.path.as_str())
            .collect();
        paths.sort();
        paths.dedup();
        for path in paths {
            files_compared += 1;
            let shown = format!("{identifier}/{path}");
            let fa = a_files.iter().find(|f| f.path == path);
            let fb = b_files.iter().find(|f| f.path == path);
            match (fa, fb, &a, &b) {
                (Some(fa), Some(fb), Some(sa), Some(sb)) if fa.sha256 != fb.sha256 => {
                    differences.push(describe(
                        shown,
                        fa,
                        fb,
                        &Path::new(&sa.location).join(path),
                        &Path::new(&sb.location).join(path),
                    ));
                }
                (Some(_), None, _, _) => differences.push(Difference::Missing {
                    path: shown,
                    in_first: true,
                }),
                (None, Some(_), _, _) => differences.push(Difference::Missing {
                    path: shown,
                    in_first: false,
                }),
                _ => {}
            }
        }
    }
    Comparison {
        files_compared,
        differences,
    }
}

const DIFF_LINES: usize = 40;

fn describe(
    path: String,
    a: &ArtifactFile,
    b: &ArtifactFile,
    a_host: &Path,
    b_host: &Path,
) -> Difference {
    if a.symlink.is_some() || b.symlink.is_some() {
        return Difference::Symlink {
            path,
            first_target: a.symlink.clone().unwrap_or_else(|| "(a file)".into()),
            second_target: b.symlink.clone().unwrap_or_else(|| "(a file)".into()),
        };
    }
    let (da, db) = (
        std::fs::read(a_host).unwrap_or_default(),
        std::fs::read(b_host).unwrap_or_default(),
    );
    let text = |d: &[u8]| -> Option<String> {
        (!d.contains(&0))
            .then(|| String::from_utf8(d.to_vec()).ok())
            .flatten()
    };
    if let (Some(ta), Some(tb)) = (text(&da), text(&db)) {
        let diff = similar::TextDiff::from_lines(&ta, &tb)
            .unified_diff()
            .context_radius(1)
            .header("first", "second")
            .to_string();
        let mut lines: Vec<&str> = diff.lines().collect();
        let more = lines.len().saturating_sub(DIFF_LINES);
        lines.truncate(DIFF_LINES);
        let mut diff = lines.join("\n");
        if more > 0 {
            diff.push_str(&format!("\n... {more} more lines"));
        }
        return Difference::Text { path, diff };
    }
    let first_difference_at = da
        .iter()
        .zip(db.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(da.len().min(db.len())) as u64;
    Difference::Binary {
        path,
        first_difference_at,
        first_size: a.size,
        second_size: b.size,
    }
}
