//! The build log: CodeBuild's `[Container] YYYY/MM/DD HH:MM:SS.ffffff message` lines and the
//! commands' own output, streamed live to the console and written to `build.log`, with every
//! secret value replaced by `***` before it reaches either.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// Where the log goes. Cheap to clone; every clone writes to the same sinks.
#[derive(Clone)]
pub struct BuildLog {
    inner: Arc<Mutex<Sinks>>,
}

struct Sinks {
    console: Box<dyn Write + Send>,
    file: Option<io::BufWriter<std::fs::File>>,
    masks: Vec<String>,
}

impl Sinks {
    fn write_masked(&mut self, bytes: &[u8]) {
        let masked;
        let bytes = if self.masks.is_empty() {
            bytes
        } else {
            masked = mask(bytes, &self.masks);
            &masked
        };
        // A console that went away (closed pipe) must not stop the build or its log file.
        let _ = self.console.write_all(bytes);
        if let Some(file) = &mut self.file {
            let _ = file.write_all(bytes);
        }
    }

    fn flush(&mut self) {
        let _ = self.console.flush();
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }
}

/// Replaces every occurrence of each secret with `***`.
fn mask(bytes: &[u8], secrets: &[String]) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    text.into_bytes()
}

/// The time as CodeBuild's log prints it: UTC, microseconds.
pub fn log_timestamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y/%m/%d %H:%M:%S.%6f").to_string()
}

impl BuildLog {
    pub fn new(console: Box<dyn Write + Send>) -> Self {
        BuildLog {
            inner: Arc::new(Mutex::new(Sinks {
                console,
                file: None,
                masks: Vec::new(),
            })),
        }
    }

    fn sinks(&self) -> std::sync::MutexGuard<'_, Sinks> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, the log is also written to `file`.
    pub fn tee_to(&self, file: std::fs::File) {
        self.sinks().file = Some(io::BufWriter::new(file));
    }

    /// Masks `secret` in everything logged from now on (empty values are ignored).
    pub fn add_mask(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut sinks = self.sinks();
        if !sinks.masks.iter().any(|m| m == secret) {
            sinks.masks.push(secret.to_owned());
            // Longer secrets first, so one that contains another is masked whole.
            sinks.masks.sort_by_key(|m| std::cmp::Reverse(m.len()));
        }
    }

    /// One `[Container]` line.
    pub fn line(&self, message: impl Display) {
        let text = format!(
            "[Container] {} {message}\n",
            log_timestamp(jiff::Timestamp::now())
        );
        let mut sinks = self.sinks();
        sinks.write_masked(text.as_bytes());
        sinks.flush();
    }

    /// A stream for a command's output: whole lines are masked and written as they come.
    pub fn output(&self) -> LogOutput {
        LogOutput {
            log: self.clone(),
            pending: Vec::new(),
        }
    }

    pub fn flush(&self) {
        self.sinks().flush();
    }
}

/// A command's stdout or stderr in the log. Output is passed on line by line (a secret is
/// only masked when it lies within one line), and a partial line at least every 8 KiB.
pub struct LogOutput {
    log: BuildLog,
    pending: Vec<u8>,
}

const PARTIAL_LINE_LIMIT: usize = 8 << 10;

impl LogOutput {
    fn pass_on(&mut self, upto: usize) {
        let rest = self.pending.split_off(upto);
        let ready = std::mem::replace(&mut self.pending, rest);
        self.log.sinks().write_masked(&ready);
    }
}

impl Write for LogOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last_newline) = self.pending.iter().rposition(|&b| b == b'\n') {
            self.pass_on(last_newline + 1);
        }
        if self.pending.len() > PARTIAL_LINE_LIMIT {
            self.pass_on(self.pending.len());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.pass_on(self.pending.len());
        }
        self.log.sinks().flush();
        Ok(())
    }
}

impl Drop for LogOutput {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn secrets_split_across_writes_are_masked() {
        let capture = Capture::default();
        let log = BuildLog::new(Box::new(capture.clone()));
        log.add_mask("hunter2");
        let mut out = log.output();
        out.write_all(b"password is hun").unwrap();
        out.write_all(b"ter2\nnext").unwrap();
        drop(out);
        log.line("Running command echo hunter2");
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.starts_with("password is ***\nnext[Container] "),
            "{text}"
        );
        assert!(text.ends_with(" Running command echo ***\n"), "{text}");
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let at: jiff::Timestamp = "2026-11-24T10:00:00.1234567Z".parse().unwrap();
        assert_eq!(log_timestamp(at), "2026/11/24 10:00:00.123456");
    }
}
