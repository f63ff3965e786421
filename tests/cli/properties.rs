//! Property tests of the pipeline's invariants (issue 8), through the real binary with
//! generated playlists and configurations: filtering never adds channels, dedupe keeps the
//! first channel by priority, numbering never repeats a number, and the output does not depend
//! on `jobs`, `chunk_size`, `buffer_size`, `trigger_threshold` or `max_concurrent_sources`.
//!
//! The expected line-up comes from a model small enough to read at a glance: the filters used
//! (`group_title equals`, `channel_name contains`) and dedupe are a line each. Few cases (each
//! runs the binary three times) keep the suite fast; the alphabets are tiny so that duplicates,
//! case differences and number clashes are the rule, not the exception. Groups are written as
//! `group-title="G"`, `group-title = "G"` or an `#EXTGRP:G` line, which must all read the same.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::sample::select;

use crate::harness::{Env, parse_m3u};

/// One generated playlist entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ch {
    name: String,
    id: String,
    group: String,
    url: String,
    chno: Option<u32>,
}

fn channel() -> impl Strategy<Value = Ch> {
    (
        select(vec!["BBC One", "bbc one", "One", "Film", "News 24", ""]),
        select(vec!["", "one.uk", "two.uk", "ONE.uk"]),
        select(vec!["UK", "uk", "News", ""]),
        0u8..6,
        prop::option::of(1u32..6),
    )
        .prop_map(|(name, id, group, url, chno)| Ch {
            name: name.into(),
            id: id.into(),
            group: group.into(),
            url: format!("http://s/{url}"),
            chno,
        })
}

fn m3u(channels: &[Ch]) -> String {
    let mut text = String::from("#EXTM3U\n");
    for c in channels {
        text.push_str("#EXTINF:-1");
        if !c.id.is_empty() {
            text.push_str(&format!(" tvg-id=\"{}\"", c.id));
        }
        if let Some(n) = c.chno {
            text.push_str(&format!(" tvg-chno=\"{n}\""));
        }
        // The group in the three spellings real playlists use (chosen by the URL, so the same
        // channel is always spelt the same): the reader must give the same `group_title`.
        match c.url.bytes().last().unwrap_or(b'0') % 3 {
            0 => text.push_str(&format!(
                " group-title=\"{}\",{}\n{}\n",
                c.group, c.name, c.url
            )),
            1 => text.push_str(&format!(
                " group-title = \"{}\",{}\n{}\n",
                c.group, c.name, c.url
            )),
            _ => text.push_str(&format!(",{}\n#EXTGRP:{}\n{}\n", c.name, c.group, c.url)),
        }
    }
    text
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Numbering {
    None,
    Sequential(u32),
    Preserve(u32),
}

#[derive(Debug, Clone)]
struct Case {
    sources: Vec<Vec<Ch>>,
    /// Proxy priority: indexes into `sources`.
    order: Vec<usize>,
    include_uk: bool,
    exclude_one: bool,
    dedupe: &'static str,
    sort: &'static str,
    numbering: Numbering,
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(prop::collection::vec(channel(), 0..20), 1..4)
        .prop_flat_map(|sources| {
            let order = Just((0..sources.len()).collect::<Vec<_>>()).prop_shuffle();
            (
                Just(sources),
                order,
                any::<bool>(),
                any::<bool>(),
                select(vec!["none", "stream_url", "tvg_id", "channel_name"]),
                select(vec![
                    "\"source\"",
                    "[\"group_title\", \"channel_name\"]",
                    "[\"tvg_id\"]",
                ]),
                prop_oneof![
                    Just(Numbering::None),
                    (1u32..4).prop_map(Numbering::Sequential),
                    (1u32..4).prop_map(Numbering::Preserve),
                ],
            )
        })
        .prop_map(
            |(sources, order, include_uk, exclude_one, dedupe, sort, numbering)| Case {
                sources,
                order,
                include_uk,
                exclude_one,
                dedupe,
                sort,
                numbering,
            },
        )
}

/// Buffer and thread settings that must not change a single output byte.
const SETTINGS: [&str; 3] = [
    "jobs = 1\n[settings.buffer]\nbuffer_size = 1\nchunk_size = 1\ntrigger_threshold = 1.0\nmax_concurrent_sources = 1\n",
    "jobs = 2\n[settings.buffer]\nbuffer_size = 5\nchunk_size = 3\ntrigger_threshold = 0.5\nmax_concurrent_sources = 2\n",
    "jobs = 0\n[settings.buffer]\nbuffer_size = 10000\nchunk_size = 1000\ntrigger_threshold = 0.1\nmax_concurrent_sources = 3\n",
];

fn config(case: &Case, settings: &str) -> String {
    let mut text = format!("[settings]\n{settings}\n");
    for i in 0..case.sources.len() {
        text.push_str(&format!(
            "[[source]]\nname = \"s{i}\"\nm3u = \"s{i}.m3u\"\n\n"
        ));
    }
    let mut filters = Vec::new();
    if case.include_uk {
        filters.push("\"uk\"");
        text.push_str("[[filter]]\nname = \"uk\"\ninclude = 'group_title equals \"UK\"'\n\n");
    }
    if case.exclude_one {
        filters.push("\"no-one\"");
        text.push_str(
            "[[filter]]\nname = \"no-one\"\nexclude = 'channel_name contains \"one\"'\n\n",
        );
    }
    let order: Vec<String> = case.order.iter().map(|i| format!("\"s{i}\"")).collect();
    text.push_str(&format!(
        "[[proxy]]\nname = \"p\"\nsources = [{}]\nfilters = [{}]\ndedupe = \"{}\"\nsort = {}\nm3u = \"p.m3u\"\n",
        order.join(", "),
        filters.join(", "),
        case.dedupe,
        case.sort
    ));
    match case.numbering {
        Numbering::None => {}
        Numbering::Sequential(start) => text.push_str(&format!(
            "numbering = {{ start = {start}, mode = \"sequential\" }}\n"
        )),
        Numbering::Preserve(start) => text.push_str(&format!(
            "numbering = {{ start = {start}, mode = \"preserve\" }}\n"
        )),
    }
    text
}

/// The model: channels in priority order, filtered, then the first of each non-empty key.
/// Returns (kept, filtered out, deduped).
fn expected(case: &Case) -> (Vec<Ch>, usize, usize) {
    let all: Vec<&Ch> = case.order.iter().flat_map(|&i| &case.sources[i]).collect();
    let passed: Vec<&Ch> = all
        .iter()
        .copied()
        .filter(|c| !case.include_uk || c.group.eq_ignore_ascii_case("uk"))
        .filter(|c| !case.exclude_one || !c.name.to_ascii_lowercase().contains("one"))
        .collect();
    let mut seen = HashSet::new();
    let kept: Vec<Ch> = passed
        .iter()
        .filter(|c| {
            let key = match case.dedupe {
                "stream_url" => &c.url,
                "tvg_id" => &c.id,
                "channel_name" => &c.name,
                _ => return true,
            };
            key.is_empty() || seen.insert(key.clone())
        })
        .map(|c| (*c).clone())
        .collect();
    let filtered = all.len() - passed.len();
    let deduped = passed.len() - kept.len();
    (kept, filtered, deduped)
}

/// The output channels as `Ch`, with the number each was written with.
fn output(text: &str) -> Vec<(Ch, Option<u32>)> {
    parse_m3u(text.as_bytes())
        .into_iter()
        .map(|c| {
            let attr = |k: &str| c.attr(k).unwrap_or("").to_string();
            let written = c
                .attr("tvg-chno")
                .map(|n| n.parse().expect("numeric tvg-chno"));
            let ch = Ch {
                name: c.name.clone(),
                id: attr("tvg-id"),
                group: c.get(&lineup::model::Field::GroupTitle).to_string(),
                url: c.url.clone(),
                chno: None,
            };
            (ch, written)
        })
        .collect()
}

/// Check one build against the model.
fn check(case: &Case, text: &str, report: &serde_json::Value) -> Result<(), TestCaseError> {
    let (kept, filtered, deduped) = expected(case);
    let total: usize = case.sources.iter().map(Vec::len).sum();
    let out = output(text);

    // Filtering (and everything else) never adds channels.
    prop_assert!(out.len() <= total);
    let proxy = &report["proxies"][0];
    prop_assert_eq!(proxy["channels_in"].as_u64(), Some(total as u64));
    prop_assert_eq!(proxy["filtered_out"].as_u64(), Some(filtered as u64));
    prop_assert_eq!(proxy["deduped"].as_u64(), Some(deduped as u64));
    prop_assert_eq!(proxy["channels_out"].as_u64(), Some(kept.len() as u64));

    // Dedupe keeps the first by priority: exactly the model's channels (the same ones, not
    // merely as many). In source order they come in that order too.
    let strip = |c: &Ch| Ch {
        chno: None,
        ..c.clone()
    };
    let mut want: Vec<Ch> = kept.iter().map(strip).collect();
    let mut got: Vec<Ch> = out.iter().map(|(c, _)| c.clone()).collect();
    if case.sort != "\"source\"" {
        want.sort();
        got.sort();
    }
    prop_assert_eq!(&got, &want);

    // Numbering never repeats a number.
    let numbers: Vec<Option<u32>> = out.iter().map(|(_, n)| *n).collect();
    match case.numbering {
        Numbering::None => {
            // Channels keep their own numbers, untouched.
            let mut own: Vec<Option<u32>> = kept.iter().map(|c| c.chno).collect();
            let mut written = numbers.clone();
            own.sort();
            written.sort();
            prop_assert_eq!(own, written);
        }
        Numbering::Sequential(start) => {
            let want: Vec<Option<u32>> = (0..out.len() as u32).map(|i| Some(start + i)).collect();
            prop_assert_eq!(numbers, want);
        }
        Numbering::Preserve(start) => {
            // Own numbers of the output channels, in output order: match each output
            // channel to its model channel (names, ids, groups and URLs identify them up
            // to channels that differ only by number, which get matched in order).
            let mut pool: Vec<Ch> = kept.clone();
            let owned: HashSet<u32> = kept.iter().filter_map(|c| c.chno).collect();
            let mut used = HashSet::new();
            for (ch, written) in &out {
                let at = pool
                    .iter()
                    .position(|k| strip(k) == *ch)
                    .expect("output channel comes from the model");
                let own = pool.remove(at).chno;
                let n = written.expect("every channel numbered");
                prop_assert!(used.insert(n), "number {} repeated", n);
                // A channel keeps its own number unless an earlier one has it.
                if let Some(own) = own
                    && !used_before(&out, ch, own)
                {
                    prop_assert_eq!(n, own);
                } else {
                    prop_assert!(n >= start, "{} below start {}", n, start);
                    // Owned numbers are reserved: a channel without (the use of) its own
                    // number never takes one that a channel of the output owns.
                    prop_assert!(!owned.contains(&n), "{} is owned by another channel", n);
                }
            }
        }
    }
    Ok(())
}

/// Whether a channel before `ch` in `out` was written with number `n`.
fn used_before(out: &[(Ch, Option<u32>)], ch: &Ch, n: u32) -> bool {
    out.iter()
        .take_while(|(c, _)| !std::ptr::eq(c, ch))
        .any(|(_, written)| *written == Some(n))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn pipeline_invariants_hold_whatever_the_buffer_and_thread_settings(case in case()) {
        let env = Env::new();
        for (i, channels) in case.sources.iter().enumerate() {
            env.write(&format!("s{i}.m3u"), m3u(channels));
        }
        let mut first: Option<Vec<u8>> = None;
        for (k, settings) in SETTINGS.iter().enumerate() {
            env.write("lineup.toml", config(&case, settings));
            let dir = format!("out{k}");
            let run = env.lineup(&["build", "--output-dir", &dir, "--report", "-"]);
            run.ok();
            let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            let bytes = std::fs::read(env.path(&format!("{dir}/p.m3u"))).unwrap();
            check(&case, &String::from_utf8(bytes.clone()).unwrap(), &report)?;
            match &first {
                None => first = Some(bytes),
                Some(previous) => prop_assert!(
                    *previous == bytes,
                    "settings {} changed the output:\n{}",
                    k,
                    settings
                ),
            }
        }
    }
}
