//! What can go wrong making, keeping or installing a bundle.

use super::RecipeError;
use crate::sandbox::SandboxError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error("fetching the bundle's module failed: {0}")]
    Fetch(String),
    #[error("{what} has sha256 {actual}, but the recipe pins {expected}; refusing it")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("bundle {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("{0}")]
    Io(String),
}
