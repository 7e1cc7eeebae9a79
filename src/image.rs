//! An image: the runtime bundles a build runs with (the named bundle plus `base`, the POSIX
//! toolbox), installed and verified, and the one way a program of the image is run — the
//! bundle's files mounted read-only, its environment defaults applied, its module loaded
//! into the sandbox. [`ImageRunner`] is also the build shell's [`ProgramHost`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::python::Interpreter;
use crate::python::pip::{self, PythonPackages};
use crate::runtime::recipe::SnapshotKind;
use crate::runtime::{InstalledBundle, Recipe, RuntimeError, Runtimes};
use crate::sandbox::{
    Determinism, GuestCommand, GuestExit, GuestInput, GuestOutput, Layout, Sandbox, SandboxError,
    Spawner,
};
use crate::shell::{HostError, Invocation, Program, ProgramHost};

/// The image used when none is named.
pub const DEFAULT_IMAGE: &str = "base";

/// Bundles the default image offers after its own, as CodeBuild's standard image has
/// `python3`, `python` and `pip` on `PATH` without any `runtime-versions`: mounted when
/// the store has them, each program loaded only when a command calls it.
pub const DEFAULT_RUNTIMES: &[&str] = &["python"];

/// `NAME[:VERSION]`, parsed and checked in this one place: names become store references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSpec<'a> {
    pub name: &'a str,
    pub version: Option<&'a str>,
}

impl<'a> ImageSpec<'a> {
    pub fn parse(spec: &'a str) -> Result<Self, ImageError> {
        let (name, version) = match spec.split_once(':') {
            Some((name, version)) => (name, Some(version)),
            None => (spec, None),
        };
        crate::buildspec::check_runtime_name(name)
            .and_then(|()| version.map_or(Ok(()), crate::buildspec::check_runtime_version))
            .map_err(|message| ImageError::BadSpec {
                spec: spec.into(),
                message,
            })?;
        Ok(ImageSpec { name, version })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {spec:?}: {message}")]
    BadSpec { spec: String, message: String },
    #[error(
        "unknown image {name}; images in the store: {}{}",
        list_or_none(built),
        buildable_hint(buildable)
    )]
    Unknown {
        name: String,
        built: Vec<String>,
        buildable: Vec<String>,
    },
    #[error("image {name}{version} is not in the store; build it with `wasmbuild runtime build {name}{version}`", version = version.as_deref().map(|v| format!(":{v}")).unwrap_or_default())]
    NotBuilt {
        name: String,
        version: Option<String>,
    },
    #[error(
        "unknown runtime version {name}: {request}; runtimes in the store: {there}{}",
        nearest.as_ref().map(|(n, v)| format!("; the nearest is {n} {v}")).unwrap_or_default()
    )]
    UnknownRuntime {
        name: String,
        request: String,
        there: String,
        nearest: Option<(String, String)>,
    },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn buildable_hint(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(
            " (recipes that `wasmbuild runtime build` can make: {})",
            names.join(", ")
        )
    }
}

/// A resolved image.
#[derive(Debug, Clone)]
pub struct Image {
    /// `NAME[:VERSION]` as given.
    pub spec: String,
    /// The named bundle first, then `base` (when the image is not `base` itself).
    pub bundles: Vec<InstalledBundle>,
}

/// A program of the image, ready to load.
#[derive(Debug, Clone)]
pub struct ResolvedProgram<'a> {
    pub bundle: &'a InstalledBundle,
    pub module_path: PathBuf,
    pub module_digest: String,
}

impl Image {
    /// Resolves `NAME[:VERSION]` against the store, installing its bundles if needed.
    /// `recipes_dir` only serves to name what could be built when the image is unknown.
    pub fn open(
        runtimes: &Runtimes,
        spec: &str,
        recipes_dir: &std::path::Path,
    ) -> Result<Image, ImageError> {
        let ImageSpec { name, version } = ImageSpec::parse(spec)?;
        // A version is read as `runtime-versions` reads it: `3.13` is the newest 3.13.x.
        let found = match version {
            None => runtimes.find(name, None)?,
            Some(version) => runtimes.resolve_version(name, version)?.map(|(_, d)| d),
        };
        let Some(digest) = found else {
            let buildable = Recipe::available(recipes_dir);
            if buildable.iter().any(|b| b == name) {
                return Err(ImageError::NotBuilt {
                    name: name.into(),
                    version: version.map(Into::into),
                });
            }
            return Err(ImageError::Unknown {
                name: name.into(),
                built: runtimes.names()?,
                buildable,
            });
        };
        let mut bundles = vec![runtimes.install(&digest)?];
        if name != DEFAULT_IMAGE
            && let Some(base) = runtimes.find(DEFAULT_IMAGE, None)?
        {
            bundles.push(runtimes.install(&base)?);
        }
        if name == DEFAULT_IMAGE {
            for extra in DEFAULT_RUNTIMES {
                if let Some(digest) = runtimes.find(extra, None)? {
                    bundles.push(runtimes.install(&digest)?);
                }
            }
        }
        Ok(Image {
            spec: spec.into(),
            bundles,
        })
    }

    /// The name of the image's main bundle.
    pub fn name(&self) -> &str {
        &self.bundles[0].manifest.name
    }

    /// The program providing `command`; earlier bundles win.
    pub fn program(&self, command: &str) -> Option<ResolvedProgram<'_>> {
        self.bundles.iter().find_map(|bundle| {
            let (module_path, digest) = bundle.module(command)?;
            Some(ResolvedProgram {
                bundle,
                module_path,
                module_digest: digest.to_owned(),
            })
        })
    }

    /// The guest path at which a command appears (for `type` and `command -v`).
    pub fn program_guest_path(&self, command: &str) -> Option<String> {
        let program = self.program(command)?;
        Some(format!(
            "{}/{}/bin/{command}",
            crate::sandbox::layout::RUNTIMES_DIR,
            program.bundle.manifest.name
        ))
    }

    /// Every command of the image, sorted and without duplicates.
    pub fn commands(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .bundles
            .iter()
            .flat_map(|b| b.manifest.commands.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Adds the image's bundles, read-only, to `layout`.
    pub fn mount(&self, layout: &mut Layout) {
        for bundle in &self.bundles {
            layout.add_bundle(&bundle.manifest.name, bundle.dir.clone());
        }
    }

    /// `PATH` as the guest sees it: each bundle's `bin`, then the home's `.local/bin`,
    /// where `pip install` puts console scripts.
    pub fn guest_path_var(&self) -> String {
        self.bundles
            .iter()
            .map(|b| {
                format!(
                    "{}/{}/bin",
                    crate::sandbox::layout::RUNTIMES_DIR,
                    b.manifest.name
                )
            })
            .chain([format!("{}/.local/bin", crate::sandbox::layout::HOME_DIR)])
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Adds a runtime's bundle (buildspec `runtime-versions`) ahead of the image's own, so
    /// its commands come first in lookup and `PATH`.
    pub fn add_runtime(
        &mut self,
        runtimes: &Runtimes,
        name: &str,
        request: &str,
    ) -> Result<String, ImageError> {
        let Some((version, digest)) = runtimes.resolve_version(name, request)? else {
            let mut there = Vec::new();
            for bundle in runtimes.names()? {
                for version in runtimes.versions(&bundle)? {
                    there.push(format!("{bundle} {version}"));
                }
            }
            return Err(ImageError::UnknownRuntime {
                nearest: runtimes.nearest(name, request)?,
                name: name.to_owned(),
                request: request.to_owned(),
                there: if there.is_empty() {
                    "none".to_owned()
                } else {
                    there.join(", ")
                },
            });
        };
        if !self.bundles.iter().any(|b| b.digest == digest) {
            let bundle = runtimes.install(&digest)?;
            self.bundles.retain(|b| b.manifest.name != name);
            self.bundles.insert(0, bundle);
        }
        Ok(version)
    }

    /// The environment a bundle's program gets: `env` plus the bundle's defaults.
    pub fn program_env(
        &self,
        bundle: &InstalledBundle,
        mut env: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        for (key, value) in &bundle.manifest.env {
            if !env.iter().any(|(k, _)| k == key) {
                env.push((key.clone(), value.clone()));
            }
        }
        for (key, dir) in &bundle.manifest.path_env {
            match env.iter_mut().find(|(k, _)| k == key) {
                Some((_, value)) if !value.is_empty() => *value = format!("{value}:{dir}"),
                Some((_, value)) => *value = dir.clone(),
                None => env.push((key.clone(), dir.clone())),
            }
        }
        env
    }
}

/// Where a program's stdio goes, and what the guest is told about terminals.
pub struct ProgramIo {
    pub stdin: GuestInput,
    pub stdout: GuestOutput,
    pub stderr: GuestOutput,
    pub terminal: [bool; 3],
    /// Starts what the program asks to start (`/dev/process`); `None`: it cannot.
    pub spawner: Option<Arc<dyn Spawner>>,
    /// Raised by the program's parent, when a guest started it, to stop it.
    pub kill: Option<Arc<AtomicBool>>,
    /// The process exits when the program has (`GuestCommand::ends_process`).
    pub ends_process: bool,
}

/// Runs programs of one image in one layout: what `exec` and the build shell use.
pub struct ImageRunner {
    pub sandbox: Arc<Sandbox>,
    pub image: Arc<Image>,
    /// The directories every program sees (the image's bundles included).
    pub layout: Layout,
    pub deadline: Option<Instant>,
    pub cancel: Option<Arc<AtomicBool>>,
    /// Set for reproducible builds: every program sees virtual time and seeded randomness.
    pub determinism: Option<Determinism>,
    /// The build's Python packages: with them, `pip` and `python -m pip|build|venv` run
    /// on the host (`python::pip`).
    pub packages: Option<Arc<PythonPackages>>,
}

/// What became of a program run.
#[derive(Debug)]
pub enum ProgramOutcome {
    /// The program ran; its exit (or trap).
    Ran(GuestExit),
    /// The image has no such command.
    NotFound,
}

impl ImageRunner {
    /// Where `pip` appears in the guest, when this runner serves it: the python bundle's
    /// `bin`, beside the interpreter.
    fn pip_command(&self, name: &str) -> Option<String> {
        if self.packages.is_none() || !pip::is_pip_name(name, self.python()?) {
            return None;
        }
        let python = self.image.program_guest_path("python3")?;
        Some(format!("{}/{name}", python.rsplit_once('/')?.0))
    }

    /// The image's python (its `python3` bundle's version), if it has one packages can be
    /// installed for.
    pub fn python(&self) -> Option<Interpreter> {
        let program = self.image.program("python3")?;
        Interpreter::from_version(&program.bundle.manifest.version)
    }

    pub fn new(sandbox: Arc<Sandbox>, image: Arc<Image>, mut layout: Layout) -> Self {
        image.mount(&mut layout);
        ImageRunner {
            sandbox,
            image,
            layout,
            deadline: None,
            cancel: None,
            determinism: None,
            packages: None,
        }
    }

    /// Runs the image's command `argv[0]` with exactly `env`, in guest directory `cwd`.
    pub fn run_command(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: &str,
        io: ProgramIo,
    ) -> Result<ProgramOutcome, SandboxError> {
        let Some(command) = argv.first() else {
            return Ok(ProgramOutcome::NotFound);
        };
        let command_name = command.rsplit('/').next().unwrap_or(command).to_owned();
        let command_name = command_name.as_str();
        let Some(program) = self.image.program(command_name) else {
            return Ok(ProgramOutcome::NotFound);
        };
        let env = self.image.program_env(program.bundle, env);
        // A pre-initialised snapshot of the module, for the runs it serves as a cold start
        // would (`python::snapshot`).
        let (module_path, module_digest, prefault) = match program.bundle.snapshot(command_name) {
            Some((path, digest, spec))
                if spec.kind == SnapshotKind::Python
                    && crate::python::snapshot::usable(&argv, &env) =>
            {
                (path, digest.to_owned(), spec.prefault.clone().map(Arc::new))
            }
            _ => (program.module_path, program.module_digest, None),
        };
        let module = self
            .sandbox
            .load(command_name, &module_path, &module_digest)?;
        crate::startup::mark("module loaded");
        let command = GuestCommand {
            prefault,
            ..self.command(command_name, argv, env, cwd, io)
        };
        self.sandbox.run(&module, command).map(ProgramOutcome::Ran)
    }

    /// Runs a `.wasm` module from the build's own filesystem, named by its absolute guest
    /// path. The file is read through the mount's capability-scoped directory, so a
    /// symlink cannot lead outside what the guest may see.
    pub fn run_module_file(
        &self,
        guest_path: &str,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: &str,
        io: ProgramIo,
    ) -> Result<ProgramOutcome, SandboxError> {
        let Some(bytes) = self.read_guest_file(guest_path) else {
            return Ok(ProgramOutcome::NotFound);
        };
        let name = argv.first().cloned().unwrap_or_default();
        let module = self.sandbox.load_bytes(&name, &bytes)?;
        let command = self.command(&name, argv, env, cwd, io);
        self.sandbox.run(&module, command).map(ProgramOutcome::Ran)
    }

    /// Reads a file of the guest's filesystem, confined to its mount.
    pub fn read_guest_file(&self, guest_path: &str) -> Option<Vec<u8>> {
        let (mount, rel) = self.layout.resolve(guest_path)?;
        let dir =
            cap_std::fs::Dir::open_ambient_dir(&mount.host, cap_std::ambient_authority()).ok()?;
        dir.read(rel).ok()
    }

    /// How the sandbox runs one of this image's programs: in its layout, with its
    /// deadline, cancel flag and determinism.
    fn command(
        &self,
        name: &str,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: &str,
        io: ProgramIo,
    ) -> GuestCommand {
        GuestCommand {
            name: name.to_owned(),
            argv,
            env,
            layout: self.layout.clone(),
            cwd: cwd.to_owned(),
            stdin: io.stdin,
            stdout: io.stdout,
            stderr: io.stderr,
            terminal: io.terminal,
            deadline: self.deadline,
            cancel: self.cancel.clone(),
            kill: io.kill,
            spawner: io.spawner,
            determinism: self.determinism.clone(),
            prefault: None,
            ends_process: io.ends_process,
        }
    }
}

/// The shell hands every external command to the image: its programs by name, or a
/// `.wasm` module of the build's filesystem. Guest failures become a message on the
/// command's stderr and a status; only a broken bundle is a fault of wasmbuild.
impl ProgramHost for ImageRunner {
    fn has_program(&self, name: &str) -> bool {
        self.image.program(name).is_some() || self.pip_command(name).is_some()
    }

    fn program_path(&self, name: &str) -> Option<String> {
        self.image
            .program_guest_path(name)
            .or_else(|| self.pip_command(name))
    }

    fn run(&self, program: Program, invocation: Invocation) -> Result<i32, HostError> {
        let Invocation {
            argv,
            env,
            cwd,
            stdin,
            stdout,
            stderr,
            spawner,
            kill,
        } = invocation;
        // The guest writes its stderr through a shared handle, so that a trap message can
        // follow what it wrote.
        let stderr = SharedWriter(Arc::new(Mutex::new(stderr)));
        let io = ProgramIo {
            stdin,
            stdout,
            stderr: Box::new(stderr.clone()),
            // The shell owns the terminal; programs see pipes and files.
            terminal: [false; 3],
            spawner,
            kill: kill.clone(),
            ends_process: false,
        };
        let kill_flag = kill;
        let name = argv.first().cloned().unwrap_or_default();
        if let (Program::Image(_), Some(packages)) = (&program, &self.packages)
            && let Some(python) = self.python()
            && let Some(command) = pip::host_command(&argv, python)
        {
            let mut io = io;
            return Ok(pip::run(
                self, packages, python, command, &env, &cwd, &mut io,
            ));
        }
        let outcome = match &program {
            Program::Image(_) => self
                .run_command(argv, env, &cwd, io)
                .map_err(|e| HostError(e.to_string()))?,
            Program::Module(path) => match self.run_module_file(path, argv, env, &cwd, io) {
                Ok(outcome) => outcome,
                Err(e) => {
                    stderr.report(&format!("wasmbuild: {name}: {e}"));
                    return Ok(126);
                }
            },
        };
        match outcome {
            ProgramOutcome::NotFound => {
                stderr.report(&format!("wasmbuild: {name}: command not found"));
                Ok(127)
            }
            ProgramOutcome::Ran(exit) => {
                // A program its parent stopped ends silently, as on a signal.
                let killed = kill_flag.is_some_and(|k| k.load(std::sync::atomic::Ordering::SeqCst));
                if let GuestExit::Trapped { message, .. } = &exit
                    && !killed
                {
                    stderr.report(&format!("wasmbuild: {message}"));
                }
                Ok(exit.status() & 0xff)
            }
        }
    }
}

/// One output stream shared by the guest and the host's own messages about it.
#[derive(Clone)]
struct SharedWriter(Arc<Mutex<GuestOutput>>);

impl SharedWriter {
    fn report(&self, line: &str) {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}
