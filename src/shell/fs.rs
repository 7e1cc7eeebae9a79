//! The build's filesystem as the shell sees it: guest paths resolved, lexically, onto the
//! capability-scoped `cap_std` directories of the layout's mounts, opened once. Redirections,
//! globbing, `test -f`, `cd` and `source` go through here; nothing else of the host is
//! reachable. Programs see the same mounts through the sandbox, not through this type.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, OpenOptions, PermissionsExt};

use crate::sandbox::layout::Layout;

/// A mount directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {} for the guest's {guest}: {source}", host.display())]
pub struct GuestFsError {
    pub guest: String,
    pub host: std::path::PathBuf,
    pub source: io::Error,
}

/// The directories a build may touch, by guest path. Cheap to clone (shared handles).
#[derive(Clone, Default)]
pub struct GuestFs {
    mounts: Arc<Vec<MountDir>>,
}

struct MountDir {
    guest: String,
    dir: Dir,
    writable: bool,
}

/// What kind of entry a guest path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// What the shell needs to know about an entry.
#[derive(Debug, Clone)]
pub struct GuestMetadata {
    pub kind: EntryKind,
    pub len: u64,
    /// Unix permission bits (0 for the virtual directories above the mounts).
    pub mode: u32,
    /// Whether the mount holding the entry may be written.
    pub writable: bool,
    pub modified: Option<SystemTime>,
}

enum Location<'a> {
    Mounted {
        mount: &'a MountDir,
        rel: &'a str,
    },
    /// A directory above the mounts (`/`, `/codebuild`, `/opt/runtimes`): read-only, listing
    /// only the next component of each mount below it.
    Virtual(Vec<String>),
    Missing,
}

impl std::fmt::Debug for GuestFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.mounts.iter().map(|m| &m.guest))
            .finish()
    }
}

impl GuestFs {
    /// Opens every mount of the layout. This is the only place that uses ambient authority.
    pub fn open(layout: &Layout) -> Result<Self, GuestFsError> {
        let mut mounts = Vec::with_capacity(layout.mounts.len());
        for mount in &layout.mounts {
            let dir =
                Dir::open_ambient_dir(&mount.host, ambient_authority()).map_err(|source| {
                    GuestFsError {
                        guest: mount.guest.clone(),
                        host: mount.host.clone(),
                        source,
                    }
                })?;
            mounts.push(MountDir {
                guest: normalize("/", &mount.guest),
                dir,
                writable: mount.writable,
            });
        }
        Ok(GuestFs {
            mounts: Arc::new(mounts),
        })
    }

    /// A filesystem with nothing in it (every path is missing).
    pub fn empty() -> Self {
        GuestFs::default()
    }

    fn locate<'a>(&'a self, path: &'a str) -> Location<'a> {
        let best = self
            .mounts
            .iter()
            .filter_map(|m| {
                let rest = if m.guest == "/" {
                    Some(path.trim_start_matches('/'))
                } else {
                    let rest = path.strip_prefix(m.guest.as_str())?;
                    if rest.is_empty() {
                        Some("")
                    } else {
                        rest.strip_prefix('/')
                    }
                };
                rest.map(|r| (m, r))
            })
            .max_by_key(|(m, _)| m.guest.len());
        if let Some((mount, rel)) = best {
            return Location::Mounted { mount, rel };
        }
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        let mut children: Vec<String> = self
            .mounts
            .iter()
            .filter_map(|m| m.guest.strip_prefix(prefix.as_str()))
            .filter_map(|rest| rest.split('/').next())
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        if children.is_empty() {
            return Location::Missing;
        }
        children.sort();
        children.dedup();
        Location::Virtual(children)
    }

    /// Opens a file for reading. `path` is absolute and normalised.
    pub fn open_read(&self, path: &str) -> io::Result<File> {
        match self.locate(path) {
            Location::Mounted { mount, rel } => mount.dir.open(cap_path(rel)),
            Location::Virtual(_) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            Location::Missing => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// Reads a whole file.
    pub fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let mut file = self.open_read(path)?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut file, &mut bytes)?;
        Ok(bytes)
    }

    /// Opens a file for writing, creating it; truncates it unless `append`.
    pub fn create(&self, path: &str, append: bool) -> io::Result<File> {
        match self.locate(path) {
            Location::Mounted { mount, rel } => {
                if !mount.writable {
                    return Err(io::Error::from(io::ErrorKind::ReadOnlyFilesystem));
                }
                if rel.is_empty() {
                    return Err(io::Error::from(io::ErrorKind::IsADirectory));
                }
                let mut options = OpenOptions::new();
                options.write(true).create(true);
                if append {
                    options.append(true);
                } else {
                    options.truncate(true);
                }
                mount.dir.open_with(rel, &options)
            }
            Location::Virtual(_) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            Location::Missing => Err(missing_or_read_only(path, self)),
        }
    }

    /// Metadata of the entry, following symlinks (within the mount).
    pub fn metadata(&self, path: &str) -> io::Result<GuestMetadata> {
        self.stat(path, true)
    }

    /// Metadata of the entry itself, not following a final symlink.
    pub fn symlink_metadata(&self, path: &str) -> io::Result<GuestMetadata> {
        self.stat(path, false)
    }

    fn stat(&self, path: &str, follow: bool) -> io::Result<GuestMetadata> {
        match self.locate(path) {
            Location::Mounted { mount, rel } => {
                let meta = if rel.is_empty() {
                    mount.dir.dir_metadata()?
                } else if follow {
                    mount.dir.metadata(rel)?
                } else {
                    mount.dir.symlink_metadata(rel)?
                };
                let file_type = meta.file_type();
                let kind = if file_type.is_symlink() {
                    EntryKind::Symlink
                } else if file_type.is_dir() {
                    EntryKind::Dir
                } else if file_type.is_file() {
                    EntryKind::File
                } else {
                    EntryKind::Other
                };
                Ok(GuestMetadata {
                    kind,
                    len: meta.len(),
                    mode: meta.permissions().mode(),
                    writable: mount.writable,
                    modified: meta.modified().ok().map(|t| t.into_std()),
                })
            }
            Location::Virtual(_) => Ok(GuestMetadata {
                kind: EntryKind::Dir,
                len: 0,
                mode: 0o555,
                writable: false,
                modified: None,
            }),
            Location::Missing => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// Sets the permission bits of the entry (following a symlink within its mount).
    pub fn set_mode(&self, path: &str, mode: u32) -> io::Result<()> {
        match self.locate(path) {
            Location::Mounted { mount, rel } => {
                if !mount.writable {
                    return Err(io::Error::from(io::ErrorKind::ReadOnlyFilesystem));
                }
                let permissions = cap_std::fs::Permissions::from_mode(mode & 0o7777);
                mount.dir.set_permissions(cap_path(rel), permissions)
            }
            Location::Virtual(_) => Err(io::Error::from(io::ErrorKind::ReadOnlyFilesystem)),
            Location::Missing => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// Whether `path` names a directory.
    pub fn is_dir(&self, path: &str) -> bool {
        self.metadata(path).is_ok_and(|m| m.kind == EntryKind::Dir)
    }

    /// The names in a directory, unsorted, without `.` and `..`.
    pub fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        match self.locate(path) {
            Location::Mounted { mount, rel } => {
                let entries = mount.dir.read_dir(cap_path(rel))?;
                let mut names = Vec::new();
                for entry in entries {
                    names.push(entry?.file_name().to_string_lossy().into_owned());
                }
                // Mounts nested below this directory show up even if no entry stands there.
                let prefix = if path == "/" {
                    "/".to_owned()
                } else {
                    format!("{path}/")
                };
                for m in self.mounts.iter() {
                    if let Some(child) = m.guest.strip_prefix(prefix.as_str())
                        && !child.is_empty()
                        && !child.contains('/')
                        && !names.iter().any(|n| n == child)
                    {
                        names.push(child.to_owned());
                    }
                }
                Ok(names)
            }
            Location::Virtual(children) => Ok(children),
            Location::Missing => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

fn cap_path(rel: &str) -> &str {
    if rel.is_empty() { "." } else { rel }
}

fn missing_or_read_only(path: &str, fs: &GuestFs) -> io::Error {
    // Creating a file directly in a virtual directory (e.g. `/x` or `/opt/runtimes/x`) is a
    // write to a read-only place; anything deeper is a missing directory.
    let parent = parent_of(path);
    if matches!(fs.locate(parent), Location::Virtual(_)) {
        io::Error::from(io::ErrorKind::ReadOnlyFilesystem)
    } else {
        io::Error::from(io::ErrorKind::NotFound)
    }
}

/// The parent of an absolute normalised path (`/` for `/` itself).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Makes `path` absolute against `cwd` and removes `.`, `..` and repeated slashes lexically;
/// `..` never climbs above `/`. `cwd` must be absolute.
pub fn normalize(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined_cwd = if path.starts_with('/') { "" } else { cwd };
    for part in joined_cwd.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + cwd.len());
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The message bash prints for an I/O error (`strerror`), without the OS error number.
pub fn describe_io_error(err: &io::Error) -> String {
    use io::ErrorKind::*;
    match err.kind() {
        NotFound => "No such file or directory".into(),
        PermissionDenied => "Permission denied".into(),
        IsADirectory => "Is a directory".into(),
        NotADirectory => "Not a directory".into(),
        ReadOnlyFilesystem => "Read-only file system".into(),
        AlreadyExists => "File exists".into(),
        BrokenPipe => "Broken pipe".into(),
        _ => {
            // Escapes of the capability directory are refused by cap-std with a generic
            // error; keep its text, which says so.
            let text = err.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::layout::Mount;

    #[test]
    fn normalize_is_lexical_and_never_climbs_above_root() {
        assert_eq!(normalize("/a/b", "c"), "/a/b/c");
        assert_eq!(normalize("/a/b", "../c/./d/"), "/a/c/d");
        assert_eq!(normalize("/a", "../../.."), "/");
        assert_eq!(normalize("/a", "/x//y/.."), "/x");
        assert_eq!(normalize("/", "."), "/");
    }

    fn layout(src: &std::path::Path, ro: &std::path::Path) -> Layout {
        Layout {
            mounts: vec![
                Mount {
                    guest: "/codebuild/output/src".into(),
                    host: src.into(),
                    writable: true,
                },
                Mount {
                    guest: "/opt/runtimes/base".into(),
                    host: ro.into(),
                    writable: false,
                },
            ],
        }
    }

    #[test]
    fn writes_go_to_writable_mounts_only() {
        let src = tempfile::tempdir().unwrap();
        let ro = tempfile::tempdir().unwrap();
        let fs = GuestFs::open(&layout(src.path(), ro.path())).unwrap();
        io::Write::write_all(
            &mut fs.create("/codebuild/output/src/a.txt", false).unwrap(),
            b"hi",
        )
        .unwrap();
        assert_eq!(std::fs::read(src.path().join("a.txt")).unwrap(), b"hi");
        let err = fs.create("/opt/runtimes/base/x", false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ReadOnlyFilesystem);
        let err = fs.create("/etc/passwd", false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            fs.create("/x", false).unwrap_err().kind(),
            io::ErrorKind::ReadOnlyFilesystem
        );
    }

    #[test]
    fn virtual_directories_list_the_mounts_below_them() {
        let src = tempfile::tempdir().unwrap();
        let ro = tempfile::tempdir().unwrap();
        let fs = GuestFs::open(&layout(src.path(), ro.path())).unwrap();
        let mut root = fs.read_dir("/").unwrap();
        root.sort();
        assert_eq!(root, ["codebuild", "opt"]);
        assert!(fs.is_dir("/opt/runtimes"));
        assert!(fs.is_dir("/codebuild/output/src"));
        assert!(!fs.is_dir("/etc"));
    }

    #[test]
    fn symlinks_escaping_the_mount_are_refused() {
        let src = tempfile::tempdir().unwrap();
        let ro = tempfile::tempdir().unwrap();
        std::fs::write(ro.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(ro.path().join("secret"), src.path().join("link")).unwrap();
        std::os::unix::fs::symlink("../../", src.path().join("up")).unwrap();
        let fs = GuestFs::open(&layout(src.path(), ro.path())).unwrap();
        assert!(fs.read("/codebuild/output/src/link").is_err());
        assert!(fs.read_dir("/codebuild/output/src/up").is_err());
        // Writes and tests through such links: refused, the file outside untouched.
        assert!(fs.create("/codebuild/output/src/link", false).is_err());
        assert!(fs.create("/codebuild/output/src/link", true).is_err());
        assert!(fs.create("/codebuild/output/src/up/new", false).is_err());
        assert!(fs.metadata("/codebuild/output/src/link").is_err());
        assert_eq!(
            fs.symlink_metadata("/codebuild/output/src/link")
                .unwrap()
                .kind,
            EntryKind::Symlink
        );
        assert_eq!(std::fs::read(ro.path().join("secret")).unwrap(), b"s");
    }
}
