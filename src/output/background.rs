//! Writing and hashing an output on a thread of its own: the caller formats into 256 KiB
//! blocks and hands each full block over, a thread writes it to the file and feeds it to
//! SHA-256. SHA-256 and the write calls were about a third of writing the scale job's guide
//! and playlist (issue 13), and the build has a core to spare once the sources are stored.
//! At most [`QUEUED`] blocks wait, so memory stays at about 1.5 MiB per open output.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc;
use std::thread;

use super::HashingWriter;

/// Bytes per block handed to the writing thread.
const BLOCK: usize = 256 * 1024;
/// Full blocks that may wait for the writing thread before the caller waits too.
const QUEUED: usize = 4;

/// A [`Write`] whose bytes reach `file` (and its hash) on another thread, in order.
pub(super) struct BackgroundWriter {
    block: Vec<u8>,
    to_disk: Option<mpsc::SyncSender<Vec<u8>>>,
    /// Emptied blocks coming back for reuse.
    spare: mpsc::Receiver<Vec<u8>>,
    worker: Option<thread::JoinHandle<io::Result<HashingWriter<File>>>>,
}

impl BackgroundWriter {
    pub(super) fn new(file: File) -> io::Result<BackgroundWriter> {
        let (to_disk, blocks) = mpsc::sync_channel::<Vec<u8>>(QUEUED);
        let (give_back, spare) = mpsc::channel::<Vec<u8>>();
        let worker = thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                let mut out = HashingWriter::new(file);
                for mut block in blocks {
                    out.write_all(&block)?;
                    block.clear();
                    // The caller may be gone (finishing): then the block is just freed.
                    let _ = give_back.send(block);
                }
                Ok(out)
            })?;
        Ok(BackgroundWriter {
            block: Vec::with_capacity(BLOCK),
            to_disk: Some(to_disk),
            spare,
            worker: Some(worker),
        })
    }

    /// Hand the current block over (if it holds anything).
    fn send(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
        let full = std::mem::replace(&mut self.block, next);
        let sent = match &self.to_disk {
            Some(to_disk) => to_disk.send(full).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped at a write error: that error is the answer.
        Err(match self.join() {
            Err(e) => e,
            Ok(_) => io::Error::other("output writer stopped"),
        })
    }

    fn join(&mut self) -> io::Result<HashingWriter<File>> {
        self.to_disk = None;
        match self.worker.take() {
            Some(worker) => worker
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("output writer thread panicked"))),
            None => Err(io::Error::other("output writer already finished")),
        }
    }

    /// Write what is left and wait for the thread: the file (not yet synced), its hash and
    /// size.
    pub(super) fn finish(&mut self) -> io::Result<HashingWriter<File>> {
        self.send()?;
        self.join()
    }
}

impl Write for BackgroundWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        loop {
            let room = BLOCK - self.block.len();
            if buf.len() < room {
                self.block.extend_from_slice(buf);
                return Ok(());
            }
            let (now, rest) = buf.split_at(room);
            self.block.extend_from_slice(now);
            buf = rest;
            self.send()?;
        }
    }

    /// Hands the current block over; the bytes are in the file once [`finish`] returns.
    ///
    /// [`finish`]: BackgroundWriter::finish
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for BackgroundWriter {
    /// A dropped (failed) output: stop the thread before its file is removed.
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn bytes_arrive_in_order_with_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut w = BackgroundWriter::new(File::create(&path).unwrap()).unwrap();
        let mut expected = Vec::new();
        for i in 0..40_000u32 {
            let piece = format!("line {i} {}\n", "x".repeat((i % 97) as usize));
            w.write_all(piece.as_bytes()).unwrap();
            expected.extend_from_slice(piece.as_bytes());
        }
        // One write larger than several blocks.
        let big = vec![b'z'; 3 * BLOCK + 17];
        w.write_all(&big).unwrap();
        expected.extend_from_slice(&big);
        let done = w.finish().unwrap();
        assert_eq!(done.bytes, expected.len() as u64);
        assert_eq!(
            done.hasher.finalize().as_slice(),
            Sha256::digest(&expected).as_slice()
        );
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_error_reaches_the_caller() {
        // /dev/full fails every write with ENOSPC.
        let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut w = BackgroundWriter::new(full).unwrap();
        let block = vec![b'a'; BLOCK];
        let failed = (0..QUEUED + 3).any(|_| w.write_all(&block).is_err());
        assert!(failed || w.finish().is_err());
    }
}
