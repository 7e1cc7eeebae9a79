//! The guest's file descriptor numbers and its `/dev`. This module owns the numbering the
//! guest sees: every WASI preview1 function that takes or returns a descriptor is shadowed
//! in the linker and goes through `FdTable`, a vector indexed by the guest's number whose
//! slots are a descriptor of wasmtime-wasi (whose own table is private), a device, or the
//! virtual `/dev` directories. Owning the numbers gives the guest what WASI lacks:
//!
//! - `dup`: several guest numbers may name one WASI descriptor (shared offset and flags, as
//!   on Linux); it is closed when the last of them is. `path_open(N, ".")` where N is no
//!   directory (`openat(N, ".")`, an error in WASI) is `dup(N)`, and so is opening
//!   `/dev/fd/N` (and `/dev/stdin|stdout|stderr`, which are fd 0, 1, 2).
//! - `dup2`: `path_link(N, ".", M, ".")` (`linkat(N, ".", M, ".")`, an error in WASI) and
//!   `path_link("/dev/fd/N", "/dev/fd/M")` make M another name of N, closing what M named;
//!   `fd_renumber` moves N to M. New numbers are the lowest free ones, as POSIX requires.
//!   The `.` forms pass descriptors as descriptors, so a guest that renumbers them itself
//!   (CPython's WASI build keeps its standard library in wasi-vfs, which does) still
//!   reaches the right one; the `/dev/fd` forms name this table's numbers.
//! - `/dev`, preopened after the mounts: `null` (reads end, writes are counted and
//!   dropped), `zero`, `random` and `urandom` (read through WASI's `random_get`, so
//!   `--deterministic` seeds them as it seeds the guest's random numbers), `stdin`,
//!   `stdout`, `stderr` and `fd/`. Nothing of the host's `/dev` is reachable: the tree is
//!   made here, and only these names exist.
//!
//! Descriptors of wasmtime-wasi are handed to the functions below this layer (those of the
//! linker it was given: WASI's, with the deadline-aware `poll_oneoff` and, for
//! deterministic guests, the sorted listings) through `FORWARDER`, a small module made per
//! guest over its memory. Per call the cost is one vector lookup and that extra call.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Caller, Instance, Linker, Memory, Module, TypedFunc};

use super::layout::Layout;
use super::process::{self, ChildStream, ProcNode, ProcessContext, Processes, ReadError};
use super::stdio::{InputPipe, OutputPipe};
use super::{GuestState, Interrupted};

const WASI: &str = "wasi_snapshot_preview1";

/// Most descriptors a guest may have open at once (the usual hard `ulimit -n` is higher,
/// the usual soft one lower).
pub(super) const MAX_FDS: usize = 1 << 16;

/// Largest read served by one call on `/dev/zero` or `/dev/urandom`.
const DEVICE_READ_CHUNK: usize = 16 << 20;

// WASI preview1 error numbers.
const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const EXIST: i32 = 20;
const FAULT: i32 = 21;
const INVAL: i32 = 28;
const ISDIR: i32 = 31;
const MFILE: i32 = 33;
const NAMETOOLONG: i32 = 37;
const NOENT: i32 = 44;
const NOTDIR: i32 = 54;
const NOTSOCK: i32 = 57;
const NOTSUP: i32 = 58;
const ROFS: i32 = 69;
const XDEV: i32 = 75;
const NOTCAPABLE: i32 = 76;
const SPIPE: i32 = 70;

// File types.
const FILETYPE_UNKNOWN: u8 = 0;
const FILETYPE_REGULAR_FILE: u8 = 4;
/// What the devices say they are. Not character devices: programs built with Rust's std for
/// WASI (the toolbox's `cat`, `cp`) know no such type and refuse it, so the devices are
/// empty regular files to `stat`, which every program reads (and writes) as it should.
const FILETYPE_DEVICE: u8 = FILETYPE_REGULAR_FILE;
const FILETYPE_DIRECTORY: u8 = 3;

// `path_open` flags.
const OFLAGS_CREAT: i32 = 1;
const OFLAGS_DIRECTORY: i32 = 2;
const OFLAGS_EXCL: i32 = 4;

/// Every right preview1 defines.
const ALL_RIGHTS: u64 = (1 << 30) - 1;

/// `st_dev` of the entries of `/dev`.
const DEV_DEVICE: u64 = 5;

/// Guest path of the virtual directory.
pub(super) const DEV_DIR: &str = "/dev";

/// A device of `/dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    Null,
    Zero,
    Random,
    URandom,
}

impl Device {
    fn inode(self) -> u64 {
        match self {
            Device::Null => 1,
            Device::Zero => 2,
            Device::Random => 3,
            Device::URandom => 4,
        }
    }
}

/// What a guest descriptor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    /// Something open under `/dev/process` (see `process`), by its number there.
    Object(u32),
    /// A descriptor of wasmtime-wasi.
    Wasi(u32),
    Device(Device),
    /// `/dev` (or `/dev/fd` when `fd_dir`); `preopen` for the one wasi-libc finds at start.
    Dir {
        fd_dir: bool,
        preopen: bool,
    },
}

/// What a guest's children may inherit from it besides its descriptors' numbers.
pub(super) struct Inherited {
    /// The guest's own stdin, stdout and stderr (WASI descriptors 0, 1, 2).
    pub stdio: (InputPipe, OutputPipe, OutputPipe),
    /// Its directories: a file it opened is reopened through them for a child.
    pub layout: Layout,
    pub cwd: String,
}

/// The guest's descriptors (see the module's comment).
pub(super) struct FdTable {
    slots: Vec<Slot>,
    /// How many guest descriptors name each WASI descriptor (absent: one).
    shares: HashMap<u32, u32>,
    below: Option<Arc<Below>>,
    /// The guest path each WASI descriptor was opened at (preopens and `path_open`).
    paths: HashMap<u32, String>,
    /// WASI's stdio descriptors 0, 1, 2 that were closed (their numbers may be reused).
    stdio_closed: [bool; 3],
    inherited: Option<Inherited>,
    /// `/dev/process`: open objects and children.
    procs: Processes,
    /// Descriptors staged for the next child's stdin, stdout, stderr (see `shadow_link`).
    staged: [Option<Slot>; 3],
}

impl FdTable {
    /// The table at a guest's start: stdio and the WASI preopens (at these guest paths)
    /// under their own numbers, then `/dev`.
    pub(super) fn new(preopens: Vec<String>) -> FdTable {
        let mut slots: Vec<Slot> = (0..3 + preopens.len() as u32).map(Slot::Wasi).collect();
        slots.push(Slot::Dir {
            fd_dir: false,
            preopen: true,
        });
        FdTable {
            slots,
            shares: HashMap::new(),
            below: None,
            paths: (3..).zip(preopens).collect(),
            stdio_closed: [false; 3],
            inherited: None,
            procs: Processes::default(),
            staged: [None; 3],
        }
    }

    /// Lets the guest start programs (`/dev/process`) with `context`, its children
    /// inheriting from `inherited`.
    pub(super) fn with_processes(
        mut self,
        inherited: Inherited,
        context: Option<ProcessContext>,
    ) -> FdTable {
        self.inherited = Some(inherited);
        self.procs.context = context;
        self
    }

    fn slot(&self, fd: i32) -> Slot {
        self.slots
            .get(fd as u32 as usize)
            .copied()
            .unwrap_or(Slot::Free)
    }

    /// Puts `slot` (already counted) under the lowest free number.
    fn insert(&mut self, slot: Slot) -> Option<u32> {
        let at = match self.slots.iter().position(|s| *s == Slot::Free) {
            Some(at) => at,
            None if self.slots.len() < MAX_FDS => {
                self.slots.push(Slot::Free);
                self.slots.len() - 1
            }
            None => return None,
        };
        self.slots[at] = slot;
        Some(at as u32)
    }

    /// Counts one more guest descriptor naming what `slot` names.
    fn share(&mut self, slot: Slot) {
        match slot {
            Slot::Wasi(inner) => *self.shares.entry(inner).or_insert(1) += 1,
            Slot::Object(id) => self.procs.share(id),
            _ => {}
        }
    }

    /// Forgets one guest descriptor naming `slot`; true when it was the WASI descriptor's
    /// last, which must then be closed.
    fn release(&mut self, slot: Slot) -> bool {
        if let Slot::Object(id) = slot {
            self.procs.release(id);
        }
        let Slot::Wasi(inner) = slot else {
            return false;
        };
        match self.shares.get_mut(&inner) {
            Some(count) if *count > 2 => {
                *count -= 1;
                false
            }
            Some(_) => {
                self.shares.remove(&inner);
                false
            }
            None => true,
        }
    }

    /// Sets `fd` to `slot` (already counted), growing the table; what `fd` named before.
    fn put(&mut self, fd: usize, slot: Slot) -> Slot {
        if fd >= self.slots.len() {
            self.slots.resize(fd + 1, Slot::Free);
        }
        std::mem::replace(&mut self.slots[fd], slot)
    }
}

/// Declares the functions forwarded to the layer below: the `Below` struct of typed
/// functions and the text of the forwarder module.
macro_rules! forwarded {
    ($($name:ident ( $($t:ident),* );)*) => {
        /// The functions of the layer below, called through the forwarder.
        pub(super) struct Below {
            memory: Memory,
            $($name: TypedFunc<($($t,)*), i32>,)*
        }

        const FORWARDED: &[(&str, &[&str])] = &[$((stringify!($name), &[$(stringify!($t)),*])),*];

        impl Below {
            fn new(
                store: &mut Caller<'_, GuestState>,
                instance: Instance,
                memory: Memory,
            ) -> wasmtime::Result<Below> {
                Ok(Below {
                    memory,
                    $($name: instance.get_typed_func(&mut *store, stringify!($name))?,)*
                })
            }
        }
    };
}

forwarded! {
    fd_advise(i32, i64, i64, i32);
    fd_allocate(i32, i64, i64);
    fd_close(i32);
    fd_datasync(i32);
    fd_fdstat_get(i32, i32);
    fd_fdstat_set_flags(i32, i32);
    fd_fdstat_set_rights(i32, i64, i64);
    fd_filestat_get(i32, i32);
    fd_filestat_set_size(i32, i64);
    fd_filestat_set_times(i32, i64, i64, i32);
    fd_pread(i32, i32, i32, i64, i32);
    fd_prestat_get(i32, i32);
    fd_prestat_dir_name(i32, i32, i32);
    fd_pwrite(i32, i32, i32, i64, i32);
    fd_read(i32, i32, i32, i32);
    fd_readdir(i32, i32, i32, i64, i32);
    fd_seek(i32, i64, i32, i32);
    fd_sync(i32);
    fd_tell(i32, i32);
    fd_write(i32, i32, i32, i32);
    path_create_directory(i32, i32, i32);
    path_filestat_get(i32, i32, i32, i32, i32);
    path_filestat_set_times(i32, i32, i32, i32, i64, i64, i32);
    path_link(i32, i32, i32, i32, i32, i32, i32);
    path_open(i32, i32, i32, i32, i32, i64, i64, i32, i32);
    path_readlink(i32, i32, i32, i32, i32, i32);
    path_remove_directory(i32, i32, i32);
    path_rename(i32, i32, i32, i32, i32, i32);
    path_symlink(i32, i32, i32, i32, i32);
    path_unlink_file(i32, i32, i32);
    poll_oneoff(i32, i32, i32, i32);
    random_get(i32, i32);
    sock_accept(i32, i32, i32);
    sock_recv(i32, i32, i32, i32, i32, i32);
    sock_send(i32, i32, i32, i32, i32);
    sock_shutdown(i32, i32);
}

/// The text of the forwarder: imports the guest's memory and the functions below,
/// re-exports the memory (WASI's functions read the caller's `memory`) and each function.
pub(super) fn forwarder_wat() -> String {
    let mut wat = String::from("(module\n  (import \"env\" \"memory\" (memory 0))\n");
    for (name, params) in FORWARDED {
        wat.push_str(&format!(
            "  (import \"{WASI}\" \"{name}\" (func ${name} (param {}) (result i32)))\n",
            params.join(" ")
        ));
    }
    wat.push_str("  (export \"memory\" (memory 0))\n");
    for (name, params) in FORWARDED {
        let gets: String = (0..params.len())
            .map(|i| format!(" (local.get {i})"))
            .collect();
        wat.push_str(&format!(
            "  (func (export \"{name}\") (param {}) (result i32) (call ${name}{gets}))\n",
            params.join(" ")
        ));
    }
    wat.push(')');
    wat
}

/// The linker below this layer and the forwarder module, shared by the replacements.
struct Lower {
    linker: Linker<GuestState>,
    forwarder: Module,
}

/// The functions below, made for this guest on first need.
fn below(caller: &mut Caller<'_, GuestState>, lower: &Lower) -> wasmtime::Result<Arc<Below>> {
    if let Some(below) = &caller.data().fds.below {
        return Ok(below.clone());
    }
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))?;
    let mut imports: Vec<wasmtime::Extern> = vec![memory.into()];
    for (name, _) in FORWARDED {
        imports.push(lower.linker.get(&mut *caller, WASI, name)?);
    }
    let instance = Instance::new(&mut *caller, &lower.forwarder, &imports)?;
    let below = Arc::new(Below::new(caller, instance, memory)?);
    caller.data_mut().fds.below = Some(below.clone());
    Ok(below)
}

// ---------------------------------------------------------------------------------------
// Guest memory helpers: every access is bounds-checked; a bad pointer is EFAULT.

fn read_bytes(data: &[u8], at: i32, len: usize) -> Option<&[u8]> {
    let at = at as u32 as usize;
    data.get(at..at.checked_add(len)?)
}

fn write_bytes(data: &mut [u8], at: i32, bytes: &[u8]) -> bool {
    let at = at as u32 as usize;
    match at
        .checked_add(bytes.len())
        .and_then(|end| data.get_mut(at..end))
    {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn read_u32(data: &[u8], at: i32) -> Option<u32> {
    read_bytes(data, at, 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

/// The (pointer, length) pairs of an iovec array.
fn iovecs(data: &[u8], iovs: i32, count: i32) -> Option<Vec<(u32, u32)>> {
    let count = count as u32 as usize;
    let bytes = read_bytes(data, iovs, count.checked_mul(8)?)?;
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| {
                (
                    u32::from_le_bytes(c[..4].try_into().expect("4 bytes")),
                    u32::from_le_bytes(c[4..].try_into().expect("4 bytes")),
                )
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// The virtual `/dev`.

/// What a path below `/dev` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir {
        fd_dir: bool,
    },
    Device(Device),
    /// `/dev/fd/N`, `/dev/stdin` (0), `/dev/stdout` (1), `/dev/stderr` (2).
    Fd(u32),
    /// Below `/dev/process`.
    Process(ProcNode),
}

/// Names of `/dev`, in listing order, with their `d_type`.
const DEV_ENTRIES: [(&str, Node, u8); 9] = [
    ("fd", Node::Dir { fd_dir: true }, FILETYPE_DIRECTORY),
    ("null", Node::Device(Device::Null), FILETYPE_DEVICE),
    ("process", Node::Process(ProcNode::Dir), FILETYPE_DIRECTORY),
    ("random", Node::Device(Device::Random), FILETYPE_DEVICE),
    ("stderr", Node::Fd(2), FILETYPE_UNKNOWN),
    ("stdin", Node::Fd(0), FILETYPE_UNKNOWN),
    ("stdout", Node::Fd(1), FILETYPE_UNKNOWN),
    ("urandom", Node::Device(Device::URandom), FILETYPE_DEVICE),
    ("zero", Node::Device(Device::Zero), FILETYPE_DEVICE),
];

/// Resolves `path` from `/dev` (or `/dev/fd`). `..` may not leave `/dev`.
fn resolve(fd_dir: bool, path: &[u8]) -> Result<Node, i32> {
    let mut node = Node::Dir { fd_dir };
    let mut parts = path
        .split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".");
    while let Some(part) = parts.next() {
        if node == (Node::Dir { fd_dir: false }) && part == b"process" {
            let node = Node::Process(ProcNode::resolve(&mut parts)?);
            if path.ends_with(b"/") && !matches!(node, Node::Process(p) if p.is_dir()) {
                return Err(NOTDIR);
            }
            return Ok(node);
        }
        node = match node {
            Node::Dir { fd_dir: false } => {
                if part == b".." {
                    return Err(NOTCAPABLE);
                }
                DEV_ENTRIES
                    .iter()
                    .find(|(name, _, _)| name.as_bytes() == part)
                    .map(|(_, node, _)| *node)
                    .ok_or(NOENT)?
            }
            Node::Dir { fd_dir: true } => {
                if part == b".." {
                    Node::Dir { fd_dir: false }
                } else {
                    parse_fd(part).map(Node::Fd).ok_or(NOENT)?
                }
            }
            _ => return Err(NOTDIR),
        };
    }
    if path.ends_with(b"/") && !matches!(node, Node::Dir { .. }) {
        return Err(NOTDIR);
    }
    Ok(node)
}

/// A descriptor number as `/dev/fd` spells it (decimal, no sign or leading zeros).
fn parse_fd(name: &[u8]) -> Option<u32> {
    if name.is_empty()
        || name.len() > 9
        || (name.len() > 1 && name[0] == b'0')
        || !name.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

fn fdstat(filetype: u8) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[0] = filetype;
    out[8..16].copy_from_slice(&ALL_RIGHTS.to_le_bytes());
    if filetype == FILETYPE_DIRECTORY {
        out[16..24].copy_from_slice(&ALL_RIGHTS.to_le_bytes());
    }
    out
}

/// A `filestat` of an entry of `/dev` (times zero: nothing of the host's clock shows).
fn filestat(inode: u64, filetype: u8) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[0..8].copy_from_slice(&DEV_DEVICE.to_le_bytes());
    out[8..16].copy_from_slice(&inode.to_le_bytes());
    out[16] = filetype;
    let links: u64 = if filetype == FILETYPE_DIRECTORY { 2 } else { 1 };
    out[24..32].copy_from_slice(&links.to_le_bytes());
    out
}

/// The `filestat` of a slot that is not a WASI descriptor.
fn virtual_filestat(slot: Slot) -> [u8; 64] {
    match slot {
        Slot::Object(id) => filestat(1000 + u64::from(id), FILETYPE_DEVICE),
        Slot::Device(device) => filestat(device.inode(), FILETYPE_DEVICE),
        Slot::Dir { fd_dir, .. } => filestat(10 + u64::from(fd_dir), FILETYPE_DIRECTORY),
        Slot::Wasi(_) | Slot::Free => filestat(0, FILETYPE_UNKNOWN),
    }
}

/// The slot that opening `node` gives (a new share of an open descriptor for `fd/N`).
fn open_node(table: &mut FdTable, node: Node) -> Result<Slot, i32> {
    match node {
        Node::Dir { fd_dir } => Ok(Slot::Dir {
            fd_dir,
            preopen: false,
        }),
        Node::Device(device) => Ok(Slot::Device(device)),
        Node::Process(node) => table.procs.open(node).map(Slot::Object),
        Node::Fd(n) => match table.slot(n as i32) {
            Slot::Free => Err(NOENT),
            Slot::Dir { fd_dir, .. } => Ok(Slot::Dir {
                fd_dir,
                preopen: false,
            }),
            slot => {
                table.share(slot);
                Ok(slot)
            }
        },
    }
}

/// Reads a guest path (`ptr`, `len`) from memory.
fn guest_path(data: &[u8], ptr: i32, len: i32) -> Result<Vec<u8>, i32> {
    read_bytes(data, ptr, len as u32 as usize)
        .map(<[u8]>::to_vec)
        .ok_or(FAULT)
}

/// Resolves a path given relative to a `/dev` directory slot.
/// The answer of a call that names a path under a `/dev` directory and cannot change it:
/// `found` when the name exists there, else why it does not.
fn answer_on_dev_name(
    caller: &Caller<'_, GuestState>,
    below: &Below,
    slot: Slot,
    ptr: i32,
    len: i32,
    found: i32,
) -> i32 {
    match resolve_at(caller, below, slot, ptr, len) {
        Ok(_) => found,
        Err(errno) => errno,
    }
}

fn resolve_at(
    caller: &Caller<'_, GuestState>,
    below: &Below,
    slot: Slot,
    ptr: i32,
    len: i32,
) -> Result<Node, i32> {
    let Slot::Dir { fd_dir, .. } = slot else {
        return Err(NOTDIR);
    };
    let path = guest_path(below.memory.data(caller), ptr, len)?;
    resolve(fd_dir, &path)
}

// ---------------------------------------------------------------------------------------
// Devices.

fn device_read(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    slot: Slot,
    iovs: i32,
    count: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    if let Slot::Object(id) = slot {
        return object_read(caller, below, id, iovs, count, nread);
    }
    let Slot::Device(device) = slot else {
        return Ok(ISDIR);
    };
    let Some(vecs) = iovecs(below.memory.data(&*caller), iovs, count) else {
        return Ok(FAULT);
    };
    let mut total: usize = 0;
    for (ptr, len) in vecs {
        let len = (len as usize).min(DEVICE_READ_CHUNK - total);
        if device == Device::Null || len == 0 {
            break;
        }
        match device {
            Device::Zero => {
                let data = below.memory.data_mut(&mut *caller);
                match (ptr as usize)
                    .checked_add(len)
                    .and_then(|end| data.get_mut(ptr as usize..end))
                {
                    Some(buf) => buf.fill(0),
                    None => return Ok(FAULT),
                }
            }
            _ => {
                let errno = below
                    .random_get
                    .call(&mut *caller, (ptr as i32, len as i32))?;
                if errno != SUCCESS {
                    return Ok(errno);
                }
            }
        }
        total += len;
    }
    let data = below.memory.data_mut(caller);
    Ok(if write_bytes(data, nread, &(total as u32).to_le_bytes()) {
        SUCCESS
    } else {
        FAULT
    })
}

fn device_write(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    slot: Slot,
    iovs: i32,
    count: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    if let Slot::Object(id) = slot {
        return object_write(caller, below, id, iovs, count, nwritten);
    }
    if !matches!(slot, Slot::Device(_)) {
        return Ok(BADF);
    }
    let Some(vecs) = iovecs(below.memory.data(&*caller), iovs, count) else {
        return Ok(FAULT);
    };
    // Written to no one: counted, never copied.
    let total = vecs
        .iter()
        .fold(0u32, |sum, &(_, len)| sum.saturating_add(len));
    let data = below.memory.data_mut(caller);
    Ok(if write_bytes(data, nwritten, &total.to_le_bytes()) {
        SUCCESS
    } else {
        FAULT
    })
}

/// Writes `bytes` at `ptr` in the guest's memory: SUCCESS or FAULT.
fn answer(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<i32> {
    Ok(if write_bytes(below.memory.data_mut(caller), ptr, bytes) {
        SUCCESS
    } else {
        FAULT
    })
}

/// A listing of `/dev` or `/dev/fd` as `fd_readdir` writes it, from entry `cookie` on.
fn dev_listing(table: &FdTable, fd_dir: bool, cookie: u64, cap: usize) -> Vec<u8> {
    let mut entries: Vec<(Vec<u8>, u64, u8)> = vec![
        (b".".to_vec(), 10 + u64::from(fd_dir), FILETYPE_DIRECTORY),
        (b"..".to_vec(), 10, FILETYPE_DIRECTORY),
    ];
    if fd_dir {
        for (fd, slot) in table.slots.iter().enumerate() {
            if *slot != Slot::Free {
                entries.push((
                    fd.to_string().into_bytes(),
                    100 + fd as u64,
                    FILETYPE_UNKNOWN,
                ));
            }
        }
    } else {
        for (name, node, kind) in DEV_ENTRIES {
            let inode = match node {
                Node::Device(device) => device.inode(),
                Node::Dir { .. } => 11,
                Node::Process(_) => 12,
                Node::Fd(n) => 20 + u64::from(n),
            };
            entries.push((name.as_bytes().to_vec(), inode, kind));
        }
    }
    let mut out = Vec::new();
    for (index, (name, inode, kind)) in entries.iter().enumerate().skip(cookie as usize) {
        out.extend_from_slice(&(index as u64 + 1).to_le_bytes());
        out.extend_from_slice(&inode.to_le_bytes());
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&[*kind, 0, 0, 0]);
        out.extend_from_slice(name);
        if out.len() >= cap {
            break;
        }
    }
    out.truncate(cap);
    out
}

// ---------------------------------------------------------------------------------------
// The replacements.

/// What a replacement does for a descriptor that is not WASI's: the arguments after it.
type Other<A> = fn(&mut Caller<'_, GuestState>, &Below, Slot, A) -> wasmtime::Result<i32>;

/// Defines a replacement for a function whose first argument is a descriptor: a WASI
/// descriptor goes below, a free number is EBADF, anything else goes to `$other`.
macro_rules! by_fd {
    ($linker:expr, $lower:expr, $name:ident ( $($a:ident : $t:ty),* ), $other:expr) => {{
        let lower = $lower.clone();
        let other: Other<($($t,)*)> = $other;
        $linker.func_wrap(
            WASI,
            stringify!($name),
            move |mut caller: Caller<'_, GuestState>, fd: i32, $($a: $t),*| -> wasmtime::Result<i32> {
                let slot = caller.data().fds.slot(fd);
                let below = below(&mut caller, &lower)?;
                match slot {
                    Slot::Wasi(inner) => below.$name.call(&mut caller, (inner as i32, $($a),*)),
                    Slot::Free => Ok(BADF),
                    slot => other(&mut caller, &below, slot, ($($a,)*)),
                }
            },
        )?;
    }};
}

/// Replaces, in `linker`, every preview1 function that takes or makes a descriptor with
/// one that goes through the guest's `FdTable`; `below` is `linker` as it was (the functions
/// the replacements call), `forwarder` the module made from `forwarder_wat`.
pub(super) fn shadow(linker: &mut Linker<GuestState>, forwarder: Module) -> wasmtime::Result<()> {
    let lower = Arc::new(Lower {
        linker: linker.clone(),
        forwarder,
    });
    linker.allow_shadowing(true);

    by_fd!(linker, lower, fd_advise(a: i64, b: i64, c: i32), |_, _, _, _| Ok(
        SUCCESS
    ));
    by_fd!(linker, lower, fd_allocate(a: i64, b: i64), |_, _, _, _| Ok(
        NOTSUP
    ));
    by_fd!(linker, lower, fd_datasync(), |_, _, _, _| Ok(SUCCESS));
    by_fd!(linker, lower, fd_sync(), |_, _, _, _| Ok(SUCCESS));
    by_fd!(linker, lower, fd_fdstat_get(buf: i32), |caller,
                                                    below,
                                                    slot,
                                                    (buf,)| {
        let kind = match slot {
            Slot::Device(_) | Slot::Object(_) => FILETYPE_DEVICE,
            _ => FILETYPE_DIRECTORY,
        };
        answer(caller, below, buf, &fdstat(kind))
    });
    by_fd!(linker, lower, fd_fdstat_set_flags(a: i32), |_, _, _, _| Ok(
        SUCCESS
    ));
    by_fd!(
        linker,
        lower,
        fd_fdstat_set_rights(a: i64, b: i64),
        |_, _, _, _| Ok(SUCCESS)
    );
    by_fd!(linker, lower, fd_filestat_get(buf: i32), |caller,
                                                      below,
                                                      slot,
                                                      (buf,)| {
        answer(caller, below, buf, &virtual_filestat(slot))
    });
    by_fd!(linker, lower, fd_filestat_set_size(a: i64), |_, _, _, _| Ok(
        INVAL
    ));
    by_fd!(
        linker,
        lower,
        fd_filestat_set_times(a: i64, b: i64, c: i32),
        |_, _, _, _| Ok(SUCCESS)
    );
    by_fd!(
        linker,
        lower,
        fd_read(iovs: i32, count: i32, nread: i32),
        |caller, below, slot, (iovs, count, nread)| device_read(
            caller, below, slot, iovs, count, nread
        )
    );
    by_fd!(
        linker,
        lower,
        fd_pread(iovs: i32, count: i32, offset: i64, nread: i32),
        |caller, below, slot, (iovs, count, _, nread)| device_read(
            caller, below, slot, iovs, count, nread
        )
    );
    by_fd!(
        linker,
        lower,
        fd_write(iovs: i32, count: i32, nwritten: i32),
        |caller, below, slot, (iovs, count, nwritten)| device_write(
            caller, below, slot, iovs, count, nwritten
        )
    );
    by_fd!(
        linker,
        lower,
        fd_pwrite(iovs: i32, count: i32, offset: i64, nwritten: i32),
        |caller, below, slot, (iovs, count, _, nwritten)| device_write(
            caller, below, slot, iovs, count, nwritten
        )
    );
    by_fd!(linker, lower, fd_prestat_get(buf: i32), |caller,
                                                     below,
                                                     slot,
                                                     (buf,)| {
        if !matches!(slot, Slot::Dir { preopen: true, .. }) {
            return Ok(BADF);
        }
        let mut prestat = [0u8; 8];
        prestat[4..].copy_from_slice(&(DEV_DIR.len() as u32).to_le_bytes());
        answer(caller, below, buf, &prestat)
    });
    by_fd!(
        linker,
        lower,
        fd_prestat_dir_name(path: i32, len: i32),
        |caller, below, slot, (path, len)| {
            if !matches!(slot, Slot::Dir { preopen: true, .. }) {
                return Ok(BADF);
            }
            if (len as u32 as usize) < DEV_DIR.len() {
                return Ok(NAMETOOLONG);
            }
            answer(caller, below, path, DEV_DIR.as_bytes())
        }
    );
    by_fd!(
        linker,
        lower,
        fd_readdir(buf: i32, len: i32, cookie: i64, bufused: i32),
        |caller, below, slot, (buf, len, cookie, bufused)| {
            let Slot::Dir { fd_dir, .. } = slot else {
                return Ok(NOTDIR);
            };
            let out = dev_listing(
                &caller.data().fds,
                fd_dir,
                cookie as u64,
                len as u32 as usize,
            );
            let data = below.memory.data_mut(&mut *caller);
            if !write_bytes(data, buf, &out)
                || !write_bytes(data, bufused, &(out.len() as u32).to_le_bytes())
            {
                return Ok(FAULT);
            }
            Ok(SUCCESS)
        }
    );
    by_fd!(
        linker,
        lower,
        fd_seek(offset: i64, whence: i32, newoffset: i32),
        |caller, below, slot, (_, _, newoffset)| match slot {
            Slot::Object(_) => Ok(SPIPE),
            _ => answer(caller, below, newoffset, &0u64.to_le_bytes()),
        }
    );
    by_fd!(linker, lower, fd_tell(offset: i32), |caller,
                                                 below,
                                                 slot,
                                                 (offset,)| match slot {
        Slot::Object(_) => Ok(SPIPE),
        _ => answer(caller, below, offset, &0u64.to_le_bytes()),
    });
    by_fd!(
        linker,
        lower,
        path_create_directory(path: i32, len: i32),
        |caller, below, slot, (path, len)| Ok(match resolve_at(caller, below, slot, path, len) {
            Ok(_) => EXIST,
            Err(NOENT) => ROFS,
            Err(errno) => errno,
        })
    );
    by_fd!(
        linker,
        lower,
        path_filestat_get(flags: i32, path: i32, len: i32, buf: i32),
        |caller, below, slot, (_, path, len, buf)| {
            let node = match resolve_at(caller, below, slot, path, len) {
                Ok(node) => node,
                Err(errno) => return Ok(errno),
            };
            let stat = match node {
                Node::Dir { fd_dir } => virtual_filestat(Slot::Dir {
                    fd_dir,
                    preopen: false,
                }),
                Node::Device(device) => virtual_filestat(Slot::Device(device)),
                Node::Process(node) if node.is_dir() => filestat(12, FILETYPE_DIRECTORY),
                Node::Process(node) if caller.data().fds.procs.exists(node) => {
                    filestat(13, FILETYPE_DEVICE)
                }
                Node::Process(_) => return Ok(NOENT),
                Node::Fd(n) => match caller.data().fds.slot(n as i32) {
                    Slot::Free => return Ok(NOENT),
                    Slot::Wasi(inner) => {
                        return below
                            .fd_filestat_get
                            .call(&mut *caller, (inner as i32, buf));
                    }
                    slot => virtual_filestat(slot),
                },
            };
            answer(caller, below, buf, &stat)
        }
    );
    by_fd!(
        linker,
        lower,
        path_filestat_set_times(flags: i32, path: i32, len: i32, a: i64, m: i64, f: i32),
        |caller, below, slot, (_, path, len, _, _, _)| Ok(answer_on_dev_name(
            caller, below, slot, path, len, SUCCESS
        ))
    );
    by_fd!(
        linker,
        lower,
        path_readlink(path: i32, len: i32, buf: i32, buf_len: i32, used: i32),
        |caller, below, slot, (path, len, _, _, _)| Ok(answer_on_dev_name(
            caller, below, slot, path, len, INVAL
        ))
    );
    by_fd!(
        linker,
        lower,
        path_remove_directory(path: i32, len: i32),
        |caller, below, slot, (path, len)| Ok(answer_on_dev_name(
            caller, below, slot, path, len, ROFS
        ))
    );
    by_fd!(
        linker,
        lower,
        path_unlink_file(path: i32, len: i32),
        |caller, below, slot, (path, len)| Ok(answer_on_dev_name(
            caller, below, slot, path, len, ROFS
        ))
    );
    by_fd!(
        linker,
        lower,
        sock_recv(a: i32, b: i32, c: i32, d: i32, e: i32),
        |_, _, _, _| Ok(NOTSOCK)
    );
    by_fd!(
        linker,
        lower,
        sock_send(a: i32, b: i32, c: i32, d: i32),
        |_, _, _, _| Ok(NOTSOCK)
    );
    by_fd!(linker, lower, sock_shutdown(how: i32), |_, _, _, _| Ok(
        NOTSOCK
    ));

    // Exit statuses are a byte, as POSIX gives them to a shell (wasmtime's WASI refuses
    // 126 and above, which shells use for "cannot run", "not found" and signals).
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_caller: Caller<'_, GuestState>, status: i32| -> wasmtime::Result<()> {
            Err(wasmtime_wasi::I32Exit(status & 0xff).into())
        },
    )?;
    shadow_close(linker, &lower)?;
    shadow_open(linker, &lower)?;
    shadow_accept(linker, &lower)?;
    shadow_renumber(linker, &lower)?;
    shadow_link(linker, &lower)?;
    shadow_rename(linker, &lower)?;
    shadow_symlink(linker, &lower)?;
    shadow_poll(linker, &lower)?;
    Ok(())
}

/// Closes guest descriptor `fd`: the WASI descriptor behind it goes when its last name
/// does.
fn close(caller: &mut Caller<'_, GuestState>, below: &Below, fd: i32) -> wasmtime::Result<i32> {
    let table = &mut caller.data_mut().fds;
    let slot = table.slot(fd);
    if slot == Slot::Free {
        return Ok(BADF);
    }
    table.slots[fd as u32 as usize] = Slot::Free;
    close_slot(caller, below, slot)
}

/// Forgets one name of `slot`, closing its WASI descriptor when it was the last.
fn close_slot(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    slot: Slot,
) -> wasmtime::Result<i32> {
    let table = &mut caller.data_mut().fds;
    match slot {
        Slot::Wasi(inner) if table.release(slot) => {
            table.paths.remove(&inner);
            if let Some(closed) = table.stdio_closed.get_mut(inner as usize) {
                *closed = true;
            }
            below.fd_close.call(&mut *caller, (inner as i32,))
        }
        Slot::Wasi(_) => Ok(SUCCESS),
        _ => {
            table.release(slot);
            Ok(SUCCESS)
        }
    }
}

/// `dup2`: makes `to` name what `slot` names (already counted), closing what `to` named.
fn place(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    to: u32,
    slot: Slot,
) -> wasmtime::Result<i32> {
    let old = caller.data_mut().fds.put(to as usize, slot);
    // As dup2, an error closing what `to` named is not reported.
    close_slot(caller, below, old)?;
    Ok(SUCCESS)
}

/// Whether the guest path (`ptr`, `len`) is `.`.
fn is_dot(caller: &Caller<'_, GuestState>, below: &Below, ptr: i32, len: i32) -> bool {
    len == 1 && read_bytes(below.memory.data(caller), ptr, 1) == Some(b".")
}

/// `dup`: a new guest number, the lowest free, for what `slot` names, written at `out`.
fn duplicate(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    slot: Slot,
    out: i32,
) -> wasmtime::Result<i32> {
    if read_u32(below.memory.data(&*caller), out).is_none() {
        return Ok(FAULT);
    }
    let table = &mut caller.data_mut().fds;
    table.share(slot);
    match table.insert(slot) {
        Some(fd) => answer(caller, below, out, &fd.to_le_bytes()),
        None => {
            close_slot(caller, below, slot)?;
            Ok(MFILE)
        }
    }
}

/// A WASI descriptor made by the layer below, at `out` in memory: given the lowest free
/// guest number, which replaces it at `out`.
fn adopt(caller: &mut Caller<'_, GuestState>, below: &Below, out: i32) -> wasmtime::Result<i32> {
    let Some(inner) = read_u32(below.memory.data(&*caller), out) else {
        return Ok(FAULT);
    };
    match caller.data_mut().fds.insert(Slot::Wasi(inner)) {
        Some(fd) => answer(caller, below, out, &fd.to_le_bytes()),
        None => {
            below.fd_close.call(&mut *caller, (inner as i32,))?;
            Ok(MFILE)
        }
    }
}

fn shadow_close(linker: &mut Linker<GuestState>, lower: &Arc<Lower>) -> wasmtime::Result<()> {
    let lower = lower.clone();
    linker.func_wrap(
        WASI,
        "fd_close",
        move |mut caller: Caller<'_, GuestState>, fd: i32| -> wasmtime::Result<i32> {
            let below = below(&mut caller, &lower)?;
            close(&mut caller, &below, fd)
        },
    )?;
    Ok(())
}

fn shadow_open(linker: &mut Linker<GuestState>, lower: &Arc<Lower>) -> wasmtime::Result<()> {
    let lower = lower.clone();
    linker.func_wrap(
        WASI,
        "path_open",
        move |mut caller: Caller<'_, GuestState>,
              dirfd: i32,
              dirflags: i32,
              path: i32,
              len: i32,
              oflags: i32,
              base: i64,
              inheriting: i64,
              fdflags: i32,
              out: i32|
              -> wasmtime::Result<i32> {
            let slot = caller.data().fds.slot(dirfd);
            let below = below(&mut caller, &lower)?;
            match slot {
                Slot::Wasi(inner) => {
                    let args = (
                        inner as i32,
                        dirflags,
                        path,
                        len,
                        oflags,
                        base,
                        inheriting,
                        fdflags,
                        out,
                    );
                    let errno = below.path_open.call(&mut caller, args)?;
                    match errno {
                        SUCCESS => {
                            record_path(&mut caller, &below, inner, path, len, out);
                            adopt(&mut caller, &below, out)
                        }
                        // `.` of something that is no directory: a dup (see the top).
                        NOTDIR | BADF
                            if oflags & OFLAGS_DIRECTORY == 0
                                && is_dot(&caller, &below, path, len) =>
                        {
                            duplicate(&mut caller, &below, slot, out)
                        }
                        errno => Ok(errno),
                    }
                }
                Slot::Free => Ok(BADF),
                device @ (Slot::Device(_) | Slot::Object(_)) => {
                    if oflags & OFLAGS_DIRECTORY == 0 && is_dot(&caller, &below, path, len) {
                        duplicate(&mut caller, &below, device, out)
                    } else {
                        Ok(NOTDIR)
                    }
                }
                dir @ Slot::Dir { .. } => {
                    let creat = oflags & OFLAGS_CREAT != 0;
                    let node = match resolve_at(&caller, &below, dir, path, len) {
                        Ok(node) => node,
                        Err(NOENT) if creat => return Ok(ROFS),
                        Err(errno) => return Ok(errno),
                    };
                    if creat && oflags & OFLAGS_EXCL != 0 {
                        return Ok(EXIST);
                    }
                    if oflags & OFLAGS_DIRECTORY != 0 && matches!(node, Node::Device(_)) {
                        return Ok(NOTDIR);
                    }
                    if read_u32(below.memory.data(&caller), out).is_none() {
                        return Ok(FAULT);
                    }
                    let table = &mut caller.data_mut().fds;
                    let opened = match open_node(table, node) {
                        Ok(slot) => slot,
                        Err(errno) => return Ok(errno),
                    };
                    match table.insert(opened) {
                        Some(fd) => answer(&mut caller, &below, out, &fd.to_le_bytes()),
                        None => {
                            close_slot(&mut caller, &below, opened)?;
                            Ok(MFILE)
                        }
                    }
                }
            }
        },
    )?;
    Ok(())
}

fn shadow_accept(linker: &mut Linker<GuestState>, lower: &Arc<Lower>) -> wasmtime::Result<()> {
    let lower = lower.clone();
    linker.func_wrap(
        WASI,
        "sock_accept",
        move |mut caller: Caller<'_, GuestState>,
              fd: i32,
              flags: i32,
              out: i32|
              -> wasmtime::Result<i32> {
            let slot = caller.data().fds.slot(fd);
            let below = below(&mut caller, &lower)?;
            match slot {
                Slot::Wasi(inner) => {
                    let errno = below
                        .sock_accept
                        .call(&mut caller, (inner as i32, flags, out))?;
                    if errno != SUCCESS {
                        return Ok(errno);
                    }
                    adopt(&mut caller, &below, out)
                }
                Slot::Free => Ok(BADF),
                _ => Ok(NOTSOCK),
            }
        },
    )?;
    Ok(())
}

fn shadow_renumber(linker: &mut Linker<GuestState>, lower: &Arc<Lower>) -> wasmtime::Result<()> {
    let lower = lower.clone();
    linker.func_wrap(
        WASI,
        "fd_renumber",
        move |mut caller: Caller<'_, GuestState>, from: i32, to: i32| -> wasmtime::Result<i32> {
            let below = below(&mut caller, &lower)?;
            let table = &caller.data().fds;
            let slot = table.slot(from);
            // As WASI's: both must be open.
            if slot == Slot::Free || table.slot(to) == Slot::Free {
                return Ok(BADF);
            }
            if from == to {
                return Ok(SUCCESS);
            }
            caller.data_mut().fds.slots[from as u32 as usize] = Slot::Free;
            place(&mut caller, &below, to as u32, slot)
        },
    )?;
    Ok(())
}

fn shadow_link(linker: &mut Linker<GuestState>, lower: &Arc<Lower>) -> wasmtime::Result<()> {
    let lower = lower.clone();
    linker.func_wrap(
        WASI,
        "path_link",
        move |mut caller: Caller<'_, GuestState>,
              old_fd: i32,
              flags: i32,
              old: i32,
              old_len: i32,
              new_fd: i32,
              new: i32,
              new_len: i32|
              -> wasmtime::Result<i32> {
            let table = &caller.data().fds;
            let (old_slot, new_slot) = (table.slot(old_fd), table.slot(new_fd));
            let below = below(&mut caller, &lower)?;
            if old_slot != Slot::Free
                && matches!(new_slot, Slot::Dir { fd_dir: false, .. })
                && is_dot(&caller, &below, old, old_len)
                && let Ok(Node::Process(ProcNode::Stage(n))) =
                    resolve_at(&caller, &below, new_slot, new, new_len)
            {
                // `.` of a descriptor linked to `/dev/process/stdin|stdout|stderr`: the
                // descriptor is what the next spawn request's `staged` stream names.
                let table = &mut caller.data_mut().fds;
                table.share(old_slot);
                let previous = table.staged[n as usize].replace(old_slot);
                if let Some(previous) = previous {
                    close_slot(&mut caller, &below, previous)?;
                }
                return Ok(SUCCESS);
            }
            if old_slot != Slot::Free
                && is_dot(&caller, &below, old, old_len)
                && is_dot(&caller, &below, new, new_len)
            {
                // `.` of one descriptor linked to `.` of another: dup2 (see the top).
                if old_fd == new_fd {
                    return Ok(SUCCESS);
                }
                if new_fd as u32 as usize >= MAX_FDS {
                    return Ok(BADF);
                }
                caller.data_mut().fds.share(old_slot);
                return place(&mut caller, &below, new_fd as u32, old_slot);
            }
            match (old_slot, new_slot) {
                (Slot::Free, _) | (_, Slot::Free) => Ok(BADF),
                (Slot::Wasi(a), Slot::Wasi(b)) => below.path_link.call(
                    &mut caller,
                    (a as i32, flags, old, old_len, b as i32, new, new_len),
                ),
                (old_dir @ Slot::Dir { .. }, new_dir @ Slot::Dir { .. }) => dup2(
                    &mut caller,
                    &below,
                    [old_dir, new_dir],
                    [old, old_len, new, new_len],
                ),
                (Slot::Device(_), _) | (_, Slot::Device(_)) => Ok(NOTDIR),
                _ => Ok(XDEV),
            }
        },
    )?;
    Ok(())
}

/// `link /dev/fd/N /dev/fd/M` (or `/dev/null` … as the source): `dup2(N, M)`.
fn dup2(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    dirs: [Slot; 2],
    [old, old_len, new, new_len]: [i32; 4],
) -> wasmtime::Result<i32> {
    let source = match resolve_at(caller, below, dirs[0], old, old_len) {
        Ok(node) => node,
        Err(errno) => return Ok(errno),
    };
    let target = match resolve_at(caller, below, dirs[1], new, new_len) {
        Ok(Node::Fd(m)) => m,
        Ok(_) => return Ok(EXIST),
        // Only descriptors can be made in /dev.
        Err(NOENT) => return Ok(ROFS),
        Err(errno) => return Ok(errno),
    };
    if target as usize >= MAX_FDS {
        return Ok(BADF);
    }
    if let Node::Fd(n) = source {
        let slot = caller.data().fds.slot(n as i32);
        if slot == Slot::Free {
            return Ok(BADF);
        }
        if n == target {
            return Ok(SUCCESS);
        }
    }
    let slot = match open_node(&mut caller.data_mut().fds, source) {
        Ok(slot) => slot,
        Err(errno) => return Ok(errno),
    };
    place(caller, below, target, slot)
}

fn shadow_rename(linker: &mut Linker<GuestState>, lower: &Arc<Lower>) -> wasmtime::Result<()> {
    let lower = lower.clone();
    linker.func_wrap(
        WASI,
        "path_rename",
        move |mut caller: Caller<'_, GuestState>,
              fd: i32,
              old: i32,
              old_len: i32,
              new_fd: i32,
              new: i32,
              new_len: i32|
              -> wasmtime::Result<i32> {
            let table = &caller.data().fds;
            let (a, b) = (table.slot(fd), table.slot(new_fd));
            let below = below(&mut caller, &lower)?;
            match (a, b) {
                (Slot::Free, _) | (_, Slot::Free) => Ok(BADF),
                (Slot::Wasi(a), Slot::Wasi(b)) => below.path_rename.call(
                    &mut caller,
                    (a as i32, old, old_len, b as i32, new, new_len),
                ),
                (Slot::Device(_), _) | (_, Slot::Device(_)) => Ok(NOTDIR),
                (Slot::Dir { .. }, Slot::Dir { .. }) => Ok(ROFS),
                _ => Ok(XDEV),
            }
        },
    )?;
    Ok(())
}

fn shadow_symlink(linker: &mut Linker<GuestState>, lower: &Arc<Lower>) -> wasmtime::Result<()> {
    let lower = lower.clone();
    linker.func_wrap(
        WASI,
        "path_symlink",
        move |mut caller: Caller<'_, GuestState>,
              old: i32,
              old_len: i32,
              fd: i32,
              new: i32,
              new_len: i32|
              -> wasmtime::Result<i32> {
            let slot = caller.data().fds.slot(fd);
            let below = below(&mut caller, &lower)?;
            match slot {
                Slot::Wasi(inner) => below
                    .path_symlink
                    .call(&mut caller, (old, old_len, inner as i32, new, new_len)),
                Slot::Free => Ok(BADF),
                Slot::Device(_) | Slot::Object(_) => Ok(NOTDIR),
                dir @ Slot::Dir { .. } => {
                    Ok(match resolve_at(&caller, &below, dir, new, new_len) {
                        Ok(_) => EXIST,
                        Err(NOENT) => ROFS,
                        Err(errno) => errno,
                    })
                }
            }
        },
    )?;
    Ok(())
}

const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;

/// `poll_oneoff`: descriptors in the subscriptions are translated for the layer below (and
/// put back after); one on a device or a free number is answered at once.
fn shadow_poll(linker: &mut Linker<GuestState>, lower: &Arc<Lower>) -> wasmtime::Result<()> {
    let lower = lower.clone();
    linker.func_wrap(
        WASI,
        "poll_oneoff",
        move |mut caller: Caller<'_, GuestState>,
              subs: i32,
              events: i32,
              nsubs: i32,
              nevents: i32|
              -> wasmtime::Result<i32> {
            let below = below(&mut caller, &lower)?;
            let n = nsubs as u32 as usize;
            let Some(bytes) = n
                .checked_mul(SUBSCRIPTION_SIZE)
                .and_then(|len| read_bytes(below.memory.data(&caller), subs, len))
            else {
                return below
                    .poll_oneoff
                    .call(&mut caller, (subs, events, nsubs, nevents));
            };
            // (offset of the fd field, guest fd, WASI fd) of each translated subscription;
            // the events of those answered here.
            let mut rewrites: Vec<(usize, u32, u32)> = Vec::new();
            let mut ready: Vec<[u8; EVENT_SIZE]> = Vec::new();
            let table = &caller.data().fds;
            for (i, sub) in bytes.chunks_exact(SUBSCRIPTION_SIZE).enumerate() {
                let kind = sub[8];
                if kind != EVENTTYPE_FD_READ && kind != EVENTTYPE_FD_WRITE {
                    continue;
                }
                let fd = u32::from_le_bytes(sub[16..20].try_into().expect("4 bytes"));
                let (errno, nbytes) = match table.slot(fd as i32) {
                    Slot::Wasi(inner) => {
                        if inner != fd {
                            rewrites.push((i * SUBSCRIPTION_SIZE + 16, fd, inner));
                        }
                        continue;
                    }
                    Slot::Free => (BADF as u16, 0u64),
                    Slot::Device(Device::Null) if kind == EVENTTYPE_FD_READ => (0, 0),
                    _ => (0, DEVICE_READ_CHUNK as u64),
                };
                let mut event = [0u8; EVENT_SIZE];
                event[..8].copy_from_slice(&sub[..8]);
                event[8..10].copy_from_slice(&errno.to_le_bytes());
                event[10] = kind;
                event[16..24].copy_from_slice(&nbytes.to_le_bytes());
                ready.push(event);
            }
            if !ready.is_empty() {
                let flat: Vec<u8> = ready.concat();
                let data = below.memory.data_mut(&mut caller);
                if !write_bytes(data, events, &flat)
                    || !write_bytes(data, nevents, &(ready.len() as u32).to_le_bytes())
                {
                    return Ok(FAULT);
                }
                return Ok(SUCCESS);
            }
            let base = subs as u32 as usize;
            let put = |caller: &mut Caller<'_, GuestState>, back: bool| {
                let data = below.memory.data_mut(caller);
                for &(at, fd, inner) in &rewrites {
                    let value = if back { fd } else { inner };
                    data[base + at..base + at + 4].copy_from_slice(&value.to_le_bytes());
                }
            };
            put(&mut caller, false);
            let result = below
                .poll_oneoff
                .call(&mut caller, (subs, events, nsubs, nevents));
            put(&mut caller, true);
            result
        },
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// `/dev/process` (see `process`): reads and writes of its objects, and the host side of the
// descriptors a child inherits.

/// Remembers the guest path of the WASI descriptor `path_open` wrote at `out`, opened at
/// `path` (`ptr`, `len`) from the directory WASI descriptor `dir`.
fn record_path(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    dir: u32,
    ptr: i32,
    len: i32,
    out: i32,
) {
    let data = below.memory.data(&*caller);
    let (Some(inner), Ok(rel)) = (read_u32(data, out), guest_path(data, ptr, len)) else {
        return;
    };
    let table = &mut caller.data_mut().fds;
    if let Some(base) = table.paths.get(&dir) {
        let joined = join_guest_path(base, &String::from_utf8_lossy(&rel));
        table.paths.insert(inner, joined);
    }
}

/// `rel` from the absolute guest path `base`, with `.` and `..` taken away.
fn join_guest_path(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let whole = if rel.starts_with('/') {
        rel.to_owned()
    } else {
        format!("{base}/{rel}")
    };
    for part in whole.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The total length of the buffers of an iovec array.
fn iovec_room(vecs: &[(u32, u32)]) -> usize {
    vecs.iter().map(|&(_, len)| len as usize).sum()
}

/// Copies `bytes` into the iovecs and writes the count at `out`.
fn scatter(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    vecs: &[(u32, u32)],
    bytes: &[u8],
    out: i32,
) -> i32 {
    let data = below.memory.data_mut(caller);
    let mut at = 0;
    for &(ptr, len) in vecs {
        if at == bytes.len() {
            break;
        }
        let n = (len as usize).min(bytes.len() - at);
        if !write_bytes(data, ptr as i32, &bytes[at..at + n]) {
            return FAULT;
        }
        at += n;
    }
    if write_bytes(data, out, &(at as u32).to_le_bytes()) {
        SUCCESS
    } else {
        FAULT
    }
}

fn object_read(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    id: u32,
    iovs: i32,
    count: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    let Some(vecs) = iovecs(below.memory.data(&*caller), iovs, count) else {
        return Ok(FAULT);
    };
    match caller.data().fds.procs.pending_spawn(id) {
        Some(Ok(request)) => {
            let errno = spawn(caller, below, id, request, &vecs)?;
            if errno != SUCCESS {
                return Ok(errno);
            }
        }
        Some(Err(errno)) => return Ok(errno),
        None => {}
    }
    let room = iovec_room(&vecs);
    match caller.data_mut().fds.procs.read(id, room) {
        Ok(bytes) => Ok(scatter(caller, below, &vecs, &bytes, nread)),
        Err(ReadError::Errno(errno)) => Ok(errno),
        Err(ReadError::Stop(kind)) => Err(Interrupted(kind).into()),
    }
}

fn object_write(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    id: u32,
    iovs: i32,
    count: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    let data = below.memory.data(&*caller);
    let Some(vecs) = iovecs(data, iovs, count) else {
        return Ok(FAULT);
    };
    let mut bytes = Vec::with_capacity(iovec_room(&vecs).min(1 << 20));
    for (ptr, len) in vecs {
        match read_bytes(data, ptr as i32, len as usize) {
            Some(chunk) => bytes.extend_from_slice(chunk),
            None => return Ok(FAULT),
        }
    }
    match caller.data_mut().fds.procs.write(id, &bytes) {
        Ok(n) => answer(caller, below, nwritten, &(n as u32).to_le_bytes()),
        Err(ReadError::Errno(errno)) => Ok(errno),
        Err(ReadError::Stop(kind)) => Err(Interrupted(kind).into()),
    }
}

/// Starts the child that spawn object `id` asks for: SUCCESS, or the errno its read fails
/// with. `vecs` (the read's buffers) serve as scratch memory for asking WASI where a file
/// to inherit stands.
fn spawn(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    id: u32,
    mut request: process::Request,
    vecs: &[(u32, u32)],
) -> wasmtime::Result<i32> {
    use process::StreamSpec;
    let scratch = vecs
        .first()
        .filter(|&&(_, len)| len >= 24)
        .map(|&(ptr, _)| ptr as i32);
    let mut streams = Vec::with_capacity(3);
    for (n, spec) in request.stdio.iter().enumerate() {
        let input = n == 0;
        streams.push(match spec {
            StreamSpec::Pipe => ChildStream::Pipe,
            StreamSpec::Null | StreamSpec::Stdout => null_stream(input),
            StreamSpec::Fd(fd) => {
                let slot = caller.data().fds.slot(*fd);
                match child_stream(caller, below, slot, input, scratch)? {
                    Ok(stream) => stream,
                    Err(errno) => return Ok(errno),
                }
            }
            StreamSpec::Staged => {
                let Some(slot) = caller.data_mut().fds.staged[n].take() else {
                    return Ok(BADF);
                };
                let stream = child_stream(caller, below, slot, input, scratch)?;
                close_slot(caller, below, slot)?;
                match stream {
                    Ok(stream) => stream,
                    Err(errno) => return Ok(errno),
                }
            }
        });
    }
    let stderr_is_stdout = request.stdio[2] == StreamSpec::Stdout;
    let streams: [ChildStream; 3] = match streams.try_into() {
        Ok(streams) => streams,
        Err(_) => return Ok(INVAL),
    };
    let table = &mut caller.data_mut().fds;
    if !request.cwd.starts_with('/') {
        let base = table
            .inherited
            .as_ref()
            .map(|i| i.cwd.as_str())
            .unwrap_or("/");
        request.cwd = join_guest_path(base, &request.cwd);
    }
    Ok(
        match table.procs.spawn(id, request, streams, stderr_is_stdout) {
            Ok(()) => SUCCESS,
            Err(errno) => errno,
        },
    )
}

fn null_stream(input: bool) -> ChildStream {
    if input {
        ChildStream::Input(Box::new(std::io::empty()))
    } else {
        ChildStream::Output(Box::new(std::io::sink()))
    }
}

/// The host side of what the guest's descriptor `slot` names, for a child's stdin (`input`) or an
/// output: its own stdio, a pipe of the device, `/dev/null`, or a file it opened (reopened
/// through the mount's capability, at the guest's offset or appending as it does).
fn child_stream(
    caller: &mut Caller<'_, GuestState>,
    below: &Below,
    slot: Slot,
    input: bool,
    scratch: Option<i32>,
) -> wasmtime::Result<Result<ChildStream, i32>> {
    let table = &caller.data().fds;
    let inner = match slot {
        Slot::Wasi(inner) => inner,
        Slot::Device(_) => return Ok(Ok(null_stream(input))),
        Slot::Object(id) => {
            return Ok(match table.procs.stream_of(id) {
                Some(ChildStream::Input(s)) if input => Ok(ChildStream::Input(s)),
                Some(ChildStream::Output(s)) if !input => Ok(ChildStream::Output(s)),
                _ => Err(BADF),
            });
        }
        Slot::Free | Slot::Dir { .. } => return Ok(Err(BADF)),
    };
    let Some(inherited) = &table.inherited else {
        return Ok(Err(BADF));
    };
    let Some(path) = table.paths.get(&inner).cloned() else {
        if inner < 3 && !table.stdio_closed[inner as usize] {
            let (stdin, stdout, stderr) = &inherited.stdio;
            return Ok(match (inner, input) {
                (0, true) => Ok(ChildStream::Input(Box::new(stdin.clone()))),
                (1, false) => Ok(ChildStream::Output(Box::new(stdout.clone()))),
                (2, false) => Ok(ChildStream::Output(Box::new(stderr.clone()))),
                _ => Err(BADF),
            });
        }
        return Ok(Err(BADF));
    };
    // Where the guest stands in the file, and whether it appends.
    let (mut offset, mut append) = (0u64, false);
    if let Some(scratch) = scratch {
        if below
            .fd_fdstat_get
            .call(&mut *caller, (inner as i32, scratch))?
            == SUCCESS
        {
            let data = below.memory.data(&*caller);
            append = read_bytes(data, scratch + 2, 2).is_some_and(|f| f[0] & 1 != 0);
        }
        if below.fd_tell.call(&mut *caller, (inner as i32, scratch))? == SUCCESS {
            let data = below.memory.data(&*caller);
            offset = read_bytes(data, scratch, 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .unwrap_or(0);
        }
    }
    let Some(inherited) = &caller.data().fds.inherited else {
        return Ok(Err(BADF));
    };
    Ok(reopen(&inherited.layout, &path, input, append, offset))
}

/// Opens the file at guest `path` again for a child, through its mount's directory.
fn reopen(
    layout: &Layout,
    path: &str,
    input: bool,
    append: bool,
    offset: u64,
) -> Result<ChildStream, i32> {
    use std::io::{Seek, SeekFrom};
    let (mount, rel) = layout.resolve(path).ok_or(BADF)?;
    if !input && !mount.writable {
        return Err(BADF);
    }
    let dir = cap_std::fs::Dir::open_ambient_dir(&mount.host, cap_std::ambient_authority())
        .map_err(|_| BADF)?;
    let mut options = cap_std::fs::OpenOptions::new();
    if input {
        options.read(true);
    } else if append {
        options.append(true);
    } else {
        options.write(true);
    }
    let rel = if rel.is_empty() { "." } else { rel };
    let file = dir.open_with(rel, &options).map_err(|_| BADF)?.into_std();
    let mut file = file;
    if !append && offset > 0 && file.seek(SeekFrom::Start(offset)).is_err() {
        return Err(BADF);
    }
    Ok(if input {
        ChildStream::Input(Box::new(file))
    } else {
        ChildStream::Output(Box::new(file))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_dev_resolve_to_the_shims_only() {
        assert_eq!(resolve(false, b"null"), Ok(Node::Device(Device::Null)));
        assert_eq!(resolve(false, b"./zero"), Ok(Node::Device(Device::Zero)));
        assert_eq!(resolve(false, b"stdout"), Ok(Node::Fd(1)));
        assert_eq!(resolve(false, b"fd/12"), Ok(Node::Fd(12)));
        assert_eq!(
            resolve(false, b"fd/../null"),
            Ok(Node::Device(Device::Null))
        );
        assert_eq!(resolve(true, b"3"), Ok(Node::Fd(3)));
        assert_eq!(resolve(false, b""), Ok(Node::Dir { fd_dir: false }));
        assert_eq!(resolve(false, b"fd/"), Ok(Node::Dir { fd_dir: true }));
        for missing in [
            &b"sda"[..],
            b"tty",
            b"shm",
            b"fd/x",
            b"fd/01",
            b"fd/-1",
            b"fd/+1",
        ] {
            assert_eq!(resolve(false, missing), Err(NOENT), "{missing:?}");
        }
        assert_eq!(resolve(false, b".."), Err(NOTCAPABLE));
        assert_eq!(resolve(false, b"../etc/passwd"), Err(NOTCAPABLE));
        assert_eq!(resolve(false, b"null/"), Err(NOTDIR));
        assert_eq!(resolve(false, b"null/x"), Err(NOTDIR));
    }

    #[test]
    fn numbers_are_the_lowest_free_and_shares_are_counted() {
        let mut table = FdTable::new(vec!["/a".into(), "/b".into()]);
        // 0..=2 stdio, 3 and 4 preopens, 5 is /dev.
        assert_eq!(table.insert(Slot::Device(Device::Null)), Some(6));
        table.slots[1] = Slot::Free;
        assert_eq!(table.insert(Slot::Wasi(9)), Some(1));
        table.share(Slot::Wasi(9));
        table.share(Slot::Wasi(9));
        assert!(!table.release(Slot::Wasi(9)));
        assert!(!table.release(Slot::Wasi(9)));
        assert!(table.release(Slot::Wasi(9)));
        assert!(!table.release(Slot::Device(Device::Zero)));
    }

    #[test]
    fn the_forwarder_is_valid_webassembly() {
        wat::parse_str(forwarder_wat()).expect("forwarder parses");
    }
}
