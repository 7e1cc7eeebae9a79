//! Runtime bundles through the command line: building from a recipe, listing, digests
//! that refuse a bundle, unknown images and unknown programs.

use std::fs;
use std::path::Path;

use predicates::prelude::*;

use crate::common::{HELLO, hello_digest, hello_recipe};

fn cli(store: &Path, recipes: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(command(store, recipes))
}

/// `N` new temporary directories (a store, recipes, a source directory …).
fn temp_dirs<const N: usize>() -> [tempfile::TempDir; N] {
    std::array::from_fn(|_| tempfile::tempdir().unwrap())
}

/// [`cli`] as a plain command, for tests that start several at once.
fn command(store: &Path, recipes: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("wasmbuild"));
    cmd.env("WASMBUILD_STORE", store)
        .env("WASMBUILD_RECIPES", recipes)
        .env_remove("RUST_LOG");
    cmd
}

#[test]
fn a_bundle_built_from_a_recipe_is_listed_and_runs() {
    let [store, recipes, src] = temp_dirs();
    hello_recipe(recipes.path(), &hello_digest());
    cli(store.path(), recipes.path())
        .args(["runtime", "build", "hello"])
        .assert()
        .success();
    cli(store.path(), recipes.path())
        .args(["runtime", "list"])
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"(?m)^hello +1\.0 +[0-9a-f]{12} +\d+ B +hello hi$").unwrap(),
        );
    cli(store.path(), recipes.path())
        .args(["exec", "--image", "hello:1.0", "--src"])
        .arg(src.path())
        .args(["--", "hi"])
        .assert()
        .success()
        .stdout("hello from wasm\n");
}

/// What a command that must succeed wrote on stderr.
fn stderr_of_success(command: &mut assert_cmd::Command) -> String {
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// The hello recipe with an extra file, `note.txt` ("first"), whose change makes the bundle
/// out of date; returns the recipe's directory.
fn hello_with_a_note(recipes: &Path) -> std::path::PathBuf {
    hello_recipe(recipes, &hello_digest());
    let dir = recipes.join("hello");
    let recipe = fs::read_to_string(dir.join("recipe.toml")).unwrap();
    fs::write(
        dir.join("recipe.toml"),
        format!("{recipe}\n[files]\n\"share/note.txt\" = \"note.txt\"\n"),
    )
    .unwrap();
    fs::write(dir.join("note.txt"), "first\n").unwrap();
    dir
}

// A bundle built from an older recipe (an upgrade of wasmbuild changed one of its files) is
// built again before it runs; one built from the recipe as it is stays.
#[test]
fn a_bundle_built_from_an_older_recipe_is_built_again() {
    let [store, recipes, src] = temp_dirs();
    let dir = hello_with_a_note(recipes.path());
    let run = || {
        stderr_of_success(
            cli(store.path(), recipes.path())
                .args(["exec", "--image", "hello", "--src"])
                .arg(src.path())
                .args(["--", "hi"]),
        )
    };
    let digest = || {
        let list = cli(store.path(), recipes.path())
            .args(["runtime", "list"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&list.stdout).into_owned()
    };
    assert!(run().contains("bundle hello is not in the store yet"));
    let first = digest();
    assert_eq!(run(), "", "a current bundle is used as it is");
    assert_eq!(digest(), first);
    fs::write(dir.join("note.txt"), "second\n").unwrap();
    let said = run();
    assert!(
        said.contains("built from an older recipe; building it again"),
        "{said}"
    );
    assert_ne!(digest(), first);
    assert_eq!(run(), "");
}

// A bundle compiled from a crate (as the toolbox is) is built again when the crate's sources
// change: an upgrade of wasmbuild that changed the toolbox reaches the store's base bundle.
#[test]
fn a_bundle_compiled_from_older_sources_is_built_again() {
    let [store, recipes, src] = temp_dirs();
    let dir = recipes.path().join("greet");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("recipe.toml"),
        "name = \"greet\"\nversion = \"1.0\"\ncommands = [\"greet\"]\n\n\
         [source]\nkind = \"cargo\"\nmanifest = \"Cargo.toml\"\nbinary = \"greet\"\n",
    )
    .unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"greet\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();
    // Builds run `--locked`: a crate brings its lock file.
    fs::write(
        dir.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"greet\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    // Every version with the same modification time, as the recipes wasmbuild carries are
    // unpacked (their archive's): cargo alone would take the second for built already.
    let main = |word: &str| {
        let path = dir.join("src/main.rs");
        fs::write(&path, format!("fn main() {{ println!(\"{word}\"); }}\n")).unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1))
            .unwrap();
    };
    let run = || {
        let out = cli(store.path(), recipes.path())
            .args(["exec", "--image", "greet", "--src"])
            .arg(src.path())
            .args(["--", "greet"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    main("first");
    let (said, log) = run();
    assert_eq!(said, "first\n");
    assert!(
        log.contains("bundle greet is not in the store yet"),
        "{log}"
    );
    assert!(
        !run().1.contains("building"),
        "a current bundle is used as it is"
    );
    main("second");
    let (said, log) = run();
    assert!(
        log.contains("built from an older recipe; building it again"),
        "{log}"
    );
    assert_eq!(said, "second\n");
}

// Commands started together on a machine whose store lacks their bundle build it once:
// the others wait for that build and use it.
#[test]
fn commands_started_together_build_a_missing_bundle_once() {
    let [store, recipes, src] = temp_dirs();
    hello_recipe(recipes.path(), &hello_digest());
    let children: Vec<_> = (0..4)
        .map(|_| {
            command(store.path(), recipes.path())
                .args(["exec", "--image", "hello", "--src"])
                .arg(src.path())
                .args(["--", "hi"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut builds = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        builds += String::from_utf8_lossy(&out.stderr)
            .matches("is not in the store yet")
            .count();
    }
    assert_eq!(builds, 1);
}

// The same for a bundle a build asks for in `runtime-versions`, beside its image.
#[test]
fn a_runtime_version_built_from_an_older_recipe_is_built_again() {
    let [store, recipes, src, out] = temp_dirs();
    // The image, `hello`, and a second bundle, `note`, with the note as its only file.
    hello_recipe(recipes.path(), &hello_digest());
    let dir = hello_with_a_note(recipes.path());
    let note = recipes.path().join("note");
    fs::create_dir_all(&note).unwrap();
    let recipe = fs::read_to_string(dir.join("recipe.toml")).unwrap();
    fs::write(
        note.join("recipe.toml"),
        recipe
            .replace("name = \"hello\"", "name = \"note\"")
            .replace("[\"hello\", \"hi\"]", "[\"note\"]")
            .replace("\"hello.wasm\"", "\"../hello/hello.wasm\"")
            .replace("\"note.txt\"", "\"../hello/note.txt\""),
    )
    .unwrap();
    fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      note: 1.0\n  build:\n    commands:\n      - hi\n",
    )
    .unwrap();
    let run = || {
        stderr_of_success(
            cli(store.path(), recipes.path())
                .args(["run", "--image", "hello", "-a"])
                .arg(out.path())
                .arg(src.path()),
        )
    };
    let said = run();
    assert!(
        said.contains("bundle note 1.0 is not in the store yet"),
        "{said}"
    );
    assert!(!run().contains("note"), "a current bundle is used as it is");
    fs::write(dir.join("note.txt"), "second\n").unwrap();
    let said = run();
    assert!(
        said.contains("bundle note 1.0 in the store was built from an older recipe"),
        "{said}"
    );
}

#[test]
fn a_pinned_digest_that_does_not_match_refuses_the_bundle() {
    let [store, recipes] = temp_dirs();
    hello_recipe(recipes.path(), &"0".repeat(64));
    cli(store.path(), recipes.path())
        .args(["runtime", "build", "hello"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("but the recipe pins 0000"));
    cli(store.path(), recipes.path())
        .args(["runtime", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("hello").not());
}

#[test]
fn a_tampered_installed_module_is_reinstalled_and_never_runs() {
    let [store, recipes, src] = temp_dirs();
    hello_recipe(recipes.path(), &hello_digest());
    cli(store.path(), recipes.path())
        .args(["runtime", "build", "hello"])
        .assert()
        .success();
    // Swap the installed module for another one and drop the compiled code.
    let installed = fs::read_dir(store.path().join("bundles"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let evil = HELLO.replace("hello from wasm", "evil from wasm!");
    fs::write(
        installed.join("bin/hello.wasm"),
        wat::parse_str(evil).unwrap(),
    )
    .unwrap();
    fs::remove_dir_all(store.path().join("compiled")).unwrap();
    cli(store.path(), recipes.path())
        .args(["exec", "--image", "hello", "--src"])
        .arg(src.path())
        .args(["--", "hello"])
        .assert()
        .success()
        .stdout(predicate::str::contains("hello from wasm"))
        .stdout(predicate::str::contains("evil").not())
        .stderr(predicate::str::contains(
            "installed bundle hello was changed on disk (bin/hello.wasm: changed on disk",
        ));
}

#[test]
fn a_corrupt_bundle_blob_is_never_installed() {
    let [store, recipes, src] = temp_dirs();
    hello_recipe(recipes.path(), &hello_digest());
    cli(store.path(), recipes.path())
        .args(["runtime", "build", "hello"])
        .assert()
        .success();
    fs::remove_dir_all(store.path().join("bundles")).unwrap();
    let digest = hello_digest();
    let blob = store
        .path()
        .join("blobs")
        .join(&digest[..2])
        .join(format!("{digest}.zst"));
    fs::write(&blob, zstd::bulk::compress(b"not the module", 3).unwrap()).unwrap();
    cli(store.path(), recipes.path())
        .args(["exec", "--image", "hello", "--src"])
        .arg(src.path())
        .args(["--", "hello"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "store object {digest} is corrupt"
        )));
    assert!(
        fs::read_dir(store.path().join("bundles"))
            .unwrap()
            .all(|e| {
                !e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".install-")
            })
    );
}

#[test]
fn unknown_images_list_what_exists_and_unknown_programs_exit_127() {
    let [store, recipes, src] = temp_dirs();
    hello_recipe(recipes.path(), &hello_digest());
    // An image with a recipe but no bundle yet is built on first use, then runs.
    cli(store.path(), recipes.path())
        .args(["exec", "--image", "hello", "--src"])
        .arg(src.path())
        .args(["--", "hello"])
        .assert()
        .success()
        .stdout("hello from wasm\n")
        .stderr(predicate::str::contains(
            "bundle hello is not in the store yet; building it",
        ));
    cli(store.path(), recipes.path())
        .args(["exec", "--image", "nosuch", "--src"])
        .arg(src.path())
        .args(["--", "hello"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unknown image nosuch; images in the store: hello",
        ));
    cli(store.path(), recipes.path())
        .args(["exec", "--image", "hello", "--src"])
        .arg(src.path())
        .args(["--", "gcc", "-v"])
        .assert()
        .code(127)
        .stderr("gcc: command not found in image hello\n");
}

// The python bundles' own Python files (sitecustomize and the shims) are compiled to
// bytecode when a bundle is built, by the bundle's interpreter: guests see the bundle
// read-only, so without it every start compiled them again. The interpreter must take the
// bytecode as it is (unchecked-hash, never compiling the source), its code must be the
// source's, and a bundle built again in another store must have the same bytes (here 3.12,
// imported in seconds; `python_313` builds 3.13 twice).
#[test]
fn the_python_bundles_carry_bytecode_their_interpreters_use() {
    let src = tempfile::tempdir().unwrap();
    fs::write(
        src.path().join("check.py"),
        r#"
import importlib.machinery, importlib.util, marshal, sys
for name in ["sitecustomize", "wasmbuild_posix", "wasmbuild_subprocess"]:
    path = "/opt/runtimes/python/lib/%s.py" % name
    data = open(importlib.util.cache_from_source(path), "rb").read()
    assert int.from_bytes(data[4:8], "little") == 0b01, (name, data[4:8])  # unchecked hash
    loader = importlib.machinery.SourceFileLoader(name, path)
    def refuse(*args, **kwargs):
        raise AssertionError(name + " was compiled from source")
    loader.source_to_code = refuse
    used = loader.get_code(name)
    source = open(path, "rb").read()
    assert used == compile(source, path, "exec", dont_inherit=True), name
    assert used.co_filename == path, used.co_filename
    print(name, "ok")
import wasmbuild_posix
print(wasmbuild_posix.__cached__)
"#,
    )
    .unwrap();
    for (image, tag) in [("python", "313"), ("python:3.12", "312")] {
        let out = crate::common::sandbox_sh(image, src.path(), &[], "python check.py");
        assert_eq!(
            crate::common::succeeded(&out),
            format!(
                "sitecustomize ok\nwasmbuild_posix ok\nwasmbuild_subprocess ok\n\
                 /opt/runtimes/python/lib/__pycache__/wasmbuild_posix.cpython-{tag}.pyc\n"
            ),
            "{image}"
        );
    }

    let digest = |store: &Path| crate::common::bundle_digest(store, "python", "3.12.0");
    let again = tempfile::tempdir().unwrap();
    crate::common::wasmbuild()
        .env("WASMBUILD_STORE", again.path())
        .args(["runtime", "build", "python:3.12"])
        .assert()
        .success();
    assert_eq!(digest(again.path()), digest(&crate::common::store_dir()));
}

// A bundle built again (its recipe changed, as after an upgrade of wasmbuild) takes a pinned
// module the store already holds from the store: the source is not needed any more (here the
// module file is gone from the recipe's directory, as a wheel would be out of reach offline).
#[test]
fn a_rebuilt_bundle_takes_its_pinned_module_from_the_store() {
    let [store, recipes, src] = temp_dirs();
    let dir = hello_with_a_note(recipes.path());
    cli(store.path(), recipes.path())
        .args(["runtime", "build", "hello"])
        .assert()
        .success();
    fs::remove_file(dir.join("hello.wasm")).unwrap();
    fs::write(dir.join("note.txt"), "second\n").unwrap();
    cli(store.path(), recipes.path())
        .args(["exec", "--image", "hello", "--src"])
        .arg(src.path())
        .args(["--", "hi"])
        .assert()
        .success()
        .stdout("hello from wasm\n")
        .stderr(predicate::str::contains(
            "taking the module of hello from the store",
        ));
}

/// A wheel of `files` (name, mode, text) at `path`.
fn write_wheel(path: &Path, files: &[(&str, u32, &str)]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    for (name, mode, text) in files {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        zip.start_file(*name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

/// A `hello` recipe built by a script from `inputs` (TOML of `[[source.inputs]]` tables)
/// with `script`, which must leave `ran.txt`.
fn script_recipe(recipes: &Path, script: &str, inputs: &str) {
    let dir = recipes.join("hello");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("hello.wasm"), wat::parse_str(HELLO).unwrap()).unwrap();
    fs::write(dir.join("build.sh"), script).unwrap();
    fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"hello\"\nversion = \"1.0\"\ncommands = [\"hello\"]\n\n\
             [source]\nkind = \"script\"\nscript = \"build.sh\"\nuses = [\"hello.wasm\"]\n\
             module = \"hello.wasm\"\noutputs = [\"ran.txt\"]\n\n{inputs}"
        ),
    )
    .unwrap();
}

/// A script bundle's inputs: a Debian source file from the pool of the archive that
/// `WASMBUILD_DEBIAN_ARCHIVE` names (no apt asked) and a wheel from the package index,
/// unpacked with its program still executable. A file the archive does not have is an
/// error naming it, and nothing is built.
#[test]
fn a_script_bundles_inputs_come_from_a_debian_pool_and_the_index_a_wheel_unpacked() {
    use crate::common::index::{Options, TestIndex};
    let [store, recipes, dists] = temp_dirs();
    let source = dists.path().join("libhello_1.0.orig.tar.gz");
    fs::write(&source, "the source\n").unwrap();
    let wheel = dists.path().join("hellotool-1.0-py3-none-any.whl");
    write_wheel(
        &wheel,
        &[
            ("hellotool/run", 0o755, "#!/bin/sh\necho the tool ran\n"),
            (
                "hellotool-1.0.dist-info/METADATA",
                0o644,
                "Name: hellotool\n",
            ),
        ],
    );
    let index = TestIndex::serve(&[source, wheel], Options::default());
    let archive = index.url.replace("/simple", "/debian");
    let sha = |file: &str| index.served(file).sha256.clone();
    let debian = |package: &str, file: &str, sha256: &str| {
        format!(
            "[[source.inputs]]\nkind = \"debian-source\"\npackage = \"{package}\"\n\
             suite = \"trixie\"\nfile = \"{file}\"\nsha256 = \"{sha256}\"\n\n"
        )
    };
    let inputs = debian(
        "libhello",
        "libhello_1.0.orig.tar.gz",
        &sha("libhello_1.0.orig.tar.gz"),
    ) + &format!(
        "[[source.inputs]]\nkind = \"pypi\"\npackage = \"hellotool==1.0\"\nunpack = true\n\
             files = [{{ file = \"hellotool-1.0-py3-none-any.whl\", sha256 = \"{}\" }}]\n",
        sha("hellotool-1.0-py3-none-any.whl")
    );
    let script = r#"set -eu
grep -qx "the source" "$WASMBUILD_INPUTS/libhello_1.0.orig.tar.gz"
"$WASMBUILD_INPUTS/hellotool-1.0-py3-none-any/hellotool/run" >"$WASMBUILD_OUT/ran.txt"
grep -qx "the tool ran" "$WASMBUILD_OUT/ran.txt"
cp "$WASMBUILD_RECIPE_DIR/hello.wasm" "$WASMBUILD_OUT/hello.wasm"
"#;
    let build = || {
        let mut cli = cli(store.path(), recipes.path());
        cli.env("WASMBUILD_DEBIAN_ARCHIVE", &archive)
            .env("PIP_INDEX_URL", &index.url)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .args(["runtime", "build", "hello"]);
        cli
    };
    script_recipe(recipes.path(), script, &inputs);
    stderr_of_success(&mut build());
    let requests = index.requests.lock().unwrap().clone();
    assert!(
        requests.contains(&"/debian/pool/main/libh/libhello/libhello_1.0.orig.tar.gz".to_owned()),
        "{requests:?}"
    );
    cli(store.path(), recipes.path())
        .args(["exec", "--image", "hello", "--", "hello"])
        .assert()
        .success()
        .stdout("hello from wasm\n");

    let gone = "0".repeat(64);
    script_recipe(
        recipes.path(),
        script,
        &debian("python3.13", "python3.13_3.13.0.orig.tar.xz", &gone),
    );
    build().assert().failure().stderr(
        predicate::str::contains("/debian/pool/main/p/python3.13/python3.13_3.13.0.orig.tar.xz")
            .and(predicate::str::contains(
                "not fetched from the Debian archive",
            )),
    );
}

/// `wasmbuild exec --image base -- ARGS` over the shared test store, succeeding.
fn exec_base(args: &[&str]) -> assert_cmd::assert::Assert {
    crate::common::wasmbuild()
        .args(["exec", "--image", "base", "--"])
        .args(args)
        .assert()
        .success()
}

// A bundle of a recipe wasmbuild carries, once found current, is remembered as current (the
// next command start reads neither the recipe nor the manifest to know it); a memo naming
// another bundle is not taken for this one's: the bundle is compared again, and remembered.
#[test]
fn a_bundle_found_current_for_a_carried_recipe_is_remembered() {
    crate::common::ensure_bundle("base");
    let store = crate::common::store_dir();
    let run = || {
        exec_base(&["true"]).stderr("");
    };
    run();
    let built = fs::read_to_string(store.join("refs/bundles/base")).unwrap();
    let built = built.trim();
    let memo = fs::read_dir(store.join("current-bundles"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with("-base"))
        .expect("a memo for the base recipe");
    assert_eq!(fs::read_to_string(&memo).unwrap(), built);
    fs::write(&memo, "0".repeat(64)).unwrap();
    run();
    assert_eq!(fs::read_to_string(&memo).unwrap(), built);
}

// A manifest read once is kept parsed (JSON) beside the store; a kept copy that does not
// parse is read again from the store's blob, and kept again.
#[test]
fn a_kept_manifest_that_does_not_parse_is_read_again_from_the_store() {
    crate::common::ensure_bundle("base");
    let store = crate::common::store_dir();
    let run = || {
        exec_base(&["echo", "ran"]).stdout("ran\n");
    };
    run();
    let built = fs::read_to_string(store.join("refs/bundles/base")).unwrap();
    let kept = store.join(format!("parsed-manifests/{}.json", built.trim()));
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&kept).unwrap()).unwrap();
    assert_eq!(json["name"], "base");
    fs::write(&kept, "{\"name\": ").unwrap();
    run();
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&kept).unwrap()).unwrap();
    assert_eq!(json["name"], "base");
}
