//! What can go wrong loading or running a guest program (its own failures are exits, not
//! errors: see `GuestExit`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("could not set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot read module {}: {source}", path.display())]
    ReadModule {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "module {} has sha256 {actual}, but {expected} was expected; refusing to run it",
        path.display()
    )]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{name}: not a valid WebAssembly module: {reason}")]
    Compile { name: String, reason: String },
    #[error("{name}: cannot be run: {reason}")]
    Instantiate { name: String, reason: String },
    #[error("cannot give the guest {guest} (host directory {}): {reason}", host.display())]
    Preopen {
        guest: String,
        host: PathBuf,
        reason: String,
    },
}
