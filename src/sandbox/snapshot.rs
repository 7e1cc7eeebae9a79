//! Pre-initialised modules (wasmtime-wizer): a module's initialisation export run once,
//! and the memory and globals of that process written out as a new module, so a run of
//! it starts where the initialisation ended. The initialising process sees one directory
//! read-only (the bundle, where guests see it), the environment it is given, and nothing
//! else of the host; its clocks are virtual, its randomness seeded, and the files it sees
//! have no times, devices or inode numbers, so the same module and files give the same
//! snapshot bytes on every machine (freed memory keeps what the initialisation read: a
//! file's `stat` too).

use std::path::Path;

use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Val};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

use super::determinism::{self, Determinism};

/// Runs `init` of `wasm` with `dir` mounted read-only at `guest_dir` and `env` as the
/// environment, and returns the snapshot of the process. Anything the initialisation
/// prints goes to wasmbuild's stderr.
pub fn make(
    wasm: &[u8],
    init: &str,
    dir: &Path,
    guest_dir: &str,
    env: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let mut wizer = Wizer::new();
    wizer.init_func(init);
    let (context, instrumented) = wizer
        .instrument(wasm)
        .map_err(|e| format!("cannot instrument the module: {e:#}"))?;
    let engine = Engine::new(&Config::new()).map_err(|e| e.to_string())?;
    let module = Module::new(&engine, &instrumented).map_err(|e| format!("{e:#}"))?;
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).map_err(|e| e.to_string())?;

    let mut wasi = WasiCtxBuilder::new();
    wasi.preopened_dir(dir, guest_dir, FsPerms::ReadOnly)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .inherit_stderr();
    for (key, value) in env {
        wasi.env(key, value);
    }
    Determinism {
        source_date_epoch: 0,
        seed: [0; 32],
    }
    .configure(&mut wasi);
    let mut store = Store::new(&engine, wasi.build_p1());
    let originals = Originals::default();
    let scrubbing = scrubbing(&linker, &originals).map_err(|e| format!("{e:#}"))?;
    let instance = scrubbing
        .instantiate(&mut store, &module)
        .map_err(|e| format!("{e:#}"))?;
    if let Some(memory) = instance.get_memory(&mut store, "memory") {
        originals
            .link(&engine, &linker, &mut store, memory)
            .map_err(|e| format!("{e:#}"))?;
    }
    instance
        .get_typed_func::<(), ()>(&mut store, init)
        .and_then(|f| f.call(&mut store, ()))
        .map_err(|e| match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => format!("{init} exited with status {}", exit.0),
            None => format!("{init} failed: {e:#}"),
        })?;
    let mut state = Process {
        store: &mut store,
        instance,
    };
    futures::executor::block_on(wizer.snapshot(&context, &mut state))
        .map_err(|e| format!("cannot write the snapshot: {e:#}"))
}

const WASI: &str = "wasi_snapshot_preview1";

/// Offsets in a preview1 `filestat` of what differs between two copies of the same files:
/// `dev`, `ino`, `atim`, `mtim`, `ctim`.
const FILESTAT_HOST_FIELDS: [usize; 5] = [0, 8, 40, 48, 56];

type FdStat = wasmtime::TypedFunc<(i32, i32), i32>;
type PathStat = wasmtime::TypedFunc<(i32, i32, i32, i32, i32), i32>;

/// The originals, through the interposer; set once the guest's memory exists.
#[derive(Default, Clone)]
struct Originals(std::sync::Arc<std::sync::OnceLock<(FdStat, PathStat)>>);

impl Originals {
    fn get(&self) -> wasmtime::Result<&(FdStat, PathStat)> {
        self.0
            .get()
            .ok_or_else(|| wasmtime::Error::msg("WASI stat called before the module was ready"))
    }

    /// Instantiates the interposer over `memory` and the unshadowed functions of `wasi`.
    fn link(
        &self,
        engine: &Engine,
        wasi: &Linker<WasiP1Ctx>,
        store: &mut Store<WasiP1Ctx>,
        memory: wasmtime::Memory,
    ) -> wasmtime::Result<()> {
        // The sandbox's interposer: WASI's originals called from a module that has the
        // guest's memory (a WASI function reads the memory of the instance that calls it).
        let module = Module::new(engine, determinism::INTERPOSER)?;
        let mut imports: Vec<wasmtime::Extern> = vec![memory.into()];
        for name in ["fd_readdir", "fd_filestat_get", "path_filestat_get"] {
            imports.push(wasi.get(&mut *store, WASI, name)?);
        }
        let instance = Instance::new(&mut *store, &module, &imports)?;
        let fd = instance.get_typed_func(&mut *store, "fd_filestat_get")?;
        let path = instance.get_typed_func(&mut *store, "path_filestat_get")?;
        let _ = self.0.set((fd, path));
        Ok(())
    }
}

/// `linker` with `fd_filestat_get` and `path_filestat_get` replaced by the originals
/// followed by zeroing what identifies the host's copy of a file.
fn scrubbing(
    wasi: &Linker<WasiP1Ctx>,
    originals: &Originals,
) -> wasmtime::Result<Linker<WasiP1Ctx>> {
    let mut linker = wasi.clone();
    linker.allow_shadowing(true);
    let fd_originals = originals.clone();
    linker.func_wrap(
        WASI,
        "fd_filestat_get",
        move |mut caller: wasmtime::Caller<'_, WasiP1Ctx>, fd: i32, buf: i32| {
            let errno = fd_originals.get()?.0.call(&mut caller, (fd, buf))?;
            scrub(&mut caller, errno, buf)
        },
    )?;
    let path_originals = originals.clone();
    linker.func_wrap(
        WASI,
        "path_filestat_get",
        move |mut caller: wasmtime::Caller<'_, WasiP1Ctx>,
              fd: i32,
              flags: i32,
              path: i32,
              len: i32,
              buf: i32| {
            let errno = path_originals
                .get()?
                .1
                .call(&mut caller, (fd, flags, path, len, buf))?;
            scrub(&mut caller, errno, buf)
        },
    )?;
    Ok(linker)
}

fn scrub(
    caller: &mut wasmtime::Caller<'_, WasiP1Ctx>,
    errno: i32,
    buf: i32,
) -> wasmtime::Result<i32> {
    if errno != 0 {
        return Ok(errno);
    }
    determinism::rewrite_filestat(caller, buf, &FILESTAT_HOST_FIELDS, |_| 0)?;
    Ok(0)
}

/// What wizer reads of the initialised process.
struct Process<'a> {
    store: &'a mut Store<WasiP1Ctx>,
    instance: Instance,
}

impl InstanceState for Process<'_> {
    async fn global_get(&mut self, name: &str, _type: ValType) -> SnapshotVal {
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("wizer names the module's exported globals");
        match global.get(&mut *self.store) {
            Val::I32(x) => SnapshotVal::I32(x),
            Val::I64(x) => SnapshotVal::I64(x),
            Val::F32(x) => SnapshotVal::F32(x),
            Val::F64(x) => SnapshotVal::F64(x),
            Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => panic!(
                "a global of type {:?} cannot be snapshotted",
                other.ty(&*self.store)
            ),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("wizer names the module's exported memories");
        contents(memory.data(&*self.store))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"
        (module
          (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (global $answer (mut i32) (i32.const 0))
          (func (export "wizer-initialize")
            (global.set $answer (i32.const 42))
            (drop (call $random (i32.const 100) (i32.const 16)))
            (i32.store (i32.const 200) (i32.const 7)))
          (func (export "answer") (result i32) (global.get $answer))
          (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))
    "#;

    #[test]
    fn a_snapshot_starts_where_initialisation_ended_and_is_the_same_every_time() {
        let wasm = wat::parse_str(MODULE).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let make = || make(&wasm, "wizer-initialize", dir.path(), "/opt", &[]).unwrap();
        let snapshot = make();
        // Randomness included: the initialising process's is seeded.
        assert_eq!(snapshot, make());

        let engine = Engine::default();
        let module = Module::new(&engine, &snapshot).unwrap();
        assert!(module.get_export("wizer-initialize").is_none());
        let mut store = Store::new(&engine, ());
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap(
                "wasi_snapshot_preview1",
                "random_get",
                |_: i32, _: i32| -> i32 { panic!("a snapshot's start does not initialise again") },
            )
            .unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let answer = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .unwrap();
        assert_eq!(answer.call(&mut store, ()).unwrap(), 42);
        let load = instance
            .get_typed_func::<i32, i32>(&mut store, "load")
            .unwrap();
        assert_eq!(load.call(&mut store, 200).unwrap(), 7);
        // Bytes the seeded generator wrote during initialisation are part of the memory.
        assert_ne!(load.call(&mut store, 100).unwrap(), 0);
    }

    #[test]
    fn a_module_without_the_init_export_or_one_that_fails_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let plain = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
        let error = make(&plain, "wizer-initialize", dir.path(), "/opt", &[]).unwrap_err();
        assert!(error.contains("wizer-initialize"), "{error}");
        let trapping = wat::parse_str(
            "(module (memory (export \"memory\") 1) (func (export \"wizer-initialize\") unreachable))",
        )
        .unwrap();
        let error = make(&trapping, "wizer-initialize", dir.path(), "/opt", &[]).unwrap_err();
        assert!(error.contains("failed"), "{error}");
    }
}
