//! Every configuration error names the file, line and column, exits 2, and writes nothing.

use crate::harness::Env;

/// Run `lineup check` and `lineup build` on `config`; both must exit 2 with `expected` (a
/// `file:line:col: message` fragment) on stderr, and nothing may be written.
#[track_caller]
fn assert_config_error(config: &str, expected: &str) {
    let env = Env::new();
    env.write("a.m3u", "#EXTM3U\n#EXTINF:-1,A\nhttp://a\n");
    env.write("lineup.toml", config);
    for cmd in ["check", "build"] {
        let run = env.lineup(&[cmd]);
        run.expect(2);
        assert!(
            run.stderr.contains(expected),
            "{cmd}: expected {expected:?} in stderr:\n{}",
            run.stderr
        );
    }
    assert!(!env.path("out").exists(), "nothing written");
    assert!(!env.path("lineup.db").exists(), "nothing fetched or stored");
}

const GOOD: &str = "[[source]]\nname = \"a\"\nm3u = \"a.m3u\"\n\n[[proxy]]\nname = \"p\"\nsources = [\"a\"]\nm3u = \"p.m3u\"\n";

#[test]
fn the_good_config_is_good() {
    let env = Env::new();
    env.write("a.m3u", "#EXTM3U\n");
    env.write("lineup.toml", GOOD);
    env.lineup(&["check"]).ok();
}

#[test]
fn unknown_key() {
    assert_config_error(
        &GOOD.replace("m3u = \"p.m3u\"", "m3u = \"p.m3u\"\nsorting = \"x\""),
        "lineup.toml:9:1: unknown field `sorting`",
    );
    assert_config_error(
        &format!("[settings]\ndatabse = \"x\"\n{GOOD}"),
        "lineup.toml:2:1: unknown field `databse`",
    );
}

#[test]
fn duplicate_names() {
    assert_config_error(
        &format!("{GOOD}\n[[source]]\nname = \"a\"\nm3u = \"b.m3u\"\n"),
        "lineup.toml:11:8: duplicate source name `a`",
    );
}

#[test]
fn proxy_naming_a_missing_source() {
    assert_config_error(
        &GOOD.replace("sources = [\"a\"]", "sources = [\"a\", \"nope\"]"),
        "lineup.toml:7:17: proxy `p`: no [[source]] named `nope`",
    );
}

#[test]
fn bad_duration_and_size() {
    assert_config_error(
        &format!("[settings.fetch]\ntimeout = \"30 parsecs\"\n{GOOD}"),
        "lineup.toml:2:11: invalid duration `30 parsecs`",
    );
    assert_config_error(
        &format!("[settings]\nmemory_limit = \"lots\"\n{GOOD}"),
        "lineup.toml:2:16: invalid size `lots`",
    );
}

#[test]
fn unset_environment_variable() {
    assert_config_error(
        &GOOD.replace(
            "m3u = \"a.m3u\"",
            "m3u = \"${LINEUP_TEST_SURELY_UNSET}/a.m3u\"",
        ),
        "lineup.toml:3:7: environment variable `LINEUP_TEST_SURELY_UNSET` is not set",
    );
}

#[test]
fn invalid_toml_and_bad_names() {
    assert_config_error("[[source]\nname = 1\n", "lineup.toml:1:");
    assert_config_error(
        &GOOD.replace("name = \"a\"", "name = \"a b\""),
        "lineup.toml:2:8: invalid name `a b`",
    );
    assert_config_error(
        &GOOD.replace("m3u = \"a.m3u\"", "m3u = \"a.m3u\"\nxtream = { server = \"http://x\", username = \"u\", password = \"p\" }"),
        "lineup.toml:2:8: source `a` needs exactly one of `m3u` or `xtream`",
    );
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let env = Env::new();
    let run = env.lineup(&["build", "nope.toml"]);
    run.expect(2);
    assert!(
        run.stderr.contains("nope.toml: cannot read configuration"),
        "{}",
        run.stderr
    );
}
