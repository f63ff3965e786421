//! The data that flows through the pipeline.

mod channel;
pub mod codec;

pub use channel::{Channel, Field, NAMED_FIELDS, ProbeMark};
