//! The rolling multi-source buffer (SPEC section 4, `[settings.buffer]`).
//!
//! A proxy's sources are read from the store in priority order, a chunk at a time, by one
//! loader thread per source (each with its own read-only connection). The consumer drains them
//! strictly in priority order. The first source starts at once; the next one starts loading
//! while the current one drains, as soon as the buffer's free share reaches
//! `trigger_threshold`, with at most `max_concurrent_sources` loaders running. Items held across
//! all sources never exceed `buffer_size` (plus one chunk): loaders of sources that are not yet
//! being drained may fill only the share `1 - trigger_threshold`, so the source being drained
//! always has room and the buffer cannot deadlock.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use anyhow::{Result, anyhow};

use crate::config::BufferSettings;
use crate::memory::{Budget, Pressure, Reservation};
use crate::model::Channel;
use crate::store::{Store, channels::read_page};

struct Slot {
    /// Chunks and their accounted bytes.
    queue: VecDeque<(Vec<Channel>, u64)>,
    started: bool,
    done: bool,
}

struct State {
    slots: Vec<Slot>,
    held: usize,
    error: Option<anyhow::Error>,
    stop: bool,
    /// The most items ever held at once (for the report and tests).
    peak: usize,
    /// Effective capacity and chunk size: the configured ones, shrunk under memory pressure.
    capacity: usize,
    chunk_size: usize,
    /// Under high pressure no further source starts loading until the pressure falls.
    paused: bool,
    /// What the held chunks take, accounted against the budget.
    reservation: Reservation,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// Limits of the buffer; `capacity` may shrink under memory pressure.
#[derive(Debug, Clone)]
pub struct Limits {
    pub capacity: usize,
    pub trigger_threshold: f64,
    pub chunk_size: usize,
    pub max_concurrent: usize,
}

impl From<&BufferSettings> for Limits {
    fn from(b: &BufferSettings) -> Self {
        Limits {
            capacity: b.buffer_size.max(1),
            trigger_threshold: b.trigger_threshold,
            chunk_size: b.chunk_size.max(1),
            max_concurrent: b.max_concurrent_sources.max(1),
        }
    }
}

/// Yields the chunks of a proxy's sources in priority order.
pub struct RollingLoader {
    shared: Arc<Shared>,
    budget: Arc<Budget>,
    sources: Vec<String>,
    db: PathBuf,
    limits: Limits,
    current: usize,
    next_to_start: usize,
    threads: Vec<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
}

impl RollingLoader {
    /// Start loading `sources` (names, in priority order) from the database at `db`.
    pub fn start(
        db: &Path,
        sources: Vec<String>,
        limits: Limits,
        budget: &Arc<Budget>,
        cancel: Arc<AtomicBool>,
    ) -> RollingLoader {
        let slots = sources
            .iter()
            .map(|_| Slot {
                queue: VecDeque::new(),
                started: false,
                done: false,
            })
            .collect();
        let mut loader = RollingLoader {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    slots,
                    held: 0,
                    error: None,
                    stop: false,
                    peak: 0,
                    capacity: limits.capacity,
                    chunk_size: limits.chunk_size,
                    paused: false,
                    reservation: budget.empty(),
                }),
                changed: Condvar::new(),
            }),
            sources,
            budget: Arc::clone(budget),
            db: db.to_path_buf(),
            limits,
            current: 0,
            next_to_start: 0,
            threads: Vec::new(),
            cancel,
        };
        let shared = Arc::clone(&loader.shared);
        let mut state = shared.state.lock().unwrap();
        loader.start_more(&mut state);
        drop(state);
        loader
    }

    /// The most items held at once so far.
    pub fn peak(&self) -> usize {
        self.shared.state.lock().unwrap().peak
    }

    /// Shrink (or restore) the buffer and chunk size to the memory pressure, and pause
    /// starting further sources while it is high.
    fn adapt(&self, state: &mut State) {
        let level = self.budget.pressure();
        let scale = level.scale();
        state.capacity = ((self.limits.capacity as f64 * scale) as usize).max(1);
        state.chunk_size = ((self.limits.chunk_size as f64 * scale) as usize).max(1);
        state.paused = level >= Pressure::High;
    }

    /// Start loaders while the rules allow: the current source always; a later one when the
    /// free share has reached the threshold and fewer than `max_concurrent` are running.
    fn start_more(&mut self, state: &mut State) {
        while self.next_to_start < self.sources.len() {
            let i = self.next_to_start;
            let running = state.slots.iter().filter(|s| s.started && !s.done).count();
            let free_share = 1.0 - state.held as f64 / state.capacity as f64;
            let allowed = i == self.current
                || (!state.paused
                    && running < self.limits.max_concurrent
                    && free_share >= self.limits.trigger_threshold);
            if !allowed {
                break;
            }
            state.slots[i].started = true;
            self.next_to_start += 1;
            let shared = Arc::clone(&self.shared);
            let source = self.sources[i].clone();
            let db = self.db.clone();
            let limits = self.limits.clone();
            let cancel = Arc::clone(&self.cancel);
            let handle = std::thread::Builder::new()
                .name(format!("load-{source}"))
                .spawn(move || {
                    let result = load_source(&shared, i, &db, &source, &limits, &cancel);
                    let mut state = shared.state.lock().unwrap();
                    state.slots[i].done = true;
                    if let Err(e) = result
                        && state.error.is_none()
                    {
                        state.error = Some(e);
                    }
                    shared.changed.notify_all();
                })
                .expect("spawn loader thread");
            self.threads.push(handle);
        }
    }
}

fn load_source(
    shared: &Shared,
    index: usize,
    db: &Path,
    source: &str,
    limits: &Limits,
    cancel: &AtomicBool,
) -> Result<()> {
    let conn = Store::open_reader(db)?;
    let name: Arc<str> = Arc::from(source);
    let mut after = None;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(anyhow!("interrupted"));
        }
        let chunk_size = shared.state.lock().unwrap().chunk_size;
        let page = read_page(&conn, source, &name, after, chunk_size)?;
        if page.channels.is_empty() {
            return Ok(());
        }
        after = page.last_pos;
        let n = page.channels.len();
        let bytes: u64 = page.channels.iter().map(|c| c.heap_size() as u64).sum();
        let mut state = shared.state.lock().unwrap();
        loop {
            if state.stop {
                return Ok(());
            }
            // The source being drained is the lowest one that still has anything to deliver.
            let is_current = state
                .slots
                .iter()
                .position(|s| !(s.done && s.queue.is_empty()))
                .is_none_or(|c| c == index);
            let cap = if is_current {
                state.capacity
            } else {
                ((state.capacity as f64) * (1.0 - limits.trigger_threshold)).floor() as usize
            };
            if state.held < cap.max(1) || (is_current && state.slots[index].queue.is_empty()) {
                break;
            }
            state = shared.changed.wait(state).unwrap();
        }
        state.slots[index].queue.push_back((page.channels, bytes));
        state.held += n;
        state.reservation.grow_unchecked(bytes);
        state.peak = state.peak.max(state.held);
        shared.changed.notify_all();
        if n < chunk_size {
            return Ok(());
        }
    }
}

impl Iterator for RollingLoader {
    type Item = Result<Vec<Channel>>;

    fn next(&mut self) -> Option<Self::Item> {
        let shared = Arc::clone(&self.shared);
        let mut state = shared.state.lock().unwrap();
        loop {
            if let Some(e) = state.error.take() {
                state.stop = true;
                shared.changed.notify_all();
                return Some(Err(e));
            }
            if self.current >= self.sources.len() {
                return None;
            }
            if let Some((chunk, bytes)) = state.slots[self.current].queue.pop_front() {
                state.held -= chunk.len();
                state.reservation.shrink(bytes);
                self.adapt(&mut state);
                self.start_more(&mut state);
                shared.changed.notify_all();
                return Some(Ok(chunk));
            }
            if state.slots[self.current].done {
                self.current += 1;
                self.start_more(&mut state);
                shared.changed.notify_all();
                continue;
            }
            state = shared.changed.wait(state).unwrap();
        }
    }
}

impl Drop for RollingLoader {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.stop = true;
        }
        self.shared.changed.notify_all();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(sources: &[(&str, usize, bool)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut store = Store::open(&db).unwrap();
        store
            .sync_sources(sources.iter().map(|(n, _, a)| (*n, "m3u", *a)))
            .unwrap();
        let cancel = AtomicBool::new(false);
        for (name, count, _) in sources {
            let channels = (0..*count).map(|i| {
                Ok(Channel {
                    name: format!("{name}-{i}"),
                    ..Default::default()
                })
            });
            store
                .replace_channels(name, channels, 0, None, &cancel)
                .unwrap();
        }
        (dir, db)
    }

    fn drain(db: &Path, sources: &[&str], limits: Limits) -> (Vec<String>, usize) {
        let mut loader = RollingLoader::start(
            db,
            sources.iter().map(|s| s.to_string()).collect(),
            limits,
            &Budget::new(u64::MAX),
            Arc::new(AtomicBool::new(false)),
        );
        let names = loader
            .by_ref()
            .flat_map(|c| c.unwrap())
            .map(|c| c.name)
            .collect();
        (names, loader.peak())
    }

    #[test]
    fn priority_order_and_bounded_buffer() {
        let (_dir, db) = store_with(&[("a", 250, true), ("b", 7, true), ("c", 300, true)]);
        for (capacity, chunk, conc, threshold) in [
            (10, 3, 2, 0.5),
            (1, 1, 3, 1.0),
            (1000, 100, 1, 0.1),
            (50, 7, 3, 0.3),
        ] {
            let limits = Limits {
                capacity,
                trigger_threshold: threshold,
                chunk_size: chunk,
                max_concurrent: conc,
            };
            let (names, peak) = drain(&db, &["c", "a", "b"], limits);
            let expected: Vec<String> = (0..300)
                .map(|i| format!("c-{i}"))
                .chain((0..250).map(|i| format!("a-{i}")))
                .chain((0..7).map(|i| format!("b-{i}")))
                .collect();
            assert_eq!(names, expected);
            assert!(
                peak <= capacity + chunk,
                "peak {peak} > {capacity} + {chunk}"
            );
        }
    }

    #[test]
    fn inactive_source_reads_nothing() {
        let (_dir, db) = store_with(&[("a", 3, true), ("b", 3, false)]);
        let limits = Limits {
            capacity: 10,
            trigger_threshold: 0.5,
            chunk_size: 2,
            max_concurrent: 2,
        };
        let (names, _) = drain(&db, &["b", "a"], limits);
        assert_eq!(names, ["a-0", "a-1", "a-2"]);
    }
}
