//! Channel numbering (`numbering = { start, mode, groups, key, prefer_own, forget_after }`),
//! applied to channels in output order. Every assigned number is written as the channel's
//! `tvg-chno`.
//!
//! - `sequential`: every channel gets the next free number of its counter. One pass.
//! - `preserve`: a channel whose own `tvg-chno` is a positive integer (ASCII digits, surrounding
//!   spaces ignored) keeps it, unless an earlier channel in the output already has that
//!   number. Every number some channel of the output owns is reserved first (a first pass over
//!   the channels, [`Numberer::observe`]), so a channel without a number of its own never takes
//!   a number another channel owns; it gets the next free number of its counter.
//! - `sticky`: a channel whose identity (`key`, see [`sticky`]) holds a number in the database
//!   gets that number. A new identity gets its own `tvg-chno` when `prefer_own` is on and the
//!   number is neither held by another identity nor owned by an earlier channel; otherwise the
//!   next free number of its counter. Numbers held by identities that are absent from this
//!   build, but were seen within `forget_after`, are never handed to anyone else. The new
//!   assignments are written back only after the outputs are committed.
//! - Counters: a channel whose `group_title` is a key of `groups` (compared case-insensitively)
//!   uses that group's counter, which starts at the group's number; all others share one
//!   counter that starts at `start`.
//! - "Next free" means: the lowest number at or after the counter's start that is not given to
//!   an earlier channel (by any counter, kept by `preserve`, or held in `sticky`) and not
//!   reserved (owned by a later channel, or held by an absent sticky identity). Numbers are
//!   unique; a counter that runs into another group's block skips over the numbers that block
//!   uses.
//! - When a group's counter cannot start at the group's number because that number is in use
//!   by a channel of another group, the build warns, naming the group, the wanted start and
//!   the start it got.
//!
//! Memory: the sets of given, owned and held numbers (numbers only, nothing per channel), kept
//! as bitsets and accounted against the memory budget: about 128 KiB each per million
//! numbers. Sticky identities go through SQLite's temporary tables and external sorter (see
//! [`sticky`]), never held all at once; its cache is accounted too. The first pass's channels
//! wait in a spilling sorter.

pub mod sticky;

use std::collections::HashMap;

use anyhow::Result;

use crate::config::{Numbering, NumberingMode};
use crate::model::{Channel, Field};

/// A group's counter and what the warning about its start needs.
#[derive(Debug)]
struct Counter {
    /// The group as configured, or empty for the shared counter.
    label: String,
    start: u64,
    next: u64,
    /// The first number the counter gave out.
    first: Option<u64>,
    /// A channel of this group got the start number (its own, or held): no warning then.
    start_in_group: bool,
}

impl Counter {
    fn new(label: String, start: u64) -> Counter {
        Counter {
            label,
            start,
            next: start,
            first: None,
            start_in_group: false,
        }
    }
}

/// Assigns numbers to channels given to it in output order.
pub struct Numberer {
    mode: NumberingMode,
    prefer_own: bool,
    shared: Counter,
    /// Per group, by lowercased group title.
    groups: HashMap<String, Counter>,
    /// Numbers given to a channel of this build.
    given: NumberSet,
    /// Numbers owned by channels of the output (first pass).
    owned: NumberSet,
    /// Numbers held by sticky identities (present or not).
    held: NumberSet,
    sticky: Option<sticky::Assignments>,
    reservation: Option<crate::memory::Reservation>,
}

impl Numberer {
    /// A numberer without a database: `sticky` then behaves like `preserve` with nothing held
    /// (used by tests; builds use [`Numberer::for_build`]).
    pub fn new(numbering: &Numbering) -> Numberer {
        Numberer {
            mode: numbering.mode,
            prefer_own: numbering.mode == NumberingMode::Preserve || numbering.prefer_own(),
            shared: Counter::new(String::new(), numbering.start.max(1)),
            groups: numbering
                .groups
                .iter()
                .map(|(group, first)| {
                    (
                        group.to_lowercase(),
                        Counter::new(group.clone(), (*first).max(1)),
                    )
                })
                .collect(),
            given: NumberSet::default(),
            owned: NumberSet::default(),
            held: NumberSet::default(),
            sticky: None,
            reservation: None,
        }
    }

    /// The numberer of one proxy's build: with `sticky`, it reads the proxy's held numbers
    /// from the database; its sets are accounted against `budget`; `cancel` interrupts its
    /// database work.
    pub fn for_build(
        numbering: &Numbering,
        proxy: &str,
        db: &std::path::Path,
        now: i64,
        budget: &std::sync::Arc<crate::memory::Budget>,
        cancel: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Numberer> {
        let mut numberer = Numberer::new(numbering);
        numberer.reservation = Some(budget.empty());
        if numbering.mode == NumberingMode::Sticky {
            // SQLite's caches for this build's assignments: a sixteenth of the budget each, within
            // 64 KiB..16 MiB.
            let cache = (budget.limit() / 16).clamp(64 << 10, 16 << 20);
            let held = &mut numberer.held;
            let cancel = Some(cancel.clone());
            let assignments =
                sticky::Assignments::open(db, proxy, numbering, now, cache, cancel, |n| {
                    held.insert(n);
                })?;
            numberer.sticky = Some(assignments);
        }
        numberer.account();
        Ok(numberer)
    }

    /// Whether channels must be shown to [`Numberer::observe`] before any is numbered:
    /// `preserve` reserves the numbers channels own, `sticky` also looks their identities up.
    pub fn two_pass(&self) -> bool {
        self.mode != NumberingMode::Sequential
    }

    /// First pass: reserve the number `ch` owns (and stage its identity, with `sticky`).
    pub fn observe(&mut self, ch: &Channel) -> Result<()> {
        if self.prefer_own
            && let Some(own) = own_number(ch.get(&Field::TvgChno))
        {
            self.owned.insert(own);
        }
        match self.sticky.as_mut() {
            Some(sticky) => sticky.stage(ch),
            None => Ok(()),
        }
    }

    /// Number one channel (the next in output order) and return its number.
    pub fn assign(&mut self, ch: &mut Channel) -> Result<u64> {
        if self.sticky.is_some() {
            return self.assign_sticky(ch);
        }
        if self.mode != NumberingMode::Sequential
            && let Some(own) = self.take_own(ch)
        {
            return Ok(own);
        }
        Ok(self.next_free(ch))
    }

    fn assign_sticky(&mut self, ch: &mut Channel) -> Result<u64> {
        let sticky = self.sticky.as_mut().expect("sticky numberer");
        let number = match sticky.next_held()? {
            Some(n) if self.given.insert(n) => {
                sticky.stats.kept += 1;
                ch.set(&Field::TvgChno, n.to_string());
                self.note_group_number(ch, n);
                n
            }
            _ => {
                sticky.stats.new += 1;
                match self.take_own(ch) {
                    Some(own) => own,
                    None => self.next_free(ch),
                }
            }
        };
        self.sticky
            .as_mut()
            .expect("sticky numberer")
            .record(number)?;
        Ok(number)
    }

    /// The channel's own number, when it may keep it.
    fn take_own(&mut self, ch: &mut Channel) -> Option<u64> {
        if !self.prefer_own {
            return None;
        }
        let own = own_number(ch.get(&Field::TvgChno))?;
        if self.held.contains(own) || !self.given.insert(own) {
            return None;
        }
        // Normalise spelling (" 7" -> "7") only when needed, to keep other bytes as read.
        let canonical = own.to_string();
        if ch.get(&Field::TvgChno) != canonical {
            ch.set(&Field::TvgChno, canonical);
        }
        self.note_group_number(ch, own);
        Some(own)
    }

    fn note_group_number(&mut self, ch: &Channel, n: u64) {
        let counter = counter_of(&mut self.shared, &mut self.groups, ch);
        if counter.start == n {
            counter.start_in_group = true;
        }
    }

    fn next_free(&mut self, ch: &mut Channel) -> u64 {
        let counter = counter_of(&mut self.shared, &mut self.groups, ch);
        let mut n = counter.next;
        while self.owned.contains(n) || self.held.contains(n) || !self.given.insert(n) {
            n += 1;
        }
        counter.next = n + 1;
        counter.first.get_or_insert(n);
        if n == counter.start {
            counter.start_in_group = true;
        }
        ch.set(&Field::TvgChno, n.to_string());
        n
    }

    /// Bring the memory reservation up to the sets' size.
    pub fn account(&mut self) {
        let bytes = (self.given.heap_bytes() + self.owned.heap_bytes() + self.held.heap_bytes())
            as u64
            + self.sticky.as_ref().map_or(0, |s| s.memory_bytes());
        if let Some(r) = self.reservation.as_mut()
            && bytes > r.bytes()
        {
            r.grow_unchecked(bytes - r.bytes());
        }
    }

    /// End of numbering: the warnings about group starts that collided with numbers in use,
    /// and the sticky assignments to write once the outputs are committed.
    pub fn finish(self) -> (Vec<String>, Option<sticky::Assignments>) {
        let mut warnings: Vec<String> = self
            .groups
            .values()
            .filter_map(|c| {
                let first = c.first?;
                (first != c.start && !c.start_in_group).then(|| {
                    format!(
                        "numbering: group `{}` wanted to start at {} but starts at {first}: {}..{} are in use",
                        c.label,
                        c.start,
                        c.start,
                        first - 1
                    )
                })
            })
            .collect();
        warnings.sort();
        (warnings, self.sticky)
    }
}

/// The counter a channel numbers from: its group's, else the shared one.
fn counter_of<'a>(
    shared: &'a mut Counter,
    groups: &'a mut HashMap<String, Counter>,
    ch: &Channel,
) -> &'a mut Counter {
    let group = ch.get(&Field::GroupTitle);
    if groups.is_empty() || group.is_empty() {
        return shared;
    }
    match groups.get_mut(&group.to_lowercase()) {
        Some(c) => c,
        None => shared,
    }
}

/// A channel's own number, if it is a positive integer.
pub fn own_number(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().filter(|n| *n > 0)
}

/// A growable bitset of numbers. Numbers come from configured starts plus channel counts, or
/// from playlists (`preserve`); numbers beyond `SPARSE_FROM` go to a `BTreeSet` so that a
/// playlist with `tvg-chno="4000000000"` cannot make the bitset huge.
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

    fn contains(&self, n: u64) -> bool {
        if n >= SPARSE_FROM {
            return self.sparse.contains(&n);
        }
        let (word, bit) = ((n / 64) as usize, n % 64);
        self.bits.get(word).is_some_and(|w| w & (1u64 << bit) != 0)
    }

    fn heap_bytes(&self) -> usize {
        self.bits.capacity() * 8 + self.sparse.len() * 40
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
            key: None,
            prefer_own: None,
            forget_after: None,
        }
    }

    fn run(n: &Numbering, list: &[(&str, &str)]) -> Vec<String> {
        run_warn(n, list).0
    }

    fn run_warn(n: &Numbering, list: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
        let mut numberer = Numberer::new(n);
        let channels: Vec<Channel> = list.iter().map(|(g, c)| ch(g, c)).collect();
        if numberer.two_pass() {
            channels.iter().for_each(|c| numberer.observe(c).unwrap());
        }
        let numbers = channels
            .into_iter()
            .map(|mut channel| {
                let number = numberer.assign(&mut channel).unwrap();
                assert_eq!(channel.get(&Field::TvgChno), number.to_string());
                number.to_string()
            })
            .collect();
        (numbers, numberer.finish().0)
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
                ("a", "0"),   // not positive; 5 and 6 are owned by later channels: 7
                ("a", " 6 "), // kept (normalised to "6")
                ("a", "5"),   // kept: reserved before anything was handed out
                ("a", ""),    // 8
            ],
        );
        assert_eq!(got, ["2", "1", "3", "4", "7", "6", "5", "8"]);
    }

    /// The case: an unnumbered channel before one that owns 1 does not take 1.
    #[test]
    fn preserve_never_gives_away_an_owned_number() {
        let n = numbering(1, NumberingMode::Preserve, &[]);
        let got = run(&n, &[("", ""), ("", "1"), ("", ""), ("", "3")]);
        assert_eq!(got, ["2", "1", "4", "3"]);
    }

    #[test]
    fn group_start_collision_warns() {
        let n = numbering(1, NumberingMode::Sequential, &[("B", 3)]);
        let list = [
            ("A", ""),
            ("A", ""),
            ("A", ""),
            ("A", ""),
            ("A", ""),
            ("B", ""),
        ];
        let (got, warnings) = run_warn(&n, &list);
        assert_eq!(got, ["1", "2", "3", "4", "5", "6"]);
        assert_eq!(
            warnings,
            ["numbering: group `B` wanted to start at 3 but starts at 6: 3..5 are in use"]
        );
        // No warning when the group got its start, or when its own channels hold it.
        let (_, warnings) = run_warn(&n, &[("B", ""), ("A", ""), ("B", "")]);
        assert!(warnings.is_empty(), "{warnings:?}");
        let n = numbering(1, NumberingMode::Preserve, &[("B", 3)]);
        let (got, warnings) = run_warn(&n, &[("B", ""), ("B", "3")]);
        assert_eq!(got, ["4", "3"]);
        assert!(warnings.is_empty(), "{warnings:?}");
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
        assert_eq!(numberer.assign(&mut c).unwrap(), 4_000_000_000);
        assert!(numberer.given.bits.is_empty());
        let mut c = ch("", "4000000000");
        assert_eq!(numberer.assign(&mut c).unwrap(), 1);
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
        kept.iter().for_each(|c| numberer.observe(c).unwrap());
        let summary: Vec<String> = kept
            .iter_mut()
            .map(|c| {
                numberer.assign(c).unwrap();
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
