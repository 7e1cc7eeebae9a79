//! The shell's error type, and the exit status each error stands for.

use super::host::HostError;

/// Why a script could not run to its end normally.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The script is not valid shell syntax (exit status 2).
    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Running a program failed because of wasmbuild itself (FAULT).
    #[error("could not run a program: {0}")]
    Host(#[from] HostError),
    /// The session's cancel flag was raised (Ctrl-C, build timeout).
    #[error("the shell was interrupted")]
    Interrupted,
}

impl ShellError {
    /// The exit status a shell would report for this error.
    pub fn exit_status(&self) -> i32 {
        match self {
            ShellError::Syntax { .. } => 2,
            ShellError::Host(_) => 3,
            ShellError::Interrupted => 130,
        }
    }
}
