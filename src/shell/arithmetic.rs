//! Shell arithmetic (`$(( ))`, `(( ))`, `let`, `for ((;;))`, `[[ -eq ]]`): 64-bit wrapping
//! integers, evaluated from `brush-parser`'s expression tree. Variables holding expressions
//! are evaluated recursively, as in bash. The text is expanded by the caller first.

use brush_parser::ast::{
    ArithmeticExpr, ArithmeticTarget, BinaryOperator, UnaryAssignmentOperator, UnaryOperator,
};

use super::interpreter::Interpreter;

const MAX_DEPTH: usize = 64;

impl Interpreter {
    /// Parses and evaluates already-expanded arithmetic text. The error is bash's message.
    pub(crate) fn eval_arithmetic(&mut self, text: &str) -> Result<i64, String> {
        self.eval_arithmetic_at(text, 0)
    }

    fn eval_arithmetic_at(&mut self, text: &str, depth: usize) -> Result<i64, String> {
        if depth > MAX_DEPTH {
            return Err(format!("{text}: expression recursion level exceeded"));
        }
        if text.trim().is_empty() {
            return Ok(0);
        }
        // The parser recurses once per parenthesis: bound it before it runs.
        let parens = text.bytes().filter(|b| *b == b'(').count();
        if parens > super::parse::MAX_SYNTAX_DEPTH {
            return Err(format!(
                "expression nested too deeply (limit {} levels)",
                super::parse::MAX_SYNTAX_DEPTH
            ));
        }
        let expr = super::parse::contained(|| brush_parser::arithmetic::parse(text))
            .and_then(Result::ok)
            .ok_or_else(|| format!("{}: syntax error in expression", text.trim()))?;
        self.eval_expr(&expr, depth)
            .map_err(|reason| format!("{}: {reason}", text.trim()))
    }

    fn eval_expr(&mut self, expr: &ArithmeticExpr, depth: usize) -> Result<i64, String> {
        Ok(match expr {
            ArithmeticExpr::Literal(n) => *n,
            ArithmeticExpr::Reference(target) => self.read_target(target, depth)?,
            ArithmeticExpr::UnaryOp(op, x) => {
                let x = self.eval_expr(x, depth)?;
                match op {
                    UnaryOperator::UnaryPlus => x,
                    UnaryOperator::UnaryMinus => x.wrapping_neg(),
                    UnaryOperator::BitwiseNot => !x,
                    UnaryOperator::LogicalNot => i64::from(x == 0),
                }
            }
            ArithmeticExpr::BinaryOp(op, x, y) => match op {
                BinaryOperator::LogicalAnd => {
                    let x = self.eval_expr(x, depth)?;
                    i64::from(x != 0 && self.eval_expr(y, depth)? != 0)
                }
                BinaryOperator::LogicalOr => {
                    let x = self.eval_expr(x, depth)?;
                    i64::from(x != 0 || self.eval_expr(y, depth)? != 0)
                }
                BinaryOperator::Comma => {
                    self.eval_expr(x, depth)?;
                    self.eval_expr(y, depth)?
                }
                _ => {
                    let x = self.eval_expr(x, depth)?;
                    let y = self.eval_expr(y, depth)?;
                    apply_binary(op, x, y)?
                }
            },
            ArithmeticExpr::Conditional(c, a, b) => {
                if self.eval_expr(c, depth)? != 0 {
                    self.eval_expr(a, depth)?
                } else {
                    self.eval_expr(b, depth)?
                }
            }
            ArithmeticExpr::Assignment(target, value) => {
                let value = self.eval_expr(value, depth)?;
                self.write_target(target, value)?;
                value
            }
            ArithmeticExpr::BinaryAssignment(op, target, value) => {
                let old = self.read_target(target, depth)?;
                let value = self.eval_expr(value, depth)?;
                let new = apply_binary(op, old, value)?;
                self.write_target(target, new)?;
                new
            }
            ArithmeticExpr::UnaryAssignment(op, target) => {
                let old = self.read_target(target, depth)?;
                let (new, result) = match op {
                    UnaryAssignmentOperator::PrefixIncrement => {
                        (old.wrapping_add(1), old.wrapping_add(1))
                    }
                    UnaryAssignmentOperator::PrefixDecrement => {
                        (old.wrapping_sub(1), old.wrapping_sub(1))
                    }
                    UnaryAssignmentOperator::PostfixIncrement => (old.wrapping_add(1), old),
                    UnaryAssignmentOperator::PostfixDecrement => (old.wrapping_sub(1), old),
                };
                self.write_target(target, new)?;
                result
            }
        })
    }

    fn target_name(&mut self, target: &ArithmeticTarget) -> Result<String, String> {
        match target {
            ArithmeticTarget::Variable(name) => Ok(name.clone()),
            // Arrays are not supported; element 0 is the scalar, as bash treats scalars.
            ArithmeticTarget::ArrayElement(name, index) => {
                if self.eval_expr(index, 0)? == 0 {
                    Ok(name.clone())
                } else {
                    Err(format!("{name}: arrays are not supported"))
                }
            }
        }
    }

    fn read_target(&mut self, target: &ArithmeticTarget, depth: usize) -> Result<i64, String> {
        let name = self.target_name(target)?;
        let value = match self.var(&name) {
            Some(v) => v.trim().to_owned(),
            None if self.options.nounset => return Err(format!("{name}: unbound variable")),
            None => return Ok(0),
        };
        if value.is_empty() {
            return Ok(0);
        }
        if let Some(n) = parse_integer(&value) {
            return Ok(n);
        }
        self.eval_arithmetic_at(&value, depth + 1)
    }

    fn write_target(&mut self, target: &ArithmeticTarget, value: i64) -> Result<(), String> {
        let name = self.target_name(target)?;
        self.set_var(&name, value.to_string())
    }
}

fn apply_binary(op: &BinaryOperator, x: i64, y: i64) -> Result<i64, String> {
    Ok(match op {
        BinaryOperator::Power => {
            if y < 0 {
                return Err("exponent less than 0".into());
            }
            let mut result: i64 = 1;
            for _ in 0..y.min(64 * 64) {
                result = result.wrapping_mul(x);
            }
            result
        }
        BinaryOperator::Multiply => x.wrapping_mul(y),
        BinaryOperator::Divide => {
            if y == 0 {
                return Err("division by 0".into());
            }
            x.wrapping_div(y)
        }
        BinaryOperator::Modulo => {
            if y == 0 {
                return Err("division by 0".into());
            }
            x.wrapping_rem(y)
        }
        BinaryOperator::Add => x.wrapping_add(y),
        BinaryOperator::Subtract => x.wrapping_sub(y),
        BinaryOperator::ShiftLeft => x.wrapping_shl((y & 63) as u32),
        BinaryOperator::ShiftRight => x.wrapping_shr((y & 63) as u32),
        BinaryOperator::LessThan => i64::from(x < y),
        BinaryOperator::LessThanOrEqualTo => i64::from(x <= y),
        BinaryOperator::GreaterThan => i64::from(x > y),
        BinaryOperator::GreaterThanOrEqualTo => i64::from(x >= y),
        BinaryOperator::Equals => i64::from(x == y),
        BinaryOperator::NotEquals => i64::from(x != y),
        BinaryOperator::BitwiseAnd => x & y,
        BinaryOperator::BitwiseXor => x ^ y,
        BinaryOperator::BitwiseOr => x | y,
        BinaryOperator::LogicalAnd => i64::from(x != 0 && y != 0),
        BinaryOperator::LogicalOr => i64::from(x != 0 || y != 0),
        BinaryOperator::Comma => y,
    })
}

/// An integer constant as bash reads one: decimal, `0x` hex, leading-0 octal, `BASE#DIGITS`,
/// with an optional sign.
pub(crate) fn parse_integer(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() {
        return None;
    }
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()? as i64
    } else if let Some((base, rest)) = digits.split_once('#') {
        let base: u32 = base.parse().ok()?;
        if !(2..=36).contains(&base) {
            return None;
        }
        u64::from_str_radix(rest, base).ok()? as i64
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(digits, 8).ok()? as i64
    } else {
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()? as i64
    };
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}
