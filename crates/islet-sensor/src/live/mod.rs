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

mod offload;
mod open;
mod stats;
mod worker;

pub use self::offload::KERNEL_BYPASS_FLOWS;
use self::offload::*;
pub use self::open::{OpenError, Opened, open};
pub use self::stats::{Counters, LiveStats, cpu_seconds, write_live_stats};
use self::stats::{merge_decoder, wall_ns};
use self::worker::*;

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

/// Parse `A,B` pairs and `IF,IF` lists from the command line.
pub fn parse_pair(s: &str) -> Result<(String, String), PairError> {
    match s.split_once(',') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && a != b && !b.contains(',') => {
            Ok((a.to_owned(), b.to_owned()))
        }
        _ => Err(PairError { arg: s.to_owned() }),
    }
}

/// Why an `--inline` argument is not two different interfaces ([`parse_pair`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PairError {
    /// The argument as given.
    pub arg: String,
}

impl std::fmt::Display for PairError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--inline {:?}: expected two different interfaces, IFA,IFB",
            self.arg
        )
    }
}

impl std::error::Error for PairError {}
