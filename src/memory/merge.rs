//! The merge of an external sort's runs: a k-way merge of sorted spill files on a heap, ties
//! going to the earlier run. The merge holds one read buffer ([`READ_BUF`]) and one channel
//! per run, counted against the budget; when the runs are too many for that to be small
//! (more than [`fan_in`]), groups of neighbouring runs are first merged into longer runs,
//! pass after pass, so that what a merge holds stays bounded however many runs there are.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use anyhow::Result;

use super::spill::{READ_BUF, SpillArea, SpillReader, SpillWriter};
use super::{Budget, Reservation};
use crate::model::Channel;
use crate::pipeline::sort::SortKey;

/// The most runs merged at once under `budget`: their read buffers take at most 1/16 of it
/// (256 runs under 256 MiB, 64 under 64 MiB), and never fewer than 8.
pub fn fan_in(budget: &Budget) -> usize {
    (budget.limit() / 16 / READ_BUF as u64).max(8) as usize
}

/// Merge `runs` (each sorted by `key`; ties go to the earlier run) into one sorted stream,
/// after as many passes over groups of at most `fan_in` runs as it takes to get down to
/// `fan_in` runs.
pub fn merge(
    mut runs: Vec<SpillReader>,
    key: &Arc<SortKey>,
    fan_in: usize,
    budget: &Arc<Budget>,
    area: &Arc<SpillArea>,
) -> Result<Merge> {
    let fan_in = fan_in.max(2);
    while runs.len() > fan_in {
        let mut longer = Vec::with_capacity(runs.len().div_ceil(fan_in));
        let mut rest = runs.into_iter().peekable();
        while rest.peek().is_some() {
            let group: Vec<SpillReader> = rest.by_ref().take(fan_in).collect();
            if group.len() == 1 {
                longer.extend(group);
                continue;
            }
            let mut out = SpillWriter::create(area)?;
            for ch in Merge::new(group, key, budget)? {
                out.write(&ch?)?;
            }
            longer.push(out.finish()?);
        }
        runs = longer;
    }
    Merge::new(runs, key, budget)
}

/// Sorted channels merged from runs.
pub struct Merge {
    heap: BinaryHeap<Head>,
    runs: Vec<SpillReader>,
    /// The runs' read buffers and their current channels.
    _reservation: Reservation,
}

impl Merge {
    fn new(mut runs: Vec<SpillReader>, key: &Arc<SortKey>, budget: &Arc<Budget>) -> Result<Merge> {
        let mut reservation = budget.empty();
        let mut heap = BinaryHeap::with_capacity(runs.len());
        let mut held = (runs.len() * READ_BUF) as u64;
        for (run, source) in runs.iter_mut().enumerate() {
            if let Some(ch) = source.next().transpose()? {
                held += ch.heap_size() as u64;
                heap.push(Head {
                    ch,
                    run,
                    key: Arc::clone(key),
                });
            }
        }
        // The buffers are needed whatever the budget says; counted, others spill sooner.
        reservation.grow_unchecked(held);
        Ok(Merge {
            heap,
            runs,
            _reservation: reservation,
        })
    }
}

impl Iterator for Merge {
    type Item = Result<Channel>;

    fn next(&mut self) -> Option<Result<Channel>> {
        let head = self.heap.pop()?;
        match self.runs[head.run].next() {
            Some(Ok(ch)) => self.heap.push(Head {
                ch,
                run: head.run,
                key: Arc::clone(&head.key),
            }),
            Some(Err(e)) => return Some(Err(e)),
            None => {}
        }
        Some(Ok(head.ch))
    }
}

/// The next channel of one run, ordered for a min-heap: smallest key first, then earliest run.
struct Head {
    ch: Channel,
    run: usize,
    key: Arc<SortKey>,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        self.key
            .compare(&self.ch, &other.ch)
            .then(self.run.cmp(&other.run))
            .reverse()
    }
}
