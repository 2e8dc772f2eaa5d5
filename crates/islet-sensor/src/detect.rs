//! The sensor's side of behavioural detection: scans and floods judged in the reader thread
//! from every packet's header (so the answer does not depend on the worker count), per-flow
//! detectors in the workers, and each [`Detection`] written as an EVE `alert`.

use islet_detect::brute::Brute;
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

/// Scans and floods, in the reader thread.
#[derive(Debug)]
pub(crate) struct ReaderDetect {
    recon: Recon,
    brute: Brute,
    lateral: Lateral,
    volume: Volume,
    found: Vec<Detection>,
    hypervisor_ports: Vec<(u8, u16)>,
    /// Who is an admin: the policy's inventory, when there is one.
    policy: Option<crate::policy::PolicyState>,
    /// (source, destination, protocol, port) reported recently, and when: one alert per
    /// management service and source per [`REPEAT_NS`], not one per flow.
    reported: hashbrown::HashMap<(IpAddr, IpAddr, u8, u16), u64>,
    pub(crate) alerts: u64,
}

/// A source reaching the same management service again within this is not reported again.
const REPEAT_NS: u64 = 300 * 1_000_000_000;
/// Most (source, service) pairs remembered; past it the memory is cleared.
const MAX_REPORTED: usize = 65_536;

impl ReaderDetect {
    pub(crate) fn new(
        cfg: &DetectConfig,
        policy: Option<crate::policy::PolicyRuntime>,
    ) -> Option<ReaderDetect> {
        cfg.enabled.0.then(|| ReaderDetect {
            recon: Recon::new(cfg.scan.clone(), cfg.flood.clone()),
            brute: Brute::new(cfg.brute.clone()),
            lateral: Lateral::new(cfg.lateral.clone()),
            volume: Volume::new(cfg.volume.clone()),
            found: Vec::new(),
            hypervisor_ports: cfg.service.ports().unwrap_or_default(),
            policy: policy.map(|p| crate::policy::PolicyState::new(Some(p))),
            reported: hashbrown::HashMap::new(),
            alerts: 0,
        })
    }

    /// One decoded packet. Every packet adds to the volumetric sketch; beyond that only what
    /// a detector reads is looked at: TCP without ACK (probes, SYNs), SYN/ACKs, SSH/RDP
    /// packets, datagrams to management ports and ICMP destination-unreachables.
    pub(crate) fn packet(
        &mut self,
        ts: u64,
        frame: &[u8],
        d: &Decoded,
        out: &mut Vec<u8>,
        eve: &EveOptions,
    ) {
        let t = &d.tuple;
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
        if matches!(t.proto, 6 | 17)
            && (t.proto == 17 || d.tcp_flags & (SYN | ACK) == SYN)
            && hypervisor_port(&self.hypervisor_ports, t.proto, t.dport)
        {
            self.hypervisor(ts, t, out, eve);
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
        if !recon && !watched {
            self.flush(out, eve);
            return;
        }
        let flow_id = if t.proto == 6 && d.tcp_flags & ACK == 0 {
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
            tcp_flags: d.tcp_flags,
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
        let syn = tcp && f & (SYN | ACK | RST) == SYN;
        let into_hypervisor = syn
            && !hypervisor_port(&self.hypervisor_ports, 6, t.dport)
            && self.policy.as_mut().is_some_and(|pol| {
                pol.has_label(p.dst, ts, "islet.io/role", "hypervisor-management")
                    && !pol.is_admin(p.src, ts)
            });
        let admin = syn && self.lateral.is_admin_port(t.dport);
        if into_hypervisor || admin {
            let src = self.node(p.src, ts);
            let dst = self.node(p.dst, ts);
            let e = AdminEdge {
                ts_ns: ts,
                src_node: &src,
                dst_node: &dst,
                src: p.src,
                dst: p.dst,
                sport: p.sport,
                dport: p.dport,
                flow_id: p.flow_id,
            };
            if into_hypervisor && let Some(d) = self.lateral.hypervisor_edge(&e) {
                self.found.push(d);
            }
            if admin {
                self.lateral.edge(&e, &mut self.found);
            }
        }
        self.flush(out, eve);
    }

    /// A node of the admin graph: the workload the inventory names, else the address.
    fn node(&mut self, ip: IpAddr, ts: u64) -> String {
        self.policy
            .as_mut()
            .and_then(|p| p.workload_name(ip, ts))
            .unwrap_or_else(|| ip.to_string())
    }

    /// A connection attempt (TCP SYN) or datagram to a hypervisor management port: from a
    /// source that is not a workload labelled `islet.io/admin: "true"`? (With no inventory no
    /// source is.)
    fn hypervisor(&mut self, ts: u64, t: &Tuple, out: &mut Vec<u8>, eve: &EveOptions) {
        if self
            .policy
            .as_mut()
            .is_some_and(|p| p.is_admin(t.src_ip(), ts))
        {
            return;
        }
        let flow_id = islet_flow::flow_id(&FlowKey::from_tuple(t).0, ts);
        let ctx = EventContext {
            ts_ns: ts,
            flow_id,
            pcap_cnt: None,
            tuple: t,
            community_id: None,
        };
        let key = (t.src_ip(), t.dst_ip(), t.proto, t.dport);
        if self
            .reported
            .get(&key)
            .is_some_and(|&at| ctx.ts_ns < at.saturating_add(REPEAT_NS))
        {
            return;
        }
        if self.reported.len() >= MAX_REPORTED {
            self.reported.clear();
        }
        self.reported.insert(key, ctx.ts_ns);
        let proto = if t.proto == 6 { "tcp" } else { "udp" };
        let det = Detection {
            kind: HYPERVISOR_MGMT_ACCESS,
            severity: 1,
            summary: format!(
                "islet detect: hypervisor management {proto}/{} reached from non-admin {}",
                t.dport,
                t.src_ip()
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
                ("service", vec![format!("{proto}/{}", t.dport)]),
            ],
            evidence: Evidence {
                flow_ids: vec![ctx.flow_id],
                counts: vec![("flows", 1)],
                start_ns: ctx.ts_ns,
                end_ns: ctx.ts_ns,
            },
        };
        write_with(out, &ctx, &det, None, eve);
        self.alerts += 1;
    }

    /// The input ended: report open windows, incidents and paths.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, eve: &EveOptions) {
        self.recon.finish(&mut self.found);
        self.volume.finish(&mut self.found);
        self.lateral.finish(&mut self.found);
        self.flush(out, eve);
    }

    fn flush(&mut self, out: &mut Vec<u8>, eve: &EveOptions) {
        for det in self.found.drain(..) {
            write_detection(out, &det, eve);
            self.alerts += 1;
        }
    }
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
    let tuple = tuple_of(det);
    let ctx = EventContext {
        ts_ns: det.ts_ns,
        flow_id: det.flow_id,
        pcap_cnt: None,
        tuple: &tuple,
        community_id: None,
    };
    write_with(out, &ctx, det, None, eve);
}

fn write_with(
    out: &mut Vec<u8>,
    ctx: &EventContext<'_>,
    det: &Detection,
    proto: Option<&AppEvent>,
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
        action: "allowed",
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
