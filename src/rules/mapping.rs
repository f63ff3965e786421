//! A compiled `[[mapping]]`: an optional `when` and the `set` and `default` templates.
//!
//! Semantics (SPEC section 3), precisely:
//! - a mapping applies to a channel when it has no `when` or its `when` matches;
//! - every template (of `set` and `default`) reads the channel as it was before this mapping;
//! - `set` writes its fields; `default` then writes a field only where it is empty after `set`
//!   (so `set = { group_title = "{tvg_name}" }` with `default = { group_title = "Other" }`
//!   gives "Other" to channels without a `tvg-name`);
//! - writing an attribute replaces it in place (attribute order is kept), or appends it;
//! - a field is only written when its value changes, and the mapping reports whether any did.

use std::collections::BTreeMap;

use toml::Spanned;

use super::error::ExprError;
use super::matcher::{Groups, Locations, Matcher};
use super::template::Template;
use crate::config::values::EnvString;
use crate::config::{Config, ConfigError, MappingDef};
use crate::model::{Channel, Field};

#[derive(Debug, Clone)]
pub struct Mapping {
    name: String,
    when: Option<Matcher>,
    set: Vec<(Field, Template)>,
    default: Vec<(Field, Template)>,
    /// Whether any template uses `$N`, so captures are needed.
    uses_groups: bool,
}

impl Mapping {
    /// Compile a mapping, collecting every problem in its expression and templates. Problems
    /// with its keys (unknown or read-only fields) are reported by configuration validation;
    /// here such keys are skipped silently when `report_keys` is false.
    pub fn compile(
        config: &Config,
        def: &MappingDef,
        report_keys: bool,
    ) -> Result<Mapping, Vec<ConfigError>> {
        let name = def.name.get_ref().0.clone();
        let mut errors = Vec::new();
        let when = def.when.as_ref().and_then(|w| {
            Matcher::compile(w.get_ref())
                .map_err(|e| {
                    let what = format!("mapping `{name}`: when");
                    errors.push(e.to_config_error(config, w.span(), &what, w.get_ref()));
                })
                .ok()
        });
        let groups = when.as_ref().map_or(0, Matcher::max_group);
        let mut list = |table: &str, defs: &Templates| {
            let ctx = Context {
                config,
                name: &name,
                table,
                groups,
                report_keys,
            };
            ctx.templates(defs, &mut errors)
        };
        let set = list("set", &def.set);
        let default = list("default", &def.default);
        if !errors.is_empty() {
            return Err(errors);
        }
        let uses_groups = set.iter().chain(&default).any(|(_, t)| t.max_group() > 0);
        Ok(Mapping {
            name,
            when,
            set,
            default,
            uses_groups,
        })
    }

    /// The mapping's name, as in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Apply to one channel; true when a field changed. A `when` whose groups the templates
    /// use is evaluated once, capturing into per-thread buffers; one that does not match
    /// costs no allocation and no write.
    pub fn apply(&self, ch: &mut Channel) -> bool {
        let Some(when) = &self.when else {
            return SCRATCH.with_borrow_mut(|scratch| self.write(ch, None, scratch));
        };
        if !self.uses_groups {
            return match when.eval(ch) {
                None => false,
                Some(_) => SCRATCH.with_borrow_mut(|scratch| self.write(ch, None, scratch)),
            };
        }
        SCRATCH.with_borrow_mut(
            |scratch| match when.eval_capturing(ch, &mut scratch.locations) {
                None => false,
                Some(capture) => self.write(ch, capture, scratch),
            },
        )
    }

    /// Render every template against the channel as it is, then write. Values are rendered
    /// into one reused buffer and copied into the fields' own buffers, so a mapping that
    /// rewrites existing fields allocates nothing (issue 4). `capture` is the index of the
    /// `matches` whose groups `$N` reads, as located in `scratch.locations`.
    fn write(&self, ch: &mut Channel, capture: Option<usize>, scratch: &mut Scratch) -> bool {
        let Scratch {
            buf,
            updates,
            locations,
        } = scratch;
        buf.clear();
        updates.clear();
        {
            let located = match (&self.when, capture) {
                (Some(when), Some(i)) if self.uses_groups => when.located(i, ch, locations),
                _ => None,
            };
            let groups = located.as_ref().map(|l| l as &dyn Groups);
            for (k, (_, t)) in self.set.iter().enumerate() {
                let start = buf.len();
                t.render_into(ch, groups, buf);
                updates.push((k, start, buf.len()));
            }
            for (k, (field, t)) in self.default.iter().enumerate() {
                let current = updates
                    .iter()
                    .rev()
                    .find(|&&(j, _, _)| self.field(j) == field)
                    .map_or(ch.get(field), |&(_, s, e)| &buf[s..e]);
                if current.is_empty() {
                    let start = buf.len();
                    t.render_into(ch, groups, buf);
                    updates.push((self.set.len() + k, start, buf.len()));
                }
            }
        }
        let mut changed = false;
        for &(j, s, e) in updates.iter() {
            let field = self.field(j);
            let value = &buf[s..e];
            if ch.get(field) != value {
                ch.set_str(field, value);
                changed = true;
            }
        }
        changed
    }

    /// The field of template `j`, counting `set` then `default`.
    fn field(&self, j: usize) -> &Field {
        match self.set.get(j) {
            Some((f, _)) => f,
            None => &self.default[j - self.set.len()].0,
        }
    }
}

/// Per-thread buffers for [`Mapping::apply`]: the rendered values, back to back, per value
/// (template index, start, end), and the capture buffers of every capturing regex.
#[derive(Default)]
struct Scratch {
    buf: String,
    updates: Vec<(usize, usize, usize)>,
    locations: Locations,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

type Templates = BTreeMap<Spanned<String>, Spanned<EnvString>>;

/// What compiling one table of templates needs to know.
struct Context<'a> {
    config: &'a Config,
    name: &'a str,
    table: &'a str,
    /// The most groups any `matches` condition of `when` has.
    groups: usize,
    report_keys: bool,
}

impl Context<'_> {
    fn templates(&self, defs: &Templates, errors: &mut Vec<ConfigError>) -> Vec<(Field, Template)> {
        let (config, name) = (self.config, self.name);
        let mut out = Vec::new();
        for (key, value) in defs {
            let field = match Field::parse(key.get_ref()) {
                Ok(f) if f.is_writable() => Some(f),
                Ok(_) if self.report_keys => {
                    errors.push(config.error_at(
                        key.span(),
                        format!("mapping `{name}`: `{}` is read-only", key.get_ref()),
                    ));
                    None
                }
                Err(e) if self.report_keys => {
                    errors.push(config.error_at(key.span(), format!("mapping `{name}`: {e}")));
                    None
                }
                _ => None,
            };
            let text = value.get_ref().as_str();
            let fail = |e: ExprError| {
                let what = format!("mapping `{name}`: {}.{}", self.table, key.get_ref());
                e.to_config_error(config, value.span(), &what, text)
            };
            match Template::parse(text) {
                Ok(t) if t.max_group() > self.groups => {
                    let n = t.max_group();
                    let at = text.find(&format!("${n}")).unwrap_or(0);
                    let message = if self.groups == 0 {
                        format!("`${n}` needs a `when` with a `matches` condition that has groups")
                    } else {
                        let plural = if self.groups == 1 { "" } else { "s" };
                        format!(
                            "`${n}`: the `matches` conditions of `when` have at most {} group{plural}",
                            self.groups
                        )
                    };
                    errors.push(fail(ExprError::new(text[..at].chars().count(), message)));
                }
                Ok(t) => out.extend(field.map(|f| (f, t))),
                Err(e) => errors.push(fail(e)),
            }
        }
        out
    }
}
