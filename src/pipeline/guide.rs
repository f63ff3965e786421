//! The guide stage: matches every playlist channel, in output order, to a guide channel (by
//! `tvg_id`, then by normalised name with `id_then_name`), writes the guide's id into the
//! channel's `tvg-id` where it differs, and remembers the first channel (id, name, logo) of each
//! matched guide id so that the proxy's XMLTV guide can be written after the playlist. What it
//! holds grows with the guide's channels, not the playlist's, except with `epg_placeholder`:
//! then one small record per unmatched channel (`crate::guide::placeholder`).

use std::io::sink;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::Connection;
use serde::Serialize;

use crate::config::{Config, ProxyDef};
use crate::guide::assemble::{write_guide_with_icons, write_proxy_guide_with_icons};
use crate::guide::placeholder::Placeholders;
use crate::guide::{GuideEntry, GuideIndex, GuideOptions, GuideSource, MatchedBy};
use crate::logos::LogoMap;
use crate::model::{Channel, Field};
use crate::output::Written;

/// The first `<icon src>` of the guide channel `id` (from the guide that provides it).
/// A store error only costs the logo: the guide itself reports it when written.
fn guide_icon(conn: &Connection, index: &GuideIndex, id: &str) -> Option<String> {
    let source = index.provider(id)?;
    let stored = crate::guide::store::channel(conn, &source.name, id).ok()??;
    stored.channel?.children.iter().find_map(|node| match node {
        crate::parse::xmltv::tree::Node::Element(e) if e.name == "icon" => e
            .attr("src")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        _ => None,
    })
}

/// How many unmatched channel names the report lists.
const UNMATCHED_NAMES: usize = 100;

/// The guide part of a proxy's report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct GuideReport {
    pub matched_by_id: u64,
    pub matched_by_name: u64,
    pub unmatched: u64,
    /// The first unmatched channel names, so users can fix their mappings.
    pub unmatched_names: Vec<String>,
    /// Exact duplicate programmes removed.
    pub duplicates: u64,
    /// Elements and attributes the DTD does not declare, dropped, by name.
    pub dropped: std::collections::BTreeMap<String, u64>,
}

pub struct GuideStage {
    conn: Connection,
    index: GuideIndex,
    mode: crate::config::EpgMatch,
    /// The first playlist channel of each matched guide id, in output order: what the guide
    /// writer needs (it writes each id once, from its first channel). Bounded by the guide's
    /// channels, not the playlist's.
    entries: Vec<GuideEntry>,
    /// Guide ids already in `entries`, by their number in `index`.
    seen: Vec<bool>,
    /// Prefetched logos' new addresses for `<icon src>` (empty unless `logos.base_url`).
    icons: LogoMap,
    /// Unmatched channels that get placeholder data (`epg_placeholder`).
    placeholders: Option<Placeholders>,
    /// How many channels got placeholder data (kept when the list is handed to the writer).
    placeholder_channels: u64,
    /// `logos.from_guide`: a matched channel without `tvg-logo` takes its guide icon.
    logo_from_guide: bool,
    pub report: GuideReport,
}

impl GuideStage {
    /// The stage for `proxy`, or `None` when the proxy uses no guide (no active `epg` and no
    /// `epg_placeholder`).
    pub fn open(config: &Config, proxy: &ProxyDef, db: &Path) -> Result<Option<GuideStage>> {
        let sources = GuideSource::for_proxy(config, proxy);
        if sources.is_empty() && proxy.epg_placeholder.is_none() {
            return Ok(None);
        }
        let conn = crate::store::Store::open_reader(db)?;
        let index = GuideIndex::build(&conn, sources).context("cannot read the guides")?;
        Ok(Some(GuideStage {
            conn,
            index,
            mode: proxy.epg_match,
            entries: Vec::new(),
            seen: Vec::new(),
            icons: LogoMap::new(),
            placeholders: proxy.epg_placeholder.as_ref().map(Placeholders::new),
            placeholder_channels: 0,
            logo_from_guide: proxy.logos.as_ref().is_some_and(|l| l.from_guide),
            report: GuideReport::default(),
        }))
    }

    /// Match a chunk of channels (in output order). Matching them on the rayon pool was
    /// tried: with the default 100-channel chunks it gained nothing measurable (issue 13).
    pub fn visit_chunk(&mut self, chunk: &mut [Channel]) {
        let GuideStage {
            conn,
            index,
            mode,
            entries,
            seen,
            placeholders,
            logo_from_guide,
            report,
            ..
        } = self;
        for ch in chunk.iter_mut() {
            let Some(found) = index.find(ch.get(&Field::TvgId), &ch.name, *mode) else {
                report.unmatched += 1;
                if report.unmatched_names.len() < UNMATCHED_NAMES {
                    report.unmatched_names.push(ch.name.clone());
                }
                if let Some(p) = placeholders.as_mut() {
                    p.add(ch);
                }
                continue;
            };
            let guide_id = found.id;
            match found.by {
                MatchedBy::Id => report.matched_by_id += 1,
                MatchedBy::Name => report.matched_by_name += 1,
            }
            if guide_id != ch.get(&Field::TvgId) {
                ch.set(&Field::TvgId, guide_id.to_string());
            }
            if *logo_from_guide
                && ch.get(&Field::TvgLogo).trim().is_empty()
                && let Some(icon) = guide_icon(conn, index, guide_id)
            {
                ch.set(&Field::TvgLogo, icon);
            }
            if seen.is_empty() {
                seen.resize(index.len(), false);
            }
            if !std::mem::replace(&mut seen[found.number as usize], true) {
                let logo = ch.get(&Field::TvgLogo);
                entries.push(GuideEntry {
                    guide_id: guide_id.to_string(),
                    name: ch.name.clone(),
                    logo: (!logo.is_empty()).then(|| logo.to_string()),
                });
            }
        }
    }

    /// Channels given placeholder guide data (known after [`GuideStage::finish`]).
    pub fn placeholder_channels(&self) -> u64 {
        self.placeholder_channels
    }

    /// The icons the guide will carry, for logo prefetch (after every channel was visited).
    pub fn icon_urls(&self) -> Result<Vec<String>> {
        crate::guide::icons::guide_icons(&self.conn, &self.index, &self.entries)
    }

    /// Rewrite `<icon src>` with `icons` when the guide is written.
    pub fn set_icon_map(&mut self, icons: LogoMap) {
        self.icons = icons;
    }

    /// Write the guide to `dest` (or nowhere, for a dry run). Returns (channels, programmes,
    /// the file written).
    pub fn finish(
        &mut self,
        proxy: &ProxyDef,
        dest: Option<&Path>,
        now: i64,
        mode: u32,
    ) -> Result<(u64, u64, Option<Written>)> {
        let mut options = GuideOptions::for_proxy(proxy, now);
        if let Some(p) = self.placeholders.take() {
            self.placeholder_channels = p.len();
            options.placeholders = Some(std::sync::Arc::new(p));
        }
        let stats = match dest {
            Some(dest) => write_proxy_guide_with_icons(
                &self.conn,
                &self.index,
                &self.entries,
                &options,
                &self.icons,
                dest,
                mode,
            )?,
            None => {
                let (conn, index, entries) = (&self.conn, &self.index, &self.entries);
                write_guide_with_icons(conn, index, entries, &options, &self.icons, sink())?.0
            }
        };
        self.report.duplicates = stats.duplicates;
        self.report.dropped = stats.dropped;
        Ok((stats.channels, stats.programmes, stats.written))
    }
}
