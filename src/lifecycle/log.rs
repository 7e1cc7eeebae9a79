//! The build log: CodeBuild's `[Container] YYYY/MM/DD HH:MM:SS.ffffff message` lines and the
//! commands' own output, streamed live to the console and written to `build.log`, with every
//! secret value replaced by `***` before it reaches either, and bounded in size.
//!
//! **Masking.** Each secret is masked whole and, when it spans lines, line by line too (each
//! line of at least [`MIN_SECRET_LINE`] bytes, as CodeBuild masks multi-line secrets), so a
//! secret printed with other text between its lines is still hidden. Command output is
//! passed on in whole lines; a line longer than 8 KiB is passed on in pieces, each cut where
//! no secret can straddle it: at most (longest secret − 1) bytes that could begin a secret
//! are held back until the next write or the command's end. Complete lines are never held.
//!
//! **Size.** The log takes at most [`DEFAULT_MAX_LOG_BYTES`] (or the limit set with
//! [`BuildLog::set_limit`]: `--log-limit` / `WASMBUILD_MAX_LOG_BYTES`). Past it, command
//! output is dropped, console and file alike, with one `[Container]` line saying so; the
//! commands go on and their status is their own. `[Container]` lines (phases, commands,
//! the build's end) are still written after the limit: there are few of them, bounded by
//! the buildspec, and without them the log would not say how the build ended.

use std::borrow::Cow;
use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aho_corasick::{AhoCorasick, MatchKind};

/// The default size limit of a build's log (256 MiB).
pub const DEFAULT_MAX_LOG_BYTES: u64 = 256 << 20;

/// Lines of a multi-line secret shorter than this (after trimming blanks) are not masked on
/// their own: `{`, `}` or an empty line would otherwise turn into `***` all over the log.
pub const MIN_SECRET_LINE: usize = 4;

/// What is masked as `***`: the build's secret values, and the variables they came from.
#[derive(Clone, Default)]
pub struct SecretMask {
    /// (variable, value) of each secret.
    secrets: Vec<(String, String)>,
    /// Every pattern with the index of its secret, longest first.
    patterns: Vec<(Vec<u8>, usize)>,
    /// The prefix function (KMP) of each pattern, for the hold-back at a cut.
    borders: Vec<Vec<usize>>,
    automaton: Option<AhoCorasick>,
}

impl std::fmt::Debug for SecretMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        let names: Vec<&str> = self.secrets.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SecretMask")
            .field("secrets", &names)
            .finish()
    }
}

const MASK: &[u8] = b"***";

impl SecretMask {
    /// Masks `value` (from variable `name`) from now on; empty values are ignored.
    pub fn add(&mut self, name: &str, value: &str) {
        if value.is_empty() || self.secrets.iter().any(|(_, v)| v == value) {
            return;
        }
        let index = self.secrets.len();
        self.secrets.push((name.to_owned(), value.to_owned()));
        let mut new: Vec<&str> = vec![value];
        let trimmed = value.trim();
        if !trimmed.is_empty() {
            new.push(trimmed);
        }
        if trimmed.contains('\n') {
            new.extend(
                trimmed
                    .lines()
                    .map(str::trim)
                    .filter(|line| line.len() >= MIN_SECRET_LINE),
            );
        }
        for pattern in new {
            if !self.patterns.iter().any(|(p, _)| p == pattern.as_bytes()) {
                self.patterns.push((pattern.as_bytes().to_vec(), index));
            }
        }
        // Longer patterns first, so one that contains another is masked whole.
        self.patterns
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        self.borders = self.patterns.iter().map(|(p, _)| borders(p)).collect();
        self.automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(self.patterns.iter().map(|(p, _)| p))
            .ok();
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The length of the longest pattern.
    fn longest(&self) -> usize {
        self.patterns.first().map_or(0, |(p, _)| p.len())
    }

    /// `bytes` with every secret (and every line of a multi-line one) replaced by `***`.
    pub fn mask_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(automaton) = &self.automaton else {
            return Cow::Borrowed(bytes);
        };
        let mut out: Option<Vec<u8>> = None;
        let mut last = 0;
        for found in automaton.find_iter(bytes) {
            let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            out.extend_from_slice(&bytes[last..found.start()]);
            out.extend_from_slice(MASK);
            last = found.end();
        }
        match out {
            None => Cow::Borrowed(bytes),
            Some(mut out) => {
                out.extend_from_slice(&bytes[last..]);
                Cow::Owned(out)
            }
        }
    }

    /// `text` with every secret replaced by `***`.
    pub fn mask_str(&self, text: &str) -> String {
        match self.mask_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => text.to_owned(),
            Cow::Owned(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Masks every string value of a JSON value in place (object keys are left alone).
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.mask_bytes(s.as_bytes()) {
                    *s = String::from_utf8_lossy(&masked).into_owned();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_json(v)),
            // Keys are the record's field names, never data: masking them would only break
            // the schema (a one-letter secret would rename fields).
            Value::Object(map) => map.values_mut().for_each(|v| self.mask_json(v)),
            _ => {}
        }
    }

    /// The variable whose secret value (or a line of it) `text` holds, if any.
    pub fn find(&self, text: &str) -> Option<&str> {
        let automaton = self.automaton.as_ref()?;
        let found = automaton.find(text.as_bytes())?;
        let (_, secret) = self.patterns[found.pattern().as_usize()];
        Some(self.secrets[secret].0.as_str())
    }

    /// Where a partial line `bytes` may be cut: everything before the cut can be masked and
    /// passed on, since no secret can straddle it; at most (longest pattern − 1) bytes,
    /// those that could begin a secret still to come, are held back.
    fn safe_cut(&self, bytes: &[u8]) -> usize {
        let longest = self.longest();
        if longest < 2 {
            return bytes.len();
        }
        let window = bytes.len().saturating_sub(longest - 1);
        let tail = &bytes[window..];
        // The longest suffix of the tail that is a proper prefix of a pattern.
        let mut cut = bytes.len();
        for ((pattern, _), border) in self.patterns.iter().zip(&self.borders) {
            let held = suffix_prefix(tail, pattern, border);
            cut = cut.min(bytes.len() - held);
        }
        // A complete secret that the cut would split goes out whole (masked).
        if let Some(automaton) = &self.automaton {
            for found in automaton.find_iter(bytes) {
                if found.start() < cut && found.end() > cut {
                    cut = found.end();
                    break;
                }
                if found.start() >= cut {
                    break;
                }
            }
        }
        cut
    }
}

/// The KMP prefix function of `pattern`.
fn borders(pattern: &[u8]) -> Vec<usize> {
    let mut border = vec![0; pattern.len()];
    let mut k = 0;
    for i in 1..pattern.len() {
        while k > 0 && pattern[i] != pattern[k] {
            k = border[k - 1];
        }
        if pattern[i] == pattern[k] {
            k += 1;
        }
        border[i] = k;
    }
    border
}

/// The length of the longest suffix of `text` that is a proper prefix of `pattern`.
fn suffix_prefix(text: &[u8], pattern: &[u8], border: &[usize]) -> usize {
    let mut q = 0;
    for &b in text {
        while q > 0 && (q == pattern.len() || pattern[q] != b) {
            q = border[q - 1];
        }
        if q < pattern.len() && pattern[q] == b {
            q += 1;
        }
    }
    if q == pattern.len() {
        // A whole match ends the text: it is complete, not waiting for more.
        q = if q > 0 { border[q - 1] } else { 0 };
    }
    q
}

/// Where the log goes. Cheap to clone; every clone writes to the same sinks.
#[derive(Clone)]
pub struct BuildLog {
    inner: Arc<Mutex<Sinks>>,
    /// Set once the size limit is reached: command output is dropped from then on.
    capped: Arc<AtomicBool>,
}

struct Sinks {
    console: Box<dyn Write + Send>,
    file: Option<io::BufWriter<std::fs::File>>,
    /// What was written since the live stream last took it (see [`BuildLog::stream_to`]).
    live: Option<Vec<u8>>,
    mask: Arc<SecretMask>,
    limit: u64,
    written: u64,
    /// Whether the last byte written ended a line.
    at_line_start: bool,
}

impl Sinks {
    fn write_raw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // A console that went away (closed pipe) must not stop the build or its log file.
        let _ = self.console.write_all(bytes);
        if let Some(file) = &mut self.file {
            let _ = file.write_all(bytes);
        }
        if let Some(live) = &mut self.live {
            live.extend_from_slice(bytes);
        }
        self.written = self.written.saturating_add(bytes.len() as u64);
        self.at_line_start = bytes.ends_with(b"\n");
    }

    /// A `[Container]` line: always written (masked), counted against the limit.
    fn write_line(&mut self, message: &str) {
        let text = format!(
            "[Container] {} {message}\n",
            log_timestamp(jiff::Timestamp::now())
        );
        let mask = self.mask.clone();
        let masked = mask.mask_bytes(text.as_bytes());
        if !self.at_line_start {
            self.write_raw(b"\n");
        }
        self.write_raw(&masked);
    }

    /// Command output (already cut where no secret straddles): masked, then written up to
    /// the limit. Returns `false` once the limit is reached.
    fn write_output(&mut self, bytes: &[u8], capped: &AtomicBool) -> bool {
        if capped.load(Ordering::Relaxed) {
            return false;
        }
        let mask = self.mask.clone();
        let masked = mask.mask_bytes(bytes);
        let room = self.limit.saturating_sub(self.written);
        if (masked.len() as u64) <= room {
            self.write_raw(&masked);
            return true;
        }
        let fits = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .min(masked.len());
        self.write_raw(&masked[..fits]);
        capped.store(true, Ordering::Relaxed);
        let limit = self.limit;
        self.write_line(&format!(
            "Build log limit of {limit} bytes reached; further output dropped \
             (--log-limit or WASMBUILD_MAX_LOG_BYTES sets the limit)"
        ));
        false
    }

    fn flush(&mut self) {
        let _ = self.console.flush();
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }
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
                live: None,
                mask: Arc::new(SecretMask::default()),
                limit: DEFAULT_MAX_LOG_BYTES,
                written: 0,
                at_line_start: true,
            })),
            capped: Arc::new(AtomicBool::new(false)),
        }
    }

    fn sinks(&self) -> std::sync::MutexGuard<'_, Sinks> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, the log is also written to `file`.
    pub fn tee_to(&self, file: std::fs::File) {
        self.sinks().file = Some(io::BufWriter::new(file));
    }

    /// From now on, the log is also streamed into `store` as the stream `name`: what was
    /// written is put there as one chunk every [`LIVE_INTERVAL`], so `wasmbuild serve`
    /// (on this host or another) shows a running build's log. [`LiveLog::finish`] puts
    /// the rest.
    pub fn stream_to(&self, store: crate::store::Store, name: String) -> LiveLog {
        self.sinks().live = Some(Vec::new());
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let log = self.clone();
        let thread = std::thread::spawn(move || {
            let mut seq = 0;
            loop {
                let last = !matches!(
                    stopped.recv_timeout(LIVE_INTERVAL),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                );
                let chunk = log.sinks().live.as_mut().map(std::mem::take);
                if let Some(chunk) = chunk.filter(|c| !c.is_empty()) {
                    match store.put_stream_chunk(&name, seq, &chunk) {
                        Ok(()) => seq += 1,
                        Err(e) => {
                            // The build goes on; its log is still kept whole at the end.
                            tracing::warn!("live log {name}: {e}; no longer streamed");
                            log.sinks().live = None;
                            return;
                        }
                    }
                }
                if last {
                    log.sinks().live = None;
                    return;
                }
            }
        });
        LiveLog {
            stop,
            thread: Some(thread),
        }
    }

    /// Sets the size limit of the log, in bytes (see the module's documentation).
    pub fn set_limit(&self, bytes: u64) {
        self.sinks().limit = bytes;
    }

    /// Whether the size limit was reached (command output is being dropped).
    pub fn limit_reached(&self) -> bool {
        self.capped.load(Ordering::Relaxed)
    }

    /// Masks the value of secret variable `name` in everything logged from now on (empty
    /// values are ignored).
    pub fn add_secret(&self, name: &str, value: &str) {
        let mut sinks = self.sinks();
        let mut mask = (*sinks.mask).clone();
        mask.add(name, value);
        sinks.mask = Arc::new(mask);
    }

    /// Masks `secret` in everything logged from now on (empty values are ignored).
    pub fn add_mask(&self, secret: &str) {
        self.add_secret("a secret", secret);
    }

    /// The secrets masked so far.
    pub fn secret_mask(&self) -> Arc<SecretMask> {
        self.sinks().mask.clone()
    }

    /// One `[Container]` line.
    pub fn line(&self, message: impl Display) {
        let mut sinks = self.sinks();
        sinks.write_line(&message.to_string());
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

/// How often a live log puts what was written into the store.
pub const LIVE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(40);

/// The log's live stream into the store ([`BuildLog::stream_to`]).
pub struct LiveLog {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveLog {
    /// Puts what is left and stops streaming.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LiveLog {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A command's stdout or stderr in the log. Output is passed on in whole lines, and a long
/// partial line in pieces of about 8 KiB, each cut where no secret can straddle it.
pub struct LogOutput {
    log: BuildLog,
    pending: Vec<u8>,
}

const PARTIAL_LINE_LIMIT: usize = 8 << 10;

impl LogOutput {
    fn pass_on(&mut self, upto: usize) {
        let rest = self.pending.split_off(upto);
        let ready = std::mem::replace(&mut self.pending, rest);
        let mut sinks = self.log.sinks();
        if !sinks.write_output(&ready, &self.log.capped) {
            self.pending.clear();
        }
    }
}

impl Write for LogOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Past the limit the output is dropped, cheaply: the command goes on.
        if self.log.capped.load(Ordering::Relaxed) {
            self.pending.clear();
            return Ok(buf.len());
        }
        self.pending.extend_from_slice(buf);
        if let Some(last_newline) = self.pending.iter().rposition(|&b| b == b'\n') {
            self.pass_on(last_newline + 1);
        }
        if self.pending.len() > PARTIAL_LINE_LIMIT {
            let cut = self.log.sinks().mask.safe_cut(&self.pending);
            self.pass_on(cut);
        }
        Ok(buf.len())
    }

    /// Passes on what can be shown now. A guest decides when it flushes, so a flush keeps
    /// back the bytes that could begin a secret, as a long partial line does: flushing
    /// between the halves of a secret must not reveal it.
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() && !self.log.capped.load(Ordering::Relaxed) {
            let cut = self.log.sinks().mask.safe_cut(&self.pending);
            self.pass_on(cut);
        }
        self.log.sinks().flush();
        Ok(())
    }
}

impl Drop for LogOutput {
    /// The stream has ended: nothing more can complete a secret, so all of it goes out.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.pass_on(self.pending.len());
        }
        self.log.sinks().flush();
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

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
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
        let text = capture.text();
        assert!(
            text.starts_with("password is ***\nnext\n[Container] "),
            "{text}"
        );
        assert!(text.ends_with(" Running command echo ***\n"), "{text}");
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn a_secret_across_the_partial_line_cut_is_masked() {
        let secret = "s3cr3t-VALUE-0123456789";
        for split in [1, 5, secret.len() - 1] {
            for lead in [
                PARTIAL_LINE_LIMIT - 2,
                PARTIAL_LINE_LIMIT,
                PARTIAL_LINE_LIMIT + 7,
            ] {
                let capture = Capture::default();
                let log = BuildLog::new(Box::new(capture.clone()));
                log.add_secret("TOKEN", secret);
                let mut out = log.output();
                out.write_all(&vec![b'x'; lead]).unwrap();
                out.write_all(&secret.as_bytes()[..split]).unwrap();
                out.write_all(&secret.as_bytes()[split..]).unwrap();
                out.write_all(b"tail").unwrap();
                drop(out);
                let text = capture.text();
                assert_eq!(
                    text,
                    format!("{}***tail", "x".repeat(lead)),
                    "split {split} lead {lead}"
                );
            }
        }
    }

    #[test]
    fn a_flush_between_the_halves_of_a_secret_does_not_reveal_it() {
        let console = Capture::default();
        let log = BuildLog::new(Box::new(console.clone()));
        log.add_secret("TOKEN", "hunter2secret");
        let mut out = log.output();
        out.write_all(&[b'a'; 100]).unwrap();
        out.flush().unwrap();
        out.write_all(b"hunte").unwrap();
        out.flush().unwrap();
        assert!(!console.text().contains("hunte"), "{}", console.text());
        out.write_all(b"r2secret").unwrap();
        out.flush().unwrap();
        out.write_all(b" tail").unwrap();
        drop(out);
        let text = console.text();
        assert!(text.contains("***"), "{text}");
        assert!(!text.contains("hunter"), "{text}");
        assert!(text.ends_with(" tail"), "{text}");
    }

    #[test]
    fn held_back_bytes_are_bounded_and_lines_never_wait() {
        let capture = Capture::default();
        let log = BuildLog::new(Box::new(capture.clone()));
        log.add_secret("TOKEN", "abcdefgh");
        let mut out = log.output();
        out.write_all(b"first line\n").unwrap();
        assert_eq!(
            capture.text(),
            "first line\n",
            "a complete line goes at once"
        );
        let mut long = vec![b'z'; PARTIAL_LINE_LIMIT + 10];
        long.extend_from_slice(b"abcdefg");
        out.write_all(&long).unwrap();
        let shown = capture.text().len() - "first line\n".len();
        assert_eq!(
            shown,
            PARTIAL_LINE_LIMIT + 10,
            "only the possible secret start is held"
        );
        out.write_all(b"h!").unwrap();
        drop(out);
        assert!(capture.text().ends_with("z***!"), "{}", capture.text());
    }

    #[test]
    fn multi_line_secrets_are_masked_line_by_line() {
        let capture = Capture::default();
        let log = BuildLog::new(Box::new(capture.clone()));
        log.add_secret(
            "KEY",
            "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\n}\n-----END KEY-----\n",
        );
        let mut out = log.output();
        out.write_all(b"line: -----BEGIN KEY-----\n").unwrap();
        out.write_all(b"other MIIEpAIBAAKCAQEA text\n}\n").unwrap();
        out.write_all(b"-----END KEY-----\n").unwrap();
        drop(out);
        let text = capture.text();
        assert_eq!(text, "line: ***\nother *** text\n}\n***\n");
    }

    #[test]
    fn the_size_limit_drops_output_with_one_line() {
        let capture = Capture::default();
        let log = BuildLog::new(Box::new(capture.clone()));
        log.set_limit(100);
        let mut out = log.output();
        for _ in 0..1000 {
            out.write_all(b"0123456789\n").unwrap();
        }
        drop(out);
        log.line("Phase complete: BUILD State: SUCCEEDED");
        let text = capture.text();
        assert!(text.starts_with(&"0123456789\n".repeat(9)), "{text}");
        assert_eq!(text.matches("log limit of 100 bytes reached").count(), 1);
        assert!(
            text.ends_with("Phase complete: BUILD State: SUCCEEDED\n"),
            "{text}"
        );
        assert!(text.len() < 400, "{text}");
        assert!(log.limit_reached());
    }

    #[test]
    fn json_and_names_are_checked() {
        let mut mask = SecretMask::default();
        mask.add("DB_PASSWORD", "pw-123456");
        let mut value = serde_json::json!({"a": ["x pw-123456 y", {"k": "pw-123456"}], "n": 3});
        mask.mask_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": ["x *** y", {"k": "***"}], "n": 3})
        );
        assert_eq!(mask.find("dist-pw-123456"), Some("DB_PASSWORD"));
        assert_eq!(mask.find("dist"), None);
        assert!(!format!("{mask:?}").contains("pw-123456"));
    }

    #[test]
    fn suffix_prefix_finds_the_longest_pending_start() {
        let pattern = b"abcabd";
        let border = borders(pattern);
        assert_eq!(suffix_prefix(b"xxabcab", pattern, &border), 5);
        assert_eq!(suffix_prefix(b"xxabcabd", pattern, &border), 0);
        assert_eq!(suffix_prefix(b"xxa", pattern, &border), 1);
        assert_eq!(suffix_prefix(b"xyz", pattern, &border), 0);
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let at: jiff::Timestamp = "2026-11-24T10:00:00.1234567Z".parse().unwrap();
        assert_eq!(log_timestamp(at), "2026/11/24 10:00:00.123456");
    }
}
