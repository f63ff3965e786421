//! Guide throughput: a generated 10,000-channel x 2-day guide (48 programmes a day per
//! channel, about 960,000 programmes, ~190 MB of XML, written to a temp dir and never kept)
//! ingested into SQLite, then the guide of 1,000 of its channels written (gzip). Run with
//! `cargo bench --bench guide`.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lineup::guide::store;
use lineup::guide::{GuideEntry, GuideIndex, GuideOptions, GuideSource, write_proxy_guide};

const CHANNELS: usize = 10_000;
const KEPT: usize = 1_000;
const PER_DAY: usize = 48;
const DAYS: usize = 2;
/// 2024-03-01T00:00:00Z.
const DAY0: i64 = 1_709_251_200;

fn time(t: i64) -> String {
    // Same formatting the guide uses; UTC here.
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let d = days - DAY0 / 86_400;
    format!(
        "202403{:02}{:02}{:02}00 +0000",
        1 + d,
        secs / 3600,
        secs / 60 % 60
    )
}

fn generate(path: &Path) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tv>").unwrap();
    for c in 0..CHANNELS {
        writeln!(
            out,
            "  <channel id=\"ch{c}.example\"><display-name>Channel {c} HD</display-name><icon src=\"http://logo.example/{c}.png\"/></channel>"
        )
        .unwrap();
    }
    let step = 86_400 / PER_DAY as i64;
    for c in 0..CHANNELS {
        for i in 0..(PER_DAY * DAYS) as i64 {
            let start = DAY0 + i * step;
            writeln!(
                out,
                "  <programme start=\"{}\" stop=\"{}\" channel=\"ch{c}.example\"><title lang=\"en\">Show {i} on {c}</title><desc lang=\"en\">An episode of a programme with a description of ordinary length, as guides carry.</desc><category lang=\"en\">Drama</category><episode-num system=\"xmltv_ns\">1.{i}.</episode-num></programme>",
                time(start),
                time(start + step)
            )
            .unwrap();
        }
    }
    writeln!(out, "</tv>").unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let guide = dir.path().join("guide.xml");
    generate(&guide);
    let entries: Vec<GuideEntry> = (0..KEPT)
        .map(|i| GuideEntry {
            guide_id: format!("ch{}.example", i * (CHANNELS / KEPT)),
            name: format!("Channel {i}"),
            logo: None,
        })
        .collect();
    let mut group = c.benchmark_group("guide");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(200));
    group.bench_function("ingest 10k channels + write 1k", |b| {
        b.iter(|| {
            let db = dir.path().join("bench.db");
            let _ = std::fs::remove_file(&db);
            let conn = lineup::store::Store::open(&db).unwrap().conn;
            store::ingest_file(&conn, "big", &guide, u64::MAX).unwrap();
            let sources = vec![GuideSource {
                name: "big".into(),
                shift_ms: 0,
            }];
            let index = GuideIndex::build(&conn, sources).unwrap();
            let options = GuideOptions {
                past_days: 1,
                future_days: 7,
                keep: Default::default(),
                placeholders: None,
                now: DAY0 + 86_400,
            };
            let dest = dir.path().join("out.xml.gz");
            let stats = write_proxy_guide(&conn, &index, &entries, &options, &dest, 0o644).unwrap();
            assert_eq!(stats.programmes, (KEPT * PER_DAY * DAYS) as u64);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
