//! Tokens of the expression language. Words (field names, operators, keywords) are runs of
//! letters, digits and `_ - . :` so that attribute names such as `catchup-days` are one word;
//! strings are double-quoted with `\"` and `\\` as the only escapes, so that regex escapes such
//! as `\d` and `\+` pass through untouched.

use super::error::ExprError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Tok {
    /// How the token is named in "expected ..., found ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(_) => "a string".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
        }
    }
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub offset: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// Split an expression into tokens. Offsets count characters, as users see columns.
pub fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '>' | '<' => {
                i += 1;
                let eq = chars.get(i) == Some(&'=');
                if eq {
                    i += 1;
                }
                match (c, eq) {
                    ('>', false) => Tok::Gt,
                    ('>', true) => Tok::Ge,
                    ('<', false) => Tok::Lt,
                    _ => Tok::Le,
                }
            }
            '"' => {
                i += 1;
                let mut value = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(ExprError::new(start, "unterminated string")),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                            value.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                Tok::Str(value)
            }
            c if is_word_char(c) => {
                while i < chars.len() && is_word_char(chars[i]) {
                    i += 1;
                }
                Tok::Word(chars[start..i].iter().collect())
            }
            '\'' => {
                return Err(ExprError::new(
                    start,
                    "strings are written in double quotes: \"...\"",
                ));
            }
            other => return Err(ExprError::new(start, format!("unexpected `{other}`"))),
        };
        tokens.push(Token { tok, offset: start });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_offsets() {
        let toks = lex(r#"catchup-days >= "3" AND x matches "a\"b\\c\d""#).unwrap();
        assert_eq!(toks[0].tok, Tok::Word("catchup-days".into()));
        assert_eq!(toks[1].tok, Tok::Ge);
        assert_eq!(toks[1].offset, 13);
        assert_eq!(toks[2].tok, Tok::Str("3".into()));
        assert_eq!(toks[6].tok, Tok::Str(r#"a"b\c\d"#.into()));
    }

    #[test]
    fn errors() {
        assert_eq!(lex(r#"a equals "x"#).unwrap_err().offset, 9);
        assert_eq!(lex("a equals 'x'").unwrap_err().offset, 9);
        assert_eq!(lex("é = 1").unwrap_err().offset, 2);
    }
}
