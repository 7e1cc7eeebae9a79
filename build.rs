//! Packs `runtimes/` (the recipes, their shims and the toolbox's sources with its
//! Cargo.lock) into one tar the binary embeds, so an installed wasmbuild builds its bundles
//! with no source checkout. Entries are sorted, with no owner or time, so the archive (and
//! its digest, which names the extracted copy) depends on the files' contents alone.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let runtimes = root.join("runtimes");
    println!("cargo::rerun-if-changed=runtimes");
    let mut files = Vec::new();
    collect(&runtimes, &runtimes, &mut files);
    files.sort();
    let mut archive = tar::Builder::new(Vec::new());
    for relative in &files {
        let path = runtimes.join(relative);
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(if is_executable(&path) { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, relative, data.as_slice())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let bytes = archive.into_inner().expect("an in-memory archive");
    // Hashed here, once, rather than by every run of wasmbuild that needs a recipe.
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo::rustc-env=WASMBUILD_RECIPES_SHA256={digest}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    fs::write(out.join("recipes.tar"), bytes).expect("OUT_DIR is writable");
}

/// Regular files under `dir`, relative to `base`; build output (`target/`) and hidden
/// entries are left out.
fn collect(base: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("a readable directory");
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().expect("a readable directory");
        if kind.is_dir() {
            collect(base, &path, files);
        } else if kind.is_file() {
            files.push(path.strip_prefix(base).expect("under base").to_path_buf());
        }
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}
