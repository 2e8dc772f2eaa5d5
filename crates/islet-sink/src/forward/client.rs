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

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use islet_event::record::{EveRecord, hex32};
use sha2::{Digest as _, Sha256};

use super::proto::{Mode, frame, password_digest, shared_key_digest, value_len, write_event_time};
use crate::chain::seq_prev;

/// What to do when memory and disk buffers are both full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFull {
    /// Wait for room: the pipeline slows down (counted as blocked time).
    #[default]
    Block,
    /// Drop the newest records, count them, and send a signed gap record in their place.
    DropNewest,
}

impl OnFull {
    pub fn parse(s: &str) -> Result<OnFull, String> {
        match s {
            "block" => Ok(OnFull::Block),
            "drop_newest" | "drop-newest" => Ok(OnFull::DropNewest),
            _ => Err(format!(
                "unknown full-buffer policy {s:?} (block, drop_newest)"
            )),
        }
    }
}

/// How a record travels: as a map of its fields (routable), or as `{"message": "<json line>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordShape {
    #[default]
    Map,
    Message,
}

/// TLS to the receiver.
#[derive(Debug, Clone, Default)]
pub struct TlsClient {
    /// PEM CA certificates to trust (the system has none built in here).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and key (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Name to verify the server certificate against (default: the host part of the address).
    pub server_name: Option<String>,
}

/// A forwarder's settings.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// `host:port`, in priority order: the first is used while it answers.
    pub servers: Vec<String>,
    pub tag: String,
    pub mode: Mode,
    pub record: RecordShape,
    pub tls: Option<TlsClient>,
    pub shared_key: Option<String>,
    pub self_hostname: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A chunk holds at most this many records, or bytes of JSON.
    pub batch_events: usize,
    pub batch_bytes: usize,
    pub connect_timeout: Duration,
    pub ack_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How often an idle connection is checked, and a lower-priority server gives way to the first.
    pub heartbeat_interval: Duration,
    pub memory_bytes: usize,
    /// Where records wait beyond memory and across restarts (none: memory only).
    pub spool_dir: Option<PathBuf>,
    pub disk_bytes: u64,
    pub on_full: OnFull,
    /// How long [`Forwarder::close`] keeps delivering before it spools the rest.
    pub shutdown_timeout: Duration,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            servers: Vec::new(),
            tag: "islet.eve".into(),
            mode: Mode::PackedForward,
            record: RecordShape::Map,
            tls: None,
            shared_key: None,
            self_hostname: hostname(),
            username: None,
            password: None,
            batch_events: 2000,
            batch_bytes: 4 << 20,
            connect_timeout: Duration::from_secs(3),
            ack_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            spool_dir: None,
            disk_bytes: 1 << 30,
            on_full: OnFull::Block,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// This host's name, for the handshake.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "islet".into())
}

/// Upper bounds of the delivery-latency histogram (seconds).
pub const LATENCY_BUCKETS: [f64; 8] = [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 60.0];

/// What a forwarder counted (shared with the metrics endpoint).
#[derive(Debug, Default)]
pub struct ForwardStats {
    pub offered: AtomicU64,
    pub delivered: AtomicU64,
    pub chunks: AtomicU64,
    pub retries: AtomicU64,
    pub connects: AtomicU64,
    pub failovers: AtomicU64,
    pub dropped: AtomicU64,
    pub gaps: AtomicU64,
    pub lost_at_close: AtomicU64,
    pub blocked_ns: AtomicU64,
    pub memory_bytes: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub latency_le: [AtomicU64; LATENCY_BUCKETS.len()],
    pub latency_count: AtomicU64,
    pub latency_sum_us: AtomicU64,
    /// The last delivery error, for operators and tests.
    pub last_error: Mutex<Option<String>>,
}

impl ForwardStats {
    fn latency(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if s <= *b {
                self.latency_le[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Queued records. Every entry takes the next number of one sequence, in memory or on disk,
/// and a spool file is named by it: a restarted sensor sends them in the order they came.
enum Entry {
    Mem {
        id: u64,
        bytes: Vec<u8>,
        at: Instant,
    },
    Disk {
        path: PathBuf,
        len: u64,
        at: Instant,
    },
}

impl Entry {
    fn load(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Entry::Mem { bytes, .. } => Ok(std::borrow::Cow::Borrowed(bytes)),
            Entry::Disk { path, .. } => std::fs::read(path).map(std::borrow::Cow::Owned),
        }
    }
    fn at(&self) -> Instant {
        match self {
            Entry::Mem { at, .. } | Entry::Disk { at, .. } => *at,
        }
    }
}

/// Records dropped under `drop_newest`, not yet announced.
#[derive(Debug, Clone, Copy)]
struct Gap {
    first: u64,
    last: u64,
    prev: [u8; 32],
    resume: [u8; 32],
    ts: [u8; 32],
    ts_len: usize,
}

struct Queue {
    entries: VecDeque<Entry>,
    mem_bytes: usize,
    disk_bytes: u64,
    closing: bool,
    /// Stop sending now (the shutdown timeout passed).
    give_up: bool,
    /// The number the next entry takes.
    next_spool: u64,
    gap: Option<Gap>,
    /// The sender holds an entry it took from the front.
    busy: bool,
}

struct Shared {
    q: Mutex<Queue>,
    data: Condvar,
    space: Condvar,
    stats: Arc<ForwardStats>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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
    ) -> Result<Forwarder, String> {
        if cfg.servers.is_empty() {
            return Err("forward: no server".into());
        }
        for s in &cfg.servers {
            if s.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(format!("forward: {s:?} is not host:port"));
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
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
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
                .map_err(|e| format!("forward: {e}"))?
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

/// Extend the pending gap with the records of `lines` (sealed: each has seq and prev).
fn drop_lines(gap: &mut Option<Gap>, lines: &[u8]) {
    let mut it = lines.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let Some(first) = it.next() else { return };
    let last = it.next_back().unwrap_or(first);
    let (Some((fs, fprev)), Some((ls, _))) = (seq_prev(first), seq_prev(last)) else {
        return;
    };
    let resume: [u8; 32] = Sha256::digest(last).into();
    let mut ts = [0u8; 32];
    let t = crate::chain::event_time(last)
        .map(|(t, _)| t)
        .unwrap_or(b"");
    let ts_len = t.len().min(32);
    ts[..ts_len].copy_from_slice(&t[..ts_len]);
    match gap {
        Some(g) if g.last + 1 == fs => {
            g.last = ls;
            g.resume = resume;
            g.ts = ts;
            g.ts_len = ts_len;
        }
        _ => {
            *gap = Some(Gap {
                first: fs,
                last: ls,
                prev: fprev,
                resume,
                ts,
                ts_len,
            });
        }
    }
}

fn spool_files(dir: &Path) -> Result<Vec<(u64, PathBuf, u64)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut v = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        let Some(id) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".spool"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        v.push((id, p, len));
    }
    v.sort();
    Ok(v)
}

fn write_spool(dir: &Path, id: u64, lines: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{id:016}.spool"));
    let tmp = dir.join(format!("{id:016}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(lines)?;
    f.sync_data()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn tls_config(t: &TlsClient) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &t.ca_file {
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
            let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
            roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
        }
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let cfg = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => {
            let chain: Result<Vec<_>, _> = CertificateDer::pem_file_iter(c)
                .map_err(|e| format!("{}: {e}", c.display()))?
                .collect();
            let chain = chain.map_err(|e| format!("{}: {e}", c.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(k).map_err(|e| format!("{}: {e}", k.display()))?;
            b.with_client_auth_cert(chain, key)
                .map_err(|e| format!("TLS client certificate: {e}"))?
        }
        (None, None) => b.with_no_client_auth(),
        _ => return Err("TLS: a client certificate needs both cert and key".into()),
    };
    Ok(Arc::new(cfg))
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Conn {
    s: Box<dyn Stream>,
    tcp: TcpStream,
    server: usize,
    last_used: Instant,
}

/// The sending thread.
struct Sender {
    cfg: Arc<ForwardConfig>,
    tls: Option<Arc<rustls::ClientConfig>>,
    shared: Arc<Shared>,
    conn: Option<Conn>,
    backoff: Duration,
    /// The last error was reported; report again only once delivery recovers.
    reported: bool,
    frame: Vec<u8>,
    entries: Vec<u8>,
    rbuf: Vec<u8>,
    /// Signs the gap records the sender writes itself.
    key: Option<SigningKey>,
    sensor: String,
    /// The last record the receiver acknowledged (its seq, and the hash the next one links to),
    /// kept in the spool so a restart after a crash can declare what never arrived.
    acked: Option<(u64, [u8; 32])>,
    acked_path: Option<PathBuf>,
}

/// The acknowledged head kept in the spool: `<seq> <hex hash>`.
fn load_acked(p: &Path) -> Option<(u64, [u8; 32])> {
    let t = std::fs::read_to_string(p).ok()?;
    let (seq, h) = t.trim().split_once(' ')?;
    let mut hash = [0u8; 32];
    hex::decode_to_slice(h, &mut hash).ok()?;
    Some((seq.parse().ok()?, hash))
}

#[derive(Debug)]
enum SendError {
    Io(String),
    /// The shutdown timeout passed.
    GiveUp,
}

impl Sender {
    fn new(
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

    fn run(mut self) {
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
        if let Some(p) = &self.acked_path {
            let tmp = p.with_extension("tmp");
            let body = format!("{} {}\n", head.0, hex::encode(head.1));
            if std::fs::write(&tmp, body)
                .and_then(|()| std::fs::rename(&tmp, p))
                .is_err()
            {
                eprintln!(
                    "forward: cannot keep the acknowledged head in {}",
                    p.display()
                );
            }
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
            super::proto::write_str(out, "message");
            let _ = rmp::encode::write_str(out, &String::from_utf8_lossy(line));
        }
    }

    fn send_until_acked(&mut self, chunk: &str) -> Result<(), SendError> {
        loop {
            if self.shared.lock().give_up {
                return Err(SendError::GiveUp);
            }
            match self.try_send(chunk) {
                Ok(()) => {
                    if self.reported {
                        eprintln!("forward: delivering again");
                        self.reported = false;
                    }
                    self.backoff = self.cfg.backoff_initial;
                    return Ok(());
                }
                Err(SendError::GiveUp) => return Err(SendError::GiveUp),
                Err(SendError::Io(e)) => {
                    self.conn = None;
                    if let Ok(mut l) = self.shared.stats.last_error.lock() {
                        *l = Some(e.clone());
                    }
                    self.shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                    if !self.reported {
                        eprintln!(
                            "forward: {e}; retrying (backoff from {:?} to at most {:?})",
                            self.backoff, self.cfg.backoff_max
                        );
                        self.reported = true;
                    }
                    self.sleep_backoff();
                }
            }
        }
    }

    fn sleep_backoff(&mut self) {
        let until = Instant::now() + self.backoff;
        while Instant::now() < until {
            if self.shared.lock().give_up {
                return;
            }
            std::thread::sleep(Duration::from_millis(10).min(self.backoff));
        }
        self.backoff = (self.backoff * 2).min(self.cfg.backoff_max);
    }

    fn try_send(&mut self, chunk: &str) -> Result<(), SendError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect_any()?);
            self.rbuf.clear();
        }
        let Some(c) = self.conn.as_mut() else {
            return Err(SendError::Io("not connected".into()));
        };
        let server = &self.cfg.servers[c.server];
        c.s.write_all(&self.frame)
            .and_then(|()| c.s.flush())
            .map_err(|e| SendError::Io(format!("{server}: send: {e}")))?;
        let reply = read_message(&mut *c.s, &mut self.rbuf, 1 << 16)
            .map_err(|e| SendError::Io(format!("{server}: waiting for ack: {e}")))?;
        c.last_used = Instant::now();
        let acked = reply.as_map().and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_str() == Some("ack"))
                .map(|(_, v)| v.as_str() == Some(chunk))
        });
        match acked {
            Some(true) => Ok(()),
            _ => Err(SendError::Io(format!(
                "{server}: the reply is not the ack of chunk {chunk}"
            ))),
        }
    }

    /// Connect to the first server that answers, in priority order.
    fn connect_any(&mut self) -> Result<Conn, SendError> {
        let mut errs = Vec::new();
        for i in 0..self.cfg.servers.len() {
            match self.connect(i) {
                Ok(c) => {
                    if i > 0 {
                        self.shared.stats.failovers.fetch_add(1, Ordering::Relaxed);
                    }
                    self.shared.stats.connects.fetch_add(1, Ordering::Relaxed);
                    return Ok(c);
                }
                Err(e) => errs.push(e),
            }
        }
        Err(SendError::Io(errs.join("; ")))
    }

    fn connect(&self, i: usize) -> Result<Conn, String> {
        let server = &self.cfg.servers[i];
        let addr = server
            .to_socket_addrs()
            .map_err(|e| format!("{server}: {e}"))?
            .next()
            .ok_or_else(|| format!("{server}: no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, self.cfg.connect_timeout)
            .map_err(|e| format!("{server}: connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let _ = tcp.set_read_timeout(Some(self.cfg.ack_timeout));
        let _ = tcp.set_write_timeout(Some(self.cfg.ack_timeout));
        let handle = tcp.try_clone().map_err(|e| format!("{server}: {e}"))?;
        let mut s: Box<dyn Stream> = match &self.tls {
            Some(t) => {
                let host = self
                    .cfg
                    .tls
                    .as_ref()
                    .and_then(|t| t.server_name.clone())
                    .unwrap_or_else(|| {
                        server
                            .rsplit_once(':')
                            .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
                            .unwrap_or_default()
                    });
                let name = rustls_pki_types::ServerName::try_from(host)
                    .map_err(|e| format!("{server}: TLS name: {e}"))?;
                let c = rustls::ClientConnection::new(t.clone(), name)
                    .map_err(|e| format!("{server}: TLS: {e}"))?;
                Box::new(rustls::StreamOwned::new(c, tcp))
            }
            None => Box::new(tcp),
        };
        if let Some(key) = &self.cfg.shared_key {
            self.handshake(&mut *s, server, key)?;
        }
        Ok(Conn {
            s,
            tcp: handle,
            server: i,
            last_used: Instant::now(),
        })
    }

    /// HELO → PING → PONG.
    fn handshake(&self, s: &mut dyn Stream, server: &str, key: &str) -> Result<(), String> {
        let mut rbuf = Vec::new();
        let helo =
            read_message(s, &mut rbuf, 1 << 16).map_err(|e| format!("{server}: HELO: {e}"))?;
        let a = helo.as_array().map(Vec::as_slice).unwrap_or(&[]);
        if a.len() != 2 || a[0].as_str() != Some("HELO") {
            return Err(format!("{server}: expected HELO, got {helo}"));
        }
        let opt = |k: &str| -> Vec<u8> {
            a[1].as_map()
                .and_then(|m| m.iter().find(|(x, _)| x.as_str() == Some(k)))
                .and_then(|(_, v)| match v {
                    rmpv::Value::Binary(b) => Some(b.clone()),
                    rmpv::Value::String(s) => Some(s.as_bytes().to_vec()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let (nonce, auth) = (opt("nonce"), opt("auth"));
        let mut salt = [0u8; 16];
        let _ = getrandom::getrandom(&mut salt);
        let salt = hex::encode(salt);
        let host = &self.cfg.self_hostname;
        let mut ping = Vec::new();
        ping.push(0x96);
        super::proto::write_str(&mut ping, "PING");
        super::proto::write_str(&mut ping, host);
        super::proto::write_str(&mut ping, &salt);
        super::proto::write_str(
            &mut ping,
            &shared_key_digest(salt.as_bytes(), host, &nonce, key),
        );
        let (user, pw) = match (&self.cfg.username, &self.cfg.password) {
            (Some(u), Some(p)) if !auth.is_empty() => (u.clone(), password_digest(&auth, u, p)),
            _ => (String::new(), String::new()),
        };
        super::proto::write_str(&mut ping, &user);
        super::proto::write_str(&mut ping, &pw);
        s.write_all(&ping)
            .and_then(|()| s.flush())
            .map_err(|e| format!("{server}: PING: {e}"))?;
        let pong =
            read_message(s, &mut rbuf, 1 << 16).map_err(|e| format!("{server}: PONG: {e}"))?;
        let p = pong.as_array().map(Vec::as_slice).unwrap_or(&[]);
        if p.len() != 5 || p[0].as_str() != Some("PONG") {
            return Err(format!("{server}: expected PONG, got {pong}"));
        }
        if p[1].as_bool() != Some(true) {
            return Err(format!(
                "{server}: the server refused the handshake: {}",
                p[2].as_str().unwrap_or("no reason given")
            ));
        }
        let server_host = p[3].as_str().unwrap_or("");
        let want = shared_key_digest(salt.as_bytes(), server_host, &nonce, key);
        if p[4].as_str() != Some(want.as_str()) {
            return Err(format!(
                "{server}: the server does not know the shared key (its PONG digest is wrong): shared_key mismatch"
            ));
        }
        Ok(())
    }

    /// Idle: notice a closed connection before the next send, and fail back to the first server.
    fn heartbeat(&mut self) {
        let Some(c) = &self.conn else { return };
        let mut probe = [0u8; 1];
        let _ = c.tcp.set_nonblocking(true);
        let dead = match c.tcp.peek(&mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        let _ = c.tcp.set_nonblocking(false);
        let idle_on_backup = c.server > 0 && c.last_used.elapsed() >= self.cfg.heartbeat_interval;
        if dead {
            self.conn = None;
        } else if idle_on_backup && let Ok(first) = self.connect(0) {
            self.conn = Some(first);
        }
    }
}

fn chunk_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Read one complete MessagePack value (at most `max` bytes) from a stream.
fn read_message(s: &mut dyn Stream, buf: &mut Vec<u8>, max: usize) -> std::io::Result<rmpv::Value> {
    let mut tmp = [0u8; 4096];
    loop {
        match value_len(buf, 16) {
            Ok(Some(n)) => {
                let v = rmpv::decode::read_value(&mut &buf[..n])
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                buf.drain(..n);
                return Ok(v);
            }
            Ok(None) if buf.len() > max => {
                return Err(std::io::Error::other("reply too large"));
            }
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::other(e)),
        }
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}
