//! Bounds on what one shell session may take from the host: threads (pipeline stages and
//! background jobs), bytes captured by `$( )`, the size of expansions and here-documents,
//! and the nesting of functions, `eval`, `source` and scripts. Exceeding one is an error of
//! the command that did it (a message naming the limit, a non-zero status), never a crash
//! of wasmbuild. Background jobs of every subshell and script of a session are registered
//! here, so that the end of a phase can wait for them or stop them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ShellError;
use super::streams::lock;

/// Live pipeline stages and background jobs of one session (each is a host thread), across
/// all its subshells and scripts. Bash has no such limit; the host's PIDs are the bound.
pub const DEFAULT_MAX_PROCESSES: usize = 256;
/// Live programs started by programs (through `/dev/process`) in one session: each is a
/// guest with its own memory, so the cap is lower than the threads' and below the
/// sandbox's pool of instances. Going over it is a fork bomb: the phase fails.
pub const DEFAULT_MAX_CHILDREN: usize = 64;
/// Bytes one command substitution `$( )` may capture.
pub const DEFAULT_MAX_CAPTURE_BYTES: usize = 64 << 20;
/// Bytes of one expanded word, here-document or line read by `read`.
pub const DEFAULT_MAX_EXPANSION_BYTES: usize = 64 << 20;
/// Words one brace expansion (`{1..N}`, `{a,b}{c,d}`…) may produce.
pub const DEFAULT_MAX_EXPANSION_WORDS: usize = 1 << 20;
/// How long the end of a phase waits for background jobs still running before it stops them.
pub const DEFAULT_JOB_GRACE: Duration = Duration::from_secs(5);
/// How long stopped jobs are waited for before they are left to end by themselves (a
/// program blocked in the host may not see its cancellation at once).
pub const STOP_WAIT: Duration = Duration::from_secs(3);
/// Deepest function recursion (bash's `FUNCNEST`, which has no default there).
pub const MAX_FUNCTION_DEPTH: usize = 1000;
/// Deepest nesting of `eval`, `source`, command substitutions and scripts run as programs
/// (`./x.sh`, `sh -c`), which bash only bounds by its stack.
pub const MAX_NESTING_DEPTH: usize = 100;

/// Deepest nesting of compound commands being run on one thread (`( ( ( … ) ) )`, loops in
/// functions in `eval`s…): each level is a few frames of the interpreter's stack.
pub const MAX_COMPOUND_DEPTH: usize = 10_000;

/// The environment variables that override the defaults (for tests and small hosts):
/// a number each, the grace in milliseconds.
pub const MAX_PROCESSES_VAR: &str = "WASMBUILD_MAX_PROCESSES";
pub const MAX_CHILDREN_VAR: &str = "WASMBUILD_MAX_CHILDREN";
pub const MAX_CAPTURE_BYTES_VAR: &str = "WASMBUILD_MAX_CAPTURE_BYTES";
pub const MAX_EXPANSION_BYTES_VAR: &str = "WASMBUILD_MAX_EXPANSION_BYTES";
pub const MAX_EXPANSION_WORDS_VAR: &str = "WASMBUILD_MAX_EXPANSION_WORDS";
pub const JOB_GRACE_MS_VAR: &str = "WASMBUILD_JOB_GRACE_MS";

/// The limits of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellLimits {
    pub max_processes: usize,
    pub max_children: usize,
    pub max_capture_bytes: usize,
    pub max_expansion_bytes: usize,
    pub max_expansion_words: usize,
    pub job_grace: Duration,
}

impl Default for ShellLimits {
    fn default() -> Self {
        ShellLimits {
            max_processes: DEFAULT_MAX_PROCESSES,
            max_children: DEFAULT_MAX_CHILDREN,
            max_capture_bytes: DEFAULT_MAX_CAPTURE_BYTES,
            max_expansion_bytes: DEFAULT_MAX_EXPANSION_BYTES,
            max_expansion_words: DEFAULT_MAX_EXPANSION_WORDS,
            job_grace: DEFAULT_JOB_GRACE,
        }
    }
}

impl ShellLimits {
    /// The defaults, with the overrides of wasmbuild's own environment (`WASMBUILD_MAX_*`,
    /// `WASMBUILD_JOB_GRACE_MS`); a value that is not a number is ignored.
    pub fn from_env() -> Self {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
        };
        let mut limits = ShellLimits::default();
        if let Some(n) = read(MAX_PROCESSES_VAR) {
            limits.max_processes = n;
        }
        if let Some(n) = read(MAX_CHILDREN_VAR) {
            limits.max_children = n;
        }
        if let Some(n) = read(MAX_CAPTURE_BYTES_VAR) {
            limits.max_capture_bytes = n;
        }
        if let Some(n) = read(MAX_EXPANSION_BYTES_VAR) {
            limits.max_expansion_bytes = n;
        }
        if let Some(n) = read(MAX_EXPANSION_WORDS_VAR) {
            limits.max_expansion_words = n;
        }
        if let Some(n) = read(JOB_GRACE_MS_VAR) {
            limits.job_grace = Duration::from_millis(n as u64);
        }
        limits
    }
}

/// What background jobs left at the end of a phase (see `Session::stop_jobs`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobsStopped {
    /// Jobs that were still running after the grace period and were stopped.
    pub stopped: usize,
    /// Set when the session went over its process limit: the phase must fail with it.
    pub error: Option<String>,
}

/// How a background job ended, for `wait`.
pub(crate) type JobResult = Result<i32, ShellError>;

/// The end of one background job, filled in by its thread.
#[derive(Default)]
pub(crate) struct JobSlot {
    result: Mutex<Option<JobResult>>,
    done: Condvar,
}

impl JobSlot {
    pub(crate) fn complete(&self, result: JobResult) {
        *lock(&self.result) = Some(result);
        self.done.notify_all();
    }

    /// Waits for the job to end and takes its result; `cancelled` is asked every 50 ms
    /// and ends the wait with [`ShellError::Interrupted`].
    pub(crate) fn wait(&self, cancelled: &dyn Fn() -> bool) -> JobResult {
        let mut guard = lock(&self.result);
        loop {
            if cancelled() {
                return Err(ShellError::Interrupted);
            }
            if let Some(result) = guard.take() {
                // Leave a status for a second `wait` on the same pid.
                *guard = Some(match &result {
                    Ok(status) => Ok(*status),
                    Err(_) => Ok(1),
                });
                return result;
            }
            guard = self
                .done
                .wait_timeout(guard, Duration::from_millis(50))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// What all the interpreters of one session share: the limits, the count of live threads,
/// and every background job started anywhere in it.
pub(crate) struct SessionShared {
    pub limits: ShellLimits,
    live: AtomicUsize,
    /// Live programs started by programs.
    children: AtomicUsize,
    /// The session tripped on `children`, not on `live`.
    children_tripped: AtomicBool,
    /// The process limit was exceeded: every interpreter of the session unwinds at its next
    /// check, and nothing new starts, until the session is reset.
    tripped: AtomicBool,
    jobs: Mutex<Vec<JoinHandle<()>>>,
    generation: AtomicU64,
}

/// One live pipeline stage or job; the count goes down when it is dropped.
pub(crate) struct ProcessSlot(Arc<SessionShared>);

impl Drop for ProcessSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One live program started by a program; the count goes down when it is dropped.
pub(crate) struct ChildSlot(Arc<SessionShared>);

impl Drop for ChildSlot {
    fn drop(&mut self) {
        self.0.children.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Status of a command stopped by the process limit (bash's "cannot execute").
pub(crate) const PROCESS_LIMIT_STATUS: i32 = 126;

impl SessionShared {
    pub(crate) fn new(limits: ShellLimits) -> Arc<Self> {
        Arc::new(SessionShared {
            limits,
            live: AtomicUsize::new(0),
            children: AtomicUsize::new(0),
            children_tripped: AtomicBool::new(false),
            tripped: AtomicBool::new(false),
            jobs: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
        })
    }

    pub(crate) fn process_limit_message(&self) -> String {
        if self.children_tripped.load(Ordering::SeqCst) {
            return self.child_limit_message();
        }
        format!(
            "wasmbuild: too many processes (limit {})",
            self.limits.max_processes
        )
    }

    /// Takes a slot for a new thread. `Err(first)`: the limit is reached (or was), `first`
    /// telling whether this call tripped it (the caller then prints the message).
    pub(crate) fn acquire(self: &Arc<Self>) -> Result<ProcessSlot, bool> {
        if self.tripped.load(Ordering::SeqCst) {
            return Err(false);
        }
        let previous = self.live.fetch_add(1, Ordering::SeqCst);
        if previous >= self.limits.max_processes {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return Err(self.trip());
        }
        Ok(ProcessSlot(self.clone()))
    }

    pub(crate) fn child_limit_message(&self) -> String {
        format!(
            "wasmbuild: too many processes started by programs (limit {}, {MAX_CHILDREN_VAR})",
            self.limits.max_children
        )
    }

    /// Takes a slot for a program started by a program; at the limit the session trips
    /// (`Err(first)` as for [`SessionShared::acquire`]).
    pub(crate) fn acquire_child(self: &Arc<Self>) -> Result<ChildSlot, bool> {
        if self.tripped.load(Ordering::SeqCst) {
            return Err(false);
        }
        let previous = self.children.fetch_add(1, Ordering::SeqCst);
        if previous >= self.limits.max_children {
            self.children.fetch_sub(1, Ordering::SeqCst);
            let first = self.trip();
            if first {
                self.children_tripped.store(true, Ordering::SeqCst);
            }
            return Err(first);
        }
        Ok(ChildSlot(self.clone()))
    }

    /// Marks the session as over its process limit; `true` for the call that did it.
    pub(crate) fn trip(&self) -> bool {
        !self.tripped.swap(true, Ordering::SeqCst)
    }

    pub(crate) fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    pub(crate) fn register_job(&self, handle: JoinHandle<()>) {
        let mut jobs = lock(&self.jobs);
        jobs.retain(|h| !h.is_finished());
        jobs.push(handle);
    }

    /// The current generation of background jobs: a job whose generation is older was
    /// stopped, and its interpreter unwinds at its next check.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Ends every registered background job: waits up to `grace` for them to end on their
    /// own; then stops the rest: their interpreters by a new generation, their programs by
    /// raising `cancel` (unless it was up already) for at most [`STOP_WAIT`], after which it
    /// is lowered again and a job still blocked in the host is left to end by itself (it
    /// runs nothing more). Jobs started meanwhile by jobs are handled in the same way.
    pub(crate) fn stop_jobs(&self, grace: Duration, cancel: &AtomicBool) -> usize {
        let until = Instant::now() + grace;
        let mut stopping: Option<(Instant, bool)> = None;
        let mut stopped = 0;
        loop {
            let mut running: Vec<JoinHandle<()>> = Vec::new();
            for handle in std::mem::take(&mut *lock(&self.jobs)) {
                if handle.is_finished() {
                    let _ = handle.join();
                } else {
                    running.push(handle);
                }
            }
            if running.is_empty() {
                break;
            }
            let now = Instant::now();
            match stopping {
                None if now < until && !cancel.load(Ordering::SeqCst) => {}
                None => {
                    stopped = running.len();
                    self.generation.fetch_add(1, Ordering::SeqCst);
                    let raised = !cancel.swap(true, Ordering::SeqCst);
                    stopping = Some((now + STOP_WAIT, raised));
                }
                Some((give_up, _)) if now >= give_up => {
                    // Left to end by themselves: their interpreters are stopped already.
                    break;
                }
                Some(_) => {}
            }
            lock(&self.jobs).extend(running);
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some((_, true)) = stopping {
            cancel.store(false, Ordering::SeqCst);
        }
        stopped
    }

    /// Clears the trip of the process limit once nothing of the runaway is left.
    pub(crate) fn reset(&self, cancel: &AtomicBool) {
        if self.is_tripped() {
            self.stop_jobs(Duration::ZERO, cancel);
            self.tripped.store(false, Ordering::SeqCst);
        }
    }
}
