//! Store benchmark: save and restore of a tree of 10,000 files / 200 MB (mixed sizes,
//! deterministic content, partly compressible), cold and unchanged, side by side with
//! `tar -cf - . | zstd -T0 -3` and `zstd -d | tar -x` on the same tree: each tar step runs
//! right before the matching step of the local store, run after run.
//!
//! `cargo bench --bench store` (set `STORE_BENCH_FILES` / `STORE_BENCH_MB` for another
//! size, `STORE_BENCH_RUNS` for more runs; the median is shown). When `s3s-fs` is installed,
//! the same is measured against it on a loopback port.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmbuild::store::{S3Config, Selection, Store, StoreOptions};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Content of `len` bytes: runs of source-like text (compressible) and random bytes.
fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 12] = [
        b"fn ",
        b"let ",
        b"mut ",
        b"self",
        b".iter()",
        b"=> ",
        b"{\n    ",
        b"}\n",
        b"Ok(",
        b"return ",
        b"0x7f",
        b"// note ",
    ];
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        if rng.below(3) == 0 {
            for _ in 0..32 {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            for _ in 0..64 {
                out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize]);
            }
        }
    }
    out.truncate(len);
    out
}

/// Writes `files` files of `total` bytes in all under `root`: most small, some medium,
/// a few large.
fn generate(root: &Path, files: usize, total: u64) {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    // Relative weights of sizes; scaled to `total` afterwards.
    let mut sizes: Vec<u64> = (0..files)
        .map(|i| match i % 100 {
            0 => 1_000_000 + rng.below(4_000_000), // 1 % large
            1..=10 => 50_000 + rng.below(200_000), // 10 % medium
            _ => 200 + rng.below(12_000),          // small
        })
        .collect();
    let sum: u64 = sizes.iter().sum();
    for s in &mut sizes {
        *s = (*s as u128 * total as u128 / sum as u128) as u64;
    }
    for (i, size) in sizes.into_iter().enumerate() {
        let dir = root.join(format!("d{:02}/s{:02}", i % 37, i % 23));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("file{i:05}.dat")),
            content(&mut rng, size as usize),
        )
        .unwrap();
    }
}

/// Flushes dirty pages, so that one measurement does not pay for another's writeback.
fn settle() {
    let _ = Command::new("sync").status();
}

fn shell(script: &str, dir: &Path) -> Duration {
    settle();
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("sh");
    assert!(status.success(), "{script} failed");
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

#[derive(Default)]
struct Figures {
    save_cold: Duration,
    save_unchanged: Duration,
    restore_cold: Duration,
    restore_unchanged: Duration,
}

/// The four measurements, in the order they run.
#[derive(Clone, Copy)]
enum Phase {
    SaveCold,
    SaveUnchanged,
    RestoreCold,
    RestoreUnchanged,
}

/// Times the baseline's step for `phase` of run `run`.
type Baseline<'a> = &'a dyn Fn(Phase, usize) -> Duration;

/// Runs the four measurements `runs` times against stores made by `open(run, reader)`
/// (`reader`: a fresh handle, for S3 with a fresh machine-local directory); with a
/// `baseline`, each of its steps runs right before the matching measurement, so that both
/// meet the machine in the same state. Each phase runs for every store before the next
/// starts, and nothing is deleted: on some file systems (ext4 without a journal) freshly
/// freed inodes slow down the next creations. Medians: ours, and the baseline's.
fn measure(
    label: &str,
    src: &Path,
    scratch: &Path,
    runs: usize,
    open: &dyn Fn(usize, bool) -> Store,
    baseline: Option<Baseline>,
) -> (Figures, Figures) {
    let mut theirs: [Vec<Duration>; 4] = Default::default();
    let mut alongside = |phase: Phase, run: usize| {
        if let Some(baseline) = baseline {
            theirs[phase as usize].push(baseline(phase, run));
        }
        settle();
        Instant::now()
    };
    let stores: Vec<Store> = (0..runs).map(|run| open(run, false)).collect();
    let mut digests = Vec::new();
    let mut save_cold = Vec::new();
    for (run, store) in stores.iter().enumerate() {
        let t = alongside(Phase::SaveCold, run);
        let (digest, stats) = store.save_tree(src, &Selection::all()).unwrap();
        save_cold.push(t.elapsed());
        assert!(stats.uploaded_blobs > 0);
        digests.push(digest);
    }
    let mut save_unchanged = Vec::new();
    for (run, (store, digest)) in stores.iter().zip(&digests).enumerate() {
        let t = alongside(Phase::SaveUnchanged, run);
        let (again, stats) = store.save_tree(src, &Selection::all()).unwrap();
        save_unchanged.push(t.elapsed());
        assert_eq!(&again, digest);
        assert_eq!(stats.uploaded_blobs, 0);
    }
    let readers: Vec<Store> = (0..runs).map(|run| open(run, true)).collect();
    let dests: Vec<PathBuf> = (0..runs)
        .map(|run| scratch.join(format!("restore-{label}-{run}")))
        .collect();
    let mut restore_cold = Vec::new();
    for (run, ((store, digest), dest)) in readers.iter().zip(&digests).zip(&dests).enumerate() {
        let t = alongside(Phase::RestoreCold, run);
        let stats = store.restore_tree(digest, dest).unwrap();
        restore_cold.push(t.elapsed());
        assert!(stats.corrupt.is_empty());
        assert!(stats.written_files > 0);
    }
    let mut restore_unchanged = Vec::new();
    for (run, ((store, digest), dest)) in readers.iter().zip(&digests).zip(&dests).enumerate() {
        let t = alongside(Phase::RestoreUnchanged, run);
        let stats = store.restore_tree(digest, dest).unwrap();
        restore_unchanged.push(t.elapsed());
        assert_eq!(stats.written_files, 0);
    }
    let ours = Figures {
        save_cold: median(save_cold),
        save_unchanged: median(save_unchanged),
        restore_cold: median(restore_cold),
        restore_unchanged: median(restore_unchanged),
    };
    let theirs = match baseline {
        Some(_) => {
            let [a, b, c, d] = theirs.map(median);
            Figures {
                save_cold: a,
                save_unchanged: b,
                restore_cold: c,
                restore_unchanged: d,
            }
        }
        None => Figures::default(),
    };
    (ours, theirs)
}

/// Prints one table: ours against the baseline, phase by phase.
fn table(title: &str, ours: &Figures, theirs: &Figures) {
    let row = |name: &str, ours: Duration, theirs: Duration| {
        println!(
            "{name:<22} {:>10} {:>12}   {:>6.2}x",
            secs(ours),
            secs(theirs),
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    };
    println!();
    println!(
        "{title:<22} {:>10} {:>12}   {:>7}",
        "wasmbuild", "tar+zstd", "ratio"
    );
    row("save, cold", ours.save_cold, theirs.save_cold);
    row(
        "save, unchanged",
        ours.save_unchanged,
        theirs.save_unchanged,
    );
    row("restore, cold", ours.restore_cold, theirs.restore_cold);
    row(
        "restore, unchanged",
        ours.restore_unchanged,
        theirs.restore_unchanged,
    );
}

fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

fn s3s_fs() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let candidates = std::env::var_os("S3S_FS")
        .map(PathBuf::from)
        .into_iter()
        .chain(Some(Path::new(&home).join(".cargo/bin/s3s-fs")));
    candidates.into_iter().find(|p| p.is_file())
}

fn main() {
    let files: usize = std::env::var("STORE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mb: u64 = std::env::var("STORE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let runs: usize = std::env::var("STORE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for tool in ["tar", "zstd"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            eprintln!("store bench: `{tool}` is needed for the comparison");
            std::process::exit(1);
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    let t = Instant::now();
    generate(&src, files, mb << 20);
    let bytes = dir_size(&src);
    println!(
        "store bench: {files} files, {:.1} MiB (generated in {:.1} s), {} runs, median; {} cores",
        bytes as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64(),
        runs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // tar + zstd on the same tree, step by step beside the local store: packing (again:
    // tar has no "unchanged" mode), then unpacking into a fresh directory and over it again
    // (tar replaces every file).
    let archive = |run: usize| scratch.path().join(format!("x-{run}.tar.zst"));
    let untar_dir = |run: usize| scratch.path().join(format!("untar-{run}"));
    let tar = |phase: Phase, run: usize| match phase {
        Phase::SaveCold | Phase::SaveUnchanged => shell(
            &format!(
                "tar -cf - . | zstd -T0 -3 -q -f -o {}",
                archive(run).display()
            ),
            &src,
        ),
        Phase::RestoreCold | Phase::RestoreUnchanged => {
            fs::create_dir_all(untar_dir(run)).unwrap();
            shell(
                &format!("zstd -d -T0 -q -c {} | tar -xf -", archive(run).display()),
                &untar_dir(run),
            )
        }
    };

    let stores = scratch.path().join("stores");
    let (local, tar_figures) = measure(
        "local",
        &src,
        scratch.path(),
        runs,
        &|run, _reader| Store::open(stores.join(format!("local-{run}"))).unwrap(),
        Some(&tar),
    );
    table("local store", &local, &tar_figures);
    println!(
        "{:<22} {:>10} {:>12}",
        "stored MiB",
        format!(
            "{:.1}",
            dir_size(&stores.join("local-0/blobs")) as f64 / (1 << 20) as f64
        ),
        format!(
            "{:.1}",
            fs::metadata(archive(0)).unwrap().len() as f64 / (1 << 20) as f64
        )
    );

    let Some(binary) = s3s_fs() else {
        println!("\n(s3s-fs not installed: no S3 figures)");
        return;
    };
    let root = scratch.path().join("s3");
    fs::create_dir_all(root.join("bench")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "AK", "--secret-key", "SK"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let config = S3Config {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        access_key_id: Some("AK".into()),
        secret_access_key: Some("SK".into()),
        ..Default::default()
    };
    let locals = scratch.path().join("s3-locals");
    let (s3, _) = measure(
        "s3",
        &src,
        scratch.path(),
        runs,
        &|run, reader| {
            Store::open_with(
                format!("s3://bench/run{run}"),
                StoreOptions {
                    s3: Some(config.clone()),
                    local_root: Some(locals.join(format!("{run}-{reader}"))),
                    ..Default::default()
                },
            )
            .unwrap()
        },
        None,
    );
    let _ = server.kill();
    let _ = server.wait();
    table("S3 (s3s-fs, loopback)", &s3, &tar_figures);
    println!(
        "{:<22} {:>10}",
        "stored MiB",
        format!(
            "{:.1}",
            dir_size(&root.join("bench/run0/blobs")) as f64 / (1 << 20) as f64
        )
    );
}
