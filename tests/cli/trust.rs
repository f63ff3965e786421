//! Never publish worse than the last good build: the shrink guard on sources, guides and
//! proxy outputs (`max_shrink`, `--accept-shrink`), `--if-changed` decided per proxy against
//! what its outputs were built from, `min_successful_sources` counting only fresh data,
//! `skipped` sources left out of health, and `lineup sources --enable`. Against the real HTTP
//! server on 127.0.0.1 and real files.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::harness::{Env, Run, names, playlist};
use crate::http_server::{Body, Route};
use crate::network::{Net, m3u_source};

/// 2024-03-01T12:00:00Z.
const NOW: i64 = 1_709_294_400;

/// `paid` (at `/list.m3u`) and `free` (a local file with 2 channels) in proxy `p`, so that one
/// failing source leaves the other fresh (exit 3, not 4).
fn two_sources(net: &Net, fetch_extra: &str, proxy_extra: &str) {
    net.env.write("free.m3u", playlist("free", 2));
    let rest = format!(
        "{}{}[[proxy]]\nname = \"p\"\nsources = [\"paid\", \"free\"]\nm3u = \"p.m3u\"\n{proxy_extra}\n",
        m3u_source("paid", &net.server.url("/list.m3u"), "retries = 0"),
        m3u_source("free", "free.m3u", ""),
    );
    net.config(fetch_extra, &rest);
}

fn serve(net: &Net, text: impl Into<Vec<u8>>) {
    net.server.route("/list.m3u", Route::Ok(Body::new(text)));
}

fn by_name<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no source {name} in {report:#}"))
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

#[test]
fn an_empty_200_is_refused_and_the_playlist_stays_byte_identical() {
    let net = Net::new();
    serve(&net, playlist("paid", 3));
    two_sources(&net, "", "");
    net.build(&[]).0.ok();
    let before = net.env.read("out/p.m3u");
    let cached = net.cached();

    for body in ["", "#EXTM3U\n"] {
        serve(&net, body);
        let (run, report) = net.build(&[]);
        run.expect(3);
        crate::harness::validate_report(&report);
        let paid = by_name(&report, "paid");
        assert_eq!(paid["status"], "failed", "{report:#}");
        assert_eq!(paid["items"], 3);
        assert_eq!(paid["previous_items"], 3);
        assert!(
            error_of(paid).starts_with("0 channels, the last good copy has 3 (max_shrink 50%)"),
            "{report:#}"
        );
        assert_eq!(net.env.read("out/p.m3u"), before, "playlist changed");
        assert_eq!(net.cached(), cached, "the last good copy was replaced");
    }
    let health = net.health("paid");
    assert_eq!(health["consecutive_failures"], 2, "{health:#}");
    assert_eq!(health["state"], "down");

    // A local file emptied by a failed sync: the same.
    net.env.write("free.m3u", "");
    serve(&net, playlist("paid", 3));
    let (run, report) = net.build(&[]);
    run.expect(3);
    assert_eq!(by_name(&report, "free")["status"], "failed");
    assert_eq!(net.env.read("out/p.m3u"), before);
}

#[test]
fn a_60_percent_shrink_is_refused_40_is_taken_and_accept_shrink_takes_one() {
    let net = Net::new();
    serve(&net, playlist("paid", 10));
    two_sources(&net, "", "");
    net.build(&[]).0.ok();

    serve(&net, playlist("paid", 4));
    let (run, report) = net.build(&[]);
    run.expect(3);
    let paid = by_name(&report, "paid");
    assert_eq!(paid["status"], "failed");
    assert!(
        error_of(paid).starts_with("4 channels, the last good copy has 10 (max_shrink 50%)"),
        "{report:#}"
    );
    assert_eq!(names(&net.env.read("out/p.m3u")).len(), 12);

    serve(&net, playlist("paid", 6));
    let (run, report) = net.build(&[]);
    run.ok();
    assert_eq!(by_name(&report, "paid")["status"], "fetched");
    assert_eq!(by_name(&report, "paid")["previous_items"], 10);
    assert_eq!(names(&net.env.read("out/p.m3u")).len(), 8);

    // 6 -> 1: refused, unless taken on purpose. Accepting the source also accepts the
    // playlist that shrinks with it (8 -> 3).
    serve(&net, playlist("paid", 1));
    net.build(&[]).0.expect(3);
    let (run, report) = net.build(&["--accept-shrink", "paid"]);
    run.ok();
    assert_eq!(by_name(&report, "paid")["items"], 1);
    assert_eq!(names(&net.env.read("out/p.m3u")).len(), 3);

    // A per-source max_shrink overrides the global one; 100% turns the guard off.
    serve(&net, "#EXTM3U\n");
    net.config(
        "",
        &format!(
            "{}{}[[proxy]]\nname = \"p\"\nsources = [\"paid\", \"free\"]\nm3u = \"p.m3u\"\nmax_shrink = \"100%\"\n",
            m3u_source("paid", &net.server.url("/list.m3u"), "max_shrink = \"100%\""),
            m3u_source("free", "free.m3u", ""),
        ),
    );
    net.build(&[]).0.ok();
    assert_eq!(names(&net.env.read("out/p.m3u")).len(), 2);
}

#[test]
fn a_bad_max_shrink_is_a_located_configuration_error() {
    let net = Net::new();
    two_sources(&net, "max_shrink = \"150%\"\n", "");
    let run = net.env.lineup(&["check"]);
    run.expect(2);
    assert!(
        run.stderr.contains("lineup.toml") && run.stderr.contains("150%"),
        "{}",
        run.stderr
    );
}

/// A guide with `n` programmes over channel `free0.id`, around [`NOW`].
fn guide(n: usize) -> String {
    let mut text = String::from(
        "<?xml version=\"1.0\"?>\n<tv>\n<channel id=\"free0.id\"><display-name>free-0</display-name></channel>\n",
    );
    for i in 0..n {
        // From 10:00 on 2024-03-01, one hour each.
        let hour = 10 + i;
        text.push_str(&format!(
            "<programme start=\"20240301{hour:02}0000 +0000\" stop=\"20240301{:02}0000 +0000\" channel=\"free0.id\"><title>show {i}</title></programme>\n",
            hour + 1
        ));
    }
    text.push_str("</tv>\n");
    text
}

fn guide_config(net: &Net, epg: &str) {
    net.env.write("free.m3u", playlist("free", 2));
    let rest = format!(
        "{}[[epg]]\nname = \"g\"\nxmltv = \"{epg}\"\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"free\"]\nepg = [\"g\"]\nm3u = \"p.m3u\"\nxmltv = \"p.xml\"\n",
        m3u_source("free", "free.m3u", ""),
    );
    net.config("", &rest);
}

fn build_at(env: &Env, now: i64, args: &[&str]) -> Run {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let output = env
        .command(&all)
        .env("LINEUP_NOW", now.to_string())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_guide_down_to_zero_programmes_is_refused() {
    let net = Net::new();
    net.server
        .route("/guide.xml", Route::Ok(Body::new(guide(5))));
    guide_config(&net, &net.server.url("/guide.xml"));
    build_at(&net.env, NOW, &[]).ok();
    let before = net.env.read("out/p.xml");
    assert!(before.contains("show 4"), "{before}");

    net.server
        .route("/guide.xml", Route::Ok(Body::new(guide(0))));
    let run = build_at(&net.env, NOW, &["--report", "-"]);
    run.expect(3);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let g = by_name(&report, "g");
    assert_eq!(g["status"], "failed", "{report:#}");
    assert_eq!(g["previous_items"], 5);
    assert!(
        error_of(g).starts_with("0 programmes, the last good copy has 5"),
        "{report:#}"
    );
    assert_eq!(net.env.read("out/p.xml"), before, "guide changed");
}

#[test]
fn a_filter_emptied_by_a_group_rename_keeps_the_previous_playlist() {
    let env = Env::new();
    let sports = |group: &str| {
        let mut text = String::from("#EXTM3U\n");
        for i in 0..10 {
            text.push_str(&format!(
                "#EXTINF:-1 group-title=\"{group}\",Sport {i}\nhttp://s.example/{i}\n"
            ));
        }
        text
    };
    env.write("a.m3u", sports("UK | Sports"));
    env.write(
        "lineup.toml",
        "[[source]]\nname = \"a\"\nm3u = \"a.m3u\"\n\n\
         [[filter]]\nname = \"uk\"\ninclude = 'group_title starts_with \"UK | \"'\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"a\"]\nfilters = [\"uk\"]\nm3u = \"p.m3u\"\n",
    );
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");
    assert_eq!(names(&before).len(), 10);

    env.write("a.m3u", sports("UK: Sports"));
    let run = env.lineup(&["build", "--report", "-"]);
    run.expect(3);
    assert_eq!(env.read("out/p.m3u"), before, "playlist changed");
    assert_eq!(env.list("out"), ["p.m3u"], "no temporary file left");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    crate::harness::validate_report(&report);
    let p = &report["proxies"][0];
    assert_eq!(p["status"], "failed", "{report:#}");
    assert_eq!(p["channels_out"], 0);
    assert_eq!(p["previous_channels"], 10);
    assert!(
        error_of(p).contains("0 channels, the last good copy has 10"),
        "{report:#}"
    );

    // A dry run says so, and writes nothing either way.
    let run = env.lineup(&["build", "--dry-run"]);
    run.ok();
    assert!(run.stderr.contains("would refuse"), "{}", run.stderr);
    assert_eq!(env.read("out/p.m3u"), before);

    // A name that is nothing: a usage error, not a silently accepted copy.
    let run = env.lineup(&["build", "--accept-shrink", "q"]);
    run.expect(2);
    assert!(run.stderr.contains("--accept-shrink q"), "{}", run.stderr);
    assert_eq!(env.read("out/p.m3u"), before);

    let run = env.lineup(&["build", "--accept-shrink", "p"]);
    run.ok();
    assert!(names(&env.read("out/p.m3u")).is_empty());
}

#[test]
fn a_dry_run_never_makes_if_changed_skip() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 3));
    env.write(
        "lineup.toml",
        crate::harness::simple_config(&[("a", "a.m3u", true)], ""),
    );
    env.lineup(&["build"]).ok();
    env.write("a.m3u", playlist("a", 4));
    env.lineup(&["build", "--dry-run"]).ok();
    let run = env.lineup(&["build", "--if-changed"]);
    run.ok();
    assert_eq!(run.stdout, "");
    assert_eq!(names(&env.read("out/p.m3u")).len(), 4);
    assert_eq!(env.lineup(&["build", "--if-changed"]).stdout, "unchanged\n");
}

#[test]
fn an_interrupted_build_never_makes_if_changed_skip() {
    let env = Env::new();
    env.write("a.m3u", playlist("s", 2));
    env.write(
        "lineup.toml",
        crate::harness::simple_config(&[("a", "a.m3u", true)], ""),
    );
    env.lineup(&["build"]).ok();
    env.write("a.m3u", playlist("b", 200_000));
    let mut child = env
        .command(&["build", "-v"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Signal once the new copy is stored, while the proxy is being built: the case where the
    // store has the change and the outputs do not.
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains("200000 channels") {
            break;
        }
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let status = child.wait().unwrap();
    if !status.success() {
        assert_eq!(
            names(&env.read("out/p.m3u")).len(),
            2,
            "interrupted: the previous output stays\n{seen}{rest}"
        );
    }

    let run = env.lineup(&["build", "--if-changed"]);
    run.ok();
    if !status.success() {
        assert_eq!(run.stdout, "", "the change was never written");
    }
    assert_eq!(names(&env.read("out/p.m3u")).len(), 200_000);
}

#[test]
fn a_new_window_day_rebuilds_the_guide() {
    let net = Net::new();
    net.env.write("g.xml", guide(5));
    guide_config(&net, "g.xml");
    build_at(&net.env, NOW, &["--if-changed"]).ok();
    let run = build_at(&net.env, NOW + 3600, &["--if-changed"]);
    run.ok();
    assert_eq!(run.stdout, "unchanged\n", "same day: nothing to do");
    let run = build_at(&net.env, NOW + 86_400, &["--if-changed"]);
    run.ok();
    assert_eq!(run.stdout, "", "a new window day rolls the guide forward");
    // A deleted guide is rebuilt too.
    std::fs::remove_file(net.env.path("out/p.xml")).unwrap();
    let run = build_at(&net.env, NOW + 86_400, &["--if-changed"]);
    assert_eq!(run.stdout, "");
    assert!(net.env.path("out/p.xml").exists());
}

#[test]
fn cached_copies_do_not_count_for_min_successful_sources() {
    let net = Net::new();
    serve(&net, playlist("paid", 3));
    two_sources(&net, "min_successful_sources = 2\n", "");
    net.build(&[]).0.ok();
    let before = net.env.read("out/p.m3u");

    net.server.route("/list.m3u", Route::Status(500));
    let (run, report) = net.build(&[]);
    run.expect(4);
    assert_eq!(by_name(&report, "paid")["status"], "cached");
    assert!(
        error_of(&report).contains("min_successful_sources = 2"),
        "{report:#}"
    );
    assert_eq!(net.env.read("out/p.m3u"), before);

    // At 1, the fresh `free` is enough: exit 3 with the cached copy used.
    two_sources(&net, "", "");
    let (run, _) = net.build(&[]);
    run.expect(3);
}

#[test]
fn a_source_never_attempted_is_skipped_and_never_disabled() {
    let net = Net::new();
    serve(&net, playlist("paid", 3));
    let config = |total: &str| {
        let rest = format!(
            "[settings.health]\ndisable_after = 2\n\n{}{}",
            m3u_source("paid", &net.server.url("/list.m3u"), ""),
            crate::network::proxy(&["paid"]),
        );
        net.config(
            &format!("total_timeout = \"{total}\"\nmin_successful_sources = 0\n"),
            &rest,
        );
    };
    config("1m");
    net.build(&[]).0.ok();
    let hits = net.server.hits("/list.m3u");

    // No time left for any fetch: the source is never attempted.
    config("0s");
    for _ in 0..3 {
        let (run, report) = net.build(&[]);
        run.expect(3);
        crate::harness::validate_report(&report);
        let paid = by_name(&report, "paid");
        assert_eq!(paid["status"], "skipped", "{report:#}");
        assert_eq!(paid["attempts"], 0);
        assert_eq!(paid["items"], 3);
    }
    assert_eq!(net.server.hits("/list.m3u"), hits, "never attempted");
    let health = net.health("paid");
    assert_eq!(health["consecutive_failures"], 0, "{health:#}");
    assert_eq!(health["uptime_percent"], 100.0);
    assert_eq!(health["fetches"], 1);
    assert_eq!(health["state"], "healthy");
}

#[test]
fn sources_enable_clears_a_disabled_source() {
    let net = Net::new();
    net.server.route("/list.m3u", Route::Status(500));
    let rest = format!(
        "[settings.health]\ndisable_after = 1\nreprobe_after = \"6h\"\n\n{}[[proxy]]\nname = \"p\"\nsources = [\"paid\"]\nm3u = \"p.m3u\"\n",
        m3u_source("paid", &net.server.url("/list.m3u"), "retries = 0"),
    );
    net.config("min_successful_sources = 0\n", &rest);
    net.build(&[]).0.expect(3);
    let health = net.health("paid");
    assert_eq!(health["state"], "disabled");
    assert!(health["next_probe"].is_string(), "{health:#}");
    let table = net.env.lineup(&["sources"]);
    assert!(table.stdout.contains("next probe"), "{}", table.stdout);
    let (run, _) = net.build(&[]);
    assert!(
        run.stderr.contains("probed again at 20"),
        "the log says when: {}",
        run.stderr
    );

    let hits = net.server.hits("/list.m3u");
    net.env.lineup(&["sources", "--enable", "paid"]).ok();
    let health = net.health("paid");
    assert_eq!(health["consecutive_failures"], 0, "{health:#}");
    assert_eq!(health["disabled_since"], Value::Null);
    assert_eq!(health["next_probe"], Value::Null);
    serve(&net, playlist("paid", 3));
    let (run, report) = net.build(&[]);
    run.ok();
    assert_eq!(by_name(&report, "paid")["status"], "fetched");
    assert_eq!(net.server.hits("/list.m3u"), hits + 1);

    let run = net.env.lineup(&["sources", "--enable", "nope"]);
    run.expect(2);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
}
