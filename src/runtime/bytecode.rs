//! Python bytecode made by a bundle's own interpreter, in a guest that sees nothing but a
//! private copy of the sources. Two users: a bundle's extra Python files at bundle build
//! (guests see a bundle read-only, so CPython could never cache them itself and compiled them
//! again at every start: ~15 ms of a `python -c pass` here), and the wheels a build's pip
//! installs (`python::bytecode`). The compile runs apart from any build's files, so what it
//! writes is the interpreter's own output and nothing a build placed there.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use cap_std::fs::Dir;

use super::{RuntimeError, recipe::Recipe};
use crate::sandbox::{
    GuestCommand, GuestExit, Layout, LoadedModule, Mount, Sandbox, SharedBuffer,
    layout::RUNTIMES_DIR,
};

/// One compile: which interpreter, where the sources appear to it, and how the `.pyc`
/// proves itself current.
pub struct Compile<'a> {
    pub sandbox: &'a Sandbox,
    pub module: &'a LoadedModule,
    /// The interpreter's command name (`argv[0]`).
    pub command: &'a str,
    /// The guest directory the sources appear under, as they will in a build, so that each
    /// code object names its source's real path.
    pub guest_root: &'a str,
    pub invalidation: Invalidation,
    /// Files of the bundle the interpreter needs beside the sources (its standard library,
    /// when the module does not embed it): (path below the root, host file), placed in the
    /// private directory first.
    pub context: &'a [(String, std::path::PathBuf)],
    /// What else the interpreter sees, read-only: its installed bundle where runs see it,
    /// when that holds its standard library.
    pub mounts: &'a [Mount],
    /// Whether a source that does not compile fails the whole compile (else it is skipped).
    pub strict: bool,
    pub deadline: Option<Instant>,
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Compile<'_> {
    /// Compiles `sources` (paths below the guest root, with their text) in a fresh private
    /// directory; returns (path below the root, bytes) of each `.pyc` written.
    pub fn run(
        &self,
        sources: &[(String, Vec<u8>)],
    ) -> Result<Vec<(String, Vec<u8>)>, RuntimeError> {
        let sources: Vec<&(String, Vec<u8>)> = sources
            .iter()
            .filter(|(path, _)| source_parts(path).is_some())
            .collect();
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let scratch = tempfile::tempdir().map_err(|e| RuntimeError::Io(e.to_string()))?;
        let io = |e: std::io::Error| RuntimeError::Io(format!("{}: {e}", scratch.path().display()));
        let root =
            Dir::open_ambient_dir(scratch.path(), cap_std::ambient_authority()).map_err(io)?;
        for (path, file) in self.context {
            if let Some((dir, _)) = path.rsplit_once('/') {
                root.create_dir_all(dir).map_err(io)?;
            }
            let bytes = std::fs::read(file)
                .map_err(|e| RuntimeError::Io(format!("{}: {e}", file.display())))?;
            root.write(path.as_str(), bytes).map_err(io)?;
        }
        for (path, bytes) in &sources {
            if let Some((dir, _)) = path.rsplit_once('/') {
                root.create_dir_all(dir).map_err(io)?;
            }
            root.write(path.as_str(), bytes).map_err(io)?;
        }

        let mut argv = vec![
            self.command.to_owned(),
            "-I".into(),
            "-S".into(),
            "-c".into(),
            compile_program(self.invalidation, self.strict),
        ];
        argv.extend(
            sources
                .iter()
                .map(|(p, _)| format!("{}/{p}", self.guest_root)),
        );
        let stderr = SharedBuffer::default();
        let exit = self.sandbox.run(
            self.module,
            GuestCommand {
                name: self.command.to_owned(),
                layout: Layout {
                    mounts: std::iter::once(Mount {
                        guest: self.guest_root.to_owned(),
                        host: scratch.path().to_owned(),
                        writable: true,
                    })
                    .chain(self.mounts.iter().map(|m| Mount {
                        writable: false,
                        ..m.clone()
                    }))
                    .collect(),
                },
                stderr: Box::new(stderr.clone()),
                deadline: self.deadline,
                cancel: self.cancel.clone(),
                ..GuestCommand::bare(argv)
            },
        )?;
        if exit != GuestExit::Exited(0) {
            return Err(RuntimeError::Io(format!(
                "compiling Python files to bytecode failed ({exit:?}): {}",
                String::from_utf8_lossy(&stderr.contents())
            )));
        }

        // Read back through the scratch directory's capability, only where the bytecode of
        // a listed source belongs.
        let mut compiled = Vec::new();
        for (path, _) in sources {
            let (dir, stem) = source_parts(path).expect("filtered above");
            let cache = join(dir, "__pycache__");
            let Ok(entries) = root.read_dir(&cache) else {
                continue;
            };
            for entry in entries {
                let name = entry.map_err(io)?.file_name();
                let pyc = join(&cache, &name.to_string_lossy());
                if is_bytecode_of(&pyc, dir, stem) {
                    let bytes = root.read(&pyc).map_err(io)?;
                    compiled.push((pyc, bytes));
                }
            }
        }
        compiled.sort();
        compiled.dedup();
        Ok(compiled)
    }
}

/// The bytecode of a recipe's extra `.py` files, as (bundle path, bytes), made by the
/// bundle's `command` where the bundle will be mounted (unchecked-hash: no mtime, so the
/// bundle stays reproducible; a changed source changes the recipe, which rebuilds it).
pub(super) fn for_recipe(
    sandbox: &Sandbox,
    module: &LoadedModule,
    recipe: &Recipe,
    command: &str,
    context: &[(String, std::path::PathBuf)],
) -> Result<Vec<(String, Vec<u8>)>, RuntimeError> {
    let mut sources = Vec::new();
    for (path, file) in &recipe.files {
        if source_parts(path).is_some() {
            let from = recipe.dir.join(file);
            let bytes = std::fs::read(&from)
                .map_err(|e| RuntimeError::Io(format!("{}: {e}", from.display())))?;
            sources.push((path.clone(), bytes));
        }
    }
    let compiled = Compile {
        sandbox,
        module,
        command,
        guest_root: &format!("{RUNTIMES_DIR}/{}", recipe.name),
        invalidation: Invalidation::UncheckedHash,
        context,
        mounts: &[],
        strict: true,
        deadline: None,
        cancel: None,
    }
    .run(&sources)?;
    for (path, _) in &sources {
        let (dir, stem) = source_parts(path).expect("a .py path");
        if !compiled
            .iter()
            .any(|(pyc, _)| is_bytecode_of(pyc, dir, stem))
        {
            return Err(RuntimeError::Invalid {
                name: recipe.name.clone(),
                message: format!("`{command}` wrote no bytecode for {path}"),
            });
        }
    }
    Ok(compiled)
}

/// How a `.pyc` proves it is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// Trusted as it is: for sources nobody can change (a bundle is read-only to guests).
    UncheckedHash,
    /// The source's hash is checked at import: for files a build could edit.
    CheckedHash,
}

/// The guest program that `py_compile`s each argument to where the import system looks.
/// Strict: the first failure fails the program. Lenient (for packages, whose files may not
/// all be Python 3, as pip's own compile step allows): a file that fails is skipped.
pub fn compile_program(invalidation: Invalidation, strict: bool) -> String {
    let mode = match invalidation {
        Invalidation::UncheckedHash => "UNCHECKED_HASH",
        Invalidation::CheckedHash => "CHECKED_HASH",
    };
    let on_error = if strict { "raise" } else { "pass" };
    format!(
        "import importlib.util, py_compile, sys\n\
         for source in sys.argv[1:]:\n\
         \x20   try:\n\
         \x20       py_compile.compile(source, cfile=importlib.util.cache_from_source(source),\n\
         \x20           doraise=True, invalidation_mode=py_compile.PycInvalidationMode.{mode})\n\
         \x20   except Exception:\n\
         \x20       {on_error}\n"
    )
}

/// (directory, stem) of a bundle path naming a Python source: `lib/a/b.py` → (`lib/a`, `b`).
pub fn source_parts(path: &str) -> Option<(&str, &str)> {
    let module = path.strip_suffix(".py")?;
    Some(match module.rsplit_once('/') {
        Some((dir, stem)) => (dir, stem),
        None => ("", module),
    })
}

/// Whether `path` is bytecode of the source `dir/stem.py`: `dir/__pycache__/stem.<tag>.pyc`.
pub fn is_bytecode_of(path: &str, dir: &str, stem: &str) -> bool {
    let cache = join(dir, "__pycache__");
    path.strip_prefix(cache.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|name| name.strip_prefix(stem))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".pyc"))
        .is_some_and(|tag| !tag.is_empty() && !tag.contains('/'))
}

/// Whether `path` is bytecode of one of `sources` (paths of `.py` files).
pub fn is_bytecode_of_any(path: &str, sources: &[String]) -> bool {
    sources.iter().any(|source| {
        source_parts(source).is_some_and(|(dir, stem)| is_bytecode_of(path, dir, stem))
    })
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
    fn the_compile_program_is_python_with_the_mode_asked() {
        let strict = compile_program(Invalidation::UncheckedHash, true);
        assert!(strict.contains("PycInvalidationMode.UNCHECKED_HASH)"));
        assert!(
            strict.ends_with("    except Exception:\n        raise\n"),
            "{strict}"
        );
        let lenient = compile_program(Invalidation::CheckedHash, false);
        assert!(lenient.contains("PycInvalidationMode.CHECKED_HASH)"));
        assert!(lenient.ends_with("        pass\n"));
        assert!(lenient.starts_with("import importlib.util, py_compile, sys\nfor source in"));
    }

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
