//! The syntax tree of an expression, and its printing back to text. `AND` and `OR` hold flat
//! lists (the parser merges `a AND (b AND c)` into one list), so a chain of 10,000 conditions
//! is a wide tree, not a deep one, and nothing recursive can overflow the stack on it. Printing
//! puts parentheses only where precedence needs them, so that `Display` output re-parses to the
//! same tree.

use std::fmt;

use crate::model::Field;

/// A boolean expression over a channel's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Cond(Condition),
    Not(Box<Expr>),
    /// Two or more operands, none of them an `And`.
    And(Vec<Expr>),
    /// Two or more operands, none of them an `Or`.
    Or(Vec<Expr>),
}

/// `FIELD [case_sensitive] [not] OP "value"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: Field,
    pub case_sensitive: bool,
    /// `not_OP` / `not OP`; never set for the comparisons `>` `>=` `<` `<=`.
    pub negated: bool,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    /// The word operators, as written.
    pub const WORDS: [(&'static str, Op); 5] = [
        ("equals", Op::Equals),
        ("contains", Op::Contains),
        ("starts_with", Op::StartsWith),
        ("ends_with", Op::EndsWith),
        ("matches", Op::Matches),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Equals => "equals",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Matches => "matches",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// A word operator by name, case-insensitively (`not_` prefix not included).
    pub fn from_word(word: &str) -> Option<Op> {
        Op::WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|(_, op)| *op)
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }
}

impl Expr {
    /// Every condition, in the order written.
    pub fn conditions(&self) -> Vec<&Condition> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Condition>) {
        match self {
            Expr::Cond(c) => out.push(c),
            Expr::Not(e) => e.collect(out),
            Expr::And(list) | Expr::Or(list) => list.iter().for_each(|e| e.collect(out)),
        }
    }
}

/// Write a string value in double quotes, escaping `"` and `\` so the lexer reads it back as
/// the same value (`\` alone would also survive unless it precedes `"` or `\`; escaping every
/// one is simplest and always right).
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field.name())?;
        if self.case_sensitive {
            f.write_str(" case_sensitive")?;
        }
        f.write_str(if self.negated { " not_" } else { " " })?;
        f.write_str(self.op.as_str())?;
        f.write_str(" ")?;
        write_quoted(f, &self.value)
    }
}

/// Binding strength: OR < AND < NOT < condition.
fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Or(..) => 0,
        Expr::And(..) => 1,
        Expr::Not(_) => 2,
        Expr::Cond(_) => 3,
    }
}

/// Write `e`, in parentheses when it binds less tightly than `min` requires.
fn write_operand(f: &mut fmt::Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
    if precedence(e) < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, list: &[Expr], sep: &str, min: u8) -> fmt::Result {
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write_operand(f, e, min)?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Cond(c) => write!(f, "{c}"),
            Expr::Not(e) => {
                f.write_str("NOT ")?;
                write_operand(f, e, 2)
            }
            // A nested operand of the same kind (never made by the parser, which merges them) is
            // printed in parentheses, which reads back as an equivalent, merged list.
            Expr::And(list) => write_list(f, list, " AND ", 2),
            Expr::Or(list) => write_list(f, list, " OR ", 1),
        }
    }
}
