//! Sources and their channels. A source's channels are replaced in one transaction, so a
//! failed or interrupted ingest leaves the previous copy whole. The pipeline reads them back a
//! page at a time, and only from active sources: the `active` filter is in the query itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, now_ms};
use crate::model::{Channel, codec};

/// What the store knows of a source.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub name: String,
    pub kind: String,
    pub active: bool,
    pub items: Option<u64>,
    pub bytes: Option<u64>,
    pub content_sha256: Option<String>,
    pub updated_at: Option<i64>,
}

/// The result of replacing a source's channels.
#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    pub items: u64,
}

/// One page of a source's channels, and where the next page starts.
pub struct ChannelPage {
    pub channels: Vec<Channel>,
    pub last_pos: Option<i64>,
}

impl Store {
    /// Make the `sources` table agree with the configuration: every configured source exists
    /// with its kind and `active` flag; sources no longer configured become inactive (their
    /// data stays until a later cleanup, and no query for the pipeline reads it).
    pub fn sync_sources<'a>(
        &mut self,
        sources: impl IntoIterator<Item = (&'a str, &'a str, bool)>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE sources SET active = 0", [])?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO sources (name, kind, active) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, active = excluded.active",
            )?;
            for (name, kind, active) in sources {
                upsert.execute(params![name, kind, active])?;
            }
        }
        tx.commit()
            .context("cannot update sources in the database")?;
        Ok(())
    }

    /// Replace the channels of `source` with `channels`, in one transaction. When the iterator
    /// yields an error, or `cancel` is set, nothing changes.
    pub fn replace_channels<I>(
        &mut self,
        source: &str,
        channels: I,
        bytes: u64,
        content_key: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<IngestSummary>
    where
        I: IntoIterator<Item = Result<Channel>>,
    {
        self.replace_channels_with(source, bytes, content_key, cancel, |sink| {
            channels.into_iter().try_for_each(|ch| sink(ch?))
        })
    }

    /// Replace the channels of `source` with those `fill` pushes into the sink it is given, in
    /// one transaction: for producers that push (a streaming JSON reader) rather than iterate.
    /// When `fill` or the sink fails, or `cancel` is set, nothing changes.
    pub fn replace_channels_with(
        &mut self,
        source: &str,
        bytes: u64,
        content_key: Option<&str>,
        cancel: &AtomicBool,
        fill: impl FnOnce(&mut dyn FnMut(Channel) -> Result<()>) -> Result<()>,
    ) -> Result<IngestSummary> {
        self.replace_channels_guarded(source, bytes, content_key, cancel, |_| Ok(()), fill)
    }

    /// [`Store::replace_channels_with`], asking `accept` with the number of channels read
    /// before anything is committed: when it refuses (the shrink guard), the transaction rolls
    /// back and the previous copy stays whole.
    pub fn replace_channels_guarded(
        &mut self,
        source: &str,
        bytes: u64,
        content_key: Option<&str>,
        cancel: &AtomicBool,
        accept: impl FnOnce(u64) -> Result<()>,
        fill: impl FnOnce(&mut dyn FnMut(Channel) -> Result<()>) -> Result<()>,
    ) -> Result<IngestSummary> {
        let tx = self.conn.transaction()?;
        let id: i64 = tx
            .query_row("SELECT id FROM sources WHERE name = ?1", [source], |r| {
                r.get(0)
            })
            .with_context(|| format!("source `{source}` is not in the database"))?;
        tx.execute("DELETE FROM channels WHERE source_id = ?1", [id])?;
        let mut items: u64 = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO channels (source_id, pos, data) VALUES (?1, ?2, ?3)",
            )?;
            let mut buf = Vec::with_capacity(512);
            let mut sink = |ch: Channel| -> Result<()> {
                if items.is_multiple_of(1024) && cancel.load(Ordering::Relaxed) {
                    bail!("interrupted");
                }
                buf.clear();
                codec::encode(&ch, &mut buf);
                insert.execute(params![id, items as i64, &buf])?;
                items += 1;
                Ok(())
            };
            fill(&mut sink)?;
        }
        accept(items)?;
        tx.execute(
            "UPDATE sources SET items = ?2, bytes = ?3, content_sha256 = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, items as i64, bytes as i64, content_key, now_ms()],
        )?;
        tx.commit()
            .with_context(|| format!("cannot store the channels of `{source}`"))?;
        Ok(IngestSummary { items })
    }

    /// What the store knows of `source`, if anything.
    pub fn source_record(&self, source: &str) -> Result<Option<SourceRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, kind, active, items, bytes, content_sha256, updated_at
                 FROM sources WHERE name = ?1",
                [source],
                |r| {
                    Ok(SourceRecord {
                        name: r.get(0)?,
                        kind: r.get(1)?,
                        active: r.get(2)?,
                        items: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                        bytes: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                        content_sha256: r.get(5)?,
                        updated_at: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// Whether a last good copy of `source` exists.
    pub fn has_copy(&self, source: &str) -> Result<bool> {
        Ok(self
            .source_record(source)?
            .is_some_and(|r| r.updated_at.is_some()))
    }
}

/// Read the next page of an active source's channels, after position `after` (exclusive).
/// The `active` flag is part of the query: an inactive source reads as empty.
pub fn read_page(
    conn: &Connection,
    source: &str,
    source_name: &Arc<str>,
    after: Option<i64>,
    limit: usize,
) -> Result<ChannelPage> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.pos, c.data FROM channels c JOIN sources s ON s.id = c.source_id
         WHERE s.name = ?1 AND s.active = 1 AND c.pos > ?2
         ORDER BY c.pos LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![source, after.unwrap_or(-1), limit as i64])?;
    let mut channels = Vec::with_capacity(limit.min(4096));
    let mut last_pos = None;
    while let Some(row) = rows.next()? {
        let pos: i64 = row.get(0)?;
        let data = row.get_ref(1)?.as_blob()?;
        let ch = codec::decode(data, source_name.clone()).with_context(|| {
            format!("corrupt channel {pos} of source `{source}` in the database")
        })?;
        channels.push(ch);
        last_pos = Some(pos);
    }
    Ok(ChannelPage { channels, last_pos })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> Channel {
        Channel {
            name: name.into(),
            url: format!("http://x/{name}"),
            ..Default::default()
        }
    }

    #[test]
    fn failed_ingest_keeps_previous_copy_and_inactive_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut store = Store::open(&db).unwrap();
        let cancel = AtomicBool::new(false);
        store.sync_sources([("a", "m3u", true)]).unwrap();
        let ok = store
            .replace_channels(
                "a",
                ["1", "2", "3"].map(|n| Ok(channel(n))),
                10,
                None,
                &cancel,
            )
            .unwrap();
        assert_eq!(ok.items, 3);
        let failing = vec![Ok(channel("x")), Err(anyhow::anyhow!("broken"))];
        assert!(
            store
                .replace_channels("a", failing, 5, None, &cancel)
                .is_err()
        );

        let reader = Store::open_reader(&db).unwrap();
        let name: Arc<str> = Arc::from("a");
        let page = read_page(&reader, "a", &name, None, 2).unwrap();
        assert_eq!(
            page.channels
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["1", "2"]
        );
        let page = read_page(&reader, "a", &name, page.last_pos, 2).unwrap();
        assert_eq!(page.channels.len(), 1);

        // A refusal after the last channel (the shrink guard) rolls back too.
        let refused = store.replace_channels_guarded(
            "a",
            1,
            Some("k"),
            &cancel,
            |n| {
                assert_eq!(n, 1);
                anyhow::bail!("too few")
            },
            |sink| sink(channel("only")),
        );
        assert!(refused.is_err());
        let record = store.source_record("a").unwrap().unwrap();
        assert_eq!((record.items, record.content_sha256), (Some(3), None));

        store.sync_sources([("a", "m3u", false)]).unwrap();
        assert!(
            read_page(&reader, "a", &name, None, 10)
                .unwrap()
                .channels
                .is_empty()
        );
        assert!(store.has_copy("a").unwrap());
    }
}
