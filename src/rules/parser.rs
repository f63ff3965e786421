//! Recursive-descent parser of the expression language (SPEC section 3):
//!
//! ```text
//! expr      := and ("OR" and)*
//! and       := unary ("AND" unary)*
//! unary     := "NOT" unary | "(" expr ")" | condition
//! condition := FIELD ["case_sensitive"] OP STRING
//! OP        := ["not" | "not_"] (equals | contains | starts_with | ends_with | matches)
//!            | ">" | ">=" | "<" | "<="
//! ```
//!
//! Keywords are case-insensitive. Nesting (parentheses and `NOT`) is limited to
//! [`MAX_DEPTH`] so that hostile input (10,000 opening parentheses) is an error, not a stack
//! overflow.

use super::ast::{Condition, Expr, Op};
use super::error::ExprError;
use super::lexer::{Tok, Token, lex};
use crate::model::Field;

/// Deepest nesting of parentheses and `NOT` accepted.
pub const MAX_DEPTH: usize = 64;

/// Parse an expression.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    parse_with_offsets(text).map(|(expr, _)| expr)
}

/// Parse an expression, also returning the character offset of each condition's string, in
/// the order of [`Expr::conditions`] (for errors found later, such as a bad regex).
pub fn parse_with_offsets(text: &str) -> Result<(Expr, Vec<usize>), ExprError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: text.chars().count(),
        value_offsets: Vec::new(),
    };
    if p.tokens.is_empty() {
        return Err(ExprError::new(0, "empty expression"));
    }
    let expr = p.expr(0)?;
    match p.peek() {
        None => Ok((expr, p.value_offsets)),
        Some(Token {
            tok: Tok::RParen,
            offset,
        }) => Err(ExprError::new(*offset, "unmatched `)`")),
        Some(t) => Err(ExprError::new(
            t.offset,
            format!("expected AND, OR or the end, found {}", t.tok.describe()),
        )),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Offset of the end of the text, for "expected ... at the end" errors.
    end: usize,
    value_offsets: Vec<usize>,
}

fn is_keyword(tok: &Tok, keyword: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|t| is_keyword(&t.tok, keyword)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Offset of the next token, or of the end of the text.
    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.offset)
    }

    fn expected(&self, what: &str) -> ExprError {
        match self.peek() {
            Some(t) => ExprError::new(
                t.offset,
                format!("expected {what}, found {}", t.tok.describe()),
            ),
            None => ExprError::new(self.end, format!("expected {what} at the end")),
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut list = vec![self.and(depth)?];
        while self.eat_keyword("or") {
            list.push(self.and(depth)?);
        }
        Ok(join(list, Expr::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut list = vec![self.unary(depth)?];
        while self.eat_keyword("and") {
            list.push(self.unary(depth)?);
        }
        Ok(join(list, Expr::And))
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ExprError> {
        if depth >= MAX_DEPTH {
            return Err(ExprError::new(
                self.here(),
                format!("expression nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        match self.peek() {
            Some(Token {
                tok: Tok::LParen,
                offset,
            }) => {
                let open = *offset;
                self.pos += 1;
                let inner = self.expr(depth + 1)?;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Ok(inner),
                    Some(t) => Err(ExprError::new(
                        t.offset,
                        format!("expected AND, OR or `)`, found {}", t.tok.describe()),
                    )),
                    None => Err(ExprError::new(open, "unclosed `(`")),
                }
            }
            Some(Token {
                tok: Tok::Word(_), ..
            }) => self.condition(),
            _ => Err(self.expected("a condition, `(` or NOT")),
        }
    }

    fn condition(&mut self) -> Result<Expr, ExprError> {
        let Some(Token {
            tok: Tok::Word(name),
            offset,
        }) = self.next()
        else {
            unreachable!("condition() is called on a word");
        };
        let field = Field::parse(&name).map_err(|e| ExprError::new(offset, e))?;
        let case_sensitive = self.eat_keyword("case_sensitive");
        let (negated, op) = self.operator(&name)?;
        match self.peek() {
            Some(Token {
                tok: Tok::Str(value),
                offset,
            }) => {
                let value = value.clone();
                self.value_offsets.push(*offset);
                self.pos += 1;
                Ok(Expr::Cond(Condition {
                    field,
                    case_sensitive,
                    negated,
                    op,
                    value,
                }))
            }
            _ => Err(self.expected(&format!("a \"string\" after `{}`", op.as_str()))),
        }
    }

    /// The operator after field `name`: whether it is negated, and which.
    fn operator(&mut self, name: &str) -> Result<(bool, Op), ExprError> {
        let Some(token) = self.peek() else {
            return Err(self.expected(&format!("an operator after `{name}`")));
        };
        let offset = token.offset;
        let found = match &token.tok {
            Tok::Gt => (false, Op::Gt),
            Tok::Ge => (false, Op::Ge),
            Tok::Lt => (false, Op::Lt),
            Tok::Le => (false, Op::Le),
            Tok::Word(w) if w.eq_ignore_ascii_case("not") => {
                self.pos += 1;
                return match self.peek().map(|t| &t.tok) {
                    Some(Tok::Word(w)) if Op::from_word(w).is_some() => {
                        let op = Op::from_word(w).expect("checked above");
                        self.pos += 1;
                        Ok((true, op))
                    }
                    _ => Err(self.expected(
                        "equals, contains, starts_with, ends_with or matches after `not`",
                    )),
                };
            }
            Tok::Word(w) => {
                let (negated, base) = match w.get(..4) {
                    Some(prefix) if prefix.eq_ignore_ascii_case("not_") => (true, &w[4..]),
                    _ => (false, w.as_str()),
                };
                match Op::from_word(base) {
                    Some(op) => (negated, op),
                    None => return Err(unknown_op(offset, w)),
                }
            }
            _ => return Err(self.expected(&format!("an operator after `{name}`"))),
        };
        self.pos += 1;
        Ok(found)
    }
}

fn unknown_op(offset: usize, word: &str) -> ExprError {
    let ops: Vec<&str> = Op::WORDS.iter().map(|(w, _)| *w).collect();
    ExprError::new(
        offset,
        format!(
            "unknown operator `{word}` (expected {}, their not_ forms, or > >= < <=)",
            ops.join(", ")
        ),
    )
}

/// One operand stays itself; several become one list, with operands of the same kind merged
/// into it, so that `(a AND b) AND c` and `a AND b AND c` are the same tree.
fn join(list: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if list.len() == 1 {
        return list.into_iter().next().expect("one operand");
    }
    let is_and = matches!(make(Vec::new()), Expr::And(_));
    let mut flat = Vec::with_capacity(list.len());
    for e in list {
        match e {
            Expr::And(inner) if is_and => flat.extend(inner),
            Expr::Or(inner) if !is_and => flat.extend(inner),
            e => flat.push(e),
        }
    }
    make(flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Valid expressions and their canonical printing.
    const VALID: &[(&str, &str)] = &[
        (r#"group_title equals "UK""#, r#"group_title equals "UK""#),
        (
            r#"TVG-ID Ends_With ".uk" or Group_Title STARTS_WITH "UK""#,
            r#"tvg_id ends_with ".uk" OR group_title starts_with "UK""#,
        ),
        (
            r#"channel_name not contains "x" and tvg_name not_equals "y""#,
            r#"channel_name not_contains "x" AND tvg_name not_equals "y""#,
        ),
        (
            r#"a-b case_sensitive matches "^\d+\+1$""#,
            r#"a-b case_sensitive matches "^\\d+\\+1$""#,
        ),
        (
            r#"catchup-days >= "3" AND tvg_chno < "100""#,
            r#"catchup-days >= "3" AND tvg_chno < "100""#,
        ),
        (
            r#"NOT (a-b equals "1" OR a-b equals "2") AND NOT NOT c-d > "x""#,
            r#"NOT (a-b equals "1" OR a-b equals "2") AND NOT NOT c-d > "x""#,
        ),
        (
            r#"((a-b equals "1")) AND (a-b equals "2" AND a-b equals "3")"#,
            r#"a-b equals "1" AND a-b equals "2" AND a-b equals "3""#,
        ),
        (
            r#"a-b equals "say \"hi\" \\ \n""#,
            r#"a-b equals "say \"hi\" \\ \\n""#,
        ),
        (
            r#"a-b equals "1" OR a-b equals "2" AND a-b equals "3""#,
            r#"a-b equals "1" OR a-b equals "2" AND a-b equals "3""#,
        ),
        (
            r#"(a-b equals "1" OR a-b equals "2") AND a-b equals "3""#,
            r#"(a-b equals "1" OR a-b equals "2") AND a-b equals "3""#,
        ),
        (r#"tvg_id equals """#, r#"tvg_id equals """#),
    ];

    /// Invalid expressions and the character offset of their error.
    const INVALID: &[(&str, usize)] = &[
        ("", 0),
        ("   ", 0),
        (r#"group_title"#, 11),
        (r#"group_title equals"#, 18),
        (r#"group_title equals x"#, 19),
        (r#"group_title is "x""#, 12),
        (r#"group_titel equals "x""#, 0),
        (r#"group_title equals "x" AND"#, 26),
        (r#"group_title equals "x" tvg_id equals "y""#, 23),
        (r#"(group_title equals "x""#, 0),
        (r#"group_title equals "x")"#, 22),
        (r#"group_title not > "x""#, 16),
        (r#"group_title equals "x"#, 19),
        (r#"group_title equals 'x'"#, 19),
        (r#"NOT"#, 3),
        (r#"() "#, 1),
        (r#"tvg_id == "x""#, 7),
    ];

    #[test]
    fn valid_expressions_print_canonically_and_round_trip() {
        for (text, printed) in VALID {
            let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(expr.to_string(), *printed, "{text}");
            assert_eq!(parse(printed).unwrap(), expr, "{printed}");
        }
    }

    #[test]
    fn invalid_expressions_report_their_offset() {
        for (text, offset) in INVALID {
            let err = parse(text).expect_err(text);
            assert_eq!(err.offset, *offset, "{text}: {}", err.message);
        }
    }

    #[test]
    fn precedence() {
        let a = r#"a-b equals "1""#;
        let expr = parse(&format!("{a} OR {a} AND NOT {a}")).unwrap();
        let Expr::Or(list) = expr else { panic!() };
        assert!(matches!(list[0], Expr::Cond(_)));
        let Expr::And(and) = &list[1] else { panic!() };
        assert!(matches!(and[1], Expr::Not(_)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            "{}a-b equals \"1\"{}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        let err = parse(&deep).unwrap_err();
        assert_eq!(err.offset, MAX_DEPTH);
        assert!(err.message.contains("nested"));
        let nots = format!("{}a-b equals \"1\"", "NOT ".repeat(10_000));
        assert!(parse(&nots).is_err());
        // Long flat chains are fine: they are wide, not deep.
        let chain = vec![r#"a-b equals "1""#; 10_000].join(" AND ");
        let Expr::And(list) = parse(&chain).unwrap() else {
            panic!()
        };
        assert_eq!(list.len(), 10_000);
        let ok = format!("{}a-b equals \"1\"{}", "(".repeat(60), ")".repeat(60));
        assert!(parse(&ok).is_ok());
    }
}
