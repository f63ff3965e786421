//! Sticky numbering's identities, passes, commit and cancellation.

use super::*;
use crate::config::NumberingMode;

fn numbering(key: Option<crate::config::NumberingKey>) -> Numbering {
    Numbering {
        start: 1,
        mode: NumberingMode::Sticky,
        groups: Default::default(),
        key,
        prefer_own: None,
        forget_after: None,
    }
}

fn ch(id: &str, name: &str, group: &str) -> Channel {
    let mut c = Channel {
        name: name.into(),
        ..Default::default()
    };
    c.set_attr("tvg-id", id);
    c.set_attr("group-title", group);
    c
}

#[test]
fn identities() {
    let key = parse_key(&numbering(None)).unwrap();
    assert_eq!(identity(&key, &ch("BBC.uk", "x", "y")), "tvg_id=bbc.uk");
    assert_eq!(
        identity(&key, &ch(" ", "  BBC   One ", "UK")),
        "channel_name=bbc one, group_title=uk"
    );
    assert_eq!(
        identity(&key, &ch("", "", "")),
        "channel_name=, group_title="
    );
    let one = numbering(Some(crate::config::NumberingKey::One("tvg_name".into())));
    assert_eq!(
        identity(&parse_key(&one).unwrap(), &ch("a", "b", "c")),
        "tvg_name="
    );
    let bad = numbering(Some(crate::config::NumberingKey::List(vec![])));
    assert!(parse_key(&bad).is_err());
}

fn open(db: &Path, n: &Numbering, now: i64) -> (Assignments, Vec<u64>) {
    let mut held = Vec::new();
    let a = Assignments::open(db, "p", n, now, 1 << 20, None, |n| held.push(n)).unwrap();
    held.sort();
    (a, held)
}

/// A statement that would never end is interrupted once the cancel flag is set.
#[test]
fn cancel_interrupts_a_running_statement() {
    let conn = Connection::open_in_memory().unwrap();
    let cancel = AtomicBool::new(true);
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
                   SELECT count(*) FROM c";
    let got = interruptible(&conn, Some(&cancel), |conn| {
        conn.query_row(endless, [], |r| r.get::<_, i64>(0))
    });
    assert!(format!("{got:?}").contains("interrupted"), "{got:?}");
    let quick = interruptible(&conn, Some(&AtomicBool::new(false)), |conn| {
        conn.query_row("SELECT 7", [], |r| r.get::<_, i64>(0))
    });
    assert_eq!(quick.unwrap(), 7);
}

/// Ctrl-C or SIGTERM before the passes meet stops numbering, and nothing is saved.
#[test]
fn cancel_stops_between_the_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store = crate::store::Store::open(&db).unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let n = numbering(None);
    let mut a =
        Assignments::open(&db, "p", &n, 1000, 1 << 20, Some(cancel.clone()), |_| {}).unwrap();
    for i in 0..1000 {
        a.stage(&ch(&format!("c{i}"), "", "")).unwrap();
    }
    cancel.store(true, Ordering::Relaxed);
    let err = format!("{:#}", a.next_held().unwrap_err());
    assert!(err.contains("interrupted"), "{err}");
    drop(a);
    assert!(
        crate::store::numbers::list(&store.conn, "p")
            .unwrap()
            .is_empty()
    );
}

/// An identity that looks like another's second keeps apart from it.
#[test]
fn suffixes_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store = crate::store::Store::open(&db).unwrap();
    let n = numbering(Some(crate::config::NumberingKey::One(
        "channel_name".into(),
    )));
    let (mut a, _) = open(&db, &n, 1000);
    let names = ["Sky", "Sky", "Sky #2", "Sky #2", "Sky #", "Sky #x1"];
    for name in names {
        a.stage(&ch("", name, "")).unwrap();
    }
    for number in 1..=names.len() as u64 {
        a.next_held().unwrap();
        a.record(number).unwrap();
    }
    a.commit().unwrap();
    let got: Vec<(String, u64)> = crate::store::numbers::list(&store.conn, "p")
        .unwrap()
        .into_iter()
        .map(|a| (a.identity, a.number))
        .collect();
    let want = [
        "channel_name=sky",
        "channel_name=sky #2",
        "channel_name=sky #2 #1",
        "channel_name=sky #2 #2",
        "channel_name=sky #",
        "channel_name=sky #x1",
    ];
    let want: Vec<(String, u64)> = want
        .iter()
        .zip(1..)
        .map(|(id, n)| (id.to_string(), n))
        .collect();
    assert_eq!(got, want);
}

/// Channels sharing an identity in one build are told apart by their order, and only a
/// commit writes anything.
#[test]
fn duplicates_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    drop(crate::store::Store::open(&db).unwrap());
    let n = numbering(None);
    let store = crate::store::Store::open(&db).unwrap();
    let list = || crate::store::numbers::list(&store.conn, "p").unwrap();

    // Numbered, not committed: nothing written.
    let (mut a, held) = open(&db, &n, 1000);
    assert!(held.is_empty());
    let (x, y) = (ch("x", "X", "G"), ch("", "Y", "G"));
    for c in [&x, &y, &x] {
        a.stage(c).unwrap();
    }
    for number in [1, 2, 3] {
        assert_eq!(a.next_held().unwrap(), None);
        a.record(number).unwrap();
    }
    drop(a);
    assert!(list().is_empty());

    // Committed: the second `x` is `x #2`.
    let (mut a, _) = open(&db, &n, 1000);
    for c in [&x, &y, &x] {
        a.stage(c).unwrap();
    }
    for number in [5, 6, 7] {
        a.next_held().unwrap();
        a.record(number).unwrap();
    }
    assert!(a.next_held().is_err(), "more channels than staged");
    assert_eq!(a.commit().unwrap().forgotten, 0);
    let got: Vec<(String, u64)> = list().into_iter().map(|a| (a.identity, a.number)).collect();
    assert_eq!(
        got,
        [
            ("tvg_id=x".into(), 5),
            ("channel_name=y, group_title=g".into(), 6),
            ("tvg_id=x #2".into(), 7)
        ]
    );
    assert_eq!((list()[2].first_seen, list()[2].last_seen), (1000, 1000));

    // The next build sees them held, in its own order of duplicates.
    let (mut a, held) = open(&db, &n, 2000);
    assert_eq!(held, [5, 6, 7]);
    for c in [&x, &x] {
        a.stage(c).unwrap();
    }
    assert_eq!(a.next_held().unwrap(), Some(5));
    a.record(5).unwrap();
    assert_eq!(a.next_held().unwrap(), Some(7));
    a.record(7).unwrap();
    a.commit().unwrap();
    assert_eq!(list()[0].last_seen, 2000);
    assert_eq!(list()[1].last_seen, 1000, "y was not seen");

    // Past forget_after (30 days), `y` is forgotten; an empty build commits too.
    let (a, held) = open(&db, &n, 1500 + 30 * 86_400);
    assert_eq!(held, [5, 7]);
    assert_eq!(a.commit().unwrap().forgotten, 1);
}
