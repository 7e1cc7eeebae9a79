//! The compiled-code cache: machine code for each module, kept on local disk and keyed by
//! the module's sha256 and the engine's `precompile_compatibility_hash`, so a module is
//! compiled once per machine. Every file carries the sha256 of its own bytes and is
//! verified before wasmtime maps it: a corrupt or stale file is recompiled, never trusted.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// Magic prefix of a cache file, followed by the 32-byte sha256 of the machine code.
const MAGIC: &[u8; 8] = b"WBCODE01";
const HEADER_LEN: usize = MAGIC.len() + 32;

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

    /// Loads the compiled module for `module_digest`, or `None` when there is no usable
    /// file. A file that fails verification is removed so that it gets rebuilt.
    pub fn load(&self, engine: &Engine, module_digest: &str) -> Option<Module> {
        let path = self.path_for(module_digest);
        let bytes = fs::read(&path).ok()?;
        match Self::verify(&bytes) {
            Some(code) => match deserialize_verified(engine, code) {
                Ok(module) => return Some(module),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "stale compiled code; recompiling")
                }
            },
            None => tracing::warn!(path = %path.display(), "corrupt compiled code; recompiling"),
        }
        let _ = fs::remove_file(&path);
        None
    }

    fn verify(bytes: &[u8]) -> Option<&[u8]> {
        let (header, code) = bytes.split_at_checked(HEADER_LEN)?;
        let (magic, digest) = header.split_at(MAGIC.len());
        (magic == MAGIC && Sha256::digest(code).as_slice() == digest).then_some(code)
    }

    /// Stores compiled code atomically (temporary file, then rename): a reader sees the
    /// whole file or none. Failures only cost a recompilation later, so they are logged.
    pub fn store(&self, module_digest: &str, code: &[u8]) {
        if let Err(error) = self.try_store(module_digest, code) {
            tracing::warn!(%error, "could not write the compiled-code cache");
        }
    }

    fn try_store(&self, module_digest: &str, code: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(code))?;
        file.write_all(code)?;
        file.as_file().sync_data()?;
        file.persist(self.path_for(module_digest))?;
        Ok(())
    }

    /// The file that holds (or would hold) a module's compiled code.
    pub fn file(&self, module_digest: &str) -> PathBuf {
        self.path_for(module_digest)
    }
}

/// `Module::deserialize` on bytes that passed the digest check.
fn deserialize_verified(engine: &Engine, code: &[u8]) -> wasmtime::Result<Module> {
    // SAFETY: the bytes were produced by `Module::serialize` of an engine with the same
    // compatibility hash (the directory name), and their sha256 matches the one written
    // with them, so they are exactly what wasmtime serialised.
    unsafe { Module::deserialize(engine, code) }
}
