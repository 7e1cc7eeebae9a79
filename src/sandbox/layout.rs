//! The guest's filesystem layout: which host directories the guest sees, at which guest
//! paths, and whether it may write there. A plain value; the sandbox turns it into WASI
//! preopens and the shell into capability-scoped `cap_std` directories.

use std::io;
use std::path::PathBuf;

use cap_std::fs::Dir;

/// Guest path of the build's source workspace (`CODEBUILD_SRC_DIR`).
pub const SRC_DIR: &str = "/codebuild/output/src";
/// Guest path of the per-build home directory (`HOME`).
pub const HOME_DIR: &str = "/root";
/// Guest path of the per-build scratch directory.
pub const TMP_DIR: &str = "/tmp";
/// Guest directory under which each runtime bundle's files appear read-only.
pub const RUNTIMES_DIR: &str = "/opt/runtimes";

/// One host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute guest path, e.g. `/codebuild/output/src`.
    pub guest: String,
    /// The host directory behind it.
    pub host: PathBuf,
    /// Whether the guest may create, modify or delete entries below it.
    pub writable: bool,
}

/// Every directory a guest can reach. Nothing outside these mounts exists for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub mounts: Vec<Mount>,
}

impl Layout {
    /// The standard build layout of DESIGN.md: workspace, `/tmp` and `/root` read-write.
    pub fn build(src: PathBuf, tmp: PathBuf, home: PathBuf) -> Self {
        Layout {
            mounts: vec![
                Mount {
                    guest: SRC_DIR.into(),
                    host: src,
                    writable: true,
                },
                Mount {
                    guest: TMP_DIR.into(),
                    host: tmp,
                    writable: true,
                },
                Mount {
                    guest: HOME_DIR.into(),
                    host: home,
                    writable: true,
                },
            ],
        }
    }

    /// Adds a runtime bundle's files, read-only, at `/opt/runtimes/<name>`.
    pub fn add_bundle(&mut self, name: &str, host: PathBuf) {
        self.mounts.push(Mount {
            guest: format!("{RUNTIMES_DIR}/{name}"),
            host,
            writable: false,
        });
    }

    /// The mount holding `guest_path` (an absolute, normalised guest path) and the path
    /// relative to that mount's root. The longest matching mount wins.
    pub fn resolve<'a>(&self, guest_path: &'a str) -> Option<(&Mount, &'a str)> {
        self.mounts
            .iter()
            .filter_map(|m| {
                let rest = guest_path.strip_prefix(m.guest.as_str())?;
                if rest.is_empty() {
                    Some((m, ""))
                } else {
                    rest.strip_prefix('/').map(|r| (m, r))
                }
            })
            .max_by_key(|(m, _)| m.guest.len())
    }

    /// Opens the guest directory `guest_path` (absolute, normalised) on the host through a
    /// capability: the mount's root is opened, then the path below it is resolved by cap-std,
    /// which refuses `..` above the root and symbolic links (relative or absolute, direct or
    /// chained) that lead out of the mount. The host path is never reopened by string.
    pub fn open_dir(&self, guest_path: &str) -> io::Result<Dir> {
        let (mount, rel) = self.resolve(guest_path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{guest_path} is not inside any directory the guest can see"),
            )
        })?;
        let root = Dir::open_ambient_dir(&mount.host, cap_std::ambient_authority())?;
        if rel.is_empty() {
            Ok(root)
        } else {
            root.open_dir(rel)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_picks_longest_mount_and_respects_component_boundaries() {
        let mut layout = Layout::build("/h/src".into(), "/h/tmp".into(), "/h/home".into());
        layout.add_bundle("base", "/h/base".into());
        let (m, rest) = layout.resolve("/codebuild/output/src/a/b").unwrap();
        assert_eq!((m.host.to_str().unwrap(), rest), ("/h/src", "a/b"));
        let (m, rest) = layout.resolve("/opt/runtimes/base").unwrap();
        assert_eq!((m.host.to_str().unwrap(), rest), ("/h/base", ""));
        assert!(layout.resolve("/tmpfoo").is_none());
        assert!(layout.resolve("/etc/passwd").is_none());
    }
}
