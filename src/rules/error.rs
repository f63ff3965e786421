//! Errors of the expression and template languages, located by character offset, and their
//! rendering as configuration errors that show the expression with a caret under the problem.

use std::ops::Range;

use crate::config::{Config, ConfigError};

/// A problem in an expression or a template: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {offset})")]
pub struct ExprError {
    /// 0-based character (not byte) offset into the expression or template.
    pub offset: usize,
    pub message: String,
}

impl ExprError {
    pub fn new(offset: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            offset,
            message: message.into(),
        }
    }

    /// The configuration error for this problem in `text`, a value of the file at `span`.
    /// `what` names the rule, e.g. "filter `uk`" or "mapping `fix`: set.group_title".
    pub fn to_config_error(
        &self,
        config: &Config,
        span: Range<usize>,
        what: &str,
        text: &str,
    ) -> ConfigError {
        let raw = config.text.get(span.start..span.end).unwrap_or("");
        let offset = raw_offset(raw, self.offset);
        config.error_in_string(span, offset, self.render(what, text))
    }

    /// `what: message`, then the text and a caret under the offending character. The text is
    /// shown on one line (line breaks as spaces) so that the caret lines up.
    pub fn render(&self, what: &str, text: &str) -> String {
        let shown: String = text
            .chars()
            .map(|c| {
                if c == '\n' || c == '\r' || c == '\t' {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let offset = self.offset.min(shown.chars().count());
        format!(
            "{what}: {}\n    {shown}\n    {}^",
            self.message,
            " ".repeat(offset)
        )
    }
}

/// The offset, in characters of the file, of the `offset`-th character of a TOML string value
/// written as `raw` (quotes included). Only basic strings (`"..."`) differ: their escapes
/// (`\"`, `\\`, `\uXXXX`) take more characters in the file than in the value, and users
/// writing expressions in them have many `\"`.
fn raw_offset(raw: &str, offset: usize) -> usize {
    if !raw.starts_with('"') || raw.starts_with("\"\"\"") {
        return offset;
    }
    let mut chars = raw[1..].chars();
    let mut used = 0;
    for _ in 0..offset {
        let step = match chars.next() {
            Some('\\') => match chars.next() {
                Some('u') => 6,
                Some('U') => 10,
                _ => 2,
            },
            Some(_) => 1,
            None => break,
        };
        for _ in 2..step.max(2) {
            chars.next();
        }
        used += step;
    }
    used
}

#[cfg(test)]
mod tests {
    use super::raw_offset;

    #[test]
    fn offsets_in_basic_strings_skip_escapes() {
        assert_eq!(raw_offset("'a \\\" b'", 4), 4);
        // value: a "b" c   file: "a \"b\" c"
        assert_eq!(raw_offset("\"a \\\"b\\\" c\"", 6), 8);
        assert_eq!(raw_offset("\"\\u00e9x\"", 1), 6);
    }
}
