//! Bytecode for a bundle's extra Python files, made at bundle build by the bundle's own
//! interpreter. Guests see a bundle read-only, so CPython could never write its
//! `__pycache__` there and would compile the same files again at every start (~25 ms of a
//! `python -c pass` here). The `.pyc` files are unchecked-hash ones: they carry no mtime (the
//! bundle stays reproducible) and are used without reading the source again; a changed
//! source changes the recipe, which rebuilds the bundle and its bytecode.

use std::path::Path;

use cap_std::fs::Dir;

use super::{RuntimeError, recipe::Recipe};
use crate::sandbox::{
    GuestCommand, GuestExit, Layout, LoadedModule, Mount, Sandbox, SharedBuffer,
    layout::RUNTIMES_DIR,
};

/// Compiles each `.py` of the recipe's files with the guest; the sources are laid out in
/// `scratch` as the bundle will lay them out and mounted where the bundle will be, so each
/// code object names the path its source has in a build. Returns (bundle path, bytes) of
/// every `.pyc`.
pub(super) fn compile(
    sandbox: &Sandbox,
    module: &LoadedModule,
    recipe: &Recipe,
    command: &str,
    scratch: &Path,
) -> Result<Vec<(String, Vec<u8>)>, RuntimeError> {
    let io = |e: std::io::Error| RuntimeError::Io(format!("{}: {e}", scratch.display()));
    std::fs::create_dir_all(scratch).map_err(io)?;
    let root = Dir::open_ambient_dir(scratch, cap_std::ambient_authority()).map_err(io)?;
    let sources: Vec<&String> = recipe
        .files
        .keys()
        .filter(|path| source_parts(path).is_some())
        .collect();
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    for path in &sources {
        let from = recipe.dir.join(&recipe.files[*path]);
        let bytes = std::fs::read(&from)
            .map_err(|e| RuntimeError::Io(format!("{}: {e}", from.display())))?;
        if let Some((dir, _)) = path.rsplit_once('/') {
            root.create_dir_all(dir).map_err(io)?;
        }
        root.write(path.as_str(), bytes).map_err(io)?;
    }

    let bundle_root = format!("{RUNTIMES_DIR}/{}", recipe.name);
    let mut argv = vec![
        command.to_owned(),
        "-I".into(),
        "-S".into(),
        "-c".into(),
        COMPILE.into(),
    ];
    argv.extend(sources.iter().map(|p| format!("{bundle_root}/{p}")));
    let stderr = SharedBuffer::default();
    let exit = sandbox.run(
        module,
        GuestCommand {
            name: command.to_owned(),
            argv,
            env: Vec::new(),
            layout: Layout {
                mounts: vec![Mount {
                    guest: bundle_root,
                    host: scratch.to_owned(),
                    writable: true,
                }],
            },
            cwd: "/".into(),
            stdin: Box::new(std::io::empty()),
            stdout: Box::new(std::io::sink()),
            stderr: Box::new(stderr.clone()),
            terminal: [false; 3],
            deadline: None,
            cancel: None,
            kill: None,
            spawner: None,
            determinism: None,
        },
    )?;
    if exit != GuestExit::Exited(0) {
        return Err(RuntimeError::Invalid {
            name: recipe.name.clone(),
            message: format!(
                "compiling its Python files failed ({exit:?}): {}",
                String::from_utf8_lossy(&stderr.contents())
            ),
        });
    }

    // What the guest wrote is read back through the scratch directory's capability, and
    // only where bytecode of a listed source belongs.
    let mut compiled = Vec::new();
    for path in sources {
        let (dir, stem) = source_parts(path).expect("filtered above");
        let cache = join(dir, "__pycache__");
        let mut found = Vec::new();
        for entry in root.read_dir(&cache).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let name = name.to_string_lossy();
            let bundle_path = join(&cache, &name);
            if is_bytecode_of(&bundle_path, dir, stem) {
                found.push(bundle_path);
            }
        }
        if found.is_empty() {
            return Err(RuntimeError::Invalid {
                name: recipe.name.clone(),
                message: format!("`{command}` wrote no bytecode for {path}"),
            });
        }
        for bundle_path in found {
            let bytes = root.read(&bundle_path).map_err(io)?;
            compiled.push((bundle_path, bytes));
        }
    }
    compiled.sort();
    compiled.dedup();
    Ok(compiled)
}

/// The guest program: `py_compile` each argument to where the import system looks.
const COMPILE: &str = "\
import importlib.util, py_compile, sys
for source in sys.argv[1:]:
    py_compile.compile(source, cfile=importlib.util.cache_from_source(source), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
";

/// (directory, stem) of a bundle path naming a Python source: `lib/a/b.py` → (`lib/a`, `b`).
pub(super) fn source_parts(path: &str) -> Option<(&str, &str)> {
    let module = path.strip_suffix(".py")?;
    Some(match module.rsplit_once('/') {
        Some((dir, stem)) => (dir, stem),
        None => ("", module),
    })
}

/// Whether `path` is bytecode of the source `dir/stem.py`: `dir/__pycache__/stem.<tag>.pyc`.
pub(super) fn is_bytecode_of(path: &str, dir: &str, stem: &str) -> bool {
    let cache = join(dir, "__pycache__");
    path.strip_prefix(cache.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|name| name.strip_prefix(stem))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".pyc"))
        .is_some_and(|tag| !tag.is_empty() && !tag.contains('/'))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_bytecode_of_a_source() {
        assert_eq!(source_parts("lib/a/b.py"), Some(("lib/a", "b")));
        assert_eq!(source_parts("top.py"), Some(("", "top")));
        assert_eq!(source_parts("lib/b.pyc"), None);
        assert!(is_bytecode_of(
            "lib/a/__pycache__/b.cpython-312.pyc",
            "lib/a",
            "b"
        ));
        assert!(is_bytecode_of("__pycache__/top.cpython-313.pyc", "", "top"));
        // Another module whose name starts with the same letters, or no tag at all.
        assert!(!is_bytecode_of(
            "lib/__pycache__/bb.cpython-312.pyc",
            "lib",
            "b"
        ));
        assert!(!is_bytecode_of("lib/__pycache__/b.pyc", "lib", "b"));
        assert!(!is_bytecode_of(
            "lib/x/__pycache__/b.cpython-312.pyc",
            "lib",
            "b"
        ));
    }
}
