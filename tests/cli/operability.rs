//! Locking (exit 5, `--wait`), two builds on different databases sharing an output directory,
//! and the run report validated against its JSON Schema.

use std::fs::OpenOptions;
use std::io::Write;

use crate::harness::{Env, names, playlist, simple_config, validate_report};

fn env_with_one_source() -> Env {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 3));
    env.write("lineup.toml", simple_config(&[("a", "a.m3u", true)], ""));
    env
}

/// Hold the build lock of `lineup.db` as another build would.
fn hold_lock(env: &Env) -> std::fs::File {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(env.path("lineup.db.lock"))
        .unwrap();
    file.try_lock().unwrap();
    write!(file, "424242").unwrap();
    file
}

#[test]
fn concurrent_build_exits_5_naming_the_holder() {
    let env = env_with_one_source();
    let lock = hold_lock(&env);
    let run = env.lineup(&["build"]);
    run.expect(5);
    assert!(run.stderr.contains("pid 424242"), "{}", run.stderr);
    assert!(!env.path("out").exists());
    drop(lock);
    env.lineup(&["build"]).ok();
}

#[test]
fn wait_takes_the_lock_once_it_is_released() {
    let env = env_with_one_source();
    let lock = hold_lock(&env);
    let child = env.command(&["build", "--wait", "120s"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(lock);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(env.path("out/p.m3u").exists());

    let lock = hold_lock(&env);
    env.lineup(&["build", "--wait", "200ms"]).expect(5);
    drop(lock);
}

#[test]
fn report_matches_its_schema_on_success_degraded_and_failure() {
    let env = env_with_one_source();
    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is only the report");
    validate_report(&report);
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["sources"][0]["status"], "fetched");
    assert_eq!(report["sources"][0]["items"], 3);
    assert_eq!(report["proxies"][0]["channels_out"], 3);
    let output = &report["proxies"][0]["outputs"][0];
    assert_eq!(
        output["bytes"],
        std::fs::metadata(env.path("out/p.m3u")).unwrap().len()
    );
    assert!(report["memory"]["peak_rss_bytes"].as_u64().unwrap() > 0);

    // Degraded: the source is gone, its cached copy is used (which needs
    // min_successful_sources = 0 with a single source: a cached copy is not fresh).
    std::fs::remove_file(env.path("a.m3u")).unwrap();
    env.write(
        "lineup.toml",
        format!(
            "[settings.fetch]\nmin_successful_sources = 0\n\n{}",
            simple_config(&[("a", "a.m3u", true)], "")
        ),
    );
    env.lineup(&["build", "--report", "r.json"]).expect(3);
    let report: serde_json::Value = serde_json::from_str(&env.read("r.json")).unwrap();
    validate_report(&report);
    assert_eq!(report["exit_code"], 3);
    assert_eq!(report["sources"][0]["status"], "cached");
    assert!(
        report["sources"][0]["error"]
            .as_str()
            .unwrap()
            .contains("a.m3u")
    );

    // Too few sources: exit 4, and the report says why.
    let fresh = Env::new();
    fresh.write(
        "lineup.toml",
        simple_config(&[("a", "missing.m3u", true)], ""),
    );
    fresh.lineup(&["build", "--report", "r.json"]).expect(4);
    let report: serde_json::Value = serde_json::from_str(&fresh.read("r.json")).unwrap();
    validate_report(&report);
    assert_eq!(report["exit_code"], 4);
    assert_eq!(report["sources"][0]["status"], "failed");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("min_successful_sources")
    );
}

#[test]
fn run_history_is_kept_in_the_database() {
    let env = env_with_one_source();
    env.lineup(&["build"]).ok();
    env.lineup(&["build"]).ok();
    let conn = rusqlite::Connection::open(env.path("lineup.db")).unwrap();
    let runs: i64 = conn
        .query_row("SELECT count(*) FROM runs WHERE exit_code = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(runs, 2);
}

#[test]
fn non_tty_output_has_no_control_characters() {
    let env = Env::demo();
    for progress in ["auto", "never"] {
        let run = env.lineup(&["build", "-vv", "--progress", progress]);
        run.ok();
        assert!(
            !run.stderr.contains('\x1b'),
            "ANSI escape in:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains('\r'),
            "carriage return in:\n{}",
            run.stderr
        );
        // One plain line per source and per stage, never one per channel.
        assert!(run.stderr.contains("source premium:"), "{}", run.stderr);
        assert!(
            run.stderr.contains("proxy home: write: 7 items"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.lines().count() < 40, "{}", run.stderr);
    }
    // -q: errors only.
    let run = env.lineup(&["build", "-q"]);
    run.ok();
    assert_eq!(run.stderr, "");
}

#[test]
fn if_changed_second_run_is_unchanged_and_writes_nothing() {
    let env = env_with_one_source();
    env.lineup(&["build", "--if-changed"]).ok();
    let path = env.path("out/p.m3u");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    // Make any rewrite visible: replace the output with a marker a real build would overwrite.
    std::fs::write(&path, "marker\n").unwrap();
    let marked = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(marked >= before);

    // An output changed by hand is not what was written: rebuilt.
    let run = env.lineup(&["build", "--if-changed"]);
    run.ok();
    assert_eq!(run.stdout, "");
    assert_ne!(env.read("out/p.m3u"), "marker\n");
    let written = env.read("out/p.m3u");
    let run = env.lineup(&["build", "--if-changed"]);
    run.ok();
    assert_eq!(run.stdout, "unchanged\n");
    assert_eq!(env.read("out/p.m3u"), written, "nothing written");

    // A changed source, a changed config, or a missing output: a real build.
    env.write("a.m3u", playlist("a", 4));
    let run = env.lineup(&["build", "--if-changed"]);
    run.ok();
    assert_eq!(run.stdout, "");
    assert_eq!(crate::harness::names(&env.read("out/p.m3u")).len(), 4);
    env.lineup(&["build", "--if-changed"]).ok();
    env.write(
        "lineup.toml",
        simple_config(&[("a", "a.m3u", true)], "epg_url = \"http://x\""),
    );
    assert_eq!(env.lineup(&["build", "--if-changed"]).stdout, "");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(env.lineup(&["build", "--if-changed"]).stdout, "");
    assert!(path.exists());
    // A dry run is no successful build to compare with.
    env.lineup(&["build", "--dry-run"]).ok();
    assert_eq!(env.lineup(&["build", "--if-changed"]).stdout, "unchanged\n");
}

#[test]
fn sigkill_mid_build_leaves_previous_outputs_and_the_next_build_succeeds() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 3));
    env.write(
        "lineup.toml",
        simple_config(&[("a", "a.m3u", true)], "sort = [\"channel_name\"]"),
    );
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");

    env.write("a.m3u", playlist("b", 150_000));
    let mut child = env
        .command(&["build", "-v"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // Kill it once it is past reading the source (in the pipeline, writing temp files), or
    // whenever it first speaks.
    let _ = std::io::BufRead::read_line(&mut stderr, &mut line);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    // The previous output is whole; no lock is left behind; the next build succeeds.
    assert_eq!(env.read("out/p.m3u"), before);
    env.lineup(&["build"]).ok();
    assert_eq!(crate::harness::names(&env.read("out/p.m3u")).len(), 150_000);
    // The killed build's temporary file (nothing runs on SIGKILL) is gone after the next one.
    assert_eq!(env.list("out"), ["p.m3u"]);
}

/// Two builds on different databases sharing one output directory and one playlist name (a
/// staging and a live configuration, say), run at once: build A is held in its logo prefetch
/// with its `.home.m3u.<pid>-*.tmp` open while build B starts, sweeps the directory for dead
/// builds' leftovers and commits. B must leave A's live temp alone; both exit 0, each output is
/// the one its build wrote, and no temporary file is left.
#[test]
fn two_builds_on_different_databases_share_an_output_directory() {
    use crate::http_server::{Body, Gate, Route, TestServer};
    use std::process::Stdio;
    // A 1x1 PNG: what the logo fetch must see to keep the logo.
    const PNG: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\
\0\0\0\rIDATx\x9cc\xf8\x0f\x04\0\x09\xfb\x03\xfd\xe3U\xf2\x9c\0\0\0\0IEND\xaeB`\x82";
    let server = TestServer::start();
    let gate = Gate::new();
    let png = Body {
        content_type: "image/png".into(),
        ..Body::new(PNG)
    };
    server
        .route(
            "/a.m3u",
            Route::Ok(Body::new(playlist("a", 3).replace(
                "group-title",
                &format!("tvg-logo=\"{}\" group-title", server.url("/logo.png")),
            ))),
        )
        .route("/b.m3u", Route::Ok(Body::new(playlist("b", 5))))
        .route(
            "/logo.png",
            Route::Hold(gate.clone(), Box::new(Route::Ok(png))),
        );
    let env = Env::new();
    let config = |db: &str, source: &str, proxy_extra: &str| {
        format!(
            "[settings]\ndatabase = \"{db}\"\n\n[settings.fetch]\nretries = 0\n\n\
             [[source]]\nname = \"s\"\nm3u = \"{}\"\n\n\
             [[proxy]]\nname = \"home\"\nsources = [\"s\"]\nm3u = \"home.m3u\"\n{proxy_extra}",
            server.url(source)
        )
    };
    env.write(
        "a.toml",
        config("a.db", "/a.m3u", "logos = { prefetch = true }\n"),
    );
    env.write("b.toml", config("b.db", "/b.m3u", ""));

    let a = env
        .command(&["build", "a.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A is in its logo prefetch once the server holds the logo request: its playlist temp
    // is open then (the playlist is written after the logos).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.hits("/logo.png") == 0 && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        server.hits("/logo.png"),
        1,
        "build A reached its logo fetch"
    );
    let a_temp = format!(".home.m3u.{}-", a.id());
    let live_temps = |env: &Env| -> Vec<String> {
        env.list("out")
            .into_iter()
            .filter(|f| f.starts_with(&a_temp))
            .collect()
    };
    assert_eq!(live_temps(&env).len(), 1, "{:?}", env.list("out"));

    // B runs start to end while A is held: it sweeps `out` and commits home.m3u.
    let b = env.lineup(&["build", "b.toml"]);
    b.ok();
    assert_eq!(names(&env.read("out/home.m3u")).len(), 5, "B's playlist");
    assert_eq!(live_temps(&env).len(), 1, "B left A's live temp alone");

    gate.open();
    let output = a.wait_with_output().unwrap();
    let a_run = crate::harness::Run::from_output(output);
    a_run.ok();
    let home = env.read("out/home.m3u");
    assert_eq!(
        names(&home),
        ["a-0", "a-1", "a-2"],
        "A's playlist, committed last"
    );
    let leftovers: Vec<String> = env
        .list("out")
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(env.path("a.db").exists() && env.path("b.db").exists());
}

/// The lock is taken on the database's canonical path: a build reaching the database through a
/// symlink (to the file, or to its directory) waits for the build holding it the direct way.
#[test]
fn a_database_reached_through_a_symlink_shares_its_lock() {
    let env = env_with_one_source();
    env.lineup(&["build"]).ok();
    std::os::unix::fs::symlink(env.path("lineup.db"), env.path("link.db")).unwrap();
    std::os::unix::fs::symlink(env.dir.path(), env.path("linkdir")).unwrap();
    let lock = hold_lock(&env);
    for db in ["link.db", "linkdir/lineup.db", "./lineup.db"] {
        let run = env.lineup(&["build", "--db", db]);
        run.expect(5);
        assert!(run.stderr.contains("pid 424242"), "{db}: {}", run.stderr);
    }
    assert!(!env.path("link.db.lock").exists());
    drop(lock);
    env.lineup(&["build", "--db", "link.db"]).ok();
}
