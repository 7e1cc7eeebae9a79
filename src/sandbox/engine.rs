//! The wasmtime engine's settings: what every sandbox runs with, and the variations that
//! `WASMBUILD_ENGINE` selects so a benchmark can measure what each one costs
//! (`benches/engine.rs`). The defaults are the ones the measurements support; the variations
//! exist to measure, not to run builds (without epoch interruption a looping guest no
//! longer stops at its deadline).
//!
//! `WASMBUILD_ENGINE` is a comma-separated list of `epoch=on|off`, `opt=none|speed|size`,
//! `reservation=BYTES`, `guard=BYTES`, `cow=on|off`, `simd=on|off`, `pool=on|off`,
//! `lazy_tables=on|off` (sizes take `K`, `M`, `G` suffixes), and `profiler=perfmap|jitdump`
//! in a binary built with the `profiling` feature (`perf record` then names the guest's
//! functions).

use wasmtime::{Config, OptLevel};

/// The environment variable that varies the engine.
pub const ENGINE_VARIABLE: &str = "WASMBUILD_ENGINE";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Epoch checks in loops and calls: how deadlines and cancellation stop a guest.
    pub epoch_interruption: bool,
    pub opt_level: Opt,
    /// Virtual memory reserved per linear memory (`None`: wasmtime's default, 4 GiB on
    /// 64-bit hosts, where 32-bit memories need no explicit bounds checks).
    pub memory_reservation: Option<u64>,
    /// Guard region after each memory (`None`: wasmtime's default).
    pub memory_guard_size: Option<u64>,
    /// Linear memories initialised by mapping the module's data copy-on-write.
    pub copy_on_write: bool,
    pub simd: bool,
    /// The pooling allocator (instances and memories from pre-reserved slots); `None`: as
    /// the process suits (`SandboxConfig::one_program`).
    pub pooling: Option<bool>,
    /// Tables filled on first use of each entry (wasmtime's default: cheaper instantiation)
    /// rather than when the instance is made (cheaper indirect calls: no test of an
    /// initialised bit on each; 3–4 % of a CPU-bound CPython script, for 0.2–0.4 ms more
    /// per start).
    pub lazy_tables: bool,
    /// What wasmtime tells a native profiler about the code it generates.
    pub profiler: Profiler,
}

/// A native profiler wasmtime describes its generated code to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profiler {
    None,
    /// `/tmp/perf-<pid>.map`, read by `perf report`.
    PerfMap,
    /// `jit-<pid>.dump` in the working directory, for `perf inject --jit`.
    JitDump,
}

/// Cranelift's optimisation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    None,
    Speed,
    SpeedAndSize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            epoch_interruption: true,
            opt_level: Opt::Speed,
            memory_reservation: None,
            memory_guard_size: None,
            copy_on_write: true,
            simd: true,
            pooling: None,
            lazy_tables: false,
            profiler: Profiler::None,
        }
    }
}

impl EngineSettings {
    /// The defaults, varied by `WASMBUILD_ENGINE` if it is set.
    pub fn from_env() -> Result<EngineSettings, String> {
        match std::env::var(ENGINE_VARIABLE) {
            Ok(text) => {
                EngineSettings::parse(&text).map_err(|e| format!("{ENGINE_VARIABLE}={text:?}: {e}"))
            }
            Err(_) => Ok(EngineSettings::default()),
        }
    }

    /// The defaults varied by `key=value,…`.
    pub fn parse(text: &str) -> Result<EngineSettings, String> {
        let mut settings = EngineSettings::default();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item}: expected KEY=VALUE"))?;
            let switch = || match value {
                "on" | "true" | "1" => Ok(true),
                "off" | "false" | "0" => Ok(false),
                _ => Err(format!("{key}: expected on or off, not {value:?}")),
            };
            match key {
                "epoch" => settings.epoch_interruption = switch()?,
                "cow" => settings.copy_on_write = switch()?,
                "simd" => settings.simd = switch()?,
                "pool" => settings.pooling = Some(switch()?),
                "lazy_tables" => settings.lazy_tables = switch()?,
                "opt" => {
                    settings.opt_level = match value {
                        "none" => Opt::None,
                        "speed" => Opt::Speed,
                        "size" | "speed_and_size" => Opt::SpeedAndSize,
                        _ => {
                            return Err(format!(
                                "opt: expected none, speed or size, not {value:?}"
                            ));
                        }
                    }
                }
                "profiler" => {
                    settings.profiler = match value {
                        "none" => Profiler::None,
                        "perfmap" => Profiler::PerfMap,
                        "jitdump" => Profiler::JitDump,
                        _ => {
                            return Err(format!(
                                "profiler: expected none, perfmap or jitdump, not {value:?}"
                            ));
                        }
                    };
                    if settings.profiler != Profiler::None && !cfg!(feature = "profiling") {
                        return Err(
                            "profiler: this binary was built without the `profiling` feature"
                                .to_string(),
                        );
                    }
                }
                "reservation" => settings.memory_reservation = Some(size(value)?),
                "guard" => settings.memory_guard_size = Some(size(value)?),
                _ => {
                    return Err(format!(
                        "unknown setting {key:?} (epoch, opt, reservation, guard, cow, simd, pool, lazy_tables, profiler)"
                    ));
                }
            }
        }
        Ok(settings)
    }

    /// Applies everything but the allocation strategy to `config`.
    pub(super) fn apply(&self, config: &mut Config) {
        config.epoch_interruption(self.epoch_interruption);
        config.memory_init_cow(self.copy_on_write);
        config.table_lazy_init(self.lazy_tables);
        config.cranelift_opt_level(match self.opt_level {
            Opt::None => OptLevel::None,
            Opt::Speed => OptLevel::Speed,
            Opt::SpeedAndSize => OptLevel::SpeedAndSize,
        });
        if !self.simd {
            config.wasm_relaxed_simd(false);
            config.wasm_simd(false);
        }
        if let Some(bytes) = self.memory_reservation {
            config.memory_reservation(bytes);
        }
        if let Some(bytes) = self.memory_guard_size {
            config.memory_guard_size(bytes);
        }
        #[cfg(feature = "profiling")]
        config.profiler(match self.profiler {
            Profiler::None => wasmtime::ProfilingStrategy::None,
            Profiler::PerfMap => wasmtime::ProfilingStrategy::PerfMap,
            Profiler::JitDump => wasmtime::ProfilingStrategy::JitDump,
        });
    }
}

/// `4G`, `64M`, `65536`.
fn size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_setting_and_refuses_the_unknown() {
        let s = EngineSettings::parse(
            "epoch=off, opt=none,reservation=64M,guard=0,cow=off,simd=off,pool=off,lazy_tables=on",
        )
        .unwrap();
        assert!(!s.epoch_interruption && !s.copy_on_write && !s.simd);
        assert_eq!(s.pooling, Some(false));
        assert!(s.lazy_tables && !EngineSettings::default().lazy_tables);
        assert_eq!(s.opt_level, Opt::None);
        assert_eq!(s.memory_reservation, Some(64 << 20));
        assert_eq!(s.memory_guard_size, Some(0));
        assert_eq!(
            EngineSettings::parse("").unwrap(),
            EngineSettings::default()
        );
        assert!(EngineSettings::parse("epoch=maybe").is_err());
        assert!(
            EngineSettings::parse("fast=on")
                .unwrap_err()
                .contains("unknown setting")
        );
        assert!(EngineSettings::parse("reservation=4Q").is_err());
        assert!(EngineSettings::parse("guard=99999999999G").is_err());
        assert!(EngineSettings::parse("profiler=vtune").is_err());
        assert_eq!(
            EngineSettings::parse("profiler=perfmap").is_ok(),
            cfg!(feature = "profiling")
        );
    }
}
