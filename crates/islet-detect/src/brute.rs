//! Brute force (T1110): many short sessions from one source to one target's SSH or RDP.
//!
//! Judged from packet headers in capture order, for the configured ports only: a SYN from a
//! client opens a session, the first FIN or RST of it closes it, and a session that lasted at
//! most `short_s` seconds counts. `sessions` short sessions from one source to one target
//! within `window_s` are one `brute_force` detection (one per pair and window), as Zeek's
//! `SSH::Password_Guessing` counts guesses per source.
//!
//! Memory: at most `max_pairs` (source, target, port) pairs, each with at most
//! [`MAX_OPEN_PER_PAIR`] open sessions.

use crate::config::BruteConfig;
use crate::{BRUTE_FORCE, Detection, Evidence, MAX_EVIDENCE_FLOWS, PacketFacts};
use std::net::IpAddr;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const SEC: u64 = 1_000_000_000;

/// Open sessions tracked per pair (more are not timed).
pub const MAX_OPEN_PER_PAIR: usize = 64;

#[derive(Debug)]
struct Pair {
    window_start: u64,
    last_ns: u64,
    short: u64,
    sessions: u64,
    open: Vec<(u16, u64)>,
    flows: Vec<u64>,
    reported: bool,
    first_sport: u16,
    seq: u64,
}

/// Brute-force state of one sensor.
#[derive(Debug)]
pub struct Brute {
    cfg: BruteConfig,
    pairs: hashbrown::HashMap<(IpAddr, IpAddr, u16), Pair>,
    /// Pairs in the order they were first seen, for eviction (oldest first).
    order: std::collections::VecDeque<((IpAddr, IpAddr, u16), u64)>,
    seq: u64,
    /// Pairs dropped to stay within `max_pairs`.
    pub evicted: u64,
}

impl Brute {
    pub fn new(cfg: BruteConfig) -> Brute {
        Brute {
            cfg,
            pairs: hashbrown::HashMap::new(),
            order: std::collections::VecDeque::new(),
            seq: 0,
            evicted: 0,
        }
    }

    /// (source, target, port) pairs tracked now.
    pub fn tracked(&self) -> usize {
        self.pairs.len()
    }

    /// Does a TCP packet between these ports concern a watched service (either direction)?
    pub fn watches(&self, sport: u16, dport: u16) -> bool {
        self.cfg.ports.contains(&dport) || self.cfg.ports.contains(&sport)
    }

    pub fn packet(&mut self, p: &PacketFacts, out: &mut Vec<Detection>) {
        let f = p.tcp_flags;
        let to_server = self.cfg.ports.contains(&p.dport);
        if to_server && f & (SYN | ACK | RST) == SYN {
            self.open(p, out);
        } else if f & (FIN | RST) != 0 {
            let (key, sport) = if to_server {
                ((p.src, p.dst, p.dport), p.sport)
            } else {
                ((p.dst, p.src, p.sport), p.dport)
            };
            self.close(key, sport, p, out);
        }
    }

    fn open(&mut self, p: &PacketFacts, out: &mut Vec<Detection>) {
        let key = (p.src, p.dst, p.dport);
        let window = self.cfg.window_s.saturating_mul(SEC);
        if !self.pairs.contains_key(&key) {
            while self.pairs.len() >= self.cfg.max_pairs.max(1) {
                let Some((k, sq)) = self.order.pop_front() else {
                    break;
                };
                if self.pairs.get(&k).is_some_and(|v| v.seq == sq) {
                    self.pairs.remove(&k);
                    self.evicted += 1;
                }
            }
            self.seq += 1;
            self.order.push_back((key, self.seq));
        }
        let seq = self.seq;
        let pair = self.pairs.entry(key).or_insert_with(|| Pair {
            window_start: p.ts_ns,
            last_ns: p.ts_ns,
            short: 0,
            sessions: 0,
            open: Vec::new(),
            flows: Vec::new(),
            reported: false,
            first_sport: p.sport,
            seq,
        });
        if p.ts_ns >= pair.window_start.saturating_add(window) {
            pair.window_start = p.ts_ns;
            pair.short = 0;
            pair.sessions = 0;
            pair.flows.clear();
            pair.reported = false;
            pair.first_sport = p.sport;
        }
        pair.last_ns = p.ts_ns;
        pair.sessions += 1;
        if pair.open.iter().all(|(s, _)| *s != p.sport) && pair.open.len() < MAX_OPEN_PER_PAIR {
            pair.open.push((p.sport, p.ts_ns));
        }
        if pair.flows.len() < MAX_EVIDENCE_FLOWS {
            pair.flows.push(p.flow_id);
        }
        let _ = out;
    }

    fn close(
        &mut self,
        key: (IpAddr, IpAddr, u16),
        sport: u16,
        p: &PacketFacts,
        out: &mut Vec<Detection>,
    ) {
        let Some(pair) = self.pairs.get_mut(&key) else {
            return;
        };
        let Some(i) = pair.open.iter().position(|(s, _)| *s == sport) else {
            return;
        };
        let (_, start) = pair.open.swap_remove(i);
        pair.last_ns = p.ts_ns;
        if p.ts_ns.saturating_sub(start) > self.cfg.short_s.saturating_mul(SEC) {
            return;
        }
        pair.short += 1;
        if pair.short < self.cfg.sessions || pair.reported {
            return;
        }
        pair.reported = true;
        let (src, dst, port) = key;
        let service = match port {
            22 => "ssh".to_string(),
            3389 => "rdp".to_string(),
            n => format!("tcp/{n}"),
        };
        out.push(Detection {
            kind: BRUTE_FORCE,
            severity: 2,
            summary: format!(
                "islet detect: {src} appears to be guessing {service} passwords on {dst} ({} short sessions in {} s)",
                pair.short,
                p.ts_ns.saturating_sub(pair.window_start) / SEC
            ),
            src,
            dst,
            sport: pair.first_sport,
            dport: port,
            proto: 6,
            ts_ns: p.ts_ns,
            flow_id: pair.flows.first().copied().unwrap_or(0),
            metadata: vec![
                ("attacker", vec![src.to_string()]),
                ("victim", vec![dst.to_string()]),
                ("service", vec![service]),
            ],
            evidence: Evidence {
                flow_ids: pair.flows.clone(),
                counts: vec![("short_sessions", pair.short), ("sessions", pair.sessions)],
                start_ns: pair.window_start,
                end_ns: p.ts_ns,
            },
        });
    }
}
