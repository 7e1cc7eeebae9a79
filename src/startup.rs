//! Where a command's start-up time goes: named marks of its phases (arguments parsed,
//! bundles checked, engine ready, module loaded, …), printed to stderr as they pass when
//! `WASMBUILD_STARTUP_PHASES` is set, and costing one load of a flag when it is not. The
//! engine benchmark reads them for its table of a `python -c pass`'s phases.
//!
//! A line is `wasmbuild startup <ms> <phase>`: milliseconds since the process's first
//! mark. The first mark (`main`) also gives the host's monotonic clock, in seconds, so a
//! parent can tell what came before it (loading the binary) and after the last (exit).

use std::sync::OnceLock;
use std::time::Instant;

/// The variable that turns the marks on.
pub const VARIABLE: &str = "WASMBUILD_STARTUP_PHASES";

/// The first mark's instant, or `None` when marks are off (read once).
fn origin() -> Option<Instant> {
    static ORIGIN: OnceLock<Option<Instant>> = OnceLock::new();
    *ORIGIN.get_or_init(|| std::env::var_os(VARIABLE).map(|_| Instant::now()))
}

/// Marks the end of `phase`.
pub fn mark(phase: &str) {
    let Some(origin) = origin() else {
        return;
    };
    let ms = origin.elapsed().as_secs_f64() * 1e3;
    if phase == MAIN {
        eprintln!(
            "wasmbuild startup {ms:.3} {phase} {:.6}",
            monotonic_seconds()
        );
    } else {
        eprintln!("wasmbuild startup {ms:.3} {phase}");
    }
}

/// The first phase: the binary loaded, `main` entered.
pub const MAIN: &str = "main";

/// The host's monotonic clock (`CLOCK_MONOTONIC`), in seconds: what the `main` mark gives,
/// for a parent to read beside it.
pub fn monotonic_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return 0.0;
    }
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}
