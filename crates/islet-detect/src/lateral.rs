//! Lateral movement over admin protocols (T1021), with no blind period.
//!
//! An admin connection is a TCP connection to an admin port (`admin_ports`, `database_ports`)
//! between two nodes (a node is a workload of the inventory, else an address). The sensor
//! reports each one's attempt (the SYN), refusal (the server's RST), completion (the client's
//! ACK of the SYN/ACK) and close (a FIN or RST of an open one).
//!
//! - **Pivots need no baseline.** An admin session into B that is still open when B attempts
//!   an admin connection to C is a hop: whoever holds the session into B is reaching through
//!   it. Hops that continue each other (A→B open, B→C open, C→D…) are one chain per origin,
//!   reported once when it has not grown for `chain_quiet_s` (or the input ends), as a
//!   `lateral_movement_chain` with every host of the path in order (`metadata.path`, and their
//!   addresses in `path_addresses`), the hops
//!   with their services and times, and how many hop attempts were refused. After learning, a
//!   new edge out of B within `chain_window_s` of a session into B that has closed continues
//!   its path too (code left running on B, as a remote task or service is).
//! - **Fan-out.** One source attempting admin connections to `fanout_hosts` distinct hosts
//!   with at least one attempt refused or unanswered (automation knows where its service
//!   runs), or
//!   `fanout_services` distinct admin services on `fanout_service_hosts` hosts (credential
//!   spraying over SMB, RDP, WinRM and SSH), within `fanout_window_s` — attempts, completions
//!   and refusals counted, none made while the source was scanning (the scan's alert is the
//!   incident's), at least one
//!   session completed (without one it is a probe sweep, the scan detector's) — is one
//!   `admin_protocol_fanout`, reported when the source has been quiet for `fanout_quiet_s` or
//!   the window ends, unless the source is an admin or jump host of the inventory; an identity
//!   group (namespace, label) may carry its own thresholds (the caller passes them).
//! - **The baseline changes severity, never mutes.** Edges (source node, destination node,
//!   port) of the first `learn_s` seconds are learned; after that an edge not learned is a
//!   `new_admin_edge` (once, then learned). Chains and fan-outs are reported from the first
//!   packet: made only of known edges after learning, their severity is lowered by one; with
//!   a new edge it stays.
//!
//! Memory: at most `max_edges` baseline edges, `max_nodes` nodes with state, [`MAX_SESSIONS`]
//! open sessions, [`MAX_PATH`] nodes per path and [`MAX_OPEN_CHAINS`] chains followed.

use crate::config::LateralConfig;
use crate::handshake::Conn;
use crate::{
    ADMIN_PROTOCOL_FANOUT, Detection, Evidence, LATERAL_MOVEMENT_CHAIN, MAX_EVIDENCE_FLOWS,
    NEW_ADMIN_EDGE,
};
use std::net::IpAddr;

const SEC: u64 = 1_000_000_000;
/// Longest path followed.
pub const MAX_PATH: usize = 8;
/// Chains followed at once.
pub const MAX_OPEN_CHAINS: usize = 1_024;
/// Open admin sessions followed at once.
pub const MAX_SESSIONS: usize = 65_536;
/// Distinct destinations remembered per source for fan-out.
const MAX_FANOUT_HOSTS: usize = 64;
/// Open sessions remembered into one node.
const MAX_INBOUND: usize = 8;
/// An open session whose close was never seen is forgotten after this many seconds.
pub const SESSION_AGE_S: u64 = 86_400;
/// Hops remembered per chain.
const MAX_HOPS: usize = 16;

/// One admin connection: its ends as nodes and addresses.
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
    /// The source is an admin or jump host of the inventory (no fan-out from it).
    pub admin_source: bool,
    /// Fan-out thresholds for the source's identity group: (hosts, window in seconds).
    pub fanout: (usize, u64),
    /// The source is scanning (the scan detector's): its admin attempts are the scan's.
    pub scanning: bool,
}

impl AdminEdge<'_> {
    fn conn(&self) -> Conn {
        Conn {
            client: self.src,
            cport: self.sport,
            server: self.dst,
            sport: self.dport,
        }
    }
}

#[derive(Debug, Default)]
struct Fanout {
    start_ns: u64,
    last_ns: u64,
    window_ns: u64,
    need: usize,
    /// (services, hosts) that also make a fan-out.
    need_multi: (usize, usize),
    hosts: Vec<String>,
    services: Vec<u16>,
    attempts: u64,
    completed: u64,
    refused: u64,
    any_new: bool,
    reported: bool,
    /// An attempt came while the source was scanning: the scan's alert covers it.
    scanning: bool,
    flows: Vec<u64>,
    first: Option<(IpAddr, IpAddr, u16, u16)>,
}

#[derive(Debug, Default)]
struct NodeState {
    /// The node's address last seen (a workload may have several).
    addr: Option<IpAddr>,
    fan: Option<Fanout>,
    /// Open admin sessions into this node: the connection, the path that reached it (and
    /// the path's first connection), and when it opened.
    inbound: Vec<Inbound>,
    /// The last session into this node that closed: a new edge out of the node soon after
    /// (after learning) continues its path, as code left running there would.
    reached: Option<Inbound>,
}

#[derive(Debug)]
struct Inbound {
    conn: Conn,
    path: Vec<String>,
    origin: Conn,
    ts_ns: u64,
}

#[derive(Debug)]
struct Hop {
    from: String,
    to: String,
    port: u16,
    ts_ns: u64,
}

#[derive(Debug)]
struct Chain {
    /// Hosts in the order they were reached (the origin first).
    path: Vec<String>,
    hops: Vec<Hop>,
    refused: u64,
    completed: u64,
    any_new: bool,
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
    /// Open admin sessions: the connection → the node it entered and when it opened.
    sessions: hashbrown::HashMap<Conn, (String, u64)>,
    chains: Vec<Chain>,
    second: u64,
    /// Edges not learned because the baseline is full, and nodes, sessions or chains dropped.
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
            sessions: hashbrown::HashMap::new(),
            chains: Vec::new(),
            second: 0,
            refused: 0,
        }
    }

    /// Is `port` an admin service?
    pub fn is_admin_port(&self, port: u16) -> bool {
        self.cfg.admin_ports.contains(&port) || self.cfg.database_ports.contains(&port)
    }

    /// The global fan-out thresholds: (hosts, window in seconds).
    pub fn fanout_default(&self) -> (usize, u64) {
        (self.cfg.fanout_hosts, self.cfg.fanout_window_s)
    }

    /// Is a connection open that the sensor follows? (Its FIN or RST closes it.)
    pub fn is_open(&self, conn: &Conn) -> bool {
        !self.sessions.is_empty() && self.sessions.contains_key(conn)
    }

    fn learning(&mut self, ts: u64) -> bool {
        let first = *self.first_ns.get_or_insert(ts);
        ts < first.saturating_add(self.cfg.learn_s.saturating_mul(SEC))
    }

    /// Learn `key`; true if it was not known (new), whether or not it could be kept.
    fn learn(&mut self, key: (String, String, u16), hypervisor: bool) -> bool {
        let set = if hypervisor {
            &mut self.hypervisor_baseline
        } else {
            &mut self.baseline
        };
        if set.contains(&key) {
            return false;
        }
        if set.len() < self.cfg.max_edges {
            set.insert(key);
        } else {
            self.refused += 1;
        }
        true
    }

    /// A completed connection into a workload labelled hypervisor management, on any port: a
    /// `hypervisor_mgmt_access` if the edge is new after the learning period (once, then
    /// learned). These edges have their own baseline, of the same bound.
    pub fn hypervisor_edge(&mut self, e: &AdminEdge<'_>) -> Option<Detection> {
        let learning = self.learning(e.ts_ns);
        let key = (e.src_node.to_string(), e.dst_node.to_string(), e.dport);
        if !self.learn(key, true) || learning {
            return None;
        }
        Some(edge_detection(
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
        ))
    }

    /// An admin connection attempt (the client's SYN).
    pub fn attempt(&mut self, e: &AdminEdge<'_>, out: &mut Vec<Detection>) {
        self.tick(e.ts_ns, out);
        if e.src_node == e.dst_node {
            return;
        }
        let learning = self.learning(e.ts_ns);
        let key = (e.src_node.to_string(), e.dst_node.to_string(), e.dport);
        let new = self.learn(key, false);
        if new && !learning {
            out.push(edge_detection(
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
            ));
        }
        // During learning every edge counts as new: nothing is known yet.
        let unknown = new || learning;
        for (name, ip) in [(e.src_node, e.src), (e.dst_node, e.dst)] {
            if let Some(n) = self.node(name) {
                n.addr = Some(ip);
            }
        }
        if !e.admin_source {
            self.fan_attempt(e, unknown);
        }
        self.hop(e, unknown, new && !learning);
    }

    /// The server refused an attempt (RST to the SYN).
    pub fn refused(&mut self, e: &AdminEdge<'_>) {
        if let Some(f) = self.nodes.get_mut(e.src_node).and_then(|n| n.fan.as_mut()) {
            f.refused += 1;
        }
        if let Some(c) = self.chain_of(e.src_node, e.dst_node) {
            c.refused += 1;
        }
    }

    /// A client completed an admin handshake: the session is open.
    pub fn completed(&mut self, e: &AdminEdge<'_>) {
        if e.src_node == e.dst_node {
            return;
        }
        if let Some(f) = self.nodes.get_mut(e.src_node).and_then(|n| n.fan.as_mut()) {
            f.completed += 1;
        }
        if let Some(c) = self.chain_of(e.src_node, e.dst_node) {
            c.completed += 1;
        }
        if self.sessions.len() >= MAX_SESSIONS {
            self.refused += 1;
            return;
        }
        // The path that reached the destination: the one into the source, if a session into
        // it is open, then the destination.
        let conn = e.conn();
        // After learning, a session into the source that closed within `chain_window_s`
        // still carries its path (see `hop`).
        let learning = self.learning(e.ts_ns);
        let window = self.cfg.chain_window_s.saturating_mul(SEC);
        let reached = self
            .nodes
            .get(e.src_node)
            .and_then(|n| n.reached.as_ref())
            .filter(|i| !learning && e.ts_ns <= i.ts_ns.saturating_add(window));
        let (mut path, mut origin) = self
            .open_into(e.src_node, e.dst_node)
            .or(reached)
            .map_or((vec![e.src_node.to_string()], conn), |i| {
                (i.path.clone(), i.origin)
            });
        if path.iter().any(|n| n == e.dst_node) || path.len() >= MAX_PATH {
            (path, origin) = (vec![e.src_node.to_string()], conn);
        }
        path.push(e.dst_node.to_string());
        let Some(dst) = self.node(e.dst_node) else {
            return;
        };
        if dst.inbound.len() >= MAX_INBOUND {
            dst.inbound.remove(0);
        }
        dst.inbound.push(Inbound {
            conn,
            path,
            origin,
            ts_ns: e.ts_ns,
        });
        self.sessions
            .insert(conn, (e.dst_node.to_string(), e.ts_ns));
    }

    /// A FIN or RST of an open session.
    pub fn closed(&mut self, conn: &Conn) {
        let Some((node, _)) = self.sessions.remove(conn) else {
            return;
        };
        if let Some(n) = self.nodes.get_mut(&node)
            && let Some(at) = n.inbound.iter().position(|i| i.conn == *conn)
        {
            n.reached = Some(n.inbound.remove(at));
        }
    }

    /// The newest open session into `node` whose path does not pass `not_from`.
    fn open_into(&self, node: &str, not_from: &str) -> Option<&Inbound> {
        self.nodes
            .get(node)?
            .inbound
            .iter()
            .rev()
            .find(|i| i.path.iter().all(|n| n != not_from))
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

    fn fan_attempt(&mut self, e: &AdminEdge<'_>, unknown: bool) {
        let multi = (self.cfg.fanout_services, self.cfg.fanout_service_hosts);
        let Some(n) = self.node(e.src_node) else {
            return;
        };
        let f = n.fan.get_or_insert_with(|| Fanout {
            start_ns: e.ts_ns,
            window_ns: e.fanout.1.saturating_mul(SEC),
            need: e.fanout.0.max(1),
            need_multi: (multi.0.max(1), multi.1.max(1)),
            ..Fanout::default()
        });
        f.last_ns = e.ts_ns;
        f.attempts += 1;
        f.scanning |= e.scanning;
        f.any_new |= unknown;
        f.first.get_or_insert((e.src, e.dst, e.sport, e.dport));
        if !f.hosts.iter().any(|h| h == e.dst_node) && f.hosts.len() < MAX_FANOUT_HOSTS {
            f.hosts.push(e.dst_node.to_string());
            if f.flows.len() < MAX_EVIDENCE_FLOWS {
                f.flows.push(e.flow_id);
            }
        }
        if !f.services.contains(&e.dport) {
            f.services.push(e.dport);
        }
    }

    /// An attempt from a node that holds an open inbound session: a hop of a chain.
    fn hop(&mut self, e: &AdminEdge<'_>, unknown: bool, new_after_learning: bool) {
        let window = self.cfg.chain_window_s.saturating_mul(SEC);
        let recent = |i: &&Inbound| {
            new_after_learning
                && e.ts_ns <= i.ts_ns.saturating_add(window)
                && i.path.iter().all(|x| x != e.dst_node)
        };
        let via = match self.open_into(e.src_node, e.dst_node) {
            Some(v) => v,
            None => match self
                .nodes
                .get(e.src_node)
                .and_then(|n| n.reached.as_ref())
                .filter(recent)
            {
                Some(v) => v,
                None => return,
            },
        };
        if via.path.len() >= MAX_PATH {
            return;
        }
        let (via_path, origin, via_conn, via_ts) =
            (via.path.clone(), via.origin, via.conn, via.ts_ns);
        let hop = Hop {
            from: e.src_node.to_string(),
            to: e.dst_node.to_string(),
            port: e.dport,
            ts_ns: e.ts_ns,
        };
        if let Some(c) = self.chains.iter_mut().find(|c| c.path[0] == via_path[0]) {
            for n in via_path.iter().chain([&hop.to]) {
                if !c.path.contains(n) && c.path.len() < MAX_PATH {
                    c.path.push(n.clone());
                }
            }
            c.last_ns = e.ts_ns;
            c.any_new |= unknown;
            if c.flows.len() < MAX_EVIDENCE_FLOWS {
                c.flows.push(e.flow_id);
            }
            if !c
                .hops
                .iter()
                .any(|h| h.from == hop.from && h.to == hop.to && h.port == hop.port)
                && c.hops.len() < MAX_HOPS
            {
                c.hops.push(hop);
            }
            return;
        }
        if self.chains.len() >= MAX_OPEN_CHAINS {
            self.refused += 1;
            return;
        }
        // The sessions that reached the source are the chain's first hops: the last one's
        // service is known, the earlier ones' only by their place in the path.
        let n = via_path.len();
        let mut hops: Vec<Hop> = via_path
            .windows(2)
            .enumerate()
            .map(|(i, w)| Hop {
                from: w[0].clone(),
                to: w[1].clone(),
                port: if i + 2 == n { via_conn.sport } else { 0 },
                ts_ns: via_ts,
            })
            .collect();
        let mut path = via_path;
        path.push(hop.to.clone());
        hops.push(hop);
        self.chains.push(Chain {
            path,
            hops,
            refused: 0,
            completed: 0,
            any_new: unknown,
            start_ns: via_ts,
            last_ns: e.ts_ns,
            flows: vec![e.flow_id],
            first: (origin.client, origin.server, origin.cport, origin.sport),
        });
    }

    /// The chain in which `from → to` is a hop.
    fn chain_of(&mut self, from: &str, to: &str) -> Option<&mut Chain> {
        if self.chains.is_empty() {
            return None;
        }
        self.chains
            .iter_mut()
            .find(|c| c.hops.iter().any(|h| h.from == from && h.to == to))
    }

    /// Time moved on to `now`: report fan-outs and chains gone quiet (once a second).
    pub fn tick(&mut self, now: u64, out: &mut Vec<Detection>) {
        if now / SEC == self.second {
            return;
        }
        self.second = now / SEC;
        let quiet = self.cfg.chain_quiet_s.saturating_mul(SEC);
        let mut i = 0;
        while i < self.chains.len() {
            if now >= self.chains[i].last_ns.saturating_add(quiet) {
                let c = self.chains.remove(i);
                let addrs = self.addrs(&c.path);
                out.push(chain_detection(c, addrs));
            } else {
                i += 1;
            }
        }
        let fquiet = self.cfg.fanout_quiet_s.saturating_mul(SEC);
        let mut done: Vec<(u64, String)> = Vec::new();
        for (name, n) in self.nodes.iter_mut() {
            let Some(f) = n.fan.as_ref() else {
                continue;
            };
            if now >= f.start_ns.saturating_add(f.window_ns)
                || (now >= f.last_ns.saturating_add(fquiet) && f.is_fanout())
            {
                done.push((f.start_ns, name.clone()));
            }
        }
        done.sort();
        for (_, name) in done {
            if let Some(f) = self.nodes.get_mut(&name).and_then(|n| n.fan.take()) {
                fanout_detection(&name, f, out);
            }
            if self.nodes.get(&name).is_some_and(|n| {
                n.inbound.is_empty()
                    && n.reached.is_none()
                    && !self.chains.iter().any(|c| c.path.contains(&name))
            }) {
                self.nodes.remove(&name);
            }
        }
        // Sessions whose close was never seen age out after a day.
        if self.second.is_multiple_of(10) && !self.sessions.is_empty() {
            let max = SESSION_AGE_S.saturating_mul(SEC);
            let old: Vec<Conn> = self
                .sessions
                .iter()
                .filter(|(_, (_, t))| now >= t.saturating_add(max))
                .map(|(c, _)| *c)
                .collect();
            for c in old {
                self.closed(&c);
            }
        }
    }

    /// The addresses of a path's nodes, as far as known.
    fn addrs(&self, path: &[String]) -> Vec<String> {
        path.iter()
            .filter_map(|n| self.nodes.get(n).and_then(|s| s.addr))
            .map(|a| a.to_string())
            .collect()
    }

    /// The input ended: report the fan-outs and chains still open.
    pub fn finish(&mut self, out: &mut Vec<Detection>) {
        let mut fans: Vec<(u64, String, Fanout)> = self
            .nodes
            .iter_mut()
            .filter_map(|(name, n)| n.fan.take().map(|f| (f.start_ns, name.clone(), f)))
            .collect();
        fans.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (_, name, f) in fans {
            fanout_detection(&name, f, out);
        }
        for c in std::mem::take(&mut self.chains) {
            let addrs = self.addrs(&c.path);
            out.push(chain_detection(c, addrs));
        }
    }
}

impl Fanout {
    /// Past a threshold, with a completed session (without one it is a probe sweep: the scan
    /// detector's).
    fn is_fanout(&self) -> bool {
        // One protocol to many hosts is what automation does too, and automation knows where
        // its service runs: wide counts only with an attempt that did not complete.
        let wide = self.hosts.len() >= self.need && self.attempts > self.completed;
        let multi =
            self.services.len() >= self.need_multi.0 && self.hosts.len() >= self.need_multi.1;
        (wide || multi) && self.completed > 0 && !self.reported && !self.scanning
    }
}

fn fanout_detection(src_node: &str, f: Fanout, out: &mut Vec<Detection>) {
    if !f.is_fanout() {
        return;
    }
    let Some(first) = f.first else {
        return;
    };
    let mut services = f.services.clone();
    services.sort_unstable();
    out.push(detection(
        ADMIN_PROTOCOL_FANOUT,
        if f.any_new { 2 } else { 3 },
        format!(
            "islet detect: {src_node} tried admin protocols on {} hosts in {} s ({} attempts, {} completed, {} refused)",
            f.hosts.len(),
            f.last_ns.saturating_sub(f.start_ns).div_ceil(SEC),
            f.attempts,
            f.completed,
            f.refused
        ),
        first,
        f.last_ns,
        vec![
            ("src_node", vec![src_node.to_string()]),
            ("dest_nodes", f.hosts.clone()),
            (
                "services",
                services.iter().map(|p| format!("tcp/{p}")).collect(),
            ),
        ],
        Evidence {
            flow_ids: f.flows,
            counts: vec![
                ("hosts", f.hosts.len() as u64),
                ("attempts", f.attempts),
                ("completed", f.completed),
                ("refused", f.refused),
            ],
            start_ns: f.start_ns,
            end_ns: f.last_ns,
        },
    ));
}

fn chain_detection(c: Chain, addrs: Vec<String>) -> Detection {
    let hops = c.hops.len() as u64;
    detection(
        LATERAL_MOVEMENT_CHAIN,
        if c.any_new { 1 } else { 2 },
        format!(
            "islet detect: lateral movement {} ({} hops over admin protocols)",
            c.path.join(" -> "),
            hops
        ),
        c.first,
        c.last_ns,
        vec![
            ("path", c.path.clone()),
            ("path_addresses", addrs),
            (
                "hops",
                c.hops
                    .iter()
                    .map(|h| {
                        let svc = if h.port == 0 {
                            String::new()
                        } else {
                            format!(" tcp/{}", h.port)
                        };
                        format!("{} -> {}{svc} at {}", h.from, h.to, h.ts_ns / SEC)
                    })
                    .collect(),
            ),
            (
                "services",
                c.hops
                    .iter()
                    .filter(|h| h.port != 0)
                    .map(|h| format!("tcp/{}", h.port))
                    .collect(),
            ),
        ],
        Evidence {
            counts: vec![
                ("hops", hops),
                ("completed", c.completed),
                ("refused", c.refused),
            ],
            flow_ids: c.flows,
            start_ns: c.start_ns,
            end_ns: c.last_ns,
        },
    )
}

/// A detection of one edge, with that edge as its evidence.
fn edge_detection(
    kind: crate::Kind,
    severity: u8,
    summary: String,
    e: &AdminEdge<'_>,
    metadata: Vec<(&'static str, Vec<String>)>,
) -> Detection {
    detection(
        kind,
        severity,
        summary,
        (e.src, e.dst, e.sport, e.dport),
        e.ts_ns,
        metadata,
        Evidence {
            flow_ids: vec![e.flow_id],
            counts: vec![("edges", 1)],
            start_ns: e.ts_ns,
            end_ns: e.ts_ns,
        },
    )
}

fn detection(
    kind: crate::Kind,
    severity: u8,
    summary: String,
    (src, dst, sport, dport): (IpAddr, IpAddr, u16, u16),
    ts_ns: u64,
    metadata: Vec<(&'static str, Vec<String>)>,
    evidence: Evidence,
) -> Detection {
    Detection {
        kind,
        severity,
        summary,
        src,
        dst,
        sport,
        dport,
        proto: 6,
        ts_ns,
        flow_id: evidence.flow_ids.first().copied().unwrap_or(0),
        metadata,
        evidence,
    }
}

#[cfg(test)]
mod tests;
