//! Carrying stored guides across the move to listings ([`super::guide::LISTINGS_SCHEMA`]).
//! The previous release kept one `guide_programmes` row per programme; [`convert`] turns each
//! guide channel's rows into its listing ([`super::listing`]) and then drops the old table, in
//! the migration's own transaction: a database is either wholly old or wholly converted, and
//! the last good copy of every guide survives the upgrade (a guide whose provider is down
//! right after the upgrade still has its programmes).
//!
//! Channels and sources are kept as they are: their rows, ids, declared bodies and
//! programme counts mean the same in both layouts. Bodies are copied byte for byte (both
//! layouts store the binary form of [`crate::parse::xmltv::tree`]), times as they were.
//!
//! Validators are kept: the converted listing holds exactly the programmes the previous
//! release stored from that content, so an ETag or Last-Modified answered with 304 Not
//! Modified still names the stored copy. (A fetched body is parsed again anyway: content keys
//! include lineup's version.)
//!
//! Memory: one channel at a time, and within a channel at most [`super::listing::FLUSH_BYTES`]
//! of records before they are written as a part (the readers merge a channel's parts), so a
//! guide of any size, or a channel of any length, converts in bounded memory. SQLite sorts a
//! channel's rows with its own spilling sorter.

use rusqlite::{Transaction, params};

use super::listing;
use crate::guide::time::XmltvTime;

/// What a conversion carried over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Converted {
    /// Channels that had at least one programme.
    pub channels: u64,
    pub programmes: u64,
    /// Listing rows written (one per channel unless a channel passed the flush budget).
    pub parts: u64,
}

/// Convert every `guide_programmes` row into listings (`guide_listings` must exist and be
/// empty), flushing a channel's records as a part whenever they reach `flush_bytes`, then
/// drop the old table. Nothing to do (and `Ok`) when the old table is absent.
pub fn convert(tx: &Transaction<'_>, flush_bytes: usize) -> rusqlite::Result<Converted> {
    let old: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'guide_programmes')",
        [],
        |r| r.get(0),
    )?;
    let mut done = Converted::default();
    if !old {
        return Ok(done);
    }
    {
        let mut channels = tx.prepare("SELECT id FROM guide_channels ORDER BY id")?;
        // The listing order: start, then stop (none first, as NO_STOP sorts), then body
        // (SQLite compares blobs as bytes, like a slice); offsets last, for determinism.
        // The old (channel_id, start) index finds the channel's rows.
        let mut programmes = tx.prepare(
            "SELECT start, start_offset, stop, stop_offset, body FROM guide_programmes
             WHERE channel_id = ?1
             ORDER BY start, stop, body, start_offset, stop_offset",
        )?;
        let mut insert =
            tx.prepare("INSERT INTO guide_listings (channel_id, part, data) VALUES (?1, ?2, ?3)")?;
        let mut data = Vec::new();
        let mut rows = channels.query([])?;
        while let Some(row) = rows.next()? {
            let channel: i64 = row.get(0)?;
            let mut part: i64 = 0;
            let mut flush = |data: &mut Vec<u8>, done: &mut Converted| -> rusqlite::Result<()> {
                part += 1;
                done.parts += 1;
                insert.execute(params![channel, part, data.as_slice()])?;
                data.clear();
                Ok(())
            };
            data.clear();
            let mut records = programmes.query([channel])?;
            while let Some(p) = records.next()? {
                let start = XmltvTime {
                    utc: p.get(0)?,
                    offset: p.get(1)?,
                };
                // As the previous release read it: a stop without an offset is UTC.
                let stop = match p.get::<_, Option<i64>>(2)? {
                    Some(utc) => Some(XmltvTime {
                        utc,
                        offset: p.get::<_, Option<i32>>(3)?.unwrap_or(0),
                    }),
                    None => None,
                };
                let body = p.get_ref(4)?.as_blob().map_err(rusqlite::Error::from)?;
                listing::push(&mut data, start, stop, body);
                done.programmes += 1;
                if data.len() >= flush_bytes {
                    flush(&mut data, &mut done)?;
                }
            }
            if !data.is_empty() {
                flush(&mut data, &mut done)?;
            }
            if part > 0 {
                done.channels += 1;
            }
        }
    }
    tx.execute_batch(
        "DROP INDEX IF EXISTS guide_programmes_by_channel;
         DROP TABLE guide_programmes;",
    )?;
    if done.programmes > 0 {
        crate::info!(
            "database: carried {} stored guide programmes of {} channels over to the new guide store",
            done.programmes,
            done.channels
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
