//! Ingest: records from Forward connections and EVE files become store batches, committed by
//! one writer thread. A Forward chunk is acknowledged only after the batch holding its records
//! is committed (the handler waits for the commit), so delivery stays at-least-once end to
//! end; duplicates from resent chunks are dropped by the store on (sensor, `islet.seq`,
//! digest). Each sensor's chain is checked as records arrive: a wrong `prev`, a gap in the
//! sequence numbers or a checkpoint whose signature fails becomes an alert of its own.

use crate::identify::Identify;
use base64::Engine as _;
use crossbeam_channel::{Receiver, Sender, bounded};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use islet_store::{IngestBatch, IngestReport, Record, SensorHead, SqliteStore, Store as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most records committed in one transaction (batches from several connections are merged
/// up to this).
pub const MAX_BATCH_RECORDS: usize = 20_000;
/// Longest record accepted (bytes of JSON).
pub const MAX_RECORD: usize = 4 << 20;

/// One record as received: its sensor and its canonical JSON line.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub sensor: String,
    pub line: Vec<u8>,
}

struct Job {
    /// Decoded in the submitting thread; chain-checked in the writer.
    records: Vec<Record>,
    reply: Sender<Result<IngestReport, String>>,
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
    pub fn submit(&self, lines: Vec<Incoming>) -> Result<IngestReport, String> {
        let (reply, wait) = bounded(1);
        self.stats
            .received
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        // Parsing, hashing and naming the ends happen here, in the connection's (or file's)
        // thread; the writer only checks chains and writes.
        let records: Vec<Record> = lines
            .into_iter()
            .filter_map(|l| decode(l, &self.cfg, &self.stats))
            .collect();
        self.tx
            .send(Job { records, reply })
            .map_err(|_| "ingest stopped".to_string())?;
        wait.recv().map_err(|_| "ingest stopped".to_string())?
    }
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

/// Per-sensor chain state.
#[derive(Debug, Clone)]
struct Chain {
    next_seq: u64,
    prev: [u8; 32],
    status: String,
    detail: String,
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
    pub fn start(mut store: SqliteStore, cfg: IngestConfig) -> Result<Ingest, String> {
        let cfg = Arc::new(cfg);
        let (tx, rx) = bounded::<Job>(256);
        let stats = Arc::new(IngestStats::default());
        let mut chains: HashMap<String, Chain> = HashMap::new();
        for h in store.sensor_heads().map_err(|e| e.to_string())? {
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
            .map_err(|e| e.to_string())?;
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
    pub fn submit(&self, lines: Vec<Incoming>) -> Result<IngestReport, String> {
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
    let (free, freed) = crossbeam_channel::bounded::<Vec<Record>>(4);
    let _freer = std::thread::Builder::new()
        .name("console-free".into())
        .spawn(move || while freed.recv().is_ok() {});
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
        let mut batch = IngestBatch {
            records: Vec::with_capacity(n),
            heads: Vec::new(),
            case_window_ms: cfg.case_window_ms,
            now_ms: now,
        };
        let mut touched: Vec<String> = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        for j in jobs {
            for r in j.records {
                chain(r, cfg, chains, &mut batch.records, &mut touched, stats);
            }
            replies.push(j.reply);
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
        let result = store.ingest(&batch).map_err(|e| e.to_string());
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

/// Decode one line into a store record: parsed, hashed, timed, both ends named. None (and
/// counted) when it is not a JSON object or over the bound.
fn decode(inc: Incoming, cfg: &IngestConfig, stats: &IngestStats) -> Option<Record> {
    let bad = || {
        stats.malformed.fetch_add(1, Ordering::Relaxed);
        None
    };
    if inc.line.len() > MAX_RECORD {
        return bad();
    }
    let Ok(value) = serde_json::from_slice::<Value>(&inc.line) else {
        return bad();
    };
    if !value.is_object() {
        return bad();
    }
    let d = digest(&inc.line);
    let ts_ms = value["timestamp"]
        .as_str()
        .and_then(islet_store::triage::parse_ts)
        .unwrap_or_else(cfg.clock);
    let seq = value["islet"]["seq"].as_u64();
    let ts_ns = ts_ms.saturating_mul(1_000_000);
    let (src, dest) = match (value["src_ip"].as_str(), value["dest_ip"].as_str()) {
        (Some(s), Some(t)) => {
            let start_ns = value["flow"]["start"]
                .as_str()
                .and_then(islet_store::triage::parse_ts)
                .map_or(ts_ns, |m| m.saturating_mul(1_000_000));
            let pol = &value["policy"];
            (
                Some(
                    cfg.identify
                        .endpoint(s, start_ns, pol["src_identity"].as_str()),
                ),
                Some(
                    cfg.identify
                        .endpoint(t, start_ns, pol["dest_identity"].as_str()),
                ),
            )
        }
        _ => (None, None),
    };
    let flow = matches!(value["event_type"].as_str(), Some("flow" | "netflow"))
        .then(|| islet_store::FlowFacts::from_record(&value, ts_ms));
    Some(Record {
        sensor: inc.sensor,
        seq,
        digest: d,
        value,
        ts_ms,
        src,
        dest,
        flow,
    })
}

/// Check a record against its sensor's chain and queue it for the store (after the alert
/// record of a break, if there is one).
fn chain(
    r: Record,
    cfg: &IngestConfig,
    chains: &mut HashMap<String, Chain>,
    out: &mut Vec<Record>,
    touched: &mut Vec<String>,
    stats: &IngestStats,
) {
    if let Some(seq) = r.seq {
        if touched.last() != Some(&r.sensor) {
            touched.push(r.sensor.clone());
        }
        if let Some(alert) = check_chain(&r.sensor, &r.value, seq, &r.digest, cfg, chains) {
            stats.chain_alerts.fetch_add(1, Ordering::Relaxed);
            let line = alert.to_string();
            out.push(Record {
                sensor: r.sensor.clone(),
                seq: None,
                digest: digest(line.as_bytes()),
                value: alert,
                ts_ms: r.ts_ms,
                src: None,
                dest: None,
                flow: None,
            });
        }
    }
    out.push(r);
}

fn chain_alert(sensor: &str, seq: u64, ts: &Value, detection: &str, sid: u32, text: &str) -> Value {
    json!({
        "timestamp": ts,
        "event_type": "alert",
        "alert": {
            "action": "allowed", "gid": 1, "signature_id": sid, "rev": 1,
            "signature": format!("islet console: evidence chain of sensor {sensor}: {text}"),
            "category": "Evidence integrity",
            "severity": 1,
            "metadata": {"detection": [detection], "sensor": [sensor], "seq": [seq.to_string()]}
        },
        "islet": {"console": {"sensor": sensor, "seq": seq}}
    })
}

fn check_chain(
    s: &str,
    v: &Value,
    seq: u64,
    d: &[u8; 32],
    cfg: &IngestConfig,
    chains: &mut HashMap<String, Chain>,
) -> Option<Value> {
    let mut prev = [0u8; 32];
    let has_prev = v["islet"]["prev"]
        .as_str()
        .is_some_and(|p| hex::decode_to_slice(p, &mut prev).is_ok());
    let et = v["event_type"].as_str().unwrap_or("");
    let ts = &v["timestamp"];
    let fresh_chain = seq == 1 && prev == islet_sink::chain::GENESIS;
    let mut alert = None;
    let c = chains.entry(s.to_string()).or_insert_with(|| Chain {
        next_seq: seq,
        prev,
        status: "ok".into(),
        detail: String::new(),
    });
    if fresh_chain && c.next_seq != 1 {
        // A restarted sensor begins a new chain: not a break.
        c.next_seq = 1;
        c.prev = prev;
        c.status = "ok".into();
        c.detail = "new chain".into();
    }
    if seq < c.next_seq {
        // A resent record (the store drops it) or a replay: nothing to advance.
        return None;
    }
    if et == "gap" {
        let g = &v["gap"];
        c.status = "gap".into();
        c.detail = format!(
            "sensor declared records {}..{} lost ({})",
            g["first_seq"].as_u64().unwrap_or(0),
            g["last_seq"].as_u64().unwrap_or(0),
            g["reason"].as_str().unwrap_or("")
        );
        alert = Some(chain_alert(s, seq, ts, "chain_gap", 9_400_002, &c.detail));
    } else if seq > c.next_seq {
        c.status = "gap".into();
        c.detail = format!("records {}..{} never arrived", c.next_seq, seq - 1);
        alert = Some(chain_alert(s, seq, ts, "chain_gap", 9_400_002, &c.detail));
    } else if has_prev && prev != c.prev {
        c.status = "broken".into();
        c.detail = format!(
            "record {seq} does not follow record {} (prev differs)",
            seq - 1
        );
        alert = Some(chain_alert(
            s,
            seq,
            ts,
            "chain_broken",
            9_400_001,
            &c.detail,
        ));
    }
    if et == "checkpoint"
        && let Some(key) = cfg.keys.get(s)
        && let Err(why) = checkpoint_ok(v, key)
    {
        c.status = "broken".into();
        c.detail = format!("checkpoint {seq}: {why}");
        alert = Some(chain_alert(
            s,
            seq,
            ts,
            "chain_broken",
            9_400_001,
            &c.detail,
        ));
    }
    c.next_seq = seq + 1;
    c.prev = *d;
    alert
}

fn checkpoint_ok(v: &Value, key: &VerifyingKey) -> Result<(), String> {
    let c = &v["checkpoint"];
    let sig = c["signature"].as_str().ok_or("not signed")?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or("signature is not 64 bytes")?;
    let msg = islet_sink::chain::checkpoint_message(
        c["sensor"].as_str().unwrap_or(""),
        v["islet"]["seq"].as_u64().unwrap_or(0),
        v["islet"]["prev"].as_str().unwrap_or(""),
        c["first_seq"].as_u64().unwrap_or(0),
        c["last_seq"].as_u64().unwrap_or(0),
        c["final"].as_bool().unwrap_or(false),
        v["timestamp"].as_str().unwrap_or(""),
    );
    key.verify(msg.as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| "signature does not verify with the sensor's key".to_string())
}

/// The canonical line of a Forward record: `{"message": "<line>"}` carries it as is; a map
/// is rebuilt as the sensor wrote it.
pub fn canonical(record: &rmpv::Value, out: &mut Vec<u8>) -> Result<(), String> {
    if let rmpv::Value::Map(m) = record
        && m.len() == 1
        && m[0].0.as_str() == Some("message")
        && let Some(s) = m[0].1.as_str()
    {
        out.extend_from_slice(s.as_bytes());
        return Ok(());
    }
    islet_sink::msgpack::to_json(record, out).map_err(|e| e.to_string())
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
