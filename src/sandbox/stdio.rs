//! Guest stdio as real, unbounded streams: adapters from blocking `Read`/`Write` objects
//! (pipes, files, the terminal) to wasmtime-wasi's stream traits. Each guest runs on its
//! own thread, so a blocking read or write only ever holds up the guest it belongs to.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// What a guest reads as stdin.
pub type GuestInput = Box<dyn Read + Send>;
/// Where a guest's stdout or stderr goes.
pub type GuestOutput = Box<dyn Write + Send>;

/// Largest chunk handed to the guest by one read.
const READ_CHUNK: usize = 64 * 1024;

/// stdin for a guest, shared by every handle the guest opens on it.
#[derive(Clone)]
pub(crate) struct InputPipe {
    reader: Arc<Mutex<GuestInput>>,
    terminal: bool,
}

impl InputPipe {
    pub(crate) fn new(reader: GuestInput, terminal: bool) -> Self {
        InputPipe {
            reader: Arc::new(Mutex::new(reader)),
            terminal,
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
        let mut buf = vec![0u8; size.clamp(1, READ_CHUNK)];
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Err(StreamError::Closed),
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Bytes::from(buf));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StreamError::LastOperationFailed(e.into())),
            }
        }
    }
}

struct AsyncInput(InputPipe);

impl tokio::io::AsyncRead for AsyncInput {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let mut reader = self.0.reader.lock().unwrap_or_else(|e| e.into_inner());
        let n = reader.read(buf.initialize_unfilled());
        std::task::Poll::Ready(n.map(|n| buf.advance(n)))
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
