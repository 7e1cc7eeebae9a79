//! Resolution: which distribution files satisfy a set of PEP 508 requirements for the
//! guest's interpreter (the image's CPython on WASI). PubGrub (the `pubgrub` crate) over PEP 440
//! versions (`pep440_rs`), with PEP 508 requirements and markers (`pep508_rs`) evaluated
//! for the guest. An extra (`pkg[extra]`) is a package of its own that depends on `pkg` at
//! the same version and on the requirements the extra adds.

mod markers;
mod tags;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

use super::normalize_name;
use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{MarkerEnvironment, Requirement, VerbatimUrl, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyProvider, DerivationTree, External,
    PackageResolutionStatistics, PubGrubError, Ranges, Reporter,
};

use super::{DistFile, Index, Interpreter, PackageError, Pin, SdistMetadata};

pub use markers::guest_markers;
pub use tags::{GUEST_PLATFORM_TAG, WheelName, guest_tags, parse_sdist_name, parse_wheel_name};

/// What to resolve, as `pip install` spells it.
#[derive(Debug, Clone, Default)]
pub struct ResolveRequest {
    /// PEP 508 requirement strings (`pytest==8.3.4`, `attrs[tests]>=24`,
    /// `tomli; python_version < "3.11"`). Direct URLs are refused.
    pub requirements: Vec<String>,
    /// Constraints (`-c constraints.txt`): PEP 508 strings that narrow a project's versions
    /// only if something else requires the project; they never add one themselves.
    pub constraints: Vec<String>,
    /// A lock: a project named here resolves to exactly this file, and its name is never
    /// asked of the index (`Index::project`). Its dependencies come from its own metadata,
    /// read with `Index::wheel_metadata` / `SdistMetadata::sdist_metadata` on a `DistFile`
    /// made from the pin (`has_metadata: false`, so the index client reads the wheel, which
    /// is in the store by its sha256 on a rerun). When every requirement and dependency is
    /// locked, `Index::project` is not called at all.
    pub locked: Vec<Pin>,
    /// Already-installed projects: normalized name → version. The installed version is
    /// kept when it satisfies the requirements, unless `upgrade`.
    pub preferences: BTreeMap<String, String>,
    /// `--no-deps`: only the named requirements (and no dependencies of theirs).
    pub no_deps: bool,
    /// `--pre`: pre-releases are candidates. Without it a pre-release is chosen only when
    /// a requirement names one, or when nothing else matches.
    pub pre: bool,
    /// `--upgrade`: ignore `preferences`, take the newest versions.
    pub upgrade: bool,
    /// `--only-binary`: normalized project names that must come as wheels; the name
    /// `:all:` means every project (pip's spelling).
    pub only_binary: BTreeSet<String>,
    /// `--no-binary`: normalized project names that must come as sdists; `:all:` means all.
    pub no_binary: BTreeSet<String>,
    /// The guest's interpreter: the markers, wheel tags and `Requires-Python` of the
    /// resolution are its own.
    pub python: Interpreter,
}

/// The form of a chosen distribution file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistKind {
    /// A wheel: installed as it is.
    Wheel,
    /// A source distribution: built into a wheel (PEP 517, in the sandbox) first.
    Sdist,
}

/// One chosen project of a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The file to install (name normalized, version as the index spells it in the file).
    pub pin: Pin,
    pub kind: DistKind,
    /// Extras of this project that the resolution activated (normalized, sorted).
    pub extras: Vec<String>,
    /// Normalized names of the resolved projects this one depends on (its dependencies in
    /// this resolution, extras included).
    pub dependencies: Vec<String>,
    /// Whether a requirement of the request names this project itself.
    pub requested: bool,
    /// How the project came in, from the request down: the first entry is the requirement
    /// as the request wrote it (`pytest==8.3.4`), each further one says which resolved
    /// project required the next (`pytest 8.3.4 requires pluggy<2,>=1.5`). One shortest chain.
    pub chain: Vec<String>,
}

/// The outcome of `resolve`: one file per project, in install order (every project after
/// the projects it depends on; a dependency cycle is broken in a fixed, name-sorted way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    pub packages: Vec<Resolved>,
}

impl Resolution {
    /// The chosen files in install order.
    pub fn pins(&self) -> Vec<Pin> {
        self.packages.iter().map(|p| p.pin.clone()).collect()
    }

    /// The resolved project `name` (any spelling).
    pub fn get(&self, name: &str) -> Option<&Resolved> {
        let name = normalize_name(name);
        self.packages.iter().find(|p| p.pin.name == name)
    }
}

/// Resolves `request` against `index` for the guest's interpreter: one file per project
/// (a compatible wheel when there is one, else the sdist, whose metadata `sdists` builds).
/// Errors are one line: an unknown project, no matching version (naming the versions that
/// exist), a conflict (PubGrub's explanation), or `NeedsNative` for a project that has only
/// platform wheels and no source distribution.
pub fn resolve(
    index: &dyn Index,
    sdists: &dyn SdistMetadata,
    request: &ResolveRequest,
) -> Result<Resolution, PackageError> {
    let provider = Provider::new(index, sdists, request)?;
    match pubgrub::resolve(&provider, Pkg::Root, root_version()) {
        Ok(selected) => {
            provider.resolution(selected.into_iter().collect::<BTreeMap<Pkg, Version>>())
        }
        Err(error) => Err(provider.error(error)),
    }
}

fn root_version() -> Version {
    Version::new([0])
}

/// The version of the guest's interpreter that `Requires-Python` is checked against.
fn python_version(python: Interpreter) -> Version {
    Version::new([python.major, python.minor, python.micro].map(u64::from))
}

/// A package as PubGrub sees it: the request itself, a project, or a project's extra.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pkg {
    Root,
    Project(String),
    Extra(String, String),
}

/// How the request shows in PubGrub's explanations (its version, 0, is cut out).
const ROOT_NAME: &str = "the request";

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str(ROOT_NAME),
            Pkg::Project(name) => f.write_str(name),
            Pkg::Extra(name, extra) => write!(f, "{name}[{extra}]"),
        }
    }
}

impl Pkg {
    fn project(&self) -> Option<&str> {
        match self {
            Pkg::Root => None,
            Pkg::Project(name) | Pkg::Extra(name, _) => Some(name),
        }
    }
}

/// Every file of one project, by version (files whose names do not parse are left out).
struct Project {
    versions: BTreeMap<Version, Vec<DistFile>>,
}

/// What the resolver reads of a distribution's core metadata.
#[derive(Debug)]
struct Meta {
    requires_dist: Vec<Requirement<VerbatimUrl>>,
    requires_python: Option<VersionSpecifiers>,
}

/// Why no file of a version can be used.
enum Unusable {
    Yanked,
    RequiresPython(String),
    /// Only wheels for other platforms (one named) and no sdist.
    OnlyPlatformWheels(String),
    /// Files exist, but `--only-binary` / `--no-binary` rule them out.
    Excluded,
    NoFiles,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Yanked => f.write_str("yanked"),
            Unusable::RequiresPython(spec) => write!(f, "requires Python {spec}"),
            Unusable::OnlyPlatformWheels(_) => f.write_str("platform wheels only"),
            Unusable::Excluded => f.write_str("excluded by --only-binary/--no-binary"),
            Unusable::NoFiles => f.write_str("no usable files"),
        }
    }
}

type Chosen = (DistFile, DistKind);

struct Provider<'a> {
    index: &'a dyn Index,
    sdists: &'a dyn SdistMetadata,
    request: &'a ResolveRequest,
    env: MarkerEnvironment,
    accepted: Vec<(String, String, String)>,
    python: Version,
    /// The request's requirements that apply to the guest, with their text.
    root: Vec<(String, Requirement<VerbatimUrl>)>,
    constraints: HashMap<String, Ranges<Version>>,
    /// Locked files by project: newest version first (a wheel before an sdist of the same
    /// version). A lock holds several versions of a project when builds of different
    /// environments (a build backend's isolated one, the user's) chose differently.
    locked: HashMap<String, Vec<(Version, Pin)>>,
    preferences: HashMap<String, Version>,
    projects: RefCell<HashMap<String, Rc<Project>>>,
    metadata: RefCell<HashMap<(String, Version), Rc<Meta>>>,
    chosen: RefCell<HashMap<(String, Version), Chosen>>,
    /// Projects met whose newest version in range had only platform wheels: that version
    /// and an example of the wheels' tags.
    native: RefCell<HashMap<String, (Version, String)>>,
    /// Projects a requirement names a pre-release of (so pre-releases are candidates).
    explicit_pre: RefCell<HashSet<String>>,
    /// The dependencies given to PubGrub, per package and version, with the requirement
    /// that made each (for the chains of the resolution).
    edges: RefCell<Edges>,
    discovered: RefCell<HashMap<Pkg, usize>>,
}

/// Per package and version: each dependency and the requirement that made it.
type Edges = HashMap<(Pkg, Version), Vec<(Pkg, String)>>;

fn parse_requirement(text: &str) -> Result<Requirement<VerbatimUrl>, PackageError> {
    let requirement =
        Requirement::<VerbatimUrl>::from_str(text).map_err(|e| PackageError::BadRequirement {
            requirement: text.to_string(),
            reason: first_line(&e.to_string()),
        })?;
    if let Some(VersionOrUrl::Url(_)) = requirement.version_or_url {
        return Err(PackageError::BadRequirement {
            requirement: text.to_string(),
            reason: "direct URL requirements are not supported: name a version from the index"
                .into(),
        });
    }
    Ok(requirement)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

/// The versions a requirement allows.
fn requirement_range(requirement: &Requirement<VerbatimUrl>) -> Ranges<Version> {
    match &requirement.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => Ranges::from(specifiers.clone()),
        _ => Ranges::full(),
    }
}

/// Whether a requirement names a pre-release (`>=2.0b1`), which makes pre-releases
/// candidates for its project (PEP 440).
fn names_prerelease(requirement: &Requirement<VerbatimUrl>) -> bool {
    match &requirement.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
            specifiers.iter().any(|s| s.version().any_prerelease())
        }
        _ => false,
    }
}

fn in_set(set: &BTreeSet<String>, name: &str) -> bool {
    set.contains(name) || set.contains(":all:")
}

fn kind_of(file: &str) -> DistKind {
    if file.ends_with(".whl") {
        DistKind::Wheel
    } else {
        DistKind::Sdist
    }
}

/// Reads the fields the resolver needs from core metadata (RFC 822 style headers; the
/// body after the first empty line is the description and is not read).
fn parse_metadata(file: &str, text: &str) -> Result<Meta, PackageError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let bad = |reason: String| PackageError::BadDistribution {
        file: file.to_string(),
        reason,
    };
    let mut meta = Meta {
        requires_dist: Vec::new(),
        requires_python: None,
    };
    for (key, value) in headers {
        match key.as_str() {
            "requires-dist" => {
                let requirement = Requirement::<VerbatimUrl>::from_str(&value).map_err(|e| {
                    bad(format!(
                        "invalid Requires-Dist {value:?}: {}",
                        first_line(&e.to_string())
                    ))
                })?;
                meta.requires_dist.push(requirement);
            }
            "requires-python" => {
                // pip ignores a Requires-Python it cannot parse; so do we.
                meta.requires_python = VersionSpecifiers::from_str(&value).ok();
            }
            _ => {}
        }
    }
    Ok(meta)
}

impl<'a> Provider<'a> {
    fn new(
        index: &'a dyn Index,
        sdists: &'a dyn SdistMetadata,
        request: &'a ResolveRequest,
    ) -> Result<Self, PackageError> {
        let env = guest_markers(request.python);
        let mut explicit_pre = HashSet::new();
        let mut root = Vec::new();
        for text in &request.requirements {
            let requirement = parse_requirement(text)?;
            if requirement.evaluate_markers(&env, &[]) {
                if names_prerelease(&requirement) {
                    explicit_pre.insert(requirement.name.to_string());
                }
                root.push((text.clone(), requirement));
            }
        }
        let mut constraints: HashMap<String, Ranges<Version>> = HashMap::new();
        for text in &request.constraints {
            let requirement = parse_requirement(text)?;
            if requirement.evaluate_markers(&env, &[]) {
                let range = constraints
                    .entry(requirement.name.to_string())
                    .or_insert_with(Ranges::full);
                *range = range.intersection(&requirement_range(&requirement));
                if names_prerelease(&requirement) {
                    explicit_pre.insert(requirement.name.to_string());
                }
            }
        }
        let mut locked: HashMap<String, Vec<(Version, Pin)>> = HashMap::new();
        for pin in &request.locked {
            let version = Version::from_str(&pin.version).map_err(|e| {
                PackageError::Lock(format!(
                    "{} {}: invalid version: {}",
                    pin.name,
                    pin.version,
                    first_line(&e.to_string())
                ))
            })?;
            locked
                .entry(normalize_name(&pin.name))
                .or_default()
                .push((version, pin.clone()));
        }
        for pins in locked.values_mut() {
            pins.sort_by(|(va, pa), (vb, pb)| {
                vb.cmp(va)
                    .then_with(|| pb.file.ends_with(".whl").cmp(&pa.file.ends_with(".whl")))
            });
        }
        let preferences = request
            .preferences
            .iter()
            .filter_map(|(name, version)| {
                Some((normalize_name(name), Version::from_str(version).ok()?))
            })
            .collect();
        Ok(Provider {
            index,
            sdists,
            request,
            env,
            accepted: guest_tags(request.python),
            python: python_version(request.python),
            root,
            constraints,
            locked,
            preferences,
            projects: RefCell::default(),
            metadata: RefCell::default(),
            chosen: RefCell::default(),
            native: RefCell::default(),
            explicit_pre: RefCell::new(explicit_pre),
            edges: RefCell::default(),
            discovered: RefCell::default(),
        })
    }

    /// The project's files, asked of the index once per resolution.
    fn project(&self, name: &str) -> Result<Rc<Project>, PackageError> {
        if let Some(project) = self.projects.borrow().get(name) {
            return Ok(project.clone());
        }
        let mut versions: BTreeMap<Version, Vec<DistFile>> = BTreeMap::new();
        for file in self.index.project(name)? {
            let version = match parse_wheel_name(&file.file) {
                Some(wheel) if wheel.name == name => Some(wheel.version),
                Some(_) => None,
                None => parse_sdist_name(&file.file, name),
            };
            if let Some(version) = version {
                versions.entry(version).or_default().push(file);
            }
        }
        let project = Rc::new(Project { versions });
        self.projects
            .borrow_mut()
            .insert(name.to_string(), project.clone());
        Ok(project)
    }

    /// The file the guest would install of one version: the best compatible wheel, else
    /// the sdist (`.tar.gz` before `.zip`).
    fn pick_file(
        &self,
        name: &str,
        files: &[DistFile],
        allow_yanked: bool,
    ) -> Result<Chosen, Unusable> {
        if files.is_empty() {
            return Err(Unusable::NoFiles);
        }
        let unyanked: Vec<&DistFile> = files.iter().filter(|f| allow_yanked || !f.yanked).collect();
        if unyanked.is_empty() {
            return Err(Unusable::Yanked);
        }
        let fitting: Vec<&DistFile> = unyanked
            .iter()
            .copied()
            .filter(|f| {
                f.requires_python.as_deref().is_none_or(|spec| {
                    VersionSpecifiers::from_str(spec).map_or(true, |s| s.contains(&self.python))
                })
            })
            .collect();
        if fitting.is_empty() {
            let spec = unyanked[0].requires_python.clone().unwrap_or_default();
            return Err(Unusable::RequiresPython(spec));
        }
        let no_binary =
            in_set(&self.request.no_binary, name) && !self.request.only_binary.contains(name);
        let only_binary =
            in_set(&self.request.only_binary, name) && !self.request.no_binary.contains(name);
        let mut wheels = Vec::new();
        let mut platform_wheel = None;
        for file in &fitting {
            if let Some(wheel) = parse_wheel_name(&file.file) {
                match tags::wheel_rank(&wheel, &self.accepted) {
                    Some(rank) => wheels.push((rank, *file)),
                    None => platform_wheel = platform_wheel.or(Some(*file)),
                }
            }
        }
        wheels.sort_by_key(|(rank, f)| (*rank, f.file.clone()));
        if !no_binary && let Some((_, wheel)) = wheels.first() {
            return Ok(((*wheel).clone(), DistKind::Wheel));
        }
        let sdist_rank = |f: &DistFile| {
            if f.file.ends_with(".tar.gz") {
                0
            } else if f.file.ends_with(".zip") {
                1
            } else {
                2
            }
        };
        let mut sdists: Vec<&DistFile> = fitting
            .iter()
            .copied()
            .filter(|f| parse_sdist_name(&f.file, name).is_some())
            .collect();
        sdists.sort_by_key(|f| (sdist_rank(f), f.file.clone()));
        if !only_binary && let Some(sdist) = sdists.first() {
            return Ok(((*sdist).clone(), DistKind::Sdist));
        }
        match platform_wheel {
            Some(file) if wheels.is_empty() && sdists.is_empty() => {
                let tags = file
                    .file
                    .strip_suffix(".whl")
                    .unwrap_or(&file.file)
                    .rsplitn(4, '-')
                    .take(3)
                    .collect::<Vec<_>>();
                let tag = tags.into_iter().rev().collect::<Vec<_>>().join("-");
                Err(Unusable::OnlyPlatformWheels(tag))
            }
            _ if !wheels.is_empty() || !sdists.is_empty() => Err(Unusable::Excluded),
            _ => Err(Unusable::NoFiles),
        }
    }

    /// The newest version of `name` in `range` that has a usable file (see `ResolveRequest`
    /// for pre-releases, preferences and locks).
    fn choose(&self, name: &str, range: &Ranges<Version>) -> Result<Option<Version>, PackageError> {
        if let Some(pins) = self.locked.get(name) {
            return Ok(pins
                .iter()
                .map(|(version, _)| version)
                .find(|version| range.contains(version))
                .cloned());
        }
        let project = self.project(name)?;
        let exact = range.as_singleton();
        let remember = |version: &Version, chosen: Chosen| {
            self.chosen
                .borrow_mut()
                .insert((name.to_string(), version.clone()), chosen);
        };
        if !self.request.upgrade
            && let Some(preferred) = self.preferences.get(name)
            && range.contains(preferred)
            && let Some(files) = project.versions.get(preferred)
            && let Ok(chosen) = self.pick_file(name, files, exact == Some(preferred))
        {
            remember(preferred, chosen);
            return Ok(Some(preferred.clone()));
        }
        let pre_ok = self.request.pre || self.explicit_pre.borrow().contains(name);
        let mut prerelease: Option<(&Version, Chosen)> = None;
        for (version, files) in project.versions.iter().rev() {
            if !range.contains(version) {
                continue;
            }
            match self.pick_file(name, files, exact == Some(version)) {
                Ok(chosen) => {
                    if version.any_prerelease() && !pre_ok {
                        if prerelease.is_none() {
                            prerelease = Some((version, chosen));
                        }
                        continue;
                    }
                    remember(version, chosen);
                    return Ok(Some(version.clone()));
                }
                Err(Unusable::OnlyPlatformWheels(tag)) => {
                    let mut native = self.native.borrow_mut();
                    let newer = native.get(name).is_none_or(|(v, _)| v < version);
                    if newer {
                        native.insert(name.to_string(), (version.clone(), tag));
                    }
                }
                Err(_) => {}
            }
        }
        // A pre-release only when nothing else matches.
        Ok(prerelease.map(|(version, chosen)| {
            remember(version, chosen);
            version.clone()
        }))
    }

    /// The core metadata of `name` `version`, read once per resolution.
    fn meta(&self, name: &str, version: &Version) -> Result<Rc<Meta>, PackageError> {
        let key = (name.to_string(), version.clone());
        if let Some(meta) = self.metadata.borrow().get(&key) {
            return Ok(meta.clone());
        }
        let (file, kind) = match self.locked_pin(name, version) {
            Some(pin) => (DistFile::from(pin), kind_of(&pin.file)),
            None => self.chosen.borrow().get(&key).cloned().ok_or_else(|| {
                PackageError::Unresolvable(format!("{name} {version} was never chosen"))
            })?,
        };
        let text = match kind {
            DistKind::Wheel => self.index.wheel_metadata(&file)?,
            DistKind::Sdist => self.sdists.sdist_metadata(&file)?,
        };
        let meta = Rc::new(parse_metadata(&file.file, &text)?);
        self.metadata.borrow_mut().insert(key, meta.clone());
        Ok(meta)
    }

    /// Adds `requirement` to `deps`: its project, and a package per extra it asks for.
    fn add_requirement(
        &self,
        deps: &mut BTreeMap<Pkg, Ranges<Version>>,
        edges: &mut Vec<(Pkg, String)>,
        requirement: &Requirement<VerbatimUrl>,
        from: &Pkg,
        label: String,
    ) {
        let name = requirement.name.to_string();
        let mut range = requirement_range(requirement);
        if let Some(constraint) = self.constraints.get(&name) {
            range = range.intersection(constraint);
        }
        if names_prerelease(requirement) {
            self.explicit_pre.borrow_mut().insert(name.clone());
        }
        let mut targets = Vec::new();
        if from.project() != Some(name.as_str()) {
            targets.push(Pkg::Project(name.clone()));
        }
        for extra in &requirement.extras {
            let target = Pkg::Extra(name.clone(), extra.to_string());
            if &target != from {
                targets.push(target);
            }
        }
        for target in targets {
            let entry = deps.entry(target.clone()).or_insert_with(Ranges::full);
            *entry = entry.intersection(&range);
            edges.push((target, label.clone()));
        }
    }

    fn dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>, PackageError> {
        let mut deps = BTreeMap::new();
        let mut edges = Vec::new();
        match package {
            Pkg::Root => {
                for (text, requirement) in &self.root {
                    self.add_requirement(&mut deps, &mut edges, requirement, package, text.clone());
                }
            }
            Pkg::Project(name) => {
                if !self.request.no_deps {
                    let meta = self.meta(name, version)?;
                    if let Some(spec) = &meta.requires_python
                        && !spec.contains(&self.python)
                    {
                        return Ok(Dependencies::Unavailable(format!(
                            "(it requires Python {spec})"
                        )));
                    }
                    for requirement in &meta.requires_dist {
                        if requirement.evaluate_markers(&self.env, &[]) {
                            let label = format!("{package} {version} requires {requirement}");
                            self.add_requirement(
                                &mut deps,
                                &mut edges,
                                requirement,
                                package,
                                label,
                            );
                        }
                    }
                }
            }
            Pkg::Extra(name, extra) => {
                let base = Pkg::Project(name.clone());
                deps.insert(base.clone(), Ranges::singleton(version.clone()));
                edges.push((base, format!("{package} {version} is {name} {version}")));
                if !self.request.no_deps {
                    let meta = self.meta(name, version)?;
                    let extra_name = pep508_rs::ExtraName::from_str(extra).map_err(|e| {
                        PackageError::BadRequirement {
                            requirement: package.to_string(),
                            reason: e.to_string(),
                        }
                    })?;
                    for requirement in &meta.requires_dist {
                        // Only what the extra adds: the rest comes with the project itself.
                        if requirement
                            .evaluate_markers(&self.env, std::slice::from_ref(&extra_name))
                            && !requirement.evaluate_markers(&self.env, &[])
                        {
                            let label = format!("{package} {version} requires {requirement}");
                            self.add_requirement(
                                &mut deps,
                                &mut edges,
                                requirement,
                                package,
                                label,
                            );
                        }
                    }
                }
            }
        }
        self.edges
            .borrow_mut()
            .insert((package.clone(), version.clone()), edges);
        Ok(Dependencies::Available(deps.into_iter().collect()))
    }

    /// The locked file of `name` `version`, if the lock has that version.
    fn locked_pin(&self, name: &str, version: &Version) -> Option<&Pin> {
        self.locked
            .get(name)?
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, pin)| pin)
    }

    /// The chosen file of a resolved project.
    fn file_of(&self, name: &str, version: &Version) -> Option<Chosen> {
        if let Some(pin) = self.locked_pin(name, version) {
            return Some((DistFile::from(pin), kind_of(&pin.file)));
        }
        self.chosen
            .borrow()
            .get(&(name.to_string(), version.clone()))
            .cloned()
    }

    fn resolution(&self, selected: BTreeMap<Pkg, Version>) -> Result<Resolution, PackageError> {
        let mut projects: BTreeMap<String, Version> = BTreeMap::new();
        let mut extras: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (package, version) in &selected {
            match package {
                Pkg::Root => {}
                Pkg::Project(name) => {
                    projects.insert(name.clone(), version.clone());
                }
                Pkg::Extra(name, extra) => {
                    extras.entry(name.clone()).or_default().push(extra.clone())
                }
            }
        }
        // Project-level edges: (from project or None for the request) → (to, label).
        let edges = self.edges.borrow();
        let mut graph: BTreeMap<Option<String>, Vec<(String, String)>> = BTreeMap::new();
        for (package, version) in &selected {
            let Some(list) = edges.get(&(package.clone(), version.clone())) else {
                continue;
            };
            let from = package.project().map(str::to_string);
            for (target, label) in list {
                let Some(to) = target.project() else { continue };
                if from.as_deref() == Some(to) || !projects.contains_key(to) {
                    continue;
                }
                graph
                    .entry(from.clone())
                    .or_default()
                    .push((to.to_string(), label.clone()));
            }
        }
        // One shortest chain per project, from the request down.
        let mut chains: HashMap<String, Vec<String>> = HashMap::new();
        let mut queue = VecDeque::from([(None::<String>, Vec::<String>::new())]);
        while let Some((from, chain)) = queue.pop_front() {
            for (to, label) in graph.get(&from).into_iter().flatten() {
                if chains.contains_key(to) {
                    continue;
                }
                let mut next = chain.clone();
                next.push(label.clone());
                chains.insert(to.clone(), next.clone());
                queue.push_back((Some(to.clone()), next));
            }
        }
        let requested: HashSet<&str> = graph
            .get(&None)
            .into_iter()
            .flatten()
            .map(|(to, _)| to.as_str())
            .collect();
        let mut dependencies: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for name in projects.keys() {
            let deps = graph
                .get(&Some(name.clone()))
                .into_iter()
                .flatten()
                .map(|(to, _)| to.as_str())
                .collect();
            dependencies.insert(name, deps);
        }
        // Install order: a project after its dependencies; a cycle is broken at the
        // smallest name.
        let mut order = Vec::new();
        let mut placed: HashSet<&str> = HashSet::new();
        while order.len() < projects.len() {
            let ready = dependencies
                .iter()
                .find(|(name, deps)| {
                    !placed.contains(*name) && deps.iter().all(|d| placed.contains(d))
                })
                .or_else(|| {
                    dependencies
                        .iter()
                        .find(|(name, _)| !placed.contains(*name))
                })
                .map(|(name, _)| *name)
                .expect("a project is left to place");
            placed.insert(ready);
            order.push(ready);
        }
        let mut packages = Vec::new();
        for name in order {
            let version = &projects[name];
            let (file, kind) = self.file_of(name, version).ok_or_else(|| {
                PackageError::Unresolvable(format!("{name} {version}: no file was chosen"))
            })?;
            let pin = match self.locked_pin(name, version) {
                Some(pin) => Pin {
                    name: name.to_string(),
                    ..pin.clone()
                },
                None => Pin {
                    name: name.to_string(),
                    version: version.to_string(),
                    file: file.file,
                    url: file.url,
                    sha256: file.sha256,
                },
            };
            let mut extras = extras.get(name).cloned().unwrap_or_default();
            extras.sort();
            packages.push(Resolved {
                pin,
                kind,
                extras,
                dependencies: dependencies[name].iter().map(|d| d.to_string()).collect(),
                requested: requested.contains(name),
                chain: chains.get(name).cloned().unwrap_or_default(),
            });
        }
        Ok(Resolution { packages })
    }

    /// The versions of a project, newest first, each with why it cannot be used if so.
    fn describe_versions(&self, name: &str) -> String {
        if let Some(pins) = self.locked.get(name) {
            let versions: Vec<String> = pins.iter().map(|(v, _)| v.to_string()).collect();
            return format!("{name} is locked to {}", versions.join(", "));
        }
        let Some(project) = self.projects.borrow().get(name).cloned() else {
            return String::new();
        };
        if project.versions.is_empty() {
            return format!("{name} has no installable files");
        }
        const SHOWN: usize = 12;
        let mut shown: Vec<String> = project
            .versions
            .iter()
            .rev()
            .take(SHOWN)
            .map(
                |(version, files)| match self.pick_file(name, files, false) {
                    Ok(_) => version.to_string(),
                    Err(why) => format!("{version} ({why})"),
                },
            )
            .collect();
        if project.versions.len() > SHOWN {
            shown.push(format!("… {} more", project.versions.len() - SHOWN));
        }
        format!("versions of {name}: {}", shown.join(", "))
    }

    fn error(&self, error: PubGrubError<Self>) -> PackageError {
        match error {
            PubGrubError::NoSolution(mut tree) => {
                let mut missing = BTreeSet::new();
                no_versions(&tree, &mut missing);
                for name in &missing {
                    if let Some((version, tag)) = self.native.borrow().get(name) {
                        return PackageError::NeedsNative {
                            name: name.clone(),
                            version: version.to_string(),
                            reason: format!(
                                "only platform wheels (e.g. {tag}) and no source distribution; \
                                 native code cannot run in the WASI sandbox"
                            ),
                        };
                    }
                }
                tree.collapse_no_versions();
                let report = DefaultStringReporter::report(&tree);
                let mut text = report
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .replace(
                        &format!("{ROOT_NAME} {} ", root_version()),
                        &format!("{ROOT_NAME} "),
                    )
                    .replace(
                        &format!("{ROOT_NAME} is forbidden"),
                        "the requirements cannot all be met",
                    );
                for name in &missing {
                    let versions = self.describe_versions(name);
                    if !versions.is_empty() {
                        text.push_str(&format!(" ({versions})"));
                    }
                }
                PackageError::Unresolvable(text)
            }
            PubGrubError::ErrorRetrievingDependencies { source, .. }
            | PubGrubError::ErrorChoosingVersion { source, .. }
            | PubGrubError::ErrorInShouldCancel(source) => source,
        }
    }
}

/// The projects the derivation tree says have no version in some range.
fn no_versions(tree: &DerivationTree<Pkg, Ranges<Version>, String>, out: &mut BTreeSet<String>) {
    match tree {
        DerivationTree::External(External::NoVersions(package, _)) => {
            if let Some(name) = package.project() {
                out.insert(name.to_string());
            }
        }
        DerivationTree::External(_) => {}
        DerivationTree::Derived(derived) => {
            no_versions(&derived.cause1, out);
            no_versions(&derived.cause2, out);
        }
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = PackageError;
    /// Exact pins first, then packages that conflicted most, then in order of discovery.
    type Priority = (bool, u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let mut discovered = self.discovered.borrow_mut();
        let next = discovered.len();
        let order = *discovered.entry(package.clone()).or_insert(next);
        (
            range.as_singleton().is_some(),
            stats.conflict_count(),
            Reverse(order),
        )
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, PackageError> {
        match package.project() {
            None => Ok(Some(root_version())),
            Some(name) => self.choose(name, range),
        }
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>, PackageError> {
        self.dependencies(package, version)
    }
}

#[cfg(test)]
mod tests;
