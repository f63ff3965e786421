//! `lineup build` end to end: priority, inactive sources, determinism, failures that leave
//! the previous outputs alone.

use crate::harness::{Env, names, playlist, simple_config};

#[test]
fn priority_order_across_three_sources() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 3));
    env.write("b.m3u", playlist("b", 2));
    env.write("c.m3u", playlist("c", 4));
    // Listed order is the priority, not the order the sources are defined in.
    let mut config = simple_config(
        &[
            ("a", "a.m3u", true),
            ("b", "b.m3u", true),
            ("c", "c.m3u", true),
        ],
        "",
    );
    config = config.replace(
        "sources = [\"a\", \"b\", \"c\"]",
        "sources = [\"c\", \"a\", \"b\"]",
    );
    env.write("lineup.toml", config);
    env.lineup(&["build"]).ok();
    assert_eq!(
        names(&env.read("out/p.m3u")),
        [
            "c-0", "c-1", "c-2", "c-3", "a-0", "a-1", "a-2", "b-0", "b-1"
        ]
    );
}

#[test]
fn inactive_source_is_excluded_everywhere() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 2));
    // The inactive source is not even read: a missing file is no failure.
    env.write(
        "lineup.toml",
        simple_config(&[("gone", "missing.m3u", false), ("a", "a.m3u", true)], ""),
    );
    let run = env.lineup(&["build"]);
    run.ok();
    assert_eq!(names(&env.read("out/p.m3u")), ["a-0", "a-1"]);
    assert!(!run.stderr.contains("missing.m3u"), "{}", run.stderr);

    let check = env.lineup(&["check"]);
    check.ok();
    assert!(check.stdout.contains("1. source a"), "{}", check.stdout);
    assert!(check.stdout.contains("gone (inactive"), "{}", check.stdout);
}

#[test]
fn inactive_source_cached_in_the_database_is_not_read_back() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 2));
    env.write("b.m3u", playlist("b", 2));
    env.write(
        "lineup.toml",
        simple_config(&[("a", "a.m3u", true), ("b", "b.m3u", true)], ""),
    );
    env.lineup(&["build"]).ok();
    env.write(
        "lineup.toml",
        simple_config(&[("a", "a.m3u", true), ("b", "b.m3u", false)], ""),
    );
    env.lineup(&["build", "--offline"]).ok();
    assert_eq!(names(&env.read("out/p.m3u")), ["a-0", "a-1"]);
}

#[test]
fn two_builds_give_identical_bytes() {
    let env = Env::new();
    env.fixture("demo/freeview.m3u", "f.m3u");
    env.fixture("demo/premium.m3u", "p.m3u");
    env.write(
        "lineup.toml",
        simple_config(
            &[("f", "f.m3u", true), ("p", "p.m3u", true)],
            "epg_url = \"http://x/e.xml\"",
        ),
    );
    env.lineup(&["build"]).ok();
    let first = std::fs::read(env.path("out/p.m3u")).unwrap();
    env.lineup(&["build"]).ok();
    assert_eq!(first, std::fs::read(env.path("out/p.m3u")).unwrap());
    assert!(
        String::from_utf8(first)
            .unwrap()
            .starts_with("#EXTM3U url-tvg=\"http://x/e.xml\" x-tvg-url=\"http://x/e.xml\"\n")
    );
}

#[test]
fn failed_build_leaves_previous_output_untouched() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 2));
    env.write("lineup.toml", simple_config(&[("a", "a.m3u", true)], ""));
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");

    // A configuration error: exit 2, nothing written.
    env.write("a.m3u", playlist("new", 5));
    env.write(
        "lineup.toml",
        simple_config(&[("a", "a.m3u", true)], "bogus = 1"),
    );
    env.lineup(&["build"]).expect(2);
    assert_eq!(env.read("out/p.m3u"), before);

    // The only source is unreadable and was never stored: exit 4, nothing written.
    let fresh = Env::new();
    fresh.write("out/p.m3u", "previous\n");
    fresh.write(
        "lineup.toml",
        simple_config(&[("a", "missing.m3u", true)], ""),
    );
    let run = fresh.lineup(&["build"]);
    run.expect(4);
    assert!(run.stderr.contains("missing.m3u"), "{}", run.stderr);
    assert_eq!(fresh.read("out/p.m3u"), "previous\n");

    // The source breaks after a good build: its cached copy is not fresh, so with the default
    // min_successful_sources (1) the build stops at exit 4; at 0 the last good copy is used,
    // exit 3 (degraded).
    std::fs::remove_file(env.path("a.m3u")).unwrap();
    env.write("lineup.toml", simple_config(&[("a", "a.m3u", true)], ""));
    env.lineup(&["build"]).expect(4);
    assert_eq!(env.read("out/p.m3u"), before);
    env.write(
        "lineup.toml",
        format!(
            "[settings.fetch]\nmin_successful_sources = 0\n\n{}",
            simple_config(&[("a", "a.m3u", true)], "")
        ),
    );
    env.lineup(&["build"]).expect(3);
    assert_eq!(env.read("out/p.m3u"), before);

    // No temporary files are left behind.
    assert_eq!(env.list("out"), ["p.m3u"]);
}

#[test]
fn output_path_that_is_a_directory_fails_and_keeps_other_proxies() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 1));
    let mut config = simple_config(&[("a", "a.m3u", true)], "");
    config.push_str("[[proxy]]\nname = \"q\"\nsources = [\"a\"]\nm3u = \"q.m3u\"\n");
    env.write("lineup.toml", config);
    std::fs::create_dir_all(env.path("out/p.m3u")).unwrap();
    let run = env.lineup(&["build"]);
    run.expect(1);
    assert!(run.stderr.contains("proxy p"), "{}", run.stderr);
    assert_eq!(names(&env.read("out/q.m3u")), ["a-0"]);
}

#[test]
fn dry_run_prints_counts_and_writes_nothing() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 3));
    env.write("lineup.toml", simple_config(&[("a", "a.m3u", true)], ""));
    let run = env.lineup(&["build", "--dry-run"]);
    run.ok();
    assert!(
        run.stdout.contains(
            "p: 3 in, 3 after mapping (0 changed), 3 after filters (none removed), 0 deduped, 3 out"
        ),
        "{}",
        run.stdout
    );
    assert!(!env.path("out").exists());
}

#[test]
fn paths_resolve_against_the_config_directory() {
    let env = Env::new();
    env.write("conf/a.m3u", playlist("a", 1));
    env.write(
        "conf/lineup.toml",
        simple_config(&[("a", "a.m3u", true)], ""),
    );
    env.lineup(&["build", "conf/lineup.toml"]).ok();
    assert!(env.path("conf/out/p.m3u").exists());
    assert!(env.path("conf/lineup.db").exists());

    // $LINEUP_CONFIG names the config when no argument does.
    let mut cmd = env.command(&["build", "--output-dir", "elsewhere"]);
    cmd.env("LINEUP_CONFIG", env.path("conf/lineup.toml"));
    assert!(cmd.status().unwrap().success());
    assert!(env.path("elsewhere/p.m3u").exists());
}

#[test]
fn only_selected_proxies_are_built() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 1));
    let mut config = simple_config(&[("a", "a.m3u", true)], "");
    config.push_str("[[proxy]]\nname = \"q\"\nsources = [\"a\"]\nm3u = \"q.m3u\"\n");
    env.write("lineup.toml", config);
    env.lineup(&["build", "--proxy", "q"]).ok();
    assert_eq!(env.list("out"), ["q.m3u"]);
    env.lineup(&["build", "--proxy", "nope"]).expect(2);
}
