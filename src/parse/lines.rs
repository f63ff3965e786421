//! Reading text lines from untrusted sources: bounded length (a 1 GiB line without a newline
//! must not take 1 GiB of memory), CRLF and a leading UTF-8 BOM removed, and bytes that are not
//! UTF-8 decoded as Windows-1252, the usual legacy encoding of playlists.

use std::borrow::Cow;
use std::io::{self, BufRead};

/// The longest line kept. Longer lines are skipped (and reported) instead of buffered.
pub const MAX_LINE: usize = 1 << 20;

/// One line as read.
pub enum Line<'a> {
    Text(Cow<'a, str>),
    /// The line was longer than [`MAX_LINE`] bytes and was skipped.
    TooLong(u64),
}

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// 1-based number of the line last returned.
    pub line_no: u64,
    /// Whether any line needed the Windows-1252 fallback.
    pub saw_legacy_encoding: bool,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(1024),
            line_no: 0,
            saw_legacy_encoding: false,
        }
    }

    /// The next line, or `None` at the end of input.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut total: u64 = 0;
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            total += take as u64;
            if !too_long {
                if self.buf.len() + take > MAX_LINE + 2 {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&available[..take]);
                }
            }
            self.inner.consume(take);
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line_no += 1;
        if too_long {
            return Ok(Some(Line::TooLong(total)));
        }
        let mut bytes = &self.buf[..];
        if bytes.last() == Some(&b'\n') {
            bytes = &bytes[..bytes.len() - 1];
        }
        if bytes.last() == Some(&b'\r') {
            bytes = &bytes[..bytes.len() - 1];
        }
        if self.line_no == 1 {
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                self.saw_legacy_encoding = true;
                let (decoded, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
                Cow::Owned(decoded.into_owned())
            }
        };
        Ok(Some(Line::Text(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<String> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            out.push(match line {
                Line::Text(t) => t.into_owned(),
                Line::TooLong(n) => format!("<too long: {n}>"),
            });
        }
        out
    }

    #[test]
    fn crlf_bom_legacy_and_last_line() {
        assert_eq!(
            lines(b"\xef\xbb\xbf#EXTM3U\r\na\r\n\nCaf\xe9"),
            vec!["#EXTM3U", "a", "", "Café"]
        );
    }

    #[test]
    fn long_line_is_skipped_not_buffered() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.extend_from_slice(b"\nnext\n");
        assert_eq!(
            lines(&input),
            vec![
                format!("<too long: {}>", MAX_LINE * 3 + 1),
                "next".to_string()
            ]
        );
    }
}
