fn main() -> std::process::ExitCode {
    // wasmtime-wasi runs a guest's file and stream calls through a tokio runtime of its own,
    // with a worker thread per core unless told otherwise. The calls are driven (`block_on`)
    // on the guest's own thread, so one worker is all it needs; starting the others was
    // ~0.7 ms of the wall time of every command (a `python -c pass` is 10). wasmbuild's own
    // runtimes (the console, S3, the package index) name their worker counts.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        // SAFETY: nothing else runs yet (no thread has been started), so nothing reads the
        // environment while it is written.
        unsafe { std::env::set_var("TOKIO_WORKER_THREADS", "1") };
    }
    wasmbuild::startup::mark(wasmbuild::startup::MAIN);
    let status = wasmbuild::cli::main();
    wasmbuild::startup::mark("done");
    status
}
