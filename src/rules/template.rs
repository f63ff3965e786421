//! Mapping templates: the values of `set` and `default`.
//!
//! - `$1` .. `$9`: a group of the first `matches` condition that made `when` true (empty when
//!   the group did not take part in the match);
//! - `{field}`: any field, named or an `#EXTINF` attribute by its name (`{catchup-days}`);
//! - `$$`, `{{` and `}}`: a literal `$`, `{` and `}`;
//! - a `$` followed by anything else is kept as is (`US$ 5`); `$0` is an error, since whole
//!   matches are rarely what is meant and `{field}` gives the whole value.
//!
//! `${NAME}` never reaches this parser: configuration loading replaces it with the environment
//! variable.

use std::fmt::Write as _;

use super::error::ExprError;
use super::matcher::Groups;
use crate::model::{Channel, Field};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Group(usize),
    Field(Field),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, ExprError> {
        let chars: Vec<char> = text.chars().collect();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match (c, next) {
                ('$', Some('$')) | ('{', Some('{')) | ('}', Some('}')) => {
                    lit.push(c);
                    i += 2;
                }
                ('$', Some('0')) => {
                    return Err(ExprError::new(
                        i,
                        "`$0` is not a group: use $1..$9, or {field} for a whole value",
                    ));
                }
                ('$', Some(d @ '1'..='9')) => {
                    flush(&mut lit, &mut parts);
                    parts.push(Part::Group(d as usize - '0' as usize));
                    i += 2;
                }
                ('{', _) => {
                    let Some(len) = chars[i + 1..].iter().position(|&c| c == '}') else {
                        return Err(ExprError::new(
                            i,
                            "unclosed `{` (write `{{` for a literal `{`)",
                        ));
                    };
                    let name: String = chars[i + 1..i + 1 + len].iter().collect();
                    let field = Field::parse(name.trim()).map_err(|e| ExprError::new(i + 1, e))?;
                    flush(&mut lit, &mut parts);
                    parts.push(Part::Field(field));
                    i += len + 2;
                }
                ('}', _) => {
                    return Err(ExprError::new(
                        i,
                        "unmatched `}` (write `}}` for a literal `}`)",
                    ));
                }
                _ => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        flush(&mut lit, &mut parts);
        Ok(Template { parts })
    }

    /// The largest `$N` used (0 when none), for checking it against the groups that `when`
    /// can provide.
    pub fn max_group(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Group(n) => *n,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// Render against the channel as it is now, with `captures` for `$N`.
    pub fn render(&self, ch: &Channel, captures: Option<&dyn Groups>) -> String {
        // Capacity guess: literals and fields are short; one allocation in the common case.
        let mut out = String::with_capacity(32);
        self.render_into(ch, captures, &mut out);
        out
    }

    /// [`Template::render`], appending to `out` (a buffer reused across channels, so that
    /// rendering does not allocate).
    pub fn render_into(&self, ch: &Channel, captures: Option<&dyn Groups>, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Field(f) => out.push_str(ch.get(f)),
                Part::Group(n) => {
                    if let Some(group) = captures.and_then(|c| c.group(*n)) {
                        out.push_str(group);
                    }
                }
            }
        }
    }
}

fn flush(lit: &mut String, parts: &mut Vec<Part>) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

impl std::fmt::Display for Template {
    /// The template as it would be written (literals escaped).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.parts {
            match part {
                Part::Lit(s) => {
                    for c in s.chars() {
                        match c {
                            '$' | '{' | '}' => {
                                f.write_char(c)?;
                                f.write_char(c)?;
                            }
                            c => f.write_char(c)?,
                        }
                    }
                }
                Part::Group(n) => write!(f, "${n}")?,
                Part::Field(field) => write!(f, "{{{}}}", field.name())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch() -> Channel {
        Channel {
            name: "BBC One +1".into(),
            attrs: vec![("catchup-days".into(), "7".into())],
            ..Default::default()
        }
    }

    #[test]
    fn fields_literals_and_escapes() {
        let t = Template::parse("{channel_name} [{catchup-days}] $$5 {{x}} US$ 1").unwrap();
        assert_eq!(t.render(&ch(), None), "BBC One +1 [7] $5 {x} US$ 1");
        assert_eq!(t.max_group(), 0);
        assert_eq!(Template::parse("{tvg_id}").unwrap().render(&ch(), None), "");
    }

    #[test]
    fn groups() {
        let re = regex::Regex::new(r"^(.+) \+(\d)(x)?$").unwrap();
        let c = ch();
        let caps = re.captures(&c.name).unwrap();
        let t = Template::parse("$1|$2|$3").unwrap();
        assert_eq!(t.max_group(), 3);
        assert_eq!(t.render(&c, Some(&caps as &dyn Groups)), "BBC One|1|");
    }

    #[test]
    fn errors() {
        assert_eq!(Template::parse("ab{tvg_id").unwrap_err().offset, 2);
        assert_eq!(Template::parse("ab}").unwrap_err().offset, 2);
        assert_eq!(Template::parse("x$0").unwrap_err().offset, 1);
        assert_eq!(Template::parse("{group_titel}").unwrap_err().offset, 1);
    }

    #[test]
    fn display_round_trips() {
        for text in ["a$$b{{c}}", "$1 {tvg_id} x", "{catchup-days}$2"] {
            let t = Template::parse(text).unwrap();
            assert_eq!(Template::parse(&t.to_string()).unwrap(), t);
        }
    }
}
