//! Pre-initialised modules (wasmtime-wizer): a module's initialisation export run once,
//! and the memory and globals of that process written out as a new module, so a run of
//! it starts where the initialisation ended. The initialising process sees one directory
//! read-only (the bundle, where guests see it), the environment it is given, and nothing
//! else of the host; its clocks are virtual and its randomness seeded, so the same module
//! and files give the same snapshot bytes on every machine.

use std::path::Path;

use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Val};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

use super::determinism::Determinism;

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
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| format!("{e:#}"))?;
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
