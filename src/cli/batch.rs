//! `wasmbuild run --batch` (automatic for a batch-only buildspec): the batch's builds are
//! planned and checked before any runs (every buildspec found and valid, every image
//! known), numbered, run in parallel on this machine through [`LocalLauncher`], their log
//! lines prefixed with their identifiers, and recorded in `build-batch.json`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::run::{
    Prepared, RunArgs, locate_buildspec, output_dir, prepare, project_name, source_dir,
};
use super::shared::{ensure_built, open_log, stop_on_ctrl_c};
use super::{Context, Failure};
use crate::batch::{self, BatchConfig, BatchPhase, BatchRecord, Job, Launcher, Outcome};
use crate::buildspec::Buildspec;
use crate::lifecycle::cache::encode_ref_part;
use crate::lifecycle::record::record_time;
use crate::lifecycle::{self, BuildControl, Status};

/// Whether `run` should run a batch: asked for, or a buildspec that is only a batch.
pub fn wanted(args: &RunArgs) -> bool {
    if args.batch {
        return true;
    }
    let Ok(src) = args.src.canonicalize() else {
        return false;
    };
    locate_buildspec(&src, &args.buildspec)
        .ok()
        .and_then(|(path, _)| Buildspec::from_file(&path).ok())
        .is_some_and(|b| b.is_batch_only())
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<u8, Failure> {
    let started = jiff::Timestamp::now();
    let src = source_dir(&args.src)?;
    let (path, name) = locate_buildspec(&src, &args.buildspec)?;
    let buildspec = Buildspec::from_file(&path)?;
    let file = path.display().to_string();
    let Some(spec) = &buildspec.batch else {
        return Err(Failure::usage(format!(
            "{file}: --batch, but it has no `batch` section"
        )));
    };
    // Problems found after parsing name the line and column of what they are about.
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let at = |needle: &str| located(&file, &text, needle);
    let jobs = batch::plan(spec).map_err(|e| {
        let needle = ["build-matrix", "build-list", "build-graph", "build-fanout"]
            .into_iter()
            .find(|key| e.contains(key) || (e.contains("task list") && text.contains(key)))
            .unwrap_or("batch");
        Failure::usage(format!("{}: batch: {e}", at(&format!("{needle}:"))))
    })?;

    // Everything is checked before anything runs.
    for job in &jobs {
        let image = job.image.as_deref().unwrap_or(&args.image);
        crate::image::ImageSpec::parse(image)?;
        match &job.buildspec {
            Some(other) => {
                let (other_path, _) = locate_buildspec(&src, Path::new(other)).map_err(|_| {
                    Failure::usage(format!(
                        "{}: batch build {}: buildspec {other} does not exist in the source",
                        at(other),
                        job.identifier
                    ))
                })?;
                let parsed = Buildspec::from_file(&other_path)?;
                if parsed.phases.is_none() {
                    return Err(Failure::usage(format!(
                        "{}: batch build {}: this buildspec has no phases",
                        other_path.display(),
                        job.identifier
                    )));
                }
            }
            None if buildspec.phases.is_none() => {
                return Err(Failure::usage(format!(
                    "{file}: batch build {} names no buildspec, and this one has no phases",
                    job.identifier
                )));
            }
            None => {}
        }
        ensure_built(ctx, image)?;
    }

    let project = project_name(&args, &src)?;
    let number = ctx
        .store
        .next_counter(&format!("batches/{}", encode_ref_part(&project)))?;
    let id = format!("{project}:{}", uuid::Uuid::new_v4());
    let region = args.region.clone().unwrap_or_else(|| "local".to_owned());
    let out_dir = output_dir(ctx, args.artifacts.clone(), "batches", &project, number)?;
    let parallel = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| n.get()),
        |n| usize::try_from(n).unwrap_or(1),
    );
    let console: Box<dyn Write + Send> = if args.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let console = Arc::new(Mutex::new(console));
    let say = |line: &str| {
        let mut out = console.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "[batch] {line}");
    };
    say(&format!(
        "Batch {id}: {} build(s), {parallel} at a time{}",
        jobs.len(),
        if spec.fast_fail { ", fast-fail" } else { "" }
    ));
    let planned = jiff::Timestamp::now();

    let stop = BuildControl::default();
    stop_on_ctrl_c(&stop);
    let launcher = LocalLauncher {
        ctx,
        sandboxes: Mutex::default(),
        args: &args,
        src: &src,
        out_dir: &out_dir,
        console: console.clone(),
    };
    // The batch's own timeout stops every build still running, and the batch TIMED_OUT.
    let finished = std::sync::atomic::AtomicBool::new(false);
    let timed_out = std::sync::atomic::AtomicBool::new(false);
    let outcomes = std::thread::scope(|scope| {
        if let Some(minutes) = args.batch_timeout {
            let deadline =
                std::time::Instant::now() + std::time::Duration::from_secs_f64(minutes * 60.0);
            let (finished, timed_out, stop) = (&finished, &timed_out, &stop);
            scope.spawn(move || {
                while !finished.load(std::sync::atomic::Ordering::SeqCst) {
                    if std::time::Instant::now() >= deadline {
                        timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                        stop.stop();
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
        }
        let outcomes = batch::run_all(&jobs, &launcher, parallel, spec.fast_fail, &stop);
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        outcomes
    });
    let status = if timed_out.load(std::sync::atomic::Ordering::SeqCst) {
        Status::TimedOut
    } else {
        batch::batch_status(&jobs, &outcomes, stop.is_stopped())
    };
    let ended = jiff::Timestamp::now();
    if args.combine_artifacts {
        for (job, outcome) in jobs.iter().zip(&outcomes) {
            let Some(outcome) = outcome else { continue };
            let into = out_dir
                .join("combined")
                .join(encode_ref_part(&job.identifier));
            match combine(ctx, &outcome.artifact_sets, &into) {
                Ok(0) => {}
                Ok(files) => say(&format!(
                    "{}: {files} artifact file(s) combined into {}",
                    job.identifier,
                    into.display()
                )),
                Err(e) => say(&format!(
                    "{}: artifacts not combined: {}",
                    job.identifier,
                    e.message()
                )),
            }
        }
    }
    let reports = batch::merged_reports(&outcomes, &id);
    for report in &reports {
        say(&format!("merged {}", report.log_line()));
    }
    for (job, outcome) in jobs.iter().zip(&outcomes) {
        say(&format!(
            "{}: {}{}",
            job.identifier,
            outcome
                .as_ref()
                .map_or(batch::schedule::NOT_STARTED, |o| o.status.as_str()),
            if job.ignore_failure {
                " (ignore-failure)"
            } else {
                ""
            }
        ));
    }
    let phase = |kind: &str, status: &str, from: jiff::Timestamp, to: jiff::Timestamp| BatchPhase {
        phase_type: kind.to_owned(),
        phase_status: status.to_owned(),
        start_time: record_time(from),
        end_time: record_time(to),
    };
    let record = BatchRecord {
        arn: format!("arn:aws:codebuild:{region}:000000000000:build-batch/{id}"),
        id: id.clone(),
        build_batch_number: number,
        project_name: project,
        start_time: record_time(started),
        end_time: Some(record_time(ended)),
        current_phase: status.as_str().to_owned(),
        build_batch_status: status.as_str().to_owned(),
        initiator: args.initiator.clone(),
        buildspec: name,
        phases: vec![
            phase("SUBMITTED", "SUCCEEDED", started, started),
            phase("DOWNLOAD_BATCHSPEC", "SUCCEEDED", started, planned),
            phase("IN_PROGRESS", status.as_str(), planned, ended),
            phase(status.as_str(), "", ended, ended),
        ],
        build_groups: jobs
            .iter()
            .zip(&outcomes)
            .map(|(job, outcome)| batch::build_group(job, outcome.as_ref()))
            .collect(),
        reports,
        build_batch_config: BatchConfig {
            fast_fail: spec.fast_fail,
            parallel_builds: parallel,
            timeout_in_mins: (args.batch_timeout.unwrap_or(args.timeout).ceil() as u64).max(1),
            combine_artifacts: args.combine_artifacts,
        },
    };
    let json = serde_json::to_string_pretty(&record)?;
    crate::store::write_atomic_beside(&out_dir.join("build-batch.json"), json.as_bytes(), true)?;
    // Kept in the store too (`batches/<project>/<number>`), where `wasmbuild serve` finds it.
    let reference = batch::batch_ref(&record.project_name, number);
    if let Err(e) = ctx
        .store
        .put_blob(json.as_bytes())
        .and_then(|digest| ctx.store.set_ref(&reference, &digest))
    {
        say(&format!(
            "Warning: the batch record was not kept in the store: {e}"
        ));
    }
    if args.json {
        println!("{json}");
    } else {
        eprintln!(
            "wasmbuild: batch {id} {} — build-batch.json and each build in {}",
            status.as_str(),
            out_dir.display()
        );
    }
    Ok(status.exit_code())
}

/// Restores the artifact sets a build kept in the store into `into/<set>`; returns how
/// many files.
fn combine(ctx: &Context, sets: &[(String, String)], into: &Path) -> Result<u64, Failure> {
    let mut files = 0;
    for (name, reference) in sets {
        if let Some(tree) = ctx.store.get_ref(reference)? {
            files += ctx
                .store
                .restore_tree(&tree, &into.join(encode_ref_part(name)))?
                .files;
        }
    }
    Ok(files)
}

/// `FILE:LINE:COLUMN` of the first `needle` at or after the `batch:` key of `text` (the
/// batch's values are plain text there), else `FILE`.
fn located(file: &str, text: &str, needle: &str) -> String {
    let start = text.find("\nbatch:").map_or(0, |i| i + 1);
    let Some(offset) = text[start..].find(needle).map(|i| start + i) else {
        return file.to_owned();
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("{file}:{line}:{column}")
}

/// Runs a batch's builds on this machine, each as `wasmbuild run` would with the task's
/// buildspec, image and variables, into `<batch dir>/<identifier>`.
struct LocalLauncher<'a> {
    ctx: &'a Context,
    /// One sandbox per memory limit a compute type asked for.
    sandboxes: Mutex<Vec<(u64, Arc<crate::sandbox::Sandbox>)>>,
    args: &'a RunArgs,
    src: &'a Path,
    out_dir: &'a Path,
    console: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl LocalLauncher<'_> {
    /// The sandbox whose guests may use `mib` MiB (made once per size).
    fn sandbox_with(&self, mib: u64) -> Result<Arc<crate::sandbox::Sandbox>, Failure> {
        let mut sandboxes = self.sandboxes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, sandbox)) = sandboxes.iter().find(|(m, _)| *m == mib) {
            return Ok(sandbox.clone());
        }
        let sandbox = Arc::new(crate::sandbox::Sandbox::new(self.ctx.sandbox_config(mib)?)?);
        sandboxes.push((mib, sandbox.clone()));
        Ok(sandbox)
    }
}

impl Launcher for LocalLauncher<'_> {
    fn run(&self, job: &Job, control: &BuildControl) -> Outcome {
        let requested = record_time(jiff::Timestamp::now());
        let mut args = self.args.clone();
        args.batch = false;
        args.src = self.src.to_path_buf();
        if let Some(buildspec) = &job.buildspec {
            args.buildspec = PathBuf::from(buildspec);
        }
        if let Some(image) = &job.image {
            args.image.clone_from(image);
        }
        // The task's variables, then the batch's identifier; `-e` still wins.
        let mut env: Vec<String> = job
            .variables
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.push(format!(
            "CODEBUILD_BATCH_BUILD_IDENTIFIER={}",
            job.identifier
        ));
        if let Some((index, count)) = job.shard {
            // Read by codebuild-tests-run to pick this shard's test files.
            env.push(format!("WASMBUILD_SHARD_INDEX={index}"));
            env.push(format!("WASMBUILD_SHARD_COUNT={count}"));
        }
        env.extend(self.args.env.iter().cloned());
        args.env = env;
        let dir = self.out_dir.join(encode_ref_part(&job.identifier));
        let failed = |message: String| Outcome {
            started: Some(requested.clone()),
            ended: Some(record_time(jiff::Timestamp::now())),
            ..Outcome::not_run(Status::Failed, message)
        };
        let Prepared {
            request,
            mut services,
        } = match prepare(self.ctx, &args, Some(dir.clone())) {
            Ok(prepared) => prepared,
            Err(e) => return failed(e.message()),
        };
        let console = Box::new(batch::PrefixedConsole::new(
            &job.identifier,
            self.console.clone(),
        ));
        let log = match open_log(console, &dir, args.log_limit) {
            Ok(log) => log,
            Err(e) => return failed(e.message()),
        };
        if let Some(compute_type) = &job.compute_type {
            match batch::plan::compute_type_memory_mib(compute_type) {
                Some(memory) => match self.sandbox_with(memory) {
                    Ok(sandbox) => {
                        services.sandbox = sandbox;
                        log.line(format!(
                            "compute-type {compute_type}: guests may use up to {memory} MiB"
                        ));
                    }
                    Err(e) => return failed(e.message()),
                },
                None => log.line(format!(
                    "compute-type {compute_type} accepted; it names no memory size here"
                )),
            }
        }
        for setting in &job.accepted {
            log.line(format!(
                "Batch setting {setting} accepted (no meaning on one machine)"
            ));
        }
        let record = lifecycle::run(&request, &services, log, control.clone());
        Outcome {
            status: record.build_status,
            build_id: Some(record.id.clone()),
            build_arn: Some(record.arn.clone()),
            build_number: Some(record.build_number),
            out_dir: Some(dir),
            message: record
                .phases
                .iter()
                .rev()
                .find_map(|p| p.contexts.first().map(|c| c.message.clone()))
                .filter(|m| !m.is_empty()),
            started: Some(requested),
            ended: record.end_time.clone(),
            artifact_sets: record
                .store
                .iter()
                .flat_map(|kept| &kept.artifacts)
                .map(|set| (set.name.clone(), set.value.clone()))
                .collect(),
            reports: record.reports,
        }
    }
}
