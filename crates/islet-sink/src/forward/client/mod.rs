//! The Forward client: at-least-once delivery of sealed records to Fluentd, Fluent Bit, Vector
//! or islet's own receiver.
//!
//! The sensor's writer [`Forwarder::offer`]s buffers of sealed lines. They queue in memory up to
//! `memory_bytes`, then in spool files up to `disk_bytes`; when both are full the configured
//! policy applies: `block` (back-pressure into the pipeline, counted as time blocked) or
//! `drop_newest` (the buffer is dropped, counted, and a signed `gap` record naming the lost
//! sequence numbers is sent in its place). One thread per forwarder cuts the queue into chunks,
//! frames them (Forward, PackedForward or CompressedPackedForward, EventTime), sends each with a
//! `chunk` id and waits for the matching ack before it lets the records go; on a timeout or a
//! broken connection it reconnects (capped exponential backoff, servers in priority order,
//! failback to the first) and resends. Records carry `islet.seq`, so a receiver drops duplicates.
//! On close, whatever is not delivered within the shutdown timeout is written to the spool and
//! sent by the next run.
//!
//! `config.rs` holds the settings and counters, `queue.rs` the queue and the full-buffer
//! policy's pending gap, `spool.rs` the spool files, `sender.rs` the sending thread (chunks,
//! acks, gap records for what an earlier run lost), `connection.rs` TLS, the handshake,
//! backoff, failover and the heartbeat, `error.rs` why a forwarder did not start.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

mod config;
mod connection;
mod error;
mod queue;
mod sender;
mod spool;

pub use error::ForwardError;

pub use config::{
    ForwardConfig, ForwardStats, LATENCY_BUCKETS, OnFull, RecordShape, TlsClient, hostname,
};

use connection::tls_config;
use queue::{Entry, Queue, Shared, drop_lines};
use sender::Sender;
use spool::{load_acked, spool_files, write_spool};

/// A running forwarder.
pub struct Forwarder {
    shared: Arc<Shared>,
    cfg: Arc<ForwardConfig>,
    key: Option<SigningKey>,
    sensor: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("servers", &self.cfg.servers)
            .finish()
    }
}

/// What closing a forwarder left behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseReport {
    pub delivered: u64,
    /// Records written to the spool for the next run.
    pub spooled: u64,
    /// Records neither delivered nor spooled (no spool directory).
    pub lost: u64,
    pub dropped: u64,
}

impl Forwarder {
    /// Start a forwarder. Records left in the spool by an earlier run are sent first.
    pub fn start(
        cfg: ForwardConfig,
        key: Option<SigningKey>,
        sensor: &str,
    ) -> Result<Forwarder, ForwardError> {
        if cfg.servers.is_empty() {
            return Err(ForwardError::NoServer);
        }
        for s in &cfg.servers {
            if s.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(ForwardError::NotHostPort(s.clone()));
            }
        }
        let tls = match &cfg.tls {
            Some(t) => Some(tls_config(t)?),
            None => None,
        };
        let mut q = Queue {
            entries: VecDeque::new(),
            mem_bytes: 0,
            disk_bytes: 0,
            closing: false,
            give_up: false,
            next_spool: 1,
            gap: None,
            busy: false,
        };
        let stats = Arc::new(ForwardStats::default());
        if let Some(dir) = &cfg.spool_dir {
            std::fs::create_dir_all(dir).map_err(|source| ForwardError::Spool {
                path: dir.clone(),
                source,
            })?;
            for (id, path, len) in spool_files(dir)? {
                q.next_spool = q.next_spool.max(id + 1);
                q.disk_bytes += len;
                q.entries.push_back(Entry::Disk {
                    path,
                    len,
                    at: Instant::now(),
                });
            }
            stats.spool_bytes.store(q.disk_bytes, Ordering::Relaxed);
        }
        let shared = Arc::new(Shared {
            q: Mutex::new(q),
            data: Condvar::new(),
            space: Condvar::new(),
            stats,
        });
        let cfg = Arc::new(cfg);
        let thread = {
            let (shared, cfg) = (shared.clone(), cfg.clone());
            let acked_path = cfg.spool_dir.as_ref().map(|d| d.join("acked"));
            let acked = acked_path.as_deref().and_then(load_acked);
            let signer = (key.clone(), sensor.to_string());
            std::thread::Builder::new()
                .name("forward".into())
                .spawn(move || {
                    let mut s = Sender::new(cfg, tls, shared);
                    (s.key, s.sensor) = signer;
                    (s.acked, s.acked_path) = (acked, acked_path);
                    s.run();
                })
                .map_err(ForwardError::Thread)?
        };
        Ok(Forwarder {
            shared,
            cfg,
            key,
            sensor: sensor.to_string(),
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> Arc<ForwardStats> {
        self.shared.stats.clone()
    }

    /// Queue whole sealed lines for delivery (applies the full-buffer policy).
    pub fn offer(&self, lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        let n = memchr::memchr_iter(b'\n', lines).count() as u64;
        let st = &self.shared.stats;
        st.offered.fetch_add(n, Ordering::Relaxed);
        let mut q = self.shared.lock();
        let started = Instant::now();
        loop {
            let mut gap_line = Vec::new();
            if let Some(g) = q.gap {
                crate::chain::gap_record(
                    &self.sensor,
                    self.key.as_ref(),
                    &g.ts[..g.ts_len],
                    g.first,
                    g.last,
                    &g.prev,
                    &g.resume,
                    "forward buffer full (drop_newest)",
                    &mut gap_line,
                );
            }
            let need = lines.len() + gap_line.len();
            if self.fits(&q, need) {
                if !gap_line.is_empty() {
                    q.gap = None;
                    st.gaps.fetch_add(1, Ordering::Relaxed);
                    self.push(&mut q, &gap_line);
                }
                self.push(&mut q, lines);
                break;
            }
            match self.cfg.on_full {
                OnFull::Block if !q.give_up => {
                    q = self
                        .shared
                        .space
                        .wait_timeout(q, Duration::from_millis(100))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                _ => {
                    drop_lines(&mut q.gap, lines);
                    st.dropped.fetch_add(n, Ordering::Relaxed);
                    break;
                }
            }
        }
        let waited = started.elapsed();
        if waited > Duration::from_micros(50) {
            st.blocked_ns
                .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        }
        drop(q);
        self.shared.data.notify_one();
    }

    fn fits(&self, q: &Queue, need: usize) -> bool {
        q.mem_bytes + need <= self.cfg.memory_bytes
            || (self.cfg.spool_dir.is_some() && q.disk_bytes + need as u64 <= self.cfg.disk_bytes)
    }

    fn push(&self, q: &mut Queue, lines: &[u8]) {
        let st = &self.shared.stats;
        let id = q.next_spool;
        q.next_spool += 1;
        if q.mem_bytes + lines.len() <= self.cfg.memory_bytes {
            q.mem_bytes += lines.len();
            st.memory_bytes.store(q.mem_bytes as u64, Ordering::Relaxed);
            q.entries.push_back(Entry::Mem {
                id,
                bytes: lines.to_vec(),
                at: Instant::now(),
            });
            return;
        }
        if let Some(dir) = &self.cfg.spool_dir {
            match write_spool(dir, id, lines) {
                Ok(path) => {
                    q.disk_bytes += lines.len() as u64;
                    st.spool_bytes.store(q.disk_bytes, Ordering::Relaxed);
                    q.entries.push_back(Entry::Disk {
                        path,
                        len: lines.len() as u64,
                        at: Instant::now(),
                    });
                    return;
                }
                Err(e) => eprintln!("forward: spool {}: {e}", dir.display()),
            }
        }
        // Neither fits (only reached when the spool cannot be written): over the memory bound
        // rather than lose accepted records.
        q.mem_bytes += lines.len();
        q.entries.push_back(Entry::Mem {
            id,
            bytes: lines.to_vec(),
            at: Instant::now(),
        });
    }

    /// Deliver what is queued within the shutdown timeout, spool the rest, stop.
    pub fn close(mut self) -> CloseReport {
        self.shut()
    }

    fn shut(&mut self) -> CloseReport {
        let deadline = Instant::now() + self.cfg.shutdown_timeout;
        {
            let mut q = self.shared.lock();
            q.closing = true;
        }
        self.shared.data.notify_all();
        loop {
            let q = self.shared.lock();
            let idle = q.entries.is_empty() && !q.busy;
            drop(q);
            if idle || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        {
            let mut q = self.shared.lock();
            q.give_up = true;
        }
        self.shared.data.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let st = &self.shared.stats;
        let mut report = CloseReport {
            delivered: st.delivered.load(Ordering::Relaxed),
            dropped: st.dropped.load(Ordering::Relaxed),
            ..CloseReport::default()
        };
        let mut q = self.shared.lock();
        let entries: Vec<Entry> = q.entries.drain(..).collect();
        for e in entries {
            match e {
                Entry::Disk { path, .. } => {
                    report.spooled += std::fs::read(&path)
                        .map(|b| memchr::memchr_iter(b'\n', &b).count() as u64)
                        .unwrap_or(0);
                }
                Entry::Mem { id, bytes, .. } => {
                    let n = memchr::memchr_iter(b'\n', &bytes).count() as u64;
                    let saved = self
                        .cfg
                        .spool_dir
                        .as_deref()
                        .map(|d| write_spool(d, id, &bytes));
                    match saved {
                        Some(Ok(_)) => report.spooled += n,
                        Some(Err(e)) => {
                            let dir = self.cfg.spool_dir.as_deref().unwrap_or(Path::new(""));
                            eprintln!(
                                "forward: spool at close: {}: {e}; {n} records lost",
                                dir.display()
                            );
                            report.lost += n;
                        }
                        None => report.lost += n,
                    }
                }
            }
        }
        st.lost_at_close.store(report.lost, Ordering::Relaxed);
        report
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.shut();
        }
    }
}
