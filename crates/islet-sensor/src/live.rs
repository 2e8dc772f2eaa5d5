//! The live sensor: AF_PACKET sockets in tap or inline mode, one thread per worker.
//!
//! Each worker owns one socket per interface, all in per-interface `PACKET_FANOUT` hash
//! groups, so a flow (both directions, both sides of a bridged pair) reaches one worker, which
//! decodes, tracks, parses and judges it with its own decoder and flow table, exactly as a
//! worker of the offline pipeline does. Inline, each frame from one side of a pair is sent out
//! of the other unless its flow's verdict is deny; nothing is shared between workers but the
//! output channel and, for denied flows, the offload channel.
//!
//! Time is the kernel's receive timestamp of each frame; when no frame comes, the worker
//! ticks its flow table with the wall clock so idle flows still end.
#![cfg(target_os = "linux")]

use crate::SensorConfig;
use crate::pipeline::{Decoder, Judges, Step, WorkerTotals, dns_response};
use crate::worker::Worker;
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use islet_capture::Packet;
use islet_capture::afpacket::{self, AfPacket, Frame, RingConfig, SocketOptions};
use islet_capture::afxdp::{self, BypassMap, XdpProgram, Xsk, XskConfig, XskStats};
use islet_capture::tc::{FlowMatch, RuleAction, Tc};
use islet_event::Stats;
use islet_event::eve::{self, EveOptions};
use islet_event::json::Json;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Flows the XDP program keeps in the kernel at most (each takes two map entries).
pub const KERNEL_BYPASS_FLOWS: u32 = 65_536;

/// A flow kept in the kernel: its map keys (the direction of the packet that bypassed it
/// first, then the other) and what was last read from them.
#[derive(Debug)]
struct KernelFlow {
    flow_id: u64,
    slot: u32,
    keys: [[u8; 16]; 2],
    /// Whether `keys[0]` is the client-to-server direction.
    first_to_server: bool,
    seen: [(u64, u64); 2],
}

/// If `frame` is an untagged IPv4 TCP/UDP packet without options, the two map keys of its
/// flow (its own direction first), exactly as the XDP program builds them.
fn kernel_keys(frame: &[u8]) -> Option<[[u8; 16]; 2]> {
    if frame.len() < 38 || frame[12..14] != [0x08, 0x00] || frame[14] != 0x45 {
        return None;
    }
    if u16::from_be_bytes([frame[20], frame[21]]) & 0x3FFF != 0 || !matches!(frame[23], 6 | 17) {
        return None;
    }
    let ip = |o: usize| std::net::Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
    let port = |o: usize| u16::from_be_bytes([frame[o], frame[o + 1]]);
    let (s, d, sp, dp, p) = (ip(26), ip(30), port(34), port(36), frame[23]);
    Some([
        afxdp::bypass_key(s, d, p, sp, dp),
        afxdp::bypass_key(d, s, p, dp, sp),
    ])
}

/// Read the counters of every kernel-bypassed flow and credit what is new to its flow.
fn credit_kernel(map: &BypassMap, flows: &mut [KernelFlow], w: &mut Worker, now: u64) {
    for k in flows.iter_mut() {
        for i in 0..2 {
            let Ok((p, b)) = map.counters(&k.keys[i]) else {
                continue;
            };
            let (dp, db) = (p.saturating_sub(k.seen[i].0), b.saturating_sub(k.seen[i].1));
            k.seen[i] = (p, b);
            let to_server = k.first_to_server == (i == 0);
            w.credit(k.slot, k.flow_id, to_server, dp, db, now);
        }
    }
}

/// Frames taken from one ring before looking at the others.
const BATCH: usize = 256;
/// How long a worker sleeps in poll(2) when every ring is empty.
const POLL_MS: i32 = 100;
/// Output is handed to the writer at this size, or after [`FLUSH_EVERY`].
const FLUSH_BYTES: usize = 64 << 10;
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Where packets come from and where allowed ones go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Monitor these interfaces (both directions of each); forward nothing.
    Tap(Vec<String>),
    /// Bridge each pair: frames from one side go out of the other unless denied.
    Inline(Vec<(String, String)>),
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Tap(_) => "tap",
            Mode::Inline(_) => "inline",
        }
    }

    pub fn interfaces(&self) -> Vec<String> {
        match self {
            Mode::Tap(v) => v.clone(),
            Mode::Inline(p) => p.iter().flat_map(|(a, b)| [a.clone(), b.clone()]).collect(),
        }
    }
}

/// How frames are captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    AfPacket,
    AfXdp,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::AfPacket => "afpacket",
            Backend::AfXdp => "afxdp",
        }
    }
}

/// tc-flower offload of denied flows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffloadConfig {
    pub enabled: bool,
    /// Most rules in place at once; past it, denied flows are dropped in software only
    /// (counted as `offload.budget_full`).
    pub max_rules: usize,
    /// Keep the rules out of hardware (`skip_hw`).
    pub skip_hw: bool,
}

impl Default for OffloadConfig {
    fn default() -> Self {
        OffloadConfig {
            enabled: true,
            max_rules: 4096,
            skip_hw: false,
        }
    }
}

/// Everything the live sensor needs beyond the pipeline's configuration.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub mode: Mode,
    pub backend: Backend,
    pub ring: RingConfig,
    pub offload: OffloadConfig,
    /// Stop inspecting flows whose metadata is logged and whose verdict allows them.
    pub bypass: bool,
    /// AF_XDP: keep bypassed flows in the kernel (`None`: auto).
    pub kernel_bypass: Option<bool>,
    /// How often a `stats` record is written (0: only at the end).
    pub stats_interval: Duration,
}

/// One socket of a worker: AF_PACKET, or AF_XDP (with the counters last read from it).
#[derive(Debug)]
enum Port {
    Packet(AfPacket),
    Xdp(Box<Xsk>, XskStats),
}

impl Port {
    fn fd(&self) -> i32 {
        match self {
            Port::Packet(s) => s.fd(),
            Port::Xdp(x, _) => x.fd(),
        }
    }

    fn drain(&mut self, max: usize, f: &mut dyn FnMut(&Frame<'_>)) -> usize {
        match self {
            Port::Packet(s) => s.drain(max, f),
            // AF_XDP has no receive timestamp: the batch is stamped when it is taken.
            Port::Xdp(x, _) => x.drain(max, wall_ns(), f),
        }
    }

    fn send(&mut self, fr: &Frame<'_>) -> bool {
        match self {
            Port::Packet(s) => s.send(fr.data, &fr.vnet).is_ok(),
            Port::Xdp(x, _) => x.send(fr.data),
        }
    }

    fn flush(&mut self) {
        if let Port::Xdp(x, _) = self {
            x.flush();
        }
    }

    /// Kernel (packets, drops, freezes) since the last call.
    fn kernel_delta(&mut self) -> (u64, u64, u64) {
        match self {
            Port::Packet(s) => s
                .stats()
                .map(|x| (x.packets, x.drops, x.freezes))
                .unwrap_or_default(),
            Port::Xdp(x, last) => {
                let Ok(now) = x.stats() else {
                    return (0, 0, 0);
                };
                let d = (now.rx_dropped + now.rx_ring_full)
                    .saturating_sub(last.rx_dropped + last.rx_ring_full);
                *last = now;
                (0, d, 0)
            }
        }
    }
}

/// A worker's sockets: for a pair, `peer[i]` is the socket frames from `socks[i]` leave by.
#[derive(Debug)]
struct WorkerSockets {
    socks: Vec<Port>,
    peer: Vec<Option<usize>>,
    ifindex: Vec<u32>,
}

/// Sockets opened (and the tc handle, and the XDP programs) before privileges are dropped.
#[derive(Debug)]
pub struct Opened {
    workers: Vec<WorkerSockets>,
    tc: Option<Tc>,
    /// Attached while the sensor runs (the kernel detaches them when these close).
    xdp: Vec<XdpProgram>,
    /// Flows kept in the kernel by the XDP program (AF_XDP with bypass on).
    bypass_map: Option<BypassMap>,
    /// How the sockets capture, for the start-up line.
    pub describe: String,
}

impl Opened {
    pub fn workers(&self) -> usize {
        self.workers.len()
    }
}

/// Open AF_XDP sockets: one per receive queue, `min(workers, queues)` of them per interface,
/// and the steering program on each interface.
fn open_xdp(live: &LiveConfig, workers: usize, idx: &[u32]) -> Result<Opened, String> {
    let inline = matches!(live.mode, Mode::Inline(_));
    let ifaces = live.mode.interfaces();
    let queues = ifaces
        .iter()
        .map(|i| afxdp::rx_queues(i))
        .min()
        .unwrap_or(1);
    let n = workers.min(queues as usize).max(1);
    // Redirected frames reach a veth peer only if it has NAPI (GRO on) and full checksums:
    // inline on virtual ports, kernel bypass is on only when asked for.
    let virtual_port = ifaces
        .iter()
        .any(|i| Path::new(&format!("/sys/devices/virtual/net/{i}")).exists());
    let kernel = live.bypass && live.kernel_bypass.unwrap_or(!(inline && virtual_port));
    let bypass_map = if kernel {
        Some(
            BypassMap::create(KERNEL_BYPASS_FLOWS * 2)
                .map_err(|e| format!("the XDP bypass map: {e}"))?,
        )
    } else {
        None
    };
    let mut progs = Vec::new();
    for i in &ifaces {
        progs.push(XdpProgram::attach(i, queues, bypass_map.as_ref()).map_err(|e| e.to_string())?);
    }
    let mut out = Vec::new();
    let mut zc = 0;
    for q in 0..n as u32 {
        let mut ws = WorkerSockets {
            socks: Vec::new(),
            peer: Vec::new(),
            ifindex: Vec::new(),
        };
        for (k, name) in ifaces.iter().enumerate() {
            let x = Xsk::open(name, q, &XskConfig::default()).map_err(|e| e.to_string())?;
            progs[k]
                .steer(q, &x)
                .map_err(|e| format!("interface {name}: XSKMAP update: {e}"))?;
            zc += usize::from(x.zero_copy());
            ws.socks.push(Port::Xdp(Box::new(x), XskStats::default()));
            ws.ifindex.push(idx[k]);
            ws.peer.push(inline.then_some(k ^ 1));
        }
        out.push(ws);
    }
    let total = n * ifaces.len();
    let describe = format!(
        "AF_XDP ({} mode, XDP program in {} mode, {} queue{} per interface, kernel bypass {})",
        if zc == total {
            "zero-copy"
        } else if zc == 0 {
            "copy"
        } else {
            "mixed zero-copy/copy"
        },
        progs.first().map(|p| p.mode_name()).unwrap_or("?"),
        n,
        if n == 1 { "" } else { "s" },
        match (kernel, live.bypass) {
            (true, _) => "on",
            (false, false) => "off",
            (false, true) if live.kernel_bypass == Some(false) => "off",
            (false, true) => "off on virtual ports inline (live.kernel_bypass = \"on\" forces it)",
        }
    );
    Ok(Opened {
        workers: out,
        tc: None,
        xdp: progs,
        bypass_map,
        describe,
    })
}

/// Open every socket: `workers` per interface, fanned out by flow hash. Errors name the
/// interface (a missing one, or a missing privilege).
pub fn open(live: &LiveConfig, workers: usize) -> Result<Opened, String> {
    let inline = matches!(live.mode, Mode::Inline(_));
    let ifaces = live.mode.interfaces();
    let mut idx = Vec::new();
    for i in &ifaces {
        idx.push(afpacket::ifindex(i).map_err(|e| e.to_string())?);
    }
    if live.backend == Backend::AfXdp {
        let mut o = open_xdp(live, workers, &idx)?;
        o.tc = open_tc(live)?;
        return Ok(o);
    }
    let pid = std::process::id();
    let mut out = Vec::new();
    for _ in 0..workers {
        let mut ws = WorkerSockets {
            socks: Vec::new(),
            peer: Vec::new(),
            ifindex: Vec::new(),
        };
        for (k, name) in ifaces.iter().enumerate() {
            let opts = SocketOptions {
                ring: live.ring,
                fanout_group: (workers > 1)
                    .then_some(((pid ^ (idx[k] * 2_654_435_761)) & 0xFFFF) as u16),
                promisc: true,
                ignore_outgoing: inline,
                vnet_hdr: inline,
                per_frame: inline,
            };
            let s = AfPacket::open(name, &opts).map_err(|e| {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    format!("{e} (needs root or CAP_NET_RAW and CAP_NET_ADMIN)")
                } else {
                    e.to_string()
                }
            })?;
            ws.socks.push(Port::Packet(s));
            ws.ifindex.push(idx[k]);
            ws.peer.push(inline.then_some(k ^ 1));
        }
        out.push(ws);
    }
    let describe = format!(
        "AF_PACKET ({}, {} workers{})",
        if inline {
            "TPACKET_V2 rings, per-frame hand-over"
        } else {
            "TPACKET_V3 rings"
        },
        workers,
        if workers > 1 { ", fanout hash" } else { "" }
    );
    Ok(Opened {
        workers: out,
        tc: open_tc(live)?,
        xdp: Vec::new(),
        bypass_map: None,
        describe,
    })
}

fn open_tc(live: &LiveConfig) -> Result<Option<Tc>, String> {
    if !live.offload.enabled || !matches!(live.mode, Mode::Inline(_)) {
        return Ok(None);
    }
    let mut tc = Tc::open().map_err(|e| format!("netlink route socket: {e}"))?;
    if live.offload.skip_hw {
        tc.flags = islet_capture::tc::SKIP_HW;
    }
    Ok(Some(tc))
}

/// One worker's counters, read by the stats loop (each worker writes only its own).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Counters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Frames without IP (ARP, LLDP, …): forwarded, not flows, outside coverage.
    pub non_ip: AtomicU64,
    /// IP packets whose flow had a verdict (or was tracked, without a policy).
    pub covered: AtomicU64,
    pub forwarded: AtomicU64,
    pub blocked: AtomicU64,
    pub bypassed: AtomicU64,
    /// Packets of flows the XDP program kept in the kernel (never seen by a worker).
    pub kernel_bypassed: AtomicU64,
    pub send_errors: AtomicU64,
    pub kernel_packets: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub kernel_freezes: AtomicU64,
}

/// A worker's counts since it last published them to its [`Counters`].
#[derive(Debug, Default)]
struct Tally {
    packets: u64,
    bytes: u64,
    non_ip: u64,
    covered: u64,
    bypassed: u64,
    forwarded: u64,
    blocked: u64,
    send_errors: u64,
}

impl Tally {
    fn publish(&mut self, c: &Counters) {
        for (n, a) in [
            (self.packets, &c.packets),
            (self.bytes, &c.bytes),
            (self.non_ip, &c.non_ip),
            (self.covered, &c.covered),
            (self.bypassed, &c.bypassed),
            (self.forwarded, &c.forwarded),
            (self.blocked, &c.blocked),
            (self.send_errors, &c.send_errors),
        ] {
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        }
        *self = Tally::default();
    }
}

/// A snapshot of the live sensor, as the stats record and `--stats-interval` report it.
#[derive(Clone, Debug, Default)]
pub struct LiveStats {
    pub uptime: Duration,
    pub packets: u64,
    pub bytes: u64,
    pub non_ip: u64,
    pub covered: u64,
    pub forwarded: u64,
    pub blocked: u64,
    pub bypassed: u64,
    pub kernel_bypassed: u64,
    pub send_errors: u64,
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub offload_rules: u64,
    pub offload_installed: u64,
    pub offload_removed: u64,
    pub offload_budget_full: u64,
    pub offload_errors: u64,
    pub cpu_seconds: f64,
}

impl LiveStats {
    /// Share of offered packets whose flow had a verdict and metadata: 1 − drops − uninspected.
    pub fn coverage(&self) -> f64 {
        let offered = (self.packets - self.non_ip.min(self.packets))
            + self.kernel_bypassed
            + self.kernel_drops;
        if offered == 0 {
            return 1.0;
        }
        (self.covered + self.kernel_bypassed) as f64 / offered as f64
    }

    /// Protected packets per CPU-second.
    pub fn protected_per_cpu_second(&self) -> f64 {
        // /proc counts CPU time in 10 ms ticks: never divide by less than one.
        (self.covered + self.kernel_bypassed) as f64 / self.cpu_seconds.max(0.01)
    }

    fn delta_rate(now: u64, before: u64, secs: f64) -> f64 {
        now.saturating_sub(before) as f64 / secs.max(1e-6)
    }

    /// One line for stderr: cost and protection together.
    pub fn line(&self, prev: &LiveStats) -> String {
        let dt = (self.uptime.saturating_sub(prev.uptime)).as_secs_f64();
        let cpu = self.cpu_seconds - prev.cpu_seconds;
        format!(
            "islet: {:.0} pkt/s inspected, {:.0} bypassed, {:.0} kept in the kernel, {:.0} blocked, {} offload rules; drops {} kernel; cpu {:.2} s/s; {:.0} protected pkt per cpu-s; coverage {:.4}",
            Self::delta_rate(
                self.packets - self.bypassed,
                prev.packets - prev.bypassed,
                dt
            ),
            Self::delta_rate(self.bypassed, prev.bypassed, dt),
            Self::delta_rate(self.kernel_bypassed, prev.kernel_bypassed, dt),
            Self::delta_rate(self.blocked, prev.blocked, dt),
            self.offload_rules,
            self.kernel_drops,
            cpu / dt.max(1e-6),
            self.protected_per_cpu_second(),
            self.coverage(),
        )
    }
}

/// CPU seconds this process used (user + system).
pub fn cpu_seconds() -> f64 {
    let t = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = t.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let utime = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let stime = f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (utime + stime) / tick
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Requests to the offload thread.
#[derive(Debug)]
enum Offload {
    Deny {
        ifindex: u32,
        m: FlowMatch,
        flow_id: u64,
    },
    Ended(u64),
}

#[derive(Debug, Default)]
struct OffloadCounters {
    rules: AtomicU64,
    installed: AtomicU64,
    removed: AtomicU64,
    budget_full: AtomicU64,
    errors: AtomicU64,
}

fn offload_thread(
    mut tc: Tc,
    rx: Receiver<Offload>,
    budget: usize,
    c: &OffloadCounters,
    log: &(dyn Fn(String) + Sync),
) {
    let mut rules: hashbrown::HashMap<u64, (u32, u32)> = hashbrown::HashMap::new();
    for msg in rx {
        match msg {
            Offload::Deny {
                ifindex,
                m,
                flow_id,
            } => {
                if rules.contains_key(&flow_id) {
                    continue;
                }
                if rules.len() >= budget {
                    c.budget_full.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let before = tc.kind();
                match tc.add(ifindex, &m, RuleAction::Drop) {
                    Ok(h) => {
                        if tc.kind() != before {
                            log(format!(
                                "tc: this kernel has no flower classifier (or gact action); denied flows are offloaded as cls_bpf direct-action rules instead ({} datapath only)",
                                "software"
                            ));
                        }
                        rules.insert(flow_id, (ifindex, h));
                        c.installed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if c.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            log(format!("tc flower: cannot add a rule: {e}"));
                        }
                    }
                }
            }
            Offload::Ended(flow_id) => {
                if let Some((ifindex, h)) = rules.remove(&flow_id) {
                    match tc.remove(ifindex, h) {
                        Ok(()) => {
                            c.removed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            c.errors.fetch_add(1, Ordering::Relaxed);
                            log(format!("tc flower: cannot remove a rule: {e}"));
                        }
                    }
                }
            }
        }
        c.rules.store(rules.len() as u64, Ordering::Relaxed);
    }
    let n = tc.installed();
    if let Err(e) = tc.clear() {
        log(format!("tc flower: removing rules at exit: {e}"));
    } else {
        c.removed.fetch_add(n as u64, Ordering::Relaxed);
    }
    c.rules.store(0, Ordering::Relaxed);
}

/// What the caller controls while the sensor runs.
#[derive(Debug, Default)]
pub struct Control {
    /// Set to drain and stop: flows end with reason `shutdown`, output is flushed, offloaded
    /// rules are removed.
    pub stop: AtomicBool,
}

/// Run the live sensor until `ctl.stop`. `tick` is called on the calling thread about every
/// 200 ms with the current counters (reload policy there, print stats); EVE lines it appends
/// to the buffer it is given (a `policy` record for a bundle refused on reload) are written
/// in order with the sensor's own; `log` takes the sensor's messages.
#[allow(
    clippy::too_many_arguments,
    reason = "the live sensor's configuration, sockets, output and callbacks, passed once at start"
)]
pub fn run(
    cfg: &SensorConfig,
    live: &LiveConfig,
    opened: Opened,
    judges: Judges,
    out: &mut (dyn Write + Send),
    ctl: &Control,
    tick: &mut dyn FnMut(&LiveStats, &mut Vec<u8>),
    log: &(dyn Fn(String) + Sync),
) -> Result<(Stats, LiveStats), std::io::Error> {
    let eve_opts = EveOptions {
        community_id_seed: cfg.output.community_id_seed,
    };
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let n = opened.workers.len();
    let counters: Vec<Counters> = (0..n).map(|_| Counters::default()).collect();
    let oc = OffloadCounters::default();
    let inline = matches!(live.mode, Mode::Inline(_));
    let mode_name = live.mode.name();
    let backend = live.backend.name();
    let _xdp = opened.xdp;
    let kmap = opened.bypass_map;
    let kmap = kmap.as_ref();
    std::thread::scope(|s| {
        let (wtx, wrx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = bounded(n * 8 + 8);
        let writer = s.spawn(move || -> std::io::Result<()> {
            for buf in wrx {
                out.write_all(&buf)?;
            }
            out.flush()
        });
        let (otx, orx) = unbounded::<Offload>();
        let off = opened.tc.map(|tc| {
            let oc = &oc;
            let budget = live.offload.max_rules;
            s.spawn(move || offload_thread(tc, orx, budget, oc, log))
        });
        let otx = off.is_some().then_some(otx);
        let mut handles = Vec::new();
        for (i, ws) in opened.workers.into_iter().enumerate() {
            let c = &counters[i];
            let wtx = wtx.clone();
            let otx = otx.clone();
            let judges = judges.clone();
            handles.push(s.spawn(move || {
                worker_loop(
                    cfg, live, ws, judges, eve_opts, c, &wtx, otx, ctl, inline, kmap,
                )
            }));
        }
        drop(otx);
        let gather = |cpu0: f64| -> LiveStats {
            let mut t = LiveStats {
                uptime: started.elapsed(),
                cpu_seconds: cpu_seconds() - cpu0,
                ..LiveStats::default()
            };
            for c in &counters {
                t.packets += c.packets.load(Ordering::Relaxed);
                t.bytes += c.bytes.load(Ordering::Relaxed);
                t.non_ip += c.non_ip.load(Ordering::Relaxed);
                t.covered += c.covered.load(Ordering::Relaxed);
                t.forwarded += c.forwarded.load(Ordering::Relaxed);
                t.blocked += c.blocked.load(Ordering::Relaxed);
                t.bypassed += c.bypassed.load(Ordering::Relaxed);
                t.kernel_bypassed += c.kernel_bypassed.load(Ordering::Relaxed);
                t.send_errors += c.send_errors.load(Ordering::Relaxed);
                t.kernel_packets += c.kernel_packets.load(Ordering::Relaxed);
                t.kernel_drops += c.kernel_drops.load(Ordering::Relaxed);
            }
            t.offload_rules = oc.rules.load(Ordering::Relaxed);
            t.offload_installed = oc.installed.load(Ordering::Relaxed);
            t.offload_removed = oc.removed.load(Ordering::Relaxed);
            t.offload_budget_full = oc.budget_full.load(Ordering::Relaxed);
            t.offload_errors = oc.errors.load(Ordering::Relaxed);
            t
        };
        let mut next_stats = started + live.stats_interval;
        while !ctl.stop.load(Ordering::Relaxed) && !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(200));
            let st = gather(cpu0);
            let mut records = Vec::new();
            tick(&st, &mut records);
            if !records.is_empty() {
                let _ = wtx.send(records);
            }
            if !live.stats_interval.is_zero() && Instant::now() >= next_stats {
                next_stats += live.stats_interval;
                let mut b = Vec::new();
                write_live_stats(&mut b, wall_ns(), &st, mode_name, backend);
                let _ = wtx.send(b);
            }
        }
        ctl.stop.store(true, Ordering::Relaxed);
        let mut totals = Stats::default();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok((dstats, wt))) => {
                    merge_decoder(&mut totals, &dstats);
                    wt.add_to(&mut totals);
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(std::io::Error::other("a worker failed"));
                }
            }
        }
        if let Some(h) = off {
            let _ = h.join();
        }
        let st = gather(cpu0);
        totals.ts_ns = wall_ns();
        totals.uptime_s = st.uptime.as_secs();
        let mut b = Vec::new();
        write_live_stats(&mut b, totals.ts_ns, &st, mode_name, backend);
        eve::write_stats(&mut b, &totals);
        let _ = wtx.send(b);
        drop(wtx);
        let w = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("writer thread failed")));
        if let Some(e) = first_err {
            return Err(e);
        }
        w?;
        Ok((totals, st))
    })
}

fn merge_decoder(t: &mut Stats, d: &Stats) {
    t.pkts += d.pkts;
    t.bytes += d.bytes;
    t.invalid += d.invalid;
    t.ethernet += d.ethernet;
    t.ipv4 += d.ipv4;
    t.ipv6 += d.ipv6;
    t.tcp += d.tcp;
    t.udp += d.udp;
    t.icmpv4 += d.icmpv4;
    t.icmpv6 += d.icmpv6;
    t.vlan += d.vlan;
    t.vxlan += d.vxlan;
    t.gre += d.gre;
    t.erspan += d.erspan;
    t.mpls += d.mpls;
    t.arp += d.arp;
    t.unknown_ethertype += d.unknown_ethertype;
    t.anomalies += d.anomalies;
    t.alerts += d.alerts;
    t.frags += d.frags;
    t.frags_reassembled += d.frags_reassembled;
    t.frags_dropped += d.frags_dropped;
    t.frags_timeouts += d.frags_timeouts;
    t.defrag_drops.add(&d.defrag_drops);
    for (e, c) in &d.decode_events {
        match t.decode_events.iter_mut().find(|x| x.0 == *e) {
            Some(x) => x.1 += c,
            None => t.decode_events.push((*e, *c)),
        }
    }
}

/// The live `stats` record: Suricata's `capture` and `ips` sections and `flow_bypassed`;
/// `offload` (tc rules), `live` (mode and packet counts) and `protection`: the
/// performance-to-protection ratio, cost (CPU seconds) beside protection (coverage, protected
/// packets per CPU-second). (Not under `islet`: that object is the chain's.)
pub fn write_live_stats(b: &mut Vec<u8>, ts_ns: u64, st: &LiveStats, mode: &str, backend: &str) {
    let mut j = Json::object(b);
    j.with("timestamp", |b| islet_event::time::write_iso(b, ts_ns));
    j.str("event_type", "stats");
    j.begin_object("stats");
    j.u64("uptime", st.uptime.as_secs());
    j.begin_object("capture");
    j.u64("kernel_packets", st.kernel_packets);
    j.u64("kernel_drops", st.kernel_drops);
    j.end_object();
    j.begin_object("ips");
    j.u64("accepted", st.forwarded);
    j.u64("blocked", st.blocked);
    j.end_object();
    j.begin_object("flow_bypassed");
    j.u64("local_pkts", st.bypassed);
    j.u64("pkts", st.kernel_bypassed);
    j.end_object();
    j.begin_object("offload");
    j.u64("rules", st.offload_rules);
    j.u64("installed", st.offload_installed);
    j.u64("removed", st.offload_removed);
    j.u64("budget_full", st.offload_budget_full);
    j.u64("errors", st.offload_errors);
    j.end_object();
    j.begin_object("live");
    j.str("mode", mode);
    j.str("backend", backend);
    j.u64("packets", st.packets);
    j.u64("bytes", st.bytes);
    j.u64("non_ip", st.non_ip);
    j.u64("inspected", st.packets.saturating_sub(st.bypassed));
    j.u64("bypassed", st.bypassed);
    j.u64("send_errors", st.send_errors);
    j.end_object();
    j.begin_object("protection");
    j.f64("cpu_seconds", st.cpu_seconds);
    j.f64(
        "protected_pkts_per_cpu_second",
        st.protected_per_cpu_second(),
    );
    j.f64("coverage", st.coverage());
    j.end_object();
    j.end_object();
    j.finish();
    b.push(b'\n');
}

#[allow(
    clippy::too_many_arguments,
    reason = "one worker's sockets, channels and shared counters, passed once when it starts"
)]
fn worker_loop(
    cfg: &SensorConfig,
    live: &LiveConfig,
    mut ws: WorkerSockets,
    judges: Judges,
    eve_opts: EveOptions,
    c: &Counters,
    wtx: &Sender<Vec<u8>>,
    otx: Option<Sender<Offload>>,
    ctl: &Control,
    inline: bool,
    kmap: Option<&BypassMap>,
) -> std::io::Result<(Stats, WorkerTotals)> {
    let mut kflows: Vec<KernelFlow> = Vec::new();
    let kbudget = (KERNEL_BYPASS_FLOWS as usize / cfg.workers().max(1)).max(1);
    let mut dec = Decoder::new(cfg, eve_opts, judges.policy.clone());
    dec.set_inline(inline);
    let mut w = Worker::new(
        cfg.flow_config(1),
        cfg.stream_config(),
        cfg.app_layer.enabled,
        eve_opts,
        judges,
        &cfg.detect,
    );
    w.bypass_enabled = live.bypass;
    w.track_denied = otx.is_some();
    let fds: Vec<i32> = ws.socks.iter().map(Port::fd).collect();
    let mut cnt = 0u64;
    let mut learned = Vec::new();
    let mut last_flush = Instant::now();
    let mut last_stats = Instant::now();
    let mut last_ts = wall_ns();
    let send = |buf: &mut Vec<u8>| {
        if !buf.is_empty() {
            let _ = wtx.send(std::mem::take(buf));
        }
    };
    // Counted per frame in plain integers, published to the shared atomics once per batch
    // (a locked add per counter per frame cost more than the counting).
    let mut tally = Tally::default();
    while !ctl.stop.load(Ordering::Relaxed) {
        let mut got = 0;
        for i in 0..ws.socks.len() {
            let (rx, mut tx) = pair(&mut ws.socks, i, ws.peer[i]);
            let ifindex = ws.ifindex[i];
            // Where the flow's frames leave in the kernel: the other port (inline) or the
            // stack (tap, 0): (this direction, the reverse).
            let out_if = match ws.peer[i] {
                Some(j) if inline => (ws.ifindex[j], ifindex),
                _ => (0, 0),
            };
            got += rx.drain(BATCH, &mut |fr: &Frame<'_>| {
                cnt += 1;
                last_ts = last_ts.max(fr.ts_ns);
                let p = Packet {
                    ts_ns: fr.ts_ns,
                    linktype: 1, // LINKTYPE_ETHERNET
                    data: fr.data,
                    orig_len: fr.wire_len,
                };
                let mut deny = false;
                let mut covered = false;
                let mut bypassed = false;
                let ip_before = dec.stats.ipv4 + dec.stats.ipv6;
                dec.feed(&p, cnt, &mut |ts, step| match step {
                    Step::Outer(o) => w.outer(ts, o),
                    Step::Packet(f, d) => {
                        let fate = w.packet(ts, f, d);
                        deny |= fate.deny;
                        covered |= fate.judged;
                        bypassed |= fate.bypassed;
                        if fate.newly_denied
                            && let Some(o) = &otx
                        {
                            let t = &d.tuple;
                            let _ = o.send(Offload::Deny {
                                ifindex,
                                m: FlowMatch {
                                    src: t.src_ip(),
                                    dst: t.dst_ip(),
                                    proto: t.proto,
                                    sport: t.sport,
                                    dport: t.dport,
                                },
                                flow_id: fate.flow_id,
                            });
                        }
                        if fate.newly_bypassed
                            && let Some(map) = kmap
                            && kflows.len() < kbudget
                            && let Some(keys) = kernel_keys(fr.data)
                            && map.insert(&keys[0], out_if.0).is_ok()
                        {
                            if map.insert(&keys[1], out_if.1).is_ok()
                                && w.mark_kernel_bypass(fate.slot, fate.flow_id)
                            {
                                kflows.push(KernelFlow {
                                    flow_id: fate.flow_id,
                                    slot: fate.slot,
                                    keys,
                                    first_to_server: fate.to_server,
                                    seen: [(0, 0); 2],
                                });
                            } else {
                                let _ = map.remove(&keys[0]);
                                let _ = map.remove(&keys[1]);
                            }
                        }
                        if w.learns_names() && !bypassed && dns_response(d, f, &mut learned) {
                            for l in &learned {
                                w.learn(ts, l);
                            }
                        }
                    }
                });
                // A flood mitigation rule drops the frame (it was still seen and counted).
                deny |= dec.take_mitigated();
                tally.packets += 1;
                if dec.stats.ipv4 + dec.stats.ipv6 == ip_before {
                    tally.non_ip += 1;
                }
                tally.bytes += fr.data.len() as u64;
                if covered {
                    tally.covered += 1;
                }
                if bypassed {
                    tally.bypassed += 1;
                }
                if let Some(tx) = tx.as_deref_mut() {
                    if deny && inline {
                        tally.blocked += 1;
                    } else if tx.send(fr) {
                        tally.forwarded += 1;
                    } else {
                        tally.send_errors += 1;
                    }
                }
            });
        }
        tally.publish(c);
        for s in ws.socks.iter_mut() {
            s.flush();
        }
        if let Some(map) = kmap
            && !w.ended_kernel.is_empty()
        {
            for id in w.ended_kernel.drain(..) {
                if let Some(pos) = kflows.iter().position(|k| k.flow_id == id) {
                    let k = kflows.swap_remove(pos);
                    let _ = map.remove(&k.keys[0]);
                    let _ = map.remove(&k.keys[1]);
                }
            }
        }
        if let Some(o) = &otx {
            for id in w.ended_denied.drain(..) {
                let _ = o.send(Offload::Ended(id));
            }
        }
        if got == 0 {
            afpacket::poll(&fds, POLL_MS)?;
            let now = wall_ns().max(last_ts);
            w.tick(now);
        }
        if w.out.len() + dec.out.len() >= FLUSH_BYTES || last_flush.elapsed() >= FLUSH_EVERY {
            send(&mut dec.out);
            send(&mut w.out);
            last_flush = Instant::now();
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            kernel_stats(&mut ws.socks, c);
            if let Some(map) = kmap {
                let before = w.bypassed_pkts;
                credit_kernel(map, &mut kflows, &mut w, wall_ns().max(last_ts));
                c.kernel_bypassed
                    .fetch_add(w.bypassed_pkts - before, Ordering::Relaxed);
            }
        }
    }
    if let Some(map) = kmap {
        let before = w.bypassed_pkts;
        credit_kernel(map, &mut kflows, &mut w, wall_ns().max(last_ts));
        c.kernel_bypassed
            .fetch_add(w.bypassed_pkts - before, Ordering::Relaxed);
    }
    kernel_stats(&mut ws.socks, c);
    let now = wall_ns().max(last_ts);
    dec.finish_detect();
    send(&mut dec.out);
    w.finish(now, |buf| {
        send(buf);
        Ok::<(), ()>(())
    })
    .ok();
    if let Some(o) = &otx {
        for id in w.ended_denied.drain(..) {
            let _ = o.send(Offload::Ended(id));
        }
    }
    send(&mut w.out);
    dec.finish_stats();
    let st = std::mem::take(&mut dec.stats);
    Ok((st, WorkerTotals::of(&w)))
}

/// The socket `i` and, for a pair, the one its frames leave by.
fn pair(socks: &mut [Port], i: usize, peer: Option<usize>) -> (&mut Port, Option<&mut Port>) {
    match peer {
        Some(j) if j < i => {
            let (a, b) = socks.split_at_mut(i);
            (&mut b[0], Some(&mut a[j]))
        }
        Some(j) if j > i && j < socks.len() => {
            let (a, b) = socks.split_at_mut(j);
            (&mut a[i], Some(&mut b[0]))
        }
        _ => (&mut socks[i], None),
    }
}

fn kernel_stats(socks: &mut [Port], c: &Counters) {
    let (mut p, mut d, mut f) = (0, 0, 0);
    for s in socks {
        let (a, b, x) = s.kernel_delta();
        p += a;
        d += b;
        f += x;
    }
    c.kernel_packets.fetch_add(p, Ordering::Relaxed);
    c.kernel_drops.fetch_add(d, Ordering::Relaxed);
    c.kernel_freezes.fetch_add(f, Ordering::Relaxed);
}

/// Parse `A,B` pairs and `IF,IF` lists from the command line.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once(',') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && a != b && !b.contains(',') => {
            Ok((a.to_owned(), b.to_owned()))
        }
        _ => Err(format!(
            "--inline {s:?}: expected two different interfaces, IFA,IFB"
        )),
    }
}
