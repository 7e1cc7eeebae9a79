//! PEP 517 builds in the sandbox: a project's build backend (setuptools, hatchling,
//! flit-core, poetry-core, pdm-backend, …) runs in the guest's python, driven by a small
//! frontend script (`runtimes/python/pep517_frontend.py`, embedded here and written into
//! the build's `/tmp`). Build requirements are resolved and fetched on the host by the
//! caller's [`BuildEnv`] and installed into a fresh directory under the guest's `/tmp`
//! that only the build sees (build isolation, PEP 518).
//!
//! A build that needs a C compiler fails with [`PackageError::NeedsNative`] naming the
//! project and the reason; the guest's own output goes to the build log.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use cap_std::fs::{Dir, DirBuilderExt, OpenOptionsExt};

use super::{DistFile, PackageError, SdistMetadata};
use crate::image::{ImageRunner, ProgramIo, ProgramOutcome};
use crate::sandbox::layout::{HOME_DIR, TMP_DIR};
use crate::sandbox::{GuestExit, SharedBuffer};

/// The frontend script run in the guest.
pub const FRONTEND_SCRIPT: &str = include_str!("../../runtimes/python/pep517_frontend.py");

/// Where the build log goes: the guest's output of each hook, and the frontend's notes.
pub type BuildLog = Arc<Mutex<dyn Write + Send>>;

/// The build system of a project (`pyproject.toml` `[build-system]`, PEP 517/518).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSystem {
    /// `requires` (PEP 508 strings).
    pub requires: Vec<String>,
    /// `build-backend` (`module` or `module:object`).
    pub backend: String,
    /// `backend-path`: in-tree directories holding the backend.
    pub backend_path: Vec<String>,
}

impl BuildSystem {
    /// The PEP 517 fallback when `pyproject.toml` or its `[build-system]` is missing:
    /// `setuptools>=40.8.0` and the legacy `setup.py` backend.
    pub fn legacy() -> BuildSystem {
        BuildSystem {
            requires: vec!["setuptools>=40.8.0".into()],
            backend: "setuptools.build_meta:__legacy__".into(),
            backend_path: Vec::new(),
        }
    }

    /// Reads `[build-system]` from the text of a `pyproject.toml` (`None`: no file).
    /// PEP 518: without `build-backend`, the legacy setuptools backend (with `requires`
    /// as given, else setuptools); a table without `requires` is an error.
    pub fn from_pyproject(text: Option<&str>) -> Result<BuildSystem, PackageError> {
        let Some(text) = text else {
            return Ok(BuildSystem::legacy());
        };
        let bad = |reason: String| PackageError::Build {
            name: "pyproject.toml".into(),
            reason,
        };
        let doc: toml::Table = toml::from_str(text).map_err(|e| {
            bad(format!(
                "not valid TOML: {}",
                e.to_string().lines().next().unwrap_or_default()
            ))
        })?;
        let Some(table) = doc.get("build-system") else {
            return Ok(BuildSystem::legacy());
        };
        let table = table
            .as_table()
            .ok_or_else(|| bad("[build-system] is not a table".into()))?;
        let strings = |key: &str| -> Result<Option<Vec<String>>, PackageError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(format!("[build-system] {key} must list strings")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(bad(format!("[build-system] {key} must be a list"))),
            }
        };
        let requires = strings("requires")?
            .ok_or_else(|| bad("[build-system] has no `requires` (PEP 518)".into()))?;
        let backend_path = strings("backend-path")?.unwrap_or_default();
        match table.get("build-backend") {
            None => Ok(BuildSystem {
                requires: if requires.is_empty() {
                    BuildSystem::legacy().requires
                } else {
                    requires
                },
                backend: BuildSystem::legacy().backend,
                backend_path,
            }),
            Some(toml::Value::String(backend)) => Ok(BuildSystem {
                requires,
                backend: backend.clone(),
                backend_path,
            }),
            Some(_) => Err(bad("[build-system] build-backend must be a string".into())),
        }
    }

    /// Why this backend cannot work in the sandbox (it drives a native compiler), if so.
    pub fn native_backend(&self) -> Option<String> {
        let module = self.backend.split(':').next().unwrap_or_default();
        let tool = match module {
            "maturin" => "maturin (Rust extensions)",
            "mesonpy" => "meson-python (a C/C++ build with meson)",
            "scikit_build_core.build" | "scikit_build_core.setuptools.build_meta" => {
                "scikit-build-core (a CMake build)"
            }
            "enscons" => "enscons (an SCons build)",
            _ => return None,
        };
        Some(format!(
            "its build backend is {tool}, which needs a native compiler the sandbox does not have"
        ))
    }
}

/// Build requirements enter the build environment through the caller: it resolves them
/// for the guest (with the resolver), fetches them into the store (with the index client)
/// and installs the wheels into `target` with
/// [`super::wheel::install_wheels_to`]`(target, &Scheme::target(), …)`.
pub trait BuildEnv: Send + Sync {
    /// Installs `requirements` (PEP 508 strings) into `target`, a fresh directory of the
    /// guest's `/tmp` that the frontend puts on the build's `sys.path`.
    fn install_requirements(
        &self,
        requirements: &[String],
        target: &Dir,
    ) -> Result<(), PackageError>;
}

/// Which distribution a build makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    /// `build_wheel`.
    Wheel,
    /// `build_editable` (PEP 660), for `pip install -e`.
    Editable,
    /// `build_sdist`.
    Sdist,
}

impl BuildKind {
    fn as_str(self) -> &'static str {
        match self {
            BuildKind::Wheel => "wheel",
            BuildKind::Editable => "editable",
            BuildKind::Sdist => "sdist",
        }
    }
}

/// A distribution the frontend built.
#[derive(Debug, Clone)]
pub struct Built {
    /// Its file name (`demo-1.0-py3-none-any.whl`, `demo-1.0.tar.gz`).
    pub file: String,
    /// Its guest path (in the output directory).
    pub guest_path: String,
    /// Its contents, read back through the output directory's capability.
    pub bytes: Vec<u8>,
    /// Hex sha256 of `bytes`.
    pub sha256: String,
}

/// Largest unpacked size of one source distribution (a bound on what an archive makes the
/// host write).
pub const SDIST_UNPACKED_LIMIT: u64 = 1 << 30;
/// Most members of one source distribution.
pub const SDIST_MEMBER_LIMIT: usize = 100_000;

/// Runs PEP 517 hooks in the guest with the image's python.
pub struct Frontend<'a> {
    runner: &'a ImageRunner,
    build_env: &'a dyn BuildEnv,
    env: Vec<(String, String)>,
    log: Option<BuildLog>,
    isolation: bool,
}

/// What the project says about itself, for messages: name and version.
struct ProjectId {
    name: String,
    version: String,
}

/// A scratch directory of the guest's `/tmp`, removed when dropped.
struct Scratch {
    tmp: Dir,
    name: String,
}

impl Scratch {
    fn new(runner: &ImageRunner, prefix: &str) -> Result<Scratch, PackageError> {
        let tmp = runner
            .layout
            .open_dir(TMP_DIR)
            .map_err(|e| PackageError::Io(format!("{TMP_DIR}: {e}")))?;
        let name = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
        let mut builder = cap_std::fs::DirBuilder::new();
        builder.mode(0o755);
        tmp.create_dir_with(&name, &builder)
            .map_err(|e| PackageError::Io(format!("{TMP_DIR}/{name}: {e}")))?;
        Ok(Scratch { tmp, name })
    }
    fn guest(&self) -> String {
        format!("{TMP_DIR}/{}", self.name)
    }
    /// Keeps the directory (not removed on drop); its guest path.
    fn keep(mut self) -> String {
        let guest = self.guest();
        self.name.clear();
        guest
    }
    fn dir(&self) -> Result<Dir, PackageError> {
        self.tmp
            .open_dir(&self.name)
            .map_err(|e| PackageError::Io(format!("{}: {e}", self.guest())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = self.tmp.remove_dir_all(&self.name);
        }
    }
}

/// The output of one hook run, sent to the build log as well.
#[derive(Clone)]
struct Tee {
    buffer: SharedBuffer,
    log: Option<BuildLog>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.write_all(buf)?;
        if let Some(log) = &self.log {
            let _ = log.lock().unwrap_or_else(|e| e.into_inner()).write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if let Some(log) = &self.log {
            let _ = log.lock().unwrap_or_else(|e| e.into_inner()).flush();
        }
        Ok(())
    }
}

/// The JSON the frontend script writes.
#[derive(serde::Deserialize, Default)]
struct HookResult {
    ok: bool,
    file: Option<String>,
    metadata: Option<String>,
    missing: Option<Vec<String>>,
    native: Option<String>,
    error: Option<String>,
}

impl<'a> Frontend<'a> {
    /// A frontend running hooks through `runner` (its layout, limits and determinism).
    pub fn new(runner: &'a ImageRunner, build_env: &'a dyn BuildEnv) -> Self {
        Frontend {
            runner,
            build_env,
            env: Vec::new(),
            log: None,
            isolation: true,
        }
    }

    /// The environment of the build's commands (`PATH`, `HOME`, …); the frontend adds its
    /// own variables (and `SOURCE_DATE_EPOCH` under determinism).
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Self {
        self.env = env;
        self
    }

    /// Where the hooks' output goes.
    pub fn with_log(mut self, log: BuildLog) -> Self {
        self.log = Some(log);
        self
    }

    /// `--no-build-isolation`: build requirements are not installed, the guest's user
    /// site-packages is visible to the backend.
    pub fn without_isolation(mut self) -> Self {
        self.isolation = false;
        self
    }

    /// Builds the project in guest directory `project` (absolute) into guest directory
    /// `out_dir` (created if missing).
    pub fn build(
        &self,
        project: &str,
        kind: BuildKind,
        out_dir: &str,
    ) -> Result<Built, PackageError> {
        let (system, id) = self.inspect(project, None)?;
        self.build_as(project, &system, &id, kind, out_dir)
    }

    /// The core metadata (`METADATA` text) of the project in `project`:
    /// `prepare_metadata_for_build_wheel`, or a wheel build when the backend lacks it.
    pub fn metadata(&self, project: &str) -> Result<String, PackageError> {
        let (system, id) = self.inspect(project, None)?;
        self.metadata_as(project, &system, &id)
    }

    fn metadata_as(
        &self,
        project: &str,
        system: &BuildSystem,
        id: &ProjectId,
    ) -> Result<String, PackageError> {
        let work = Scratch::new(self.runner, ".wasmbuild-pep517-")?;
        let out = format!("{}/out", work.guest());
        let result = self.run_hooks(
            project,
            system,
            id,
            &work,
            "metadata",
            BuildKind::Wheel,
            &out,
        )?;
        result.metadata.ok_or_else(|| PackageError::Build {
            name: id.name.clone(),
            reason: "the frontend returned no metadata".into(),
        })
    }

    fn build_as(
        &self,
        project: &str,
        system: &BuildSystem,
        id: &ProjectId,
        kind: BuildKind,
        out_dir: &str,
    ) -> Result<Built, PackageError> {
        let work = Scratch::new(self.runner, ".wasmbuild-pep517-")?;
        // Built into the scratch directory first: a failed build leaves nothing in `out_dir`.
        let scratch_out = format!("{}/out", work.guest());
        let result = self.run_hooks(project, system, id, &work, "build", kind, &scratch_out)?;
        let file = result.file.ok_or_else(|| PackageError::Build {
            name: id.name.clone(),
            reason: "the build backend returned no file name".into(),
        })?;
        if file.is_empty() || file.contains(['/', '\\', '\0']) || file == "." || file == ".." {
            return Err(PackageError::Build {
                name: id.name.clone(),
                reason: format!("the build backend returned a bad file name {file:?}"),
            });
        }
        let built = work
            .dir()?
            .open_dir("out")
            .and_then(|d| read_regular(&d, &file))
            .map_err(|e| PackageError::Build {
                name: id.name.clone(),
                reason: format!("the built file {file}: {e}"),
            })?;
        let out = create_guest_dir(self.runner, out_dir)?;
        write_new(&out, &file, &built, 0o644)
            .map_err(|e| PackageError::Io(format!("{out_dir}/{file}: {e}")))?;
        Ok(Built {
            guest_path: format!("{}/{file}", out_dir.trim_end_matches('/')),
            sha256: crate::digest::sha256_hex(&built),
            file,
            bytes: built,
        })
    }

    /// The project's build system and identity, from its `pyproject.toml` (or the sdist's
    /// file name `sdist`), refusing backends that need a native compiler.
    fn inspect(
        &self,
        project: &str,
        sdist: Option<&str>,
    ) -> Result<(BuildSystem, ProjectId), PackageError> {
        let dir = self
            .runner
            .layout
            .open_dir(project)
            .map_err(|e| PackageError::Io(format!("{project}: {e}")))?;
        let pyproject = match dir.read_to_string("pyproject.toml") {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(PackageError::Io(format!("{project}/pyproject.toml: {e}"))),
        };
        let mut id = sdist
            .and_then(sdist_name_version)
            .unwrap_or_else(|| ProjectId {
                name: project
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(project)
                    .to_owned(),
                version: "(source tree)".into(),
            });
        if sdist.is_none()
            && let Some(text) = &pyproject
            && let Ok(doc) = toml::from_str::<toml::Table>(text)
            && let Some(table) = doc.get("project").and_then(|p| p.as_table())
        {
            if let Some(name) = table.get("name").and_then(|v| v.as_str()) {
                id.name = name.to_owned();
            }
            if let Some(version) = table.get("version").and_then(|v| v.as_str()) {
                id.version = version.to_owned();
            }
        }
        let system = BuildSystem::from_pyproject(pyproject.as_deref()).map_err(|e| match e {
            PackageError::Build { reason, .. } => PackageError::Build {
                name: id.name.clone(),
                reason: format!("pyproject.toml: {reason}"),
            },
            other => other,
        })?;
        if let Some(reason) = system.native_backend() {
            return Err(PackageError::NeedsNative {
                name: id.name,
                version: id.version,
                reason,
            });
        }
        Ok((system, id))
    }

    /// Runs the frontend script for `action`, installing build requirements as asked.
    #[expect(
        clippy::too_many_arguments,
        reason = "one PEP 517 hook call: the hook, its backend, paths and settings"
    )]
    fn run_hooks(
        &self,
        project: &str,
        system: &BuildSystem,
        id: &ProjectId,
        work: &Scratch,
        action: &str,
        kind: BuildKind,
        out_dir: &str,
    ) -> Result<HookResult, PackageError> {
        let work_dir = work.dir()?;
        let io_err =
            |what: &str, e: io::Error| PackageError::Io(format!("{}/{what}: {e}", work.guest()));
        write_new(&work_dir, "frontend.py", FRONTEND_SCRIPT.as_bytes(), 0o644)
            .map_err(|e| io_err("frontend.py", e))?;
        let build_env = if self.isolation {
            work_dir.create_dir("env").map_err(|e| io_err("env", e))?;
            let env_dir = work_dir.open_dir("env").map_err(|e| io_err("env", e))?;
            if !system.requires.is_empty() {
                self.build_env
                    .install_requirements(&system.requires, &env_dir)
                    .map_err(|e| in_build(id, e))?;
            }
            Some((format!("{}/env", work.guest()), env_dir))
        } else {
            None
        };
        let mut check_requires = self.isolation;
        for attempt in 0..2 {
            let request = serde_json::json!({
                "project": project,
                "backend": system.backend,
                "backend_path": system.backend_path,
                "build_env": build_env.as_ref().map(|(guest, _)| guest.clone()),
                "action": action,
                "kind": kind.as_str(),
                "out_dir": out_dir,
                "check_requires": check_requires,
                "config_settings": {},
                "result": format!("{}/result-{attempt}.json", work.guest()),
            });
            let request_name = format!("request-{attempt}.json");
            write_new(
                &work_dir,
                &request_name,
                request.to_string().as_bytes(),
                0o644,
            )
            .map_err(|e| io_err(&request_name, e))?;
            let output = self.run_python(
                project,
                vec![
                    "python3".into(),
                    format!("{}/frontend.py", work.guest()),
                    format!("{}/{request_name}", work.guest()),
                ],
                id,
            )?;
            let result: HookResult = work_dir
                .read_to_string(format!("result-{attempt}.json"))
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default();
            if result.ok {
                match (&result.missing, &build_env) {
                    (Some(missing), Some((_, env_dir))) if !missing.is_empty() && attempt == 0 => {
                        self.build_env
                            .install_requirements(missing, env_dir)
                            .map_err(|e| in_build(id, e))?;
                        check_requires = false;
                        continue;
                    }
                    _ => return Ok(result),
                }
            }
            return Err(failure(id, &result, &output));
        }
        Err(PackageError::Build {
            name: id.name.clone(),
            reason: "the build requirements kept changing".into(),
        })
    }

    /// Runs the guest's python with `argv` in `cwd`; its output (also sent to the log).
    fn run_python(
        &self,
        cwd: &str,
        argv: Vec<String>,
        id: &ProjectId,
    ) -> Result<(i32, String), PackageError> {
        let mut env = self.env.clone();
        let mut set = |key: &str, value: String| {
            env.retain(|(k, _)| k != key);
            env.push((key.to_owned(), value));
        };
        if !self.env.iter().any(|(k, _)| k == "PATH") {
            set("PATH", self.runner.image.guest_path_var());
        }
        if !self.env.iter().any(|(k, _)| k == "HOME") {
            set("HOME", HOME_DIR.to_owned());
        }
        set("PWD", cwd.to_owned());
        if self.isolation {
            // The build sees its own environment, not the user's site-packages.
            set("PYTHONNOUSERSITE", "1".into());
        }
        if let Some(determinism) = &self.runner.determinism {
            set(
                "SOURCE_DATE_EPOCH",
                determinism.source_date_epoch.to_string(),
            );
            set("PYTHONHASHSEED", "0".into());
        }
        let buffer = SharedBuffer::default();
        let tee = Tee {
            buffer: buffer.clone(),
            log: self.log.clone(),
        };
        let io = ProgramIo {
            stdin: Box::new(io::empty()),
            stdout: Box::new(tee.clone()),
            stderr: Box::new(tee),
            terminal: [false; 3],
            spawner: None,
            kill: None,
            ends_process: false,
        };
        let outcome =
            self.runner
                .run_command(argv, env, cwd, io)
                .map_err(|e| PackageError::Build {
                    name: id.name.clone(),
                    reason: e.to_string(),
                })?;
        let output = String::from_utf8_lossy(&buffer.contents()).into_owned();
        match outcome {
            ProgramOutcome::NotFound => Err(PackageError::Build {
                name: id.name.clone(),
                reason: "the image has no python3".into(),
            }),
            ProgramOutcome::Ran(GuestExit::Exited(code)) => Ok((code, output)),
            ProgramOutcome::Ran(GuestExit::Trapped { message, .. }) => Err(PackageError::Build {
                name: id.name.clone(),
                reason: message,
            }),
        }
    }

    /// Unpacks a source distribution (`.tar.gz` or `.zip`, named `file`) into a fresh
    /// directory of the guest's `/tmp`, refusing paths that leave it; returns the guest
    /// path of the project directory (the archive's single top-level directory).
    pub fn unpack_sdist(&self, file: &str, bytes: &[u8]) -> Result<String, PackageError> {
        let scratch = Scratch::new(self.runner, ".wasmbuild-sdist-")?;
        let top = {
            let dir = scratch.dir()?;
            unpack_archive(file, bytes, &dir)?
        };
        // Kept: the caller builds from it (the build's /tmp goes with the build).
        Ok(format!("{}/{top}", scratch.keep()))
    }
}

/// A build error wrapping another packaging error keeps it (a resolver or index failure
/// while installing build requirements names the project being built).
fn in_build(id: &ProjectId, e: PackageError) -> PackageError {
    match e {
        PackageError::NeedsNative { .. }
        | PackageError::Offline { .. }
        | PackageError::HashMismatch { .. } => e,
        other => PackageError::Build {
            name: id.name.clone(),
            reason: format!("installing its build requirements: {other}"),
        },
    }
}

/// The one-line reason of a failed hook run.
fn failure(id: &ProjectId, result: &HookResult, (status, output): &(i32, String)) -> PackageError {
    if let Some(reason) = &result.native {
        return PackageError::NeedsNative {
            name: id.name.clone(),
            version: id.version.clone(),
            reason: reason.clone(),
        };
    }
    if let Some(reason) = native_in_output(output) {
        return PackageError::NeedsNative {
            name: id.name.clone(),
            version: id.version.clone(),
            reason,
        };
    }
    let reason = match &result.error {
        Some(error) => format!("{error} (the build output is in the log)"),
        None => format!(
            "the build frontend exited with status {status}: {}",
            output
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output")
                .trim()
        ),
    };
    PackageError::Build {
        name: id.name.clone(),
        reason,
    }
}

/// Signs in a build's output that it needed a C compiler.
fn native_in_output(output: &str) -> Option<String> {
    const SIGNS: &[(&str, &str)] = &[
        (
            "Python.h",
            "it compiles C code against Python.h and the sandbox has no C compiler",
        ),
        (
            "command 'gcc' failed",
            "it runs a C compiler (gcc) and the sandbox has none",
        ),
        (
            "command 'cc' failed",
            "it runs a C compiler (cc) and the sandbox has none",
        ),
        (
            "command 'clang' failed",
            "it runs a C compiler (clang) and the sandbox has none",
        ),
        (
            "CCompilerError",
            "it compiles C code and the sandbox has no C compiler",
        ),
        (
            "unable to execute 'gcc'",
            "it runs a C compiler (gcc) and the sandbox has none",
        ),
        (
            "Cython.Compiler",
            "it compiles Cython code to C and the sandbox has no C compiler",
        ),
        (
            "cargo rustc",
            "it builds Rust code and the sandbox has no Rust compiler",
        ),
    ];
    SIGNS
        .iter()
        .find(|(sign, _)| output.contains(sign))
        .map(|(_, reason)| (*reason).to_owned())
}

/// `name-version` of an sdist file name (`toolz-1.0.0.tar.gz`).
fn sdist_name_version(file: &str) -> Option<ProjectId> {
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    let (name, version) = stem.rsplit_once('-')?;
    Some(ProjectId {
        name: name.to_owned(),
        version: version.to_owned(),
    })
}

/// Creates the guest directory `guest` (and its parents) through its mount's capability.
fn create_guest_dir(runner: &ImageRunner, guest: &str) -> Result<Dir, PackageError> {
    let (mount, rel) = runner.layout.resolve(guest).ok_or_else(|| {
        PackageError::Io(format!(
            "{guest} is not inside any directory the guest can see"
        ))
    })?;
    if !mount.writable {
        return Err(PackageError::Io(format!("{guest}: read-only")));
    }
    let root = crate::store::beneath::open_root(&mount.host)
        .map_err(|e| PackageError::Io(format!("{guest}: {e}")))?;
    if rel.is_empty() {
        return Ok(root);
    }
    root.create_dir_all(rel)
        .and_then(|()| root.open_dir(rel))
        .map_err(|e| PackageError::Io(format!("{guest}: {e}")))
}

/// Reads a regular file of `dir` (not a link).
fn read_regular(dir: &Dir, name: &str) -> io::Result<Vec<u8>> {
    let meta = dir.symlink_metadata(name)?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    dir.read(name)
}

/// Writes `name` in `dir` anew (replacing a file or link there, never writing through it).
fn write_new(dir: &Dir, name: &str, contents: &[u8], mode: u32) -> io::Result<()> {
    let temp = format!(".{name}.{}", uuid::Uuid::new_v4().simple());
    let mut options = cap_std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(mode);
    let result = (|| {
        let mut f = dir.open_with(&temp, &options)?;
        f.write_all(contents)?;
        f.set_permissions(cap_std::fs::Permissions::from_std(
            std::fs::Permissions::from_mode(mode),
        ))?;
        dir.rename(&temp, dir, name)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&temp);
    }
    result
}

/// Unpacks a `.tar.gz` / `.tgz` / `.tar` / `.zip` into `dir`; returns its single top-level
/// directory. Only directories and regular files are made; links are skipped; paths that
/// are absolute or contain `..` are refused.
fn unpack_archive(file: &str, bytes: &[u8], dir: &Dir) -> Result<String, PackageError> {
    let bad = |reason: String| PackageError::BadDistribution {
        file: file.to_owned(),
        reason,
    };
    let mut tops = std::collections::BTreeSet::new();
    let mut total = 0u64;
    let mut members = 0usize;
    let mut put =
        |path: &str, is_dir: bool, mode: u32, reader: &mut dyn Read| -> Result<(), PackageError> {
            members += 1;
            if members > SDIST_MEMBER_LIMIT {
                return Err(bad(format!("more than {SDIST_MEMBER_LIMIT} members")));
            }
            let path = path.trim_start_matches("./").trim_end_matches('/');
            if path.is_empty() {
                return Ok(());
            }
            if path.starts_with('/')
                || path.contains(['\\', '\0'])
                || path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(bad(format!("{path:?} would leave the unpack directory")));
            }
            tops.insert(path.split('/').next().unwrap_or_default().to_owned());
            if is_dir {
                return dir
                    .create_dir_all(path)
                    .map_err(|e| bad(format!("{path}: {e}")));
            }
            if let Some((parent, _)) = path.rsplit_once('/') {
                dir.create_dir_all(parent)
                    .map_err(|e| bad(format!("{path}: {e}")))?;
            }
            let mut contents = Vec::new();
            let limit = SDIST_UNPACKED_LIMIT - total;
            reader
                .take(limit + 1)
                .read_to_end(&mut contents)
                .map_err(|e| bad(format!("{path}: {e}")))?;
            total += contents.len() as u64;
            if total > SDIST_UNPACKED_LIMIT {
                return Err(bad(format!(
                    "unpacks to more than {SDIST_UNPACKED_LIMIT} bytes"
                )));
            }
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            let parent_dir = if parent.is_empty() {
                dir.try_clone()
            } else {
                dir.open_dir(parent)
            }
            .map_err(|e| bad(format!("{path}: {e}")))?;
            write_new(&parent_dir, name, &contents, mode).map_err(|e| bad(format!("{path}: {e}")))
        };
    if file.ends_with(".zip") {
        let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes))
            .map_err(|e| bad(format!("not a valid zip: {e}")))?;
        for i in 0..archive.len() {
            let mut member = archive
                .by_index(i)
                .map_err(|e| bad(format!("member {i}: {e}")))?;
            let name = member
                .name()
                .map_err(|e| bad(format!("member {i}: {e}")))?
                .into_owned();
            if member.is_symlink() {
                continue;
            }
            let is_dir = member.is_dir();
            let mode = member.unix_mode().unwrap_or(0o644);
            put(&name, is_dir, mode, &mut member)?;
        }
    } else {
        let reader: Box<dyn Read> = if file.ends_with(".tar") {
            Box::new(bytes)
        } else if file.ends_with(".tar.gz") || file.ends_with(".tgz") {
            Box::new(flate2::read::GzDecoder::new(bytes))
        } else {
            return Err(bad("not a source distribution (.tar.gz or .zip)".into()));
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive
            .entries()
            .map_err(|e| bad(format!("not a valid tar: {e}")))?
        {
            let mut entry = entry.map_err(|e| bad(format!("not a valid tar: {e}")))?;
            let kind = entry.header().entry_type();
            let path = entry
                .path()
                .map_err(|e| bad(format!("a member's name: {e}")))?
                .to_str()
                .ok_or_else(|| bad("a member's name is not UTF-8".into()))?
                .to_owned();
            let mode = entry.header().mode().unwrap_or(0o644);
            match kind {
                tar::EntryType::Directory => put(&path, true, mode, &mut io::empty())?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    put(&path, false, mode, &mut entry)?
                }
                // Links, devices, pax headers: nothing is made for them.
                _ => {}
            }
        }
    }
    if tops.len() != 1 {
        return Err(bad(format!(
            "expected one top-level directory, found {}",
            tops.len()
        )));
    }
    let top = tops.into_iter().next().unwrap_or_default();
    if !dir.symlink_metadata(&top).is_ok_and(|m| m.is_dir()) {
        return Err(bad("its top-level entry is not a directory".into()));
    }
    Ok(top)
}

/// Fetches a distribution file's bytes (hash-checked, through the store): the index
/// client's download.
pub type Fetch<'a> = Box<dyn Fn(&DistFile) -> Result<Vec<u8>, PackageError> + Send + Sync + 'a>;

/// Source distributions from the index, built in the sandbox: their metadata for the
/// resolver ([`SdistMetadata`]) and their wheels for the installer.
pub struct SdistBuilder<'a> {
    frontend: Frontend<'a>,
    fetch: Fetch<'a>,
}

impl<'a> SdistBuilder<'a> {
    pub fn new(frontend: Frontend<'a>, fetch: Fetch<'a>) -> Self {
        SdistBuilder { frontend, fetch }
    }

    /// Fetches, unpacks and builds the sdist `file` into a wheel in guest directory `out_dir`.
    pub fn build_wheel(&self, file: &DistFile, out_dir: &str) -> Result<Built, PackageError> {
        let (_scratch, project) = self.unpack(file)?;
        let (system, id) = self.frontend.inspect(&project, Some(&file.file))?;
        self.frontend
            .build_as(&project, &system, &id, BuildKind::Wheel, out_dir)
    }

    fn unpack(&self, file: &DistFile) -> Result<(Scratch, String), PackageError> {
        let bytes = (self.fetch)(file)?;
        let scratch = Scratch::new(self.frontend.runner, ".wasmbuild-sdist-")?;
        let top = unpack_archive(&file.file, &bytes, &scratch.dir()?)?;
        let project = format!("{}/{top}", scratch.guest());
        Ok((scratch, project))
    }
}

impl SdistMetadata for SdistBuilder<'_> {
    fn sdist_metadata(&self, file: &DistFile) -> Result<String, PackageError> {
        let (_scratch, project) = self.unpack(file)?;
        let (system, id) = self.frontend.inspect(&project, Some(&file.file))?;
        self.frontend.metadata_as(&project, &system, &id)
    }
}
