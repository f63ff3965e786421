//! The rules engine of SPEC section 3: the expression language (`lexer`, `parser`, `ast`),
//! its compiled form (`matcher`), mapping templates (`template`), compiled mappings
//! (`mapping`) and the per-proxy map-then-filter stage (`proxy`). Dedupe, sort and numbering
//! work on the mapped and filtered stream and live in `crate::pipeline`.

mod ast;
mod error;
mod lexer;
mod mapping;
mod matcher;
mod parser;
mod proxy;
mod template;

pub use ast::{Condition, Expr, Op};
pub use error::ExprError;
pub use mapping::Mapping;
pub use matcher::{Groups, Located, Locations, Matcher};
pub use parser::{MAX_DEPTH, parse};
pub use proxy::{Filter, ProxyRules, RuleStats, Verdict};
pub use template::Template;

use crate::config::{Config, ConfigError};

/// Compile every `[[filter]]` and `[[mapping]]` of the configuration (used by a proxy or not)
/// and check numbering groups, reporting every problem. Unknown or read-only mapping keys are
/// reported by `config::validate`, not here, so they are not reported twice. A
/// [`crate::config::Check`]: `cmd::load_config` runs it when loading the configuration.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for def in &config.file.filters {
        if def.include.is_some() != def.exclude.is_some()
            && let Err(e) = Filter::compile(config, def)
        {
            errors.push(e);
        }
    }
    for def in &config.file.mappings {
        if let Err(e) = Mapping::compile(config, def, false) {
            errors.extend(e);
        }
    }
    for proxy in &config.file.proxies {
        let Some(numbering) = &proxy.numbering else {
            continue;
        };
        for (group, first) in &numbering.groups {
            if *first == 0 {
                errors.push(config.error_at(
                    proxy.name.span(),
                    format!(
                        "proxy `{}`: numbering.groups.\"{group}\" must be at least 1",
                        proxy.name.get_ref()
                    ),
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
mod tests;
