//! Guide tests end to end on fixtures: ingest into a real SQLite store, match, assemble with
//! priority, shift and window, write, and validate every written file against the XMLTV DTD
//! with `xmllint` and `tv_validate_file` (Debian: libxml2-utils, xmltv-util).

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::*;
use crate::config::EpgMatch;
use crate::parse::xmltv::{Item, XmltvReader};

/// 2024-03-01T12:00:00Z.
const NOW: i64 = 1_709_294_400;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/xmltv")
        .join(name)
}

fn db() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::store::schema::migrate(&mut conn).unwrap();
    conn
}

fn ingest(conn: &Connection, source: &str, file: &str) -> store::IngestStats {
    store::ingest_file(conn, source, &fixture(file), 1 << 30).unwrap()
}

fn source(name: &str, shift_ms: i64) -> GuideSource {
    GuideSource {
        name: name.into(),
        shift_ms,
    }
}

fn entry(id: &str, name: &str, logo: Option<&str>) -> GuideEntry {
    GuideEntry {
        guide_id: id.into(),
        name: name.into(),
        logo: logo.map(str::to_string),
    }
}

fn options(past: u64, future: u64, keep_unknown: bool) -> GuideOptions {
    GuideOptions {
        past_days: past,
        future_days: future,
        keep: crate::guide::dtd::Keep {
            all: keep_unknown,
            names: Vec::new(),
        },
        now: NOW,
        placeholders: None,
    }
}

// The same validation the integration tests use.
#[path = "../../tests/support/xmltv.rs"]
mod xmltv_check;
use xmltv_check::validate;

fn read_back(path: &Path) -> Vec<Item> {
    let mut reader = XmltvReader::open(path, 1 << 30).unwrap();
    let mut items = Vec::new();
    while let Some(item) = reader.next_item().unwrap() {
        items.push(item);
    }
    assert!(reader.warnings().is_empty(), "{:?}", reader.warnings());
    items
}

fn titles(items: &[Item]) -> Vec<(String, String, String)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Programme(p) => Some((
                p.channel.clone(),
                p.start.to_string(),
                crate::parse::xmltv::tree::child_elements(&p.children, "title")
                    .next()
                    .map(|t| t.text())
                    .unwrap_or_default(),
            )),
            Item::Channel(_) => None,
        })
        .collect()
}

#[test]
fn round_trip_keeps_every_declared_element_and_attribute() {
    let conn = db();
    let stats = ingest(&conn, "rich", "rich.xml");
    assert_eq!((stats.channels, stats.programmes), (2, 3));
    let index = GuideIndex::build(&conn, vec![source("rich", 0)]).unwrap();
    let entries = [
        entry("bbc1.uk", "BBC One", None),
        entry("itv.uk", "ITV", None),
    ];
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rich.xml");
    let stats = write_proxy_guide(
        &conn,
        &index,
        &entries,
        &options(30, 30, false),
        &dest,
        0o644,
    )
    .unwrap();
    assert!(stats.dropped.is_empty(), "{:?}", stats.dropped);
    assert_eq!((stats.channels, stats.programmes), (2, 3));
    validate(&dest);
    let original: Vec<Item> = {
        let mut r = XmltvReader::open(&fixture("rich.xml"), 1 << 30).unwrap();
        std::iter::from_fn(|| r.next_item().unwrap()).collect()
    };
    assert_eq!(read_back(&dest), original);
    let text = std::fs::read_to_string(&dest).unwrap();
    assert!(text.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n<tv generator-info-name=\"lineup "
    ));
}

#[test]
fn undeclared_things_are_dropped_and_counted_or_kept() {
    let conn = db();
    ingest(&conn, "oo", "out-of-order.xml");
    let index = GuideIndex::build(&conn, vec![source("oo", 0)]).unwrap();
    let entries = [entry(
        "news.us",
        "News",
        Some("http://playlist.example/logo.png"),
    )];
    let dir = tempfile::tempdir().unwrap();

    let dest = dir.path().join("clean.xml.gz");
    let stats = write_proxy_guide(
        &conn,
        &index,
        &entries,
        &options(30, 30, false),
        &dest,
        0o600,
    )
    .unwrap();
    validate(&dest);
    let dropped: Vec<(&str, u64)> = stats
        .dropped
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        dropped,
        [
            ("channel@x-number", 1),
            ("programme@catchup-id", 1),
            ("series-id", 1),
            ("title@foo", 1)
        ]
    );
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&dest).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    // DTD order, and the guide's own icon wins over the playlist logo.
    let order: Vec<usize> = [
        "<title",
        "<desc",
        "<date",
        "<category>News",
        "<category>Weather",
        "<episode-num",
    ]
    .iter()
    .map(|tag| text.find(tag).unwrap_or_else(|| panic!("{tag} missing")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(!text.contains("playlist.example"));
    assert!(text.contains("start=\"20240301120000 -0500\""));

    let dest = dir.path().join("kept.xml");
    let stats = write_proxy_guide(
        &conn,
        &index,
        &entries,
        &options(30, 30, true),
        &dest,
        0o600,
    )
    .unwrap();
    assert!(stats.dropped.is_empty(), "{:?}", stats.dropped);
    let text = std::fs::read_to_string(&dest).unwrap();
    for kept in [
        "x-number=\"7\"",
        "catchup-id=\"991\"",
        "<series-id system=\"provider\">S-12</series-id>",
        "foo=\"bar\"",
    ] {
        assert!(text.contains(kept), "{kept} missing:\n{text}");
    }
}

#[test]
fn priority_shift_window_sort_and_duplicates() {
    let conn = db();
    ingest(&conn, "a", "priority-a.xml");
    let b = ingest(&conn, "b", "priority-b.xml");
    assert_eq!(b.programmes, 11);
    // b is shifted by +1h; window is [now - 1 day, now + 2 days).
    let index = GuideIndex::build(&conn, vec![source("a", 0), source("b", 3_600_000)]).unwrap();
    assert_eq!(index.provider("one.uk").unwrap().name, "a");
    assert_eq!(
        index.provider("two.uk").unwrap().name,
        "b",
        "a declares two.uk but has no programmes"
    );
    assert!(store::has_programmes(&conn, "b", "undeclared.uk").unwrap());
    assert!(!store::has_programmes(&conn, "a", "two.uk").unwrap());

    let entries = [
        entry("two.uk", "BBC Two", Some("http://playlist.example/two.png")),
        entry("one.uk", "BBC One", None),
        entry("one.uk", "BBC One again", None),
        entry("nowhere.uk", "Not in any guide", None),
        entry("undeclared.uk", "Undeclared", None),
    ];
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("home.xml");
    let stats =
        write_proxy_guide(&conn, &index, &entries, &options(1, 2, false), &dest, 0o644).unwrap();
    validate(&dest);
    assert_eq!(
        (stats.channels, stats.programmes, stats.duplicates),
        (3, 7, 1)
    );
    let items = read_back(&dest);
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::Channel(c) => Some(c.id.as_str()),
            Item::Programme(_) => None,
        })
        .collect();
    assert_eq!(
        ids,
        ["two.uk", "one.uk", "undeclared.uk"],
        "playlist order, once each"
    );
    let s = |c: &str, t: &str, title: &str| (c.to_string(), t.to_string(), title.to_string());
    assert_eq!(
        titles(&items),
        [
            s(
                "two.uk",
                "20240229110000 +0000",
                "B: overlaps the window start after shift"
            ),
            s("two.uk", "20240301130000 +0000", "B: lunch"),
            s("two.uk", "20240301150000 +0100", "B: afternoon"),
            s(
                "two.uk",
                "20240303113000 +0000",
                "B: starts before the window end after shift"
            ),
            s("one.uk", "20240301110000 +0000", "A: late morning"),
            s("one.uk", "20240301120000 +0000", "A: lunch"),
            s(
                "undeclared.uk",
                "20240301100000 +0000",
                "Channel never declared"
            ),
        ]
    );
    let text = std::fs::read_to_string(&dest).unwrap();
    assert!(
        text.contains("<icon src=\"http://playlist.example/two.png\"/>"),
        "playlist logo used when the guide has no icon"
    );
    assert!(
        text.contains("<display-name>Undeclared</display-name>"),
        "playlist name for an undeclared channel"
    );
    assert!(
        !text.contains("B: never used")
            && !text.contains("too old")
            && !text.contains("at the window end")
    );
}

#[test]
fn matching_by_id_then_name() {
    let conn = db();
    ingest(&conn, "a", "priority-a.xml");
    ingest(&conn, "b", "priority-b.xml");
    let index = GuideIndex::build(&conn, vec![source("a", 0), source("b", 0)]).unwrap();
    let m = |id: &str, name: &str, mode| {
        index
            .match_channel(id, name, mode)
            .map(|m| (m.guide_id, m.by))
    };
    let id = |s: &str| Some((s.to_string(), MatchedBy::Id));
    let name = |s: &str| Some((s.to_string(), MatchedBy::Name));
    let both = EpgMatch::IdThenName;
    assert_eq!(m("one.uk", "whatever", both), id("one.uk"));
    assert_eq!(
        m("ONE.UK", "", EpgMatch::Id),
        id("one.uk"),
        "ASCII case is ignored when unambiguous"
    );
    assert_eq!(m("", "UK: BBC One HD", EpgMatch::Id), None);
    assert_eq!(m("", "UK: BBC One HD", both), name("one.uk"));
    assert_eq!(m("wrong.id", "BBC One FHD", both), name("one.uk"));
    assert_eq!(m("", "BBC One +1", both), name("one-plus1.uk"));
    assert_eq!(m("", "BBC One +1 4K", both), name("one-plus1.uk"));
    assert_eq!(m("", "TELE QUEBEC (720p)", both), name("tq.ca"));
    assert_eq!(
        m("", "Sky Sports", both),
        None,
        "two guide channels normalise to the same name"
    );
    assert_eq!(m("", "BBC Three", both), None);
    assert_eq!(m("", "HD", both), None);
}

#[test]
fn failed_ingest_keeps_the_previous_copy() {
    let conn = db();
    ingest(&conn, "g", "rich.xml");
    let err = store::ingest_file(&conn, "g", &fixture("truncated.xml"), 1 << 30).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let channels = store::list_channels(&conn, &["g"]).unwrap();
    assert_eq!(
        channels.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["bbc1.uk", "itv.uk"]
    );
    assert_eq!(channels[0].programmes, 2);
    // A good ingest replaces the copy whole.
    ingest(&conn, "g", "times.xml");
    let channels = store::list_channels(&conn, &["g"]).unwrap();
    assert_eq!(
        channels.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["t.uk"]
    );
    assert_eq!(store::stored_programmes(&conn, "g").unwrap(), Some(3));
    let parts: i64 = conn
        .query_row("SELECT count(*) FROM guide_listings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(parts, 1, "one listing for the one channel");
    store::remove_source(&conn, "g").unwrap();
    assert!(store::list_channels(&conn, &["g"]).unwrap().is_empty());
}

#[test]
fn every_fixture_that_reads_writes_a_valid_guide() {
    for file in [
        "latin1.xml",
        "cp1252.xml",
        "times.xml",
        "malformed.xml",
        "billion-laughs.xml",
        "external-entity.xml",
        "rich.xml.xz",
    ] {
        let conn = db();
        ingest(&conn, "s", file);
        let index = GuideIndex::build(&conn, vec![source("s", -1_800_000)]).unwrap();
        let entries: Vec<GuideEntry> = store::list_channels(&conn, &["s"])
            .unwrap()
            .into_iter()
            .map(|c| entry(&c.id, "Name", None))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.xml");
        write_proxy_guide(
            &conn,
            &index,
            &entries,
            &options(3650, 3650, false),
            &dest,
            0o644,
        )
        .unwrap();
        validate(&dest);
        let bytes = std::fs::read(&dest).unwrap();
        let again = dir.path().join("again.xml");
        write_proxy_guide(
            &conn,
            &index,
            &entries,
            &options(3650, 3650, false),
            &again,
            0o644,
        )
        .unwrap();
        assert_eq!(
            std::fs::read(&again).unwrap(),
            bytes,
            "{file}: deterministic"
        );
    }
}

#[test]
fn xmltv_keep_keeps_exactly_the_named_items_and_only_they_break_the_dtd() {
    let conn = db();
    ingest(&conn, "oo", "out-of-order.xml");
    let index = GuideIndex::build(&conn, vec![source("oo", 0)]).unwrap();
    let entries = [entry("news.us", "News", None)];
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(30, 30, false);
    opts.keep.names = vec!["catchup-id".into(), "series-id".into()];
    let dest = dir.path().join("keep.xml");
    let stats = write_proxy_guide(&conn, &index, &entries, &opts, &dest, 0o600).unwrap();
    let dropped: Vec<&str> = stats.dropped.keys().map(String::as_str).collect();
    assert_eq!(dropped, ["channel@x-number", "title@foo"]);
    let text = std::fs::read_to_string(&dest).unwrap();
    assert!(text.contains("catchup-id=\"991\""), "{text}");
    assert!(text.contains("<series-id system=\"provider\">S-12</series-id>"));

    // Invalid against the DTD, and every complaint is about a kept item.
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--dtdvalid", xmltv_check::DTD])
        .arg(&dest)
        .output()
        .expect("xmllint");
    assert!(!out.status.success());
    let errors = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = errors
        .lines()
        .filter(|l| l.contains("validity error"))
        .collect();
    assert!(!complaints.is_empty(), "{errors}");
    for line in complaints {
        assert!(
            line.contains("catchup-id") || line.contains("series-id"),
            "{line}"
        );
    }

    // Only catchup-id (the default): the one complaint is that attribute.
    opts.keep.names = vec!["programme@catchup-id".into()];
    write_proxy_guide(&conn, &index, &entries, &opts, &dest, 0o600).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--dtdvalid", xmltv_check::DTD])
        .arg(&dest)
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = errors
        .lines()
        .filter(|l| l.contains("validity error"))
        .collect();
    assert_eq!(complaints.len(), 1, "{errors}");
    assert!(complaints[0].contains("catchup-id"), "{errors}");
}
