//! The receiving side of the Forward protocol: a sans-IO codec ([`ServerCodec`]) and a blocking
//! TCP/TLS receiver around it ([`Receiver`]), reused by the console and `islet log receive`.
//!
//! The codec accepts all four modes (Message, Forward, PackedForward with entries as str or bin,
//! CompressedPackedForward with one or several gzip members, `compressed: "text"`), integer
//! times as well as EventTime, and answers `{"ack": chunk}` echoing the chunk value byte for
//! byte once the handler has taken the events. With a shared key the connection must complete
//! the HELO/PING/PONG handshake first. A malformed frame, a failed handshake or a message over
//! the configured bounds ends that connection with a named reason; other connections and the
//! events already acknowledged are unaffected.
//!
//! Everything a peer can make the receiver hold is bounded (issue 18): connections in total and
//! per peer address ([`gate`]), the time a handshake, an idle connection and an unfinished frame
//! may take, and memory — each connection's buffer, its inflated entries and its decoded events
//! are charged to a budget per connection and one for the whole receiver before they are
//! allocated ([`budget`]). Frames are sized by a resumable walk ([`super::proto::Sizer`]), so a
//! frame trickling in costs work linear in its bytes. Overload refuses new connections and
//! counts them ([`ServerStats`]); it never grows.
//!
//! The receiver is a thread per connection, each with a small stack and a 16 KiB read buffer on
//! it; an idle connection holds a few tens of KiB. At the default cap of 1,024 connections that
//! is tens of MiB, and it keeps the TLS and blocking code of the handshake simple (an event
//! loop would save that memory, not make the bounds hold better).

pub mod budget;
mod codec;
mod decode;
pub mod gate;
mod receiver;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmpv::Value;

pub use codec::ServerCodec;
pub use receiver::Receiver;

/// What a receiver accepts, and the bounds it keeps. The defaults hold a receiver under attack
/// under 256 MiB: `max_memory` (64 MiB; up to half as much again while a buffer is being
/// reallocated) plus about 110 KiB per open connection (a thread's stack pages and its
/// allocator heap; 1,024 connections at most).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Require the shared-key handshake with this key.
    pub shared_key: Option<String>,
    pub self_hostname: String,
    /// With users, PING must also carry one of these user/password pairs.
    pub users: Vec<(String, String)>,
    /// Largest message on the wire (bytes). Default 32 MiB.
    pub max_message: usize,
    /// Largest decompressed entry stream of one message (bytes). Default 64 MiB.
    pub max_decompressed: usize,
    /// Most entries in one message. Default 65,536 (islet's client sends 2,000).
    pub max_entries: usize,
    /// Nesting bound for MessagePack values. Default 32.
    pub max_depth: usize,
    /// Connections open at once; more are refused (or take the place of a silent one, see
    /// `evict_after`). Default 1,024; lowered to what the open-file limit allows.
    pub max_connections: usize,
    /// Connections open at once from one peer address. Default 64.
    pub max_connections_per_peer: usize,
    /// At a connection limit, a connection that has not completed a message (its handshake,
    /// or its first message without a key) for this long is closed to make room for the new
    /// one. `None`: the new one is refused. Default 200 ms.
    pub evict_after: Option<Duration>,
    /// Time from accept to a completed handshake (TLS, then HELO/PING/PONG). Default 10 s.
    pub handshake_timeout: Duration,
    /// Time a connection may stay open between messages. Default 300 s.
    pub idle_timeout: Duration,
    /// Time from a frame's first byte to its last. Default 60 s.
    pub frame_timeout: Duration,
    /// Time a reply (PONG, ack) may take to be written. Default 10 s.
    pub write_timeout: Duration,
    /// Memory one connection may hold: its receive buffer, inflated entries and the estimated
    /// size of its decoded events. Default 48 MiB (a 32 MiB frame of ordinary records fits).
    pub max_connection_memory: usize,
    /// Memory all connections together may hold, counted as for one. Default 64 MiB.
    pub max_memory: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            shared_key: None,
            self_hostname: "islet".into(),
            users: Vec::new(),
            max_message: 32 << 20,
            max_decompressed: 64 << 20,
            max_entries: 1 << 16,
            max_depth: 32,
            max_connections: 1024,
            max_connections_per_peer: 64,
            evict_after: Some(Duration::from_millis(200)),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_connection_memory: 48 << 20,
            max_memory: 64 << 20,
        }
    }
}

/// One event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub tag: String,
    pub time_ns: u64,
    pub record: Value,
}

/// The events of one message, and the chunk to acknowledge once they are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub events: Vec<Event>,
    pub chunk: Option<Value>,
    /// The client's hostname from its PING (connections with a shared key only): which
    /// sensor sent the batch.
    pub client: Option<String>,
}

/// Which deadline a connection missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The TLS handshake and HELO/PING/PONG did not finish within `handshake_timeout`.
    Handshake,
    /// No message within `idle_timeout`.
    Idle,
    /// A frame did not complete within `frame_timeout`.
    Frame,
}

/// Why a connection was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Malformed(String),
    Oversized(String),
    Handshake(String),
    /// The handler could not keep the events (nothing acknowledged).
    NotKept,
    /// Taking the message would pass the memory budget of the connection or of the receiver.
    Budget(String),
    /// A deadline passed.
    Timeout(Deadline),
}

impl Refusal {
    /// The counter this refusal is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::Oversized(_) => "oversized",
            Refusal::Handshake(_) => "handshake",
            Refusal::NotKept => "not_kept",
            Refusal::Budget(_) => "budget",
            Refusal::Timeout(Deadline::Handshake) => "timeout_handshake",
            Refusal::Timeout(Deadline::Idle) => "timeout_idle",
            Refusal::Timeout(Deadline::Frame) => "timeout_frame",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(m) => write!(f, "malformed message: {m}"),
            Refusal::Oversized(m) => write!(f, "message too large: {m}"),
            Refusal::Handshake(m) => write!(f, "handshake failed: {m}"),
            Refusal::NotKept => f.write_str("events could not be kept"),
            Refusal::Budget(m) => write!(f, "over the memory budget: {m}"),
            Refusal::Timeout(Deadline::Handshake) => f.write_str("handshake timed out"),
            Refusal::Timeout(Deadline::Idle) => f.write_str("idle too long"),
            Refusal::Timeout(Deadline::Frame) => f.write_str("frame not completed in time"),
        }
    }
}

/// What a receiver counted.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections admitted.
    pub connections: AtomicU64,
    pub events: AtomicU64,
    pub acks: AtomicU64,
    /// Connections closed by the server, by [`Refusal::reason`].
    pub closed: Mutex<BTreeMap<&'static str, u64>>,
    /// Admission: open connections, refusals at the caps, evictions.
    pub admission: Arc<gate::GateStats>,
    /// Bytes held against the budget now (gauge), and the most ever held.
    pub memory_bytes: AtomicU64,
    pub memory_peak_bytes: AtomicU64,
    /// Frame header bytes read by the sizer, and the parse attempts made: both grow linearly
    /// with the bytes received however they are split.
    pub bytes_scanned: AtomicU64,
    pub parse_attempts: AtomicU64,
}

impl ServerStats {
    pub fn closed(&self, reason: &str) -> u64 {
        self.closed
            .lock()
            .map(|m| m.get(reason).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub(crate) fn count_closed(&self, reason: &'static str) {
        if let Ok(mut m) = self.closed.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// These figures in the Prometheus text format, each series named `{prefix}_…` (the console
    /// uses `islet_forward_receiver`).
    pub fn render(&self, prefix: &str, o: &mut String) {
        use std::fmt::Write as _;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let a = &self.admission;
        for (name, kind, help, v) in [
            (
                "connections_total",
                "counter",
                "Connections admitted.",
                g(&self.connections),
            ),
            (
                "connections_open",
                "gauge",
                "Connections open now.",
                g(&a.open),
            ),
            (
                "events_total",
                "counter",
                "Events handed to the handler and kept.",
                g(&self.events),
            ),
            ("acks_total", "counter", "Acks sent.", g(&self.acks)),
            (
                "evicted_total",
                "counter",
                "Silent connections closed to make room at a limit.",
                g(&a.evicted),
            ),
            (
                "memory_bytes",
                "gauge",
                "Bytes held against the memory budget.",
                g(&self.memory_bytes),
            ),
            (
                "memory_peak_bytes",
                "gauge",
                "Most bytes ever held against the memory budget.",
                g(&self.memory_peak_bytes),
            ),
            (
                "bytes_scanned_total",
                "counter",
                "Frame header bytes read while sizing frames.",
                g(&self.bytes_scanned),
            ),
            (
                "parse_attempts_total",
                "counter",
                "Attempts to size a frame.",
                g(&self.parse_attempts),
            ),
        ] {
            let _ = writeln!(
                o,
                "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} {kind}\n{prefix}_{name} {v}"
            );
        }
        let _ = writeln!(
            o,
            "# HELP {prefix}_refused_total Connections refused at accept, by limit.\n# TYPE {prefix}_refused_total counter"
        );
        for (why, v) in [
            ("total", g(&a.refused_total)),
            ("per_peer", g(&a.refused_per_peer)),
            ("accept_error", g(&a.accept_errors)),
        ] {
            let _ = writeln!(o, "{prefix}_refused_total{{limit=\"{why}\"}} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP {prefix}_closed_total Connections closed by the receiver, by reason.\n# TYPE {prefix}_closed_total counter"
        );
        for why in [
            "malformed",
            "oversized",
            "handshake",
            "not_kept",
            "budget",
            "timeout_handshake",
            "timeout_idle",
            "timeout_frame",
        ] {
            let _ = writeln!(
                o,
                "{prefix}_closed_total{{reason=\"{why}\"}} {}",
                self.closed(why)
            );
        }
    }
}

/// Called with each decoded batch; true once the events are kept (the ack is then sent).
pub type Handler = Arc<dyn Fn(&Batch) -> bool + Send + Sync>;
