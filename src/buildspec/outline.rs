//! The outline of a buildspec: libyaml's event stream (the parser serde_yaml runs on) read
//! once before serde_yaml reads the model, for what the model cannot see:
//!
//! - the nesting depth, refused past [`MAX_BUILDSPEC_DEPTH`] at the first collection too
//!   deep (libyaml's cost grows with the depth of open flow collections: 100,000 nested
//!   `[` took 31 s to reach serde_yaml's own recursion limit), with quotes, comments and
//!   block scalars understood as YAML understands them;
//! - keys CodeBuild ignores — other services' keys (`eb_codebuild_settings`), misspelled
//!   or misplaced ones (`discard_paths`, `type` under `artifacts`) — each a warning at its
//!   line and column with the closest known key; the model ignores them (the [`SCHEMA`]
//!   here and the model know the same keys, which a test checks);
//! - a variable repeated in `env.variables` (CodeBuild takes the last value): a warning;
//! - the line each command of a phase starts on, so the shell names buildspec lines;
//! - the top-level entries' byte ranges, so `check` can read each one on its own.
//!
//! Syntax errors are left to serde_yaml, which meets them at the same place.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_yaml;

use super::limits::{Located, MAX_BUILDSPEC_DEPTH};

/// What the outline found.
#[derive(Debug, Default)]
pub(super) struct Outline {
    /// Keys CodeBuild ignores and repeated variables, in file order.
    pub warnings: Vec<Located>,
    /// By path (`phases.build.commands`), the 1-based line each command starts on, for the
    /// items the model keeps (not null, not empty).
    pub command_lines: Vec<(String, Vec<usize>)>,
    /// The top-level entries in file order, when the document is a block mapping.
    pub entries: Vec<Entry>,
}

/// A top-level entry: its key, the 1-based line of the key, and the byte range from its
/// key to the next entry's key (empty when the document is not a block mapping).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: String,
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

impl Outline {
    /// The command lines recorded at `path`, when they number `count` (else the outline
    /// and the model disagree, e.g. over an alias, and no line is claimed).
    pub fn lines(&self, path: &str, count: usize) -> Vec<usize> {
        // The last: a repeated top-level key's earlier entries are not read.
        self.command_lines
            .iter()
            .rfind(|(p, _)| p == path)
            .map(|(_, lines)| lines.clone())
            .filter(|lines| lines.len() == count)
            .unwrap_or_default()
    }

    /// `text` with the top-level entries `keep` refuses turned to spaces (line ends kept,
    /// so what is left keeps its lines and columns); `text` itself when nothing is blanked.
    pub fn blank_entries<'t>(
        &self,
        text: &'t str,
        keep: impl Fn(&Entry) -> bool,
    ) -> std::borrow::Cow<'t, str> {
        let blanked: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.end > e.start && !keep(e))
            .collect();
        if blanked.is_empty() {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut bytes = text.as_bytes().to_vec();
        for entry in blanked {
            for byte in &mut bytes[entry.start..entry.end] {
                if !matches!(*byte, b'\n' | b'\r') {
                    *byte = b' ';
                }
            }
        }
        // Whole entries become spaces: what is left is whole characters, still UTF-8.
        std::borrow::Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The shape of a value, as far as the outline checks it.
pub(super) enum Shape {
    /// Not looked into: a scalar, or a value the model checks itself.
    Any,
    /// A mapping of known keys.
    Keys(&'static [(&'static str, &'static Shape)]),
    /// A mapping of names the user chooses (report groups, artifact identifiers).
    Named(&'static Shape),
    /// A mapping of variables: a repeated name is a warning, the last value wins.
    Variables,
    /// A sequence.
    Items(&'static Shape),
    /// A sequence of commands: each one's line is recorded.
    Commands,
    /// A report's `file-format`: one CodeBuild does not know is a warning (the report
    /// cannot be read and ends INCOMPLETE, the build goes on).
    ReportFormat,
}

const ANY: &Shape = &Shape::Any;

static PHASE: Shape = Shape::Keys(&[
    ("run-as", ANY),
    ("on-failure", ANY),
    // Refused by the model outside `install`, with a message saying so.
    ("runtime-versions", ANY),
    ("commands", &Shape::Commands),
    ("finally", &Shape::Commands),
]);

static ARTIFACT_SET: Shape = Shape::Keys(&[
    ("files", ANY),
    ("name", ANY),
    ("discard-paths", ANY),
    ("base-directory", ANY),
    ("exclude-paths", ANY),
    ("enable-symlinks", ANY),
    ("s3-prefix", ANY),
]);

static BATCH_ENV: Shape = Shape::Keys(&[
    ("type", ANY),
    ("compute-type", ANY),
    ("fleet", ANY),
    ("image", ANY),
    ("privileged-mode", ANY),
    ("variables", &Shape::Variables),
]);

/// The keys of a buildspec, as CodeBuild documents them.
pub(super) static SCHEMA: Shape = Shape::Keys(&[
    ("version", ANY),
    ("run-as", ANY),
    (
        "env",
        &Shape::Keys(&[
            ("shell", ANY),
            ("variables", &Shape::Variables),
            ("parameter-store", &Shape::Variables),
            ("secrets-manager", &Shape::Variables),
            ("exported-variables", ANY),
            ("git-credential-helper", ANY),
        ]),
    ),
    (
        "proxy",
        &Shape::Keys(&[("upload-artifacts", ANY), ("logs", ANY)]),
    ),
    (
        "phases",
        &Shape::Keys(&[
            ("install", &PHASE),
            ("pre_build", &PHASE),
            ("build", &PHASE),
            ("post_build", &PHASE),
        ]),
    ),
    (
        "artifacts",
        &Shape::Keys(&[
            ("files", ANY),
            ("name", ANY),
            ("discard-paths", ANY),
            ("base-directory", ANY),
            ("exclude-paths", ANY),
            ("enable-symlinks", ANY),
            ("s3-prefix", ANY),
            ("secondary-artifacts", &Shape::Named(&ARTIFACT_SET)),
        ]),
    ),
    (
        "cache",
        &Shape::Keys(&[
            ("key", ANY),
            ("fallback-keys", ANY),
            ("action", ANY),
            ("paths", ANY),
        ]),
    ),
    (
        "reports",
        &Shape::Named(&Shape::Keys(&[
            ("files", ANY),
            ("base-directory", ANY),
            ("discard-paths", ANY),
            ("file-format", &Shape::ReportFormat),
        ])),
    ),
    (
        "batch",
        &Shape::Keys(&[
            ("fast-fail", ANY),
            (
                "build-graph",
                &Shape::Items(&Shape::Keys(&[
                    ("identifier", ANY),
                    ("buildspec", ANY),
                    ("env", &BATCH_ENV),
                    ("depend-on", ANY),
                    ("ignore-failure", ANY),
                    ("debug-session", ANY),
                ])),
            ),
            (
                "build-list",
                &Shape::Items(&Shape::Keys(&[
                    ("identifier", ANY),
                    ("buildspec", ANY),
                    ("env", &BATCH_ENV),
                    ("ignore-failure", ANY),
                    ("debug-session", ANY),
                ])),
            ),
            (
                "build-matrix",
                &Shape::Keys(&[
                    (
                        "static",
                        &Shape::Keys(&[("ignore-failure", ANY), ("env", &BATCH_ENV)]),
                    ),
                    (
                        "dynamic",
                        &Shape::Keys(&[
                            ("buildspec", ANY),
                            (
                                "env",
                                &Shape::Keys(&[
                                    ("compute-type", ANY),
                                    ("fleet", ANY),
                                    ("image", ANY),
                                    ("variables", ANY),
                                ]),
                            ),
                        ]),
                    ),
                ]),
            ),
            (
                "build-fanout",
                &Shape::Keys(&[("parallelism", ANY), ("ignore-failure", ANY)]),
            ),
        ]),
    ),
]);

/// Keys other tools put in a buildspec, with what to say about them.
const FOREIGN_KEYS: &[(&str, &str)] = &[
    (
        "eb_codebuild_settings",
        "holds Elastic Beanstalk's settings; CodeBuild ignores it",
    ),
    (
        "environment_variables",
        "is not read by CodeBuild (it ignores it): variables go under `env: variables:`",
    ),
];

/// Reads the outline of `text`; the only error is nesting deeper than
/// [`MAX_BUILDSPEC_DEPTH`].
pub(super) fn outline(text: &str) -> Result<Outline, Located> {
    let mut walk = Walk::default();
    let mut parser = Parser::new(text);
    while let Some(event) = parser.next_event() {
        match event.kind {
            unsafe_yaml::YAML_SCALAR_EVENT | unsafe_yaml::YAML_ALIAS_EVENT => {
                walk.scalar(&event);
            }
            unsafe_yaml::YAML_SEQUENCE_START_EVENT | unsafe_yaml::YAML_MAPPING_START_EVENT => {
                if walk.stack.len() >= MAX_BUILDSPEC_DEPTH {
                    return Err(Located {
                        line: event.line,
                        column: event.column,
                        message: format!(
                            "mappings and sequences nested more than {MAX_BUILDSPEC_DEPTH} \
                             deep (MAX_BUILDSPEC_DEPTH)"
                        ),
                    });
                }
                walk.start(&event);
            }
            unsafe_yaml::YAML_SEQUENCE_END_EVENT | unsafe_yaml::YAML_MAPPING_END_EVENT => {
                walk.stack.pop();
                walk.node_done();
            }
            unsafe_yaml::YAML_DOCUMENT_END_EVENT => break, // serde_yaml reads one document
            _ => {}
        }
    }
    let mut outline = walk.outline;
    if walk.block_root {
        let mut ends: Vec<usize> = outline.entries.iter().skip(1).map(|e| e.start).collect();
        ends.push(text.len());
        for (entry, end) in outline.entries.iter_mut().zip(ends) {
            entry.end = end;
        }
    } else {
        outline.entries.iter_mut().for_each(|e| e.end = e.start);
    }
    Ok(outline)
}

/// An open collection.
struct Frame {
    shape: &'static Shape,
    /// `artifacts`, `phases.build.commands`, `batch.build-graph[0]`.
    path: String,
    kind: FrameKind,
}

enum FrameKind {
    /// A mapping: the shape and path of the value due, once its key was read; the keys
    /// seen (for repeated variables) with their lines.
    Map {
        value: Option<(&'static Shape, String)>,
        seen: HashMap<String, usize>,
    },
    /// A sequence and the index of its next item; for commands, where their lines go.
    Seq {
        next: usize,
        commands: Option<usize>,
    },
}

#[derive(Default)]
struct Walk {
    stack: Vec<Frame>,
    outline: Outline,
    block_root: bool,
}

impl Walk {
    /// The shape and path of the node starting now.
    fn slot(&self) -> (&'static Shape, String) {
        let Some(frame) = self.stack.last() else {
            return (&SCHEMA, String::new());
        };
        match &frame.kind {
            FrameKind::Map {
                value: Some((shape, path)),
                ..
            } => (shape, path.clone()),
            FrameKind::Map { value: None, .. } => (ANY, frame.path.clone()), // a key
            FrameKind::Seq { next, .. } => {
                let item = match frame.shape {
                    Shape::Items(item) => item,
                    _ => ANY,
                };
                (item, format!("{}[{next}]", frame.path))
            }
        }
    }

    fn start(&mut self, event: &Event) {
        let (shape, path) = self.slot();
        if self.stack.is_empty() {
            self.block_root = event.kind == unsafe_yaml::YAML_MAPPING_START_EVENT && !event.flow;
        }
        let kind = if event.kind == unsafe_yaml::YAML_MAPPING_START_EVENT {
            FrameKind::Map {
                value: None,
                seen: HashMap::new(),
            }
        } else {
            let commands = matches!(shape, Shape::Commands).then(|| {
                self.outline.command_lines.push((path.clone(), Vec::new()));
                self.outline.command_lines.len() - 1
            });
            FrameKind::Seq { next: 0, commands }
        };
        let shape = match (&kind, shape) {
            (FrameKind::Map { .. }, Shape::Keys(_) | Shape::Named(_) | Shape::Variables)
            | (FrameKind::Seq { .. }, Shape::Items(_) | Shape::Commands) => shape,
            _ => ANY, // the model refuses the wrong type itself
        };
        self.stack.push(Frame { shape, path, kind });
    }

    fn scalar(&mut self, event: &Event) {
        let depth = self.stack.len();
        let Some(frame) = self.stack.last_mut() else {
            return; // a scalar document: the model refuses it
        };
        match &mut frame.kind {
            FrameKind::Map { value: None, .. } if event.kind == unsafe_yaml::YAML_ALIAS_EVENT => {
                // An alias as a key: neither it nor its value is looked into.
            }
            FrameKind::Map {
                value: Some((Shape::ReportFormat, path)),
                ..
            } if event.kind == unsafe_yaml::YAML_SCALAR_EVENT && !event.is_null_or_empty() => {
                let upper = event.value.to_ascii_uppercase();
                if !super::REPORT_FORMATS.contains(&upper.as_str()) {
                    let message = format!(
                        "unknown file-format `{}` in `{path}`: the report cannot be read and \
                         will be INCOMPLETE (known: {})",
                        event.value,
                        super::REPORT_FORMATS.join(", ")
                    );
                    self.outline.warnings.push(Located {
                        line: event.line,
                        column: event.column,
                        message,
                    });
                }
            }
            FrameKind::Map { value: None, seen } => {
                let key = event.value.as_str();
                let child = format!(
                    "{}{}{key}",
                    frame.path,
                    if frame.path.is_empty() { "" } else { "." }
                );
                let shape = match frame.shape {
                    Shape::Keys(keys) => match keys.iter().find(|(k, _)| *k == key) {
                        Some((_, shape)) => *shape,
                        None => {
                            let message = unknown_key(key, &frame.path, keys);
                            self.outline.warnings.push(Located {
                                line: event.line,
                                column: event.column,
                                message,
                            });
                            ANY
                        }
                    },
                    Shape::Named(shape) => shape,
                    Shape::Variables => {
                        if let Some(first) = seen.get(key) {
                            self.outline.warnings.push(Located {
                                line: event.line,
                                column: event.column,
                                message: format!(
                                    "`{key}` is repeated in `{}` (first at line {first}): \
                                     the last value is used, as CodeBuild does",
                                    frame.path
                                ),
                            });
                        } else {
                            seen.insert(key.to_owned(), event.line);
                        }
                        ANY
                    }
                    _ => ANY,
                };
                if depth == 1 {
                    self.outline.entries.push(Entry {
                        key: key.to_owned(),
                        line: event.line,
                        start: event.index,
                        end: event.index,
                    });
                }
                if let FrameKind::Map { value, .. } = &mut frame.kind {
                    *value = Some((shape, child));
                }
                return;
            }
            FrameKind::Seq {
                commands: Some(slot),
                ..
            } if event.kind == unsafe_yaml::YAML_ALIAS_EVENT || !event.is_null_or_empty() => {
                self.outline.command_lines[*slot].1.push(event.first_line());
            }
            _ => {}
        }
        self.node_done();
    }

    /// A node ended: a mapping now wants its next key (or the value of the key just
    /// read, when that key was a collection); a sequence its next item.
    fn node_done(&mut self) {
        let Some(frame) = self.stack.last_mut() else {
            return;
        };
        match &mut frame.kind {
            FrameKind::Map { value, .. } => {
                if value.is_some() {
                    *value = None;
                } else {
                    // A collection used as a key: its value is not looked into.
                    *value = Some((ANY, frame.path.clone()));
                }
            }
            FrameKind::Seq { next, .. } => *next += 1,
        }
    }
}

/// The warning for an unknown key at `path`, with the closest known key when one is close.
fn unknown_key(key: &str, path: &str, keys: &[(&str, &Shape)]) -> String {
    let place = if path.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in `{path}`")
    };
    if path.is_empty()
        && let Some((_, note)) = FOREIGN_KEYS.iter().find(|(k, _)| *k == key)
    {
        return format!("`{key}` {note}");
    }
    let mut message = format!("unknown key `{key}` {place}, ignored as CodeBuild ignores it");
    if let Some(near) = nearest(key, keys.iter().map(|(k, _)| *k)) {
        message.push_str(&format!(" (did you mean `{near}`?)"));
    }
    message
}

/// The known key closest to `key`: the same but for case and `_`/`-`, else within a
/// Damerau-Levenshtein distance of a third of its length (at least 1, at most 3).
pub(super) fn nearest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let fold = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let folded = fold(key);
    let limit = (folded.chars().count() / 3).clamp(1, 3);
    known
        .map(|k| (strsim::damerau_levenshtein(&folded, &fold(k)), k))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// The parts of a libyaml event the outline reads.
struct Event {
    kind: unsafe_yaml::yaml_event_type_t,
    /// 1-based.
    line: usize,
    column: usize,
    /// Byte offset of the start.
    index: usize,
    /// A scalar's text.
    value: String,
    style: unsafe_yaml::yaml_scalar_style_t,
    /// A flow collection (`{` or `[`).
    flow: bool,
}

impl Event {
    /// A scalar serde_yaml reads as null (`~`, `null`, nothing) or one with no text.
    fn is_null_or_empty(&self) -> bool {
        self.value.is_empty()
            || (self.style == unsafe_yaml::YAML_PLAIN_SCALAR_STYLE
                && matches!(self.value.as_str(), "~" | "null" | "Null" | "NULL"))
    }

    /// The line a scalar's text starts on: a block scalar's (`|`, `>`) starts on the line
    /// after its indicator.
    fn first_line(&self) -> usize {
        match self.style {
            unsafe_yaml::YAML_LITERAL_SCALAR_STYLE | unsafe_yaml::YAML_FOLDED_SCALAR_STYLE => {
                self.line + 1
            }
            _ => self.line,
        }
    }
}

/// A libyaml event parser over borrowed text, deleted on drop.
struct Parser<'a> {
    parser: Box<unsafe_yaml::yaml_parser_t>,
    _text: &'a str,
    done: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        // SAFETY: `yaml_parser_initialize` fully initializes the parser it is given (it
        // zeroes it first); the input pointer stays valid for `'a`, which the parser (held
        // here with the text's lifetime) does not outlive. Initialization only fails on
        // allocation failure, after which the parser is zeroed and parsing reports an
        // error at once.
        unsafe {
            let mut parser: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>> = Box::new_uninit();
            let failed = unsafe_yaml::yaml_parser_initialize(parser.as_mut_ptr()).fail;
            let mut parser = parser.assume_init();
            let done = failed;
            if !failed {
                unsafe_yaml::yaml_parser_set_input_string(
                    &mut *parser,
                    text.as_ptr(),
                    text.len() as u64,
                );
            }
            Parser {
                parser,
                _text: text,
                done,
            }
        }
    }

    /// The next event; `None` after the end or an error.
    fn next_event(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        // SAFETY: the parser was initialized with valid input; an event filled by a
        // successful `yaml_parser_parse` is read according to its type (the union member
        // of that type) and deleted right after its fields are copied out.
        unsafe {
            let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
            if unsafe_yaml::yaml_parser_parse(&mut *self.parser, event.as_mut_ptr()).fail {
                self.done = true;
                return None;
            }
            let mut event = event.assume_init();
            let kind = event.type_;
            let mark = event.start_mark;
            let number = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            let (mut value, mut style, mut flow) =
                (String::new(), unsafe_yaml::YAML_ANY_SCALAR_STYLE, false);
            match kind {
                unsafe_yaml::YAML_SCALAR_EVENT => {
                    let scalar = event.data.scalar;
                    let bytes = std::slice::from_raw_parts(scalar.value, number(scalar.length));
                    value = String::from_utf8_lossy(bytes).into_owned();
                    style = scalar.style;
                }
                unsafe_yaml::YAML_MAPPING_START_EVENT => {
                    flow = event.data.mapping_start.style == unsafe_yaml::YAML_FLOW_MAPPING_STYLE;
                }
                _ => {}
            }
            unsafe_yaml::yaml_event_delete(&mut event);
            if kind == unsafe_yaml::YAML_STREAM_END_EVENT {
                self.done = true;
            }
            Some(Event {
                kind,
                line: number(mark.line).saturating_add(1),
                column: number(mark.column).saturating_add(1),
                index: number(mark.index),
                value,
                style,
                flow,
            })
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: the parser was initialized (or zeroed by a failed initialization, which
        // `yaml_parser_delete` accepts) and is deleted once.
        unsafe { unsafe_yaml::yaml_parser_delete(&mut *self.parser) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_where_it_gets_too_deep() {
        let started = std::time::Instant::now();
        let error = outline(&"[".repeat(100_000)).expect_err("refused");
        assert_eq!((error.line, error.column), (1, MAX_BUILDSPEC_DEPTH + 1));
        let error = outline(&"- ".repeat(100_000)).expect_err("refused");
        assert_eq!(error.line, 1);
        let error = outline(&"{a: ".repeat(100_000)).expect_err("refused");
        assert!(error.message.contains("MAX_BUILDSPEC_DEPTH"));
        assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
        // Brackets in quotes, comments and block scalars are text, not nesting.
        let text = format!(
            "a: \"{0}\"\nb: '{0}'\n# {0}\nc: |\n  {0}\nd: [[[1]]]\n",
            "[".repeat(500)
        );
        assert!(outline(&text).is_ok());
    }

    #[test]
    fn the_nearest_key_forgives_case_separators_and_typos() {
        let known = ["discard-paths", "base-directory", "files", "commands"];
        for (typed, expected) in [
            ("discard_paths", Some("discard-paths")),
            ("Base-Directory", Some("base-directory")),
            ("file", Some("files")),
            ("comands", Some("commands")),
            ("commmands", Some("commands")),
            ("type", None),
            ("x", None),
        ] {
            assert_eq!(nearest(typed, known.into_iter()), expected, "{typed}");
        }
    }

    #[test]
    fn command_lines_are_where_each_command_starts() {
        let text = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo a\n      -\n      - ''\n      - |\n        echo b\n        echo c\n      - \"echo d\"\n      - ~\n      - '~'\n    finally: [x, y]\n";
        let found = outline(text).unwrap();
        assert_eq!(found.lines("phases.build.commands", 4), [5, 9, 11, 13]);
        assert_eq!(found.lines("phases.build.finally", 2), [14, 14]);
        // A count the model disagrees with claims no line.
        assert!(found.lines("phases.build.finally", 3).is_empty());
    }

    #[test]
    fn top_level_entries_span_to_the_next_key() {
        let text = "version: 0.2\n# c\nphases:\n  build: {}\nenv: {}\n";
        let found = outline(text).unwrap();
        let spans: Vec<(&str, &str)> = found
            .entries
            .iter()
            .map(|e| (e.key.as_str(), &text[e.start..e.end]))
            .collect();
        assert_eq!(
            spans,
            [
                ("version", "version: 0.2\n# c\n"),
                ("phases", "phases:\n  build: {}\n"),
                ("env", "env: {}\n"),
            ]
        );
        // A flow mapping at the top has no spans to read alone.
        let flow = outline("{version: 0.2, phases: {}}").unwrap();
        assert!(flow.entries.iter().all(|e| e.start == e.end));
    }

    #[test]
    fn aliases_and_complex_keys_are_not_taken_for_unknown_keys() {
        let text = "version: 0.2\nphases:\n  build:\n    commands: &c [a]\n  post_build:\n    commands: *c\n? [complex]\n: 1\n";
        let found = outline(text).unwrap();
        let messages: Vec<&str> = found.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(messages.is_empty(), "{messages:?}");
    }

    /// Buildspecs that use every key of [`SCHEMA`] between them (the batch kinds exclude
    /// one another).
    const EVERY_KEY: &[&str] = &[
        "version: 0.2\nrun-as: u\nenv:\n  shell: bash\n  variables: {A: 1}\n  parameter-store: {B: /b}\n  secrets-manager: {C: c:d}\n  exported-variables: [A]\n  git-credential-helper: yes\nproxy:\n  upload-artifacts: no\n  logs: no\nphases:\n  install:\n    run-as: root\n    on-failure: ABORT\n    runtime-versions: {python: 3.12}\n    commands: [a]\n    finally: [b]\n  pre_build: {commands: [c]}\n  build: {commands: [d]}\n  post_build: {commands: [e]}\nartifacts:\n  files: [x]\n  name: n\n  discard-paths: no\n  base-directory: o\n  exclude-paths: [y]\n  enable-symlinks: no\n  s3-prefix: p\n  secondary-artifacts:\n    s:\n      files: [z]\n      name: m\n      discard-paths: yes\n      base-directory: q\n      exclude-paths: [w]\n      enable-symlinks: yes\n      s3-prefix: r\ncache:\n  key: k\n  fallback-keys: [f]\n  action: restore\n  paths: [p]\nreports:\n  g:\n    files: [r.xml]\n    base-directory: out\n    discard-paths: no\n    file-format: JUNITXML\nbatch:\n  fast-fail: no\n  build-graph:\n    - identifier: one\n      buildspec: b.yml\n      env:\n        type: LINUX_CONTAINER\n        compute-type: BUILD_GENERAL1_SMALL\n        fleet: f\n        image: i\n        privileged-mode: no\n        variables: {V: 1}\n      depend-on: []\n      ignore-failure: no\n      debug-session: no\n",
        "version: 0.2\nphases: {}\nbatch:\n  build-list:\n    - identifier: one\n      buildspec: b.yml\n      env: {image: i}\n      ignore-failure: yes\n      debug-session: no\n",
        "version: 0.2\nphases: {}\nbatch:\n  build-matrix:\n    static:\n      ignore-failure: no\n      env: {image: i}\n    dynamic:\n      buildspec: [a.yml]\n      env:\n        compute-type: [c]\n        fleet: [f]\n        image: [i]\n        variables: {V: [1, 2]}\n",
        "version: 0.2\nphases: {}\nbatch:\n  build-fanout:\n    parallelism: 2\n    ignore-failure: no\n",
    ];

    /// Every key path of a shape (`batch.build-graph[].env.type`); a shape shared by
    /// several paths (a phase, a batch `env`) is listed under the first only.
    fn paths(
        shape: &'static Shape,
        prefix: &str,
        seen: &mut Vec<*const Shape>,
        out: &mut Vec<String>,
    ) {
        if seen.contains(&std::ptr::from_ref(shape)) {
            return;
        }
        seen.push(shape);
        match shape {
            Shape::Keys(keys) => {
                for (key, child) in *keys {
                    let path = format!("{prefix}.{key}");
                    paths(child, &path, seen, out);
                    out.push(path);
                }
            }
            Shape::Named(child) => paths(child, &format!("{prefix}.*"), seen, out),
            Shape::Items(child) => paths(child, &format!("{prefix}[]"), seen, out),
            Shape::Any | Shape::Variables | Shape::Commands | Shape::ReportFormat => {}
        }
    }

    /// The key paths of a YAML value, in the same form.
    fn value_paths(value: &serde_yaml::Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            serde_yaml::Value::Mapping(map) => {
                for (key, child) in map {
                    let key = key.as_str().unwrap_or_default();
                    let path = format!("{prefix}.{key}");
                    out.push(path.clone());
                    // Names chosen by the user become `*`.
                    let is_named = matches!(key, "secondary-artifacts" | "reports");
                    if let serde_yaml::Value::Mapping(names) = child
                        && is_named
                    {
                        for (_, each) in names {
                            value_paths(each, &format!("{path}.*"), out);
                        }
                    } else {
                        value_paths(child, &path, out);
                    }
                }
            }
            serde_yaml::Value::Sequence(items) => {
                for item in items {
                    value_paths(item, &format!("{prefix}[]"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_schema_and_the_model_know_the_same_keys() {
        let mut used = Vec::new();
        for text in EVERY_KEY {
            // Known to the outline: no warning.
            let parsed = super::super::Buildspec::parse(text, "b.yml").unwrap();
            assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
            // Known to the model: serde ignores none of them.
            let mut ignored = Vec::new();
            let d = serde_yaml::Deserializer::from_str(text);
            let _: super::super::Buildspec =
                serde_ignored::deserialize(d, |path| ignored.push(path.to_string())).unwrap();
            assert!(ignored.is_empty(), "the model ignores {ignored:?}");
            value_paths(&serde_yaml::from_str(text).unwrap(), "", &mut used);
        }
        // And the samples use every key of the schema.
        let mut all = Vec::new();
        paths(&SCHEMA, "", &mut Vec::new(), &mut all);
        let missing: Vec<&String> = all.iter().filter(|p| !used.contains(p)).collect();
        assert!(missing.is_empty(), "no sample uses {missing:?}");
    }
}
