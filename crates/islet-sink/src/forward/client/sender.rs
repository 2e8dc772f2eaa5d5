//! The sending thread: takes queued entries in order, cuts them into chunks, and lets a chunk's
//! records go only when its ack came back; declares in a signed gap record what an earlier run
//! lost before it was acknowledged.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use islet_event::record::{EveRecord, hex32};
use sha2::{Digest as _, Sha256};

use super::connection::{Conn, chunk_id};
use super::queue::{Entry, Shared};
use super::spool::store_acked;
use super::{ForwardConfig, RecordShape};
use crate::chain::seq_prev;
use crate::forward::proto::{frame, write_event_time};

/// The sending thread.
pub(super) struct Sender {
    pub(super) cfg: Arc<ForwardConfig>,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    pub(super) shared: Arc<Shared>,
    pub(super) conn: Option<Conn>,
    pub(super) backoff: Duration,
    /// The last error was reported; report again only once delivery recovers.
    pub(super) reported: bool,
    pub(super) frame: Vec<u8>,
    pub(super) entries: Vec<u8>,
    pub(super) rbuf: Vec<u8>,
    /// Signs the gap records the sender writes itself.
    pub(super) key: Option<SigningKey>,
    pub(super) sensor: String,
    /// The last record the receiver acknowledged (its seq, and the hash the next one links to),
    /// kept in the spool so a restart after a crash can declare what never arrived.
    pub(super) acked: Option<(u64, [u8; 32])>,
    pub(super) acked_path: Option<PathBuf>,
}

#[derive(Debug)]
pub(super) enum SendError {
    Io(String),
    /// The shutdown timeout passed.
    GiveUp,
}

impl Sender {
    pub(super) fn new(
        cfg: Arc<ForwardConfig>,
        tls: Option<Arc<rustls::ClientConfig>>,
        shared: Arc<Shared>,
    ) -> Sender {
        Sender {
            backoff: cfg.backoff_initial,
            cfg,
            tls,
            shared,
            conn: None,
            reported: false,
            frame: Vec::new(),
            entries: Vec::new(),
            rbuf: Vec::new(),
            key: None,
            sensor: String::new(),
            acked: None,
            acked_path: None,
        }
    }

    pub(super) fn run(mut self) {
        loop {
            let front = {
                let mut q = self.shared.lock();
                loop {
                    if q.give_up || (q.closing && q.entries.is_empty()) {
                        return;
                    }
                    if let Some(e) = q.entries.pop_front() {
                        q.busy = true;
                        break e;
                    }
                    let (g, t) = self
                        .shared
                        .data
                        .wait_timeout(q, self.cfg.heartbeat_interval)
                        .unwrap_or_else(|p| p.into_inner());
                    q = g;
                    if t.timed_out() && q.entries.is_empty() {
                        drop(q);
                        self.heartbeat();
                        q = self.shared.lock();
                    }
                }
            };
            match self.deliver(&front) {
                Ok(()) => {
                    self.shared.stats.latency(front.at().elapsed());
                    let mut q = self.shared.lock();
                    match &front {
                        Entry::Mem { bytes, .. } => q.mem_bytes -= bytes.len(),
                        Entry::Disk { path, len, .. } => {
                            q.disk_bytes -= len;
                            let _ = std::fs::remove_file(path);
                        }
                    }
                    self.shared
                        .stats
                        .memory_bytes
                        .store(q.mem_bytes as u64, Ordering::Relaxed);
                    self.shared
                        .stats
                        .spool_bytes
                        .store(q.disk_bytes, Ordering::Relaxed);
                    q.busy = false;
                    drop(q);
                    self.shared.space.notify_all();
                }
                Err(_) => {
                    // Gave up at close: put it back to be spooled.
                    let mut q = self.shared.lock();
                    q.entries.push_front(front);
                    q.busy = false;
                    return;
                }
            }
        }
    }

    /// Send every record of one queued entry, chunk by chunk, each until acknowledged.
    fn deliver(&mut self, e: &Entry) -> Result<(), SendError> {
        let bytes = match e.load() {
            Ok(b) => b,
            Err(err) => {
                eprintln!("forward: cannot read a spooled buffer: {err}; skipping it");
                return Ok(());
            }
        };
        let mut lines = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .peekable();
        while lines.peek().is_some() {
            self.entries.clear();
            let mut count = 0usize;
            let mut json_bytes = 0usize;
            // Records between the last acknowledged one and this chunk never arrived (they were
            // in memory when the sensor stopped uncleanly): a signed gap record says so first.
            if let (Some((x, hx)), Some((s, ps))) =
                (self.acked, lines.peek().and_then(|l| seq_prev(l)))
                && s > x + 1
            {
                let mut gap = Vec::new();
                crate::chain::gap_record(
                    &self.sensor,
                    self.key.as_ref(),
                    lines
                        .peek()
                        .and_then(|l| crate::chain::event_time(l))
                        .map_or(b"", |(t, _)| t),
                    x + 1,
                    s - 1,
                    &hx,
                    &ps,
                    "lost from the forward buffer (unclean stop)",
                    &mut gap,
                );
                self.entry(gap.strip_suffix(b"\n").unwrap_or(&gap));
                self.shared.stats.gaps.fetch_add(1, Ordering::Relaxed);
                count += 1;
            }
            let mut last: &[u8] = b"";
            while count < self.cfg.batch_events && json_bytes < self.cfg.batch_bytes {
                let Some(l) = lines.next() else { break };
                self.entry(l);
                count += 1;
                json_bytes += l.len();
                last = l;
            }
            let chunk = chunk_id();
            self.frame.clear();
            frame(
                self.cfg.mode,
                &self.cfg.tag,
                &self.entries,
                count,
                &chunk,
                &mut self.frame,
            )
            .map_err(|e| SendError::Io(e.to_string()))?;
            self.send_until_acked(&chunk)?;
            self.note_acked(last);
            let st = &self.shared.stats;
            st.delivered.fetch_add(count as u64, Ordering::Relaxed);
            st.chunks.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Remember (and keep in the spool) the last acknowledged record: for a gap record, the
    /// last sequence number it declares and the hash the chain resumes from.
    fn note_acked(&mut self, last: &[u8]) {
        let head = if EveRecord::peek_event_type(last) == Some("gap") {
            EveRecord::decode(last).ok().and_then(|r| {
                let g = r.gap?;
                Some((g.last_seq?, hex32(g.resume_prev.as_deref()?)?))
            })
        } else {
            seq_prev(last).map(|(s, _)| (s, Sha256::digest(last).into()))
        };
        let Some(head) = head else { return };
        if self.acked.is_some_and(|(x, _)| x >= head.0) {
            return;
        }
        self.acked = Some(head);
        if let Some(p) = &self.acked_path
            && store_acked(p, head).is_err()
        {
            eprintln!(
                "forward: cannot keep the acknowledged head in {}",
                p.display()
            );
        }
    }

    fn entry(&mut self, line: &[u8]) {
        let out = &mut self.entries;
        out.push(0x92);
        let ns = crate::chain::record_time_ns(line).unwrap_or(0);
        write_event_time(out, ns);
        let shaped =
            self.cfg.record == RecordShape::Map && crate::msgpack::from_json(line, out).is_ok();
        if !shaped {
            out.push(0x81);
            crate::forward::proto::write_str(out, "message");
            let _ = rmp::encode::write_str(out, &String::from_utf8_lossy(line));
        }
    }
}
