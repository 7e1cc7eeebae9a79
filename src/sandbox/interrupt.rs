//! Deadlines and cancellation inside host calls. Epoch interruption only stops a guest
//! while it runs WebAssembly; a guest blocked in a host call (a `sleep`, a read of stdin)
//! would outlive its deadline. So `poll_oneoff`, through which every WASI sleep goes, is
//! replaced by one that sleeps in short slices and checks the guest's deadline and cancel
//! flag between them. Input that nothing of the build can end (the terminal) is read
//! through `stdio::InterruptibleReader`, which gives up the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::{Caller, Engine, Linker};
use wasmtime_wasi::HostMonotonicClock;

use super::{GuestState, Interrupted, TrapKind};

/// The engine whose guests [`wake_guests`] wakes: a sandbox of one program's, whose epoch
/// does not otherwise move (see `SandboxConfig::one_program`).
static WOKEN_BY_SIGNAL: OnceLock<Engine> = OnceLock::new();

/// Makes `wake_guests` wake the guests of `engine` (the first engine registered, for the
/// life of the process).
pub(super) fn wake_on_signal(engine: &Engine) {
    let _ = WOKEN_BY_SIGNAL.set(engine.clone());
}

/// Makes the guests of the process's sandbox of one program look at their stop signals at
/// their next epoch check, as a tick would: what raises a cancel flag calls it after.
/// Async-signal-safe (an atomic load and an atomic add): a signal handler may call it.
pub fn wake_guests() {
    if let Some(engine) = WOKEN_BY_SIGNAL.get() {
        engine.increment_epoch();
    }
}

/// Longest a blocked host call waits before it looks at the deadline and the cancel flag.
pub(super) const CHECK_SLICE: Duration = Duration::from_millis(10);

/// What stops a guest early: its deadline and its cancel flag.
#[derive(Clone, Default)]
pub(crate) struct StopSignal {
    pub deadline: Option<Instant>,
    pub cancel: Option<Arc<AtomicBool>>,
    /// A second flag: the one a parent raises to stop a child it started.
    pub kill: Option<Arc<AtomicBool>>,
}

impl StopSignal {
    /// Why the guest must stop now, if it must.
    pub(crate) fn check(&self) -> Option<TrapKind> {
        if [&self.cancel, &self.kill]
            .into_iter()
            .flatten()
            .any(|c| c.load(Ordering::Relaxed))
        {
            return Some(TrapKind::Cancelled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(TrapKind::Deadline);
        }
        None
    }

    /// Sleeps `duration`, waking at the deadline or on cancel.
    fn sleep(&self, duration: Duration) -> Result<(), TrapKind> {
        let end = Instant::now() + duration;
        loop {
            if let Some(kind) = self.check() {
                return Err(kind);
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            let mut slice = (end - now).min(CHECK_SLICE);
            if let Some(deadline) = self.deadline {
                slice = slice.min(deadline.saturating_duration_since(now));
            }
            std::thread::sleep(slice);
        }
    }
}

/// The clocks a guest reads, so that an absolute timeout can be turned into a duration.
#[derive(Clone)]
pub(super) enum GuestClocks {
    /// The host's clocks; the monotonic one counts from the guest's start.
    Host { start: Instant },
    /// `--deterministic`: virtual time (see `determinism`).
    Virtual(super::determinism::VirtualClocks),
}

impl GuestClocks {
    fn monotonic_now(&self) -> u64 {
        match self {
            GuestClocks::Host { start } => nanos(start.elapsed()),
            GuestClocks::Virtual(clocks) => clocks.monotonic_now(),
        }
    }

    fn wall_now(&self) -> u64 {
        match self {
            GuestClocks::Host { .. } => nanos(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default(),
            ),
            GuestClocks::Virtual(clocks) => clocks.wall_now(),
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The guest's monotonic clock when it runs on the host's time: nanoseconds since `start`
/// (what wasmtime-wasi's own clock does, with the start known to `GuestClocks`).
pub(super) struct HostMonotonic {
    pub start: Instant,
}

impl HostMonotonicClock for HostMonotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        nanos(self.start.elapsed())
    }
}

/// WASI preview1's `poll_oneoff` as a small WebAssembly module over the guest's memory, for
/// the polls the replacement hands on (those waiting on a file descriptor: they never
/// block, stdio and files being always ready).
pub(super) const POLL_INTERPOSER: &str = r#"(module
  (import "env" "memory" (memory 0))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "poll_oneoff") (param i32 i32 i32 i32) (result i32)
    (call $poll (local.get 0) (local.get 1) (local.get 2) (local.get 3))))"#;

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const SUBSCRIPTION_CLOCK_ABSTIME: u16 = 1;

/// Replaces `poll_oneoff` in `linker` (a copy of the WASI linker). A poll on clocks only
/// (every sleep) is served here, in slices that stop at the deadline or on cancel; any
/// other poll goes to WASI's own function, through `POLL_INTERPOSER` instantiated on first
/// need from `module` and `raw` (the unshadowed linker).
pub(super) fn shadow_poll(
    linker: &mut Linker<GuestState>,
    raw: Linker<GuestState>,
    module: super::LazyHelper,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        move |mut caller: Caller<'_, GuestState>,
              subs: i32,
              events: i32,
              nsubs: i32,
              nevents: i32|
              -> wasmtime::Result<i32> {
            match clock_poll(&mut caller, subs, events, nsubs, nevents)? {
                Some(errno) => Ok(errno),
                None => forward_poll(&mut caller, &raw, &module, [subs, events, nsubs, nevents]),
            }
        },
    )?;
    Ok(())
}

/// Serves a poll whose subscriptions are all on the realtime or monotonic clock; `None`
/// when it must go to WASI's own function.
fn clock_poll(
    caller: &mut Caller<'_, GuestState>,
    subs: i32,
    events: i32,
    nsubs: i32,
    nevents: i32,
) -> wasmtime::Result<Option<i32>> {
    let Some(memory) = caller
        .get_export("memory")
        .and_then(|export| export.into_memory())
    else {
        return Ok(None);
    };
    let n = nsubs as u32 as usize;
    if n == 0 {
        return Ok(Some(ERRNO_INVAL));
    }
    let (subs, events, nevents) = (
        subs as u32 as usize,
        events as u32 as usize,
        nevents as u32 as usize,
    );
    let data = memory.data(&*caller);
    let Some(sub_bytes) = n
        .checked_mul(SUBSCRIPTION_SIZE)
        .and_then(|len| data.get(subs..subs.checked_add(len)?))
    else {
        return Ok(Some(ERRNO_FAULT));
    };
    // (userdata, remaining nanoseconds) of each clock subscription.
    let mut clocks: Vec<(u64, u64)> = Vec::with_capacity(n);
    let state = caller.data();
    for sub in sub_bytes.chunks_exact(SUBSCRIPTION_SIZE) {
        let field = |at: usize, len: usize| &sub[at..at + len];
        let tag = sub[8];
        if tag != 0 {
            return Ok(None);
        }
        let userdata = u64::from_le_bytes(field(0, 8).try_into().expect("8 bytes"));
        let id = u32::from_le_bytes(field(16, 4).try_into().expect("4 bytes"));
        let timeout = u64::from_le_bytes(field(24, 8).try_into().expect("8 bytes"));
        let flags = u16::from_le_bytes(field(40, 2).try_into().expect("2 bytes"));
        // Other clocks (CPU time) go to WASI's own function, which refuses them.
        let remaining = match (id, flags & SUBSCRIPTION_CLOCK_ABSTIME != 0) {
            (CLOCK_MONOTONIC | CLOCK_REALTIME, false) => timeout,
            (CLOCK_MONOTONIC, true) => timeout.saturating_sub(state.clocks.monotonic_now()),
            (CLOCK_REALTIME, true) => timeout.saturating_sub(state.clocks.wall_now()),
            _ => return Ok(None),
        };
        clocks.push((userdata, remaining));
    }
    let wait = clocks.iter().map(|&(_, r)| r).min().expect("n > 0");
    let due: Vec<u64> = clocks
        .iter()
        .filter(|&&(_, r)| r <= wait)
        .map(|&(u, _)| u)
        .collect();
    if events
        .checked_add(due.len() * EVENT_SIZE)
        .is_none_or(|end| end > data.len())
        || nevents.checked_add(4).is_none_or(|end| end > data.len())
    {
        return Ok(Some(ERRNO_FAULT));
    }
    if let Err(kind) = state.stop.sleep(Duration::from_nanos(wait)) {
        return Err(Interrupted(kind).into());
    }
    let data = memory.data_mut(&mut *caller);
    for (i, userdata) in due.iter().enumerate() {
        let event = &mut data[events + i * EVENT_SIZE..events + (i + 1) * EVENT_SIZE];
        event.fill(0);
        event[..8].copy_from_slice(&userdata.to_le_bytes());
        // error 0 (success) at 8, type 0 (clock) at 10, fd_readwrite zeroed.
    }
    let count = u32::try_from(due.len()).unwrap_or(u32::MAX);
    data[nevents..nevents + 4].copy_from_slice(&count.to_le_bytes());
    Ok(Some(ERRNO_SUCCESS))
}

/// Calls WASI's own `poll_oneoff` through the interposer (made once per guest).
fn forward_poll(
    caller: &mut Caller<'_, GuestState>,
    raw: &Linker<GuestState>,
    module: &super::LazyHelper,
    args: [i32; 4],
) -> wasmtime::Result<i32> {
    let poll = match caller.data().poll_original.clone() {
        Some(poll) => poll,
        None => {
            let memory = caller
                .get_export("memory")
                .ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))?;
            let original = raw.get(&mut *caller, "wasi_snapshot_preview1", "poll_oneoff")?;
            let module = module.get().map_err(wasmtime::Error::msg)?;
            let instance = wasmtime::Instance::new(&mut *caller, &module, &[memory, original])?;
            let poll = instance
                .get_typed_func::<(i32, i32, i32, i32), i32>(&mut *caller, "poll_oneoff")?;
            caller.data_mut().poll_original = Some(poll.clone());
            poll
        }
    };
    // A poll on descriptors may wait on Tokio's timer (its timeout): a runtime that drives it.
    let _driven = super::wasi_runtime::enter_driven();
    poll.call(&mut *caller, (args[0], args[1], args[2], args[3]))
}
