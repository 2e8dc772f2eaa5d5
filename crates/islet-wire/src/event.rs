//! Decoder anomalies, named as Suricata names its decode events.

use std::fmt;

/// A malformed or unsupported packet, found while decoding.
///
/// [`DecodeEvent::name`] gives Suricata's decode-event name (as in `decode-event:ipv4.trunc_pkt`),
/// which islet writes as `anomaly.event` with the `decoder.` prefix Suricata's EVE uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DecodeEvent {
    /// Frame shorter than an Ethernet header.
    EthernetPktTooSmall,
    /// An EtherType islet does not decode (LLDP, …). Counted; not an error of the sender.
    EthernetUnknownEthertype,
    /// A VLAN tag cut short.
    VlanHeaderTooSmall,
    /// More than [`crate::decode::MAX_VLAN_TAGS`] VLAN tags.
    VlanTooManyLayers,
    /// Frame shorter than a Linux cooked (SLL) header.
    SllPktTooSmall,
    /// Frame shorter than a Linux cooked v2 (SLL2) header.
    Sll2PktTooSmall,
    /// Frame shorter than a null/loopback header.
    NullPktTooSmall,
    /// A null/loopback family islet does not decode.
    NullUnsupportedType,
    /// Raw IP whose version nibble is neither 4 nor 6.
    IprawInvalidIpVersion,
    /// MPLS label stack cut short.
    MplsHeaderTooSmall,
    /// MPLS payload that is neither IPv4 nor IPv6.
    MplsUnknownPayloadType,
    Ipv4PktTooSmall,
    Ipv4HlenTooSmall,
    Ipv4IplenSmallerThanHlen,
    Ipv4TruncPkt,
    Ipv4OptInvalidLen,
    Ipv4OptMalformed,
    Ipv4WrongIpVersion,
    Ipv6PktTooSmall,
    Ipv6TruncPkt,
    Ipv6TruncExthdr,
    Ipv6WrongIpVersion,
    /// More IPv6 extension headers than [`crate::ipv6::MAX_EXT_HEADERS`].
    Ipv6ExthdrTooMany,
    Ipv6FragInvalidLength,
    TcpPktTooSmall,
    TcpHlenTooSmall,
    TcpOptInvalidLen,
    UdpPktTooSmall,
    UdpHlenInvalid,
    Icmpv4PktTooSmall,
    Icmpv6PktTooSmall,
    GrePktTooSmall,
    GreWrongVersion,
    GreVersion0Recur,
    GreVersion0Flags,
    GreVersion0HdrTooBig,
    ErspanHeaderTooSmall,
    ErspanUnsupportedVersion,
    VxlanUnknownPayloadType,
    /// More nested tunnels than [`crate::decode::MAX_TUNNELS`].
    TooManyLayers,
    /// Fragments that overlap with different content.
    Ipv4FragOverlap,
    Ipv6FragOverlap,
    /// A reassembled datagram larger than 65535 bytes.
    Ipv4FragPktTooLarge,
    Ipv6FragPktTooLarge,
    /// A fragment dropped because the reassembly memory bound was reached.
    FragIgnored,
}

impl DecodeEvent {
    /// Every event, for counters and docs.
    pub const ALL: [DecodeEvent; 45] = {
        use DecodeEvent::*;
        [
            EthernetPktTooSmall,
            EthernetUnknownEthertype,
            VlanHeaderTooSmall,
            VlanTooManyLayers,
            SllPktTooSmall,
            Sll2PktTooSmall,
            NullPktTooSmall,
            NullUnsupportedType,
            IprawInvalidIpVersion,
            MplsHeaderTooSmall,
            MplsUnknownPayloadType,
            Ipv4PktTooSmall,
            Ipv4HlenTooSmall,
            Ipv4IplenSmallerThanHlen,
            Ipv4TruncPkt,
            Ipv4OptInvalidLen,
            Ipv4OptMalformed,
            Ipv4WrongIpVersion,
            Ipv6PktTooSmall,
            Ipv6TruncPkt,
            Ipv6TruncExthdr,
            Ipv6WrongIpVersion,
            Ipv6ExthdrTooMany,
            Ipv6FragInvalidLength,
            TcpPktTooSmall,
            TcpHlenTooSmall,
            TcpOptInvalidLen,
            UdpPktTooSmall,
            UdpHlenInvalid,
            Icmpv4PktTooSmall,
            Icmpv6PktTooSmall,
            GrePktTooSmall,
            GreWrongVersion,
            GreVersion0Recur,
            GreVersion0Flags,
            GreVersion0HdrTooBig,
            ErspanHeaderTooSmall,
            ErspanUnsupportedVersion,
            VxlanUnknownPayloadType,
            TooManyLayers,
            Ipv4FragOverlap,
            Ipv6FragOverlap,
            Ipv4FragPktTooLarge,
            Ipv6FragPktTooLarge,
            FragIgnored,
        ]
    };

    /// Suricata's name for the event (without the `decoder.` prefix).
    pub const fn name(self) -> &'static str {
        use DecodeEvent::*;
        match self {
            EthernetPktTooSmall => "ethernet.pkt_too_small",
            EthernetUnknownEthertype => "ethernet.unknown_ethertype",
            VlanHeaderTooSmall => "vlan.header_too_small",
            VlanTooManyLayers => "vlan.too_many_layers",
            SllPktTooSmall => "sll.pkt_too_small",
            Sll2PktTooSmall => "sll2.pkt_too_small",
            NullPktTooSmall => "null.pkt_too_small",
            NullUnsupportedType => "null.unsupported_type",
            IprawInvalidIpVersion => "ipraw.invalid_ip_version",
            MplsHeaderTooSmall => "mpls.header_too_small",
            MplsUnknownPayloadType => "mpls.unknown_payload_type",
            Ipv4PktTooSmall => "ipv4.pkt_too_small",
            Ipv4HlenTooSmall => "ipv4.hlen_too_small",
            Ipv4IplenSmallerThanHlen => "ipv4.iplen_smaller_than_hlen",
            Ipv4TruncPkt => "ipv4.trunc_pkt",
            Ipv4OptInvalidLen => "ipv4.opt_invalid_len",
            Ipv4OptMalformed => "ipv4.opt_malformed",
            Ipv4WrongIpVersion => "ipv4.wrong_ip_version",
            Ipv6PktTooSmall => "ipv6.pkt_too_small",
            Ipv6TruncPkt => "ipv6.trunc_pkt",
            Ipv6TruncExthdr => "ipv6.trunc_exthdr",
            Ipv6WrongIpVersion => "ipv6.wrong_ip_version",
            Ipv6ExthdrTooMany => "ipv6.exthdr_too_many",
            Ipv6FragInvalidLength => "ipv6.frag_invalid_length",
            TcpPktTooSmall => "tcp.pkt_too_small",
            TcpHlenTooSmall => "tcp.hlen_too_small",
            TcpOptInvalidLen => "tcp.opt_invalid_len",
            UdpPktTooSmall => "udp.pkt_too_small",
            UdpHlenInvalid => "udp.hlen_invalid",
            Icmpv4PktTooSmall => "icmpv4.pkt_too_small",
            Icmpv6PktTooSmall => "icmpv6.pkt_too_small",
            GrePktTooSmall => "gre.pkt_too_small",
            GreWrongVersion => "gre.wrong_version",
            GreVersion0Recur => "gre.version0_recur",
            GreVersion0Flags => "gre.version0_flags",
            GreVersion0HdrTooBig => "gre.version0_hdr_too_big",
            ErspanHeaderTooSmall => "erspan.header_too_small",
            ErspanUnsupportedVersion => "erspan.unsupported_version",
            VxlanUnknownPayloadType => "vxlan.unknown_payload_type",
            TooManyLayers => "too_many_layers",
            Ipv4FragOverlap => "ipv4.frag_overlap",
            Ipv6FragOverlap => "ipv6.frag_overlap",
            Ipv4FragPktTooLarge => "ipv4.frag_pkt_too_large",
            Ipv6FragPktTooLarge => "ipv6.frag_pkt_too_large",
            FragIgnored => "ipv4.frag_ignored",
        }
    }

    /// Index into a counter array of `ALL.len() + 1` slots.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Number of distinct events (size of a counter array).
    pub const COUNT: usize = DecodeEvent::FragIgnored as usize + 1;
}

impl fmt::Display for DecodeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for DecodeEvent {}
