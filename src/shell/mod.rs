//! The build shell: a bash-compatible interpreter that runs in wasmbuild itself. Scripts are
//! parsed with `brush-parser`; expansion, control flow, builtins and redirections are ours.
//! Every other command leaves through [`ProgramHost`] (the sandbox), and every file the shell
//! itself opens goes through [`GuestFs`] (capability-scoped directories). It never spawns a
//! host process. A [`Session`] keeps state across the commands of a build.

mod arithmetic;
mod builtins;
mod chmod;
mod error;
mod exec;
mod expand;
pub mod fs;
mod hash_files;
pub mod host;
mod interpreter;
pub mod limits;
mod parse;
mod pattern;
mod printf;
mod programs;
mod spawn;
mod streams;
mod test_expr;
mod tests_run;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use error::ShellError;
pub(crate) use expand::shell_quote;
pub use fs::{GuestFs, GuestFsError};
pub use host::{HostError, Input, Invocation, Output, Program, ProgramHost};
pub use limits::{JobsStopped, ShellLimits};
pub use programs::{Call, Calls, called_programs};

/// Whether `name` is a builtin or a keyword of the build shell (it runs no program).
pub fn is_builtin(name: &str) -> bool {
    builtins::find(name).is_some() || builtins::is_keyword(name)
}

use interpreter::Interpreter;
use streams::{InHandle, Io, OutHandle};

/// The options of `set` that the interpreter honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellOptions {
    /// `set -e`: exit when a command fails, with bash's exceptions.
    pub errexit: bool,
    /// `set -u`: expanding an unset variable is an error.
    pub nounset: bool,
    /// `set -x`: print each command, expanded, to stderr before running it.
    pub xtrace: bool,
    /// `set -o pipefail`: a pipeline fails if any stage fails.
    pub pipefail: bool,
    /// `set -f`: no pathname expansion.
    pub noglob: bool,
    /// `set -a`: export every variable that is assigned.
    pub allexport: bool,
    /// `set -v`: accepted; the interpreter does not echo input lines.
    pub verbose: bool,
    /// `set -C`: `>` refuses to overwrite an existing file.
    pub noclobber: bool,
}

/// The standard streams of a script.
pub struct Stdio {
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
}

impl Stdio {
    /// Stdio with no input and both outputs given.
    pub fn new(stdout: Output, stderr: Output) -> Self {
        Stdio {
            stdin: Box::new(std::io::empty()),
            stdout,
            stderr,
        }
    }
}

/// How a command ended other than by completing: the interpreter unwinds to the construct
/// that handles it.
#[derive(Debug)]
pub(crate) enum Unwind {
    /// `exit`, `set -e`, or a fatal expansion error: ends the shell (or the subshell).
    Exit(i32),
    /// `return` from a function or a sourced file.
    Return(i32),
    Break(usize),
    Continue(usize),
    /// A limit was exceeded (process count, nesting): ends the whole command with this
    /// status, through subshells and scripts, as a fault would.
    Abort(i32),
    /// Stop everything: a fault of wasmbuild or an interruption.
    Fatal(ShellError),
}

pub(crate) type Exec<T = i32> = Result<T, Unwind>;

/// One shell: variables, exports, functions, options, positional parameters and the current
/// directory live across [`Session::run_script`] calls, as in one bash process running every
/// command of a buildspec.
///
/// `exit N` ends the running script with status N and marks the session as exited
/// ([`Session::exited`]); the session stays usable and the next `run_script` clears the mark,
/// so the caller decides whether later commands run. Background jobs (`&`, of subshells and
/// scripts too) are waited for or stopped by [`Session::stop_jobs`] (the end of a phase) and
/// [`Session::finish`], which also runs the `EXIT` trap. The session's limits are
/// [`ShellLimits::from_env`] unless [`Session::set_limits`] says otherwise.
pub struct Session {
    state: Interpreter,
    exited: Option<i32>,
}

impl Session {
    /// A session whose variables are `env` (all exported) and whose directory is `cwd`
    /// (an absolute guest path). `PWD` is set to `cwd`.
    pub fn new(
        host: Arc<dyn ProgramHost>,
        fs: GuestFs,
        env: Vec<(String, String)>,
        cwd: String,
    ) -> Self {
        Session {
            state: Interpreter::new(host, fs, env, cwd, ShellLimits::from_env()),
            exited: None,
        }
    }

    /// Replaces the session's limits (before it runs anything).
    pub fn set_limits(&mut self, limits: ShellLimits) {
        self.state.shared = limits::SessionShared::new(limits);
    }

    pub fn limits(&self) -> &ShellLimits {
        &self.state.shared.limits
    }

    /// Makes this session share `other`'s limits, process count and background jobs, as
    /// the per-command shells of one build do.
    pub fn share_jobs_with(&mut self, other: &Session) {
        self.state.shared = other.state.shared.clone();
    }

    /// The end of a phase: waits up to the grace period of the limits for every background
    /// job of the session (those of subshells and scripts included), then stops the rest
    /// (their interpreters at once, their programs through the cancel flag, raised for a
    /// moment if it was not up). Says how many were stopped, and the process limit's error
    /// if the session went over it since the last call (the phase must fail).
    pub fn stop_jobs(&mut self) -> JobsStopped {
        let grace = self.state.shared.limits.job_grace;
        self.stop_jobs_within(grace)
    }

    /// [`Session::stop_jobs`] with another grace period (zero: stop them at once).
    pub fn stop_jobs_within(&mut self, grace: std::time::Duration) -> JobsStopped {
        let shared = self.state.shared.clone();
        let stopped = shared.stop_jobs(grace, &self.state.cancel);
        self.state.jobs = Default::default();
        let error = shared.is_tripped().then(|| shared.process_limit_message());
        shared.reset(&self.state.cancel);
        JobsStopped { stopped, error }
    }

    /// Raising `flag` stops the session between commands with [`ShellError::Interrupted`].
    /// (The host is expected to stop a running program on its own.)
    pub fn set_cancel_flag(&mut self, flag: Arc<AtomicBool>) {
        self.state.cancel = flag;
    }

    /// Marks the session as running a `-c` string (as `bash -c`) rather than a script file:
    /// the only difference is that `${x:?}` and `set -u` errors end it with 127, not 1.
    pub fn set_command_string_mode(&mut self, on: bool) {
        self.state.command_string = on;
    }

    pub fn options(&self) -> &ShellOptions {
        &self.state.options
    }

    pub fn options_mut(&mut self) -> &mut ShellOptions {
        &mut self.state.options
    }

    /// Parses `script` whole (syntax errors are reported before anything runs) and runs it.
    /// `name` is used in diagnostics (`NAME: line 3: foo: command not found`).
    pub fn run_script(
        &mut self,
        script: &str,
        name: &str,
        stdio: Stdio,
    ) -> Result<i32, ShellError> {
        self.run_script_at(script, name, 1, stdio)
    }

    /// [`Session::run_script`] for a script that starts on line `first_line` of the file
    /// `name` (a buildspec command): diagnostics and syntax errors name the file's lines.
    pub fn run_script_at(
        &mut self,
        script: &str,
        name: &str,
        first_line: usize,
        stdio: Stdio,
    ) -> Result<i32, ShellError> {
        let shift = first_line.max(1) - 1;
        self.exited = None;
        // What is left of a runaway of an earlier script ends before this one starts.
        self.state.shared.reset(&self.state.cancel);
        let mut io = Io::new(
            InHandle::new(stdio.stdin),
            OutHandle::new(stdio.stdout),
            OutHandle::new(stdio.stderr),
        );
        self.state.script_name = name.to_owned();
        self.state.first_line = shift + 1;
        let state = &mut self.state;
        // Parsed, run and dropped on the interpreter's stack: all three recurse per level.
        let result = on_interpreter_stack(|| {
            let program = parse::parse_program(script, name).map_err(|e| match e {
                ShellError::Syntax {
                    file,
                    line,
                    column,
                    message,
                } => ShellError::Syntax {
                    file,
                    line: line + shift,
                    column,
                    message,
                },
                other => other,
            })?;
            Ok::<_, ShellError>(state.run_program(&program, &mut io))
        })??;
        let _ = std::io::Write::flush(&mut io.stdout());
        let _ = std::io::Write::flush(&mut io.stderr());
        // A job of this script that went over the process limit fails it too.
        let result = match result {
            Ok(0) if self.state.shared.is_tripped() => {
                Err(Unwind::Abort(limits::PROCESS_LIMIT_STATUS))
            }
            other => other,
        };
        match result {
            Ok(status) => Ok(status),
            Err(Unwind::Exit(status) | Unwind::Abort(status)) => {
                self.state.last_status = status;
                self.exited = Some(status);
                Ok(status)
            }
            // `return` or `break` at the top level: bash ends the script with that status.
            Err(Unwind::Return(status)) => Ok(status),
            Err(Unwind::Break(_) | Unwind::Continue(_)) => Ok(self.state.last_status),
            Err(Unwind::Fatal(e)) => Err(e),
        }
    }

    /// Ends the session like a shell ending: waits for background jobs, then runs the `EXIT`
    /// trap if one was set. Returns the final status (the trap may change it with `exit`).
    pub fn finish(&mut self, stdio: Stdio) -> Result<i32, ShellError> {
        let mut io = Io::new(
            InHandle::new(stdio.stdin),
            OutHandle::new(stdio.stdout),
            OutHandle::new(stdio.stderr),
        );
        let mut status = self.exited.unwrap_or(self.state.last_status);
        self.state.wait_all_jobs();
        let stopped = self.stop_jobs();
        if stopped.error.is_some() && status == 0 {
            status = limits::PROCESS_LIMIT_STATUS;
        }
        let Some(trap) = self.state.exit_trap.take() else {
            return Ok(status);
        };
        self.state.last_status = status;
        let state = &mut self.state;
        let result = on_interpreter_stack(|| {
            let program = parse::parse_program(&trap, &state.script_name)?;
            Ok::<_, ShellError>(state.run_program(&program, &mut io))
        })??;
        let _ = std::io::Write::flush(&mut io.stdout());
        let _ = std::io::Write::flush(&mut io.stderr());
        match result {
            Ok(_) | Err(Unwind::Return(_) | Unwind::Break(_) | Unwind::Continue(_)) => Ok(status),
            Err(Unwind::Exit(n) | Unwind::Abort(n)) => Ok(n),
            Err(Unwind::Fatal(e)) => Err(e),
        }
    }

    /// `Some(status)` if the last script ended with `exit` (or `set -e`).
    pub fn exited(&self) -> Option<i32> {
        self.exited
    }

    /// `$?`: the status of the last command run.
    pub fn last_status(&self) -> i32 {
        self.state.last_status
    }

    /// Sets `$0` and `$1`… (`wasmbuild sh FILE ARGS…`).
    pub fn set_positional(&mut self, arg0: String, args: Vec<String>) {
        self.state.arg0 = arg0;
        self.state.positional = args;
    }

    /// Starts programs for a guest run outside the session's scripts (`wasmbuild exec`)
    /// as the session's own commands would start them.
    pub fn spawner(&self) -> Arc<dyn crate::sandbox::Spawner> {
        Arc::new(spawn::ShellSpawner::new(&self.state))
    }

    /// Exported variables, sorted by name, with `PWD`: what a program would be given.
    pub fn exported_env(&self) -> Vec<(String, String)> {
        self.state.exported_env()
    }

    /// The value of a shell variable, exported or not.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.state.var(name)
    }

    /// Sets a shell variable (not exported unless it already was). Fails for a readonly one.
    pub fn set_var(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.state.set_var(name, value.to_owned())
    }

    /// Sets and exports a variable (`export NAME=VALUE`).
    pub fn export(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.state.set_var(name, value.to_owned())?;
        self.state.export(name);
        Ok(())
    }

    /// The current directory, an absolute guest path.
    pub fn cwd(&self) -> &str {
        &self.state.cwd
    }
}

/// Runs the interpreter on a thread with a large stack: it recurses once per nesting level of
/// the script (and per function call), which the caller's stack may not afford.
fn on_interpreter_stack<T: Send>(run: impl FnOnce() -> T + Send) -> Result<T, ShellError> {
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("wasmbuild-shell".into())
            .stack_size(exec::THREAD_STACK)
            .spawn_scoped(scope, run)
        {
            Ok(handle) => Ok(handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
            Err(e) => Err(ShellError::Host(HostError(format!(
                "cannot start the shell's thread: {e}"
            )))),
        }
    })
}
