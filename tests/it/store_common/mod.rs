//! Shared set-up of the store tests: a real S3-compatible server (`s3s-fs`, served by the
//! test process) on a loopback port, and generated directory trees.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wasmbuild::store::{PACK_FILE_MAX, S3Config, Selection, Store, StoreOptions};

pub const ACCESS_KEY: &str = "wasmbuild-test-ak";
pub const SECRET_KEY: &str = "wasmbuild-test-sk";
pub const BUCKET: &str = "wasmbuild-test";

/// A real S3 implementation (`s3s-fs`: the s3s protocol crate over a directory, with SigV4
/// authentication) served over HTTP on a loopback port by the test process itself, on its
/// own Tokio runtime; `stop` drops the runtime, closing the listener and every connection,
/// as a server that goes away does.
pub struct S3Server {
    runtime: Option<tokio::runtime::Runtime>,
    pub port: u16,
    pub root: tempfile::TempDir,
}

impl S3Server {
    pub fn start() -> S3Server {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder;

        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join(BUCKET)).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-test-server")
            .enable_all()
            .build()
            .expect("a runtime for the S3 server");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let mut builder = s3s::service::S3ServiceBuilder::new(
            s3s_fs::FileSystem::new(root.path()).expect("s3s-fs over the directory"),
        );
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server {
            runtime: Some(runtime),
            port,
            root,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn spec(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// Where the server keeps the object `key` of store `prefix`.
    pub fn object_path(&self, prefix: &str, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(prefix).join(key)
    }

    pub fn config(&self) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            max_retries: Some(2),
            ..Default::default()
        }
    }

    /// Opens store `prefix` on this server, with its own machine-local directory `local`.
    pub fn open(&self, prefix: &str, local: &Path) -> Store {
        self.open_with(prefix, local, self.config())
    }

    pub fn open_with(&self, prefix: &str, local: &Path, config: S3Config) -> Store {
        Store::open_with(
            self.spec(prefix),
            StoreOptions {
                s3: Some(config),
                local_root: Some(local.to_owned()),
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// The environment a `wasmbuild` process needs to use this server.
    pub fn env(&self, cmd: &mut Command, local: &Path) {
        for name in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL_S3",
            "AWS_DEFAULT_REGION",
        ] {
            cmd.env_remove(name);
        }
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("WASMBUILD_S3_RETRIES", "2")
            .env("WASMBUILD_LOCAL_DIR", local)
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    }

    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `wasmbuild` as a process (no `RUST_LOG`).
pub fn wasmbuild() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmbuild"));
    cmd.env_remove("RUST_LOG").env_remove("WASMBUILD_STORE");
    cmd
}

/// A small deterministic pseudo-random generator (xorshift).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Deterministic content of `len` bytes: half text-like (compressible), half random.
pub fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let words: [&[u8]; 8] = [
        b"fn ", b"let ", b"wasm ", b"build ", b"cache ", b"store ", b"{}\n", b"0x1f ",
    ];
    while out.len() < len {
        if rng.below(2) == 0 {
            for _ in 0..64 {
                out.extend_from_slice(words[rng.below(8) as usize]);
            }
        } else {
            for _ in 0..64 {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        }
    }
    out.truncate(len);
    out
}

/// A small tree: nested files, an executable, an empty directory and a symlink.
pub fn small_tree(root: &Path, seed: u64) {
    use std::os::unix::fs::PermissionsExt;
    let mut rng = Rng::new(seed);
    for i in 0..30 {
        let dir = root.join(format!("d{}/e{}", i % 4, i % 3));
        fs::create_dir_all(&dir).unwrap();
        // Above the inlining size: each of these is a blob of its own.
        let len = 5_000 + rng.below(45_000) as usize;
        fs::write(dir.join(format!("f{i}.dat")), content(&mut rng, len)).unwrap();
    }
    let same = "identical content\n".repeat(400);
    fs::write(root.join("same-a.txt"), &same).unwrap();
    fs::write(root.join("same-b.txt"), &same).unwrap();
    // One file too large for a pack: a blob of its own.
    let big = root.join("big/blob.bin");
    fs::create_dir_all(big.parent().unwrap()).unwrap();
    fs::write(&big, content(&mut rng, PACK_FILE_MAX as usize + 4096)).unwrap();
    // Small files, packed with the rest: empty, text, and not UTF-8.
    fs::write(root.join("empty.txt"), b"").unwrap();
    fs::write(root.join("small.bin"), b"\xff\xfe\x00 not text \x80").unwrap();
    let tool = root.join("bin/tool.sh");
    fs::create_dir_all(tool.parent().unwrap()).unwrap();
    fs::write(&tool, b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    std::os::unix::fs::symlink("bin/tool.sh", root.join("tool-link")).unwrap();
}

/// The blob of tree `tree` holding the file at `path` (its pack or its own), and every path
/// of the tree kept in that blob.
pub fn blob_holding(store: &Store, tree: &str, path: &str) -> (String, Vec<String>) {
    let tree = store.get_tree(tree).unwrap();
    let entry = tree.entries.iter().find(|e| e.path == path).unwrap();
    let blob = entry.blob().unwrap().to_owned();
    let paths = tree
        .entries
        .iter()
        .filter(|e| e.blob() == Some(blob.as_str()))
        .map(|e| e.path.clone())
        .collect();
    (blob, paths)
}

/// Every file, dir and symlink under `root`: (relative path, kind, mode, content or
/// target), sorted.
pub fn snapshot(root: &Path) -> Vec<(String, String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = entry.path().symlink_metadata().unwrap();
        let (kind, data) = if meta.file_type().is_symlink() {
            (
                "link",
                fs::read_link(entry.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
                    .into_bytes(),
            )
        } else if meta.is_dir() {
            ("dir", Vec::new())
        } else {
            ("file", fs::read(entry.path()).unwrap())
        };
        let mode = if kind == "link" {
            0
        } else {
            meta.permissions().mode() & 0o777
        };
        out.push((rel, kind.to_owned(), mode, data));
    }
    out.sort();
    out
}

/// Flips one byte in the middle of the file at `path`.
pub fn flip_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

/// Saves `src` through each of `stores` at once and names the result `cache/p/k`. Checks
/// that every save made the same tree, that the key holds it, that `check` (a fresh view
/// of the same store) verifies clean, and that the key restores to `src` in `dest`.
/// Returns how many of the saves were told they created the key.
pub fn save_concurrently(stores: Vec<Store>, src: &Path, check: &Store, dest: &Path) -> usize {
    let results: Vec<(String, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .into_iter()
            .map(|store| {
                scope.spawn(move || {
                    let (digest, _) = store.save_tree(src, &Selection::all()).unwrap();
                    let created = store.create_ref_if_absent("cache/p/k", &digest).unwrap();
                    (digest, created)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let digest = &results[0].0;
    assert!(results.iter().all(|(d, _)| d == digest));
    assert_eq!(
        check.get_ref("cache/p/k").unwrap().as_deref(),
        Some(digest.as_str())
    );
    let report = check.verify(false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    check.restore_tree(digest, dest).unwrap();
    assert_eq!(snapshot(src), snapshot(dest));
    results.iter().filter(|(_, created)| *created).count()
}

/// What [`save_tree_child`] is to do: the store, the directory and the reference.
const SAVE_TREE_JOB: [&str; 3] = [
    "WASMBUILD_TEST_SAVE_STORE",
    "WASMBUILD_TEST_SAVE_SRC",
    "WASMBUILD_TEST_SAVE_REF",
];

/// Starts this test binary again to run [`save_tree_child`] alone: it saves `src` as a
/// tree into the store `spec` and points `reference` at it, in a process of its own that
/// a test can kill midway. `configure` adds the store's environment (S3 credentials).
pub fn save_tree_in_a_child(
    spec: impl AsRef<std::ffi::OsStr>,
    src: &Path,
    reference: &str,
    configure: impl FnOnce(&mut Command),
) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["store_common::save_tree_child", "--exact", "--ignored"])
        .env(SAVE_TREE_JOB[0], spec)
        .env(SAVE_TREE_JOB[1], src)
        .env(SAVE_TREE_JOB[2], reference)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    configure(&mut cmd);
    cmd.spawn().expect("start the test binary again")
}

#[test]
#[ignore = "a child process of save_tree_in_a_child; does nothing run by hand"]
fn save_tree_child() {
    let [Some(spec), Some(src), Some(reference)] = SAVE_TREE_JOB.map(std::env::var_os) else {
        return;
    };
    let store = Store::open(spec).expect("open the store");
    let (digest, _) = store
        .save_tree(Path::new(&src), &Selection::all())
        .expect("save");
    let reference = reference.to_str().expect("a UTF-8 reference");
    store
        .set_ref(reference, &digest)
        .expect("set the reference");
}
