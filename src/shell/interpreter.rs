//! The interpreter and its state: variables (with export, readonly and function-local scopes),
//! functions, options, positional parameters and the current directory. A subshell is a
//! clone of it; a script run as a program gets a fresh one with the exported variables only.

use brush_parser::ast;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::ShellOptions;
use super::fs::GuestFs;
use super::host::ProgramHost;
use super::limits::{JobSlot, SessionShared, ShellLimits};

/// One shell variable. `value: None` is a variable that is declared (e.g. `export X`) but unset.
#[derive(Debug, Clone, Default)]
pub(crate) struct Var {
    pub value: Option<String>,
    pub exported: bool,
    pub readonly: bool,
}

/// Background jobs of one shell, for `wait`; a subshell starts with none. (Every job of the
/// session is also registered in [`SessionShared`], which joins or stops them.)
#[derive(Default)]
pub(crate) struct Jobs(pub Vec<(u32, Arc<JobSlot>)>);

impl Clone for Jobs {
    fn clone(&self) -> Self {
        Jobs::default()
    }
}

/// Pseudo process ids for `$$`, `$!` and `wait`: no host process exists behind them.
static NEXT_PID: AtomicU32 = AtomicU32::new(1000);

pub(crate) fn next_pid() -> u32 {
    NEXT_PID.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone)]
pub(crate) struct Interpreter {
    pub host: Arc<dyn ProgramHost>,
    pub fs: GuestFs,
    pub cwd: String,
    pub vars: HashMap<String, Var>,
    /// One frame per active function call: the variables made local there and what they were.
    pub local_frames: Vec<Vec<(String, Option<Var>)>>,
    pub functions: HashMap<String, Arc<ast::FunctionDefinition>>,
    pub options: ShellOptions,
    pub arg0: String,
    pub positional: Vec<String>,
    pub last_status: i32,
    /// Set while running a condition, a non-final part of `&&`/`||`, or a `!` pipeline:
    /// `set -e` does not apply there, nor in anything they call.
    pub errexit_suppressed: bool,
    pub cancel: Arc<AtomicBool>,
    /// In a program a guest started: raised by that guest to stop it (and what it runs).
    pub kill: Option<Arc<AtomicBool>>,
    /// The script's name for diagnostics (`NAME: line N: ...`).
    pub script_name: String,
    pub line: usize,
    /// The number of the script's first line in its file (a buildspec command's line), so
    /// diagnostics name the file's lines; 1 for a script of its own.
    pub first_line: usize,
    pub loop_depth: usize,
    pub function_depth: usize,
    /// Nesting of `source`/`.`: `return` is allowed there too.
    pub source_depth: usize,
    /// Nesting of command substitutions and subshells, for `set -x` prefixes.
    pub subshell_level: usize,
    pub pid: u32,
    pub last_background_pid: Option<u32>,
    pub jobs: Jobs,
    pub exit_trap: Option<String>,
    /// Status of the last command substitution of the current simple command.
    pub last_substitution_status: Option<i32>,
    pub random_seed: u32,
    /// Groups of the last `[[ =~ ]]` match, for `${BASH_REMATCH[n]}`.
    pub rematch: Vec<String>,
    /// `shopt -s` options that are on.
    pub shopts: Vec<String>,
    /// Where `getopts` is: the `OPTIND` it last set and the offset in that argument.
    pub getopts_index: usize,
    pub getopts_offset: usize,
    /// Running a `-c` string: bash then ends on `${x:?}` and `set -u` errors with 127,
    /// not 1.
    pub command_string: bool,
    /// Names of the functions being run, innermost last (`$FUNCNAME`).
    pub function_names: Vec<String>,
    /// Builtins turned off with `enable -n`.
    pub disabled_builtins: Vec<String>,
    /// What every interpreter of the session shares: limits, live threads, all jobs.
    pub shared: Arc<SessionShared>,
    /// In a background job (and what it runs): the generation of jobs it belongs to; it
    /// stops when the session moves on to a newer one (end of a phase).
    pub job_generation: Option<u64>,
    /// Nesting of `eval`, `source`, `$( )` and scripts run as programs: not reset in a
    /// child interpreter, since all share the thread's stack.
    pub nesting: usize,
    /// Function calls on this thread's stack, in this interpreter and its parents.
    pub stack_functions: usize,
    /// Compound commands being run on this thread's stack.
    pub compound_depth: usize,
}

impl Interpreter {
    pub(crate) fn new(
        host: Arc<dyn ProgramHost>,
        fs: GuestFs,
        env: Vec<(String, String)>,
        cwd: String,
        limits: ShellLimits,
    ) -> Self {
        let mut vars = HashMap::new();
        for (name, value) in env {
            vars.insert(
                name,
                Var {
                    value: Some(value),
                    exported: true,
                    readonly: false,
                },
            );
        }
        let pid = next_pid();
        let mut state = Interpreter {
            host,
            fs,
            cwd: cwd.clone(),
            vars,
            local_frames: Vec::new(),
            functions: HashMap::new(),
            options: ShellOptions::default(),
            arg0: "wasmbuild".into(),
            positional: Vec::new(),
            last_status: 0,
            errexit_suppressed: false,
            cancel: Arc::new(AtomicBool::new(false)),
            kill: None,
            script_name: "wasmbuild".into(),
            line: 0,
            first_line: 1,
            loop_depth: 0,
            function_depth: 0,
            source_depth: 0,
            subshell_level: 0,
            pid,
            last_background_pid: None,
            jobs: Jobs::default(),
            exit_trap: None,
            last_substitution_status: None,
            random_seed: pid.wrapping_mul(2_654_435_761),
            rematch: Vec::new(),
            shopts: Vec::new(),
            getopts_index: 1,
            getopts_offset: 0,
            command_string: false,
            function_names: Vec::new(),
            disabled_builtins: Vec::new(),
            shared: SessionShared::new(limits),
            job_generation: None,
            nesting: 0,
            stack_functions: 0,
            compound_depth: 0,
        };
        // bash sets IFS at start-up, whatever the environment says.
        state.vars.insert(
            "IFS".into(),
            Var {
                value: Some(" \t\n".into()),
                exported: false,
                readonly: false,
            },
        );
        let pwd = state.vars.entry("PWD".into()).or_default();
        pwd.value = Some(cwd);
        pwd.exported = true;
        state
    }

    /// A fresh interpreter for a script run as a program: exported variables only, no
    /// functions, default options; same directory, host and filesystem.
    pub(crate) fn child(&self, arg0: String, args: Vec<String>) -> Interpreter {
        let mut child = self.clone();
        child.vars = self
            .vars
            .iter()
            .filter(|(_, v)| v.exported && v.value.is_some())
            .map(|(k, v)| {
                (
                    k.clone(),
                    Var {
                        value: v.value.clone(),
                        exported: true,
                        readonly: false,
                    },
                )
            })
            .collect();
        child.local_frames.clear();
        child.functions.clear();
        child.options = ShellOptions::default();
        child.arg0 = arg0.clone();
        child.script_name = arg0;
        child.first_line = 1;
        child.positional = args;
        child.last_status = 0;
        child.errexit_suppressed = false;
        child.loop_depth = 0;
        child.function_depth = 0;
        child.source_depth = 0;
        child.pid = next_pid();
        child.last_background_pid = None;
        child.jobs = Jobs::default();
        child.exit_trap = None;
        child.command_string = false;
        child.function_names.clear();
        child.vars.insert(
            "IFS".into(),
            Var {
                value: Some(" \t\n".into()),
                exported: false,
                readonly: false,
            },
        );
        child
    }

    /// A copy for `( )`, pipeline stages and `$( )`.
    pub(crate) fn subshell(&self) -> Interpreter {
        let mut sub = self.clone();
        sub.subshell_level += 1;
        sub.exit_trap = None;
        sub
    }

    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).and_then(|v| v.value.as_deref())
    }

    /// A command file found in a `PATH` directory of the build's filesystem (console
    /// scripts such as `/root/.local/bin/pytest`); the image's own directories are the
    /// host's business. The first regular file wins, as in bash.
    pub(crate) fn find_in_path(&self, name: &str) -> Option<String> {
        let runtimes = format!("{}/", crate::sandbox::layout::RUNTIMES_DIR);
        self.var("PATH")?
            .split(':')
            .filter(|dir| dir.starts_with('/') && !dir.starts_with(&runtimes))
            .map(|dir| format!("{}/{name}", dir.trim_end_matches('/')))
            .find(|path| {
                self.fs
                    .metadata(path)
                    .is_ok_and(|m| m.kind == super::fs::EntryKind::File)
            })
    }

    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.var(name).is_some()
    }

    /// Assigns a variable; fails for a readonly one with bash's message.
    pub(crate) fn set_var(&mut self, name: &str, value: String) -> Result<(), String> {
        let allexport = self.options.allexport;
        let var = self.vars.entry(name.to_owned()).or_default();
        if var.readonly {
            return Err(format!("{name}: readonly variable"));
        }
        var.value = Some(value);
        if allexport {
            var.exported = true;
        }
        Ok(())
    }

    pub(crate) fn unset_var(&mut self, name: &str) -> Result<(), String> {
        if let Some(var) = self.vars.get(name) {
            if var.readonly {
                return Err(format!("{name}: cannot unset: readonly variable"));
            }
            // Inside a function, unsetting a local leaves it declared-but-unset in that scope.
            if self.is_local_in_top_frame(name) {
                self.vars.insert(name.to_owned(), Var::default());
            } else {
                self.vars.remove(name);
            }
        }
        Ok(())
    }

    fn is_local_in_top_frame(&self, name: &str) -> bool {
        self.local_frames
            .last()
            .is_some_and(|frame| frame.iter().any(|(n, _)| n == name))
    }

    /// Makes `name` local to the innermost function call (`local`).
    pub(crate) fn make_local(&mut self, name: &str) {
        if self.is_local_in_top_frame(name) {
            return;
        }
        let saved = self.vars.get(name).cloned();
        if let Some(frame) = self.local_frames.last_mut() {
            frame.push((name.to_owned(), saved.clone()));
            // A new local starts unset, but keeps the export attribute, as in bash.
            let exported = saved.is_some_and(|v| v.exported);
            self.vars.insert(
                name.to_owned(),
                Var {
                    value: None,
                    exported,
                    readonly: false,
                },
            );
        }
    }

    pub(crate) fn push_local_frame(&mut self) {
        self.local_frames.push(Vec::new());
    }

    pub(crate) fn pop_local_frame(&mut self) {
        if let Some(frame) = self.local_frames.pop() {
            for (name, saved) in frame.into_iter().rev() {
                match saved {
                    Some(var) => {
                        self.vars.insert(name, var);
                    }
                    None => {
                        self.vars.remove(&name);
                    }
                }
            }
        }
    }

    pub(crate) fn export(&mut self, name: &str) {
        self.vars.entry(name.to_owned()).or_default().exported = true;
    }

    /// Exported, set variables sorted by name; `PWD` is always the shell's directory.
    pub(crate) fn exported_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .vars
            .iter()
            .filter(|(name, v)| v.exported && name.as_str() != "PWD")
            .filter_map(|(k, v)| v.value.as_ref().map(|value| (k.clone(), value.clone())))
            .collect();
        env.push(("PWD".into(), self.cwd.clone()));
        env.sort();
        env
    }

    /// The field separators: `IFS` if set, else space, tab and newline.
    pub(crate) fn ifs(&self) -> String {
        self.var("IFS").unwrap_or(" \t\n").to_owned()
    }

    pub(crate) fn home(&self) -> String {
        self.var("HOME")
            .unwrap_or(crate::sandbox::layout::HOME_DIR)
            .to_owned()
    }

    /// The session was interrupted, or this is a background job that was stopped.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
            || self
                .kill
                .as_ref()
                .is_some_and(|k| k.load(Ordering::Relaxed))
            || self
                .job_generation
                .is_some_and(|g| g != self.shared.generation())
    }

    /// [`Interpreter::is_cancelled`] as a closure that owns what it reads, for long computations
    /// (pattern replacement) that cannot borrow the state.
    pub(crate) fn cancel_probe(&self) -> impl Fn() -> bool + use<> {
        let cancel = self.cancel.clone();
        let kill = self.kill.clone();
        let shared = self.shared.clone();
        let job = self.job_generation;
        move || {
            cancel.load(Ordering::Relaxed)
                || kill.as_ref().is_some_and(|k| k.load(Ordering::Relaxed))
                || job.is_some_and(|g| g != shared.generation())
        }
    }

    /// `$-`: the single-letter options that are on.
    pub(crate) fn option_flags(&self) -> String {
        let o = &self.options;
        let mut flags = String::new();
        for (on, c) in [
            (o.allexport, 'a'),
            (o.errexit, 'e'),
            (o.noglob, 'f'),
            (true, 'h'),
            (o.nounset, 'u'),
            (o.verbose, 'v'),
            (o.xtrace, 'x'),
            (true, 'B'),
        ] {
            if on {
                flags.push(c);
            }
        }
        flags
    }

    /// The status a fatal expansion error (`${x:?}`, `set -u`) ends the shell with.
    pub(crate) fn expansion_error_status(&self) -> i32 {
        if self.command_string { 127 } else { 1 }
    }

    /// A pseudo-random number 0..32768 for `$RANDOM` (xorshift; not for secrets).
    pub(crate) fn next_random(&mut self) -> u32 {
        let mut x = self.random_seed.max(1);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.random_seed = x;
        x % 32768
    }
}
