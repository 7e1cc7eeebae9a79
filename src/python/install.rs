//! What a pip command does, on the host: collect the requirements (command line,
//! requirements files, local projects), resolve them for the guest, fetch every file
//! into the store (hash-checked), build what has no wheel in the sandbox, and install
//! the wheels into the guest — all of them or none.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};

use cap_std::fs::Dir;

use super::frontend::{BuildEnv, BuildKind, Frontend, SdistBuilder};
use super::index::{Client, IndexSettings, PipIndexOptions, normalize_name};
use super::lock::{RequirementKind, RequirementLine, Requirements};
use super::pip::{PythonPackages, ResolveOptions};
use super::resolve::{self, ResolveRequest};
use super::wheel::{self, InstallOptions, Scheme};
use super::{DistFile, Interpreter, PackageError, Pin, SdistMetadata};
use crate::image::ImageRunner;
use crate::sandbox::layout::{HOME_DIR, TMP_DIR};
use crate::shell::GuestFs;
use crate::shell::fs::normalize;
use crate::store::Store;

/// A wheel: its pin and its bytes.
type Wheel = (Pin, Vec<u8>);

/// Where a pip command installs.
pub struct Target {
    pub root: Dir,
    pub scheme: Scheme,
    /// The interpreter named in scripts' `#!` lines.
    pub python: String,
    /// For messages: the guest directory.
    pub describe: String,
    /// The guest path of `root`.
    pub guest_root: String,
}

/// One pip command's view of the build: its runner, packages, environment and cwd.
pub struct PipContext<'a> {
    pub runner: &'a ImageRunner,
    pub packages: &'a PythonPackages,
    /// The image's python: what is resolved is for it, and installed where it looks.
    pub python: Interpreter,
    pub env: &'a [(String, String)],
    pub cwd: &'a str,
    pub fs: GuestFs,
    /// Where build backends' output goes (the command's stderr).
    pub log: Arc<Mutex<dyn Write + Send>>,
}

/// A local project or distribution named on the command line or in a requirements file.
struct LocalProject {
    /// Its guest path (a directory, a wheel or an sdist).
    path: String,
    editable: bool,
    extras: Vec<String>,
}

/// What was asked, gathered from every source.
#[derive(Default)]
pub struct Asked {
    named: Vec<RequirementLine>,
    constraints: Vec<RequirementLine>,
    local: Vec<LocalProject>,
    index: PipIndexOptions,
    /// Hashes allowed per project (pip's hash-checking mode), from `--hash` options.
    hashes: BTreeMap<String, BTreeSet<String>>,
    require_hashes: bool,
    pre: bool,
}

/// What is installed afterwards, for the command's summary line.
pub struct Outcome {
    pub installed: Vec<(String, String)>,
    pub already: Vec<(String, String)>,
}

impl<'a> PipContext<'a> {
    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn read_guest(&self, path: &str) -> Result<String, PackageError> {
        let path = normalize(self.cwd, path);
        self.fs
            .read(&path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| {
                PackageError::Io(format!(
                    "{path}: {}",
                    crate::shell::fs::describe_io_error(&e)
                ))
            })
    }

    /// The project names the requirements `files` name (for `pip uninstall -r`), read
    /// with the same parser as `pip install -r`.
    pub fn named_in(&self, files: &[String]) -> Result<Vec<String>, PackageError> {
        let read = |path: &str| self.read_guest(path);
        let mut names = Vec::new();
        for file in files {
            let parsed = Requirements::parse_file(&normalize(self.cwd, file), &read)?;
            names.extend(
                parsed
                    .requirements
                    .into_iter()
                    .filter_map(|line| match line.kind {
                        RequirementKind::Named { name } => Some(name),
                        _ => None,
                    }),
            );
        }
        Ok(names)
    }

    /// Gathers requirements from pip's options.
    pub fn gather(&self, options: &ResolveOptions) -> Result<Asked, PackageError> {
        let mut asked = Asked {
            index: PipIndexOptions {
                index_url: options.index.index_url.clone(),
                extra_index_urls: options.index.extra_index_url.clone(),
                no_index: options.index.no_index,
                find_links: options.index.find_links.clone(),
                ..Default::default()
            },
            require_hashes: options.require_hashes,
            pre: options.pre,
            ..Default::default()
        };
        let read = |path: &str| self.read_guest(path);
        for file in &options.requirements {
            let parsed = Requirements::parse_file(&normalize(self.cwd, file), &read)?;
            asked.require_hashes |= parsed.require_hashes;
            asked.pre |= parsed.pre;
            merge_index(&mut asked.index, &parsed.index);
            for line in parsed.requirements {
                self.add_line(&mut asked, line)?;
            }
            asked.constraints.extend(parsed.constraints);
        }
        for file in &options.constraints {
            let parsed = Requirements::parse_file(&normalize(self.cwd, file), &read)?;
            asked.constraints.extend(parsed.requirements);
            asked.constraints.extend(parsed.constraints);
        }
        for spec in &options.specs {
            let line = Requirements::parse_requirement(spec, "the command line")?;
            self.add_line(&mut asked, line)?;
        }
        for path in &options.editable {
            let mut line = Requirements::parse_requirement(path, "the command line")?;
            line.editable = true;
            self.add_line(&mut asked, line)?;
        }
        Ok(asked)
    }

    fn add_line(&self, asked: &mut Asked, line: RequirementLine) -> Result<(), PackageError> {
        match &line.kind {
            RequirementKind::Named { name } => {
                if !line.hashes.is_empty() {
                    asked
                        .hashes
                        .entry(name.clone())
                        .or_default()
                        .extend(line.hashes.iter().cloned());
                }
                asked.named.push(line);
            }
            RequirementKind::Path(path) => {
                let (path, extras) = split_extras(path);
                // Paths in a requirements file are relative to the directory pip runs in,
                // as in pip; `file://` URLs are absolute.
                let path = path.strip_prefix("file://").unwrap_or(&path).to_owned();
                asked.local.push(LocalProject {
                    path: normalize(self.cwd, &path),
                    editable: line.editable,
                    extras,
                });
            }
            RequirementKind::Url(url) => {
                return Err(PackageError::BadRequirement {
                    requirement: url.clone(),
                    reason: "a bare URL has no name or hash to pin; name the project and \
                             version instead (NAME==VERSION)"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// The index settings of this command.
    pub fn settings(&self, index: &PipIndexOptions) -> Result<IndexSettings, PackageError> {
        let guest_conf: Vec<(String, String)> = [
            format!("{HOME_DIR}/.pip/pip.conf"),
            format!("{HOME_DIR}/.config/pip/pip.conf"),
        ]
        .into_iter()
        .chain(self.var("PIP_CONFIG_FILE"))
        .filter_map(|path| {
            let path = normalize(self.cwd, &path);
            let text = self.fs.read(&path).ok()?;
            Some((path, String::from_utf8_lossy(&text).into_owned()))
        })
        .collect();
        let env = |name: &str| self.var(name);
        match IndexSettings::resolve(&env, &guest_conf, index) {
            // Offline, or with everything locked, no index is needed.
            Err(PackageError::NoIndex)
                if self.packages.offline || !self.packages.locked.is_empty() =>
            {
                let mut none = PipIndexOptions {
                    no_index: true,
                    ..index.clone()
                };
                none.index_url = None;
                IndexSettings::resolve(&env, &guest_conf, &none)
            }
            other => other,
        }
    }

    pub fn client(&self, index: &PipIndexOptions) -> Result<Client, PackageError> {
        let settings = self.settings(index)?;
        self.packages.client(settings)
    }

    /// The guest directory pip installs into: `--target`, the active virtual environment,
    /// or the user site of the home.
    pub fn target(&self, target: Option<&str>) -> Result<Target, PackageError> {
        let io = |path: &str, e: std::io::Error| PackageError::Io(format!("{path}: {e}"));
        if let Some(dir) = target {
            let path = normalize(self.cwd, dir);
            let root = super::venv::create_guest_dir(&self.runner.layout, &path)
                .map_err(|e| io(&path, e))?;
            return Ok(Target {
                root,
                scheme: Scheme::target(),
                python: wheel::GUEST_PYTHON.into(),
                guest_root: path.clone(),
                describe: path,
            });
        }
        if let Some(venv) = self.var("VIRTUAL_ENV").filter(|v| v.starts_with('/'))
            && self.fs.metadata(&format!("{venv}/pyvenv.cfg")).is_ok()
        {
            let root = self
                .runner
                .layout
                .open_dir(&venv)
                .map_err(|e| io(&venv, e))?;
            return Ok(Target {
                root,
                scheme: Scheme {
                    site_packages: self.python.site_packages(),
                    scripts: "bin".into(),
                    data: String::new(),
                    headers: "include".into(),
                },
                python: format!("{venv}/bin/python"),
                guest_root: venv.clone(),
                describe: venv,
            });
        }
        let root = super::venv::create_guest_dir(&self.runner.layout, HOME_DIR)
            .map_err(|e| io(HOME_DIR, e))?;
        Ok(Target {
            root,
            scheme: Scheme::user(self.python),
            python: wheel::GUEST_PYTHON.into(),
            describe: format!("{HOME_DIR}/.local"),
            guest_root: HOME_DIR.into(),
        })
    }
}

fn merge_index(into: &mut PipIndexOptions, from: &PipIndexOptions) {
    if into.index_url.is_none() {
        into.index_url.clone_from(&from.index_url);
    }
    into.extra_index_urls
        .extend(from.extra_index_urls.iter().cloned());
    into.no_index |= from.no_index;
    into.find_links.extend(from.find_links.iter().cloned());
    into.trusted_hosts
        .extend(from.trusted_hosts.iter().cloned());
}

/// `./proj[test,docs]` → (`./proj`, [test, docs]).
fn split_extras(path: &str) -> (String, Vec<String>) {
    if let Some(open) = path.rfind('[')
        && path.ends_with(']')
    {
        let extras = path[open + 1..path.len() - 1]
            .split(',')
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        return (path[..open].to_owned(), extras);
    }
    (path.to_owned(), Vec::new())
}

/// Installs build requirements for the frontend: resolved, fetched and installed the same
/// way as the command's own, into the build's private directory.
struct Isolated<'c, 'a> {
    ctx: &'c PipContext<'a>,
    client: &'c Client,
    depth: usize,
}

impl BuildEnv for Isolated<'_, '_> {
    fn install_requirements(
        &self,
        requirements: &[String],
        target: &Dir,
    ) -> Result<(), PackageError> {
        if requirements.is_empty() {
            return Ok(());
        }
        if self.depth > 3 {
            return Err(PackageError::Build {
                name: requirements.join(", "),
                reason: "build requirements nest too deep (a build backend that needs itself?)"
                    .into(),
            });
        }
        let request = ResolveRequest {
            requirements: requirements.to_vec(),
            locked: self.ctx.packages.locked.clone(),
            python: self.ctx.python,
            ..Default::default()
        };
        let pins = resolve_and_fetch(self.ctx, self.client, &request, self.depth + 1)?;
        let wheels = wheels_of(self.ctx, self.client, &pins, self.depth + 1)?;
        let refs: Vec<(&Pin, &[u8])> = wheels.iter().map(|(p, b)| (p, b.as_slice())).collect();
        wheel::install_wheels_to(target, &Scheme::target(), &refs, &InstallOptions::default())?;
        self.ctx.packages.note_used(&pins);
        Ok(())
    }
}

/// The command's PEP 517 frontend: its environment and log, build isolation as asked.
fn frontend<'c>(
    ctx: &'c PipContext<'_>,
    build_env: &'c dyn BuildEnv,
    isolated: bool,
) -> Frontend<'c> {
    let frontend = Frontend::new(ctx.runner, build_env)
        .with_env(ctx.env.to_vec())
        .with_log(ctx.log.clone());
    if isolated {
        frontend
    } else {
        frontend.without_isolation()
    }
}

/// Builds sdists of the index (fetched through `client`) in the sandbox, isolated.
fn sdist_builder<'c>(
    ctx: &'c PipContext<'_>,
    client: &Client,
    build_env: &'c Isolated<'c, '_>,
) -> SdistBuilder<'c> {
    let fetcher = client.clone();
    SdistBuilder::new(
        frontend(ctx, build_env, true),
        Box::new(move |file: &DistFile| fetcher.read(file)),
    )
}

/// The core metadata of sdists, kept in the store by interpreter and sdist hash: the
/// resolver needs it for every sdist it considers, a locked one included, and only a PEP 517
/// build in the sandbox can say it (seconds, for a setuptools project). Metadata the store
/// cannot give back is asked of the build backend again.
struct StoredMetadata<'a> {
    builder: SdistBuilder<'a>,
    store: &'a Store,
    python: Interpreter,
}

impl SdistMetadata for StoredMetadata<'_> {
    fn sdist_metadata(&self, file: &DistFile) -> Result<String, PackageError> {
        let reference = format!(
            "python/sdist-metadata/{}/{}",
            self.python.name(),
            file.sha256
        );
        let bytes = kept_or_made(self.store, &reference, || {
            Ok(self.builder.sdist_metadata(file)?.into_bytes())
        })?;
        String::from_utf8(bytes)
            .map_err(|_| PackageError::Io(format!("{reference}: the stored metadata is not UTF-8")))
    }
}

/// What the store keeps under `reference`, else what `make` makes, kept there for the next
/// build. What the store cannot give back intact is made again.
fn kept_or_made(
    store: &Store,
    reference: &str,
    make: impl FnOnce() -> Result<Vec<u8>, PackageError>,
) -> Result<Vec<u8>, PackageError> {
    if let Some(digest) = store.get_ref(reference)?
        && let Ok(bytes) = store.get_blob(&digest)
    {
        return Ok(bytes);
    }
    let bytes = make()?;
    let digest = store.put_blob(&bytes)?;
    store.set_ref(reference, &digest)?;
    Ok(bytes)
}

/// Resolves `request` and makes sure the store has every file.
fn resolve_and_fetch(
    ctx: &PipContext<'_>,
    client: &Client,
    request: &ResolveRequest,
    depth: usize,
) -> Result<Vec<Pin>, PackageError> {
    let build_env = Isolated { ctx, client, depth };
    let sdists = StoredMetadata {
        builder: sdist_builder(ctx, client, &build_env),
        store: client.store(),
        python: ctx.python,
    };
    let resolution = resolve::resolve(client, &sdists, request)?;
    let pins = resolution.pins();
    client.fetch_all(&pins)?;
    Ok(pins)
}

/// The wheel of each pin: the file itself, or built from the sdist (kept in the store,
/// keyed by the interpreter and the sdist's hash, so the next build does not build it again).
fn wheels_of(
    ctx: &PipContext<'_>,
    client: &Client,
    pins: &[Pin],
    depth: usize,
) -> Result<Vec<Wheel>, PackageError> {
    let mut out = Vec::with_capacity(pins.len());
    for pin in pins {
        if pin.file.ends_with(".whl") {
            out.push((pin.clone(), client.read(pin)?));
            continue;
        }
        out.push((pin.clone(), built_wheel(ctx, client, pin, depth)?));
    }
    Ok(out)
}

fn built_wheel(
    ctx: &PipContext<'_>,
    client: &Client,
    pin: &Pin,
    depth: usize,
) -> Result<Vec<u8>, PackageError> {
    // By interpreter: a backend may build differently for another python.
    let reference = format!("python/built/{}/{}", ctx.python.name(), pin.sha256);
    kept_or_made(client.store(), &reference, || {
        let build_env = Isolated { ctx, client, depth };
        let sdists = sdist_builder(ctx, client, &build_env);
        let built = sdists.build_wheel(&DistFile::from(pin), &scratch_dir("wheels"))?;
        Ok(built.bytes)
    })
}

/// A fresh directory name under the guest's `/tmp` for a command's work.
fn scratch_dir(what: &str) -> String {
    format!(
        "{TMP_DIR}/.wasmbuild-pip-{what}-{}",
        uuid::Uuid::new_v4().simple()
    )
}

/// The local projects of a command built into wheels (through the command's frontend,
/// isolated unless `--no-build-isolation`), with the requirements their metadata adds
/// (none under `--no-deps`).
fn build_locals(
    ctx: &PipContext<'_>,
    client: &Client,
    asked: &Asked,
    options: &ResolveOptions,
) -> Result<(Vec<String>, Vec<Wheel>), PackageError> {
    let build_env = Isolated {
        ctx,
        client,
        depth: 0,
    };
    let frontend = frontend(ctx, &build_env, !options.no_build_isolation);
    let mut requirements = Vec::new();
    let mut wheels = Vec::new();
    for project in &asked.local {
        let (pin, bytes) = build_local(ctx, &frontend, project)?;
        if !options.no_deps {
            let metadata = wheel::wheel_metadata(&pin.file, &bytes)?;
            requirements.extend(requires_dist(&metadata, &project.extras));
        }
        wheels.push((pin, bytes));
    }
    Ok((requirements, wheels))
}

/// The resolve request of a command for `requirements`: its constraints, the build's lock
/// and pip's selection options.
fn request_for(
    ctx: &PipContext<'_>,
    asked: &Asked,
    options: &ResolveOptions,
    requirements: Vec<String>,
) -> ResolveRequest {
    ResolveRequest {
        requirements,
        constraints: asked.constraints.iter().map(|l| l.text.clone()).collect(),
        locked: ctx.packages.locked.clone(),
        no_deps: options.no_deps,
        pre: asked.pre,
        only_binary: binary_set(&options.only_binary),
        no_binary: binary_set(&options.no_binary),
        python: ctx.python,
        ..Default::default()
    }
}

/// Resolves and fetches `request`, unless it asks for nothing.
fn resolve_request(
    ctx: &PipContext<'_>,
    client: &Client,
    request: &ResolveRequest,
) -> Result<Vec<Pin>, PackageError> {
    if request.requirements.is_empty() {
        return Ok(Vec::new());
    }
    resolve_and_fetch(ctx, client, request, 0)
}

/// How `pip install` goes about it.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstallMode {
    pub upgrade: bool,
    /// Install again what is installed at the same version.
    pub force: bool,
    pub dry_run: bool,
    /// No bytecode (`--no-compile`, `PYTHONDONTWRITEBYTECODE`).
    pub no_compile: bool,
}

/// `pip install`: everything asked, resolved together, installed together, with the
/// bytecode of what was installed (`python::bytecode`).
pub fn install(
    ctx: &PipContext<'_>,
    options: &ResolveOptions,
    target: &Target,
    mode: InstallMode,
) -> Result<Outcome, PackageError> {
    let InstallMode {
        upgrade,
        force,
        dry_run,
        no_compile,
    } = mode;
    let asked = ctx.gather(options)?;
    let client = ctx.client(&asked.index)?;
    // pip itself is this host-side pip: `pip install --upgrade pip` is satisfied as it is.
    let (own, named): (Vec<_>, Vec<_>) = asked.named.iter().partition(
        |l| matches!(&l.kind, RequirementKind::Named { name } if normalize_name(name) == "pip"),
    );
    // Local projects: their metadata names them and their dependencies.
    let (local_requirements, local_wheels) = build_locals(ctx, &client, &asked, options)?;
    let mut requirements: Vec<String> = named.iter().map(|l| l.text.clone()).collect();
    requirements.extend(local_requirements);

    let installed = wheel::installed_in(&target.root, &target.scheme)?;
    let mut request = request_for(ctx, &asked, options, requirements);
    request.upgrade = upgrade;
    if !upgrade {
        request.preferences = installed
            .iter()
            .map(|p| (p.normalized.clone(), p.version.clone()))
            .collect();
    }
    let pins = resolve_request(ctx, &client, &request)?;
    check_hashes(&asked, &pins)?;
    let mut wanted: Vec<Pin> = Vec::new();
    let mut already = Vec::new();
    if !own.is_empty() {
        already.push(("pip".to_owned(), super::pip::PIP_VERSION.to_owned()));
    }
    for pin in &pins {
        match installed.iter().find(|p| p.normalized == pin.name) {
            Some(p) if p.version == pin.version && !force => {
                already.push((p.name.clone(), p.version.clone()))
            }
            _ => wanted.push(pin.clone()),
        }
    }
    if dry_run {
        return Ok(Outcome {
            installed: wanted
                .iter()
                .map(|p| (p.name.clone(), p.version.clone()))
                .collect(),
            already,
        });
    }
    let mut wheels = wheels_of(ctx, &client, &wanted, 0)?;
    wheels.extend(local_wheels);
    let refs: Vec<(&Pin, &[u8])> = wheels.iter().map(|(p, b)| (p, b.as_slice())).collect();
    let options = InstallOptions {
        python: target.python.clone(),
        ..Default::default()
    };
    let done = wheel::install_wheels_to(&target.root, &target.scheme, &refs, &options)?;
    ctx.packages.note_used(&pins);
    if !no_compile
        && ctx
            .var("PYTHONDONTWRITEBYTECODE")
            .is_none_or(|v| v.is_empty())
    {
        let pairs: Vec<_> = done.iter().zip(refs.iter().map(|(pin, _)| *pin)).collect();
        let installed = super::bytecode::Installed {
            root: &target.root,
            guest_root: &target.guest_root,
            scheme: &target.scheme,
        };
        // Bytecode is an optimisation: without it, modules are compiled on import.
        let said =
            match super::bytecode::provide(ctx.runner, &ctx.packages.store, &installed, &pairs) {
                Ok(p) if p.restored + p.compiled == 0 => None,
                Ok(p) => Some(format!(
                    "bytecode: {} from the store, {} compiled",
                    p.restored, p.compiled
                )),
                Err(e) => Some(format!("no bytecode for the installed packages: {e}")),
            };
        if let Some(said) = said {
            let mut log = ctx.log.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(log, "wasmbuild: {said}");
        }
    }
    Ok(Outcome {
        installed: done.into_iter().map(|d| (d.name, d.version)).collect(),
        already,
    })
}

/// Builds (or reads) a local project or distribution file into a wheel.
fn build_local(
    ctx: &PipContext<'_>,
    frontend: &Frontend<'_>,
    project: &LocalProject,
) -> Result<Wheel, PackageError> {
    let path = &project.path;
    let (file, bytes) = if path.ends_with(".whl") {
        let bytes = ctx
            .fs
            .read(path)
            .map_err(|e| PackageError::Io(format!("{path}: {e}")))?;
        (path.rsplit('/').next().unwrap_or(path).to_owned(), bytes)
    } else {
        let dir = if path.ends_with(".tar.gz") || path.ends_with(".zip") {
            let bytes = ctx
                .fs
                .read(path)
                .map_err(|e| PackageError::Io(format!("{path}: {e}")))?;
            frontend.unpack_sdist(path.rsplit('/').next().unwrap_or(path), &bytes)?
        } else {
            path.clone()
        };
        let kind = if project.editable {
            BuildKind::Editable
        } else {
            BuildKind::Wheel
        };
        let built = frontend.build(&dir, kind, &scratch_dir("local"))?;
        (built.file, built.bytes)
    };
    let metadata = wheel::wheel_metadata(&file, &bytes)?;
    let (name, version) = name_version(&metadata);
    let pin = Pin {
        name: normalize_name(&name),
        version,
        file,
        url: format!("file://{path}"),
        sha256: crate::digest::sha256_hex(&bytes),
    };
    Ok((pin, bytes))
}

/// `Name` and `Version` of core metadata.
pub fn name_version(metadata: &str) -> (String, String) {
    let field = |key: &str| {
        metadata
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    (field("Name:"), field("Version:"))
}

/// `Requires-Dist` of core metadata for the given extras (the markers are the
/// resolver's business, except `extra`, which only the asker knows).
fn requires_dist(metadata: &str, extras: &[String]) -> Vec<String> {
    metadata
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("Requires-Dist:"))
        .map(str::trim)
        .filter_map(|req| with_extras(req, extras))
        .collect()
}

/// `requirement` with the `extra == …` parts its asker's `extras` satisfy taken out of its
/// marker; the rest of the marker stays for the resolver (which evaluates it with no extras,
/// so a requirement of an extra nobody asked for drops out there).
fn with_extras(requirement: &str, extras: &[String]) -> Option<String> {
    use std::str::FromStr;
    let mut parsed =
        pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(requirement).ok()?;
    let extras: Vec<pep508_rs::ExtraName> = extras
        .iter()
        .filter_map(|e| pep508_rs::ExtraName::from_str(e).ok())
        .collect();
    parsed.marker = parsed.marker.simplify_extras(&extras);
    Some(parsed.to_string())
}

/// pip's hash-checking mode: with `--require-hashes` (or any `--hash`), every file must
/// be one of the hashes given for its project.
fn check_hashes(asked: &Asked, pins: &[Pin]) -> Result<(), PackageError> {
    let checking = asked.require_hashes || !asked.hashes.is_empty();
    if !checking {
        return Ok(());
    }
    for pin in pins {
        match asked.hashes.get(&pin.name) {
            Some(allowed) if allowed.contains(&pin.sha256) => {}
            Some(allowed) => {
                return Err(PackageError::HashMismatch {
                    file: pin.file.clone(),
                    expected: allowed.iter().cloned().collect::<Vec<_>>().join(" or "),
                    actual: pin.sha256.clone(),
                });
            }
            None => {
                return Err(PackageError::BadRequirement {
                    requirement: pin.name.clone(),
                    reason: "hash-checking mode: every requirement needs --hash, and this \
                             dependency has none"
                        .into(),
                });
            }
        }
    }
    Ok(())
}

/// `pip download -d DIR` / `pip wheel -w DIR`: the resolved files (wheels built from
/// sdists for `wheel`) written into a guest directory.
pub fn download(
    ctx: &PipContext<'_>,
    options: &ResolveOptions,
    dest: &str,
    wheels: bool,
) -> Result<Vec<String>, PackageError> {
    let asked = ctx.gather(options)?;
    let client = ctx.client(&asked.index)?;
    let (local_requirements, local_wheels) = build_locals(ctx, &client, &asked, options)?;
    let mut files: Vec<(String, Vec<u8>)> = local_wheels
        .into_iter()
        .map(|(pin, bytes)| (pin.file, bytes))
        .collect();
    let mut requirements: Vec<String> = asked.named.iter().map(|l| l.text.clone()).collect();
    requirements.extend(local_requirements);
    let request = request_for(ctx, &asked, options, requirements);
    let pins = resolve_request(ctx, &client, &request)?;
    check_hashes(&asked, &pins)?;
    for pin in &pins {
        if wheels && !pin.file.ends_with(".whl") {
            let bytes = built_wheel(ctx, &client, pin, 0)?;
            let name =
                wheel::wheel_file_name(&pin.file, &bytes).unwrap_or_else(|_| pin.file.clone());
            files.push((name, bytes));
        } else {
            files.push((pin.file.clone(), client.read(pin)?));
        }
    }
    let path = normalize(ctx.cwd, dest);
    let dir = super::venv::create_guest_dir(&ctx.runner.layout, &path)
        .map_err(|e| PackageError::Io(format!("{path}: {e}")))?;
    let mut written = Vec::new();
    for (name, bytes) in files {
        dir.write(&name, &bytes)
            .map_err(|e| PackageError::Io(format!("{path}/{name}: {e}")))?;
        written.push(format!("{path}/{name}"));
    }
    ctx.packages.note_used(&pins);
    Ok(written)
}

/// `python -m build`: the project in `srcdir` built into `outdir` as each of `kinds`
/// says (an sdist, then a wheel, as pypa/build does). Returns the files' names.
pub fn build_project(
    ctx: &PipContext<'_>,
    srcdir: &str,
    outdir: &str,
    kinds: &[BuildKind],
    no_isolation: bool,
) -> Result<Vec<String>, PackageError> {
    let client = ctx.client(&PipIndexOptions::default())?;
    let build_env = Isolated {
        ctx,
        client: &client,
        depth: 0,
    };
    let frontend = frontend(ctx, &build_env, !no_isolation);
    let mut files = Vec::new();
    for kind in kinds {
        let built = frontend.build(srcdir, *kind, outdir)?;
        files.push(built.file);
    }
    Ok(files)
}

/// `pip check`: every installed project's requirements (for the guest's interpreter,
/// no extras) are installed at a version that satisfies them. One line per problem, as
/// pip words them.
pub fn check(target: &Target, python: Interpreter) -> Result<Vec<String>, PackageError> {
    use std::str::FromStr;
    let installed = wheel::installed_in(&target.root, &target.scheme)?;
    let env = resolve::guest_markers(python);
    let site = if target.scheme.site_packages.is_empty() {
        target.root.try_clone()
    } else {
        target.root.open_dir(&target.scheme.site_packages)
    }
    .map_err(|e| PackageError::Io(format!("{}: {e}", target.describe)))?;
    let mut problems = Vec::new();
    for project in &installed {
        let metadata = site
            .read_to_string(format!("{}/METADATA", project.dist_info))
            .unwrap_or_default();
        let requires = metadata
            .lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.strip_prefix("Requires-Dist:"))
            .map(str::trim);
        for text in requires {
            let Ok(requirement) = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(text)
            else {
                continue;
            };
            if !requirement.evaluate_markers(&env, &[]) {
                continue;
            }
            let wanted = normalize_name(requirement.name.as_ref());
            let about = format!("{} {}", project.name, project.version);
            match installed.iter().find(|p| p.normalized == wanted) {
                None => problems.push(format!(
                    "{about} requires {}, which is not installed.",
                    requirement.name
                )),
                Some(dep) => {
                    let Some(pep508_rs::VersionOrUrl::VersionSpecifier(spec)) =
                        &requirement.version_or_url
                    else {
                        continue;
                    };
                    let satisfied =
                        pep440_rs::Version::from_str(&dep.version).is_ok_and(|v| spec.contains(&v));
                    if !satisfied {
                        problems.push(format!(
                            "{about} has requirement {}{spec}, but you have {} {}.",
                            requirement.name, dep.name, dep.version
                        ));
                    }
                }
            }
        }
    }
    Ok(problems)
}

/// pip's `--only-binary` / `--no-binary` values: comma-separated project names, `:all:`
/// or `:none:` (which clears what came before).
pub fn binary_set(values: &[String]) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for value in values {
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                ":none:" => set.clear(),
                ":all:" => {
                    set.insert(":all:".to_owned());
                }
                name => {
                    set.insert(normalize_name(name));
                }
            }
        }
    }
    set
}
