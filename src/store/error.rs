//! What can go wrong in the store: its error type, shared by both backends and the trees.

use std::io;
use std::path::{Path, PathBuf};

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
    #[error("invalid digest {0:?} (expected 64 lowercase hex digits)")]
    BadDigest(String),
    #[error("invalid store {spec:?}: {message}")]
    BadSpec { spec: String, message: String },
    #[error("{store}: the server refused the credentials: {message}")]
    Auth { store: String, message: String },
    #[error("{store}: cannot reach the server: {message}")]
    Unreachable { store: String, message: String },
    #[error("{store}: {message}")]
    Remote { store: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether the error means "not there" (missing, or corrupt and so treated as missing).
    pub fn is_missing(&self) -> bool {
        matches!(self, StoreError::Missing(_) | StoreError::Corrupt { .. })
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}
