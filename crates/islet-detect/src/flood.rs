//! SYN floods, judged by handshake completion.
//!
//! A Linux server answers every SYN to a listening port with a SYN/ACK (with SYN cookies once
//! its backlog fills) and every SYN to a closed port with a RST, so whether SYNs were answered
//! says nothing. What a flood lacks is the client's side: a raw-socket flooder's own kernel
//! answers the SYN/ACK with a RST, and a spoofed source never answers, so the server
//! retransmits its SYN/ACK into nowhere. A flood is therefore a high SYN rate to one service
//! with few **completed handshakes** (the client's ACK of the SYN/ACK, as the sensor's
//! [`crate::handshake::Handshakes`] table tells) — whether or not the server answers.
//!
//! SYNs are counted per destination service per second in a count-min sketch; a service past
//! `syns_per_second` becomes a victim, followed with its SYNs, SYN/ACKs, completions, client
//! resets after a SYN/ACK, SYN/ACK retransmits and server resets. Each second of a victim is
//! judged: at least `syns_per_second` SYNs of which at most `max_completed_ratio` completed,
//! and at least `syns_per_second` left incomplete, is a flood second, classified by its
//! sources: fewer than `spoofed_sources` distinct sources is `single` (own-address); more,
//! each sending several SYNs, `distributed`; more, about one SYN each, `spoofed`. Consecutive
//! flood seconds of one kind are a **phase**; a phase of another kind closes the one before,
//! so a spoofed phase after an own-address phase is its own alert. A phase is reported when it
//! ends (its victim quiet for `quiet_s`, another kind, or the input's end), with its bounds,
//! sources (heavy hitters, and the distinct-source estimate), peak rate and counts. Its first
//! second is also an [`Onset`], for mitigation. Legitimate load — many clients completing
//! handshakes — has no flood second and raises nothing.
//!
//! A flood spread over many destinations (none past the per-service threshold) is judged per
//! second over all SYNs, by how few were answered, as before: a spoofed sweep of many dead
//! addresses gets no SYN/ACKs.
//!
//! Memory: `flood.max_victims` victims (each two 1 KiB HyperLogLogs and a few counters) and
//! fixed sketches, whatever the traffic.

use crate::config::FloodConfig;
use crate::sketch::{CountMin, Hll, TopK, hash64};
use crate::{Detection, Evidence, MAX_EVIDENCE_FLOWS, PacketFacts, SYN_FLOOD};
use std::net::IpAddr;

const SEC: u64 = 1_000_000_000;

pub(crate) fn ip_bytes(ip: IpAddr) -> [u8; 16] {
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

/// Who sends a flood's SYNs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodSource {
    /// Few sources, each sending many SYNs from its own address.
    Single,
    /// Many sources, each sending several SYNs.
    Distributed,
    /// Many sources, about one SYN each: forged addresses.
    Spoofed,
}

impl FloodSource {
    pub fn name(self) -> &'static str {
        match self {
            FloodSource::Single => "single",
            FloodSource::Distributed => "distributed",
            FloodSource::Spoofed => "spoofed",
        }
    }
}

/// The first flood second of a phase: what a mitigation acts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Onset {
    /// When it was found (the packet that closed its first second).
    pub ts_ns: u64,
    /// Its first SYN.
    pub start_ns: u64,
    pub victim: (IpAddr, u16),
    pub kind: FloodSource,
    /// The second's heaviest sources with their SYNs, heaviest first.
    pub sources: Vec<(IpAddr, u64)>,
    pub syns_per_second: u64,
}

/// Counts of one phase (or one second).
#[derive(Clone, Debug, Default)]
struct Counts {
    syns: u64,
    synacks: u64,
    completed: u64,
    client_resets: u64,
    server_resets: u64,
    retransmits: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.syns += o.syns;
        self.synacks += o.synacks;
        self.completed += o.completed;
        self.client_resets += o.client_resets;
        self.server_resets += o.server_resets;
        self.retransmits += o.retransmits;
    }
}

#[derive(Debug)]
struct Phase {
    kind: FloodSource,
    start_ns: u64,
    end_ns: u64,
    seconds: u64,
    n: Counts,
    peak: u64,
    sources: Hll,
    top: TopK<IpAddr, 5>,
    flows: Vec<u64>,
    first: (IpAddr, u16),
}

/// One victim service: the second being counted and the phase in progress.
#[derive(Debug)]
struct Victim {
    dst: (IpAddr, u16),
    incident_start: u64,
    last_flood_ns: u64,
    /// Phases reported so far in this incident.
    phases: u32,
    /// SYNs of the first second counted before the service was a victim (reported with the
    /// first phase, not judged: their completions were not followed).
    before: u64,
    second: u64,
    sec_first_ns: u64,
    sec: Counts,
    sec_sources: Hll,
    sec_top: TopK<IpAddr, 5>,
    sec_flows: Vec<u64>,
    sec_first: Option<(IpAddr, u16)>,
    phase: Option<Phase>,
    /// Hashes of sources that completed a handshake with the victim (direct-mapped): not
    /// the flood's face.
    good: Box<[u64; GOOD]>,
}

/// Sources remembered per victim as having completed a handshake.
const GOOD: usize = 256;

fn good_slot(ip: IpAddr) -> (usize, u64) {
    let h = hash64(&ip_bytes(ip)) | 1;
    ((h as usize) & (GOOD - 1), h)
}

impl Victim {
    fn new(dst: (IpAddr, u16), ts: u64) -> Victim {
        Victim {
            dst,
            incident_start: ts,
            last_flood_ns: ts,
            phases: 0,
            before: 0,
            second: ts / SEC,
            sec_first_ns: ts,
            sec: Counts::default(),
            sec_sources: Hll::default(),
            sec_top: TopK::default(),
            sec_flows: Vec::new(),
            sec_first: None,
            phase: None,
            good: Box::new([0; GOOD]),
        }
    }

    fn is_good(&self, ip: IpAddr) -> bool {
        let (i, h) = good_slot(ip);
        self.good[i] == h
    }

    fn syn(&mut self, p: &PacketFacts) {
        if self.sec.syns == 0 {
            self.sec_first_ns = p.ts_ns;
        }
        self.sec.syns += 1;
        self.sec_sources.add(hash64(&ip_bytes(p.src)));
        self.sec_top.add(p.src);
        if self.sec_flows.len() < MAX_EVIDENCE_FLOWS {
            self.sec_flows.push(p.flow_id);
        }
        if self.sec_first.is_none() && !self.is_good(p.src) {
            self.sec_first = Some((p.src, p.sport));
        }
    }
}

/// SYN-flood state of one sensor.
#[derive(Debug)]
pub struct Flood {
    cfg: FloodConfig,
    /// SYNs per destination service in the current second.
    syn_cm: CountMin,
    second: u64,
    victims: hashbrown::HashMap<(IpAddr, u16), Victim>,
    spread: crate::spread::Spread,
    /// Phases begun since the last [`Flood::take_onsets`].
    onsets: Vec<Onset>,
    /// Services that crossed the threshold while `max_victims` were followed.
    pub refused_victims: u64,
}

impl Flood {
    pub fn new(cfg: FloodConfig) -> Flood {
        Flood {
            spread: crate::spread::Spread::new(cfg.clone()),
            cfg,
            syn_cm: CountMin::default(),
            second: 0,
            victims: hashbrown::HashMap::new(),
            onsets: Vec::new(),
            refused_victims: 0,
        }
    }

    /// Is this service followed as a victim now? (Its SYN/ACKs are then worth tracking.)
    pub fn is_victim(&self, ip: IpAddr, port: u16) -> bool {
        !self.victims.is_empty() && self.victims.contains_key(&(ip, port))
    }

    /// Victims followed now.
    pub fn tracked(&self) -> usize {
        self.victims.len()
    }

    /// Phases that began since the last call.
    pub fn take_onsets(&mut self) -> Vec<Onset> {
        std::mem::take(&mut self.onsets)
    }

    /// Time moved on to `now`: close the seconds before it, and the phases gone quiet.
    pub fn tick(&mut self, now: u64, out: &mut Vec<Detection>) {
        if now / SEC == self.second {
            return;
        }
        self.second = now / SEC;
        self.syn_cm.clear();
        self.spread.tick(now, out);
        let quiet = self.cfg.quiet_s.saturating_mul(SEC);
        let mut ended = Vec::new();
        for (k, v) in self.victims.iter_mut() {
            if v.second < now / SEC {
                close_second(&self.cfg, v, now, &mut self.onsets, out);
                v.second = now / SEC;
            }
            if now >= v.last_flood_ns.saturating_add(quiet) {
                ended.push(*k);
            }
        }
        ended.sort();
        for k in ended {
            if let Some(mut v) = self.victims.remove(&k) {
                end_phase(&mut v, out);
            }
        }
    }

    /// A SYN (without ACK) to `p.dst:p.dport`.
    pub fn syn(&mut self, p: &PacketFacts, out: &mut Vec<Detection>) {
        self.tick(p.ts_ns, out);
        self.spread.syn(p);
        let key = (p.dst, p.dport);
        if let Some(v) = self.victims.get_mut(&key) {
            v.syn(p);
            return;
        }
        let n = self.syn_cm.add(service_hash(p.dst, p.dport), 1);
        if n < self.cfg.syns_per_second {
            return;
        }
        if self.victims.len() >= self.cfg.max_victims {
            self.refused_victims += 1;
            return;
        }
        let mut v = Victim::new(key, p.ts_ns);
        v.before = u64::from(n) - 1;
        v.syn(p);
        // The SYNs of this second before it became a victim were counted, not seen; their
        // completions were not followed either, so they are not judged (a burst of
        // legitimate connections must not look incomplete).
        self.victims.insert(key, v);
    }

    /// A SYN/ACK from `server:port`; `retransmit` if the handshake table had it already.
    pub fn synack(&mut self, server: IpAddr, port: u16, retransmit: bool) {
        if let Some(v) = self.victims.get_mut(&(server, port)) {
            if retransmit {
                v.sec.retransmits += 1;
            } else {
                v.sec.synacks += 1;
            }
        }
    }

    /// `client` completed a handshake with `server:port` (its ACK of the SYN/ACK).
    pub fn completed(&mut self, client: IpAddr, server: IpAddr, port: u16) {
        if let Some(v) = self.victims.get_mut(&(server, port)) {
            v.sec.completed += 1;
            let (i, h) = good_slot(client);
            v.good[i] = h;
        }
    }

    /// A client answered the SYN/ACK of `server:port` with a RST (a flooder's kernel does).
    pub fn client_reset(&mut self, server: IpAddr, port: u16) {
        if let Some(v) = self.victims.get_mut(&(server, port)) {
            v.sec.client_resets += 1;
        }
    }

    /// `server:port` answered a SYN with a RST (nothing listens).
    pub fn server_reset(&mut self, server: IpAddr, port: u16) {
        if let Some(v) = self.victims.get_mut(&(server, port)) {
            v.sec.server_resets += 1;
        }
    }

    /// The SYN/ACK of a SYN to any destination (for the spread flood).
    pub fn answered(&mut self) {
        self.spread.answered();
    }

    /// The input ended: judge the open seconds and report every phase.
    pub fn finish(&mut self, out: &mut Vec<Detection>) {
        let mut vs: Vec<Victim> = self.victims.drain().map(|(_, v)| v).collect();
        vs.sort_by_key(|v| (v.incident_start, v.dst));
        for mut v in vs {
            let end = (v.second + 1).saturating_mul(SEC);
            close_second(&self.cfg, &mut v, end, &mut self.onsets, out);
            end_phase(&mut v, out);
        }
        self.spread.finish(out);
    }
}

/// Judge the second a victim was counting, and fold it into its phase.
fn close_second(
    cfg: &FloodConfig,
    v: &mut Victim,
    now: u64,
    onsets: &mut Vec<Onset>,
    out: &mut Vec<Detection>,
) {
    let sec = std::mem::take(&mut v.sec);
    let incomplete = sec.syns.saturating_sub(sec.completed);
    let flooding = sec.syns >= u64::from(cfg.syns_per_second)
        && incomplete >= u64::from(cfg.syns_per_second)
        && (sec.completed as f64) <= cfg.max_completed_ratio * sec.syns as f64;
    if flooding {
        let distinct = v.sec_sources.estimate().max(1);
        let kind = if distinct < cfg.spoofed_sources {
            FloodSource::Single
        } else if sec.syns >= 3 * distinct {
            FloodSource::Distributed
        } else {
            FloodSource::Spoofed
        };
        if v.phase.as_ref().is_some_and(|p| p.kind != kind) {
            end_phase(v, out);
        }
        if v.phase.is_none() {
            let top = v.sec_top.top();
            onsets.push(Onset {
                ts_ns: now,
                start_ns: v.sec_first_ns,
                victim: v.dst,
                kind,
                sources: top,
                syns_per_second: sec.syns,
            });
            v.phase = Some(Phase {
                kind,
                start_ns: v.sec_first_ns,
                end_ns: v.sec_first_ns,
                seconds: 0,
                n: Counts::default(),
                peak: 0,
                sources: Hll::default(),
                top: TopK::default(),
                flows: Vec::new(),
                first: v.sec_first.unwrap_or(v.dst),
            });
        }
        v.last_flood_ns = (v.second + 1).saturating_mul(SEC).saturating_sub(1);
    }
    // A second between flood seconds (quieter, or not a flood) still belongs to the phase.
    let before = std::mem::take(&mut v.before);
    if let Some(p) = v.phase.as_mut() {
        p.n.add(&sec);
        p.n.syns += before;
        p.seconds += u64::from(sec.syns > 0);
        p.peak = p.peak.max(sec.syns + before);
        if sec.syns > 0 {
            p.end_ns = (v.second + 1).saturating_mul(SEC).saturating_sub(1);
        }
        p.sources.merge(&v.sec_sources);
        for (ip, n) in v.sec_top.top() {
            p.top.add_n(ip, n);
        }
        for f in &v.sec_flows {
            if p.flows.len() < MAX_EVIDENCE_FLOWS {
                p.flows.push(*f);
            }
        }
    }
    v.sec_sources.clear();
    v.sec_top.clear();
    v.sec_flows.clear();
    v.sec_first = None;
}

/// Report a victim's phase in progress, if any.
fn end_phase(v: &mut Victim, out: &mut Vec<Detection>) {
    let Some(p) = v.phase.take() else {
        return;
    };
    v.phases += 1;
    let sources = p.sources.estimate();
    // Heavy hitters: a tenth of the heaviest source's SYNs at least (a client that kept
    // connecting during the flood is not one).
    let mut top = p.top.top();
    let heaviest = top.first().map_or(0, |t| t.1);
    top.retain(|(_, n)| n * 10 >= heaviest);
    let (ip, port) = v.dst;
    let who = match p.kind {
        FloodSource::Spoofed => format!("spoofed, about {sources} distinct sources"),
        k => format!(
            "{}, from {}",
            k.name(),
            top.iter()
                .map(|(a, _)| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let duration_s = p.end_ns.saturating_sub(p.start_ns).div_ceil(SEC);
    let summary = format!(
        "islet detect: SYN flood on {ip} port {port}: {} SYNs in {duration_s} s, peak {}/s, {} handshakes completed, {who}",
        p.n.syns, p.peak, p.n.completed
    );
    let mut metadata = vec![
        ("victim", vec![format!("{ip} port {port}")]),
        ("flood_source", vec![p.kind.name().to_string()]),
        ("flood_phase", vec![v.phases.to_string()]),
    ];
    if p.kind != FloodSource::Spoofed {
        metadata.push((
            "top_sources",
            top.iter().map(|(a, _)| a.to_string()).collect(),
        ));
    }
    // The actor: the heaviest source (for a spoofed flood, a forged address among many).
    let (src, sport) = match p.kind {
        FloodSource::Spoofed => p.first,
        _ => top.first().map_or(p.first, |(a, _)| (*a, p.first.1)),
    };
    out.push(Detection {
        kind: SYN_FLOOD,
        severity: 1,
        summary,
        src,
        dst: ip,
        sport,
        dport: port,
        proto: 6,
        ts_ns: p.end_ns,
        flow_id: p.flows.first().copied().unwrap_or(0),
        metadata,
        evidence: Evidence {
            flow_ids: p.flows,
            counts: vec![
                ("syns", p.n.syns),
                ("synacks", p.n.synacks),
                ("completed", p.n.completed),
                ("client_resets", p.n.client_resets),
                ("synack_retransmits", p.n.retransmits),
                ("server_resets", p.n.server_resets),
                ("peak_syns_per_second", p.peak),
                ("distinct_sources", sources),
                ("seconds", p.seconds),
                ("phase", u64::from(v.phases)),
            ],
            start_ns: p.start_ns,
            end_ns: p.end_ns,
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Answer, Conn, Handshakes};

    const MS: u64 = 1_000_000;

    /// What the sensor does with one client SYN and the server's answer, as a Linux server
    /// and the client's kernel behave: the server SYN/ACKs; a real client ACKs, a flooder's
    /// kernel RSTs, a forged source never answers (the server retransmits).
    #[derive(Clone, Copy)]
    enum Client {
        Completes,
        Resets,
        Silent,
    }

    fn exchange(
        f: &mut Flood,
        h: &mut Handshakes,
        ts: u64,
        src: IpAddr,
        sport: u16,
        c: Client,
        out: &mut Vec<Detection>,
    ) {
        let server = IpAddr::from([198, 51, 100, 20]);
        let p = PacketFacts {
            ts_ns: ts,
            src,
            dst: server,
            proto: 6,
            sport,
            dport: 443,
            tcp_flags: 0x02,
            seq: 1,
            ack: 0,
            flow_id: ts,
            unreachable: None,
            len: 60,
        };
        f.tick(ts, out);
        f.syn(&p, out);
        let conn = Conn {
            client: src,
            cport: sport,
            server,
            sport: 443,
        };
        if f.is_victim(server, 443) {
            let re = h.synack(conn, 1000, ts);
            f.synack(server, 443, re);
        }
        match c {
            Client::Completes => {
                if h.client(conn, 0x10, 1001) == Some(Answer::Completed) {
                    f.completed(src, server, 443);
                }
            }
            Client::Resets => {
                if h.client(conn, 0x04, 0) == Some(Answer::Reset) {
                    f.client_reset(server, 443);
                }
            }
            Client::Silent => {
                if f.is_victim(server, 443) {
                    let re = h.synack(conn, 1000, ts + 1);
                    f.synack(server, 443, re);
                }
            }
        }
    }

    #[test]
    fn own_address_then_spoofed_phases_are_each_reported_and_busy_clients_are_not() {
        let mut f = Flood::new(FloodConfig::default());
        let mut h = Handshakes::default();
        let mut out = Vec::new();
        let attacker = IpAddr::from([198, 51, 100, 66]);
        // 3 s of 1000 SYN/s from one address, each SYN/ACK reset by its kernel, while 50
        // clients complete 200 handshakes a second.
        let mut t = 10_000 * MS;
        for i in 0..3_000u64 {
            exchange(
                &mut f,
                &mut h,
                t,
                attacker,
                1024 + (i % 60_000) as u16,
                Client::Resets,
                &mut out,
            );
            if i % 5 == 0 {
                let c = IpAddr::from([198, 51, 100, 100 + (i % 50) as u8]);
                exchange(
                    &mut f,
                    &mut h,
                    t,
                    c,
                    2000 + (i % 3000) as u16,
                    Client::Completes,
                    &mut out,
                );
            }
            t += MS;
        }
        // Then 3 s of forged sources, one SYN each, never answering.
        for i in 0..3_000u32 {
            let src = IpAddr::from((0x0a00_0000 + i * 7919).to_be_bytes());
            exchange(&mut f, &mut h, t, src, 5555, Client::Silent, &mut out);
            t += MS;
        }
        // 20 s of busy legitimate load on the same service: 300 completed handshakes a second.
        for i in 0..6_000u64 {
            let c = IpAddr::from([198, 51, 100, 100 + (i % 50) as u8]);
            exchange(
                &mut f,
                &mut h,
                t + 30_000 * MS,
                c,
                3000 + (i % 20_000) as u16,
                Client::Completes,
                &mut out,
            );
            t += 3 * MS + MS / 3;
        }
        f.finish(&mut out);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[0].meta("flood_source"), ["single"]);
        assert_eq!(out[0].src, attacker);
        assert_eq!(
            out[0].meta("top_sources"),
            [attacker.to_string()],
            "the clients are not heavy hitters"
        );
        assert_eq!(out[1].meta("flood_source"), ["spoofed"]);
        assert!(
            out[1].src.to_string().starts_with("10."),
            "a forged source, not a client: {}",
            out[1].src
        );
        assert_eq!(out[1].meta("victim"), ["198.51.100.20 port 443"]);
        // The phases meet where the source changed, within a second.
        let (a, b) = (&out[0].evidence, &out[1].evidence);
        assert!(
            a.end_ns <= b.start_ns && b.start_ns - a.end_ns < 1_000 * MS,
            "{a:?} {b:?}"
        );
        let count = |e: &Evidence, k: &str| e.counts.iter().find(|c| c.0 == k).map_or(0, |c| c.1);
        assert!(count(a, "client_resets") > 2_000, "{a:?}");
        assert!(count(b, "synack_retransmits") > 2_000, "{b:?}");
        assert!(count(b, "distinct_sources") > 2_500, "{b:?}");
        let onsets = f.take_onsets();
        assert_eq!(onsets.len(), 2);
        assert_eq!(onsets[0].kind, FloodSource::Single);
        assert_eq!(onsets[0].sources[0].0, attacker);
        assert_eq!(onsets[1].kind, FloodSource::Spoofed);
    }
}
