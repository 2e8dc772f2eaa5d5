//! The sensor's side of behavioural detection: scans and floods judged in the reader thread
//! from every packet's header (so the answer does not depend on the worker count), per-flow
//! detectors in the workers, and each [`Detection`] written as an EVE `alert`.

use crate::mitigate::Mitigator;
use islet_detect::brute::Brute;
use islet_detect::config::LateralGroup;
use islet_detect::flood::Flood;
use islet_detect::handshake::{Answer, Conn, Handshakes};
use islet_detect::lateral::{AdminEdge, Lateral};
use islet_detect::recon::Recon;
use islet_detect::service::{hypervisor_port, smb_remote_exec};
use islet_detect::volume::{Volume, VolumePacket, key_hash};
use islet_detect::{
    DetectConfig, Detection, Evidence, HYPERVISOR_MGMT_ACCESS, PacketFacts, SMB_REMOTE_EXEC,
    quoted_probe,
};
use islet_event::alert::write_alert;
use islet_event::eve::EveOptions;
use islet_event::eve_proto::EventContext;
use islet_event::proto::AppEvent;
use islet_event::{Alert, AlertEvidence};
use islet_flow::FlowKey;
use islet_wire::decode::{Decoded, Family, Tuple};
use std::net::IpAddr;

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Scans, floods and admin connections, in the reader thread.
#[derive(Debug)]
pub(crate) struct ReaderDetect {
    recon: Recon,
    flood: Flood,
    handshakes: Handshakes,
    brute: Brute,
    lateral: Lateral,
    volume: Volume,
    mitigate: Mitigator,
    found: Vec<Detection>,
    actions: Vec<(Detection, &'static str)>,
    hypervisor_ports: Vec<(u8, u16)>,
    /// TCP ports whose handshakes and sessions are followed (admin and management), as bits.
    watched: Box<[u64; 1024]>,
    groups: Vec<LateralGroup>,
    /// Who is an admin: the policy's inventory, when there is one.
    policy: Option<crate::policy::PolicyState>,
    /// (client, server, protocol, port) reported recently, and when: one alert per
    /// management service and source per [`REPEAT_NS`], not one per flow.
    reported: hashbrown::HashMap<(IpAddr, IpAddr, u8, u16), u64>,
    last_ts: u64,
    pub(crate) alerts: u64,
}

/// A source reaching the same management service again within this is not reported again.
const REPEAT_NS: u64 = 300 * 1_000_000_000;
/// Most (source, service) pairs remembered; past it the memory is cleared.
const MAX_REPORTED: usize = 65_536;
const FIN: u8 = 0x01;

fn conn(client: IpAddr, cport: u16, server: IpAddr, sport: u16) -> Conn {
    Conn {
        client,
        cport,
        server,
        sport,
    }
}

impl ReaderDetect {
    pub(crate) fn new(
        cfg: &DetectConfig,
        policy: Option<crate::policy::PolicyRuntime>,
    ) -> Option<ReaderDetect> {
        let hypervisor_ports = cfg.service.ports().unwrap_or_default();
        let mut watched = Box::new([0u64; 1024]);
        let tcp_mgmt = hypervisor_ports.iter().filter(|p| p.0 == 6).map(|p| p.1);
        for port in cfg
            .lateral
            .admin_ports
            .iter()
            .chain(&cfg.lateral.database_ports)
            .copied()
            .chain(tcp_mgmt)
        {
            watched[usize::from(port) / 64] |= 1 << (port % 64);
        }
        cfg.enabled.0.then(|| ReaderDetect {
            recon: Recon::new(cfg.scan.clone(), hypervisor_ports.clone()),
            flood: Flood::new(cfg.flood.clone()),
            handshakes: Handshakes::default(),
            brute: Brute::new(cfg.brute.clone()),
            lateral: Lateral::new(cfg.lateral.clone()),
            volume: Volume::new(cfg.volume.clone()),
            mitigate: Mitigator::new(cfg.mitigation.clone()),
            found: Vec::new(),
            actions: Vec::new(),
            hypervisor_ports,
            watched,
            groups: cfg.lateral.groups.clone(),
            policy: policy.map(|p| crate::policy::PolicyState::new(Some(p))),
            reported: hashbrown::HashMap::new(),
            last_ts: 0,
            alerts: 0,
        })
    }

    /// Frames pass through this sensor inline: mitigation can enforce.
    pub(crate) fn set_inline(&mut self, inline: bool) {
        self.mitigate.set_inline(inline);
    }

    fn watched(&self, port: u16) -> bool {
        self.watched[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }

    /// One decoded packet. Every packet adds to the volumetric sketch; beyond that only what
    /// a detector reads is looked at: TCP without ACK (probes, SYNs), SYN/ACKs, the client
    /// segments and closes of followed handshakes and sessions, SSH/RDP packets, datagrams
    /// from management ports and ICMP destination-unreachables. True if an enforced
    /// mitigation rule drops the packet.
    pub(crate) fn packet(
        &mut self,
        ts: u64,
        frame: &[u8],
        d: &Decoded,
        out: &mut Vec<u8>,
        eve: &EveOptions,
    ) -> bool {
        let t = &d.tuple;
        self.last_ts = self.last_ts.max(ts);
        let vp = VolumePacket {
            ts_ns: ts,
            src: t.src_ip(),
            dst: t.dst_ip(),
            proto: t.proto,
            sport: t.sport,
            dport: t.dport,
            len: d.pkt_len,
            key_hash: key_hash(&t.dst, t.proto),
        };
        self.volume.packet(
            &vp,
            || islet_flow::flow_id(&FlowKey::from_tuple(t).0, ts),
            &mut self.found,
        );
        self.flood.tick(ts, &mut self.found);
        self.lateral.tick(ts, &mut self.found);
        self.mitigate.expire(ts, false, &mut self.actions);
        if t.proto == 17 && hypervisor_port(&self.hypervisor_ports, 17, t.sport) {
            // A datagram from a management port answers its addressee: reached.
            self.hypervisor(
                ts,
                (t.dst_ip(), t.dport),
                (t.src_ip(), t.sport),
                17,
                out,
                eve,
            );
        }
        let f = d.tcp_flags;
        let tcp = t.proto == 6;
        let watched = tcp && self.brute.watches(t.sport, t.dport);
        let (recon, unreachable) = match t.proto {
            6 => (f & ACK == 0 || f & (SYN | ACK) == SYN | ACK, None),
            1 | 58 => {
                let q = quoted_probe(d.icmp_type, t.proto == 58, d.payload(frame));
                (q.is_some(), q)
            }
            _ => (false, None),
        };
        let follow = tcp && !recon && self.follows(t, f);
        let drop = tcp
            && self
                .mitigate
                .verdict(ts, t.src_ip(), t.dst_ip(), t.dport, f);
        if !recon && !watched && !follow {
            self.flush(out, eve);
            return drop;
        }
        let flow_id = if tcp && f & ACK == 0 {
            islet_flow::flow_id(&FlowKey::from_tuple(t).0, ts)
        } else {
            0
        };
        let p = PacketFacts {
            ts_ns: ts,
            src: t.src_ip(),
            dst: t.dst_ip(),
            proto: t.proto,
            sport: t.sport,
            dport: t.dport,
            tcp_flags: f,
            seq: d.tcp_seq,
            ack: d.tcp_ack,
            flow_id,
            unreachable,
            len: d.pkt_len,
        };
        if recon {
            self.recon.packet(&p, &mut self.found);
        }
        if watched {
            self.brute.packet(&p, &mut self.found);
        }
        if tcp {
            self.tcp(&p, out, eve);
        }
        self.onsets();
        self.flush(out, eve);
        drop
    }

    /// Does a TCP segment that is neither a probe nor a SYN/ACK matter: a client's answer to
    /// a followed handshake, or the close or refusal of a followed connection?
    fn follows(&self, t: &Tuple, f: u8) -> bool {
        (!self.handshakes.is_empty()
            && (self.watched(t.dport)
                || self.flood.is_victim(t.dst_ip(), t.dport)
                || self.policy.is_some()))
            || (f & (FIN | RST) != 0 && (self.watched(t.dport) || self.watched(t.sport)))
            || (f & RST != 0 && self.flood.is_victim(t.src_ip(), t.sport))
    }

    /// Handshakes, floods and admin connections, from one TCP segment.
    fn tcp(&mut self, p: &PacketFacts, out: &mut Vec<u8>, eve: &EveOptions) {
        let f = p.tcp_flags;
        if f & (SYN | ACK | RST) == SYN {
            self.flood.syn(p, &mut self.found);
            if self.lateral.is_admin_port(p.dport) {
                self.admin(p, p.src, p.sport, p.dst, p.dport, Admin::Attempt);
            }
            return;
        }
        if f & (SYN | ACK | RST) == SYN | ACK {
            self.flood.answered();
            let (server, sport, client, cport) = (p.src, p.sport, p.dst, p.dport);
            let follow = self.watched(sport)
                || self.flood.is_victim(server, sport)
                || self.is_hypervisor(server, p.ts_ns);
            if follow {
                let re = self
                    .handshakes
                    .synack(conn(client, cport, server, sport), p.seq, p.ts_ns);
                self.flood.synack(server, sport, re);
            }
            return;
        }
        // A segment from a client: does it answer a waiting SYN/ACK?
        let c = conn(p.src, p.sport, p.dst, p.dport);
        match self.handshakes.client(c, f, p.ack) {
            Some(Answer::Completed) => {
                self.flood.completed(p.src, p.dst, p.dport);
                self.mitigate.completed(p.src, (p.dst, p.dport));
                if self.lateral.is_admin_port(p.dport) {
                    self.admin(p, p.src, p.sport, p.dst, p.dport, Admin::Completed);
                }
                if hypervisor_port(&self.hypervisor_ports, 6, p.dport) {
                    self.hypervisor(p.ts_ns, (p.src, p.sport), (p.dst, p.dport), 6, out, eve);
                } else if self.is_hypervisor(p.dst, p.ts_ns)
                    && !self
                        .policy
                        .as_mut()
                        .is_some_and(|pol| pol.is_admin(p.src, p.ts_ns))
                {
                    self.admin(p, p.src, p.sport, p.dst, p.dport, Admin::Hypervisor);
                }
                return;
            }
            Some(Answer::Reset) => {
                self.flood.client_reset(p.dst, p.dport);
                return;
            }
            None => {}
        }
        if f & (FIN | RST) == 0 {
            return;
        }
        // A close of an open admin session (either side), or a server's refusal.
        let back = conn(p.dst, p.dport, p.src, p.sport);
        if self.lateral.is_open(&c) {
            self.lateral.closed(&c);
        } else if self.lateral.is_open(&back) {
            self.lateral.closed(&back);
        } else if f & RST != 0 {
            self.flood.server_reset(p.src, p.sport);
            if self.lateral.is_admin_port(p.sport)
                && self.handshakes.waiting_since(back).is_none()
                && f & ACK != 0
            {
                self.admin(p, p.dst, p.dport, p.src, p.sport, Admin::Refused);
            }
        }
    }

    /// Is `server` a workload labelled hypervisor management (with an inventory)?
    fn is_hypervisor(&mut self, server: IpAddr, ts: u64) -> bool {
        self.policy
            .as_mut()
            .is_some_and(|pol| pol.has_label(server, ts, "islet.io/role", "hypervisor-management"))
    }

    /// An admin connection from `client` to `server`, as nodes.
    fn admin(
        &mut self,
        p: &PacketFacts,
        client: IpAddr,
        cport: u16,
        server: IpAddr,
        sport: u16,
        what: Admin,
    ) {
        let ts = p.ts_ns;
        let src = self.node(client, ts);
        let dst = self.node(server, ts);
        let admin_source = self
            .policy
            .as_mut()
            .is_some_and(|pol| pol.is_admin(client, ts));
        let mut fanout = self.lateral.fanout_default();
        if let Some(pol) = self.policy.as_mut() {
            for g in &self.groups {
                let label = g.label.as_deref().and_then(|l| l.split_once('='));
                if pol.in_group(client, ts, g.namespace.as_deref(), label) {
                    fanout = (
                        g.fanout_hosts.unwrap_or(fanout.0),
                        g.fanout_window_s.unwrap_or(fanout.1),
                    );
                    break;
                }
            }
        }
        let e = AdminEdge {
            ts_ns: ts,
            src_node: &src,
            dst_node: &dst,
            src: client,
            dst: server,
            sport: cport,
            dport: sport,
            flow_id: p.flow_id,
            admin_source,
            fanout,
            scanning: self.recon.is_scanning(client),
        };
        match what {
            Admin::Attempt => self.lateral.attempt(&e, &mut self.found),
            Admin::Completed => self.lateral.completed(&e),
            Admin::Refused => self.lateral.refused(&e),
            Admin::Hypervisor => {
                if let Some(d) = self.lateral.hypervisor_edge(&e) {
                    self.found.push(d);
                }
            }
        }
    }

    /// Floods that began: their mitigation.
    fn onsets(&mut self) {
        let onsets = self.flood.take_onsets();
        if onsets.is_empty() || !self.mitigate.active() {
            return;
        }
        for o in &onsets {
            let pol = &mut self.policy;
            let mut protected = |a: IpAddr| {
                pol.as_mut()
                    .is_some_and(|p| p.has_label(a, o.ts_ns, "islet.io/protected", "true"))
            };
            self.mitigate.onset(o, &mut protected, &mut self.actions);
        }
    }

    /// A node of the admin graph: the workload the inventory names, else the address.
    fn node(&mut self, ip: IpAddr, ts: u64) -> String {
        self.policy
            .as_mut()
            .and_then(|p| p.workload_name(ip, ts))
            .unwrap_or_else(|| ip.to_string())
    }

    /// A management service reached (a completed handshake, or a datagram answered) from
    /// `client`, not a workload labelled `islet.io/admin: "true"`? (With no inventory no
    /// source is.)
    fn hypervisor(
        &mut self,
        ts: u64,
        (client, cport): (IpAddr, u16),
        (server, sport): (IpAddr, u16),
        proto: u8,
        out: &mut Vec<u8>,
        eve: &EveOptions,
    ) {
        if self.policy.as_mut().is_some_and(|p| p.is_admin(client, ts)) {
            return;
        }
        let key = (client, server, proto, sport);
        if self
            .reported
            .get(&key)
            .is_some_and(|&at| ts < at.saturating_add(REPEAT_NS))
        {
            return;
        }
        if self.reported.len() >= MAX_REPORTED {
            self.reported.clear();
        }
        self.reported.insert(key, ts);
        let name = if proto == 6 { "tcp" } else { "udp" };
        let mut det = Detection {
            kind: HYPERVISOR_MGMT_ACCESS,
            severity: 1,
            summary: format!(
                "islet detect: hypervisor management {name}/{sport} of {server} reached from non-admin {client} ({})",
                if proto == 6 {
                    "handshake completed"
                } else {
                    "datagram answered"
                }
            ),
            src: client,
            dst: server,
            sport: cport,
            dport: sport,
            proto,
            ts_ns: ts,
            flow_id: 0,
            metadata: vec![
                ("victim", vec![server.to_string()]),
                ("service", vec![format!("{name}/{sport}")]),
            ],
            evidence: Evidence::default(),
        };
        let tuple = tuple_of(&det);
        det.flow_id = islet_flow::flow_id(&FlowKey::from_tuple(&tuple).0, ts);
        det.evidence = Evidence {
            flow_ids: vec![det.flow_id],
            counts: vec![("flows", 1)],
            start_ns: ts,
            end_ns: ts,
        };
        write_detection(out, &det, eve);
        self.alerts += 1;
    }

    /// The input ended: report open windows, incidents and paths; remove every rule.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, eve: &EveOptions) {
        self.recon.finish(&mut self.found);
        self.flood.finish(&mut self.found);
        self.onsets();
        self.volume.finish(&mut self.found);
        self.lateral.finish(&mut self.found);
        self.mitigate.expire(self.last_ts, true, &mut self.actions);
        self.flush(out, eve);
    }

    fn flush(&mut self, out: &mut Vec<u8>, eve: &EveOptions) {
        for det in self.found.drain(..) {
            write_detection(out, &det, eve);
            self.alerts += 1;
        }
        for (det, action) in self.actions.drain(..) {
            write_action(out, &det, action, eve);
            self.alerts += 1;
        }
    }
}

/// What an admin connection did.
#[derive(Clone, Copy, Debug)]
enum Admin {
    Attempt,
    Completed,
    Refused,
    Hypervisor,
}

fn tuple_of(det: &Detection) -> Tuple {
    let mut t = Tuple {
        proto: det.proto,
        sport: det.sport,
        dport: det.dport,
        ..Tuple::default()
    };
    match (det.src, det.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            t.src[..4].copy_from_slice(&s.octets());
            t.dst[..4].copy_from_slice(&d.octets());
        }
        (s, d) => {
            let six = |a: IpAddr| match a {
                IpAddr::V4(x) => x.to_ipv6_mapped().octets(),
                IpAddr::V6(x) => x.octets(),
            };
            t.family = Family::V6;
            t.src = six(s);
            t.dst = six(d);
        }
    }
    t
}

/// Write one detection as an EVE `alert`.
pub(crate) fn write_detection(out: &mut Vec<u8>, det: &Detection, eve: &EveOptions) {
    write_action(out, det, "allowed", eve);
}

/// Write one detection as an EVE `alert` with `alert.action` (`blocked` for an enforced
/// mitigation).
fn write_action(out: &mut Vec<u8>, det: &Detection, action: &'static str, eve: &EveOptions) {
    let tuple = tuple_of(det);
    let ctx = EventContext {
        ts_ns: det.ts_ns,
        flow_id: det.flow_id,
        pcap_cnt: None,
        tuple: &tuple,
        community_id: None,
    };
    write_with_action(out, &ctx, det, None, action, eve);
}

fn write_with(
    out: &mut Vec<u8>,
    ctx: &EventContext<'_>,
    det: &Detection,
    proto: Option<&AppEvent>,
    eve: &EveOptions,
) {
    write_with_action(out, ctx, det, proto, "allowed", eve);
}

fn write_with_action(
    out: &mut Vec<u8>,
    ctx: &EventContext<'_>,
    det: &Detection,
    proto: Option<&AppEvent>,
    action: &'static str,
    eve: &EveOptions,
) {
    let k = det.kind;
    let mut metadata = vec![
        ("detection", vec![k.name.to_string()]),
        ("mitre_technique_id", vec![k.mitre_id.to_string()]),
        ("mitre_technique_name", vec![k.mitre_name.to_string()]),
    ];
    metadata.extend(det.metadata.iter().cloned());
    let Evidence {
        flow_ids,
        counts,
        start_ns,
        end_ns,
    } = &det.evidence;
    let a = Alert {
        action,
        signature_id: k.signature_id,
        rev: 1,
        signature: det.summary.clone(),
        category: k.category.to_string(),
        severity: det.severity,
        metadata,
        intel: None,
        policy: None,
        evidence: Some(AlertEvidence {
            flow_ids,
            counts,
            start_ns: *start_ns,
            end_ns: *end_ns,
        }),
    };
    write_alert(
        out,
        ctx,
        &a,
        proto,
        proto.map(islet_event::eve_proto::event_type),
        eve,
    );
}

/// Per-flow detectors, in a worker.
#[derive(Debug, Default)]
pub(crate) struct FlowDetect {
    enabled: bool,
    pub(crate) alerts: u64,
}

/// Per-flow detector state in the flow-table entry: what has been reported already.
pub(crate) const SMB_EXEC_REPORTED: u8 = 1;

impl FlowDetect {
    pub(crate) fn new(cfg: &DetectConfig) -> FlowDetect {
        FlowDetect {
            enabled: cfg.enabled.0,
            alerts: 0,
        }
    }

    /// A protocol event of a flow: SMB remote execution? `reported` is the flow's detector
    /// state. True if an alert was written.
    pub(crate) fn app_event(
        &mut self,
        out: &mut Vec<u8>,
        ctx: &EventContext<'_>,
        ev: &AppEvent,
        reported: &mut u8,
        eve: &EveOptions,
    ) -> bool {
        let AppEvent::Smb(s) = ev else {
            return false;
        };
        if !self.enabled || *reported & SMB_EXEC_REPORTED != 0 {
            return false;
        }
        let uuids = s
            .dcerpc
            .iter()
            .flat_map(|c| c.interfaces.iter().map(|i| i.uuid.as_str()));
        let Some(what) = smb_remote_exec(s.filename.as_deref(), uuids) else {
            return false;
        };
        *reported |= SMB_EXEC_REPORTED;
        let t = ctx.tuple;
        let det = Detection {
            kind: SMB_REMOTE_EXEC,
            severity: 1,
            summary: format!(
                "islet detect: remote execution over SMB from {} to {} ({what})",
                t.src_ip(),
                t.dst_ip()
            ),
            src: t.src_ip(),
            dst: t.dst_ip(),
            sport: t.sport,
            dport: t.dport,
            proto: t.proto,
            ts_ns: ctx.ts_ns,
            flow_id: ctx.flow_id,
            metadata: vec![
                ("victim", vec![t.dst_ip().to_string()]),
                ("remote_exec", vec![what.to_string()]),
            ],
            evidence: Evidence {
                flow_ids: vec![ctx.flow_id],
                counts: vec![("smb_id", s.id)],
                start_ns: ctx.ts_ns,
                end_ns: ctx.ts_ns,
            },
        };
        write_with(out, ctx, &det, Some(ev), eve);
        self.alerts += 1;
        true
    }
}
