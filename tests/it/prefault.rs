//! Pages a guest writes, recorded by the sandbox and copied in before a later run
//! (`PageRuns`), driven through the library on a module whose memory starts as a data
//! image mapped copy-on-write, as a snapshot's does.

use std::sync::Arc;

use wasmbuild::sandbox::{GuestCommand, GuestExit, PageRuns, Sandbox, SandboxConfig};

/// Two wasm pages (32 pages of 4 KiB), byte `i` of the image holding `i / 4096 + 1`.
/// `_start` writes into 4 KiB pages 3, 4 and 20, reads page 10, and exits with the byte it
/// finds at the start of page 20 plus the one it finds in page 3, both read after its writes.
fn module() -> Vec<u8> {
    let image: String = (0..2 * 65536)
        .map(|i| format!("\\{:02x}", i / 4096 + 1))
        .collect();
    wat::parse_str(format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 2)
            (data (i32.const 0) "{image}")
            (func (export "_start")
                (i32.store8 (i32.const 12295) (i32.const 0))
                (i32.store8 (i32.const 16384) (i32.const 0))
                (i32.store8 (i32.const 81921) (i32.const 0))
                (drop (i32.load8_u (i32.const 40960)))
                (call $exit (i32.add (i32.load8_u (i32.const 81920))
                                     (i32.load8_u (i32.const 12288))))))"#
    ))
    .unwrap()
}

fn command(prefault: Option<Arc<PageRuns>>) -> GuestCommand {
    GuestCommand {
        prefault,
        ..GuestCommand::bare(vec!["pages".into()])
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_pages_a_run_writes_are_recorded_and_copied_in_unchanged_before_the_next() {
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let module = sandbox.load_bytes("pages", &module()).unwrap();

    let (exit, written) = sandbox
        .run_recording_writes(&module, command(None))
        .unwrap();
    // Page 20 starts with 21, page 3 with 4: what the image holds.
    assert_eq!(exit, GuestExit::Exited(25));
    assert_eq!(written.to_string(), "3+2 20+1");

    // Copied in before the run: the same pages become the run's own (nothing read-only is
    // copied), and what they hold is the image's.
    let runs = Arc::new(written);
    let (exit, again) = sandbox
        .run_recording_writes(&module, command(Some(runs.clone())))
        .unwrap();
    assert_eq!(exit, GuestExit::Exited(25));
    assert_eq!(again, *runs);

    // Runs past the end of the memory are left alone.
    let beyond: Arc<PageRuns> = Arc::new("20+1 31+1 32+100".parse().unwrap());
    let (exit, written) = sandbox
        .run_recording_writes(&module, command(Some(beyond)))
        .unwrap();
    assert_eq!(exit, GuestExit::Exited(25));
    assert_eq!(written.to_string(), "3+2 20+1 31+1");
}
