//! Which runs of CPython may start from the bundle's snapshot. The snapshot holds an
//! interpreter whose core was started with an empty environment and `PYTHONHASHSEED=0`
//! (runtimes/python/wasmbuild_main.c); the run then finishes start-up from its own
//! argv and environment, so streams, `sys.path`, `site`, warnings and the rest are its own.
//! What the core fixed — the allocator, the hash secret, UTF-8 mode, dev mode, the
//! optimisation level of the modules already imported, frozen modules, the integer string
//! limit, where the standard library is — cannot change afterwards: a run that asks for
//! any of it otherwise starts cold from the plain module.

/// `PYTHON*` variables a run from the snapshot honours as a cold start would (everything
/// they steer happens after the core is up). Any other `PYTHON*` variable means a cold
/// start.
const HONOURED: &[&str] = &[
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONIOENCODING",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONSAFEPATH",
    "PYTHONPYCACHEPREFIX",
    "PYTHONWARNINGS",
    "PYTHONWARNDEFAULTENCODING",
    "PYTHONBREAKPOINT",
    "PYTHONSTARTUP",
    "PYTHONINSPECT",
    "PYTHONFAULTHANDLER",
    "PYTHONTRACEMALLOC",
    "PYTHONASYNCIODEBUG",
    "PYTHON_COLORS",
    "PYTHON_BASIC_REPL",
    "PYTHON_HISTORY",
    "PYTHON_CPU_COUNT",
];

/// Whether a run with `argv` and `env` may start from the snapshot.
pub fn usable(argv: &[String], env: &[(String, String)]) -> bool {
    env.iter().all(|(key, value)| {
        !key.starts_with("PYTHON")
            || HONOURED.contains(&key.as_str())
            || (key == "PYTHONHASHSEED" && value == "0")
    }) && options_usable(argv.get(1..).unwrap_or_default())
}

/// The interpreter's options (up to the script, `-c` or `-m`): `-O`, `-X`, `-v`, `-R` and
/// `--check-hash-based-pycs` change what the core or the snapshot's imports fixed.
fn options_usable(args: &[String]) -> bool {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-" || arg == "--" || !arg.starts_with('-') {
            return true;
        }
        if let Some(long) = arg.strip_prefix("--") {
            if long.starts_with("check-hash-based-pycs") {
                return false;
            }
            continue;
        }
        let flags = &arg[1..];
        for (i, flag) in flags.char_indices() {
            match flag {
                // The rest of argv belongs to the program.
                'c' | 'm' => return true,
                'W' => {
                    // `-Wdefault` or `-W default`.
                    if i + 1 == flags.len() {
                        args.next();
                    }
                    break;
                }
                'O' | 'X' | 'v' | 'R' => return false,
                _ => {}
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ordinary_runs_start_from_the_snapshot() {
        let plain = env(&[
            ("PATH", "/usr/bin"),
            ("PYTHONPATH", "/x"),
            ("HOME", "/root"),
        ]);
        for line in [
            "python3 -c pass",
            "python3 -u -B -c import os",
            "python3 -m pytest -O -X dev",
            "python3 script.py -O -X importtime",
            "python3 -W error -c pass",
            "python3 -Werror::DeprecationWarning -I -S -E -s -P -q -c pass",
            "python3 -",
            "python3",
        ] {
            assert!(usable(&argv(line), &plain), "{line}");
        }
        assert!(usable(
            &argv("python -c pass"),
            &env(&[("PYTHONHASHSEED", "0")])
        ));
    }

    #[test]
    fn runs_that_change_what_the_core_fixed_start_cold() {
        let plain = env(&[]);
        for line in [
            "python3 -O -c pass",
            "python3 -OO script.py",
            "python3 -bO script.py",
            "python3 -X dev -c pass",
            "python3 -Xutf8=0 -c pass",
            "python3 -v -c pass",
            "python3 -W error -X frozen_modules=off -c pass",
            "python3 --check-hash-based-pycs always -c pass",
        ] {
            assert!(!usable(&argv(line), &plain), "{line}");
        }
        for (key, value) in [
            ("PYTHONHASHSEED", "random"),
            ("PYTHONHASHSEED", "1"),
            ("PYTHONMALLOC", "malloc"),
            ("PYTHONDEVMODE", "1"),
            ("PYTHONUTF8", "0"),
            ("PYTHONOPTIMIZE", "1"),
            ("PYTHONHOME", "/elsewhere"),
            ("PYTHONINTMAXSTRDIGITS", "0"),
        ] {
            assert!(
                !usable(&argv("python3 -c pass"), &env(&[(key, value)])),
                "{key}={value}"
            );
        }
    }
}
