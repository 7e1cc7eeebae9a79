//! Conditional expressions: the `test`/`[` builtin (POSIX argument rules, parsed by
//! `brush-parser`) and `[[ ]]` (patterns, `=~` regexes, arithmetic operands). File tests
//! look through the guest filesystem only.

use brush_parser::ast::{BinaryPredicate, ExtendedTestExpr, TestExpr, UnaryPredicate};

use super::Exec;
use super::fs::{EntryKind, normalize};
use super::interpreter::Interpreter;
use super::pattern::Pattern;
use super::streams::Io;

impl Interpreter {
    /// `test ARGS…` (the `[` form has its `]` removed by the caller). 0 true, 1 false,
    /// 2 for an error.
    pub(crate) fn run_test(&mut self, name: &str, args: &[String], io: &Io) -> i32 {
        // The parser recurses once per `(` or `!`: bound it before it runs.
        let nesting = args.iter().filter(|a| *a == "(" || *a == "!").count();
        if nesting > super::parse::MAX_SYNTAX_DEPTH {
            self.error(
                io,
                &format!(
                    "{name}: expression nested too deeply (limit {} levels)",
                    super::parse::MAX_SYNTAX_DEPTH
                ),
            );
            return 2;
        }
        let expr = match brush_parser::test_command::parse(args) {
            Ok(expr) => expr,
            Err(_) => {
                let what = args.first().map_or("", String::as_str);
                self.error(io, &format!("{name}: {what}: unary operator expected"));
                return 2;
            }
        };
        match self.eval_test(&expr) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(message) => {
                self.error(io, &format!("{name}: {message}"));
                2
            }
        }
    }

    fn eval_test(&mut self, expr: &TestExpr) -> Result<bool, String> {
        Ok(match expr {
            TestExpr::False => false,
            TestExpr::Literal(s) => !s.is_empty(),
            TestExpr::And(a, b) => self.eval_test(a)? && self.eval_test(b)?,
            TestExpr::Or(a, b) => self.eval_test(a)? || self.eval_test(b)?,
            TestExpr::Not(e) => !self.eval_test(e)?,
            TestExpr::Parenthesized(e) => self.eval_test(e)?,
            TestExpr::UnaryTest(predicate, operand) => self.unary_test(predicate, operand),
            TestExpr::BinaryTest(predicate, left, right) => match predicate {
                BinaryPredicate::StringExactlyMatchesString
                | BinaryPredicate::StringExactlyMatchesPattern => left == right,
                BinaryPredicate::StringDoesNotExactlyMatchString
                | BinaryPredicate::StringDoesNotExactlyMatchPattern => left != right,
                BinaryPredicate::StringContainsSubstring => left.contains(right.as_str()),
                BinaryPredicate::StringMatchesRegex => {
                    return Err(format!("{left}: =~ is only valid in [[ ]]"));
                }
                BinaryPredicate::LeftSortsBeforeRight => left < right,
                BinaryPredicate::LeftSortsAfterRight => left > right,
                BinaryPredicate::ArithmeticEqualTo
                | BinaryPredicate::ArithmeticNotEqualTo
                | BinaryPredicate::ArithmeticLessThan
                | BinaryPredicate::ArithmeticLessThanOrEqualTo
                | BinaryPredicate::ArithmeticGreaterThan
                | BinaryPredicate::ArithmeticGreaterThanOrEqualTo => {
                    let integer = |s: &str| {
                        s.trim()
                            .parse::<i64>()
                            .map_err(|_| format!("{s}: integer expression expected"))
                    };
                    compare(predicate, integer(left)?, integer(right)?)
                }
                _ => self.file_comparison(predicate, left, right),
            },
        })
    }

    /// `[[ expr ]]`: 0 true, 1 false (or an error, reported).
    pub(crate) fn run_extended_test(&mut self, expr: &ExtendedTestExpr, io: &Io) -> Exec {
        match self.eval_extended(expr, io)? {
            Ok(true) => Ok(0),
            Ok(false) => Ok(1),
            Err(message) => {
                self.error(io, &message);
                Ok(2)
            }
        }
    }

    fn eval_extended(&mut self, expr: &ExtendedTestExpr, io: &Io) -> Exec<Result<bool, String>> {
        Ok(Ok(match expr {
            ExtendedTestExpr::And(a, b) => match self.eval_extended(a, io)? {
                Ok(true) => return self.eval_extended(b, io),
                other => return Ok(other),
            },
            ExtendedTestExpr::Or(a, b) => match self.eval_extended(a, io)? {
                Ok(false) => return self.eval_extended(b, io),
                other => return Ok(other),
            },
            ExtendedTestExpr::Not(e) => return Ok(self.eval_extended(e, io)?.map(|b| !b)),
            ExtendedTestExpr::Parenthesized(e) => return self.eval_extended(e, io),
            ExtendedTestExpr::UnaryTest(predicate, word) => {
                let operand = self.expand_word_string(&word.value, io)?;
                self.unary_test(predicate, &operand)
            }
            ExtendedTestExpr::BinaryTest(predicate, left, right) => {
                let left_text = self.expand_word_string(&left.value, io)?;
                match predicate {
                    BinaryPredicate::StringExactlyMatchesPattern
                    | BinaryPredicate::StringDoesNotExactlyMatchPattern => {
                        let pattern = self.expand_word_pattern(&right.value, io)?;
                        let hit = Pattern::new(&pattern).matches(&left_text);
                        hit == matches!(predicate, BinaryPredicate::StringExactlyMatchesPattern)
                    }
                    BinaryPredicate::StringExactlyMatchesString => {
                        left_text == self.expand_word_string(&right.value, io)?
                    }
                    BinaryPredicate::StringDoesNotExactlyMatchString => {
                        left_text != self.expand_word_string(&right.value, io)?
                    }
                    BinaryPredicate::StringContainsSubstring => {
                        let right = self.expand_word_string(&right.value, io)?;
                        left_text.contains(right.as_str())
                    }
                    BinaryPredicate::StringMatchesRegex => {
                        let source = self.expand_word_regex(&right.value, io)?;
                        let regex = match regex::Regex::new(&source) {
                            Ok(r) => r,
                            Err(_) => {
                                return Ok(Err(format!("{source}: invalid regular expression")));
                            }
                        };
                        match regex.captures(&left_text) {
                            Some(captures) => {
                                self.rematch = captures
                                    .iter()
                                    .map(|m| m.map_or(String::new(), |m| m.as_str().to_owned()))
                                    .collect();
                                let whole = self.rematch.first().cloned().unwrap_or_default();
                                let _ = self.set_var("BASH_REMATCH", whole);
                                true
                            }
                            None => {
                                self.rematch.clear();
                                let _ = self.set_var("BASH_REMATCH", String::new());
                                false
                            }
                        }
                    }
                    BinaryPredicate::LeftSortsBeforeRight => {
                        left_text < self.expand_word_string(&right.value, io)?
                    }
                    BinaryPredicate::LeftSortsAfterRight => {
                        left_text > self.expand_word_string(&right.value, io)?
                    }
                    BinaryPredicate::ArithmeticEqualTo
                    | BinaryPredicate::ArithmeticNotEqualTo
                    | BinaryPredicate::ArithmeticLessThan
                    | BinaryPredicate::ArithmeticLessThanOrEqualTo
                    | BinaryPredicate::ArithmeticGreaterThan
                    | BinaryPredicate::ArithmeticGreaterThanOrEqualTo => {
                        let right_text = self.expand_word_string(&right.value, io)?;
                        let l = match self.eval_arithmetic(&left_text) {
                            Ok(n) => n,
                            Err(message) => return Ok(Err(message)),
                        };
                        let r = match self.eval_arithmetic(&right_text) {
                            Ok(n) => n,
                            Err(message) => return Ok(Err(message)),
                        };
                        compare(predicate, l, r)
                    }
                    _ => {
                        let right_text = self.expand_word_string(&right.value, io)?;
                        self.file_comparison(predicate, &left_text, &right_text)
                    }
                }
            }
        }))
    }

    fn unary_test(&self, predicate: &UnaryPredicate, operand: &str) -> bool {
        let path = || normalize(&self.cwd, operand);
        let meta = || {
            if operand.is_empty() {
                None
            } else {
                self.fs.metadata(&path()).ok()
            }
        };
        match predicate {
            UnaryPredicate::StringHasZeroLength => operand.is_empty(),
            UnaryPredicate::StringHasNonZeroLength => !operand.is_empty(),
            UnaryPredicate::ShellVariableIsSetAndAssigned => self.is_set(operand),
            UnaryPredicate::ShellVariableIsSetAndNameRef => false,
            UnaryPredicate::ShellOptionEnabled => {
                super::builtins::option_by_name(&self.options, operand).unwrap_or(false)
            }
            UnaryPredicate::FdIsOpenTerminal => false,
            UnaryPredicate::FileExists => meta().is_some() || is_device(operand),
            UnaryPredicate::FileExistsAndIsRegularFile => {
                meta().is_some_and(|m| m.kind == EntryKind::File)
            }
            UnaryPredicate::FileExistsAndIsDir => meta().is_some_and(|m| m.kind == EntryKind::Dir),
            UnaryPredicate::FileExistsAndIsSymlink => {
                !operand.is_empty()
                    && self
                        .fs
                        .symlink_metadata(&path())
                        .is_ok_and(|m| m.kind == EntryKind::Symlink)
            }
            UnaryPredicate::FileExistsAndIsNotZeroLength => meta().is_some_and(|m| m.len > 0),
            // The guest runs as the owner of its files, like root in a container.
            UnaryPredicate::FileExistsAndIsReadable
            | UnaryPredicate::FileExistsAndOwnedByEffectiveGroupId
            | UnaryPredicate::FileExistsAndOwnedByEffectiveUserId
            | UnaryPredicate::FileExistsAndModifiedSinceLastRead => {
                meta().is_some() || is_device(operand)
            }
            UnaryPredicate::FileExistsAndIsWritable => {
                meta().is_some_and(|m| m.writable) || is_device(operand)
            }
            UnaryPredicate::FileExistsAndIsExecutable => {
                meta().is_some_and(|m| m.kind == EntryKind::Dir || m.mode & 0o111 != 0)
            }
            UnaryPredicate::FileExistsAndIsSetuid => meta().is_some_and(|m| m.mode & 0o4000 != 0),
            UnaryPredicate::FileExistsAndIsSetgid => meta().is_some_and(|m| m.mode & 0o2000 != 0),
            UnaryPredicate::FileExistsAndHasStickyBit => {
                meta().is_some_and(|m| m.mode & 0o1000 != 0)
            }
            UnaryPredicate::FileExistsAndIsCharSpecialFile => is_device(operand),
            UnaryPredicate::FileExistsAndIsBlockSpecialFile
            | UnaryPredicate::FileExistsAndIsFifo
            | UnaryPredicate::FileExistsAndIsSocket => {
                meta().is_some_and(|m| m.kind == EntryKind::Other)
            }
        }
    }

    fn file_comparison(&self, predicate: &BinaryPredicate, left: &str, right: &str) -> bool {
        let modified = |p: &str| {
            self.fs
                .metadata(&normalize(&self.cwd, p))
                .ok()
                .and_then(|m| m.modified)
        };
        match predicate {
            BinaryPredicate::FilesReferToSameDeviceAndInodeNumbers => {
                let (l, r) = (normalize(&self.cwd, left), normalize(&self.cwd, right));
                l == r && self.fs.metadata(&l).is_ok()
            }
            BinaryPredicate::LeftFileIsNewerOrExistsWhenRightDoesNot => {
                match (modified(left), modified(right)) {
                    (Some(l), Some(r)) => l > r,
                    (Some(_), None) => true,
                    _ => false,
                }
            }
            BinaryPredicate::LeftFileIsOlderOrDoesNotExistWhenRightDoes => {
                match (modified(left), modified(right)) {
                    (Some(l), Some(r)) => l < r,
                    (None, Some(_)) => true,
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// The character devices the shell itself provides.
fn is_device(path: &str) -> bool {
    matches!(
        path,
        "/dev/null" | "/dev/stdin" | "/dev/stdout" | "/dev/stderr" | "/dev/zero"
    )
}

fn compare(predicate: &BinaryPredicate, l: i64, r: i64) -> bool {
    match predicate {
        BinaryPredicate::ArithmeticEqualTo => l == r,
        BinaryPredicate::ArithmeticNotEqualTo => l != r,
        BinaryPredicate::ArithmeticLessThan => l < r,
        BinaryPredicate::ArithmeticLessThanOrEqualTo => l <= r,
        BinaryPredicate::ArithmeticGreaterThan => l > r,
        _ => l >= r,
    }
}
