//! The file descriptors of commands inside the interpreter: shared handles on readers and
//! writers (pipes, files of the guest filesystem, captures of `$( )`, the session's stdio),
//! and the small fd table each command gets. Nothing here touches a path.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A shared reader. Clones read from the same stream, so `read` and the programs after it
/// see consecutive data, as with a shared file offset.
#[derive(Clone)]
pub(crate) struct InHandle(Arc<Mutex<Box<dyn BufRead + Send>>>);

/// A shared writer. Clones write to the same stream (e.g. after `2>&1`).
#[derive(Clone)]
pub(crate) struct OutHandle(Arc<Mutex<Box<dyn Write + Send>>>);

pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the stream usable; there is no invariant to break.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InHandle {
    pub(crate) fn new(reader: impl Read + Send + 'static) -> Self {
        InHandle(Arc::new(Mutex::new(Box::new(BufReader::new(reader)))))
    }

    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Self {
        InHandle(Arc::new(Mutex::new(Box::new(io::Cursor::new(bytes)))))
    }

    pub(crate) fn empty() -> Self {
        InHandle(Arc::new(Mutex::new(Box::new(io::empty()))))
    }

    /// Reads up to and including `delimiter`, at most `limit` bytes (an error past them);
    /// `None` at end of input.
    pub(crate) fn read_until(&self, delimiter: u8, limit: usize) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let mut guard = lock(&self.0);
        let n = (&mut *guard)
            .take(limit as u64 + 1)
            .read_until(delimiter, &mut line)?;
        if line.len() > limit {
            return Err(io::Error::other(format!(
                "line too long (limit {limit} bytes)"
            )));
        }
        Ok((n > 0).then_some(line))
    }

    /// Reads at most `limit` bytes (for `read -n`), stopping early at end of input.
    pub(crate) fn read_up_to(&self, limit: usize) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut guard = lock(&self.0);
        (&mut *guard).take(limit as u64).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

impl Read for InHandle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        lock(&self.0).read(buf)
    }
}

impl OutHandle {
    pub(crate) fn new(writer: impl Write + Send + 'static) -> Self {
        OutHandle(Arc::new(Mutex::new(Box::new(writer))))
    }

    /// A writer that discards everything (`/dev/null`).
    pub(crate) fn sink() -> Self {
        OutHandle::new(io::sink())
    }

    /// A writer for a closed descriptor: every write fails.
    pub(crate) fn closed() -> Self {
        OutHandle::new(ClosedWriter)
    }
}

impl Write for OutHandle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // One lock for the whole buffer keeps a line of one writer together.
        lock(&self.0).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        lock(&self.0).flush()
    }
}

struct ClosedWriter;

impl Write for ClosedWriter {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("Bad file descriptor"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The bytes a command substitution captures, at most `limit`: a write past it fails as
/// on a closed pipe (a builtin then ends as by SIGPIPE, a program sees an error), and the
/// capture remembers that it overflowed.
#[derive(Clone)]
pub(crate) struct Capture {
    bytes: Arc<Mutex<Vec<u8>>>,
    limit: usize,
    overflowed: Arc<AtomicBool>,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Self {
        Capture {
            bytes: Arc::default(),
            limit,
            overflowed: Arc::default(),
        }
    }

    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *lock(&self.bytes))
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::SeqCst)
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = lock(&self.bytes);
        if self.overflowed() || bytes.len().saturating_add(buf.len()) > self.limit {
            self.overflowed.store(true, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "command substitution output too large",
            ));
        }
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one descriptor is connected to.
#[derive(Clone)]
pub(crate) enum Stream {
    In(InHandle),
    Out(OutHandle),
}

/// The descriptors of a command. Descriptors 0–9 are supported, as in `exec 3>file`.
#[derive(Clone)]
pub(crate) struct Io {
    fds: Vec<Option<Stream>>,
}

pub(crate) const MAX_FD: i32 = 9;

impl Io {
    pub(crate) fn new(stdin: InHandle, stdout: OutHandle, stderr: OutHandle) -> Self {
        Io {
            fds: vec![
                Some(Stream::In(stdin)),
                Some(Stream::Out(stdout)),
                Some(Stream::Out(stderr)),
            ],
        }
    }

    pub(crate) fn get(&self, fd: i32) -> Option<&Stream> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(Option::as_ref)
    }

    pub(crate) fn set(&mut self, fd: i32, stream: Option<Stream>) {
        let Ok(i) = usize::try_from(fd) else { return };
        if self.fds.len() <= i {
            self.fds.resize(i + 1, None);
        }
        self.fds[i] = stream;
    }

    /// Standard input; a closed or write-only descriptor reads as empty.
    pub(crate) fn stdin(&self) -> InHandle {
        match self.get(0) {
            Some(Stream::In(h)) => h.clone(),
            _ => InHandle::empty(),
        }
    }

    pub(crate) fn output(&self, fd: i32) -> OutHandle {
        match self.get(fd) {
            Some(Stream::Out(h)) => h.clone(),
            _ => OutHandle::closed(),
        }
    }

    pub(crate) fn stdout(&self) -> OutHandle {
        self.output(1)
    }

    pub(crate) fn stderr(&self) -> OutHandle {
        self.output(2)
    }

    /// Writes a diagnostic to standard error; a failing stderr is ignored, as in bash.
    pub(crate) fn diag(&self, message: &str) {
        let mut line = message.as_bytes().to_vec();
        line.push(b'\n');
        let _ = self.stderr().write_all(&line);
    }
}
