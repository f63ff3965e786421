//! The data that flows through the pipeline.

mod channel;

pub use channel::{Channel, Field, NAMED_FIELDS};
