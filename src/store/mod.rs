//! The content-addressed store: blobs keyed by the sha256 of their content, kept
//! zstd-compressed, and named references that point at a digest. Every read verifies the
//! digest and every write is atomic (temporary file, then rename). This is the local
//! directory backend; it also holds machine-local state (compiled code, installed bundles).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Compression level for new blobs.
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("store object {digest} is corrupt ({reason}); it was not used")]
    Corrupt { digest: String, reason: String },
    #[error("store object {0} is missing")]
    Missing(String),
    #[error("invalid reference name {0:?}")]
    BadRefName(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex sha256 of everything `reader` yields, and its length.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), len));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for sub in ["blobs", "refs", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(LocalStore { root })
    }

    /// The default store: `$WASMBUILD_STORE`, else `wasmbuild/` in the user's cache directory.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("WASMBUILD_STORE") {
            return dir.into();
        }
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("wasmbuild")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory for machine-local state of one kind (e.g. `compiled`, `bundles`).
    pub fn local_dir(&self, kind: &str) -> PathBuf {
        self.root.join(kind)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let prefix = digest.get(..2).unwrap_or("xx");
        self.root
            .join("blobs")
            .join(prefix)
            .join(format!("{digest}.zst"))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `bytes`, returning their digest. Storing what is already there is free.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let digest = sha256_hex(bytes);
        if !self.has_blob(&digest) {
            let compressed = zstd::bulk::compress(bytes, ZSTD_LEVEL)
                .map_err(io_err(&self.blob_path(&digest)))?;
            self.write_atomic(&self.blob_path(&digest), &compressed)?;
        }
        Ok(digest)
    }

    /// Stores the file at `path` (streamed), returning its digest and size.
    pub fn put_file(&self, path: &Path) -> Result<(String, u64), StoreError> {
        let file = fs::File::open(path).map_err(io_err(path))?;
        let (digest, size) = sha256_reader(io::BufReader::new(file)).map_err(io_err(path))?;
        let target = self.blob_path(&digest);
        if !target.is_file() {
            let tmp_dir = self.root.join("tmp");
            let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err(&tmp_dir))?;
            let mut source = fs::File::open(path).map_err(io_err(path))?;
            let mut encoder =
                zstd::stream::Encoder::new(tmp.as_file_mut(), ZSTD_LEVEL).map_err(io_err(path))?;
            io::copy(&mut source, &mut encoder).map_err(io_err(path))?;
            encoder.finish().map_err(io_err(path))?;
            self.persist(tmp, &target)?;
        }
        Ok((digest, size))
    }

    /// Reads and verifies a blob. A blob whose content does not hash to its name is
    /// reported as corrupt and never returned.
    pub fn get_blob(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let compressed = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::Missing(digest.into()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            digest: digest.into(),
            reason,
        };
        let bytes =
            zstd::stream::decode_all(&compressed[..]).map_err(|e| corrupt(e.to_string()))?;
        let actual = sha256_hex(&bytes);
        if actual != digest {
            return Err(corrupt(format!("content hashes to {actual}")));
        }
        Ok(bytes)
    }

    /// Writes a verified blob to `dest` (atomically); the file appears only if it is whole
    /// and its digest matches.
    pub fn get_blob_to_file(&self, digest: &str, dest: &Path) -> Result<(), StoreError> {
        let bytes = self.get_blob(digest)?;
        self.write_atomic(dest, &bytes)
    }

    fn ref_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        let valid = !name.is_empty()
            && name.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-@+:".contains(c))
            });
        if !valid {
            return Err(StoreError::BadRefName(name.into()));
        }
        Ok(self.root.join("refs").join(name))
    }

    /// Points the reference `name` (e.g. `bundles/base`) at `digest`.
    pub fn set_ref(&self, name: &str, digest: &str) -> Result<(), StoreError> {
        let path = self.ref_path(name)?;
        self.write_atomic(&path, format!("{digest}\n").as_bytes())
    }

    /// The digest the reference `name` points at, if it exists.
    pub fn get_ref(&self, name: &str) -> Result<Option<String>, StoreError> {
        let path = self.ref_path(name)?;
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Names of the references directly below `prefix` (e.g. `bundles`), sorted.
    pub fn list_refs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.ref_path(prefix)?;
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Writes `bytes` to `path` so that readers see either the old file or the whole new one.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp_dir = self.root.join("tmp");
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err(&tmp_dir))?;
        tmp.write_all(bytes).map_err(io_err(path))?;
        self.persist(tmp, path)
    }

    fn persist(&self, tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), StoreError> {
        tmp.as_file().sync_data().map_err(io_err(path))?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let digest = store.put_blob(b"hello world").unwrap();
        assert_eq!(digest, sha256_hex(b"hello world"));
        assert_eq!(store.get_blob(&digest).unwrap(), b"hello world");

        // Replace the blob with a valid zstd frame of other content.
        let other = zstd::bulk::compress(b"hello w0rld", 3).unwrap();
        fs::write(store.blob_path(&digest), other).unwrap();
        assert!(matches!(
            store.get_blob(&digest),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            store.get_blob(&sha256_hex(b"nope")),
            Err(StoreError::Missing(_))
        ));
    }

    #[test]
    fn refs_point_at_digests_and_reject_traversal() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.set_ref("bundles/base", "abc").unwrap();
        assert_eq!(
            store.get_ref("bundles/base").unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(
            store.list_refs("bundles").unwrap(),
            vec!["base".to_string()]
        );
        assert!(store.set_ref("../escape", "x").is_err());
        assert!(store.get_ref("bundles/missing").unwrap().is_none());
    }
}
