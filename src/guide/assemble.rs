//! The guide of one proxy: for each playlist channel matched to a guide id, the channel and
//! programmes of the first guide source (in the proxy's `epg` order) that has programmes for
//! it, shifted by that source's `shift`, kept when they overlap the `epg_days` window, in start
//! order without exact duplicates, cleaned to the DTD, and written channel by channel from the
//! store: memory holds one programme at a time, not the guide. A programme that is already
//! valid is written from its stored bytes ([`super::direct`]); only others become a tree.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::Connection;

use super::dtd::{self, Dropped};
use super::matching::{GuideIndex, GuideSource};
use super::store;
use crate::config::ProxyDef;
use crate::logos::LogoMap;
use crate::output::Written;
use crate::output::xmltv::{GuideFile, XmltvWriter};
use crate::parse::xmltv::tree::{Element, Node};

/// A playlist channel that matched a guide channel, in playlist order. Its `tvg-id` in the
/// written playlist must be `guide_id` (the guide's `channel@id`), so both files agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideEntry {
    pub guide_id: String,
    /// The playlist's channel name: the `display-name` when the guide declares none.
    pub name: String,
    /// The playlist's `tvg-logo`: the `icon` when the guide channel has none.
    pub logo: Option<String>,
}

/// How to assemble a proxy's guide.
#[derive(Debug, Clone)]
pub struct GuideOptions {
    /// Days kept before and after `now`.
    pub past_days: u64,
    pub future_days: u64,
    /// What is kept of what the DTD does not declare (`xmltv_keep_unknown`, `xmltv_keep`).
    pub keep: dtd::Keep,
    /// The build's clock, UTC epoch seconds (a parameter so tests do not depend on it).
    pub now: i64,
    /// Placeholder channels and programmes written after the guide's own (`epg_placeholder`).
    pub placeholders: Option<std::sync::Arc<super::placeholder::Placeholders>>,
}

impl GuideOptions {
    pub fn for_proxy(proxy: &ProxyDef, now: i64) -> GuideOptions {
        GuideOptions {
            past_days: proxy.epg_days.past,
            future_days: proxy.epg_days.future,
            keep: dtd::Keep {
                all: proxy.xmltv_keep_unknown,
                names: proxy.xmltv_keep.clone(),
            },
            now,
            placeholders: None,
        }
    }

    /// `[now - past, now + future)` in UTC epoch seconds.
    fn window(&self) -> (i64, i64) {
        let day = 86_400i64;
        let past = i64::try_from(self.past_days).unwrap_or(i64::MAX / day);
        let future = i64::try_from(self.future_days).unwrap_or(i64::MAX / day);
        (
            self.now.saturating_sub(past.saturating_mul(day)),
            self.now.saturating_add(future.saturating_mul(day)),
        )
    }
}

/// What a written guide holds, for the report.
#[derive(Debug, Default)]
pub struct GuideStats {
    pub channels: u64,
    pub programmes: u64,
    /// Exact duplicate programmes removed.
    pub duplicates: u64,
    /// Undeclared (or invalid) elements and attributes dropped, by name.
    pub dropped: Dropped,
    /// `None` when written to a caller's sink (`write_guide`).
    pub written: Option<Written>,
}

/// Assemble the guide of `entries` and write it atomically to `dest` (gzip when it ends in
/// `.gz`), with permissions `mode`.
pub fn write_proxy_guide(
    conn: &Connection,
    index: &GuideIndex,
    entries: &[GuideEntry],
    options: &GuideOptions,
    dest: &Path,
    mode: u32,
) -> Result<GuideStats> {
    write_proxy_guide_with_icons(conn, index, entries, options, &LogoMap::new(), dest, mode)
}

/// [`write_proxy_guide`] with every `<icon src>` found in `icons` replaced by its value: the
/// prefetched logos' `base_url` addresses (`crate::logos`).
pub fn write_proxy_guide_with_icons(
    conn: &Connection,
    index: &GuideIndex,
    entries: &[GuideEntry],
    options: &GuideOptions,
    icons: &LogoMap,
    dest: &Path,
    mode: u32,
) -> Result<GuideStats> {
    let file = GuideFile::create(dest, mode)?;
    let (mut stats, file) = write_guide_with_icons(conn, index, entries, options, icons, file)
        .with_context(|| format!("cannot write guide {}", dest.display()))?;
    stats.written = Some(file.commit()?);
    Ok(stats)
}

/// Assemble and write to any sink (`io::sink()` for a dry run); returns the sink.
pub fn write_guide<W: Write>(
    conn: &Connection,
    index: &GuideIndex,
    entries: &[GuideEntry],
    options: &GuideOptions,
    out: W,
) -> Result<(GuideStats, W)> {
    write_guide_with_icons(conn, index, entries, options, &LogoMap::new(), out)
}

/// [`write_guide`] with `<icon src>` replaced as in [`write_proxy_guide_with_icons`].
pub fn write_guide_with_icons<W: Write>(
    conn: &Connection,
    index: &GuideIndex,
    entries: &[GuideEntry],
    options: &GuideOptions,
    icons: &LogoMap,
    out: W,
) -> Result<(GuideStats, W)> {
    let generator = format!("lineup {}", env!("CARGO_PKG_VERSION"));
    let mut writer = XmltvWriter::start(out, &[("generator-info-name", generator.as_str())])?;
    let mut stats = GuideStats::default();
    let mut seen = HashSet::new();
    // (entry, provider) of every channel written: one small record per channel.
    let mut chosen: Vec<(&GuideEntry, &GuideSource)> = Vec::new();
    for entry in entries {
        if !seen.insert(entry.guide_id.as_str()) {
            continue;
        }
        let Some(source) = index.provider(&entry.guide_id) else {
            continue;
        };
        let stored = store::channel(conn, &source.name, &entry.guide_id)?;
        let mut channel = match stored.and_then(|s| s.channel) {
            Some(c) => Element {
                name: "channel".into(),
                attrs: c.attrs,
                children: c.children,
            },
            None => Element::new("channel"),
        };
        complete_channel(&mut channel, entry);
        // After completing, so that an icon taken from the playlist is rewritten too.
        super::icons::rewrite_icons(&mut channel, icons);
        if let Err(missing) = dtd::clean(&mut channel, &options.keep, &mut stats.dropped) {
            // Only reachable through an unusable display-name: fall back to the playlist's.
            *stats
                .dropped
                .entry(format!("channel (no {missing})"))
                .or_insert(0) += 1;
            channel
                .children
                .insert(0, text_element("display-name", &entry.name));
        }
        writer.channel(&entry.guide_id, &channel.attrs, &channel.children)?;
        stats.channels += 1;
        chosen.push((entry, source));
    }

    if let Some(p) = &options.placeholders {
        p.write_channels(&mut writer, icons)?;
    }

    let (from, to) = options.window();
    // Reused across channels: the listing's parts and the last record written.
    let mut parts = Vec::new();
    let mut previous: Vec<u8> = Vec::new();
    // A programme written straight from its stored form (`direct`).
    let mut serialized: Vec<u8> = Vec::new();
    for (entry, source) in chosen {
        let shift = source.shift_ms / 1000;
        previous.clear();
        let mut first = true;
        store::each_record(
            conn,
            &source.name,
            &entry.guide_id,
            from.saturating_sub(shift),
            to.saturating_sub(shift),
            &mut parts,
            |r| {
                // Exact duplicates (same times and body) are adjacent.
                if !first && previous == r.raw {
                    stats.duplicates += 1;
                    return Ok::<_, anyhow::Error>(());
                }
                first = false;
                previous.clear();
                previous.extend_from_slice(r.raw);
                let start = r.start().shifted(shift);
                let stop = r.stop().map(|t| t.shifted(shift));
                serialized.clear();
                if let Some(split) = super::direct::programme(r.body(), &mut serialized) {
                    let (attrs, children) = serialized.split_at(split);
                    writer.programme_serialized(&entry.guide_id, start, stop, attrs, children)?;
                    stats.programmes += 1;
                    return Ok(());
                }
                // Needs cleaning (or is corrupt): decode it into a tree.
                let (attrs, children) = crate::parse::xmltv::tree::decode(r.body())
                    .map_err(store::GuideStoreError::from)?;
                let mut programme = Element {
                    name: "programme".into(),
                    attrs,
                    children,
                };
                match dtd::clean(&mut programme, &options.keep, &mut stats.dropped) {
                    Ok(()) => {
                        writer.programme(
                            &entry.guide_id,
                            start,
                            stop,
                            &programme.attrs,
                            &programme.children,
                        )?;
                        stats.programmes += 1;
                    }
                    Err(missing) => {
                        *stats
                            .dropped
                            .entry(format!("programme (no {missing})"))
                            .or_insert(0) += 1;
                    }
                }
                Ok(())
            },
        )?;
    }
    if let Some(p) = &options.placeholders {
        stats.programmes += p.write_programmes(&mut writer, options.now, from, to)?;
    }
    let out = writer.finish()?;
    Ok((stats, out))
}

/// Give a channel what the playlist knows and the guide lacks: a display-name, an icon.
fn complete_channel(channel: &mut Element, entry: &GuideEntry) {
    if channel.elements("display-name").next().is_none() {
        channel
            .children
            .insert(0, text_element("display-name", &entry.name));
    }
    if let Some(logo) = entry.logo.as_deref().filter(|l| !l.trim().is_empty())
        && channel.elements("icon").next().is_none()
    {
        let mut icon = Element::new("icon");
        icon.attrs.push(("src".into(), logo.to_string()));
        channel.children.push(Node::Element(icon));
    }
}

fn text_element(name: &str, text: &str) -> Node {
    let mut e = Element::new(name);
    e.push_text(text);
    Node::Element(e)
}
