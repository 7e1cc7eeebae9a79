//! Host-side file operations below a capability directory, never following a link.
//!
//! A guest can plant symbolic links anywhere in the directories it may write (its source
//! directory, `/tmp`, `/root`), and swap a file for a link at any moment while the host
//! works on them. Every host operation on such a path therefore starts from a
//! [`cap_std::fs::Dir`] opened once at the directory's root ([`open_root`], the only use of
//! ambient authority here) and resolves the relative path one plain name at a time without
//! following a link in any component, the last one included (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where the kernel has it, else `openat` with
//! `O_NOFOLLOW` per component). Content is read from the opened handle, whose metadata is
//! checked after opening, never from the path again. `..`, `.`, empty components and
//! absolute paths are refused before any system call.
//!
//! Modes written on the host from a store tree or an artifact pass [`safe_mode`]: no
//! setuid, setgid or sticky bit, no group or world write.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use cap_std::fs::Dir;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

/// The permission bits kept when a mode from a store tree or a guest's file is written on
/// the host: owner bits, read and execute for group and others. Setuid, setgid, sticky
/// and group/world write (`0o7022`) are dropped.
pub const SAFE_MODE_MASK: u32 = 0o755;

/// `mode` with only the bits of [`SAFE_MODE_MASK`].
pub fn safe_mode(mode: u32) -> u32 {
    mode & SAFE_MODE_MASK
}

/// Opens the root of a capability (a host path chosen by wasmbuild, never by a guest).
pub fn open_root(path: &Path) -> io::Result<Dir> {
    Dir::open_ambient_dir(path, cap_std::ambient_authority())
}

/// The plain names of `rel` (`/`-separated, relative); an empty `rel` is the root itself.
fn components(rel: &str) -> io::Result<Vec<&str>> {
    if rel.is_empty() {
        return Ok(Vec::new());
    }
    if rel.starts_with('/') || rel.contains('\0') {
        return Err(refused(rel));
    }
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(refused(rel));
    }
    Ok(parts)
}

fn refused(rel: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{rel:?} is not a plain relative path"),
    )
}

/// Whether `openat2` is worth trying (cleared when the kernel or a seccomp filter lacks it).
static OPENAT2: AtomicBool = AtomicBool::new(true);

/// Opens `rel` below `root` with `flags`, following no link in any component (a link as
/// the last component fails, unless `flags` has `O_PATH`, which opens the link itself).
pub fn open(root: &impl AsFd, rel: &str, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
    let parts = components(rel)?;
    let mut flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if !flags.contains(OFlags::PATH) {
        // (`openat2` refuses any other flag beside O_PATH.)
        flags |= OFlags::NOCTTY;
    }
    let mode = Mode::from_raw_mode(mode);
    if parts.is_empty() {
        return Ok(rustix::fs::openat(root, ".", flags, mode)?);
    }
    if OPENAT2.load(Ordering::Relaxed) {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        for _ in 0..4 {
            match rustix::fs::openat2(root, rel, flags, mode, resolve) {
                Ok(fd) => return Ok(fd),
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                    OPENAT2.store(false, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    // One name at a time, each directory opened without following a link.
    let (last, dirs) = parts.split_last().expect("not empty");
    let mut current: Option<OwnedFd> = None;
    for name in dirs {
        let next = match &current {
            Some(fd) => rustix::fs::openat(fd, *name, dir_flags(), Mode::empty()),
            None => rustix::fs::openat(root, *name, dir_flags(), Mode::empty()),
        }?;
        current = Some(next);
    }
    Ok(match &current {
        Some(fd) => rustix::fs::openat(fd, *last, flags, mode),
        None => rustix::fs::openat(root, *last, flags, mode),
    }?)
}

fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens the directory `rel` below `root` (`""`: the root itself) as a capability.
pub fn open_dir(root: &impl AsFd, rel: &str) -> io::Result<Dir> {
    let fd = open(root, rel, OFlags::RDONLY | OFlags::DIRECTORY, 0)?;
    Ok(Dir::from_std_file(File::from(fd)))
}

/// Opens the regular file `rel` below `root` for reading; anything else (a link, a fifo, a
/// device, a directory) is refused, checked on the opened handle.
pub fn open_file(root: &impl AsFd, rel: &str) -> io::Result<File> {
    let fd = open(root, rel, OFlags::RDONLY | OFlags::NONBLOCK, 0)?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel}: not a regular file"),
        ));
    }
    // Back to blocking reads (a regular file ignores it; kept tidy for the copy).
    let fd_flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, fd_flags - OFlags::NONBLOCK)?;
    Ok(file)
}

/// The metadata of `rel` itself (a link is not followed), reached without following links.
pub fn symlink_metadata(root: &impl AsFd, rel: &str) -> io::Result<Metadata> {
    let fd = open(root, rel, OFlags::PATH, 0)?;
    File::from(fd).metadata()
}

/// The target of the link `rel`, reached without following links.
pub fn read_link(root: &impl AsFd, rel: &str) -> io::Result<Vec<u8>> {
    let fd = open(root, rel, OFlags::PATH, 0)?;
    let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
    Ok(target.into_bytes())
}

/// What an error of these functions means, in words: a link met on the way (`ELOOP` from
/// `O_NOFOLLOW` or `RESOLVE_NO_SYMLINKS`) says so.
pub fn why(err: &io::Error) -> String {
    if err.raw_os_error() == Some(libc::ELOOP) {
        "a symbolic link is on its path".to_owned()
    } else {
        err.to_string()
    }
}

/// `rel` split into its parent (`""` for the root) and its last name.
pub fn split(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

/// Sets the permission bits of the file or directory `rel` (not a link) to `mode`.
pub fn set_mode(root: &impl AsFd, rel: &str, mode: u32) -> io::Result<()> {
    let fd = open(root, rel, OFlags::RDONLY | OFlags::NONBLOCK, 0)?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(())
}

/// Creates the directory `name` in `dir`.
pub fn mkdir(dir: &impl AsFd, name: &str, mode: u32) -> io::Result<()> {
    components(name)?;
    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode))?)
}

/// Replaces whatever is at `name` in `dir` (a file, a link: never written through) with a
/// symbolic link to `target`.
pub fn replace_with_symlink(dir: &impl AsFd, name: &str, target: &[u8]) -> io::Result<()> {
    components(name)?;
    let tmp = temp_name("link");
    rustix::fs::symlinkat(OsStr::from_bytes(target), dir, tmp.as_str())?;
    if let Err(e) = rustix::fs::renameat(dir, tmp.as_str(), dir, name) {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        return Err(e.into());
    }
    Ok(())
}

fn temp_name(what: &str) -> String {
    format!(".wasmbuild-{what}-{}", uuid::Uuid::new_v4().simple())
}

/// One entry found by [`walk`]: its path relative to the root and its type (of the entry
/// itself: a link is a link).
pub struct Found {
    pub rel: String,
    pub kind: Kind,
}

/// What an entry is (a link is a link, never what it points to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A fifo, socket or device.
    Other,
}

impl Kind {
    pub fn of(file_type: std::fs::FileType) -> Kind {
        Kind::from_tests(
            file_type.is_symlink(),
            file_type.is_dir(),
            file_type.is_file(),
        )
    }

    fn of_cap(file_type: cap_std::fs::FileType) -> Kind {
        Kind::from_tests(
            file_type.is_symlink(),
            file_type.is_dir(),
            file_type.is_file(),
        )
    }

    fn from_tests(symlink: bool, dir: bool, file: bool) -> Kind {
        match (symlink, dir, file) {
            (true, _, _) => Kind::Symlink,
            (_, true, _) => Kind::Dir,
            (_, _, true) => Kind::File,
            _ => Kind::Other,
        }
    }
}

/// Every entry at and below `base` (relative to `root`; `""` lists below the root only),
/// sorted by path, never following a link: a link is listed, not entered, even when it is
/// `base` itself. Directories that cannot be read are reported in `errors`.
pub fn walk(root: &Dir, base: &str, errors: &mut Vec<String>) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    if !base.is_empty() {
        let meta = symlink_metadata(root, base)?;
        found.push(Found {
            rel: base.to_owned(),
            kind: Kind::of(meta.file_type()),
        });
        if !meta.is_dir() {
            return Ok(found);
        }
    }
    let dir = open_dir(root, base)?;
    walk_dir(&dir, base, &mut found, errors);
    Ok(found)
}

fn walk_dir(dir: &Dir, rel: &str, found: &mut Vec<Found>, errors: &mut Vec<String>) {
    let entries = match dir.entries() {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(format!("{rel}: {e}"));
            return;
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        match entry.and_then(|e| Ok((e.file_name(), e.file_type()?))) {
            Ok((name, file_type)) => match name.to_str() {
                Some(name) => names.push((name.to_owned(), Kind::of_cap(file_type))),
                None => errors.push(format!(
                    "{}: name is not UTF-8",
                    join(rel, &name.to_string_lossy())
                )),
            },
            Err(e) => errors.push(format!("{rel}: {e}")),
        }
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in names {
        let path = join(rel, &name);
        let is_dir = kind == Kind::Dir;
        found.push(Found {
            rel: path.clone(),
            kind,
        });
        if is_dir {
            // Opened by name without following: a directory swapped for a link since the
            // listing fails here instead of being entered.
            match open_dir(dir, &name) {
                Ok(sub) => walk_dir(&sub, &path, found, errors),
                Err(e) => errors.push(format!("{path}: {e}")),
            }
        }
    }
}

/// `rel/name` (`name` alone below the root).
pub fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

/// A file being written as `name` in a directory capability, visible only once complete:
/// an anonymous inode linked into place, or (to replace what is there, a link included) a
/// temporary name renamed over it. Nothing is ever written through an existing entry.
pub struct NewFileAt {
    dir: Dir,
    name: String,
    file: File,
    temp: Option<String>,
}

impl NewFileAt {
    /// Starts writing `name` in `dir` with permission bits `mode` (subject to the umask;
    /// set them exactly on [`NewFileAt::file`]). With `replace`, [`NewFileAt::commit`]
    /// replaces an existing entry; without, an existing entry is kept.
    pub fn create(dir: Dir, name: &str, mode: u32, replace: bool) -> io::Result<NewFileAt> {
        components(name)?;
        if name.contains('/') {
            return Err(refused(name));
        }
        let mode_bits = Mode::from_raw_mode(mode);
        // An anonymous file is linked into place through /proc/self/fd.
        static PROC_FD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let proc_fd = *PROC_FD.get_or_init(|| Path::new("/proc/self/fd").is_dir());
        if !replace && proc_fd {
            match rustix::fs::openat(
                &dir,
                ".",
                OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
                mode_bits,
            ) {
                Ok(fd) => {
                    return Ok(NewFileAt {
                        dir,
                        name: name.to_owned(),
                        file: File::from(fd),
                        temp: None,
                    });
                }
                Err(rustix::io::Errno::NOENT) => return Err(io::ErrorKind::NotFound.into()),
                // No O_TMPFILE here: a named temporary file instead.
                Err(_) => {}
            }
        }
        let temp = temp_name("new");
        let fd = rustix::fs::openat(
            &dir,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode_bits,
        )?;
        Ok(NewFileAt {
            dir,
            name: name.to_owned(),
            file: File::from(fd),
            temp: Some(temp),
        })
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Makes the file visible under its name. Returns `false` if, without `replace`, an
    /// entry of that name already existed (it is kept). The file is returned for a last
    /// look at its metadata.
    pub fn commit(mut self) -> io::Result<(bool, File)> {
        let file = self.file.try_clone()?;
        match self.temp.take() {
            None => {
                let source = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
                match rustix::fs::linkat(
                    rustix::fs::CWD,
                    source.as_str(),
                    &self.dir,
                    self.name.as_str(),
                    AtFlags::SYMLINK_FOLLOW,
                ) {
                    Ok(()) => Ok((true, file)),
                    Err(rustix::io::Errno::EXIST) => Ok((false, file)),
                    Err(e) => Err(e.into()),
                }
            }
            Some(temp) => {
                if let Err(e) =
                    rustix::fs::renameat(&self.dir, temp.as_str(), &self.dir, self.name.as_str())
                {
                    let _ = rustix::fs::unlinkat(&self.dir, temp.as_str(), AtFlags::empty());
                    return Err(e.into());
                }
                Ok((true, file))
            }
        }
    }
}

impl Drop for NewFileAt {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = rustix::fs::unlinkat(&self.dir, temp.as_str(), AtFlags::empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_never_followed() {
        check_links_are_never_followed();
    }

    #[test]
    fn links_are_never_followed_without_openat2() {
        // The per-component fallback (kernels before 5.6, seccomp filters); the other tests
        // may meanwhile take either path, both of which refuse links.
        OPENAT2.store(false, Ordering::Relaxed);
        check_links_are_never_followed();
        OPENAT2.store(true, Ordering::Relaxed);
    }

    fn check_links_are_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        std::fs::write(root.path().join("d/f"), "in").unwrap();
        symlink(outside.path(), root.path().join("out")).unwrap();
        symlink(outside.path().join("secret"), root.path().join("d/l")).unwrap();
        symlink("f", root.path().join("d/inner")).unwrap();
        let dir = open_root(root.path()).unwrap();
        assert!(open_file(&dir, "d/f").is_ok());
        assert!(open_file(&dir, "out/secret").is_err());
        assert!(open_file(&dir, "d/l").is_err());
        assert!(open_file(&dir, "d/inner").is_err());
        assert!(open_file(&dir, "d/../d/f").is_err());
        assert!(open_file(&dir, "/etc/passwd").is_err());
        assert!(open_dir(&dir, "out").is_err());
        assert!(
            symlink_metadata(&dir, "d/l")
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(read_link(&dir, "d/inner").unwrap(), b"f");
        let mut errors = Vec::new();
        let all: Vec<String> = walk(&dir, "", &mut errors)
            .unwrap()
            .into_iter()
            .map(|f| f.rel)
            .collect();
        assert_eq!(all, ["d", "d/f", "d/inner", "d/l", "out"]);
        let base = walk(&dir, "out", &mut errors).unwrap();
        assert_eq!(base.len(), 1);
        assert_eq!(base[0].kind, Kind::Symlink);
        assert!(errors.is_empty());
    }

    #[test]
    fn new_files_replace_links_instead_of_writing_through_them() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let root = tempfile::tempdir().unwrap();
        symlink(outside.path().join("secret"), root.path().join("l")).unwrap();
        let dir = open_root(root.path()).unwrap();
        let new = NewFileAt::create(dir.try_clone().unwrap(), "l", 0o644, false).unwrap();
        let (created, _) = new.commit().unwrap();
        assert!(!created, "an existing entry is kept without replace");
        let mut new = NewFileAt::create(dir.try_clone().unwrap(), "l", 0o644, true).unwrap();
        io::Write::write_all(new.file(), b"new").unwrap();
        assert!(new.commit().unwrap().0);
        assert_eq!(
            std::fs::read(outside.path().join("secret")).unwrap(),
            b"host"
        );
        assert_eq!(std::fs::read(root.path().join("l")).unwrap(), b"new");
        assert!(!root.path().join("l").is_symlink());
        replace_with_symlink(&dir, "l", b"x").unwrap();
        assert_eq!(
            std::fs::read_link(root.path().join("l")).unwrap(),
            Path::new("x")
        );
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn modes_lose_special_and_write_bits() {
        assert_eq!(safe_mode(0o6777), 0o755);
        assert_eq!(safe_mode(0o1777), 0o755);
        assert_eq!(safe_mode(0o664), 0o644);
        assert_eq!(safe_mode(0o600), 0o600);
    }
}
