//! Where WASI's host calls run. wasmtime-wasi writes preview 1 over async code and, in sync
//! mode, runs every call on a Tokio runtime: the one the calling thread has entered, else a
//! multi-thread runtime of its own, made at a process's first call together with its
//! worker thread. That thread, made and reaped by every `wasmbuild exec`, cost 0.4 ms of a
//! `python -c pass` (measured paired).
//!
//! A guest's calls never wait on Tokio's drivers: its stdio are wasmbuild's own blocking
//! streams, always ready (`stdio`); files are read and written on the calling thread
//! (`allow_blocking_current_thread`); sleeps are served by `interrupt`. So a guest's thread
//! enters a current-thread runtime with no driver and no thread ([`enter`]), on which each
//! call completes where it is made. The one call that may wait on Tokio's timer, a poll on
//! descriptors with a timeout, which `interrupt` hands on to WASI's own function, runs in
//! a multi-thread runtime made at its first need ([`enter_driven`]). Anything else that
//! waited on a driver under [`enter`] would fail loudly (Tokio panics: no timer, no
//! reactor), not hang.

use std::sync::LazyLock;

use tokio::runtime::{Builder, EnterGuard, Runtime};

/// Runs calls where they are made: no driver, no worker thread.
static INLINE: LazyLock<Runtime> = LazyLock::new(|| {
    Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime without drivers needs no resources")
});

/// Runs calls that wait on the timer or the reactor: one worker thread drives them.
static DRIVEN: LazyLock<Option<Runtime>> = LazyLock::new(|| {
    Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("wasmbuild-wasi")
        .enable_all()
        .build()
        .ok()
});

/// Makes the calling thread's WASI calls run on it, until the guard is dropped.
pub(super) fn enter() -> EnterGuard<'static> {
    INLINE.enter()
}

/// Makes the calling thread's WASI calls run on a runtime with drivers, until the guard is
/// dropped; `None` when one could not be made (WASI's own runtime is then used, or none).
pub(super) fn enter_driven() -> Option<EnterGuard<'static>> {
    DRIVEN.as_ref().map(Runtime::enter)
}
