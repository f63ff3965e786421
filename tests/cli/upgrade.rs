//! Databases written by earlier releases, opened by this one: their last good copies are
//! carried forward, so a build right after an upgrade can still fall back on them.

use crate::harness::{Env, fixtures};
use crate::http_server::{Body, Route, TestServer};
use crate::xmltv_check::validate;

fn report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).expect("stdout is the report")
}

/// The demo's database as the release before guide listings wrote it
/// (`fixtures/db/before-listings.sql`: one row per programme).
fn previous_release_database(env: &Env) {
    let sql = std::fs::read_to_string(fixtures().join("db/before-listings.sql")).unwrap();
    let conn = rusqlite::Connection::open(env.path("lineup.db")).unwrap();
    conn.execute_batch(&sql).unwrap();
    let (version, programmes): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM guide_programmes)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, programmes), (4, 60));
}

#[test]
fn previous_release_guide_survives_the_upgrade_while_its_provider_is_down() {
    // What this release writes from the demo guide itself.
    let fresh = Env::demo();
    fresh.lineup(&["build"]).ok();
    let expected = fresh.read("out/home.xml");

    // The upgraded user: the previous release's database, and the guide out of reach (the
    // file is gone; --offline fetches nothing).
    let env = Env::demo();
    previous_release_database(&env);
    std::fs::remove_file(env.path("guide.xml")).unwrap();
    let run = env.lineup(&["build", "--offline", "--report", "-"]);
    run.ok();
    assert!(
        run.stderr.contains("carried 60 stored guide programmes"),
        "{}",
        run.stderr
    );
    let r = report(&run.stdout);
    let guide = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "guide")
        .unwrap();
    assert_eq!(guide["status"], "cached", "{guide:#}");
    assert_eq!(guide["items"], 60, "{guide:#}");
    assert_eq!(r["proxies"][0]["programmes"], 60, "{r:#}");
    validate(&env.path("out/home.xml"));
    assert_eq!(env.read("out/home.xml"), expected);

    // The old rows are gone; the next build converts nothing and writes the same guide.
    let conn = rusqlite::Connection::open(env.path("lineup.db")).unwrap();
    let old: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'guide_programmes%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
    drop(conn);
    let run = env.lineup(&["build", "--offline"]);
    run.ok();
    assert!(!run.stderr.contains("carried"), "{}", run.stderr);
    assert_eq!(env.read("out/home.xml"), expected);
}

#[test]
fn previous_release_validators_still_answer_304_with_the_converted_copy() {
    let fresh = Env::demo();
    fresh.lineup(&["build"]).ok();
    let expected = fresh.read("out/home.xml");

    // As if the previous release had fetched the guide over HTTP: it kept the ETag.
    let env = Env::demo();
    previous_release_database(&env);
    rusqlite::Connection::open(env.path("lineup.db"))
        .unwrap()
        .execute(
            "UPDATE source_health SET etag = '\"v1\"' WHERE source = 'guide' AND kind = 'xmltv'",
            [],
        )
        .unwrap();
    // The server has moved on to an empty guide under a new ETag, but answers 304 to the
    // kept one: only a stored copy can fill the guide.
    let server = TestServer::start();
    server.route(
        "/guide.xml",
        Route::Ok(Body::new("<tv></tv>").etag("\"v1\"")),
    );
    let config = env.read("lineup.toml").replace(
        "xmltv = \"guide.xml\"",
        &format!("xmltv = \"{}\"", server.url("/guide.xml")),
    );
    assert!(config.contains("http://"), "{config}");
    env.write("lineup.toml", config);
    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("if-none-match"), Some("\"v1\""));
    let r = report(&run.stdout);
    let guide = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "guide")
        .unwrap();
    assert_eq!(guide["status"], "not_modified", "{guide:#}");
    assert_eq!(r["proxies"][0]["programmes"], 60, "{r:#}");
    validate(&env.path("out/home.xml"));
    assert_eq!(env.read("out/home.xml"), expected);
}
