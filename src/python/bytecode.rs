//! Bytecode for the wheels `pip install` puts in a build, kept in the store by wheel and
//! interpreter. A build starts with a fresh home, so without it every build compiled its
//! packages again on first import (about a second of pytest's first run here). The first
//! install of a wheel has the guest's own interpreter compile its modules, in a process that
//! sees only a private copy of them (`runtime::bytecode`), so nothing a build placed can
//! become another build's bytecode; the `.pyc` are checked-hash ones (CPython compares each
//! with its source at import, so an edited file is never shadowed). They are stored under
//! `python-bytecode/<interpreter>/<wheel sha256>`; later installs of the same wheel for the
//! same interpreter write them from the store.

use cap_std::fs::Dir;

use super::wheel::{InstalledDist, Scheme};
use super::{PackageError, Pin};
use crate::image::ImageRunner;
use crate::runtime::bytecode::{Compile, Invalidation, is_bytecode_of_any, source_parts};
use crate::sandbox::Layout;
use crate::store::Store;

/// Where the packages went: the target's directory, its guest path and its layout.
pub struct Installed<'a> {
    pub root: &'a Dir,
    /// The guest path of `root`.
    pub guest_root: &'a str,
    pub scheme: &'a Scheme,
}

/// What providing bytecode did, for the install's log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Provided {
    /// Wheels whose bytecode came from the store.
    pub restored: usize,
    /// Wheels compiled by the guest now (and stored).
    pub compiled: usize,
}

/// Writes (or makes and keeps) the bytecode of each installed wheel. `wheels` pairs each
/// installed distribution with the wheel it came from. Nothing here fails an install: a
/// store or guest problem leaves the packages to be compiled on import, as before.
pub fn provide(
    runner: &ImageRunner,
    store: &Store,
    target: &Installed<'_>,
    wheels: &[(&InstalledDist, &Pin)],
) -> Result<Provided, PackageError> {
    let Some(python) = runner.image.program("python3") else {
        return Ok(Provided::default());
    };
    let interpreter = python.module_digest.clone();
    let prefix = format!("{}/", target.scheme.site_packages.trim_end_matches('/'));
    let mut provided = Provided::default();
    let mut to_compile: Vec<(&Pin, Vec<String>)> = Vec::new();
    for (dist, pin) in wheels {
        let sources: Vec<String> = dist
            .files
            .iter()
            .filter(|f| f.starts_with(&prefix) && source_parts(f).is_some())
            .cloned()
            .collect();
        if sources.is_empty() {
            continue;
        }
        let reference = reference(&interpreter, &pin.sha256);
        if restore(store, &reference, target.root, &prefix, &sources).is_some() {
            provided.restored += 1;
        } else {
            to_compile.push((pin, sources));
        }
    }
    if to_compile.is_empty() {
        return Ok(provided);
    }

    let mut sources = Vec::new();
    for (_, paths) in &to_compile {
        for path in paths {
            let bytes = target
                .root
                .read(path)
                .map_err(|e| PackageError::Io(format!("{}/{path}: {e}", target.guest_root)))?;
            sources.push((path.clone(), bytes));
        }
    }
    let module = runner
        .sandbox
        .load("python3", &python.module_path, &python.module_digest)
        .map_err(|e| PackageError::Io(e.to_string()))?;
    // The interpreter's bundle, where runs see it (CPython 3.13's standard library is a
    // file of it).
    let mut bundle = Layout::default();
    bundle.add_bundle(&python.bundle.manifest.name, python.bundle.dir.clone());
    let compiled = Compile {
        sandbox: &runner.sandbox,
        module: &module,
        command: "python3",
        guest_root: target.guest_root,
        invalidation: Invalidation::CheckedHash,
        context: &[],
        mounts: &bundle.mounts,
        strict: false,
        deadline: runner.deadline,
        cancel: runner.cancel.clone(),
    }
    .run(&sources)
    .map_err(|e| PackageError::Io(e.to_string()))?;
    for (path, bytes) in &compiled {
        if let Some((dir, _)) = path.rsplit_once('/') {
            target
                .root
                .create_dir_all(dir)
                .and_then(|()| target.root.write(path, bytes))
                .map_err(|e| PackageError::Io(format!("{}/{path}: {e}", target.guest_root)))?;
        }
    }
    for (pin, paths) in to_compile {
        keep(
            store,
            &reference(&interpreter, &pin.sha256),
            &prefix,
            &paths,
            &compiled,
        )?;
        provided.compiled += 1;
    }
    Ok(provided)
}

fn reference(interpreter: &str, wheel_sha256: &str) -> String {
    format!("python-bytecode/{}/{wheel_sha256}", &interpreter[..16])
}

/// Stores the bytecode of one wheel: each of its `.pyc` a blob, listed (`sha256 path` per
/// line, paths relative to site-packages) in a blob the reference names.
fn keep(
    store: &Store,
    reference: &str,
    prefix: &str,
    sources: &[String],
    compiled: &[(String, Vec<u8>)],
) -> Result<(), PackageError> {
    let mut listing = String::new();
    for (path, bytes) in compiled {
        if is_bytecode_of_any(path, sources) {
            let digest = store.put_blob(bytes)?;
            let relative = path.strip_prefix(prefix).unwrap_or(path);
            listing.push_str(&format!("{digest} {relative}\n"));
        }
    }
    if listing.is_empty() {
        return Ok(());
    }
    let digest = store.put_blob(listing.as_bytes())?;
    store.set_ref(reference, &digest)?;
    Ok(())
}

/// Writes one wheel's stored bytecode; `None` when the store has none (or a listing names a
/// path that is not the bytecode of one of the wheel's sources, or a blob is damaged: the
/// store's reads check every digest), so the caller compiles instead.
fn restore(
    store: &Store,
    reference: &str,
    root: &Dir,
    prefix: &str,
    sources: &[String],
) -> Option<()> {
    let listing = store.get_blob(&store.get_ref(reference).ok()??).ok()?;
    let listing = String::from_utf8(listing).ok()?;
    let mut files = Vec::new();
    for line in listing.lines() {
        let (digest, relative) = line.split_once(' ')?;
        let path = format!("{prefix}{relative}");
        if !is_bytecode_of_any(&path, sources) {
            return None;
        }
        files.push((path, store.get_blob(digest).ok()?));
    }
    for (path, bytes) in files {
        let dir = path.rsplit_once('/').map(|(dir, _)| dir)?;
        root.create_dir_all(dir).ok()?;
        root.write(&path, bytes).ok()?;
    }
    Some(())
}
