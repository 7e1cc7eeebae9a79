//! The `pip` a build runs. The guest has no pip and no network: `pip …`, `pip3 …` and
//! `python -m pip …` reach this module through the image runner, which parses pip's
//! command line, resolves and downloads on the host (`resolve`, `index`), builds what
//! needs building in the sandbox (`frontend`) and installs wheels into the guest's user
//! site through a capability (`wheel`). Every file installed is pinned by hash and noted
//! for the build record and the lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use std::io::Write;

use clap::{ArgAction, Args, Parser, Subcommand};

use std::sync::Arc;

use super::frontend::BuildKind;
use super::index::{Client, IndexSettings};
use super::install::{self, PipContext};
use super::wheel;
use super::{Interpreter, PackageError};
use crate::image::{ImageRunner, ProgramIo};
use crate::sandbox::GuestOutput;
use crate::shell::GuestFs;

use super::Pin;

/// Command names that are pip for `python` (`pip`, `pip3`, `pip3.12` for CPython 3.12).
pub fn is_pip_name(name: &str, python: Interpreter) -> bool {
    matches!(name, "pip" | "pip3")
        || name.strip_prefix("pip") == python.name().strip_prefix("python")
}

/// Command names that are pip for some python (`pip`, `pip3`, `pip3.13`), for reading a
/// buildspec before its image's python is known.
pub fn is_any_pip_name(name: &str) -> bool {
    matches!(name, "pip" | "pip3")
        || name
            .strip_prefix("pip3.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

/// Command names of `python` (`python`, `python3`, `python3.12` for CPython 3.12).
fn is_python_name(name: &str, python: Interpreter) -> bool {
    matches!(name, "python" | "python3") || name == python.name()
}

/// What a command line asks of the host instead of the guest, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCommand {
    /// `pip ARGS` or `python -m pip ARGS`: pip's arguments.
    Pip(Vec<String>),
    /// `python -m build ARGS` (pypa/build's command line).
    Build(Vec<String>),
    /// `python -m venv ARGS`.
    Venv(Vec<String>),
    /// `python -m ensurepip ARGS`: pip is always there.
    Ensurepip,
}

/// Recognizes `pip …`, `pip3 …`, `python -m pip …`, `python -m build …` and
/// `python -m venv …` (the interpreter's own flags before `-m` allowed) for `python`.
pub fn host_command(argv: &[String], python: Interpreter) -> Option<HostCommand> {
    let name = argv.first()?.rsplit('/').next()?;
    if is_pip_name(name, python) {
        return Some(HostCommand::Pip(argv[1..].to_vec()));
    }
    if !is_python_name(name, python) {
        return None;
    }
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        let (module, rest) = if arg == "-m" {
            (argv.get(i + 1)?.as_str(), i + 2)
        } else if let Some(module) = arg.strip_prefix("-m") {
            (module, i + 1)
        } else if matches!(
            arg.as_str(),
            "-u" | "-B" | "-I" | "-E" | "-s" | "-S" | "-q" | "-O" | "-OO" | "-b" | "-bb" | "-v"
        ) {
            i += 1;
            continue;
        } else {
            return None;
        };
        let args = argv.get(rest..).unwrap_or_default().to_vec();
        return match module {
            "pip" => Some(HostCommand::Pip(args)),
            "build" => Some(HostCommand::Build(args)),
            "venv" => Some(HostCommand::Venv(args)),
            "ensurepip" => Some(HostCommand::Ensurepip),
            _ => None,
        };
    }
    None
}

/// pip's command line, as far as a build uses it. Options that change nothing here
/// (progress bars, version checks, caches) are accepted and ignored.
#[derive(Parser, Debug)]
#[command(
    name = "pip",
    no_binary_name = true,
    disable_help_subcommand = true,
    disable_version_flag = true
)]
pub struct PipCli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Option<PipCommand>,
}

#[derive(Args, Debug, Default)]
pub struct GlobalOptions {
    /// Show pip's version.
    #[arg(short = 'V', long = "version")]
    pub version: bool,
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub quiet: u8,
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    #[arg(long, global = true)]
    pub no_cache_dir: bool,
    #[arg(long, global = true)]
    pub disable_pip_version_check: bool,
    #[arg(long, global = true)]
    pub isolated: bool,
    #[arg(long, global = true)]
    pub no_input: bool,
    #[arg(long, global = true)]
    pub no_color: bool,
    #[arg(long, global = true, value_name = "WHEN")]
    pub progress_bar: Option<String>,
    #[arg(long, global = true, value_name = "ACTION")]
    pub root_user_action: Option<String>,
    #[arg(long, global = true, value_name = "PATH")]
    pub cache_dir: Option<String>,
    /// A PEM bundle of extra certificate authorities for the index.
    #[arg(long, global = true, value_name = "PATH")]
    pub cert: Option<String>,
    #[arg(long, global = true, value_name = "URL")]
    pub proxy: Option<String>,
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    #[arg(long, global = true, value_name = "N")]
    pub retries: Option<u32>,
    #[arg(long, global = true, value_name = "HOST")]
    pub trusted_host: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum PipCommand {
    /// Install packages.
    Install(InstallArgs),
    /// Download packages (and their dependencies) into a directory.
    Download(DownloadArgs),
    /// Build wheels for the requirements (and their dependencies) into a directory.
    Wheel(WheelArgs),
    /// Remove installed packages.
    Uninstall(UninstallArgs),
    /// List installed packages.
    List(ListArgs),
    /// Installed packages in requirements format.
    Freeze(FreezeArgs),
    /// Information about installed packages.
    Show(ShowArgs),
    /// Check installed packages have compatible dependencies.
    Check,
}

/// Where packages come from.
#[derive(Args, Debug, Default, Clone)]
pub struct IndexOptions {
    #[arg(short = 'i', long, value_name = "URL")]
    pub index_url: Option<String>,
    #[arg(long, value_name = "URL")]
    pub extra_index_url: Vec<String>,
    #[arg(long)]
    pub no_index: bool,
    #[arg(short = 'f', long, value_name = "URL")]
    pub find_links: Vec<String>,
}

/// What to resolve: requirement specifiers, files of them, local projects.
#[derive(Args, Debug, Default, Clone)]
pub struct ResolveOptions {
    #[command(flatten)]
    pub index: IndexOptions,
    #[arg(short = 'r', long = "requirement", value_name = "FILE")]
    pub requirements: Vec<String>,
    #[arg(short = 'c', long = "constraint", value_name = "FILE")]
    pub constraints: Vec<String>,
    #[arg(short = 'e', long = "editable", value_name = "PATH")]
    pub editable: Vec<String>,
    #[arg(long)]
    pub no_deps: bool,
    #[arg(long)]
    pub pre: bool,
    #[arg(long, value_name = "FORMATS")]
    pub only_binary: Vec<String>,
    #[arg(long, value_name = "FORMATS")]
    pub no_binary: Vec<String>,
    #[arg(long)]
    pub prefer_binary: bool,
    #[arg(long)]
    pub require_hashes: bool,
    #[arg(long)]
    pub no_build_isolation: bool,
    #[arg(long)]
    pub use_pep517: bool,
    #[arg(long, value_name = "STRATEGY")]
    pub upgrade_strategy: Option<String>,
    #[arg(long, value_name = "SETTINGS")]
    pub config_settings: Vec<String>,
    #[arg(long)]
    pub src: Option<String>,
    /// Requirement specifiers, local project directories or distribution files.
    #[arg(value_name = "REQUIREMENT")]
    pub specs: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub resolve: ResolveOptions,
    #[arg(short = 'U', long)]
    pub upgrade: bool,
    #[arg(long)]
    pub force_reinstall: bool,
    #[arg(short = 'I', long)]
    pub ignore_installed: bool,
    #[arg(long)]
    pub user: bool,
    #[arg(short = 't', long, value_name = "DIR")]
    pub target: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub root: Option<String>,
    #[arg(long)]
    pub no_warn_script_location: bool,
    #[arg(long)]
    pub no_warn_conflicts: bool,
    #[arg(long)]
    pub compile: bool,
    #[arg(long)]
    pub no_compile: bool,
    #[arg(long)]
    pub break_system_packages: bool,
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub resolve: ResolveOptions,
    #[arg(short = 'd', long = "dest", value_name = "DIR", default_value = ".")]
    pub dest: String,
}

#[derive(Args, Debug)]
pub struct WheelArgs {
    #[command(flatten)]
    pub resolve: ResolveOptions,
    #[arg(
        short = 'w',
        long = "wheel-dir",
        value_name = "DIR",
        default_value = "."
    )]
    pub wheel_dir: String,
}

#[derive(Args, Debug)]
pub struct UninstallArgs {
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[arg(short = 'r', long = "requirement", value_name = "FILE")]
    pub requirements: Vec<String>,
    #[arg(long)]
    pub break_system_packages: bool,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long, value_name = "FORMAT", default_value = "columns")]
    pub format: String,
    #[arg(short = 'o', long)]
    pub outdated: bool,
    #[arg(short = 'u', long)]
    pub uptodate: bool,
    #[arg(long)]
    pub user: bool,
    #[arg(long)]
    pub not_required: bool,
    #[arg(short = 'e', long)]
    pub editable: bool,
}

#[derive(Args, Debug)]
pub struct FreezeArgs {
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub user: bool,
    #[arg(short = 'r', long = "requirement", value_name = "FILE")]
    pub requirements: Vec<String>,
    #[arg(long, value_name = "PACKAGE")]
    pub exclude: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[arg(short = 'f', long)]
    pub files: bool,
    pub names: Vec<String>,
}

/// The Python packages of one build: the store they live in, the lock it follows, and
/// every file its pip commands used (for the record and `--write-lock`).
pub struct PythonPackages {
    pub store: crate::store::Store,
    /// No index requests at all: everything must already be in the store.
    pub offline: bool,
    /// The pins of `wasmbuild.lock`, when the build has one.
    pub locked: Vec<Pin>,
    /// The lock file's name as the user sees it, for messages.
    pub lock_name: Option<String>,
    /// By (project, version, file): a project can be used at two versions in one build (a
    /// build backend's isolated environment and the user's site chose differently).
    used: Mutex<BTreeMap<(String, String, String), Pin>>,
    failures: Mutex<Vec<String>>,
    /// Index clients by settings: one HTTP connection pool per index for the build.
    clients: Mutex<Vec<(IndexSettings, Client)>>,
}

impl PythonPackages {
    pub fn new(store: crate::store::Store, offline: bool) -> Self {
        PythonPackages {
            store,
            offline,
            locked: Vec::new(),
            lock_name: None,
            used: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(Vec::new()),
            clients: Mutex::new(Vec::new()),
        }
    }

    /// The build's client for `settings` (made once).
    pub fn client(&self, settings: IndexSettings) -> Result<Client, PackageError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, client)) = clients.iter().find(|(s, _)| *s == settings) {
            return Ok(client.clone());
        }
        let client = Client::new(settings.clone(), self.store.clone(), self.offline)?;
        clients.push((settings, client.clone()));
        Ok(client)
    }

    /// Notes files a command installed or downloaded.
    pub fn note_used(&self, pins: &[Pin]) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        for pin in pins {
            used.insert(
                (pin.name.clone(), pin.version.clone(), pin.file.clone()),
                pin.clone(),
            );
        }
    }

    /// Notes why a pip command failed (one line), for the build record.
    pub fn note_failure(&self, line: String) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// Every file the build's pip commands used, by project name and version.
    pub fn used(&self) -> Vec<Pin> {
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Runs a host command for the guest: pip's output goes to the command's stdout and
/// stderr, failures end in a one-line `ERROR:` and status 1 (2 for a bad command line).
pub fn run(
    runner: &ImageRunner,
    packages: &PythonPackages,
    python: Interpreter,
    command: HostCommand,
    env: &[(String, String)],
    cwd: &str,
    io: &mut ProgramIo,
) -> i32 {
    let host = Host {
        runner,
        packages,
        python,
        env,
        cwd,
    };
    let args = match command {
        HostCommand::Venv(args) => {
            return super::venv::run(&runner.layout, python, &args, cwd, &mut io.stderr);
        }
        HostCommand::Ensurepip => {
            let _ = writeln!(
                io.stdout,
                "pip is provided by wasmbuild: it runs on the host and installs from the store"
            );
            return 0;
        }
        HostCommand::Build(args) => return build_command(&host, &args, io),
        HostCommand::Pip(args) => args,
    };
    let cli = match PipCli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = write!(io.stderr, "{e}");
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if cli.global.version {
        let _ = writeln!(
            io.stdout,
            "pip {PIP_VERSION} from wasmbuild (host-side; python {}.{})",
            python.major, python.minor
        );
        return 0;
    }
    let Some(command) = cli.command else {
        let _ = writeln!(
            io.stderr,
            "ERROR: You must give a command (use \"pip help\")"
        );
        return 2;
    };
    let quiet = cli.global.quiet > 0;
    // pip's words for a failure.
    host.serve(io, "ERROR: ", |ctx, out| run_pip(ctx, command, quiet, out))
}

/// What a host command runs with: the guest's runner, the build's packages, the command's
/// environment and working directory.
struct Host<'a> {
    runner: &'a ImageRunner,
    packages: &'a PythonPackages,
    python: Interpreter,
    env: &'a [(String, String)],
    cwd: &'a str,
}

impl Host<'_> {
    /// Runs `command` with a `PipContext` whose log is the command's stderr (shared with
    /// build backends' output meanwhile). A failure ends in one line, `{error_prefix}…`,
    /// noted for the record, and status 1.
    fn serve(
        &self,
        io: &mut ProgramIo,
        error_prefix: &str,
        command: impl FnOnce(&PipContext<'_>, &mut dyn Write) -> Result<i32, PackageError>,
    ) -> i32 {
        let shared = SharedStderr::take(io);
        let result = GuestFs::open(&self.runner.layout)
            .map_err(|e| PackageError::Io(e.to_string()))
            .and_then(|fs| {
                let ctx = PipContext {
                    runner: self.runner,
                    packages: self.packages,
                    python: self.python,
                    env: self.env,
                    cwd: self.cwd,
                    fs,
                    log: shared.log(),
                };
                command(&ctx, &mut io.stdout)
            });
        shared.give_back(io);
        match result {
            Ok(status) => status,
            Err(e) => {
                let line = e.to_string();
                let _ = writeln!(io.stderr, "{error_prefix}{line}");
                self.packages.note_failure(line);
                1
            }
        }
    }
}

/// pip's version as this pip reports it (the pip whose command line it follows).
pub const PIP_VERSION: &str = "24.3.1";

fn run_pip(
    ctx: &PipContext<'_>,
    command: PipCommand,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<i32, PackageError> {
    match command {
        PipCommand::Install(args) => {
            if args.prefix.is_some() || args.root.is_some() {
                return Err(PackageError::Io(
                    "--prefix and --root are not supported: packages go to the user site, \
                     a virtual environment or --target"
                        .into(),
                ));
            }
            let target = ctx.target(args.target.as_deref())?;
            let outcome = install::install(
                ctx,
                &args.resolve,
                &target,
                install::InstallMode {
                    upgrade: args.upgrade,
                    force: args.force_reinstall || args.ignore_installed,
                    dry_run: args.dry_run,
                    no_compile: args.no_compile,
                },
            )?;
            if !quiet {
                for (name, version) in &outcome.already {
                    let _ = writeln!(
                        out,
                        "Requirement already satisfied: {name}=={version} in {}",
                        target.describe
                    );
                }
                if !outcome.installed.is_empty() {
                    let list: Vec<String> = outcome
                        .installed
                        .iter()
                        .map(|(n, v)| format!("{n}-{v}"))
                        .collect();
                    let verb = if args.dry_run {
                        "Would install"
                    } else {
                        "Successfully installed"
                    };
                    let _ = writeln!(out, "{verb} {}", list.join(" "));
                }
            }
            Ok(0)
        }
        PipCommand::Download(args) => {
            let files = install::download(ctx, &args.resolve, &args.dest, false)?;
            if !quiet {
                for file in &files {
                    let _ = writeln!(out, "Saved {file}");
                }
                let _ = writeln!(out, "Successfully downloaded {} files", files.len());
            }
            Ok(0)
        }
        PipCommand::Wheel(args) => {
            let files = install::download(ctx, &args.resolve, &args.wheel_dir, true)?;
            if !quiet {
                for file in &files {
                    let _ = writeln!(out, "Saved {file}");
                }
            }
            Ok(0)
        }
        PipCommand::Uninstall(args) => {
            let target = ctx.target(None)?;
            let mut names = args.names.clone();
            names.extend(ctx.named_in(&args.requirements)?);
            for name in names {
                match wheel::uninstall_from(&target.root, &target.scheme, &name)? {
                    Some(removed) => {
                        let _ = writeln!(
                            out,
                            "Successfully uninstalled {}-{}",
                            removed.name, removed.version
                        );
                    }
                    None => {
                        let _ = writeln!(out, "WARNING: Skipping {name} as it is not installed.");
                    }
                }
            }
            Ok(0)
        }
        PipCommand::List(args) => {
            let target = ctx.target(None)?;
            let installed = wheel::installed_in(&target.root, &target.scheme)?;
            match args.format.as_str() {
                "freeze" => {
                    for p in &installed {
                        let _ = writeln!(out, "{}=={}", p.name, p.version);
                    }
                }
                "json" => {
                    let list: Vec<serde_json::Value> = installed
                        .iter()
                        .map(|p| serde_json::json!({"name": p.name, "version": p.version}))
                        .collect();
                    let _ = writeln!(out, "{}", serde_json::Value::Array(list));
                }
                _ => {
                    let width = installed
                        .iter()
                        .map(|p| p.name.len())
                        .chain([7])
                        .max()
                        .unwrap_or(7);
                    let vwidth = installed
                        .iter()
                        .map(|p| p.version.len())
                        .chain([7])
                        .max()
                        .unwrap_or(7);
                    let _ = writeln!(out, "{:width$} {:vwidth$}", "Package", "Version");
                    let _ = writeln!(out, "{} {}", "-".repeat(width), "-".repeat(vwidth));
                    for p in &installed {
                        let _ = writeln!(out, "{:width$} {:vwidth$}", p.name, p.version);
                    }
                }
            }
            Ok(0)
        }
        PipCommand::Freeze(args) => {
            let target = ctx.target(None)?;
            for p in wheel::installed_in(&target.root, &target.scheme)? {
                if args.exclude.iter().any(|e| install_name_eq(e, &p.name)) {
                    continue;
                }
                let _ = writeln!(out, "{}=={}", p.name, p.version);
            }
            Ok(0)
        }
        PipCommand::Show(args) => {
            let target = ctx.target(None)?;
            let installed = wheel::installed_in(&target.root, &target.scheme)?;
            let mut status = 0;
            for (i, name) in args.names.iter().enumerate() {
                let Some(p) = installed.iter().find(|p| install_name_eq(name, &p.name)) else {
                    let _ = writeln!(out, "WARNING: Package(s) not found: {name}");
                    status = 1;
                    continue;
                };
                if i > 0 {
                    let _ = writeln!(out, "---");
                }
                let _ = writeln!(out, "Name: {}\nVersion: {}", p.name, p.version);
                let _ = writeln!(out, "Location: {}", target.describe);
                let _ = writeln!(out, "Installer: {}", wheel::INSTALLER);
            }
            Ok(status)
        }
        PipCommand::Check => {
            let problems = install::check(&ctx.target(None)?, ctx.python)?;
            for line in &problems {
                let _ = writeln!(out, "{line}");
            }
            if problems.is_empty() {
                let _ = writeln!(out, "No broken requirements found.");
            }
            Ok(i32::from(!problems.is_empty()))
        }
    }
}

fn install_name_eq(a: &str, b: &str) -> bool {
    super::normalize_name(a) == super::normalize_name(b)
}

/// `python -m build [--wheel] [--sdist] [--outdir DIR] [SRCDIR]`: pypa/build's command
/// line, served by the host frontend (the guest cannot start the subprocesses pypa/build
/// uses).
fn build_command(host: &Host<'_>, args: &[String], io: &mut ProgramIo) -> i32 {
    #[derive(Parser, Debug)]
    #[command(name = "python -m build", no_binary_name = true)]
    struct BuildArgs {
        #[arg(short = 's', long)]
        sdist: bool,
        #[arg(short = 'w', long)]
        wheel: bool,
        #[arg(short = 'o', long, value_name = "DIR")]
        outdir: Option<String>,
        #[arg(short = 'n', long)]
        no_isolation: bool,
        #[arg(short = 'x', long)]
        skip_dependency_check: bool,
        #[arg(long)]
        installer: Option<String>,
        #[arg(short = 'C', long = "config-setting")]
        config_setting: Vec<String>,
        srcdir: Option<String>,
    }
    let args = match BuildArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = write!(io.stderr, "{e}");
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let srcdir = crate::shell::fs::normalize(host.cwd, args.srcdir.as_deref().unwrap_or("."));
    // pypa/build's default output directory is `dist` of the source directory.
    let outdir = match &args.outdir {
        Some(dir) => crate::shell::fs::normalize(host.cwd, dir),
        None => crate::shell::fs::normalize(&srcdir, "dist"),
    };
    let kinds: Vec<BuildKind> = match (args.sdist, args.wheel) {
        (false, true) => vec![BuildKind::Wheel],
        (true, false) => vec![BuildKind::Sdist],
        _ => vec![BuildKind::Sdist, BuildKind::Wheel],
    };
    // pypa/build's words for a failure.
    host.serve(io, "ERROR ", |ctx, out| {
        let files = install::build_project(ctx, &srcdir, &outdir, &kinds, args.no_isolation)?;
        let _ = writeln!(out, "Successfully built {}", files.join(" and "));
        Ok(0)
    })
}

/// The command's stderr, shared for a while with build backends' output (which the
/// frontend writes from its own calls), then handed back.
struct SharedStderr {
    shared: Arc<Mutex<GuestOutput>>,
}

impl SharedStderr {
    fn take(io: &mut ProgramIo) -> Self {
        let stderr = std::mem::replace(&mut io.stderr, Box::new(std::io::sink()));
        SharedStderr {
            shared: Arc::new(Mutex::new(stderr)),
        }
    }

    fn log(&self) -> Arc<Mutex<dyn Write + Send>> {
        self.shared.clone()
    }

    fn give_back(self, io: &mut ProgramIo) {
        let shared = self.shared;
        io.stderr = match Arc::try_unwrap(shared) {
            Ok(mutex) => mutex.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(shared) => Box::new(SharedWriter(shared)),
        };
    }
}

struct SharedWriter(Arc<Mutex<GuestOutput>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn pip_and_python_dash_m_are_host_commands() {
        let py312 = Interpreter::from_version("3.12.0").unwrap();
        let host_command = |argv: &[String]| host_command(argv, py312);
        assert_eq!(
            host_command(&argv("pip install x")),
            Some(HostCommand::Pip(argv("install x")))
        );
        assert_eq!(
            host_command(&argv("/opt/runtimes/python/bin/pip3 list")),
            Some(HostCommand::Pip(argv("list")))
        );
        assert_eq!(
            host_command(&argv("python3 -u -m pip install -r r.txt")),
            Some(HostCommand::Pip(argv("install -r r.txt")))
        );
        assert_eq!(
            host_command(&argv("python -mbuild --wheel")),
            Some(HostCommand::Build(argv("--wheel")))
        );
        assert_eq!(
            host_command(&argv("python -m venv .venv")),
            Some(HostCommand::Venv(argv(".venv")))
        );
        assert_eq!(host_command(&argv("python -m pytest")), None);
        assert_eq!(host_command(&argv("python script.py -m pip")), None);
        assert_eq!(host_command(&argv("python -c pass")), None);
        // Versioned names are the image's python's own.
        assert_eq!(
            host_command(&argv("python3.12 -m pip list")),
            Some(HostCommand::Pip(argv("list")))
        );
        assert!(host_command(&argv("pip3.12 list")).is_some());
        let py313 = Interpreter::from_version("3.13.5").unwrap();
        assert!(super::host_command(&argv("pip3.13 list"), py313).is_some());
        assert!(super::host_command(&argv("python3.13 -m pip list"), py313).is_some());
        assert_eq!(super::host_command(&argv("pip3.12 list"), py313), None);
        assert_eq!(
            super::host_command(&argv("python3.12 -m pip list"), py313),
            None
        );
        assert_eq!(super::host_command(&argv("pip3.1 list"), py313), None);
    }

    #[test]
    fn pip_command_lines_parse() {
        let cli = PipCli::try_parse_from(argv(
            "install -q --no-cache-dir -r requirements.txt -e . pytest==8.3.4 --index-url http://x/simple",
        ))
        .unwrap();
        let Some(PipCommand::Install(install)) = cli.command else {
            panic!("not install")
        };
        assert_eq!(install.resolve.requirements, ["requirements.txt"]);
        assert_eq!(install.resolve.editable, ["."]);
        assert_eq!(install.resolve.specs, ["pytest==8.3.4"]);
        assert_eq!(
            install.resolve.index.index_url.as_deref(),
            Some("http://x/simple")
        );
        assert_eq!(cli.global.quiet, 1);
        let cli = PipCli::try_parse_from(argv("wheel . -w dist --no-deps")).unwrap();
        assert!(
            matches!(cli.command, Some(PipCommand::Wheel(w)) if w.wheel_dir == "dist" && w.resolve.no_deps)
        );
        assert!(
            PipCli::try_parse_from(argv("--version"))
                .unwrap()
                .global
                .version
        );
        assert!(PipCli::try_parse_from(argv("install --frobnicate x")).is_err());
    }
}
