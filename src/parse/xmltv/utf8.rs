//! Turning a guide's bytes into UTF-8 before the XML parser sees them. Guides declare their
//! encoding in the XML declaration (`ISO-8859-1`, `windows-1252`, ...) or with a byte order
//! mark; the parser only reads UTF-8, so this reader transcodes with `encoding_rs` as it goes
//! (streaming, fixed buffers). Bytes that are invalid in the declared encoding become U+FFFD
//! instead of failing the file. It also counts the lines handed out, so warnings can name one.

use std::io::{self, BufRead, Read};

use encoding_rs::{CoderResult, Decoder, Encoding, UTF_8};

/// How many bytes to look at for the XML declaration.
const SNIFF: usize = 1024;
const OUT_CAPACITY: usize = 64 * 1024;

/// The encoding of a document from its first bytes: the BOM, else the declaration's
/// `encoding="..."`, else UTF-8. Returns the encoding and, when the declaration names one
/// `encoding_rs` does not know, that label (the caller warns and reads as UTF-8).
pub fn sniff(head: &[u8]) -> (&'static Encoding, Option<String>) {
    if let Some((enc, _)) = Encoding::for_bom(head) {
        return (enc, None);
    }
    let head = &head[..head.len().min(SNIFF)];
    let Some(label) = declared_encoding(head) else {
        return (UTF_8, None);
    };
    match Encoding::for_label(label.as_bytes()) {
        // A byte-oriented declaration read without a UTF-16 BOM means the file is not UTF-16
        // whatever it says (we got here reading it as ASCII).
        Some(enc) if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE => (UTF_8, None),
        Some(enc) => (enc, None),
        None => (UTF_8, Some(label)),
    }
}

/// The `encoding` pseudo-attribute of `<?xml ... ?>` at the start of `head`.
fn declared_encoding(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let decl = text.trim_start().strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].trim().to_string())
}

/// A `BufRead` yielding UTF-8, transcoded from `inner`.
pub struct Utf8Reader<R> {
    inner: R,
    decoder: Decoder,
    out: Vec<u8>,
    pos: usize,
    end: usize,
    finished: bool,
    /// Newlines in `out[..counted]` and before: counted lazily, when a line is asked for or
    /// the buffer is about to be reused, so consuming stays a pointer bump.
    newlines: std::cell::Cell<u64>,
    counted: std::cell::Cell<usize>,
    had_errors: bool,
}

impl<R: BufRead> Utf8Reader<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> Self {
        Utf8Reader {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            out: vec![0; OUT_CAPACITY],
            pos: 0,
            end: 0,
            finished: false,
            newlines: std::cell::Cell::new(0),
            counted: std::cell::Cell::new(0),
            had_errors: false,
        }
    }

    /// 1-based number of the line the next byte handed out belongs to.
    pub fn line(&self) -> u64 {
        self.count_newlines();
        self.newlines.get() + 1
    }

    /// Count the newlines consumed since the last count.
    fn count_newlines(&self) {
        let from = self.counted.get();
        if self.pos > from {
            let n = memchr::memchr_iter(b'\n', &self.out[from..self.pos]).count() as u64;
            self.newlines.set(self.newlines.get() + n);
            self.counted.set(self.pos);
        }
    }

    /// Whether some input was not valid in its encoding (and was replaced).
    pub fn had_errors(&self) -> bool {
        self.had_errors
    }

    /// At least `n` bytes ahead (fewer only at the end of input), without consuming them:
    /// the lookahead the bounded reader needs to see whether a tag ends within its cap. The
    /// buffer grows to `n` plus one decode step and stays there, so `n` must be bounded.
    pub fn fill_at_least(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.end - self.pos < n && !self.finished {
            if self.pos > 0 {
                self.count_newlines();
                self.out.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
                self.counted.set(0);
            }
            if self.out.len() - self.end < OUT_CAPACITY {
                self.out.resize(self.end + OUT_CAPACITY, 0);
            }
            let src = self.inner.fill_buf()?;
            let last = src.is_empty();
            let (result, read, written, errors) =
                self.decoder
                    .decode_to_utf8(src, &mut self.out[self.end..], last);
            self.inner.consume(read);
            self.had_errors |= errors;
            self.end += written;
            if last && result == CoderResult::InputEmpty {
                self.finished = true;
            }
        }
        Ok(&self.out[self.pos..self.end])
    }

    fn refill(&mut self) -> io::Result<()> {
        while self.pos == self.end && !self.finished {
            self.count_newlines();
            self.counted.set(0);
            let src = self.inner.fill_buf()?;
            let last = src.is_empty();
            let (result, read, written, errors) =
                self.decoder.decode_to_utf8(src, &mut self.out[..], last);
            self.inner.consume(read);
            self.had_errors |= errors;
            self.pos = 0;
            self.end = written;
            if last && result == CoderResult::InputEmpty {
                self.finished = true;
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Utf8Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Utf8Reader<R> {
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.refill()?;
        }
        Ok(&self.out[self.pos..self.end])
    }

    #[inline]
    fn consume(&mut self, amt: usize) {
        self.pos += amt.min(self.end - self.pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcode(bytes: &[u8]) -> (String, bool) {
        let (enc, _) = sniff(bytes);
        let mut r = Utf8Reader::new(io::BufReader::with_capacity(7, bytes), enc);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        (s, r.had_errors())
    }

    #[test]
    fn declared_single_byte_encodings() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><t>Caf\xe9</t>";
        assert_eq!(
            transcode(latin1).0,
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><t>Café</t>"
        );
        let latin9 = b"<?xml version='1.0' encoding='iso-8859-15'?><t>\xa4</t>";
        assert!(transcode(latin9).0.ends_with("<t>€</t>"));
        let cp1252 = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><t>\x93q\x94</t>";
        assert!(transcode(cp1252).0.ends_with("<t>\u{201c}q\u{201d}</t>"));
    }

    #[test]
    fn bom_and_default_and_unknown() {
        assert_eq!(transcode(b"\xef\xbb\xbf<t>\xc3\xa9</t>").0, "<t>é</t>");
        let utf16 = b"\xff\xfe<\0t\0/\0>\0";
        assert_eq!(transcode(utf16).0, "<t/>");
        let (s, errors) = transcode(b"<t>\xff</t>");
        assert_eq!((s.as_str(), errors), ("<t>\u{fffd}</t>", true));
        let (enc, unknown) = sniff(b"<?xml version=\"1.0\" encoding=\"x-klingon\"?>");
        assert_eq!((enc, unknown.as_deref()), (UTF_8, Some("x-klingon")));
    }

    #[test]
    fn counts_lines_consumed() {
        let mut r = Utf8Reader::new(&b"a\nb\nc"[..], UTF_8);
        assert_eq!(r.line(), 1);
        r.fill_buf().unwrap();
        r.consume(2);
        assert_eq!(r.line(), 2);
        r.consume(10);
        assert_eq!(r.line(), 3);
    }
}
