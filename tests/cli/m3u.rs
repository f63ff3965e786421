//! The M3U reader through the binary: one fixture per quirk (fixtures/m3u/README.md), and the
//! promise that reading then writing keeps every attribute and directive.

use crate::harness::{Env, fixtures, parse_m3u, simple_config};

/// Build one proxy over `fixtures/m3u/<fixture>` and return (playlist text, stderr).
fn build_one(fixture: &str) -> (String, String) {
    let env = Env::new();
    env.fixture(&format!("m3u/{fixture}"), fixture);
    env.write("lineup.toml", simple_config(&[("s", fixture, true)], ""));
    let run = env.lineup(&["build"]);
    run.ok();
    (env.read("out/p.m3u"), run.stderr.clone())
}

fn channel_lines(text: &str) -> Vec<&str> {
    text.lines().skip(1).collect()
}

#[test]
fn header_attributes_are_read_and_not_copied_to_channels() {
    let (out, _) = build_one("header-attrs.m3u");
    assert_eq!(
        channel_lines(&out),
        ["#EXTINF:-1 tvg-id=\"a.uk\",A", "http://s.example/a"]
    );
}

#[test]
fn quoted_unquoted_and_commas() {
    // Nothing changed these channels: their lines keep the input's bytes, quoting and all.
    let (out, _) = build_one("quoting.m3u");
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"news.uk\" group-title=\"News, Weather & Sport\" tvg-name='Single \"Quoted\"' radio=false tvg-chno=7,News, at Ten",
            "http://s.example/news",
            "#EXTINF:0 catchup=\"shift\" catchup-source=\"?utc={utc}&lutc={lutc}\" catchup-days=3,Catch-up",
            "http://s.example/cu",
        ]
    );
    let parsed = crate::harness::parse_m3u(out.as_bytes());
    assert_eq!(parsed[0].attr("radio"), Some("false"));
    assert_eq!(parsed[0].attr("tvg-chno"), Some("7"));

    // A changed channel is written from its fields: numbering sets tvg-chno.
    let env = Env::new();
    env.fixture("m3u/quoting.m3u", "quoting.m3u");
    env.write(
        "lineup.toml",
        simple_config(&[("s", "quoting.m3u", true)], "numbering = { start = 40 }"),
    );
    env.lineup(&["build"]).ok();
    assert_eq!(
        channel_lines(&env.read("out/p.m3u"))[0],
        "#EXTINF:-1 tvg-id=\"news.uk\" group-title=\"News, Weather & Sport\" tvg-name='Single \"Quoted\"' radio=\"false\" tvg-chno=\"40\",News, at Ten"
    );
}

#[test]
fn directive_lines_stay_with_their_channel() {
    let (out, _) = build_one("directives.m3u");
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"one\",One",
            "#EXTGRP:Movies",
            "#EXTVLCOPT:http-referrer=http://ref.example/",
            "#EXTVLCOPT:http-user-agent=Mozilla/5.0 (X11)",
            "#KODIPROP:inputstream.adaptive.license_type=clearkey",
            "#EXT-X-SOMETHING-CUSTOM:yes",
            "http://s.example/one",
        ]
    );
}

#[test]
fn crlf_bom_blank_lines_and_missing_header() {
    let (out, _) = build_one("crlf.m3u");
    assert!(!out.contains('\r'));
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"c1\" group-title=\"G\",CRLF One",
            "http://s.example/c1",
            "#EXTINF:-1 tvg-id=\"c2\",CRLF Two",
            "#EXTVLCOPT:network-caching=1000",
            "http://s.example/c2",
        ]
    );
    let (out, _) = build_one("bom.m3u");
    assert_eq!(
        channel_lines(&out),
        ["#EXTINF:-1 tvg-id=\"b1\",BOM One", "http://s.example/b1"]
    );
    let (out, _) = build_one("blank-lines.m3u");
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"x1\",Blank One",
            "http://s.example/x1",
            "#EXTINF:-1,Blank Two",
            "http://s.example/x2"
        ]
    );
    let (out, _) = build_one("no-header.m3u");
    assert_eq!(
        channel_lines(&out),
        ["#EXTINF:-1 tvg-id=\"n1\",No Header", "http://s.example/n1"]
    );
}

#[test]
fn windows_1252_is_decoded_with_one_warning() {
    let (out, stderr) = build_one("windows-1252.m3u");
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"fr\" group-title=\"Télé\",Café Télé €",
            "http://s.example/fr",
            "#EXTINF:-1,München",
            "http://s.example/de",
        ]
    );
    assert_eq!(stderr.matches("Windows-1252").count(), 1, "{stderr}");
    assert!(stderr.contains("windows-1252.m3u:2: "), "{stderr}");
}

#[test]
fn gzip_and_xz_by_magic_bytes() {
    for fixture in ["gzip.m3u.gz", "xz.m3u.xz", "gzip-named.m3u"] {
        let (out, _) = build_one(fixture);
        assert_eq!(
            channel_lines(&out),
            [
                "#EXTINF:-1 tvg-id=\"z1\",Packed One",
                "http://s.example/z1",
                "#EXTINF:-1 tvg-id=\"z2\",Packed Two",
                "http://s.example/z2",
            ],
            "{fixture}"
        );
    }
}

#[test]
fn broken_lines_are_skipped_with_file_and_line() {
    let (out, stderr) = build_one("broken-lines.m3u");
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"ok1\",Kept One",
            "http://s.example/ok1",
            "#EXTINF:-1 tvg-id=\"ok2\",Kept Two",
            "http://s.example/ok2"
        ]
    );
    for line in [2, 5, 8] {
        assert!(
            stderr.contains(&format!("broken-lines.m3u:{line}: ")),
            "line {line}:\n{stderr}"
        );
    }
}

#[test]
fn title_without_comma() {
    let (out, _) = build_one("no-comma.m3u");
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"nc1\" group-title=\"G\",Title Without Comma",
            "http://s.example/nc1"
        ]
    );
}

#[test]
fn spaces_around_equals_are_attributes() {
    let (out, stderr) = build_one("spaced-equals.m3u");
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"PremierSports\" group-title=\"Local\",Premier Sports",
            "http://s.example/ps",
            "#EXTINF:-1 tvg-id=\"eq2\" tvg-name=\"Two\" group-title=\"Local\",Equals Two",
            "http://s.example/eq2",
        ]
    );
    assert!(!stderr.contains("spaced-equals.m3u:"), "{stderr}");
}

#[test]
fn stray_quotes_are_recovered_with_a_located_warning() {
    let (out, stderr) = build_one("stray-quotes.m3u");
    assert_eq!(
        channel_lines(&out),
        [
            "#EXTINF:-1 tvg-id=\"sq1\" tvg-logo=\"https://logos.example/sq1.png\" group-title=\"X\",Stray One",
            "http://s.example/sq1",
            "#EXTINF:-1 tvg-name=\"Two\" tvg-id=\"sq2\" group-title=\"X\",Stray, Two",
            "http://s.example/sq2",
        ]
    );
    for line in [2, 4] {
        assert!(
            stderr.contains(&format!(
                "stray-quotes.m3u:{line}: stray quote in attribute"
            )),
            "line {line}:\n{stderr}"
        );
    }
}

#[test]
fn extgrp_groups_filter_and_is_written_back_unchanged() {
    let env = Env::new();
    env.fixture("m3u/extgrp.m3u", "extgrp.m3u");
    env.write(
        "lineup.toml",
        format!(
            "[[filter]]\nname = \"news\"\ninclude = 'group_title equals \"News\"'\n\n{}",
            simple_config(&[("s", "extgrp.m3u", true)], "filters = [\"news\"]")
        ),
    );
    env.lineup(&["build"]).ok();
    assert_eq!(
        channel_lines(&env.read("out/p.m3u")),
        [
            "#EXTINF:-1 tvg-id=\"g1\",Grouped One",
            "#EXTGRP:News",
            "http://s.example/g1",
            "#EXTINF:-1 tvg-id=\"g2\",Grouped Two",
            "http://s.example/g2",
        ]
    );
}

#[test]
fn read_write_read_is_lossless_for_every_fixture() {
    let dir = fixtures().join("m3u");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            continue;
        }
        let env = Env::new();
        env.fixture(&format!("m3u/{name}"), &name);
        env.write("lineup.toml", simple_config(&[("s", &name, true)], ""));
        env.lineup(&["build"]).ok();
        let written = std::fs::read(env.path("out/p.m3u")).unwrap();

        let mut original = Vec::new();
        use std::io::Read;
        lineup::parse::decode::open(&path, u64::MAX)
            .unwrap()
            .read_to_end(&mut original)
            .unwrap();
        let before = parse_m3u(&original);
        let after = parse_m3u(&written);
        assert!(!before.is_empty(), "{name}");
        assert_eq!(before, after, "{name}");
        checked += 1;
    }
    assert!(checked >= 12);
}
