//! `wasmbuild check`: reads a buildspec without running it and says everything at once —
//! its errors and warnings, each `runtime-versions` entry and the bundle that provides it,
//! and each program its commands call (parsed with the build shell's parser) as a builtin,
//! a function of the buildspec, a bundle's command, a path, or missing. Exit 0 when the
//! build has what it needs, 1 when something is missing, 2 when the buildspec is invalid
//! (or has warnings, with `--strict`).

use std::path::PathBuf;

use serde::Serialize;

use super::shared::print_json;
use super::{Context, Failure};
use crate::buildspec::{Buildspec, BuildspecError, runtime_version_variable};
use crate::image::{DEFAULT_IMAGE, DEFAULT_RUNTIMES, ImageSpec};
use crate::runtime::{Recipe, Runtimes, recipe};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The source directory the buildspec belongs to.
    #[arg(default_value = ".", value_name = "SRC_DIR")]
    pub src: PathBuf,
    /// The buildspec: a path inside the source directory, else a host path.
    #[arg(
        short = 'b',
        long,
        default_value = "buildspec.yml",
        value_name = "BUILDSPEC"
    )]
    pub buildspec: PathBuf,
    /// The image the build would run with: `NAME[:VERSION]`.
    #[arg(long, default_value = DEFAULT_IMAGE, value_name = "NAME[:VERSION]")]
    pub image: String,
    /// Count warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A located problem of the buildspec.
#[derive(Debug, Serialize)]
struct Problem {
    /// The buildspec it is in (a batch's task buildspecs are checked too).
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

/// A `runtime-versions` entry and what answers it.
#[derive(Debug, Serialize)]
struct RuntimeNeed {
    name: String,
    request: String,
    /// `provided`, `buildable` (a recipe, built when the build starts), `variable` (known
    /// when the build runs) or `missing`.
    status: &'static str,
    version: Option<String>,
    /// What the store has, when missing, and the nearest of it.
    available: Vec<String>,
    nearest: Option<String>,
}

/// A program the commands call.
#[derive(Debug, Serialize)]
struct ProgramNeed {
    name: String,
    /// The buildspec that calls it.
    file: String,
    /// The buildspec line of its first call.
    line: usize,
    /// `builtin`, `function`, `bundle`, `path` (run from the workspace; not checked),
    /// `installed` (in no bundle, but an earlier `pip` command installs packages, whose
    /// console scripts land on `PATH`) or `missing`.
    kind: &'static str,
    bundle: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    buildspec: String,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    /// Commands whose shell syntax is wrong: they fail when they run.
    shell_errors: Vec<Problem>,
    image: String,
    runtimes: Vec<RuntimeNeed>,
    programs: Vec<ProgramNeed>,
    /// Command words known only when the build runs (`$TOOL`).
    dynamic: usize,
    /// Bundles named but not in the store and without a recipe listing their commands.
    unknown_bundles: Vec<String>,
    status: u8,
}

pub fn check(ctx: &Context, args: CheckArgs) -> Result<u8, Failure> {
    let (path, _) = super::run::locate_buildspec(&args.src, &args.buildspec)?;
    let diagnosis = Buildspec::diagnose_file(&path);
    let file = path.display().to_string();
    let mut report = Report {
        buildspec: file.clone(),
        errors: Vec::new(),
        warnings: Vec::new(),
        shell_errors: Vec::new(),
        image: args.image.clone(),
        runtimes: Vec::new(),
        programs: Vec::new(),
        dynamic: 0,
        unknown_bundles: Vec::new(),
        status: 0,
    };
    take_problems(&diagnosis, &file, &mut report);
    if let Some(buildspec) = &diagnosis.buildspec {
        if buildspec.phases.is_some() {
            needs(ctx, &args.image, buildspec, &file, &mut report)?;
        }
        if let Some(spec) = &buildspec.batch {
            check_batch(ctx, &args, spec, &file, &mut report)?;
        }
    }
    report.status = if !report.errors.is_empty() || (args.strict && !report.warnings.is_empty()) {
        super::EXIT_BAD_INPUT
    } else if !report.shell_errors.is_empty()
        || report.programs.iter().any(|p| p.kind == "missing")
        || report.runtimes.iter().any(|r| r.status == "missing")
    {
        1
    } else {
        0
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(report.status)
}

/// The errors and warnings of a diagnosed buildspec `file`, into the report.
fn take_problems(diagnosis: &crate::buildspec::Diagnosis, file: &str, report: &mut Report) {
    report
        .errors
        .extend(diagnosis.errors.iter().map(|e| problem(e, file)));
    report
        .warnings
        .extend(diagnosis.warnings.iter().map(|w| Problem {
            file: file.to_owned(),
            line: Some(w.line),
            column: Some(w.column),
            message: w.message.clone(),
        }));
}

/// A batch's task buildspecs, each checked as a buildspec is, with the task's image.
fn check_batch(
    ctx: &Context,
    args: &CheckArgs,
    spec: &crate::buildspec::Batch,
    file: &str,
    report: &mut Report,
) -> Result<(), Failure> {
    let jobs = match crate::batch::plan(spec) {
        Ok(jobs) => jobs,
        Err(message) => {
            report.errors.push(Problem {
                file: file.to_owned(),
                line: None,
                column: None,
                message: format!("batch: {message}"),
            });
            return Ok(());
        }
    };
    let mut checked: Vec<(String, String)> = Vec::new();
    for job in &jobs {
        let Some(task) = &job.buildspec else { continue };
        let image = job.image.clone().unwrap_or_else(|| args.image.clone());
        if checked.contains(&(task.clone(), image.clone())) {
            continue;
        }
        checked.push((task.clone(), image.clone()));
        let Ok((path, _)) = super::run::locate_buildspec(&args.src, std::path::Path::new(task))
        else {
            report.errors.push(Problem {
                file: file.to_owned(),
                line: None,
                column: None,
                message: format!(
                    "batch build {}: buildspec {task} does not exist in the source",
                    job.identifier
                ),
            });
            continue;
        };
        let task_file = path.display().to_string();
        let diagnosis = Buildspec::diagnose_file(&path);
        take_problems(&diagnosis, &task_file, report);
        if let Some(parsed) = &diagnosis.buildspec {
            needs(ctx, &image, parsed, &task_file, report)?;
        }
    }
    Ok(())
}

fn problem(error: &BuildspecError, file: &str) -> Problem {
    let location = error.location();
    Problem {
        file: file.to_owned(),
        line: location.map(|l| l.0),
        column: location.map(|l| l.1),
        message: error.message(),
    }
}

/// The commands each bundle offers the build, in lookup order, by bundle name.
type Offers = Vec<(String, Vec<String>)>;

/// What the build needs and whether it is there.
fn needs(
    ctx: &Context,
    image: &str,
    buildspec: &Buildspec,
    file: &str,
    report: &mut Report,
) -> Result<(), Failure> {
    let runtimes = ctx.runtimes();
    let recipes = ctx.recipes()?;
    let mut offers: Offers = Vec::new();

    // runtime-versions come first in lookup, as INSTALL puts them first on PATH.
    let install = buildspec.phases.as_ref().and_then(|p| p.install.as_ref());
    for (name, written) in install
        .map(|p| p.runtime_versions.as_slice())
        .unwrap_or_default()
    {
        // `$VAR` from the buildspec's own variables, as INSTALL would expand it (one
        // given with `run -e` is only known then).
        let expanded = runtime_version_variable(written).and_then(|var| {
            let mut variables = buildspec.env.variables.iter().rev();
            variables.find(|(k, _)| k == var).map(|(_, v)| v.as_str())
        });
        let mut need = runtime_need(runtimes, recipes, name, expanded.unwrap_or(written))?;
        need.request = written.clone();
        if matches!(need.status, "provided" | "buildable") {
            offer(
                runtimes,
                recipes,
                name,
                need.version.as_deref(),
                &mut offers,
                report,
            )?;
        }
        report.runtimes.push(need);
    }
    let ImageSpec { name, version } = ImageSpec::parse(image)?;
    offer(runtimes, recipes, name, version, &mut offers, report)?;
    if name != DEFAULT_IMAGE {
        offer(runtimes, recipes, DEFAULT_IMAGE, None, &mut offers, report)?;
    }
    if name == DEFAULT_IMAGE {
        for extra in DEFAULT_RUNTIMES {
            offer(runtimes, recipes, extra, None, &mut offers, report)?;
        }
    }

    // Functions are shared by the whole session (0.2), so any phase may call them.
    let mut calls: Vec<(String, usize)> = Vec::new();
    let mut functions: Vec<String> = Vec::new();
    for (command, first) in buildspec.commands() {
        match crate::shell::called_programs(command) {
            Ok(found) => {
                report.dynamic += found.dynamic;
                functions.extend(found.functions);
                calls.extend(
                    found
                        .programs
                        .into_iter()
                        .map(|c| (c.name, c.line + first - 1)),
                );
            }
            Err(crate::shell::ShellError::Syntax {
                line,
                column,
                message,
                ..
            }) => report.shell_errors.push(Problem {
                file: file.to_owned(),
                line: Some(line + first - 1),
                column: Some(column),
                message,
            }),
            Err(other) => report.shell_errors.push(Problem {
                file: file.to_owned(),
                line: Some(first),
                column: None,
                message: other.to_string(),
            }),
        }
    }
    let has_python = offers
        .iter()
        .any(|(_, commands)| commands.iter().any(|c| c == "python3"));
    let mut seen: std::collections::HashSet<String> = Default::default();
    let mut installs = false;
    for (name, line) in calls {
        let is_pip = crate::python::pip::is_any_pip_name(&name);
        if !seen.insert(name.clone()) {
            continue;
        }
        let (kind, bundle) = if functions.contains(&name) {
            ("function", None)
        } else if crate::shell::is_builtin(&name)
            || matches!(
                name.as_str(),
                "sh" | "bash" | "dash" | "/bin/sh" | "/bin/bash"
            )
        {
            // `bash x.sh` and `sh -c` run in the build shell itself.
            ("builtin", None)
        } else if name.contains('/') {
            ("path", None)
        } else if let Some((bundle, _)) = offers.iter().find(|(_, c)| c.contains(&name)) {
            ("bundle", Some(bundle.clone()))
        } else if has_python && is_pip {
            ("bundle", Some("python (pip, run by wasmbuild)".to_owned()))
        } else if installs {
            ("installed", None)
        } else {
            ("missing", None)
        };
        installs |= has_python && is_pip;
        report.programs.push(ProgramNeed {
            name,
            file: file.to_owned(),
            line,
            kind,
            bundle,
        });
    }
    Ok(())
}

/// Adds the commands of bundle `name` (the store's, else its recipe's list) to `offers`.
fn offer(
    runtimes: &Runtimes,
    recipes: &std::path::Path,
    name: &str,
    version: Option<&str>,
    offers: &mut Offers,
    report: &mut Report,
) -> Result<(), Failure> {
    if offers.iter().any(|(n, _)| n == name) {
        return Ok(());
    }
    let commands = match runtimes.find(name, version)? {
        Some(digest) => runtimes.manifest(&digest)?.commands.into_keys().collect(),
        None => match Recipe::load(recipes, name).ok().map(|r| r.commands) {
            Some(recipe::Commands::Names(names)) => names,
            _ => {
                report.unknown_bundles.push(name.to_owned());
                return Ok(());
            }
        },
    };
    offers.push((name.to_owned(), commands));
    Ok(())
}

fn runtime_need(
    runtimes: &Runtimes,
    recipes: &std::path::Path,
    name: &str,
    request: &str,
) -> Result<RuntimeNeed, Failure> {
    let mut need = RuntimeNeed {
        name: name.to_owned(),
        request: request.to_owned(),
        status: "missing",
        version: None,
        available: Vec::new(),
        nearest: None,
    };
    if runtime_version_variable(request).is_some() {
        need.status = "variable";
        return Ok(need);
    }
    if let Some((version, _)) = runtimes.resolve_version(name, request)? {
        need.status = "provided";
        need.version = Some(version);
        return Ok(need);
    }
    // A recipe of that version (`runtimes/<name>` or `runtimes/<name>@<version>`) is built
    // when the build starts.
    if let Ok(Some(recipe)) = Recipe::find(recipes, name, Some(request)) {
        need.status = "buildable";
        need.version = Some(recipe.version);
        return Ok(need);
    }
    for bundle in runtimes.names()? {
        for version in runtimes.versions(&bundle)? {
            need.available.push(format!("{bundle} {version}"));
        }
    }
    need.nearest = runtimes
        .nearest(name, request)?
        .map(|(n, v)| format!("{n} {v}"));
    Ok(need)
}

fn print_text(report: &Report) {
    let file = &report.buildspec;
    let located = |p: &Problem| match (p.line, p.column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", p.file),
        (Some(l), None) => format!("{}:{l}", p.file),
        _ => p.file.clone(),
    };
    for error in &report.errors {
        println!("{}: error: {}", located(error), error.message);
    }
    for warning in &report.warnings {
        println!("{}: warning: {}", located(warning), warning.message);
    }
    for error in &report.shell_errors {
        println!("{}: shell: {}", located(error), error.message);
    }
    if !report.runtimes.is_empty() {
        println!("runtime-versions:");
        for r in &report.runtimes {
            let what = match r.status {
                "provided" => format!("bundle {} {}", r.name, r.version.as_deref().unwrap_or("")),
                "buildable" => format!(
                    "bundle {} {} (built from its recipe when the build starts)",
                    r.name,
                    r.version.as_deref().unwrap_or("")
                ),
                "variable" => "known when the build runs".to_owned(),
                _ => format!(
                    "MISSING: the store has {}{}",
                    if r.available.is_empty() {
                        "no bundle".to_owned()
                    } else {
                        r.available.join(", ")
                    },
                    r.nearest
                        .as_ref()
                        .map(|n| format!("; the nearest is {n}"))
                        .unwrap_or_default()
                ),
            };
            println!("  {:<12} {:<10} {what}", r.name, r.request);
        }
    }
    if !report.programs.is_empty() {
        println!("programs:");
        for p in &report.programs {
            let what = match (p.kind, &p.bundle) {
                ("bundle", Some(bundle)) => format!("bundle {bundle}"),
                ("path", _) => "a path (run from the workspace; not checked)".to_owned(),
                ("missing", _) => "MISSING: no bundle of the image has it".to_owned(),
                ("installed", _) => {
                    "in no bundle; an earlier pip command may install it".to_owned()
                }
                (kind, _) => kind.to_owned(),
            };
            let place = if p.file == *file {
                format!("line {}", p.line)
            } else {
                format!("{}:{}", p.file, p.line)
            };
            println!("  {:<20} {place:<11} {what}", p.name);
        }
    }
    if report.dynamic > 0 {
        println!(
            "{} command word(s) known only when the build runs (like `$TOOL`): not checked",
            report.dynamic
        );
    }
    for bundle in &report.unknown_bundles {
        println!(
            "bundle {bundle} is not built yet: its commands are not known (`wasmbuild runtime build {bundle}`)"
        );
    }
    let missing = report
        .programs
        .iter()
        .filter(|p| p.kind == "missing")
        .count()
        + report
            .runtimes
            .iter()
            .filter(|r| r.status == "missing")
            .count();
    let verdict = match report.status {
        0 if report.warnings.is_empty() => "ok".to_owned(),
        0 => format!("ok, with {} warning(s)", report.warnings.len()),
        1 => format!(
            "the build would fail: {missing} missing, {} shell syntax error(s)",
            report.shell_errors.len()
        ),
        _ => format!(
            "invalid: {} error(s), {} warning(s)",
            report.errors.len(),
            report.warnings.len()
        ),
    };
    println!("{file}: {verdict}");
}
