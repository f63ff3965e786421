//! Bounded memory: a budget that every buffering stage reserves its bytes from
//! ([`budget`]), pressure levels derived from that accounting and the process's resident size,
//! and accumulators that keep items in memory while their reservation holds and spill them to
//! temporary files when it does not ([`accumulator`], [`spill`]), including the external merge
//! sort of the sort stage ([`sorter`]).

pub mod accumulator;
pub mod budget;
pub mod malloc;
pub mod merge;
pub mod sorter;
pub mod spill;

pub use accumulator::{Accumulator, Strategy};
pub use budget::{Budget, Pressure, Reservation};
