//! Sightings back to MISP: the data path offers each matched value to a bounded queue (never
//! waiting; a full queue counts the value as dropped), and one background thread batches them
//! into `POST /sightings/add`, retrying with backoff while the server is away and keeping what
//! it could not send, up to the bound.

use crate::remote::MispClient;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How sightings are batched and bounded.
#[derive(Debug, Clone)]
pub struct SightingConfig {
    /// Most sightings queued from the data path, and most kept unsent while the server is
    /// away (each bound on its own).
    pub capacity: usize,
    /// Values per `POST /sightings/add`.
    pub batch: usize,
    /// Send what is waiting at least this often.
    pub flush_every: Duration,
    /// Wait after a failed send before trying again.
    pub retry_every: Duration,
    /// MISP's `source` field.
    pub source: String,
}

impl Default for SightingConfig {
    fn default() -> Self {
        SightingConfig {
            capacity: 100_000,
            batch: 500,
            flush_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(10),
            source: "islet".into(),
        }
    }
}

/// What the sender did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SightingStats {
    pub sent: u64,
    pub batches: u64,
    pub failed_attempts: u64,
    /// Dropped because the queue was full (counted on the data path).
    pub dropped: u64,
    /// Still unsent when the queue was closed.
    pub undelivered: u64,
    pub last_error: Option<String>,
}

/// The data path's handle: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct SightingSender {
    tx: Sender<(String, u64)>,
    dropped: Arc<AtomicU64>,
}

impl SightingSender {
    /// Offer a sighting of `value` at `ts` (UNIX seconds). False (and counted) when full.
    pub fn offer(&self, value: &str, ts: u64) -> bool {
        match self.tx.try_send((value.to_string(), ts)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// The background sender.
#[derive(Debug)]
pub struct SightingQueue {
    sender: Option<SightingSender>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<SightingStats>>,
}

impl SightingQueue {
    pub fn start(client: MispClient, cfg: SightingConfig) -> SightingQueue {
        let (tx, rx) = bounded(cfg.capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("islet-sightings".into())
            .spawn(move || {
                let mut s = run(&client, &cfg, &rx, &stopping);
                s.dropped = d.load(Ordering::Relaxed);
                s
            })
            .ok();
        SightingQueue {
            sender: Some(SightingSender { tx, dropped }),
            stop,
            thread,
        }
    }

    pub fn sender(&self) -> Option<SightingSender> {
        self.sender.clone()
    }

    /// Close the queue (senders still held elsewhere are refused from now on), send what is
    /// left (with the usual retries), and report.
    pub fn finish(mut self) -> SightingStats {
        self.sender = None;
        self.stop.store(true, Ordering::Release);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

fn run(
    client: &MispClient,
    cfg: &SightingConfig,
    rx: &Receiver<(String, u64)>,
    stop: &AtomicBool,
) -> SightingStats {
    let mut st = SightingStats::default();
    let mut pending: Vec<(String, u64)> = Vec::new();
    let mut last_flush = Instant::now();
    let mut next_try = Instant::now();
    let sleep = |d: Duration| std::thread::sleep(d);
    loop {
        let closed = match rx.recv_timeout(cfg.flush_every.min(Duration::from_millis(200))) {
            Ok(x) => {
                if pending.len() < cfg.capacity {
                    pending.push(x);
                } else {
                    st.dropped += 1;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        // Asked to stop: take what is queued and send it one last time.
        let closed = closed
            || stop.load(Ordering::Acquire) && {
                for x in rx.try_iter() {
                    if pending.len() < cfg.capacity {
                        pending.push(x);
                    } else {
                        st.dropped += 1;
                    }
                }
                true
            };
        let due = pending.len() >= cfg.batch || last_flush.elapsed() >= cfg.flush_every || closed;
        if due && !pending.is_empty() && (Instant::now() >= next_try || closed) {
            last_flush = Instant::now();
            while !pending.is_empty() {
                let n = pending.len().min(cfg.batch.max(1));
                let ts = pending[..n].iter().map(|p| p.1).max().unwrap_or(0);
                let mut values: Vec<String> = pending[..n].iter().map(|p| p.0.clone()).collect();
                values.sort();
                values.dedup();
                match client.add_sightings(&values, ts, &cfg.source, &sleep) {
                    Ok(()) => {
                        st.sent += n as u64;
                        st.batches += 1;
                        pending.drain(..n);
                    }
                    Err(e) => {
                        st.failed_attempts += 1;
                        st.last_error = Some(e.to_string());
                        next_try = Instant::now() + cfg.retry_every;
                        break;
                    }
                }
            }
        }
        if closed {
            st.undelivered = pending.len() as u64;
            return st;
        }
    }
}
