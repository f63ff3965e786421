//! Ctrl-C (SIGINT) and SIGTERM in the middle of a build stop it cleanly and at once (waiting
//! for headers, reading a body, in a retry back-off, fetching logos): no temporary file is
//! left, the previous output stays whole, the database stays consistent and the next build works.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::harness::{Env, names, playlist, simple_config};

#[test]
fn sigint_mid_build_leaves_previous_output_and_a_usable_database() {
    let env = Env::new();
    env.write("small.m3u", playlist("s", 2));
    env.write(
        "lineup.toml",
        simple_config(&[("a", "small.m3u", true)], ""),
    );
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");

    // A source big enough that the build is still running when the signal arrives (if it has
    // finished, the assertions below hold all the same).
    env.write("big.m3u", playlist("b", 200_000));
    env.write("lineup.toml", simple_config(&[("a", "big.m3u", true)], ""));
    let mut child = env
        .command(&["build", "-v"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    let _ = stderr.read_line(&mut first);
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let status = child.wait().unwrap();

    let files = env.list("out");
    assert_eq!(files, ["p.m3u"], "no temporary file left");
    let after = env.read("out/p.m3u");
    if !status.success() {
        assert_eq!(after, before, "interrupted build kept the previous output");
        assert!(rest.contains("interrupted"), "{first}{rest}");
    }
    let conn = rusqlite::Connection::open(env.path("lineup.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);

    env.lineup(&["build"]).ok();
    assert_eq!(names(&env.read("out/p.m3u")).len(), 200_000);
}

/// Wait for `child` to end, up to `limit`; None when it is still running (then it is killed).
fn wait_for(child: &mut std::process::Child, limit: std::time::Duration) -> Option<i32> {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A provider that accepts the request and never sends headers, with `timeout = "60s"`: a
/// SIGTERM (what systemd sends on stop) ends the build at once, not when the attempt times out.
#[test]
fn sigterm_while_waiting_for_headers_ends_the_build_at_once() {
    stop_mid_fetch(
        crate::http_server::Route::Stall(std::time::Duration::from_secs(120)),
        "-TERM",
    );
}

/// The same for SIGINT while a body drips in one byte a second.
#[test]
fn sigint_while_a_body_drips_ends_the_build_at_once() {
    stop_mid_fetch(
        crate::http_server::Route::Drip {
            body: crate::network::good().into_bytes(),
            interval: std::time::Duration::from_secs(1),
        },
        "-INT",
    );
}

/// SIGTERM while the build waits out a retry back-off of a minute after a 503.
#[test]
fn sigterm_during_a_retry_back_off_ends_the_build_at_once() {
    stop_mid_fetch_with(
        crate::http_server::Route::Status(503),
        "-TERM",
        "retries = 3\nbackoff = { base = \"60s\", max = \"60s\", jitter = false }\n",
    );
}

fn stop_mid_fetch(slow: crate::http_server::Route, signal: &str) {
    stop_mid_fetch_with(slow, signal, "timeout = \"60s\"\nretries = 0\n");
}

/// Build once, then build again with `/list.m3u` playing `slow` (the source configured with
/// `source_extra`), send `signal` once the request arrived, and check the build ended long
/// before any timeout or back-off would have ended it, leaving outputs and temp dirs clean.
fn stop_mid_fetch_with(slow: crate::http_server::Route, signal: &str, source_extra: &str) {
    use crate::http_server::{Body, Route};
    let net = crate::network::Net::new();
    net.server
        .route("/list.m3u", Route::Ok(Body::new(crate::network::good())));
    net.one_source("", source_extra);
    let text = net.env.read("lineup.toml");
    net.env.write(
        "lineup.toml",
        text.replace("[settings]\n", "[settings]\nspill_dir = \"spill\"\n"),
    );
    net.env.lineup(&["build"]).ok();
    let before = net.env.read("out/p.m3u");

    net.server.route("/list.m3u", slow);
    let mut child = net
        .env
        .command(&["build"])
        .env("TMPDIR", net.env.path("spill"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while net.server.hits("/list.m3u") < 2 && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        net.server.hits("/list.m3u"),
        2,
        "the build reached the server"
    );
    std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    // Generous: the point is "not after the 60 s attempt timeout (or back-off)".
    let code = wait_for(&mut child, std::time::Duration::from_secs(15));
    assert_eq!(
        code,
        Some(1),
        "SIGTERM ends the build (exit 1, interrupted)"
    );
    assert_eq!(net.env.read("out/p.m3u"), before);
    assert_eq!(net.env.list("out"), ["p.m3u"]);
    let leftovers: Vec<String> = net
        .env
        .list("spill")
        .into_iter()
        .filter(|f| f.starts_with("lineup-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// What a `kill -9` leaves (spill files, fetch spools, output temps, all named after the dead
/// build's pid) goes at the next build; a file of a build still running stays.
#[test]
fn leftovers_of_dead_builds_are_removed_and_live_ones_kept() {
    let env = Env::new();
    env.write("small.m3u", playlist("s", 2));
    env.write(
        "lineup.toml",
        simple_config(&[("a", "small.m3u", true)], "").replacen(
            "[[source]]",
            "[settings]\nspill_dir = \"spill\"\n\n[[source]]",
            1,
        ),
    );
    // Pids stay below 2^22 on Linux: 4194999 is never alive.
    let dead = [
        "spill/lineup-spill-4194999-a1",
        "spill/lineup-fetch-4194999-b2",
        "out/.p.m3u.4194999-c3.tmp",
    ];
    let live = format!("spill/lineup-spill-{}-d4", std::process::id());
    for f in dead.iter().copied().chain([live.as_str()]) {
        env.write(f, "left behind");
    }
    env.lineup(&["build"]).ok();
    assert_eq!(env.list("out"), ["p.m3u"]);
    assert_eq!(
        env.list("spill"),
        [live.trim_start_matches("spill/").to_string()]
    );
}

/// SIGTERM while the build fetches logos (the server holds the logo request; the fetch timeout
/// is a minute): the build ends at once, the previous playlist stays, no temp file is left.
#[test]
fn sigterm_during_logo_fetches_ends_the_build_at_once() {
    use crate::http_server::{Route, TestServer};
    let server = TestServer::start();
    server.route(
        "/logo.png",
        Route::Stall(std::time::Duration::from_secs(120)),
    );
    let env = Env::new();
    env.write("a.m3u", playlist("a", 3));
    env.write("lineup.toml", simple_config(&[("a", "a.m3u", true)], ""));
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");

    env.write(
        "a.m3u",
        playlist("a", 3).replace(
            "group-title",
            &format!("tvg-logo=\"{}\" group-title", server.url("/logo.png")),
        ),
    );
    env.write(
        "lineup.toml",
        format!(
            "[settings.fetch]\ntimeout = \"60s\"\nretries = 0\n\n{}logos = {{ prefetch = true }}\n",
            simple_config(&[("a", "a.m3u", true)], "")
        ),
    );
    let mut child = env
        .command(&["build"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.hits("/logo.png") == 0 && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        server.hits("/logo.png"),
        1,
        "the build reached its logo fetch"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let code = wait_for(&mut child, std::time::Duration::from_secs(15));
    assert_eq!(
        code,
        Some(1),
        "SIGTERM ends the build (exit 1, interrupted)"
    );
    assert_eq!(env.read("out/p.m3u"), before);
    assert_eq!(env.list("out"), ["logos", "p.m3u"], "no temp file left");
    assert!(env.list("out/logos").is_empty(), "no half a logo left");
}
