//! Word expansion, in bash's order: tilde, parameters, `$( )` and backticks, `$(( ))`, then
//! field splitting on `IFS` (only of unquoted expansion results), pathname expansion (through
//! the guest filesystem, sorted, no match stays literal) and quote removal. Words are parsed
//! into pieces by `brush-parser`; each byte of the result remembers whether it was quoted.

use brush_parser::word::{
    self, Parameter, ParameterExpr, ParameterTestType, ParameterTransformOp, SpecialParameter,
    SubstringMatchKind, TildeExpr, WordPiece, WordPieceWithSource,
};

use super::fs::normalize;
use super::interpreter::Interpreter;
use super::parse;
use super::pattern::{self, Pattern, Replace, Trim};
use super::streams::{Capture, Io, OutHandle, Stream};
use super::{Exec, Unwind};

/// Where a byte of an expanded word came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Unquoted text of the word itself: globbed, never split.
    Literal,
    /// Unquoted result of an expansion: split and globbed.
    Expanded,
    /// Quoted: neither split nor globbed.
    Quoted,
}

#[derive(Debug, Clone, Default)]
struct Field {
    text: String,
    origins: Vec<Origin>,
    /// Byte offsets where a quoted part (even an empty one) starts: a field holding one
    /// survives being empty, and an empty `""` next to a separator makes a field of its own.
    quotes: Vec<usize>,
}

impl Field {
    fn keep(&self) -> bool {
        !self.quotes.is_empty()
    }

    fn mark_quoted(&mut self) {
        self.quotes.push(self.text.len());
    }

    fn push(&mut self, s: &str, origin: Origin) {
        self.text.push_str(s);
        self.origins.extend(std::iter::repeat_n(origin, s.len()));
    }

    fn push_char(&mut self, c: char, origin: Origin) {
        let mut buf = [0u8; 4];
        self.push(c.encode_utf8(&mut buf), origin);
    }

    /// The field as a pattern: quoted characters escaped, the others active.
    fn to_pattern(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        for (i, c) in self.text.char_indices() {
            if self.origins[i] == Origin::Quoted && matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    fn has_active_glob(&self) -> bool {
        self.text
            .char_indices()
            .any(|(i, c)| self.origins[i] != Origin::Quoted && matches!(c, '*' | '?' | '['))
    }
}

/// The fields of a word while it is being expanded. `"$@"` starts new fields.
struct Fields {
    done: Vec<Field>,
    /// Bytes of the fields in `done`.
    done_bytes: usize,
    current: Field,
    /// The origin of unquoted text: `Literal` in a word, `Expanded` in the word of
    /// `${x:-word}`, whose result is split like any expansion.
    text_origin: Origin,
}

impl Fields {
    fn new() -> Self {
        Fields {
            done: Vec::new(),
            done_bytes: 0,
            current: Field::default(),
            text_origin: Origin::Literal,
        }
    }

    fn push(&mut self, s: &str, quoted: bool) {
        if quoted {
            self.current.mark_quoted();
            self.current.push(s, Origin::Quoted);
        } else {
            self.current.push(s, Origin::Expanded);
        }
    }

    fn break_field(&mut self) {
        let field = std::mem::take(&mut self.current);
        self.done_bytes += field.text.len();
        self.done.push(field);
    }

    /// Bytes expanded so far.
    fn bytes(&self) -> usize {
        self.done_bytes + self.current.text.len()
    }

    fn finish(mut self) -> Vec<Field> {
        self.break_field();
        self.done
    }
}

/// The value of a parameter before an operator applies.
#[derive(Debug, Clone)]
enum Value {
    Unset,
    Str(String),
    /// `$@`, `$*` and the like; `star` says it joins (`$*`) rather than separates (`$@`).
    List {
        items: Vec<String>,
        star: bool,
    },
}

impl Value {
    fn is_null(&self) -> bool {
        match self {
            Value::Unset => true,
            Value::Str(s) => s.is_empty(),
            Value::List { items, .. } => items.iter().all(String::is_empty),
        }
    }

    fn is_unset(&self) -> bool {
        match self {
            Value::Unset => true,
            Value::Str(_) => false,
            Value::List { items, .. } => items.is_empty(),
        }
    }

    fn map(self, f: impl Fn(&str) -> String) -> Value {
        match self {
            Value::Unset => Value::Unset,
            Value::Str(s) => Value::Str(f(&s)),
            Value::List { items, star } => Value::List {
                items: items.iter().map(|s| f(s)).collect(),
                star,
            },
        }
    }
}

/// A parameter as an expansion names it: `${name}` or `${!name}` (indirect), inside double
/// quotes or not.
#[derive(Clone, Copy)]
struct Param<'a> {
    parameter: &'a Parameter,
    indirect: bool,
    quoted: bool,
}

impl Interpreter {
    /// A command word, fully expanded into zero or more fields.
    pub(crate) fn expand_word_fields(&mut self, word: &str, io: &Io) -> Exec<Vec<String>> {
        if word.contains('{') {
            let limits = &self.shared.limits;
            let words =
                match brace_expand(word, limits.max_expansion_words, limits.max_expansion_bytes) {
                    Ok(words) => words,
                    Err(message) => {
                        self.error(io, &message);
                        return Err(Unwind::Exit(1));
                    }
                };
            if words.len() != 1 || words[0] != word {
                let mut out = Vec::new();
                for w in words {
                    self.check_cancel()?;
                    out.extend(self.expand_fields_of(&w, io)?);
                }
                return Ok(out);
            }
        }
        self.expand_fields_of(word, io)
    }

    fn expand_fields_of(&mut self, word: &str, io: &Io) -> Exec<Vec<String>> {
        let fields = self.expand_to_fields(word, &parse::options(), io)?;
        let ifs = self.ifs();
        let mut out = Vec::new();
        for field in fields {
            for field in split_field(field, &ifs) {
                if !self.options.noglob && field.has_active_glob() {
                    let matches = self.glob(&field.to_pattern());
                    if !matches.is_empty() || self.shopts.iter().any(|o| o == "nullglob") {
                        out.extend(matches);
                        continue;
                    }
                }
                out.push(field.text);
            }
        }
        Ok(out)
    }

    /// A word expanded without splitting or globbing (assignment values, redirection
    /// targets, `case` words, `[[ ]]` operands); `"$@"` joins with spaces.
    pub(crate) fn expand_word_string(&mut self, word: &str, io: &Io) -> Exec<String> {
        let fields = self.expand_to_fields(word, &parse::options(), io)?;
        Ok(join_fields(fields))
    }

    /// An assignment value: like [`Self::expand_word_string`], with tildes after `:` too.
    pub(crate) fn expand_assignment_value(&mut self, word: &str, io: &Io) -> Exec<String> {
        let fields = self.expand_to_fields(word, &parse::assignment_options(), io)?;
        Ok(join_fields(fields))
    }

    /// A word used as a pattern: quoted characters are escaped so they match literally.
    pub(crate) fn expand_word_pattern(&mut self, word: &str, io: &Io) -> Exec<String> {
        let fields = self.expand_to_fields(word, &parse::options(), io)?;
        Ok(fields
            .iter()
            .map(Field::to_pattern)
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// The right side of `[[ =~ ]]`: quoted characters match literally.
    pub(crate) fn expand_word_regex(&mut self, word: &str, io: &Io) -> Exec<String> {
        let fields = self.expand_to_fields(word, &parse::options(), io)?;
        let mut out = String::new();
        for (n, field) in fields.iter().enumerate() {
            if n > 0 {
                out.push(' ');
            }
            for (i, c) in field.text.char_indices() {
                if field.origins[i] == Origin::Quoted {
                    out.push_str(&regex::escape(&c.to_string()));
                } else {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    /// The body of an unquoted here-document: parameters, `$( )`, `$(( ))` and the
    /// backslash escapes of `$`, `` ` `` and `\`; quotes are ordinary characters.
    pub(crate) fn expand_heredoc(&mut self, body: &str, io: &Io) -> Exec<String> {
        let pieces = match parse::contained(|| word::parse_heredoc(body, &parse::options())) {
            Some(Ok(p)) => p,
            _ => return Ok(body.to_owned()),
        };
        let mut fields = Fields::new();
        self.expand_pieces(&pieces, true, &mut fields, io)?;
        Ok(join_fields(fields.finish()))
    }

    /// `$(( text ))`: expands the text, then evaluates it. An error ends the shell (status 1),
    /// as an expansion error does in a non-interactive bash.
    pub(crate) fn expand_arithmetic(&mut self, text: &str, io: &Io) -> Exec<i64> {
        let expanded = self.expand_arithmetic_text(text, io)?;
        match self.eval_arithmetic(&expanded) {
            Ok(n) => Ok(n),
            Err(message) => {
                self.error(io, &message);
                Err(Unwind::Exit(1))
            }
        }
    }

    /// The text of an arithmetic expression with its expansions done (no tilde, no splitting).
    pub(crate) fn expand_arithmetic_text(&mut self, text: &str, io: &Io) -> Exec<String> {
        let fields = self.expand_to_fields(text, &parse::no_tilde_options(), io)?;
        Ok(join_fields(fields))
    }

    fn expand_to_fields(
        &mut self,
        word: &str,
        options: &brush_parser::ParserOptions,
        io: &Io,
    ) -> Exec<Vec<Field>> {
        let pieces = match parse::contained(|| word::parse(word, options)) {
            Some(Ok(pieces)) => pieces,
            _ => {
                self.error(io, &format!("{word}: bad substitution"));
                return Err(Unwind::Exit(1));
            }
        };
        let mut fields = Fields::new();
        self.expand_pieces(&pieces, false, &mut fields, io)?;
        Ok(fields.finish())
    }

    fn expand_pieces(
        &mut self,
        pieces: &[WordPieceWithSource],
        quoted: bool,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        for piece in pieces {
            self.expand_piece(&piece.piece, quoted, out, io)?;
            self.check_expansion_size(out.bytes(), io)?;
        }
        Ok(())
    }

    /// An expansion (a word, a here-document) past the session's byte limit is an error
    /// that ends the shell, as other expansion errors do; the deadline is checked too.
    pub(crate) fn check_expansion_size(&self, bytes: usize, io: &Io) -> Exec<()> {
        self.check_cancel()?;
        let limit = self.shared.limits.max_expansion_bytes;
        if bytes > limit {
            self.error(
                io,
                &format!("wasmbuild: expansion too large (limit {limit} bytes)"),
            );
            return Err(Unwind::Exit(1));
        }
        Ok(())
    }

    fn expand_piece(
        &mut self,
        piece: &WordPiece,
        quoted: bool,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        match piece {
            WordPiece::Text(text) => {
                if quoted {
                    out.push(text, true);
                } else {
                    out.current.push(text, out.text_origin);
                }
            }
            WordPiece::SingleQuotedText(text) => {
                if quoted {
                    // Inside `"${x:-'a'}"` bash keeps the single quotes.
                    out.push(&format!("'{text}'"), true);
                } else {
                    out.push(text, true);
                }
            }
            WordPiece::AnsiCQuotedText(text) => {
                out.push(&super::printf::ansi_c_unescape(text), true);
            }
            WordPiece::DoubleQuotedSequence(inner)
            | WordPiece::GettextDoubleQuotedSequence(inner) => {
                if inner.is_empty() {
                    out.push("", true);
                }
                self.expand_pieces(inner, true, out, io)?;
            }
            WordPiece::EscapeSequence(seq) => {
                let mut chars = seq.chars();
                chars.next();
                match chars.next() {
                    Some('\n') | None => {}
                    Some(c) if !quoted || matches!(c, '$' | '`' | '"' | '\\') => {
                        out.current.mark_quoted();
                        out.current.push_char(c, Origin::Quoted);
                    }
                    Some(c) => {
                        out.push("\\", true);
                        out.current.push_char(c, Origin::Quoted);
                    }
                }
            }
            WordPiece::TildeExpansion(tilde) => {
                let text = match tilde {
                    _ if quoted => Some(tilde_text(tilde)),
                    TildeExpr::Home => Some(self.home()),
                    TildeExpr::WorkingDir => Some(self.cwd.clone()),
                    TildeExpr::OldWorkingDir => self.var("OLDPWD").map(str::to_owned),
                    TildeExpr::UserHome(user) if user == "root" => {
                        Some(crate::sandbox::layout::HOME_DIR.to_owned())
                    }
                    _ => None,
                };
                let text = text.unwrap_or_else(|| tilde_text(tilde));
                out.current.push(&text, Origin::Quoted);
            }
            WordPiece::ParameterExpansion(expr) => self.expand_parameter(expr, quoted, out, io)?,
            WordPiece::CommandSubstitution(command) => {
                let text = self.command_substitution(command, io)?;
                out.push(&text, quoted);
            }
            WordPiece::BackquotedCommandSubstitution(command) => {
                let command = unescape_backquoted(command);
                let text = self.command_substitution(&command, io)?;
                out.push(&text, quoted);
            }
            WordPiece::ArithmeticExpression(expr) => {
                let n = self.expand_arithmetic(&expr.value, io)?;
                out.push(&n.to_string(), quoted);
            }
        }
        Ok(())
    }

    /// Expands a word nested in `${x:-word}` into the enclosing fields.
    fn expand_nested(&mut self, raw: &str, quoted: bool, out: &mut Fields, io: &Io) -> Exec<()> {
        let pieces = match parse::contained(|| word::parse(raw, &parse::options())) {
            Some(Ok(p)) => p,
            _ => {
                self.error(io, &format!("{raw}: bad substitution"));
                return Err(Unwind::Exit(1));
            }
        };
        if quoted {
            out.push("", true);
        }
        let saved = std::mem::replace(&mut out.text_origin, Origin::Expanded);
        let result = self.expand_pieces(&pieces, quoted, out, io);
        out.text_origin = saved;
        result
    }

    fn expand_nested_string(&mut self, raw: &str, quoted: bool, io: &Io) -> Exec<String> {
        let mut fields = Fields::new();
        self.expand_nested(raw, quoted, &mut fields, io)?;
        Ok(join_fields(fields.finish()))
    }

    fn expand_nested_pattern(&mut self, raw: &str, quoted: bool, io: &Io) -> Exec<String> {
        let mut fields = Fields::new();
        self.expand_nested(raw, quoted, &mut fields, io)?;
        Ok(fields
            .finish()
            .iter()
            .map(Field::to_pattern)
            .collect::<Vec<_>>()
            .join(" "))
    }

    fn push_value(&self, value: Value, quoted: bool, out: &mut Fields) {
        match value {
            Value::Unset => out.push("", quoted),
            Value::Str(s) => out.push(&s, quoted),
            Value::List { items, star } if quoted && star => {
                let sep = self
                    .ifs()
                    .chars()
                    .next()
                    .map(String::from)
                    .unwrap_or_default();
                out.push(&items.join(&sep), true);
            }
            Value::List { items, .. } => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.break_field();
                    }
                    out.push(item, quoted);
                }
            }
        }
    }

    fn parameter_value(&mut self, parameter: &Parameter, indirect: bool, io: &Io) -> Exec<Value> {
        let value = self.direct_value(parameter);
        if !indirect {
            return Ok(value);
        }
        let name = match value {
            Value::Unset => return Ok(Value::Unset),
            Value::Str(s) => s,
            Value::List { items, .. } => items.join(" "),
        };
        match parse::contained(|| word::parse_parameter(&name, &parse::options())) {
            Some(Ok(target)) => Ok(self.direct_value(&target)),
            _ => {
                self.error(io, &format!("{name}: invalid indirect expansion"));
                Err(Unwind::Exit(1))
            }
        }
    }

    fn direct_value(&mut self, parameter: &Parameter) -> Value {
        match parameter {
            Parameter::Positional(0) => Value::Str(self.arg0.clone()),
            Parameter::Positional(n) => self
                .positional
                .get(*n as usize - 1)
                .map_or(Value::Unset, |s| Value::Str(s.clone())),
            Parameter::Special(special) => match special {
                SpecialParameter::AllPositionalParameters { concatenate } => Value::List {
                    items: self.positional.clone(),
                    star: *concatenate,
                },
                SpecialParameter::PositionalParameterCount => {
                    Value::Str(self.positional.len().to_string())
                }
                SpecialParameter::LastExitStatus => Value::Str(self.last_status.to_string()),
                SpecialParameter::CurrentOptionFlags => Value::Str(self.option_flags()),
                SpecialParameter::ProcessId => Value::Str(self.pid.to_string()),
                SpecialParameter::LastBackgroundProcessId => self
                    .last_background_pid
                    .map_or(Value::Unset, |p| Value::Str(p.to_string())),
                SpecialParameter::ShellName => Value::Str(self.arg0.clone()),
            },
            Parameter::Named(name) => self.named_value(name),
            // Arrays are not supported; a scalar is element 0, as in bash.
            Parameter::NamedWithIndex { name, index } if name == "BASH_REMATCH" => index
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| self.rematch.get(i))
                .map_or(Value::Unset, |s| Value::Str(s.clone())),
            Parameter::NamedWithIndex { name, index } => {
                if index.trim() == "0" {
                    self.named_value(name)
                } else {
                    Value::Unset
                }
            }
            Parameter::NamedWithAllIndices { name, concatenate } => match self.named_value(name) {
                Value::Str(s) => Value::List {
                    items: vec![s],
                    star: *concatenate,
                },
                _ => Value::List {
                    items: Vec::new(),
                    star: *concatenate,
                },
            },
        }
    }

    fn named_value(&mut self, name: &str) -> Value {
        match name {
            "LINENO" => Value::Str(self.line.to_string()),
            "RANDOM" => Value::Str(self.next_random().to_string()),
            "BASH_SUBSHELL" => Value::Str(self.subshell_level.to_string()),
            "FUNCNAME" => self
                .function_names
                .last()
                .map_or(Value::Unset, |f| Value::Str(f.clone())),
            _ => self
                .var(name)
                .map_or(Value::Unset, |v| Value::Str(v.to_owned())),
        }
    }

    /// The value of `param`, an error under `set -u` when it is unset.
    fn bound_value(&mut self, param: Param<'_>, io: &Io) -> Exec<Value> {
        let value = self.parameter_value(param.parameter, param.indirect, io)?;
        self.check_unbound(param.parameter, &value, io)?;
        Ok(value)
    }

    fn check_unbound(&self, parameter: &Parameter, value: &Value, io: &Io) -> Exec<()> {
        let all = matches!(
            parameter,
            Parameter::Special(SpecialParameter::AllPositionalParameters { .. })
                | Parameter::NamedWithAllIndices { .. }
        );
        if self.options.nounset && !all && matches!(value, Value::Unset) {
            self.error(
                io,
                &format!("{}: unbound variable", parameter_name(parameter)),
            );
            return Err(Unwind::Exit(self.expansion_error_status()));
        }
        Ok(())
    }

    /// One `${...}` expansion: each kind of expansion is a method below.
    fn expand_parameter(
        &mut self,
        expr: &ParameterExpr,
        quoted: bool,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        use ParameterExpr as E;
        let param = |parameter, indirect: &bool| Param {
            parameter,
            indirect: *indirect,
            quoted,
        };
        match expr {
            E::Parameter {
                parameter,
                indirect,
            } => {
                let value = self.parameter_value(parameter, *indirect, io)?;
                self.check_unbound(parameter, &value, io)?;
                self.push_value(value, quoted, out);
                Ok(())
            }
            E::UseDefaultValues {
                parameter,
                indirect,
                test_type,
                default_value,
            } => self.use_default(
                param(parameter, indirect),
                test_type,
                default_value,
                out,
                io,
            ),
            E::AssignDefaultValues {
                parameter,
                indirect,
                test_type,
                default_value,
            } => self.assign_default(
                param(parameter, indirect),
                test_type,
                default_value,
                out,
                io,
            ),
            E::IndicateErrorIfNullOrUnset {
                parameter,
                indirect,
                test_type,
                error_message,
            } => self.error_if_missing(
                param(parameter, indirect),
                test_type,
                error_message,
                out,
                io,
            ),
            E::UseAlternativeValue {
                parameter,
                indirect,
                test_type,
                alternative_value,
            } => self.use_alternative(
                param(parameter, indirect),
                test_type,
                alternative_value,
                out,
                io,
            ),
            E::ParameterLength {
                parameter,
                indirect,
            } => self.parameter_length(param(parameter, indirect), out, io),
            E::RemoveSmallestSuffixPattern {
                parameter,
                indirect,
                pattern,
            } => self.trim_pattern(
                param(parameter, indirect),
                pattern,
                Trim::ShortestSuffix,
                out,
                io,
            ),
            E::RemoveLargestSuffixPattern {
                parameter,
                indirect,
                pattern,
            } => self.trim_pattern(
                param(parameter, indirect),
                pattern,
                Trim::LongestSuffix,
                out,
                io,
            ),
            E::RemoveSmallestPrefixPattern {
                parameter,
                indirect,
                pattern,
            } => self.trim_pattern(
                param(parameter, indirect),
                pattern,
                Trim::ShortestPrefix,
                out,
                io,
            ),
            E::RemoveLargestPrefixPattern {
                parameter,
                indirect,
                pattern,
            } => self.trim_pattern(
                param(parameter, indirect),
                pattern,
                Trim::LongestPrefix,
                out,
                io,
            ),
            E::Substring {
                parameter,
                indirect,
                offset,
                length,
            } => self.substring(param(parameter, indirect), offset, length, out, io),
            E::Transform {
                parameter,
                indirect,
                op,
            } => self.transform(param(parameter, indirect), op, out, io),
            E::UppercaseFirstChar {
                parameter,
                indirect,
                pattern,
            } => self.change_case(param(parameter, indirect), pattern, true, true, out, io),
            E::UppercasePattern {
                parameter,
                indirect,
                pattern,
            } => self.change_case(param(parameter, indirect), pattern, true, false, out, io),
            E::LowercaseFirstChar {
                parameter,
                indirect,
                pattern,
            } => self.change_case(param(parameter, indirect), pattern, false, true, out, io),
            E::LowercasePattern {
                parameter,
                indirect,
                pattern,
            } => self.change_case(param(parameter, indirect), pattern, false, false, out, io),
            E::ReplaceSubstring {
                parameter,
                indirect,
                pattern,
                replacement,
                match_kind,
            } => self.replace_substring(
                param(parameter, indirect),
                pattern,
                replacement,
                match_kind,
                out,
                io,
            ),
            E::VariableNames {
                prefix,
                concatenate,
            } => self.variable_names(prefix, concatenate, quoted, out),
            E::MemberKeys {
                variable_name,
                concatenate,
            } => self.member_keys(variable_name, concatenate, quoted, out),
        }
    }

    /// `${p:-word}`, `${p-word}`: the default when the parameter is missing.
    fn use_default(
        &mut self,
        param: Param<'_>,
        test_type: &ParameterTestType,
        default_value: &Option<String>,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.parameter_value(param.parameter, param.indirect, io)?;
        if missing(&value, test_type) {
            self.expand_nested(
                default_value.as_deref().unwrap_or(""),
                param.quoted,
                out,
                io,
            )?;
        } else {
            self.push_value(value, param.quoted, out);
        }
        Ok(())
    }

    /// `${p:=word}`, `${p=word}`: assigns the default when the parameter is missing.
    fn assign_default(
        &mut self,
        param: Param<'_>,
        test_type: &ParameterTestType,
        default_value: &Option<String>,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.parameter_value(param.parameter, param.indirect, io)?;
        if missing(&value, test_type) {
            let new = self.expand_nested_string(
                default_value.as_deref().unwrap_or(""),
                param.quoted,
                io,
            )?;
            let Parameter::Named(name) = param.parameter else {
                let name = parameter_name(param.parameter);
                self.error(io, &format!("${name}: cannot assign in this way"));
                return Err(Unwind::Exit(1));
            };
            if let Err(message) = self.set_var(name, new.clone()) {
                self.error(io, &message);
                return Err(Unwind::Exit(1));
            }
            out.push(&new, param.quoted);
        } else {
            self.push_value(value, param.quoted, out);
        }
        Ok(())
    }

    /// `${p:?message}`, `${p?message}`: an error when the parameter is missing.
    fn error_if_missing(
        &mut self,
        param: Param<'_>,
        test_type: &ParameterTestType,
        error_message: &Option<String>,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.parameter_value(param.parameter, param.indirect, io)?;
        if missing(&value, test_type) {
            let message = match error_message.as_deref() {
                Some(raw) if !raw.is_empty() => self.expand_nested_string(raw, true, io)?,
                _ => match test_type {
                    ParameterTestType::UnsetOrNull => "parameter null or not set".into(),
                    ParameterTestType::Unset => "parameter not set".into(),
                },
            };
            self.error(
                io,
                &format!("{}: {message}", parameter_name(param.parameter)),
            );
            return Err(Unwind::Exit(self.expansion_error_status()));
        }
        self.push_value(value, param.quoted, out);
        Ok(())
    }

    /// `${p:+word}`, `${p+word}`: the alternative when the parameter is present.
    fn use_alternative(
        &mut self,
        param: Param<'_>,
        test_type: &ParameterTestType,
        alternative_value: &Option<String>,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.parameter_value(param.parameter, param.indirect, io)?;
        if missing(&value, test_type) {
            out.push("", param.quoted);
        } else {
            self.expand_nested(
                alternative_value.as_deref().unwrap_or(""),
                param.quoted,
                out,
                io,
            )?;
        }
        Ok(())
    }

    /// `${#p}`: characters of a value, or elements of a list.
    fn parameter_length(&mut self, param: Param<'_>, out: &mut Fields, io: &Io) -> Exec<()> {
        let value = self.bound_value(param, io)?;
        let len = match value {
            Value::Unset => 0,
            Value::Str(s) => s.chars().count(),
            Value::List { items, .. } => items.len(),
        };
        out.push(&len.to_string(), param.quoted);
        Ok(())
    }

    /// `${p%pat}`, `${p%%pat}`, `${p#pat}`, `${p##pat}`: a suffix or prefix removed.
    fn trim_pattern(
        &mut self,
        param: Param<'_>,
        pattern: &Option<String>,
        how: Trim,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.bound_value(param, io)?;
        let pattern = self.expand_nested_pattern(pattern.as_deref().unwrap_or(""), false, io)?;
        let cancelled = self.cancel_probe();
        let stopped = std::cell::Cell::new(false);
        let go_on = |_: usize| {
            let go = !cancelled();
            stopped.set(stopped.get() || !go);
            go
        };
        let value =
            value.map(|s| pattern::trim_while(s, &pattern, how, &go_on).unwrap_or_default());
        if stopped.get() {
            self.check_cancel()?;
        }
        self.push_value(value, param.quoted, out);
        Ok(())
    }

    /// `${p:offset:length}`: a substring, or a slice of a list.
    fn substring(
        &mut self,
        param: Param<'_>,
        offset: &brush_parser::ast::UnexpandedArithmeticExpr,
        length: &Option<brush_parser::ast::UnexpandedArithmeticExpr>,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.bound_value(param, io)?;
        let offset = self.expand_arithmetic(&offset.value, io)?;
        let length = match length {
            Some(l) => Some(self.expand_arithmetic(&l.value, io)?),
            None => None,
        };
        let value = match value {
            Value::Unset => Value::Str(String::new()),
            Value::Str(s) => {
                let chars: Vec<char> = s.chars().collect();
                match slice_range(chars.len(), offset, length) {
                    Some((a, b)) => Value::Str(chars[a..b].iter().collect()),
                    None => {
                        if length.is_some_and(|l| l < 0) {
                            self.error(
                                io,
                                &format!("{}: substring expression < 0", length.unwrap_or(0)),
                            );
                            return Err(Unwind::Exit(1));
                        }
                        Value::Str(String::new())
                    }
                }
            }
            Value::List { items, star } => {
                // `${@:1:2}` counts `$0` as element 0.
                let mut all = items;
                if matches!(
                    param.parameter,
                    Parameter::Special(SpecialParameter::AllPositionalParameters { .. })
                ) {
                    all.insert(0, self.arg0.clone());
                }
                let items = match slice_range(all.len(), offset, length) {
                    Some((a, b)) => all[a..b].to_vec(),
                    None => Vec::new(),
                };
                Value::List { items, star }
            }
        };
        self.push_value(value, param.quoted, out);
        Ok(())
    }

    /// `${p@op}`: the value transformed (case, quoting, escapes, attributes).
    fn transform(
        &mut self,
        param: Param<'_>,
        op: &ParameterTransformOp,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.parameter_value(param.parameter, param.indirect, io)?;
        let exported = match param.parameter {
            Parameter::Named(name) => self.vars.get(name).is_some_and(|v| v.exported),
            _ => false,
        };
        let name = parameter_name(param.parameter);
        let value = match op {
            ParameterTransformOp::ToUpperCase => value.map(|s| s.to_uppercase()),
            ParameterTransformOp::ToLowerCase => value.map(|s| s.to_lowercase()),
            ParameterTransformOp::CapitalizeInitial => value.map(capitalize),
            ParameterTransformOp::Quoted => value.map(|s| shell_quote(s, true)),
            ParameterTransformOp::ExpandEscapeSequences => {
                value.map(super::printf::ansi_c_unescape)
            }
            ParameterTransformOp::PromptExpand => value,
            ParameterTransformOp::ToAssignmentLogic => {
                value.map(|s| format!("{name}={}", shell_quote(s, true)))
            }
            ParameterTransformOp::ToAttributeFlags => {
                Value::Str(if exported { "x".into() } else { String::new() })
            }
            ParameterTransformOp::PossiblyQuoteWithArraysExpanded { .. } => {
                value.map(|s| shell_quote(s, true))
            }
        };
        self.push_value(value, param.quoted, out);
        Ok(())
    }

    /// `${p^pat}`, `${p^^pat}`, `${p,pat}`, `${p,,pat}`: the case of the first or every matching character changed.
    fn change_case(
        &mut self,
        param: Param<'_>,
        pattern: &Option<String>,
        upper: bool,
        first_only: bool,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.bound_value(param, io)?;
        let pattern = match pattern.as_deref() {
            Some(p) if !p.is_empty() => {
                Some(Pattern::new(&self.expand_nested_pattern(p, false, io)?))
            }
            _ => None,
        };
        let value = value.map(|s| {
            s.chars()
                .enumerate()
                .map(|(i, c)| {
                    let selected = (!first_only || i == 0)
                        && pattern.as_ref().is_none_or(|p| p.matches(&c.to_string()));
                    match (selected, upper) {
                        (false, _) => c.to_string(),
                        (true, true) => c.to_uppercase().collect(),
                        (true, false) => c.to_lowercase().collect(),
                    }
                })
                .collect()
        });
        self.push_value(value, param.quoted, out);
        Ok(())
    }

    /// `${p/pat/word}` and its `//`, `/#`, `/%` forms: matches replaced.
    fn replace_substring(
        &mut self,
        param: Param<'_>,
        pattern: &str,
        replacement: &Option<String>,
        match_kind: &SubstringMatchKind,
        out: &mut Fields,
        io: &Io,
    ) -> Exec<()> {
        let value = self.bound_value(param, io)?;
        let pattern = self.expand_nested_pattern(pattern, false, io)?;
        let replacement = match replacement.as_deref() {
            Some(r) => self.expand_nested_string(r, false, io)?,
            None => String::new(),
        };
        let how = match match_kind {
            SubstringMatchKind::Prefix => Replace::Prefix,
            SubstringMatchKind::Suffix => Replace::Suffix,
            SubstringMatchKind::FirstOccurrence => Replace::First,
            SubstringMatchKind::Anywhere => Replace::All,
        };
        let limit = self.shared.limits.max_expansion_bytes;
        let cancelled = self.cancel_probe();
        let stopped = std::cell::Cell::new(false);
        let go_on = |len: usize| {
            let go = len <= limit && !cancelled();
            if !go {
                stopped.set(true);
            }
            go
        };
        let value = value.map(|s| {
            pattern::replace_while(s, &pattern, &replacement, how, &go_on).unwrap_or_default()
        });
        if stopped.get() {
            self.check_cancel()?;
            self.check_expansion_size(limit + 1, io)?;
        }
        self.push_value(value, param.quoted, out);
        Ok(())
    }

    /// `${!prefix*}`, `${!prefix@}`: the names of set variables with a prefix.
    fn variable_names(
        &mut self,
        prefix: &str,
        concatenate: &bool,
        quoted: bool,
        out: &mut Fields,
    ) -> Exec<()> {
        let mut names: Vec<String> = self
            .vars
            .iter()
            .filter(|(name, v)| name.starts_with(prefix) && v.value.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        self.push_value(
            Value::List {
                items: names,
                star: *concatenate,
            },
            quoted,
            out,
        );
        Ok(())
    }

    /// `${!name[@]}`: the keys of a variable (`0` when it is set).
    fn member_keys(
        &mut self,
        variable_name: &str,
        concatenate: &bool,
        quoted: bool,
        out: &mut Fields,
    ) -> Exec<()> {
        let items = if self.is_set(variable_name) {
            vec!["0".to_owned()]
        } else {
            Vec::new()
        };
        self.push_value(
            Value::List {
                items,
                star: *concatenate,
            },
            quoted,
            out,
        );
        Ok(())
    }

    /// Runs `$( command )` in a subshell and returns its output without trailing newlines.
    pub(crate) fn command_substitution(&mut self, command: &str, io: &Io) -> Exec<String> {
        let program = match parse::parse_program(command, &self.script_name) {
            Ok(p) => p,
            Err(e) => {
                io.diag(&e.to_string());
                return Err(Unwind::Exit(2));
            }
        };
        let limit = self.shared.limits.max_capture_bytes;
        let capture = Capture::new(limit);
        let mut sub_io = io.clone();
        sub_io.set(1, Some(Stream::Out(OutHandle::new(capture.clone()))));
        let mut sub = self.subshell();
        sub.enter_nesting(io, "command substitution")?;
        // Not in POSIX mode, bash clears `-e` inside command substitutions.
        sub.options.errexit = false;
        let result = sub.run_program(&program, &mut sub_io);
        drop(sub_io);
        let status = sub.finish_subshell(result)?;
        if capture.overflowed() {
            drop(capture.take());
            self.error(
                io,
                &format!("wasmbuild: command substitution output too large (limit {limit} bytes)"),
            );
            return Err(Unwind::Exit(1));
        }
        self.last_status = status;
        self.last_substitution_status = Some(status);
        let mut bytes = capture.take();
        bytes.retain(|b| *b != 0);
        while bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Pathname expansion of a pattern relative to the shell's directory. Sorted per
    /// directory level; hidden entries only for patterns starting with a literal dot.
    pub(crate) fn glob(&self, pattern: &str) -> Vec<String> {
        let absolute = pattern.starts_with('/');
        let components: Vec<&str> = pattern.split('/').collect();
        let mut candidates: Vec<String> = vec![if absolute { "/".into() } else { String::new() }];
        let last = components.len() - 1;
        for (i, component) in components.iter().enumerate() {
            if i == 0 && absolute {
                continue;
            }
            if component.is_empty() {
                if i == last {
                    candidates.retain(|c| self.fs.is_dir(&normalize(&self.cwd, c)));
                    for c in &mut candidates {
                        if !c.ends_with('/') {
                            c.push('/');
                        }
                    }
                }
                continue;
            }
            let compiled = Pattern::new(component);
            let mut next = Vec::new();
            for candidate in &candidates {
                if compiled.is_literal() {
                    next.push(join_path(candidate, &pattern::unescape(component)));
                    continue;
                }
                let dir = normalize(
                    &self.cwd,
                    if candidate.is_empty() { "." } else { candidate },
                );
                let Ok(mut names) = self.fs.read_dir(&dir) else {
                    continue;
                };
                let dotglob = self.shopts.iter().any(|o| o == "dotglob");
                names.retain(|n| {
                    (!n.starts_with('.') || compiled.starts_with_dot() || dotglob)
                        && compiled.matches(n)
                });
                names.sort();
                next.extend(names.iter().map(|n| join_path(candidate, n)));
            }
            candidates = next;
            if candidates.is_empty() {
                break;
            }
        }
        candidates.retain(|c| {
            !c.is_empty() && self.fs.symlink_metadata(&normalize(&self.cwd, c)).is_ok()
        });
        candidates
    }

    /// Prints `NAME: line N: message` on stderr.
    pub(crate) fn error(&self, io: &Io, message: &str) {
        io.diag(&format!(
            "{}: line {}: {message}",
            self.script_name, self.line
        ));
    }
}

/// Brace expansion (`a{b,c}d`, `{1..5}`, `{a..e..2}`), done on the text of a word before
/// any other expansion. A word without a valid brace expression is returned as is. More than
/// `max_words` words or `max_bytes` bytes is an error (nothing is built past the limit).
fn brace_expand(word: &str, max_words: usize, max_bytes: usize) -> Result<Vec<String>, String> {
    let limits = BraceLimits {
        words: max_words,
        bytes: max_bytes,
    };
    match parse::contained(|| word::parse_brace_expansions(word, &parse::options())) {
        Some(Ok(Some(pieces))) => expand_brace_pieces(&pieces, &limits)
            .map_err(|what| format!("{word}: brace expansion too large ({what})")),
        _ => Ok(vec![word.to_owned()]),
    }
}

struct BraceLimits {
    words: usize,
    bytes: usize,
}

impl BraceLimits {
    fn check(&self, words: u128, bytes: u128) -> Result<(), String> {
        if words > self.words as u128 {
            return Err(format!("limit {} words", self.words));
        }
        if bytes > self.bytes as u128 {
            return Err(format!("limit {} bytes", self.bytes));
        }
        Ok(())
    }
}

fn expand_brace_pieces(
    pieces: &[word::BraceExpressionOrText],
    limits: &BraceLimits,
) -> Result<Vec<String>, String> {
    let mut words = vec![String::new()];
    for piece in pieces {
        let alternatives = match piece {
            word::BraceExpressionOrText::Text(text) => vec![text.clone()],
            word::BraceExpressionOrText::Expr(members) => {
                let mut alternatives = Vec::new();
                for member in members {
                    alternatives.extend(expand_brace_member(member, limits)?);
                    limits.check(alternatives.len() as u128, 0)?;
                }
                alternatives
            }
        };
        // The size of the product, before it is made.
        let count = words.len() as u128 * alternatives.len() as u128;
        let word_bytes: u128 = words.iter().map(|w| w.len() as u128).sum();
        let alternative_bytes: u128 = alternatives.iter().map(|a| a.len() as u128).sum();
        let bytes =
            word_bytes * alternatives.len() as u128 + alternative_bytes * words.len() as u128;
        limits.check(count, bytes)?;
        words = words
            .iter()
            .flat_map(|w| alternatives.iter().map(move |a| format!("{w}{a}")))
            .collect();
    }
    Ok(words)
}

fn expand_brace_member(
    member: &word::BraceExpressionMember,
    limits: &BraceLimits,
) -> Result<Vec<String>, String> {
    match member {
        word::BraceExpressionMember::Child(pieces) => expand_brace_pieces(pieces, limits),
        word::BraceExpressionMember::NumberSequence {
            start,
            end,
            increment,
        } => {
            let step = increment.unsigned_abs().max(1);
            let (low, high) = if start <= end {
                (*start, *end)
            } else {
                (*end, *start)
            };
            let count = (high as i128 - low as i128) as u128 / step as u128 + 1;
            // At most 20 bytes a number.
            limits.check(count, count.saturating_mul(20).min(limits.bytes as u128))?;
            let step = usize::try_from(step).unwrap_or(usize::MAX);
            let items: Vec<i64> = if start <= end {
                (low..=high).step_by(step).collect()
            } else {
                (low..=high).rev().step_by(step).collect()
            };
            Ok(items.iter().map(i64::to_string).collect())
        }
        word::BraceExpressionMember::CharSequence {
            start,
            end,
            increment,
        } => {
            let step = increment.unsigned_abs().max(1) as usize;
            let (a, b) = (*start as u32, *end as u32);
            limits.check(u128::from(a.abs_diff(b)) / step as u128 + 1, 0)?;
            let codes: Vec<u32> = if a <= b {
                (a..=b).step_by(step).collect()
            } else {
                (b..=a).rev().step_by(step).collect()
            };
            Ok(codes
                .into_iter()
                .filter_map(char::from_u32)
                .map(String::from)
                .collect())
        }
    }
}

fn missing(value: &Value, test: &ParameterTestType) -> bool {
    match test {
        ParameterTestType::UnsetOrNull => value.is_null(),
        ParameterTestType::Unset => value.is_unset(),
    }
}

fn parameter_name(parameter: &Parameter) -> String {
    match parameter {
        Parameter::Positional(n) => n.to_string(),
        Parameter::Special(s) => s.to_string(),
        Parameter::Named(name) => name.clone(),
        Parameter::NamedWithIndex { name, index } => format!("{name}[{index}]"),
        Parameter::NamedWithAllIndices { name, concatenate } => {
            format!("{name}[{}]", if *concatenate { '*' } else { '@' })
        }
    }
}

fn tilde_text(tilde: &TildeExpr) -> String {
    match tilde {
        TildeExpr::Home => "~".into(),
        TildeExpr::UserHome(user) => format!("~{user}"),
        TildeExpr::WorkingDir => "~+".into(),
        TildeExpr::OldWorkingDir => "~-".into(),
        TildeExpr::NthDirFromTopOfDirStack { n, plus_used } => {
            format!("~{}{n}", if *plus_used { "+" } else { "" })
        }
        TildeExpr::NthDirFromBottomOfDirStack { n } => format!("~-{n}"),
    }
}

/// The bounds of `${x:offset:length}` over `len` elements.
fn slice_range(len: usize, offset: i64, length: Option<i64>) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if offset < 0 { len + offset } else { offset };
    if start < 0 || start > len {
        return None;
    }
    let end = match length {
        None => len,
        Some(l) if l < 0 => len + l,
        Some(l) => (start + l).min(len),
    };
    if end < start {
        return None;
    }
    Some((start as usize, end as usize))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn join_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn join_fields(fields: Vec<Field>) -> String {
    let mut texts = fields
        .into_iter()
        .filter(|f| !f.text.is_empty() || f.keep());
    let mut out = match texts.next() {
        Some(f) => f.text,
        None => return String::new(),
    };
    for f in texts {
        out.push(' ');
        out.push_str(&f.text);
    }
    out
}

/// Inside backquotes, `\$`, `\\` and `` \` `` stand for the character itself.
fn unescape_backquoted(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && matches!(next, '$' | '\\' | '`')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Splits a field at unquoted expansion results on `IFS`, as bash does: runs of IFS
/// whitespace separate and are trimmed at the ends; every other IFS character separates,
/// so `a::b` with `IFS=:` gives an empty middle field.
fn split_field(field: Field, ifs: &str) -> Vec<Field> {
    if ifs.is_empty() || !field.origins.contains(&Origin::Expanded) {
        return if field.text.is_empty() && !field.keep() {
            Vec::new()
        } else {
            vec![field]
        };
    }
    let is_ifs_space = |c: char| ifs.contains(c) && matches!(c, ' ' | '\t' | '\n');
    let chars: Vec<(usize, char)> = field.text.char_indices().collect();
    let splits_at = |k: usize| {
        let (i, c) = chars[k];
        field.origins[i] == Origin::Expanded && ifs.contains(c)
    };
    let quoted_at = |k: usize| {
        let at = chars.get(k).map_or(field.text.len(), |(i, _)| *i);
        field.quotes.contains(&at)
    };
    let mut out = Vec::new();
    let mut current = Field::default();
    let mut has_content = false;
    let mut k = 0;
    while k < chars.len() {
        if quoted_at(k) {
            current.mark_quoted();
            has_content = true;
        }
        if !splits_at(k) {
            let (i, c) = chars[k];
            current.push_char(c, field.origins[i]);
            has_content = true;
            k += 1;
            continue;
        }
        // One delimiter: IFS whitespace around at most one other IFS character.
        let start = k;
        let in_run = |k: usize| k < chars.len() && splits_at(k) && !(k > start && quoted_at(k));
        let mut hard = false;
        while in_run(k) && is_ifs_space(chars[k].1) {
            k += 1;
        }
        if in_run(k) && !is_ifs_space(chars[k].1) {
            hard = true;
            k += 1;
            while in_run(k) && is_ifs_space(chars[k].1) {
                k += 1;
            }
        }
        if hard || has_content {
            out.push(std::mem::take(&mut current));
        }
        has_content = false;
    }
    if quoted_at(chars.len()) {
        current.mark_quoted();
        has_content = true;
    }
    if has_content {
        out.push(current);
    }
    out
}

/// Quotes a string for reuse as shell input, as `set -x` and `${x@Q}` print it.
pub(crate) fn shell_quote(s: &str, always: bool) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '=' | '+' | '@' | '%')
        });
    if plain && !always {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}
