//! The conversion on databases the previous release wrote: its schema (every migration before
//! [`LISTINGS_SCHEMA`]) filled by its own ingest, ported here unchanged, from real guides;
//! then opened by this release, written as a guide and validated against the XMLTV DTD.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction, params};

use super::*;
use crate::fetch::http::Validators;
use crate::guide::store::{self as guide, LISTINGS_SCHEMA};
use crate::guide::{GuideEntry, GuideIndex, GuideOptions, GuideSource, write_proxy_guide};
use crate::parse::xmltv::{Item, XmltvReader, tree};
use crate::store::Store;
use crate::store::health::{self, FetchKind};
use crate::store::schema;

// The same validation as the guide tests and the integration tests (each loads it once).
#[allow(clippy::duplicate_mod)]
#[path = "../../../tests/support/xmltv.rs"]
mod xmltv_check;

/// 2024-03-01T12:00:00Z.
const NOW: i64 = 1_709_294_400;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/xmltv")
        .join(name)
}

/// The previous release's `store::guide::replace_source` (commit 5a9349f), its SQL and
/// encoding unchanged (errors unwrap, counts stay local): how that release filled
/// `guide_programmes` from a guide.
fn old_release_ingest(tx: &Transaction<'_>, source: &str, reader: &mut XmltvReader) {
    tx.execute(
        "INSERT INTO guide_sources (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
        [source],
    )
    .unwrap();
    let source_id: i64 = tx
        .query_row(
            "SELECT id FROM guide_sources WHERE name = ?1",
            [source],
            |r| r.get(0),
        )
        .unwrap();
    let mut insert_channel = tx
        .prepare_cached(
            "INSERT INTO guide_channels (source_id, xmltv_id, seq, body) VALUES (?1, ?2, ?3, ?4)",
        )
        .unwrap();
    let mut declare_channel = tx
        .prepare_cached("UPDATE guide_channels SET body = ?2, seq = ?3 WHERE id = ?1")
        .unwrap();
    let mut insert_programme = tx
        .prepare_cached(
            "INSERT INTO guide_programmes (channel_id, start, start_offset, stop, stop_offset, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .unwrap();
    let mut rows: HashMap<String, (i64, u64, bool)> = HashMap::new();
    let (mut channels, mut programmes) = (0i64, 0i64);
    let mut body = Vec::with_capacity(1024);
    let mut seq: i64 = 0;
    while let Some(item) = reader.next_item().unwrap() {
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
                        declare_channel.execute(params![*row, body, seq]).unwrap();
                        *declared = true;
                        channels += 1;
                    }
                    None => {
                        insert_channel
                            .execute(params![source_id, c.id, seq, body])
                            .unwrap();
                        rows.insert(c.id, (tx.last_insert_rowid(), 0, true));
                        channels += 1;
                    }
                }
            }
            Item::Programme(p) => {
                let row = match rows.get_mut(&p.channel) {
                    Some(entry) => entry,
                    None => {
                        insert_channel
                            .execute(params![source_id, p.channel, seq, Option::<Vec<u8>>::None])
                            .unwrap();
                        let row = tx.last_insert_rowid();
                        rows.entry(p.channel.clone()).or_insert((row, 0, false))
                    }
                };
                row.1 += 1;
                body.clear();
                tree::encode(&p.attrs, &p.children, &mut body);
                insert_programme
                    .execute(params![
                        row.0,
                        p.start.utc,
                        p.start.offset,
                        p.stop.map(|t| t.utc),
                        p.stop.map(|t| t.offset),
                        body
                    ])
                    .unwrap();
                programmes += 1;
            }
        }
    }
    let mut set_count = tx
        .prepare_cached("UPDATE guide_channels SET programmes = ?2 WHERE id = ?1")
        .unwrap();
    for (row, count, _) in rows.values() {
        set_count.execute(params![row, *count as i64]).unwrap();
    }
    tx.execute(
        "UPDATE guide_sources SET channels = ?2, programmes = ?3 WHERE id = ?1",
        params![source_id, channels, programmes],
    )
    .unwrap();
}

/// A guide as providers send them: `channels` channels, two days of half-hour programmes
/// ordered by time across channels (so a channel's rows are scattered), a wall-clock offset,
/// text that needs escaping and is not ASCII, a programme without a stop, an exact duplicate,
/// a channel only programmes name and one declared after its programmes.
fn provider_guide(path: &Path, channels: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tv>").unwrap();
    for c in 1..channels {
        writeln!(
            out,
            "<channel id=\"c{c}.example\"><display-name lang=\"de\">Sender {c} – Ü</display-name><icon src=\"http://logo.example/{c}.png\"/></channel>"
        )
        .unwrap();
    }
    let slot = 1800;
    let first = NOW - 86_400;
    for s in 0..96i64 {
        for c in 0..=channels {
            let start = first + s * slot;
            let time = |t: i64| {
                // +0100 wall clock.
                let wall = crate::guide::time::XmltvTime {
                    utc: t,
                    offset: 3600,
                };
                wall.to_string()
            };
            let stop = if c == 2 && s == 5 {
                String::new()
            } else {
                format!(" stop=\"{}\"", time(start + slot))
            };
            let id = if c == channels {
                "undeclared.example".to_string()
            } else {
                format!("c{c}.example")
            };
            let programme = format!(
                "<programme start=\"{}\"{stop} channel=\"{id}\"><title lang=\"de\">Folge {s} &amp; mehr – „{c}“</title><desc>Slot {s} on {c} &lt;live&gt;</desc><category lang=\"en\">News</category><episode-num system=\"xmltv_ns\">0.{s}.</episode-num></programme>",
                time(start)
            );
            writeln!(out, "{programme}").unwrap();
            if c == 3 && s == 7 {
                writeln!(out, "{programme}").unwrap();
            }
        }
    }
    // Declared after its programmes.
    writeln!(
        out,
        "<channel id=\"c0.example\"><display-name>Late</display-name></channel>\n</tv>"
    )
    .unwrap();
}

/// A database the previous release wrote: its schema, these guides stored by its ingest, and
/// the validators and content hash a fetch left.
fn old_release_database(path: &Path, guides: &[(&str, PathBuf)]) {
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    schema::migrate_before(&mut conn, LISTINGS_SCHEMA).unwrap();
    for (name, file) in guides {
        let mut reader = XmltvReader::open(file, 1 << 30).unwrap();
        let tx = conn.transaction().unwrap();
        old_release_ingest(&tx, name, &mut reader);
        tx.commit().unwrap();
        health::set_content_hash(&conn, name, FetchKind::Xmltv, "old-key").unwrap();
        let v = Validators {
            etag: Some(format!("\"{name}-etag\"")),
            last_modified: None,
        };
        health::set_validators(&conn, name, FetchKind::Xmltv, &v).unwrap();
    }
}

/// Write one guide of every channel of `sources` from `conn`, validate it, return its bytes.
fn write_all(conn: &Connection, sources: &[&str], dest: &Path) -> (Vec<u8>, u64) {
    let index = GuideIndex::build(
        conn,
        sources
            .iter()
            .map(|s| GuideSource {
                name: s.to_string(),
                shift_ms: 0,
            })
            .collect(),
    )
    .unwrap();
    let entries: Vec<GuideEntry> = guide::list_channels(conn, sources)
        .unwrap()
        .into_iter()
        .map(|c| GuideEntry {
            guide_id: c.id,
            name: "Name".into(),
            logo: None,
        })
        .collect();
    let options = GuideOptions {
        past_days: 2,
        future_days: 2,
        keep: crate::guide::dtd::Keep {
            all: false,
            names: Vec::new(),
        },
        now: NOW,
        placeholders: None,
    };
    let stats = write_proxy_guide(conn, &index, &entries, &options, dest, 0o644).unwrap();
    xmltv_check::validate(dest);
    (std::fs::read(dest).unwrap(), stats.programmes)
}

/// Everything stored for `source`, decoded: channels with their counts, every programme.
fn stored(conn: &Connection, source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for c in guide::list_channels(conn, &[source]).unwrap() {
        out.push(format!("{} {:?} {}", c.id, c.channel, c.programmes));
        guide::programmes(conn, source, &c.id, i64::MIN, i64::MAX, |p| {
            out.push(format!("{p:?}"));
            Ok::<_, guide::GuideStoreError>(())
        })
        .unwrap();
    }
    out
}

#[test]
fn previous_release_guides_survive_the_upgrade_and_write_a_valid_guide() {
    let dir = tempfile::tempdir().unwrap();
    let provider = dir.path().join("provider.xml");
    provider_guide(&provider, 40);
    let guides = [
        ("provider", provider.clone()),
        ("rich", fixture("rich.xml")),
        ("times", fixture("times.xml")),
        ("b", fixture("priority-b.xml")),
    ];
    let names: Vec<&str> = guides.iter().map(|(n, _)| *n).collect();
    let old = dir.path().join("old.db");
    old_release_database(&old, &guides);
    let old_programmes: i64 = Connection::open(&old)
        .unwrap()
        .query_row("SELECT count(*) FROM guide_programmes", [], |r| r.get(0))
        .unwrap();
    assert!(old_programmes > 3800, "{old_programmes}");

    let store = Store::open(&old).unwrap();
    let conn = &store.conn;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version as usize, schema::count());
    let gone: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name LIKE 'guide_programmes%')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!gone, "the old table and its index are dropped");
    // Every programme is there, and the copy is the one this release stores from the same
    // guides, field for field.
    let fresh_path = dir.path().join("fresh.db");
    let fresh = Store::open(&fresh_path).unwrap();
    for (name, file) in &guides {
        guide::ingest_file(&fresh.conn, name, file, 1 << 30).unwrap();
        assert_eq!(
            guide::stored_programmes(conn, name).unwrap(),
            guide::stored_programmes(&fresh.conn, name).unwrap(),
            "{name}"
        );
        assert_eq!(stored(conn, name), stored(&fresh.conn, name), "{name}");
    }
    let total: i64 = guides
        .iter()
        .map(|(n, _)| guide::stored_programmes(conn, n).unwrap().unwrap() as i64)
        .sum();
    assert_eq!(total, old_programmes);
    // Validators and content keys stay: the converted copy is that content's.
    assert_eq!(
        health::validators(conn, "provider", FetchKind::Xmltv)
            .unwrap()
            .etag
            .as_deref(),
        Some("\"provider-etag\"")
    );
    assert_eq!(
        health::content_hash(conn, "rich", FetchKind::Xmltv)
            .unwrap()
            .as_deref(),
        Some("old-key")
    );
    // The guide written from the converted copy is valid and byte for byte the fresh one.
    let (converted, programmes) = write_all(conn, &names, &dir.path().join("converted.xml"));
    let (expected, _) = write_all(&fresh.conn, &names, &dir.path().join("fresh.xml"));
    assert!(programmes > 3800, "{programmes}");
    assert!(converted == expected, "the converted guide differs");
    let text = String::from_utf8(converted).unwrap();
    assert!(text.contains("Folge 95 &amp; mehr – „39“"), "the last slot");
    // And the converted database takes a new copy over the converted one.
    guide::ingest_file(conn, "rich", &fixture("times.xml"), 1 << 30).unwrap();
    assert_eq!(guide::stored_programmes(conn, "rich").unwrap(), Some(3));
}

#[test]
fn a_long_channel_converts_in_parts_of_the_flush_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = Connection::open(&path).unwrap();
    schema::migrate_before(&mut conn, LISTINGS_SCHEMA).unwrap();
    conn.execute_batch(
        "INSERT INTO guide_sources (id, name, channels, programmes) VALUES (1, 'g', 2, 1001);
         INSERT INTO guide_channels (id, source_id, xmltv_id, seq, body, programmes)
           VALUES (1, 1, 'long', 1, NULL, 1000), (2, 1, 'short', 2, NULL, 1), (3, 1, 'none', 3, NULL, 0);",
    )
    .unwrap();
    let mut body = Vec::new();
    tree::encode(&[("lang".into(), "en".into())], &[], &mut body);
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO guide_programmes (channel_id, start, start_offset, stop, stop_offset, body)
                 VALUES (?1, ?2, 0, ?3, 0, ?4)",
            )
            .unwrap();
        // Inserted out of order: the conversion orders them.
        for i in (0..1000i64).rev() {
            let stop = (i % 10 != 0).then_some(i * 60 + 60);
            insert.execute(params![1, i * 60, stop, body]).unwrap();
        }
        insert.execute(params![2, 5, 6, body]).unwrap();
    }
    let budget = 1024;
    let tx = conn.transaction().unwrap();
    tx.execute_batch(LISTINGS_SCHEMA).unwrap();
    let done = convert(&tx, budget).unwrap();
    tx.commit().unwrap();
    assert_eq!(done.programmes, 1001);
    assert_eq!(done.channels, 2);
    let record = 28 + body.len();
    // Never more than the budget and one record buffered.
    let sizes: Vec<(i64, usize)> = conn
        .prepare("SELECT channel_id, length(data) FROM guide_listings ORDER BY channel_id, part")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sizes.len() as u64, done.parts);
    assert!(sizes.len() > 20, "{sizes:?}");
    assert!(sizes.iter().all(|&(_, n)| n < budget + record), "{sizes:?}");
    // Read back merged, in order, all there.
    let mut starts = Vec::new();
    let mut parts = Vec::new();
    guide::each_record(&conn, "g", "long", i64::MIN, i64::MAX, &mut parts, |r| {
        starts.push(r.start().utc);
        assert_eq!(r.stop().is_none(), r.start().utc % 600 == 0);
        Ok::<_, guide::GuideStoreError>(())
    })
    .unwrap();
    assert_eq!(starts, (0..1000).map(|i| i * 60).collect::<Vec<_>>());
    // Idempotent: no old table, nothing to do.
    let tx = conn.transaction().unwrap();
    assert_eq!(convert(&tx, budget).unwrap(), Converted::default());
}
