//! Which distribution files the guest can use: wheel file names parsed as the wheel spec
//! (binary distribution format) says, matched against the tags the guest's CPython on WASI
//! accepts, in pip's order of preference (`packaging.tags.sys_tags()`); sdist file names.

use std::str::FromStr;

use pep440_rs::Version;

use super::normalize_name;
use crate::python::Interpreter;

/// The guest's platform tag: `sysconfig.get_platform()` with `-` and `.` as `_`.
/// Observed in the guest (see `markers::guest_markers` for how to re-check).
pub const GUEST_PLATFORM_TAG: &str = "wasi_0_0_0_wasm32";

/// A parsed wheel file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// Normalized project name.
    pub name: String,
    pub version: Version,
    /// The expanded tag triples (compressed tag sets `py2.py3` give one triple each).
    pub tags: Vec<(String, String, String)>,
}

/// Parses `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
pub fn parse_wheel_name(file: &str) -> Option<WheelName> {
    let stem = file.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    let (name, version, python, abi, platform) = match parts.as_slice() {
        [n, v, py, abi, plat] => (n, v, py, abi, plat),
        [n, v, build, py, abi, plat] => {
            if !build.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            (n, v, py, abi, plat)
        }
        _ => return None,
    };
    let version = Version::from_str(version).ok()?;
    let mut tags = Vec::new();
    for py in python.split('.') {
        for a in abi.split('.') {
            for p in platform.split('.') {
                tags.push((
                    py.to_ascii_lowercase(),
                    a.to_ascii_lowercase(),
                    p.to_string(),
                ));
            }
        }
    }
    Some(WheelName {
        name: normalize_name(name),
        version,
        tags,
    })
}

/// The tags the guest accepts, most preferred first, as `packaging.tags.sys_tags()` lists
/// them for `python` (CPython 3.12: `cp312`) on the guest's platform: the interpreter's own
/// ABI, `abi3` of older CPythons and `none` on the guest platform, then `py3X`/`py3` on the
/// platform, then pure wheels (`cp312-none-any`, `py312-none-any`, `py3-none-any`,
/// `py311-none-any` … `py30-none-any`).
pub fn guest_tags(python: Interpreter) -> Vec<(String, String, String)> {
    let Interpreter { major, minor, .. } = python;
    let cp = format!("cp{major}{minor}");
    let plat = GUEST_PLATFORM_TAG.to_string();
    let mut tags = vec![
        (cp.clone(), cp.clone(), plat.clone()),
        (cp.clone(), "abi3".into(), plat.clone()),
        (cp.clone(), "none".into(), plat.clone()),
    ];
    for m in (2..minor).rev() {
        tags.push((format!("cp{major}{m}"), "abi3".into(), plat.clone()));
    }
    let py_versions: Vec<String> = std::iter::once(format!("py{major}{minor}"))
        .chain(std::iter::once(format!("py{major}")))
        .chain((0..minor).rev().map(|m| format!("py{major}{m}")))
        .collect();
    for py in &py_versions {
        tags.push((py.clone(), "none".into(), plat.clone()));
    }
    tags.push((cp, "none".into(), "any".into()));
    for py in &py_versions {
        tags.push((py.clone(), "none".into(), "any".into()));
    }
    tags
}

/// The rank of the best tag of `wheel` the guest accepts (lower is better), or `None`
/// when the guest cannot use it.
pub fn wheel_rank(wheel: &WheelName, accepted: &[(String, String, String)]) -> Option<usize> {
    wheel
        .tags
        .iter()
        .filter_map(|t| accepted.iter().position(|a| a == t))
        .min()
}

/// The source distribution extensions used (pip also takes the legacy ones).
const SDIST_EXTENSIONS: &[&str] = &[".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar"];

/// Parses `{name}-{version}.tar.gz` (or `.zip`, …) for project `project` (normalized):
/// the version is what follows the prefix whose normalized spelling is the project's name
/// (legacy sdists keep `-` in the name: `python-dateutil-2.9.0.post0.tar.gz`).
pub fn parse_sdist_name(file: &str, project: &str) -> Option<Version> {
    let stem = SDIST_EXTENSIONS
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    for (i, _) in stem.match_indices('-') {
        if normalize_name(&stem[..i]) == project
            && let Ok(v) = Version::from_str(&stem[i + 1..])
        {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(file: &str) -> Option<usize> {
        rank_on(Interpreter::from_version("3.12.0").unwrap(), file)
    }

    fn rank_on(python: Interpreter, file: &str) -> Option<usize> {
        wheel_rank(&parse_wheel_name(file).unwrap(), &guest_tags(python))
    }

    #[test]
    fn wheel_names_parse_with_build_tags_and_compressed_tag_sets() {
        let w = parse_wheel_name("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.name, "six");
        assert_eq!(w.version, Version::from_str("1.16.0").unwrap());
        assert_eq!(w.tags.len(), 2);
        let w = parse_wheel_name("Foo_Bar-2.0-1-py3-none-any.whl").unwrap();
        assert_eq!(w.name, "foo-bar");
        assert!(parse_wheel_name("foo-1.0-x-py3-none-any.whl").is_none());
        assert!(parse_wheel_name("foo-1.0-py3-none.whl").is_none());
        assert!(parse_wheel_name("foo-1.0.tar.gz").is_none());
    }

    #[test]
    fn the_guest_takes_pure_wheels_for_python_3_and_not_platform_wheels() {
        for ok in [
            "pytest-8.3.4-py3-none-any.whl",
            "six-1.16.0-py2.py3-none-any.whl",
            "typing_extensions-4.12.2-py37-none-any.whl",
            "foo-1.0-cp312-none-any.whl",
            "foo-1.0-py312-none-any.whl",
            "foo-1.0-cp312-abi3-wasi_0_0_0_wasm32.whl",
        ] {
            assert!(rank(ok).is_some(), "{ok}");
        }
        for no in [
            "foo-1.0-py2-none-any.whl",
            "foo-1.0-py313-none-any.whl",
            "foo-1.0-cp311-none-any.whl",
            "numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "numpy-2.1.3-cp312-cp312-win_amd64.whl",
            "foo-1.0-cp312-abi3-any.whl",
            "foo-1.0-py3-none-win32.whl",
        ] {
            assert!(rank(no).is_none(), "{no}");
        }
        // pip's order: the interpreter's own pure tag, then py312, then py3, then older.
        assert!(rank("a-1-cp312-none-any.whl") < rank("a-1-py312-none-any.whl"));
        assert!(rank("a-1-py312-none-any.whl") < rank("a-1-py3-none-any.whl"));
        assert!(rank("a-1-py3-none-any.whl") < rank("a-1-py311-none-any.whl"));
    }

    #[test]
    fn a_newer_interpreter_takes_older_abi3_wheels_but_not_older_interpreters_own_tags() {
        let py313 = Interpreter::from_version("3.13.5").unwrap();
        let rank = |file: &str| rank_on(py313, file);
        for ok in [
            "foo-1.0-cp313-none-any.whl",
            "foo-1.0-py313-none-any.whl",
            "foo-1.0-py312-none-any.whl",
            "foo-1.0-cp313-cp313-wasi_0_0_0_wasm32.whl",
            "foo-1.0-cp312-abi3-wasi_0_0_0_wasm32.whl",
        ] {
            assert!(rank(ok).is_some(), "{ok}");
        }
        for no in [
            "foo-1.0-cp312-none-any.whl",
            "foo-1.0-cp312-cp312-wasi_0_0_0_wasm32.whl",
            "foo-1.0-py314-none-any.whl",
        ] {
            assert!(rank(no).is_none(), "{no}");
        }
        assert!(rank("a-1-cp313-cp313-wasi_0_0_0_wasm32.whl") < rank("a-1-py3-none-any.whl"));
    }

    #[test]
    fn sdist_names_give_the_version_after_the_projects_name() {
        let v = |s: &str| Some(Version::from_str(s).unwrap());
        assert_eq!(
            parse_sdist_name("pytest-8.3.4.tar.gz", "pytest"),
            v("8.3.4")
        );
        assert_eq!(
            parse_sdist_name("python-dateutil-2.9.0.post0.tar.gz", "python-dateutil"),
            v("2.9.0.post0")
        );
        assert_eq!(
            parse_sdist_name("python_dateutil-2.9.0.post0.tar.gz", "python-dateutil"),
            v("2.9.0.post0")
        );
        assert_eq!(parse_sdist_name("toolz-1.0.0.zip", "toolz"), v("1.0.0"));
        assert_eq!(parse_sdist_name("toolz-1.0.0.tar.gz", "pytest"), None);
        assert_eq!(parse_sdist_name("toolz-1.0.0.exe", "toolz"), None);
    }
}
