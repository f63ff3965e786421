//! Guide tables: the last good copy of every XMLTV source, one row per channel, its programmes
//! in start order in a *listing* ([`super::listing`]: one blob per channel, rarely a few
//! parts). A source is replaced whole inside one transaction, so a guide that fails half way
//! (truncated, not XML) leaves the previous copy in place. Bodies (attributes and children
//! other than id, channel, start and stop) are stored in the compact binary form of
//! [`crate::parse::xmltv::tree`], undeclared elements included (the writer decides per proxy
//! what to keep); times as UTC epoch seconds plus the offset they were written with, so the
//! writer can show the source's own wall-clock times.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub use super::guide_ingest::{ParsedGuide, parse, store};
use super::listing::{self, Truncated};
use crate::guide::time::XmltvTime;
use crate::parse::xmltv::tree::{self, CodecError, Node};
use crate::parse::xmltv::{GuideChannel, Warning, XmltvError, XmltvReader};

/// Tables and indexes of the first guide store (one row per programme), for the migration
/// list. Released: never edited; [`LISTINGS_SCHEMA`] replaces its programme table.
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

/// The migration to listings: programmes move from one row each to one listing per channel
/// (`guide_listings`, a few parts at most). The old programme rows are converted, not dropped:
/// `store::guide_migrate::convert` runs in this migration's transaction, right after this
/// SQL, and drops `guide_programmes` once its rows are listings, so a guide that cannot be
/// fetched after the upgrade still has its last good copy.
pub const LISTINGS_SCHEMA: &str = "
CREATE TABLE guide_listings (
    channel_id  INTEGER NOT NULL REFERENCES guide_channels(id) ON DELETE CASCADE,
    -- parts in ingest order; each holds sorted records
    part        INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (channel_id, part)
);
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
    #[error("guide database: {0}")]
    Listing(#[from] Truncated),
    #[error("guide spool: {0}")]
    Spool(#[from] std::io::Error),
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

/// Replace everything stored for `source` with what `reader` yields, inside the caller's
/// transaction (the caller commits; dropping it rolls back). [`parse`] then [`store`] do the
/// same in two steps, so the parse can run elsewhere and a caller can look at the count first.
pub fn replace_source(
    tx: &Transaction<'_>,
    source: &str,
    reader: &mut XmltvReader,
) -> Result<IngestStats> {
    let parsed = parse(reader, &std::env::temp_dir())?;
    store(tx, source, parsed)
}

/// Remove a source's guide (e.g. a source removed from the configuration).
pub fn remove_source(conn: &Connection, source: &str) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "DELETE FROM guide_listings WHERE channel_id IN
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

/// Whether `source` has at least one programme for channel `id` (an index lookup).
pub fn has_programmes(conn: &Connection, source: &str, id: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM guide_channels c
           JOIN guide_sources s ON s.id = c.source_id
           WHERE s.name = ?1 AND c.xmltv_id = ?2 AND c.programmes > 0)",
    )?;
    Ok(stmt.query_row(params![source, id], |r| r.get(0))?)
}

/// The listing parts of channel `id` in `source`, in part order, into `parts` (cleared;
/// its buffers are reused).
pub fn listing_parts(
    conn: &Connection,
    source: &str,
    id: &str,
    parts: &mut Vec<Vec<u8>>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.data FROM guide_listings l
         JOIN guide_channels c ON c.id = l.channel_id
         JOIN guide_sources s ON s.id = c.source_id
         WHERE s.name = ?1 AND c.xmltv_id = ?2 ORDER BY l.part",
    )?;
    let mut rows = stmt.query(params![source, id])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let data = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        if parts.len() == n {
            parts.push(Vec::new());
        }
        parts[n].clear();
        parts[n].extend_from_slice(data);
        n += 1;
    }
    parts.truncate(n);
    Ok(())
}

/// Call `each` with the records of channel `id` in `source` that overlap `[from, to)` (UTC
/// epoch seconds, as stored: unshifted), ordered by start, then stop, then body, so exact
/// duplicates are adjacent. A programme without a stop is an instant at its start. Holds the
/// one channel's listing in memory, borrowed by the records.
pub fn each_record<E>(
    conn: &Connection,
    source: &str,
    id: &str,
    from: i64,
    to: i64,
    parts: &mut Vec<Vec<u8>>,
    mut each: impl FnMut(listing::Record<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<GuideStoreError>,
{
    listing_parts(conn, source, id, parts)?;
    if let [one] = parts.as_slice() {
        for r in listing::Records::new(one) {
            let r = r.map_err(GuideStoreError::from)?;
            if r.overlaps(from, to) {
                each(r)?;
            }
        }
    } else {
        for r in listing::merge(parts).map_err(GuideStoreError::from)? {
            if r.overlaps(from, to) {
                each(r)?;
            }
        }
    }
    Ok(())
}

/// [`each_record`] with every body decoded, for callers that want the tree.
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
    let mut parts = Vec::new();
    each_record(conn, source, id, from, to, &mut parts, |r| {
        let (attrs, children) = tree::decode(r.body()).map_err(GuideStoreError::from)?;
        each(StoredProgramme {
            start: r.start(),
            stop: r.stop(),
            attrs,
            children,
            raw: r.body().to_vec(),
        })
    })
}
