//! Checks that serde cannot make: unique names, references between tables, one-of keys,
//! ranges, and features that are parsed but not built yet. Every problem is collected, so one
//! `lineup check` shows them all. Filter and mapping expressions are compiled by
//! `rules::validate`, which `cmd::load_config` passes in as a [`super::Check`]: configuration
//! does not depend on the rules engine.

use std::collections::HashSet;

use toml::Spanned;

use super::values::Name;
use super::{Config, ConfigError, ProxyDef, Sort, is_url};
use crate::model::Field;

pub(super) fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let file = &config.file;

    unique(
        config,
        "source",
        file.sources.iter().map(|s| &s.name),
        &mut errors,
    );
    unique(
        config,
        "epg",
        file.epgs.iter().map(|s| &s.name),
        &mut errors,
    );
    unique(
        config,
        "filter",
        file.filters.iter().map(|s| &s.name),
        &mut errors,
    );
    unique(
        config,
        "mapping",
        file.mappings.iter().map(|s| &s.name),
        &mut errors,
    );
    unique(
        config,
        "proxy",
        file.proxies.iter().map(|s| &s.name),
        &mut errors,
    );

    let buffer = &file.settings.buffer;
    let here = |message: String| ConfigError {
        path: config.path.clone(),
        line: None,
        column: None,
        message,
    };
    if buffer.buffer_size == 0 {
        errors.push(here(
            "settings.buffer.buffer_size must be at least 1".into(),
        ));
    }
    if buffer.chunk_size == 0 {
        errors.push(here("settings.buffer.chunk_size must be at least 1".into()));
    }
    if !(buffer.trigger_threshold > 0.0 && buffer.trigger_threshold <= 1.0) {
        errors.push(here(
            "settings.buffer.trigger_threshold must be in (0, 1]".into(),
        ));
    }
    if buffer.max_concurrent_sources == 0 {
        errors.push(here(
            "settings.buffer.max_concurrent_sources must be at least 1".into(),
        ));
    }
    let probe = &file.settings.probe;
    for (key, value) in [
        ("concurrency", probe.concurrency as u64),
        ("per_host", probe.per_host as u64),
        ("dead_after", u64::from(probe.dead_after)),
        ("timeout", probe.timeout.0.as_millis() as u64),
    ] {
        if value == 0 {
            errors.push(here(format!("settings.probe.{key} must be more than 0")));
        }
    }

    for source in &file.sources {
        let name = &source.name.get_ref().0;
        match (&source.m3u, &source.xtream) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => errors.push(config.error_at(
                source.name.span(),
                format!("source `{name}` needs exactly one of `m3u` or `xtream`"),
            )),
        }
        if let Some(m3u) = &source.m3u {
            crate::secrets::register_url(m3u.get_ref());
            if m3u.get_ref().is_empty() {
                errors
                    .push(config.error_at(m3u.span(), format!("source `{name}`: `m3u` is empty")));
            }
        }
        if let Some(x) = &source.xtream {
            let account = x.get_ref();
            crate::secrets::register(&account.username);
            crate::secrets::register(&account.password);
            if !is_url(&account.server) {
                errors.push(config.error_at(
                    x.span(),
                    format!("source `{name}`: xtream `server` must be an http:// or https:// URL"),
                ));
            }
            if !["ts", "m3u8"].contains(&account.output.as_str()) {
                errors.push(config.error_at(
                    x.span(),
                    format!("source `{name}`: xtream `output` must be \"ts\" or \"m3u8\""),
                ));
            }
        }
    }

    for epg in &file.epgs {
        let name = &epg.name.get_ref().0;
        match (&epg.xmltv, &epg.xtream) {
            (Some(x), None) => crate::secrets::register_url(x.get_ref()),
            (None, Some(source)) => match config.source(&source.get_ref().0) {
                Some(s) if s.xtream.is_some() => {}
                Some(_) => errors.push(config.error_at(
                    source.span(),
                    format!(
                        "epg `{name}`: source `{}` is not an Xtream source",
                        source.get_ref()
                    ),
                )),
                None => errors.push(config.error_at(
                    source.span(),
                    format!("epg `{name}`: no [[source]] named `{}`", source.get_ref()),
                )),
            },
            _ => errors.push(config.error_at(
                epg.name.span(),
                format!("epg `{name}` needs exactly one of `xmltv` or `xtream`"),
            )),
        }
    }

    for filter in &file.filters {
        if filter.include.is_some() == filter.exclude.is_some() {
            errors.push(config.error_at(
                filter.name.span(),
                format!(
                    "filter `{}` needs exactly one of `include` or `exclude`",
                    filter.name.get_ref()
                ),
            ));
        }
    }

    for mapping in &file.mappings {
        for key in mapping.set.keys().chain(mapping.default.keys()) {
            match Field::parse(key.get_ref()) {
                Ok(field) if !field.is_writable() => errors.push(config.error_at(
                    key.span(),
                    format!(
                        "mapping `{}`: `{}` is read-only",
                        mapping.name.get_ref(),
                        key.get_ref()
                    ),
                )),
                Ok(_) => {}
                Err(e) => errors.push(config.error_at(
                    key.span(),
                    format!("mapping `{}`: {e}", mapping.name.get_ref()),
                )),
            }
        }
    }

    if file.proxies.is_empty() {
        errors.push(here("no [[proxy]] defined: nothing to build".into()));
    }
    for proxy in &file.proxies {
        let pname = &proxy.name.get_ref().0;
        if proxy.sources.get_ref().is_empty() {
            errors.push(config.error_at(
                proxy.sources.span(),
                format!("proxy `{pname}`: `sources` is empty"),
            ));
        }
        references(
            config,
            pname,
            "source",
            &proxy.sources.get_ref()[..],
            |n| config.source(n).is_some(),
            &mut errors,
        );
        references(
            config,
            pname,
            "epg",
            &proxy.epg,
            |n| config.epg(n).is_some(),
            &mut errors,
        );
        references(
            config,
            pname,
            "filter",
            &proxy.filters,
            |n| config.filter(n).is_some(),
            &mut errors,
        );
        references(
            config,
            pname,
            "mapping",
            &proxy.mappings,
            |n| config.mapping(n).is_some(),
            &mut errors,
        );
        if proxy.m3u.get_ref().is_empty() {
            errors.push(
                config.error_at(proxy.m3u.span(), format!("proxy `{pname}`: `m3u` is empty")),
            );
        }
        if let Some(x) = &proxy.xmltv
            && proxy.epg.is_empty()
            && proxy.epg_placeholder.is_none()
        {
            errors.push(config.error_at(
                x.span(),
                format!(
                    "proxy `{pname}`: `xmltv` needs at least one guide in `epg` (or `epg_placeholder`)"
                ),
            ));
        }
        if let Sort::Fields(fields) = &proxy.sort {
            for f in fields {
                if let Err(e) = Field::parse(f.get_ref()) {
                    errors.push(config.error_at(f.span(), format!("proxy `{pname}`: sort: {e}")));
                }
            }
        }
        if let Some(n) = &proxy.numbering
            && n.start == 0
        {
            errors.push(here(format!(
                "proxy `{pname}`: numbering.start must be at least 1"
            )));
        }
        player_outputs(config, proxy, pname, &mut errors);
        if let Some(n) = &proxy.numbering
            && let Err(e) = crate::pipeline::number::sticky::parse_key(n)
        {
            errors.push(here(format!("proxy `{pname}`: {e}")));
        }
        if let Some(n) = &proxy.numbering {
            for key in n.sticky_only_keys() {
                errors.push(here(format!(
                    "proxy `{pname}`: numbering.{key} applies only to mode = \"sticky\""
                )));
            }
        }
    }

    output_paths(config, &mut errors);
    errors
}

/// Two proxies (or one proxy's playlist and guide) writing the same file: the last would
/// silently win. Paths compare as written under `output_dir`, `./` and doubled `/` ignored.
fn output_paths(config: &Config, errors: &mut Vec<ConfigError>) {
    let mut seen: Vec<(std::path::PathBuf, String)> = Vec::new();
    for proxy in &config.file.proxies {
        let pname = &proxy.name.get_ref().0;
        let outputs =
            std::iter::once(("m3u", &proxy.m3u)).chain(proxy.xmltv.iter().map(|x| ("xmltv", x)));
        for (key, path) in outputs {
            if path.get_ref().is_empty() {
                continue;
            }
            let normal: std::path::PathBuf = std::path::Path::new(path.get_ref().as_str())
                .components()
                .filter(|c| *c != std::path::Component::CurDir)
                .collect();
            let what = format!("proxy `{pname}` `{key}`");
            match seen.iter().find(|(p, _)| *p == normal) {
                Some((_, first)) => errors.push(config.error_at(
                    path.span(),
                    format!(
                        "{what} writes `{}`, as {first} does: each output needs its own path",
                        path.get_ref().as_str()
                    ),
                )),
                None => seen.push((normal, what)),
            }
        }
    }
}

fn unique<'a>(
    config: &Config,
    kind: &str,
    names: impl Iterator<Item = &'a Spanned<Name>>,
    errors: &mut Vec<ConfigError>,
) {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name.get_ref().0.clone()) {
            errors.push(config.error_at(
                name.span(),
                format!("duplicate {kind} name `{}`", name.get_ref()),
            ));
        }
    }
}

fn references(
    config: &Config,
    proxy: &str,
    kind: &str,
    names: &[Spanned<Name>],
    exists: impl Fn(&str) -> bool,
    errors: &mut Vec<ConfigError>,
) {
    for name in names {
        if !exists(&name.get_ref().0) {
            errors.push(config.error_at(
                name.span(),
                format!("proxy `{proxy}`: no [[{kind}]] named `{}`", name.get_ref()),
            ));
        }
    }
}

/// `hdhr` and `epg_placeholder` of a proxy.
fn player_outputs(config: &Config, proxy: &ProxyDef, pname: &str, errors: &mut Vec<ConfigError>) {
    if let Some(h) = &proxy.hdhr {
        if !is_url(h.base_url.get_ref()) {
            errors.push(config.error_at(
                h.base_url.span(),
                format!("proxy `{pname}`: hdhr.base_url must be an http:// or https:// URL"),
            ));
        }
        if *h.tuners.get_ref() == 0 {
            errors.push(config.error_at(
                h.tuners.span(),
                format!("proxy `{pname}`: hdhr.tuners must be at least 1"),
            ));
        }
        if h.dir.is_empty() {
            errors.push(config.error_at(
                h.base_url.span(),
                format!("proxy `{pname}`: hdhr.dir is empty"),
            ));
        }
    }
    if let Some(p) = &proxy.epg_placeholder {
        if proxy.xmltv.is_none() {
            errors.push(config.error_at(
                proxy.name.span(),
                format!("proxy `{pname}`: `epg_placeholder` needs `xmltv` (the guide it fills)"),
            ));
        }
        let secs = p.block.get_ref().0.as_secs();
        if !(60..=86_400).contains(&secs) || 86_400 % secs != 0 {
            errors.push(config.error_at(
                p.block.span(),
                format!(
                    "proxy `{pname}`: epg_placeholder.block must divide a day and be between 1m and 24h (e.g. \"30m\", \"1h\", \"6h\")"
                ),
            ));
        }
    }
}
