//! `wasmbuild verify`: the two builds and their comparison are `lifecycle::verify`'s; this
//! prints the report. Exit 0 when the artifacts are identical, 1 when not (each differing
//! file listed), 2 for bad input.

use std::io::Write;

use super::run::{Prepared, RunArgs, prepare};
use super::shared::{open_log, print_json, stop_on_ctrl_c};
use super::{Context, Failure};
use crate::lifecycle::verify::{Difference, Verification, Verified, verify};
use crate::lifecycle::{BuildControl, Status};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(ctx: &Context, args: VerifyArgs) -> Result<u8, Failure> {
    let args = args.run;
    // -a DIR keeps both builds' output in DIR/first and DIR/second; else a scratch dir.
    let scratch = tempfile::Builder::new()
        .prefix("wasmbuild-verify-")
        .tempdir()
        .map_err(Failure::io("cannot create a scratch directory"))?;
    let out_root = args
        .artifacts
        .clone()
        .unwrap_or_else(|| scratch.path().join("output"));
    let control = BuildControl::default();
    stop_on_ctrl_c(&control);
    let verified = verify(
        scratch.path(),
        args.determinism.deterministic,
        &control,
        |pass| {
            let Prepared { request, services } =
                prepare(ctx, &args, Some(out_root.join(pass.label)))?;
            let log = open_log(Box::new(std::io::sink()), &request.out_dir, args.log_limit)?;
            Ok::<_, Failure>((request, services, log))
        },
        |step| eprintln!("wasmbuild verify: {step}"),
    )?;
    let (verification, first) = match verified {
        Verified::Stopped(record) => return Ok(record.build_status.exit_code()),
        Verified::Compared {
            verification,
            first,
        } => (verification, first),
    };
    // Differences quote artifact text, which may hold a secret: masked as the log is.
    let mask = first.secret_mask.clone();
    if args.json {
        let mut value = serde_json::to_value(&verification)?;
        mask.mask_json(&mut value);
        print_json(&value)?;
    } else {
        let mut report = Vec::new();
        print_report(&verification, &mut report);
        let _ = std::io::stdout().write_all(&mask.mask_bytes(&report));
    }
    Ok(if verification.reproducible { 0 } else { 1 })
}

fn print_report(record: &Verification, out: &mut impl Write) {
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
