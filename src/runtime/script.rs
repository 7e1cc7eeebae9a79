//! Bundles built by a script from pinned sources (`kind = "script"`): each input fetched
//! once (a Debian source file from the archive's pool, a wheel from the package index),
//! checked against the sha256 the recipe pins and kept in the store; the script run on the
//! host in an empty directory with nothing of the host's environment but `PATH`; its
//! outputs kept in the store under the digest of everything the build is made of (script,
//! the files it uses, inputs), so building the bundle again — new shims, a newer wasmbuild —
//! takes them from there instead of compiling for minutes.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::RuntimeError;
use super::fetch::{index_client, split_pin};
use super::recipe::{Input, Recipe, ScriptSource};
use crate::python::{DistFile, Index, PackageError};
use crate::store::Store;

/// What a script built: the source's module and outputs, as files under `out`.
pub struct Built {
    /// Directory holding the module and the outputs by their relative paths.
    pub out: PathBuf,
    /// Digest of what the build is made of (the manifest's `built-from`).
    pub identity: String,
}

/// Lines of the script's output kept for an error.
const TAIL_LINES: usize = 60;

/// Digest of everything a script build is made of: the script, the files it uses, each
/// input's file name and sha256, and what it must produce.
pub fn identity(recipe: &Recipe, source: &ScriptSource) -> Result<String, RuntimeError> {
    let ScriptSource {
        script,
        uses,
        inputs,
        module,
        outputs,
    } = source;
    let mut hasher = Sha256::new();
    for name in std::iter::once(script).chain(uses) {
        let path = recipe.dir.join(name);
        let bytes =
            fs::read(&path).map_err(|e| RuntimeError::Io(format!("{}: {e}", path.display())))?;
        hasher.update(format!("file {name} {}\n", bytes.len()));
        hasher.update(&bytes);
    }
    for input in inputs {
        let (file, sha256) = input.pinned().map_err(RuntimeError::Fetch)?;
        hasher.update(format!("input {file} {sha256}\n"));
        if let Input::Pypi { unpack: true, .. } = input {
            hasher.update(format!("unpacked {file}\n"));
        }
    }
    hasher.update(format!("module {module}\n"));
    for output in outputs {
        hasher.update(format!("output {output}\n"));
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// The store reference of a script build's outputs.
fn reference(identity: &str) -> String {
    format!("runtime-builds/{identity}")
}

/// Builds the recipe's script in `work` (or takes its outputs from the store).
pub fn build(
    recipe: &Recipe,
    source: &ScriptSource,
    work: &Path,
    store: &Store,
    report: &dyn Fn(&str),
) -> Result<Built, RuntimeError> {
    let ScriptSource {
        script,
        inputs,
        module,
        outputs,
        ..
    } = source;
    let identity = identity(recipe, source)?;
    let out = work.join("out");
    let built = Built {
        out: out.clone(),
        identity: identity.clone(),
    };
    if restore(store, &identity, &out).is_some() {
        report(&format!(
            "taking the build of {} {} from the store",
            recipe.name, recipe.version
        ));
        return Ok(built);
    }
    let _ = fs::remove_dir_all(&out);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |e: std::io::Error| RuntimeError::Io(format!("{}: {e}", path.display()))
    };
    let inputs_dir = work.join("inputs");
    let build_dir = work.join("build");
    for dir in [&inputs_dir, &build_dir, &out] {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // The Debian archive, found when the first Debian input is not in the store.
    let mut archive = None;
    for input in inputs {
        fetch_input(input, &inputs_dir, store, &mut archive, report)?;
    }

    report(&format!(
        "building {} {} with {script} (minutes)",
        recipe.name, recipe.version
    ));
    run_script(
        recipe,
        &recipe.dir.join(script),
        &build_dir,
        &inputs_dir,
        &out,
        report,
    )?;
    let _ = fs::remove_dir_all(&build_dir);

    let mut listing = String::new();
    for path in std::iter::once(module).chain(outputs) {
        let file = out.join(path);
        if !file.is_file() {
            return Err(RuntimeError::Fetch(format!(
                "the build script of {} left no {path}",
                recipe.name
            )));
        }
        let (digest, _) = store.put_file(&file)?;
        listing.push_str(&format!("{digest} {path}\n"));
    }
    let digest = store.put_blob(listing.as_bytes())?;
    store.set_ref(&reference(&identity), &digest)?;
    Ok(built)
}

/// Writes a stored build's outputs under `out`; `None` when there is none or a blob is
/// unusable (the store's reads check every digest), and the script runs instead.
fn restore(store: &Store, identity: &str, out: &Path) -> Option<()> {
    let listing = store
        .get_blob(&store.get_ref(&reference(identity)).ok()??)
        .ok()?;
    let listing = String::from_utf8(listing).ok()?;
    for line in listing.lines() {
        let (digest, path) = line.split_once(' ')?;
        // Paths are the recipe's own (`module`, `outputs`), but a listing is data: nothing
        // in it may leave `out`.
        if Path::new(path)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return None;
        }
        let target = out.join(path);
        fs::create_dir_all(target.parent()?).ok()?;
        if let Err(error) = store.get_blob_to_file(digest, &target) {
            tracing::warn!(%error, path, "a stored build output is unusable; building again");
            return None;
        }
    }
    Some(())
}

/// Runs `sh SCRIPT` in `build_dir`, its output reported line by line, its environment
/// only `PATH` and the `WASMBUILD_*` variables of the contract.
fn run_script(
    recipe: &Recipe,
    script: &Path,
    build_dir: &Path,
    inputs_dir: &Path,
    out: &Path,
    report: &dyn Fn(&str),
) -> Result<(), RuntimeError> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut child = Command::new("sh")
        .arg(script)
        .current_dir(build_dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", build_dir)
        .env("LC_ALL", "C")
        .env("SOURCE_DATE_EPOCH", "0")
        .env("WASMBUILD_INPUTS", inputs_dir)
        .env("WASMBUILD_RECIPE_DIR", &recipe.dir)
        .env("WASMBUILD_OUT", out)
        .env("WASMBUILD_JOBS", jobs.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RuntimeError::Fetch(format!("cannot run sh {}: {e}", script.display())))?;
    let stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let mut tail: VecDeque<String> = VecDeque::new();
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        if let Some(step) = line.strip_prefix("build.sh: ") {
            report(step);
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child
        .wait()
        .map_err(|e| RuntimeError::Fetch(format!("sh {}: {e}", script.display())))?;
    let errors = errors.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let mut lines: Vec<&str> = tail.iter().map(String::as_str).collect();
    lines.extend(errors.lines());
    let start = lines.len().saturating_sub(TAIL_LINES);
    Err(RuntimeError::Fetch(format!(
        "the build script of {} {} failed ({status}); its last output:\n{}",
        recipe.name,
        recipe.version,
        lines[start..].join("\n")
    )))
}

/// Places one input in `dir` under its file name: from the store when it holds the pinned
/// digest, else fetched, checked and stored; a wheel the recipe says to unpack also
/// unpacked beside it.
fn fetch_input(
    input: &Input,
    dir: &Path,
    store: &Store,
    archive: &mut Option<String>,
    report: &dyn Fn(&str),
) -> Result<(), RuntimeError> {
    let (file, sha256) = input.pinned().map_err(RuntimeError::Fetch)?;
    if file.contains('/') || file.starts_with('.') {
        return Err(RuntimeError::Fetch(format!("{file:?} is not a file name")));
    }
    let target = dir.join(file);
    if !(store.has_blob(sha256)? && store.get_blob_to_file(sha256, &target).is_ok()) {
        fetch(input, file, sha256, store, archive, report)?;
        store.get_blob_to_file(sha256, &target)?;
    }
    if let Input::Pypi { unpack: true, .. } = input {
        unpack_wheel(
            &target,
            &dir.join(file.strip_suffix(".whl").unwrap_or(file)),
        )?;
    }
    Ok(())
}

/// Unpacks the wheel `wheel` into the directory `into`, file modes kept (a wheel's
/// executables stay executable).
fn unpack_wheel(wheel: &Path, into: &Path) -> Result<(), RuntimeError> {
    let fail = |e: &dyn std::fmt::Display| RuntimeError::Io(format!("{}: {e}", wheel.display()));
    let file = fs::File::open(wheel).map_err(|e| fail(&e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| fail(&e))?;
    zip.extract(into).map_err(|e| fail(&e))
}

/// Fetches one input that the store does not hold, checks it and stores it.
fn fetch(
    input: &Input,
    file: &str,
    sha256: &str,
    store: &Store,
    archive: &mut Option<String>,
    report: &dyn Fn(&str),
) -> Result<(), RuntimeError> {
    report(&format!("fetching {file}"));
    let url = match input {
        Input::DebianSource { package, .. } => {
            let archive = match archive {
                Some(archive) => archive,
                None => archive.insert(debian_archive().map_err(RuntimeError::Fetch)?),
            };
            debian_pool_url(archive, package, file)
        }
        Input::Pypi { package, .. } => wheel_url(package, file, store)?,
    };
    // The download is checked against the pinned sha256 before the store keeps it, so the
    // archive's plain http (apt's own transport) is trusted for this one file, and a file
    // gone from the archive (superseded in its release) fails here, naming the address.
    let host = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', ':']).next())
        .unwrap_or_default()
        .to_owned();
    let client =
        index_client(store, Some(host)).map_err(|e| RuntimeError::Fetch(format!("{file}: {e}")))?;
    let pinned = DistFile {
        file: file.into(),
        url,
        sha256: sha256.into(),
        requires_python: None,
        yanked: false,
        has_metadata: false,
    };
    client.fetch(&pinned).map_err(|e| match (input, e) {
        (Input::DebianSource { suite, .. }, PackageError::Unreachable { reason, .. }) => {
            RuntimeError::Fetch(format!(
                "{file}: not fetched from the Debian archive ({reason}); a file gone from \
                 {suite} is kept in the archive's snapshots: set {ARCHIVE_VARIABLE} to one"
            ))
        }
        (_, e) => RuntimeError::Fetch(format!("{file}: {e}")),
    })?;
    Ok(())
}

/// The variable that names a Debian archive (or a snapshot of one) to fetch sources from.
const ARCHIVE_VARIABLE: &str = "WASMBUILD_DEBIAN_ARCHIVE";

/// The address of the Debian archive to fetch source files from: `$WASMBUILD_DEBIAN_ARCHIVE`,
/// else the one the host's apt uses for the host's own release.
fn debian_archive() -> Result<String, String> {
    if let Some(archive) = std::env::var(ARCHIVE_VARIABLE)
        .ok()
        .filter(|a| !a.is_empty())
    {
        return Ok(archive);
    }
    let unknown = |why: &str| {
        format!(
            "no Debian archive to fetch sources from ({why}): set {ARCHIVE_VARIABLE} to the address of one, or of a snapshot of one"
        )
    };
    let release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let codename = release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim_matches('"').to_owned())
        .ok_or_else(|| unknown("this host is not a Debian release"))?;
    let output = Command::new("apt-get")
        .args(["indextargets", "--format", "$(RELEASE) $(REPO_URI)"])
        .output()
        .map_err(|e| unknown(&format!("cannot run apt-get: {e}")))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| {
            let (release, uri) = l.split_once(' ')?;
            (release == codename).then(|| uri.trim().to_owned())
        })
        .ok_or_else(|| {
            unknown(&format!(
                "the host's apt names none for its release {codename}"
            ))
        })
}

/// Where `file` of source package `package` is in a Debian archive: the pool, by the
/// archive's fixed layout (`pool/main/p/python3.13/…`, `pool/main/libz/libzstd/…`), the
/// same in the archive's snapshots.
fn debian_pool_url(archive: &str, package: &str, file: &str) -> String {
    let shelf = match package.strip_prefix("lib") {
        Some(rest) if !rest.is_empty() => &package[..4],
        _ => &package[..package.len().min(1)],
    };
    format!(
        "{}/pool/main/{shelf}/{package}/{file}",
        archive.trim_end_matches('/')
    )
}

/// The URL of the wheel `file` of `package` (`NAME==VERSION`) on the package index.
fn wheel_url(package: &str, file: &str, store: &Store) -> Result<String, RuntimeError> {
    let fail = |e: &dyn std::fmt::Display| RuntimeError::Fetch(format!("{package}: {e}"));
    let (name, _) = split_pin(package).map_err(|e| fail(&e))?;
    let files = index_client(store, None)
        .and_then(|client| client.project(name))
        .map_err(|e| fail(&e))?;
    files
        .into_iter()
        .find(|f| f.file == file)
        .map(|f| f.url)
        .ok_or_else(|| fail(&format!("the index has no {file}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::recipe::Source;
    use std::cell::RefCell;

    fn source(recipe: &Recipe) -> &ScriptSource {
        match &recipe.source {
            Source::Script(source) => source,
            other => panic!("not a script: {other:?}"),
        }
    }

    /// A recipe whose script is `script`, with one used file, no inputs.
    fn recipe(dir: &Path, script: &str) -> Recipe {
        fs::write(dir.join("build.sh"), script).unwrap();
        fs::write(dir.join("used.txt"), "one").unwrap();
        let mut recipe: Recipe = toml::from_str(
            r#"
            name = "demo"
            version = "1.0"
            commands = ["demo"]
            [source]
            kind = "script"
            script = "build.sh"
            uses = ["used.txt"]
            inputs = []
            module = "demo.wasm"
            outputs = ["lib/data.txt"]
            "#,
        )
        .unwrap();
        recipe.dir = dir.to_owned();
        recipe
    }

    const SCRIPT: &str = r#"set -eu
echo "build.sh: writing"
test -z "${CARGO:-}" || { echo "the host's environment leaked" >&2; exit 1; }
mkdir -p "$WASMBUILD_OUT/lib"
cat "$WASMBUILD_RECIPE_DIR/used.txt" > "$WASMBUILD_OUT/demo.wasm"
echo "$PWD" | grep -q /build$
echo data > "$WASMBUILD_OUT/lib/data.txt"
echo ran >> "$WASMBUILD_RECIPE_DIR/runs"
"#;

    #[test]
    fn a_script_build_is_kept_in_the_store_under_what_it_is_made_of() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let recipe = recipe(dir.path(), SCRIPT);
        let steps = RefCell::new(Vec::new());
        let report = |s: &str| steps.borrow_mut().push(s.to_owned());
        let read = |path: PathBuf| fs::read_to_string(path).unwrap();

        let work = tempfile::tempdir().unwrap();
        let built = build(&recipe, source(&recipe), work.path(), &store, &report).unwrap();
        assert_eq!(read(built.out.join("demo.wasm")), "one");
        assert_eq!(read(built.out.join("lib/data.txt")), "data\n");
        assert!(steps.borrow().contains(&"writing".to_owned()), "{steps:?}");

        // Again: from the store, the script not run.
        let work = tempfile::tempdir().unwrap();
        let again = build(&recipe, source(&recipe), work.path(), &store, &report).unwrap();
        assert_eq!(again.identity, built.identity);
        assert_eq!(read(again.out.join("demo.wasm")), "one");
        assert_eq!(read(dir.path().join("runs")), "ran\n");
        assert!(steps.borrow().last().unwrap().contains("from the store"));

        // A used file changed: another build.
        fs::write(dir.path().join("used.txt"), "two").unwrap();
        assert_ne!(identity(&recipe, source(&recipe)).unwrap(), built.identity);
        let work = tempfile::tempdir().unwrap();
        let changed = build(&recipe, source(&recipe), work.path(), &store, &report).unwrap();
        assert_eq!(read(changed.out.join("demo.wasm")), "two");
        assert_eq!(read(dir.path().join("runs")), "ran\nran\n");
    }

    #[test]
    fn a_failing_script_or_a_missing_output_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let work = tempfile::tempdir().unwrap();
        let failing = recipe(
            dir.path(),
            "echo compiling; echo 'cc: no such file' >&2; exit 3\n",
        );
        let error = build(&failing, source(&failing), work.path(), &store, &|_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("build script of demo 1.0 failed"), "{error}");
        assert!(
            error.contains("compiling") && error.contains("cc: no such file"),
            "{error}"
        );

        let work = tempfile::tempdir().unwrap();
        let partial = recipe(dir.path(), "echo x > \"$WASMBUILD_OUT/demo.wasm\"\n");
        let error = build(&partial, source(&partial), work.path(), &store, &|_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("left no lib/data.txt"), "{error}");
        // Nothing was kept for a build that failed.
        assert!(
            store
                .get_ref(&reference(&identity(&partial, source(&partial)).unwrap()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_unknown_key_of_a_script_source_is_refused() {
        let error = toml::from_str::<Recipe>(
            "name = \"d\"\nversion = \"1\"\ncommands = [\"d\"]\n[source]\nkind = \"script\"\n\
             script = \"b.sh\"\ninputs = []\nmodule = \"d.wasm\"\noutput = [\"x\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `output`"), "{error}");
    }

    #[test]
    fn a_stored_listing_cannot_write_outside_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let blob = store.put_blob(b"x").unwrap();
        let listing = store
            .put_blob(format!("{blob} ../escaped\n").as_bytes())
            .unwrap();
        store.set_ref(&reference("abc"), &listing).unwrap();
        let out = dir.path().join("work/out");
        assert!(restore(&store, "abc", &out).is_none());
        assert!(!dir.path().join("work/escaped").exists());
    }
}
