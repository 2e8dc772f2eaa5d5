//! Scans and floods, judged from every packet's header in capture order.
//!
//! **Scans.** A probe is a TCP packet with SYN and without ACK or RST (SYN and connect scans),
//! or without SYN, ACK and RST (FIN, NULL and Xmas scans); an ICMP destination-unreachable
//! quoting a datagram rejects a probe to that port (UDP scans, filtered ports). A SYN/ACK back
//! answers a probe. Per source and window, the failed (host, port) pairs are kept; when the
//! window ends, a source that failed on `ports_per_host` ports of one host (vertical) or on
//! `hosts_per_port` hosts of one port (horizontal) is one `port_scan` detection with its
//! counts — never one per probe.
//!
//! **SYN floods.** SYNs are counted per destination service per second in a count-min sketch;
//! a service past `syns_per_second` becomes a victim, tracked with its SYN/ACKs, peak rate,
//! distinct sources (HyperLogLog) and heaviest sources (space-saving) until `quiet_s` seconds
//! pass without a flood second. A flood spread over many destinations is judged per second
//! over all SYNs. Either is reported when it ends, if few SYNs were answered, as
//! single-source or spoofed by its distinct-source count.
//!
//! A source is tracked from its second probe: its first waits in a direct-mapped doorkeeper
//! (as many slots as `scan.max_sources`, up to 2^20), so a spoofed flood whose sources send one
//! SYN each costs one slot write per SYN, not a table entry.
//!
//! Memory: at most `scan.max_sources` sources × `scan.max_probes_per_source` pairs, the
//! doorkeeper,
//! `flood.max_victims` victims, and fixed sketches — whatever the traffic.

use crate::config::{FloodConfig, ScanConfig};
use crate::sketch::{CountMin, Hll, TopK, hash64};
use crate::{Detection, Evidence, MAX_EVIDENCE_FLOWS, PORT_SCAN, PacketFacts, SYN_FLOOD};
use std::collections::VecDeque;
use std::net::IpAddr;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const SEC: u64 = 1_000_000_000;

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn service_hash(ip: IpAddr, port: u16) -> u64 {
    let mut b = [0u8; 18];
    b[..16].copy_from_slice(&ip_bytes(ip));
    b[16..].copy_from_slice(&port.to_be_bytes());
    hash64(&b)
}

/// One source's probes in its current window.
#[derive(Debug)]
struct Scanner {
    start_ns: u64,
    last_ns: u64,
    /// Failed (host, port) pairs.
    failed: hashbrown::HashSet<(IpAddr, u16)>,
    /// Probes sent and answered (SYN/ACK back).
    probes: u64,
    answered: u64,
    rejected: u64,
    /// Probe kinds seen: bit 0 SYN, 1 FIN, 2 NULL, 3 Xmas, 4 UDP (rejected).
    kinds: u8,
    first: (IpAddr, u16, u16, u8),
    flows: Vec<u64>,
    seq: u64,
    /// Pairs refused for the per-source bound.
    overflow: u64,
}

/// A source's first probe, waiting for a second before the source is tracked.
#[derive(Clone, Copy, Debug)]
struct Door {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    ts_ns: u64,
    flow_id: u64,
    kind: u8,
}

/// A flood victim (one destination service, or all destinations for a spread flood).
#[derive(Debug)]
struct Victim {
    dst: Option<(IpAddr, u16)>,
    start_ns: u64,
    last_flood_ns: u64,
    syns: u64,
    answered: u64,
    /// SYNs in the current second and the peak per second.
    second: u64,
    second_count: u64,
    peak: u64,
    sources: Hll,
    dests: Hll,
    top: TopK<IpAddr, 5>,
    flows: Vec<u64>,
    /// The first SYN: source, destination, ports, protocol.
    first: Option<(IpAddr, IpAddr, u16, u16, u8)>,
}

impl Victim {
    fn new(dst: Option<(IpAddr, u16)>, ts: u64) -> Victim {
        Victim {
            dst,
            start_ns: ts,
            last_flood_ns: ts,
            syns: 0,
            answered: 0,
            second: ts / SEC,
            second_count: 0,
            peak: 0,
            sources: Hll::default(),
            dests: Hll::default(),
            top: TopK::default(),
            flows: Vec::new(),
            first: None,
        }
    }

    fn syn(&mut self, p: &PacketFacts) {
        if self.syns == 0 {
            self.start_ns = p.ts_ns;
        }
        self.syns += 1;
        let s = p.ts_ns / SEC;
        if s != self.second {
            self.second = s;
            self.second_count = 0;
        }
        self.second_count += 1;
        self.peak = self.peak.max(self.second_count);
        self.sources.add(hash64(&ip_bytes(p.src)));
        self.dests.add(service_hash(p.dst, p.dport));
        self.top.add(p.src);
        if self.flows.len() < MAX_EVIDENCE_FLOWS {
            self.flows.push(p.flow_id);
        }
        self.first
            .get_or_insert((p.src, p.dst, p.sport, p.dport, p.proto));
    }
}

/// Scan and flood state of one sensor.
#[derive(Debug)]
pub struct Recon {
    scan: ScanConfig,
    flood: FloodConfig,
    scanners: hashbrown::HashMap<IpAddr, Scanner>,
    /// First probes of sources not tracked yet, direct-mapped by source (a power of two).
    door: Vec<Option<Door>>,
    scan_order: VecDeque<(IpAddr, u64)>,
    seq: u64,
    /// SYNs and SYN/ACKs per destination service in the current second.
    syn_cm: CountMin,
    second: u64,
    victims: hashbrown::HashMap<(IpAddr, u16), Victim>,
    /// All SYNs of the current second, and the spread flood in progress.
    all: Victim,
    all_answered_second: u64,
    spread: Option<Victim>,
    /// Counters: sources evicted, pairs refused, victims refused.
    pub evicted_sources: u64,
    pub refused_probes: u64,
    pub refused_victims: u64,
}

impl Recon {
    pub fn new(scan: ScanConfig, flood: FloodConfig) -> Recon {
        let door = scan.max_sources.clamp(1_024, 1 << 20).next_power_of_two();
        Recon {
            door: vec![None; door],
            scan,
            flood,
            scanners: hashbrown::HashMap::new(),
            scan_order: VecDeque::new(),
            seq: 0,
            syn_cm: CountMin::default(),
            second: 0,
            victims: hashbrown::HashMap::new(),
            all: Victim::new(None, 0),
            all_answered_second: 0,
            spread: None,
            evicted_sources: 0,
            refused_probes: 0,
            refused_victims: 0,
        }
    }

    /// One packet. Detections whose window or incident ended are appended to `out`.
    pub fn packet(&mut self, p: &PacketFacts, out: &mut Vec<Detection>) {
        let now = p.ts_ns;
        if now / SEC != self.second {
            self.next_second(now, out);
        }
        // All SYNs are judged per second from the first of each second's worth.
        if self.all.syns > 0 && now >= self.all.start_ns.saturating_add(SEC) {
            self.all_second_end(now, out);
        }
        match p.proto {
            6 => {
                let f = p.tcp_flags;
                if f & (SYN | ACK | RST) == SYN {
                    self.probe(p, 1, out);
                    self.syn(p);
                } else if f & (SYN | ACK | RST) == 0 {
                    let kind = match f {
                        0 => 4,
                        x if x & FIN != 0 && x & 0x28 == 0x28 => 8,
                        x if x & FIN != 0 => 2,
                        _ => 0,
                    };
                    if kind != 0 {
                        self.probe(p, kind, out);
                    }
                } else if f & (SYN | ACK) == SYN | ACK {
                    self.answer(p);
                }
            }
            1 | 58 => {
                if let Some((proto, dst, dport)) = p.unreachable {
                    // The quoted probe was sent by the unreachable's addressee.
                    self.rejected(p.dst, (dst, dport, proto), p.ts_ns, out);
                }
            }
            _ => {}
        }
    }

    /// Sources and victims tracked now (each within its configured bound).
    pub fn tracked(&self) -> (usize, usize) {
        (self.scanners.len(), self.victims.len())
    }

    /// The input ended: report every open window and incident.
    pub fn finish(&mut self, out: &mut Vec<Detection>) {
        let mut srcs: Vec<(u64, IpAddr)> = self.scanners.iter().map(|(a, s)| (s.seq, *a)).collect();
        srcs.sort();
        for (_, a) in srcs {
            if let Some(s) = self.scanners.remove(&a) {
                self.judge_scan(a, s, out);
            }
        }
        self.all_second_end(u64::MAX, out);
        if let Some(v) = self.spread.take() {
            self.judge_flood(v, out);
        }
        let mut vs: Vec<Victim> = self.victims.drain().map(|(_, v)| v).collect();
        vs.sort_by_key(|v| (v.start_ns, v.dst));
        for v in vs {
            self.judge_flood(v, out);
        }
    }

    fn probe(&mut self, p: &PacketFacts, kind: u8, out: &mut Vec<Detection>) {
        let window = self.scan.window_s.saturating_mul(SEC);
        if let Some(s) = self.scanners.get(&p.src)
            && p.ts_ns >= s.start_ns.saturating_add(window)
            && let Some(s) = self.scanners.remove(&p.src)
        {
            self.judge_scan(p.src, s, out);
        }
        if !self.scanners.contains_key(&p.src) {
            // A source's first probe waits in the doorkeeper; its second admits it. A spoofed
            // flood's sources, one probe each, only ever overwrite doorkeeper slots.
            let slot = self.door_slot(p.src);
            match self.door[slot] {
                Some(d) if d.src == p.src && p.ts_ns < d.ts_ns.saturating_add(window) => {
                    self.door[slot] = None;
                    self.admit(&d, out);
                }
                _ => {
                    self.door[slot] = Some(Door {
                        src: p.src,
                        dst: p.dst,
                        sport: p.sport,
                        dport: p.dport,
                        proto: p.proto,
                        ts_ns: p.ts_ns,
                        flow_id: p.flow_id,
                        kind,
                    });
                    return;
                }
            }
        }
        self.record(p.src, p.dst, p.dport, p.ts_ns, p.flow_id, kind);
    }

    fn door_slot(&self, src: IpAddr) -> usize {
        (hash64(&ip_bytes(src)) as usize) & (self.door.len() - 1)
    }

    /// Start tracking the source of `d`, its first probe.
    fn admit(&mut self, d: &Door, out: &mut Vec<Detection>) {
        self.seq += 1;
        let seq = self.seq;
        self.scanners.insert(
            d.src,
            Scanner {
                start_ns: d.ts_ns,
                last_ns: d.ts_ns,
                failed: hashbrown::HashSet::new(),
                probes: 0,
                answered: 0,
                rejected: 0,
                kinds: 0,
                first: (d.dst, d.sport, d.dport, d.proto),
                flows: Vec::new(),
                seq,
                overflow: 0,
            },
        );
        self.scan_order.push_back((d.src, seq));
        while self.scanners.len() > self.scan.max_sources {
            let Some((a, sq)) = self.scan_order.pop_front() else {
                break;
            };
            if self.scanners.get(&a).is_some_and(|s| s.seq == sq)
                && let Some(s) = self.scanners.remove(&a)
            {
                self.evicted_sources += 1;
                self.judge_scan(a, s, out);
            }
        }
        if self.scan_order.len() > 2 * self.scan.max_sources.max(1) {
            let live = &self.scanners;
            self.scan_order
                .retain(|(a, sq)| live.get(a).is_some_and(|s| s.seq == *sq));
        }
        self.record(d.src, d.dst, d.dport, d.ts_ns, d.flow_id, d.kind);
    }

    /// One probe of a tracked source.
    fn record(&mut self, src: IpAddr, dst: IpAddr, dport: u16, ts: u64, flow_id: u64, kind: u8) {
        let cap = self.scan.max_probes_per_source;
        if let Some(s) = self.scanners.get_mut(&src) {
            s.probes += 1;
            s.last_ns = ts;
            s.kinds |= kind;
            if s.failed.len() < cap {
                if s.failed.insert((dst, dport)) && s.flows.len() < MAX_EVIDENCE_FLOWS {
                    s.flows.push(flow_id);
                }
            } else if !s.failed.contains(&(dst, dport)) {
                s.overflow += 1;
                self.refused_probes += 1;
            }
        }
    }

    fn answer(&mut self, p: &PacketFacts) {
        // A SYN/ACK from dst:dport answers the probe its addressee sent there.
        let slot = self.door_slot(p.dst);
        if self.door[slot].is_some_and(|d| d.src == p.dst && d.dst == p.src && d.dport == p.sport) {
            self.door[slot] = None;
        }
        if let Some(s) = self.scanners.get_mut(&p.dst)
            && s.failed.remove(&(p.src, p.sport))
        {
            s.answered += 1;
        }
        self.all_answered_second += 1;
        if let Some(v) = self.victims.get_mut(&(p.src, p.sport)) {
            v.answered += 1;
        }
        if let Some(v) = self.spread.as_mut() {
            v.answered += 1;
        }
    }

    fn rejected(
        &mut self,
        scanner: IpAddr,
        (dst, dport, proto): (IpAddr, u16, u8),
        ts: u64,
        out: &mut Vec<Detection>,
    ) {
        let cap = self.scan.max_probes_per_source;
        if let Some(s) = self.scanners.get_mut(&scanner) {
            s.rejected += 1;
            s.last_ns = ts;
            if proto == 17 {
                s.kinds |= 16;
            }
            if s.failed.len() < cap {
                s.failed.insert((dst, dport));
            }
        } else if proto == 17 {
            // A UDP probe is only seen through its rejection: open a window for its sender.
            let p = PacketFacts {
                ts_ns: ts,
                src: scanner,
                dst,
                proto,
                sport: 0,
                dport,
                tcp_flags: 0,
                flow_id: 0,
                unreachable: None,
                len: 0,
            };
            self.probe(&p, 16, out);
            if let Some(s) = self.scanners.get_mut(&scanner) {
                s.rejected += 1;
                s.flows.clear();
            }
        }
    }

    fn judge_scan(&self, src: IpAddr, s: Scanner, out: &mut Vec<Detection>) {
        let least = self.scan.ports_per_host.min(self.scan.hosts_per_port);
        if (s.failed.len() as u64 + s.overflow) < u64::from(least) {
            return;
        }
        let mut per_host: hashbrown::HashMap<IpAddr, u32> = hashbrown::HashMap::new();
        let mut per_port: hashbrown::HashMap<u16, u32> = hashbrown::HashMap::new();
        for (h, p) in &s.failed {
            *per_host.entry(*h).or_default() += 1;
            *per_port.entry(*p).or_default() += 1;
        }
        let top_host = per_host
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(h, n)| (*h, *n));
        let top_port = per_port
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(p, n)| (*p, *n));
        let vertical = top_host.filter(|h| h.1 >= self.scan.ports_per_host);
        let horizontal = top_port.filter(|p| p.1 >= self.scan.hosts_per_port);
        if vertical.is_none() && horizontal.is_none() {
            return;
        }
        let kinds: Vec<String> = [
            (1, "syn"),
            (2, "fin"),
            (4, "null"),
            (8, "xmas"),
            (16, "udp"),
        ]
        .iter()
        .filter(|(b, _)| s.kinds & b != 0)
        .map(|(_, n)| (*n).to_string())
        .collect();
        let shape = match (vertical, horizontal) {
            (Some(_), Some(_)) => "vertical+horizontal",
            (Some(_), None) => "vertical",
            _ => "horizontal",
        };
        let summary = match (vertical, horizontal) {
            (Some((h, n)), _) => format!(
                "islet detect: {shape} port scan by {src}: {n} ports of {h} unanswered or rejected ({} hosts, {} ports in all)",
                per_host.len(),
                per_port.len()
            ),
            (None, Some((p, n))) => format!(
                "islet detect: horizontal scan by {src}: port {p} on {n} hosts unanswered or rejected"
            ),
            (None, None) => return,
        };
        let (dst, sport, dport, proto) = s.first;
        let mut metadata = vec![
            ("scanner", vec![src.to_string()]),
            ("scan_shape", vec![shape.to_string()]),
            ("scan_kinds", kinds),
        ];
        if let Some((h, _)) = vertical {
            metadata.push(("victim", vec![h.to_string()]));
        }
        if let Some((p, _)) = horizontal {
            metadata.push(("scanned_port", vec![p.to_string()]));
        }
        out.push(Detection {
            kind: PORT_SCAN,
            severity: 2,
            summary,
            src,
            dst,
            sport,
            dport,
            proto,
            ts_ns: s.last_ns,
            flow_id: s.flows.first().copied().unwrap_or(0),
            metadata,
            evidence: Evidence {
                flow_ids: s.flows,
                counts: vec![
                    ("probes", s.probes),
                    ("answered", s.answered),
                    ("rejected", s.rejected),
                    ("failed", s.failed.len() as u64 + s.overflow),
                    ("hosts", per_host.len() as u64),
                    ("ports", per_port.len() as u64),
                    ("max_ports_per_host", u64::from(top_host.map_or(0, |h| h.1))),
                    ("max_hosts_per_port", u64::from(top_port.map_or(0, |p| p.1))),
                ],
                start_ns: s.start_ns,
                end_ns: s.last_ns,
            },
        });
    }

    fn syn(&mut self, p: &PacketFacts) {
        let key = (p.dst, p.dport);
        if let Some(v) = self.victims.get_mut(&key) {
            v.syn(p);
            if v.second_count >= u64::from(self.flood.syns_per_second) {
                v.last_flood_ns = p.ts_ns;
            }
        } else {
            let n = self.syn_cm.add(service_hash(p.dst, p.dport), 1);
            if n >= self.flood.syns_per_second {
                if self.victims.len() < self.flood.max_victims {
                    let mut v = Victim::new(Some(key), p.ts_ns);
                    // The SYNs of this second before it became a victim are counted, not seen.
                    v.syns = u64::from(n) - 1;
                    v.second_count = u64::from(n) - 1;
                    v.syn(p);
                    v.last_flood_ns = p.ts_ns;
                    self.victims.insert(key, v);
                } else {
                    self.refused_victims += 1;
                }
            }
        }
        self.all.syn(p);
        if let Some(v) = self.spread.as_mut() {
            v.syn(p);
        }
    }

    fn next_second(&mut self, now: u64, out: &mut Vec<Detection>) {
        self.second = now / SEC;
        if let Some(v) = &self.spread
            && self.all.syns == 0
            && now
                >= v.last_flood_ns
                    .saturating_add(self.flood.quiet_s.saturating_mul(SEC))
            && let Some(v) = self.spread.take()
        {
            self.judge_flood(v, out);
        }
        self.syn_cm.clear();
        let quiet = self.flood.quiet_s.saturating_mul(SEC);
        let ended: Vec<(IpAddr, u16)> = self
            .victims
            .iter()
            .filter(|(_, v)| now >= v.last_flood_ns.saturating_add(quiet))
            .map(|(k, _)| *k)
            .collect();
        let mut ended: Vec<Victim> = ended
            .into_iter()
            .filter_map(|k| self.victims.remove(&k))
            .collect();
        ended.sort_by_key(|v| (v.start_ns, v.dst));
        for v in ended {
            self.judge_flood(v, out);
        }
    }

    /// The second of all SYNs is over: does it start or extend a spread flood?
    fn all_second_end(&mut self, now: u64, out: &mut Vec<Detection>) {
        let all = std::mem::replace(&mut self.all, Victim::new(None, now));
        let answered = std::mem::take(&mut self.all_answered_second);
        let flooding = all.syns >= u64::from(self.flood.total_syns_per_second)
            && (answered as f64) <= self.flood.max_answered_ratio * all.syns as f64
            && all.sources.estimate() >= self.flood.spoofed_sources
            && all.dests.estimate() >= self.flood.spoofed_sources;
        if flooding {
            match self.spread.as_mut() {
                Some(v) => v.last_flood_ns = all.start_ns,
                None => {
                    let mut v = all;
                    v.answered = answered;
                    v.last_flood_ns = v.start_ns;
                    self.spread = Some(v);
                }
            }
        } else if let Some(v) = &self.spread
            && now
                >= v.last_flood_ns
                    .saturating_add(self.flood.quiet_s.saturating_mul(SEC))
            && let Some(v) = self.spread.take()
        {
            self.judge_flood(v, out);
        }
    }

    fn judge_flood(&self, v: Victim, out: &mut Vec<Detection>) {
        if v.syns == 0 || (v.answered as f64) > self.flood.max_answered_ratio * v.syns as f64 {
            return;
        }
        let Some((src, first_dst, sport, dport, proto)) = v.first else {
            return;
        };
        let sources = v.sources.estimate();
        let spoofed = sources >= self.flood.spoofed_sources;
        let who = if spoofed {
            format!("spoofed, {sources} distinct sources")
        } else {
            let top: Vec<String> = v.top.top().iter().map(|(a, _)| a.to_string()).collect();
            format!("from {}", top.join(", "))
        };
        let (victim, dst) = match v.dst {
            Some((ip, port)) => (format!("{ip} port {port}"), ip),
            None => (format!("{} destinations", v.dests.estimate()), first_dst),
        };
        let summary = format!(
            "islet detect: SYN flood on {victim}: {} SYNs, peak {}/s, {} answered, {who}",
            v.syns, v.peak, v.answered
        );
        let mut metadata = vec![
            ("victim", vec![victim]),
            (
                "flood_source",
                vec![if spoofed { "spoofed" } else { "single" }.to_string()],
            ),
        ];
        if !spoofed {
            metadata.push((
                "top_sources",
                v.top.top().iter().map(|(a, _)| a.to_string()).collect(),
            ));
        }
        out.push(Detection {
            kind: SYN_FLOOD,
            severity: 1,
            summary,
            src,
            dst: v.dst.map_or(dst, |d| d.0),
            sport,
            dport,
            proto,
            ts_ns: v.last_flood_ns,
            flow_id: v.flows.first().copied().unwrap_or(0),
            metadata,
            evidence: Evidence {
                flow_ids: v.flows,
                counts: vec![
                    ("syns", v.syns),
                    ("answered", v.answered),
                    ("peak_syns_per_second", v.peak),
                    ("distinct_sources", sources),
                    ("distinct_destinations", v.dests.estimate()),
                ],
                start_ns: v.start_ns,
                end_ns: v.last_flood_ns,
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(ts: u64, src: u8, dst: u8, proto: u8, dport: u16, flags: u8) -> PacketFacts {
        PacketFacts {
            ts_ns: ts,
            src: IpAddr::from([10, 0, 0, src]),
            dst: IpAddr::from([10, 0, 1, dst]),
            proto,
            sport: 40_000,
            dport,
            tcp_flags: flags,
            flow_id: u64::from(dport),
            unreachable: None,
            len: 60,
        }
    }

    fn scans(out: &[Detection]) -> Vec<(IpAddr, Vec<String>)> {
        out.iter()
            .filter(|d| d.kind.name == "port_scan")
            .map(|d| (d.src, d.metadata[2].1.clone()))
            .collect()
    }

    #[test]
    fn stealth_and_udp_scans_and_answered_probes() {
        let mut r = Recon::new(ScanConfig::default(), FloodConfig::default());
        let mut out = Vec::new();
        // Xmas probes (FIN|PSH|URG) to 20 ports of one host.
        for port in 1..=20u16 {
            r.packet(&facts(u64::from(port) * MS, 1, 1, 6, port, 0x29), &mut out);
        }
        // A UDP scan seen only through ICMP port unreachables from 30 hosts, port 161.
        for h in 1..=30u8 {
            let mut icmp = facts(u64::from(h) * MS, 0, 0, 1, 0, 0);
            icmp.src = IpAddr::from([10, 0, 1, h]);
            icmp.dst = IpAddr::from([10, 0, 0, 2]);
            icmp.unreachable = Some((17, IpAddr::from([10, 0, 1, h]), 161));
            r.packet(&icmp, &mut out);
        }
        // 40 SYNs from a client, every one answered: not a scan.
        for port in 1..=40u16 {
            r.packet(&facts(u64::from(port) * MS, 3, 9, 6, port, SYN), &mut out);
            let mut ack = facts(u64::from(port) * MS + 1, 9, 3, 6, 40_000, SYN | ACK);
            ack.src = IpAddr::from([10, 0, 1, 9]);
            ack.dst = IpAddr::from([10, 0, 0, 3]);
            ack.sport = port;
            ack.dport = 40_000;
            r.packet(&ack, &mut out);
        }
        r.finish(&mut out);
        let s = scans(&out);
        assert_eq!(s.len(), 2, "{out:#?}");
        assert_eq!(
            s[0],
            (IpAddr::from([10, 0, 0, 1]), vec!["xmas".to_string()])
        );
        assert_eq!(s[1], (IpAddr::from([10, 0, 0, 2]), vec!["udp".to_string()]));
    }

    const MS: u64 = 1_000_000;
}
