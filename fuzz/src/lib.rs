//! The properties the fuzz targets check, one function per target. They live in a library (and
//! not in the `fuzz_targets/` files) so that `tests/replay.rs` can run every corpus file and
//! every saved crash through the same checks with a plain `cargo test` on stable, where
//! libFuzzer itself is not needed.
//!
//! Every check panics when its property does not hold: that is how libFuzzer learns of a bug.

use std::io::{self, BufRead, Cursor};
use std::path::Path;
use std::sync::Arc;

use lineup::config::Config;
use lineup::config::units::{parse_duration, parse_signed_millis, parse_size};
use lineup::guide::time::XmltvTime;
use lineup::model::Channel;
use lineup::parse::m3u::M3uReader;
use lineup::parse::xmltv::XmltvReader;
use lineup::rules::{Groups, Locations, Matcher, Template, parse};

/// Read an M3U text to channels, as a source is read.
fn read_m3u(data: &[u8]) -> Vec<Channel> {
    M3uReader::new(data, "fuzz.m3u", Arc::from("fuzz"))
        .collect::<io::Result<Vec<_>>>()
        .expect("reading from memory cannot fail")
}

/// `m3u_roundtrip`: whatever the reader accepts, the writer writes back so that the reader
/// reads the very same channels (lossless: every attribute, directive, title and URL).
pub fn m3u_roundtrip(data: &[u8]) {
    let first = read_m3u(data);
    let mut written = Vec::new();
    lineup::output::m3u::write_all(&mut written, &first).expect("writing to memory");
    let second = read_m3u(&written);
    assert_eq!(
        first,
        second,
        "read -> write -> read changed the channels; written:\n{}",
        String::from_utf8_lossy(&written)
    );
}

/// `xmltv_reader`: any bytes either fail cleanly or yield items; never a panic, and bounded:
/// every item comes from input bytes (so there are fewer items than bytes, and the loop
/// ends), and kept warnings are capped.
pub fn xmltv_reader(data: &[u8]) {
    let input: Box<dyn BufRead + Send> = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = XmltvReader::new(input, "fuzz.xml") else {
        return;
    };
    let mut items = 0usize;
    while let Ok(Some(_)) = reader.next_item() {
        items += 1;
        assert!(
            items <= data.len(),
            "{items} items out of {} bytes: the reader is not making progress",
            data.len()
        );
    }
    assert!(reader.warnings().len() <= 1000, "warnings are not capped");
}

/// `xmltv_time`: a time that parses is formatted as `YYYYMMDDhhmmss +hhmm`, and that text
/// parses back to the same instant and offset (and formats to the same text).
pub fn xmltv_time(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(time) = XmltvTime::parse(text) else {
        return;
    };
    let printed = time.to_string();
    let again = XmltvTime::parse(&printed)
        .unwrap_or_else(|e| panic!("`{text}` printed as `{printed}`, which does not parse: {e}"));
    assert_eq!(time, again, "`{text}` -> `{printed}`");
    assert_eq!(printed, again.to_string());
}

/// Input of the `expr` target: an expression, a template and a channel to run them on.
#[derive(Debug, Default)]
pub struct ExprInput {
    pub expr: String,
    pub template: String,
    pub name: String,
    pub url: String,
    pub attrs: Vec<(String, String)>,
}

impl ExprInput {
    /// Plain text, so that seeds can be written by hand: `expr NUL template NUL name NUL url
    /// NUL attrs`, the attributes one `key=value` per line; missing parts are empty.
    pub fn from_bytes(data: &[u8]) -> ExprInput {
        let text = String::from_utf8_lossy(data);
        let mut parts = text.splitn(5, '\0').map(str::to_string);
        let mut next = || parts.next().unwrap_or_default();
        let (expr, template, name, url, attrs) = (next(), next(), next(), next(), next());
        let attrs = attrs
            .lines()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect();
        ExprInput {
            expr,
            template,
            name,
            url,
            attrs,
        }
    }
}

/// `expr`: an expression that parses prints (`Display`) as text that re-parses to the same
/// tree; compiling and evaluating it on any channel never panics, nor does rendering a
/// template with the captures of the condition that matched; a template prints back to
/// itself too.
pub fn expr(input: &ExprInput) {
    if let Ok(tree) = parse(&input.expr) {
        let printed = tree.to_string();
        let again = parse(&printed).unwrap_or_else(|e| {
            panic!(
                "`{}` printed as `{printed}`, which does not parse: {e:?}",
                input.expr
            )
        });
        assert_eq!(tree, again, "`{}` -> `{printed}`", input.expr);
    }
    let ch = Channel {
        source: Arc::from("fuzz"),
        duration: "-1".into(),
        attrs: input.attrs.clone(),
        name: input.name.clone(),
        directives: Vec::new(),
        url: input.url.clone(),
        ..Channel::default()
    };
    let matcher = Matcher::compile(&input.expr).ok();
    let verdict = matcher.as_ref().and_then(|m| m.eval(&ch));
    let captures = match (&matcher, verdict) {
        (Some(m), Some(Some(index))) => m.captures(index, &ch),
        _ => None,
    };
    let mut locations = Locations::default();
    if let Some(m) = &matcher {
        assert_eq!(m.is_match(&ch), verdict.is_some());
        // The single-pass capturing evaluation agrees, and locates the same groups.
        assert_eq!(m.eval_capturing(&ch, &mut locations), verdict);
        if let (Some(Some(index)), Some(caps)) = (verdict, &captures) {
            let located = m.located(index, &ch, &locations).expect("located groups");
            for n in 0..caps.len() {
                assert_eq!(located.group(n), caps.group(n), "group {n}");
            }
        }
    }
    if let Ok(template) = Template::parse(&input.template) {
        let _ = template.render(&ch, captures.as_ref().map(|c| c as &dyn Groups));
        let printed = template.to_string();
        let again = Template::parse(&printed).unwrap_or_else(|e| {
            panic!(
                "template `{}` printed as `{printed}`, which does not parse: {e:?}",
                input.template
            )
        });
        assert_eq!(template, again, "`{}` -> `{printed}`", input.template);
    }
}

/// `units`: durations and sizes never panic; a non-negative duration reads the same through
/// both entry points; a size that parses, written back as a plain byte count, reads back
/// exactly.
pub fn units(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signed = parse_signed_millis(text);
    match parse_duration(text) {
        Ok(d) => assert_eq!(signed, Ok(d.as_millis() as i64), "`{text}`"),
        Err(_) => assert!(signed.is_err() || signed.is_ok_and(|ms| ms < 0), "`{text}`"),
    }
    if let Ok(bytes) = parse_size(text) {
        assert_eq!(parse_size(&bytes.to_string()), Ok(bytes), "`{text}`");
    }
}

/// `config`: any text either loads (and validates: every expression, template and key) or
/// is rejected with errors that each name the file; never a panic.
pub fn config(data: &[u8]) {
    let path = Path::new("/fuzz/lineup.toml");
    let text = String::from_utf8_lossy(data).into_owned();
    if let Err(errors) = Config::from_text_checked(path, text, &[lineup::rules::validate]) {
        assert!(!errors.0.is_empty(), "rejected without a reason");
        for e in &errors.0 {
            assert_eq!(e.path, path);
            let _ = e.to_string();
        }
    }
}

/// Run the check of target `name` on one input (what the replay test and the targets share).
pub fn run(name: &str, data: &[u8]) {
    match name {
        "m3u_roundtrip" => m3u_roundtrip(data),
        "xmltv_reader" => xmltv_reader(data),
        "xmltv_time" => xmltv_time(data),
        "expr" => expr(&ExprInput::from_bytes(data)),
        "units" => units(data),
        "config" => config(data),
        other => panic!("unknown fuzz target `{other}`"),
    }
}

/// The targets, by name, as in Cargo.toml.
pub const TARGETS: [&str; 6] = [
    "m3u_roundtrip",
    "xmltv_reader",
    "xmltv_time",
    "expr",
    "units",
    "config",
];
