//! The M3U writer: `#EXTM3U` header (with `url-tvg` and `x-tvg-url` when the proxy has an
//! `epg_url`), then per channel its `#EXTINF` line with every attribute in order, its directive
//! lines and its URL. Deterministic: the same channels give the same bytes.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};

use super::{AtomicFile, Written};
use crate::model::Channel;

pub struct M3uWriter {
    file: AtomicFile,
    line: Vec<u8>,
    pub channels: u64,
    /// Whether any written URL carries a credential (the file is then made private).
    pub carries_credentials: bool,
    file_mode: Option<u32>,
}

impl M3uWriter {
    /// Start writing `dest`. With `file_mode` unset, the file is `0600` when any written URL
    /// carries a credential and `0644` otherwise.
    pub fn create(dest: &Path, epg_url: Option<&str>, file_mode: Option<u32>) -> Result<M3uWriter> {
        let mut file = AtomicFile::create(dest)?;
        let mut header = String::from("#EXTM3U");
        if let Some(url) = epg_url {
            header.push_str(&format!(" url-tvg=\"{url}\" x-tvg-url=\"{url}\""));
        }
        header.push('\n');
        file.write_all(header.as_bytes())
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(M3uWriter {
            file,
            line: Vec::with_capacity(512),
            channels: 0,
            carries_credentials: epg_url.is_some_and(crate::secrets::contains_secret),
            file_mode,
        })
    }

    /// Write the file `0600` (unless `file_mode` says otherwise) whatever its URLs show: one
    /// of its sources was fetched with credentials in its URL.
    pub fn mark_credentials(&mut self) {
        self.carries_credentials = true;
    }

    pub fn write(&mut self, ch: &Channel) -> Result<()> {
        self.line.clear();
        format_channel(ch, &mut self.line);
        self.file
            .write_all(&self.line)
            .with_context(|| format!("cannot write {}", self.file.dest().display()))?;
        self.channels += 1;
        if !self.carries_credentials && crate::secrets::contains_secret(&ch.url) {
            self.carries_credentials = true;
        }
        Ok(())
    }

    pub fn commit(mut self) -> Result<Written> {
        let mode = self.file_mode.unwrap_or(if self.carries_credentials {
            0o600
        } else {
            0o644
        });
        self.file.set_mode(mode);
        self.file.commit()
    }
}

/// How an attribute value is quoted: in `"` unless it contains one, then in `'`. A value with
/// both is written bare: M3U has no escapes, and the reader only ever makes such a value from a
/// bare one (no whitespace, no comma, not starting with a quote), which reads back unchanged.
/// Found by the `m3u_roundtrip` fuzz target.
fn quote_for(value: &str) -> Option<u8> {
    match (value.contains('"'), value.contains('\'')) {
        (false, _) => Some(b'"'),
        (true, false) => Some(b'\''),
        (true, true) => None,
    }
}

/// Append the lines of one channel. Its `#EXTINF` line is the one read (`Channel::extinf`)
/// while that still reads as the channel is, so unchanged lines keep their bytes; otherwise it
/// is written from the fields, and a value that contains `"` is written in single quotes (the
/// reader accepts both), so no value is ever changed.
pub fn format_channel(ch: &Channel, out: &mut Vec<u8>) {
    if !ch.extinf.is_empty() && reads_as(&ch.extinf, ch) {
        out.extend_from_slice(ch.extinf.as_bytes());
    } else {
        format_extinf(ch, out);
    }
    out.push(b'\n');
    for d in &ch.directives {
        out.extend_from_slice(d.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(ch.url.as_bytes());
    out.push(b'\n');
}

/// Whether the `#EXTINF` line `line` still reads as `ch`'s duration, attributes and title
/// (nothing was mapped, numbered or matched since it was read).
fn reads_as(line: &str, ch: &Channel) -> bool {
    let Some(rest) = line.get(8..) else {
        return false;
    };
    let (read, _) = crate::parse::m3u::parse_extinf(rest);
    read.duration == ch.duration && read.name == ch.name && read.attrs == ch.attrs
}

/// Append the `#EXTINF` line of `ch` as written from its fields, without the line end.
pub fn format_extinf(ch: &Channel, out: &mut Vec<u8>) {
    out.extend_from_slice(b"#EXTINF:");
    out.extend_from_slice(if ch.duration.is_empty() {
        b"-1"
    } else {
        ch.duration.as_bytes()
    });
    for (k, v) in &ch.attrs {
        let quote = quote_for(v);
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend(quote);
        out.extend_from_slice(v.as_bytes());
        out.extend(quote);
    }
    out.push(b',');
    out.extend_from_slice(ch.name.as_bytes());
}

/// Write channels as an M3U text to any writer (tests, fuzzing).
pub fn write_all<W: Write>(mut w: W, channels: &[Channel]) -> io::Result<()> {
    w.write_all(b"#EXTM3U\n")?;
    let mut buf = Vec::new();
    for ch in channels {
        buf.clear();
        format_channel(ch, &mut buf);
        w.write_all(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> (Vec<Channel>, Vec<Channel>) {
        let read = |bytes: &[u8]| {
            crate::parse::m3u::M3uReader::new(bytes, "t.m3u", std::sync::Arc::from("s"))
                .collect::<io::Result<Vec<_>>>()
                .unwrap()
        };
        let first = read(text.as_bytes());
        let mut out = Vec::new();
        write_all(&mut out, &first).unwrap();
        (first, read(&out))
    }

    /// Found by the `m3u_roundtrip` fuzz target: a bare value holding both `"` and `'` was
    /// written in single quotes, which ended it at its own `'`.
    #[test]
    fn fuzz_value_with_both_quotes_round_trips() {
        let (first, second) =
            round_trip("#EXTINF:-1 a=x'y\"z b=\"it's\" c='say \"hi\"',Title\nhttp://s/1\n");
        assert_eq!(
            first[0].attrs,
            vec![
                ("a".to_string(), "x'y\"z".to_string()),
                ("b".to_string(), "it's".to_string()),
                ("c".to_string(), "say \"hi\"".to_string()),
            ]
        );
        assert_eq!(first, second);
    }

    #[test]
    fn unchanged_lines_keep_their_bytes_changed_ones_are_rewritten() {
        let input = "#EXTINF:-1  tvg-id=a.uk   radio=false , Spaced Title\nhttp://s/1\n\
                     #EXTINF:-1 tvg-id = \"b.uk\",Spaced Equals\nhttp://s/2\n";
        let (mut first, second) = round_trip(input);
        assert_eq!(first, second);
        let mut out = Vec::new();
        write_all(&mut out, &first).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("#EXTINF:-1  tvg-id=a.uk   radio=false , Spaced Title\n"),
            "{text}"
        );
        // What players misread is written from the fields.
        assert!(
            text.contains("#EXTINF:-1 tvg-id=\"b.uk\",Spaced Equals\n"),
            "{text}"
        );
        first[0].set_attr("tvg-chno", "5");
        let mut out = Vec::new();
        write_all(&mut out, &first[..1]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "#EXTM3U\n#EXTINF:-1 tvg-id=\"a.uk\" radio=\"false\" tvg-chno=\"5\",Spaced Title\nhttp://s/1\n"
        );
    }
}
