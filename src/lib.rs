//! lineup: a one-shot IPTV playlist builder. The modules read like the pipeline: `config` is
//! read, sources are fetched (`fetch`) and parsed (`parse`) into the `store`, the `pipeline`
//! loads, maps, filters and numbers channels, and `output` writes the files.

pub mod cancel;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod exit;
pub mod fetch;
pub mod guide;
pub mod ingest;
pub mod lock;
pub mod log;
pub mod logos;
pub mod memory;
pub mod model;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod probe;
pub mod progress;
pub mod report;
pub mod rules;
pub mod secrets;
pub mod store;
pub mod tempfiles;
