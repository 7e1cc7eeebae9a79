//! Programs that guests start (`sandbox::process`): each child is run by a fresh
//! interpreter of the build shell on its own thread, exactly as the shell would run the
//! command `argv` — builtins, the image's programs, `PATH`, scripts and their `#!` lines,
//! `sh -c` — with the environment and directory the guest gives. Children count against the
//! session's process limit (a fork bomb trips it and fails the phase) and stop with the
//! session (cancel, end of a background job) or when their parent stops them.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::exec::THREAD_STACK;
use super::fs::{EntryKind, normalize};
use super::interpreter::Interpreter;
use super::limits::SessionShared;
use super::streams::{InHandle, Io, OutHandle};
use super::{GuestFs, ProgramHost, ShellError, Unwind, builtins};
use crate::sandbox::{SpawnError, SpawnRequest, Spawner};

/// Starts children for the programs of one interpreter.
pub(crate) struct ShellSpawner {
    host: Arc<dyn ProgramHost>,
    fs: GuestFs,
    shared: Arc<SessionShared>,
    cancel: Arc<AtomicBool>,
    job_generation: Option<u64>,
}

impl ShellSpawner {
    /// Children like the commands `state` runs.
    pub(crate) fn new(state: &Interpreter) -> Self {
        ShellSpawner {
            host: state.host.clone(),
            fs: state.fs.clone(),
            shared: state.shared.clone(),
            cancel: state.cancel.clone(),
            job_generation: state.job_generation,
        }
    }
}

impl Spawner for ShellSpawner {
    fn spawn(&self, request: SpawnRequest) -> Result<(), SpawnError> {
        let SpawnRequest {
            argv,
            env,
            cwd,
            stdin,
            stdout,
            mut stderr,
            kill,
            end,
        } = request;
        let mut state = Interpreter::new(
            self.host.clone(),
            self.fs.clone(),
            env,
            cwd,
            self.shared.limits.clone(),
        );
        state.shared = self.shared.clone();
        state.cancel = self.cancel.clone();
        state.kill = Some(kill);
        state.job_generation = self.job_generation;
        state.arg0 = argv[0].clone();
        state.script_name = argv[0].clone();
        if !state.can_run(&argv[0]) {
            return Err(SpawnError::NotFound);
        }
        // A fork bomb ends here: the guest gets EAGAIN, the session trips (every
        // interpreter unwinds, the phase fails) and the message goes where the child's
        // errors would have.
        let slots = self
            .shared
            .acquire_child()
            .and_then(|child| Ok((child, self.shared.acquire()?)));
        let slots = match slots {
            Ok(slots) => slots,
            Err(first) => {
                if first {
                    let message = self.shared.process_limit_message();
                    tracing::warn!("{message}");
                    let _ = writeln!(stderr, "{message}");
                    let _ = stderr.flush();
                }
                return Err(SpawnError::Limit);
            }
        };
        let spawned = std::thread::Builder::new()
            .name("wasmbuild-child".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let _slots = slots;
                let mut io = Io::new(
                    InHandle::new(stdin),
                    OutHandle::new(stdout),
                    OutHandle::new(stderr),
                );
                let status = match state.dispatch(argv, &mut io, false) {
                    Ok(status) => status,
                    Err(Unwind::Exit(status) | Unwind::Abort(status) | Unwind::Return(status)) => {
                        status
                    }
                    Err(Unwind::Break(_) | Unwind::Continue(_)) => state.last_status,
                    Err(Unwind::Fatal(ShellError::Interrupted)) => 130,
                    Err(Unwind::Fatal(error)) => {
                        io.diag(&format!("wasmbuild: {error}"));
                        error.exit_status()
                    }
                };
                let _ = std::io::Write::flush(&mut io.stdout());
                let _ = std::io::Write::flush(&mut io.stderr());
                drop(io);
                end.complete(status & 0xff);
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(error) => {
                self.shared.trip();
                Err(SpawnError::Failed(error.to_string()))
            }
        }
    }
}

impl Interpreter {
    /// Whether `name` names something to run, as `execvp` would find it: a path to an
    /// existing file, or a builtin, a program of the image or of `PATH`, or the shell.
    pub(crate) fn can_run(&self, name: &str) -> bool {
        if name.contains('/') {
            let path = normalize(&self.cwd, name);
            if super::exec::host_shell(&path).is_some() {
                return true;
            }
            return self
                .fs
                .metadata(&path)
                .is_ok_and(|m| m.kind != EntryKind::Dir);
        }
        builtins::find(name).is_some()
            || self.host.has_program(name)
            || self.find_in_path(name).is_some()
            || matches!(name, "sh" | "bash")
    }
}
