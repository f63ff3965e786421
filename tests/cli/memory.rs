//! Bounded memory through the binary: a tiny `--memory-limit` spills and still gives
//! byte-identical outputs, the report's memory figures are there, and spill files are gone
//! after success, failure and SIGINT.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::harness::{Env, playlist};

/// Two sources, sorted by group then name (the sort stage is what spills), deduped, numbered.
fn env_with(channels: usize) -> Env {
    let env = Env::new();
    env.write("a.m3u", playlist("a", channels));
    env.write("b.m3u", playlist("b", channels / 2));
    env.write(
        "lineup.toml",
        "[settings]\nspill_dir = \"spill\"\n\n\
         [[source]]\nname = \"a\"\nm3u = \"a.m3u\"\n\n[[source]]\nname = \"b\"\nm3u = \"b.m3u\"\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"a\", \"b\"]\nm3u = \"p.m3u\"\ndedupe = \"stream_url\"\n\
         sort = [\"group_title\", \"channel_name\"]\nnumbering = { start = 1 }\n",
    );
    env
}

fn report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).expect("stdout is the report")
}

#[test]
fn tiny_budget_spills_and_gives_identical_outputs() {
    let env = env_with(20_000);
    let roomy = env.lineup(&[
        "build",
        "--report",
        "-",
        "--output-dir",
        "roomy",
        "--db",
        "roomy.db",
    ]);
    roomy.ok();
    let roomy = report(&roomy.stdout);
    assert_eq!(roomy["memory"]["spilled_bytes"], 0);
    assert!(roomy["memory"]["budget_bytes"].as_u64().unwrap() >= 64 << 20);

    let tight = env.lineup(&[
        "build",
        "--report",
        "-",
        "--output-dir",
        "tight",
        "--db",
        "tight.db",
        "--memory-limit",
        "2MiB",
    ]);
    tight.ok();
    let tight_report = report(&tight.stdout);
    let memory = &tight_report["memory"];
    assert_eq!(memory["budget_bytes"], 2 << 20);
    assert!(memory["spilled_bytes"].as_u64().unwrap() > 0, "{memory}");
    assert!(memory["spill_files"].as_u64().unwrap() > 0, "{memory}");
    assert!(memory["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert_ne!(memory["max_pressure"], "optimal");
    // Each change of pressure level is logged once, with figures.
    assert!(
        tight.stderr.contains("memory: pressure "),
        "{}",
        tight.stderr
    );

    assert_eq!(
        std::fs::read(env.path("roomy/p.m3u")).unwrap(),
        std::fs::read(env.path("tight/p.m3u")).unwrap()
    );
    assert!(
        env.list("spill").is_empty(),
        "spill files removed after success"
    );
}

#[test]
fn spill_files_are_removed_after_a_failure() {
    let env = env_with(5_000);
    // The output path is a directory: the proxy fails after the sort stage spilled.
    std::fs::create_dir_all(env.path("out/p.m3u")).unwrap();
    env.lineup(&["build", "--memory-limit", "1MiB"]).expect(1);
    assert!(env.list("spill").is_empty(), "{:?}", env.list("spill"));
}

#[test]
fn spill_files_are_removed_after_sigint() {
    let env = env_with(150_000);
    let mut child = env
        .command(&["build", "-v", "--memory-limit", "1MiB"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Wait until the pipeline runs (the sort stage spills from its first chunks).
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if line.contains("memory: pressure") || line.contains("proxy p:") {
            break;
        }
        line.clear();
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    child.wait().unwrap();
    assert!(
        env.list("spill").is_empty(),
        "{:?}\n{rest}",
        env.list("spill")
    );
}

/// Numbering's spool and the sort by number under a budget far smaller than the channels:
/// each writes more runs than a merge takes at once (8 under 1 MiB), so they merge in
/// passes. The playlist is byte for byte the one a build with room for everything writes.
#[test]
fn sort_by_number_in_many_runs_gives_identical_outputs() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 30_000));
    env.write(
        "lineup.toml",
        "[settings]\nspill_dir = \"spill\"\n\n[[source]]\nname = \"a\"\nm3u = \"a.m3u\"\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"a\"]\nm3u = \"p.m3u\"\nsort = \"number\"\n\
         numbering = { mode = \"preserve\", groups = { \"G2\" = 1, \"G0\" = 20000, \"G1\" = 40000 } }\n",
    );
    let build = |dir: &str, extra: &[&str]| {
        let mut args = vec!["build", "--report", "-", "--output-dir", dir, "--db"];
        let db = format!("{dir}.db");
        args.push(&db);
        args.extend_from_slice(extra);
        let out = env.lineup(&args);
        out.ok();
        report(&out.stdout)
    };
    let roomy = build("roomy", &[]);
    assert_eq!(roomy["memory"]["spill_files"], 0);
    let tight = build("tight", &["--memory-limit", "1MiB"]);
    let files = tight["memory"]["spill_files"].as_u64().unwrap();
    assert!(files > 2 * 8, "{}", tight["memory"]);
    let playlist = env.read("roomy/p.m3u");
    assert_eq!(playlist, env.read("tight/p.m3u"));
    // In number order, which is not the order of the source: G2 first.
    let first = playlist.lines().find(|l| l.starts_with("#EXTINF")).unwrap();
    assert!(first.contains("group-title=\"G2\""), "{first}");
    assert!(env.list("spill").is_empty(), "{:?}", env.list("spill"));
}
