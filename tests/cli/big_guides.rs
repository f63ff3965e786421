//! Guides that would take memory without bound (issue 13): a `<display-name>` of 60 MB and
//! gzip bombs of NUL bytes, generated here (never committed; a gzip of repeated bytes is
//! small) and built under `--memory-limit 64MiB`. The real peak (VmHWM, as the report gives
//! it) must stay within the budget plus the documented overhead (README, Memory).

use crate::harness::{Env, validate_report};
use crate::hostile::gzip_stream;

/// The budget of these builds.
const BUDGET: u64 = 64 << 20;
/// The fixed overhead over the budget that README (Memory) documents: the binary, SQLite's
/// page cache, the reader's fixed buffers (one text node, one tag) and allocator slack.
const OVERHEAD: u64 = 32 << 20;

const HEAD: &[u8] = b"<?xml version=\"1.0\"?>\n<tv>\n\
    <channel id=\"big.uk\">\n<display-name>";
const CLOSE: &[u8] = b"</display-name>\n</channel>\n";
const REST: &[u8] = b"<channel id=\"a.uk\"><display-name>A</display-name></channel>\n\
    <programme channel=\"a.uk\" start=\"20240301120000 +0000\" stop=\"20240301130000 +0000\">\
    <title>Survivor</title></programme>\n</tv>\n";

/// A playlist with one channel of guide id `a.uk`, a guide `guide.xml.gz`, one proxy.
fn env(guide: Vec<u8>) -> Env {
    let env = Env::new();
    env.write("guide.xml.gz", guide);
    env.write(
        "a.m3u",
        "#EXTM3U\n#EXTINF:-1 tvg-id=\"a.uk\",Chan\nhttp://s/1\n",
    );
    env.write(
        "lineup.toml",
        "[[source]]\nname = \"a\"\nm3u = \"a.m3u\"\n\n\
         [[epg]]\nname = \"g\"\nxmltv = \"guide.xml.gz\"\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"a\"]\nm3u = \"p.m3u\"\nepg = [\"g\"]\n\
         xmltv = \"p.xml\"\nepg_days = { past = 1, future = 2 }\n",
    );
    env
}

/// Build on 2024-03-01 under the 64 MiB budget; the run and its report.
fn build(env: &Env) -> (crate::harness::Run, serde_json::Value) {
    let output = env
        .command(&["build", "--memory-limit", "64MiB", "--report", "r.json"])
        .env("LINEUP_NOW", "1709294400")
        .output()
        .unwrap();
    let run = crate::harness::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let report: serde_json::Value = serde_json::from_str(&env.read("r.json")).unwrap();
    validate_report(&report);
    (run, report)
}

fn guide_source(report: &serde_json::Value) -> &serde_json::Value {
    report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "g")
        .expect("guide in the report")
}

fn assert_within_budget(report: &serde_json::Value) {
    let peak = report["memory"]["peak_rss_bytes"].as_u64().unwrap();
    assert!(
        peak > 0 && peak <= BUDGET + OVERHEAD,
        "peak RSS {} MiB over {} MiB + {} MiB",
        peak >> 20,
        BUDGET >> 20,
        OVERHEAD >> 20
    );
}

#[test]
fn sixty_megabyte_display_name_is_skipped_in_bounded_memory() {
    let env = env(gzip_stream(
        HEAD,
        &vec![b'x'; 1 << 20],
        60,
        &[CLOSE, REST].concat(),
    ));
    assert!(std::fs::metadata(env.path("guide.xml.gz")).unwrap().len() < 1 << 20);
    let (run, report) = build(&env);
    run.ok();
    assert!(
        run.stderr
            .contains("guide.xml.gz:3: skipped malformed <channel>: text longer than 1 MiB"),
        "{}",
        run.stderr
    );
    // The rest of the guide is read: the other channel and its programme are there.
    assert!(env.read("out/p.xml").contains("Survivor"));
    assert_eq!(guide_source(&report)["oversized"], 1, "{report:#}");
    assert_within_budget(&report);
}

#[test]
fn nul_bombs_are_skipped_or_refused_in_bounded_memory() {
    // 128 MiB of NUL bytes inside an element, then 128 MiB between two elements: four times
    // the budget.
    let mib = vec![0u8; 1 << 20];
    let mut guide = gzip_stream(HEAD, &mib, 128, CLOSE);
    guide.extend(gzip_stream(b"", &mib, 128, REST));
    let env = env(guide);
    let (run, report) = build(&env);
    run.ok();
    assert!(env.read("out/p.xml").contains("Survivor"));
    assert!(
        run.stderr.contains("bytes of text outside elements"),
        "{}",
        run.stderr
    );
    assert_eq!(guide_source(&report)["oversized"], 1, "{report:#}");
    assert_within_budget(&report);

    // Nothing but NUL bytes: not a guide, found at its first byte.
    env.write("guide.xml.gz", gzip_stream(b"", &mib, 1024, b""));
    let (run, report) = build(&env);
    assert!(
        run.stderr.contains("guide.xml.gz:1: not an XML document"),
        "{}",
        run.stderr
    );
    assert_eq!(guide_source(&report)["status"], "cached", "{report:#}");
    assert_within_budget(&report);
}
