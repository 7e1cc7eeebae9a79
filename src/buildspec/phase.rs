//! `phases`: the four build phases and their settings. `runtime-versions` belongs to
//! `install` only; elsewhere it is refused at its key, which is why a phase is read with a
//! hand-written visitor that knows which phase it reads.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::OnFailure;
use super::de::{CommandList, Text, scalar};
use super::{check_runtime_name, check_runtime_version, runtime_version_variable};

/// The phases of a buildspec; an absent phase does not run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Phases {
    #[serde(default, deserialize_with = "install_phase")]
    pub install: Option<Phase>,
    #[serde(default, deserialize_with = "other_phase")]
    pub pre_build: Option<Phase>,
    #[serde(default, deserialize_with = "other_phase")]
    pub build: Option<Phase>,
    #[serde(default, deserialize_with = "other_phase")]
    pub post_build: Option<Phase>,
}

/// One phase. A phase written with an empty or `null` body is present with no commands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phase {
    pub run_as: Option<String>,
    pub on_failure: OnFailure,
    /// `runtime-versions` (install only): runtime name → requested version, in file order,
    /// versions as written (`3.10` stays `3.10`).
    pub runtime_versions: Vec<(String, String)>,
    /// Scalars of any type, as written; block scalars kept whole (one command).
    pub commands: Vec<String>,
    pub finally: Vec<String>,
    /// The 1-based buildspec line each of `commands` starts on (empty when not known).
    pub command_lines: Vec<usize>,
    /// The same for `finally`.
    pub finally_lines: Vec<usize>,
}

fn install_phase<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Phase>, D::Error> {
    d.deserialize_option(PhaseVisitor { install: true })
        .map(Some)
}

fn other_phase<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Phase>, D::Error> {
    d.deserialize_option(PhaseVisitor { install: false })
        .map(Some)
}

#[derive(Clone, Copy, PartialEq)]
enum Field {
    RunAs,
    OnFailure,
    RuntimeVersions,
    Commands,
    Finally,
    /// A key CodeBuild ignores (the outline warns about it).
    Ignored,
}

struct PhaseVisitor {
    install: bool,
}

impl<'de> Visitor<'de> for PhaseVisitor {
    type Value = Phase;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a phase mapping (commands, finally, on-failure, run-as)")
    }

    fn visit_none<E: de::Error>(self) -> Result<Phase, E> {
        Ok(Phase::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Phase, E> {
        Ok(Phase::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Phase, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Phase, A::Error> {
        let mut phase = Phase::default();
        let mut seen = Vec::new();
        while let Some(field) = map.next_key_seed(FieldSeed {
            install: self.install,
            seen: &seen,
        })? {
            if field != Field::Ignored {
                seen.push(field);
            }
            match field {
                Field::RunAs => phase.run_as = map.next_value::<Option<Text>>()?.map(|t| t.0),
                Field::OnFailure => phase.on_failure = map.next_value()?,
                Field::RuntimeVersions => {
                    phase.runtime_versions = map.next_value::<RuntimeVersions>()?.0;
                }
                Field::Commands => phase.commands = map.next_value::<CommandList>()?.0,
                Field::Finally => phase.finally = map.next_value::<CommandList>()?.0,
                Field::Ignored => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(phase)
    }
}

/// Reads a phase key; repeated and misplaced keys fail at the key, unknown ones are ignored.
struct FieldSeed<'a> {
    install: bool,
    seen: &'a [Field],
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        scalar(d, "a phase key", |key| {
            let field = match key {
                "run-as" => Field::RunAs,
                "on-failure" => Field::OnFailure,
                "runtime-versions" if self.install => Field::RuntimeVersions,
                "runtime-versions" => {
                    return Err("`runtime-versions` is only allowed in the install phase".into());
                }
                "commands" => Field::Commands,
                "finally" => Field::Finally,
                _ => Field::Ignored,
            };
            if self.seen.contains(&field) {
                return Err(format!("duplicate field `{key}`"));
            }
            Ok(field)
        })
    }
}

/// `runtime-versions`: runtime name → version, in file order. Names and versions become
/// parts of store references, so each is checked where it is written (a bad one, e.g.
/// `../x`, is refused with its line and column); repeated names are refused too.
#[derive(Default)]
struct RuntimeVersions(Vec<(String, String)>);

impl<'de> Deserialize<'de> for RuntimeVersions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RuntimeVersionsVisitor;
        impl<'de> Visitor<'de> for RuntimeVersionsVisitor {
            type Value = RuntimeVersions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of runtime names to versions")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RuntimeVersions::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RuntimeVersions::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(String, String)> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                while let Some(name) = map.next_key_seed(RuntimeNameSeed(&seen))? {
                    seen.insert(name.clone());
                    let RuntimeVersion(version) = map.next_value()?;
                    pairs.push((name, version));
                }
                Ok(RuntimeVersions(pairs))
            }
        }
        d.deserialize_option(RuntimeVersionsVisitor)
    }
}

/// A runtime name: valid and not repeated.
struct RuntimeNameSeed<'a>(&'a std::collections::HashSet<String>);

impl<'de> DeserializeSeed<'de> for RuntimeNameSeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        scalar(d, "a runtime name", |name| {
            check_runtime_name(name)?;
            if self.0.contains(name) {
                return Err(format!("duplicate key `{name}`"));
            }
            Ok(name.to_owned())
        })
    }
}

struct RuntimeVersion(String);

impl<'de> Deserialize<'de> for RuntimeVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a runtime version", |version| {
            if runtime_version_variable(version).is_none() {
                check_runtime_version(version)?;
            }
            Ok(RuntimeVersion(version.to_owned()))
        })
    }
}
