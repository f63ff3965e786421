//! Across builds: `--offline` builds from the database without a request, a source that keeps
//! failing is auto-disabled (and re-enabled by a successful re-probe), `lineup sources` before
//! any build, and credentials kept out of every log, report and health record.

use super::{Net, good, m3u_source, proxy, source};
use crate::http_server::{Body, Route};

#[test]
fn offline_builds_from_the_database_without_a_request() {
    let net = Net::new();
    net.server.route("/list.m3u", Route::Ok(Body::new(good())));
    net.one_source("", "");
    net.build(&[]).0.ok();
    let output = net.env.read("out/p.m3u");
    let hits = net.server.hits("/list.m3u");

    let (run, report) = net.build(&["--offline"]);
    run.ok();
    assert_eq!(source(&report)["status"], "cached");
    assert_eq!(source(&report)["attempts"], 0);
    assert_eq!(source(&report)["items"], 3);
    assert_eq!(
        net.server.hits("/list.m3u"),
        hits,
        "offline touched the server"
    );
    assert_eq!(net.env.read("out/p.m3u"), output);
    // An offline build is not a fetch: the health history is unchanged.
    assert_eq!(net.health("paid")["fetches"], 1);

    // Offline with nothing cached: nothing usable.
    let fresh = Net::new();
    fresh.one_source("", "");
    let (run, report) = fresh.build(&["--offline"]);
    run.expect(4);
    assert_eq!(source(&report)["status"], "failed");
    assert!(fresh.server.requests().is_empty());
}

#[test]
fn failing_source_is_disabled_then_reenabled_by_a_reprobe() {
    let net = Net::new();
    let health = |reprobe: &str| {
        format!("[settings.health]\ndisable_after = 2\nreprobe_after = \"{reprobe}\"\n\n")
    };
    let write = |reprobe: &str| {
        let rest = format!(
            "{}{}{}",
            health(reprobe),
            m3u_source("paid", &net.server.url("/list.m3u"), "retries = 0"),
            proxy(&["paid"])
        );
        // A cached copy is not fresh: without this the build would stop at exit 4.
        net.config("min_successful_sources = 0\n", &rest);
    };
    write("1h");
    net.server.route("/list.m3u", Route::Ok(Body::new(good())));
    net.build(&[]).0.ok();
    let output = net.env.read("out/p.m3u");

    net.server.route("/list.m3u", Route::Status(500));
    for n in 1..=2 {
        let (run, report) = net.build(&[]);
        run.expect(3);
        assert_eq!(source(&report)["status"], "cached");
        assert_eq!(net.health("paid")["consecutive_failures"], n);
    }
    let health_now = net.health("paid");
    assert_eq!(health_now["state"], "disabled", "{health_now:#}");
    assert!(health_now["disabled_since"].is_string());

    // The third build leaves it alone and uses the cache.
    let hits = net.server.hits("/list.m3u");
    let (run, report) = net.build(&[]);
    run.expect(3);
    assert_eq!(source(&report)["status"], "disabled", "{report:#}");
    assert_eq!(source(&report)["attempts"], 0);
    assert_eq!(source(&report)["items"], 3);
    assert_eq!(
        net.server.hits("/list.m3u"),
        hits,
        "a disabled source was fetched"
    );
    assert!(run.stderr.contains("disabled"), "{}", run.stderr);
    assert_eq!(net.env.read("out/p.m3u"), output);

    // Once reprobe_after has passed (here: at once), a successful fetch re-enables it.
    write("0s");
    let newer = crate::harness::playlist("paid", 4);
    net.server.route("/list.m3u", Route::Ok(Body::new(newer)));
    let (run, report) = net.build(&[]);
    run.ok();
    assert_eq!(source(&report)["status"], "fetched", "{report:#}");
    assert_eq!(source(&report)["items"], 4);
    let health_now = net.health("paid");
    assert_eq!(health_now["consecutive_failures"], 0);
    assert_eq!(health_now["disabled_since"], serde_json::Value::Null);
    assert_eq!(
        health_now["state"], "degraded",
        "two of its last four fetches failed"
    );
}

#[test]
fn sources_without_a_database_creates_none() {
    let net = Net::new();
    net.one_source("", "");
    let run = net.env.lineup(&["sources"]);
    run.ok();
    assert!(run.stderr.contains("no database yet at"), "{}", run.stderr);
    assert!(run.stdout.starts_with("SOURCE"), "{}", run.stdout);
    assert!(run.stdout.contains("paid") && run.stdout.contains("unknown"));
    assert!(!net.env.path("lineup.db").exists());
    let json: serde_json::Value =
        serde_json::from_str(&net.env.lineup(&["sources", "--json"]).stdout).unwrap();
    assert_eq!(json[0]["state"], "unknown");
    assert!(!net.env.path("lineup.db").exists());
    assert!(
        !net.env.path("lineup.db.lock").exists(),
        "sources took the build lock"
    );
}

#[test]
fn credentials_never_show() {
    const PASS: &str = "s3cr3t-Pa55";
    const URL_PASS: &str = "hunter2-url";
    let net = Net::new();
    // The ${VAR} password in the query; a password in the userinfo of another URL.
    let with_var = format!(
        "{}?username=joe&password=${{PAID_PASS}}",
        net.server.url("/get.php")
    );
    let with_userinfo = net
        .server
        .url("/u.m3u")
        .replace("http://", &format!("http://bob:{URL_PASS}@"));
    let rest = format!(
        "{}{}{}",
        m3u_source("paid", &with_var, ""),
        m3u_source("other", &with_userinfo, ""),
        proxy(&["paid", "other"])
    );
    net.config("", &rest);
    let seen = |what: &str, text: &str| {
        for secret in [PASS, URL_PASS] {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    };
    let run_all = |tag: &str| {
        let run = net
            .env
            .command(&["-vv", "build", "--report", "-"])
            .env("PAID_PASS", PASS)
            .output()
            .unwrap();
        seen(
            &format!("{tag} stdout"),
            &String::from_utf8_lossy(&run.stdout),
        );
        seen(
            &format!("{tag} stderr"),
            &String::from_utf8_lossy(&run.stderr),
        );
        for args in [&["sources", "--json"][..], &["sources"][..], &["check"][..]] {
            let out = net
                .env
                .command(args)
                .env("PAID_PASS", PASS)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}");
            seen(
                &format!("{tag} {args:?}"),
                &String::from_utf8_lossy(&out.stdout),
            );
        }
        run.status.code()
    };

    // Failing (a 401 that names the URL, a connection cut mid-body), then succeeding.
    net.server.route("/get.php", Route::Status(401));
    net.server.route(
        "/u.m3u",
        Route::Truncated {
            declared: 500,
            body: b"#EXTM3U\n".to_vec(),
        },
    );
    assert_eq!(run_all("failing"), Some(4));
    net.server.route("/get.php", Route::Ok(Body::new(good())));
    net.server.route("/u.m3u", Route::Ok(Body::new(good())));
    assert_eq!(run_all("succeeding"), Some(0));
    // The requests did carry them: what is masked is real.
    assert!(
        net.server
            .requests()
            .iter()
            .any(|r| r.target.contains(PASS))
    );

    // Nor does the database: fetch errors and run summaries are masked on the way in.
    let conn = rusqlite::Connection::open(net.env.path("lineup.db")).unwrap();
    let text: String = conn
        .query_row(
            "SELECT coalesce(group_concat(error, ' '), '') || ' ' ||
                    (SELECT group_concat(summary, ' ') FROM runs) FROM fetches",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(text.contains("401"), "{text}");
    seen("the database", &text);
}
