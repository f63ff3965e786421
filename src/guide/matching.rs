//! Matching playlist channels to guide channels, and choosing which guide source provides each
//! matched channel. Built once per proxy from the store; holds only ids and normalised names
//! (small, whatever the guides' size).
//!
//! - By id: `tvg-id` equals `channel@id` exactly; failing that, equals it ignoring ASCII case
//!   when exactly one guide id folds to it (providers write `BBC1.uk` and `bbc1.uk`).
//! - By name (`epg_match = "id_then_name"`, only when the id did not match): the channel name's
//!   [`normalize`](super::normalize::normalize)d key equals that of some `display-name`. A key
//!   that fits more than one guide id is ambiguous and matches nothing.
//! - Priority: a guide id is provided by the first source, in the proxy's `epg` order, that has
//!   programmes for it.

use std::collections::{BTreeSet, HashMap};

use rusqlite::Connection;

use super::normalize::normalize;
use super::store::{self, GuideStoreError};
use crate::config::{Config, EpgMatch, ProxyDef};

/// A guide source as a proxy uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideSource {
    /// The `[[epg]]` name, as stored.
    pub name: String,
    /// Added to every programme time (`shift`), in milliseconds.
    pub shift_ms: i64,
}

impl GuideSource {
    /// The active `epg` sources of `proxy`, in its priority order.
    pub fn for_proxy(config: &Config, proxy: &ProxyDef) -> Vec<GuideSource> {
        proxy
            .epg
            .iter()
            .filter_map(|name| config.epg(name.get_ref()))
            .filter(|def| def.active)
            .map(|def| GuideSource {
                name: def.name.get_ref().0.clone(),
                shift_ms: def.shift.0,
            })
            .collect()
    }
}

/// How a channel was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    Id,
    Name,
}

/// A playlist channel's guide channel. Write `guide_id` as the channel's `tvg-id` when it
/// differs (a name match, or an id match ignoring case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub guide_id: String,
    pub by: MatchedBy,
}

/// Guide ids and names of a proxy's guide sources.
#[derive(Debug, Default)]
pub struct GuideIndex {
    sources: Vec<GuideSource>,
    /// Guide id -> index in `sources` of the first source with programmes for it (`None`:
    /// declared somewhere, programmes nowhere).
    ids: HashMap<String, Option<usize>>,
    /// ASCII-lowercased id -> the ids that fold to it.
    folded: HashMap<String, BTreeSet<String>>,
    /// Normalised display-name -> the ids carrying it.
    names: HashMap<String, BTreeSet<String>>,
}

impl GuideIndex {
    /// Read the channels of `sources` (priority order) from the store.
    pub fn build(
        conn: &Connection,
        sources: Vec<GuideSource>,
    ) -> Result<GuideIndex, GuideStoreError> {
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let mut index = GuideIndex::default();
        store::for_each_channel(conn, &names, |c| {
            let at = sources.iter().position(|s| s.name == c.source);
            let provider = index.ids.entry(c.id.clone()).or_insert(None);
            if provider.is_none() && c.programmes > 0 {
                *provider = at;
            }
            index
                .folded
                .entry(c.id.to_ascii_lowercase())
                .or_default()
                .insert(c.id.clone());
            if let Some(channel) = &c.channel {
                for (_, name) in channel.display_names() {
                    let key = normalize(&name);
                    if !key.is_empty() {
                        index.names.entry(key).or_default().insert(c.id.clone());
                    }
                }
            }
            Ok(())
        })?;
        index.sources = sources;
        Ok(index)
    }

    pub fn sources(&self) -> &[GuideSource] {
        &self.sources
    }

    /// Number of distinct guide channel ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The source that provides guide id `id`: the first with programmes for it.
    pub fn provider(&self, id: &str) -> Option<&GuideSource> {
        self.ids
            .get(id)
            .copied()
            .flatten()
            .map(|i| &self.sources[i])
    }

    /// The guide channel of a playlist channel with `tvg_id` and `name`.
    pub fn match_channel(&self, tvg_id: &str, name: &str, mode: EpgMatch) -> Option<Match> {
        self.find(tvg_id, name, mode).map(|(id, by)| Match {
            guide_id: id.to_string(),
            by,
        })
    }

    /// [`GuideIndex::match_channel`] borrowing the guide id from the index: no allocation
    /// for a channel matched by its exact id (the guide stage matches a million channels).
    pub fn find(&self, tvg_id: &str, name: &str, mode: EpgMatch) -> Option<(&str, MatchedBy)> {
        let tvg_id = tvg_id.trim();
        if !tvg_id.is_empty() {
            if let Some((id, _)) = self.ids.get_key_value(tvg_id) {
                return Some((id.as_str(), MatchedBy::Id));
            }
            let folded = if tvg_id.bytes().any(|b| b.is_ascii_uppercase()) {
                self.folded.get(&tvg_id.to_ascii_lowercase())
            } else {
                self.folded.get(tvg_id)
            };
            if let Some(ids) = folded
                && ids.len() == 1
            {
                return Some((ids.first().expect("one").as_str(), MatchedBy::Id));
            }
        }
        if mode != EpgMatch::IdThenName {
            return None;
        }
        let key = normalize(name);
        match self.names.get(&key) {
            Some(ids) if !key.is_empty() && ids.len() == 1 => {
                Some((ids.first().expect("one").as_str(), MatchedBy::Name))
            }
            _ => None,
        }
    }
}
