//! Installing wheels (PEP 427 / PEP 491, the packaging guide's "binary distribution
//! format") into the guest, through capabilities: every file of the wheel is checked
//! against its `RECORD` hash, no path may leave the target, `.data/` directories go where
//! the scheme says, console and GUI scripts are written as `#!` launchers for the image's
//! python, and `INSTALLER` and a new `RECORD` are written. A previous version of the same
//! project is removed first, by its `RECORD`.
//!
//! An install is atomic from the user's view: the wheel is unpacked into a staging
//! directory inside the target, then renamed into place; a failure (a bad zip, a hash
//! mismatch, a path that escapes) removes the staging directory and leaves the previously
//! installed version as it was.

use super::normalize_name;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Cursor, Read, Write};
use std::os::unix::fs::PermissionsExt;

use cap_std::fs::{Dir, DirBuilderExt, OpenOptionsExt};
use sha2::{Digest, Sha256};
use zip::ZipArchive;

use super::{Interpreter, PackageError, Pin};

/// Console scripts below the guest home; the build's `PATH` includes `/root/.local/bin`.
pub const USER_SCRIPTS: &str = ".local/bin";
/// The guest path of the image's python, for script shebangs.
pub const GUEST_PYTHON: &str = "/opt/runtimes/python/bin/python3";
/// What `INSTALLER` says.
pub const INSTALLER: &str = "wasmbuild";

/// Where the parts of a wheel go, each relative to the target directory handed to
/// [`install_wheel_to`] (the install scheme of the `sysconfig` module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    /// `purelib` and `platlib` (and the wheel's root).
    pub site_packages: String,
    /// `scripts` and generated entry-point launchers.
    pub scripts: String,
    /// `data` (the prefix).
    pub data: String,
    /// `headers`; the project's name is appended.
    pub headers: String,
}

impl Scheme {
    /// The user scheme of `python` below the guest home (`pip install --user`, what builds
    /// use; `sitecustomize` adds its site-packages): for CPython 3.12,
    /// `.local/lib/python3.12/site-packages`, `.local/bin`, `.local`,
    /// `.local/include/python3.12`.
    pub fn user(python: Interpreter) -> Scheme {
        Scheme {
            site_packages: format!(".local/{}", python.site_packages()),
            scripts: USER_SCRIPTS.into(),
            data: ".local".into(),
            headers: format!(".local/include/{}", python.name()),
        }
    }

    /// A flat directory as `pip install --target` makes it: packages at its root, scripts
    /// in `bin/`, data at its root, headers in `include/`. Build environments use it.
    pub fn target() -> Scheme {
        Scheme {
            site_packages: String::new(),
            scripts: "bin".into(),
            data: String::new(),
            headers: "include".into(),
        }
    }
}

/// Choices of one install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Interpreter named in the `#!` line of scripts (a guest path).
    pub python: String,
    /// What `INSTALLER` says.
    pub installer: String,
    /// Write `REQUESTED` (PEP 376): the user asked for this project by name.
    pub requested: bool,
    /// Contents of `direct_url.json` (PEP 610), for local and editable installs.
    pub direct_url: Option<String>,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            python: GUEST_PYTHON.into(),
            installer: INSTALLER.into(),
            requested: false,
            direct_url: None,
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledDist {
    /// The project name as the wheel's `METADATA` spells it.
    pub name: String,
    pub version: String,
    /// The `.dist-info` directory, relative to site-packages.
    pub dist_info: String,
    /// Every file written, relative to the target directory (the home for the user scheme).
    pub files: Vec<String>,
    /// Script names written to the scripts directory.
    pub scripts: Vec<String>,
    /// The version removed first, if another one was installed.
    pub replaced: Option<String>,
}

/// What an uninstall removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedDist {
    pub name: String,
    pub version: String,
    /// Files removed, relative to the target directory.
    pub files: Vec<String>,
}

/// One installed project, from its `.dist-info/METADATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledProject {
    /// As `METADATA` spells it (`PyYAML`).
    pub name: String,
    /// PEP 503-normalized (`pyyaml`).
    pub normalized: String,
    pub version: String,
    /// The `.dist-info` directory, relative to site-packages.
    pub dist_info: String,
}

/// Installs a wheel into `root` laid out as `scheme` says.
pub fn install_wheel_to(
    root: &Dir,
    scheme: &Scheme,
    wheel: &[u8],
    pin: &Pin,
    options: &InstallOptions,
) -> Result<InstalledDist, PackageError> {
    let staged = stage(root, scheme, wheel, pin, options)?;
    commit(root, scheme, staged)
}

/// Installs several wheels at once: each is checked and unpacked in parallel, and nothing
/// is put in place unless all of them are good (then each replaces its previous version).
pub fn install_wheels_to(
    root: &Dir,
    scheme: &Scheme,
    wheels: &[(&Pin, &[u8])],
    options: &InstallOptions,
) -> Result<Vec<InstalledDist>, PackageError> {
    use rayon::prelude::*;
    let mut seen = HashSet::new();
    for (pin, _) in wheels {
        if !seen.insert(normalize_name(&pin.name)) {
            return Err(PackageError::BadDistribution {
                file: pin.file.clone(),
                reason: format!("{} is asked for twice in one install", pin.name),
            });
        }
    }
    // Staged wheels clean up after themselves when dropped, so an error of one drops all.
    let staged: Vec<Staged> = wheels
        .par_iter()
        .map(|(pin, bytes)| stage(root, scheme, bytes, pin, options))
        .collect::<Result<_, _>>()?;
    let mut done = Vec::with_capacity(staged.len());
    for staged in staged {
        done.push(commit(root, scheme, staged)?);
    }
    Ok(done)
}

/// Removes project `name` (any spelling) from `root`, laid out as `scheme` says, by its
/// `RECORD`; `Ok(None)` when it is not installed.
pub fn uninstall_from(
    root: &Dir,
    scheme: &Scheme,
    name: &str,
) -> Result<Option<RemovedDist>, PackageError> {
    let wanted = normalize_name(name);
    let previous: Vec<InstalledProject> = installed_in(root, scheme)?
        .into_iter()
        .filter(|p| p.normalized == wanted)
        .collect();
    let Some(first) = previous.first() else {
        return Ok(None);
    };
    let mut removed = RemovedDist {
        name: first.name.clone(),
        version: first.version.clone(),
        files: Vec::new(),
    };
    let mut dirs = BTreeSet::new();
    for project in &previous {
        for file in owned_files(root, scheme, project) {
            match root.remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&file, e)),
            }
            if let Some((parent, _)) = file.rsplit_once('/') {
                dirs.insert(parent.to_owned());
            }
            removed.files.push(file);
        }
        let dist_info = join(&scheme.site_packages, &project.dist_info);
        // Whatever the RECORD did not list (a RECORD missing, files added later).
        if let Err(e) = root.remove_dir_all(&dist_info)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(io_error(&dist_info, e));
        }
    }
    remove_empty_dirs(root, scheme, dirs);
    Ok(Some(removed))
}

/// Every project installed in `root`, laid out as `scheme` says, sorted by normalized name.
pub fn installed_in(root: &Dir, scheme: &Scheme) -> Result<Vec<InstalledProject>, PackageError> {
    let site = if scheme.site_packages.is_empty() {
        root.try_clone()
    } else {
        root.open_dir(&scheme.site_packages)
    };
    let site = match site {
        Ok(site) => site,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(&scheme.site_packages, e)),
    };
    let mut found = Vec::new();
    for entry in site
        .entries()
        .map_err(|e| io_error(&scheme.site_packages, e))?
    {
        let entry = entry.map_err(|e| io_error(&scheme.site_packages, e))?;
        let file_name = entry.file_name();
        let Some(dir_name) = file_name.to_str() else {
            continue;
        };
        let Some(stem) = dir_name.strip_suffix(".dist-info") else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let metadata = site
            .read_to_string(format!("{dir_name}/METADATA"))
            .unwrap_or_default();
        let (name, version) = match metadata_name_version(&metadata) {
            Some(found) => found,
            None => match stem.split_once('-') {
                Some((name, version)) => (name.to_owned(), version.to_owned()),
                None => continue,
            },
        };
        found.push(InstalledProject {
            normalized: normalize_name(&name),
            name,
            version,
            dist_info: dir_name.to_owned(),
        });
    }
    found.sort_by(|a, b| (&a.normalized, &a.version).cmp(&(&b.normalized, &b.version)));
    Ok(found)
}

/// The `METADATA` text of project `name` (any spelling) installed in `root`, laid out as
/// `scheme` says, for `pip show`.
pub fn installed_metadata(
    root: &Dir,
    scheme: &Scheme,
    name: &str,
) -> Result<Option<String>, PackageError> {
    let wanted = normalize_name(name);
    for project in installed_in(root, scheme)? {
        if project.normalized == wanted {
            let path = join(&join(&scheme.site_packages, &project.dist_info), "METADATA");
            return root
                .read_to_string(&path)
                .map(Some)
                .map_err(|e| io_error(&path, e));
        }
    }
    Ok(None)
}

/// The `METADATA` text inside wheel bytes (`file` names the wheel in messages).
pub fn wheel_metadata(file: &str, wheel: &[u8]) -> Result<String, PackageError> {
    let (mut archive, dist_info) = open_wheel(file, wheel)?;
    read_member(&mut archive, &format!("{dist_info}/METADATA"))
        .map_err(|reason| bad_wheel(file, reason))
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| bad_wheel(file, "METADATA is not UTF-8".into()))
        })
}

/// The file name a wheel should have: its `.dist-info` directory's name and version with
/// the tags of its `WHEEL` file, compressed as PEP 425 says
/// (`six-1.16.0-py2.py3-none-any.whl` for `py2-none-any` and `py3-none-any`).
pub fn wheel_file_name(file: &str, wheel: &[u8]) -> Result<String, PackageError> {
    let (mut archive, dist_info) = open_wheel(file, wheel)?;
    let text = read_text(&mut archive, &format!("{dist_info}/WHEEL"))
        .map_err(|reason| bad_wheel(file, reason))?;
    let tags: Vec<Vec<&str>> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Tag:"))
        .map(|tag| tag.trim().splitn(3, '-').collect::<Vec<_>>())
        .filter(|parts| parts.len() == 3)
        .collect();
    if tags.is_empty() {
        return Err(bad_wheel(file, "WHEEL names no tag".into()));
    }
    // Each part: its distinct values in the order WHEEL gives them, joined with `.`.
    let part = |i: usize| {
        let mut values: Vec<&str> = Vec::new();
        for tag in &tags {
            if !values.contains(&tag[i]) {
                values.push(tag[i]);
            }
        }
        values.join(".")
    };
    let stem = dist_info.strip_suffix(".dist-info").unwrap_or(&dist_info);
    Ok(format!("{stem}-{}-{}-{}.whl", part(0), part(1), part(2)))
}

fn bad_wheel(file: &str, reason: String) -> PackageError {
    PackageError::BadDistribution {
        file: file.to_owned(),
        reason,
    }
}

/// A wheel's archive, read from its bytes.
type WheelArchive<'w> = ZipArchive<Cursor<&'w [u8]>>;

/// The wheel's archive and its one `.dist-info` directory.
fn open_wheel<'w>(file: &str, wheel: &'w [u8]) -> Result<(WheelArchive<'w>, String), PackageError> {
    let archive = ZipArchive::new(Cursor::new(wheel))
        .map_err(|e| bad_wheel(file, format!("not a valid wheel (zip): {e}")))?;
    let dist_info = find_dist_info(&archive, file)?;
    Ok((archive, dist_info))
}

// ---------------------------------------------------------------------------------------
// Staging: the wheel checked and unpacked into a directory of its own inside the target.

/// A wheel unpacked and checked in its staging directory `staging` (below the target
/// root), waiting to be put in place. Dropped without [`commit`], it removes its directory.
struct Staged<'r> {
    root: &'r Dir,
    staging: String,
    dist: InstalledDist,
    normalized: String,
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.staging.is_empty() {
            let _ = self.root.remove_dir_all(&self.staging);
        }
    }
}

/// Where staged files live below the staging directory, and the old ones set aside.
const STAGED_NEW: &str = "new";
const STAGED_OLD: &str = "old";

/// One RECORD line: the hash (algorithm, raw digest) and size of a file.
struct RecordEntry {
    hash: Option<(String, Vec<u8>)>,
    size: Option<u64>,
}

fn stage<'r>(
    root: &'r Dir,
    scheme: &Scheme,
    wheel: &[u8],
    pin: &Pin,
    options: &InstallOptions,
) -> Result<Staged<'r>, PackageError> {
    let file = pin.file.clone();
    let bad = |reason: String| PackageError::BadDistribution {
        file: file.clone(),
        reason,
    };
    let mut archive = ZipArchive::new(Cursor::new(wheel))
        .map_err(|e| bad(format!("not a valid wheel (zip): {e}")))?;
    let dist_info = find_dist_info(&archive, &file)?;
    let data_dir = format!(
        "{}.data",
        dist_info.strip_suffix(".dist-info").unwrap_or(&dist_info)
    );

    let wheel_meta = read_text(&mut archive, &format!("{dist_info}/WHEEL")).map_err(&bad)?;
    check_wheel_version(&wheel_meta).map_err(&bad)?;
    let metadata = read_text(&mut archive, &format!("{dist_info}/METADATA")).map_err(&bad)?;
    let (name, version) = metadata_name_version(&metadata)
        .ok_or_else(|| bad("METADATA lacks Name or Version".into()))?;
    let normalized = normalize_name(&name);
    if let Some((file_name, _)) = parse_wheel_file_name(&file)
        && normalize_name(&file_name) != normalized
    {
        return Err(bad(format!(
            "the file name says project {file_name}, its METADATA says {name}"
        )));
    }
    let record_path = format!("{dist_info}/RECORD");
    let record_text = read_text(&mut archive, &record_path).map_err(&bad)?;
    let mut record = parse_record(&record_text).map_err(&bad)?;
    record.remove(&record_path);

    let mut staged = Staged {
        root,
        staging: String::new(),
        dist: InstalledDist {
            name: name.clone(),
            version: version.clone(),
            dist_info: dist_info.clone(),
            files: Vec::new(),
            scripts: Vec::new(),
            replaced: None,
        },
        normalized: normalized.clone(),
    };
    let staging = format!(".wasmbuild-install-{}", uuid::Uuid::new_v4().simple());
    root.create_dir(&staging)
        .map_err(|e| io_error(&staging, e))?;
    staged.staging = staging.clone();
    let new_root = join(&staging, STAGED_NEW);
    root.create_dir(&new_root)
        .map_err(|e| io_error(&new_root, e))?;
    let out = root
        .open_dir(&new_root)
        .map_err(|e| io_error(&new_root, e))?;
    let mut writer = StageWriter {
        out,
        made: HashSet::new(),
        names: HashSet::new(),
        written: Vec::new(),
    };

    let mut seen = HashSet::new();
    let mut buf = Vec::new();
    for index in 0..archive.len() {
        let mut member = archive
            .by_index(index)
            .map_err(|e| bad(format!("member {index}: {e}")))?;
        let member_name = member
            .name()
            .map_err(|e| bad(format!("member {index}: {e}")))?
            .into_owned();
        check_member_name(&member_name).map_err(&bad)?;
        if member.is_symlink() {
            return Err(bad(format!("{member_name} is a symbolic link")));
        }
        if member.is_dir() || member_name.ends_with('/') {
            continue;
        }
        if !seen.insert(member_name.clone()) {
            return Err(bad(format!("{member_name} appears twice")));
        }
        let executable = member.unix_mode().is_some_and(|m| m & 0o111 != 0);
        buf.clear();
        member
            .read_to_end(&mut buf)
            .map_err(|e| bad(format!("{member_name}: {e}")))?;
        drop(member);
        if member_name == record_path {
            continue;
        }
        let signature = member_name == format!("{dist_info}/RECORD.jws")
            || member_name == format!("{dist_info}/RECORD.p7s");
        match record.remove(&member_name) {
            Some(entry) => check_hash(&member_name, &buf, &entry).map_err(&bad)?,
            None if signature => {}
            None => return Err(bad(format!("{member_name} is not listed in RECORD"))),
        }
        // Written fresh below.
        if member_name == format!("{dist_info}/INSTALLER")
            || member_name == format!("{dist_info}/REQUESTED")
            || member_name == format!("{dist_info}/direct_url.json")
        {
            continue;
        }
        let (dest, script) =
            destination(scheme, &dist_info, &data_dir, &name, &member_name).map_err(&bad)?;
        if script {
            let contents = rewrite_shebang(&buf, &options.python);
            let script_name = dest.rsplit('/').next().unwrap_or(&dest).to_owned();
            writer.write(&dest, contents.as_ref(), 0o755)?;
            staged.dist.scripts.push(script_name);
        } else {
            writer.write(&dest, &buf, if executable { 0o755 } else { 0o644 })?;
        }
    }
    if let Some(missing) = record
        .iter()
        .filter(|(path, _)| !path.ends_with('/'))
        .map(|(path, _)| path)
        .min()
    {
        return Err(bad(format!(
            "RECORD lists {missing}, which the wheel lacks"
        )));
    }

    // Entry points become launchers.
    let entry_points = format!("{dist_info}/entry_points.txt");
    if seen.contains(&entry_points) {
        let text = read_text(&mut archive, &entry_points).map_err(&bad)?;
        for (script, module, attr) in console_scripts(&text).map_err(&bad)? {
            let dest = join(&scheme.scripts, &script);
            let launcher = launcher(&options.python, &module, &attr);
            writer.write(&dest, launcher.as_bytes(), 0o755)?;
            staged.dist.scripts.push(script);
        }
    }

    let dist_dir = join(&scheme.site_packages, &dist_info);
    writer.write(
        &join(&dist_dir, "INSTALLER"),
        format!("{}\n", options.installer).as_bytes(),
        0o644,
    )?;
    if options.requested {
        writer.write(&join(&dist_dir, "REQUESTED"), b"", 0o644)?;
    }
    if let Some(direct_url) = &options.direct_url {
        writer.write(
            &join(&dist_dir, "direct_url.json"),
            direct_url.as_bytes(),
            0o644,
        )?;
    }
    let record_dest = join(&dist_dir, "RECORD");
    let mut lines = String::new();
    for (path, digest, size) in &writer.written {
        let rel = relative_to(&scheme.site_packages, path);
        lines.push_str(&csv_field(&rel));
        lines.push_str(",sha256=");
        lines.push_str(&b64_urlsafe_nopad(digest));
        lines.push(',');
        lines.push_str(&size.to_string());
        lines.push('\n');
    }
    lines.push_str(&csv_field(&relative_to(
        &scheme.site_packages,
        &record_dest,
    )));
    lines.push_str(",,\n");
    writer.write(&record_dest, lines.as_bytes(), 0o644)?;

    staged.dist.files = writer.written.into_iter().map(|(p, _, _)| p).collect();
    staged.dist.scripts.sort();
    staged.dist.scripts.dedup();
    Ok(staged)
}

/// Writes staged files below the staging directory's `new/`, making parents once.
struct StageWriter {
    out: Dir,
    made: HashSet<String>,
    names: HashSet<String>,
    /// (path relative to the target root, sha256, size), in write order.
    written: Vec<(String, [u8; 32], u64)>,
}

impl StageWriter {
    fn write(&mut self, rel: &str, contents: &[u8], mode: u32) -> Result<(), PackageError> {
        if let Some((parent, _)) = rel.rsplit_once('/')
            && !self.made.contains(parent)
        {
            let mut builder = cap_std::fs::DirBuilder::new();
            builder.recursive(true).mode(0o755);
            self.out
                .create_dir_with(parent, &builder)
                .map_err(|e| io_error(parent, e))?;
            let mut p = parent;
            loop {
                self.made.insert(p.to_owned());
                match p.rsplit_once('/') {
                    Some((up, _)) => p = up,
                    None => break,
                }
            }
        }
        if !self.names.insert(rel.to_owned()) {
            // A script generated twice, or a `.data` file clashing with a package file.
            return Err(PackageError::BadDistribution {
                file: rel.to_owned(),
                reason: "two files of the wheel install to the same path".into(),
            });
        }
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create_new(true).mode(mode);
        let mut f = self
            .out
            .open_with(rel, &options)
            .map_err(|e| io_error(rel, e))?;
        f.write_all(contents).map_err(|e| io_error(rel, e))?;
        // The umask may have taken bits; the mode is ours to set.
        f.set_permissions(cap_std::fs::Permissions::from_std(
            std::fs::Permissions::from_mode(mode),
        ))
        .map_err(|e| io_error(rel, e))?;
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&Sha256::digest(contents));
        self.written
            .push((rel.to_owned(), digest, contents.len() as u64));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Commit: the previous version set aside, the staged tree moved in, then the old removed.

enum Undo {
    /// Created at this path (file or whole directory): remove it.
    Created(String),
    /// Moved from the path to the backup path: move it back.
    Moved { from: String, to: String },
}

fn commit(
    root: &Dir,
    scheme: &Scheme,
    mut staged: Staged<'_>,
) -> Result<InstalledDist, PackageError> {
    let mut undo = Vec::new();
    match commit_steps(root, scheme, &mut staged, &mut undo) {
        Ok(replaced_dirs) => {
            // The staging directory (with the previous version set aside in it) goes.
            drop_staging(&mut staged);
            remove_empty_dirs(root, scheme, replaced_dirs);
            Ok(std::mem::replace(
                &mut staged.dist,
                InstalledDist {
                    name: String::new(),
                    version: String::new(),
                    dist_info: String::new(),
                    files: Vec::new(),
                    scripts: Vec::new(),
                    replaced: None,
                },
            ))
        }
        Err(e) => {
            for step in undo.into_iter().rev() {
                match step {
                    Undo::Created(path) => {
                        if root.remove_file(&path).is_err() {
                            let _ = root.remove_dir_all(&path);
                        }
                    }
                    Undo::Moved { from, to } => {
                        if let Some((parent, _)) = from.rsplit_once('/') {
                            let _ = root.create_dir_all(parent);
                        }
                        let _ = root.rename(&to, root, &from);
                    }
                }
            }
            Err(e)
        }
    }
}

fn drop_staging(staged: &mut Staged<'_>) {
    let staging = std::mem::take(&mut staged.staging);
    let _ = staged.root.remove_dir_all(&staging);
}

/// Returns the directories that held the previous version's files (to prune when empty).
fn commit_steps(
    root: &Dir,
    scheme: &Scheme,
    staged: &mut Staged<'_>,
    undo: &mut Vec<Undo>,
) -> Result<BTreeSet<String>, PackageError> {
    let old_root = join(&staged.staging, STAGED_OLD);
    root.create_dir(&old_root)
        .map_err(|e| io_error(&old_root, e))?;
    let mut backups = 0usize;
    let mut set_aside =
        |root: &Dir, path: &str, undo: &mut Vec<Undo>| -> Result<(), PackageError> {
            backups += 1;
            let to = join(&old_root, &backups.to_string());
            match root.rename(path, root, &to) {
                Ok(()) => {
                    undo.push(Undo::Moved {
                        from: path.to_owned(),
                        to,
                    });
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error(path, e)),
            }
        };

    // The previous version(s) of the project, by their RECORD.
    let mut dirs = BTreeSet::new();
    let previous: Vec<InstalledProject> = installed_in(root, scheme)?
        .into_iter()
        .filter(|p| p.normalized == staged.normalized)
        .collect();
    for project in &previous {
        staged
            .dist
            .replaced
            .get_or_insert_with(|| project.version.clone());
        for file in owned_files(root, scheme, project) {
            if let Some((parent, _)) = file.rsplit_once('/') {
                dirs.insert(parent.to_owned());
            }
            set_aside(root, &file, undo)?;
        }
        let dist_info = join(&scheme.site_packages, &project.dist_info);
        set_aside(root, &dist_info, undo)?;
    }
    // Directories the previous version leaves empty go now, so that the new version's
    // directories move in whole (undoing recreates them).
    remove_empty_dirs(root, scheme, dirs.clone());

    // Move the staged tree in: whole directories where nothing is in the way.
    let new_root = join(&staged.staging, STAGED_NEW);
    let mut pending = vec![String::new()];
    while let Some(rel) = pending.pop() {
        let from_dir = join(&new_root, &rel);
        let entries = root
            .read_dir(&from_dir)
            .map_err(|e| io_error(&from_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&from_dir, e))?;
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| PackageError::Io(format!("{from_dir}: a name that is not UTF-8")))?;
            let dest = join(&rel, name);
            let from = join(&new_root, &dest);
            let staged_is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            match root.symlink_metadata(&dest) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&dest, e)),
                Ok(meta) if meta.is_dir() && staged_is_dir => {
                    pending.push(dest);
                    continue;
                }
                // A file (or link) in the way: set aside, restored if anything fails.
                Ok(_) => set_aside(root, &dest, undo)?,
            }
            root.rename(&from, root, &dest)
                .map_err(|e| io_error(&dest, e))?;
            undo.push(Undo::Created(dest));
        }
    }
    Ok(dirs)
}

/// The files a previous install owns, from its RECORD, as paths below the target root
/// (entries that lead outside it are ignored), plus the `.pyc` files of its modules.
fn owned_files(root: &Dir, scheme: &Scheme, project: &InstalledProject) -> Vec<String> {
    let dist_info = join(&scheme.site_packages, &project.dist_info);
    let record = root
        .read_to_string(join(&dist_info, "RECORD"))
        .unwrap_or_default();
    let mut files = Vec::new();
    let mut pycache_dirs: HashMap<String, Vec<String>> = HashMap::new();
    for line in record.lines() {
        let Some(path) = csv_fields(line).into_iter().next() else {
            continue;
        };
        let Some(rel) = resolve_below(&scheme.site_packages, &path) else {
            continue;
        };
        if rel.starts_with(&format!("{dist_info}/")) {
            continue; // the dist-info directory goes whole
        }
        if let Some(module) = rel.strip_suffix(".py") {
            let (parent, stem) = match module.rsplit_once('/') {
                Some((parent, stem)) => (parent.to_owned(), stem.to_owned()),
                None => (String::new(), module.to_owned()),
            };
            pycache_dirs
                .entry(join(&parent, "__pycache__"))
                .or_default()
                .push(stem);
        }
        files.push(rel);
    }
    for (cache, stems) in pycache_dirs {
        let Ok(entries) = root.read_dir(&cache) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".pyc")
                && stems.iter().any(|s| {
                    name.strip_prefix(s.as_str())
                        .is_some_and(|r| r.starts_with('.'))
                })
            {
                files.push(join(&cache, name));
            }
        }
    }
    files.sort();
    files.dedup();
    files
}

/// Removes the directories of `dirs` and their parents that are now empty, up to the
/// scheme's own directories.
fn remove_empty_dirs(root: &Dir, scheme: &Scheme, dirs: BTreeSet<String>) {
    let keep: HashSet<&str> = [
        scheme.site_packages.as_str(),
        scheme.scripts.as_str(),
        scheme.data.as_str(),
        scheme.headers.as_str(),
        "",
    ]
    .into_iter()
    .collect();
    // Deepest first.
    let mut dirs: Vec<String> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    let mut tried = HashSet::new();
    for dir in dirs {
        let mut dir = dir.as_str();
        while !keep.contains(dir) && tried.insert(dir.to_owned()) {
            let cache = join(dir, "__pycache__");
            if root.read_dir(&cache).is_ok_and(|mut e| e.next().is_none()) {
                let _ = root.remove_dir(&cache);
            }
            if root.remove_dir(dir).is_err() {
                break;
            }
            match dir.rsplit_once('/') {
                Some((up, _)) => dir = up,
                None => break,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The wheel's parts.

fn find_dist_info<R: Read + io::Seek>(
    archive: &ZipArchive<R>,
    file: &str,
) -> Result<String, PackageError> {
    let mut found: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok())
        .filter_map(|n| {
            let (dir, rest) = n.split_once('/')?;
            (dir.ends_with(".dist-info") && rest == "WHEEL").then(|| dir.to_owned())
        })
        .collect();
    found.sort();
    found.dedup();
    match found.len() {
        1 => Ok(found.pop().unwrap_or_default()),
        0 => Err(PackageError::BadDistribution {
            file: file.to_owned(),
            reason: "no .dist-info directory with a WHEEL file".into(),
        }),
        _ => Err(PackageError::BadDistribution {
            file: file.to_owned(),
            reason: format!("several .dist-info directories: {}", found.join(", ")),
        }),
    }
}

fn read_member<R: Read + io::Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
) -> Result<Vec<u8>, String> {
    let mut member = archive.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::with_capacity(member.size() as usize);
    member
        .read_to_end(&mut out)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(out)
}

fn read_text<R: Read + io::Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
) -> Result<String, String> {
    String::from_utf8(read_member(archive, name)?).map_err(|_| format!("{name} is not UTF-8"))
}

/// `Wheel-Version: 1.x` is what this installer understands (PEP 427: refuse a newer major).
fn check_wheel_version(wheel: &str) -> Result<(), String> {
    let version = header(wheel, "Wheel-Version").ok_or("WHEEL lacks Wheel-Version")?;
    let major = version.split('.').next().unwrap_or_default().trim();
    if major != "1" {
        return Err(format!(
            "Wheel-Version {version} is not supported (only 1.x)"
        ));
    }
    Ok(())
}

/// The first value of an email-style header in `text` (up to the first blank line).
fn header(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case(key)
        {
            return Some(v.trim().to_owned());
        }
    }
    None
}

fn metadata_name_version(metadata: &str) -> Option<(String, String)> {
    Some((header(metadata, "Name")?, header(metadata, "Version")?))
}

/// `(name, version)` of a wheel file name `{name}-{version}(-{build})?-{py}-{abi}-{plat}.whl`.
pub fn parse_wheel_file_name(file: &str) -> Option<(String, String)> {
    let stem = file.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() != 5 && parts.len() != 6 {
        return None;
    }
    Some((parts[0].to_owned(), parts[1].to_owned()))
}

/// A member name of a wheel must be a plain relative path.
fn check_member_name(name: &str) -> Result<(), String> {
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    if trimmed.is_empty()
        || trimmed.starts_with('/')
        || trimmed.contains('\\')
        || trimmed.contains('\0')
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || trimmed
            .split('/')
            .next()
            .is_some_and(|c| c.len() >= 2 && c.as_bytes()[1] == b':')
    {
        return Err(format!(
            "{name:?} is not a plain relative path (it would leave the install directory)"
        ));
    }
    Ok(())
}

/// Where a member goes, relative to the target root, and whether it is a script.
fn destination(
    scheme: &Scheme,
    dist_info: &str,
    data_dir: &str,
    name: &str,
    member: &str,
) -> Result<(String, bool), String> {
    let _ = dist_info;
    if let Some(rest) = member
        .strip_prefix(data_dir)
        .and_then(|r| r.strip_prefix('/'))
    {
        let (key, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("{member}: a file directly in {data_dir}"))?;
        return match key {
            "purelib" | "platlib" => Ok((join(&scheme.site_packages, path), false)),
            "scripts" => {
                if path.contains('/') {
                    return Err(format!("{member}: scripts must not be in subdirectories"));
                }
                Ok((join(&scheme.scripts, path), true))
            }
            "data" => Ok((join(&scheme.data, path), false)),
            "headers" => Ok((join(&join(&scheme.headers, name), path), false)),
            other => Err(format!("{member}: unknown {data_dir} directory {other:?}")),
        };
    }
    Ok((join(&scheme.site_packages, member), false))
}

fn check_hash(member: &str, contents: &[u8], entry: &RecordEntry) -> Result<(), String> {
    let Some((algorithm, expected)) = &entry.hash else {
        return Err(format!("RECORD gives no hash for {member}"));
    };
    let actual: Vec<u8> = match algorithm.as_str() {
        "sha256" => Sha256::digest(contents).to_vec(),
        "sha384" => sha2::Sha384::digest(contents).to_vec(),
        "sha512" => sha2::Sha512::digest(contents).to_vec(),
        other => {
            return Err(format!(
                "RECORD uses hash algorithm {other} for {member}, which is not accepted"
            ));
        }
    };
    if &actual != expected {
        return Err(format!(
            "{member} does not match its RECORD hash ({algorithm}={} expected, {algorithm}={} found): the wheel is corrupt",
            b64_urlsafe_nopad(expected),
            b64_urlsafe_nopad(&actual)
        ));
    }
    if let Some(size) = entry.size
        && size != contents.len() as u64
    {
        return Err(format!(
            "{member} has {} bytes, RECORD says {size}: the wheel is corrupt",
            contents.len()
        ));
    }
    Ok(())
}

fn parse_record(text: &str) -> Result<HashMap<String, RecordEntry>, String> {
    let mut entries = HashMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let fields = csv_fields(line);
        let path = fields.first().cloned().unwrap_or_default();
        let hash = match fields.get(1).map(String::as_str) {
            None | Some("") => None,
            Some(h) => {
                let (algorithm, digest) = h
                    .split_once('=')
                    .ok_or_else(|| format!("RECORD: bad hash {h:?} for {path}"))?;
                let digest = b64_urlsafe_decode(digest)
                    .ok_or_else(|| format!("RECORD: bad hash {h:?} for {path}"))?;
                Some((algorithm.to_owned(), digest))
            }
        };
        let size = match fields.get(2).map(String::as_str) {
            None | Some("") => None,
            Some(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| format!("RECORD: bad size {s:?} for {path}"))?,
            ),
        };
        entries.insert(path, RecordEntry { hash, size });
    }
    Ok(entries)
}

/// The fields of one CSV line (RFC 4180 quoting, as Python's `csv` writes RECORD).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// `[console_scripts]` and `[gui_scripts]` of `entry_points.txt`: (script, module, attr).
fn console_scripts(text: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    let mut in_scripts = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let section = line.trim_start_matches('[').trim_end_matches(']').trim();
            in_scripts = section == "console_scripts" || section == "gui_scripts";
            continue;
        }
        if !in_scripts {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("entry_points.txt: bad line {line:?}"));
        };
        let name = name.trim();
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Err(format!("entry_points.txt: bad script name {name:?}"));
        }
        // `module:attr [extra1, extra2]`; extras do not change the launcher.
        let value = value.split('[').next().unwrap_or_default().trim();
        let (module, attr) = match value.split_once(':') {
            Some((m, a)) => (m.trim(), a.trim()),
            None => (value, ""),
        };
        let ident = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|p| {
                    !p.is_empty()
                        && p.chars().all(|c| c.is_alphanumeric() || c == '_')
                        && !p.starts_with(|c: char| c.is_ascii_digit())
                })
        };
        if !ident(module) || (!attr.is_empty() && !ident(attr)) {
            return Err(format!(
                "entry_points.txt: bad entry point {value:?} for {name}"
            ));
        }
        out.push((name.to_owned(), module.to_owned(), attr.to_owned()));
    }
    Ok(out)
}

/// The launcher pip writes for an entry point.
fn launcher(python: &str, module: &str, attr: &str) -> String {
    if attr.is_empty() {
        return format!(
            "#!{python}\n# -*- coding: utf-8 -*-\nimport runpy\nimport sys\nif __name__ == '__main__':\n    sys.exit(runpy.run_module('{module}', run_name='__main__'))\n"
        );
    }
    let import_name = attr.split('.').next().unwrap_or(attr);
    format!(
        "#!{python}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {import_name}\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit({attr}())\n"
    )
}

/// A first line starting with `#!python` (`#!python`, `#!pythonw`, `#!python3 -u`) names
/// the installing interpreter (PEP 427); as pip does, the whole line is replaced.
fn rewrite_shebang<'a>(contents: &'a [u8], python: &str) -> std::borrow::Cow<'a, [u8]> {
    if !contents.starts_with(b"#!python") {
        return std::borrow::Cow::Borrowed(contents);
    }
    let rest = match contents.iter().position(|&b| b == b'\n') {
        Some(end) => &contents[end + 1..],
        None => &[],
    };
    let mut out = Vec::with_capacity(contents.len() + python.len());
    out.extend_from_slice(b"#!");
    out.extend_from_slice(python.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(rest);
    std::borrow::Cow::Owned(out)
}

// ---------------------------------------------------------------------------------------
// Paths.

/// `a/b` (either side may be empty).
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

/// `path` (below the root) as RECORD writes it: relative to `base` (below the root).
fn relative_to(base: &str, path: &str) -> String {
    let base: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
    let path_parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let common = base
        .iter()
        .zip(&path_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out: Vec<&str> = std::iter::repeat_n("..", base.len() - common).collect();
    out.extend(&path_parts[common..]);
    out.join("/")
}

/// A RECORD path (relative to `base`) as a path below the root; `None` when it is
/// absolute or leads out of the root.
fn resolve_below(base: &str, path: &str) -> Option<String> {
    if path.is_empty() || path.starts_with('/') || path.contains(['\\', '\0']) {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn io_error(path: &str, e: io::Error) -> PackageError {
    PackageError::Io(format!("{path}: {e}"))
}

/// RECORD's hash encoding (PEP 376/427): urlsafe base64 without padding. Read leniently
/// (padding or not, stray trailing bits), as pip reads it.
const RECORD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn b64_urlsafe_nopad(bytes: &[u8]) -> String {
    RECORD_BASE64.encode(bytes)
}

/// A RECORD digest's bytes; the standard alphabet's `+` and `/` are read as `-` and `_`.
fn b64_urlsafe_decode(text: &str) -> Option<Vec<u8>> {
    RECORD_BASE64
        .decode(text.replace('+', "-").replace('/', "_"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_as_pep_503_says() {
        assert_eq!(normalize_name("Foo_Bar"), "foo-bar");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("a__-.b"), "a-b");
        assert_eq!(
            parse_wheel_file_name("pytest-8.3.4-py3-none-any.whl"),
            Some(("pytest".into(), "8.3.4".into()))
        );
        assert_eq!(
            parse_wheel_file_name("demo-1.0-1build-py3-none-any.whl"),
            Some(("demo".into(), "1.0".into()))
        );
        assert_eq!(parse_wheel_file_name("demo-1.0.tar.gz"), None);
    }

    #[test]
    fn base64_of_record_hashes_round_trips() {
        for bytes in [
            &b""[..],
            b"a",
            b"ab",
            b"abc",
            b"abcd",
            &[0xff, 0xfe, 0x00, 0x7f],
        ] {
            assert_eq!(
                b64_urlsafe_decode(&b64_urlsafe_nopad(bytes)).unwrap(),
                bytes
            );
        }
        // As Python's base64.urlsafe_b64encode(sha256(b"")).rstrip(b"=") gives it.
        assert_eq!(
            b64_urlsafe_nopad(&Sha256::digest(b"")),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert!(b64_urlsafe_decode("a*b").is_none());
    }

    #[test]
    fn record_lines_parse_with_csv_quoting() {
        assert_eq!(
            csv_fields(r#""a,b.py",sha256=xyz,12"#),
            vec!["a,b.py", "sha256=xyz", "12"]
        );
        assert_eq!(
            csv_fields(r#""say ""hi"".txt",,"#),
            vec![r#"say "hi".txt"#, "", ""]
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("plain/x.py"), "plain/x.py");
        let record =
            parse_record("x.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\nd/RECORD,,\n")
                .unwrap();
        assert!(check_hash("x.py", b"", &record["x.py"]).is_ok());
        assert!(
            check_hash("x.py", b"1", &record["x.py"])
                .unwrap_err()
                .contains("corrupt")
        );
        assert!(record["d/RECORD"].hash.is_none());
        assert!(parse_record("x.py,sha256,1\n").is_err());
        let md5 = RecordEntry {
            hash: Some(("md5".into(), vec![0; 16])),
            size: None,
        };
        assert!(
            check_hash("x.py", b"", &md5)
                .unwrap_err()
                .contains("not accepted")
        );
    }

    #[test]
    fn paths_stay_below_the_root() {
        assert_eq!(
            relative_to(".local/lib/python3.12/site-packages", ".local/bin/pytest"),
            "../../../bin/pytest"
        );
        assert_eq!(relative_to("", "bin/pytest"), "bin/pytest");
        assert_eq!(relative_to("a/b", "a/b/c.py"), "c.py");
        assert_eq!(
            resolve_below(".local/lib/python3.12/site-packages", "../../../bin/pytest").as_deref(),
            Some(".local/bin/pytest")
        );
        assert_eq!(resolve_below("a", "../../x"), None);
        assert_eq!(resolve_below("a", "/etc/passwd"), None);
        assert_eq!(resolve_below("", "x/./y.py").as_deref(), Some("x/y.py"));
        for bad in ["../x", "/x", "a/../b", "a//b", "a\\b", "C:/x", "./a", ""] {
            assert!(check_member_name(bad).is_err(), "{bad}");
        }
        assert!(check_member_name("pkg/mod.py").is_ok());
        assert!(check_member_name("pkg/").is_ok());
    }

    #[test]
    fn data_directories_map_to_the_scheme() {
        let s = Scheme::user(Interpreter::from_version("3.12.0").unwrap());
        let d = |m: &str| destination(&s, "p-1.dist-info", "p-1.data", "p", m);
        const USER_SITE_PACKAGES: &str = ".local/lib/python3.12/site-packages";
        assert_eq!(
            d("p/x.py").unwrap(),
            (format!("{USER_SITE_PACKAGES}/p/x.py"), false)
        );
        assert_eq!(
            d("p-1.data/purelib/q.py").unwrap(),
            (format!("{USER_SITE_PACKAGES}/q.py"), false)
        );
        assert_eq!(
            d("p-1.data/platlib/q.so").unwrap(),
            (format!("{USER_SITE_PACKAGES}/q.so"), false)
        );
        assert_eq!(
            d("p-1.data/scripts/tool").unwrap(),
            (".local/bin/tool".into(), true)
        );
        assert_eq!(
            d("p-1.data/data/share/x").unwrap(),
            (".local/share/x".into(), false)
        );
        assert_eq!(
            d("p-1.data/headers/x.h").unwrap(),
            (".local/include/python3.12/p/x.h".into(), false)
        );
        assert!(d("p-1.data/etc/x").is_err());
        assert!(d("p-1.data/scripts/sub/tool").is_err());
        let s = Scheme::user(Interpreter::from_version("3.13.5").unwrap());
        assert_eq!(s.site_packages, ".local/lib/python3.13/site-packages");
        assert_eq!(s.headers, ".local/include/python3.13");
    }

    #[test]
    fn entry_points_become_pip_style_launchers() {
        let text = "[console_scripts]\npytest = pytest:console_main\ntool=pkg.cli:app.run [extra]\n\n[gui_scripts]\ngui = pkg.gui:main\n[other]\nx = y:z\n";
        let scripts = console_scripts(text).unwrap();
        assert_eq!(
            scripts,
            vec![
                ("pytest".into(), "pytest".into(), "console_main".into()),
                ("tool".into(), "pkg.cli".into(), "app.run".into()),
                ("gui".into(), "pkg.gui".into(), "main".into()),
            ]
        );
        assert!(console_scripts("[console_scripts]\n../x = a:b\n").is_err());
        assert!(console_scripts("[console_scripts]\nx = a;import os:b\n").is_err());
        let l = launcher("/opt/runtimes/python/bin/python3", "pkg.cli", "app.run");
        assert!(l.starts_with("#!/opt/runtimes/python/bin/python3\n"));
        assert!(l.contains("from pkg.cli import app\n"));
        assert!(l.contains("sys.exit(app.run())"));
    }

    #[test]
    fn only_hash_bang_python_is_rewritten() {
        let p = "/opt/runtimes/python/bin/python3";
        assert_eq!(
            &*rewrite_shebang(b"#!python\nx", p),
            format!("#!{p}\nx").as_bytes()
        );
        assert_eq!(
            &*rewrite_shebang(b"#!pythonw -u\r\nx", p),
            format!("#!{p}\nx").as_bytes()
        );
        assert_eq!(
            &*rewrite_shebang(b"#!python3", p),
            format!("#!{p}\n").as_bytes()
        );
        assert_eq!(&*rewrite_shebang(b"#!/bin/sh\nx", p), b"#!/bin/sh\nx");
        assert_eq!(&*rewrite_shebang(b"\x7fELF", p), b"\x7fELF");
    }
}
