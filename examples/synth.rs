//! Synthetic inputs for benchmarks and scale runs (never committed): `N` channels spread over
//! `S` M3U sources, and optionally an XMLTV guide of `C` channels x `D` days.
//!
//! cargo run --release --example synth -- DIR CHANNELS SOURCES [GUIDE_CHANNELS DAYS]
//!
//! Channels look like real ones (country prefixes, quality tags, groups, catch-up attributes,
//! the odd directive line) so that rules and matching do realistic work.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const COUNTRIES: [&str; 6] = ["UK", "US", "DE", "FR", "ES", "IT"];
const GROUPS: [&str; 8] = [
    "Entertainment",
    "News",
    "Sports",
    "Movies",
    "Kids",
    "Documentary",
    "Music",
    "Adult",
];
const QUALITY: [&str; 4] = ["", " HD", " FHD", " 4K"];

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: synth DIR CHANNELS SOURCES [GUIDE_CHANNELS DAYS]");
        std::process::exit(2);
    }
    let dir = Path::new(&args[0]);
    let channels: usize = args[1].parse().expect("CHANNELS");
    let sources: usize = args[2].parse::<usize>().expect("SOURCES").max(1);
    std::fs::create_dir_all(dir)?;
    let per_source = channels.div_ceil(sources);
    for s in 0..sources {
        let mut out =
            BufWriter::with_capacity(1 << 20, File::create(dir.join(format!("s{s}.m3u")))?);
        writeln!(out, "#EXTM3U")?;
        let first = s * per_source;
        for i in first..(first + per_source).min(channels) {
            write_channel(&mut out, s, i)?;
        }
        out.flush()?;
    }
    if args.len() >= 5 {
        let guide_channels: usize = args[3].parse().expect("GUIDE_CHANNELS");
        let days: usize = args[4].parse().expect("DAYS");
        write_guide(&dir.join("guide.xml"), guide_channels, days)?;
    }
    Ok(())
}

fn write_channel(out: &mut impl Write, source: usize, i: usize) -> std::io::Result<()> {
    let country = COUNTRIES[i % COUNTRIES.len()];
    let group = GROUPS[(i / 7) % GROUPS.len()];
    let quality = QUALITY[i % QUALITY.len()];
    // Ids repeat across sources now and then, so dedupe has work to do.
    let id = i % 10_000;
    write!(
        out,
        "#EXTINF:-1 tvg-id=\"ch{id}.{}\" tvg-name=\"Channel {id}\" tvg-logo=\"http://logos.example/{id}.png\" group-title=\"{country} | {group}\"",
        country.to_ascii_lowercase()
    )?;
    if i.is_multiple_of(5) {
        write!(out, " catchup=\"default\" catchup-days=\"{}\"", 1 + i % 7)?;
    }
    writeln!(out, ",{country}: Channel {id}{quality}")?;
    if i.is_multiple_of(11) {
        writeln!(out, "#EXTVLCOPT:http-user-agent=Mozilla/5.0")?;
    }
    writeln!(out, "http://streams.example/s{source}/{i}.ts")
}

fn write_guide(path: &Path, channels: usize, days: usize) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(out, "<tv generator-info-name=\"synth\">")?;
    for c in 0..channels {
        let country = COUNTRIES[c % COUNTRIES.len()].to_ascii_lowercase();
        writeln!(
            out,
            "  <channel id=\"ch{c}.{country}\"><display-name>Channel {c}</display-name><icon src=\"http://logos.example/{c}.png\"/></channel>"
        )?;
    }
    // Programmes of 30 minutes from midnight of 2026-11-22 (UTC): 48 a day.
    let start = 1_795_305_600i64;
    for c in 0..channels {
        let country = COUNTRIES[c % COUNTRIES.len()].to_ascii_lowercase();
        for p in 0..(48 * days) as i64 {
            let t0 = start + p * 1800;
            writeln!(
                out,
                "  <programme start=\"{} +0000\" stop=\"{} +0000\" channel=\"ch{c}.{country}\"><title lang=\"en\">Show {p}</title><desc>Episode {p} of a programme on channel {c}.</desc><category>Series</category><episode-num system=\"onscreen\">E{p}</episode-num></programme>",
                stamp(t0),
                stamp(t0 + 1800)
            )?;
        }
    }
    writeln!(out, "</tv>")?;
    out.flush()
}

/// `YYYYMMDDhhmmss` of a Unix time (UTC).
fn stamp(t: i64) -> String {
    let (y, m, d) = lineup::guide::time::civil_from_days(t.div_euclid(86_400));
    let secs = t.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}
