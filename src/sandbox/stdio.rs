//! Guest stdio as real, unbounded streams: adapters from blocking `Read`/`Write` objects
//! (pipes, files, the terminal) to wasmtime-wasi's stream traits. Each guest runs on its
//! own thread, so a blocking read or write only ever holds up the guest it belongs to.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, mpsc};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::Interrupted;
use super::interrupt::{CHECK_SLICE, StopSignal};

/// What a guest reads as stdin.
pub type GuestInput = Box<dyn Read + Send>;
/// Where a guest's stdout or stderr goes.
pub type GuestOutput = Box<dyn Write + Send>;

/// Largest chunk handed to the guest by one read.
const READ_CHUNK: usize = 64 * 1024;

/// stdin for a guest, shared by every handle the guest opens on it. Reads happen on the
/// guest's own thread: the pipes between commands end when their writers (guests or the
/// shell, all stopped at the deadline) end. Input that nothing of the build controls (the
/// terminal of `exec` and `sh`) comes wrapped in an [`InterruptibleReader`].
#[derive(Clone)]
pub(crate) struct InputPipe {
    reader: Arc<Mutex<GuestInput>>,
    terminal: bool,
    stop: StopSignal,
}

impl InputPipe {
    pub(crate) fn new(reader: GuestInput, terminal: bool, stop: StopSignal) -> Self {
        InputPipe {
            reader: Arc::new(Mutex::new(reader)),
            terminal,
            stop,
        }
    }

    /// One read of at most `size` bytes; empty at end of input. A read that fails because
    /// the guest must stop reports the stop, not the failure.
    fn read_chunk(&self, size: usize) -> StreamResult<Vec<u8>> {
        let size = size.clamp(1, READ_CHUNK);
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        read_once(reader.as_mut(), size).map_err(|e| match self.stop.check() {
            Some(kind) => StreamError::Trap(Interrupted(kind).into()),
            None => StreamError::LastOperationFailed(e.into()),
        })
    }
}

/// A child that inherits the guest's stdin reads it through here.
impl Read for InputPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        reader.read(buf)
    }
}

/// One read of at most `size` bytes, retried on EINTR.
fn read_once(reader: &mut dyn Read, size: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size];
    loop {
        match reader.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A reader that may block for ever with nothing of the build able to end it (the
/// terminal), made to give up at a deadline or on cancel: reads happen on a helper thread,
/// started at the first read, that reads exactly what is asked (never ahead, so what is
/// not read stays for the next reader); the caller waits in slices, and the read fails
/// once the guest must stop.
pub struct InterruptibleReader {
    reader: Option<GuestInput>,
    pump: Option<Pump>,
    stop: StopSignal,
}

/// The helper thread's ends: read requests (sizes) in, results out.
struct Pump {
    requests: mpsc::Sender<usize>,
    replies: mpsc::Receiver<io::Result<Vec<u8>>>,
}

impl InterruptibleReader {
    pub fn new(
        reader: GuestInput,
        deadline: Option<std::time::Instant>,
        cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Self {
        InterruptibleReader {
            reader: Some(reader),
            pump: None,
            stop: StopSignal {
                deadline,
                cancel,
                kill: None,
            },
        }
    }
}

impl Read for InterruptibleReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pump.is_none() {
            let Some(reader) = self.reader.take() else {
                return Ok(0);
            };
            match Pump::start(reader) {
                Ok(pump) => self.pump = Some(pump),
                Err((mut reader, error)) => {
                    tracing::debug!(%error, "no stdin helper thread; reading in place");
                    let n = reader.read(buf);
                    self.reader = Some(reader);
                    return n;
                }
            }
        }
        let pump = self.pump.as_ref().expect("started above");
        if pump.requests.send(buf.len()).is_err() {
            return Ok(0);
        }
        loop {
            match pump.replies.recv_timeout(CHECK_SLICE) {
                Ok(Ok(bytes)) => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(kind) = self.stop.check() {
                        // The request stays with the helper: this reader is done.
                        self.pump = None;
                        return Err(io::Error::other(Interrupted(kind).to_string()));
                    }
                }
            }
        }
    }
}

impl Pump {
    fn start(reader: GuestInput) -> Result<Pump, (GuestInput, io::Error)> {
        let (requests, request_rx) = mpsc::channel::<usize>();
        let (reply_tx, replies) = mpsc::channel();
        // The reader goes to the thread through a slot, so that it comes back if the
        // thread cannot be started.
        let slot = Arc::new(Mutex::new(Some(reader)));
        let thread_slot = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("wasmbuild-stdin".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let Some(mut reader) = thread_slot.lock().unwrap_or_else(|e| e.into_inner()).take()
                else {
                    return;
                };
                // Ends when the reader is dropped (its requests channel closed).
                while let Ok(size) = request_rx.recv() {
                    let result = read_once(reader.as_mut(), size);
                    if reply_tx.send(result).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => Ok(Pump { requests, replies }),
            Err(error) => {
                let reader = slot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .expect("the thread never ran");
                Err((reader, error))
            }
        }
    }
}

impl IsTerminal for InputPipe {
    fn is_terminal(&self) -> bool {
        self.terminal
    }
}

impl StdinStream for InputPipe {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(AsyncInput(self.clone()))
    }
}

#[async_trait::async_trait]
impl Pollable for InputPipe {
    // Reads block the guest's own thread; readiness is therefore immediate.
    async fn ready(&mut self) {}
}

impl InputStream for InputPipe {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let bytes = self.read_chunk(size)?;
        if bytes.is_empty() {
            return Err(StreamError::Closed);
        }
        Ok(Bytes::from(bytes))
    }
}

struct AsyncInput(InputPipe);

impl tokio::io::AsyncRead for AsyncInput {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return std::task::Poll::Ready(Ok(()));
        }
        let result = match self.0.read_chunk(buf.remaining()) {
            Ok(bytes) => {
                buf.put_slice(&bytes);
                Ok(())
            }
            Err(StreamError::Closed) => Ok(()),
            Err(StreamError::LastOperationFailed(e)) | Err(StreamError::Trap(e)) => {
                Err(io::Error::other(e.to_string()))
            }
        };
        std::task::Poll::Ready(result)
    }
}

/// stdout or stderr of a guest, shared by every handle the guest opens on it.
#[derive(Clone)]
pub(crate) struct OutputPipe {
    writer: Arc<Mutex<GuestOutput>>,
    terminal: bool,
}

impl OutputPipe {
    pub(crate) fn new(writer: GuestOutput, terminal: bool) -> Self {
        OutputPipe {
            writer: Arc::new(Mutex::new(writer)),
            terminal,
        }
    }

    pub(crate) fn flush(&self) -> io::Result<()> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush()
    }

    pub(crate) fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(bytes)
    }
}

/// A child that inherits the guest's stdout or stderr writes it through here.
impl Write for OutputPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        OutputPipe::write_all(self, buf).map(|()| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        OutputPipe::flush(self)
    }
}

impl IsTerminal for OutputPipe {
    fn is_terminal(&self) -> bool {
        self.terminal
    }
}

impl StdoutStream for OutputPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncOutput(self.clone()))
    }
}

#[async_trait::async_trait]
impl Pollable for OutputPipe {
    // Writes block the guest's own thread; readiness is therefore immediate.
    async fn ready(&mut self) {}
}

impl OutputStream for OutputPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_all(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        OutputPipe::flush(self).map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(READ_CHUNK * 16)
    }
}

struct AsyncOutput(OutputPipe);

impl tokio::io::AsyncWrite for AsyncOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::task::Poll::Ready(self.0.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(self.0.flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A `Write` that collects into a shared buffer.
#[derive(Clone, Default)]
pub struct SharedBuffer(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
