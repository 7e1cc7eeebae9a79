//! Files that appear whole or not at all.
//!
//! Where the file system supports it (ext4, xfs, btrfs, tmpfs), a new file is written as an
//! anonymous inode (`O_TMPFILE`) in its final directory and linked into place once
//! complete (`linkat`): a process killed mid-write leaves nothing behind, and no rename
//! between directories serializes parallel writers. Elsewhere, and to replace an existing
//! file, a named temporary file in the same directory is renamed over the target.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Prefix of named temporary files (left behind only by killed processes; `gc` removes
/// old ones).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

enum Kind {
    Anonymous,
    Named(tempfile::TempPath),
}

/// A file being written, not yet visible under its name.
pub(crate) struct NewFile {
    file: File,
    kind: Kind,
    target: PathBuf,
}

fn proc_fd_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

impl NewFile {
    /// Starts writing `target` (its directory must exist) with permission bits `mode`
    /// (subject to the umask). With `replace`, [`NewFile::commit`] replaces an existing
    /// file; without, an existing file is kept.
    pub(crate) fn create(target: &Path, mode: u32, replace: bool) -> io::Result<NewFile> {
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !replace && proc_fd_available() {
            match OpenOptions::new()
                .write(true)
                .mode(mode)
                .custom_flags(libc::O_TMPFILE)
                .open(dir)
            {
                Ok(file) => {
                    return Ok(NewFile {
                        file,
                        kind: Kind::Anonymous,
                        target: target.to_owned(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                // No O_TMPFILE here: a named temporary file instead.
                Err(_) => {}
            }
        }
        let named = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .tempfile_in(dir)?;
        let (file, path) = named.into_parts();
        Ok(NewFile {
            file,
            kind: Kind::Named(path),
            target: target.to_owned(),
        })
    }

    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Makes the file visible under its name. Returns `false` if, without `replace`, a
    /// file of that name already existed (it is kept).
    pub(crate) fn commit(self) -> io::Result<bool> {
        match self.kind {
            Kind::Anonymous => {
                let source = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                match rustix::fs::linkat(
                    rustix::fs::CWD,
                    source.as_str(),
                    rustix::fs::CWD,
                    &self.target,
                    rustix::fs::AtFlags::SYMLINK_FOLLOW,
                ) {
                    Ok(()) => Ok(true),
                    Err(rustix::io::Errno::EXIST) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Kind::Named(path) => {
                path.persist(&self.target).map_err(|e| e.error)?;
                Ok(true)
            }
        }
    }
}

/// Creates `target` with `bytes` unless it exists (content-addressed objects: an existing
/// one has the same content). Creates the parent directory if needed.
pub(crate) fn create_new_with(target: &Path, mode: u32, bytes: &[u8]) -> io::Result<bool> {
    use std::io::Write;
    let mut new = match NewFile::create(target, mode, false) {
        Ok(new) => new,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            NewFile::create(target, mode, false)?
        }
        Err(e) => return Err(e),
    };
    new.file().write_all(bytes)?;
    new.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_appear_whole_and_existing_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/x");
        assert!(create_new_with(&target, 0o644, b"one").unwrap());
        assert!(!create_new_with(&target, 0o644, b"two").unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"one");

        // Dropped before commit: nothing appears, nothing is left.
        let other = dir.path().join("sub/y");
        {
            use std::io::Write;
            let mut new = NewFile::create(&other, 0o644, false).unwrap();
            new.file().write_all(b"half").unwrap();
        }
        assert!(!other.exists());
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);

        let mut new = NewFile::create(&target, 0o600, true).unwrap();
        std::io::Write::write_all(new.file(), b"three").unwrap();
        assert!(new.commit().unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"three");
    }
}
