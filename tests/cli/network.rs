//! `lineup build` against a real HTTP server on 127.0.0.1 (`tests/support/http_server.rs`)
//! playing a provider's faults: timeouts, errors with and without retries, `Retry-After`, cut
//! bodies, slow drips, decompression bombs, redirect loops, `304`, and HTML instead of a
//! playlist. For each failure: the exit code (4: a cached copy is not fresh), the source's
//! status and error in the report, its health in `lineup sources --json`, and previous outputs
//! and cached data left byte-identical. Health, offline builds and secrets are in `health`;
//! Xtream accounts in `xtream`.

mod health;
mod xtream;

use serde_json::Value;

use crate::harness::{Env, Run, playlist};
use crate::http_server::{Body, Route, TestServer, gzip};

/// Short timeouts and backoff so that a test with retries takes milliseconds, not seconds.
const FAST_FETCH: &str = "timeout = \"2s\"\nretries = 2\n\
backoff = { base = \"10ms\", max = \"50ms\", jitter = false }\n";

/// One cached channel row: source, content hash, stored at, position, encoded channel.
pub type CachedChannel = (String, Option<String>, Option<i64>, i64, Vec<u8>);

/// A test directory and the provider it talks to.
pub struct Net {
    pub env: Env,
    pub server: TestServer,
}

/// The good playlist every provider serves at first.
pub fn good() -> String {
    playlist("paid", 3)
}

/// `[[source]]` with an M3U URL (or path), plus extra keys (source overrides).
pub fn m3u_source(name: &str, location: &str, extra: &str) -> String {
    format!("[[source]]\nname = \"{name}\"\nm3u = \"{location}\"\n{extra}\n")
}

pub fn proxy(sources: &[&str]) -> String {
    let list: Vec<String> = sources.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[[proxy]]\nname = \"p\"\nsources = [{}]\nm3u = \"p.m3u\"\n",
        list.join(", ")
    )
}

impl Net {
    pub fn new() -> Net {
        Net {
            env: Env::new(),
            server: TestServer::start(),
        }
    }

    /// Write `lineup.toml`: fast fetch settings plus `fetch_extra`, then `rest` (tables:
    /// `[settings.health]`, sources, proxies).
    pub fn config(&self, fetch_extra: &str, rest: &str) {
        self.env.write(
            "lineup.toml",
            format!(
                "[settings]\ndatabase = \"lineup.db\"\noutput_dir = \"out\"\n\n\
                 [settings.fetch]\n{FAST_FETCH}{fetch_extra}\n{rest}"
            ),
        );
    }

    /// One M3U source `paid` at `/list.m3u` with `extra` overrides, in proxy `p`.
    pub fn one_source(&self, fetch_extra: &str, extra: &str) {
        let source = m3u_source("paid", &self.server.url("/list.m3u"), extra);
        self.config(fetch_extra, &format!("{source}{}", proxy(&["paid"])));
    }

    /// `lineup build ARGS --report -`: the run and its report.
    pub fn build(&self, args: &[&str]) -> (Run, Value) {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--report", "-"]);
        let run = self.env.lineup(&all);
        let report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not the report ({e})\n--- stdout\n{}\n--- stderr\n{}",
                run.stdout, run.stderr
            )
        });
        (run, report)
    }

    /// The `lineup sources --json` entry of one source.
    pub fn health(&self, name: &str) -> Value {
        let run = self.env.lineup(&["sources", "--json"]);
        run.ok();
        let all: Value = serde_json::from_str(&run.stdout).expect("sources --json is JSON");
        all.as_array()
            .expect("an array")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no source {name} in {all:#}"))
            .clone()
    }

    /// Every cached channel, as stored.
    pub fn cached(&self) -> Vec<CachedChannel> {
        let conn = rusqlite::Connection::open_with_flags(
            self.env.path("lineup.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the database");
        let mut stmt = conn
            .prepare(
                "SELECT s.name, s.content_sha256, s.updated_at, c.pos, c.data
                 FROM sources s JOIN channels c ON c.source_id = s.id ORDER BY s.name, c.pos",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }
}

/// The first (only) source of a report.
pub fn source(report: &Value) -> &Value {
    &report["sources"][0]
}

#[track_caller]
pub fn assert_error(report: &Value, wanted: &str) {
    let error = source(report)["error"].as_str().unwrap_or_default();
    assert!(
        error.to_lowercase().contains(&wanted.to_lowercase()),
        "error {error:?} does not say {wanted:?}\n{report:#}"
    );
}

/// The heart of every failure test. A first build stores a good copy; then the provider plays
/// `fault`: the build exits 4 with the source `cached` (a cached copy is not fresh data, and
/// `min_successful_sources` is 1), the error and `attempts` in the report,
/// the source `down` in `lineup sources`, and output and cache untouched. In a fresh directory
/// (nothing cached) the same fault exits 4 and writes nothing.
fn keeps_last_good_copy(fault: Route, extra: &str, attempts: u64, error: &str) {
    let net = Net::new();
    net.server.route("/list.m3u", Route::Ok(Body::new(good())));
    net.one_source("", extra);
    let (run, report) = net.build(&[]);
    run.ok();
    assert_eq!(source(&report)["status"], "fetched");
    let output = net.env.read("out/p.m3u");
    let cached = net.cached();
    assert_eq!(cached.len(), 3);
    let stored_at = net.health("paid")["cached_at"].clone();

    net.server.route("/list.m3u", fault.clone());
    let before = net.server.hits("/list.m3u");
    // The only source: its cached copy is used for nothing, as it is not fresh
    // (min_successful_sources); exit 3 needs another source fresh (see `trust`).
    let (run, report) = net.build(&[]);
    run.expect(4);
    assert_eq!(report["exit_code"], 4);
    assert_eq!(source(&report)["status"], "cached", "{report:#}");
    assert_eq!(source(&report)["items"], 3);
    assert_eq!(source(&report)["attempts"], attempts, "{report:#}");
    // A redirect loop asks the server once per hop: the first request and 5 redirects.
    let per_attempt = if matches!(fault, Route::Redirect(_)) {
        6
    } else {
        1
    };
    assert_eq!(
        net.server.hits("/list.m3u") - before,
        attempts as usize * per_attempt
    );
    assert_error(&report, error);
    assert!(
        run.stderr.contains("using the last good copy"),
        "{}",
        run.stderr
    );
    assert_eq!(net.env.read("out/p.m3u"), output, "output changed");
    assert_eq!(net.cached(), cached, "cached data changed");

    let health = net.health("paid");
    assert_eq!(health["state"], "down", "{health:#}");
    assert_eq!(health["consecutive_failures"], 1);
    assert_eq!(health["uptime_percent"], 50.0);
    assert_eq!(health["cached_channels"], 3);
    assert_eq!(health["cached_at"], stored_at);
    let last_error = health["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.to_lowercase().contains(&error.to_lowercase()),
        "{health:#}"
    );

    let fresh = Net::new();
    fresh.server.route("/list.m3u", fault);
    fresh.one_source("", extra);
    let (run, report) = fresh.build(&[]);
    run.expect(4);
    assert_eq!(source(&report)["status"], "failed", "{report:#}");
    assert_error(&report, error);
    assert!(!fresh.env.path("out/p.m3u").exists());
    assert_eq!(fresh.health("paid")["state"], "down");
    assert_eq!(fresh.health("paid")["cached_channels"], Value::Null);
}

#[test]
fn timeout_keeps_last_good_copy() {
    let stall = Route::Stall(std::time::Duration::from_secs(3));
    keeps_last_good_copy(stall, "timeout = \"300ms\"\nretries = 1", 2, "timeout");
}

#[test]
fn not_found_is_not_retried() {
    keeps_last_good_copy(Route::Status(404), "", 1, "HTTP 404");
}

#[test]
fn server_errors_are_retried_up_to_retries() {
    keeps_last_good_copy(Route::Status(503), "retries = 3", 4, "HTTP 503");
}

#[test]
fn truncated_body_keeps_last_good_copy() {
    let body = good().into_bytes();
    let cut = Route::Truncated {
        declared: body.len() + 1000,
        body: body[..body.len() / 2].to_vec(),
    };
    keeps_last_good_copy(cut, "retries = 1", 2, "disconnected");
}

#[test]
fn slow_drip_past_the_timeout_is_a_timeout() {
    let drip = Route::Drip {
        body: good().into_bytes(),
        interval: std::time::Duration::from_millis(40),
    };
    keeps_last_good_copy(drip, "timeout = \"400ms\"\nretries = 0", 1, "timeout");
}

#[test]
fn gzip_bomb_stops_at_max_size() {
    // 8 MiB of playlist-looking lines in a few kilobytes: the download is small, the
    // decompressed content is not.
    let line = "#EXTINF:-1,bomb\nhttp://s.example/bomb\n";
    let bomb = gzip(format!("#EXTM3U\n{}", line.repeat(8 << 20 >> 5)).as_bytes());
    assert!(bomb.len() < 64 << 10, "the bomb is small: {}", bomb.len());
    keeps_last_good_copy(
        Route::Ok(Body::new(bomb)),
        "max_size = \"64KiB\"",
        1,
        "max_size",
    );
}

#[test]
fn redirect_loop_is_not_retried() {
    keeps_last_good_copy(Route::Redirect("/list.m3u".into()), "", 1, "redirect");
}

#[test]
fn html_instead_of_a_playlist_keeps_last_good_copy() {
    keeps_last_good_copy(Route::garbage(), "", 1, "not an M3U playlist");
}

#[test]
fn server_error_then_success_counts_attempts() {
    let net = Net::new();
    let ok = Route::Ok(Body::new(good()));
    net.server.route("/list.m3u", Route::fail_then(500, 2, ok));
    net.one_source("", "");
    let (run, report) = net.build(&[]);
    run.ok();
    assert_eq!(source(&report)["status"], "fetched");
    assert_eq!(source(&report)["attempts"], 3);
    assert_eq!(source(&report)["items"], 3);
    assert_eq!(net.server.hits("/list.m3u"), 3);
    // It works, but needed retries.
    let health = net.health("paid");
    assert_eq!(health["state"], "degraded", "{health:#}");
    assert_eq!(health["uptime_percent"], 100.0);
    assert_eq!(health["consecutive_failures"], 0);
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let net = Net::new();
    let ok = Route::Ok(Body::new(good()));
    net.server
        .route("/list.m3u", Route::Sequence(vec![Route::RetryAfter(1), ok]));
    net.one_source("", "backoff = { base = \"10ms\", max = \"5s\" }");
    let (run, report) = net.build(&[]);
    run.ok();
    assert_eq!(source(&report)["attempts"], 2);

    // A Retry-After longer than what is left of total_timeout ends the retries at once: proof
    // that the header, not the 10ms backoff, decides the wait.
    let net = Net::new();
    net.server.route("/list.m3u", Route::RetryAfter(600));
    net.one_source(
        "total_timeout = \"5s\"",
        "backoff = { base = \"10ms\", max = \"1h\" }",
    );
    let (run, report) = net.build(&[]);
    run.expect(4);
    assert_eq!(source(&report)["attempts"], 1);
    assert_error(&report, "HTTP 429");
    assert_error(&report, "total_timeout");
    assert_eq!(net.server.hits("/list.m3u"), 1);
}

#[test]
fn not_modified_reuses_the_cached_copy() {
    let net = Net::new();
    let body = Body::new(good())
        .etag("\"v1\"")
        .last_modified("Wed, 21 Oct 2015 07:28:00 GMT");
    net.server.route("/list.m3u", Route::Ok(body));
    net.one_source("", "");
    net.build(&[]).0.ok();
    let output = net.env.read("out/p.m3u");
    let cached = net.cached();

    let (run, report) = net.build(&[]);
    run.ok();
    assert_eq!(source(&report)["status"], "not_modified", "{report:#}");
    assert_eq!(source(&report)["items"], 3);
    let second = net.server.requests().pop().unwrap();
    assert_eq!(second.header("if-none-match"), Some("\"v1\""));
    assert_eq!(
        second.header("if-modified-since"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    assert_eq!(net.env.read("out/p.m3u"), output);
    assert_eq!(net.cached(), cached);
    assert_eq!(net.health("paid")["state"], "healthy");
}

#[test]
fn fail_fast_stops_the_build_with_exit_4() {
    let net = Net::new();
    net.env.write("free.m3u", playlist("free", 2));
    net.server.route("/list.m3u", Route::Ok(Body::new(good())));
    let rest = format!(
        "{}{}{}",
        m3u_source("paid", &net.server.url("/list.m3u"), ""),
        m3u_source("free", "free.m3u", ""),
        proxy(&["paid", "free"])
    );
    net.config("fail_fast = true", &rest);
    net.build(&[]).0.ok();
    let output = net.env.read("out/p.m3u");

    net.server.route("/list.m3u", Route::Status(500));
    let (run, report) = net.build(&[]);
    run.expect(4);
    assert_eq!(report["exit_code"], 4);
    assert!(
        report["error"].as_str().unwrap().contains("fail_fast"),
        "{report:#}"
    );
    assert!(run.stderr.contains("fail_fast"), "{}", run.stderr);
    assert_eq!(net.env.read("out/p.m3u"), output, "outputs left untouched");
}

/// A `${VAR}` value reaches the server as intended whatever it holds: percent-encoded for the
/// part of the URL it lands in (here a path segment and a query value).
#[test]
fn env_values_are_percent_encoded_where_they_land_in_the_url() {
    let net = Net::new();
    net.server.route("/get.php", Route::Ok(Body::new(good())));
    let url = net
        .server
        .url("/get.php?username=me&password=${PROVIDER_PASS}");
    let source = m3u_source("paid", &url, "");
    net.config("", &format!("{source}{}", proxy(&["paid"])));
    let run = net
        .env
        .command(&["build"])
        .env("PROVIDER_PASS", "p w&x#y@z/:\u{e9}")
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let targets: Vec<String> = net
        .server
        .requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(
        targets,
        ["/get.php?username=me&password=p%20w%26x%23y%40z%2F%3A%C3%A9"]
    );
}
