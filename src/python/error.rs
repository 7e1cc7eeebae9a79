//! Why a packaging step (pip on the host, a PEP 517 build, a lock) failed.

/// Why a packaging step failed: every message is one line that names what failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(
        "no package index is configured: pass --index-url, set PIP_INDEX_URL or index-url in pip.conf"
    )]
    NoIndex,
    #[error("{index}: no such project: {name}")]
    UnknownProject { index: String, name: String },
    #[error("{file} (sha256 {sha256}) is not on the index {index}")]
    NotOnIndex {
        file: String,
        sha256: String,
        index: String,
    },
    #[error("cannot reach the package index {index}: {reason}")]
    Unreachable { index: String, reason: String },
    #[error(
        "hash mismatch for {file}: the index publishes sha256 {expected}, the download has {actual}"
    )]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file} is not in the store and --offline forbids downloading it")]
    Offline { file: String },
    #[error("cannot resolve the requirements: {0}")]
    Unresolvable(String),
    #[error("{name} {version} cannot run in the WASI sandbox: {reason}")]
    NeedsNative {
        name: String,
        version: String,
        reason: String,
    },
    #[error("invalid requirement {requirement:?}: {reason}")]
    BadRequirement { requirement: String, reason: String },
    #[error("{file}: {reason}")]
    BadDistribution { file: String, reason: String },
    #[error("{0}")]
    Lock(String),
    #[error("building {name} failed: {reason}")]
    Build { name: String, reason: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Io(String),
}
