//! A proxy guide's channel icons and the logo prefetch: which `<icon src>` the guide will
//! carry ([`guide_icons`], so that `crate::logos` fetches them too) and pointing them at the
//! prefetched copies when the guide is written ([`rewrite_icons`]). The guide uses the logos'
//! [`LogoMap`]; the logos know nothing of guides.

use std::collections::HashSet;

use anyhow::Result;
use rusqlite::Connection;

use super::matching::GuideIndex;
use super::{GuideEntry, store};
use crate::logos::{LogoMap, is_fetchable};
use crate::parse::xmltv::tree::{Element, Node};

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
        let stored = store::channel(conn, &source.name, &entry.guide_id)?;
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
