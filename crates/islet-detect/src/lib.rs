//! islet-detect — behavioural detection: port and host scans (T1046), SYN floods (T1498/
//! T1499), SMB remote execution (T1021.002/T1053) and access to hypervisor management (T1210,
//! the ESXiArgs path), each as a [`Detection`] with a stable name, ATT&CK technique and the
//! evidence that triggered it.
//!
//! Two places run detectors. [`recon::Recon`] (scans), [`flood::Flood`] (SYN floods, judged by
//! the [`handshake`] completions) and [`lateral::Lateral`] see every packet's header in capture order
//! (the sensor's reader thread), so a scan or flood spread across workers is judged whole and
//! the answer does not depend on the worker count; its state is bounded by configuration and
//! by fixed-size sketches ([`sketch`]). [`service`] judges one flow or one protocol event at a
//! time, inside the workers. Time is always the packets' time, passed in.
//!
//! This crate depends on no other islet crate: inputs and outputs are plain data.

pub mod brute;
pub mod config;
pub mod flood;
pub mod handshake;
pub mod lateral;
pub mod recon;
pub mod service;
pub mod sketch;
mod spread;
pub mod volume;

pub use config::DetectConfig;

use std::net::IpAddr;

/// A detection's stable identity: what tools match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// `alert.metadata.detection`.
    pub name: &'static str,
    pub signature_id: u32,
    pub category: &'static str,
    pub mitre_id: &'static str,
    pub mitre_name: &'static str,
}

pub const PORT_SCAN: Kind = Kind {
    name: "port_scan",
    signature_id: 9_300_001,
    category: "Attempted Information Leak",
    mitre_id: "T1046",
    mitre_name: "Network Service Discovery",
};
pub const SYN_FLOOD: Kind = Kind {
    name: "syn_flood",
    signature_id: 9_300_002,
    category: "Detection of a Denial of Service Attack",
    mitre_id: "T1498.001",
    mitre_name: "Network Denial of Service: Direct Network Flood",
};
pub const VOLUMETRIC_DDOS: Kind = Kind {
    name: "volumetric_ddos",
    signature_id: 9_300_003,
    category: "Detection of a Denial of Service Attack",
    mitre_id: "T1498",
    mitre_name: "Network Denial of Service",
};
pub const NEW_ADMIN_EDGE: Kind = Kind {
    name: "new_admin_edge",
    signature_id: 9_300_004,
    category: "Potentially Bad Traffic",
    mitre_id: "T1021",
    mitre_name: "Remote Services",
};
pub const ADMIN_PROTOCOL_FANOUT: Kind = Kind {
    name: "admin_protocol_fanout",
    signature_id: 9_300_005,
    category: "Potentially Bad Traffic",
    mitre_id: "T1021",
    mitre_name: "Remote Services",
};
pub const LATERAL_MOVEMENT_CHAIN: Kind = Kind {
    name: "lateral_movement_chain",
    signature_id: 9_300_006,
    category: "Attempted Administrator Privilege Gain",
    mitre_id: "T1210",
    mitre_name: "Exploitation of Remote Services",
};
pub const BRUTE_FORCE: Kind = Kind {
    name: "brute_force",
    signature_id: 9_300_008,
    category: "Attempted User Privilege Gain",
    mitre_id: "T1110",
    mitre_name: "Brute Force",
};
pub const SMB_REMOTE_EXEC: Kind = Kind {
    name: "smb_remote_exec",
    signature_id: 9_300_007,
    category: "Attempted Administrator Privilege Gain",
    mitre_id: "T1021.002",
    mitre_name: "Remote Services: SMB/Windows Admin Shares",
};
pub const HYPERVISOR_MGMT_ACCESS: Kind = Kind {
    name: "hypervisor_mgmt_access",
    signature_id: 9_300_009,
    category: "Attempted Administrator Privilege Gain",
    mitre_id: "T1210",
    mitre_name: "Exploitation of Remote Services",
};

pub const FLOOD_MITIGATION: Kind = Kind {
    name: "flood_mitigation",
    signature_id: 9_300_010,
    category: "Detection of a Denial of Service Attack",
    mitre_id: "T1498.001",
    mitre_name: "Network Denial of Service: Direct Network Flood",
};

/// One detection: what, who, how bad, and the evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub kind: Kind,
    /// 1 high … 3 low (Suricata's scale).
    pub severity: u8,
    /// One line for `alert.signature`.
    pub summary: String,
    /// The flow it is reported on: its first packet's addresses and ports, and time.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub ts_ns: u64,
    pub flow_id: u64,
    /// `alert.metadata` beyond detection and ATT&CK: each value a list of strings.
    pub metadata: Vec<(&'static str, Vec<String>)>,
    pub evidence: Evidence,
}

impl Detection {
    /// The values of metadata key `k` (empty if absent).
    pub fn meta(&self, k: &str) -> &[String] {
        self.metadata
            .iter()
            .find(|(n, _)| *n == k)
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// `islet.evidence`: the flows, counts and time window behind a detection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    /// Some of the flows (at most [`MAX_EVIDENCE_FLOWS`]).
    pub flow_ids: Vec<u64>,
    pub counts: Vec<(&'static str, u64)>,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// Flow ids kept as evidence per detection.
pub const MAX_EVIDENCE_FLOWS: usize = 16;

/// One packet's header, as the detectors see it.
#[derive(Clone, Copy, Debug)]
pub struct PacketFacts {
    pub ts_ns: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// TCP sequence and acknowledgement numbers (0 for other protocols).
    pub seq: u32,
    pub ack: u32,
    /// The flow id this packet would start (for evidence).
    pub flow_id: u64,
    /// An ICMP destination-unreachable's quoted datagram: its protocol, destination and
    /// destination port (the probe it rejects).
    pub unreachable: Option<(u8, IpAddr, u16)>,
    pub len: u32,
}

/// Read the datagram an ICMPv4 (type 3) or ICMPv6 (type 1) destination-unreachable quotes:
/// its protocol, destination address and destination port. `body` starts after the 8-byte
/// ICMP header.
pub fn quoted_probe(icmp_type: u8, v6: bool, body: &[u8]) -> Option<(u8, IpAddr, u16)> {
    if !v6 && icmp_type == 3 {
        let ihl = usize::from(*body.first()? & 0x0f) * 4;
        if body[0] >> 4 != 4 || ihl < 20 {
            return None;
        }
        let proto = *body.get(9)?;
        let dst: [u8; 4] = body.get(16..20)?.try_into().ok()?;
        let dport = u16::from_be_bytes(body.get(ihl + 2..ihl + 4)?.try_into().ok()?);
        return Some((proto, IpAddr::from(dst), dport));
    }
    if v6 && icmp_type == 1 {
        if *body.first()? >> 4 != 6 {
            return None;
        }
        let proto = *body.get(6)?;
        let dst: [u8; 16] = body.get(24..40)?.try_into().ok()?;
        let dport = u16::from_be_bytes(body.get(42..44)?.try_into().ok()?);
        return Some((proto, IpAddr::from(dst), dport));
    }
    None
}
