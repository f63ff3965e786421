//! Guide tables: the last good copy of every XMLTV source, one row per channel and per
//! programme. A source is replaced whole inside one transaction, so a guide that fails half
//! way (truncated, not XML) leaves the previous copy in place. Programme bodies (attributes and
//! children other than channel, start and stop) are stored in the compact binary form of
//! [`crate::parse::xmltv::tree`]; times as UTC epoch seconds plus the offset they were written
//! with, so the writer can show the source's own wall-clock times.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::guide::time::XmltvTime;
use crate::parse::xmltv::tree::{self, CodecError, Node};
use crate::parse::xmltv::{GuideChannel, Item, Warning, XmltvError, XmltvReader};

/// Tables and indexes, for the migration list. Idempotent.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS guide_sources (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    channels    INTEGER NOT NULL DEFAULT 0,
    programmes  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS guide_channels (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES guide_sources(id) ON DELETE CASCADE,
    xmltv_id    TEXT NOT NULL,
    -- position in the file, so listings follow the guide's order
    seq         INTEGER NOT NULL,
    -- NULL when programmes name a channel the guide never declares
    body        BLOB,
    programmes  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source_id, xmltv_id)
);
CREATE TABLE IF NOT EXISTS guide_programmes (
    channel_id   INTEGER NOT NULL REFERENCES guide_channels(id) ON DELETE CASCADE,
    start        INTEGER NOT NULL,
    start_offset INTEGER NOT NULL,
    stop         INTEGER,
    stop_offset  INTEGER,
    body         BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS guide_programmes_by_channel ON guide_programmes (channel_id, start);
";

/// What can go wrong storing or reading guides.
#[derive(Debug, thiserror::Error)]
pub enum GuideStoreError {
    #[error(transparent)]
    Read(#[from] XmltvError),
    #[error("guide database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("guide database: {0}")]
    Corrupt(#[from] CodecError),
}

type Result<T> = std::result::Result<T, GuideStoreError>;

/// What one ingest stored.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub channels: u64,
    pub programmes: u64,
    pub warnings: Vec<Warning>,
    /// Warnings past the reader's cap, counted only.
    pub suppressed_warnings: u64,
    /// Elements the reader skipped at a size cap.
    pub oversized: u64,
}

/// A guide channel as stored.
#[derive(Debug, Clone)]
pub struct StoredChannel {
    pub source: String,
    pub id: String,
    /// `None` when the guide has programmes for this id but no `<channel>` element.
    pub channel: Option<GuideChannel>,
    pub programmes: u64,
}

/// A programme as stored, body decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProgramme {
    pub start: XmltvTime,
    pub stop: Option<XmltvTime>,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    /// The stored body, for cheap exact-duplicate checks.
    pub raw: Vec<u8>,
}

/// Read `path` and replace source `source` with it, in a transaction of its own: on any error
/// the previous copy stays.
pub fn ingest_file(
    conn: &Connection,
    source: &str,
    path: &Path,
    max_size: u64,
) -> Result<IngestStats> {
    let mut reader = XmltvReader::open(path, max_size)?;
    let tx = conn.unchecked_transaction()?;
    let stats = replace_source(&tx, source, &mut reader)?;
    tx.commit()?;
    Ok(stats)
}

/// Replace everything stored for `source` with what `reader` yields, streaming, inside the
/// caller's transaction (the caller commits; dropping it rolls back).
pub fn replace_source(
    tx: &Transaction<'_>,
    source: &str,
    reader: &mut XmltvReader,
) -> Result<IngestStats> {
    tx.execute(
        "INSERT INTO guide_sources (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
        [source],
    )?;
    let source_id: i64 = tx.query_row(
        "SELECT id FROM guide_sources WHERE name = ?1",
        [source],
        |r| r.get(0),
    )?;
    tx.execute(
        "DELETE FROM guide_programmes WHERE channel_id IN (SELECT id FROM guide_channels WHERE source_id = ?1)",
        [source_id],
    )?;
    tx.execute(
        "DELETE FROM guide_channels WHERE source_id = ?1",
        [source_id],
    )?;

    let mut insert_channel = tx.prepare_cached(
        "INSERT INTO guide_channels (source_id, xmltv_id, seq, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut declare_channel =
        tx.prepare_cached("UPDATE guide_channels SET body = ?2, seq = ?3 WHERE id = ?1")?;
    let mut insert_programme = tx.prepare_cached(
        "INSERT INTO guide_programmes (channel_id, start, start_offset, stop, stop_offset, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    // Per channel id: row id, programme count, declared by a <channel> element. Small: one
    // entry per channel, not per programme.
    let mut rows: HashMap<String, (i64, u64, bool)> = HashMap::new();
    let mut stats = IngestStats::default();
    let mut body = Vec::with_capacity(1024);
    let mut seq: i64 = 0;
    while let Some(item) = reader.next_item()? {
        seq += 1;
        match item {
            Item::Channel(c) => {
                body.clear();
                tree::encode(&c.attrs, &c.children, &mut body);
                match rows.get_mut(&c.id) {
                    Some((_, _, true)) => {
                        reader.warn(format!("duplicate channel id `{}` ignored", c.id))
                    }
                    Some((row, _, declared)) => {
                        declare_channel.execute(params![*row, body, seq])?;
                        *declared = true;
                        stats.channels += 1;
                    }
                    None => {
                        insert_channel.execute(params![source_id, c.id, seq, body])?;
                        rows.insert(c.id, (tx.last_insert_rowid(), 0, true));
                        stats.channels += 1;
                    }
                }
            }
            Item::Programme(p) => {
                let row = match rows.get_mut(&p.channel) {
                    Some(entry) => entry,
                    None => {
                        insert_channel.execute(params![
                            source_id,
                            p.channel,
                            seq,
                            Option::<Vec<u8>>::None
                        ])?;
                        let row = tx.last_insert_rowid();
                        rows.entry(p.channel.clone()).or_insert((row, 0, false))
                    }
                };
                row.1 += 1;
                body.clear();
                tree::encode(&p.attrs, &p.children, &mut body);
                insert_programme.execute(params![
                    row.0,
                    p.start.utc,
                    p.start.offset,
                    p.stop.map(|t| t.utc),
                    p.stop.map(|t| t.offset),
                    body
                ])?;
                stats.programmes += 1;
            }
        }
    }
    let mut set_count =
        tx.prepare_cached("UPDATE guide_channels SET programmes = ?2 WHERE id = ?1")?;
    for (row, count, _) in rows.values() {
        set_count.execute(params![row, *count as i64])?;
    }
    tx.execute(
        "UPDATE guide_sources SET channels = ?2, programmes = ?3 WHERE id = ?1",
        params![source_id, stats.channels as i64, stats.programmes as i64],
    )?;
    stats.suppressed_warnings = reader.suppressed_warnings();
    stats.oversized = reader.oversized();
    stats.warnings = reader.take_warnings();
    Ok(stats)
}

/// Remove a source's guide (e.g. a source removed from the configuration).
pub fn remove_source(conn: &Connection, source: &str) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "DELETE FROM guide_programmes WHERE channel_id IN
           (SELECT c.id FROM guide_channels c JOIN guide_sources s ON s.id = c.source_id WHERE s.name = ?1)",
        [source],
    )?;
    tx.execute(
        "DELETE FROM guide_channels WHERE source_id IN (SELECT id FROM guide_sources WHERE name = ?1)",
        [source],
    )?;
    tx.execute("DELETE FROM guide_sources WHERE name = ?1", [source])?;
    tx.commit()?;
    Ok(())
}

fn decode_channel(id: &str, body: Option<Vec<u8>>) -> Result<Option<GuideChannel>> {
    let Some(body) = body else { return Ok(None) };
    let (attrs, children) = tree::decode(&body)?;
    Ok(Some(GuideChannel {
        id: id.to_string(),
        attrs,
        children,
    }))
}

/// Every channel of `sources`, source by source in the order given, each in file order.
pub fn list_channels(conn: &Connection, sources: &[&str]) -> Result<Vec<StoredChannel>> {
    let mut out = Vec::new();
    for_each_channel(conn, sources, |c| {
        out.push(c);
        Ok(())
    })?;
    Ok(out)
}

/// The channels of `sources`, one at a time (in source order, then guide order), so a caller
/// that keeps only a little of each never holds every decoded channel at once.
pub fn for_each_channel(
    conn: &Connection,
    sources: &[&str],
    mut f: impl FnMut(StoredChannel) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.xmltv_id, c.body, c.programmes FROM guide_channels c
         JOIN guide_sources s ON s.id = c.source_id WHERE s.name = ?1 ORDER BY c.seq",
    )?;
    for source in sources {
        let mut rows = stmt.query([source])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let channel = decode_channel(&id, row.get(1)?)?;
            f(StoredChannel {
                source: source.to_string(),
                id,
                channel,
                programmes: row.get::<_, i64>(2)? as u64,
            })?;
        }
    }
    Ok(())
}

/// One channel of one source.
pub fn channel(conn: &Connection, source: &str, id: &str) -> Result<Option<StoredChannel>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.body, c.programmes FROM guide_channels c
         JOIN guide_sources s ON s.id = c.source_id WHERE s.name = ?1 AND c.xmltv_id = ?2",
    )?;
    let row = stmt
        .query_row(params![source, id], |r| {
            Ok((r.get::<_, Option<Vec<u8>>>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    let Some((body, programmes)) = row else {
        return Ok(None);
    };
    Ok(Some(StoredChannel {
        source: source.to_string(),
        id: id.to_string(),
        channel: decode_channel(id, body)?,
        programmes: programmes as u64,
    }))
}

/// Whether `source` has at least one programme for channel `id` (an index lookup).
/// How many programmes the last good copy of `source` holds; `None` when there is no copy.
pub fn stored_programmes(conn: &Connection, source: &str) -> Result<Option<u64>> {
    Ok(conn
        .query_row(
            "SELECT programmes FROM guide_sources WHERE name = ?1",
            [source],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|n| n.max(0) as u64))
}

pub fn has_programmes(conn: &Connection, source: &str, id: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM guide_programmes p
           JOIN guide_channels c ON c.id = p.channel_id
           JOIN guide_sources s ON s.id = c.source_id
           WHERE s.name = ?1 AND c.xmltv_id = ?2)",
    )?;
    Ok(stmt.query_row(params![source, id], |r| r.get(0))?)
}

/// Call `each` with the programmes of channel `id` in `source` that overlap `[from, to)` (UTC
/// epoch seconds, as stored: unshifted), ordered by start, then stop, then body, so exact
/// duplicates are adjacent. A programme without a stop is an instant at its start. Streams:
/// one programme in memory at a time.
pub fn programmes<E>(
    conn: &Connection,
    source: &str,
    id: &str,
    from: i64,
    to: i64,
    mut each: impl FnMut(StoredProgramme) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<GuideStoreError>,
{
    let sql = || -> Result<_> {
        Ok(conn.prepare_cached(
            "SELECT p.start, p.start_offset, p.stop, p.stop_offset, p.body FROM guide_programmes p
             JOIN guide_channels c ON c.id = p.channel_id
             JOIN guide_sources s ON s.id = c.source_id
             WHERE s.name = ?1 AND c.xmltv_id = ?2 AND p.start < ?4 AND COALESCE(p.stop, p.start + 1) > ?3
             ORDER BY p.start, p.stop, p.body",
        )?)
    };
    let mut stmt = sql()?;
    let mut rows = stmt
        .query(params![source, id, from, to])
        .map_err(GuideStoreError::from)?;
    while let Some(row) = rows.next().map_err(GuideStoreError::from)? {
        let read = || -> Result<StoredProgramme> {
            let start = XmltvTime {
                utc: row.get(0)?,
                offset: row.get(1)?,
            };
            let stop = match (row.get::<_, Option<i64>>(2)?, row.get::<_, Option<i32>>(3)?) {
                (Some(utc), offset) => Some(XmltvTime {
                    utc,
                    offset: offset.unwrap_or(0),
                }),
                _ => None,
            };
            let raw: Vec<u8> = row.get(4)?;
            let (attrs, children) = tree::decode(&raw)?;
            Ok(StoredProgramme {
                start,
                stop,
                attrs,
                children,
                raw,
            })
        };
        each(read()?)?;
    }
    Ok(())
}
