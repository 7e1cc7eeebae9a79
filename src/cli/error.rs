//! Why a command failed, and the one place that decides its exit status: every library
//! error a subcommand meets converts into [`Failure`] with `?`, and [`Failure::status`]
//! maps it to the documented status (2 bad input, 3 fault, or a program's own). The
//! message printed is the error's chain, each cause once.

use std::path::{Path, PathBuf};

use crate::buildspec::BuildspecError;
use crate::image::ImageError;
use crate::lifecycle::env::EnvError;
use crate::python::PackageError;
use crate::runtime::{RecipeError, RuntimeError};
use crate::sandbox::SandboxError;
use crate::shell::{GuestFsError, ShellError};
use crate::store::StoreError;

/// Exit status for bad input: usage errors, invalid buildspecs, unknown images.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when wasmbuild itself or its store failed.
pub const EXIT_FAULT: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A value on the command line (or a file it names) that cannot be used.
    #[error("{0}")]
    Usage(String),
    /// A file the user gave that cannot be read.
    #[error("{}: {source}", path.display())]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    /// wasmbuild's own file operations (output directories, scratch space).
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A program run by `exec` that could not start: 126 (not runnable) or 127 (missing).
    #[error("{message}")]
    Program { message: String, status: u8 },
    #[error(transparent)]
    Buildspec(#[from] BuildspecError),
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A `wasmbuild.lock` that does not parse.
    #[error(transparent)]
    Lock(PackageError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    GuestFs(#[from] GuestFsError),
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }

    /// A file the user named could not be read.
    pub fn input(path: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
        move |source| Failure::Input {
            path: path.to_owned(),
            source,
        }
    }

    /// One of wasmbuild's own file operations failed (`context`: what or where).
    pub fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Failure {
        let context = context.to_string();
        move |source| Failure::Io { context, source }
    }

    /// The documented exit status of this failure.
    pub fn status(&self) -> u8 {
        match self {
            Failure::Usage(_)
            | Failure::Input { .. }
            | Failure::Buildspec(_)
            | Failure::Env(_)
            | Failure::Lock(_) => EXIT_BAD_INPUT,
            Failure::Program { status, .. } => *status,
            Failure::Image(ImageError::Runtime(_)) => EXIT_FAULT,
            Failure::Image(_) => EXIT_BAD_INPUT,
            Failure::Recipe(e) => recipe_status(e),
            Failure::Runtime(RuntimeError::Recipe(e)) => recipe_status(e),
            Failure::Runtime(RuntimeError::DigestMismatch { .. }) => EXIT_BAD_INPUT,
            Failure::Store(StoreError::BadSpec { .. }) => EXIT_BAD_INPUT,
            // A script that does not parse is bad input; the others say their own status.
            Failure::Shell(e) => u8::try_from(e.exit_status()).unwrap_or(EXIT_FAULT),
            Failure::Io { .. }
            | Failure::Runtime(_)
            | Failure::Store(_)
            | Failure::Sandbox(_)
            | Failure::GuestFs(_)
            | Failure::Json(_) => EXIT_FAULT,
        }
    }

    /// The message: the error and each cause its text does not already hold.
    pub fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        message
    }
}

fn recipe_status(error: &RecipeError) -> u8 {
    match error {
        RecipeError::Unpack { .. } => EXIT_FAULT,
        _ => EXIT_BAD_INPUT,
    }
}
