//! A SYN flood spread over many destinations, none of them past the per-service threshold:
//! judged per second over all SYNs. A second with `total_syns_per_second` SYNs, at most
//! `max_answered_ratio` of them answered by a SYN/ACK, from at least `spoofed_sources` sources
//! to as many destination services, is a flood second (a sweep of forged SYNs over addresses
//! where nothing answers); consecutive flood seconds, until `quiet_s` pass without one, are
//! one incident, reported when it ends.

use crate::config::FloodConfig;
use crate::flood::ip_bytes;
use crate::sketch::{Hll, hash64};
use crate::{Detection, Evidence, MAX_EVIDENCE_FLOWS, PacketFacts, SYN_FLOOD};
use std::net::IpAddr;

const SEC: u64 = 1_000_000_000;

#[derive(Debug)]
struct Window {
    start_ns: u64,
    last_ns: u64,
    syns: u64,
    answered: u64,
    second: u64,
    second_count: u64,
    peak: u64,
    sources: Hll,
    dests: Hll,
    flows: Vec<u64>,
    first: Option<(IpAddr, IpAddr, u16, u16)>,
}

impl Window {
    fn new(ts: u64) -> Window {
        Window {
            start_ns: ts,
            last_ns: ts,
            syns: 0,
            answered: 0,
            second: ts / SEC,
            second_count: 0,
            peak: 0,
            sources: Hll::default(),
            dests: Hll::default(),
            flows: Vec::new(),
            first: None,
        }
    }

    fn syn(&mut self, p: &PacketFacts) {
        if self.syns == 0 {
            self.start_ns = p.ts_ns;
        }
        self.syns += 1;
        self.last_ns = p.ts_ns;
        let s = p.ts_ns / SEC;
        if s != self.second {
            self.second = s;
            self.second_count = 0;
        }
        self.second_count += 1;
        self.peak = self.peak.max(self.second_count);
        self.sources.add(hash64(&ip_bytes(p.src)));
        let mut b = [0u8; 18];
        b[..16].copy_from_slice(&ip_bytes(p.dst));
        b[16..].copy_from_slice(&p.dport.to_be_bytes());
        self.dests.add(hash64(&b));
        if self.flows.len() < MAX_EVIDENCE_FLOWS {
            self.flows.push(p.flow_id);
        }
        self.first.get_or_insert((p.src, p.dst, p.sport, p.dport));
    }
}

/// The current second of all SYNs, and the spread flood in progress.
#[derive(Debug)]
pub(crate) struct Spread {
    cfg: FloodConfig,
    sec: Window,
    flood: Option<Window>,
    last_flood_ns: u64,
}

impl Spread {
    pub(crate) fn new(cfg: FloodConfig) -> Spread {
        Spread {
            cfg,
            sec: Window::new(0),
            flood: None,
            last_flood_ns: 0,
        }
    }

    pub(crate) fn syn(&mut self, p: &PacketFacts) {
        self.sec.syn(p);
        if let Some(f) = self.flood.as_mut() {
            f.syn(p);
        }
    }

    pub(crate) fn answered(&mut self) {
        self.sec.answered += 1;
        if let Some(f) = self.flood.as_mut() {
            f.answered += 1;
        }
    }

    /// A new second began at `now`: judge the one before.
    pub(crate) fn tick(&mut self, now: u64, out: &mut Vec<Detection>) {
        let sec = std::mem::replace(&mut self.sec, Window::new(now));
        let c = &self.cfg;
        let flooding = sec.syns >= u64::from(c.total_syns_per_second)
            && (sec.answered as f64) <= c.max_answered_ratio * sec.syns as f64
            && sec.sources.estimate() >= c.spoofed_sources
            && sec.dests.estimate() >= c.spoofed_sources;
        if flooding {
            self.last_flood_ns = sec.last_ns;
            if self.flood.is_none() {
                self.flood = Some(sec);
            }
        } else if self.flood.is_some()
            && now
                >= self
                    .last_flood_ns
                    .saturating_add(c.quiet_s.saturating_mul(SEC))
            && let Some(f) = self.flood.take()
        {
            self.report(f, out);
        }
    }

    pub(crate) fn finish(&mut self, out: &mut Vec<Detection>) {
        self.tick(u64::MAX, out);
        if let Some(f) = self.flood.take() {
            self.report(f, out);
        }
    }

    fn report(&self, f: Window, out: &mut Vec<Detection>) {
        let Some((src, dst, sport, dport)) = f.first else {
            return;
        };
        let sources = f.sources.estimate();
        let dests = f.dests.estimate();
        out.push(Detection {
            kind: SYN_FLOOD,
            severity: 1,
            summary: format!(
                "islet detect: SYN flood on {dests} destinations: {} SYNs, peak {}/s, {} answered, spoofed, about {sources} distinct sources",
                f.syns, f.peak, f.answered
            ),
            src,
            dst,
            sport,
            dport,
            proto: 6,
            ts_ns: f.last_ns,
            flow_id: f.flows.first().copied().unwrap_or(0),
            metadata: vec![
                ("victim", vec![format!("{dests} destinations")]),
                ("flood_source", vec!["spoofed".to_string()]),
            ],
            evidence: Evidence {
                flow_ids: f.flows,
                counts: vec![
                    ("syns", f.syns),
                    ("answered", f.answered),
                    ("peak_syns_per_second", f.peak),
                    ("distinct_sources", sources),
                    ("distinct_destinations", dests),
                ],
                start_ns: f.start_ns,
                end_ns: f.last_ns,
            },
        });
    }
}
