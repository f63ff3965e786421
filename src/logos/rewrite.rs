//! Putting the prefetched logos' new addresses into the outputs. The playlist is streamed, and
//! which logos it uses is only known once every channel has passed, so with prefetch on the
//! pipeline parks its channels in a [`ChannelSpool`] (an accumulator: in memory, or spilled to
//! a file under memory pressure) instead of the playlist; after the logos are fetched the spool is
//! replayed into the playlist writer with `tvg-logo` replaced. Going through the channel model
//! rather than editing text keeps the writer the only place that formats M3U. The guide's
//! `<icon src>` gets the same map when it is assembled ([`rewrite_icons`]); [`guide_icons`]
//! lists the icons the guide will carry, so that they are fetched too.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use rusqlite::Connection;

use crate::guide::store as guide_store;
use crate::guide::{GuideEntry, GuideIndex};
use crate::memory::spill::SpillArea;
use crate::memory::{Accumulator, Budget, Strategy};
use crate::model::{Channel, Field};
use crate::output::m3u::M3uWriter;
use crate::parse::xmltv::tree::{Element, Node};

/// Original logo URL -> the URL written instead (`base_url/FILE`).
pub type LogoMap = HashMap<String, String>;

/// Channels in output order, parked until the logo map is known (in memory while the memory
/// budget allows, else in a spill file: a hybrid [`Accumulator`]), with the distinct logo URLs
/// they use.
pub struct ChannelSpool {
    channels: Accumulator,
    /// Distinct `http(s)` `tvg-logo` values seen.
    pub logos: HashSet<String>,
}

impl ChannelSpool {
    pub fn new(budget: &Arc<Budget>, area: &Arc<SpillArea>) -> ChannelSpool {
        ChannelSpool {
            channels: Accumulator::new(Strategy::Hybrid, budget, area),
            logos: HashSet::new(),
        }
    }

    /// Park one channel and note its logo.
    pub fn write(&mut self, ch: Channel) -> Result<()> {
        let logo = ch.get(&Field::TvgLogo);
        if is_fetchable(logo) && !self.logos.contains(logo) {
            self.logos.insert(logo.to_string());
        }
        self.channels.push(ch)
    }

    /// Write every parked channel to `writer`, in order, with `tvg-logo` replaced by `map`.
    pub fn replay(self, map: &LogoMap, writer: &mut M3uWriter) -> Result<()> {
        for ch in self.channels.drain()? {
            let mut ch = ch?;
            if let Some(new) = map.get(ch.get(&Field::TvgLogo)) {
                ch.set(&Field::TvgLogo, new.clone());
            }
            writer.write(&ch)?;
        }
        Ok(())
    }
}

/// Logos lineup fetches: absolute `http://` and `https://` URLs. Anything else (empty, a
/// relative path, `data:`) is left as it is.
pub fn is_fetchable(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The `<icon src>` of every guide channel the guide of `entries` will hold. Mirrors the
/// selection of `guide::write_guide`: each guide id once, from the source that provides it.
pub fn guide_icons(
    conn: &Connection,
    index: &GuideIndex,
    entries: &[GuideEntry],
) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut icons = Vec::new();
    for entry in entries {
        if !seen.insert(entry.guide_id.as_str()) {
            continue;
        }
        let Some(source) = index.provider(&entry.guide_id) else {
            continue;
        };
        let stored = guide_store::channel(conn, &source.name, &entry.guide_id)?;
        if let Some(channel) = stored.and_then(|s| s.channel) {
            icons.extend(
                crate::parse::xmltv::tree::child_elements(&channel.children, "icon")
                    .filter_map(|icon| icon.attr("src"))
                    .filter(|src| is_fetchable(src))
                    .map(str::to_string),
            );
        }
    }
    Ok(icons)
}

/// Point every `<icon src>` of a guide channel that has a prefetched copy at that copy.
pub fn rewrite_icons(channel: &mut Element, map: &LogoMap) {
    if map.is_empty() {
        return;
    }
    for child in &mut channel.children {
        if let Node::Element(icon) = child
            && icon.name == "icon"
        {
            for (k, v) in &mut icon.attrs {
                if k == "src"
                    && let Some(new) = map.get(v.as_str())
                {
                    *v = new.clone();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_are_fetched() {
        assert!(is_fetchable("http://a/b.png"));
        assert!(is_fetchable("HTTPS://a/b.png"));
        assert!(!is_fetchable(""));
        assert!(!is_fetchable("logos/b.png"));
        assert!(!is_fetchable("data:image/png;base64,AAAA"));
        assert!(!is_fetchable("file:///etc/passwd"));
    }

    #[test]
    fn icons_are_rewritten_only_when_mapped() {
        let mut channel = Element::new("channel");
        for src in ["http://a/1.png", "http://a/2.png"] {
            let mut icon = Element::new("icon");
            icon.attrs.push(("src".into(), src.into()));
            channel.children.push(Node::Element(icon));
        }
        let map = LogoMap::from([("http://a/1.png".into(), "http://nas/x.png".into())]);
        rewrite_icons(&mut channel, &map);
        let srcs: Vec<&str> = channel
            .elements("icon")
            .filter_map(|i| i.attr("src"))
            .collect();
        assert_eq!(srcs, ["http://nas/x.png", "http://a/2.png"]);
    }
}
