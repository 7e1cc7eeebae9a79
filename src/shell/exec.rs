//! Running the syntax tree: lists, `&&`/`||`, pipelines (one thread per stage, joined by OS
//! pipes, so output streams), compound commands, functions, simple commands with their prefix
//! assignments and redirections, and command lookup (function → builtin → image program; a
//! path runs a workspace `.wasm` module or a script in a child interpreter). `set -e` is
//! decided here.

use std::io::Read;
use std::sync::Arc;

use brush_parser::ast::{
    self, AndOr, Command, CommandPrefixOrSuffixItem, CompoundCommand, IoFileRedirectKind,
    IoFileRedirectTarget, IoRedirect, SeparatorOperator, SourceLocation,
};

use super::builtins;
use super::expand::shell_quote;
use super::fs::{EntryKind, describe_io_error, normalize};
use super::host::{Invocation, Program};
use super::interpreter::{Interpreter, Var, next_pid};
use super::limits::{
    JobSlot, MAX_COMPOUND_DEPTH, MAX_FUNCTION_DEPTH, MAX_NESTING_DEPTH, PROCESS_LIMIT_STATUS,
};
use super::parse;
use super::pattern::Pattern;
use super::streams::{InHandle, Io, MAX_FD, OutHandle, Stream};
use super::{Exec, ShellError, Unwind};

/// Stack of each pipeline stage and background job: the interpreter recurses per nesting
/// level of the script.
pub(crate) const THREAD_STACK: usize = 64 << 20;
/// Capacity asked of the pipes between pipeline stages (Linux caps it at
/// `/proc/sys/fs/pipe-max-size`, 1 MiB by default).
const PIPE_CAPACITY: usize = 1 << 20;

/// A word of a simple command, before expansion.
enum ArgWord<'a> {
    Plain(&'a ast::Word),
    /// `NAME=value` after the command name: an assignment for `export`/`local`/…, a plain
    /// word for anything else.
    Declaration(&'a ast::Assignment, &'a ast::Word),
}

const DECLARATION_BUILTINS: [&str; 5] = ["export", "local", "declare", "typeset", "readonly"];

impl Interpreter {
    pub(crate) fn run_program(&mut self, program: &ast::Program, io: &mut Io) -> Exec {
        let mut status = 0;
        for list in &program.complete_commands {
            status = self.run_list(list, io)?;
        }
        Ok(status)
    }

    /// Stops here if the session was interrupted (or this job stopped), or went over its
    /// process limit (the whole command then ends with [`PROCESS_LIMIT_STATUS`]).
    pub(crate) fn check_cancel(&self) -> Exec<()> {
        if self.is_cancelled() {
            Err(Unwind::Fatal(ShellError::Interrupted))
        } else if self.shared.is_tripped() {
            Err(Unwind::Abort(PROCESS_LIMIT_STATUS))
        } else {
            Ok(())
        }
    }

    /// Ends a subshell: its `exit`/`return` become its status; faults and aborts go on.
    pub(crate) fn finish_subshell(&self, result: Exec) -> Result<i32, Unwind> {
        match result {
            Ok(status) | Err(Unwind::Exit(status) | Unwind::Return(status)) => Ok(status),
            Err(Unwind::Break(_) | Unwind::Continue(_)) => Ok(self.last_status),
            Err(fatal @ (Unwind::Fatal(_) | Unwind::Abort(_))) => Err(fatal),
        }
    }

    /// Takes one of the session's process slots for a new thread, or reports the limit
    /// (once for the session) and aborts the command.
    fn process_slot(&self, io: &Io) -> Exec<super::limits::ProcessSlot> {
        self.check_cancel()?;
        match self.shared.acquire() {
            Ok(slot) => Ok(slot),
            Err(first) => {
                if first {
                    io.diag(&self.shared.process_limit_message());
                }
                Err(Unwind::Abort(PROCESS_LIMIT_STATUS))
            }
        }
    }

    /// A thread could not be started: the host is out of threads, which the process limit
    /// treats as its own excess.
    fn thread_failed(&self, io: &Io, what: &str, error: &std::io::Error) -> Unwind {
        if self.shared.trip() {
            io.diag(&format!("wasmbuild: cannot start {what}: {error}"));
            io.diag(&self.shared.process_limit_message());
        }
        Unwind::Abort(PROCESS_LIMIT_STATUS)
    }

    /// Enters an `eval`, `source`, `$( )` or a script; `Err` past [`MAX_NESTING_DEPTH`].
    pub(crate) fn enter_nesting(&mut self, io: &Io, what: &str) -> Exec<()> {
        if self.nesting >= MAX_NESTING_DEPTH {
            self.error(
                io,
                &format!("{what}: maximum nesting level exceeded ({MAX_NESTING_DEPTH})"),
            );
            return Err(Unwind::Abort(1));
        }
        self.nesting += 1;
        Ok(())
    }

    pub(crate) fn run_list(&mut self, list: &ast::CompoundList, io: &mut Io) -> Exec {
        let mut status = 0;
        for ast::CompoundListItem(and_or, separator) in &list.0 {
            status = match separator {
                SeparatorOperator::Sequence => self.run_and_or(and_or, io)?,
                SeparatorOperator::Async => {
                    self.spawn_background(and_or, io)?;
                    0
                }
            };
        }
        Ok(status)
    }

    /// A condition (`if`, `while`, `until`): `set -e` does not apply inside.
    fn run_condition(&mut self, list: &ast::CompoundList, io: &mut Io) -> Exec {
        let saved = std::mem::replace(&mut self.errexit_suppressed, true);
        let result = self.run_list(list, io);
        self.errexit_suppressed = saved;
        result
    }

    fn run_and_or(&mut self, list: &ast::AndOrList, io: &mut Io) -> Exec {
        self.check_cancel()?;
        let last = list.additional.len();
        let mut status = self.run_pipeline(&list.first, io, last == 0)?;
        for (i, item) in list.additional.iter().enumerate() {
            let (pipeline, runs) = match item {
                AndOr::And(p) => (p, status == 0),
                AndOr::Or(p) => (p, status != 0),
            };
            if runs {
                self.check_cancel()?;
                status = self.run_pipeline(pipeline, io, i + 1 == last)?;
            }
        }
        Ok(status)
    }

    /// Runs a pipeline; `checked` says `set -e` applies to its status (it is the last part
    /// of its `&&`/`||` list).
    fn run_pipeline(&mut self, pipeline: &ast::Pipeline, io: &mut Io, checked: bool) -> Exec {
        let suppress = !checked || pipeline.bang;
        let saved = self.errexit_suppressed;
        self.errexit_suppressed |= suppress;
        let started = std::time::Instant::now();
        let result = if pipeline.seq.len() == 1 {
            self.run_command(&pipeline.seq[0], io)
        } else {
            self.run_stages(&pipeline.seq, io)
        };
        self.errexit_suppressed = saved;
        let mut status = result?;
        if pipeline.timed.is_some() {
            let elapsed = started.elapsed().as_secs_f64();
            io.diag(&format!(
                "\nreal\t{}m{:.3}s\nuser\t0m0.000s\nsys\t0m0.000s",
                (elapsed / 60.0) as u64,
                elapsed % 60.0
            ));
        }
        if pipeline.bang {
            status = i32::from(status == 0);
        }
        self.last_status = status;
        if !suppress && status != 0 && self.options.errexit && !self.errexit_suppressed {
            return Err(Unwind::Exit(status));
        }
        Ok(status)
    }

    /// Every stage in its own thread and its own copy of the state, as bash runs each in a
    /// subshell; stages are joined by OS pipes so nothing is buffered whole.
    fn run_stages(&mut self, seq: &[Command], io: &mut Io) -> Exec {
        let mut results: Vec<Result<i32, Unwind>> = Vec::with_capacity(seq.len());
        let mut refused: Option<Unwind> = None;
        std::thread::scope(|scope| {
            let mut handles = Vec::with_capacity(seq.len());
            let mut next_stdin: Option<InHandle> = None;
            for (i, command) in seq.iter().enumerate() {
                let slot = match self.process_slot(io) {
                    Ok(slot) => slot,
                    Err(unwind) => {
                        refused = Some(unwind);
                        break;
                    }
                };
                let mut stage_io = io.clone();
                if let Some(input) = next_stdin.take() {
                    stage_io.set(0, Some(Stream::In(input)));
                }
                if i + 1 < seq.len() {
                    match std::io::pipe() {
                        Ok((reader, writer)) => {
                            // A larger pipe: fewer switches between the stages' threads.
                            // (Best effort: the default capacity works, only slower.)
                            let _ = rustix::pipe::fcntl_setpipe_size(&writer, PIPE_CAPACITY);
                            stage_io.set(1, Some(Stream::Out(OutHandle::new(writer))));
                            next_stdin = Some(InHandle::new(reader));
                        }
                        Err(e) => {
                            handles.push(Err(format!("cannot create a pipe: {e}")));
                            break;
                        }
                    }
                }
                let mut sub = self.subshell();
                let spawned = std::thread::Builder::new()
                    .name("wasmbuild-pipeline".into())
                    .stack_size(THREAD_STACK)
                    .spawn_scoped(scope, move || {
                        let _slot = slot;
                        let result = sub.run_command(command, &mut stage_io);
                        drop(stage_io);
                        sub.finish_subshell(result)
                    });
                match spawned {
                    Ok(handle) => handles.push(Ok(handle)),
                    Err(e) => {
                        refused = Some(self.thread_failed(io, "a pipeline stage", &e));
                        break;
                    }
                }
            }
            drop(next_stdin);
            for handle in handles {
                results.push(match handle {
                    Ok(h) => h.join().unwrap_or_else(|_| {
                        Err(fault("a pipeline stage of the shell panicked".into()))
                    }),
                    Err(message) => Err(fault(message)),
                });
            }
        });
        if let Some(unwind) = refused {
            return Err(unwind);
        }
        let mut statuses = Vec::with_capacity(results.len());
        for result in results {
            statuses.push(result?);
        }
        let last = statuses.last().copied().unwrap_or(0);
        if self.options.pipefail {
            Ok(statuses
                .iter()
                .rev()
                .find(|s| **s != 0)
                .copied()
                .unwrap_or(0))
        } else {
            Ok(last)
        }
    }

    /// `list &`: a thread of its own, counted against the process limit and registered
    /// with the session so that the end of the phase waits for it or stops it.
    fn spawn_background(&mut self, list: &ast::AndOrList, io: &Io) -> Exec<()> {
        let slot = self.process_slot(io)?;
        let mut sub = self.subshell();
        // A job of a job belongs to the same generation: stopping one stops both.
        sub.job_generation = Some(
            self.job_generation
                .unwrap_or_else(|| self.shared.generation()),
        );
        let list = list.clone();
        let mut job_io = io.clone();
        // Without job control, bash gives background jobs an empty stdin.
        job_io.set(0, Some(Stream::In(InHandle::empty())));
        let pid = next_pid();
        let job = Arc::new(JobSlot::default());
        let end = job.clone();
        let spawned = std::thread::Builder::new()
            .name("wasmbuild-job".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let _slot = slot;
                let run = std::panic::AssertUnwindSafe(|| {
                    let result = sub.run_and_or(&list, &mut job_io);
                    drop(job_io);
                    match sub.finish_subshell(result) {
                        Ok(status) | Err(Unwind::Abort(status)) => Ok(status),
                        Err(Unwind::Fatal(e)) => Err(e),
                        Err(_) => Ok(1),
                    }
                });
                let result = std::panic::catch_unwind(run).unwrap_or_else(|_| {
                    Err(ShellError::Host(super::host::HostError(
                        "a background job of the shell panicked".into(),
                    )))
                });
                end.complete(result);
            });
        match spawned {
            Ok(handle) => {
                self.shared.register_job(handle);
                self.jobs.0.push((pid, job));
                self.last_background_pid = Some(pid);
            }
            Err(e) => return Err(self.thread_failed(io, "a background job", &e)),
        }
        self.last_status = 0;
        Ok(())
    }

    /// Waits for background jobs: all, or the one with `pid`. Returns the last status.
    pub(crate) fn wait_jobs(&mut self, pid: Option<u32>) -> Exec {
        let mut status = 0;
        let jobs = std::mem::take(&mut self.jobs.0);
        for (job_pid, job) in jobs {
            if pid.is_some_and(|p| p != job_pid) {
                self.jobs.0.push((job_pid, job));
                continue;
            }
            let cancelled = self.cancel_probe();
            status = match job.wait(&cancelled) {
                Ok(status) => status,
                Err(ShellError::Interrupted) => {
                    // A stopped job: the session goes on if it was only the job.
                    self.check_cancel()?;
                    130
                }
                Err(e) => return Err(Unwind::Fatal(e)),
            };
        }
        Ok(status)
    }

    pub(crate) fn wait_all_jobs(&mut self) {
        let _ = self.wait_jobs(None);
    }

    pub(crate) fn run_command(&mut self, command: &Command, io: &mut Io) -> Exec {
        if let Some(loc) = command.location() {
            self.line = loc.start.line + self.first_line.saturating_sub(1);
        }
        match command {
            Command::Simple(simple) => self.run_simple(simple, io),
            Command::Compound(compound, redirects) => {
                if self.compound_depth >= MAX_COMPOUND_DEPTH {
                    self.error(
                        io,
                        &format!("maximum nesting level exceeded ({MAX_COMPOUND_DEPTH} compound commands)"),
                    );
                    return Err(Unwind::Abort(1));
                }
                self.compound_depth += 1;
                let result = self
                    .with_redirects(redirects.as_ref(), io, |s, io| s.run_compound(compound, io));
                self.compound_depth -= 1;
                result
            }
            Command::Function(definition) => {
                self.functions
                    .insert(definition.fname.value.clone(), Arc::new(definition.clone()));
                Ok(0)
            }
            Command::ExtendedTest(test, redirects) => {
                self.with_redirects(redirects.as_ref(), io, |s, io| {
                    if s.options.xtrace {
                        s.trace(io, &format!("[[ {} ]]", test.expr));
                    }
                    s.run_extended_test(&test.expr, io)
                })
            }
        }
    }

    fn with_redirects(
        &mut self,
        redirects: Option<&ast::RedirectList>,
        io: &mut Io,
        run: impl FnOnce(&mut Interpreter, &mut Io) -> Exec,
    ) -> Exec {
        let Some(list) = redirects.filter(|r| !r.0.is_empty()) else {
            return run(self, io);
        };
        let mut local = io.clone();
        let redirects: Vec<&IoRedirect> = list.0.iter().collect();
        if let Err(message) = self.apply_redirects(&redirects, &mut local)? {
            self.error(io, &message);
            return Ok(1);
        }
        run(self, &mut local)
    }

    fn run_compound(&mut self, compound: &CompoundCommand, io: &mut Io) -> Exec {
        match compound {
            CompoundCommand::BraceGroup(group) => self.run_list(&group.list, io),
            CompoundCommand::Subshell(subshell) => {
                let mut sub = self.subshell();
                let result = sub.run_list(&subshell.list, io);
                sub.finish_subshell(result)
            }
            CompoundCommand::IfClause(clause) => {
                if self.run_condition(&clause.condition, io)? == 0 {
                    return self.run_list(&clause.then, io);
                }
                for branch in clause.elses.iter().flatten() {
                    match &branch.condition {
                        Some(condition) => {
                            if self.run_condition(condition, io)? == 0 {
                                return self.run_list(&branch.body, io);
                            }
                        }
                        None => return self.run_list(&branch.body, io),
                    }
                }
                Ok(0)
            }
            CompoundCommand::WhileClause(clause) => self.run_while(clause, false, io),
            CompoundCommand::UntilClause(clause) => self.run_while(clause, true, io),
            CompoundCommand::ForClause(clause) => self.run_for(clause, io),
            CompoundCommand::ArithmeticForClause(clause) => self.run_arithmetic_for(clause, io),
            CompoundCommand::CaseClause(clause) => self.run_case(clause, io),
            CompoundCommand::Arithmetic(arithmetic) => {
                if self.options.xtrace {
                    self.trace(io, &format!("(( {} ))", arithmetic.expr.value));
                }
                self.run_arithmetic_command(&arithmetic.expr.value, io)
            }
            CompoundCommand::Coprocess(_) => {
                self.error(io, "coproc: not supported by the build shell");
                Ok(1)
            }
        }
    }

    /// `(( expr ))` and `let`: 0 if the value is non-zero; an error is status 1.
    pub(crate) fn run_arithmetic_command(&mut self, text: &str, io: &Io) -> Exec {
        let expanded = self.expand_arithmetic_text(text, io)?;
        match self.eval_arithmetic(&expanded) {
            Ok(n) => Ok(i32::from(n == 0)),
            Err(message) => {
                self.error(io, &message);
                Ok(1)
            }
        }
    }

    /// Runs a loop body once; `Ok(false)` when the loop must stop (`break`).
    fn run_loop_body(
        &mut self,
        body: &ast::CompoundList,
        io: &mut Io,
        status: &mut i32,
    ) -> Exec<bool> {
        match self.run_list(body, io) {
            Ok(s) => {
                *status = s;
                Ok(true)
            }
            Err(Unwind::Break(n)) => {
                *status = 0;
                if n > 1 {
                    Err(Unwind::Break(n - 1))
                } else {
                    Ok(false)
                }
            }
            Err(Unwind::Continue(n)) => {
                *status = 0;
                if n > 1 {
                    Err(Unwind::Continue(n - 1))
                } else {
                    Ok(true)
                }
            }
            Err(other) => Err(other),
        }
    }

    fn in_loop(&mut self, run: impl FnOnce(&mut Interpreter) -> Exec) -> Exec {
        self.loop_depth += 1;
        let result = run(self);
        self.loop_depth -= 1;
        result
    }

    fn run_while(
        &mut self,
        clause: &ast::WhileOrUntilClauseCommand,
        until: bool,
        io: &mut Io,
    ) -> Exec {
        self.in_loop(|s| {
            let mut status = 0;
            loop {
                s.check_cancel()?;
                let condition = s.run_condition(&clause.0, io)?;
                if (condition == 0) == until {
                    return Ok(status);
                }
                if !s.run_loop_body(&clause.1.list, io, &mut status)? {
                    return Ok(status);
                }
            }
        })
    }

    fn run_for(&mut self, clause: &ast::ForClauseCommand, io: &mut Io) -> Exec {
        let values = match &clause.values {
            Some(words) => {
                let mut values = Vec::new();
                let mut bytes = 0;
                for word in words {
                    let before = values.len();
                    values.extend(self.expand_word_fields(&word.value, io)?);
                    bytes += values[before..].iter().map(|v| v.len() + 1).sum::<usize>();
                    self.check_expansion_size(bytes, io)?;
                }
                values
            }
            None => self.positional.clone(),
        };
        if self.options.xtrace {
            self.trace(
                io,
                &format!("for {} in {}", clause.variable_name, values.join(" ")),
            );
        }
        self.in_loop(|s| {
            let mut status = 0;
            for value in values {
                s.check_cancel()?;
                if let Err(message) = s.set_var(&clause.variable_name, value) {
                    s.error(io, &message);
                    return Ok(1);
                }
                if !s.run_loop_body(&clause.body.list, io, &mut status)? {
                    break;
                }
            }
            Ok(status)
        })
    }

    fn run_arithmetic_for(
        &mut self,
        clause: &ast::ArithmeticForClauseCommand,
        io: &mut Io,
    ) -> Exec {
        if let Some(init) = &clause.initializer
            && self.run_arithmetic_command(&init.value, io)? != 0
            && self.last_arith_failed(&init.value, io)?
        {
            return Ok(1);
        }
        self.in_loop(|s| {
            let mut status = 0;
            loop {
                s.check_cancel()?;
                if let Some(condition) = &clause.condition
                    && s.run_arithmetic_command(&condition.value, io)? != 0
                {
                    return Ok(status);
                }
                if !s.run_loop_body(&clause.body.list, io, &mut status)? {
                    return Ok(status);
                }
                if let Some(update) = &clause.updater {
                    s.run_arithmetic_command(&update.value, io)?;
                }
            }
        })
    }

    /// Whether arithmetic text fails to evaluate (as opposed to evaluating to 0).
    fn last_arith_failed(&mut self, text: &str, io: &Io) -> Exec<bool> {
        let expanded = self.expand_arithmetic_text(text, io)?;
        if expanded.bytes().filter(|b| *b == b'(').count() > parse::MAX_SYNTAX_DEPTH {
            return Ok(true);
        }
        Ok(
            parse::contained(|| brush_parser::arithmetic::parse(&expanded))
                .is_none_or(|r| r.is_err()),
        )
    }

    fn run_case(&mut self, clause: &ast::CaseClauseCommand, io: &mut Io) -> Exec {
        let value = self.expand_word_string(&clause.value.value, io)?;
        if self.options.xtrace {
            self.trace(io, &format!("case {value} in"));
        }
        let mut status = 0;
        let mut run_next = false;
        for item in &clause.cases {
            let mut hit = run_next;
            run_next = false;
            if !hit {
                for pattern in &item.patterns {
                    let pattern = self.expand_word_pattern(&pattern.value, io)?;
                    if Pattern::new(&pattern).matches(&value) {
                        hit = true;
                        break;
                    }
                }
            }
            if !hit {
                continue;
            }
            status = match &item.cmd {
                Some(list) => self.run_list(list, io)?,
                None => 0,
            };
            match item.post_action {
                ast::CaseItemPostAction::ExitCase => return Ok(status),
                ast::CaseItemPostAction::UnconditionallyExecuteNextCaseItem => run_next = true,
                ast::CaseItemPostAction::ContinueEvaluatingCases => {}
            }
        }
        Ok(status)
    }

    fn run_simple(&mut self, command: &ast::SimpleCommand, io: &mut Io) -> Exec {
        let mut assignments: Vec<&ast::Assignment> = Vec::new();
        let mut redirects: Vec<&IoRedirect> = Vec::new();
        let mut words: Vec<ArgWord<'_>> = Vec::new();
        for item in command.prefix.iter().flat_map(|p| &p.0) {
            match item {
                CommandPrefixOrSuffixItem::IoRedirect(r) => redirects.push(r),
                CommandPrefixOrSuffixItem::AssignmentWord(a, _) => assignments.push(a),
                CommandPrefixOrSuffixItem::Word(w) => words.push(ArgWord::Plain(w)),
                CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
                    self.error(
                        io,
                        "process substitution is not supported by the build shell",
                    );
                    return Ok(1);
                }
            }
        }
        if let Some(name) = &command.word_or_name {
            words.push(ArgWord::Plain(name));
        }
        for item in command.suffix.iter().flat_map(|s| &s.0) {
            match item {
                CommandPrefixOrSuffixItem::IoRedirect(r) => redirects.push(r),
                CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                    words.push(ArgWord::Declaration(a, w))
                }
                CommandPrefixOrSuffixItem::Word(w) => words.push(ArgWord::Plain(w)),
                CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
                    self.error(
                        io,
                        "process substitution is not supported by the build shell",
                    );
                    return Ok(1);
                }
            }
        }

        self.last_substitution_status = None;
        let mut argv: Vec<String> = Vec::new();
        let mut argv_bytes = 0;
        for word in &words {
            let before = argv.len();
            match word {
                ArgWord::Declaration(assignment, _)
                    if argv
                        .first()
                        .is_some_and(|n| DECLARATION_BUILTINS.contains(&n.as_str())) =>
                {
                    argv.push(self.expand_declaration(assignment, io)?);
                }
                ArgWord::Plain(w) | ArgWord::Declaration(_, w) => {
                    argv.extend(self.expand_word_fields(&w.value, io)?);
                }
            }
            argv_bytes += argv[before..].iter().map(|a| a.len() + 1).sum::<usize>();
            self.check_expansion_size(argv_bytes, io)?;
        }

        if argv.is_empty() {
            return self.run_assignments_only(&assignments, &redirects, io);
        }

        // `exec` with only redirections changes the shell's own descriptors.
        if argv.len() == 1 && argv[0] == "exec" && assignments.is_empty() {
            if self.options.xtrace {
                self.trace(io, "exec");
            }
            if let Err(message) = self.apply_redirects(&redirects, io)? {
                self.error(io, &message);
                return Ok(1);
            }
            return Ok(0);
        }

        // Prefix assignments hold for this command only.
        let mut saved: Vec<(String, Option<Var>)> = Vec::new();
        let mut trace_parts: Vec<String> = Vec::new();
        for assignment in &assignments {
            let (name, value) = match self.assignment_value(assignment, io) {
                Ok(pair) => pair,
                Err(e) => {
                    self.restore_vars(saved);
                    return Err(e);
                }
            };
            if self.vars.get(&name).is_some_and(|v| v.readonly) {
                // bash reports it and runs the command without that assignment.
                self.error(io, &format!("{name}: readonly variable"));
                continue;
            }
            trace_parts.push(format!("{name}={}", shell_quote(&value, false)));
            saved.push((name.clone(), self.vars.get(&name).cloned()));
            self.vars.insert(
                name,
                Var {
                    value: Some(value),
                    exported: true,
                    readonly: false,
                },
            );
        }
        let result = {
            if self.options.xtrace {
                trace_parts.extend(argv.iter().map(|a| shell_quote(a, false)));
                self.trace(io, &trace_parts.join(" "));
            }
            let mut local = io.clone();
            match self.apply_redirects(&redirects, &mut local) {
                Ok(Ok(())) => self.dispatch(argv, &mut local, true),
                Ok(Err(message)) => {
                    self.error(io, &message);
                    Ok(1)
                }
                Err(e) => Err(e),
            }
        };
        self.restore_vars(saved);
        result
    }

    fn restore_vars(&mut self, saved: Vec<(String, Option<Var>)>) {
        for (name, old) in saved.into_iter().rev() {
            match old {
                Some(var) => {
                    self.vars.insert(name, var);
                }
                None => {
                    self.vars.remove(&name);
                }
            }
        }
    }

    /// `NAME=value …` with no command: assignments to the shell itself.
    fn run_assignments_only(
        &mut self,
        assignments: &[&ast::Assignment],
        redirects: &[&IoRedirect],
        io: &mut Io,
    ) -> Exec {
        let mut local = io.clone();
        if let Err(message) = self.apply_redirects(redirects, &mut local)? {
            self.error(io, &message);
            return Ok(1);
        }
        for assignment in assignments {
            let (name, value) = self.assignment_value(assignment, io)?;
            if self.options.xtrace {
                self.trace(io, &format!("{name}={}", shell_quote(&value, false)));
            }
            if let Err(message) = self.set_var(&name, value) {
                // A failed assignment ends a non-interactive bash.
                self.error(io, &message);
                return Err(Unwind::Exit(1));
            }
        }
        Ok(self.last_substitution_status.unwrap_or(0))
    }

    /// The name and expanded value of an assignment; `+=` appends to the current value.
    fn assignment_value(
        &mut self,
        assignment: &ast::Assignment,
        io: &Io,
    ) -> Exec<(String, String)> {
        let name = match &assignment.name {
            ast::AssignmentName::VariableName(name) => name.clone(),
            ast::AssignmentName::ArrayElementName(name, index) if index.trim() == "0" => {
                name.clone()
            }
            ast::AssignmentName::ArrayElementName(name, _) => {
                self.error(
                    io,
                    &format!("{name}: arrays are not supported by the build shell"),
                );
                return Err(Unwind::Exit(1));
            }
        };
        let value = match &assignment.value {
            ast::AssignmentValue::Scalar(word) => self.expand_assignment_value(&word.value, io)?,
            ast::AssignmentValue::Array(_) => {
                self.error(
                    io,
                    &format!("{name}: arrays are not supported by the build shell"),
                );
                return Err(Unwind::Exit(1));
            }
        };
        let value = if assignment.append {
            format!("{}{value}", self.var(&name).unwrap_or(""))
        } else {
            value
        };
        Ok((name, value))
    }

    /// An argument `NAME=value` of `export`/`local`/…: expanded without splitting.
    fn expand_declaration(&mut self, assignment: &ast::Assignment, io: &Io) -> Exec<String> {
        let name = match &assignment.name {
            ast::AssignmentName::VariableName(name) => name.clone(),
            ast::AssignmentName::ArrayElementName(name, index) => format!("{name}[{index}]"),
        };
        let value = match &assignment.value {
            ast::AssignmentValue::Scalar(word) => self.expand_assignment_value(&word.value, io)?,
            ast::AssignmentValue::Array(_) => {
                self.error(
                    io,
                    &format!("{name}: arrays are not supported by the build shell"),
                );
                return Err(Unwind::Exit(1));
            }
        };
        let op = if assignment.append { "+=" } else { "=" };
        Ok(format!("{name}{op}{value}"))
    }

    /// Runs a command by name: function, builtin, then the image's programs; a name with a
    /// `/` is a file of the build. `functions: false` is `command NAME`.
    pub(crate) fn dispatch(&mut self, argv: Vec<String>, io: &mut Io, functions: bool) -> Exec {
        let name = argv[0].clone();
        if name.contains('/') {
            return self.run_path(argv, io);
        }
        if functions && let Some(function) = self.functions.get(&name).cloned() {
            return self.call_function(&function, argv, io);
        }
        if let Some(builtin) = builtins::find(&name)
            && !self.disabled_builtins.contains(&name)
        {
            return builtin(self, &argv, io);
        }
        if self.host.has_program(&name) {
            return self.run_program_in_sandbox(Program::Image(name), argv, io);
        }
        if let Some(path) = self.find_in_path(&name) {
            let mut argv = argv;
            argv[0] = path;
            return self.run_path(argv, io);
        }
        if matches!(name.as_str(), "sh" | "bash") {
            return self.run_shell_program(argv, io);
        }
        self.error(io, &format!("{name}: command not found"));
        Ok(127)
    }

    /// `bash [OPTIONS] [-c STRING [ARG0 ARGS…] | FILE ARGS…]` when the image has no shell:
    /// a child interpreter, as `./script.sh` gets. Without a file or `-c`, the script is
    /// read from stdin.
    fn run_shell_program(&mut self, argv: Vec<String>, io: &mut Io) -> Exec {
        let mut command_mode = false;
        let mut flags: Vec<String> = Vec::new();
        let mut i = 1;
        while let Some(arg) = argv.get(i) {
            if arg == "--" {
                i += 1;
                break;
            }
            if (arg == "-o" || arg == "+o") && i + 1 < argv.len() {
                flags.push(format!("{arg}{}", argv[i + 1]));
                i += 2;
                continue;
            }
            let Some(letters) = arg.strip_prefix(['-', '+']).filter(|l| !l.is_empty()) else {
                break;
            };
            if letters.starts_with('-') {
                // Long options (`--norc`, `--posix`, …) change nothing here.
                i += 1;
                continue;
            }
            let sign = &arg[..1];
            for letter in letters.chars() {
                match letter {
                    'c' => command_mode = true,
                    's' | 'i' | 'l' | 'r' => {}
                    other => flags.push(format!("{sign}{other}")),
                }
            }
            i += 1;
        }
        let rest = &argv[i.min(argv.len())..];
        let (text, name, arg0, args) = if command_mode {
            let Some(script) = rest.first() else {
                self.error(io, &format!("{}: -c: option requires an argument", argv[0]));
                return Ok(2);
            };
            let arg0 = rest.get(1).cloned().unwrap_or_else(|| argv[0].clone());
            let args = rest.iter().skip(2).cloned().collect();
            (script.clone(), argv[0].clone(), arg0, args)
        } else if let Some(file) = rest.first() {
            let path = normalize(&self.cwd, file);
            match self.fs.read(&path) {
                Ok(bytes) => (
                    String::from_utf8_lossy(&bytes).into_owned(),
                    file.clone(),
                    file.clone(),
                    rest[1..].to_vec(),
                ),
                Err(e) => {
                    self.error(io, &format!("{file}: {}", describe_io_error(&e)));
                    return Ok(127);
                }
            }
        } else {
            let mut bytes = Vec::new();
            let max = self.shared.limits.max_expansion_bytes;
            if let Err(e) = io.stdin().take(max as u64 + 1).read_to_end(&mut bytes) {
                self.error(io, &format!("{}: {}", argv[0], describe_io_error(&e)));
                return Ok(1);
            }
            if bytes.len() > max {
                self.error(
                    io,
                    &format!("{}: script too large (limit {max} bytes)", argv[0]),
                );
                return Ok(1);
            }
            (
                String::from_utf8_lossy(&bytes).into_owned(),
                argv[0].clone(),
                argv[0].clone(),
                Vec::new(),
            )
        };
        let mut child = self.child(arg0, args);
        child.script_name = name;
        child.command_string = command_mode;
        self.run_child(child, &text, &flags, io)
    }

    pub(crate) fn run_program_in_sandbox(
        &mut self,
        program: Program,
        argv: Vec<String>,
        io: &Io,
    ) -> Exec {
        self.check_cancel()?;
        let invocation = Invocation {
            argv,
            env: self.exported_env(),
            cwd: self.cwd.clone(),
            stdin: Box::new(io.stdin()),
            stdout: Box::new(io.stdout()),
            stderr: Box::new(io.stderr()),
            spawner: Some(Arc::new(super::spawn::ShellSpawner::new(self))),
            kill: self.kill.clone(),
        };
        match self.host.run(program, invocation) {
            Ok(status) => {
                self.check_cancel()?;
                Ok(status)
            }
            Err(e) => Err(Unwind::Fatal(ShellError::Host(e))),
        }
    }

    fn call_function(
        &mut self,
        function: &ast::FunctionDefinition,
        argv: Vec<String>,
        io: &mut Io,
    ) -> Exec {
        if self.stack_functions >= MAX_FUNCTION_DEPTH {
            self.error(
                io,
                &format!(
                    "{}: maximum function nesting level exceeded ({MAX_FUNCTION_DEPTH})",
                    argv[0]
                ),
            );
            return Err(Unwind::Abort(1));
        }
        let args = argv.into_iter().skip(1).collect();
        let saved_positional = std::mem::replace(&mut self.positional, args);
        self.function_depth += 1;
        self.stack_functions += 1;
        self.function_names.push(function.fname.value.clone());
        self.push_local_frame();
        let ast::FunctionBody(body, redirects) = &function.body;
        let result = self.with_redirects(redirects.as_ref(), io, |s, io| s.run_compound(body, io));
        self.pop_local_frame();
        self.function_names.pop();
        self.function_depth -= 1;
        self.stack_functions -= 1;
        self.positional = saved_positional;
        match result {
            Err(Unwind::Return(status)) => Ok(status),
            other => other,
        }
    }

    /// A command named by path: a `.wasm` module runs in the sandbox; a shell script (no
    /// shebang, or a `sh`/`bash` one) runs in a child interpreter; a script for another
    /// interpreter of the image runs with it.
    fn run_path(&mut self, argv: Vec<String>, io: &mut Io) -> Exec {
        let name = argv[0].clone();
        let path = normalize(&self.cwd, &name);
        // A command of the image by its path in a bundle (`/opt/runtimes/base/bin/ls`,
        // what `PATH` lookups in guests find): the image's program, loaded as by name.
        if let Some(command) = bundle_command(&path)
            && self.host.has_program(command)
        {
            return self.run_program_in_sandbox(Program::Image(command.to_owned()), argv, io);
        }
        // `/bin/sh` and friends, which scripts and programs name: the build shell.
        if let Some(shell) = host_shell(&path)
            && self.fs.metadata(&path).is_err()
        {
            let mut argv = argv;
            argv[0] = shell.to_owned();
            return self.run_shell_program(argv, io);
        }
        let metadata = match self.fs.metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                self.error(io, &format!("{name}: {}", describe_io_error(&e)));
                return Ok(127);
            }
        };
        if metadata.kind == EntryKind::Dir {
            self.error(io, &format!("{name}: Is a directory"));
            return Ok(126);
        }
        let mut head = Vec::with_capacity(512);
        if let Err(e) = self
            .fs
            .open_read(&path)
            .and_then(|f| f.take(512).read_to_end(&mut head))
        {
            self.error(io, &format!("{name}: {}", describe_io_error(&e)));
            return Ok(126);
        }
        if head.starts_with(b"\0asm") {
            return self.run_program_in_sandbox(Program::Module(path), argv, io);
        }
        let args: Vec<String> = argv[1..].to_vec();
        if let Some(line) = head.strip_prefix(b"#!") {
            let line = String::from_utf8_lossy(line);
            let line = line.lines().next().unwrap_or("").trim().to_owned();
            let mut parts = line.split_whitespace();
            let interpreter = parts.next().unwrap_or("");
            let mut program = interpreter.rsplit('/').next().unwrap_or("").to_owned();
            let mut rest: Vec<String> = parts.map(str::to_owned).collect();
            if program == "env" && !rest.is_empty() {
                program = rest.remove(0);
            }
            return match program.as_str() {
                "sh" | "bash" | "dash" => self.run_script_file(&path, name, args, &rest, io),
                other if !other.is_empty() && self.host.has_program(other) => {
                    let mut argv = vec![other.to_owned()];
                    argv.extend(rest);
                    argv.push(name);
                    argv.extend(args);
                    self.run_program_in_sandbox(Program::Image(other.to_owned()), argv, io)
                }
                _ => {
                    self.error(
                        io,
                        &format!(
                            "{name}: {interpreter}: bad interpreter: No such file or directory"
                        ),
                    );
                    Ok(126)
                }
            };
        }
        if head.contains(&0) {
            self.error(
                io,
                &format!("{name}: cannot execute binary file: Exec format error"),
            );
            return Ok(126);
        }
        self.run_script_file(&path, name, args, &[], io)
    }

    /// Runs a script file in a child interpreter (a new "process": exported variables only).
    /// (See `bundle_command` and `host_shell` below.)
    fn run_script_file(
        &mut self,
        path: &str,
        name: String,
        args: Vec<String>,
        flags: &[String],
        io: &mut Io,
    ) -> Exec {
        let text = match self.fs.read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                self.error(io, &format!("{name}: {}", describe_io_error(&e)));
                return Ok(126);
            }
        };
        let child = self.child(name, args);
        self.run_child(child, &text, flags, io)
    }

    /// Runs a script in a child interpreter with `set` flags such as `-e` or `-o pipefail`.
    fn run_child(
        &mut self,
        mut child: Interpreter,
        text: &str,
        flags: &[String],
        io: &mut Io,
    ) -> Exec {
        let program = match parse::parse_program(text, &child.script_name) {
            Ok(p) => p,
            Err(e) => {
                io.diag(&e.to_string());
                return Ok(2);
            }
        };
        for flag in flags {
            let on = flag.starts_with('-');
            if let Some(name) = flag.get(2..).filter(|_| flag[1..].starts_with('o')) {
                builtins::set_long_option(&mut child.options, name, on);
                continue;
            }
            for letter in flag.chars().skip(1) {
                builtins::set_short_option(&mut child.options, letter, on);
            }
        }
        child.enter_nesting(io, &child.script_name.clone())?;
        let result = child.run_program(&program, io);
        let status = child.finish_subshell(result)?;
        child.run_exit_trap(status, io)
    }

    /// Runs the `EXIT` trap, if any, after the shell ended with `status`.
    pub(crate) fn run_exit_trap(&mut self, status: i32, io: &mut Io) -> Exec {
        self.wait_all_jobs();
        let Some(trap) = self.exit_trap.take() else {
            return Ok(status);
        };
        let program = match parse::parse_program(&trap, &self.script_name) {
            Ok(p) => p,
            Err(e) => {
                io.diag(&e.to_string());
                return Ok(status);
            }
        };
        self.last_status = status;
        match self.run_program(&program, io) {
            Ok(_) | Err(Unwind::Return(_) | Unwind::Break(_) | Unwind::Continue(_)) => Ok(status),
            Err(Unwind::Exit(n)) => Ok(n),
            Err(fatal) => Err(fatal),
        }
    }

    /// `source FILE ARGS…`: runs the file in this shell.
    pub(crate) fn source_file(
        &mut self,
        path: &str,
        shown: &str,
        args: Option<Vec<String>>,
        io: &mut Io,
    ) -> Exec {
        let text = match self.fs.read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                self.error(io, &format!("{shown}: {}", describe_io_error(&e)));
                return Ok(1);
            }
        };
        let program = match parse::parse_program(&text, shown) {
            Ok(p) => p,
            Err(e) => {
                io.diag(&e.to_string());
                return Ok(2);
            }
        };
        self.enter_nesting(io, shown)?;
        let saved_positional = args.map(|a| std::mem::replace(&mut self.positional, a));
        let (saved_line, saved_first) = (self.line, self.first_line);
        self.first_line = 1;
        self.source_depth += 1;
        let result = self.run_program(&program, io);
        self.source_depth -= 1;
        self.nesting -= 1;
        (self.line, self.first_line) = (saved_line, saved_first);
        if let Some(saved) = saved_positional {
            self.positional = saved;
        }
        match result {
            Err(Unwind::Return(status)) => Ok(status),
            other => other,
        }
    }

    /// `eval`: parses and runs text in this shell.
    pub(crate) fn eval_text(&mut self, text: &str, io: &mut Io) -> Exec {
        let program = match parse::parse_program(text, &self.script_name) {
            Ok(p) => p,
            Err(e) => {
                io.diag(&e.to_string());
                return Ok(2);
            }
        };
        self.enter_nesting(io, "eval")?;
        let result = self.run_program(&program, io);
        self.nesting -= 1;
        result
    }

    /// Prints a `set -x` line.
    pub(crate) fn trace(&self, io: &Io, line: &str) {
        let ps4 = self.var("PS4").unwrap_or("+ ");
        let mut chars = ps4.chars();
        let first = chars.next().map(String::from).unwrap_or_default();
        let prefix = format!(
            "{}{}",
            first.repeat(self.subshell_level + 1),
            chars.as_str()
        );
        io.diag(&format!("{prefix}{line}"));
    }

    /// Applies redirections to `io`, in order. `Ok(Err(message))` is a redirection that
    /// failed (the command does not run, status 1).
    pub(crate) fn apply_redirects(
        &mut self,
        redirects: &[&IoRedirect],
        io: &mut Io,
    ) -> Exec<Result<(), String>> {
        for redirect in redirects {
            let outcome = match redirect {
                IoRedirect::File(fd, kind, target) => self.redirect_file(*fd, kind, target, io)?,
                IoRedirect::HereDocument(fd, doc) => {
                    let text = if doc.requires_expansion {
                        self.expand_heredoc(&doc.doc.value, io)?
                    } else {
                        doc.doc.value.clone()
                    };
                    io.set(
                        fd.unwrap_or(0),
                        Some(Stream::In(InHandle::from_bytes(text.into_bytes()))),
                    );
                    Ok(())
                }
                IoRedirect::HereString(fd, word) => {
                    let mut text = self.expand_word_string(&word.value, io)?;
                    text.push('\n');
                    io.set(
                        fd.unwrap_or(0),
                        Some(Stream::In(InHandle::from_bytes(text.into_bytes()))),
                    );
                    Ok(())
                }
                IoRedirect::OutputAndError(word, append) => {
                    match self.redirect_target(word, io)? {
                        Ok(target) => self.open_output(&target, *append, false, io).map(|out| {
                            io.set(1, Some(Stream::Out(out.clone())));
                            io.set(2, Some(Stream::Out(out)));
                        }),
                        Err(message) => Err(message),
                    }
                }
            };
            if outcome.is_err() {
                return Ok(outcome);
            }
        }
        Ok(Ok(()))
    }

    /// The file name of a redirection: one field after expansion, or "ambiguous redirect".
    fn redirect_target(&mut self, word: &ast::Word, io: &Io) -> Exec<Result<String, String>> {
        let mut fields = self.expand_word_fields(&word.value, io)?;
        if fields.len() != 1 {
            return Ok(Err(format!("{}: ambiguous redirect", word.value)));
        }
        Ok(Ok(fields.remove(0)))
    }

    fn redirect_file(
        &mut self,
        fd: Option<i32>,
        kind: &IoFileRedirectKind,
        target: &IoFileRedirectTarget,
        io: &mut Io,
    ) -> Exec<Result<(), String>> {
        let input = matches!(
            kind,
            IoFileRedirectKind::Read
                | IoFileRedirectKind::ReadAndWrite
                | IoFileRedirectKind::DuplicateInput
        );
        let fd = fd.unwrap_or(if input { 0 } else { 1 });
        if !(0..=MAX_FD).contains(&fd) {
            return Ok(Err(format!("{fd}: Bad file descriptor")));
        }
        let word = match target {
            IoFileRedirectTarget::Filename(word) | IoFileRedirectTarget::Duplicate(word) => word,
            IoFileRedirectTarget::Fd(source) => return Ok(duplicate(io, fd, *source)),
            IoFileRedirectTarget::ProcessSubstitution(..) => {
                return Ok(Err(
                    "process substitution is not supported by the build shell".into(),
                ));
            }
        };
        if matches!(
            kind,
            IoFileRedirectKind::DuplicateInput | IoFileRedirectKind::DuplicateOutput
        ) {
            let text = self.expand_word_string(&word.value, io)?;
            if text == "-" {
                io.set(fd, None);
                return Ok(Ok(()));
            }
            let (digits, close) = match text.strip_suffix('-') {
                Some(d) => (d, true),
                None => (text.as_str(), false),
            };
            if let Ok(source) = digits.parse::<i32>() {
                let result = duplicate(io, fd, source);
                if close && result.is_ok() {
                    io.set(source, None);
                }
                return Ok(result);
            }
            if matches!(kind, IoFileRedirectKind::DuplicateOutput) && fd == 1 {
                // `>&file` is `&>file`.
                return Ok(self.open_output(&text, false, false, io).map(|out| {
                    io.set(1, Some(Stream::Out(out.clone())));
                    io.set(2, Some(Stream::Out(out)));
                }));
            }
            return Ok(Err(format!("{text}: ambiguous redirect")));
        }
        let path = match self.redirect_target(word, io)? {
            Ok(path) => path,
            Err(message) => return Ok(Err(message)),
        };
        let stream = match kind {
            IoFileRedirectKind::Read | IoFileRedirectKind::ReadAndWrite => {
                self.open_input(&path, io).map(Stream::In)
            }
            IoFileRedirectKind::Append => self.open_output(&path, true, false, io).map(Stream::Out),
            IoFileRedirectKind::Clobber => {
                self.open_output(&path, false, true, io).map(Stream::Out)
            }
            _ => self.open_output(&path, false, false, io).map(Stream::Out),
        };
        Ok(stream.map(|s| io.set(fd, Some(s))))
    }

    fn open_input(&self, path: &str, io: &Io) -> Result<InHandle, String> {
        match path {
            "/dev/null" => return Ok(InHandle::empty()),
            "/dev/stdin" => return Ok(io.stdin()),
            "/dev/zero" => return Ok(InHandle::new(std::io::repeat(0))),
            _ => {}
        }
        let guest = normalize(&self.cwd, path);
        if self.fs.is_dir(&guest) {
            return Err(format!("{path}: Is a directory"));
        }
        self.fs
            .open_read(&guest)
            .map(InHandle::new)
            .map_err(|e| format!("{path}: {}", describe_io_error(&e)))
    }

    fn open_output(
        &self,
        path: &str,
        append: bool,
        force: bool,
        io: &Io,
    ) -> Result<OutHandle, String> {
        match path {
            "/dev/null" => return Ok(OutHandle::sink()),
            "/dev/stdout" => return Ok(io.stdout()),
            "/dev/stderr" => return Ok(io.stderr()),
            _ => {}
        }
        if let Some(n) = path
            .strip_prefix("/dev/fd/")
            .and_then(|n| n.parse::<i32>().ok())
        {
            return match io.get(n) {
                Some(Stream::Out(out)) => Ok(out.clone()),
                _ => Err(format!("{path}: Bad file descriptor")),
            };
        }
        let guest = normalize(&self.cwd, path);
        if self.options.noclobber
            && !append
            && !force
            && self
                .fs
                .metadata(&guest)
                .is_ok_and(|m| m.kind == EntryKind::File)
        {
            return Err(format!("{path}: cannot overwrite existing file"));
        }
        if self.fs.is_dir(&guest) {
            return Err(format!("{path}: Is a directory"));
        }
        self.fs
            .create(&guest, append)
            .map(OutHandle::new)
            .map_err(|e| format!("{path}: {}", describe_io_error(&e)))
    }
}

/// `fd>&source` / `fd<&source`.
fn duplicate(io: &mut Io, fd: i32, source: i32) -> Result<(), String> {
    if !(0..=MAX_FD).contains(&source) {
        return Err(format!("{source}: Bad file descriptor"));
    }
    match io.get(source).cloned() {
        Some(stream) => {
            io.set(fd, Some(stream));
            Ok(())
        }
        None => Err(format!("{source}: Bad file descriptor")),
    }
}

fn fault(message: String) -> Unwind {
    Unwind::Fatal(ShellError::Host(super::host::HostError(message)))
}

/// The command NAME of `/opt/runtimes/BUNDLE/bin/NAME`.
fn bundle_command(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(crate::sandbox::layout::RUNTIMES_DIR)?;
    let (_, command) = rest.strip_prefix('/')?.split_once("/bin/")?;
    (!command.is_empty() && !command.contains('/')).then_some(command)
}

/// `sh` or `bash` for the paths at which systems keep them.
pub(crate) fn host_shell(path: &str) -> Option<&'static str> {
    match path {
        "/bin/sh" | "/usr/bin/sh" => Some("sh"),
        "/bin/bash" | "/usr/bin/bash" | "/usr/local/bin/bash" => Some("bash"),
        _ => None,
    }
}
