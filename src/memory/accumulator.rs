//! Accumulators: where a stage keeps channels it cannot pass on yet. Three strategies:
//! in memory (accounted against the budget, never spilling), file-spilled (everything to a
//! spill file), and hybrid (the default: in memory while the reservation grows, then the
//! buffered items and every later one go to a spill file). Items come back in the order they
//! were pushed, whatever the strategy.

use std::sync::Arc;

use anyhow::Result;

use super::spill::{SpillArea, SpillReader, SpillWriter};
use super::{Budget, Reservation};
use crate::model::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    InMemory,
    FileSpilled,
    Hybrid,
}

pub struct Accumulator {
    strategy: Strategy,
    reservation: Reservation,
    items: Vec<Channel>,
    spill: Option<SpillWriter>,
    area: Arc<SpillArea>,
    len: u64,
}

impl Accumulator {
    pub fn new(strategy: Strategy, budget: &Arc<Budget>, area: &Arc<SpillArea>) -> Accumulator {
        Accumulator {
            strategy,
            reservation: budget.empty(),
            items: Vec::new(),
            spill: None,
            area: Arc::clone(area),
            len: 0,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether items went to a spill file.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    pub fn push(&mut self, ch: Channel) -> Result<()> {
        self.len += 1;
        if let Some(spill) = &mut self.spill {
            return spill.write(&ch);
        }
        match self.strategy {
            Strategy::FileSpilled => {
                let mut spill = SpillWriter::create(&self.area)?;
                spill.write(&ch)?;
                self.spill = Some(spill);
            }
            Strategy::InMemory => {
                // Accounted when the budget allows; kept either way (this strategy's promise).
                let _ = self.reservation.try_grow(ch.heap_size() as u64);
                self.items.push(ch);
            }
            Strategy::Hybrid => {
                if self.reservation.try_grow(ch.heap_size() as u64) {
                    self.items.push(ch);
                } else {
                    let mut spill = SpillWriter::create(&self.area)?;
                    for buffered in self.items.drain(..) {
                        spill.write(&buffered)?;
                    }
                    self.items = Vec::new();
                    self.reservation.release();
                    super::malloc::trim();
                    spill.write(&ch)?;
                    self.spill = Some(spill);
                }
            }
        }
        Ok(())
    }

    /// Everything pushed, in order. Spill files are deleted when the iterator drops.
    pub fn drain(self) -> Result<Drain> {
        Ok(match self.spill {
            Some(spill) => Drain::Spilled(spill.finish()?),
            None => Drain::Memory(self.items.into_iter(), self.reservation),
        })
    }
}

/// The items of a drained accumulator.
pub enum Drain {
    Memory(std::vec::IntoIter<Channel>, Reservation),
    Spilled(SpillReader),
}

impl Iterator for Drain {
    type Item = Result<Channel>;

    fn next(&mut self) -> Option<Result<Channel>> {
        match self {
            Drain::Memory(items, _) => items.next().map(Ok),
            Drain::Spilled(reader) => reader.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Strategy;
    use super::*;
    use proptest::prelude::{ProptestConfig, prop_assert, prop_assert_eq, proptest};

    fn channel(i: usize, name: &str) -> Channel {
        Channel {
            source: Arc::from(if i.is_multiple_of(2) { "a" } else { "b" }),
            duration: "-1".into(),
            attrs: vec![("tvg-id".into(), format!("{i}.id"))],
            name: name.to_string(),
            directives: if i.is_multiple_of(3) {
                vec!["#EXTVLCOPT:x=y".into()]
            } else {
                vec![]
            },
            url: format!("http://s/{i}"),
            ..Channel::default()
        }
    }

    fn collect(strategy: Strategy, budget: u64, items: &[Channel]) -> (Vec<Channel>, bool, u64) {
        let budget = Budget::new(budget);
        let dir = tempfile::tempdir().unwrap();
        let area = SpillArea::new(Some(dir.path()), None, Arc::clone(&budget)).unwrap();
        let mut acc = Accumulator::new(strategy, &budget, &area);
        for ch in items {
            acc.push(ch.clone()).unwrap();
        }
        let spilled = acc.spilled();
        let out = acc.drain().unwrap().collect::<Result<Vec<_>>>().unwrap();
        assert_eq!(budget.reserved(), 0, "reservation released");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "spill files deleted"
        );
        (
            out,
            spilled,
            budget
                .spilled_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn spilling_returns_the_same_items_in_the_same_order(
            names in proptest::collection::vec(".{0,40}", 0..300),
            budget in 1u64..50_000,
        ) {
            let items: Vec<Channel> = names.iter().enumerate().map(|(i, n)| channel(i, n)).collect();
            let (memory, spilled, _) = collect(Strategy::InMemory, u64::MAX, &items);
            prop_assert!(!spilled);
            prop_assert_eq!(&memory, &items);
            let (hybrid, _, _) = collect(Strategy::Hybrid, budget, &items);
            prop_assert_eq!(&hybrid, &items);
            let (file, _, _) = collect(Strategy::FileSpilled, u64::MAX, &items);
            prop_assert_eq!(&file, &items);
        }
    }

    #[test]
    fn hybrid_spills_only_past_its_budget() {
        let items: Vec<Channel> = (0..1000).map(|i| channel(i, "name")).collect();
        let (_, spilled, bytes) = collect(Strategy::Hybrid, 10 << 20, &items);
        assert!(!spilled);
        assert_eq!(bytes, 0);
        let (out, spilled, bytes) = collect(Strategy::Hybrid, 20_000, &items);
        assert!(spilled && bytes > 0);
        assert_eq!(out, items);
    }

    #[test]
    fn spill_cap_is_a_clear_error() {
        let budget = Budget::new(1);
        let dir = tempfile::tempdir().unwrap();
        let area = SpillArea::new(Some(dir.path()), Some(1000), Arc::clone(&budget)).unwrap();
        let mut acc = Accumulator::new(Strategy::FileSpilled, &budget, &area);
        let err = (0..100)
            .try_for_each(|i| acc.push(channel(i, "a long enough channel name")))
            .unwrap_err();
        assert!(err.to_string().contains("spill files in"), "{err}");
    }
}
