//! Placeholder ("dummy") guide data (proxy `epg_placeholder = { block = "1h", title = "..." }`):
//! Plex and Jellyfin hide or grey out channels without guide data, so every playlist channel
//! that no guide covers gets a guide channel of its own and programme blocks of `block` length
//! covering the `epg_days` window, aligned to multiples of the block in UTC (a `1h` block starts
//! on the hour, a `6h` one at 00, 06, 12 and 18 UTC).
//!
//! The guide channel's id is the channel's own `tvg-id`, or, without one, an id made from its
//! name ([`generated_id`]: the same name gives the same id in every build) that is written back
//! as its `tvg-id` so that playlist and guide agree. What is held is one small record per
//! placeholder channel; the programmes are generated while they are written.

use std::collections::HashSet;
use std::io::{self, Write};

use super::time::XmltvTime;
use crate::config::EpgPlaceholder;
use crate::logos::LogoMap;
use crate::model::{Channel, Field};
use crate::output::xmltv::XmltvWriter;
use crate::parse::xmltv::tree::{Element, Node};

/// The most days of placeholder programmes before and after the build's clock, whatever
/// `epg_days` says: a wide window (kept for the real guide's old programmes) would otherwise
/// mean hundreds of thousands of empty blocks per channel.
pub const MAX_DAYS: i64 = 31;

/// One playlist channel that gets placeholder data.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    id: String,
    name: String,
    group: String,
    logo: Option<String>,
}

/// The placeholder channels of one proxy, collected in playlist order.
#[derive(Debug, Clone)]
pub struct Placeholders {
    block: i64,
    title: String,
    entries: Vec<Entry>,
    ids: HashSet<String>,
}

impl Placeholders {
    pub fn new(config: &EpgPlaceholder) -> Placeholders {
        Placeholders {
            block: i64::try_from(config.block.get_ref().0.as_secs())
                .unwrap_or(3600)
                .max(60),
            title: config.title.clone(),
            entries: Vec::new(),
            ids: HashSet::new(),
        }
    }

    /// A channel no guide matched: give it a guide id (written as its `tvg-id` when it had
    /// none) and remember it, once per id.
    pub fn add(&mut self, ch: &mut Channel) {
        let own = ch.get(&Field::TvgId).trim();
        let id = if own.is_empty() {
            let id = generated_id(&ch.name);
            ch.set(&Field::TvgId, id.clone());
            id
        } else {
            own.to_string()
        };
        if !self.ids.insert(id.clone()) {
            return;
        }
        let logo = ch.get(&Field::TvgLogo).trim();
        self.entries.push(Entry {
            id,
            name: ch.name.clone(),
            group: ch.get(&Field::GroupTitle).to_string(),
            logo: (!logo.is_empty()).then(|| logo.to_string()),
        });
    }

    /// How many placeholder channels there are.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write the `<channel>` elements (after the guide's own channels).
    pub fn write_channels<W: Write>(
        &self,
        writer: &mut XmltvWriter<W>,
        icons: &LogoMap,
    ) -> io::Result<()> {
        for e in &self.entries {
            let mut channel = Element::new("channel");
            channel.children.push(text_element("display-name", &e.name));
            if let Some(logo) = &e.logo {
                let mut icon = Element::new("icon");
                icon.attrs.push(("src".into(), logo.clone()));
                channel.children.push(Node::Element(icon));
            }
            super::icons::rewrite_icons(&mut channel, icons);
            writer.channel(&e.id, &channel.attrs, &channel.children)?;
        }
        Ok(())
    }

    /// Write the programme blocks covering `[from, to)` (UTC epoch seconds, the `epg_days`
    /// window around `now`, at most [`MAX_DAYS`] on either side) for every channel. Returns
    /// how many were written.
    pub fn write_programmes<W: Write>(
        &self,
        writer: &mut XmltvWriter<W>,
        now: i64,
        from: i64,
        to: i64,
    ) -> io::Result<u64> {
        let from = from.max(now.saturating_sub(MAX_DAYS * 86_400));
        let to = to.min(now.saturating_add(MAX_DAYS * 86_400));
        let first = from.div_euclid(self.block) * self.block;
        let mut written = 0;
        for e in &self.entries {
            let title = [text_element("title", &self.title_for(e))];
            let mut start = first;
            while start < to {
                let stop = start + self.block;
                writer.programme(&e.id, utc(start), Some(utc(stop)), &[], &title)?;
                written += 1;
                start = stop;
            }
        }
        Ok(written)
    }

    /// The title template with `{channel_name}`, `{tvg_id}` and `{group_title}` filled in.
    fn title_for(&self, e: &Entry) -> String {
        self.title
            .replace("{channel_name}", &e.name)
            .replace("{tvg_id}", &e.id)
            .replace("{group_title}", &e.group)
    }
}

fn utc(at: i64) -> XmltvTime {
    XmltvTime { utc: at, offset: 0 }
}

fn text_element(name: &str, text: &str) -> Node {
    let mut e = Element::new(name);
    e.push_text(text);
    Node::Element(e)
}

/// The guide id of a channel without `tvg-id`: its name in lower case, ASCII letters and
/// digits kept, runs of anything else as one `-`, plus `.placeholder` (so it never equals a
/// real guide's id by accident). XMLTV tools accept only such ids (`tv_validate_file` rejects
/// `café.placeholder`), so a name with other letters (`Télé 5`) also gets six hex digits of
/// its hash (`t-l-5-1a2b3c.placeholder`), keeping `Télé` and `Tele` apart.
pub fn generated_id(name: &str) -> String {
    let mut slug = String::with_capacity(name.len() + 20);
    let mut lossy = false;
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
            continue;
        }
        lossy |= c.is_alphanumeric();
        if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if lossy {
        let hash = xxhash_rust::xxh3::xxh3_64(name.trim().as_bytes());
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&format!("{:06x}", hash & 0xff_ffff));
    }
    if slug.is_empty() {
        slug.push_str("channel");
    }
    slug.push_str(".placeholder");
    slug
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::DurationValue;

    fn placeholders(block: u64) -> Placeholders {
        Placeholders::new(&EpgPlaceholder {
            block: toml::Spanned::new(0..0, DurationValue(std::time::Duration::from_secs(block))),
            title: "{channel_name} ({group_title})".into(),
        })
    }

    #[test]
    fn ids_blocks_and_titles() {
        assert_eq!(generated_id("  BBC One HD+ "), "bbc-one-hd.placeholder");
        let unicode = generated_id("Ünïcode Télé");
        assert!(unicode.starts_with("n-code-t-l-"), "{unicode}");
        assert!(unicode.is_ascii());
        assert_ne!(unicode, generated_id("Unicode Tele"));
        assert_eq!(generated_id("***"), "channel.placeholder");

        let mut p = placeholders(3600);
        let mut a = Channel {
            name: "Local One".into(),
            attrs: vec![("group-title".into(), "Local".into())],
            ..Default::default()
        };
        p.add(&mut a);
        assert_eq!(a.get(&Field::TvgId), "local-one.placeholder");
        let mut b = Channel {
            name: "Other".into(),
            attrs: vec![("tvg-id".into(), "own.id".into())],
            ..Default::default()
        };
        p.add(&mut b);
        p.add(&mut b.clone());
        assert_eq!(p.len(), 2);

        let mut out = XmltvWriter::start(Vec::new(), &[]).unwrap();
        // 10:30 to 13:00 UTC on 2024-03-01: blocks 10:00, 11:00, 12:00.
        let from = 1_709_289_000;
        let n = p
            .write_programmes(&mut out, from, from, from + 9000)
            .unwrap();
        assert_eq!(n, 6);
        let text = String::from_utf8(out.finish().unwrap()).unwrap();
        assert!(text.contains(
            "<programme start=\"20240301100000 +0000\" stop=\"20240301110000 +0000\" channel=\"local-one.placeholder\">"
        ), "{text}");
        assert!(text.contains("<title>Local One (Local)</title>"), "{text}");
        assert!(text.contains("stop=\"20240301130000 +0000\" channel=\"own.id\""));
    }
}
