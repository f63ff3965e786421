//! Stream probing against a real HTTP server on 127.0.0.1 playing streams that play and
//! streams that do not: live MPEG-TS, an HLS master -> media -> segment chain, an HLS whose
//! segment 404s, 403, 500, a stall (timeout), a refused port, TLS to a plain-HTTP port, an HTML
//! page with 200, a slow trickle, a redirect to a dead URL, streams that need the channel's own
//! user agent, and an rtmp URL (not probed). Also: `per_host` never exceeded (the server
//! counts open requests), the `dead_after` hysteresis, recheck intervals (`$LINEUP_NOW`),
//! budget carry-over over 10,000 streams on one host, the rules fields and dedupe's
//! preference, `lineup probe` and `lineup streams`, and SIGTERM.

use std::collections::HashMap;
use std::io::BufReader;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Env, names, validate_report};
use crate::http_server::{Body, Route, TestServer};

/// Bytes that look like live MPEG-TS: sync byte every 188 bytes.
fn ts(packets: usize) -> Vec<u8> {
    let mut out = vec![0u8; 188 * packets];
    for p in 0..packets {
        out[p * 188] = 0x47;
        out[p * 188 + 1] = (p % 200) as u8;
    }
    out
}

fn ts_route() -> Route {
    Route::Ok(Body {
        content_type: "video/mp2t".into(),
        ..Body::new(ts(40))
    })
}

fn text(body: &str, content_type: &str) -> Route {
    Route::Ok(Body {
        content_type: content_type.into(),
        ..Body::new(body)
    })
}

/// One channel line pair, with optional extra directive lines.
fn entry(name: &str, id: &str, url: &str, extra: &str) -> String {
    format!("#EXTINF:-1 tvg-id=\"{id}\",{name}\n{extra}{url}\n")
}

/// `[settings.probe]` then one source `s` (a local file) and proxy `p` with `probe = true`.
fn config(env: &Env, probe: &str, proxy_extra: &str) {
    env.write(
        "lineup.toml",
        format!(
            "[settings.probe]\n{probe}\n\n[[source]]\nname = \"s\"\nm3u = \"s.m3u\"\n\n\
             [[proxy]]\nname = \"p\"\nsources = [\"s\"]\nm3u = \"p.m3u\"\nprobe = true\n{proxy_extra}\n"
        ),
    );
}

fn streams(env: &Env) -> HashMap<String, Value> {
    let run = env.lineup(&["streams", "--json"]);
    run.ok();
    let rows: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    rows.into_iter()
        .map(|r| (r["url"].as_str().unwrap().to_string(), r))
        .collect()
}

fn build_at(env: &Env, now: i64) -> Value {
    let run = env
        .command(&["build", "--report", "report.json"])
        .env("LINEUP_NOW", now.to_string())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_str(&env.read("report.json")).unwrap();
    validate_report(&report);
    report
}

const T0: i64 = 1_800_000_000;

#[test]
fn each_kind_of_stream_gets_its_verdict_and_reason() {
    let server = TestServer::start();
    server
        .route("/live.ts", ts_route())
        .route(
            "/hls/master.m3u8",
            text(
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n",
                "application/vnd.apple.mpegurl",
            ),
        )
        .route(
            "/hls/low/index.m3u8",
            text(
                "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg1.ts\n#EXTINF:6.0,\nseg2.ts\n",
                "application/vnd.apple.mpegurl",
            ),
        )
        .route("/hls/low/seg1.ts", ts_route())
        // By content: no .m3u8 in the name, a segment that 404s.
        .route(
            "/hls404/play",
            text("#EXTM3U\n#EXTINF:6.0,\n/missing/seg.ts\n", "text/plain"),
        )
        .route("/forbidden", Route::Status(403))
        .route("/broken", Route::Status(500))
        .route("/stall", Route::Stall(Duration::from_secs(5)))
        .route(
            "/html",
            text(
                "<!DOCTYPE html><html><body>Channel offline</body></html>",
                "text/html",
            ),
        )
        .route(
            "/trickle",
            Route::Drip {
                body: ts(100),
                interval: Duration::from_millis(20),
            },
        )
        .route("/moved", Route::Redirect("/gone".into()))
        .route(
            "/ua-vlcopt",
            Route::NeedsHeader {
                name: "user-agent".into(),
                value: "SmartTV/1".into(),
                then: Box::new(ts_route()),
            },
        )
        .route(
            "/ua-kodi",
            Route::NeedsHeader {
                name: "referer".into(),
                value: "http://portal.example/".into(),
                then: Box::new(ts_route()),
            },
        )
        .route(
            "/ua-missing",
            Route::NeedsHeader {
                name: "user-agent".into(),
                value: "SmartTV/1".into(),
                then: Box::new(ts_route()),
            },
        );
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/live.ts", l.local_addr().unwrap())
    };
    let u = |p: &str| server.url(p);
    let mut m3u = String::from("#EXTM3U\n");
    m3u += &entry("Live", "live", &u("/live.ts"), "");
    m3u += &entry("Hls", "hls", &u("/hls/master.m3u8"), "");
    m3u += &entry("Hls404", "hls404", &u("/hls404/play"), "");
    m3u += &entry("Forbidden", "forbidden", &u("/forbidden"), "");
    m3u += &entry("Broken", "broken", &u("/broken"), "");
    m3u += &entry("Stall", "stall", &u("/stall"), "");
    m3u += &entry("Refused", "refused", &refused, "");
    m3u += &entry("Html", "html", &u("/html"), "");
    m3u += &entry("Trickle", "trickle", &u("/trickle"), "");
    m3u += &entry("Moved", "moved", &u("/moved"), "");
    m3u += &entry(
        "UaVlc",
        "uavlc",
        &u("/ua-vlcopt"),
        "#EXTVLCOPT:http-user-agent=SmartTV/1\n",
    );
    let kodi = format!("{}|Referer=http%3A%2F%2Fportal.example%2F", u("/ua-kodi"));
    m3u += &entry("UaKodi", "uakodi", &kodi, "");
    m3u += &entry("UaMissing", "uamissing", &u("/ua-missing"), "");
    m3u += &entry("Rtmp", "rtmp", "rtmp://media.example/live/x", "");
    // TLS to a server that speaks plain HTTP: the handshake fails.
    let tls = u("/live.ts").replace("http://", "https://");
    m3u += &entry("Tls", "tls", &tls, "");
    let env = Env::new();
    env.write("s.m3u", &m3u);
    config(&env, "timeout = \"1s\"\nconcurrency = 8\nper_host = 8", "");

    let report = build_at(&env, T0);
    let probe = &report["proxies"][0]["probe"];
    assert_eq!(probe["probed"], 15, "{probe}");
    assert_eq!(probe["alive"], 4, "{probe}");
    // dead_after = 2: one failed build makes nothing dead yet.
    assert_eq!(probe["dead"], 0, "{probe}");
    assert_eq!(probe["unknown"], 11, "{probe}");

    let s = streams(&env);
    let reason = |url: &str| {
        let row = &s[url];
        (
            row["status"].as_str().unwrap_or("").to_string(),
            row["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    let expect = [
        (u("/live.ts"), "alive", "mpeg-ts"),
        (u("/hls/master.m3u8"), "alive", "hls (mpeg-ts)"),
        (u("/hls404/play"), "unknown", "hls segment: http 404"),
        (u("/forbidden"), "unknown", "http 403"),
        (u("/broken"), "unknown", "http 500"),
        (u("/stall"), "unknown", "timeout"),
        (refused.clone(), "unknown", "connection refused"),
        (u("/html"), "unknown", "html page"),
        (u("/trickle"), "unknown", "timeout: "),
        (u("/moved"), "unknown", "http 404"),
        (u("/ua-vlcopt"), "alive", "mpeg-ts"),
        (kodi.clone(), "alive", "mpeg-ts"),
        (u("/ua-missing"), "unknown", "http 403"),
        (
            "rtmp://media.example/live/x".to_string(),
            "unknown",
            "not probed: rtmp",
        ),
        (tls, "unknown", "tls: "),
    ];
    for (url, status, why) in expect {
        let (got_status, got_reason) = reason(&url);
        assert_eq!(got_status, status, "{url}: {got_reason}");
        assert!(
            got_reason.starts_with(why),
            "{url}: `{got_reason}`, expected `{why}`"
        );
    }
    // The segment of the HLS chain was fetched; the 404ing one was asked for.
    assert_eq!(server.hits("/hls/low/seg1.ts"), 1);
    assert_eq!(server.hits("/missing/seg.ts"), 1);

    // A second failure, after recheck_dead: now they are dead.
    let report = build_at(&env, T0 + 13 * 3600);
    let probe = &report["proxies"][0]["probe"];
    assert_eq!(
        probe["probed"], 11,
        "only the failing ones are due: {probe}"
    );
    assert_eq!(probe["dead"], 10, "{probe}");
    assert_eq!(probe["unknown"], 1, "rtmp stays unknown: {probe}");
    let dead = env.lineup(&["streams", "--dead", "--json"]);
    let dead: Vec<Value> = serde_json::from_str(&dead.stdout).unwrap();
    assert_eq!(dead.len(), 10);
    let table = env.lineup(&["streams"]);
    assert!(table.stdout.starts_with("STATUS"), "{}", table.stdout);
}

#[test]
fn per_host_caps_open_connections_and_rechecks_follow_the_clock() {
    let server = TestServer::start();
    let mut m3u = String::from("#EXTM3U\n");
    for i in 0..24 {
        let path = format!("/slow/{i}.ts");
        server.route(
            &path,
            Route::Delay(Duration::from_millis(60), Box::new(ts_route())),
        );
        m3u += &entry(&format!("C{i}"), &format!("c{i}"), &server.url(&path), "");
    }
    let env = Env::new();
    env.write("s.m3u", &m3u);
    config(&env, "concurrency = 8\nper_host = 2\ntimeout = \"5s\"", "");
    let report = build_at(&env, T0);
    assert_eq!(report["proxies"][0]["probe"]["alive"], 24);
    let max = server.max_concurrent();
    assert!(
        (1..=2).contains(&max),
        "{max} connections at once to one host"
    );

    // Within recheck_alive (7 days) nothing is probed again; after it, everything.
    let report = build_at(&env, T0 + 6 * 86_400);
    assert_eq!(report["proxies"][0]["probe"]["probed"], 0);
    let report = build_at(&env, T0 + 8 * 86_400);
    assert_eq!(report["proxies"][0]["probe"]["probed"], 24);
    assert!(server.max_concurrent() <= 2);
}

#[test]
fn rules_see_stream_status_and_dedupe_prefers_alive_streams() {
    let server = TestServer::start();
    server
        .route("/ok.ts", ts_route())
        .route("/gone.ts", Route::Status(404));
    let mut m3u = String::from("#EXTM3U\n");
    // Same tvg-id: the dead one comes first in priority order.
    m3u += &entry("One (dead)", "one", &server.url("/gone.ts"), "");
    m3u += &entry("One (alive)", "one", &server.url("/ok.ts"), "");
    m3u += &entry(
        "Two (dead)",
        "two",
        &format!("{}?x=2", server.url("/gone.ts")),
        "",
    );
    let env = Env::new();
    env.write("s.m3u", &m3u);
    let tag = "[[mapping]]\nname = \"tag\"\nwhen = 'stream_status equals \"dead\"'\n\
               set = { group_title = \"Dead ({stream_checked_days}d)\" }\n";
    config(
        &env,
        "dead_after = 1",
        "dedupe = \"tvg_id\"\nmappings = [\"tag\"]",
    );
    let text = std::fs::read_to_string(env.path("lineup.toml")).unwrap();
    env.write("lineup.toml", format!("{text}\n{tag}"));
    build_at(&env, T0);
    // The first build probes before its rules run: statuses apply at once.
    let out = env.read("out/p.m3u");
    assert_eq!(names(&out), ["One (alive)", "Two (dead)"], "{out}");
    assert!(out.contains("group-title=\"Dead (0d)\""), "{out}");

    // The recipe that drops dead channels.
    let text = std::fs::read_to_string(env.path("lineup.toml")).unwrap();
    let text = text.replace("mappings = [\"tag\"]", "filters = [\"alive\"]");
    env.write(
        "lineup.toml",
        format!(
            "{text}\n[[filter]]\nname = \"alive\"\nexclude = 'stream_status equals \"dead\"'\n"
        ),
    );
    build_at(&env, T0 + 60);
    assert_eq!(names(&env.read("out/p.m3u")), ["One (alive)"]);
}

#[test]
fn a_small_budget_leaves_the_rest_for_the_next_build() {
    // 10,000 streams on one host, one connection at a time, a budget far too small for them
    // all: each build probes what it can and the next one goes on with those never probed.
    let server = TestServer::start();
    server.route(
        "/s",
        Route::Delay(Duration::from_millis(1), Box::new(ts_route())),
    );
    let mut m3u = String::from("#EXTM3U\n");
    for i in 0..10_000 {
        m3u += &entry(
            &format!("C{i}"),
            &format!("c{i}"),
            &format!("{}?n={i}", server.url("/s")),
            "",
        );
    }
    let env = Env::new();
    env.write("s.m3u", &m3u);
    config(&env, "per_host = 1\nbudget = \"3s\"\ntimeout = \"1s\"", "");
    let first = build_at(&env, T0)["proxies"][0]["probe"].clone();
    let p1 = first["probed"].as_u64().unwrap();
    assert!(p1 > 0 && p1 < 10_000, "{first}");
    assert_eq!(first["not_probed"].as_u64().unwrap(), 10_000 - p1);
    assert_eq!(first["left_over"].as_u64().unwrap(), 10_000 - p1);
    let second = build_at(&env, T0)["proxies"][0]["probe"].clone();
    let p2 = second["probed"].as_u64().unwrap();
    assert!(p2 > 0, "{second}");
    // Nothing probed twice: the second build started where the first stopped.
    assert_eq!(second["alive"].as_u64().unwrap(), p1 + p2, "{second}");
    assert_eq!(second["not_probed"].as_u64().unwrap(), 10_000 - p1 - p2);
    assert!(server.max_concurrent() <= 1);
    // Every request the server saw was for a distinct stream, but for the one probe the end
    // of the first budget cut short (not stored, so due again). A connection cut before its
    // request line arrived shows as `/`.
    let mut seen = std::collections::HashSet::new();
    let twice: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.target != "/" && !seen.insert(r.target.clone()))
        .map(|r| r.target)
        .collect();
    assert!(twice.len() <= 1, "probed twice: {twice:?}");
}

#[test]
fn sigterm_while_probing_leaves_a_consistent_database() {
    let server = TestServer::start();
    server
        .route("/fast", ts_route())
        .route("/stuck", Route::Stall(Duration::from_secs(30)));
    let mut m3u = String::from("#EXTM3U\n");
    for i in 0..10 {
        m3u += &entry(
            &format!("F{i}"),
            &format!("f{i}"),
            &format!("{}?{i}", server.url("/fast")),
            "",
        );
    }
    for i in 0..10 {
        m3u += &entry(
            &format!("S{i}"),
            &format!("s{i}"),
            &format!("{}?{i}", server.url("/stuck")),
            "",
        );
    }
    let env = Env::new();
    env.write("s.m3u", &m3u);
    config(
        &env,
        "per_host = 1\ntimeout = \"20s\"\nbudget = \"60s\"",
        "",
    );
    let mut child = env
        .command(&["build", "-v"])
        .env("LINEUP_NOW", T0.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One connection at a time, oldest (first listed) first: once a stuck stream is asked
    // for, the fast ones are done.
    while server.hits("/stuck") == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the build ended before probing a stuck stream: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(
        &mut BufReader::new(child.stderr.take().unwrap()),
        &mut stderr,
    );
    let status = child.wait().unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        !env.path("out/p.m3u").exists(),
        "no playlist from a cut build"
    );

    let conn = rusqlite::Connection::open(env.path("lineup.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (alive, half): (i64, i64) = conn
        .query_row(
            "SELECT count(*) FILTER (WHERE status = 'alive'),
                    count(*) FILTER (WHERE (status IS NULL) != (checked_at IS NULL))
             FROM streams",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(alive, 10, "every finished probe was stored");
    assert_eq!(half, 0, "no half-written result");
    drop(conn);

    // The next run goes on with the stuck ones (a short budget ends it).
    config(
        &env,
        "per_host = 4\ntimeout = \"200ms\"\nbudget = \"5s\"",
        "",
    );
    let report = build_at(&env, T0);
    assert_eq!(report["proxies"][0]["probe"]["probed"], 10);
}

#[test]
fn lineup_probe_probes_without_building() {
    let server = TestServer::start();
    server
        .route("/ok.ts", ts_route())
        .route("/live/viewer9/hunter22/7.ts", ts_route());
    let env = Env::new();
    env.write(
        "s.m3u",
        format!(
            "#EXTM3U\n{}{}",
            entry("One", "one", &server.url("/ok.ts"), ""),
            entry("Two", "two", &server.url("/live/viewer9/hunter22/7.ts"), "")
        ),
    );
    config(&env, "", "");
    let text = env.read("lineup.toml").replace("probe = true\n", "");
    env.write("lineup.toml", text);
    // No database yet: nothing to list, and none is created.
    let none = env.lineup(&["streams", "--json"]);
    none.ok();
    assert_eq!(none.stdout.trim(), "[]");
    assert!(!env.path("lineup.db").exists());
    env.lineup(&["build"]).ok();
    assert_eq!(
        server.hits("/ok.ts"),
        0,
        "no probe = true: the build probes nothing"
    );
    // No proxy probes and none named: a usage error.
    env.lineup(&["probe"]).expect(2);
    env.lineup(&["probe", "--proxy", "nope"]).expect(2);

    let run = env.lineup(&["probe", "--proxy", "p", "--budget", "30s"]);
    run.ok();
    assert!(
        run.stderr.contains("proxy p: probed 2 streams in"),
        "one summary line per proxy: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(server.hits("/ok.ts"), 1);
    let s = streams(&env);
    assert_eq!(s[&server.url("/ok.ts")]["status"], "alive");
    // Credentials in stream URLs are masked wherever a URL is shown.
    assert_eq!(s[&server.url("/live/***/***/7.ts")]["status"], "alive");
    let table = env.lineup(&["streams"]);
    assert!(!table.stdout.contains("hunter22"), "{}", table.stdout);
}

#[test]
fn only_channels_the_rules_keep_are_probed_and_dead_ones_are_rechecked() {
    let server = TestServer::start();
    server
        .route("/kept.ts", ts_route())
        .route("/other.ts", ts_route())
        .route("/gone.ts", Route::Status(404));
    let env = Env::new();
    env.write(
        "s.m3u",
        "#EXTM3U\n".to_string()
            + &format!(
                "#EXTINF:-1 group-title=\"Keep\",A\n{}\n",
                server.url("/kept.ts")
            )
            + &format!(
                "#EXTINF:-1 group-title=\"Keep\",B\n{}\n",
                server.url("/gone.ts")
            )
            + &format!(
                "#EXTINF:-1 group-title=\"Other\",C\n{}\n",
                server.url("/other.ts")
            ),
    );
    config(
        &env,
        "dead_after = 1",
        "filters = [\"keep\", \"playing\"]\n\n[[filter]]\nname = \"keep\"\n\
         include = 'group_title equals \"Keep\"'\n\n[[filter]]\nname = \"playing\"\n\
         exclude = 'stream_status equals \"dead\"'",
    );
    build_at(&env, T0);
    assert_eq!(names(&env.read("out/p.m3u")), ["A"]);
    assert_eq!(
        server.hits("/other.ts"),
        0,
        "a channel the filters drop is not probed"
    );
    assert_eq!(server.hits("/gone.ts"), 1);
    // The dead channel is filtered out of the playlist, but still checked again.
    server.route("/gone.ts", ts_route());
    build_at(&env, T0 + 13 * 3600);
    assert_eq!(server.hits("/gone.ts"), 2);
    assert_eq!(names(&env.read("out/p.m3u")), ["A", "B"]);
}
