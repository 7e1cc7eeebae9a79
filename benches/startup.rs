//! Start-up cost of a sandboxed command against native fork/exec, side by side in one run:
//! `true` from the base image inside one process vs spawning `/bin/true`, and
//! `python -c pass` from the python image vs native `python3 -c pass`.
//!
//! Run with `cargo bench --bench startup` (needs the base and python bundles in the store:
//! `wasmbuild runtime build base`, `wasmbuild runtime build python`).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmbuild::image::{Image, ImageRunner, ProgramIo};
use wasmbuild::runtime::Runtimes;
use wasmbuild::sandbox::{Layout, Sandbox, SandboxConfig};
use wasmbuild::store::LocalStore;

fn mean(mut run: impl FnMut(), iterations: u32) -> Duration {
    run(); // warm-up
    let started = Instant::now();
    for _ in 0..iterations {
        run();
    }
    started.elapsed() / iterations
}

fn native(program: &str, args: &[&str], iterations: u32) -> Option<Duration> {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    Some(mean(
        || {
            Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .status()
                .expect("native program runs");
        },
        iterations,
    ))
}

fn sandboxed(runner: &ImageRunner, argv: &[&str], iterations: u32) -> Duration {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let env = vec![("PWD".to_owned(), "/codebuild/output/src".to_owned())];
    mean(
        || {
            let io = ProgramIo {
                stdin: Box::new(std::io::empty()),
                stdout: Box::new(std::io::sink()),
                stderr: Box::new(std::io::stderr()),
                terminal: [false; 3],
                spawner: None,
                kill: None,
                ends_process: false,
            };
            runner
                .run_command(argv.clone(), env.clone(), "/codebuild/output/src", io)
                .expect("sandboxed program runs");
        },
        iterations,
    )
}

fn runner(
    runtimes: &Runtimes,
    sandbox: &Arc<Sandbox>,
    image: &str,
    scratch: &std::path::Path,
) -> Option<ImageRunner> {
    let recipes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes");
    let image = match Image::open(runtimes, image, &recipes) {
        Ok(image) => image,
        Err(e) => {
            eprintln!("skipping image {image}: {e}");
            return None;
        }
    };
    let layout = Layout::build(
        scratch.join("src"),
        scratch.join("tmp"),
        scratch.join("root"),
    );
    Some(ImageRunner::new(sandbox.clone(), Arc::new(image), layout))
}

fn row(name: &str, sandboxed: Duration, baseline_name: &str, baseline: Option<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    match baseline {
        Some(b) => println!(
            "{name:<28} {:>9.3} ms   {baseline_name:<26} {:>9.3} ms   ratio {:>5.2}x",
            ms(sandboxed),
            ms(b),
            ms(sandboxed) / ms(b)
        ),
        None => println!(
            "{name:<28} {:>9.3} ms   {baseline_name:<26} (not available)",
            ms(sandboxed)
        ),
    }
}

fn main() {
    let store = LocalStore::open(LocalStore::default_root()).expect("open the store");
    let sandbox = Arc::new(
        Sandbox::new(SandboxConfig {
            code_cache_dir: Some(store.local_dir("compiled")),
            ..SandboxConfig::default()
        })
        .expect("sandbox"),
    );
    let runtimes = Runtimes::new(store);
    let scratch = tempfile::tempdir().expect("scratch dir");
    for dir in ["src", "tmp", "root"] {
        std::fs::create_dir(scratch.path().join(dir)).expect("scratch dir");
    }
    println!(
        "{:<28} {:>12}   {:<26} {:>12}",
        "sandboxed (warm, in-process)", "per command", "native baseline", "per command"
    );
    if let Some(base) = runner(&runtimes, &sandbox, "base", scratch.path()) {
        let wasm = sandboxed(&base, &["true"], 500);
        row(
            "true (base image)",
            wasm,
            "/bin/true (fork/exec)",
            native("/bin/true", &[], 500),
        );
    }
    if let Some(python) = runner(&runtimes, &sandbox, "python", scratch.path()) {
        let wasm = sandboxed(&python, &["python", "-c", "pass"], 20);
        row(
            "python -c pass",
            wasm,
            "python3 -c pass (native)",
            native("python3", &["-c", "pass"], 20),
        );
    }
}
