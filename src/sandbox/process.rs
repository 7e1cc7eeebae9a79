//! Programs that guests start: the `/dev/process` device and what stands behind it. WASI
//! preview 1 cannot start a process, so a guest asks through files, which every guest
//! language reaches (Rust's `std::fs`, CPython's `os.open`):
//!
//! - `/dev/process/spawn`, opened read-write: the guest writes a request (NUL-separated
//!   fields, see [`Request::parse`]) and reads the child's number `N\n`; a refused request
//!   fails that read with the errno (ENOENT: no such program; EAGAIN: the build's cap on
//!   live processes; E2BIG: argv and environment too large; EBADF: a bad descriptor).
//! - `/dev/process/N/stdin`, `…/stdout`, `…/stderr`: the parent's ends of the pipes the
//!   request asked for, each opened once.
//! - `/dev/process/N/status`: reading waits for N and answers `exit S` or `signal S`;
//!   `…/poll` answers the same, or `running`, without waiting; writing a signal number to
//!   `…/kill` stops N (its programs and interpreter), which then ended by that signal.
//! - `/dev/process/wait`: waits for any child not yet waited for: `N exit S`; ECHILD when
//!   there is none.
//! - `/dev/process/stdin`, `…/stdout`, `…/stderr`: linking a descriptor's `.` there
//!   (`linkat(fd, ".", dev, "process/stdout")`) stages it for the next request's `staged`
//!   stream; a guest that renumbers its own descriptors (CPython in wasi-vfs) names them
//!   this way, since the link passes the descriptor itself.
//! - `/dev/process/timeout`: milliseconds (or `-`) that later blocking reads and writes of
//!   the device may wait before failing with ETIMEDOUT (for `communicate(timeout=…)`).
//!
//! The child runs on its own host thread, started by the [`Spawner`] the guest was given
//! (the build shell's: the same `PATH`, bundles, scripts and `sh -c` as a buildspec command).
//! Pipes are in memory, 64 KiB as on Linux; while a parent is blocked on the device, the
//! pipes it reads from take what its children write (up to [`ELASTIC_LIMIT`]), so a parent
//! reading one pipe to its end, or waiting, never deadlocks with a child filling another.
//! A child still running when its parent ends is stopped, as its process group would be.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::interrupt::{CHECK_SLICE, StopSignal};
use super::{GuestInput, GuestOutput, Interrupted, TrapKind};

/// Bytes a pipe holds before its writer waits (Linux's default).
pub const PIPE_CAPACITY: usize = 64 << 10;
/// Bytes a pipe may hold while its reader is blocked elsewhere on the device; a writer
/// beyond it gets EPIPE (a child flooding a pipe its parent never reads).
pub const ELASTIC_LIMIT: usize = 64 << 20;
/// Largest request (argv and environment), as Linux's `ARG_MAX` of 2 MiB.
pub const MAX_REQUEST: usize = 2 << 20;

// WASI errno values the device answers with.
pub(super) const E2BIG: i32 = 1;
pub(super) const EAGAIN: i32 = 6;
pub(super) const EBADF: i32 = 8;
pub(super) const ECHILD: i32 = 12;
pub(super) const EINVAL: i32 = 28;
pub(super) const EIO: i32 = 29;
pub(super) const ENOENT: i32 = 44;
pub(super) const ENOTSUP: i32 = 58;
pub(super) const EPIPE: i32 = 64;
pub(super) const ETIMEDOUT: i32 = 73;

/// What a guest asks to start.
pub struct SpawnRequest {
    /// argv\[0\] is the program as the guest named it (a name looked up in `PATH`, or a path).
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Absolute guest path.
    pub cwd: String,
    pub stdin: GuestInput,
    pub stdout: GuestOutput,
    pub stderr: GuestOutput,
    /// Raised to stop the child (a signal from its parent, or the parent's end).
    pub kill: Arc<AtomicBool>,
    /// Completed by whoever runs the child, with its status.
    pub end: ChildEnd,
}

/// Why a child was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// No program of that name in `PATH`, the bundles or the shell.
    NotFound,
    /// The build's cap on live processes was reached.
    Limit,
    /// The host could not start a thread for it.
    Failed(String),
}

/// Starts the programs guests ask for. The build shell provides one (`shell::spawn`); a
/// guest given none gets ENOTSUP.
pub trait Spawner: Send + Sync {
    /// Starts the child on its own thread and returns at once; the child's status goes to
    /// `request.end` when it ends (128+n when stopped by signal n through `kill`).
    fn spawn(&self, request: SpawnRequest) -> Result<(), SpawnError>;
}

/// Wakes a parent waiting for any of its children.
#[derive(Default)]
struct Notifier {
    ended: Mutex<u64>,
    cond: Condvar,
}

/// The status of one child, filled in once.
#[derive(Clone)]
pub struct ChildEnd {
    status: Arc<Mutex<Option<i32>>>,
    notifier: Arc<Notifier>,
}

impl ChildEnd {
    /// Records how the child ended and wakes its parent.
    pub fn complete(&self, status: i32) {
        *lock(&self.status) = Some(status);
        *lock(&self.notifier.ended) += 1;
        self.notifier.cond.notify_all();
    }

    fn get(&self) -> Option<i32> {
        *lock(&self.status)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// Pipes.

struct PipeState {
    data: VecDeque<u8>,
    readers: usize,
    writers: usize,
}

/// An in-memory pipe between a guest and a child.
struct Pipe {
    state: Mutex<PipeState>,
    cond: Condvar,
    /// Set while the reading guest is blocked on the device: the pipe then grows.
    elastic: Option<Arc<AtomicBool>>,
}

impl Pipe {
    fn new(elastic: Option<Arc<AtomicBool>>) -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(PipeState {
                data: VecDeque::new(),
                readers: 0,
                writers: 0,
            }),
            cond: Condvar::new(),
            elastic,
        })
    }
}

impl Pipe {
    /// Waits a slice for the other end, unless the wait must end.
    fn wait<'a>(
        &self,
        state: MutexGuard<'a, PipeState>,
        waiting: &Waiting,
    ) -> io::Result<MutexGuard<'a, PipeState>> {
        waiting.check()?;
        Ok(self
            .cond
            .wait_timeout(state, CHECK_SLICE)
            .unwrap_or_else(|e| e.into_inner())
            .0)
    }
}

/// How long a blocking call may wait, and what stops it.
#[derive(Clone)]
struct Waiting {
    stop: StopSignal,
    until: Option<Instant>,
}

impl Waiting {
    /// `Err` when the wait must end: the guest must stop, or the time is up.
    fn check(&self) -> io::Result<()> {
        if let Some(kind) = self.stop.check() {
            return Err(io::Error::other(Interrupted(kind)));
        }
        if self.until.is_some_and(|u| Instant::now() >= u) {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(())
    }
}

/// The reading end of a pipe.
pub(crate) struct PipeReader {
    pipe: Arc<Pipe>,
    waiting: Waiting,
}

impl PipeReader {
    fn new(pipe: Arc<Pipe>, stop: StopSignal) -> Self {
        lock(&pipe.state).readers += 1;
        PipeReader {
            pipe,
            waiting: Waiting { stop, until: None },
        }
    }

    fn read_within(&mut self, buf: &mut [u8], until: Option<Instant>) -> io::Result<usize> {
        self.waiting.until = until;
        self.read(buf)
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut state = lock(&self.pipe.state);
        loop {
            if !state.data.is_empty() {
                let n = buf.len().min(state.data.len());
                for (slot, byte) in buf.iter_mut().zip(state.data.drain(..n)) {
                    *slot = byte;
                }
                self.pipe.cond.notify_all();
                return Ok(n);
            }
            if state.writers == 0 {
                return Ok(0);
            }
            state = self.pipe.wait(state, &self.waiting)?;
        }
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        lock(&self.pipe.state).readers -= 1;
        self.pipe.cond.notify_all();
    }
}

/// The writing end of a pipe.
pub(crate) struct PipeWriter {
    pipe: Arc<Pipe>,
    waiting: Waiting,
}

impl PipeWriter {
    fn new(pipe: Arc<Pipe>, stop: StopSignal) -> Self {
        lock(&pipe.state).writers += 1;
        PipeWriter {
            pipe,
            waiting: Waiting { stop, until: None },
        }
    }

    fn write_within(&mut self, buf: &[u8], until: Option<Instant>) -> io::Result<usize> {
        self.waiting.until = until;
        self.write(buf)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut state = lock(&self.pipe.state);
        loop {
            if state.readers == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let elastic = self
                .pipe
                .elastic
                .as_ref()
                .is_some_and(|e| e.load(Ordering::SeqCst));
            let room = if elastic {
                if state.data.len() >= ELASTIC_LIMIT {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "pipe never read: its reader waits on something else",
                    ));
                }
                ELASTIC_LIMIT - state.data.len()
            } else {
                PIPE_CAPACITY.saturating_sub(state.data.len())
            };
            if room > 0 {
                let n = room.min(buf.len());
                state.data.extend(&buf[..n]);
                self.pipe.cond.notify_all();
                return Ok(n);
            }
            state = self.pipe.wait(state, &self.waiting)?;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        lock(&self.pipe.state).writers -= 1;
        self.pipe.cond.notify_all();
    }
}

// ---------------------------------------------------------------------------------------
// The request.

/// Where one of a child's standard streams goes, as the request says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StreamSpec {
    /// The parent's descriptor of that number.
    Fd(i32),
    /// A new pipe to the parent.
    Pipe,
    /// `/dev/null`.
    Null,
    /// (stderr only) wherever the child's stdout goes.
    Stdout,
    /// The descriptor staged for it by linking it to `/dev/process/stdin` (or `stdout`,
    /// `stderr`): the way to name a descriptor for guests that renumber their own (CPython
    /// in wasi-vfs), since a link passes it as a descriptor, not as a number.
    Staged,
}

/// A parsed `spawn` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Request {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub stdio: [StreamSpec; 3],
}

impl Request {
    /// Parses `spawn\0 ARGC\0 ARG…\0 ENVC\0 NAME=VALUE…\0 CWD\0 STDIN\0 STDOUT\0 STDERR\0`,
    /// each stream being `inherit`, `fd:N`, `staged`, `pipe`, `null` or (stderr) `stdout`.
    pub(super) fn parse(bytes: &[u8]) -> Result<Request, i32> {
        let bytes = bytes.strip_suffix(b"\0").ok_or(EINVAL)?;
        let mut fields = bytes
            .split(|&b| b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned());
        let mut next = || fields.next().ok_or(EINVAL);
        if next()? != "spawn" {
            return Err(EINVAL);
        }
        let argc: usize = next()?.parse().map_err(|_| EINVAL)?;
        if argc == 0 || argc > MAX_REQUEST / 2 {
            return Err(EINVAL);
        }
        let argv = (0..argc).map(|_| next()).collect::<Result<Vec<_>, _>>()?;
        let envc: usize = next()?.parse().map_err(|_| EINVAL)?;
        if envc > MAX_REQUEST / 2 {
            return Err(EINVAL);
        }
        let mut env = Vec::with_capacity(envc);
        for _ in 0..envc {
            let pair = next()?;
            match pair.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    env.push((name.to_owned(), value.to_owned()))
                }
                _ => return Err(EINVAL),
            }
        }
        let cwd = next()?;
        let mut stdio = [StreamSpec::Null, StreamSpec::Null, StreamSpec::Null];
        for (n, spec) in stdio.iter_mut().enumerate() {
            let text = next()?;
            *spec = match text.as_str() {
                "inherit" => StreamSpec::Fd(n as i32),
                "pipe" => StreamSpec::Pipe,
                "null" => StreamSpec::Null,
                "stdout" if n == 2 => StreamSpec::Stdout,
                "staged" => StreamSpec::Staged,
                other => match other.strip_prefix("fd:").and_then(|f| f.parse().ok()) {
                    Some(fd) => StreamSpec::Fd(fd),
                    None => return Err(EINVAL),
                },
            };
        }
        if argv[0].is_empty() {
            return Err(ENOENT);
        }
        Ok(Request {
            argv,
            env,
            cwd,
            stdio,
        })
    }
}

// ---------------------------------------------------------------------------------------
// What a guest holds open on the device, and its children.

/// What a descriptor opened under `/dev/process` is.
pub(super) enum Object {
    /// `/dev/process/spawn`: the request written so far, then the answer to read.
    Spawn {
        request: Vec<u8>,
        answer: Option<Answer>,
    },
    /// The parent's end of a child's stdout or stderr.
    Reader(PipeReader),
    /// The parent's end of a child's stdin.
    Writer(PipeWriter),
    /// `status`, `poll` or `wait`: the answer, once known.
    Status {
        of: StatusOf,
        answer: Option<Answer>,
    },
    /// `…/kill`: a signal number is written to it.
    Kill(u32),
    /// `/dev/process/timeout`.
    Timeout,
}

/// Which status a status object answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StatusOf {
    Wait(u32),
    Poll(u32),
    Any,
}

/// Bytes to hand out to reads, from `read` on.
pub(super) struct Answer {
    bytes: Vec<u8>,
    read: usize,
}

impl Answer {
    fn new(text: String) -> Self {
        Answer {
            bytes: text.into_bytes(),
            read: 0,
        }
    }

    fn take(&mut self, max: usize) -> Vec<u8> {
        let end = (self.read + max).min(self.bytes.len());
        let out = self.bytes[self.read..end].to_vec();
        self.read = end;
        out
    }
}

/// A name under `/dev/process`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProcNode {
    Dir,
    /// `stdin`, `stdout`, `stderr`: where descriptors are staged (0, 1, 2).
    Stage(u8),
    Spawn,
    Wait,
    Timeout,
    Child(u32, ChildFile),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChildFile {
    Dir,
    Stdin,
    Stdout,
    Stderr,
    Status,
    Poll,
    Kill,
}

impl ProcNode {
    /// The node named by `parts` below `/dev/process`.
    pub(super) fn resolve<'a>(mut parts: impl Iterator<Item = &'a [u8]>) -> Result<Self, i32> {
        let Some(first) = parts.next() else {
            return Ok(ProcNode::Dir);
        };
        let node = match first {
            b"spawn" => ProcNode::Spawn,
            b"wait" => ProcNode::Wait,
            b"timeout" => ProcNode::Timeout,
            b"stdin" => ProcNode::Stage(0),
            b"stdout" => ProcNode::Stage(1),
            b"stderr" => ProcNode::Stage(2),
            number => {
                let n: u32 = std::str::from_utf8(number)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(ENOENT)?;
                let file = match parts.next() {
                    None => ChildFile::Dir,
                    Some(b"stdin") => ChildFile::Stdin,
                    Some(b"stdout") => ChildFile::Stdout,
                    Some(b"stderr") => ChildFile::Stderr,
                    Some(b"status") => ChildFile::Status,
                    Some(b"poll") => ChildFile::Poll,
                    Some(b"kill") => ChildFile::Kill,
                    Some(_) => return Err(ENOENT),
                };
                ProcNode::Child(n, file)
            }
        };
        if parts.next().is_some() {
            return Err(ENOENT);
        }
        Ok(node)
    }

    pub(super) fn is_dir(self) -> bool {
        matches!(self, ProcNode::Dir | ProcNode::Child(_, ChildFile::Dir))
    }
}

/// One child of a guest.
struct Child {
    end: ChildEnd,
    kill: Arc<AtomicBool>,
    /// The signal it was stopped by, if its parent sent one.
    signal: Option<i32>,
    stdin: Option<PipeWriter>,
    stdout: Option<PipeReader>,
    stderr: Option<PipeReader>,
    /// Its status was read through `status` or `wait`.
    reaped: bool,
}

impl Child {
    fn answer(&self, status: i32) -> String {
        match self.signal {
            Some(signal) => format!("signal {signal}"),
            None => format!("exit {status}"),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A child outlives no parent: it is stopped with it.
        if self.end.get().is_none() {
            self.kill.store(true, Ordering::SeqCst);
        }
    }
}

/// What the sandbox gives a guest for starting programs.
pub(super) struct ProcessContext {
    pub spawner: Arc<dyn Spawner>,
    /// The guest's own deadline and cancel flag: its children get the same.
    pub stop: StopSignal,
}

/// A guest's `/dev/process` state: open objects and children.
#[derive(Default)]
pub(super) struct Processes {
    pub context: Option<ProcessContext>,
    objects: HashMap<u32, (Object, u32)>,
    next_object: u32,
    children: BTreeMap<u32, Child>,
    next_child: u32,
    notifier: Arc<Notifier>,
    /// Set while this guest is blocked on the device (see the module's comment).
    blocked: Arc<AtomicBool>,
    /// How long a blocking call may wait (`/dev/process/timeout`).
    timeout: Option<Duration>,
}

/// The host side of a child's streams, as resolved by the descriptor table.
pub(super) enum ChildStream {
    Input(GuestInput),
    Output(GuestOutput),
    Pipe,
}

impl Processes {
    /// Opens `node`: the number of a new object.
    pub(super) fn open(&mut self, node: ProcNode) -> Result<u32, i32> {
        let object = match node {
            ProcNode::Dir | ProcNode::Child(_, ChildFile::Dir) | ProcNode::Stage(_) => {
                return Err(EINVAL);
            }
            ProcNode::Spawn => Object::Spawn {
                request: Vec::new(),
                answer: None,
            },
            ProcNode::Wait => Object::Status {
                of: StatusOf::Any,
                answer: None,
            },
            ProcNode::Timeout => Object::Timeout,
            ProcNode::Child(n, file) => {
                let child = self.children.get_mut(&n).ok_or(ENOENT)?;
                match file {
                    ChildFile::Dir => return Err(EINVAL),
                    ChildFile::Stdin => Object::Writer(child.stdin.take().ok_or(ENOENT)?),
                    ChildFile::Stdout => Object::Reader(child.stdout.take().ok_or(ENOENT)?),
                    ChildFile::Stderr => Object::Reader(child.stderr.take().ok_or(ENOENT)?),
                    ChildFile::Status => Object::Status {
                        of: StatusOf::Wait(n),
                        answer: None,
                    },
                    ChildFile::Poll => Object::Status {
                        of: StatusOf::Poll(n),
                        answer: None,
                    },
                    ChildFile::Kill => Object::Kill(n),
                }
            }
        };
        self.next_object += 1;
        let id = self.next_object;
        self.objects.insert(id, (object, 1));
        Ok(id)
    }

    /// Whether `node` exists (for `stat`).
    pub(super) fn exists(&self, node: ProcNode) -> bool {
        match node {
            ProcNode::Child(n, _) => self.children.contains_key(&n),
            _ => true,
        }
    }

    /// One more descriptor names object `id`.
    pub(super) fn share(&mut self, id: u32) {
        if let Some((_, refs)) = self.objects.get_mut(&id) {
            *refs += 1;
        }
    }

    /// One descriptor fewer names object `id`; the last one closes it.
    pub(super) fn release(&mut self, id: u32) {
        if let Some((_, refs)) = self.objects.get_mut(&id) {
            *refs -= 1;
            if *refs == 0 {
                self.objects.remove(&id);
            }
        }
    }

    /// The request of spawn object `id` if it waits to be sent (the next read sends it),
    /// or why it cannot be.
    pub(super) fn pending_spawn(&self, id: u32) -> Option<Result<Request, i32>> {
        match self.objects.get(&id) {
            Some((
                Object::Spawn {
                    request,
                    answer: None,
                },
                _,
            )) => Some(Request::parse(request)),
            _ => None,
        }
    }

    /// Sends the request of spawn object `id`, given the host side of the parent
    /// descriptors it names; the child's number is then its answer.
    pub(super) fn spawn(
        &mut self,
        id: u32,
        request: Request,
        streams: [ChildStream; 3],
        stderr_is_stdout: bool,
    ) -> Result<(), i32> {
        let Some(context) = &self.context else {
            return Err(ENOTSUP);
        };
        let size: usize = request.argv.iter().map(|a| a.len() + 1).sum::<usize>()
            + request
                .env
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>();
        if size > MAX_REQUEST {
            return Err(E2BIG);
        }
        let kill = Arc::new(AtomicBool::new(false));
        let child_stop = StopSignal {
            deadline: context.stop.deadline,
            cancel: context.stop.cancel.clone(),
            kill: Some(kill.clone()),
        };
        let [stdin, stdout, stderr] = streams;
        let mut parent_stdin = None;
        let stdin: GuestInput = match stdin {
            ChildStream::Input(input) => input,
            ChildStream::Output(_) => return Err(EBADF),
            ChildStream::Pipe => {
                let pipe = Pipe::new(None);
                parent_stdin = Some(PipeWriter::new(pipe.clone(), context.stop.clone()));
                Box::new(PipeReader::new(pipe, child_stop.clone()))
            }
        };
        let mut parent_stdout = None;
        let stdout_pipe = match &stdout {
            ChildStream::Pipe => Some(Pipe::new(Some(self.blocked.clone()))),
            _ => None,
        };
        let stdout: GuestOutput = match stdout {
            ChildStream::Output(output) => output,
            ChildStream::Input(_) => return Err(EBADF),
            ChildStream::Pipe => {
                let pipe = stdout_pipe.clone().expect("made above");
                parent_stdout = Some(PipeReader::new(pipe.clone(), context.stop.clone()));
                Box::new(PipeWriter::new(pipe, child_stop.clone()))
            }
        };
        let mut parent_stderr = None;
        let (stdout, stderr): (GuestOutput, GuestOutput) = if stderr_is_stdout {
            let shared = SharedOutput(Arc::new(Mutex::new(stdout)));
            (Box::new(shared.clone()), Box::new(shared))
        } else {
            let stderr: GuestOutput = match stderr {
                ChildStream::Output(output) => output,
                ChildStream::Input(_) => return Err(EBADF),
                ChildStream::Pipe => {
                    let pipe = Pipe::new(Some(self.blocked.clone()));
                    parent_stderr = Some(PipeReader::new(pipe.clone(), context.stop.clone()));
                    Box::new(PipeWriter::new(pipe, child_stop))
                }
            };
            (stdout, stderr)
        };
        let end = ChildEnd {
            status: Arc::new(Mutex::new(None)),
            notifier: self.notifier.clone(),
        };
        context
            .spawner
            .spawn(SpawnRequest {
                argv: request.argv,
                env: request.env,
                cwd: request.cwd,
                stdin,
                stdout,
                stderr,
                kill: kill.clone(),
                end: end.clone(),
            })
            .map_err(|e| match e {
                SpawnError::NotFound => ENOENT,
                SpawnError::Limit => EAGAIN,
                SpawnError::Failed(reason) => {
                    tracing::warn!(%reason, "cannot start a guest's child");
                    EAGAIN
                }
            })?;
        self.next_child += 1;
        let n = self.next_child;
        self.children.insert(
            n,
            Child {
                end,
                kill,
                signal: None,
                stdin: parent_stdin,
                stdout: parent_stdout,
                stderr: parent_stderr,
                reaped: false,
            },
        );
        if let Some((Object::Spawn { answer, .. }, _)) = self.objects.get_mut(&id) {
            *answer = Some(Answer::new(format!("{n}\n")));
        }
        Ok(())
    }

    /// A read of at most `max` bytes from object `id`. Blocking reads (a pipe, a status)
    /// happen with the guest marked as blocked.
    pub(super) fn read(&mut self, id: u32, max: usize) -> Result<Vec<u8>, ReadError> {
        let until = self.timeout.map(|t| Instant::now() + t);
        let stop = self.context.as_ref().map(|c| c.stop.clone());
        let Some((object, _)) = self.objects.get_mut(&id) else {
            return Err(ReadError::Errno(EBADF));
        };
        match object {
            Object::Spawn { answer, .. } => match answer {
                Some(answer) => Ok(answer.take(max)),
                None => Err(ReadError::Errno(EINVAL)),
            },
            Object::Reader(reader) => {
                let mut buf = vec![0u8; max.min(PIPE_CAPACITY * 4)];
                self.blocked.store(true, Ordering::SeqCst);
                let result = reader.read_within(&mut buf, until);
                self.blocked.store(false, Ordering::SeqCst);
                let n = result.map_err(ReadError::from_io)?;
                buf.truncate(n);
                Ok(buf)
            }
            Object::Writer(_) | Object::Kill(_) | Object::Timeout => Err(ReadError::Errno(EBADF)),
            Object::Status { of, answer } => {
                if let Some(answer) = answer {
                    return Ok(answer.take(max));
                }
                let of = *of;
                let text = self.status(of, until, stop)?;
                let Some((Object::Status { answer, .. }, _)) = self.objects.get_mut(&id) else {
                    return Err(ReadError::Errno(EBADF));
                };
                let answer = answer.insert(Answer::new(text));
                Ok(answer.take(max))
            }
        }
    }

    /// The answer of a status object: waits unless polling.
    fn status(
        &mut self,
        of: StatusOf,
        until: Option<Instant>,
        stop: Option<StopSignal>,
    ) -> Result<String, ReadError> {
        let ready = |children: &mut BTreeMap<u32, Child>| -> Result<Option<String>, i32> {
            match of {
                StatusOf::Wait(n) | StatusOf::Poll(n) => {
                    let child = children.get_mut(&n).ok_or(ECHILD)?;
                    Ok(match child.end.get() {
                        Some(status) => {
                            child.reaped = child.reaped || matches!(of, StatusOf::Wait(_));
                            Some(child.answer(status))
                        }
                        None if matches!(of, StatusOf::Poll(_)) => Some("running".to_owned()),
                        None => None,
                    })
                }
                StatusOf::Any => {
                    let mut waiting = false;
                    for (n, child) in children.iter_mut() {
                        if child.reaped {
                            continue;
                        }
                        match child.end.get() {
                            Some(status) => {
                                child.reaped = true;
                                return Ok(Some(format!("{n} {}", child.answer(status))));
                            }
                            None => waiting = true,
                        }
                    }
                    if waiting { Ok(None) } else { Err(ECHILD) }
                }
            }
        };
        let waiting = Waiting {
            stop: stop.unwrap_or_default(),
            until,
        };
        self.blocked.store(true, Ordering::SeqCst);
        let result = loop {
            let seen = *lock(&self.notifier.ended);
            match ready(&mut self.children) {
                Ok(Some(text)) => break Ok(text + "\n"),
                Ok(None) => {}
                Err(errno) => break Err(ReadError::Errno(errno)),
            }
            if let Err(e) = waiting.check() {
                break Err(ReadError::from_io(e));
            }
            let guard = lock(&self.notifier.ended);
            if *guard == seen {
                let _ = self.notifier.cond.wait_timeout(guard, CHECK_SLICE);
            }
        };
        self.blocked.store(false, Ordering::SeqCst);
        result
    }

    /// A write of `bytes` to object `id`: how many were taken.
    pub(super) fn write(&mut self, id: u32, bytes: &[u8]) -> Result<usize, ReadError> {
        let until = self.timeout.map(|t| Instant::now() + t);
        let Some((object, _)) = self.objects.get_mut(&id) else {
            return Err(ReadError::Errno(EBADF));
        };
        match object {
            Object::Spawn { request, answer } => {
                if answer.is_some() {
                    return Err(ReadError::Errno(EINVAL));
                }
                if request.len() + bytes.len() > MAX_REQUEST + 4096 {
                    return Err(ReadError::Errno(E2BIG));
                }
                request.extend_from_slice(bytes);
                Ok(bytes.len())
            }
            Object::Writer(writer) => {
                self.blocked.store(true, Ordering::SeqCst);
                let result = writer.write_within(bytes, until);
                self.blocked.store(false, Ordering::SeqCst);
                result.map_err(ReadError::from_io)
            }
            Object::Kill(n) => {
                let n = *n;
                let signal: i32 = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .filter(|s| (1..=64).contains(s))
                    .ok_or(ReadError::Errno(EINVAL))?;
                let child = self.children.get_mut(&n).ok_or(ReadError::Errno(ECHILD))?;
                if child.end.get().is_none() {
                    child.signal = Some(signal);
                    child.kill.store(true, Ordering::SeqCst);
                }
                Ok(bytes.len())
            }
            Object::Timeout => {
                let text = String::from_utf8_lossy(bytes);
                let text = text.trim();
                self.timeout = if text == "-" || text.is_empty() {
                    None
                } else {
                    let ms: u64 = text.parse().map_err(|_| ReadError::Errno(EINVAL))?;
                    Some(Duration::from_millis(ms))
                };
                Ok(bytes.len())
            }
            Object::Reader(_) | Object::Status { .. } => Err(ReadError::Errno(EBADF)),
        }
    }

    /// A pipe end of object `id`, for handing it on to another child.
    pub(super) fn stream_of(&self, id: u32) -> Option<ChildStream> {
        match self.objects.get(&id).map(|(o, _)| o) {
            Some(Object::Reader(reader)) => Some(ChildStream::Input(Box::new(PipeReader::new(
                reader.pipe.clone(),
                reader.waiting.stop.clone(),
            )))),
            Some(Object::Writer(writer)) => Some(ChildStream::Output(Box::new(PipeWriter::new(
                writer.pipe.clone(),
                writer.waiting.stop.clone(),
            )))),
            _ => None,
        }
    }
}

/// Why a read or write of the device failed.
pub(super) enum ReadError {
    Errno(i32),
    /// The guest must stop (deadline, cancel): a trap, not an errno.
    Stop(TrapKind),
}

impl ReadError {
    fn from_io(error: io::Error) -> Self {
        if let Some(interrupted) = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<Interrupted>())
        {
            return ReadError::Stop(interrupted.0);
        }
        ReadError::Errno(match error.kind() {
            io::ErrorKind::TimedOut => ETIMEDOUT,
            io::ErrorKind::BrokenPipe => EPIPE,
            _ => EIO,
        })
    }
}

/// One output written by two streams (`stderr=STDOUT`).
#[derive(Clone)]
struct SharedOutput(Arc<Mutex<GuestOutput>>);

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        lock(&self.0).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_parsed_field_by_field() {
        let bytes =
            b"spawn\x002\x00ls\x00-l\x001\x00A=b=c\x00/tmp\x00inherit\x00pipe\x00stdout\x00";
        let request = Request::parse(bytes).unwrap();
        assert_eq!(request.argv, ["ls", "-l"]);
        assert_eq!(request.env, [("A".to_owned(), "b=c".to_owned())]);
        assert_eq!(request.cwd, "/tmp");
        assert_eq!(
            request.stdio,
            [StreamSpec::Fd(0), StreamSpec::Pipe, StreamSpec::Stdout]
        );
        assert_eq!(
            Request::parse(b"spawn\x001\x00ls\x000\x00/\x00fd:7\x00null\x00null\x00")
                .unwrap()
                .stdio[0],
            StreamSpec::Fd(7)
        );
        // Truncated, a bad count, a stream spec no one knows, an empty program.
        assert_eq!(Request::parse(b"spawn\x002\x00ls\x00"), Err(EINVAL));
        assert_eq!(Request::parse(b"spawn\x00x\x00ls\x00"), Err(EINVAL));
        assert_eq!(
            Request::parse(b"spawn\x001\x00ls\x000\x00/\x00tty\x00null\x00null\x00"),
            Err(EINVAL)
        );
        assert_eq!(
            Request::parse(b"spawn\x001\x00\x000\x00/\x00null\x00null\x00null\x00"),
            Err(ENOENT)
        );
    }

    #[test]
    fn a_pipe_blocks_its_writer_at_capacity_unless_the_reader_is_blocked() {
        let blocked = Arc::new(AtomicBool::new(false));
        let pipe = Pipe::new(Some(blocked.clone()));
        let mut reader = PipeReader::new(pipe.clone(), StopSignal::default());
        let mut writer = PipeWriter::new(pipe.clone(), StopSignal::default());
        let big = vec![7u8; PIPE_CAPACITY + 10];
        assert_eq!(writer.write(&big).unwrap(), PIPE_CAPACITY);
        // Full: a write waits; with a deadline of now, it gives up.
        let until = Some(Instant::now());
        assert_eq!(
            writer.write_within(&big, until).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        blocked.store(true, Ordering::SeqCst);
        assert_eq!(writer.write(&big).unwrap(), big.len());
        let mut all = Vec::new();
        drop(writer);
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), PIPE_CAPACITY + big.len());
        // With no reader left, a writer gets EPIPE.
        let mut writer = PipeWriter::new(pipe, StopSignal::default());
        drop(reader);
        assert_eq!(
            writer.write(b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn a_blocked_read_ends_at_the_stop_signal() {
        let pipe = Pipe::new(None);
        let kill = Arc::new(AtomicBool::new(false));
        let stop = StopSignal {
            deadline: None,
            cancel: None,
            kill: Some(kill.clone()),
        };
        let mut reader = PipeReader::new(pipe.clone(), stop);
        let _writer = PipeWriter::new(pipe, StopSignal::default());
        let raiser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            kill.store(true, Ordering::SeqCst);
        });
        let error = reader.read(&mut [0u8; 4]).unwrap_err();
        assert!(matches!(
            ReadError::from_io(error),
            ReadError::Stop(TrapKind::Cancelled)
        ));
        raiser.join().unwrap();
    }
}
