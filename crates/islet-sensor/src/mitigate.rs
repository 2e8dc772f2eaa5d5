//! Flood mitigation at the single ingress/egress point: a SYN flood's onset
//! ([`islet_detect::flood::Onset`]) becomes a time-limited rule.
//!
//! - An own-address or distributed flood: drop every packet from its heaviest sources (at most
//!   `max_sources`, each with at least a tenth of the heaviest one's SYNs, never a client
//!   that completed a handshake with the victim at a client's pace, never a workload the
//!   inventory labels `islet.io/protected: "true"`) to the victim service.
//! - A spoofed flood: let at most `syn_rate` new SYNs a second through to the victim service
//!   from sources that have not completed a handshake with it; sources that have (remembered
//!   in a direct-mapped table from the moment the service is a victim) and every segment of an
//!   established connection pass.
//!
//! `enforce` applies the rule to the frames `islet run --inline` forwards (the verdict is taken
//! in the worker that decodes the frame, before it is sent on); `recommend`, and `enforce`
//! where nothing is inline, only write it. Each rule is an EVE `alert` (`flood_mitigation`,
//! `alert.action` `blocked` when enforced) carrying the rule as text and as the `tc flower`
//! command that would install it in a NIC's eSwitch; each removal of an enforced rule — at the
//! end of `lifetime_s`, or at shutdown — is another, with the packets it dropped (a
//! recommended rule lapses silently, and may be recommended again after it). Rules live in
//! the process: none outlives it.

use islet_detect::config::{MitigationConfig, MitigationMode};
use islet_detect::flood::{FloodSource, Onset};
use islet_detect::sketch::hash64;
use islet_detect::{Detection, Evidence, FLOOD_MITIGATION};
use std::net::IpAddr;

const SEC: u64 = 1_000_000_000;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
/// SYNs in a flood's first second from which a source is dropped even if it has completed a
/// handshake with the victim before (no client opens that many connections a second and
/// leaves them half open).
const HEAVY_SYNS: u64 = 50;
/// Sources remembered as having completed a handshake with a victim.
const GOOD_SLOTS: usize = 1 << 14;

#[derive(Debug)]
enum Action {
    Drop(Vec<IpAddr>),
    LimitSyns { per_second: u32 },
}

#[derive(Debug)]
struct Rule {
    id: u64,
    victim: (IpAddr, u16),
    kind: FloodSource,
    action: Action,
    installed_ns: u64,
    expires_ns: u64,
    /// New SYNs let through in the current second (rate limit).
    second: u64,
    passed: u32,
    dropped: u64,
    enforced: bool,
}

/// The rules of one worker.
#[derive(Debug)]
pub(crate) struct Mitigator {
    cfg: MitigationConfig,
    inline: bool,
    rules: Vec<Rule>,
    next_id: u64,
    /// Hashes of (source, victim) pairs that completed a handshake.
    good: Box<[u64]>,
    pub(crate) installed: u64,
    pub(crate) removed: u64,
    pub(crate) dropped: u64,
}

fn pair_hash(src: IpAddr, victim: (IpAddr, u16)) -> u64 {
    let mut b = [0u8; 34];
    b[..16].copy_from_slice(&v6(src));
    b[16..32].copy_from_slice(&v6(victim.0));
    b[32..].copy_from_slice(&victim.1.to_be_bytes());
    hash64(&b) | 1
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

impl Mitigator {
    pub(crate) fn new(cfg: MitigationConfig) -> Mitigator {
        Mitigator {
            good: vec![
                0;
                if cfg.mode == MitigationMode::Off {
                    0
                } else {
                    GOOD_SLOTS
                }
            ]
            .into_boxed_slice(),
            cfg,
            inline: false,
            rules: Vec::new(),
            next_id: 0,
            installed: 0,
            removed: 0,
            dropped: 0,
        }
    }

    /// Frames pass through this worker inline: `enforce` can act.
    pub(crate) fn set_inline(&mut self, inline: bool) {
        self.inline = inline;
    }

    pub(crate) fn active(&self) -> bool {
        self.cfg.mode != MitigationMode::Off
    }

    /// A handshake with `victim` completed from `src`: a source that behaves.
    pub(crate) fn completed(&mut self, src: IpAddr, victim: (IpAddr, u16)) {
        if self.good.is_empty() {
            return;
        }
        let h = pair_hash(src, victim);
        self.good[(h as usize) & (GOOD_SLOTS - 1)] = h;
    }

    fn is_good(&self, src: IpAddr, victim: (IpAddr, u16)) -> bool {
        let h = pair_hash(src, victim);
        !self.good.is_empty() && self.good[(h as usize) & (GOOD_SLOTS - 1)] == h
    }

    /// A flood began: make its rule (unless one for the victim is in force), and its alert.
    pub(crate) fn onset(
        &mut self,
        o: &Onset,
        protected: &mut dyn FnMut(IpAddr) -> bool,
        out: &mut Vec<(Detection, &'static str)>,
    ) {
        // One rule per victim and kind of action: a spoofed phase after an own-address one
        // gets its rate limit beside the source drop.
        let limit = o.kind == FloodSource::Spoofed;
        if !self.active()
            || self.rules.iter().any(|r| {
                r.victim == o.victim && matches!(r.action, Action::LimitSyns { .. }) == limit
            })
        {
            return;
        }
        if self.rules.len() >= self.cfg.max_rules {
            return;
        }
        let action = match o.kind {
            FloodSource::Spoofed => Action::LimitSyns {
                per_second: self.cfg.syn_rate,
            },
            _ => {
                // The heavy hitters only: a tenth of the heaviest source's SYNs at least, and
                // not a client that completes its handshakes at a client's pace.
                let top = o.sources.first().map_or(0, |s| s.1);
                let srcs: Vec<IpAddr> = o
                    .sources
                    .iter()
                    .filter(|(a, n)| {
                        n * 10 >= top
                            && (*n >= HEAVY_SYNS || !self.is_good(*a, o.victim))
                            && !protected(*a)
                    })
                    .map(|(a, _)| *a)
                    .take(self.cfg.max_sources)
                    .collect();
                if srcs.is_empty() {
                    return;
                }
                Action::Drop(srcs)
            }
        };
        self.next_id += 1;
        let enforced = self.cfg.mode == MitigationMode::Enforce && self.inline;
        let r = Rule {
            id: self.next_id,
            victim: o.victim,
            kind: o.kind,
            action,
            installed_ns: o.ts_ns,
            expires_ns: o
                .ts_ns
                .saturating_add(self.cfg.lifetime_s.saturating_mul(SEC)),
            second: 0,
            passed: 0,
            dropped: 0,
            enforced,
        };
        self.installed += 1;
        let state = if enforced { "installed" } else { "recommended" };
        out.push((
            self.alert(&r, state, o.ts_ns, o.syns_per_second),
            if enforced { "blocked" } else { "allowed" },
        ));
        self.rules.push(r);
    }

    /// Should this packet be dropped? Only enforced rules drop.
    pub(crate) fn verdict(
        &mut self,
        ts: u64,
        src: IpAddr,
        dst: IpAddr,
        dport: u16,
        flags: u8,
    ) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        let good = self.is_good(src, (dst, dport));
        let Some(r) = self
            .rules
            .iter_mut()
            .find(|r| r.enforced && r.victim == (dst, dport))
        else {
            return false;
        };
        let drop = match &r.action {
            Action::Drop(srcs) => srcs.contains(&src),
            Action::LimitSyns { per_second } => {
                if flags & (SYN | ACK) != SYN || good {
                    false
                } else {
                    if ts / SEC != r.second {
                        r.second = ts / SEC;
                        r.passed = 0;
                    }
                    r.passed += 1;
                    r.passed > *per_second
                }
            }
        };
        if drop {
            r.dropped += 1;
            self.dropped += 1;
        }
        drop
    }

    /// Remove the rules whose lifetime ended by `now`, or all of them at `shutdown`.
    pub(crate) fn expire(
        &mut self,
        now: u64,
        shutdown: bool,
        out: &mut Vec<(Detection, &'static str)>,
    ) {
        if self.rules.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.rules.len() {
            if shutdown || now >= self.rules[i].expires_ns {
                let r = self.rules.remove(i);
                self.removed += 1;
                let state = if shutdown && now < r.expires_ns {
                    "removed at shutdown"
                } else {
                    "removed"
                };
                // A recommended rule was never in force: its end is not news.
                if r.enforced {
                    out.push((self.alert(&r, state, now.min(r.expires_ns), 0), "allowed"));
                }
            } else {
                i += 1;
            }
        }
    }

    fn alert(&self, r: &Rule, state: &str, ts: u64, rate: u64) -> Detection {
        let (vip, vport) = r.victim;
        let (rule, tc) = match &r.action {
            Action::Drop(srcs) => {
                let list: Vec<String> = srcs.iter().map(IpAddr::to_string).collect();
                (
                    format!(
                        "drop tcp from {} to {vip} port {vport} for {} s",
                        list.join(", "),
                        self.cfg.lifetime_s
                    ),
                    srcs.iter()
                        .map(|s| {
                            format!(
                                "tc filter add dev IFACE ingress protocol {} flower ip_proto tcp src_ip {s} dst_ip {vip} dst_port {vport} action drop",
                                if vip.is_ipv4() { "ip" } else { "ipv6" }
                            )
                        })
                        .collect::<Vec<_>>(),
                )
            }
            Action::LimitSyns { per_second } => (
                format!(
                    "limit new SYNs to {vip} port {vport} to {per_second}/s from sources without a completed handshake, for {} s",
                    self.cfg.lifetime_s
                ),
                vec![format!(
                    "tc filter add dev IFACE ingress protocol {} flower ip_proto tcp dst_ip {vip} dst_port {vport} tcp_flags 0x2/0x12 action police rate {per_second}pps burst {per_second} conform-exceed drop/pipe",
                    if vip.is_ipv4() { "ip" } else { "ipv6" }
                )],
            ),
        };
        let src = match &r.action {
            Action::Drop(s) => s[0],
            Action::LimitSyns { .. } => vip,
        };
        let mode = match self.cfg.mode {
            MitigationMode::Enforce if self.inline => "enforce",
            MitigationMode::Enforce => "enforce (not inline: recommended only)",
            _ => "recommend",
        };
        Detection {
            kind: FLOOD_MITIGATION,
            severity: 2,
            summary: format!("islet mitigate: {state} rule {}: {rule}", r.id),
            src,
            dst: vip,
            sport: 0,
            dport: vport,
            proto: 6,
            ts_ns: ts,
            flow_id: 0,
            metadata: vec![
                ("victim", vec![format!("{vip} port {vport}")]),
                ("flood_source", vec![r.kind.name().to_string()]),
                ("mitigation", vec![mode.to_string()]),
                ("mitigation_state", vec![state.to_string()]),
                ("mitigation_rule", vec![rule]),
                ("mitigation_rule_id", vec![r.id.to_string()]),
                ("tc", tc),
            ],
            evidence: Evidence {
                flow_ids: Vec::new(),
                counts: vec![
                    ("onset_syns_per_second", rate),
                    ("dropped", r.dropped),
                    ("lifetime_s", self.cfg.lifetime_s),
                ],
                start_ns: r.installed_ns,
                end_ns: ts.max(r.installed_ns),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onset(kind: FloodSource) -> Onset {
        Onset {
            ts_ns: 10 * SEC,
            start_ns: 9 * SEC,
            victim: (IpAddr::from([198, 51, 100, 20]), 443),
            kind,
            sources: vec![
                (IpAddr::from([198, 51, 100, 66]), 900),
                (IpAddr::from([198, 51, 100, 7]), 40),
            ],
            syns_per_second: 940,
        }
    }

    #[test]
    fn drop_sources_spare_protected_and_expire() {
        let mut m = Mitigator::new(MitigationConfig {
            mode: MitigationMode::Enforce,
            ..MitigationConfig::default()
        });
        m.set_inline(true);
        let mut out = Vec::new();
        let prot = IpAddr::from([198, 51, 100, 7]);
        // A client among the top sources that completes its handshakes is spared; so is a
        // source with few SYNs.
        let client = IpAddr::from([198, 51, 100, 1]);
        let v = (IpAddr::from([198, 51, 100, 20]), 443);
        m.completed(client, v);
        let mut o = onset(FloodSource::Single);
        o.sources[0].1 = 300;
        o.sources.push((client, 40));
        o.sources.push((IpAddr::from([198, 51, 100, 8]), 20));
        m.onset(&o, &mut |a| a == prot, &mut out);
        let rule = &out[0]
            .0
            .metadata
            .iter()
            .find(|m| m.0 == "mitigation_rule")
            .expect("rule")
            .1[0];
        assert!(
            rule.starts_with("drop tcp from 198.51.100.66 to "),
            "{rule}"
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, "blocked");
        assert!(m.verdict(11 * SEC, IpAddr::from([198, 51, 100, 66]), v.0, v.1, 0x10));
        assert!(!m.verdict(11 * SEC, prot, v.0, v.1, 0x02), "protected");
        assert!(
            !m.verdict(11 * SEC, IpAddr::from([198, 51, 100, 66]), v.0, 80, 0x02),
            "other service"
        );
        // A second onset for the same victim while the rule lives adds nothing.
        m.onset(&onset(FloodSource::Single), &mut |_| false, &mut out);
        assert_eq!(out.len(), 1);
        m.expire(69 * SEC, false, &mut out);
        assert_eq!(out.len(), 1);
        m.expire(70 * SEC, false, &mut out);
        assert_eq!(out.len(), 2);
        assert!(!m.verdict(71 * SEC, IpAddr::from([198, 51, 100, 66]), v.0, v.1, 0x10));
    }

    #[test]
    fn spoofed_floods_are_rate_limited_and_known_clients_pass() {
        let mut m = Mitigator::new(MitigationConfig {
            mode: MitigationMode::Enforce,
            syn_rate: 10,
            ..MitigationConfig::default()
        });
        m.set_inline(true);
        let v = (IpAddr::from([198, 51, 100, 20]), 443);
        let client = IpAddr::from([198, 51, 100, 30]);
        m.completed(client, v);
        let mut out = Vec::new();
        m.onset(&onset(FloodSource::Spoofed), &mut |_| false, &mut out);
        let mut dropped = 0;
        for i in 0..1_000u32 {
            let src = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            dropped += u32::from(m.verdict(12 * SEC, src, v.0, v.1, 0x02));
            assert!(
                !m.verdict(12 * SEC, client, v.0, v.1, 0x02),
                "a known client's SYN"
            );
            assert!(
                !m.verdict(12 * SEC, src, v.0, v.1, 0x10),
                "established segments"
            );
        }
        assert_eq!(dropped, 990);
        // Not inline: the same onset is only a recommendation, and nothing is dropped.
        let mut m = Mitigator::new(MitigationConfig {
            mode: MitigationMode::Enforce,
            ..MitigationConfig::default()
        });
        let mut out = Vec::new();
        m.onset(&onset(FloodSource::Spoofed), &mut |_| false, &mut out);
        assert_eq!(out[0].1, "allowed");
        assert!(!m.verdict(12 * SEC, client, v.0, v.1, 0x02));
    }
}
