//! `wasmbuild verify`: builds the source twice in independent workspaces, with deliberate
//! perturbations (different build ids, workspace host paths, host time, and order of file
//! creation in the source copy), then compares the artifacts by digest. Exit 0 when they
//! are identical, 1 when not (each differing file listed), 2 for bad input.

use std::io::Write;

use serde::Serialize;

use super::run::{Prepared, RunArgs, open_log, prepare, stop_on_ctrl_c};
use super::{Context, Failure};
use crate::lifecycle::verify::{Comparison, Difference, compare};
use crate::lifecycle::workspace::CopyOrder;
use crate::lifecycle::{self, BuildControl, Status};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Serialize)]
struct BuildSummary {
    id: String,
    status: Status,
    output: String,
}

#[derive(Serialize)]
struct VerifyRecord {
    reproducible: bool,
    deterministic: bool,
    first: BuildSummary,
    second: BuildSummary,
    #[serde(flatten)]
    comparison: Comparison,
}

pub fn run(ctx: &Context, args: VerifyArgs) -> Result<u8, Failure> {
    let args = args.run;
    // -a DIR keeps both builds' output in DIR/first and DIR/second; else a scratch dir.
    let scratch = tempfile::Builder::new()
        .prefix("wasmbuild-verify-")
        .tempdir()
        .map_err(|e| Failure::fault(format!("cannot create a scratch directory: {e}")))?;
    let out_root = args
        .artifacts
        .clone()
        .unwrap_or_else(|| scratch.path().join("output"));
    let control = BuildControl::default();
    stop_on_ctrl_c(&control);

    let mut summaries = Vec::new();
    let mut records = Vec::new();
    for (label, work, order) in [
        ("first", "w", CopyOrder::Parallel),
        (
            "second",
            "workspace-of-the-second-build",
            CopyOrder::Reversed,
        ),
    ] {
        if label == "second" {
            wait_for_next_second();
        }
        let Prepared {
            mut request,
            services,
        } = prepare(ctx, &args, Some(out_root.join(label)))?;
        request.work_parent = Some(scratch.path().join(work));
        request.copy_order = order;
        // Two independent builds: neither restores what the other saved.
        request.use_cache = false;
        let log = open_log(Box::new(std::io::sink()), &request.out_dir, args.log_limit)?;
        eprintln!(
            "wasmbuild verify: {label} build of {}",
            request.src_dir.display()
        );
        let record = lifecycle::run(&request, &services, log, control.clone());
        eprintln!(
            "wasmbuild verify: {label} build {} {}",
            record.id,
            record.build_status.as_str()
        );
        if control_stopped(&record) {
            return Ok(record.build_status.exit_code());
        }
        summaries.push(BuildSummary {
            id: record.id.clone(),
            status: record.build_status,
            output: request.out_dir.display().to_string(),
        });
        records.push(record);
    }

    let comparison = compare(&records[0], &records[1]);
    let both_succeeded = records.iter().all(|r| r.build_status == Status::Succeeded);
    let reproducible = both_succeeded && comparison.differences.is_empty();
    let second = summaries.pop().expect("two builds");
    let first = summaries.pop().expect("two builds");
    let record = VerifyRecord {
        reproducible,
        deterministic: args.determinism.deterministic,
        first,
        second,
        comparison,
    };
    // Differences quote artifact text, which may hold a secret: masked as the log is.
    let mask = records[0].secret_mask.clone();
    if args.json {
        let mut value = serde_json::to_value(&record).map_err(|e| Failure::fault(e.to_string()))?;
        mask.mask_json(&mut value);
        let text =
            serde_json::to_string_pretty(&value).map_err(|e| Failure::fault(e.to_string()))?;
        println!("{text}");
    } else {
        let mut report = Vec::new();
        print_report(&record, &mut report);
        let _ = std::io::stdout().write_all(&mask.mask_bytes(&report));
    }
    if args.artifacts.is_none() {
        drop(scratch);
    }
    Ok(if reproducible { 0 } else { 1 })
}

fn control_stopped(record: &lifecycle::BuildRecord) -> bool {
    matches!(record.build_status, Status::Stopped)
}

/// Lets the host clock move on to the next second, so the two builds see different times.
fn wait_for_next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let rest = 1_000_000_000 - u64::from(now.subsec_nanos());
    std::thread::sleep(std::time::Duration::from_nanos(rest + 10_000_000));
}

fn print_report(record: &VerifyRecord, out: &mut impl Write) {
    let comparison = &record.comparison;
    for build in [&record.first, &record.second] {
        if build.status != Status::Succeeded {
            let _ = writeln!(
                out,
                "build {} {}: see {}/build.log",
                build.id,
                build.status.as_str(),
                build.output
            );
        }
    }
    if record.reproducible {
        let _ = writeln!(
            out,
            "reproducible: {} artifact file(s) identical in both builds",
            comparison.files_compared
        );
        return;
    }
    let _ = writeln!(
        out,
        "NOT reproducible: {} of {} artifact file(s) differ",
        comparison.differences.len(),
        comparison.files_compared
    );
    for difference in &comparison.differences {
        match difference {
            Difference::Missing { path, in_first } => {
                let which = if *in_first { "first" } else { "second" };
                let _ = writeln!(out, "  {path}: only in the {which} build");
            }
            Difference::Text { path, diff } => {
                let _ = writeln!(out, "  {path}: text differs");
                for line in diff.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Difference::Binary {
                path,
                first_difference_at,
                first_size,
                second_size,
            } => {
                let _ = writeln!(
                    out,
                    "  {path}: binary content differs from byte {first_difference_at} (sizes {first_size} and {second_size})"
                );
            }
            Difference::Symlink {
                path,
                first_target,
                second_target,
            } => {
                let _ = writeln!(
                    out,
                    "  {path}: symlink to {first_target} in the first build, {second_target} in the second"
                );
            }
        }
    }
}
