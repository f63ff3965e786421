//! Channel numbering across builds: sticky numbers over six builds of a changing provider
//! playlist, the preserve fix, the group-start warning, `sort = "number"` and
//! `lineup numbers`.

use std::collections::{BTreeMap, BTreeSet};

use crate::harness::{Env, parse_m3u};

const DAY: i64 = 86_400;
const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// (tvg-id, name, group): a provider's channel.
type Ch = (&'static str, &'static str, &'static str);

fn playlist(channels: &[Ch]) -> String {
    let mut text = String::from("#EXTM3U\n");
    for (id, name, group) in channels {
        text.push_str(&format!(
            "#EXTINF:-1 tvg-id=\"{id}\" group-title=\"{group}\",{name}\nhttp://s.example/{id}\n"
        ));
    }
    text
}

/// The provider's playlist changes shape on purpose in these scripts (the dry-run step cuts it
/// to two channels), so the shrink guard is off.
fn config(jobs: usize, chunk: usize) -> String {
    format!(
        "[settings]\njobs = {jobs}\n[settings.buffer]\nchunk_size = {chunk}\n\
         [settings.fetch]\nmax_shrink = \"100%\"\n\n\
         [[source]]\nname = \"prov\"\nm3u = \"prov.m3u\"\n\n\
         [[proxy]]\nname = \"home\"\nsources = [\"prov\"]\nm3u = \"home.m3u\"\n\
         sort = \"number\"\n\
         numbering = {{ mode = \"sticky\", start = 1, groups = {{ \"Sports\" = 100 }}, forget_after = \"30d\" }}\n"
    )
}

/// tvg-id -> number, and the numbers in file order.
fn numbers(text: &str) -> (BTreeMap<String, u64>, Vec<u64>) {
    let mut map = BTreeMap::new();
    let mut order = Vec::new();
    for ch in parse_m3u(text.as_bytes()) {
        let n: u64 = ch.attr("tvg-chno").unwrap().parse().unwrap();
        assert!(
            map.insert(ch.attr("tvg-id").unwrap_or("").to_string(), n)
                .is_none(),
            "tvg-id twice in\n{text}"
        );
        order.push(n);
    }
    (map, order)
}

fn build_at(env: &Env, day: i64, extra: &[&str]) -> crate::harness::Run {
    let now = (T0 + day * DAY).to_string();
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let out = env.command(&args).env("LINEUP_NOW", &now).output().unwrap();
    crate::harness::Run::from_output(out)
}

/// The six provider playlists (and the day each build runs).
fn script() -> Vec<(i64, Vec<Ch>)> {
    let a = ("a", "Alpha", "News");
    let b = ("b", "Bravo", "News");
    let b2 = ("b", "Bravo HD (renamed)", "News");
    let c = ("c", "Charlie", "Movies");
    let d = ("d", "Delta", "Movies");
    let e = ("e", "Echo", "Sports");
    let f = ("f", "Foxtrot", "Sports");
    let n1 = ("n1", "New One", "News");
    let n2 = ("n2", "New Two", "News");
    let n3 = ("n3", "New Three", "News");
    vec![
        (0, vec![a, b, c, d, e]),
        // A channel inserted at the top, C gone, the rest reordered.
        (1, vec![n1, e, d, b, a]),
        // B renamed (same tvg-id), C still gone, D gone (for good), F new in Sports.
        (2, vec![b2, a, n1, f, e]),
        // C back after two builds.
        (3, vec![c, b2, a, n1, f, e]),
        // 31 days after D was last seen (day 1): past forget_after; the others were seen
        // 29 days ago. A new channel takes the lowest free number, which D held.
        (32, vec![n2, c, b2, a, n1, f, e]),
        // D back: it is new now.
        (33, vec![d, n3, n2, c, b2, a, n1, f, e]),
    ]
}

/// Run the script; return each build's playlist.
fn run_script(jobs: usize, chunk: usize) -> Vec<String> {
    let env = Env::new();
    env.write("lineup.toml", config(jobs, chunk));
    let mut outputs = Vec::new();
    for (i, (day, channels)) in script().into_iter().enumerate() {
        env.write("prov.m3u", playlist(&channels));
        build_at(&env, day, &["--report", "report.json"]).ok();
        let text = env.read("out/home.m3u");
        let report: serde_json::Value = serde_json::from_str(&env.read("report.json")).unwrap();
        crate::harness::validate_report(&report);
        if i == 4 {
            // C, B, A, N1, F, E kept; N2 new; D forgotten.
            assert_eq!(
                report["proxies"][0]["sticky_numbers"],
                serde_json::json!({"kept": 6, "new": 1, "forgotten": 1})
            );
        }
        if i == 2 {
            // A dry run in between, with a changed playlist, changes nothing.
            let before = env.lineup(&["numbers", "home", "--json"]);
            env.write(
                "prov.m3u",
                playlist(&[("zz", "Zulu", "News"), ("c", "C", "Movies")]),
            );
            build_at(&env, day, &["--dry-run"]).ok();
            assert_eq!(
                env.lineup(&["numbers", "home", "--json"]).stdout,
                before.stdout
            );
            assert_eq!(env.read("out/home.m3u"), text);
        }
        outputs.push(text);
    }
    outputs
}

#[test]
fn sticky_numbers_survive_six_builds() {
    let outputs = run_script(1, 100);
    let maps: Vec<BTreeMap<String, u64>> = outputs
        .iter()
        .map(|text| {
            let (map, order) = numbers(text);
            // No two channels share a number; `sort = "number"` writes them in order.
            let distinct: BTreeSet<u64> = order.iter().copied().collect();
            assert_eq!(distinct.len(), order.len(), "{text}");
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
            map
        })
        .collect();
    let first = &maps[0];
    assert_eq!(first["a"], 1);
    assert_eq!(first["e"], 100, "Sports starts at its group's number");
    // Every channel present in two builds keeps its number (D comes back after expiry).
    for pair in maps.windows(2) {
        for (id, n) in &pair[1] {
            if let Some(old) = pair[0].get(id)
                && id != "d"
            {
                assert_eq!(old, n, "{id} moved");
            }
        }
    }
    // The inserted channel did not take C's held number; Sports' newcomer takes 101.
    assert_eq!(maps[1]["n1"], 5, "{:?}", maps[1]);
    assert_eq!(maps[2]["f"], 101);
    // B renamed with the same tvg-id keeps its number.
    assert_eq!(maps[2]["b"], first["b"]);
    // C, gone for two builds, gets its own number back.
    assert_eq!(maps[3]["c"], first["c"]);
    // D expired: its number went to the next new channel, and D gets a new one.
    assert_eq!(maps[4]["n2"], first["d"]);
    assert_ne!(maps[5]["d"], first["d"]);
    assert_eq!(maps[5]["d"], 6);
}

#[test]
fn sticky_numbers_do_not_depend_on_jobs_or_chunk_size() {
    let reference = run_script(1, 1);
    assert_eq!(run_script(4, 2), reference);
    assert_eq!(run_script(4, 1000), reference);
}

#[test]
fn numbers_command_lists_forgets_and_resets() {
    let env = Env::new();
    env.write("lineup.toml", config(1, 100));
    env.write(
        "prov.m3u",
        playlist(&[("a", "Alpha", "News"), ("", "No Id", "Movies")]),
    );
    build_at(&env, 0, &[]).ok();
    let json: serde_json::Value =
        serde_json::from_str(&env.lineup(&["numbers", "home", "--json"]).ok().stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"identity": "tvg_id=a", "number": 1,
             "first_seen": "2026-01-01T00:00:00.000Z", "last_seen": "2026-01-01T00:00:00.000Z"},
            {"identity": "channel_name=no id, group_title=movies", "number": 2,
             "first_seen": "2026-01-01T00:00:00.000Z", "last_seen": "2026-01-01T00:00:00.000Z"},
        ])
    );
    let table = env.lineup(&["numbers", "lineup.toml", "home"]);
    assert!(table.ok().stdout.contains("tvg_id=a"), "{}", table.stdout);

    env.lineup(&["numbers", "home", "--forget", "tvg_id=a"])
        .ok();
    env.lineup(&["numbers", "home", "--forget", "tvg_id=a"])
        .expect(2);
    // Forgotten: the channel is new again, and the unknown channel keeps 2.
    env.write(
        "prov.m3u",
        playlist(&[
            ("x", "Xray", "News"),
            ("a", "Alpha", "News"),
            ("", "No Id", "Movies"),
        ]),
    );
    build_at(&env, 1, &[]).ok();
    let (map, _) = numbers(&env.read("out/home.m3u"));
    assert_eq!((map["x"], map["a"], map[""]), (1, 3, 2));

    env.lineup(&["numbers", "home", "--reset"]).ok();
    assert_eq!(env.lineup(&["numbers", "home", "--json"]).stdout, "[]\n");
    build_at(&env, 2, &[]).ok();
    let (map, _) = numbers(&env.read("out/home.m3u"));
    assert_eq!((map["x"], map["a"], map[""]), (1, 2, 3));
    env.lineup(&["numbers", "nope"]).expect(2);
}

/// A build that fails after numbering (its guide cannot be written, so the playlist is not
/// committed) keeps no numbers.
#[test]
fn failed_build_saves_no_numbers() {
    let env = Env::new();
    let text = config(1, 100).replace(
        "m3u = \"home.m3u\"\n",
        "m3u = \"home.m3u\"\nepg = [\"g\"]\nxmltv = \"home.xml\"\n",
    );
    env.write(
        "lineup.toml",
        format!("{text}\n[[epg]]\nname = \"g\"\nxmltv = \"g.xml\"\n"),
    );
    env.write(
        "g.xml",
        "<?xml version=\"1.0\"?>\n<tv><channel id=\"a\"><display-name>A</display-name></channel></tv>\n",
    );
    env.write("prov.m3u", playlist(&[("a", "Alpha", "News")]));
    // A directory where the guide goes: writing it fails, after numbering ran.
    std::fs::create_dir_all(env.path("out/home.xml/x")).unwrap();
    let run = build_at(&env, 0, &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("home.xml is a directory"),
        "{}",
        run.stderr
    );
    assert!(!env.path("out/home.m3u").exists());
    assert_eq!(
        env.lineup(&["numbers", "home", "--json"]).ok().stdout,
        "[]\n"
    );
    // Once it can be written, the numbers are kept.
    std::fs::remove_dir_all(env.path("out/home.xml")).unwrap();
    build_at(&env, 0, &[]).ok();
    assert!(
        env.lineup(&["numbers", "home"])
            .ok()
            .stdout
            .contains("tvg_id=a")
    );
}

#[test]
fn preserve_reserves_owned_numbers() {
    let env = Env::new();
    env.write(
        "prov.m3u",
        "#EXTM3U\n#EXTINF:-1 tvg-id=\"cnn\",CNN\nhttp://s/cnn\n\
         #EXTINF:-1 tvg-id=\"c5\" tvg-chno=\"1\",Channel 5\nhttp://s/c5\n",
    );
    env.write(
        "lineup.toml",
        crate::harness::simple_config(
            &[("prov", "prov.m3u", true)],
            "numbering = { mode = \"preserve\" }\nsort = \"number\"",
        ),
    );
    env.lineup(&["build"]).ok();
    let out = parse_m3u(env.read("out/p.m3u").as_bytes());
    let got: Vec<(String, String)> = out
        .iter()
        .map(|c| (c.name.clone(), c.attr("tvg-chno").unwrap().to_string()))
        .collect();
    assert_eq!(
        got,
        [("Channel 5".into(), "1".into()), ("CNN".into(), "2".into())]
    );
}

/// `prefer_own = false`: sticky ignores the channels' own numbers (and reserves none), in the
/// first build as in the next, where the held numbers win.
#[test]
fn sticky_without_prefer_own_ignores_own_numbers() {
    let env = Env::new();
    let write = |order: &[&str]| {
        let mut text = String::from("#EXTM3U\n");
        for id in order {
            let chno = if *id == "c5" { " tvg-chno=\"1\"" } else { "" };
            text.push_str(&format!(
                "#EXTINF:-1 tvg-id=\"{id}\"{chno},{id}\nhttp://s/{id}\n"
            ));
        }
        env.write("prov.m3u", text);
    };
    env.write(
        "lineup.toml",
        crate::harness::simple_config(
            &[("prov", "prov.m3u", true)],
            "numbering = { mode = \"sticky\", prefer_own = false }\n\
             [settings.fetch]\nmax_shrink = \"100%\"",
        ),
    );
    let got = |env: &Env| -> Vec<(String, String)> {
        parse_m3u(env.read("out/p.m3u").as_bytes())
            .iter()
            .map(|c| (c.name.clone(), c.attr("tvg-chno").unwrap().to_string()))
            .collect()
    };
    write(&["cnn", "c5"]);
    env.lineup(&["build"]).ok();
    assert_eq!(
        got(&env),
        [("cnn".into(), "1".into()), ("c5".into(), "2".into())]
    );
    write(&["new", "c5", "cnn"]);
    env.lineup(&["build"]).ok();
    assert_eq!(
        got(&env),
        [
            ("new".into(), "3".into()),
            ("c5".into(), "2".into()),
            ("cnn".into(), "1".into())
        ]
    );
}

#[test]
fn group_start_collision_warns() {
    let env = Env::new();
    let mut text = String::from("#EXTM3U\n");
    for i in 0..5 {
        text.push_str(&format!(
            "#EXTINF:-1 group-title=\"A\",A{i}\nhttp://s/a{i}\n"
        ));
    }
    text.push_str("#EXTINF:-1 group-title=\"B\",B0\nhttp://s/b0\n");
    env.write("prov.m3u", text);
    env.write(
        "lineup.toml",
        crate::harness::simple_config(
            &[("prov", "prov.m3u", true)],
            "numbering = { groups = { \"B\" = 3 } }",
        ),
    );
    let run = env.lineup(&["build", "--report", "report.json"]);
    run.ok();
    assert!(
        run.stderr
            .contains("group `B` wanted to start at 3 but starts at 6: 3..5 are in use"),
        "{}",
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&env.read("report.json")).unwrap();
    crate::harness::validate_report(&report);
    assert_eq!(
        report["proxies"][0]["numbering_warnings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn check_describes_numbering() {
    let env = Env::new();
    env.write("prov.m3u", "#EXTM3U\n");
    env.write("lineup.toml", config(1, 100));
    let run = env.lineup(&["check"]);
    let out = &run.ok().stdout;
    assert!(out.contains("  sort: by final channel number\n"), "{out}");
    assert!(
        out.contains(
            "  numbering: sticky: a channel keeps its number while seen within 30d; a new \
             identity gets its own tvg-chno when free, else the lowest number from its start (1) \
             that no identity holds and no channel of the output owns; identity: tvg_id, else \
             channel_name+group_title; groups: \"Sports\" from 100\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("identity: tvg_id, else channel_name+group_title"),
        "{out}"
    );
}

#[test]
fn numbering_keys_are_checked() {
    let env = Env::new();
    env.write("prov.m3u", "#EXTM3U\n");
    let with = |numbering: &str| {
        env.write(
            "lineup.toml",
            crate::harness::simple_config(&[("prov", "prov.m3u", true)], numbering),
        );
        env.lineup(&["check"])
    };
    let run =
        with("numbering = { mode = \"sticky\", key = [\"tvg_id\", \"channel_nam+group_title\"] }");
    run.expect(2);
    assert!(
        run.stderr
            .contains("proxy `p`: numbering.key: unknown field `channel_nam`"),
        "{}",
        run.stderr
    );
    let run = with("numbering = { mode = \"preserve\", forget_after = \"7d\" }");
    run.expect(2);
    assert!(
        run.stderr
            .contains("numbering.forget_after applies only to mode = \"sticky\""),
        "{}",
        run.stderr
    );
    with("numbering = { mode = \"sticky\", key = \"stream_url\", prefer_own = false, forget_after = \"7d\" }")
        .ok();
}

/// Sticky and preserve numbering with `sort = "number"` under a tiny budget: the first pass
/// and the sort spill, and the playlist is byte-identical to a roomy build's.
#[test]
fn numbering_spills_under_a_tiny_budget_with_identical_outputs() {
    let env = Env::new();
    let mut text = String::from("#EXTM3U\n");
    for i in 0..12_000u32 {
        // Every third channel owns a number, scattered (some collide).
        let own = if i % 3 == 0 {
            format!(" tvg-chno=\"{}\"", (i * 7919) % 20_000 + 1)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "#EXTINF:-1 tvg-id=\"c{i}\" group-title=\"G{}\"{own},Channel {i}\nhttp://s.example/{i}\n",
            i % 5
        ));
    }
    env.write("prov.m3u", text);
    for mode in ["sticky", "preserve"] {
        env.write(
            "lineup.toml",
            format!(
                "[[source]]\nname = \"prov\"\nm3u = \"prov.m3u\"\n\n\
                 [[proxy]]\nname = \"p\"\nsources = [\"prov\"]\nm3u = \"p.m3u\"\nsort = \"number\"\n\
                 numbering = {{ mode = \"{mode}\", groups = {{ \"G3\" = 5000 }} }}\n"
            ),
        );
        let build = |dir: &str, limit: &[&str]| {
            let mut args = vec!["build", "--report", "-", "--output-dir", dir, "--db"];
            let db = format!("{dir}.db");
            args.push(&db);
            args.extend_from_slice(limit);
            let run = env.lineup(&args);
            run.ok();
            serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
        };
        let roomy_dir = format!("roomy-{mode}");
        let tight_dir = format!("tight-{mode}");
        build(&roomy_dir, &[]);
        let tight = build(&tight_dir, &["--memory-limit", "2MiB"]);
        assert!(
            tight["memory"]["spilled_bytes"].as_u64().unwrap() > 0,
            "{}",
            tight["memory"]
        );
        let roomy = env.read(&format!("{roomy_dir}/p.m3u"));
        assert_eq!(roomy, env.read(&format!("{tight_dir}/p.m3u")), "{mode}");
        let (map, order) = numbers(&roomy);
        assert_eq!(map.len(), 12_000);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{mode}");
        // A second build of the same input gives the same playlist.
        build(&tight_dir, &["--memory-limit", "2MiB"]);
        assert_eq!(roomy, env.read(&format!("{tight_dir}/p.m3u")), "{mode}");
    }
}

/// `--if-changed` runs that write nothing keep the numbers fresh: a provider that does not
/// change for longer than `forget_after` keeps its numbers.
#[test]
fn unchanged_builds_keep_sticky_numbers_fresh() {
    let env = Env::new();
    env.write("lineup.toml", config(1, 100));
    env.write(
        "prov.m3u",
        playlist(&[("a", "Alpha", "News"), ("b", "Bravo", "News")]),
    );
    build_at(&env, 0, &[]).ok();
    for day in [20, 40] {
        let run = build_at(&env, day, &["--if-changed"]);
        assert_eq!(run.ok().stdout, "unchanged\n");
    }
    env.write(
        "prov.m3u",
        playlist(&[
            ("n", "New", "News"),
            ("b", "Bravo", "News"),
            ("a", "Alpha", "News"),
        ]),
    );
    build_at(&env, 45, &["--if-changed"]).ok();
    let (map, _) = numbers(&env.read("out/home.m3u"));
    assert_eq!((map["a"], map["b"], map["n"]), (1, 2, 3));
}
