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
//! Answered probes to management ports are not failures; probes to them that failed are listed
//! in the scan's alert (`management_ports`): a scan that touched them is one alert, not one per
//! port (a management port is "reached" only by a completed handshake, which the sensor
//! reports on its own).
//!
//! A source is tracked from its second probe: its first waits in a direct-mapped doorkeeper
//! (as many slots as `scan.max_sources`, up to 2^20), so a spoofed flood whose sources send one
//! SYN each costs one slot write per SYN, not a table entry.
//!
//! Memory: at most `scan.max_sources` sources × `scan.max_probes_per_source` pairs and the
//! doorkeeper, whatever the traffic. SYN floods are [`crate::flood`]'s.

use crate::config::ScanConfig;
use crate::flood::ip_bytes;
use crate::sketch::hash64;
use crate::{Detection, Evidence, MAX_EVIDENCE_FLOWS, PORT_SCAN, PacketFacts};
use std::collections::VecDeque;
use std::net::IpAddr;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const SEC: u64 = 1_000_000_000;

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
    /// Its failed pairs have had a scan's shape (sticky for the window), and how many failed
    /// pairs there were when that was last looked at.
    scanning: bool,
    checked: usize,
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

/// Scan state of one sensor.
#[derive(Debug)]
pub struct Recon {
    scan: ScanConfig,
    /// Management ports (protocol, port), listed in a scan's alert when it probed them.
    management: Vec<(u8, u16)>,
    scanners: hashbrown::HashMap<IpAddr, Scanner>,
    /// First probes of sources not tracked yet, direct-mapped by source (a power of two).
    door: Vec<Option<Door>>,
    scan_order: VecDeque<(IpAddr, u64)>,
    seq: u64,
    /// Counters: sources evicted, pairs refused.
    pub evicted_sources: u64,
    pub refused_probes: u64,
}

impl Recon {
    pub fn new(scan: ScanConfig, management: Vec<(u8, u16)>) -> Recon {
        let door = scan.max_sources.clamp(1_024, 1 << 20).next_power_of_two();
        Recon {
            door: vec![None; door],
            scan,
            management,
            scanners: hashbrown::HashMap::new(),
            scan_order: VecDeque::new(),
            seq: 0,
            evicted_sources: 0,
            refused_probes: 0,
        }
    }

    /// One packet. Detections whose window or incident ended are appended to `out`.
    pub fn packet(&mut self, p: &PacketFacts, out: &mut Vec<Detection>) {
        match p.proto {
            6 => {
                let f = p.tcp_flags;
                if f & (SYN | ACK | RST) == SYN {
                    self.probe(p, 1, out);
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

    /// Is `src` scanning now: do its failed probes of this window have a scan's shape
    /// (`ports_per_host` ports of one host, or `hosts_per_port` hosts on one port)? What it
    /// does to admin ports then is the scan's, not a fan-out. Looked at again only when its
    /// failed pairs grew by 16 since the last look, and sticky once true, so a scanner's
    /// admin probes cost amortised O(1) each.
    pub fn is_scanning(&mut self, src: IpAddr) -> bool {
        let (pph, hpp) = (self.scan.ports_per_host, self.scan.hosts_per_port);
        let Some(s) = self.scanners.get_mut(&src) else {
            return false;
        };
        let n = s.failed.len();
        if s.scanning || n < pph.min(hpp) as usize || n < s.checked + 16 && s.checked > 0 {
            return s.scanning;
        }
        s.checked = n;
        let mut per_host: hashbrown::HashMap<IpAddr, u32> = hashbrown::HashMap::new();
        let mut per_port: hashbrown::HashMap<u16, u32> = hashbrown::HashMap::new();
        for (h, p) in &s.failed {
            let a = per_host.entry(*h).or_default();
            *a += 1;
            let b = per_port.entry(*p).or_default();
            *b += 1;
            if *a >= pph || *b >= hpp {
                s.scanning = true;
                break;
            }
        }
        s.scanning
    }

    /// Sources tracked now (within `scan.max_sources`).
    pub fn tracked(&self) -> usize {
        self.scanners.len()
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
                scanning: false,
                checked: 0,
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
                seq: 0,
                ack: 0,
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
        // Management ports the scan probed without reaching them.
        let mut mgmt: Vec<(u8, u16)> = self
            .management
            .iter()
            .filter(|(proto, port)| {
                // Failed pairs do not keep their protocol: a TCP port counts if the scan sent
                // TCP probes, a UDP port if it sent UDP ones.
                let sent = if *proto == 17 { 16 } else { 15 };
                per_port.contains_key(port) && s.kinds & sent != 0
            })
            .copied()
            .collect();
        mgmt.sort();
        mgmt.dedup();
        if !mgmt.is_empty() {
            metadata.push((
                "management_ports",
                mgmt.iter()
                    .map(|(proto, port)| {
                        format!("{}/{port}", if *proto == 6 { "tcp" } else { "udp" })
                    })
                    .collect(),
            ));
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
            seq: 0,
            ack: 0,
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
        let mut r = Recon::new(ScanConfig::default(), Vec::new());
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
