//! What tar, gzip and zip share: safe member paths, symbolic links (which Rust's standard
//! library cannot make on WASI), modification times, and civil (UTC) dates for listings
//! and zip headers.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A member name made safe to extract under a directory: leading `/` and `./` removed and
/// `strip` leading components dropped. `None` when nothing is left or the name climbs out
/// with `..`.
pub fn member_path(name: &Path, strip: usize) -> Option<PathBuf> {
    let mut parts = Vec::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
        }
    }
    let path: PathBuf = parts.into_iter().skip(strip).collect();
    (!path.as_os_str().is_empty()).then_some(path)
}

/// Creates the symbolic link `link` pointing at `target`.
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    #[cfg(target_os = "wasi")]
    {
        use std::ffi::CString;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_encoded_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
        };
        let (target, link) = (c(target)?, c(link)?);
        // SAFETY: both are NUL-terminated strings that outlive the call.
        if unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(not(any(unix, target_os = "wasi")))]
    {
        let _ = (target, link);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "symbolic links are not supported here",
        ))
    }
}

/// Removes whatever is at `path` (not a directory) so a new member can take its place;
/// a symbolic link is removed rather than written through.
pub fn clear_for(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_dir() => fs::remove_file(path),
        _ => Ok(()),
    }
}

/// Creates the parent directories of `path`.
pub fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fs::create_dir_all(parent),
        _ => Ok(()),
    }
}

/// Seconds since the epoch of a modification time (0 before the epoch).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Sets the modification time of `file`; a failure is not worth an error.
pub fn set_mtime(file: &fs::File, seconds: u64) {
    let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(seconds));
}

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    /// The calendar time of `seconds` since the epoch (days-from-civil, Howard Hinnant).
    pub fn from_unix(seconds: i64) -> Civil {
        let days = seconds.div_euclid(86_400);
        let rest = seconds.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (rest / 3600) as u32,
            minute: (rest % 3600 / 60) as u32,
            second: (rest % 60) as u32,
        }
    }

    /// Seconds since the epoch of this calendar time.
    pub fn to_unix(self) -> i64 {
        let year = self.year - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let month = i64::from(self.month);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// `YYYY-MM-DD HH:MM`, as tar and unzip list times.
    pub fn minutes(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for seconds in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(Civil::from_unix(seconds).to_unix(), seconds);
        }
        let c = Civil::from_unix(951_782_400);
        assert_eq!((c.year, c.month, c.day), (2000, 2, 29));
    }

    #[test]
    fn member_paths() {
        assert_eq!(
            member_path(Path::new("/a/./b"), 0),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(
            member_path(Path::new("a/b/c"), 1),
            Some(PathBuf::from("b/c"))
        );
        assert_eq!(member_path(Path::new("a/../b"), 0), None);
        assert_eq!(member_path(Path::new("a/"), 1), None);
    }
}
