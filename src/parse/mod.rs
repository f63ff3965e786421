//! Parsers for what sources deliver. Each reads a stream and yields items one at a time; none
//! holds a whole source in memory.

pub mod decode;
pub mod lines;
pub mod m3u;
pub mod xmltv;
