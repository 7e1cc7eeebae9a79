//! `batch`: the batch build settings (build graph, list, matrix or fanout), modelled and
//! checked as documented; wasmbuild reads them but runs single builds.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::Deserializer;

use super::de::{
    Check, CheckedMap, CheckedSeq, Pairs, TextList, flag, opt_flag, opt_text, scalar, text,
    text_list, text_pairs,
};

/// `batch`. At most one of the four batch kinds may be given.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Batch {
    #[serde(default, deserialize_with = "flag")]
    pub fast_fail: bool,
    /// Tasks with dependencies; identifiers unique, `depend-on` naming tasks of the graph
    /// without cycles.
    #[serde(default, deserialize_with = "graph")]
    pub build_graph: Option<Vec<BatchTask>>,
    /// Independent tasks (their `depend_on` is always empty); identifiers unique.
    #[serde(default, deserialize_with = "list")]
    pub build_list: Option<Vec<BatchTask>>,
    #[serde(default)]
    pub build_matrix: Option<BuildMatrix>,
    #[serde(default)]
    pub build_fanout: Option<BuildFanout>,
}

impl Check for Batch {
    fn check(&self) -> Result<(), String> {
        let kinds: Vec<&str> = [
            ("build-graph", self.build_graph.is_some()),
            ("build-list", self.build_list.is_some()),
            ("build-matrix", self.build_matrix.is_some()),
            ("build-fanout", self.build_fanout.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect();
        if kinds.len() > 1 {
            return Err(format!(
                "batch may hold only one of build-graph, build-list, build-matrix and \
                 build-fanout, not {}",
                kinds.join(" and ")
            ));
        }
        Ok(())
    }
}

pub(super) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Batch>, D::Error> {
    Ok(Option::<CheckedMap<Batch>>::deserialize(d)?.map(|b| b.0))
}

/// A task of `build-graph` or `build-list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BatchTask {
    #[serde(deserialize_with = "text")]
    pub identifier: String,
    /// Another buildspec for this task; the current one when absent.
    #[serde(default, deserialize_with = "opt_text")]
    pub buildspec: Option<String>,
    #[serde(default)]
    pub env: Option<BatchEnv>,
    #[serde(default, deserialize_with = "text_list")]
    pub depend_on: Vec<String>,
    #[serde(default, deserialize_with = "flag")]
    pub ignore_failure: bool,
    #[serde(default, deserialize_with = "flag")]
    pub debug_session: bool,
}

/// A task of `build-list`: no `depend-on`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ListTask {
    #[serde(deserialize_with = "text")]
    identifier: String,
    #[serde(default, deserialize_with = "opt_text")]
    buildspec: Option<String>,
    #[serde(default)]
    env: Option<BatchEnv>,
    #[serde(default, deserialize_with = "flag")]
    ignore_failure: bool,
    #[serde(default, deserialize_with = "flag")]
    debug_session: bool,
}

fn unique_identifiers<'a>(ids: impl Iterator<Item = &'a str>) -> Result<(), String> {
    // A set, so a list of n tasks is checked in O(n), not O(n²).
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if id.is_empty() {
            return Err("a batch task's identifier must not be empty".into());
        }
        if !seen.insert(id) {
            return Err(format!("duplicate batch task identifier `{id}`"));
        }
    }
    Ok(())
}

impl Check for Vec<ListTask> {
    fn check(&self) -> Result<(), String> {
        unique_identifiers(self.iter().map(|t| t.identifier.as_str()))
    }
}

impl Check for Vec<BatchTask> {
    fn check(&self) -> Result<(), String> {
        unique_identifiers(self.iter().map(|t| t.identifier.as_str()))?;
        let index: HashMap<&str, usize> = self
            .iter()
            .enumerate()
            .map(|(i, t)| (t.identifier.as_str(), i))
            .collect();
        for task in self {
            for dep in &task.depend_on {
                if !index.contains_key(dep.as_str()) {
                    return Err(format!(
                        "batch task `{}` depends on `{dep}`, which is not in the build graph",
                        task.identifier
                    ));
                }
            }
        }
        // Depth-first search for a cycle: 0 unvisited, 1 on the path, 2 done. Iterative,
        // with its own stack: a chain of 100,000 tasks must not overflow the host's.
        let mut state = vec![0u8; self.len()];
        for root in 0..self.len() {
            if state[root] != 0 {
                continue;
            }
            // (task, index of its next dependency to look at)
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            state[root] = 1;
            while let Some((at, next_dep)) = stack.last_mut() {
                let at = *at;
                let Some(dep) = self[at].depend_on.get(*next_dep) else {
                    state[at] = 2;
                    stack.pop();
                    continue;
                };
                *next_dep += 1;
                let next = index[dep.as_str()];
                match state[next] {
                    1 => {
                        let path: Vec<&str> = stack
                            .iter()
                            .map(|(t, _)| self[*t].identifier.as_str())
                            .collect();
                        let start = path.iter().position(|id| *id == dep).unwrap_or(0);
                        let mut cycle = path[start..].to_vec();
                        cycle.push(dep);
                        return Err(format!(
                            "the build graph has a dependency cycle: {}",
                            cycle.join(" -> ")
                        ));
                    }
                    0 => {
                        state[next] = 1;
                        stack.push((next, 0));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn graph<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<BatchTask>>, D::Error> {
    Ok(Option::<CheckedSeq<Vec<BatchTask>>>::deserialize(d)?.map(|g| g.0))
}

fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<BatchTask>>, D::Error> {
    let tasks = Option::<CheckedSeq<Vec<ListTask>>>::deserialize(d)?;
    Ok(tasks.map(|tasks| {
        tasks
            .0
            .into_iter()
            .map(|t| BatchTask {
                identifier: t.identifier,
                buildspec: t.buildspec,
                env: t.env,
                depend_on: Vec::new(),
                ignore_failure: t.ignore_failure,
                debug_session: t.debug_session,
            })
            .collect()
    }))
}

/// A task's build environment overrides; absent settings come from the project.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BatchEnv {
    /// `type`, e.g. `LINUX_CONTAINER`.
    #[serde(default, rename = "type", deserialize_with = "opt_text")]
    pub environment_type: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub compute_type: Option<String>,
    /// `fleet`: the reserved-capacity fleet CodeBuild runs the task on (no meaning here:
    /// every task runs on this machine).
    #[serde(default, deserialize_with = "opt_text")]
    pub fleet: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub image: Option<String>,
    #[serde(default, deserialize_with = "opt_flag")]
    pub privileged_mode: Option<bool>,
    #[serde(default, deserialize_with = "text_pairs")]
    pub variables: Vec<(String, String)>,
}

/// `build-matrix`: a static part shared by every build and a dynamic part whose
/// combinations make the builds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BuildMatrix {
    /// `static`.
    #[serde(default, rename = "static")]
    pub static_settings: Option<MatrixStatic>,
    #[serde(default)]
    pub dynamic: Option<MatrixDynamic>,
}

/// `build-matrix.static`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MatrixStatic {
    #[serde(default, deserialize_with = "flag")]
    pub ignore_failure: bool,
    #[serde(default)]
    pub env: Option<BatchEnv>,
}

/// `build-matrix.dynamic`: every value list multiplies the builds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MatrixDynamic {
    #[serde(default, deserialize_with = "text_list")]
    pub buildspec: Vec<String>,
    #[serde(default)]
    pub env: Option<MatrixDynamicEnv>,
}

/// `build-matrix.dynamic.env`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MatrixDynamicEnv {
    #[serde(default, deserialize_with = "text_list")]
    pub compute_type: Vec<String>,
    /// `fleet`: fleets to run on (no meaning here, as for a task's `fleet`).
    #[serde(default, deserialize_with = "text_list")]
    pub fleet: Vec<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub image: Vec<String>,
    /// Variable name → the values it takes, in file order.
    #[serde(default, deserialize_with = "value_lists")]
    pub variables: Vec<(String, Vec<String>)>,
}

fn value_lists<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, Vec<String>)>, D::Error> {
    let pairs = Pairs::<TextList>::deserialize(d)?;
    Ok(pairs.0.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// `build-fanout`: one build run in parallel shards (for test splitting).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildFanout {
    /// How many builds; at least 1.
    #[serde(default, deserialize_with = "parallelism")]
    pub parallelism: Option<u32>,
    #[serde(default, deserialize_with = "flag")]
    pub ignore_failure: bool,
}

fn parallelism<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    scalar(d, "a positive integer", |s| {
        s.parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| format!("invalid parallelism `{s}`: expected a positive integer"))
    })
}
