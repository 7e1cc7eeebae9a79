//! zstd compression and verified decompression of blobs.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::progress::Bar;
use super::{StoreError, io_err};

/// Blobs up to this size (compressed) are read whole and decoded in one call.
const WHOLE_READ_LIMIT: u64 = 8 << 20;
/// Files at least this large are compressed with several zstd threads.
pub(crate) const MULTITHREAD_THRESHOLD: u64 = 16 << 20;
const CHUNK: usize = 256 * 1024;

/// Where decoded content goes; `reset` discards what was written (for a retry).
pub(crate) trait Sink: Write {
    fn reset(&mut self) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    fn reset(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }
}

/// A buffered sink into a file that can be truncated back to empty.
pub(crate) struct FileSink<'a> {
    writer: io::BufWriter<&'a mut File>,
}

impl<'a> FileSink<'a> {
    pub(crate) fn new(file: &'a mut File) -> Self {
        FileSink {
            writer: io::BufWriter::with_capacity(CHUNK, file),
        }
    }

    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Write for FileSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Sink for FileSink<'_> {
    fn reset(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        let file = self.writer.get_mut();
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(())
    }
}

pub(crate) fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Compresses `bytes` in one call (a per-thread zstd context is reused).
pub(crate) fn compress_bytes(bytes: &[u8], level: i32) -> io::Result<Vec<u8>> {
    if bytes.len() >= 4 << 20 {
        // A large blob (a big tree manifest): zstd's own worker threads.
        let mut encoder =
            zstd::stream::write::Encoder::new(Vec::with_capacity(bytes.len() / 2), level)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        encoder.multithread(workers)?;
        encoder.write_all(bytes)?;
        return encoder.finish();
    }
    let mut out = Vec::new();
    compress_into(bytes, level, &mut out)?;
    Ok(out)
}

/// Compresses `bytes` into `out` (cleared first; its capacity is reused).
pub(crate) fn compress_into(bytes: &[u8], level: i32, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(bytes.len()));
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        slot.as_mut()
            .expect("set above")
            .1
            .compress_to_buffer(bytes, out)
            .map(|_| ())
    })
}

/// A file compressed into a temporary file, with the digest and size of its content.
pub(crate) struct Compressed {
    pub digest: String,
    pub size: u64,
    pub compressed_size: u64,
    pub temp: tempfile::TempPath,
}

/// Reads `path` once, hashing and compressing it into a temporary file in `tmp_dir`. The
/// digest is that of exactly the bytes compressed, even if the file changes meanwhile.
pub(crate) fn compress_file_to_temp(
    path: &Path,
    size_hint: u64,
    level: i32,
    tmp_dir: &Path,
    bar: &Bar,
) -> Result<Compressed, StoreError> {
    let source = File::open(path).map_err(io_err(path))?;
    compress_open_file_to_temp(source, path, size_hint, level, tmp_dir, bar)
}

/// [`compress_file_to_temp`] for a file already opened (`path` names it in errors).
pub(crate) fn compress_open_file_to_temp(
    mut source: File,
    path: &Path,
    size_hint: u64,
    level: i32,
    tmp_dir: &Path,
    bar: &Bar,
) -> Result<Compressed, StoreError> {
    let tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_err(tmp_dir))?;
    let (file, temp) = tmp.into_parts();
    let mut encoder =
        zstd::stream::write::Encoder::new(io::BufWriter::with_capacity(CHUNK, file), level)
            .map_err(io_err(path))?;
    if size_hint >= MULTITHREAD_THRESHOLD {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        // Without the `zstdmt` feature this fails; single-threaded is fine then.
        let _ = encoder.multithread(workers);
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        hasher.update(&buf[..n]);
        encoder.write_all(&buf[..n]).map_err(io_err(tmp_dir))?;
        size += n as u64;
        bar.inc(n as u64);
    }
    let writer = encoder.finish().map_err(io_err(tmp_dir))?;
    let file = writer
        .into_inner()
        .map_err(|e| io_err(tmp_dir)(e.into_error()))?;
    let compressed_size = file.metadata().map_err(io_err(tmp_dir))?.len();
    Ok(Compressed {
        digest: hex::encode(hasher.finalize()),
        size,
        compressed_size,
        temp,
    })
}

fn corrupt(digest: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        digest: digest.into(),
        reason: reason.into(),
    }
}

/// A writer that hashes what passes through it.
struct HashingWriter<'a> {
    inner: &'a mut dyn Sink,
    hasher: Sha256,
    len: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that remembers whether the underlying reader failed (an I/O error, not a
/// decoding error) and reports progress.
struct TrackingReader<'a, R> {
    inner: R,
    failed: Option<io::Error>,
    bar: &'a Bar,
}

impl<R: Read> Read for TrackingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bar.inc(n as u64);
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.failed = Some(e);
                Err(copy)
            }
        }
    }
}

/// Decodes the compressed blob in file `path` into `out`, verifying that the content hashes
/// to `digest`. A missing file is `Missing`; a bad one `Corrupt`.
pub(crate) fn decode_file_verified(
    path: &Path,
    digest: &str,
    out: &mut dyn Sink,
    show_progress: bool,
) -> Result<u64, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::Missing(digest.into()));
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let len = file.metadata().map_err(io_err(path))?.len();
    if len <= WHOLE_READ_LIMIT {
        let mut bytes = Vec::with_capacity(len as usize);
        (&file).read_to_end(&mut bytes).map_err(io_err(path))?;
        return decode_bytes_verified(&bytes, digest, out).map_err(|e| match e {
            DecodeError::Store(e) => e,
            DecodeError::Sink(e) => io_err(path)(e),
        });
    }
    let bar = if show_progress {
        Bar::bytes(len, "decompressing")
    } else {
        Bar::hidden()
    };
    let mut reader = TrackingReader {
        inner: BufReader::with_capacity(CHUNK, file),
        failed: None,
        bar: &bar,
    };
    let mut writer = HashingWriter {
        inner: out,
        hasher: Sha256::new(),
        len: 0,
    };
    let result = zstd::stream::read::Decoder::new(&mut reader)
        .and_then(|mut decoder| io::copy(&mut decoder, &mut writer));
    bar.finish();
    if let Err(e) = result {
        if let Some(io_error) = reader.failed {
            return Err(io_err(path)(io_error));
        }
        // A decoding error, or the sink failed.
        return Err(if e.kind() == io::ErrorKind::Other {
            corrupt(digest, format!("not a valid zstd stream: {e}"))
        } else {
            io_err(path)(e)
        });
    }
    let actual = hex::encode(writer.hasher.finalize());
    if actual != digest {
        return Err(corrupt(digest, format!("content hashes to {actual}")));
    }
    Ok(writer.len)
}

pub(crate) enum DecodeError {
    Store(StoreError),
    Sink(io::Error),
}

/// Decodes an in-memory compressed blob into `out`, verifying its digest.
pub(crate) fn decode_bytes_verified(
    bytes: &[u8],
    digest: &str,
    out: &mut dyn Sink,
) -> Result<u64, DecodeError> {
    let decoded = decode_bytes(bytes)
        .map_err(|e| DecodeError::Store(corrupt(digest, format!("not a valid zstd frame: {e}"))))?;
    let actual = crate::digest::sha256_hex(&decoded);
    if actual != digest {
        return Err(DecodeError::Store(corrupt(
            digest,
            format!("content hashes to {actual}"),
        )));
    }
    out.write_all(&decoded).map_err(DecodeError::Sink)?;
    Ok(decoded.len() as u64)
}

/// Decompresses a whole zstd stream held in memory.
pub(crate) fn decode_bytes(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let single_frame = zstd::zstd_safe::find_frame_compressed_size(bytes).ok() == Some(bytes.len());
    match zstd::zstd_safe::get_frame_content_size(bytes) {
        Ok(Some(size)) if single_frame && size <= 256 << 20 => DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new()?);
            }
            let decoded = slot
                .as_mut()
                .expect("set above")
                .decompress(bytes, size as usize)?;
            if decoded.len() as u64 != size {
                return Err(io::Error::other("frame is shorter than its header says"));
            }
            Ok(decoded)
        }),
        _ => zstd::stream::decode_all(bytes),
    }
}
