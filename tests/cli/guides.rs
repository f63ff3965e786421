//! Guides through the binary: matching, priority across guides, shift and window, DTD-valid
//! output (xmllint and tv_validate_file), the report's guide figures, and a broken guide that
//! keeps its last good copy.

use crate::harness::{Env, fixtures};
use crate::xmltv_check::validate;

/// 2024-03-01T12:00:00Z, the clock the priority fixtures are written around.
const NOW: &str = "1709294400";

fn report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).expect("stdout is the report")
}

fn demo_env(xmltv: &str) -> Env {
    let env = Env::demo();
    let config = env.read("lineup.toml").replace(
        "xmltv    = \"home.xml\"",
        &format!("xmltv    = \"{xmltv}\""),
    );
    env.write("lineup.toml", config);
    env
}

#[test]
fn demo_guide_is_dtd_valid_and_matches_by_id_and_name() {
    let env = demo_env("home.xml");
    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    validate(&env.path("out/home.xml"));

    let r = report(&run.stdout);
    let proxy = &r["proxies"][0];
    assert_eq!(proxy["guide"]["matched_by_id"], 4, "{proxy:#}");
    assert_eq!(proxy["guide"]["matched_by_name"], 2);
    assert_eq!(proxy["guide"]["unmatched"], 1);
    assert_eq!(
        proxy["guide"]["unmatched_names"],
        serde_json::json!(["BBC Radio 4"])
    );
    assert_eq!(proxy["guide"]["dropped"]["series-id"], 24);
    assert_eq!(proxy["epg_channels"], 6);
    assert_eq!(proxy["programmes"], 60);
    assert!(
        run.stderr
            .contains("4 channels matched by id, 2 by name, 1 without guide"),
        "{}",
        run.stderr
    );

    // A name match writes the guide's id into the playlist.
    let playlist = env.read("out/home.m3u");
    assert!(
        playlist.contains("tvg-id=\"cnninternational.us\""),
        "{playlist}"
    );
    assert!(playlist.contains("tvg-id=\"itv1plus1.uk\""), "{playlist}");
    // The guide holds exactly the playlist's channels that have guide data, in playlist order.
    let guide = env.read("out/home.xml");
    let ids: Vec<&str> = guide
        .lines()
        .filter_map(|l| l.trim().strip_prefix("<channel id=\""))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "skysportsmain.uk",
            "bbcone.uk",
            "cnninternational.us",
            "bbctwo.uk",
            "bbcnews.uk",
            "itv1plus1.uk"
        ]
    );
    assert!(
        guide.contains("<tv generator-info-name=\"lineup "),
        "{guide}"
    );
    assert!(!guide.contains("series-id"));
}

#[test]
fn gzip_guide_output_and_determinism() {
    let env = demo_env("home.xml.gz");
    env.lineup(&["build"]).ok();
    let first = std::fs::read(env.path("out/home.xml.gz")).unwrap();
    assert_eq!(&first[..2], &[0x1f, 0x8b], "gzip output");
    validate(&env.path("out/home.xml.gz"));
    std::fs::remove_file(env.path("out/home.xml.unpacked")).ok();
    env.lineup(&["build"]).ok();
    assert_eq!(first, std::fs::read(env.path("out/home.xml.gz")).unwrap());
}

fn priority_env(extra: &str) -> Env {
    let env = Env::new();
    env.fixture("xmltv/priority-a.xml", "a.xml");
    env.fixture("xmltv/priority-b.xml", "b.xml");
    env.write(
        "p.m3u",
        "#EXTM3U\n#EXTINF:-1 tvg-id=\"one.uk\",BBC One\nhttp://s/1\n#EXTINF:-1 tvg-id=\"two.uk\",BBC Two\nhttp://s/2\n\
         #EXTINF:-1,BBC One +1 HD\nhttp://s/3\n#EXTINF:-1,UK: Télé Québec FHD\nhttp://s/4\n#EXTINF:-1,Sky Sports\nhttp://s/5\n",
    );
    env.write(
        "lineup.toml",
        format!(
            "[[source]]\nname = \"s\"\nm3u = \"p.m3u\"\n\n\
             [[epg]]\nname = \"a\"\nxmltv = \"a.xml\"\n\n\
             [[epg]]\nname = \"b\"\nxmltv = \"b.xml\"\nshift = \"1h\"\n\n\
             [[proxy]]\nname = \"p\"\nsources = [\"s\"]\nm3u = \"p.m3u\"\nepg = [\"a\", \"b\"]\nxmltv = \"p.xml\"\n\
             epg_days = {{ past = 1, future = 2 }}\n{extra}\n"
        ),
    );
    env
}

fn build_at_now(env: &Env) -> serde_json::Value {
    let output = env
        .command(&["build", "--report", "-"])
        .env("LINEUP_NOW", NOW)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report(&String::from_utf8_lossy(&output.stdout))
}

#[test]
fn first_guide_with_programmes_wins_whole_and_shift_and_window_apply() {
    let env = priority_env("");
    let r = build_at_now(&env);
    validate(&env.path("out/p.xml"));
    let guide = env.read("out/p.xml");

    // one.uk: guide a has programmes, so all of them come from a, none from b.
    assert!(guide.contains("A: late morning") && guide.contains("A: lunch"));
    assert!(!guide.contains("B: never used"));
    // two.uk: a declares it without programmes, so b provides it, shifted by 1h, windowed,
    // sorted by start, exact duplicates removed.
    assert_eq!(guide.matches("B: lunch").count(), 1);
    assert!(
        guide.contains(
            "start=\"20240301130000 +0000\" stop=\"20240301140000 +0000\" channel=\"two.uk\""
        ),
        "{guide}"
    );
    assert!(!guide.contains("B: too old"));
    assert!(guide.contains("B: overlaps the window start after shift"));
    assert!(guide.contains("B: starts before the window end after shift"));
    assert!(!guide.contains("B: starts at the window end after shift"));
    let lunch = guide.find("B: lunch").unwrap();
    let afternoon = guide.find("B: afternoon").unwrap();
    assert!(lunch < afternoon, "sorted by start");
    assert_eq!(r["proxies"][0]["guide"]["duplicates"], 1);

    // Names: "+1" stays distinct, accents and quality words and country prefixes fold away,
    // and a name that fits two guide channels is not matched.
    let playlist = env.read("out/p.m3u");
    assert!(
        playlist.contains("tvg-id=\"one-plus1.uk\",BBC One +1 HD"),
        "{playlist}"
    );
    assert!(
        playlist.contains("tvg-id=\"tq.ca\",UK: Télé Québec FHD"),
        "{playlist}"
    );
    assert!(
        playlist.contains("#EXTINF:-1,Sky Sports\n"),
        "ambiguous name left alone: {playlist}"
    );
    assert_eq!(
        r["proxies"][0]["guide"]["unmatched_names"],
        serde_json::json!(["Sky Sports"])
    );
}

#[test]
fn id_only_matching_skips_names() {
    let env = priority_env("epg_match = \"id\"");
    let r = build_at_now(&env);
    assert_eq!(r["proxies"][0]["guide"]["matched_by_name"], 0);
    assert_eq!(r["proxies"][0]["guide"]["matched_by_id"], 2);
    assert!(!env.read("out/p.m3u").contains("one-plus1.uk"));
}

#[test]
fn broken_guide_keeps_its_last_good_copy_and_the_build_goes_on() {
    let env = demo_env("home.xml");
    env.lineup(&["build"]).ok();
    let before = env.read("out/home.xml");

    std::fs::copy(fixtures().join("xmltv/not-xml.xml"), env.path("guide.xml")).unwrap();
    let run = env.lineup(&["build", "--report", "-"]);
    run.expect(3);
    let r = report(&run.stdout);
    let guide = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "guide")
        .unwrap();
    assert_eq!(guide["status"], "cached");
    assert_eq!(guide["kind"], "xmltv");
    assert!(
        guide["error"].as_str().unwrap().contains("guide.xml"),
        "{guide}"
    );
    assert_eq!(env.read("out/home.xml"), before);

    // No earlier copy: the guide is failed, the playlist is still written.
    let fresh = demo_env("home.xml");
    std::fs::copy(
        fixtures().join("xmltv/not-xml.xml"),
        fresh.path("guide.xml"),
    )
    .unwrap();
    let run = fresh.lineup(&["build", "--report", "-"]);
    run.expect(3);
    assert!(fresh.path("out/home.m3u").exists());
    // An empty guide (tv_validate_file calls a guide without programmes an error, so only
    // the DTD is checked here).
    let empty = fresh.read("out/home.xml");
    assert!(
        empty.contains("<tv generator-info-name=") && !empty.contains("<channel"),
        "{empty}"
    );
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--dtdvalid", crate::xmltv_check::DTD])
        .arg(fresh.path("out/home.xml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
