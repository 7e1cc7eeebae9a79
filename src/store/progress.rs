//! Progress bars for long transfers and (de)compression: shown only when stderr is a
//! terminal and the work is more than a few MB; otherwise every call is a no-op.

use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{ProgressBar, ProgressStyle};

/// Work below this many bytes shows no bar.
pub(crate) const MIN_BYTES: u64 = 8 << 20;

fn stderr_is_terminal() -> bool {
    static TERMINAL: OnceLock<bool> = OnceLock::new();
    *TERMINAL.get_or_init(|| std::io::stderr().is_terminal())
}

/// A progress bar, or nothing.
pub(crate) struct Bar(Option<ProgressBar>);

impl Bar {
    pub(crate) fn hidden() -> Self {
        Bar(None)
    }

    /// A bar counting `total` bytes, if that is worth showing on this stderr.
    pub(crate) fn bytes(total: u64, message: &str) -> Self {
        if total < MIN_BYTES || !stderr_is_terminal() {
            return Bar(None);
        }
        Self::styled(
            total,
            "{msg:>14} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            message,
        )
    }

    /// A bar counting `total` items (shown for long runs of many objects).
    pub(crate) fn items(total: u64, message: &str) -> Self {
        if total < 1000 || !stderr_is_terminal() {
            return Bar(None);
        }
        Self::styled(total, "{msg:>14} [{bar:30}] {pos}/{len} {eta}", message)
    }

    fn styled(total: u64, template: &str, message: &str) -> Self {
        let style = ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> ");
        Bar(Some(
            ProgressBar::new(total)
                .with_style(style)
                .with_message(message.to_owned()),
        ))
    }

    pub(crate) fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}
