//! Sticky numbering's cost per channel: 200,000 channels (a tenth of them sharing a `tvg-id`
//! with another, so duplicates get `#2`) numbered against an SQLite database, as a build does
//! it: first pass (stage identities), second pass (held numbers, numbers given), and the save.
//! Two cases: the first build (nothing held) and a rebuild (every number held). Each sample
//! works on a fresh copy of a prepared database in a temporary directory. Run with
//! `cargo bench --bench numbering`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lineup::config::{Numbering, NumberingMode};
use lineup::memory::Budget;
use lineup::model::Channel;
use lineup::pipeline::number::Numberer;

const CHANNELS: usize = 200_000;
const NOW: i64 = 1_795_348_800;

fn channels() -> Vec<Channel> {
    (0..CHANNELS)
        .map(|i| {
            let mut c = Channel {
                name: format!("UK: Channel {i}"),
                ..Default::default()
            };
            // Every tenth channel repeats the id of the one before it.
            let id = if i % 10 == 9 { i - 1 } else { i };
            c.set_attr("tvg-id", format!("ch{id}.uk"));
            c.set_attr("group-title", "UK | Entertainment");
            c
        })
        .collect()
}

fn numbering() -> Numbering {
    Numbering {
        start: 1,
        mode: NumberingMode::Sticky,
        groups: Default::default(),
        key: None,
        prefer_own: None,
        forget_after: None,
    }
}

/// One proxy's numbering, as a build runs it, saved at the end.
fn number_all(db: &Path, channels: &[Channel], budget: &Arc<Budget>) {
    let n = numbering();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut numberer = Numberer::for_build(&n, "bench", db, NOW, budget, &cancel).unwrap();
    for ch in channels {
        numberer.observe(ch).unwrap();
    }
    for ch in channels {
        let mut ch = ch.clone();
        numberer.assign(&mut ch).unwrap();
    }
    let (_, sticky) = numberer.finish();
    sticky.unwrap().commit().unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let budget = Budget::new(256 << 20);
    let channels = channels();
    let empty = dir.path().join("empty.db");
    drop(lineup::store::Store::open(&empty).unwrap());
    let held = dir.path().join("held.db");
    std::fs::copy(&empty, &held).unwrap();
    number_all(&held, &channels, &budget);

    let mut group = c.benchmark_group("sticky");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(CHANNELS as u64));
    for (case, source) in [("first_build", &empty), ("rebuild", &held)] {
        group.bench_function(case, |b| {
            b.iter_batched(
                || {
                    let db = dir.path().join("work.db");
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
                    }
                    std::fs::copy(source, &db).unwrap();
                    db
                },
                |db| number_all(&db, &channels, &budget),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
