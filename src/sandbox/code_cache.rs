//! The compiled-code cache: machine code for each module, kept on local disk and keyed by
//! the module's sha256 and the engine's `precompile_compatibility_hash`, so a module is
//! compiled once per machine.
//!
//! Each module has two files: `<digest>.cwasm`, wasmtime's serialised module, which wasmtime
//! maps straight from disk (no copy), and `<digest>.sum`, the sha256 of that file and the
//! stamp (inode, size, mtime, ctime) it had when its content was last checked. A start whose
//! file still has that stamp maps it at once (about a millisecond); any other file is re-hashed
//! first, and a corrupt or stale one is recompiled, never trusted. (Every write to a file
//! changes its ctime, which no tool can set back.)

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// First line of a `.sum` file.
const SUM_MAGIC: &str = "wasmbuild-code 2";

/// Where compiled modules live for one engine configuration.
#[derive(Debug, Clone)]
pub struct CodeCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into sha256, so the engine's compatibility hash becomes a stable name.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the full digest is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CodeCache {
    /// A cache below `root`, in a directory named after the engine's compatibility hash.
    pub fn new(root: &Path, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_id = hex::encode(&hasher.0.finalize()[..12]);
        CodeCache {
            dir: root.join(engine_id),
        }
    }

    fn path_for(&self, module_digest: &str) -> PathBuf {
        self.dir.join(format!("{module_digest}.cwasm"))
    }

    fn sum_path_for(&self, module_digest: &str) -> PathBuf {
        self.dir.join(format!("{module_digest}.sum"))
    }

    /// Loads the compiled module for `module_digest`, or `None` when there is no usable
    /// file. A file that fails verification is removed so that it gets rebuilt.
    pub fn load(&self, engine: &Engine, module_digest: &str) -> Option<Module> {
        let path = self.path_for(module_digest);
        let sum_path = self.sum_path_for(module_digest);
        let mut file = File::open(&path).ok()?;
        let stamp = Stamp::of(&file.metadata().ok()?);
        let sum = fs::read_to_string(&sum_path)
            .ok()
            .and_then(|t| Sum::parse(&t));
        let trusted = match &sum {
            Some(sum) if sum.checked == Some(stamp) => true,
            Some(sum) => match sha256_of(&mut file) {
                Ok(actual) if actual == sum.sha256 => {
                    // Same content in a new state (copied, touched): remember the check.
                    let _ = write_atomic(&sum_path, &Sum::text(&sum.sha256, stamp));
                    true
                }
                _ => false,
            },
            None => false,
        };
        if trusted {
            match File::open(&path).and_then(|f| {
                // The file is opened again: the check above read this one to its end.
                (Stamp::of(&f.metadata()?) == stamp)
                    .then_some(f)
                    .ok_or_else(|| std::io::Error::other("changed while being checked"))
            }) {
                Ok(file) => match deserialize_checked(engine, file) {
                    Ok(module) => return Some(module),
                    Err(error) => tracing::warn!(
                        path = %path.display(), %error, "stale compiled code; recompiling"
                    ),
                },
                Err(error) => tracing::warn!(path = %path.display(), %error, "compiled code moved"),
            }
        } else if sum.is_some() {
            tracing::warn!(path = %path.display(), "corrupt compiled code; recompiling");
        } else {
            tracing::info!(path = %path.display(), "compiled code without a checksum; recompiling");
        }
        let _ = fs::remove_file(&sum_path);
        let _ = fs::remove_file(&path);
        None
    }

    /// Stores compiled code atomically (temporary file, then rename), then its `.sum`: a
    /// reader sees whole files or none, and code without a sum is never used. Failures only
    /// cost a recompilation later, so they are logged.
    pub fn store(&self, module_digest: &str, code: &[u8]) {
        if let Err(error) = self.try_store(module_digest, code) {
            tracing::warn!(%error, "could not write the compiled-code cache");
        }
    }

    fn try_store(&self, module_digest: &str, code: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path_for(module_digest);
        write_atomic(&path, code)?;
        let stamp = Stamp::of(&fs::metadata(&path)?);
        let sha256 = crate::digest::sha256_hex(code);
        write_atomic(
            &self.sum_path_for(module_digest),
            &Sum::text(&sha256, stamp),
        )
    }

    /// The file that holds (or would hold) a module's compiled code.
    pub fn file(&self, module_digest: &str) -> PathBuf {
        self.path_for(module_digest)
    }
}

/// `Module::deserialize_open_file` on a file that passed the digest check.
fn deserialize_checked(engine: &Engine, file: File) -> wasmtime::Result<Module> {
    // SAFETY: the file was produced by `Module::serialize` of an engine with the same
    // compatibility hash (the directory name), its sha256 matches the one written with it
    // (checked now, or earlier in the same inode/size/mtime/ctime state), and cache files
    // are only ever replaced by rename, never written in place.
    unsafe { Module::deserialize_open_file(engine, file) }
}

/// What identifies one state of a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A `.sum` file: the sha256 of the `.cwasm` and the stamp it had when last checked.
struct Sum {
    sha256: String,
    checked: Option<Stamp>,
}

impl Sum {
    fn text(sha256: &str, stamp: Stamp) -> Vec<u8> {
        format!(
            "{SUM_MAGIC}\n{sha256}\n{} {} {} {}\n",
            stamp.ino, stamp.size, stamp.mtime_ns, stamp.ctime_ns
        )
        .into_bytes()
    }

    fn parse(text: &str) -> Option<Sum> {
        let mut lines = text.lines();
        (lines.next()? == SUM_MAGIC).then_some(())?;
        let sha256 = lines.next()?.to_owned();
        (sha256.len() == 64).then_some(())?;
        let checked = lines.next().and_then(|line| {
            let mut f = line.split(' ');
            Some(Stamp {
                ino: f.next()?.parse().ok()?,
                size: f.next()?.parse().ok()?,
                mtime_ns: f.next()?.parse().ok()?,
                ctime_ns: f.next()?.parse().ok()?,
            })
        });
        Some(Sum { sha256, checked })
    }
}

fn sha256_of(file: &mut File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(hex::encode(hasher.finalize())),
            n => hasher.update(&buf[..n]),
        }
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_data()?;
    file.persist(path)?;
    Ok(())
}
