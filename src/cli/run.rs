//! `wasmbuild run`: a buildspec build of a source directory, as CodeBuild would run it.
//! The log streams to stdout (to stderr with `--json`, which prints the record at the end);
//! the exit status is the build's (DESIGN.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::shared::{DeterminismArgs, ensure_built, open_log, parse_env_pairs, stop_on_ctrl_c};
use super::{Context, Failure};
use crate::buildspec::Buildspec;
use crate::image::DEFAULT_IMAGE;
use crate::lifecycle::{self, BuildControl, BuildRequest, BuildServices, Secrets};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The source directory (copied; never modified).
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
    /// Image to build with: `NAME[:VERSION]`.
    #[arg(long, default_value = DEFAULT_IMAGE, value_name = "NAME[:VERSION]")]
    pub image: String,
    /// Environment variable (repeatable); wins over the buildspec's.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// File of `KEY=VALUE` lines (the CodeBuild local agent's format).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// A Parameter Store parameter or Secrets Manager secret: `NAME=VALUE` (repeatable).
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub secrets: Vec<String>,
    /// File of secret `NAME=VALUE` lines.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Take secret NAME from the host environment (repeatable; nothing else of it is read).
    #[arg(long = "secret-from-env", value_name = "NAME")]
    pub secret_from_env: Vec<String>,
    /// Where artifact sets, build.json and build.log go
    /// (default: builds/<project>/<number> in the store).
    #[arg(short = 'a', long = "artifacts", value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Also write each artifact set as a zip.
    #[arg(long)]
    pub zip: bool,
    /// Build timeout in minutes (fractions allowed; above 0, at most 2160).
    #[arg(long, default_value_t = 60.0, value_name = "MINUTES", value_parser = super::shared::parse_timeout_minutes)]
    pub timeout: f64,
    /// Print the build record (build.json) on stdout at the end; the log goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// Size limit of the build log, in bytes (default 256 MiB): past it, command output is
    /// dropped (console and build.log) with one line saying so; the build goes on.
    #[arg(
        long,
        env = "WASMBUILD_MAX_LOG_BYTES",
        value_name = "BYTES",
        default_value_t = crate::lifecycle::log::DEFAULT_MAX_LOG_BYTES,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub log_limit: u64,
    /// Project name (default: the source directory's name).
    #[arg(long)]
    pub project: Option<String>,
    /// `CODEBUILD_INITIATOR`.
    #[arg(long, default_value = "wasmbuild")]
    pub initiator: String,
    /// `AWS_REGION` for the build.
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Refuse a buildspec with warnings (keys CodeBuild ignores, repeated variables).
    #[arg(long)]
    pub strict: bool,
    /// Run the buildspec's `batch` (automatic when it has `batch` and no `phases`).
    #[arg(long)]
    pub batch: bool,
    /// Builds of a batch run at once (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: Option<u64>,
    /// With a batch: also gather every build's artifacts under `combined/<identifier>/`
    /// in the batch's directory (CodeBuild's combine-artifacts).
    #[arg(long)]
    pub combine_artifacts: bool,
    /// With a batch: stop its builds after MINUTES (the batch's timeout-in-mins).
    #[arg(long, value_name = "MINUTES", value_parser = super::shared::parse_timeout_minutes)]
    pub batch_timeout: Option<f64>,
    #[command(flatten)]
    pub determinism: DeterminismArgs,
    #[command(flatten)]
    pub python: PythonArgs,
}

/// How the build's `pip` gets packages.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PythonArgs {
    /// Ask no package index: every distribution must already be in the store (a lock, or
    /// pages and files seen by an earlier build).
    #[arg(long)]
    pub offline: bool,
    /// After a successful build, write what its pip commands installed, pinned by hash, to
    /// `wasmbuild.lock` beside the buildspec; later builds follow it.
    #[arg(long)]
    pub write_lock: bool,
}

/// The source directory, absolute; anything else is a usage error.
pub(super) fn source_dir(src: &Path) -> Result<PathBuf, Failure> {
    src.canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| Failure::usage(format!("{}: not a source directory", src.display())))
}

/// The project: `--project`, else the source directory's name. It names directories and
/// store references, so it is checked.
pub(super) fn project_name(args: &RunArgs, src: &Path) -> Result<String, Failure> {
    let project = match &args.project {
        Some(project) => project.clone(),
        None => src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".to_owned()),
    };
    if project.is_empty()
        || project == "."
        || project == ".."
        || project.len() > 255
        || project.contains(['/', ':', '\\'])
        || project.chars().any(char::is_control)
    {
        return Err(Failure::usage(format!(
            "project name {project:?} must be 1 to 255 characters, not `.` or `..`, \
             without '/', '\\', ':' or control characters"
        )));
    }
    Ok(project)
}

/// Where a build's (or batch's) output goes: `given`, else `<kind>/<project>/<number>` in
/// the store; created, and as an absolute path.
pub(super) fn output_dir(
    ctx: &Context,
    given: Option<PathBuf>,
    kind: &str,
    project: &str,
    number: u64,
) -> Result<PathBuf, Failure> {
    let dir = given.unwrap_or_else(|| {
        ctx.store
            .local_dir(kind)
            .join(project)
            .join(number.to_string())
    });
    std::fs::create_dir_all(&dir).map_err(Failure::io(dir.display()))?;
    dir.canonicalize().map_err(Failure::io(dir.display()))
}

/// Whether the buildspec's commands call a command of the bundle `name` (as its recipe
/// lists them; `pip` for python), read with the build shell's parser.
fn calls_runtime(ctx: &Context, buildspec: &Buildspec, name: &str) -> bool {
    let Ok(recipes) = ctx.recipes() else {
        return false;
    };
    let commands = match crate::runtime::Recipe::load(recipes, name).map(|r| r.commands) {
        Ok(crate::runtime::recipe::Commands::Names(names)) => names,
        _ => return false,
    };
    let provides = |program: &str| {
        let program = program.rsplit('/').next().unwrap_or(program);
        commands.iter().any(|c| c == program)
            || (name == "python" && crate::python::pip::is_any_pip_name(program))
    };
    buildspec
        .commands()
        .filter_map(|(command, _)| crate::shell::called_programs(command).ok())
        .any(|calls| calls.programs.iter().any(|c| provides(&c.name)))
}

/// The lock file a buildspec's builds follow: beside it.
pub const LOCK_FILE: &str = "wasmbuild.lock";

/// A build ready to start: what `run` and `verify` share.
pub struct Prepared {
    pub request: BuildRequest,
    pub services: BuildServices,
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<u8, Failure> {
    if super::batch::wanted(&args) {
        return super::batch::run(ctx, args);
    }
    let Prepared { request, services } = prepare(ctx, &args, None)?;
    let out_dir = request.out_dir.clone();
    std::fs::create_dir_all(&out_dir).map_err(Failure::io(out_dir.display()))?;
    let console: Box<dyn Write + Send> = if args.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let log = open_log(console, &out_dir, args.log_limit)?;
    let control = BuildControl::default();
    stop_on_ctrl_c(&control);
    let record = lifecycle::run(&request, &services, log, control);
    if args.python.write_lock && record.build_status == lifecycle::Status::Succeeded {
        write_lock(&request.buildspec_path, &record)?;
    }
    if args.json {
        // Masked: secret values never reach the output.
        println!("{}", record.to_json_pretty());
    } else {
        eprintln!(
            "wasmbuild: build {} {} — record and log in {}",
            record.id,
            record.build_status.as_str(),
            out_dir.display()
        );
    }
    Ok(record.build_status.exit_code())
}

/// Writes the build's pins to the lock beside its buildspec (atomically).
fn write_lock(buildspec: &Path, record: &lifecycle::BuildRecord) -> Result<(), Failure> {
    let pins = record
        .python
        .as_ref()
        .map(|p| p.packages.clone())
        .unwrap_or_default();
    let path = buildspec.with_file_name(LOCK_FILE);
    crate::store::write_atomic_beside(
        &path,
        crate::python::lock::Lock::new(pins.clone())
            .to_toml()
            .as_bytes(),
        true,
    )?;
    eprintln!(
        "wasmbuild: wrote {} ({} Python distributions)",
        path.display(),
        pins.len()
    );
    Ok(())
}

/// The pins of the lock beside the buildspec, if there is one.
fn read_lock(buildspec: &Path) -> Result<Option<(String, Vec<crate::python::Pin>)>, Failure> {
    let path = buildspec.with_file_name(LOCK_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => crate::python::lock::Lock::parse(&text, &path.to_string_lossy())
            .map(|lock| Some((path.to_string_lossy().into_owned(), lock.python)))
            .map_err(Failure::Lock),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::input(&path)(e)),
    }
}

/// Checks the arguments, parses the buildspec, makes sure the image's bundles are there
/// and numbers the build. `out_dir` overrides `-a`.
pub fn prepare(
    ctx: &Context,
    args: &RunArgs,
    out_dir: Option<PathBuf>,
) -> Result<Prepared, Failure> {
    let src = source_dir(&args.src)?;
    let (buildspec_path, buildspec_name) = locate_buildspec(&src, &args.buildspec)?;
    let buildspec = Buildspec::from_file(&buildspec_path)?;
    if args.strict && !buildspec.warnings.is_empty() {
        for warning in &buildspec.warnings {
            eprintln!("{warning}");
        }
        return Err(Failure::usage(format!(
            "{}: {} warning(s), refused by --strict",
            buildspec_path.display(),
            buildspec.warnings.len()
        )));
    }
    if buildspec.is_batch_only() {
        return Err(Failure::usage(format!(
            "{}: a batch buildspec (`batch` and no `phases`): run it with `wasmbuild run`",
            buildspec_path.display()
        )));
    }

    // The parser bounds it already; checked again for callers that fill `RunArgs` in code.
    let timeout = super::shared::parse_timeout_minutes(&args.timeout.to_string())
        .ok()
        .and_then(|minutes| Duration::try_from_secs_f64(minutes * 60.0).ok())
        .filter(|t| !t.is_zero())
        .ok_or_else(|| Failure::usage(format!("--timeout {}: not a duration", args.timeout)))?;
    let mut user_env = Vec::new();
    if let Some(file) = &args.env_file {
        user_env = lifecycle::parse_env_file(file)?;
    }
    for (key, value) in parse_env_pairs(&args.env)? {
        user_env.retain(|(k, _)| *k != key);
        user_env.push((key, value));
    }
    let mut secrets = Secrets::default();
    for pair in &args.secrets {
        secrets.add_pair(pair)?;
    }
    if let Some(file) = &args.secrets_file {
        secrets.add_file(file)?;
    }
    for name in &args.secret_from_env {
        secrets.add_from_env(name)?;
    }

    let project = project_name(args, &src)?;

    // Bundles with a recipe are built before the build starts, so a fresh machine needs no
    // separate step; runtimes that cannot be found fail INSTALL with the list of what exists.
    ensure_built(ctx, &args.image)?;
    let install = buildspec.phases.as_ref().and_then(|p| p.install.as_ref());
    // A runtime INSTALL selects by a written version: that version's bundle is the one the
    // commands get, so the default one is not built for them.
    let pinned = |name: &str| {
        install.is_some_and(|install| {
            install.runtime_versions.iter().any(|(runtime, request)| {
                runtime == name && crate::buildspec::runtime_version_variable(request).is_none()
            })
        })
    };
    if args.image == DEFAULT_IMAGE {
        // The default image offers python as CodeBuild's standard image does: built now
        // when a command calls it (it is mounted whenever the store has it).
        for extra in crate::image::DEFAULT_RUNTIMES {
            if calls_runtime(ctx, &buildspec, extra) && !pinned(extra) {
                ensure_built(ctx, extra)?;
            }
        }
    }
    if let Some(install) = install {
        for (name, request) in &install.runtime_versions {
            // Built when missing, or again when built from an older recipe (new shims), as
            // the image is. A `$VARIABLE` request is known when INSTALL starts: the
            // default recipe's bundle is made ready then.
            match crate::buildspec::runtime_version_variable(request) {
                Some(_) => ensure_built(ctx, name)?,
                None => ensure_built(ctx, &format!("{name}:{request}"))?,
            }
        }
    }

    // Counted in the store (locked; in S3 a compare-and-swap), so concurrent builds, and
    // every host sharing a remote store, get distinct numbers.
    let build_number = ctx.store.next_counter(&format!(
        "builds/{}",
        lifecycle::cache::encode_ref_part(&project)
    ))?;
    let out_dir = output_dir(
        ctx,
        out_dir.or_else(|| args.artifacts.clone()),
        "builds",
        &project,
        build_number,
    )?;
    let source_date_epoch = args.determinism.epoch(&src)?;
    let lock = read_lock(&buildspec_path)?;

    let request = BuildRequest {
        src_dir: src,
        buildspec,
        buildspec_name,
        buildspec_path,
        image: args.image.clone(),
        user_env,
        secrets,
        timeout,
        out_dir,
        zip: args.zip,
        project,
        build_number,
        initiator: args.initiator.clone(),
        region: args.region.clone(),
        work_parent: None,
        source_date_epoch,
        copy_order: Default::default(),
        use_cache: true,
        python: lifecycle::PythonOptions {
            offline: args.python.offline,
            lock_name: lock.as_ref().map(|(name, _)| name.clone()),
            locked: lock.map(|(_, pins)| pins).unwrap_or_default(),
        },
    };
    let services = BuildServices {
        runtimes: crate::runtime::Runtimes::new(ctx.store.clone()),
        sandbox: ctx.sandbox()?,
    };
    Ok(Prepared { request, services })
}

/// Finds the buildspec: inside the source directory first (as CodeBuild does), else the
/// host path as given. Returns the path and the name shown in the log.
pub(super) fn locate_buildspec(src: &Path, given: &Path) -> Result<(PathBuf, String), Failure> {
    let inside = src.join(given);
    if given.is_relative() && inside.is_file() {
        return Ok((inside, given.to_string_lossy().into_owned()));
    }
    if given.is_file() {
        return Ok((given.to_owned(), given.to_string_lossy().into_owned()));
    }
    Err(Failure::usage(format!(
        "{}: no such buildspec in {} or on the host",
        given.display(),
        src.display()
    )))
}
