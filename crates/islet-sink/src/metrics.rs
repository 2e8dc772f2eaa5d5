//! Metrics: the figures a sensor exposes as Prometheus text (`--metrics ADDR`).
//!
//! Counters are atomics written by their owners (the pipeline's totals, the output stage's
//! events per type, each forwarder's delivery figures) and read when the endpoint is scraped.
//! The endpoint is a minimal HTTP/1.1 responder for `GET /metrics`, bound to the address the
//! operator gives (loopback by default). Its listener keeps the bounds of every islet listener
//! (issue 18): the accept loop only admits, each request is read on its own small thread
//! within a deadline, connections are capped in total and per peer address, and what was
//! refused is counted in its own output.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use islet_event::record::EveRecord;

use crate::forward::server::gate::{Gate, GateStats, Limits, Ticket};

use crate::forward::{ForwardStats, LATENCY_BUCKETS};

/// Event types counted by name; anything else is `other`.
pub const EVENT_TYPES: [&str; 18] = [
    "flow",
    "alert",
    "anomaly",
    "dns",
    "http",
    "tls",
    "ssh",
    "quic",
    "smb",
    "rdp",
    "krb5",
    "dhcp",
    "policy",
    "stats",
    "checkpoint",
    "gap",
    "netflow",
    "other",
];

/// Every figure the endpoint shows.
#[derive(Debug, Default)]
pub struct Metrics {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub flows: AtomicU64,
    /// Packets the decoder could not take (invalid, truncated, unsupported).
    pub drop_decode: AtomicU64,
    /// Flows ended early because the flow table was full (emergency mode).
    pub drop_flow_table: AtomicU64,
    /// Records the output could not write.
    pub drop_sink: AtomicU64,
    pub events: [AtomicU64; EVENT_TYPES.len()],
    pub chain_seq: AtomicU64,
    pub checkpoints: AtomicU64,
    pub forwarders: Mutex<Vec<(String, Arc<ForwardStats>)>>,
    /// Figures a caller publishes by name (the live sensor's, every 200 ms): name → (help,
    /// type, value). Written by one thread, read by the scrape.
    pub published:
        Mutex<std::collections::BTreeMap<&'static str, (&'static str, &'static str, f64)>>,
}

impl Metrics {
    /// Count one EVE record by its `event_type` (read without decoding the record: this is
    /// once per record on the writer thread).
    pub fn event(&self, line: &[u8]) {
        let i = EveRecord::peek_event_type(line)
            .and_then(|t| EVENT_TYPES.iter().position(|e| *e == t))
            .unwrap_or(EVENT_TYPES.len() - 1);
        self.events[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Publish a figure: `kind` is `counter` or `gauge`.
    pub fn publish(&self, name: &'static str, help: &'static str, kind: &'static str, v: f64) {
        if let Ok(mut m) = self.published.lock() {
            m.insert(name, (help, kind, v));
        }
    }

    pub fn add_forwarder(&self, name: &str, s: Arc<ForwardStats>) {
        if let Ok(mut f) = self.forwarders.lock() {
            f.push((name.to_string(), s));
        }
    }

    /// The same figures as an EVE `stats` record (one line, no newline) at `ts` (the EVE
    /// timestamp text): `stats.capture`, `stats.flow.total`, `stats.output` (events by type,
    /// drops by stage, the chain's head, and each forwarder's delivery).
    pub fn stats_record(&self, ts: &[u8], uptime_s: u64, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = write!(out, "{{\"timestamp\":\"");
        out.extend_from_slice(ts);
        let _ = write!(
            out,
            "\",\"event_type\":\"stats\",\"stats\":{{\"uptime\":{uptime_s},\"capture\":{{\"packets\":{},\"bytes\":{}}},\"flow\":{{\"total\":{}}},\"output\":{{\"events\":{{",
            g(&self.packets),
            g(&self.bytes),
            g(&self.flows)
        );
        for (i, t) in EVENT_TYPES.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(out, "{sep}\"{t}\":{}", g(&self.events[i]));
        }
        let fw = self
            .forwarders
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default();
        let dropped: u64 = fw.iter().map(|(_, s)| g(&s.dropped)).sum();
        let lost: u64 = fw.iter().map(|(_, s)| g(&s.lost_at_close)).sum();
        let _ = write!(
            out,
            "}},\"drops\":{{\"decode\":{},\"flow_table\":{},\"buffer\":{dropped},\"sink\":{}}},\"chain_seq\":{},\"checkpoints\":{},\"forward\":[",
            g(&self.drop_decode),
            g(&self.drop_flow_table),
            g(&self.drop_sink) + lost,
            g(&self.chain_seq),
            g(&self.checkpoints)
        );
        for (i, (server, s)) in fw.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let n = g(&s.latency_count).max(1);
            out.extend_from_slice(b"{\"server\":");
            islet_event::json::escape(out, server.as_bytes());
            let _ = write!(
                out,
                ",\"delivered\":{},\"chunks\":{},\"retries\":{},\"dropped\":{},\"gaps\":{},\"buffer_memory_bytes\":{},\"buffer_disk_bytes\":{},\"blocked_ms\":{},\"latency_avg_us\":{}}}",
                g(&s.delivered),
                g(&s.chunks),
                g(&s.retries),
                g(&s.dropped),
                g(&s.gaps),
                g(&s.memory_bytes),
                g(&s.spool_bytes),
                g(&s.blocked_ns) / 1_000_000,
                g(&s.latency_sum_us) / n
            );
        }
        out.extend_from_slice(b"]}}}");
    }

    /// The Prometheus text exposition of every figure.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            &mut o,
            "islet_packets_total",
            "Packets read.",
            g(&self.packets),
        );
        counter(
            &mut o,
            "islet_bytes_total",
            "Bytes of packets read.",
            g(&self.bytes),
        );
        counter(
            &mut o,
            "islet_flows_total",
            "Flows tracked.",
            g(&self.flows),
        );
        let _ = writeln!(
            o,
            "# HELP islet_events_total Records emitted, by event type.\n# TYPE islet_events_total counter"
        );
        for (i, t) in EVENT_TYPES.iter().enumerate() {
            let _ = writeln!(
                o,
                "islet_events_total{{type=\"{t}\"}} {}",
                g(&self.events[i])
            );
        }
        let fw = self
            .forwarders
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default();
        let (mut dropped, mut lost) = (0, 0);
        for (_, s) in &fw {
            dropped += g(&s.dropped);
            lost += g(&s.lost_at_close);
        }
        let _ = writeln!(
            o,
            "# HELP islet_drops_total Records or packets dropped, by stage.\n# TYPE islet_drops_total counter"
        );
        for (stage, v) in [
            ("decode", g(&self.drop_decode)),
            ("flow_table", g(&self.drop_flow_table)),
            ("buffer", dropped),
            ("sink", g(&self.drop_sink) + lost),
        ] {
            let _ = writeln!(o, "islet_drops_total{{stage=\"{stage}\"}} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP islet_chain_seq Sequence number of the last sealed record.\n# TYPE islet_chain_seq gauge\nislet_chain_seq {}",
            g(&self.chain_seq)
        );
        counter(
            &mut o,
            "islet_chain_checkpoints_total",
            "Signed checkpoints written.",
            g(&self.checkpoints),
        );
        if let Ok(m) = self.published.lock() {
            for (name, (help, kind, v)) in m.iter() {
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
            }
        }
        if fw.is_empty() {
            return o;
        }
        type Get = fn(&ForwardStats) -> &AtomicU64;
        let series: [(&str, &str, &str, Get); 9] = [
            (
                "islet_forward_delivered_total",
                "counter",
                "Records acknowledged by the receiver.",
                |s| &s.delivered,
            ),
            (
                "islet_forward_chunks_total",
                "counter",
                "Chunks acknowledged.",
                |s| &s.chunks,
            ),
            (
                "islet_forward_retries_total",
                "counter",
                "Sends retried after an error or a missing ack.",
                |s| &s.retries,
            ),
            (
                "islet_forward_connects_total",
                "counter",
                "Connections made.",
                |s| &s.connects,
            ),
            (
                "islet_forward_dropped_total",
                "counter",
                "Records dropped because the buffers were full.",
                |s| &s.dropped,
            ),
            (
                "islet_forward_gaps_total",
                "counter",
                "Gap records sent in place of dropped records.",
                |s| &s.gaps,
            ),
            (
                "islet_forward_blocked_seconds_total",
                "counter",
                "Time the pipeline waited for buffer room (ns in the raw counter).",
                |s| &s.blocked_ns,
            ),
            (
                "islet_forward_buffer_memory_bytes",
                "gauge",
                "Bytes waiting in memory.",
                |s| &s.memory_bytes,
            ),
            (
                "islet_forward_buffer_disk_bytes",
                "gauge",
                "Bytes waiting in the spool.",
                |s| &s.spool_bytes,
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (server, s) in &fw {
                let v = g(get(s));
                if name.ends_with("_seconds_total") {
                    let _ = writeln!(o, "{name}{{server=\"{server}\"}} {}", v as f64 / 1e9);
                } else {
                    let _ = writeln!(o, "{name}{{server=\"{server}\"}} {v}");
                }
            }
        }
        let name = "islet_forward_delivery_latency_seconds";
        let _ = writeln!(
            o,
            "# HELP {name} Time from a record's hand-over to its ack.\n# TYPE {name} histogram"
        );
        for (server, s) in &fw {
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "{name}_bucket{{server=\"{server}\",le=\"{b}\"}} {}",
                    g(&s.latency_le[i])
                );
            }
            let n = g(&s.latency_count);
            let _ = writeln!(o, "{name}_bucket{{server=\"{server}\",le=\"+Inf\"}} {n}");
            let _ = writeln!(
                o,
                "{name}_sum{{server=\"{server}\"}} {}",
                g(&s.latency_sum_us) as f64 / 1e6
            );
            let _ = writeln!(o, "{name}_count{{server=\"{server}\"}} {n}");
        }
        o
    }
}

/// Scrapes served at once; more are refused (or take a silent one's place). A scraper makes one
/// request every few seconds.
pub const METRICS_MAX_CONNECTIONS: usize = 64;

/// Scrapes served at once from one address.
pub const METRICS_MAX_PER_PEER: usize = 8;

/// At a cap, a connection that has not sent its request head for this long is closed to make
/// room for a new one.
pub const METRICS_EVICT_AFTER: Duration = Duration::from_millis(200);

/// Time from accept to the end of the request head, and for the response to be written.
pub const METRICS_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest request head read; the request line is all that matters.
pub const METRICS_MAX_HEAD: usize = 8 << 10;

/// Stack of a request thread (the head is read into a buffer on it).
const METRICS_STACK: usize = 128 << 10;

/// What the endpoint itself counted (shown in its own output).
#[derive(Debug, Default)]
pub struct EndpointStats {
    pub admission: Arc<GateStats>,
    /// Requests whose head did not arrive within [`METRICS_REQUEST_TIMEOUT`].
    pub timeouts: AtomicU64,
    /// Request heads over [`METRICS_MAX_HEAD`].
    pub oversized: AtomicU64,
}

impl EndpointStats {
    fn render(&self, o: &mut String) {
        use std::fmt::Write as _;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let a = &self.admission;
        let _ = writeln!(
            o,
            "# HELP islet_metrics_refused_total Scrape connections refused at accept, by limit.\n# TYPE islet_metrics_refused_total counter"
        );
        for (why, v) in [
            ("total", g(&a.refused_total)),
            ("per_peer", g(&a.refused_per_peer)),
            ("accept_error", g(&a.accept_errors)),
        ] {
            let _ = writeln!(o, "islet_metrics_refused_total{{limit=\"{why}\"}} {v}");
        }
        for (name, help, v) in [
            (
                "islet_metrics_evicted_total",
                "Silent scrape connections closed to make room.",
                g(&a.evicted),
            ),
            (
                "islet_metrics_timeouts_total",
                "Requests whose head did not arrive in time.",
                g(&self.timeouts),
            ),
            (
                "islet_metrics_oversized_total",
                "Request heads over the bound.",
                g(&self.oversized),
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
    }
}

/// A running metrics endpoint: the accept loop only admits and hands each connection to a
/// small thread, so a silent client holds one thread (and its place under the caps) for at most
/// [`METRICS_REQUEST_TIMEOUT`], never the endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<EndpointStats>,
}

impl MetricsServer {
    /// Serve `GET /metrics` on `addr`.
    pub fn start(addr: &str, m: Arc<Metrics>) -> std::io::Result<MetricsServer> {
        let l = TcpListener::bind(addr)?;
        let local = l.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(EndpointStats::default());
        let gate = Gate::new(
            Limits {
                total: METRICS_MAX_CONNECTIONS,
                per_peer: METRICS_MAX_PER_PEER,
                evict_after: Some(METRICS_EVICT_AFTER),
            },
            stats.admission.clone(),
        );
        let (st, es) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                loop {
                    let accepted = l.accept();
                    if st.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok((s, peer)) = accepted else {
                        es.admission.accept_errors.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    let Ok(ticket) = gate.admit(&s, peer.ip().to_canonical()) else {
                        continue;
                    };
                    let (m, es) = (m.clone(), es.clone());
                    let _ = std::thread::Builder::new()
                        .name("metrics-request".into())
                        .stack_size(METRICS_STACK)
                        .spawn(move || {
                            respond(s, &m, &es, &ticket);
                            drop(ticket);
                        });
                }
            })?;
        Ok(MetricsServer {
            addr: local,
            stop,
            thread: Some(thread),
            stats,
        })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

/// Read one request head within the deadline and answer it.
fn respond(mut s: TcpStream, m: &Metrics, es: &EndpointStats, ticket: &Ticket) {
    let deadline = Instant::now() + METRICS_REQUEST_TIMEOUT;
    let _ = s.set_write_timeout(Some(METRICS_REQUEST_TIMEOUT));
    let mut head = [0u8; METRICS_MAX_HEAD];
    let mut n = 0;
    loop {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            es.timeouts.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut head[n..]) {
            Ok(0) => return,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        if memchr::memmem::find(&head[..n], b"\r\n\r\n").is_some()
            || memchr::memmem::find(&head[..n], b"\n\n").is_some()
        {
            break;
        }
        if n == head.len() {
            es.oversized.fetch_add(1, Ordering::Relaxed);
            let _ = s.write_all(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
    }
    ticket.proven.store(true, Ordering::Relaxed);
    let first = head[..n].split(|&b| b == b'\r').next().unwrap_or(&[]);
    let (status, body) = if first.starts_with(b"GET /metrics ") || first.starts_with(b"GET / ") {
        let mut body = m.render();
        es.render(&mut body);
        ("200 OK", body)
    } else {
        ("404 Not Found", "not found: GET /metrics\n".to_string())
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
