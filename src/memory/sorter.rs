//! The sort stage's external merge sort. Channels are buffered in memory while the budget
//! allows; when a reservation fails, the buffer is sorted (stably) and written out as a run
//! (a spill file). At the end the runs and the in-memory tail are merged, ties going to the
//! earlier run, so the result is exactly a stable sort of the input, whatever the budget.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use anyhow::Result;

use super::spill::{SpillArea, SpillReader, SpillWriter};
use super::{Budget, Reservation};
use crate::model::Channel;
use crate::pipeline::sort::{SortKey, sort_channels};

pub struct Sorter {
    key: Arc<SortKey>,
    buf: Vec<Channel>,
    reservation: Reservation,
    runs: Vec<SpillReader>,
    area: Arc<SpillArea>,
}

impl Sorter {
    pub fn new(key: SortKey, budget: &Arc<Budget>, area: &Arc<SpillArea>) -> Sorter {
        Sorter {
            key: Arc::new(key),
            buf: Vec::new(),
            reservation: budget.empty(),
            runs: Vec::new(),
            area: Arc::clone(area),
        }
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    pub fn push(&mut self, ch: Channel) -> Result<()> {
        let size = ch.heap_size() as u64 + std::mem::size_of::<Channel>() as u64;
        if !self.reservation.try_grow(size) && !self.buf.is_empty() {
            self.spill_run()?;
            // A single channel larger than the whole budget is kept all the same.
            let _ = self.reservation.try_grow(size);
        }
        self.buf.push(ch);
        Ok(())
    }

    fn spill_run(&mut self) -> Result<()> {
        sort_channels(&mut self.buf, &self.key);
        let mut run = SpillWriter::create(&self.area)?;
        for ch in self.buf.drain(..) {
            run.write(&ch)?;
        }
        self.buf = Vec::new();
        self.reservation.release();
        self.runs.push(run.finish()?);
        Ok(())
    }

    /// Every channel pushed, sorted.
    pub fn finish(mut self) -> Result<Sorted> {
        sort_channels(&mut self.buf, &self.key);
        if self.runs.is_empty() {
            return Ok(Sorted(Inner::Memory {
                items: self.buf.into_iter(),
                _reservation: self.reservation,
            }));
        }
        let mut sources: Vec<Run> = self.runs.into_iter().map(Run::Disk).collect();
        sources.push(Run::Memory(self.buf.into_iter()));
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (run, source) in sources.iter_mut().enumerate() {
            if let Some(ch) = source.next().transpose()? {
                heap.push(Head {
                    ch,
                    run,
                    key: Arc::clone(&self.key),
                });
            }
        }
        Ok(Sorted(Inner::Merge {
            heap,
            sources,
            _reservation: self.reservation,
        }))
    }
}

enum Run {
    Disk(SpillReader),
    Memory(std::vec::IntoIter<Channel>),
}

impl Iterator for Run {
    type Item = Result<Channel>;
    fn next(&mut self) -> Option<Result<Channel>> {
        match self {
            Run::Disk(r) => r.next(),
            Run::Memory(m) => m.next().map(Ok),
        }
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

/// Sorted channels, from memory or merged from runs.
pub struct Sorted(Inner);

enum Inner {
    Memory {
        items: std::vec::IntoIter<Channel>,
        _reservation: Reservation,
    },
    Merge {
        heap: BinaryHeap<Head>,
        sources: Vec<Run>,
        _reservation: Reservation,
    },
}

impl Iterator for Sorted {
    type Item = Result<Channel>;

    fn next(&mut self) -> Option<Result<Channel>> {
        match &mut self.0 {
            Inner::Memory { items, .. } => items.next().map(Ok),
            Inner::Merge { heap, sources, .. } => {
                let head = heap.pop()?;
                match sources[head.run].next() {
                    Some(Ok(ch)) => heap.push(Head {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Field;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn external_sort_equals_a_stable_in_memory_sort(
            groups in proptest::collection::vec("[a-d]{0,2}", 0..400),
            budget in 1u64..40_000,
        ) {
            let items: Vec<Channel> = groups
                .iter()
                .enumerate()
                .map(|(i, g)| Channel {
                    source: Arc::from("s"),
                    attrs: vec![("group-title".into(), g.clone())],
                    name: format!("ch{i}"),
                    ..Default::default()
                })
                .collect();
            let key = SortKey::new(&[Field::GroupTitle]);
            let mut expected = items.clone();
            sort_channels(&mut expected, &key);

            let budget = Budget::new(budget);
            let dir = tempfile::tempdir().unwrap();
            let area = SpillArea::new(Some(dir.path()), None, Arc::clone(&budget)).unwrap();
            let mut sorter = Sorter::new(key, &budget, &area);
            for ch in items {
                sorter.push(ch).unwrap();
            }
            let got = sorter.finish().unwrap().collect::<Result<Vec<_>>>().unwrap();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(budget.reserved(), 0);
            prop_assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }
}
