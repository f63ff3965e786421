//! Byte-level guards that keep the XMLTV reader's memory bounded whatever a guide holds.
//!
//! quick-xml's buffered reader copies a whole event (a text node, a tag, a comment) into its
//! buffer before handing it out, so one 60 MB `<display-name>` costs 60 MB, and a run of NUL
//! bytes as long as the file costs the file. The reader therefore never lets quick-xml see
//! text: it reads text itself ([`text`]), keeping at most [`TEXT_CAP`] of it and skipping the
//! rest with `memchr` over fixed buffers; and before each markup event it looks ahead
//! ([`ahead`]) for the end of the tag, comment, CDATA section or reference within
//! [`MARKUP_CAP`], skipping it here when it runs past. quick-xml then only ever parses events
//! that fit. The caps (also documented in README and lineup.toml(5)):
//!
//! - one text node (character data, CDATA, or one tag's bytes): [`TEXT_CAP`], 1 MiB;
//! - one attribute value: [`ATTR_CAP`], 64 KiB;
//! - one `<channel>` or `<programme>` as held in memory: [`SUBTREE_CAP`], 16 MiB, nested at
//!   most [`MAX_DEPTH`] deep.

use std::io::{self, BufRead};

use super::utf8::Utf8Reader;

/// Longest text node (character data between two pieces of markup, or a CDATA section).
pub const TEXT_CAP: usize = 1 << 20;
/// Longest markup (one start or end tag, comment, processing instruction, declaration).
pub const MARKUP_CAP: usize = TEXT_CAP;
/// Longest attribute value.
pub const ATTR_CAP: usize = 64 << 10;
/// Largest `<channel>` or `<programme>` as held in memory (text, names, attributes and a
/// fixed cost per node).
pub const SUBTREE_CAP: usize = 16 << 20;
/// Deepest nesting inside a `<channel>` or `<programme>` (XMLTV needs 3).
pub const MAX_DEPTH: usize = 64;
/// Longest `&...;` reference; a longer one is not a reference.
const REF_CAP: usize = 64;
/// Characters of a skipped tag's name kept for messages and end-tag matching.
const NAME_CAP: usize = 256;

/// One run of text read by [`text`].
#[derive(Debug, Default, Clone, Copy)]
pub struct TextRun {
    /// Bytes read (kept or not).
    pub len: u64,
    /// Longer than the cap: what was kept was dropped.
    pub over: bool,
    /// Something other than XML whitespace (only tracked when nothing is kept).
    pub junk: bool,
}

/// Read the text at the reader's position up to the next `<` or `&` (left unread) or the end
/// of input. While the run stays within `cap` it is appended to `keep`; past the cap `keep`
/// is cleared and the rest is skipped without buffering. With `stop_at_junk` (and nothing
/// kept), reading stops at the first byte that is not whitespace.
pub fn text<R: BufRead>(
    r: &mut Utf8Reader<R>,
    cap: usize,
    mut keep: Option<&mut Vec<u8>>,
    stop_at_junk: bool,
) -> io::Result<TextRun> {
    let mut run = TextRun::default();
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(run);
        }
        let (chunk, found) = match memchr::memchr2(b'<', b'&', available) {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        let mut used = chunk.len();
        match keep.as_deref_mut() {
            Some(buf) if !run.over => {
                if run.len as usize + chunk.len() > cap {
                    run.over = true;
                    buf.clear();
                    if buf.capacity() > cap {
                        *buf = Vec::new();
                    }
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            Some(_) => {}
            None if !run.junk => {
                if let Some(at) = chunk.iter().position(|b| !is_space(*b)) {
                    run.junk = true;
                    if stop_at_junk {
                        used = at;
                    }
                }
            }
            None => {}
        }
        r.consume(used);
        run.len += used as u64;
        if found || (stop_at_junk && run.junk) {
            return Ok(run);
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Kinds of markup, from the bytes after `<`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Start,
    End,
    Comment,
    CData,
    Pi,
    /// `<!DOCTYPE ...>` and other declarations.
    Decl,
}

impl Kind {
    /// The kind and where its body starts, from at least the first 9 bytes (or all there are).
    fn of(head: &[u8]) -> (Kind, usize) {
        if head.starts_with(b"<!--") {
            (Kind::Comment, 4)
        } else if head.starts_with(b"<![CDATA[") {
            (Kind::CData, 9)
        } else if head.starts_with(b"<!") {
            (Kind::Decl, 2)
        } else if head.starts_with(b"<?") {
            (Kind::Pi, 2)
        } else if head.starts_with(b"</") {
            (Kind::End, 2)
        } else {
            (Kind::Start, 1)
        }
    }
}

/// Markup skipped because it ran past [`MARKUP_CAP`] (or [`TEXT_CAP`] for CDATA).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub kind: Kind,
    /// The element name of a start or end tag (at most [`NAME_CAP`] bytes), else empty.
    pub name: String,
    /// A start tag ending in `/>`.
    pub self_closing: bool,
}

/// What comes next, after [`text`] stopped.
#[derive(Debug)]
pub enum Ahead {
    /// Markup or a reference that ends within its cap (or the end of input): let quick-xml
    /// read it.
    Fits,
    /// Markup longer than its cap, skipped (consumed) here.
    Oversized(Skipped),
    /// `&` not followed by a reference within [`REF_CAP`] bytes: skipped up to the next `<`
    /// or `&`.
    BadRef,
}

/// Look at the markup or reference at the reader's position and skip it when it runs past
/// its cap (see [`Ahead`]).
pub fn ahead<R: BufRead>(r: &mut Utf8Reader<R>) -> io::Result<Ahead> {
    match r.fill_buf()?.first() {
        Some(b'<') => markup(r),
        Some(b'&') => {
            let window = r.fill_at_least(REF_CAP + 1)?;
            let ends = memchr::memchr3(b';', b'<', b'&', &window[1..]).is_some();
            if ends || window.len() <= REF_CAP {
                return Ok(Ahead::Fits);
            }
            r.consume(1);
            text(r, 0, None, false)?;
            Ok(Ahead::BadRef)
        }
        _ => Ok(Ahead::Fits),
    }
}

fn markup<R: BufRead>(r: &mut Utf8Reader<R>) -> io::Result<Ahead> {
    // Usually the whole tag is in the buffer already: one memchr finds its end.
    let head = r.fill_buf()?;
    if head.len() >= 9 && head[1] != b'!' && head[1] != b'?' {
        let body = if head[1] == b'/' { 2 } else { 1 };
        let kind = if body == 2 { Kind::End } else { Kind::Start };
        if EndFinder::new(kind).feed(&head[body..]).is_some() {
            return Ok(Ahead::Fits);
        }
    }
    let head = r.fill_at_least(9)?;
    let (kind, body) = Kind::of(head);
    let cap = match kind {
        Kind::CData => TEXT_CAP,
        _ => MARKUP_CAP,
    };
    let mut finder = EndFinder::new(kind);
    let mut scanned = body.min(head.len());
    let mut want = head.len().max(body);
    loop {
        let window = r.fill_at_least(want)?;
        if finder.feed(&window[scanned..]).is_some() || window.len() < want {
            // Ends within the window, or the input ends first (quick-xml reports that).
            return Ok(Ahead::Fits);
        }
        scanned = window.len();
        if window.len() > cap {
            break;
        }
        want = (window.len() * 2).min(cap + 1);
    }
    // Too long: skip it here, chunk by chunk.
    let window = r.fill_buf()?;
    let name = match kind {
        Kind::Start | Kind::End => {
            let name = &window[body..];
            let end = name
                .iter()
                .position(|b| is_space(*b) || matches!(b, b'/' | b'>'))
                .unwrap_or(name.len())
                .min(NAME_CAP);
            String::from_utf8_lossy(&name[..end]).into_owned()
        }
        _ => String::new(),
    };
    let mut finder = EndFinder::new(kind);
    let mut skip = body;
    loop {
        let window = r.fill_buf()?;
        if window.len() <= skip {
            // The input ends inside it.
            let n = window.len();
            r.consume(n);
            break;
        }
        match finder.feed(&window[skip..]) {
            Some(i) => {
                r.consume(skip + i + 1);
                break;
            }
            None => {
                let n = window.len();
                r.consume(n);
                skip = 0;
            }
        }
    }
    Ok(Ahead::Oversized(Skipped {
        kind,
        name,
        self_closing: kind == Kind::Start && finder.prev[1] == b'/',
    }))
}

/// Finds the `>` that ends a piece of markup, fed chunk by chunk: outside quotes for tags
/// and declarations (and outside `[...]` for a DOCTYPE's internal subset), after `--`, `]]`
/// or `?` for comments, CDATA and processing instructions.
struct EndFinder {
    kind: Kind,
    quote: Option<u8>,
    depth: u32,
    /// The two bytes before the current one (across chunks).
    prev: [u8; 2],
}

impl EndFinder {
    fn new(kind: Kind) -> EndFinder {
        EndFinder {
            kind,
            quote: None,
            depth: 0,
            prev: [0; 2],
        }
    }

    /// Index of the closing `>` in `chunk`, if it is there.
    fn feed(&mut self, chunk: &[u8]) -> Option<usize> {
        let found = match self.kind {
            Kind::Start | Kind::End | Kind::Decl => self.feed_tag(chunk),
            Kind::Comment | Kind::CData | Kind::Pi => self.feed_terminated(chunk),
        };
        let upto = found.unwrap_or(chunk.len());
        match upto {
            0 => {}
            1 => self.prev = [self.prev[1], chunk[0]],
            n => self.prev = [chunk[n - 2], chunk[n - 1]],
        }
        found
    }

    fn feed_tag(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut at = 0;
        while at < chunk.len() {
            if let Some(q) = self.quote {
                let i = memchr::memchr(q, &chunk[at..])?;
                self.quote = None;
                at += i + 1;
                continue;
            }
            let i = if self.kind == Kind::Decl {
                chunk[at..]
                    .iter()
                    .position(|b| matches!(b, b'>' | b'"' | b'\'' | b'[' | b']'))?
            } else {
                memchr::memchr3(b'>', b'"', b'\'', &chunk[at..])?
            };
            match chunk[at + i] {
                b'>' if self.depth == 0 => return Some(at + i),
                b'"' | b'\'' => self.quote = Some(chunk[at + i]),
                b'[' => self.depth += 1,
                b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
            at += i + 1;
        }
        None
    }

    fn feed_terminated(&self, chunk: &[u8]) -> Option<usize> {
        let before = |i: usize, back: usize| -> u8 {
            if i >= back {
                chunk[i - back]
            } else {
                self.prev[2 + i - back]
            }
        };
        memchr::memchr_iter(b'>', chunk).find(|&i| match self.kind {
            Kind::Comment => before(i, 1) == b'-' && before(i, 2) == b'-',
            Kind::CData => before(i, 1) == b']' && before(i, 2) == b']',
            _ => before(i, 1) == b'?',
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::UTF_8;

    fn reader(bytes: &[u8]) -> Utf8Reader<io::BufReader<&[u8]>> {
        Utf8Reader::new(io::BufReader::with_capacity(7, bytes), UTF_8)
    }

    fn rest(r: &mut Utf8Reader<io::BufReader<&[u8]>>) -> String {
        let mut s = String::new();
        io::Read::read_to_string(r, &mut s).unwrap();
        s
    }

    #[test]
    fn text_is_kept_within_the_cap_and_skipped_past_it() {
        let mut r = reader(b"hello world<a>");
        let mut keep = Vec::new();
        let run = text(&mut r, 100, Some(&mut keep), false).unwrap();
        assert_eq!(
            (keep.as_slice(), run.len, run.over),
            (&b"hello world"[..], 11, false)
        );
        assert_eq!(rest(&mut r), "<a>");

        let mut r = reader(b"0123456789&amp;");
        let mut keep = Vec::new();
        let run = text(&mut r, 4, Some(&mut keep), false).unwrap();
        assert!(run.over && keep.is_empty());
        assert_eq!(rest(&mut r), "&amp;");
    }

    #[test]
    fn junk_outside_elements_is_noticed() {
        let mut r = reader(b"  \n\t <x>");
        assert!(!text(&mut r, 0, None, false).unwrap().junk);
        let mut r = reader(b" \0\0\0<x>");
        let run = text(&mut r, 0, None, true).unwrap();
        assert!(run.junk);
        assert_eq!(run.len, 1, "stops at the first junk byte");
    }

    #[test]
    fn markup_that_fits_is_left_for_the_parser() {
        for doc in [
            "<a b='>'>x",
            "<!-- > -- -->x",
            "<![CDATA[ ]> ]]>x",
            "<?pi ? >?>x",
            "<!DOCTYPE tv [<!ENTITY a 'b'>]>x",
            "&amp;x",
        ] {
            let mut r = reader(doc.as_bytes());
            assert!(matches!(ahead(&mut r).unwrap(), Ahead::Fits), "{doc}");
            assert_eq!(rest(&mut r), doc);
        }
    }

    #[test]
    fn oversized_markup_is_skipped_whole() {
        let big = "v".repeat(MARKUP_CAP + 10);
        let doc = format!("<icon src=\"{big}>\" />after");
        let mut r = reader(doc.as_bytes());
        let Ahead::Oversized(s) = ahead(&mut r).unwrap() else {
            panic!("not skipped")
        };
        assert_eq!(
            (s.kind, s.name.as_str(), s.self_closing),
            (Kind::Start, "icon", true)
        );
        assert_eq!(rest(&mut r), "after");

        let doc = format!("<!--{big}-->after");
        let mut r = reader(doc.as_bytes());
        assert!(matches!(ahead(&mut r).unwrap(), Ahead::Oversized(_)));
        assert_eq!(rest(&mut r), "after");

        let doc = format!("&{big}<x>");
        let mut r = reader(doc.as_bytes());
        assert!(matches!(ahead(&mut r).unwrap(), Ahead::BadRef));
        assert_eq!(rest(&mut r), "<x>");
    }
}
