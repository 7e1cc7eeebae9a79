//! Reproducible guests (`--deterministic`): the wall clock starts at `SOURCE_DATE_EPOCH` and
//! advances only as a virtual clock (one microsecond per reading), the monotonic clock is
//! virtual too, WASI random comes from a generator seeded from the build's inputs, and
//! directory listings come sorted by name with inode numbers derived from the names, and
//! file timestamps read through `stat` are clamped to `SOURCE_DATE_EPOCH` (the convention
//! of reproducible-builds.org), so archives a build makes do not embed the host's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use wasmtime::{Caller, Func, Linker};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::GuestState;

/// What a deterministic guest sees instead of the host's time and entropy.
#[derive(Debug, Clone)]
pub struct Determinism {
    /// Seconds since the Unix epoch at which the guest's wall clock starts.
    pub source_date_epoch: u64,
    /// Seed of the guest's random generators (derive it from the build's inputs).
    pub seed: [u8; 32],
}

/// The virtual time every clock of one guest shares: nanoseconds since the guest started.
#[derive(Clone, Default)]
struct VirtualTime(Arc<AtomicU64>);

const TICK_NANOS: u64 = 1_000;

impl VirtualTime {
    /// Each reading moves time forward a little, so loops that wait for the clock end.
    fn read(&self) -> u64 {
        self.0.fetch_add(TICK_NANOS, Ordering::Relaxed) + TICK_NANOS
    }
}

/// The guest's wall clock: `SOURCE_DATE_EPOCH` plus the virtual time.
struct VirtualWallClock(VirtualClocks);

impl HostWallClock for VirtualWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(TICK_NANOS)
    }
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.wall_now())
    }
}

struct VirtualMonotonicClock(VirtualClocks);

impl HostMonotonicClock for VirtualMonotonicClock {
    fn resolution(&self) -> u64 {
        TICK_NANOS
    }
    fn now(&self) -> u64 {
        self.0.monotonic_now()
    }
}

impl Determinism {
    /// A seed for a part of a run (one command of many), from the run's seed and `part`.
    pub fn derive_seed(seed: &[u8; 32], part: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(seed);
        hasher.update(part);
        hasher.finalize().into()
    }

    /// Applies the clocks and generators to a WASI context being built; returns the clocks,
    /// for the host functions that turn the guest's absolute timeouts into durations.
    pub(super) fn configure(&self, wasi: &mut wasmtime_wasi::WasiCtxBuilder) -> VirtualClocks {
        let clocks = VirtualClocks {
            epoch: Duration::from_secs(self.source_date_epoch),
            time: VirtualTime::default(),
        };
        wasi.wall_clock(VirtualWallClock(clocks.clone()))
            .monotonic_clock(VirtualMonotonicClock(clocks.clone()))
            .secure_random(rand::rngs::StdRng::from_seed(self.seed));
        let mut insecure_seed = self.seed;
        insecure_seed[0] ^= 0x5a;
        wasi.insecure_random(rand::rngs::StdRng::from_seed(insecure_seed))
            .insecure_random_seed(u128::from_le_bytes(
                self.seed[..16].try_into().expect("16 bytes"),
            ));
        clocks
    }
}

/// A deterministic guest's clocks, as the guest reads them (each reading advances them).
#[derive(Clone)]
pub(super) struct VirtualClocks {
    epoch: Duration,
    time: VirtualTime,
}

impl VirtualClocks {
    pub(super) fn monotonic_now(&self) -> u64 {
        self.time.read()
    }

    pub(super) fn wall_now(&self) -> u64 {
        let now = self.epoch + Duration::from_nanos(self.time.read());
        u64::try_from(now.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// WASI's host functions read the guest's memory through the *calling instance's*
/// `memory` export, so a host function cannot call them directly. This small module, one
/// instance per guest, imports the guest's memory and the original functions, re-exports the
/// memory, and forwards each call: the replacements call the originals through it.
pub(super) const INTERPOSER: &str = r#"(module
  (import "env" "memory" (memory 0))
  (import "wasi_snapshot_preview1" "fd_readdir"
    (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get"
    (func $fstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $pstat (param i32 i32 i32 i32 i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "fd_readdir") (param i32 i32 i32 i64 i32) (result i32)
    (call $readdir (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "fd_filestat_get") (param i32 i32) (result i32)
    (call $fstat (local.get 0) (local.get 1)))
  (func (export "path_filestat_get") (param i32 i32 i32 i32 i32) (result i32)
    (call $pstat (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4))))"#;

/// WASI's own functions that a deterministic guest's replacements wrap, and the clamp.
#[derive(Clone)]
pub(super) struct Originals {
    pub readdir: Func,
    pub fd_filestat_get: Func,
    pub path_filestat_get: Func,
    /// Latest timestamp a guest may see on a file, in nanoseconds since the epoch.
    pub clamp_nanos: u64,
}

impl Originals {
    /// Instantiates the interposer over the guest's `memory` and the unshadowed WASI
    /// functions of `linker`.
    pub(super) fn instantiate(
        interposer: &wasmtime::Module,
        linker: &Linker<GuestState>,
        store: &mut wasmtime::Store<GuestState>,
        memory: wasmtime::Memory,
        source_date_epoch: u64,
    ) -> wasmtime::Result<Originals> {
        let mut imports: Vec<wasmtime::Extern> = vec![memory.into()];
        for name in ["fd_readdir", "fd_filestat_get", "path_filestat_get"] {
            imports.push(linker.get(&mut *store, "wasi_snapshot_preview1", name)?);
        }
        let instance = wasmtime::Instance::new(&mut *store, interposer, &imports)?;
        let mut export = |name: &str| {
            instance
                .get_func(&mut *store, name)
                .ok_or_else(|| wasmtime::Error::msg(format!("interposer lacks {name}")))
        };
        Ok(Originals {
            readdir: export("fd_readdir")?,
            fd_filestat_get: export("fd_filestat_get")?,
            path_filestat_get: export("path_filestat_get")?,
            clamp_nanos: source_date_epoch.saturating_mul(1_000_000_000),
        })
    }
}

fn originals(caller: &Caller<'_, GuestState>) -> wasmtime::Result<Originals> {
    caller
        .data()
        .originals
        .clone()
        .ok_or_else(|| wasmtime::Error::msg("deterministic WASI functions are not linked"))
}

/// Replaces `fd_readdir`, `fd_filestat_get` and `path_filestat_get` in `linker` (a copy of
/// the WASI linker) with sorted listings and clamped timestamps. The originals are called
/// through the guest state's `originals`, set for each store.
pub(super) fn shadow(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_readdir",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         buf: i32,
         buf_len: i32,
         cookie: i64,
         bufused: i32|
         -> wasmtime::Result<i32> {
            sorted_readdir(&mut caller, fd, buf, buf_len, cookie, bufused)
        },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_filestat_get",
        |mut caller: Caller<'_, GuestState>, fd: i32, buf: i32| -> wasmtime::Result<i32> {
            let originals = originals(&caller)?;
            let original = originals
                .fd_filestat_get
                .typed::<(i32, i32), i32>(&caller)?;
            let errno = original.call(&mut caller, (fd, buf))?;
            clamp_filestat(&mut caller, errno, buf, originals.clamp_nanos)
        },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "path_filestat_get",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         flags: i32,
         path: i32,
         path_len: i32,
         buf: i32|
         -> wasmtime::Result<i32> {
            let originals = originals(&caller)?;
            let original = originals
                .path_filestat_get
                .typed::<(i32, i32, i32, i32, i32), i32>(&caller)?;
            let errno = original.call(&mut caller, (fd, flags, path, path_len, buf))?;
            clamp_filestat(&mut caller, errno, buf, originals.clamp_nanos)
        },
    )?;
    Ok(())
}

/// Offsets of `atim`, `mtim` and `ctim` in a preview1 `filestat`.
const FILESTAT_TIMES: [usize; 3] = [40, 48, 56];

fn clamp_filestat(
    caller: &mut Caller<'_, GuestState>,
    errno: i32,
    buf: i32,
    clamp: u64,
) -> wasmtime::Result<i32> {
    if errno != 0 {
        return Ok(errno);
    }
    rewrite_filestat(caller, buf, &FILESTAT_TIMES, |time| time.min(clamp))?;
    Ok(0)
}

/// Rewrites the `u64` fields at `offsets` of the preview1 `filestat` the guest's WASI call
/// wrote at `buf`.
pub(super) fn rewrite_filestat<T>(
    caller: &mut Caller<'_, T>,
    buf: i32,
    offsets: &[usize],
    rewrite: impl Fn(u64) -> u64,
) -> wasmtime::Result<()> {
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))?;
    let data = memory.data_mut(&mut *caller);
    let at = buf as u32 as usize;
    for offset in offsets {
        let field = data
            .get_mut(at + offset..at + offset + 8)
            .ok_or_else(|| wasmtime::Error::msg("filestat out of bounds"))?;
        let value = u64::from_le_bytes(field.try_into().expect("8 bytes"));
        field.copy_from_slice(&rewrite(value).to_le_bytes());
    }
    Ok(())
}

const DIRENT_HEADER: usize = 24;

struct Entry {
    kind: u8,
    name: Vec<u8>,
}

fn sorted_readdir(
    caller: &mut Caller<'_, GuestState>,
    fd: i32,
    buf: i32,
    buf_len: i32,
    cookie: i64,
    bufused: i32,
) -> wasmtime::Result<i32> {
    let original: Func = originals(caller)?.readdir;
    let original = original.typed::<(i32, i32, i32, i64, i32), i32>(&*caller)?;
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))?;
    let (buf_at, used_at, cap) = (
        buf as u32 as usize,
        bufused as u32 as usize,
        buf_len as u32 as usize,
    );

    // Read the whole directory through the original, one buffer at a time.
    let mut entries = Vec::new();
    let mut next: i64 = 0;
    loop {
        let errno = original.call(&mut *caller, (fd, buf, buf_len, next, bufused))?;
        if errno != 0 {
            return Ok(errno);
        }
        let data = memory.data(&*caller);
        let used = data
            .get(used_at..used_at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| wasmtime::Error::msg("bufused out of bounds"))?;
        let page = data
            .get(buf_at..buf_at + used.min(cap))
            .ok_or_else(|| wasmtime::Error::msg("buffer out of bounds"))?;
        let mut offset = 0;
        let mut progressed = false;
        while offset + DIRENT_HEADER <= page.len() {
            let header = &page[offset..offset + DIRENT_HEADER];
            let d_next = u64::from_le_bytes(header[0..8].try_into().expect("8 bytes"));
            let namlen = u32::from_le_bytes(header[16..20].try_into().expect("4 bytes")) as usize;
            let Some(name) = page.get(offset + DIRENT_HEADER..offset + DIRENT_HEADER + namlen)
            else {
                break;
            };
            entries.push(Entry {
                kind: header[20],
                name: name.to_vec(),
            });
            next = d_next as i64;
            offset += DIRENT_HEADER + namlen;
            progressed = true;
        }
        if used < cap {
            break;
        }
        if !progressed {
            // The buffer cannot hold one entry: let the original answer as it would.
            return original.call(&mut *caller, (fd, buf, buf_len, cookie, bufused));
        }
    }

    entries.sort_by(|a, b| {
        let rank = |e: &Entry| match e.name.as_slice() {
            b"." => 0,
            b".." => 1,
            _ => 2,
        };
        rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
    });
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate().skip(cookie.max(0) as usize) {
        out.extend_from_slice(&(index as u64 + 1).to_le_bytes());
        out.extend_from_slice(&name_inode(&entry.name).to_le_bytes());
        out.extend_from_slice(&(entry.name.len() as u32).to_le_bytes());
        out.extend_from_slice(&[entry.kind, 0, 0, 0]);
        out.extend_from_slice(&entry.name);
        if out.len() >= cap {
            break;
        }
    }
    out.truncate(cap);
    let data = memory.data_mut(&mut *caller);
    data[buf_at..buf_at + out.len()].copy_from_slice(&out);
    data[used_at..used_at + 4].copy_from_slice(&(out.len() as u32).to_le_bytes());
    Ok(0)
}

/// A stable stand-in for an inode number (FNV-1a of the name).
fn name_inode(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
