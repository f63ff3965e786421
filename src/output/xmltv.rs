//! The XMLTV writer: serialises channels and programmes (already cleaned and ordered by
//! `guide::dtd`) as `<?xml ... UTF-8?>`, `<!DOCTYPE tv SYSTEM "xmltv.dtd">`, `<tv>`, channels,
//! programmes. Output is deterministic: fixed layout (two-space indent), attributes in the
//! order given, times as `YYYYMMDDhhmmss +hhmm`, and gzip (for a `.gz` destination) without a
//! timestamp or file name in its header. Characters XML 1.0 forbids (control characters some
//! guides carry) are dropped rather than written, so the file always parses.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::Compression;
use flate2::write::GzEncoder;

use super::{AtomicFile, Written};
use crate::guide::time::XmltvTime;
use crate::parse::xmltv::tree::{Element, Node};

/// An XMLTV document being written to `W`.
pub struct XmltvWriter<W: Write> {
    out: W,
    /// One programme, assembled before it is written: one `write_all` per programme instead
    /// of a dozen through the file's layers.
    line: Vec<u8>,
}

impl<W: Write> XmltvWriter<W> {
    /// Write the prolog and the `<tv>` start tag with `tv_attrs`.
    pub fn start(mut out: W, tv_attrs: &[(&str, &str)]) -> io::Result<Self> {
        out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
        out.write_all(b"<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n")?;
        out.write_all(b"<tv")?;
        for (k, v) in tv_attrs {
            write_attr(&mut out, k, v)?;
        }
        out.write_all(b">\n")?;
        Ok(XmltvWriter {
            out,
            line: Vec::new(),
        })
    }

    /// `<channel id=...>` with its children.
    pub fn channel(
        &mut self,
        id: &str,
        attrs: &[(String, String)],
        children: &[Node],
    ) -> io::Result<()> {
        let out = &mut self.out;
        out.write_all(b"  <channel")?;
        write_attr(out, "id", id)?;
        write_attrs(out, attrs)?;
        out.write_all(b">\n")?;
        write_children(out, children, 2)?;
        out.write_all(b"  </channel>\n")
    }

    /// `<programme start stop channel ...>` with its children.
    pub fn programme(
        &mut self,
        channel: &str,
        start: XmltvTime,
        stop: Option<XmltvTime>,
        attrs: &[(String, String)],
        children: &[Node],
    ) -> io::Result<()> {
        let out = &mut self.out;
        out.write_all(b"  <programme")?;
        write_time(out, "start", start)?;
        if let Some(stop) = stop {
            write_time(out, "stop", stop)?;
        }
        write_attr(out, "channel", channel)?;
        write_attrs(out, attrs)?;
        out.write_all(b">\n")?;
        write_children(out, children, 2)?;
        out.write_all(b"  </programme>\n")
    }

    /// A programme whose attributes (` name="value"` each) and children (one line each,
    /// indented) are already serialised and escaped, as `guide::direct` does for programmes
    /// that need no cleaning: the same bytes as [`XmltvWriter::programme`] for them.
    pub fn programme_serialized(
        &mut self,
        channel: &str,
        start: XmltvTime,
        stop: Option<XmltvTime>,
        attrs: &[u8],
        children: &[u8],
    ) -> io::Result<()> {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"  <programme");
        write_time(line, "start", start)?;
        if let Some(stop) = stop {
            write_time(line, "stop", stop)?;
        }
        write_attr(line, "channel", channel)?;
        line.extend_from_slice(attrs);
        line.extend_from_slice(b">\n");
        line.extend_from_slice(children);
        line.extend_from_slice(b"  </programme>\n");
        self.out.write_all(line)
    }

    /// Close `</tv>` and hand back the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"</tv>\n")?;
        Ok(self.out)
    }
}

fn write_attrs(out: &mut impl Write, attrs: &[(String, String)]) -> io::Result<()> {
    for (k, v) in attrs {
        write_attr(out, k, v)?;
    }
    Ok(())
}

fn write_attr(out: &mut impl Write, name: &str, value: &str) -> io::Result<()> {
    out.write_all(b" ")?;
    out.write_all(name.as_bytes())?;
    out.write_all(b"=\"")?;
    escape(out, value, true)?;
    out.write_all(b"\"")
}

/// A time attribute; digits, a space and a sign need no escaping.
fn write_time(out: &mut impl Write, name: &str, time: XmltvTime) -> io::Result<()> {
    let mut buf = [0u8; 20];
    match time.format_into(&mut buf) {
        Some(text) => {
            out.write_all(b" ")?;
            out.write_all(name.as_bytes())?;
            out.write_all(b"=\"")?;
            out.write_all(text)?;
            out.write_all(b"\"")
        }
        None => write_attr(out, name, &time.to_string()),
    }
}

fn indent(out: &mut impl Write, depth: usize) -> io::Result<()> {
    for _ in 0..depth {
        out.write_all(b"  ")?;
    }
    Ok(())
}

fn write_children(out: &mut impl Write, children: &[Node], depth: usize) -> io::Result<()> {
    for child in children {
        match child {
            Node::Element(e) => {
                indent(out, depth)?;
                write_element(out, e, depth)?;
                out.write_all(b"\n")?;
            }
            // Text directly in a channel or programme is not guide data (and not valid).
            Node::Text(_) => {}
        }
    }
    Ok(())
}

/// One element. Element-only content is laid out one child per line; text and mixed content
/// are written inline so that no whitespace is added to the text.
fn write_element(out: &mut impl Write, e: &Element, depth: usize) -> io::Result<()> {
    out.write_all(b"<")?;
    out.write_all(e.name.as_bytes())?;
    write_attrs(out, &e.attrs)?;
    if e.children.is_empty() {
        return out.write_all(b"/>");
    }
    out.write_all(b">")?;
    let has_text = e.children.iter().any(|c| matches!(c, Node::Text(_)));
    if has_text {
        write_inline(out, &e.children)?;
    } else {
        out.write_all(b"\n")?;
        write_children(out, &e.children, depth + 1)?;
        indent(out, depth)?;
    }
    out.write_all(b"</")?;
    out.write_all(e.name.as_bytes())?;
    out.write_all(b">")
}

fn write_inline(out: &mut impl Write, children: &[Node]) -> io::Result<()> {
    for child in children {
        match child {
            Node::Text(t) => escape(out, t, false)?,
            Node::Element(e) => {
                write!(out, "<{}", e.name)?;
                write_attrs(out, &e.attrs)?;
                if e.children.is_empty() {
                    out.write_all(b"/>")?;
                } else {
                    out.write_all(b">")?;
                    write_inline(out, &e.children)?;
                    write!(out, "</{}>", e.name)?;
                }
            }
        }
    }
    Ok(())
}

/// Escape `s` for element text (or an attribute value, `attr`) and drop the characters XML 1.0
/// forbids: controls other than tab, newline and carriage return, U+FFFE and U+FFFF (a `str`
/// holds no surrogates). Byte by byte: every byte that needs a change is ASCII but for the
/// three-byte forms of U+FFFE and U+FFFF, so runs of plain text are written in one piece.
fn escape(out: &mut impl Write, s: &str, attr: bool) -> io::Result<()> {
    let b = s.as_bytes();
    let mut from = 0;
    let mut i = 0;
    while i < b.len() {
        let (rep, len): (&[u8], usize) = match b[i] {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            b'"' if attr => (b"&quot;", 1),
            b'\t' if attr => (b"&#9;", 1),
            b'\n' if attr => (b"&#10;", 1),
            b'\r' => (b"&#13;", 1),
            b'\t' | b'\n' => {
                i += 1;
                continue;
            }
            0..=0x1f => (b"", 1),
            0xef if b.get(i + 1) == Some(&0xbf) && matches!(b.get(i + 2), Some(0xbe | 0xbf)) => {
                (b"", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.write_all(&b[from..i])?;
        out.write_all(rep)?;
        i += len;
        from = i;
    }
    out.write_all(&b[from..])
}

/// [`escape`] into a buffer (which cannot fail).
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str, attr: bool) {
    // Writing to a Vec never fails.
    let _ = escape(out, s, attr);
}

/// An output guide file: plain or gzip (destination name ending in `.gz`), written atomically.
pub enum GuideFile {
    Plain(AtomicFile),
    /// Buffered in front of the encoder: flate2 zero-fills its 32 KiB output buffer on every
    /// `write`, so the writer's many small writes cost a `memset` each (a quarter of the guide
    /// bench's time, issue 3).
    Gzip(io::BufWriter<GzEncoder<AtomicFile>>),
}

impl GuideFile {
    pub fn create(dest: &Path, mode: u32) -> Result<GuideFile> {
        let mut file = AtomicFile::create(dest)?;
        file.set_mode(mode);
        let gz = dest
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        Ok(if gz {
            // GzEncoder's default header has no mtime and no name: same input, same bytes.
            GuideFile::Gzip(io::BufWriter::with_capacity(
                64 * 1024,
                GzEncoder::new(file, Compression::default()),
            ))
        } else {
            GuideFile::Plain(file)
        })
    }

    /// Finish compression and move the file into place.
    pub fn commit(self) -> Result<Written> {
        match self {
            GuideFile::Plain(f) => f.commit(),
            GuideFile::Gzip(gz) => {
                let gz = gz
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .context("cannot finish gzip stream")?;
                let f = gz.finish().context("cannot finish gzip stream")?;
                f.commit()
            }
        }
    }
}

impl Write for GuideFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            GuideFile::Plain(f) => f.write(buf),
            GuideFile::Gzip(f) => f.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            GuideFile::Plain(f) => f.write_all(buf),
            GuideFile::Gzip(f) => f.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            GuideFile::Plain(f) => f.flush(),
            GuideFile::Gzip(f) => f.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut XmltvWriter<Vec<u8>>)) -> String {
        let mut w =
            XmltvWriter::start(Vec::new(), &[("generator-info-name", "lineup test")]).unwrap();
        f(&mut w);
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn layout_escaping_and_sanitising() {
        let mut title = Element::new("title");
        title.attrs.push(("lang".into(), "en \"q\"".into()));
        title.push_text("Tom & Jerry <live>\u{1}\u{b}");
        let mut credits = Element::new("credits");
        let mut actor = Element::new("actor");
        actor.push_text("A ");
        actor.children.push(Node::Element(Element::new("image")));
        credits.children.push(Node::Element(actor));
        let children = vec![Node::Element(title), Node::Element(credits)];
        let start = XmltvTime::parse("20240301120000 +0100").unwrap();
        let out = render(|w| {
            w.channel("a.uk", &[], &[]).unwrap();
            w.programme("a.uk", start, None, &[], &children).unwrap();
        });
        assert_eq!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n\
             <tv generator-info-name=\"lineup test\">\n  <channel id=\"a.uk\">\n  </channel>\n\
             \x20 <programme start=\"20240301120000 +0100\" channel=\"a.uk\">\n\
             \x20   <title lang=\"en &quot;q&quot;\">Tom &amp; Jerry &lt;live&gt;</title>\n\
             \x20   <credits>\n      <actor>A <image/></actor>\n    </credits>\n\
             \x20 </programme>\n</tv>\n"
        );
    }

    #[test]
    fn gzip_output_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let mut sums = Vec::new();
        for name in ["a.xml.gz", "b.xml.gz"] {
            let dest = dir.path().join(name);
            let mut f = GuideFile::create(&dest, 0o644).unwrap();
            assert!(matches!(f, GuideFile::Gzip(_)));
            let w = XmltvWriter::start(&mut f, &[]).unwrap();
            w.finish().unwrap();
            let written = f.commit().unwrap();
            let bytes = std::fs::read(&dest).unwrap();
            assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
            sums.push(written.sha256);
        }
        assert_eq!(sums[0], sums[1]);
    }
}
