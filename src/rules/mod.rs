//! Filters, mappings, dedupe, sort and numbering (SPEC section 3).

use crate::config::{Config, ConfigError, Dedupe, Sort};

/// Check every rule a configuration uses. Until the rules engine lands, any use is reported as
/// not implemented.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for proxy in &config.file.proxies {
        let uses_rules = !proxy.filters.is_empty()
            || !proxy.mappings.is_empty()
            || proxy.dedupe != Dedupe::None
            || proxy.sort != Sort::Source
            || proxy.numbering.is_some();
        if uses_rules {
            errors.push(config.error_at(
                proxy.name.span(),
                "filters, mappings, dedupe, sort and numbering are not implemented yet",
            ));
        }
    }
    errors
}
