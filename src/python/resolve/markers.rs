//! The PEP 508 marker environment of the guest's interpreter.

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

/// The values the guest's CPython gives, observed inside the sandbox (all in one place).
/// To re-check, run in the python image:
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
pub const GUEST_MARKERS: MarkerEnvironmentBuilder<'static> = MarkerEnvironmentBuilder {
    implementation_name: "cpython",
    implementation_version: "3.12.0",
    os_name: "posix",
    platform_machine: "wasm32",
    platform_python_implementation: "CPython",
    platform_release: "",
    platform_system: "",
    platform_version: "",
    python_full_version: "3.12.0",
    python_version: "3.12",
    sys_platform: "wasi",
};

/// The marker environment markers of dependencies are evaluated in.
pub fn guest_markers() -> MarkerEnvironment {
    MarkerEnvironment::try_from(GUEST_MARKERS).expect("the guest's versions are valid PEP 440")
}
