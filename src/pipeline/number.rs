//! Channel numbering (`numbering = { start, mode, groups }`), applied to channels in output
//! order. Every assigned number is written as the channel's `tvg-chno`.
//!
//! - `sequential`: every channel gets the next free number of its counter.
//! - `preserve`: a channel whose own `tvg-chno` is a positive integer (ASCII digits, surrounding
//!   spaces ignored) keeps it, unless an earlier channel in the output already has that
//!   number; every other channel gets the next free number of its counter.
//! - Counters: a channel whose `group_title` is a key of `groups` (compared case-insensitively)
//!   uses that group's counter, which starts at the group's number; all others share one
//!   counter that starts at `start`.
//! - "Next free" means: the counter's current value, moved forward past every number already
//!   given to an earlier channel in the output (by any counter, or kept by `preserve`). So
//!   numbers are unique, and a counter that runs into another group's block skips over the
//!   numbers that block has used so far; it does not reserve numbers in advance.
//!
//! Memory: the set of numbers used so far (numbers only, nothing per channel), kept as a
//! bitset, so a million channels cost about 128 KiB.

use std::collections::HashMap;

use crate::config::{Numbering, NumberingMode};
use crate::model::{Channel, Field};

/// Assigns numbers to channels given to it in output order.
#[derive(Debug)]
pub struct Numberer {
    preserve: bool,
    /// Next candidate of the shared counter.
    next: u64,
    /// Next candidate per group, by lowercased group title.
    groups: HashMap<String, u64>,
    used: NumberSet,
}

impl Numberer {
    pub fn new(numbering: &Numbering) -> Numberer {
        Numberer {
            preserve: numbering.mode == NumberingMode::Preserve,
            next: numbering.start.max(1),
            groups: numbering
                .groups
                .iter()
                .map(|(group, first)| (group.to_lowercase(), (*first).max(1)))
                .collect(),
            used: NumberSet::default(),
        }
    }

    /// Number one channel (the next in output order) and return its number.
    pub fn assign(&mut self, ch: &mut Channel) -> u64 {
        if self.preserve
            && let Some(own) = own_number(ch.get(&Field::TvgChno))
            && self.used.insert(own)
        {
            // Normalise spelling (" 7" -> "7") only when needed, to keep other bytes as read.
            let canonical = own.to_string();
            if ch.get(&Field::TvgChno) != canonical {
                ch.set(&Field::TvgChno, canonical);
            }
            return own;
        }
        let group = ch.get(&Field::GroupTitle);
        let own_counter = if self.groups.is_empty() || group.is_empty() {
            None
        } else {
            self.groups.get_mut(&group.to_lowercase())
        };
        let counter = own_counter.unwrap_or(&mut self.next);
        while !self.used.insert(*counter) {
            *counter += 1;
        }
        let number = *counter;
        *counter += 1;
        ch.set(&Field::TvgChno, number.to_string());
        number
    }
}

/// A channel's own number, if it is a positive integer.
fn own_number(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().filter(|n| *n > 0)
}

/// A growable bitset of used numbers. Numbers come from configured starts plus channel
/// counts, or from playlists (`preserve`); numbers beyond `SPARSE_FROM` go to a `BTreeSet`
/// so that a playlist with `tvg-chno="4000000000"` cannot make the bitset huge.
#[derive(Debug, Default)]
struct NumberSet {
    bits: Vec<u64>,
    sparse: std::collections::BTreeSet<u64>,
}

/// Numbers below this live in the bitset (at most 2 MiB of bits).
const SPARSE_FROM: u64 = 1 << 24;

impl NumberSet {
    /// Add `n`; false when it was already there.
    fn insert(&mut self, n: u64) -> bool {
        if n >= SPARSE_FROM {
            return self.sparse.insert(n);
        }
        let (word, bit) = ((n / 64) as usize, n % 64);
        if word >= self.bits.len() {
            self.bits.resize((word + 1).next_power_of_two(), 0);
        }
        let mask = 1u64 << bit;
        let fresh = self.bits[word] & mask == 0;
        self.bits[word] |= mask;
        fresh
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ch(group: &str, chno: &str) -> Channel {
        let mut c = Channel {
            attrs: vec![("group-title".into(), group.into())],
            ..Default::default()
        };
        if !chno.is_empty() {
            c.set_attr("tvg-chno", chno);
        }
        c
    }

    fn numbering(start: u64, mode: NumberingMode, groups: &[(&str, u64)]) -> Numbering {
        Numbering {
            start,
            mode,
            groups: groups
                .iter()
                .map(|(g, n)| (g.to_string(), *n))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn run(n: &Numbering, list: &[(&str, &str)]) -> Vec<String> {
        let mut numberer = Numberer::new(n);
        list.iter()
            .map(|(g, c)| {
                let mut channel = ch(g, c);
                let number = numberer.assign(&mut channel);
                assert_eq!(channel.get(&Field::TvgChno), number.to_string());
                number.to_string()
            })
            .collect()
    }

    #[test]
    fn sequential_ignores_own_numbers() {
        let n = numbering(100, NumberingMode::Sequential, &[]);
        let got = run(&n, &[("a", "5"), ("b", ""), ("c", "100")]);
        assert_eq!(got, ["100", "101", "102"]);
    }

    #[test]
    fn preserve_keeps_own_numbers_and_resolves_clashes() {
        let n = numbering(1, NumberingMode::Preserve, &[]);
        let got = run(
            &n,
            &[
                ("a", "2"),   // kept
                ("a", ""),    // next free from 1: 1
                ("a", "2"),   // clash with an earlier channel: next free: 3
                ("a", "x7"),  // not a number: 4
                ("a", "0"),   // not positive: 5
                ("a", " 6 "), // kept (normalised to "6")
                ("a", "5"),   // taken by the "0" channel: 7
                ("a", ""),    // 8
            ],
        );
        assert_eq!(got, ["2", "1", "3", "4", "5", "6", "7", "8"]);
    }

    #[test]
    fn group_blocks() {
        let n = numbering(1, NumberingMode::Sequential, &[("Sports", 3), ("News", 10)]);
        let got = run(
            &n,
            &[
                ("sports", ""), // group counter (case-insensitive): 3
                ("Other", ""),  // 1
                ("Other", ""),  // 2
                ("Other", ""),  // 3 is used by Sports: 4
                ("Sports", ""), // 4 is used now: 5
                ("News", ""),   // 10
                ("", ""),       // 6
            ],
        );
        assert_eq!(got, ["3", "1", "2", "4", "5", "10", "6"]);

        let n = numbering(1, NumberingMode::Preserve, &[("Sports", 500)]);
        let got = run(
            &n,
            &[("x", "500"), ("Sports", ""), ("Sports", "7"), ("x", "")],
        );
        assert_eq!(got, ["500", "501", "7", "1"]);
    }

    #[test]
    fn huge_numbers_stay_sparse() {
        let n = numbering(1, NumberingMode::Preserve, &[]);
        let mut numberer = Numberer::new(&n);
        let mut c = ch("", "4000000000");
        assert_eq!(numberer.assign(&mut c), 4_000_000_000);
        assert!(numberer.used.bits.is_empty());
        let mut c = ch("", "4000000000");
        assert_eq!(numberer.assign(&mut c), 1);
    }

    /// The whole chain of SPEC section 3 on the fixture: map, filter, dedupe, sort, number.
    #[test]
    fn fixture_config_end_to_end() {
        use crate::config::Config;
        use crate::pipeline::{dedupe::Deduper, sort};
        use crate::rules::ProxyRules;
        use std::path::Path;

        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules");
        let config = Config::load(&dir.join("lineup.toml")).unwrap_or_else(|e| panic!("{e}"));
        let proxy = &config.file.proxies[0];
        let rules = ProxyRules::compile(&config, proxy).unwrap();
        // The channels of alpha.m3u, as the M3U reader gives them.
        let mk = |id: &str, chno: &str, group: &str, name: &str| {
            let mut c = Channel {
                source: "alpha".into(),
                attrs: vec![
                    ("tvg-id".into(), id.into()),
                    ("group-title".into(), group.into()),
                ],
                name: name.into(),
                ..Default::default()
            };
            c.attrs.retain(|(_, v)| !v.is_empty());
            if !chno.is_empty() {
                c.attrs.insert(1, ("tvg-chno".into(), chno.into()));
            }
            c
        };
        let input = vec![
            mk("bbcone.uk", "1", "UK | General", "UK: BBC One +1"),
            mk("bbcone.uk", "", "UK | General", "UK: BBC One HD"),
            mk("skysports.uk", "", "UK | Sports", "UK: Sky Sports"),
            mk("blue.uk", "", "UK | Adult", "UK: Blue"),
            mk("ard.de", "", "DE", "DE: ARD"),
            mk("itv.uk", "", "", "ITV +1"),
        ];
        let (kept, stats) = rules.apply(input);
        assert_eq!(stats.excluded_by["no-adult"], 1);
        assert_eq!(stats.not_included, 1);
        let mut deduper = Deduper::new(proxy.dedupe);
        let mut kept: Vec<Channel> = kept.into_iter().filter(|c| deduper.keep(c)).collect();
        assert_eq!(deduper.removed(), 1);
        let fields = [Field::GroupTitle, Field::ChannelName];
        sort::sort_channels(&mut kept, &sort::SortKey::new(&fields));
        let mut numberer = Numberer::new(proxy.numbering.as_ref().unwrap());
        let summary: Vec<String> = kept
            .iter_mut()
            .map(|c| {
                numberer.assign(c);
                format!(
                    "{} {} [{}] +{}",
                    c.get(&Field::TvgChno),
                    c.name,
                    c.get(&Field::GroupTitle),
                    c.get(&Field::TvgShift)
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "100 ITV [Other] +1",
                "1 BBC One [UK | General] +1",
                "500 Sky Sports [UK | Sports] +",
            ]
        );
    }
}
