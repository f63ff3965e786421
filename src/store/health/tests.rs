use super::*;
use crate::config::values::DurationValue;
use std::time::Duration;

const HOUR: i64 = 3_600_000;

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("health.db")).unwrap();
    // Hundreds of single-row transactions: durability is not what is tested here.
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    // Idempotent: the store may run it on every open.
    conn.execute_batch(SCHEMA).unwrap();
    (dir, conn)
}

fn settings() -> HealthSettings {
    HealthSettings {
        disable_after: 3,
        reprobe_after: DurationValue(Duration::from_secs(6 * 3600)),
    }
}

fn fetch(conn: &Connection, at: i64, outcome: Outcome, attempts: u32, latency: i64) {
    record_fetch(
        conn,
        &FetchRecord {
            source: "alpha",
            kind: FetchKind::M3u,
            started_at: at,
            latency_ms: latency,
            outcome,
            bytes: Some(10),
            http_status: Some(if outcome == Outcome::Failed { 503 } else { 200 }),
            attempts,
            error: (outcome == Outcome::Failed)
                .then_some("http://me:hunter22@host/x.m3u: HTTP 503"),
        },
    )
    .unwrap();
}

#[test]
fn states_uptime_and_latency() {
    let (_d, conn) = db();
    let h = health(&conn, "alpha", FetchKind::M3u).unwrap();
    assert_eq!(h.state, HealthState::Unknown);
    assert_eq!((h.uptime_percent, h.mean_latency_ms), (None, None));

    fetch(&conn, 1_000, Outcome::Fetched, 1, 100);
    record_build(&conn, "alpha", FetchKind::M3u, true, 1_000, &settings()).unwrap();
    let h = health(&conn, "alpha", FetchKind::M3u).unwrap();
    assert_eq!(h.state, HealthState::Healthy);
    assert_eq!(h.uptime_percent, Some(100.0));
    assert_eq!(h.last_success, Some(1_000));

    fetch(&conn, 2_000, Outcome::Failed, 4, 900);
    record_build(&conn, "alpha", FetchKind::M3u, false, 2_000, &settings()).unwrap();
    let h = health(&conn, "alpha", FetchKind::M3u).unwrap();
    assert_eq!(h.state, HealthState::Down);
    assert_eq!(h.consecutive_failures, 1);
    assert_eq!(h.uptime_percent, Some(50.0));
    let err = h.last_error.unwrap();
    assert!(err.contains("503") && !err.contains("hunter22"), "{err}");

    fetch(&conn, 3_000, Outcome::NotModified, 1, 300);
    record_build(&conn, "alpha", FetchKind::M3u, true, 3_000, &settings()).unwrap();
    let h = health(&conn, "alpha", FetchKind::M3u).unwrap();
    // Working again, but one of its last fetches failed.
    assert_eq!(h.state, HealthState::Degraded);
    assert_eq!(h.mean_latency_ms, Some(200.0));
    assert_eq!(h.consecutive_failures, 0);

    // Other kinds under the same name are another history.
    let guide = health(&conn, "alpha", FetchKind::Xmltv).unwrap();
    assert_eq!(guide.state, HealthState::Unknown);
}

#[test]
fn retries_alone_degrade_and_windows_are_bounded() {
    let (_d, conn) = db();
    for i in 0..120 {
        fetch(&conn, i, Outcome::Fetched, 1, 10 + i);
    }
    fetch(&conn, 200, Outcome::Fetched, 2, 500);
    record_build(&conn, "alpha", FetchKind::M3u, true, 200, &settings()).unwrap();
    let h = health(&conn, "alpha", FetchKind::M3u).unwrap();
    assert_eq!(h.state, HealthState::Degraded);
    assert_eq!(h.fetches, 100);
    // Last 10 successes: 500 and 120..=128 (10 + i for i in 110..=118 plus ...).
    let expected = (500 + (111..=119).map(|i| 10 + i).sum::<i64>()) as f64 / 10.0;
    assert_eq!(h.mean_latency_ms, Some(expected));
}

#[test]
fn xtream_fetches_count_three_requests_without_retries() {
    let (_d, conn) = db();
    let xtream = |attempts| FetchRecord {
        source: "beta",
        kind: FetchKind::Xtream,
        started_at: 1,
        latency_ms: 10,
        outcome: Outcome::Fetched,
        bytes: Some(10),
        http_status: Some(200),
        attempts,
        error: None,
    };
    record_fetch(&conn, &xtream(3)).unwrap();
    record_build(&conn, "beta", FetchKind::Xtream, true, 1, &settings()).unwrap();
    let state = |conn: &Connection| health(conn, "beta", FetchKind::Xtream).unwrap().state;
    assert_eq!(state(&conn), HealthState::Healthy);
    record_fetch(&conn, &xtream(4)).unwrap();
    assert_eq!(state(&conn), HealthState::Degraded);
}

#[test]
fn disable_after_failed_builds_then_reprobe() {
    let (_d, conn) = db();
    let s = settings();
    let mut now = 10 * HOUR;
    for n in 1..=3 {
        assert!(!should_skip(&conn, "alpha", FetchKind::M3u, now, &s).unwrap());
        fetch(&conn, now, Outcome::Failed, 4, 50);
        let st = record_build(&conn, "alpha", FetchKind::M3u, false, now, &s).unwrap();
        assert_eq!(st.consecutive_failed_builds, n);
        assert_eq!(st.disabled_since.is_some(), n == 3);
        now += HOUR;
    }
    let disabled_at = now - HOUR;
    let h = health(&conn, "alpha", FetchKind::M3u).unwrap();
    assert_eq!(h.state, HealthState::Disabled);
    assert_eq!(h.disabled_since, Some(disabled_at));

    // Skipped until reprobe_after has passed since the last try.
    assert!(should_skip(&conn, "alpha", FetchKind::M3u, disabled_at + 5 * HOUR, &s).unwrap());
    let probe = disabled_at + 6 * HOUR;
    assert!(!should_skip(&conn, "alpha", FetchKind::M3u, probe, &s).unwrap());
    assert_eq!(
        next_probe(&conn, "alpha", FetchKind::M3u, &s).unwrap(),
        Some(probe)
    );
    // A failed re-probe waits another interval, and stays disabled since the first time.
    let st = record_build(&conn, "alpha", FetchKind::M3u, false, probe, &s).unwrap();
    assert_eq!(st.disabled_since, Some(disabled_at));
    assert!(should_skip(&conn, "alpha", FetchKind::M3u, probe + HOUR, &s).unwrap());
    assert_eq!(
        next_probe(&conn, "alpha", FetchKind::M3u, &s).unwrap(),
        Some(probe + 6 * HOUR)
    );
    // A successful one re-enables it.
    let probe = probe + 6 * HOUR;
    assert!(!should_skip(&conn, "alpha", FetchKind::M3u, probe, &s).unwrap());
    fetch(&conn, probe, Outcome::Fetched, 1, 50);
    let st = record_build(&conn, "alpha", FetchKind::M3u, true, probe, &s).unwrap();
    assert_eq!(
        st,
        BuildState {
            consecutive_failed_builds: 0,
            disabled_since: None
        }
    );
    assert!(!should_skip(&conn, "alpha", FetchKind::M3u, probe + 1, &s).unwrap());
    assert_ne!(
        health(&conn, "alpha", FetchKind::M3u).unwrap().state,
        HealthState::Disabled
    );

    // disable_after = 0 never disables.
    let never = HealthSettings {
        disable_after: 0,
        ..settings()
    };
    for _ in 0..10 {
        let st = record_build(&conn, "beta", FetchKind::Xtream, false, now, &never).unwrap();
        assert_eq!(st.disabled_since, None);
    }
}

#[test]
fn validators_and_content_hash_round_trip() {
    let (_d, conn) = db();
    assert!(
        validators(&conn, "alpha", FetchKind::M3u)
            .unwrap()
            .is_empty()
    );
    assert_eq!(content_hash(&conn, "alpha", FetchKind::M3u).unwrap(), None);
    let v = Validators {
        etag: Some("\"v1\"".into()),
        last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
    };
    set_validators(&conn, "alpha", FetchKind::M3u, &v).unwrap();
    set_content_hash(&conn, "alpha", FetchKind::M3u, "abc123").unwrap();
    assert_eq!(validators(&conn, "alpha", FetchKind::M3u).unwrap(), v);
    assert_eq!(
        content_hash(&conn, "alpha", FetchKind::M3u)
            .unwrap()
            .as_deref(),
        Some("abc123")
    );
    // A build result keeps them.
    record_build(&conn, "alpha", FetchKind::M3u, false, 5, &settings()).unwrap();
    assert_eq!(validators(&conn, "alpha", FetchKind::M3u).unwrap(), v);
}

#[test]
fn records_from_http_results() {
    let (_d, conn) = db();
    let mut err = FetchError::new(
        crate::fetch::FetchErrorKind::Status(502),
        "http://u:pw-in-url@h/x: HTTP 502",
    );
    err.attempts = 4;
    let failed = Err(err);
    let r = FetchRecord::from_http("alpha", FetchKind::M3u, 7, 70, &failed);
    assert_eq!(
        (r.outcome, r.http_status, r.attempts),
        (Outcome::Failed, Some(502), 4)
    );
    record_fetch(&conn, &r).unwrap();
    let not_modified = Ok(FetchOutcome::NotModified {
        attempts: 1,
        elapsed: Duration::from_millis(5),
    });
    let r = FetchRecord::from_http("alpha", FetchKind::M3u, 8, 5, &not_modified);
    assert_eq!(
        (r.outcome, r.http_status),
        (Outcome::NotModified, Some(304))
    );
    record_fetch(&conn, &r).unwrap();
    let h = health(&conn, "alpha", FetchKind::M3u).unwrap();
    assert_eq!(h.uptime_percent, Some(50.0));
    assert!(!h.last_error.unwrap().contains("pw-in-url"));
}

#[test]
fn history_is_pruned_per_source() {
    let (_d, conn) = db();
    for i in 0..(KEEP_FETCHES + 5) {
        fetch(&conn, i, Outcome::Fetched, 1, 1);
    }
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM fetches WHERE source = 'alpha'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, KEEP_FETCHES);
}

#[test]
fn enable_clears_the_disabled_state_and_the_failures() {
    let (_d, conn) = db();
    let s = HealthSettings {
        disable_after: 1,
        ..settings()
    };
    fetch(&conn, HOUR, Outcome::Failed, 1, 50);
    record_build(&conn, "alpha", FetchKind::M3u, false, HOUR, &s).unwrap();
    assert!(should_skip(&conn, "alpha", FetchKind::M3u, 2 * HOUR, &s).unwrap());
    assert!(enable(&conn, "alpha", FetchKind::M3u).unwrap());
    assert!(!should_skip(&conn, "alpha", FetchKind::M3u, 2 * HOUR, &s).unwrap());
    assert_eq!(
        next_probe(&conn, "alpha", FetchKind::M3u, &s).unwrap(),
        None
    );
    let h = health(&conn, "alpha", FetchKind::M3u).unwrap();
    assert_eq!((h.consecutive_failures, h.disabled_since), (0, None));
    // Nothing recorded for that source: nothing to clear.
    assert!(!enable(&conn, "beta", FetchKind::M3u).unwrap());
}
