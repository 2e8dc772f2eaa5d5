//! A forwarder's settings ([`ForwardConfig`], its TLS and full-buffer policy) and what it
//! counts ([`ForwardStats`]).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::forward::proto::Mode;

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
    pub fn parse(s: &str) -> Result<OnFull, crate::ParseError> {
        match s {
            "block" => Ok(OnFull::Block),
            "drop_newest" | "drop-newest" => Ok(OnFull::DropNewest),
            _ => Err(crate::ParseError::unknown(
                "full-buffer policy",
                s,
                "block, drop_newest",
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
    pub(super) fn latency(&self, d: Duration) {
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
