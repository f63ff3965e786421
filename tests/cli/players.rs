//! What players need beyond the playlist: placeholder guide data for channels no guide covers
//! (`epg_placeholder`) and guide icons as logos (`logos.from_guide`), through the binary.

use crate::harness::Env;
use crate::xmltv_check::validate;

/// 2024-03-01T12:00:00Z.
const NOW: &str = "1709294400";

const GUIDE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<tv>
  <channel id="a.uk"><display-name>A</display-name><icon src="http://guide.example/a.png"/></channel>
  <channel id="b.uk"><display-name>B</display-name><icon src="http://guide.example/b.png"/></channel>
  <programme channel="a.uk" start="20240301120000 +0000" stop="20240301130000 +0000"><title>News</title></programme>
  <programme channel="b.uk" start="20240301120000 +0000" stop="20240301130000 +0000"><title>Film</title></programme>
</tv>
"#;

const PLAYLIST: &str = "#EXTM3U\n\
#EXTINF:-1 tvg-id=\"a.uk\",A\nhttp://s/a\n\
#EXTINF:-1 tvg-id=\"b.uk\" tvg-logo=\"http://own.example/b.png\",B\nhttp://s/b\n\
#EXTINF:-1 group-title=\"Local\",Local Café TV\nhttp://s/c\n\
#EXTINF:-1 tvg-id=\"d.unknown\",D\nhttp://s/d\n\
#EXTINF:-1,Local Café TV\nhttp://s/c2\n";

fn config(extra: &str) -> String {
    format!(
        "[[source]]\nname = \"s\"\nm3u = \"s.m3u\"\n\n\
         [[epg]]\nname = \"g\"\nxmltv = \"guide.xml\"\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"s\"]\nepg = [\"g\"]\nm3u = \"p.m3u\"\nxmltv = \"p.xml\"\n\
         epg_days = {{ past = 0, future = 1 }}\n{extra}\n"
    )
}

fn build(env: &Env) -> serde_json::Value {
    let out = env
        .command(&["build", "--report", "-"])
        .env("LINEUP_NOW", NOW)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn unmatched_channels_get_aligned_placeholder_blocks_and_guide_icons_fill_logos() {
    let env = Env::new();
    env.write("s.m3u", PLAYLIST);
    env.write("guide.xml", GUIDE);
    env.write(
        "lineup.toml",
        config(
            "epg_placeholder = { block = \"6h\", title = \"{channel_name} ({group_title})\" }\n\
             logos = { from_guide = true }",
        ),
    );
    let report = build(&env);
    let proxy = &report["proxies"][0];
    assert_eq!(proxy["placeholder_channels"], 2, "{proxy:#}");
    assert_eq!(proxy["epg_channels"], 4);
    // Two real programmes, and 4 blocks of 6h over the one-day window for each placeholder.
    assert_eq!(proxy["programmes"], 2 + 2 * 4);
    validate(&env.path("out/p.xml"));

    let playlist = env.read("out/p.m3u");
    assert!(
        playlist.contains("tvg-id=\"a.uk\" tvg-logo=\"http://guide.example/a.png\",A"),
        "{playlist}"
    );
    assert!(playlist.contains("tvg-logo=\"http://own.example/b.png\",B"));
    // A generated id (ASCII, as XMLTV tools want), written back, the same for the same name.
    let at = playlist
        .find("tvg-id=\"local-caf-tv-")
        .expect("generated id");
    let id = playlist[at + 8..].split('"').next().unwrap().to_string();
    assert!(id.ends_with(".placeholder"), "{id}");
    assert_eq!(
        playlist.matches(&format!("tvg-id=\"{id}\"")).count(),
        2,
        "{playlist}"
    );
    let guide = env.read("out/p.xml");
    assert_eq!(guide.matches(&format!("<channel id=\"{id}\">")).count(), 1);
    assert!(guide.contains("<channel id=\"d.unknown\">"), "{guide}");
    assert!(guide.contains(
        &format!("<programme start=\"20240301120000 +0000\" stop=\"20240301180000 +0000\" channel=\"{id}\">")
    ), "{guide}");
    assert!(guide.contains(
        "<programme start=\"20240302060000 +0000\" stop=\"20240302120000 +0000\" channel=\"d.unknown\">"
    ));
    assert!(guide.contains("<title>Local Café TV (Local)</title>"));
    assert!(guide.contains("<title>D ()</title>"));
}

#[test]
fn without_the_keys_nothing_changes() {
    let env = Env::new();
    env.write("s.m3u", PLAYLIST);
    env.write("guide.xml", GUIDE);
    env.write("lineup.toml", config(""));
    let report = build(&env);
    assert_eq!(report["proxies"][0]["placeholder_channels"], 0);
    assert_eq!(report["proxies"][0]["epg_channels"], 2);
    let playlist = env.read("out/p.m3u");
    assert!(!playlist.contains("placeholder"));
    assert!(!playlist.contains("guide.example"));
}

#[test]
fn placeholders_alone_make_a_guide_and_bad_blocks_are_located() {
    let env = Env::new();
    env.write("s.m3u", PLAYLIST);
    env.write(
        "lineup.toml",
        "[[source]]\nname = \"s\"\nm3u = \"s.m3u\"\n\n[[proxy]]\nname = \"p\"\nsources = [\"s\"]\n\
         m3u = \"p.m3u\"\nxmltv = \"p.xml\"\nepg_days = { past = 0, future = 1 }\n\
         epg_placeholder = {}\n",
    );
    let report = build(&env);
    assert_eq!(report["proxies"][0]["placeholder_channels"], 4);
    validate(&env.path("out/p.xml"));
    assert!(env.read("out/p.xml").contains("<title>D</title>"));

    env.write(
        "lineup.toml",
        env.read("lineup.toml").replace(
            "epg_placeholder = {}",
            "epg_placeholder = { block = \"7m\" }",
        ),
    );
    let run = env.lineup(&["check"]);
    run.expect(2);
    assert!(run.stderr.contains("lineup.toml:11:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("epg_placeholder.block"),
        "{}",
        run.stderr
    );
}

#[test]
fn catchup_id_is_kept_by_default_and_xmltv_keep_empty_gives_a_valid_guide() {
    let env = Env::new();
    env.write("s.m3u", PLAYLIST);
    env.write(
        "guide.xml",
        GUIDE.replace(
            "<programme channel=\"a.uk\"",
            "<programme catchup-id=\"c-17\" channel=\"a.uk\"",
        ),
    );
    env.write("lineup.toml", config(""));
    build(&env);
    assert!(env.read("out/p.xml").contains("catchup-id=\"c-17\""));

    env.write("lineup.toml", config("xmltv_keep = []"));
    let report = build(&env);
    assert!(!env.read("out/p.xml").contains("catchup-id"));
    assert_eq!(
        report["proxies"][0]["guide"]["dropped"]["programme@catchup-id"],
        1
    );
    validate(&env.path("out/p.xml"));
}
