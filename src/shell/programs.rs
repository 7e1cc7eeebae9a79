//! The programs a script calls, found without running it: the script is parsed with the
//! build shell's own parser and every command word is collected, through pipelines, `&&`
//! lists, `if`/`while`/`for`/`case`, functions, subshells, `$( )` and backquotes (in any
//! word, redirections included), process substitutions, the programs wrappers start
//! (`env`, `exec`, `nohup`, `timeout`, `nice`, `xargs`, `command`, `find -exec`) and the
//! scripts of `bash -c`/`sh -c`. A command word that is only known when the script runs
//! (`$TOOL`) is counted as dynamic.

use brush_parser::ast::{self, SourceLocation};
use brush_parser::word::{self, WordPiece, WordPieceWithSource};

use super::ShellError;
use super::parse;

/// A program called by a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The command word as written (quotes removed): `make`, `./gradlew`.
    pub name: String,
    /// The 1-based line of the script it is on.
    pub line: usize,
}

/// What a script calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    /// In script order, repeats included.
    pub programs: Vec<Call>,
    /// The functions the script defines.
    pub functions: Vec<String>,
    /// Command words known only when the script runs (`$TOOL args`).
    pub dynamic: usize,
}

/// Programs that run the program named by their first operand.
const WRAPPERS: &[&str] = &[
    "env", "exec", "nohup", "timeout", "nice", "xargs", "command",
];

/// Deepest `bash -c` / `$( )` nesting followed.
const MAX_NESTING: usize = 16;

/// The programs `script` calls; a script that does not parse is a syntax error.
pub fn called_programs(script: &str) -> Result<Calls, ShellError> {
    let program = parse::parse_program(script, "script")?;
    let mut calls = Calls::default();
    Walker {
        calls: &mut calls,
        line_offset: 0,
        line: 1,
        nesting: 0,
    }
    .program(&program);
    Ok(calls)
}

struct Walker<'a> {
    calls: &'a mut Calls,
    /// Lines before the text being walked (for `$( )` text, its start line).
    line_offset: usize,
    /// The line of the command being walked: that of its words that carry none.
    line: usize,
    nesting: usize,
}

impl Walker<'_> {
    fn program(&mut self, program: &ast::Program) {
        for list in &program.complete_commands {
            self.list(list);
        }
    }

    fn list(&mut self, list: &ast::CompoundList) {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            self.pipeline(&and_or.first);
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
                }
            }
        }
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline) {
        for command in &pipeline.seq {
            self.command(command);
        }
    }

    fn line_of(&self, command: &ast::Command) -> usize {
        command
            .location()
            .map_or(1, |loc| loc.start.line)
            .saturating_add(self.line_offset)
    }

    fn command(&mut self, command: &ast::Command) {
        let line = self.line_of(command);
        self.line = line;
        match command {
            ast::Command::Simple(simple) => self.simple(simple, line),
            ast::Command::Compound(compound, redirects) => {
                self.compound(compound);
                if let Some(redirects) = redirects {
                    self.redirects(&redirects.0);
                }
            }
            ast::Command::Function(function) => {
                self.calls.functions.push(function.fname.value.clone());
                let ast::FunctionBody(body, redirects) = &function.body;
                self.compound(body);
                if let Some(redirects) = redirects {
                    self.redirects(&redirects.0);
                }
            }
            ast::Command::ExtendedTest(test, redirects) => {
                self.extended_test(&test.expr);
                if let Some(redirects) = redirects {
                    self.redirects(&redirects.0);
                }
            }
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand) {
        match compound {
            ast::CompoundCommand::Arithmetic(_) | ast::CompoundCommand::ArithmeticForClause(_) => {}
            ast::CompoundCommand::BraceGroup(group) => self.list(&group.list),
            ast::CompoundCommand::Subshell(subshell) => self.list(&subshell.list),
            ast::CompoundCommand::ForClause(clause) => {
                for value in clause.values.iter().flatten() {
                    self.word(value);
                }
                self.list(&clause.body.list);
            }
            ast::CompoundCommand::CaseClause(clause) => {
                self.word(&clause.value);
                for item in &clause.cases {
                    for pattern in &item.patterns {
                        self.word(pattern);
                    }
                    if let Some(list) = &item.cmd {
                        self.list(list);
                    }
                }
            }
            ast::CompoundCommand::IfClause(clause) => {
                self.list(&clause.condition);
                self.list(&clause.then);
                for branch in clause.elses.iter().flatten() {
                    if let Some(condition) = &branch.condition {
                        self.list(condition);
                    }
                    self.list(&branch.body);
                }
            }
            ast::CompoundCommand::WhileClause(clause)
            | ast::CompoundCommand::UntilClause(clause) => {
                self.list(&clause.0);
                self.list(&clause.1.list);
            }
            ast::CompoundCommand::Coprocess(coprocess) => self.command(&coprocess.body),
        }
    }

    fn simple(&mut self, simple: &ast::SimpleCommand, line: usize) {
        let items = simple
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .chain(simple.suffix.iter().flat_map(|s| s.0.iter()));
        for item in items {
            match item {
                ast::CommandPrefixOrSuffixItem::IoRedirect(redirect) => {
                    self.redirects(std::slice::from_ref(redirect));
                }
                ast::CommandPrefixOrSuffixItem::Word(word) => self.word(word),
                ast::CommandPrefixOrSuffixItem::AssignmentWord(assignment, _) => {
                    match &assignment.value {
                        ast::AssignmentValue::Scalar(value) => self.word(value),
                        ast::AssignmentValue::Array(items) => {
                            for (key, value) in items {
                                if let Some(key) = key {
                                    self.word(key);
                                }
                                self.word(value);
                            }
                        }
                    }
                }
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, subshell) => {
                    self.list(&subshell.list);
                }
            }
        }
        let Some(name) = &simple.word_or_name else {
            return;
        };
        self.word(name);
        let args: Vec<Option<String>> = simple
            .suffix
            .iter()
            .flat_map(|s| s.0.iter())
            .filter_map(|item| match item {
                ast::CommandPrefixOrSuffixItem::Word(word) => Some(static_text(&word.value)),
                _ => None,
            })
            .collect();
        self.call(static_text(&name.value), &args, line);
    }

    /// Records a call of `name` with `args`, and what it starts in turn.
    fn call(&mut self, name: Option<String>, args: &[Option<String>], line: usize) {
        let Some(name) = name else {
            self.calls.dynamic += 1;
            return;
        };
        let base = name.rsplit('/').next().unwrap_or(&name).to_owned();
        self.calls.programs.push(Call { name, line });
        if WRAPPERS.contains(&base.as_str()) {
            if let Some(at) = wrapped_program(&base, args) {
                self.call(args[at].clone(), &args[at + 1..], line);
            }
        } else if base == "find" {
            for (i, arg) in args.iter().enumerate() {
                if matches!(
                    arg.as_deref(),
                    Some("-exec" | "-execdir" | "-ok" | "-okdir")
                ) && let Some(next) = args.get(i + 1)
                {
                    self.call(next.clone(), &[], line);
                }
            }
        } else if matches!(base.as_str(), "bash" | "sh")
            && let Some(at) = args.iter().position(|a| a.as_deref() == Some("-c"))
            && let Some(Some(script)) = args.get(at + 1)
        {
            self.nested(script, line);
        }
    }

    /// Walks the script `text` found on `line` (`bash -c`, `$( )`).
    fn nested(&mut self, text: &str, line: usize) {
        if self.nesting >= MAX_NESTING {
            return;
        }
        let Ok(program) = parse::parse_program(text, "script") else {
            return; // the shell reports it when it runs
        };
        let saved = (self.line_offset, self.line);
        self.line_offset = line.saturating_sub(1);
        self.nesting += 1;
        self.program(&program);
        self.nesting -= 1;
        (self.line_offset, self.line) = saved;
    }

    fn redirects(&mut self, redirects: &[ast::IoRedirect]) {
        for redirect in redirects {
            match redirect {
                ast::IoRedirect::File(_, _, target) => match target {
                    ast::IoFileRedirectTarget::Filename(word)
                    | ast::IoFileRedirectTarget::Duplicate(word) => self.word(word),
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, subshell) => {
                        self.list(&subshell.list);
                    }
                    ast::IoFileRedirectTarget::Fd(_) => {}
                },
                ast::IoRedirect::HereString(_, word) | ast::IoRedirect::OutputAndError(word, _) => {
                    self.word(word);
                }
                ast::IoRedirect::HereDocument(_, doc) => {
                    if doc.requires_expansion
                        && let Some(Ok(pieces)) = parse::contained(|| {
                            word::parse_heredoc(&doc.doc.value, &parse::options())
                        })
                    {
                        let line = self.word_line(&doc.doc);
                        self.pieces(&pieces, line);
                    }
                }
            }
        }
    }

    fn extended_test(&mut self, expr: &ast::ExtendedTestExpr) {
        match expr {
            ast::ExtendedTestExpr::And(a, b) | ast::ExtendedTestExpr::Or(a, b) => {
                self.extended_test(a);
                self.extended_test(b);
            }
            ast::ExtendedTestExpr::Not(a) | ast::ExtendedTestExpr::Parenthesized(a) => {
                self.extended_test(a);
            }
            ast::ExtendedTestExpr::UnaryTest(_, word) => self.word(word),
            ast::ExtendedTestExpr::BinaryTest(_, a, b) => {
                self.word(a);
                self.word(b);
            }
        }
    }

    /// The command substitutions of a word.
    fn word(&mut self, word: &ast::Word) {
        if !word.value.contains(['$', '`']) {
            return;
        }
        if let Some(Ok(pieces)) = parse::contained(|| word::parse(&word.value, &parse::options())) {
            let line = self.word_line(word);
            self.pieces(&pieces, line);
        }
    }

    /// A word's line, or its command's when the parser gave it none.
    fn word_line(&self, word: &ast::Word) -> usize {
        word.loc.as_ref().map_or(self.line, |loc| {
            loc.start.line.saturating_add(self.line_offset)
        })
    }

    fn pieces(&mut self, pieces: &[WordPieceWithSource], line: usize) {
        for piece in pieces {
            match &piece.piece {
                WordPiece::CommandSubstitution(text)
                | WordPiece::BackquotedCommandSubstitution(text) => {
                    let saved = self.line_offset;
                    self.line_offset = 0;
                    self.nested(text, line);
                    self.line_offset = saved;
                }
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => self.pieces(inner, line),
                _ => {}
            }
        }
    }
}

/// The text of a word without expansions (quotes removed), or `None` when it has any.
fn static_text(raw: &str) -> Option<String> {
    let pieces = parse::contained(|| word::parse(raw, &parse::options()))?.ok()?;
    let mut text = String::new();
    for piece in &pieces {
        append_static(&piece.piece, &mut text)?;
    }
    Some(text)
}

fn append_static(piece: &WordPiece, text: &mut String) -> Option<()> {
    match piece {
        WordPiece::Text(t) | WordPiece::SingleQuotedText(t) => text.push_str(t),
        WordPiece::EscapeSequence(t) => text.push_str(t.strip_prefix('\\').unwrap_or(t)),
        WordPiece::DoubleQuotedSequence(inner) => {
            for piece in inner {
                append_static(&piece.piece, text)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// Where the program a wrapper starts is among its `args`: after options (and their
/// values), variable assignments (`env`) and a duration (`timeout`).
fn wrapped_program(wrapper: &str, args: &[Option<String>]) -> Option<usize> {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let arg = arg.as_deref()?;
        match wrapper {
            // `command -v NAME` asks about a program; it does not run it.
            "command" if matches!(arg, "-v" | "-V") => return None,
            "env" if arg.contains('=') && !arg.starts_with('-') => {}
            "env" if matches!(arg, "-u" | "-C" | "-S") => i += 1,
            "timeout" if matches!(arg, "-s" | "-k" | "--signal" | "--kill-after") => i += 1,
            "nice" if arg == "-n" => i += 1,
            "xargs"
                if matches!(
                    arg,
                    "-n" | "-L" | "-P" | "-s" | "-I" | "-E" | "-d" | "-a" | "--max-args"
                ) =>
            {
                i += 1;
            }
            _ if arg == "--" => return (i + 1 < args.len()).then_some(i + 1),
            _ if arg.starts_with('-') && arg.len() > 1 => {}
            "timeout" => {
                // The duration, then the program.
                return (i + 1 < args.len()).then_some(i + 1);
            }
            _ => return Some(i),
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(script: &str) -> Vec<String> {
        called_programs(script)
            .unwrap()
            .programs
            .into_iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn every_command_word_is_found() {
        assert_eq!(
            names("if test -f x; then make all; else echo no | tr a b; fi"),
            ["test", "make", "echo", "tr"]
        );
        assert_eq!(
            names("for f in $(ls *.py); do python3 \"$f\" && pytest || true; done"),
            ["ls", "python3", "pytest", "true"]
        );
        assert_eq!(
            names("f() { gcc -c x.c; }\nf\nX=$(git rev-parse HEAD) \"my tool\" `date`"),
            ["gcc", "f", "git", "date", "my tool"]
        );
        assert_eq!(
            names("case $(uname) in Linux) ldd x ;; esac; while read l; do wc -l; done < <(cat f)"),
            ["uname", "ldd", "read", "wc", "cat"]
        );
    }

    #[test]
    fn wrappers_and_nested_scripts_are_followed() {
        assert_eq!(
            names("env A=1 -u B node x.js; timeout -s KILL 10 pytest; xargs -n 1 gzip"),
            ["env", "node", "timeout", "pytest", "xargs", "gzip"]
        );
        assert_eq!(
            names("find . -name '*.o' -exec rm {} \\;; bash -c 'cargo build && strip x'"),
            ["find", "rm", "bash", "cargo", "strip"]
        );
        assert_eq!(names("command -v jq || exit 1"), ["command", "exit"]);
    }

    #[test]
    fn dynamic_names_functions_and_lines() {
        let calls =
            called_programs("build() {\n  $CC -o x x.c\n}\n\nbuild\nmake \\\n  all").unwrap();
        assert_eq!(calls.functions, ["build"]);
        assert_eq!(calls.dynamic, 1);
        let lines: Vec<(String, usize)> = calls
            .programs
            .into_iter()
            .map(|c| (c.name, c.line))
            .collect();
        assert_eq!(lines, [("build".to_owned(), 5), ("make".to_owned(), 6)]);
        assert!(called_programs("if then").is_err());
    }
}
