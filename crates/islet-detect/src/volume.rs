//! Volumetric DDoS (T1498/T1499): packets and bytes per destination host and protocol per
//! second, FastNetMon-style thresholds.
//!
//! Every packet adds to two count-min sketches keyed by (destination, protocol) for the
//! current second. A key past `pps` packets or `mbps` megabits in one second becomes a victim,
//! tracked with its peak rates, distinct sources (HyperLogLog) and heaviest sources
//! (space-saving) until `quiet_s` seconds pass below the thresholds; the incident is then one
//! `volumetric_ddos` detection naming the victim, the protocol, the peaks and the sources (or
//! "spoofed, N distinct sources").
//!
//! Memory: two fixed sketches and at most `max_victims` victims.

use crate::config::VolumeConfig;
use crate::sketch::{Hll, TopK, hash64};
use crate::{Detection, Evidence, MAX_EVIDENCE_FLOWS, VOLUMETRIC_DDOS};
use std::net::IpAddr;

const SEC: u64 = 1_000_000_000;

/// One packet as the volumetric detector reads it.
#[derive(Clone, Copy, Debug)]
pub struct VolumePacket {
    pub ts_ns: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub len: u32,
    /// A stable hash of (destination, protocol), computed by the caller once.
    pub key_hash: u64,
}

/// A stable hash of (destination address bytes, protocol) for [`VolumePacket::key_hash`]:
/// two multiplies, as every packet pays it.
pub fn key_hash(dst: &[u8; 16], proto: u8) -> u64 {
    let (a, b) = dst.split_at(8);
    let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
    let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
    let h = (a ^ u64::from(proto) << 56).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    (h ^ (h >> 29)).wrapping_mul(0x1656_67b1_9e37_79f9) ^ (h >> 32)
}

/// Packets and bytes per key in one second: a count-min sketch of 2 rows × 4096 cells, each
/// cell both counters side by side, so a packet costs two cache-line updates. Estimates never
/// undercount.
#[derive(Clone, Debug)]
struct RateSketch {
    rows: Box<[[(u32, u32); RateSketch::W]; 2]>,
}

impl Default for RateSketch {
    fn default() -> Self {
        RateSketch {
            rows: Box::new([[(0, 0); RateSketch::W]; 2]),
        }
    }
}

impl RateSketch {
    const W: usize = 1 << 12;

    /// Add one packet of `len` bytes; the key's packets and bytes so far this second.
    fn add(&mut self, hash: u64, len: u32) -> (u64, u64) {
        let i = (hash as usize) % Self::W;
        let j = ((hash >> 32) as usize) % Self::W;
        let a = &mut self.rows[0][i];
        a.0 = a.0.saturating_add(1);
        a.1 = a.1.saturating_add(len);
        let (p0, b0) = *a;
        let b = &mut self.rows[1][j];
        b.0 = b.0.saturating_add(1);
        b.1 = b.1.saturating_add(len);
        (u64::from(p0.min(b.0)), u64::from(b0.min(b.1)))
    }

    fn clear(&mut self) {
        for r in self.rows.iter_mut() {
            r.fill((0, 0));
        }
    }
}

#[derive(Debug)]
struct Victim {
    start_ns: u64,
    last_flood_ns: u64,
    pkts: u64,
    bytes: u64,
    second: u64,
    sec_pkts: u64,
    sec_bytes: u64,
    peak_pps: u64,
    peak_bps: u64,
    sources: Hll,
    top: TopK<IpAddr, 5>,
    first: (IpAddr, u16, u16),
    flows: Vec<u64>,
}

/// Volumetric state of one sensor.
#[derive(Debug)]
pub struct Volume {
    cfg: VolumeConfig,
    /// End of the current second (capture time).
    second_end: u64,
    rates: RateSketch,
    victims: hashbrown::HashMap<(IpAddr, u8), Victim>,
    /// Victims not tracked for the `max_victims` bound.
    pub refused: u64,
}

impl Volume {
    pub fn new(cfg: VolumeConfig) -> Volume {
        Volume {
            cfg,
            second_end: 0,
            rates: RateSketch::default(),
            victims: hashbrown::HashMap::new(),
            refused: 0,
        }
    }

    fn threshold_bytes(&self) -> u64 {
        self.cfg.mbps.saturating_mul(1_000_000) / 8
    }

    /// One packet. `flow_id` names the flow the packet would start, asked only for the few
    /// packets kept as evidence.
    pub fn packet(
        &mut self,
        p: &VolumePacket,
        flow_id: impl FnOnce() -> u64,
        out: &mut Vec<Detection>,
    ) {
        if p.ts_ns >= self.second_end || p.ts_ns + SEC < self.second_end {
            self.next_second(p.ts_ns, out);
        }
        let (pps, bytes) = self.rates.add(p.key_hash, p.len);
        let key = (p.dst, p.proto);
        let flooding = pps >= self.cfg.pps || bytes >= self.threshold_bytes();
        if let Some(v) = self.victims.get_mut(&key) {
            add(v, p, flow_id);
            if flooding {
                v.last_flood_ns = p.ts_ns;
            }
            return;
        }
        if !flooding {
            return;
        }
        if self.victims.len() >= self.cfg.max_victims {
            self.refused += 1;
            return;
        }
        let mut v = Victim {
            start_ns: p.ts_ns,
            last_flood_ns: p.ts_ns,
            // This second's packets before it became a victim are counted, not seen.
            pkts: pps - 1,
            bytes: bytes.saturating_sub(u64::from(p.len)),
            second: p.ts_ns / SEC,
            sec_pkts: pps - 1,
            sec_bytes: bytes.saturating_sub(u64::from(p.len)),
            peak_pps: 0,
            peak_bps: 0,
            sources: Hll::default(),
            top: TopK::default(),
            first: (p.src, p.sport, p.dport),
            flows: Vec::new(),
        };
        add(&mut v, p, flow_id);
        self.victims.insert(key, v);
    }

    fn next_second(&mut self, now: u64, out: &mut Vec<Detection>) {
        self.second_end = (now / SEC + 1).saturating_mul(SEC);
        self.rates.clear();
        let quiet = self.cfg.quiet_s.saturating_mul(SEC);
        let mut ended: Vec<((IpAddr, u8), Victim)> = self
            .victims
            .extract_if(|_, v| now >= v.last_flood_ns.saturating_add(quiet))
            .collect();
        ended.sort_by_key(|(k, v)| (v.start_ns, *k));
        for (k, v) in ended {
            out.push(self.judge(k, v));
        }
    }

    /// The input ended: report the incidents still open.
    pub fn finish(&mut self, out: &mut Vec<Detection>) {
        let mut all: Vec<((IpAddr, u8), Victim)> = self.victims.drain().collect();
        all.sort_by_key(|(k, v)| (v.start_ns, *k));
        for (k, v) in all {
            out.push(self.judge(k, v));
        }
    }

    /// Victims tracked now.
    pub fn tracked(&self) -> usize {
        self.victims.len()
    }

    fn judge(&self, (dst, proto): (IpAddr, u8), v: Victim) -> Detection {
        let proto_name = match proto {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            1 | 58 => "icmp".to_string(),
            n => format!("ip proto {n}"),
        };
        let sources = v.sources.estimate();
        let spoofed = sources >= self.cfg.spoofed_sources;
        let top: Vec<String> = v.top.top().iter().map(|(a, _)| a.to_string()).collect();
        let who = if spoofed {
            format!("spoofed, {sources} distinct sources")
        } else {
            format!("from {}", top.join(", "))
        };
        let mbps = v.peak_bps as f64 * 8.0 / 1e6;
        let (src, sport, dport) = v.first;
        let mut metadata = vec![
            ("victim", vec![dst.to_string()]),
            ("attack_type", vec![format!("{proto_name} flood")]),
            (
                "flood_source",
                vec![if spoofed { "spoofed" } else { "single" }.to_string()],
            ),
        ];
        if !spoofed {
            metadata.push(("top_sources", top));
        }
        Detection {
            kind: VOLUMETRIC_DDOS,
            severity: 1,
            summary: format!(
                "islet detect: {proto_name} flood on {dst}: peak {} packets/s, {mbps:.1} Mbit/s, {} packets, {who}",
                v.peak_pps, v.pkts
            ),
            src,
            dst,
            sport,
            dport,
            proto,
            ts_ns: v.last_flood_ns,
            flow_id: v.flows.first().copied().unwrap_or(0),
            metadata,
            evidence: Evidence {
                flow_ids: v.flows,
                counts: vec![
                    ("packets", v.pkts),
                    ("bytes", v.bytes),
                    ("peak_packets_per_second", v.peak_pps),
                    ("peak_bytes_per_second", v.peak_bps),
                    ("distinct_sources", sources),
                ],
                start_ns: v.start_ns,
                end_ns: v.last_flood_ns,
            },
        }
    }
}

fn add(v: &mut Victim, p: &VolumePacket, flow_id: impl FnOnce() -> u64) {
    let s = p.ts_ns / SEC;
    if s != v.second {
        v.second = s;
        v.sec_pkts = 0;
        v.sec_bytes = 0;
    }
    v.pkts += 1;
    v.bytes += u64::from(p.len);
    v.sec_pkts += 1;
    v.sec_bytes += u64::from(p.len);
    v.peak_pps = v.peak_pps.max(v.sec_pkts);
    v.peak_bps = v.peak_bps.max(v.sec_bytes);
    let src = match p.src {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    v.sources.add(hash64(&src));
    v.top.add(p.src);
    if v.flows.len() < MAX_EVIDENCE_FLOWS {
        v.flows.push(flow_id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ts: u64, src: [u8; 4], dst: [u8; 4], len: u32) -> VolumePacket {
        let mut d = [0u8; 16];
        d[..4].copy_from_slice(&dst);
        VolumePacket {
            ts_ns: ts,
            src: IpAddr::from(src),
            dst: IpAddr::from(dst),
            proto: 17,
            sport: 5353,
            dport: 53,
            len,
            key_hash: key_hash(&d, 17),
        }
    }

    #[test]
    fn a_flood_is_one_detection_and_busy_hosts_below_threshold_none() {
        let cfg = VolumeConfig {
            pps: 1_000,
            max_victims: 2,
            ..VolumeConfig::default()
        };
        let mut v = Volume::new(cfg);
        let mut out = Vec::new();
        // 900 packets a second to each of 50 hosts for 5 s: busy, not a flood.
        for s in 0..5u64 {
            for i in 0..900u64 {
                for h in 0..50u8 {
                    v.packet(
                        &pkt(s * SEC + i * 1_000_000, [10, 0, 1, h], [10, 0, 0, h], 200),
                        || 0,
                        &mut out,
                    );
                }
            }
        }
        assert!(out.is_empty(), "{out:?}");
        // 5,000 packets in one second from one source to one host, then quiet.
        for i in 0..5_000u64 {
            v.packet(
                &pkt(
                    10 * SEC + i * 200_000,
                    [192, 0, 2, 7],
                    [10, 0, 0, 99],
                    1_000,
                ),
                || i,
                &mut out,
            );
        }
        for h in 0..3u8 {
            v.packet(
                &pkt(30 * SEC, [10, 0, 1, h], [10, 0, 0, h], 100),
                || 0,
                &mut out,
            );
        }
        assert_eq!(out.len(), 1, "{out:?}");
        let d = &out[0];
        assert_eq!(d.kind.name, "volumetric_ddos");
        assert_eq!(d.dst, IpAddr::from([10, 0, 0, 99]));
        assert_eq!(d.metadata[3].1, ["192.0.2.7"]);
        assert_eq!(d.evidence.counts[0], ("packets", 5_000));
        assert!(v.tracked() <= 2);
    }
}
