//! The offline/online pipeline: source → decoder (+ defrag) → workers → writer.

use crate::SensorConfig;
use crate::names::Learned;
use crate::worker::Worker;
use crossbeam_channel::{Receiver, Sender, bounded};
use islet_capture::{CaptureError, Packet, PacketSource};
use islet_event::eve::{self, EveOptions};
use islet_event::{Anomaly, AnomalyKind, Stats};
use islet_flow::FlowKey;
use islet_flow::defrag::{Defrag, Outcome};
use islet_intel::feed::IntelRuntime;
use islet_wire::decode::{Decoded, Kind, Outer, layer};
use islet_wire::{DecodeEvent, decode, decode_ip};
use std::io::Write;
use std::time::{Duration, Instant};

/// Output is handed to the writer in chunks of about this size.
const FLUSH_BYTES: usize = 256 << 10;

/// Where a run stands, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub packets: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub anomalies: u64,
    pub decode_events: Vec<(DecodeEvent, u64)>,
    pub wall: Duration,
    pub first_ts_ns: u64,
    pub last_ts_ns: u64,
    pub workers: usize,
    pub stats: Stats,
}

impl Summary {
    pub fn packets_per_sec(&self) -> f64 {
        self.packets as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    pub fn gbits_per_sec(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.wall.as_secs_f64().max(1e-9) / 1e9
    }
}

/// Why a run stopped early.
#[derive(Debug)]
pub enum RunError {
    /// The capture was unreadable past some point; everything before it was processed and
    /// written.
    Capture(CaptureError, Box<Summary>),
    /// The output could not be written.
    Output(std::io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Capture(e, _) => write!(f, "{e}"),
            RunError::Output(e) => write!(f, "cannot write output: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Decoder-side counters and the anomaly output.
#[derive(Debug)]
pub(crate) struct Decoder {
    defrag: Defrag,
    /// Boxed so it can be taken out of `self` for a packet without copying it.
    d: Option<Box<Decoded>>,
    d2: Decoded,
    frag_events: Vec<DecodeEvent>,
    events: [u64; DecodeEvent::COUNT],
    pub(crate) stats: Stats,
    pub(crate) out: Vec<u8>,
    eve: EveOptions,
    write_anomalies: bool,
    next_expire_ns: u64,
    /// Scans and floods, judged here in capture order.
    detect: Option<crate::detect::ReaderDetect>,
    /// An enforced mitigation rule dropped the frame just fed.
    mitigated: bool,
}

/// What the decoder hands on for one packet.
pub(crate) enum Step<'a> {
    Outer(&'a Outer),
    Packet(&'a [u8], &'a Decoded),
}

impl Decoder {
    pub(crate) fn new(
        cfg: &SensorConfig,
        eve: EveOptions,
        policy: Option<crate::policy::PolicyRuntime>,
    ) -> Self {
        Decoder {
            defrag: Defrag::new(cfg.defrag_config()),
            d: Some(Box::default()),
            d2: Decoded::default(),
            frag_events: Vec::new(),
            events: [0; DecodeEvent::COUNT],
            stats: Stats::default(),
            out: Vec::with_capacity(1 << 16),
            eve,
            write_anomalies: cfg.output.anomalies.unwrap_or(true),
            next_expire_ns: 0,
            detect: crate::detect::ReaderDetect::new(&cfg.detect, policy),
            mitigated: false,
        }
    }

    /// Frames pass through inline: an enforced mitigation rule drops them.
    pub(crate) fn set_inline(&mut self, inline: bool) {
        if let Some(d) = self.detect.as_mut() {
            d.set_inline(inline);
        }
    }

    /// Did an enforced mitigation rule drop the frame just fed?
    pub(crate) fn take_mitigated(&mut self) -> bool {
        std::mem::take(&mut self.mitigated)
    }

    fn anomaly(&mut self, ts: u64, cnt: u64, ev: DecodeEvent, d: &Decoded) {
        self.events[ev.index()] += 1;
        self.stats.anomalies += 1;
        if !self.write_anomalies {
            return;
        }
        let has_ip = d.layers & (layer::IPV4 | layer::IPV6) != 0 && d.kind != Kind::NotIp;
        let a = Anomaly {
            ts_ns: ts,
            pcap_cnt: Some(cnt),
            tuple: has_ip.then_some(d.tuple),
            has_ports: false,
            flow_id: None,
            kind: AnomalyKind::Decode(ev),
        };
        eve::write_anomaly(&mut self.out, &a, &self.eve);
    }

    fn count_layers(&mut self, l: u16) {
        let s = &mut self.stats;
        for (bit, c) in [
            (layer::ETHERNET, &mut s.ethernet),
            (layer::VLAN, &mut s.vlan),
            (layer::IPV4, &mut s.ipv4),
            (layer::IPV6, &mut s.ipv6),
            (layer::TCP, &mut s.tcp),
            (layer::UDP, &mut s.udp),
            (layer::ICMPV4, &mut s.icmpv4),
            (layer::ICMPV6, &mut s.icmpv6),
            (layer::GRE, &mut s.gre),
            (layer::VXLAN, &mut s.vxlan),
            (layer::ERSPAN, &mut s.erspan),
            (layer::MPLS, &mut s.mpls),
            (layer::ARP, &mut s.arp),
            (layer::UNKNOWN_ETHERTYPE, &mut s.unknown_ethertype),
        ] {
            if l & bit != 0 {
                *c += 1;
            }
        }
    }

    /// Decode one packet (reassembling fragments) and pass what it yields to `sink`.
    pub(crate) fn feed(&mut self, p: &Packet<'_>, cnt: u64, sink: &mut impl FnMut(u64, Step<'_>)) {
        let ts = p.ts_ns;
        self.stats.pkts += 1;
        self.stats.bytes += p.data.len() as u64;
        if ts >= self.next_expire_ns {
            self.defrag.expire(ts);
            self.next_expire_ns = ts.saturating_add(1_000_000_000);
        }
        let mut d = self.d.take().unwrap_or_default();
        let r = decode(p.linktype, p.data, &mut d);
        self.count_layers(d.layers);
        for o in d.outers() {
            sink(ts, Step::Outer(o));
        }
        match r {
            Err(ev) => {
                self.stats.invalid += 1;
                self.anomaly(ts, cnt, ev, &d);
            }
            Ok(()) => match d.kind {
                Kind::NotIp => {}
                Kind::Ip => {
                    if let Some(det) = self.detect.as_mut() {
                        self.mitigated |= det.packet(ts, p.data, &d, &mut self.out, &self.eve);
                    }
                    sink(ts, Step::Packet(p.data, &d));
                }
                Kind::Fragment => self.fragment(ts, cnt, p.data, &d, sink),
            },
        }
        self.d = Some(d);
    }

    fn fragment(
        &mut self,
        ts: u64,
        cnt: u64,
        frame: &[u8],
        d: &Decoded,
        sink: &mut impl FnMut(u64, Step<'_>),
    ) {
        self.stats.frags += 1;
        self.frag_events.clear();
        let outcome = self.defrag.insert(ts, frame, d, &mut self.frag_events);
        let mut bad = None;
        match outcome {
            Outcome::Pending => {}
            Outcome::Dropped(ev) => bad = Some(ev),
            Outcome::Complete => {
                self.stats.frags_reassembled += 1;
                let (buf, l3) = self.defrag.reassembled();
                let d2 = &mut self.d2;
                *d2 = Decoded::default();
                d2.tuple.vlan = d.tuple.vlan;
                d2.tuple.vlan_len = d.tuple.vlan_len;
                match decode_ip(buf, l3, d2) {
                    Ok(()) if d2.kind == Kind::Ip => {
                        for o in d2.outers() {
                            sink(ts, Step::Outer(o));
                        }
                        if let Some(det) = self.detect.as_mut() {
                            self.mitigated |= det.packet(ts, buf, d2, &mut self.out, &self.eve);
                        }
                        sink(ts, Step::Packet(buf, d2));
                    }
                    Ok(()) => {}
                    Err(ev) => bad = Some(ev),
                }
            }
        }
        let evs = std::mem::take(&mut self.frag_events);
        for ev in &evs {
            self.anomaly(ts, cnt, *ev, d);
        }
        self.frag_events = evs;
        if let Some(ev) = bad {
            self.anomaly(ts, cnt, ev, d);
        }
    }

    /// The input ended: report the scans and floods still open.
    pub(crate) fn finish_detect(&mut self) {
        if let Some(det) = self.detect.as_mut() {
            det.finish(&mut self.out, &self.eve);
            self.stats.alerts += det.alerts;
        }
    }

    pub(crate) fn finish_stats(&mut self) {
        let ds = self.defrag.stats();
        self.stats.frags_timeouts = ds.timeouts;
        self.stats.frags_dropped = ds.dropped;
        self.stats.defrag_drops = ds.drops.clone();
        self.stats.decode_events = DecodeEvent::ALL
            .iter()
            .filter(|e| self.events[e.index()] > 0)
            .map(|e| (*e, self.events[e.index()]))
            .collect();
    }
}

/// If `d` is a DNS response over UDP, the names its answers bind, into `out` (cleared).
pub(crate) fn dns_response(d: &Decoded, frame: &[u8], out: &mut Vec<Learned>) -> bool {
    out.clear();
    if d.tuple.proto != islet_wire::ip_proto::UDP || d.tuple.sport != 53 {
        return false;
    }
    crate::names::dns_answers(d.payload(frame), out);
    !out.is_empty()
}

fn shard(t: &islet_wire::Tuple, n: usize) -> usize {
    (FlowKey::from_tuple(t).0.stable_hash() % n as u64) as usize
}

/// Read `source` to its end, writing EVE lines to `out`, with no judges and no progress
/// reports ([`Reader`] sets those).
pub fn run(
    cfg: &SensorConfig,
    source: &mut dyn PacketSource,
    out: &mut (dyn Write + Send),
) -> Result<Summary, RunError> {
    Reader::new(cfg).run(source, out)
}

/// One read of a packet source, set up step by step:
/// `Reader::new(&cfg).judges(j).progress(&mut f).run(&mut source, &mut out)`.
pub struct Reader<'a> {
    cfg: &'a SensorConfig,
    judges: Judges,
    progress: Option<&'a mut dyn FnMut(Progress)>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("judges", &self.judges)
            .field("progress", &self.progress.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> Reader<'a> {
    pub fn new(cfg: &'a SensorConfig) -> Reader<'a> {
        Reader {
            cfg,
            judges: Judges::default(),
            progress: None,
        }
    }

    /// Judge flows with threat intelligence (every new flow's endpoints and every protocol
    /// event against the current snapshot, swappable while running) and a policy.
    pub fn judges(mut self, judges: Judges) -> Reader<'a> {
        self.judges = judges;
        self
    }

    /// Called about every batch with how far the read has come.
    pub fn progress(mut self, f: &'a mut dyn FnMut(Progress)) -> Reader<'a> {
        self.progress = Some(f);
        self
    }

    /// Read `source` to its end, writing EVE lines to `out`.
    pub fn run(
        self,
        source: &mut dyn PacketSource,
        out: &mut (dyn Write + Send),
    ) -> Result<Summary, RunError> {
        let mut none = |_: Progress| {};
        let progress = match self.progress {
            Some(p) => p,
            None => &mut none,
        };
        run_judged(self.cfg, self.judges, source, out, progress)
    }
}

/// What workers judge flows with: threat intelligence and a segmentation policy.
#[derive(Clone, Debug, Default)]
pub struct Judges {
    pub intel: Option<IntelRuntime>,
    pub policy: Option<crate::policy::PolicyRuntime>,
}

fn run_judged(
    cfg: &SensorConfig,
    judges: Judges,
    source: &mut dyn PacketSource,
    out: &mut (dyn Write + Send),
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, RunError> {
    let workers = cfg.workers().max(1);
    let eve = EveOptions {
        community_id_seed: cfg.output.community_id_seed,
    };
    let started = Instant::now();
    let mut dec = Decoder::new(cfg, eve, judges.policy.clone());
    let (mut first, mut last) = (u64::MAX, 0u64);
    let batch = cfg.sensor.batch_packets;

    let (capture_err, flows, tstats) = if workers == 1 {
        let mut w = Worker::new(
            cfg.flow_config(1),
            cfg.stream_config(),
            cfg.app_layer.enabled,
            eve,
            judges.clone(),
            &cfg.detect,
        );
        let mut cnt = 0u64;
        let mut err = None;
        let mut learned = Vec::new();
        loop {
            let r = source.read_batch(batch, &mut |p| {
                cnt += 1;
                first = first.min(p.ts_ns);
                last = last.max(p.ts_ns);
                dec.feed(p, cnt, &mut |ts, step| match step {
                    Step::Outer(o) => w.outer(ts, o),
                    Step::Packet(f, d) => {
                        w.packet(ts, f, d);
                        if w.learns_names() && dns_response(d, f, &mut learned) {
                            for l in &learned {
                                w.learn(ts, l);
                            }
                        }
                    }
                });
            });
            if w.out.len() >= FLUSH_BYTES || dec.out.len() >= FLUSH_BYTES {
                write_all(out, &mut dec.out)?;
                write_all(out, &mut w.out)?;
            }
            let (done, total) = source.progress();
            progress(Progress {
                bytes_done: done,
                bytes_total: total,
                packets: cnt,
            });
            match r {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        dec.finish_detect();
        write_all(out, &mut dec.out)?;
        w.finish(last, |buf| write_all(out, buf))?;
        (err, w.flows_logged, vec![WorkerTotals::of(&w)])
    } else {
        run_sharded(
            cfg, workers, eve, judges, source, out, progress, &mut dec, &mut first, &mut last,
        )?
    };

    dec.finish_stats();
    let mut stats = std::mem::take(&mut dec.stats);
    for wt in &tstats {
        wt.add_to(&mut stats);
    }
    let wall = started.elapsed();
    stats.ts_ns = last;
    stats.uptime_s = wall.as_secs();
    let mut tail = Vec::new();
    eve::write_stats(&mut tail, &stats);
    write_all(out, &mut tail)?;
    out.flush().map_err(RunError::Output)?;
    let summary = Summary {
        packets: stats.pkts,
        bytes: stats.bytes,
        flows,
        anomalies: stats.anomalies,
        decode_events: stats.decode_events.clone(),
        wall,
        first_ts_ns: if first == u64::MAX { 0 } else { first },
        last_ts_ns: last,
        workers,
        stats,
    };
    match capture_err {
        Some(e) => Err(RunError::Capture(e, Box::new(summary))),
        None => Ok(summary),
    }
}

fn write_all(out: &mut (dyn Write + Send), buf: &mut Vec<u8>) -> Result<(), RunError> {
    if !buf.is_empty() {
        out.write_all(buf).map_err(RunError::Output)?;
        buf.clear();
    }
    Ok(())
}

/// One unit of work for a worker: packets copied into one buffer, plus their descriptors.
#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
    /// Names learned from DNS answers, each to be applied before the item at its index.
    names: Vec<(usize, u64, Learned)>,
    now_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    ts: u64,
    off: u32,
    len: u32,
    d: Decoded,
    /// A tunnel's outer packet (`d.outer[0]`), not an inner one.
    outer: bool,
}

enum Msg {
    Batch(Batch),
    Finish(u64),
}

/// Batches in flight per worker (bounds memory and back-pressure).
const BATCHES_PER_WORKER: usize = 4;

/// What a worker counted: its flow table's statistics, alerts written, intel sightings.
#[derive(Debug)]
pub(crate) struct WorkerTotals {
    table: islet_flow::TableStats,
    alerts: u64,
    sightings: u64,
    denied: u64,
    names_evicted: u64,
}

impl WorkerTotals {
    /// Add this worker's counts to `stats`.
    pub(crate) fn add_to(&self, stats: &mut Stats) {
        let wt = self;
        let t = &wt.table;
        stats.alerts += wt.alerts;
        stats.intel_sightings += wt.sightings;
        stats.policy_denied += wt.denied;
        stats.policy_names_evicted += wt.names_evicted;
        stats.flows_total += t.created;
        stats.flows_tcp += t.tcp;
        stats.flows_udp += t.udp;
        stats.flows_icmpv4 += t.icmpv4;
        stats.flows_icmpv6 += t.icmpv6;
        stats.flows_other += t.other;
        stats.flows_timeout += t.ended_timeout;
        stats.flows_forced += t.ended_forced;
        stats.flows_shutdown += t.ended_shutdown;
        stats.flows_emergency_entered += t.emergency_entered;
        stats.flows_active_max += t.active_max;
    }

    pub(crate) fn of(w: &Worker) -> WorkerTotals {
        WorkerTotals {
            table: w.stats().clone(),
            alerts: w.alerts(),
            sightings: w.intel.sightings_total,
            denied: w.policy.denied,
            names_evicted: w.policy.names_evicted(),
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the running pipeline's state, lent to the sharded loop for its length"
)]
fn run_sharded(
    cfg: &SensorConfig,
    n: usize,
    eve: EveOptions,
    judges: Judges,
    source: &mut dyn PacketSource,
    out: &mut (dyn Write + Send),
    progress: &mut dyn FnMut(Progress),
    dec: &mut Decoder,
    first: &mut u64,
    last: &mut u64,
) -> Result<(Option<CaptureError>, u64, Vec<WorkerTotals>), RunError> {
    let batch_pkts = cfg.sensor.batch_packets;
    std::thread::scope(|s| {
        let (wtx, wrx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = bounded(n * 4);
        let writer = s.spawn(move || -> Result<(), std::io::Error> {
            for buf in wrx {
                out.write_all(&buf)?;
            }
            out.flush()
        });
        let mut full_tx = Vec::new();
        let mut empty_rx = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..n {
            let (ftx, frx) = bounded::<Msg>(BATCHES_PER_WORKER);
            let (etx, erx) = bounded::<Batch>(BATCHES_PER_WORKER);
            for _ in 0..BATCHES_PER_WORKER - 1 {
                let _ = etx.send(Batch::default());
            }
            full_tx.push(ftx);
            empty_rx.push(erx);
            let wtx = wtx.clone();
            let fcfg = cfg.flow_config(n);
            let scfg = cfg.stream_config();
            let app = cfg.app_layer.enabled;
            let judges = judges.clone();
            handles.push(s.spawn(move || {
                let mut w = Worker::new(fcfg, scfg, app, eve, judges, &cfg.detect);
                for msg in frx {
                    match msg {
                        Msg::Batch(mut b) => {
                            let mut names = b.names.iter().peekable();
                            for (i, it) in b.items.iter().enumerate() {
                                while let Some((_, ts, l)) = names.next_if(|n| n.0 <= i) {
                                    w.learn(*ts, l);
                                }
                                if it.outer {
                                    w.outer(it.ts, &it.d.outer[0]);
                                } else {
                                    let frame =
                                        &b.data[it.off as usize..(it.off + it.len) as usize];
                                    w.packet(it.ts, frame, &it.d);
                                }
                            }
                            for (_, ts, l) in names {
                                w.learn(*ts, l);
                            }
                            w.tick(b.now_ns);
                            b.items.clear();
                            b.names.clear();
                            b.data.clear();
                            let _ = etx.send(b);
                            if w.out.len() >= FLUSH_BYTES {
                                let _ = wtx.send(std::mem::take(&mut w.out));
                            }
                        }
                        Msg::Finish(now) => {
                            let _ = w.finish(now, |buf| {
                                if buf.is_empty() {
                                    return Ok(());
                                }
                                wtx.send(std::mem::take(buf))
                            });
                            break;
                        }
                    }
                }
                let _ = wtx.send(std::mem::take(&mut w.out));
                (w.flows_logged, WorkerTotals::of(&w))
            }));
        }
        let mut cur: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
        let learn_names = judges.policy.is_some();
        let mut learned = Vec::new();
        let mut cnt = 0u64;
        let mut err = None;
        let send = |i: usize, cur: &mut Vec<Batch>, now: u64| {
            let next = empty_rx[i].recv().unwrap_or_default();
            let mut b = std::mem::replace(&mut cur[i], next);
            b.now_ns = now;
            let _ = full_tx[i].send(Msg::Batch(b));
        };
        loop {
            let r = source.read_batch(batch_pkts, &mut |p| {
                cnt += 1;
                *first = (*first).min(p.ts_ns);
                *last = (*last).max(p.ts_ns);
                let now = *last;
                dec.feed(p, cnt, &mut |ts, step| {
                    let (i, item, frame): (usize, Item, &[u8]) = match step {
                        Step::Outer(o) => {
                            let mut d = Decoded::default();
                            d.outer[0] = *o;
                            (
                                shard(&o.tuple, n),
                                Item {
                                    ts,
                                    off: 0,
                                    len: 0,
                                    d,
                                    outer: true,
                                },
                                &[],
                            )
                        }
                        Step::Packet(f, d) => (
                            shard(&d.tuple, n),
                            Item {
                                ts,
                                off: 0,
                                len: f.len() as u32,
                                d: *d,
                                outer: false,
                            },
                            f,
                        ),
                    };
                    let b = &mut cur[i];
                    let off = b.data.len() as u32;
                    b.data.extend_from_slice(frame);
                    b.items.push(Item { off, ..item });
                    if b.items.len() >= batch_pkts {
                        send(i, &mut cur, now);
                    }
                    // Names from a DNS answer go to every worker, after this packet and before
                    // whatever follows it in the capture.
                    if learn_names && !item.outer && dns_response(&item.d, frame, &mut learned) {
                        for j in 0..n {
                            for l in &learned {
                                let at = cur[j].items.len();
                                cur[j].names.push((at, ts, l.clone()));
                            }
                            if cur[j].names.len() >= batch_pkts {
                                send(j, &mut cur, now);
                            }
                        }
                    }
                });
            });
            if !dec.out.is_empty() && dec.out.len() >= FLUSH_BYTES {
                let _ = wtx.send(std::mem::take(&mut dec.out));
            }
            let (done, total) = source.progress();
            progress(Progress {
                bytes_done: done,
                bytes_total: total,
                packets: cnt,
            });
            match r {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        for i in 0..n {
            if !cur[i].items.is_empty() {
                send(i, &mut cur, *last);
            }
            let _ = full_tx[i].send(Msg::Finish(*last));
        }
        let mut flows = 0;
        let mut stats = Vec::new();
        for h in handles {
            if let Ok((f, st)) = h.join() {
                flows += f;
                stats.push(st);
            }
        }
        dec.finish_detect();
        let _ = wtx.send(std::mem::take(&mut dec.out));
        drop(wtx);
        match writer.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(RunError::Output(e)),
            Err(_) => {
                return Err(RunError::Output(std::io::Error::other(
                    "writer thread failed",
                )));
            }
        }
        Ok((err, flows, stats))
    })
}
