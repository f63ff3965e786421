//! Putting the prefetched logos' new addresses into the outputs. The playlist is streamed, and
//! which logos it uses is only known once every channel has passed, so with prefetch on the
//! pipeline parks its channels in a [`ChannelSpool`] (an accumulator: in memory, or spilled to
//! a file under memory pressure) instead of the playlist; after the logos are fetched the spool is
//! replayed into the playlist writer with `tvg-logo` replaced. Going through the channel model
//! rather than editing text keeps the writer the only place that formats M3U. The guide's
//! `<icon src>` gets the same map when it is assembled (`guide::icons`, which also lists the
//! icons the guide will carry, so that they are fetched too).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;

use crate::memory::spill::SpillArea;
use crate::memory::{Accumulator, Budget, Strategy};
use crate::model::{Channel, Field};
use crate::output::m3u::M3uWriter;

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
}
