//! The local-directory backend. Objects are files under the root (`blobs/…`, `refs/…`);
//! every write goes to `tmp/` first and is renamed into place, so a reader (or a process
//! killed mid-write) never leaves half an object under a valid name. Blobs are not fsynced
//! one by one (a blob torn by a power cut fails verification and counts as missing);
//! references are.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;

use super::atomic::{NewFile, TEMP_PREFIX, create_new_with};
use super::backend::{DirectBatch, ObjectBackend, ObjectInfo, Payload, PutBatch, prefix_dir};
use super::{StoreError, io_err};

/// A store kept in a local directory.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    tmp: PathBuf,
}

impl LocalBackend {
    /// Names of the entries of `dir` (below the root) of a kind `keep` accepts, hidden
    /// (temporary) ones left out; an absent directory has none.
    fn entries(
        &self,
        dir: &str,
        keep: impl Fn(fs::FileType) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        let path = self.root.join(dir);
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        Ok(entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(&keep))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect())
    }

    /// Opens (creating if needed) the directory store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for sub in ["blobs", "refs", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let tmp = root.join("tmp");
        Ok(LocalBackend { root, tmp })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        self.path(&super::blob_key(digest))
    }

    /// Moves a verified-or-not temporary copy of blob `digest` into place (read-through
    /// copies of remote blobs; they are verified on every read).
    pub(crate) fn adopt_blob(
        &self,
        temp: tempfile::TempPath,
        digest: &str,
    ) -> Result<(), StoreError> {
        self.persist_temp(temp, &self.blob_path(digest))
    }

    /// Renames `temp` to `target`, creating the parent directory if needed.
    fn persist_temp(&self, temp: tempfile::TempPath, target: &Path) -> Result<(), StoreError> {
        match temp.persist(target) {
            Ok(()) => Ok(()),
            Err(e) if e.error.kind() == io::ErrorKind::NotFound => {
                let parent = target.parent().expect("keys have a directory");
                fs::create_dir_all(parent).map_err(io_err(parent))?;
                match e.path.persist(target) {
                    Ok(()) => Ok(()),
                    Err(e) => copy_then_persist(e.path, target, &self.tmp),
                }
            }
            // A temporary file on another file system: copy it beside the target.
            Err(e) if e.error.raw_os_error() == Some(libc::EXDEV) => {
                copy_then_persist(e.path, target, &self.tmp)
            }
            Err(e) => Err(io_err(target)(e.error)),
        }
    }

    /// Writes `target` (replacing it) through a temporary file in its directory, fsynced.
    fn write_replace(&self, target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let mut new = match NewFile::create(target, 0o644, true) {
            Ok(new) => new,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = target.parent().expect("keys have a directory");
                fs::create_dir_all(parent).map_err(io_err(parent))?;
                NewFile::create(target, 0o644, true).map_err(io_err(target))?
            }
            Err(e) => return Err(io_err(target)(e)),
        };
        new.file().write_all(bytes).map_err(io_err(target))?;
        new.file().sync_data().map_err(io_err(target))?;
        new.commit().map_err(io_err(target))?;
        Ok(())
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.root
            .join("locks")
            .join(format!("{}.lock", key.replace('/', "%")))
    }

    /// Writes a blob from a borrowed buffer (kept if it exists).
    pub(crate) fn put_slice(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let target = self.path(key);
        create_new_with(&target, 0o644, bytes)
            .map(|_| ())
            .map_err(io_err(&target))
    }

    /// Removes temporary files older than `age` left by killed processes (in `tmp/`, and
    /// named ones beside blobs and references). Returns how many went.
    pub(crate) fn clean_temporaries(&self, age: std::time::Duration) -> u64 {
        let now = SystemTime::now();
        let old = |meta: &fs::Metadata| {
            meta.modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|a| a >= age)
        };
        let mut removed = 0;
        if let Ok(entries) = fs::read_dir(&self.tmp) {
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if old(&meta) {
                    let result = if meta.is_dir() {
                        fs::remove_dir_all(entry.path())
                    } else {
                        fs::remove_file(entry.path())
                    };
                    removed += u64::from(result.is_ok());
                }
            }
        }
        for area in ["blobs", "refs"] {
            for entry in walkdir::WalkDir::new(self.root.join(area))
                .into_iter()
                .flatten()
            {
                let name = entry.file_name().as_encoded_bytes();
                if entry.file_type().is_file()
                    && name.starts_with(TEMP_PREFIX.as_bytes())
                    && entry.metadata().is_ok_and(|m| old(&m))
                {
                    removed += u64::from(fs::remove_file(entry.path()).is_ok());
                }
            }
        }
        removed
    }

    /// Takes the machine-wide lock named `key` (a lock file; released when the returned
    /// file is dropped).
    pub(crate) fn lock(&self, key: &str) -> Result<File, StoreError> {
        let lock_path = self.lock_path(key);
        if let Some(parent) = lock_path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        // The lock file is never replaced, so every process locks the same inode.
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        Ok(lock)
    }
}

fn copy_then_persist(
    source: tempfile::TempPath,
    target: &Path,
    tmp_dir: &Path,
) -> Result<(), StoreError> {
    let mut copy = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_err(tmp_dir))?;
    let mut file = File::open(&source).map_err(io_err(&source))?;
    io::copy(&mut file, copy.as_file_mut()).map_err(io_err(target))?;
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    copy.persist(target).map_err(|e| io_err(target)(e.error))?;
    Ok(())
}

/// A temporary file in `path`'s directory (created if need be), to be renamed onto `path`.
pub(crate) fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, StoreError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    tempfile::Builder::new()
        .prefix(".wasmbuild-")
        .tempfile_in(parent)
        .map_err(io_err(parent))
}

/// Writes `bytes` to `path` atomically through a temporary file in the same directory.
pub(crate) fn write_atomic_beside(path: &Path, bytes: &[u8], sync: bool) -> Result<(), StoreError> {
    let mut tmp = temp_beside(path)?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    if sync {
        tmp.as_file().sync_data().map_err(io_err(path))?;
    }
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

fn modified(meta: &fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

impl ObjectBackend for LocalBackend {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn get_head(&self, key: &str, len: u64) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key);
        match File::open(&path) {
            Ok(file) => {
                let mut bytes = Vec::new();
                file.take(len)
                    .read_to_end(&mut bytes)
                    .map_err(io_err(&path))?;
                Ok(Some(bytes.into()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, StoreError> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn get_to_writer(
        &self,
        key: &str,
        out: &mut File,
        _show_progress: bool,
    ) -> Result<bool, StoreError> {
        let path = self.path(key);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(&path)(e)),
        };
        io::copy(&mut file, out).map_err(io_err(&path))?;
        Ok(true)
    }

    fn download_many(&self, items: &[(String, PathBuf)], tmp_dir: &Path) -> Result<(), StoreError> {
        for (key, dest) in items {
            let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_err(tmp_dir))?;
            if self.get_to_writer(key, tmp.as_file_mut(), false)? {
                self.persist_temp(tmp.into_temp_path(), dest)?;
            }
        }
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.path(key).is_file())
    }

    fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, StoreError> {
        keys.iter().map(|k| self.exists(k)).collect()
    }

    fn put(&self, key: &str, payload: Payload) -> Result<(), StoreError> {
        let target = self.path(key);
        let sync = key.starts_with("refs/");
        match payload {
            Payload::Bytes(bytes) if sync => self.write_replace(&target, &bytes),
            // Blobs are content-addressed: an existing one is kept.
            Payload::Bytes(bytes) => create_new_with(&target, 0o644, &bytes)
                .map(|_| ())
                .map_err(io_err(&target)),
            Payload::File(temp) => {
                if sync {
                    File::open(&temp)
                        .and_then(|f| f.sync_data())
                        .map_err(io_err(&target))?;
                }
                self.persist_temp(temp, &target)
            }
        }
    }

    fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StoreError> {
        let target = self.path(key);
        if target.exists() {
            return Ok(false);
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp).map_err(io_err(&self.tmp))?;
        tmp.write_all(&bytes).map_err(io_err(&target))?;
        tmp.as_file().sync_data().map_err(io_err(&target))?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        match tmp.persist_noclobber(&target) {
            Ok(_) => Ok(true),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err(&target)(e.error)),
        }
    }

    fn batch(&self) -> Box<dyn PutBatch + '_> {
        Box::new(DirectBatch(self))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let dir = self.root.join(prefix_dir(prefix));
        let mut out = Vec::new();
        if !dir.is_dir() {
            return Ok(out);
        }
        for entry in walkdir::WalkDir::new(&dir).follow_links(false) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if e.io_error().map(|e| e.kind()) == Some(io::ErrorKind::NotFound) => {
                    continue;
                }
                Err(e) => {
                    let path = e.path().unwrap_or(&dir).to_owned();
                    return Err(io_err(&path)(e.into()));
                }
            };
            if !entry.file_type().is_file()
                || entry.file_name().as_encoded_bytes().starts_with(b".")
            {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let Some(key) = rel.to_str() else { continue };
            if !key.starts_with(prefix) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            out.push(ObjectInfo {
                key: key.to_owned(),
                size: meta.len(),
                modified: modified(&meta),
            });
        }
        Ok(out)
    }

    fn list_children(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        self.entries(dir, |t| t.is_file())
    }

    fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        self.entries(dir, |t| t.is_dir())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        keys.iter().try_for_each(|k| self.delete(k))
    }

    fn touch(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        match File::options().write(true).open(&path) {
            Ok(file) => file.set_modified(SystemTime::now()).map_err(io_err(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn increment(&self, key: &str) -> Result<u64, StoreError> {
        let lock = self.lock(key)?;
        let path = self.path(key);
        let current = match File::open(&path) {
            Ok(mut file) => {
                let mut text = String::new();
                file.read_to_string(&mut text).map_err(io_err(&path))?;
                text.trim().parse::<u64>().map_err(|_| {
                    StoreError::Invalid(format!(
                        "counter {} holds {:?}, not a number",
                        path.display(),
                        text.trim()
                    ))
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(&path)(e)),
        };
        let next = current + 1;
        self.write_replace(&path, format!("{next}\n").as_bytes())?;
        drop(lock);
        Ok(next)
    }
}
