//! The per-build workspace: a private copy of the source directory (`.git` included) that
//! the guest sees as /codebuild/output/src, beside its own `/tmp` and `/root`. The user's
//! checkout is never written. Copying walks the tree once, makes the directories, then
//! copies files on several threads, each read from a handle opened below the source
//! without following links (the kernel clones extents where the filesystem allows).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::Digest;

/// Host directories of one build; removed when dropped.
pub struct Workspace {
    pub src: PathBuf,
    pub tmp: PathBuf,
    pub home: PathBuf,
    root: tempfile::TempDir,
}

/// What a copy did.
#[derive(Debug, Default, Clone)]
pub struct CopyStats {
    pub files: u64,
    pub bytes: u64,
    /// sha256 of the sorted `path size` lines of the files: a cheap identity of the source.
    pub listing_digest: String,
}

/// The order in which a copy creates files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum CopyOrder {
    /// In parallel, as fast as possible.
    #[default]
    Parallel,
    /// One by one in reverse name order: `verify` uses it to show that the order files
    /// were created in does not leak into a build.
    Reversed,
}

impl Workspace {
    /// Creates an empty workspace under `parent` (the system's temporary directory if none).
    pub fn create(parent: Option<&Path>) -> io::Result<Workspace> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("wasmbuild-build-");
        let root = match parent {
            Some(parent) => {
                std::fs::create_dir_all(parent)?;
                builder.tempdir_in(parent)?
            }
            None => builder.tempdir()?,
        };
        let dir = |name: &str| -> io::Result<PathBuf> {
            let path = root.path().join(name);
            std::fs::create_dir(&path)?;
            Ok(path)
        };
        Ok(Workspace {
            src: dir("src")?,
            tmp: dir("tmp")?,
            home: dir("root")?,
            root,
        })
    }

    /// The host directory holding the workspace.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

/// Copies the tree at `from` into the existing directory `to`: directories, regular files
/// (with their permission bits) and symlinks (as links, never followed). `skip` names host
/// paths not to descend into (the workspace itself when it lies inside the source).
pub fn copy_tree(
    from: &Path,
    to: &Path,
    skip: &[PathBuf],
    order: CopyOrder,
) -> io::Result<CopyStats> {
    // Contents are read through a capability at `from`, never following a link: a file
    // swapped for a link after the listing is refused, not followed.
    let root = crate::store::beneath::open_root(from)?;
    let mut files = Vec::new();
    let mut stats = CopyStats::default();
    let mut listing = sha2::Sha256::new();
    let walker = walkdir::WalkDir::new(from)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| !skip.iter().any(|s| entry.path() == s));
    for entry in walker {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(from).map_err(io::Error::other)?;
        let Some(rel_str) = rel.to_str() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: name is not UTF-8", entry.path().display()),
            ));
        };
        let dest = to.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&dest)?;
        } else if kind.is_symlink() {
            let target = crate::store::beneath::read_link(&root, rel_str)?;
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &dest)?;
        } else if kind.is_file() {
            let len = entry.metadata().map_err(io::Error::other)?.len();
            stats.files += 1;
            stats.bytes += len;
            listing.update(format!("{} {len}\n", rel.display()).as_bytes());
            files.push((rel_str.to_owned(), dest));
        }
        // Sockets, fifos and devices are not part of a source tree.
    }
    stats.listing_digest = hex::encode(listing.finalize());
    match order {
        CopyOrder::Parallel => copy_files_parallel(&root, files)?,
        CopyOrder::Reversed => {
            for (rel, to) in files.iter().rev() {
                copy_file(&root, rel, to)?;
            }
        }
    }
    Ok(stats)
}

/// Copies the regular file `rel` below `root` (opened without following links) to the new
/// file `to`, from the opened handle (the kernel clones extents where it can), with its
/// permission bits less setuid, setgid, sticky and group/world write.
fn copy_file(root: &cap_std::fs::Dir, rel: &str, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let copy = || -> io::Result<()> {
        let mut source = crate::store::beneath::open_file(root, rel)?;
        let mode = source.metadata()?.permissions().mode();
        let mut dest = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)?;
        io::copy(&mut source, &mut dest)?;
        dest.set_permissions(std::fs::Permissions::from_mode(
            crate::store::beneath::safe_mode(mode),
        ))
    };
    copy().map_err(|e| io::Error::new(e.kind(), format!("copying {rel}: {e}")))
}

/// Copies each `(rel, to)` pair, on as many threads as the machine has (at least two: the
/// work is mostly waiting for the disk).
fn copy_files_parallel(root: &cap_std::fs::Dir, files: Vec<(String, PathBuf)>) -> io::Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 16);
    let queue = Mutex::new(files.into_iter());
    let first_error: Mutex<Option<io::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((rel, to)) = next else { break };
                    if let Err(e) = copy_file(root, &rel, &to) {
                        let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
                        slot.get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_files_modes_and_symlinks_without_following() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("a/b")).unwrap();
        std::fs::write(from.path().join("a/b/f.txt"), "hello").unwrap();
        std::fs::write(from.path().join("run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(
            from.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("out")).unwrap();
        std::fs::create_dir(from.path().join("skipme")).unwrap();
        std::fs::write(from.path().join("skipme/x"), "x").unwrap();

        let stats = copy_tree(
            from.path(),
            to.path(),
            &[from.path().join("skipme")],
            CopyOrder::Parallel,
        )
        .unwrap();
        assert_eq!(stats.files, 2);
        assert_eq!(stats.bytes, 5 + 9);
        assert_eq!(
            std::fs::read_to_string(to.path().join("a/b/f.txt")).unwrap(),
            "hello"
        );
        let mode = std::fs::metadata(to.path().join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(to.path().join("out")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(!to.path().join("skipme").exists());
    }
}
