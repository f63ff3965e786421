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

use std::collections::HashMap;

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

/// Guide ids and names of a proxy's guide sources. Every guide id gets a number (in the
/// order first met), so that lookups by name or folded id land on a number, not on a set of
/// strings, and callers can mark ids seen in a bit vector (issue 13: the guide stage looks up
/// a million channels, and each string compared was a cache miss).
#[derive(Debug, Default)]
pub struct GuideIndex {
    sources: Vec<GuideSource>,
    /// By number: the guide id and the index in `sources` of the first source with
    /// programmes for it (`None`: declared somewhere, programmes nowhere).
    channels: Vec<(String, Option<usize>)>,
    /// Guide id -> its number.
    ids: HashMap<String, u32>,
    /// ASCII-lowercased id -> the ids that fold to it.
    folded: HashMap<String, Hit>,
    /// Normalised display-name -> the ids carrying it.
    names: HashMap<String, Hit>,
}

/// The guide ids a key leads to: one (by number), or more than one (ambiguous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    One(u32),
    Many,
}

impl Hit {
    fn add(hit: Option<Hit>, number: u32) -> Hit {
        match hit {
            None => Hit::One(number),
            Some(Hit::One(n)) if n == number => Hit::One(n),
            Some(_) => Hit::Many,
        }
    }
}

/// A guide channel found for a playlist channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    /// The guide's `channel@id`.
    pub id: &'a str,
    /// Its number in the index: below [`GuideIndex::len`].
    pub number: u32,
    pub by: MatchedBy,
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
            let number = match index.ids.get(&c.id) {
                Some(&n) => n,
                None => {
                    let n = index.channels.len() as u32;
                    index.channels.push((c.id.clone(), None));
                    index.ids.insert(c.id.clone(), n);
                    n
                }
            };
            let provider = &mut index.channels[number as usize].1;
            if provider.is_none() && c.programmes > 0 {
                *provider = at;
            }
            let folded = index.folded.entry(c.id.to_ascii_lowercase());
            let hit = Hit::add(folded_get(&folded), number);
            folded.insert_entry(hit);
            if let Some(channel) = &c.channel {
                for (_, name) in channel.display_names() {
                    let key = normalize(&name);
                    if !key.is_empty() {
                        let entry = index.names.entry(key);
                        let hit = Hit::add(folded_get(&entry), number);
                        entry.insert_entry(hit);
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
        self.channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// The source that provides guide id `id`: the first with programmes for it.
    pub fn provider(&self, id: &str) -> Option<&GuideSource> {
        let &n = self.ids.get(id)?;
        self.channels[n as usize].1.map(|i| &self.sources[i])
    }

    /// The guide channel of a playlist channel with `tvg_id` and `name`.
    pub fn match_channel(&self, tvg_id: &str, name: &str, mode: EpgMatch) -> Option<Match> {
        self.find(tvg_id, name, mode).map(|f| Match {
            guide_id: f.id.to_string(),
            by: f.by,
        })
    }

    /// [`GuideIndex::match_channel`] borrowing the guide id from the index, with its number:
    /// no allocation for a channel matched by its exact id.
    pub fn find(&self, tvg_id: &str, name: &str, mode: EpgMatch) -> Option<Found<'_>> {
        let found = |number: u32, by| Found {
            id: &self.channels[number as usize].0,
            number,
            by,
        };
        let tvg_id = tvg_id.trim();
        if !tvg_id.is_empty() {
            if let Some(&n) = self.ids.get(tvg_id) {
                return Some(found(n, MatchedBy::Id));
            }
            let folded = if tvg_id.bytes().any(|b| b.is_ascii_uppercase()) {
                self.folded.get(&tvg_id.to_ascii_lowercase())
            } else {
                self.folded.get(tvg_id)
            };
            if let Some(&Hit::One(n)) = folded {
                return Some(found(n, MatchedBy::Id));
            }
        }
        if mode != EpgMatch::IdThenName {
            return None;
        }
        let key = normalize(name);
        match self.names.get(&key) {
            Some(&Hit::One(n)) if !key.is_empty() => Some(found(n, MatchedBy::Name)),
            _ => None,
        }
    }
}

fn folded_get(entry: &std::collections::hash_map::Entry<'_, String, Hit>) -> Option<Hit> {
    match entry {
        std::collections::hash_map::Entry::Occupied(o) => Some(*o.get()),
        std::collections::hash_map::Entry::Vacant(_) => None,
    }
}
