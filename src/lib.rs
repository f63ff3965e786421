//! lineup: a one-shot IPTV playlist builder. The modules read like the pipeline: `config` is
//! read, sources are fetched (`fetch`) and parsed (`parse`) into the `store`, the `pipeline`
//! loads, maps, filters and numbers channels, and `output` writes the files.

pub mod config;
pub mod model;
pub mod rules;
pub mod secrets;
