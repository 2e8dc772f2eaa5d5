//! The event model: what the layers below hand to the encoders.

use crate::AppProto;
use islet_wire::{DecodeEvent, Tuple};

/// Suricata's `flow.state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowState {
    /// Packets seen in one direction only.
    #[default]
    New,
    /// Packets seen in both directions.
    Established,
    /// TCP teardown (FIN both ways, or RST) completed.
    Closed,
    /// Inspection stopped; packets still counted.
    Bypassed,
}

impl FlowState {
    pub const fn name(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
            FlowState::Bypassed => "bypassed",
        }
    }
}

/// Why a flow record was written (Suricata's `flow.reason`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndReason {
    /// Idle past its timeout.
    #[default]
    Timeout,
    /// Evicted early because the flow table was full.
    Forced,
    /// Still open when the input ended.
    Shutdown,
}

impl EndReason {
    pub const fn name(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Suricata's TCP session states (`tcp.state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    #[default]
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait1,
    FinWait2,
    TimeWait,
    LastAck,
    CloseWait,
    Closing,
    Closed,
}

impl TcpState {
    pub const fn name(self) -> &'static str {
        use TcpState::*;
        match self {
            None => "none",
            SynSent => "syn_sent",
            SynRecv => "syn_recv",
            Established => "established",
            FinWait1 => "fin_wait1",
            FinWait2 => "fin_wait2",
            TimeWait => "time_wait",
            LastAck => "last_ack",
            CloseWait => "close_wait",
            Closing => "closing",
            Closed => "closed",
        }
    }
}

/// TCP part of a flow record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSummary {
    pub flags_ts: u8,
    pub flags_tc: u8,
    pub state: TcpState,
}

/// ICMP part of a flow record: the first type/code each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IcmpSummary {
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub response: Option<(u8, u8)>,
}

/// One finished (or flushed) flow, oriented client → server.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowRecord {
    pub flow_id: u64,
    pub tuple: Tuple,
    /// When the record was written (ns since the epoch): the expiry instant for a timeout, the
    /// current packet time for an eviction, the last packet time at shutdown.
    pub log_ns: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub state: FlowState,
    pub reason: EndReason,
    pub alerted: bool,
    pub tcp: Option<TcpSummary>,
    pub icmp: Option<IcmpSummary>,
    pub app_proto: AppProto,
    pub app_proto_ts: AppProto,
    pub app_proto_tc: AppProto,
    /// This record counts a tunnel's outer flow (VXLAN, GRE).
    pub tunnel_outer: bool,
    /// Inspection of the flow ended early (live): `flow.bypass`.
    pub bypass: Bypass,
    /// With [`Bypass::Capture`]: packets and bytes the kernel forwarded without islet
    /// (to server, to client, bytes to server, bytes to client): `flow.bypassed`.
    pub bypassed: [u64; 4],
}

/// How a flow was bypassed, as Suricata names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bypass {
    #[default]
    None,
    /// islet stopped inspecting the flow; its packets still reached islet and were counted.
    Local,
    /// The capture layer kept the flow's packets (an XDP map): counted there.
    Capture,
}

/// Which layer raised an anomaly (`anomaly.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A decoder event (`decoder.<name>`).
    Decode(DecodeEvent),
}

/// One anomaly, tied to the packet that raised it.
#[derive(Clone, Copy, Debug)]
pub struct Anomaly {
    pub ts_ns: u64,
    pub pcap_cnt: Option<u64>,
    /// The packet's tuple when its IP header was readable.
    pub tuple: Option<Tuple>,
    /// Whether the ports in `tuple` were decoded.
    pub has_ports: bool,
    pub flow_id: Option<u64>,
    pub kind: AnomalyKind,
}

/// What IP reassembly let go of, and why (`stats.defrag.drop`). Datagrams under reassembly are
/// evicted, oldest first, when a bound is reached; single fragments are refused when they can
/// never be part of a valid datagram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefragDrops {
    /// Datagrams evicted (with their fragments) because the table's total bound on datagrams
    /// or bytes was reached, plus fragments refused when nothing could be evicted.
    pub table_full: u64,
    /// Datagrams evicted because their source address reached its own bound on datagrams or
    /// bytes (the oldest of that source goes first), plus fragments refused the same way.
    pub source_limit: u64,
    /// Fragments refused: their datagram already had the most fragments or holes allowed.
    pub too_many_fragments: u64,
    /// Fragments refused: they would end past the largest IP datagram, or carry headers too
    /// long to keep.
    pub oversized: u64,
    /// Fragments refused: the frame is shorter than the IP header says.
    pub truncated: u64,
    /// Fragments that overlapped bytes already held; the later bytes were discarded (the
    /// first-wins policy). Not counted in `dropped`.
    pub overlap: u64,
}

impl DefragDrops {
    /// Add `o`'s counts to these.
    pub fn add(&mut self, o: &DefragDrops) {
        self.table_full += o.table_full;
        self.source_limit += o.source_limit;
        self.too_many_fragments += o.too_many_fragments;
        self.oversized += o.oversized;
        self.truncated += o.truncated;
        self.overlap += o.overlap;
    }

    /// Datagrams evicted and fragments refused, whatever the reason (not overlaps).
    pub fn dropped(&self) -> u64 {
        self.table_full
            + self.source_limit
            + self.too_many_fragments
            + self.oversized
            + self.truncated
    }
}

/// End-of-run (or periodic) counters, written as a Suricata-style `stats` event.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub ts_ns: u64,
    pub uptime_s: u64,
    pub pkts: u64,
    pub bytes: u64,
    pub invalid: u64,
    pub ethernet: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub vlan: u64,
    pub vxlan: u64,
    pub gre: u64,
    pub erspan: u64,
    pub mpls: u64,
    pub arp: u64,
    pub unknown_ethertype: u64,
    pub frags: u64,
    pub frags_reassembled: u64,
    pub frags_timeouts: u64,
    pub frags_dropped: u64,
    /// Why fragments were let go (`stats.defrag.drop`).
    pub defrag_drops: DefragDrops,
    pub decode_events: Vec<(DecodeEvent, u64)>,
    pub flows_total: u64,
    pub flows_tcp: u64,
    pub flows_udp: u64,
    pub flows_icmpv4: u64,
    pub flows_icmpv6: u64,
    pub flows_other: u64,
    pub flows_timeout: u64,
    pub flows_forced: u64,
    pub flows_shutdown: u64,
    pub flows_emergency_entered: u64,
    pub flows_active_max: u64,
    pub anomalies: u64,
    /// Alerts written (`stats.detect.alert`).
    pub alerts: u64,
    /// Indicator matches without `to_ids`, kept on their flows.
    pub intel_sightings: u64,
    /// Flows the policy denied (`stats.policy.denied`).
    pub policy_denied: u64,
    /// Addresses dropped from the workers' DNS name caches at `policy.names_max`.
    pub policy_names_evicted: u64,
}
