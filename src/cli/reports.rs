//! `wasmbuild reports`: the test and coverage reports builds kept in the store — `list`
//! (newest first, from the build records), `show` (one report: test cases failed first,
//! or coverage by file) and `trend` (a group over its last builds), each with `--json`.

use serde::Serialize;

use super::shared::print_json;
use super::{Context, Failure};
use crate::lifecycle::cache::{decode_ref_part, encode_ref_part};
use crate::lifecycle::reports::report_ref;
use crate::reports::{Report, kept};
use crate::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum ReportsCommand {
    /// The reports of every build (of PROJECT), newest first.
    List {
        project: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One report: `GROUP:NUMBER` (as `list` shows it) or its ARN ending `GROUP:UUID`.
    Show {
        report: String,
        #[arg(long)]
        json: bool,
    },
    /// A report group's pass rate, duration and coverage over its last builds.
    Trend {
        group: String,
        /// How many builds.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        last: u64,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, command: ReportsCommand) -> Result<u8, Failure> {
    match command {
        ReportsCommand::List { project, json } => list(&ctx.store, project.as_deref(), json),
        ReportsCommand::Show { report, json } => show(&ctx.store, &report, json),
        ReportsCommand::Trend { group, last, json } => trend(&ctx.store, &group, last, json),
    }
}

/// A report as `list` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    /// `GROUP:NUMBER`: what `show` takes.
    report: String,
    project: String,
    build_number: u64,
    #[serde(flatten)]
    summary: Report,
}

fn list(store: &Store, project: Option<&str>, json: bool) -> Result<u8, Failure> {
    let prefix = match project {
        Some(project) => format!("builds/{}/", encode_ref_part(project)),
        None => "builds/".to_owned(),
    };
    let mut listed: Vec<Listed> = Vec::new();
    for info in store.list_refs_recursive(&prefix)? {
        let mut parts = info.name.splitn(3, '/').skip(1);
        let (Some(project), Some(number)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        // A record that cannot be read is left out of the listing, said on stderr.
        let record: serde_json::Value = match store
            .get_blob(&info.value)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        {
            Ok(record) => record,
            Err(e) => {
                eprintln!("wasmbuild: {}: {e}", info.name);
                continue;
            }
        };
        for report in record["reports"].as_array().into_iter().flatten() {
            let Ok(summary) = serde_json::from_value::<Report>(report.clone()) else {
                continue;
            };
            listed.push(Listed {
                report: format!("{}:{number}", summary.report_group_arn),
                project: decode_ref_part(project),
                build_number: number,
                summary,
            });
        }
    }
    listed.sort_by(|a, b| b.summary.created.cmp(&a.summary.created));
    if json {
        print_json(&listed)?;
        return Ok(0);
    }
    if listed.is_empty() {
        println!("no reports");
        return Ok(0);
    }
    println!(
        "{:<40} {:<13} {:<10} {:<28} CREATED",
        "REPORT", "TYPE", "STATUS", "RESULT"
    );
    for l in &listed {
        println!(
            "{:<40} {:<13} {:<10} {:<28} {}",
            l.report,
            l.summary.kind,
            l.summary.status,
            l.summary.result_text(),
            l.summary.created
        );
    }
    Ok(0)
}

/// Reads the report `GROUP:NUMBER` or `GROUP:UUID` from the store.
fn find(store: &Store, id: &str) -> Result<Report, Failure> {
    let (group, tail) = id
        .rsplit_once(':')
        .ok_or_else(|| Failure::usage(format!("{id}: expected GROUP:NUMBER")))?;
    let group = group.rsplit('/').next().unwrap_or(group);
    let read = |digest: &str| -> Result<Report, Failure> {
        kept::decode(store, digest)
            .map_err(|e| Failure::usage(format!("report {id} in the store: {e}")))
    };
    if let Ok(number) = tail.parse::<u64>() {
        if let Some(digest) = store.get_ref(&report_ref(group, number))? {
            return read(&digest);
        }
    } else {
        for info in store.list_refs_recursive(&format!("reports/{}/", encode_ref_part(group)))? {
            let report = read(&info.value)?;
            if report.arn.ends_with(id) {
                return Ok(report);
            }
        }
    }
    Err(Failure::usage(format!(
        "no report {id} in the store (`wasmbuild reports list` shows them)"
    )))
}

fn show(store: &Store, id: &str, json: bool) -> Result<u8, Failure> {
    let mut report = find(store, id)?;
    if json {
        print_json(&report)?;
        return Ok(0);
    }
    println!("{} — {} {}", report.arn, report.kind, report.status);
    println!("{}", report.log_line());
    if let Some(reason) = &report.status_reason {
        println!("reason: {reason}");
    }
    report.sort_worst_first();
    if report.test_summary.is_some() {
        println!("{:<10} {:>10}  TEST CASE", "STATUS", "SECONDS");
        for case in &report.test_cases {
            let name = if case.prefix.is_empty() {
                case.name.clone()
            } else {
                format!("{} › {}", case.prefix, case.name)
            };
            println!(
                "{:<10} {:>10.3}  {name}",
                case.status,
                case.duration_in_nano_seconds as f64 / 1e9
            );
            if let Some(message) = &case.message {
                for line in message.lines().take(3) {
                    println!("{:>23}{line}", "");
                }
            }
        }
    } else {
        println!(
            "{:>7} {:>11} {:>9} {:>13}  FILE",
            "LINES", "", "BRANCHES", ""
        );
        for file in &report.code_coverages {
            println!(
                "{:>6.2}% {:>11} {:>8.2}% {:>13}  {}",
                file.line_coverage_percentage,
                format!(
                    "{}/{}",
                    file.lines_covered,
                    file.lines_covered + file.lines_missed
                ),
                file.branch_coverage_percentage,
                format!(
                    "{}/{}",
                    file.branches_covered,
                    file.branches_covered + file.branches_missed
                ),
                file.file_path
            );
        }
    }
    if report.truncated {
        println!("(truncated: the report holds only the first cases or files)");
    }
    Ok(0)
}

fn trend(store: &Store, group: &str, last: u64, json: bool) -> Result<u8, Failure> {
    let (points, damaged) = kept::trend(store, group, last)?;
    for number in damaged {
        eprintln!("wasmbuild: report {group}:{number} in the store is damaged; left out");
    }
    if json {
        print_json(&points)?;
        return Ok(0);
    }
    if points.is_empty() {
        return Err(Failure::usage(format!(
            "no reports of group {group} in the store (`wasmbuild reports list` shows them)"
        )));
    }
    let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v:.2}{unit}"));
    println!(
        "{:>7} {:<11} {:>9} {:>7} {:>10} {:>9} {:>9}",
        "BUILD", "STATUS", "PASSED", "TESTS", "DURATION", "LINES", "BRANCHES"
    );
    for p in &points {
        println!(
            "{:>7} {:<11} {:>9} {:>7} {:>10} {:>9} {:>9}",
            p.build_number,
            p.status,
            opt(p.pass_rate, "%"),
            p.total.map_or("-".to_owned(), |t| t.to_string()),
            opt(p.duration_seconds, " s"),
            opt(p.line_coverage, "%"),
            opt(p.branch_coverage, "%"),
        );
    }
    Ok(0)
}
