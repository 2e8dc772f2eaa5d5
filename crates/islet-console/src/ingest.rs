//! Ingest: records from Forward connections and EVE files become store batches, committed by
//! one writer thread. A Forward chunk is acknowledged only after the batch holding its records
//! is committed (the handler waits for the commit), so delivery stays at-least-once end to
//! end; duplicates from resent chunks are dropped by the store on (sensor, `islet.seq`,
//! digest). Each sensor's chain is checked as records arrive: a wrong `prev`, a gap in the
//! sequence numbers or a checkpoint or gap record whose signature fails becomes an alert of its
//! own.
//!
//! Records join a sensor's chain only in order. A record whose sequence number the chain has
//! passed is either a resend (the same record is kept: dropped as a duplicate) or not the
//! sensor's (a replay with other content, a rewind, a forgery): it is refused, not stored, and
//! alerted. A new chain (seq 1 from genesis) from a sensor the console knows is stored but
//! never reads `ok`: a sensor with its saved head continues its chain across restarts, so a new
//! one is a sensor that lost its state, or someone else. A chain's status only gets worse.

mod chain;

use self::chain::{BatchSeen, Chain, ChainCtx, chain};
use crate::identify::Identify;
use crossbeam_channel::{Receiver, Sender, bounded};
use ed25519_dalek::VerifyingKey;
use islet_event::record::EveRecord;
use islet_sink::chain::SigError;
use islet_store::{EvidenceStore as _, IngestBatch, IngestReport, Record, SensorHead, SqliteStore};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most records committed in one transaction (batches from several connections are merged
/// up to this).
pub const MAX_BATCH_RECORDS: usize = 20_000;
/// Longest record accepted (bytes of JSON).
pub const MAX_RECORD: usize = 4 << 20;

/// Why records were not committed (nothing of their batch is acknowledged).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestError {
    /// The writer has stopped (the console is shutting down).
    Stopped,
    /// The store could not say whether a record is kept, or could not commit the batch.
    Store(String),
    /// The writer thread could not be started.
    Start(String),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Stopped => f.write_str("ingest stopped"),
            IngestError::Store(e) => write!(f, "store: {e}"),
            IngestError::Start(e) => write!(f, "starting the ingest writer: {e}"),
        }
    }
}

impl std::error::Error for IngestError {}

impl From<IngestError> for String {
    fn from(e: IngestError) -> String {
        e.to_string()
    }
}

/// One record as received: its sensor and its canonical JSON line.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub sensor: String,
    pub line: Vec<u8>,
}

struct Job {
    /// Decoded in the submitting thread; chain-checked in the writer.
    records: Vec<Decoded>,
    reply: Sender<Result<IngestReport, IngestError>>,
}

/// What ingest counted (the console's metrics).
#[derive(Debug, Default)]
pub struct IngestStats {
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub malformed: AtomicU64,
    pub commits: AtomicU64,
    pub failed_commits: AtomicU64,
    pub chain_alerts: AtomicU64,
    /// Records refused: behind their sensor's chain head and not a resend of a kept record.
    pub refused: AtomicU64,
}

/// The writer: a thread that owns the store's write connection.
pub struct Ingest {
    submitter: Submitter,
    closing: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<IngestStats>,
}

/// A handle that commits records through the writer (one per connection or file).
#[derive(Clone)]
pub struct Submitter {
    tx: Sender<Job>,
    stats: Arc<IngestStats>,
    cfg: Arc<IngestConfig>,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter").finish_non_exhaustive()
    }
}

impl Submitter {
    /// Commit these records; returns once they are in the store (or why not).
    pub fn submit(&self, lines: Vec<Incoming>) -> Result<IngestReport, IngestError> {
        let (reply, wait) = bounded(1);
        self.stats
            .received
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        // Parsing, hashing and naming the ends happen here, in the connection's (or file's)
        // thread; the writer only checks chains and writes.
        let mut records: Vec<Decoded> = Vec::with_capacity(lines.len());
        records.extend(
            lines
                .into_iter()
                .filter_map(|l| decode(l, &self.cfg, &self.stats)),
        );
        self.tx
            .send(Job { records, reply })
            .map_err(|_| IngestError::Stopped)?;
        wait.recv().map_err(|_| IngestError::Stopped)?
    }
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

/// Shared with the API (for time) and the writer.
#[derive(Debug)]
pub struct IngestConfig {
    pub case_window_ms: i64,
    pub identify: Identify,
    /// Sensors' public keys: their checkpoints must verify with them.
    pub keys: HashMap<String, VerifyingKey>,
    /// The store's clock (wall time, read here at the edge, not in the store).
    pub clock: fn() -> i64,
}

/// Wall-clock Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Ingest {
    pub fn start(mut store: SqliteStore, cfg: IngestConfig) -> Result<Ingest, IngestError> {
        let cfg = Arc::new(cfg);
        let (tx, rx) = bounded::<Job>(256);
        let stats = Arc::new(IngestStats::default());
        let mut chains: HashMap<String, Chain> = HashMap::new();
        let heads = store
            .sensor_heads()
            .map_err(|e| IngestError::Store(e.to_string()))?;
        for h in heads {
            let mut prev = [0u8; 32];
            if hex::decode_to_slice(&h.prev, &mut prev).is_ok() && h.next_seq > 0 {
                chains.insert(
                    h.sensor.clone(),
                    Chain {
                        next_seq: h.next_seq,
                        prev,
                        status: h.chain,
                        detail: h.detail,
                    },
                );
            }
        }
        let st = stats.clone();
        let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cl = closing.clone();
        let wcfg = cfg.clone();
        let thread = std::thread::Builder::new()
            .name("console-ingest".into())
            .spawn(move || writer(&mut store, &rx, &wcfg, &mut chains, &st, &cl))
            .map_err(|e| IngestError::Start(e.to_string()))?;
        Ok(Ingest {
            submitter: Submitter {
                tx,
                stats: stats.clone(),
                cfg,
            },
            closing,
            thread: Some(thread),
            stats,
        })
    }

    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// Commit these records; returns once they are in the store (or why not).
    pub fn submit(&self, lines: Vec<Incoming>) -> Result<IngestReport, IngestError> {
        self.submitter.submit(lines)
    }

    /// Finish what is queued and stop the writer; later submissions fail (nothing acked).
    pub fn stop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop();
    }
}

fn writer(
    store: &mut SqliteStore,
    rx: &Receiver<Job>,
    cfg: &IngestConfig,
    chains: &mut HashMap<String, Chain>,
    stats: &IngestStats,
    closing: &std::sync::atomic::AtomicBool,
) {
    // Freeing a batch's records happens on another thread, which hands the emptied vector
    // back: a fresh one of many megabytes per batch costs the writer its page faults.
    let (free, freed) = crossbeam_channel::bounded::<Vec<Record>>(4);
    let (emptied, reuse) = crossbeam_channel::bounded::<Vec<Record>>(2);
    let _freer = std::thread::Builder::new()
        .name("console-free".into())
        .spawn(move || {
            while let Ok(mut v) = freed.recv() {
                v.clear();
                let _ = emptied.try_send(v);
            }
        });
    loop {
        let first = match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(j) => j,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if closing.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        };
        let mut jobs = vec![first];
        let mut n = jobs[0].records.len();
        while n < MAX_BATCH_RECORDS {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.records.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let saved = chains.clone();
        let now = (cfg.clock)();
        let mut records = reuse.try_recv().unwrap_or_default();
        records.reserve(n);
        let mut batch = IngestBatch {
            records,
            heads: Vec::new(),
            case_window_ms: cfg.case_window_ms,
            now_ms: now,
        };
        let mut touched: Vec<String> = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        let mut seen = BatchSeen::default();
        let mut judged: Result<(), IngestError> = Ok(());
        for j in jobs {
            for r in j.records {
                if judged.is_ok() {
                    let kept = |s: &str, seq: u64, d: &[u8; 32]| store.is_kept(s, seq, d);
                    let mut ctx = ChainCtx {
                        chains,
                        out: &mut batch.records,
                        touched: &mut touched,
                        stats,
                        seen: &mut seen,
                        kept: &kept,
                    };
                    judged = chain(r, &mut ctx);
                }
            }
            replies.push(j.reply);
        }
        if let Err(e) = judged {
            // A record could not be judged (the store could not say whether it is kept):
            // nothing of the batch is committed or acknowledged; the sensors resend it.
            eprintln!("islet serve: ingest: chain check failed (nothing acknowledged): {e}");
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
            *chains = saved;
            let _ = free.send(std::mem::take(&mut batch.records));
            for r in replies {
                let _ = r.send(Err(e.clone()));
            }
            continue;
        }
        touched.sort();
        touched.dedup();
        for s in &touched {
            if let Some(c) = chains.get(s) {
                batch.heads.push(SensorHead {
                    sensor: s.clone(),
                    next_seq: c.next_seq,
                    prev: hex::encode(c.prev),
                    chain: c.status.clone(),
                    detail: c.detail.clone(),
                });
            }
        }
        let result = store
            .ingest(&batch)
            .map_err(|e| IngestError::Store(e.to_string()));
        // Freeing a batch's parsed records is a tenth of the writer's time: another thread
        // does it.
        let _ = free.send(std::mem::take(&mut batch.records));
        match &result {
            Ok(r) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.stored.fetch_add(r.stored, Ordering::Relaxed);
                stats.duplicates.fetch_add(r.duplicates, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("islet serve: ingest: commit failed (nothing acknowledged): {e}");
                stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                *chains = saved;
            }
        }
        for r in replies {
            let _ = r.send(result.clone());
        }
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// A decoded record and, for a checkpoint or gap record of a sensor whose key is known, whether
/// its signature verifies over the line as received.
struct Decoded {
    rec: Record,
    sig: Option<Result<(), SigError>>,
}

/// Decode one line into a store record: decoded once into its typed form, hashed, timed,
/// both ends named; a signed record's signature checked (here, in the submitting thread, where
/// the line's bytes are). The line itself is kept as the sealed bytes. None (and counted) when
/// it is not a JSON object or over the bound.
fn decode(inc: Incoming, cfg: &IngestConfig, stats: &IngestStats) -> Option<Decoded> {
    let bad = || {
        stats.malformed.fetch_add(1, Ordering::Relaxed);
        None
    };
    if inc.line.len() > MAX_RECORD {
        return bad();
    }
    let Ok(eve) = EveRecord::decode(&inc.line) else {
        return bad();
    };
    let d = digest(&inc.line);
    let ts_ms = eve.ts_ms().unwrap_or_else(cfg.clock);
    let ts_ns = ts_ms.saturating_mul(1_000_000);
    let (src, dest) = match (eve.src_ip.as_deref(), eve.dest_ip.as_deref()) {
        (Some(s), Some(t)) => {
            let start_ns = eve
                .flow
                .as_ref()
                .and_then(|f| f.start.as_deref())
                .and_then(islet_event::time::parse_iso_ms)
                .map_or(ts_ns, |m| m.saturating_mul(1_000_000));
            // The top-level `policy` member, as the console has always read it (see
            // `islet_store::triage`).
            let pol = eve.policy.as_ref();
            let id = |f: fn(&islet_event::record::Policy) -> &Option<String>| {
                pol.and_then(|p| f(p).as_deref())
            };
            (
                Some(cfg.identify.endpoint(s, start_ns, id(|p| &p.src_identity))),
                Some(cfg.identify.endpoint(t, start_ns, id(|p| &p.dest_identity))),
            )
        }
        _ => (None, None),
    };
    let flow = matches!(eve.event_type.as_str(), "flow" | "netflow")
        .then(|| islet_store::FlowFacts::from_record(&eve, ts_ms));
    let sig = match eve.event_type.as_str() {
        "checkpoint" | "gap" => cfg
            .keys
            .get(&inc.sensor)
            .map(|k| islet_sink::chain::verify_record(&inc.line, k)),
        _ => None,
    };
    Some(Decoded {
        rec: Record {
            sensor: inc.sensor,
            seq: eve.seq(),
            digest: d,
            line: inc.line,
            eve,
            ts_ms,
            src,
            dest,
            flow,
        },
        sig,
    })
}

/// The canonical line of a Forward record: `{"message": "<line>"}` carries it as is; a map
/// is rebuilt as the sensor wrote it.
pub fn canonical(
    record: &rmpv::Value,
    out: &mut Vec<u8>,
) -> Result<(), islet_sink::msgpack::CodecError> {
    if let rmpv::Value::Map(m) = record
        && m.len() == 1
        && m[0].0.as_str() == Some("message")
        && let Some(s) = m[0].1.as_str()
    {
        out.extend_from_slice(s.as_bytes());
        return Ok(());
    }
    islet_sink::msgpack::to_json(record, out)
}

/// The Forward handler: decode each event, commit, and only then say yes (the ack follows).
pub fn forward_handler(sub: Submitter) -> islet_sink::forward::server::Handler {
    let stats = sub.stats.clone();
    Arc::new(move |b: &islet_sink::forward::Batch| {
        let mut lines = Vec::with_capacity(b.events.len());
        for e in &b.events {
            let mut line = Vec::with_capacity(512);
            if canonical(&e.record, &mut line).is_err() {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let sensor = match &b.client {
                Some(c) => c.clone(),
                None => e.tag.clone(),
            };
            lines.push(Incoming { sensor, line });
        }
        sub.submit(lines).is_ok()
    })
}
