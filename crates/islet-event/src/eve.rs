//! EVE JSON encoders (Suricata 8 field names and value formats), one line per event.

use crate::json::Json;
use crate::time::write_iso;
use crate::{Anomaly, AnomalyKind, CommunityId, FlowRecord, Stats};
use islet_wire::{Family, Tuple, ip_proto};

/// Options every encoder shares.
#[derive(Clone, Copy, Debug, Default)]
pub struct EveOptions {
    /// Community ID seed (`--community-id-seed`).
    pub community_id_seed: u16,
}

/// Suricata's name for an IP protocol in `proto`.
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        ip_proto::TCP => "TCP",
        ip_proto::UDP => "UDP",
        ip_proto::ICMP => "ICMP",
        ip_proto::ICMPV6 => "IPv6-ICMP",
        ip_proto::GRE => "GRE",
        ip_proto::SCTP => "SCTP",
        50 => "ESP",
        51 => "AH",
        _ => return None,
    })
}

/// Write an address as Suricata does: dotted quad, or IPv6 fully expanded with leading zeros
/// (`2001:0db8:0000:…`).
pub fn write_ip(buf: &mut Vec<u8>, family: Family, a: &[u8; 16]) {
    buf.push(b'"');
    match family {
        Family::V4 => {
            for (i, o) in a[..4].iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                buf.extend_from_slice(itoa::Buffer::new().format(*o).as_bytes());
            }
        }
        Family::V6 => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, pair) in a.chunks_exact(2).enumerate() {
                if i > 0 {
                    buf.push(b':');
                }
                for b in pair {
                    buf.push(HEX[usize::from(b >> 4)]);
                    buf.push(HEX[usize::from(b & 0xf)]);
                }
            }
        }
    }
    buf.push(b'"');
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP)
}

/// The common header: addresses, ports, proto, VLANs.
pub(crate) fn tuple_fields(j: &mut Json<'_>, t: &Tuple, ports: bool) {
    if t.vlan_len > 0 {
        j.begin_array("vlan");
        for v in t.vlans() {
            j.item_u64(u64::from(*v));
        }
        j.end_array();
    }
    j.with("src_ip", |b| write_ip(b, t.family, &t.src));
    if ports && has_ports(t.proto) {
        j.u64("src_port", u64::from(t.sport));
    }
    j.with("dest_ip", |b| write_ip(b, t.family, &t.dst));
    if ports && has_ports(t.proto) {
        j.u64("dest_port", u64::from(t.dport));
    }
    match proto_name(t.proto) {
        Some(n) => j.str("proto", n),
        None => j.str("proto", itoa::Buffer::new().format(t.proto)),
    };
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn tcp_flags_hex(buf: &mut Vec<u8>, f: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.extend_from_slice(&[
        b'"',
        HEX[usize::from(f >> 4)],
        HEX[usize::from(f & 0xf)],
        b'"',
    ]);
}

/// Append one `flow` event.
pub fn write_flow(buf: &mut Vec<u8>, r: &FlowRecord, o: &EveOptions) {
    write_flow_full(buf, r, &[], None, o);
}

/// Append one `flow` event carrying the indicators without `to_ids` it matched
/// (`islet.intel_sightings`, each `type value`): seen on the flow, not alerted.
pub fn write_flow_with_sightings(
    buf: &mut Vec<u8>,
    r: &FlowRecord,
    sightings: &[String],
    o: &EveOptions,
) {
    write_flow_full(buf, r, sightings, None, o);
}

/// Append one `flow` event with its intel sightings and its policy verdict (`flow.action`,
/// `islet.policy`).
pub fn write_flow_full(
    buf: &mut Vec<u8>,
    r: &FlowRecord,
    sightings: &[String],
    policy: Option<&crate::PolicyNote<'_>>,
    o: &EveOptions,
) {
    let mut j = Json::object(buf);
    j.with("timestamp", |b| write_iso(b, r.log_ns));
    j.u64("flow_id", r.flow_id);
    j.str("event_type", "flow");
    tuple_fields(&mut j, &r.tuple, true);
    if let Some(ic) = r.icmp {
        j.u64("icmp_type", u64::from(ic.icmp_type));
        j.u64("icmp_code", u64::from(ic.icmp_code));
        if let Some((t, c)) = ic.response {
            j.u64("response_icmp_type", u64::from(t));
            j.u64("response_icmp_code", u64::from(c));
        }
    }
    if let Some(name) = r.app_proto.name() {
        j.str("app_proto", name);
    }
    if r.app_proto_ts.is_known() && r.app_proto_ts != r.app_proto {
        j.str("app_proto_ts", r.app_proto_ts.name().unwrap_or_default());
    }
    if r.app_proto_tc.is_known() && r.app_proto_tc != r.app_proto {
        j.str("app_proto_tc", r.app_proto_tc.name().unwrap_or_default());
    }
    // The fixed-shape objects are written as literal fragments: one copy per key, not four.
    j.with("flow", |b| {
        b.extend_from_slice(b"{\"pkts_toserver\":");
        put_u64(b, r.pkts_toserver);
        b.extend_from_slice(b",\"pkts_toclient\":");
        put_u64(b, r.pkts_toclient);
        b.extend_from_slice(b",\"bytes_toserver\":");
        put_u64(b, r.bytes_toserver);
        b.extend_from_slice(b",\"bytes_toclient\":");
        put_u64(b, r.bytes_toclient);
        b.extend_from_slice(b",\"start\":");
        write_iso(b, r.start_ns);
        b.extend_from_slice(b",\"end\":");
        write_iso(b, r.end_ns);
        b.extend_from_slice(b",\"age\":");
        put_u64(
            b,
            (r.end_ns / 1_000_000_000).saturating_sub(r.start_ns / 1_000_000_000),
        );
        b.extend_from_slice(b",\"state\":\"");
        b.extend_from_slice(r.state.name().as_bytes());
        b.extend_from_slice(b"\",\"reason\":\"");
        b.extend_from_slice(r.reason.name().as_bytes());
        b.extend_from_slice(if r.alerted {
            b"\",\"alerted\":true"
        } else {
            b"\",\"alerted\":false"
        });
        if let Some(p) = policy {
            b.extend_from_slice(b",\"action\":\"");
            b.extend_from_slice(p.action.as_bytes());
            b.push(b'"');
        }
        match r.bypass {
            crate::model::Bypass::None => {}
            crate::model::Bypass::Local => b.extend_from_slice(b",\"bypass\":\"local\""),
            crate::model::Bypass::Capture => {
                b.extend_from_slice(b",\"bypass\":\"capture\",\"bypassed\":{\"pkts_toserver\":");
                put_u64(b, r.bypassed[0]);
                b.extend_from_slice(b",\"pkts_toclient\":");
                put_u64(b, r.bypassed[1]);
                b.extend_from_slice(b",\"bytes_toserver\":");
                put_u64(b, r.bypassed[2]);
                b.extend_from_slice(b",\"bytes_toclient\":");
                put_u64(b, r.bypassed[3]);
                b.push(b'}');
            }
        }
        b.push(b'}');
    });
    let cid = CommunityId::v1(o.community_id_seed, &r.tuple);
    j.str("community_id", cid.as_str());
    if let Some(t) = r.tcp {
        let all = t.flags_ts | t.flags_tc;
        j.with("tcp", |b| {
            b.extend_from_slice(b"{\"tcp_flags\":");
            tcp_flags_hex(b, all);
            b.extend_from_slice(b",\"tcp_flags_ts\":");
            tcp_flags_hex(b, t.flags_ts);
            b.extend_from_slice(b",\"tcp_flags_tc\":");
            tcp_flags_hex(b, t.flags_tc);
            for (bit, field) in [
                (0x01, &b",\"fin\":true"[..]),
                (0x02, b",\"syn\":true"),
                (0x04, b",\"rst\":true"),
                (0x08, b",\"psh\":true"),
                (0x10, b",\"ack\":true"),
                (0x20, b",\"urg\":true"),
                (0x40, b",\"ecn\":true"),
                (0x80, b",\"cwr\":true"),
            ] {
                if all & bit != 0 {
                    b.extend_from_slice(field);
                }
            }
            b.extend_from_slice(b",\"state\":\"");
            b.extend_from_slice(t.state.name().as_bytes());
            b.extend_from_slice(b"\"}");
        });
    }
    if r.tunnel_outer || !sightings.is_empty() || policy.is_some() {
        j.begin_object("islet");
        if let Some(p) = policy {
            crate::alert::write_policy(&mut j, p);
        }
        if r.tunnel_outer {
            j.bool("tunnel_outer", true);
        }
        if !sightings.is_empty() {
            j.begin_array("intel_sightings");
            for s in sightings {
                j.item_str(s);
            }
            j.end_array();
        }
        j.end_object();
    }
    j.finish();
}

/// Append one `anomaly` event.
pub fn write_anomaly(buf: &mut Vec<u8>, a: &Anomaly, o: &EveOptions) {
    let mut j = Json::object(buf);
    j.with("timestamp", |b| write_iso(b, a.ts_ns));
    if let Some(id) = a.flow_id {
        j.u64("flow_id", id);
    }
    if let Some(n) = a.pcap_cnt {
        j.u64("pcap_cnt", n);
    }
    j.str("event_type", "anomaly");
    if let Some(t) = &a.tuple {
        tuple_fields(&mut j, t, a.has_ports);
        if a.has_ports {
            let cid = CommunityId::v1(o.community_id_seed, t);
            j.str("community_id", cid.as_str());
        }
    }
    j.begin_object("anomaly");
    match a.kind {
        AnomalyKind::Decode(ev) => {
            j.str("type", "decode");
            // Names are static ASCII; written in place (an attacker can make every packet an
            // anomaly, so nothing here may allocate).
            j.with("event", |b| {
                b.extend_from_slice(b"\"decoder.");
                b.extend_from_slice(ev.name().as_bytes());
                b.push(b'"');
            });
        }
    }
    j.end_object();
    j.finish();
}

/// Append one `stats` event.
pub fn write_stats(buf: &mut Vec<u8>, s: &Stats) {
    let mut j = Json::object(buf);
    j.with("timestamp", |b| write_iso(b, s.ts_ns));
    j.str("event_type", "stats");
    j.begin_object("stats");
    j.u64("uptime", s.uptime_s);
    j.begin_object("decoder");
    for (k, v) in [
        ("pkts", s.pkts),
        ("bytes", s.bytes),
        ("invalid", s.invalid),
        ("ethernet", s.ethernet),
        ("ipv4", s.ipv4),
        ("ipv6", s.ipv6),
        ("tcp", s.tcp),
        ("udp", s.udp),
        ("icmpv4", s.icmpv4),
        ("icmpv6", s.icmpv6),
        ("vlan", s.vlan),
        ("vxlan", s.vxlan),
        ("gre", s.gre),
        ("erspan", s.erspan),
        ("mpls", s.mpls),
        ("arp", s.arp),
        ("unknown_ethertype", s.unknown_ethertype),
    ] {
        j.u64(k, v);
    }
    j.begin_object("event");
    let mut groups: Vec<(&str, &str, u64)> = s
        .decode_events
        .iter()
        .map(|(ev, n)| {
            let name = ev.name();
            let (g, k) = name.split_once('.').unwrap_or(("decoder", name));
            (g, k, *n)
        })
        .collect();
    groups.sort();
    let mut open: Option<&str> = None;
    for (g, k, n) in groups {
        if open != Some(g) {
            if open.is_some() {
                j.end_object();
            }
            j.begin_object(g);
            open = Some(g);
        }
        j.u64(k, n);
    }
    if open.is_some() {
        j.end_object();
    }
    j.end_object();
    j.end_object();
    j.begin_object("defrag");
    j.u64("fragments", s.frags);
    j.u64("reassembled", s.frags_reassembled);
    j.u64("timeouts", s.frags_timeouts);
    j.u64("dropped", s.frags_dropped);
    let dd = &s.defrag_drops;
    j.begin_object("drop");
    for (k, v) in [
        ("table_full", dd.table_full),
        ("source_limit", dd.source_limit),
        ("too_many_fragments", dd.too_many_fragments),
        ("oversized", dd.oversized),
        ("truncated", dd.truncated),
        ("overlap", dd.overlap),
    ] {
        j.u64(k, v);
    }
    j.end_object();
    j.end_object();
    j.begin_object("flow");
    for (k, v) in [
        ("total", s.flows_total),
        ("tcp", s.flows_tcp),
        ("udp", s.flows_udp),
        ("icmpv4", s.flows_icmpv4),
        ("icmpv6", s.flows_icmpv6),
        ("other", s.flows_other),
        ("end_timeout", s.flows_timeout),
        ("end_forced", s.flows_forced),
        ("end_shutdown", s.flows_shutdown),
        ("emergency_mode_entered", s.flows_emergency_entered),
        ("active_max", s.flows_active_max),
    ] {
        j.u64(k, v);
    }
    j.end_object();
    j.begin_object("detect");
    j.u64("alert", s.alerts);
    j.end_object();
    j.begin_object("intel");
    j.u64("sightings", s.intel_sightings);
    j.end_object();
    j.begin_object("policy");
    j.u64("denied", s.policy_denied);
    j.u64("names_evicted", s.policy_names_evicted);
    j.end_object();
    j.u64("anomalies", s.anomalies);
    j.end_object();
    j.finish();
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::{EndReason, FlowState, TcpState, TcpSummary};

    #[test]
    fn decode_anomaly_names_the_suricata_event() {
        let a = Anomaly {
            ts_ns: 0,
            pcap_cnt: Some(3),
            tuple: None,
            has_ports: false,
            flow_id: None,
            kind: AnomalyKind::Decode(islet_wire::DecodeEvent::Ipv4TruncPkt),
        };
        let mut b = Vec::new();
        write_anomaly(&mut b, &a, &EveOptions::default());
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["anomaly"]["type"], "decode");
        assert_eq!(v["anomaly"]["event"], "decoder.ipv4.trunc_pkt");
        assert_eq!(v["pcap_cnt"], 3);
        assert!(v.get("src_ip").is_none());
    }

    #[test]
    fn ipv6_is_fully_expanded() {
        let mut b = Vec::new();
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x48, 0x60]);
        a[15] = 0x88;
        write_ip(&mut b, Family::V6, &a);
        assert_eq!(b, b"\"2001:4860:0000:0000:0000:0000:0000:0088\"");
    }

    #[test]
    fn flow_event_fields() {
        let mut t = Tuple {
            proto: 6,
            sport: 35958,
            dport: 443,
            ..Tuple::default()
        };
        t.src[..4].copy_from_slice(&[172, 26, 0, 39]);
        t.dst[..4].copy_from_slice(&[172, 217, 14, 206]);
        let r = FlowRecord {
            flow_id: 42,
            tuple: t,
            log_ns: 2_000_000_000,
            start_ns: 1_000_000_000,
            end_ns: 2_500_000_000,
            pkts_toserver: 3,
            state: FlowState::Closed,
            reason: EndReason::Shutdown,
            tcp: Some(TcpSummary {
                flags_ts: 0x1b,
                flags_tc: 0x1a,
                state: TcpState::Closed,
            }),
            ..FlowRecord::default()
        };
        let mut b = Vec::new();
        write_flow(
            &mut b,
            &r,
            &EveOptions {
                community_id_seed: 7,
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["event_type"], "flow");
        assert_eq!(v["src_ip"], "172.26.0.39");
        assert_eq!(v["flow"]["age"], 1);
        assert_eq!(v["flow"]["state"], "closed");
        assert_eq!(v["tcp"]["tcp_flags"], "1b");
        assert_eq!(v["tcp"]["fin"], true);
        assert!(v["tcp"].get("rst").is_none());
        assert_eq!(v["community_id"], "1:IwiTNfuO7aCaamMijl+7/X9uLx0=");
    }
}
