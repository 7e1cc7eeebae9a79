//! The PEP 508 marker environment of the guest's interpreter.

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

use crate::python::Interpreter;

/// The values the guest's CPython gives, observed inside the sandbox (all in one place;
/// only the versions differ between bundles). To re-check, run in the python image:
///
/// ```text
/// wasmbuild exec --image python -- python -c 'import os, sys, platform, sysconfig;
///   print(os.name, sys.platform, platform.machine(), platform.system(),
///         platform.release(), platform.version(), platform.python_implementation(),
///         platform.python_version(), sys.implementation.name,
///         sys.implementation.version, sysconfig.get_platform())'
/// ```
///
/// (`implementation_version` is `sys.implementation.version` as PEP 508 formats it;
/// `tags::GUEST_PLATFORM_TAG` is `sysconfig.get_platform()` with `-` and `.` as `_`.)
pub fn guest_markers(python: Interpreter) -> MarkerEnvironment {
    let full = python.full_version();
    let short = format!("{}.{}", python.major, python.minor);
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: &full,
        os_name: "posix",
        platform_machine: "wasm32",
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system: "",
        platform_version: "",
        python_full_version: &full,
        python_version: &short,
        sys_platform: "wasi",
    })
    .expect("an interpreter's version is valid PEP 440")
}
