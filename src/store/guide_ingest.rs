//! Guide ingest in two halves, so that parsing (the slow half) can run on a worker thread
//! while the one writer stores other sources: [`parse`] reads a guide into a spool file
//! (channels and sorted listing parts, in the order they are to be stored; an anonymous
//! temporary file, gone when dropped), and [`store`] replays a spool into the guide tables
//! inside the caller's transaction. Memory holds the per-channel buffers of
//! [`Listings`] (bounded by [`super::listing::FLUSH_BYTES`]) and one small entry per channel.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

use rusqlite::{Transaction, params};

use super::guide::{GuideStoreError, IngestStats};
use super::listing::Listings;
use crate::parse::xmltv::tree;
use crate::parse::xmltv::{Item, Warning, XmltvReader};

type Result<T> = std::result::Result<T, GuideStoreError>;

/// A guide read into a spool, ready to [`store`]. `Send`: made on a worker, stored by the
/// writer.
pub struct ParsedGuide {
    spool: File,
    /// Programmes per channel, by the channel's index in the spool.
    counts: Vec<u64>,
    channels: u64,
    programmes: u64,
    warnings: Vec<Warning>,
    suppressed_warnings: u64,
    /// Elements skipped because something in them ran past a size cap.
    oversized: u64,
}

impl ParsedGuide {
    /// Programmes read: what [`store`] will store (for a guard that compares before storing).
    pub fn programmes(&self) -> u64 {
        self.programmes
    }
}

const CHANNEL: u8 = b'C';
const DECLARE: u8 = b'D';
const PART: u8 = b'P';

fn put_bytes(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(bytes)
}

/// Read everything `reader` yields into a spool. Touches no database.
pub fn parse(reader: &mut XmltvReader, spool_dir: &std::path::Path) -> Result<ParsedGuide> {
    let mut out = BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(spool_dir)?);
    // Per channel id: index, declared by a <channel> element.
    let mut index: HashMap<String, (u32, bool)> = HashMap::new();
    let mut counts: Vec<u64> = Vec::new();
    let mut listings = Listings::default();
    let (mut channels, mut programmes) = (0u64, 0u64);
    let mut part: i64 = 0;
    let mut flush = |listings: &mut Listings, out: &mut BufWriter<File>| -> Result<()> {
        part += 1;
        listings.flush(|idx, data| -> Result<()> {
            out.write_all(&[PART])?;
            out.write_all(&(idx as u32).to_le_bytes())?;
            out.write_all(&part.to_le_bytes())?;
            put_bytes(out, data)?;
            Ok(())
        })
    };
    let mut body = Vec::with_capacity(1024);
    let mut seq: i64 = 0;
    while let Some(item) = reader.next_item()? {
        seq += 1;
        match item {
            Item::Channel(c) => {
                body.clear();
                tree::encode(&c.attrs, &c.children, &mut body);
                match index.get_mut(&c.id) {
                    Some((_, true)) => {
                        reader.warn(format!("duplicate channel id `{}` ignored", c.id))
                    }
                    Some((idx, declared)) => {
                        out.write_all(&[DECLARE])?;
                        out.write_all(&idx.to_le_bytes())?;
                        out.write_all(&seq.to_le_bytes())?;
                        put_bytes(&mut out, &body)?;
                        *declared = true;
                        channels += 1;
                    }
                    None => {
                        out.write_all(&[CHANNEL])?;
                        out.write_all(&seq.to_le_bytes())?;
                        put_bytes(&mut out, c.id.as_bytes())?;
                        out.write_all(&[1])?;
                        put_bytes(&mut out, &body)?;
                        index.insert(c.id, (counts.len() as u32, true));
                        counts.push(0);
                        channels += 1;
                    }
                }
            }
            Item::Programme(p) => {
                let idx = match index.get(&p.channel) {
                    Some((idx, _)) => *idx,
                    None => {
                        out.write_all(&[CHANNEL])?;
                        out.write_all(&seq.to_le_bytes())?;
                        put_bytes(&mut out, p.channel.as_bytes())?;
                        out.write_all(&[0])?;
                        let idx = counts.len() as u32;
                        index.insert(p.channel.clone(), (idx, false));
                        counts.push(0);
                        idx
                    }
                };
                counts[idx as usize] += 1;
                body.clear();
                tree::encode(&p.attrs, &p.children, &mut body);
                if listings.push(i64::from(idx), p.start, p.stop, &body) {
                    flush(&mut listings, &mut out)?;
                }
                programmes += 1;
            }
        }
    }
    flush(&mut listings, &mut out)?;
    let mut spool = out.into_inner().map_err(|e| e.into_error())?;
    spool.rewind()?;
    Ok(ParsedGuide {
        spool,
        counts,
        channels,
        programmes,
        suppressed_warnings: reader.suppressed_warnings(),
        oversized: reader.oversized(),
        warnings: reader.take_warnings(),
    })
}

fn get_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn get_i64(r: &mut impl Read) -> std::io::Result<i64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(i64::from_le_bytes(b))
}

fn get_bytes(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let len = get_u32(r)? as usize;
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)
}

/// Replace everything stored for `source` with `parsed`, inside the caller's transaction (the
/// caller commits; dropping it rolls back).
pub fn store(tx: &Transaction<'_>, source: &str, parsed: ParsedGuide) -> Result<IngestStats> {
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
        "DELETE FROM guide_listings WHERE channel_id IN (SELECT id FROM guide_channels WHERE source_id = ?1)",
        [source_id],
    )?;
    tx.execute(
        "DELETE FROM guide_channels WHERE source_id = ?1",
        [source_id],
    )?;
    let mut insert_channel = tx.prepare_cached(
        "INSERT INTO guide_channels (source_id, xmltv_id, seq, body, programmes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut declare_channel =
        tx.prepare_cached("UPDATE guide_channels SET body = ?2, seq = ?3 WHERE id = ?1")?;
    let mut insert_part = tx.prepare_cached(
        "INSERT INTO guide_listings (channel_id, part, data) VALUES (?1, ?2, ?3)",
    )?;
    let mut input = BufReader::with_capacity(1 << 20, &parsed.spool);
    let mut rows: Vec<i64> = Vec::with_capacity(parsed.counts.len());
    let (mut text, mut data) = (Vec::new(), Vec::new());
    let corrupt = || std::io::Error::other("guide spool: bad record");
    loop {
        let mut op = [0u8];
        if input.read(&mut op)? == 0 {
            break;
        }
        match op[0] {
            CHANNEL => {
                let seq = get_i64(&mut input)?;
                get_bytes(&mut input, &mut text)?;
                let id = std::str::from_utf8(&text).map_err(|_| corrupt())?;
                let mut declared = [0u8];
                input.read_exact(&mut declared)?;
                let body = if declared[0] == 1 {
                    get_bytes(&mut input, &mut data)?;
                    Some(data.as_slice())
                } else {
                    None
                };
                let count = parsed.counts.get(rows.len()).copied().unwrap_or(0);
                insert_channel.execute(params![source_id, id, seq, body, count as i64])?;
                rows.push(tx.last_insert_rowid());
            }
            DECLARE => {
                let idx = get_u32(&mut input)? as usize;
                let seq = get_i64(&mut input)?;
                get_bytes(&mut input, &mut data)?;
                let row = rows.get(idx).ok_or_else(corrupt)?;
                declare_channel.execute(params![row, data, seq])?;
            }
            PART => {
                let idx = get_u32(&mut input)? as usize;
                let part = get_i64(&mut input)?;
                get_bytes(&mut input, &mut data)?;
                let row = rows.get(idx).ok_or_else(corrupt)?;
                insert_part.execute(params![row, part, data])?;
            }
            _ => return Err(corrupt().into()),
        }
    }
    tx.execute(
        "UPDATE guide_sources SET channels = ?2, programmes = ?3 WHERE id = ?1",
        params![source_id, parsed.channels as i64, parsed.programmes as i64],
    )?;
    Ok(IngestStats {
        channels: parsed.channels,
        programmes: parsed.programmes,
        warnings: parsed.warnings,
        suppressed_warnings: parsed.suppressed_warnings,
        oversized: parsed.oversized,
    })
}
