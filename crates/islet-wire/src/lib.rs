//! islet-wire — the bottom layer: zero-copy, checked views of L2–L4 headers and the packet
//! decoder that walks them.
//!
//! Every view follows one contract, borrowed from smoltcp: `View::new_checked(bytes)` verifies
//! the length (and the header's own length fields) once, and after that no accessor can panic.
//! Untrusted bytes only ever enter through `new_checked`. Protocol numbers are kept as the wire
//! said them; unknown values are carried, not rejected.
//!
//! [`decode::decode`] walks a frame from its link type down to the innermost transport header,
//! through VLAN/QinQ tags, MPLS, GRE, ERSPAN II/III and VXLAN, and fills a flat, `Copy`
//! [`decode::Decoded`] summary of offsets and fields. It allocates nothing. Malformed input
//! becomes a [`DecodeEvent`] named as Suricata names its decoder events, never a panic.
//! This crate does no I/O and has no dependencies.
#![forbid(unsafe_code)]

pub mod decode;
mod event;
pub mod gre;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod link;
pub mod tcp;
pub mod udp;

pub use decode::{Decoded, Family, Tuple, decode, decode_ip};
pub use event::DecodeEvent;

/// IP protocol numbers islet decodes. Other values are carried as plain `u8`.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// pcap/pcapng link types islet reads (LINKTYPE_* values of the tcpdump registry).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    /// OpenBSD's value for raw IP, seen in old captures.
    pub const RAW_OPENBSD: u32 = 14;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
