//! `lineup check`: validate the configuration and every expression without touching the
//! network or the database, and print the plan: each proxy with its active sources in
//! priority order, its rules, sort and numbering, and where its outputs go.

use std::io::Write;

use crate::cli::ConfigArg;
use crate::config::{Numbering, NumberingMode, Sort, is_url};
use crate::exit::{Exit, Failure};
use crate::pipeline::number::sticky;

pub fn run(args: &ConfigArg) -> Result<Exit, Failure> {
    let config = super::load_config(args.config.as_deref())?;
    let mut out = String::new();
    let settings = &config.file.settings;
    out.push_str(&format!("config: {}\n", config.path.display()));
    out.push_str(&format!(
        "database: {}\n",
        config.resolve(&settings.database).display()
    ));
    out.push_str(&format!(
        "output_dir: {}\n",
        config.resolve(&settings.output_dir).display()
    ));
    for proxy in &config.file.proxies {
        out.push_str(&format!("proxy {}:\n", proxy.name.get_ref()));
        let mut priority = 0;
        for name in proxy.sources.get_ref() {
            let Some(source) = config.source(&name.get_ref().0) else {
                continue;
            };
            let location = match (&source.m3u, &source.xtream) {
                (Some(m), _) if is_url(m.get_ref()) => m.get_ref().to_string(),
                (Some(m), _) => config.resolve(m.get_ref()).display().to_string(),
                (None, Some(x)) => format!("xtream {}", x.get_ref().server.as_str()),
                (None, None) => String::new(),
            };
            if source.active {
                priority += 1;
                out.push_str(&format!(
                    "  {priority}. source {} ({location})\n",
                    name.get_ref()
                ));
            } else {
                out.push_str(&format!(
                    "  -  source {} (inactive, skipped)\n",
                    name.get_ref()
                ));
            }
        }
        let dest = config
            .resolve(&settings.output_dir)
            .join(proxy.m3u.get_ref().as_str());
        let names = |list: &[toml::Spanned<crate::config::values::Name>]| {
            list.iter()
                .map(|n| n.get_ref().0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !proxy.mappings.is_empty() {
            out.push_str(&format!("  mappings: {}\n", names(&proxy.mappings)));
        }
        if !proxy.filters.is_empty() {
            out.push_str(&format!("  filters: {}\n", names(&proxy.filters)));
        }
        for (i, name) in proxy.epg.iter().enumerate() {
            let Some(epg) = config.epg(name.get_ref()) else {
                continue;
            };
            let state = if epg.active {
                ""
            } else {
                " (inactive, skipped)"
            };
            out.push_str(&format!("  guide {}. {}{state}\n", i + 1, name.get_ref()));
        }
        let dedupe = match proxy.dedupe {
            crate::config::Dedupe::None => None,
            crate::config::Dedupe::StreamUrl => Some("stream_url"),
            crate::config::Dedupe::TvgId => Some("tvg_id"),
            crate::config::Dedupe::ChannelName => Some("channel_name"),
        };
        if let Some(key) = dedupe {
            let keeps = if proxy.probe {
                "the first alive channel in priority order, else the first"
            } else {
                "the first channel in priority order"
            };
            out.push_str(&format!("  dedupe: by {key}, keeping {keeps}\n"));
        }
        if proxy.probe {
            out.push_str(&format!(
                "  probe: stream URLs during builds, within {} per build\n",
                days(settings.probe.budget.0)
            ));
        }
        if let Some(line) = sort_plan(&proxy.sort) {
            out.push_str(&format!("  sort: {line}\n"));
        }
        if let Some(n) = &proxy.numbering {
            out.push_str(&format!("  numbering: {}\n", numbering_plan(n)));
        }
        out.push_str(&format!("  m3u -> {}\n", dest.display()));
        if let Some(x) = &proxy.xmltv {
            let dest = config
                .resolve(&settings.output_dir)
                .join(x.get_ref().as_str());
            out.push_str(&format!("  xmltv -> {}\n", dest.display()));
        }
        if let Some(p) = &proxy.epg_placeholder {
            out.push_str(&format!(
                "  placeholder guide: {} blocks for channels no guide covers\n",
                days(p.block.get_ref().0)
            ));
        }
        if let Some(h) = &proxy.hdhr {
            let dest = config.resolve(&settings.output_dir).join(h.dir.as_str());
            out.push_str(&format!(
                "  hdhr -> {}/ (served at {})\n",
                dest.display(),
                h.base_url.get_ref().as_str()
            ));
        }
    }
    warn_unreadable_files(&config);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(crate::secrets::mask(&out).as_bytes());
    Ok(Exit::Success)
}

/// A local source or guide that is missing or unreadable is not a configuration error (it may
/// appear before the build runs, and a build falls back on its cached copy) but is worth a
/// warning: without a cached copy the build exits 4.
fn warn_unreadable_files(config: &crate::config::Config) {
    let sources = config
        .file
        .sources
        .iter()
        .filter_map(|s| s.m3u.as_ref().map(|m| ("source", &s.name, m)));
    let guides = config
        .file
        .epgs
        .iter()
        .filter_map(|e| e.xmltv.as_ref().map(|x| ("epg", &e.name, x)));
    for (kind, name, location) in sources.chain(guides) {
        let location = location.get_ref().as_str();
        if is_url(location) {
            continue;
        }
        let path = config.resolve(location);
        let problem = match std::fs::File::open(&path) {
            Ok(_) if path.is_dir() => Some("is a directory".to_string()),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist".into()),
            Err(e) => Some(format!("cannot be read: {e}")),
        };
        if let Some(problem) = problem {
            crate::warn!("{kind} `{}`: {} {problem}", name.get_ref(), path.display());
        }
    }
}

/// How the playlist is ordered, when not in source order.
fn sort_plan(sort: &Sort) -> Option<String> {
    match sort {
        Sort::Source => None,
        Sort::Number => Some("by final channel number".into()),
        Sort::Fields(fields) => Some(format!(
            "by {}",
            fields
                .iter()
                .map(|f| f.get_ref().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// One line that says exactly how channels are numbered.
fn numbering_plan(n: &Numbering) -> String {
    let mut line = match n.mode {
        NumberingMode::Sequential => format!(
            "sequential from {}, in output order (own tvg-chno ignored)",
            n.start
        ),
        NumberingMode::Preserve => format!(
            "preserve: own tvg-chno kept (first in output order wins), the rest from {}, skipping every number a channel owns",
            n.start
        ),
        NumberingMode::Sticky => {
            let key = match &n.key {
                Some(k) => k.entries(),
                None => sticky::DEFAULT_KEY.iter().map(|s| s.to_string()).collect(),
            };
            format!(
                "sticky: a channel keeps its number while seen within {}; a new identity gets {}; identity: {}",
                days(n.forget_after()),
                if n.prefer_own() {
                    format!(
                        "its own tvg-chno when free, else the lowest number from its start ({}) that no identity holds and no channel of the output owns",
                        n.start
                    )
                } else {
                    format!(
                        "the lowest number from its start ({}) that no identity holds",
                        n.start
                    )
                },
                key.join(", else ")
            )
        }
    };
    if !n.groups.is_empty() {
        let groups: Vec<String> = n
            .groups
            .iter()
            .map(|(g, first)| format!("\"{g}\" from {first}"))
            .collect();
        line.push_str(&format!("; groups: {}", groups.join(", ")));
    }
    line
}

fn days(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}
