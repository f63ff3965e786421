//! Dedupe (SPEC section 3): keep the first channel, in priority order, for each value of the
//! proxy's key; channels whose key is empty are never duplicates of each other. When streams
//! were probed, an alive stream is preferred: for a key that has an alive channel anywhere
//! (found by a first pass, [`Deduper::prefer_alive`]), the first alive one is kept, else the
//! first.
//!
//! Memory stays bounded by the number of distinct keys, not their length: only a 128-bit
//! XXH3 hash of each key is stored (16 bytes plus table overhead). Two different keys collide
//! with probability about n²/2¹²⁹, below 10⁻²⁵ for a million channels, so a collision (which
//! would drop a channel as a false duplicate) is not a practical concern.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_128;

use crate::config::Dedupe;
use crate::model::{Channel, Field};

/// Decides, channel by channel in output-priority order, which to keep.
#[derive(Debug, Default)]
pub struct Deduper {
    key: Option<Field>,
    seen: HashSet<u128, BuildHasherDefault<PassThrough>>,
    /// Keys that have an alive channel: their other channels are duplicates.
    alive: Option<KeySet>,
    removed: u64,
}

/// A set of key hashes.
pub type KeySet = HashSet<u128, BuildHasherDefault<PassThrough>>;

impl Deduper {
    pub fn new(mode: Dedupe) -> Deduper {
        let key = match mode {
            Dedupe::None => None,
            Dedupe::StreamUrl => Some(Field::StreamUrl),
            Dedupe::TvgId => Some(Field::TvgId),
            Dedupe::ChannelName => Some(Field::ChannelName),
        };
        Deduper {
            key,
            ..Deduper::default()
        }
    }

    /// The key field, when the proxy dedupes.
    pub fn key(&self) -> Option<&Field> {
        self.key.as_ref()
    }

    /// Prefer alive streams: `alive` holds the hashes of the keys that have at least one
    /// alive channel (see [`Deduper::alive_key`]).
    pub fn prefer_alive(&mut self, alive: KeySet) {
        self.alive = Some(alive);
    }

    /// The hash of this channel's key if the channel is alive and its key not empty: what a
    /// first pass collects for [`Deduper::prefer_alive`].
    pub fn alive_key(&self, ch: &Channel) -> Option<u128> {
        let value = ch.get(self.key.as_ref()?);
        (ch.probe.status == "alive" && !value.is_empty()).then(|| xxh3_128(value.as_bytes()))
    }

    /// Whether to keep this channel: false when an earlier kept channel had the same,
    /// non-empty key, or when it is not alive and an alive channel has its key. Keys are
    /// compared exactly (case and spaces count).
    pub fn keep(&mut self, ch: &Channel) -> bool {
        let Some(field) = &self.key else {
            return true;
        };
        let value = ch.get(field);
        if value.is_empty() {
            return true;
        }
        let hash = xxh3_128(value.as_bytes());
        let beaten = ch.probe.status != "alive"
            && self
                .alive
                .as_ref()
                .is_some_and(|alive| alive.contains(&hash));
        if !beaten && self.seen.insert(hash) {
            return true;
        }
        self.removed += 1;
        false
    }

    /// Channels dropped so far as duplicates.
    pub fn removed(&self) -> u64 {
        self.removed
    }

    /// Approximate heap held by the table of seen keys, for memory accounting: hashbrown keeps
    /// 16 bytes per bucket plus one control byte, with buckets at most 7/8 full.
    pub fn heap_bytes(&self) -> usize {
        set_bytes(&self.seen) + self.alive.as_ref().map_or(0, set_bytes)
    }
}

/// Approximate heap of a key set (see [`Deduper::heap_bytes`]).
pub fn set_bytes(set: &KeySet) -> usize {
    let cap = set.capacity();
    if cap == 0 {
        return 0;
    }
    let buckets = (cap * 8 / 7).next_power_of_two();
    buckets * (std::mem::size_of::<u128>() + 1)
}

/// The keys are already uniform hashes: use their low 64 bits as the table hash instead of
/// hashing them again.
#[derive(Debug, Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached through `write_u128` below; fold anything else in for safety.
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(buf);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str, id: &str, url: &str) -> Channel {
        Channel {
            name: name.into(),
            attrs: vec![("tvg-id".into(), id.into())],
            url: url.into(),
            ..Default::default()
        }
    }

    fn kept(mode: Dedupe, list: &[Channel]) -> Vec<usize> {
        let mut d = Deduper::new(mode);
        (0..list.len()).filter(|&i| d.keep(&list[i])).collect()
    }

    #[test]
    fn each_mode_keeps_the_first() {
        let list = [
            ch("A", "a.uk", "http://1"),
            ch("A", "", "http://2"),
            ch("B", "a.uk", "http://1"),
            ch("a", "", "http://3"),
            ch("", "b.uk", "http://3"),
            ch("", "b.uk", ""),
            ch("C", "c.uk", ""),
        ];
        assert_eq!(kept(Dedupe::None, &list), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(kept(Dedupe::StreamUrl, &list), [0, 1, 3, 5, 6]);
        assert_eq!(kept(Dedupe::TvgId, &list), [0, 1, 3, 4, 6]);
        // Exact comparison: "a" is not "A"; empty names are never duplicates.
        assert_eq!(kept(Dedupe::ChannelName, &list), [0, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn alive_streams_win() {
        let mark = |mut c: Channel, status: &'static str| {
            c.probe.status = status;
            c
        };
        let list = [
            mark(ch("A", "a", "http://1"), "dead"),
            mark(ch("A2", "a", "http://2"), "alive"),
            mark(ch("A3", "a", "http://3"), "alive"),
            mark(ch("B", "b", "http://4"), "dead"),
            mark(ch("B2", "b", "http://5"), "unknown"),
            mark(ch("C", "c", "http://6"), ""),
            mark(ch("C2", "c", "http://7"), "alive"),
        ];
        let mut d = Deduper::new(Dedupe::TvgId);
        let alive: KeySet = list.iter().filter_map(|c| d.alive_key(c)).collect();
        d.prefer_alive(alive);
        let kept: Vec<usize> = (0..list.len()).filter(|&i| d.keep(&list[i])).collect();
        // a: the first alive; b: none alive, so the first; c: the alive one.
        assert_eq!(kept, [1, 3, 6]);
        assert_eq!(d.removed(), 4);
    }

    #[test]
    fn counts_and_memory() {
        let mut d = Deduper::new(Dedupe::TvgId);
        assert_eq!(d.heap_bytes(), 0);
        for i in 0..1000 {
            d.keep(&ch("x", &format!("id{}", i % 500), ""));
        }
        assert_eq!(d.removed(), 500);
        // 500 keys of 16 bytes: well under 64 KiB whatever the key lengths were.
        assert!(d.heap_bytes() >= 500 * 16 && d.heap_bytes() < 64 * 1024);
    }
}
