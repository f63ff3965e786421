//! Guides (XMLTV) for a proxy: read by `parse::xmltv`, stored per source by [`store`], matched
//! to playlist channels ([`matching`], with names reduced by [`normalize`]), assembled with
//! priority, shift and window and written valid against the DTD ([`assemble`], [`dtd`]).
//!
//! Wiring into a build: ingest each guide source with [`store::ingest_file`]; per proxy,
//! [`GuideIndex::build`] with [`GuideSource::for_proxy`], [`GuideIndex::match_channel`] for
//! every playlist channel (write the returned `guide_id` as its `tvg-id`), then
//! [`write_proxy_guide`] with the matched channels in playlist order.

pub mod assemble;
mod direct;
pub mod dtd;
pub mod icons;
pub mod matching;
pub mod normalize;
pub mod placeholder;
pub mod time;

// The guide tables live with the rest of the database, in src/store/guide.rs.
pub use crate::store::guide as store;

pub use assemble::{GuideEntry, GuideOptions, GuideStats, write_guide, write_proxy_guide};
pub use matching::{GuideIndex, GuideSource, Match, MatchedBy};

#[cfg(test)]
mod tests;
