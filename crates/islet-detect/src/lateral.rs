//! Lateral movement over admin protocols (T1021): a learned baseline of who connects to whom
//! on which admin service, and what departs from it.
//!
//! A connection attempt (TCP SYN) to an admin port is an edge from the source's node to the
//! destination's (a node is a workload of the inventory, else an address). Edges seen during
//! the first `learn_s` seconds are the baseline. After it:
//! - an edge not in the baseline is a `new_admin_edge` (reported once, then learned);
//! - a source that opens new edges to `fanout_hosts` hosts within `fanout_window_s` is one
//!   `admin_protocol_fanout`;
//! - new edges that continue each other (A→B, then B→C within `chain_window_s`) form a path,
//!   reported once as a `lateral_movement_chain` with the whole path (A→B→C→…) when it stops
//!   growing — few alerts, whole paths, as Hopper and Euler argue.
//!
//! Memory: at most `max_edges` baseline edges, `max_nodes` nodes with fan-out or path state,
//! [`MAX_PATH`] nodes per path and [`MAX_OPEN_CHAINS`] paths being followed.

use crate::config::LateralConfig;
use crate::{
    ADMIN_PROTOCOL_FANOUT, Detection, Evidence, LATERAL_MOVEMENT_CHAIN, MAX_EVIDENCE_FLOWS,
    NEW_ADMIN_EDGE,
};
use std::net::IpAddr;

const SEC: u64 = 1_000_000_000;
/// Longest path followed.
pub const MAX_PATH: usize = 8;
/// Paths followed at once.
pub const MAX_OPEN_CHAINS: usize = 1_024;
/// New destinations remembered per source for fan-out.
const MAX_FANOUT_HOSTS: usize = 64;

/// One admin connection attempt.
#[derive(Clone, Copy, Debug)]
pub struct AdminEdge<'a> {
    pub ts_ns: u64,
    pub src_node: &'a str,
    pub dst_node: &'a str,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub flow_id: u64,
}

#[derive(Debug, Default)]
struct NodeState {
    /// New destinations in the current fan-out window.
    fan_start: u64,
    fan_hosts: Vec<String>,
    fan_flows: Vec<u64>,
    fan_reported: bool,
    /// How an attacker reached this node: the path and when its last edge was made.
    inbound: Option<(Vec<String>, u64)>,
}

#[derive(Debug)]
struct Chain {
    path: Vec<String>,
    ports: Vec<u16>,
    start_ns: u64,
    last_ns: u64,
    flows: Vec<u64>,
    first: (IpAddr, IpAddr, u16, u16),
}

/// Lateral-movement state of one sensor.
#[derive(Debug)]
pub struct Lateral {
    cfg: LateralConfig,
    first_ns: Option<u64>,
    baseline: hashbrown::HashSet<(String, String, u16)>,
    hypervisor_baseline: hashbrown::HashSet<(String, String, u16)>,
    nodes: hashbrown::HashMap<String, NodeState>,
    chains: Vec<Chain>,
    /// Edges not learned because the baseline is full, and nodes or paths dropped.
    pub refused: u64,
}

impl Lateral {
    pub fn new(cfg: LateralConfig) -> Lateral {
        Lateral {
            cfg,
            first_ns: None,
            baseline: hashbrown::HashSet::new(),
            hypervisor_baseline: hashbrown::HashSet::new(),
            nodes: hashbrown::HashMap::new(),
            chains: Vec::new(),
            refused: 0,
        }
    }

    /// Is `port` an admin service?
    pub fn is_admin_port(&self, port: u16) -> bool {
        self.cfg.admin_ports.contains(&port) || self.cfg.database_ports.contains(&port)
    }

    /// A connection attempt into a workload labelled hypervisor management, on any port: a
    /// `hypervisor_mgmt_access` if the edge is new after the learning period (once, then
    /// learned). These edges have their own baseline, of the same bound.
    pub fn hypervisor_edge(&mut self, e: &AdminEdge<'_>) -> Option<Detection> {
        let first = *self.first_ns.get_or_insert(e.ts_ns);
        let key = (e.src_node.to_string(), e.dst_node.to_string(), e.dport);
        if self.hypervisor_baseline.contains(&key) {
            return None;
        }
        if self.hypervisor_baseline.len() < self.cfg.max_edges {
            self.hypervisor_baseline.insert(key);
        } else {
            self.refused += 1;
        }
        if e.ts_ns < first.saturating_add(self.cfg.learn_s.saturating_mul(SEC)) {
            return None;
        }
        Some(self.detection(
            crate::HYPERVISOR_MGMT_ACCESS,
            1,
            format!(
                "islet detect: new edge into hypervisor management: {} -> {} on tcp/{}",
                e.src_node, e.dst_node, e.dport
            ),
            e,
            vec![
                ("victim", vec![e.dst_node.to_string()]),
                ("service", vec![format!("tcp/{}", e.dport)]),
                ("src_node", vec![e.src_node.to_string()]),
            ],
            Evidence {
                flow_ids: vec![e.flow_id],
                counts: vec![("edges", 1)],
                start_ns: e.ts_ns,
                end_ns: e.ts_ns,
            },
        ))
    }

    /// One admin connection attempt.
    pub fn edge(&mut self, e: &AdminEdge<'_>, out: &mut Vec<Detection>) {
        let first = *self.first_ns.get_or_insert(e.ts_ns);
        self.expire_chains(e.ts_ns, out);
        if e.src_node == e.dst_node {
            return;
        }
        let key = (e.src_node.to_string(), e.dst_node.to_string(), e.dport);
        let learning = e.ts_ns < first.saturating_add(self.cfg.learn_s.saturating_mul(SEC));
        if self.baseline.contains(&key) {
            return;
        }
        if self.baseline.len() < self.cfg.max_edges {
            self.baseline.insert(key);
        } else {
            self.refused += 1;
        }
        if learning {
            return;
        }
        out.push(self.detection(
            NEW_ADMIN_EDGE,
            3,
            format!(
                "islet detect: new admin edge {} -> {} on port {}",
                e.src_node, e.dst_node, e.dport
            ),
            e,
            vec![
                ("src_node", vec![e.src_node.to_string()]),
                ("dest_node", vec![e.dst_node.to_string()]),
                ("service", vec![format!("tcp/{}", e.dport)]),
            ],
            Evidence {
                flow_ids: vec![e.flow_id],
                counts: vec![("edges", 1)],
                start_ns: e.ts_ns,
                end_ns: e.ts_ns,
            },
        ));
        self.fanout(e, out);
        self.chain(e);
    }

    fn node(&mut self, name: &str) -> Option<&mut NodeState> {
        if !self.nodes.contains_key(name) {
            if self.nodes.len() >= self.cfg.max_nodes {
                self.refused += 1;
                return None;
            }
            self.nodes.insert(name.to_string(), NodeState::default());
        }
        self.nodes.get_mut(name)
    }

    fn fanout(&mut self, e: &AdminEdge<'_>, out: &mut Vec<Detection>) {
        let window = self.cfg.fanout_window_s.saturating_mul(SEC);
        let need = self.cfg.fanout_hosts;
        let Some(n) = self.node(e.src_node) else {
            return;
        };
        if e.ts_ns >= n.fan_start.saturating_add(window) || n.fan_hosts.is_empty() {
            n.fan_start = e.ts_ns;
            n.fan_hosts.clear();
            n.fan_flows.clear();
            n.fan_reported = false;
        }
        if !n.fan_hosts.iter().any(|h| h == e.dst_node) && n.fan_hosts.len() < MAX_FANOUT_HOSTS {
            n.fan_hosts.push(e.dst_node.to_string());
            if n.fan_flows.len() < MAX_EVIDENCE_FLOWS {
                n.fan_flows.push(e.flow_id);
            }
        }
        if n.fan_reported || n.fan_hosts.len() < need {
            return;
        }
        n.fan_reported = true;
        let hosts = n.fan_hosts.clone();
        let flows = n.fan_flows.clone();
        let start = n.fan_start;
        out.push(self.detection(
            ADMIN_PROTOCOL_FANOUT,
            2,
            format!(
                "islet detect: {} reached {} new hosts over admin protocols in {} s",
                e.src_node,
                hosts.len(),
                e.ts_ns.saturating_sub(start) / SEC
            ),
            e,
            vec![
                ("src_node", vec![e.src_node.to_string()]),
                ("dest_nodes", hosts.clone()),
            ],
            Evidence {
                flow_ids: flows,
                counts: vec![("new_hosts", hosts.len() as u64)],
                start_ns: start,
                end_ns: e.ts_ns,
            },
        ));
    }

    fn chain(&mut self, e: &AdminEdge<'_>) {
        let window = self.cfg.chain_window_s.saturating_mul(SEC);
        let via = self
            .nodes
            .get(e.src_node)
            .and_then(|n| n.inbound.as_ref())
            .filter(|(_, t)| e.ts_ns <= t.saturating_add(window))
            .map(|(p, _)| p.clone());
        let mut path = via.unwrap_or_else(|| vec![e.src_node.to_string()]);
        if path.iter().any(|n| n == e.dst_node) || path.len() >= MAX_PATH {
            return;
        }
        path.push(e.dst_node.to_string());
        let Some(dst) = self.node(e.dst_node) else {
            return;
        };
        dst.inbound = Some((path.clone(), e.ts_ns));
        if path.len() < 3 {
            return;
        }
        // The path continues a chain being followed: extend it; else follow a new one.
        if let Some(c) = self
            .chains
            .iter_mut()
            .find(|c| path.len() == c.path.len() + 1 && path.starts_with(&c.path))
        {
            c.path = path;
            c.ports.push(e.dport);
            c.last_ns = e.ts_ns;
            if c.flows.len() < MAX_EVIDENCE_FLOWS {
                c.flows.push(e.flow_id);
            }
            return;
        }
        if self.chains.len() >= MAX_OPEN_CHAINS {
            self.refused += 1;
            return;
        }
        let start = self
            .nodes
            .get(e.src_node)
            .and_then(|n| n.inbound.as_ref())
            .map_or(e.ts_ns, |(_, t)| *t);
        self.chains.push(Chain {
            path,
            ports: vec![e.dport],
            start_ns: start,
            last_ns: e.ts_ns,
            flows: vec![e.flow_id],
            first: (e.src, e.dst, e.sport, e.dport),
        });
    }

    fn expire_chains(&mut self, now: u64, out: &mut Vec<Detection>) {
        let window = self.cfg.chain_window_s.saturating_mul(SEC);
        let mut i = 0;
        while i < self.chains.len() {
            if now > self.chains[i].last_ns.saturating_add(window) {
                let c = self.chains.remove(i);
                out.push(self.chain_detection(c));
            } else {
                i += 1;
            }
        }
    }

    /// The input ended: report the paths still being followed.
    pub fn finish(&mut self, out: &mut Vec<Detection>) {
        for c in std::mem::take(&mut self.chains) {
            out.push(self.chain_detection(c));
        }
    }

    fn chain_detection(&self, c: Chain) -> Detection {
        let (src, dst, sport, dport) = c.first;
        Detection {
            kind: LATERAL_MOVEMENT_CHAIN,
            severity: 1,
            summary: format!(
                "islet detect: lateral movement {} ({} hops over admin protocols)",
                c.path.join(" -> "),
                c.path.len() - 1
            ),
            src,
            dst,
            sport,
            dport,
            proto: 6,
            ts_ns: c.last_ns,
            flow_id: c.flows.first().copied().unwrap_or(0),
            metadata: vec![
                ("path", c.path.clone()),
                (
                    "services",
                    c.ports.iter().map(|p| format!("tcp/{p}")).collect(),
                ),
            ],
            evidence: Evidence {
                counts: vec![("hops", c.path.len() as u64 - 1)],
                flow_ids: c.flows,
                start_ns: c.start_ns,
                end_ns: c.last_ns,
            },
        }
    }

    fn detection(
        &self,
        kind: crate::Kind,
        severity: u8,
        summary: String,
        e: &AdminEdge<'_>,
        metadata: Vec<(&'static str, Vec<String>)>,
        evidence: Evidence,
    ) -> Detection {
        Detection {
            kind,
            severity,
            summary,
            src: e.src,
            dst: e.dst,
            sport: e.sport,
            dport: e.dport,
            proto: 6,
            ts_ns: e.ts_ns,
            flow_id: e.flow_id,
            metadata,
            evidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LateralConfig;

    fn edge(t: u64, a: &'static str, b: &'static str, port: u16) -> AdminEdge<'static> {
        AdminEdge {
            ts_ns: t * SEC,
            src_node: a,
            dst_node: b,
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            sport: 50_000,
            dport: port,
            flow_id: t,
        }
    }

    fn names(out: &[Detection]) -> Vec<&str> {
        out.iter().map(|d| d.kind.name).collect()
    }

    #[test]
    fn baseline_then_new_edges_fanout_and_one_chain() {
        let mut l = Lateral::new(LateralConfig {
            learn_s: 100,
            fanout_hosts: 3,
            ..LateralConfig::default()
        });
        let mut out = Vec::new();
        // Learning: the jump host administers db and web.
        l.edge(&edge(0, "jump", "db", 22), &mut out);
        l.edge(&edge(10, "jump", "web", 22), &mut out);
        assert!(out.is_empty());
        // Known edges after learning stay quiet.
        l.edge(&edge(200, "jump", "db", 22), &mut out);
        assert!(out.is_empty());
        // A workstation reaches web over SMB, web reaches db over WinRM, db reaches backup.
        l.edge(&edge(300, "ws", "web", 445), &mut out);
        l.edge(&edge(310, "web", "db", 5985), &mut out);
        l.edge(&edge(320, "db", "backup", 22), &mut out);
        assert_eq!(
            names(&out),
            ["new_admin_edge", "new_admin_edge", "new_admin_edge"]
        );
        // A repeated new edge is not new again.
        l.edge(&edge(330, "web", "db", 5985), &mut out);
        assert_eq!(out.len(), 3);
        l.finish(&mut out);
        assert_eq!(names(&out)[3], "lateral_movement_chain");
        assert_eq!(
            out[3].metadata[0].1,
            ["ws", "web", "db", "backup"].map(String::from)
        );
        assert_eq!(out.len(), 4, "one chain, reported once with its whole path");

        // Fan-out: one source to three new hosts.
        let mut out = Vec::new();
        for (i, h) in ["h1", "h2", "h3", "h4"].iter().enumerate() {
            l.edge(&edge(10_000 + i as u64, "rogue", h, 3389), &mut out);
        }
        let fan: Vec<&Detection> = out
            .iter()
            .filter(|d| d.kind.name == "admin_protocol_fanout")
            .collect();
        assert_eq!(fan.len(), 1, "{:?}", names(&out));
        assert_eq!(fan[0].metadata[1].1.len(), 3);
    }
}
