//! Throughput of the rules engine: 100k synthetic channels (names like "UK: BBC One HD",
//! groups like "UK | Entertainment", ids like "bbcone.uk") through 20 mappings (prefix
//! stripping, group renames, regex captures) and 10 filters (regex and substring), on one
//! thread and on all cores. Run with `cargo bench --bench rules`.
//!
//! What is timed is `ProxyRules::apply` on pipeline-sized chunks, as the pipeline calls it
//! (freeing the channels the filters drop included). Cutting the input into chunks and
//! dropping the kept channels happen outside the timing: they are not the rules' work (in a
//! build the kept channels go on to dedupe), and freeing 100k channels in the timed loop made
//! glibc's chunk consolidation a quarter of the figure.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lineup::config::Config;
use lineup::model::Channel;
use lineup::rules::ProxyRules;

const CHANNELS: usize = 100_000;
const CHUNK: usize = 1_000;

const COUNTRIES: &[&str] = &["UK", "DE", "FR", "US", "IT", "ES"];
const GROUPS: &[&str] = &[
    "Entertainment",
    "News",
    "Sports",
    "Movies",
    "Kids",
    "Documentary",
    "Music",
    "Adult",
];
const NAMES: &[&str] = &[
    "BBC One",
    "BBC Two",
    "ITV",
    "Channel 4",
    "Sky Sports Main Event",
    "Eurosport 1",
    "CNN",
    "Das Erste",
    "ZDF",
    "TF1",
    "Canal+",
    "Rai 1",
    "La 1",
    "Discovery",
    "MTV",
    "Cartoon Network",
];
const SUFFIXES: &[&str] = &["", " HD", " FHD", " +1", " 4K", ""];

fn channels() -> Vec<Channel> {
    let source: std::sync::Arc<str> = "alpha".into();
    (0..CHANNELS)
        .map(|i| {
            let country = COUNTRIES[i % COUNTRIES.len()];
            let group = GROUPS[(i / 7) % GROUPS.len()];
            let name = NAMES[(i / 3) % NAMES.len()];
            let suffix = SUFFIXES[(i / 11) % SUFFIXES.len()];
            let id = format!(
                "{}{}.{}",
                name.to_lowercase().replace([' ', '+'], ""),
                i % 97,
                country.to_lowercase()
            );
            let mut attrs = vec![
                ("tvg-id".to_string(), id.clone()),
                ("tvg-name".to_string(), format!("{country}: {name}{suffix}")),
                (
                    "tvg-logo".to_string(),
                    if i % 3 == 0 {
                        String::new()
                    } else {
                        format!("http://logo.example/{id}.png")
                    },
                ),
                ("group-title".to_string(), format!("{country} | {group}")),
            ];
            if i % 4 == 0 {
                attrs.push(("catchup-days".to_string(), ((i % 9) + 1).to_string()));
            }
            Channel {
                source: source.clone(),
                duration: "-1".into(),
                attrs,
                name: format!("{country}: {name}{suffix}"),
                directives: vec![],
                url: format!("http://provider.example/live/u/p/{i}.ts"),
                ..Channel::default()
            }
        })
        .collect()
}

fn config() -> Config {
    let mut text = String::from(
        r#"
[[source]]
name = "alpha"
m3u = "alpha.m3u"

[[mapping]]
name = "prefix"
when = 'channel_name matches "^([A-Z]{2}): (.+)$"'
set = { channel_name = "$2", country = "$1" }
[[mapping]]
name = "shift"
when = 'channel_name matches "^(.+) \+([0-9]{1,2})$"'
set = { channel_name = "$1", tvg_shift = "$2" }
[[mapping]]
name = "quality"
when = 'channel_name matches "^(.+) (HD|FHD|UHD|4K)$"'
set = { channel_name = "$1", quality = "$2" }
[[mapping]]
name = "logo"
when = 'tvg_logo equals ""'
set = { tvg_logo = "http://logos.local/{tvg_id}.png" }
[[mapping]]
name = "catchup-cap"
when = 'catchup-days > "5"'
set = { catchup-days = "5" }
[[mapping]]
name = "sports-catchup"
when = 'group_title contains "sports"'
set = { catchup = "default" }
[[mapping]]
name = "uk-id"
when = 'tvg_id ends_with ".uk" AND NOT group_title contains "adult"'
set = { tvg_name = "{channel_name} (UK)" }
[[mapping]]
name = "brand"
when = 'channel_name matches "^(BBC|ITV|Sky) (.*)$"'
set = { brand = "$1" }
[[mapping]]
name = "default-group"
default = { group_title = "Other" }
"#,
    );
    // Group renames: "UK | Entertainment" -> "Entertainment" (11 mappings, 9 + 11 = 20).
    for (i, group) in GROUPS
        .iter()
        .chain(&["Radio", "Shopping", "Religion"])
        .take(11)
        .enumerate()
    {
        text.push_str(&format!(
            "[[mapping]]\nname = \"group-{i}\"\nwhen = 'group_title ends_with \"| {group}\"'\nset = {{ group_title = \"{group}\" }}\n"
        ));
    }
    text.push_str(
        r#"
[[filter]]
name = "no-adult"
exclude = 'group_title matches "adult|xxx|18\+"'
[[filter]]
name = "no-test"
exclude = 'channel_name contains "test"'
[[filter]]
name = "no-radio"
exclude = 'group_title equals "Radio"'
[[filter]]
name = "no-4k"
exclude = 'quality equals "4K"'
[[filter]]
name = "no-empty"
exclude = 'stream_url equals ""'
[[filter]]
name = "no-shopping"
exclude = 'group_title starts_with "shop"'
[[filter]]
name = "uk"
include = 'tvg_id ends_with ".uk" OR country equals "UK"'
[[filter]]
name = "de"
include = 'tvg_id ends_with ".de" AND channel_name not_matches "(?i)teleshop"'
[[filter]]
name = "fr"
include = 'tvg_id ends_with ".fr"'
[[filter]]
name = "sports"
include = 'group_title contains "sport" OR channel_name matches "^(Euro|Sky )sport"'
"#,
    );
    let mappings: Vec<String> = [
        "prefix",
        "shift",
        "quality",
        "logo",
        "catchup-cap",
        "sports-catchup",
        "uk-id",
        "brand",
        "default-group",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain((0..11).map(|i| format!("group-{i}")))
    .collect();
    text.push_str(&format!(
        "[[proxy]]\nname = \"home\"\nsources = [\"alpha\"]\nm3u = \"home.m3u\"\nfilters = [\"no-adult\", \"no-test\", \"no-radio\", \"no-4k\", \"no-empty\", \"no-shopping\", \"uk\", \"de\", \"fr\", \"sports\"]\nmappings = {mappings:?}\n"
    ));
    Config::from_text(Path::new("bench.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

/// The input cut into pipeline-sized chunks.
fn chunked(input: &[Channel]) -> Vec<Vec<Channel>> {
    input.chunks(CHUNK).map(<[Channel]>::to_vec).collect()
}

/// Map and filter every chunk; the kept channels are returned, to be dropped untimed.
fn run(rules: &ProxyRules, chunks: Vec<Vec<Channel>>) -> Vec<Vec<Channel>> {
    chunks.into_iter().map(|c| rules.apply(c).0).collect()
}

fn bench(c: &mut Criterion) {
    let config = config();
    let rules = ProxyRules::compile(&config, &config.file.proxies[0]).unwrap();
    let input = channels();
    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements(CHANNELS as u64));
    group.sample_size(10);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    group.bench_function("map+filter 100k, 1 thread", |b| {
        b.iter_batched(
            || chunked(&input),
            |data| one.install(|| black_box(run(&rules, data))),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("map+filter 100k, all cores", |b| {
        b.iter_batched(
            || chunked(&input),
            |data| black_box(run(&rules, data)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
