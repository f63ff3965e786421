//! Running probes: `concurrency` worker threads in total, never more than `per_host` probes
//! (and so open connections: the prober keeps none idle) to one host at once, and nothing new
//! started once the budget is spent or the cancel flag is set. Work is handed out oldest
//! result first within each host, hosts in turn. Findings go back to the calling thread,
//! which alone writes the database, one finding per statement, so an interrupted run leaves
//! every stored result whole.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::check::{Finding, Prober, Target};
use super::store::Due;

/// Queued jobs below which the caller loads more.
pub const LOW_WATER: usize = 512;

#[derive(Default)]
struct Queue {
    /// Jobs per host, and the hosts in the order they first appeared.
    by_host: HashMap<String, VecDeque<Due>>,
    hosts: Vec<String>,
    busy: HashMap<String, usize>,
    next_host: usize,
    queued: usize,
    in_flight: usize,
    /// Probes the budget cut short: not findings, left for a later run.
    cut: usize,
    /// No more jobs start (budget spent, cancelled, or all done).
    stop: bool,
    /// The caller will add no more jobs.
    closed: bool,
}

impl Queue {
    /// The next job whose host has a free slot, hosts taken in turn.
    fn take(&mut self, per_host: usize) -> Option<(String, Due)> {
        let n = self.hosts.len();
        for i in 0..n {
            let idx = (self.next_host + i) % n;
            let host = &self.hosts[idx];
            let busy = self.busy.get(host).copied().unwrap_or(0);
            if busy >= per_host {
                continue;
            }
            if let Some(job) = self.by_host.get_mut(host).and_then(VecDeque::pop_front) {
                let host = host.clone();
                *self.busy.entry(host.clone()).or_default() += 1;
                self.next_host = (idx + 1) % n;
                self.queued -= 1;
                self.in_flight += 1;
                return Some((host, job));
            }
        }
        None
    }
}

/// A running pool of probe workers.
pub struct Pool {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    results: Receiver<(i64, Finding)>,
    deadline: Instant,
}

impl Pool {
    /// Start `concurrency` workers that stop starting probes at `deadline`.
    pub fn start(
        prober: Prober,
        concurrency: usize,
        per_host: usize,
        deadline: Instant,
        cancel: Arc<AtomicBool>,
    ) -> Pool {
        let shared = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        let (tx, rx) = unbounded();
        for _ in 0..concurrency.max(1) {
            let shared = Arc::clone(&shared);
            let tx: Sender<(i64, Finding)> = tx.clone();
            let prober = prober.clone();
            let cancel = Arc::clone(&cancel);
            std::thread::spawn(move || {
                worker(&shared, &prober, per_host.max(1), deadline, &cancel, &tx)
            });
        }
        Pool {
            shared,
            results: rx,
            deadline,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue jobs. Jobs without an HTTP(S) host are queued under the empty host (they make no
    /// connection, so `per_host` does not hold them back).
    pub fn push(&self, jobs: Vec<Due>) {
        let mut q = self.lock();
        for job in jobs {
            let host = job.target.host().unwrap_or_default();
            if !q.by_host.contains_key(&host) {
                q.hosts.push(host.clone());
            }
            q.by_host.entry(host).or_default().push_back(job);
            q.queued += 1;
        }
        drop(q);
        self.shared.1.notify_all();
    }

    pub fn queued(&self) -> usize {
        self.lock().queued
    }

    /// No more jobs will be pushed.
    pub fn close(&self) {
        self.lock().closed = true;
        self.shared.1.notify_all();
    }

    /// Start nothing new (budget spent or interrupted).
    pub fn stop(&self) {
        self.lock().stop = true;
        self.shared.1.notify_all();
    }

    /// Whether every job that was started has reported and no more will start.
    pub fn finished(&self) -> bool {
        let q = self.lock();
        q.in_flight == 0 && (q.stop || (q.closed && q.queued == 0))
    }

    /// Jobs queued but never started, or cut short by the budget (left for a later run).
    pub fn left_over(&self) -> usize {
        let q = self.lock();
        q.queued + q.cut
    }

    /// The next finding, waiting at most `wait`.
    pub fn next(&self, wait: Duration) -> Option<(i64, Finding)> {
        self.results.recv_timeout(wait).ok()
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker(
    shared: &(Mutex<Queue>, Condvar),
    prober: &Prober,
    per_host: usize,
    deadline: Instant,
    cancel: &AtomicBool,
    tx: &Sender<(i64, Finding)>,
) {
    let (lock, cvar) = shared;
    loop {
        let (host, job) = {
            let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if crate::cancel::requested(cancel) || Instant::now() >= deadline {
                    q.stop = true;
                }
                if q.stop || (q.closed && q.queued == 0) {
                    cvar.notify_all();
                    return;
                }
                if let Some(picked) = q.take(per_host) {
                    break picked;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                q = cvar
                    .wait_timeout(q, left.min(Duration::from_millis(200)))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        let target: &Target = &job.target;
        let limit = deadline.saturating_duration_since(Instant::now());
        let finding = prober.probe(target, limit);
        // A timeout that only the budget's end caused says nothing about the stream: it is
        // not stored, and the stream stays due.
        let cut = limit < prober.timeout()
            && finding.verdict == super::check::Verdict::Fail
            && finding.reason.starts_with("timeout");
        // Sent before the job counts as done, so a caller that sees nothing in flight has
        // every finding in its channel. The caller may have gone (interrupted): the finding is
        // then dropped, unstored.
        if !cut {
            let _ = tx.send((job.id, finding));
        }
        {
            let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
            q.cut += usize::from(cut);
            if let Some(b) = q.busy.get_mut(&host) {
                *b -= 1;
            }
            q.in_flight -= 1;
        }
        cvar.notify_all();
    }
}
