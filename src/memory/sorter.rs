//! The sort stage's external merge sort. Channels are buffered in memory while the budget
//! allows; when a reservation fails (or the process's resident size nears the budget), the
//! buffer is sorted (stably) and written out as a run (a spill file). At the end the runs are
//! merged (`merge.rs`), ties going to the earlier run, so the result is exactly a stable sort
//! of the input, whatever the budget.
//!
//! What the buffer takes in memory is what it accounts: each channel as the allocator holds it
//! (`Channel::heap_size`), in blocks of [`BLOCK`] channels (a `Vec` that doubles copies
//! itself, and held the old and the new copy at once: 112 MiB for 260k channels), sorted
//! through 4-byte positions (the standard stable sort takes half the buffer again as
//! scratch). After a run is written the freed heap is given back to the system, so resident
//! size follows what is in use and the next run's check of it means something.

use std::sync::Arc;

use anyhow::Result;

use super::merge::{self, Merge};
use super::spill::{SpillArea, SpillReader, SpillWriter};
use super::{Budget, Reservation};
use crate::model::Channel;
use crate::pipeline::sort::SortKey;

/// Channels per block of the buffer.
const BLOCK: usize = 1024;

/// Pushes between two reads of the resident size.
const RSS_EVERY: u32 = 1024;

pub struct Sorter {
    key: Arc<SortKey>,
    buf: Blocks,
    reservation: Reservation,
    runs: Vec<SpillReader>,
    area: Arc<SpillArea>,
    budget: Arc<Budget>,
    fan_in: usize,
    pushed: u32,
}

impl Sorter {
    pub fn new(key: SortKey, budget: &Arc<Budget>, area: &Arc<SpillArea>) -> Sorter {
        Sorter {
            key: Arc::new(key),
            buf: Blocks::default(),
            reservation: budget.empty(),
            runs: Vec::new(),
            area: Arc::clone(area),
            budget: Arc::clone(budget),
            fan_in: merge::fan_in(budget),
            pushed: 0,
        }
    }

    /// Merge at most `fan_in` runs at once (at least 2); by default [`merge::fan_in`].
    pub fn with_fan_in(mut self, fan_in: usize) -> Sorter {
        self.fan_in = fan_in.max(2);
        self
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    pub fn push(&mut self, ch: Channel) -> Result<()> {
        // The channel's struct is its slot in the buffer, counted by `heap_size`.
        let size = ch.heap_size() as u64;
        let grown = self.reservation.try_grow(size);
        if (!grown || self.resident_full()) && !self.buf.is_empty() {
            self.spill_run()?;
            // A single channel larger than the whole budget is kept all the same.
            let _ = self.reservation.try_grow(size);
        }
        self.buf.push(ch);
        Ok(())
    }

    /// Whether the process's resident size says to write a run although the reservation
    /// still grows: what accounting cannot see (the allocator's fragmentation, SQLite's
    /// caches, other stages) counts too. Read every [`RSS_EVERY`] pushes, and only once the
    /// buffer holds a run worth writing (1/8 of the budget), so that a process that is big
    /// for other reasons does not write a run per check.
    fn resident_full(&mut self) -> bool {
        self.pushed = self.pushed.wrapping_add(1);
        self.pushed.is_multiple_of(RSS_EVERY)
            && self.reservation.bytes() >= self.budget.limit() / 8
            && self.budget.resident_full()
    }

    fn spill_run(&mut self) -> Result<()> {
        let order = sorted_order(&self.buf, &self.key);
        let mut run = SpillWriter::create(&self.area)?;
        for &i in &order {
            run.write(self.buf.get(i))?;
        }
        self.buf = Blocks::default();
        drop(order);
        self.reservation.release();
        self.runs.push(run.finish()?);
        super::malloc::trim();
        Ok(())
    }

    /// Every channel pushed, sorted.
    pub fn finish(mut self) -> Result<Sorted> {
        if self.runs.is_empty() {
            let order = sorted_order(&self.buf, &self.key);
            self.reservation.grow_unchecked(4 * order.len() as u64);
            return Ok(Sorted(Inner::Memory {
                buf: self.buf,
                order: order.into_iter(),
                _reservation: self.reservation,
            }));
        }
        // The buffer becomes a run too: a merge then holds only its runs' read buffers, and
        // the budget is free for the stage it feeds (numbering's spool, the sort by number).
        if !self.buf.is_empty() {
            self.spill_run()?;
        }
        let runs = std::mem::take(&mut self.runs);
        let merged = merge::merge(runs, &self.key, self.fan_in, &self.budget, &self.area)?;
        Ok(Sorted(Inner::Merge(merged)))
    }
}

/// The buffer: channels in blocks of [`BLOCK`], so that it grows without copying itself.
#[derive(Default)]
struct Blocks {
    blocks: Vec<Vec<Channel>>,
    len: usize,
}

impl Blocks {
    fn push(&mut self, ch: Channel) {
        if self.len.is_multiple_of(BLOCK) {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        self.blocks[self.len / BLOCK].push(ch);
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn get(&self, i: u32) -> &Channel {
        let i = i as usize;
        &self.blocks[i / BLOCK][i % BLOCK]
    }

    /// Move channel `i` out, leaving an empty channel (no strings) in its place.
    fn take(&mut self, i: u32) -> Channel {
        let i = i as usize;
        std::mem::take(&mut self.blocks[i / BLOCK][i % BLOCK])
    }
}

/// The positions of `items` in stably sorted order. Sorting 4-byte positions in place, ties
/// broken by position, gives exactly the stable sort without a scratch copy of the channels.
fn sorted_order(items: &Blocks, key: &SortKey) -> Vec<u32> {
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| key.compare(items.get(a), items.get(b)).then(a.cmp(&b)));
    order
}

/// Sorted channels, from memory or merged from runs.
pub struct Sorted(Inner);

enum Inner {
    Memory {
        buf: Blocks,
        order: std::vec::IntoIter<u32>,
        _reservation: Reservation,
    },
    Merge(Merge),
}

impl Iterator for Sorted {
    type Item = Result<Channel>;

    fn next(&mut self) -> Option<Result<Channel>> {
        match &mut self.0 {
            Inner::Memory { buf, order, .. } => order.next().map(|i| Ok(buf.take(i))),
            Inner::Merge(merge) => merge.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Field;
    use crate::pipeline::sort::sort_channels;
    use proptest::prelude::*;

    fn channels(groups: &[String]) -> Vec<Channel> {
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| Channel {
                source: Arc::from("s"),
                attrs: vec![("group-title".into(), g.clone())],
                name: format!("ch{i}"),
                ..Default::default()
            })
            .collect()
    }

    /// Sort `items` by group under `budget` bytes, merging at most `fan_in` runs at once;
    /// the sorted channels and the number of runs written before the merge.
    fn external(items: Vec<Channel>, budget: u64, fan_in: usize) -> (Vec<Channel>, usize) {
        let budget = Budget::new(budget);
        let dir = tempfile::tempdir().unwrap();
        let area = SpillArea::new(Some(dir.path()), None, Arc::clone(&budget)).unwrap();
        let key = SortKey::new(&[Field::GroupTitle]);
        let mut sorter = Sorter::new(key, &budget, &area).with_fan_in(fan_in);
        for ch in items {
            sorter.push(ch).unwrap();
        }
        let runs = sorter.runs();
        let got = sorter
            .finish()
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap();
        assert_eq!(budget.reserved(), 0, "reservations released");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "spill files deleted"
        );
        (got, runs)
    }

    fn in_memory(items: &[Channel]) -> Vec<Channel> {
        let mut expected = items.to_vec();
        sort_channels(&mut expected, &SortKey::new(&[Field::GroupTitle]));
        expected
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn external_sort_equals_a_stable_in_memory_sort(
            groups in proptest::collection::vec("[a-d]{0,2}", 0..400),
            budget in 1u64..40_000,
            fan_in in 2usize..12,
        ) {
            let items = channels(&groups);
            let expected = in_memory(&items);
            let (got, _) = external(items, budget, fan_in);
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn many_runs_merge_in_several_passes_to_the_same_order() {
        // 3000 channels in runs of a few dozen: about a hundred runs, merged 4 at a time
        // (four passes before the last merge) and 1000 at a time (one merge).
        let groups: Vec<String> = (0..3000).map(|i| format!("g{}", (i * 7919) % 37)).collect();
        let items = channels(&groups);
        let expected = in_memory(&items);
        let per_channel = items[0].heap_size() as u64;
        let (narrow, runs) = external(items.clone(), 40 * per_channel, 4);
        assert!(runs > 64, "{runs} runs");
        assert_eq!(narrow, expected);
        let (wide, _) = external(items, 40 * per_channel, 1000);
        assert_eq!(wide, expected);
    }

    #[test]
    fn fan_in_keeps_read_buffers_to_a_sixteenth_of_the_budget() {
        assert_eq!(merge::fan_in(&Budget::new(256 << 20)), 256);
        assert_eq!(merge::fan_in(&Budget::new(64 << 20)), 64);
        assert_eq!(merge::fan_in(&Budget::new(1 << 20)), 8);
    }
}
