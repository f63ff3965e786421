//! Expressions compiled for evaluation: regexes built once, case-insensitive text operators on
//! ASCII needles done by byte comparison (no lowercased copies), and field values read by
//! reference. Evaluating never allocates, so a mapping whose `when` does not match costs no
//! allocation. A `matches` whose groups a mapping uses is run once, with captures, into
//! per-thread [`Locations`] reused across channels: no second pass, no allocation.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use regex::{CaptureLocations, Captures, Regex, RegexBuilder};

use super::ast::{Condition, Expr, Op};
use super::error::ExprError;
use super::parser::parse_with_offsets;
use crate::model::{Channel, Field};

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Matcher {
    root: Node,
    /// The `matches` conditions (not negated), by capture index.
    captures: Vec<Capture>,
}

/// A `matches` condition whose groups a template may use.
#[derive(Debug, Clone)]
struct Capture {
    field: Field,
    re: Regex,
    /// Process-wide id, to find this regex's buffers in [`Locations`].
    id: usize,
}

/// Ids for [`Capture`]: every compiled capturing regex gets its own.
static NEXT_CAPTURE_ID: AtomicUsize = AtomicUsize::new(0);

/// Capture buffers of the capturing regexes, by [`Capture::id`]: kept per thread and reused
/// for every channel, so capturing allocates only the first time a thread uses a regex.
#[derive(Debug, Default)]
pub struct Locations {
    slots: Vec<Option<CaptureLocations>>,
}

impl Locations {
    fn of(&mut self, capture: &Capture) -> &mut CaptureLocations {
        if self.slots.len() <= capture.id {
            self.slots.resize_with(capture.id + 1, || None);
        }
        self.slots[capture.id].get_or_insert_with(|| capture.re.capture_locations())
    }
}

/// The groups of one `matches` on one channel, for rendering templates (`$N`).
pub trait Groups {
    /// Group `n`, or `None` when it did not take part in the match.
    fn group(&self, n: usize) -> Option<&str>;
}

impl Groups for Captures<'_> {
    fn group(&self, n: usize) -> Option<&str> {
        self.get(n).map(|m| m.as_str())
    }
}

/// Groups as located by a capturing evaluation ([`Matcher::eval_capturing`]).
pub struct Located<'a> {
    hay: &'a str,
    locations: &'a CaptureLocations,
}

impl Groups for Located<'_> {
    fn group(&self, n: usize) -> Option<&str> {
        let (start, end) = self.locations.get(n)?;
        self.hay.get(start..end)
    }
}

#[derive(Debug, Clone)]
enum Node {
    Cond(Box<Cond>),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Debug, Clone)]
struct Cond {
    field: Field,
    negated: bool,
    test: Test,
    /// Index into `Matcher::captures` for a `matches` condition that is not negated.
    capture: Option<usize>,
}

#[derive(Debug, Clone)]
enum Test {
    /// Case-insensitive text operators with an ASCII needle, stored lowercased.
    AsciiFold(Op, Vec<u8>),
    /// Case-sensitive text operators.
    Exact(Op, String),
    /// `matches`, and case-insensitive text operators with a non-ASCII needle (Unicode case
    /// folding is the regex engine's job).
    Regex(Regex),
    Compare {
        op: Op,
        text: String,
        number: Option<f64>,
        case_sensitive: bool,
    },
}

/// A finite number, or nothing (`nan` and `inf` parse as f64 but are not numbers to users).
fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn build_regex(pattern: &str, case_sensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .build()
        .map_err(|e| format!("invalid regex: {e}"))
}

impl Test {
    fn compile(c: &Condition) -> Result<Test, String> {
        let value = &c.value;
        Ok(match c.op {
            Op::Matches => Test::Regex(build_regex(value, c.case_sensitive)?),
            op if op.is_comparison() => Test::Compare {
                op,
                text: value.clone(),
                number: number(value),
                case_sensitive: c.case_sensitive,
            },
            op if c.case_sensitive => Test::Exact(op, value.clone()),
            op if value.is_ascii() => Test::AsciiFold(op, value.to_ascii_lowercase().into_bytes()),
            op => {
                let lit = regex::escape(value);
                let pattern = match op {
                    Op::Equals => format!("^(?:{lit})$"),
                    Op::StartsWith => format!("^(?:{lit})"),
                    Op::EndsWith => format!("(?:{lit})$"),
                    _ => lit,
                };
                Test::Regex(build_regex(&pattern, false)?)
            }
        })
    }

    fn eval(&self, hay: &str) -> bool {
        match self {
            Test::AsciiFold(op, needle) => {
                let hay = hay.as_bytes();
                match op {
                    Op::Equals => hay.eq_ignore_ascii_case(needle),
                    Op::StartsWith => hay
                        .get(..needle.len())
                        .is_some_and(|h| h.eq_ignore_ascii_case(needle)),
                    Op::EndsWith => hay
                        .len()
                        .checked_sub(needle.len())
                        .is_some_and(|at| hay[at..].eq_ignore_ascii_case(needle)),
                    _ => contains_ascii_fold(hay, needle),
                }
            }
            Test::Exact(op, needle) => match op {
                Op::Equals => hay == needle,
                Op::StartsWith => hay.starts_with(needle.as_str()),
                Op::EndsWith => hay.ends_with(needle.as_str()),
                _ => hay.contains(needle.as_str()),
            },
            Test::Regex(re) => re.is_match(hay),
            Test::Compare {
                op,
                text,
                number: value_number,
                case_sensitive,
            } => {
                let ordering = match (value_number, number(hay)) {
                    (Some(b), Some(a)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
                    _ if *case_sensitive => hay.cmp(text.as_str()),
                    _ => hay
                        .chars()
                        .flat_map(char::to_lowercase)
                        .cmp(text.chars().flat_map(char::to_lowercase)),
                };
                match op {
                    Op::Gt => ordering == Ordering::Greater,
                    Op::Ge => ordering != Ordering::Less,
                    Op::Lt => ordering == Ordering::Less,
                    _ => ordering != Ordering::Greater,
                }
            }
        }
    }
}

/// Whether `hay` contains `needle` (ASCII, lowercased), ignoring ASCII case. memchr finds the
/// candidates for the first byte; channel fields are short, so this beats building a copy.
fn contains_ascii_fold(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let Some(last_start) = hay.len().checked_sub(needle.len()) else {
        return false;
    };
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), &hay[..=last_start])
        .any(|i| hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
}

impl Matcher {
    /// Parse and compile an expression.
    pub fn compile(text: &str) -> Result<Matcher, ExprError> {
        let (expr, offsets) = parse_with_offsets(text)?;
        Self::from_expr(&expr, &offsets)
    }

    /// Compile a parsed expression; `offsets` locate each condition's string for errors.
    pub fn from_expr(expr: &Expr, offsets: &[usize]) -> Result<Matcher, ExprError> {
        let mut captures = Vec::new();
        let mut next = 0;
        let root = build(expr, offsets, &mut next, &mut captures)?;
        Ok(Matcher { root, captures })
    }

    /// Whether the channel matches.
    pub fn is_match(&self, ch: &Channel) -> bool {
        self.eval_node(&self.root, ch, None).0
    }

    /// `None` when the channel does not match; else the capture index of the first `matches`
    /// condition, in the order written, that made the expression true (if any).
    pub fn eval(&self, ch: &Channel) -> Option<Option<usize>> {
        let (ok, capture) = self.eval_node(&self.root, ch, None);
        ok.then_some(capture)
    }

    /// [`Matcher::eval`], with the `matches` conditions run once with captures into
    /// `locations`; then [`Matcher::located`] gives the groups without running them again.
    pub fn eval_capturing(&self, ch: &Channel, locations: &mut Locations) -> Option<Option<usize>> {
        let (ok, capture) = self.eval_node(&self.root, ch, Some(locations));
        ok.then_some(capture)
    }

    /// The groups of capture index `index` found by [`Matcher::eval_capturing`] on `ch`.
    pub fn located<'a>(
        &self,
        index: usize,
        ch: &'a Channel,
        locations: &'a Locations,
    ) -> Option<Located<'a>> {
        let capture = self.captures.get(index)?;
        Some(Located {
            hay: ch.get(&capture.field),
            locations: locations.slots.get(capture.id)?.as_ref()?,
        })
    }

    /// The groups of capture index `index` (from [`Matcher::eval`]) on this channel, running
    /// its regex again (allocates; [`Matcher::eval_capturing`] does not).
    pub fn captures<'c>(&self, index: usize, ch: &'c Channel) -> Option<Captures<'c>> {
        let capture = self.captures.get(index)?;
        capture.re.captures(ch.get(&capture.field))
    }

    /// The largest group number any `matches` condition defines (0 without groups).
    pub fn max_group(&self) -> usize {
        self.captures
            .iter()
            .map(|c| c.re.captures_len() - 1)
            .max()
            .unwrap_or(0)
    }

    /// Short-circuit evaluation: the result, and the capture index of the first `matches`
    /// condition that contributed to a true result. With `locations`, capturing conditions
    /// record their groups there as they are tested.
    fn eval_node(
        &self,
        node: &Node,
        ch: &Channel,
        mut locations: Option<&mut Locations>,
    ) -> (bool, Option<usize>) {
        match node {
            Node::Cond(c) => {
                let hay = ch.get(&c.field);
                let ok = match (c.capture, locations) {
                    (Some(i), Some(locations)) => {
                        let capture = &self.captures[i];
                        let slots = locations.of(capture);
                        capture.re.captures_read(slots, hay).is_some()
                    }
                    _ => c.test.eval(hay) != c.negated,
                };
                (ok, if ok { c.capture } else { None })
            }
            Node::Not(inner) => (!self.eval_node(inner, ch, locations).0, None),
            Node::And(list) => {
                let mut first = None;
                for e in list {
                    let (ok, capture) = self.eval_node(e, ch, locations.as_deref_mut());
                    if !ok {
                        return (false, None);
                    }
                    first = first.or(capture);
                }
                (true, first)
            }
            Node::Or(list) => {
                for e in list {
                    let (ok, capture) = self.eval_node(e, ch, locations.as_deref_mut());
                    if ok {
                        return (true, capture);
                    }
                }
                (false, None)
            }
        }
    }
}

fn build(
    expr: &Expr,
    offsets: &[usize],
    next: &mut usize,
    captures: &mut Vec<Capture>,
) -> Result<Node, ExprError> {
    Ok(match expr {
        Expr::Cond(c) => {
            let offset = offsets.get(*next).copied().unwrap_or(0);
            *next += 1;
            let test = Test::compile(c).map_err(|m| ExprError::new(offset, m))?;
            let capture = match (&test, c.op, c.negated) {
                (Test::Regex(re), Op::Matches, false) => {
                    captures.push(Capture {
                        field: c.field.clone(),
                        re: re.clone(),
                        id: NEXT_CAPTURE_ID.fetch_add(1, AtomicOrdering::Relaxed),
                    });
                    Some(captures.len() - 1)
                }
                _ => None,
            };
            Node::Cond(Box::new(Cond {
                field: c.field.clone(),
                negated: c.negated,
                test,
                capture,
            }))
        }
        Expr::Not(e) => Node::Not(Box::new(build(e, offsets, next, captures)?)),
        Expr::And(list) => Node::And(
            list.iter()
                .map(|e| build(e, offsets, next, captures))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(list) => Node::Or(
            list.iter()
                .map(|e| build(e, offsets, next, captures))
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str, group: &str) -> Channel {
        Channel {
            name: name.into(),
            attrs: vec![
                ("group-title".into(), group.into()),
                ("tvg-chno".into(), "42".into()),
                ("catchup-days".into(), "7".into()),
            ],
            ..Default::default()
        }
    }

    fn is(expr: &str, c: &Channel) -> bool {
        Matcher::compile(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .is_match(c)
    }

    #[test]
    fn each_operator_its_negations_and_case() {
        let c = ch("UK: BBC One HD", "UK | Entertainment");
        // (operator, value, expected case-insensitive, expected case-sensitive)
        let table = [
            ("equals", "uk: bbc one hd", true, false),
            ("equals", "UK: BBC One HD", true, true),
            ("equals", "UK: BBC One", false, false),
            ("contains", "bbc", true, false),
            ("contains", "BBC", true, true),
            ("contains", "", true, true),
            ("contains", "ITV", false, false),
            ("starts_with", "uk:", true, false),
            ("starts_with", "UK:", true, true),
            ("starts_with", "UK: BBC One HD and more", false, false),
            ("ends_with", " hd", true, false),
            ("ends_with", "HD", true, true),
            ("ends_with", "SD", false, false),
            ("matches", r"^uk: .+ hd$", true, false),
            ("matches", r"^UK: \w+", true, true),
            ("matches", r"\d", false, false),
        ];
        for (op, value, insensitive, sensitive) in table {
            let base = format!("channel_name {op} \"{value}\"");
            assert_eq!(is(&base, &c), insensitive, "{base}");
            let cs = format!("channel_name case_sensitive {op} \"{value}\"");
            assert_eq!(is(&cs, &c), sensitive, "{cs}");
            for neg in ["not_", "not ", "NOT_", "Not "] {
                let e = format!("channel_name {neg}{op} \"{value}\"");
                assert_eq!(is(&e, &c), !insensitive, "{e}");
                let e = format!("channel_name case_sensitive {neg}{op} \"{value}\"");
                assert_eq!(is(&e, &c), !sensitive, "{e}");
            }
        }
    }

    #[test]
    fn non_ascii_needles_fold_unicode_case() {
        let c = ch("ÉCOLE TV", "Ünterhaltung");
        assert!(is(r#"channel_name starts_with "école""#, &c));
        assert!(is(r#"group_title equals "ünterhaltung""#, &c));
        assert!(is(r#"group_title contains "ÜNTER""#, &c));
        assert!(!is(r#"group_title case_sensitive contains "ünter""#, &c));
        assert!(is(r#"group_title ends_with "haltung""#, &c));
        assert!(is(
            r#"channel_name ends_with "é tv" OR channel_name ends_with "e tv""#,
            &c
        ));
    }

    #[test]
    fn comparisons_are_numeric_when_both_sides_are_numbers() {
        let c = ch("b", "x");
        assert!(is(r#"tvg_chno > "9""#, &c)); // 42 > 9 numerically, not as text
        assert!(is(r#"tvg_chno >= "42.0""#, &c));
        assert!(is(r#"tvg_chno <= "42""#, &c));
        assert!(!is(r#"tvg_chno < "42""#, &c));
        assert!(is(r#"catchup-days < "10""#, &c));
        // Text comparisons, case-insensitive unless case_sensitive.
        assert!(is(r#"channel_name > "A""#, &c));
        assert!(is(r#"channel_name < "C""#, &c));
        assert!(!is(r#"channel_name case_sensitive < "C""#, &c));
        assert!(is(r#"tvg_chno < "nan""#, &c)); // "nan" is text: "42" < "nan"
        // A missing attribute reads as "", which is not a number.
        assert!(is(r#"tvg-rec < "1""#, &c));
    }

    #[test]
    fn precedence_and_short_circuit() {
        let c = ch("a", "g");
        let t = r#"channel_name equals "a""#;
        let f = r#"channel_name equals "b""#;
        assert!(is(&format!("{t} OR {f} AND {f}"), &c));
        assert!(!is(&format!("({t} OR {f}) AND {f}"), &c));
        assert!(is(&format!("NOT {f} AND {t}"), &c));
        assert!(!is(&format!("NOT ({f} OR {t})"), &c));
    }

    #[test]
    fn captures_come_from_the_first_matches_that_made_it_true() {
        let c = ch("BBC One +1", "UK");
        let m = Matcher::compile(
            r#"(channel_name matches "^(x)" AND group_title equals "none") OR channel_name matches "^(.+) \+(\d)$""#,
        )
        .unwrap();
        let index = m.eval(&c).unwrap().unwrap();
        let caps = m.captures(index, &c).unwrap();
        assert_eq!(&caps[1], "BBC One");
        assert_eq!(&caps[2], "1");
        assert_eq!(m.max_group(), 2);
        // A negated match gives no groups.
        let m = Matcher::compile(r#"channel_name not_matches "^(x)""#).unwrap();
        assert_eq!(m.eval(&c), Some(None));
    }

    #[test]
    fn bad_regex_is_located_at_its_string() {
        let err = Matcher::compile(r#"tvg_id equals "a" OR channel_name matches "(""#).unwrap_err();
        assert_eq!(err.offset, 42);
        assert!(err.message.contains("invalid regex"));
    }
}
