//! The one door through which a command leaves the interpreter: `ProgramHost`. The shell
//! decides *what* runs (an image command or a workspace module) with which argv, env, cwd
//! and stdio; the host decides *how* (the sandbox). Nothing here spawns a host process.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::sandbox::Spawner;

/// A program's standard input, as the host reads it.
pub type Input = Box<dyn Read + Send>;
/// A program's standard output or error, as the host writes it.
pub type Output = Box<dyn Write + Send>;

/// Everything one run of a program is given.
pub struct Invocation {
    /// argv\[0\] is the command word as written.
    pub argv: Vec<String>,
    /// Exported variables only, sorted by name; `PWD` included.
    pub env: Vec<(String, String)>,
    /// Absolute guest path of the shell's current directory.
    pub cwd: String,
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
    /// Starts the programs this one asks to start: children of the shell's kind.
    pub spawner: Option<Arc<dyn Spawner>>,
    /// Raised to stop this program alone (it was started by a guest that stops it).
    pub kill: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("argv", &self.argv)
            .field("env", &self.env)
            .field("cwd", &self.cwd)
            .finish_non_exhaustive()
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A command of the image (the runtime bundles), by name, e.g. `ls`.
    Image(String),
    /// A `.wasm` module in the build's filesystem, by absolute guest path.
    Module(String),
}

/// A fault of wasmbuild itself while running a program: the build must stop (FAULT).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

/// Runs programs for the shell. Implemented by the sandbox and runtime bundles; the tests
/// have a double written in Rust.
pub trait ProgramHost: Send + Sync {
    /// Whether the image provides a command of this name (for lookup, `type`, `command -v`).
    fn has_program(&self, name: &str) -> bool;
    /// Where the image's command lives, for `type`/`command -v` output
    /// (e.g. `/opt/runtimes/base/bin/ls`).
    fn program_path(&self, name: &str) -> Option<String>;
    /// Runs the program to completion and returns its exit status (0..=255). Problems of the
    /// guest (trap, deadline, bad module) are reported by the host on `stderr` and come back
    /// as a non-zero status. `Err` only for faults of wasmbuild itself.
    fn run(&self, program: Program, invocation: Invocation) -> Result<i32, HostError>;
}
