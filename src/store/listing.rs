//! The stored form of a guide channel's programmes: a *listing*, the channel's programmes as
//! one blob of records in start order, so writing a guide reads one row per channel (rarely a
//! few) and needs no SQL sort and no per-programme row.
//!
//! A record is a fixed 28-byte header, little-endian: body length (u32), start (i64 UTC
//! epoch seconds), start offset (i32 seconds), stop (i64; [`NO_STOP`] when absent), stop
//! offset (i32); then the body in the binary form of [`crate::parse::xmltv::tree`]. Records
//! sort by (start, stop, body), so exact duplicates are adjacent.
//!
//! Ingest buffers programmes per channel ([`Listings`]) and flushes every buffer as one *part*
//! (each part sorted) when the buffers pass a byte budget or the guide ends: a guide grouped by
//! channel (the common case) gives one part per channel; one ordered by time gives a few.

use std::collections::HashMap;

use crate::guide::time::XmltvTime;

/// Stop value of a programme without a stop time.
pub const NO_STOP: i64 = i64::MIN;
const HEADER: usize = 28;

/// Bytes of buffered programmes past which every channel's buffer is flushed as a part.
pub const FLUSH_BYTES: usize = 16 << 20;

/// Append one record to `out`.
pub fn push(out: &mut Vec<u8>, start: XmltvTime, stop: Option<XmltvTime>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&start.utc.to_le_bytes());
    out.extend_from_slice(&start.offset.to_le_bytes());
    let (utc, offset) = stop.map_or((NO_STOP, 0), |t| (t.utc, t.offset));
    out.extend_from_slice(&utc.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(body);
}

/// One record, borrowed from a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The whole record: header and body (equal records are exact duplicates).
    pub raw: &'a [u8],
}

impl<'a> Record<'a> {
    fn i64_at(&self, at: usize) -> i64 {
        i64::from_le_bytes(self.raw[at..at + 8].try_into().expect("8 bytes"))
    }
    fn i32_at(&self, at: usize) -> i32 {
        i32::from_le_bytes(self.raw[at..at + 4].try_into().expect("4 bytes"))
    }
    pub fn start(&self) -> XmltvTime {
        XmltvTime {
            utc: self.i64_at(4),
            offset: self.i32_at(12),
        }
    }
    pub fn stop(&self) -> Option<XmltvTime> {
        let utc = self.i64_at(16);
        (utc != NO_STOP).then(|| XmltvTime {
            utc,
            offset: self.i32_at(24),
        })
    }
    pub fn body(&self) -> &'a [u8] {
        &self.raw[HEADER..]
    }
    /// Whether the programme overlaps `[from, to)`; one without a stop is an instant.
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        let start = self.i64_at(4);
        let stop = match self.i64_at(16) {
            NO_STOP => start.saturating_add(1),
            s => s,
        };
        start < to && stop > from
    }
    fn key(&self) -> (i64, i64, &'a [u8]) {
        (self.i64_at(4), self.i64_at(16), self.body())
    }
}

/// The records of a listing blob, in stored order. `None` (from `next`) ends it; a truncated
/// record is an error.
pub struct Records<'a> {
    data: &'a [u8],
}

impl<'a> Records<'a> {
    pub fn new(data: &'a [u8]) -> Records<'a> {
        Records { data }
    }
}

/// A listing blob that does not hold whole records.
#[derive(Debug, thiserror::Error)]
#[error("guide listing truncated")]
pub struct Truncated;

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, Truncated>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        if self.data.len() < HEADER {
            self.data = &[];
            return Some(Err(Truncated));
        }
        let len = u32::from_le_bytes(self.data[..4].try_into().expect("4 bytes")) as usize;
        let Some(end) = HEADER.checked_add(len).filter(|&e| e <= self.data.len()) else {
            self.data = &[];
            return Some(Err(Truncated));
        };
        let (raw, rest) = self.data.split_at(end);
        self.data = rest;
        Some(Ok(Record { raw }))
    }
}

/// Sort `data`'s records by (start, stop, body), rewriting it in place (via `scratch`).
pub fn sort(data: &mut Vec<u8>, scratch: &mut Vec<u8>) -> Result<(), Truncated> {
    let mut records = Records::new(data).collect::<Result<Vec<_>, _>>()?;
    if records.windows(2).all(|w| w[0].key() <= w[1].key()) {
        return Ok(());
    }
    records.sort_by(|a, b| a.key().cmp(&b.key()));
    scratch.clear();
    for r in &records {
        scratch.extend_from_slice(r.raw);
    }
    drop(records);
    std::mem::swap(data, scratch);
    Ok(())
}

/// The records of several sorted parts, merged into one sorted sequence.
pub fn merge<'a>(parts: &'a [Vec<u8>]) -> Result<Vec<Record<'a>>, Truncated> {
    let mut all = Vec::new();
    for part in parts {
        for r in Records::new(part) {
            all.push(r?);
        }
    }
    all.sort_by(|a, b| a.key().cmp(&b.key()));
    Ok(all)
}

/// Programmes being ingested, buffered per channel row until flushed as parts.
#[derive(Default)]
pub struct Listings {
    /// Channel row id -> its buffered records.
    buffers: HashMap<i64, Vec<u8>>,
    buffered: usize,
    scratch: Vec<u8>,
}

impl Listings {
    /// Buffer one programme of channel row `row`. Returns whether the buffers passed
    /// [`FLUSH_BYTES`] (the caller then calls [`Listings::flush`]).
    pub fn push(
        &mut self,
        row: i64,
        start: XmltvTime,
        stop: Option<XmltvTime>,
        body: &[u8],
    ) -> bool {
        let buf = self.buffers.entry(row).or_default();
        let before = buf.len();
        push(buf, start, stop, body);
        self.buffered += buf.len() - before;
        self.buffered >= FLUSH_BYTES
    }

    /// Hand every non-empty buffer, sorted, to `write` (channel row, part data), and empty
    /// them. Buffers are kept (cleared) only while small, so memory follows the budget.
    pub fn flush<E>(&mut self, mut write: impl FnMut(i64, &[u8]) -> Result<(), E>) -> Result<(), E>
    where
        E: From<Truncated>,
    {
        let mut rows: Vec<i64> = self.buffers.keys().copied().collect();
        rows.sort_unstable();
        for row in rows {
            let mut data = self.buffers.remove(&row).unwrap_or_default();
            if data.is_empty() {
                continue;
            }
            sort(&mut data, &mut self.scratch)?;
            write(row, &data)?;
        }
        self.scratch = Vec::new();
        self.buffered = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(utc: i64) -> XmltvTime {
        XmltvTime { utc, offset: 3600 }
    }

    #[test]
    fn records_round_trip_and_sort_by_start_stop_body() {
        let mut data = Vec::new();
        push(&mut data, t(20), Some(t(30)), b"b");
        push(&mut data, t(10), None, b"a");
        push(&mut data, t(20), Some(t(30)), b"a");
        push(&mut data, t(10), Some(t(20)), b"");
        sort(&mut data, &mut Vec::new()).unwrap();
        let got: Vec<_> = Records::new(&data)
            .map(|r| {
                let r = r.unwrap();
                (r.start().utc, r.stop().map(|s| s.utc), r.body().to_vec())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (10, None, b"a".to_vec()),
                (10, Some(20), vec![]),
                (20, Some(30), b"a".to_vec()),
                (20, Some(30), b"b".to_vec()),
            ]
        );
        let first = Records::new(&data).next().unwrap().unwrap();
        assert_eq!(first.start(), t(10));
        assert!(first.overlaps(10, 11));
        assert!(!first.overlaps(11, 20));
    }

    #[test]
    fn truncated_listing_is_an_error() {
        let mut data = Vec::new();
        push(&mut data, t(1), None, b"body");
        data.pop();
        assert!(Records::new(&data).next().unwrap().is_err());
        assert!(Records::new(&data[..5]).next().unwrap().is_err());
    }

    #[test]
    fn listings_flush_sorted_parts_per_channel() {
        let mut l = Listings::default();
        l.push(2, t(5), None, b"x");
        l.push(1, t(9), None, b"y");
        l.push(1, t(3), None, b"z");
        let mut parts = Vec::new();
        l.flush(|row, data| {
            parts.push((
                row,
                Records::new(data).map(|r| r.unwrap().start().utc).collect(),
            ));
            Ok::<_, Truncated>(())
        })
        .unwrap();
        assert_eq!(parts, vec![(1, vec![3, 9]), (2, vec![5])]);
    }
}
