//! Opening source files whatever their packing: gzip and xz are recognised by their magic bytes
//! (never by the file name, which providers get wrong), and every byte that comes out of the
//! decompressor counts against `max_size`, so a small bomb stops at the limit.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// How a file is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    Plain,
    Gzip,
    Xz,
}

/// Recognise the packing from the first bytes of a file.
pub fn sniff(head: &[u8]) -> Packing {
    if head.starts_with(GZIP_MAGIC) {
        Packing::Gzip
    } else if head.starts_with(XZ_MAGIC) {
        Packing::Xz
    } else {
        Packing::Plain
    }
}

/// Open a file for reading, decompressing it when its magic bytes say so, and failing with
/// [`io::ErrorKind::FileTooLarge`] once more than `max_size` decompressed bytes were read.
pub fn open(path: &Path, max_size: u64) -> io::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path)?;
    decode(file, max_size)
}

/// Wrap any reader the same way as [`open`].
pub fn decode<R: Read + Send + 'static>(
    inner: R,
    max_size: u64,
) -> io::Result<Box<dyn BufRead + Send>> {
    let mut buffered = BufReader::with_capacity(64 * 1024, inner);
    let packing = sniff(buffered.fill_buf()?);
    let reader: Box<dyn Read + Send> = match packing {
        Packing::Plain => Box::new(buffered),
        Packing::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Packing::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(buffered)),
    };
    Ok(Box::new(BufReader::with_capacity(
        64 * 1024,
        Limited {
            inner: reader,
            remaining: max_size,
            limit: max_size,
        },
    )))
}

/// A reader that errors, rather than silently stopping, past its limit.
struct Limited<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Read one byte more than allowed so that hitting the limit exactly is not an error.
        let want = buf
            .len()
            .min(self.remaining.saturating_add(1).min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.remaining {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "more than {} after decompression (max_size)",
                    crate::config::units::HumanBytes(self.limit)
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(bytes: Vec<u8>, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decode(io::Cursor::new(bytes), limit)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn plain_gzip_and_xz() {
        let text = b"#EXTM3U\n".repeat(100);
        assert_eq!(read_all(text.clone(), 1 << 20).unwrap(), text);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        assert_eq!(read_all(gz.finish().unwrap(), 1 << 20).unwrap(), text);

        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&text).unwrap();
        assert_eq!(read_all(xz.finish().unwrap(), 1 << 20).unwrap(), text);
    }

    #[test]
    fn limit_counts_decompressed_bytes() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'a'; 10 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 64 * 1024);
        let err = read_all(bomb, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        // Exactly at the limit is fine.
        assert_eq!(read_all(vec![b'x'; 100], 100).unwrap().len(), 100);
    }
}
