//! The symmetric flow key and its hash.

use islet_wire::{Family, Tuple, ip_proto};

/// A flow's identity, the same for both directions: the two endpoints in a canonical order,
/// the protocol and the VLAN tags. For ICMP the "ports" are the message pair (echo request
/// and reply share a key), as in Community ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub lo_addr: [u8; 16],
    pub hi_addr: [u8; 16],
    pub lo_port: u16,
    pub hi_port: u16,
    pub proto: u8,
    pub family: Family,
    pub vlan: [u16; 3],
    pub vlan_len: u8,
}

/// ICMP types that pair with a reply (v4 and v6), mapped to one shared value.
fn icmp_pair(proto: u8, ty: u8) -> Option<u8> {
    let peer = match (proto, ty) {
        (ip_proto::ICMP, 8 | 0) => 8,
        (ip_proto::ICMP, 13 | 14) => 13,
        (ip_proto::ICMP, 15 | 16) => 15,
        (ip_proto::ICMP, 9 | 10) => 10,
        (ip_proto::ICMP, 17 | 18) => 17,
        (ip_proto::ICMPV6, 128 | 129) => 128,
        (ip_proto::ICMPV6, 133 | 134) => 133,
        (ip_proto::ICMPV6, 135 | 136) => 135,
        (ip_proto::ICMPV6, 130 | 131) => 130,
        (ip_proto::ICMPV6, 139 | 140) => 139,
        (ip_proto::ICMPV6, 144 | 145) => 144,
        _ => return None,
    };
    Some(peer)
}

impl std::hash::Hash for FlowKey {
    /// Six words, not field by field: the table hashes every packet's key.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for w in self.words() {
            h.write_u64(w);
        }
    }
}

impl FlowKey {
    #[inline]
    fn words(&self) -> [u64; 6] {
        let w = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        [
            w(&self.lo_addr[..8]),
            w(&self.lo_addr[8..]),
            w(&self.hi_addr[..8]),
            w(&self.hi_addr[8..]),
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.proto) << 32
                | u64::from(self.family as u8) << 40,
            u64::from(self.vlan[0])
                | u64::from(self.vlan[1]) << 16
                | u64::from(self.vlan[2]) << 32
                | u64::from(self.vlan_len) << 48,
        ]
    }

    /// The key of `t`, and whether `t`'s source is the key's `lo` endpoint.
    #[inline]
    pub fn from_tuple(t: &Tuple) -> (FlowKey, bool) {
        let (sp, dp) = match t.proto {
            ip_proto::ICMP | ip_proto::ICMPV6 => match icmp_pair(t.proto, t.sport as u8) {
                Some(p) => (u16::from(p), u16::from(p)),
                None => (t.sport, t.dport),
            },
            _ => (t.sport, t.dport),
        };
        let src_lo = (t.src, sp) <= (t.dst, dp);
        let (lo_addr, hi_addr, lo_port, hi_port) = if src_lo {
            (t.src, t.dst, sp, dp)
        } else {
            (t.dst, t.src, dp, sp)
        };
        let mut vlan = [0u16; 3];
        vlan[..usize::from(t.vlan_len)].copy_from_slice(t.vlans());
        (
            FlowKey {
                lo_addr,
                hi_addr,
                lo_port,
                hi_port,
                proto: t.proto,
                family: t.family,
                vlan,
                vlan_len: t.vlan_len,
            },
            src_lo,
        )
    }

    /// A fixed, symmetric 64-bit hash (same for both directions by construction): used to shard
    /// flows over workers and to derive flow ids, so both are the same on every run.
    #[inline]
    pub fn stable_hash(&self) -> u64 {
        let mut h = 0x9E37_79B9_7F4A_7C15u64;
        for x in self.words() {
            h = (h ^ x).wrapping_mul(0xA076_1D64_78BD_642F);
            h ^= h >> 32;
        }
        h ^ (h >> 29)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn t(src: u8, sport: u16, dst: u8, dport: u16, proto: u8) -> Tuple {
        let mut t = Tuple {
            proto,
            sport,
            dport,
            ..Tuple::default()
        };
        t.src[3] = src;
        t.dst[3] = dst;
        t
    }

    #[test]
    fn both_directions_share_a_key() {
        let (a, a_lo) = FlowKey::from_tuple(&t(1, 5000, 2, 80, 6));
        let (b, b_lo) = FlowKey::from_tuple(&t(2, 80, 1, 5000, 6));
        assert_eq!(a, b);
        assert_eq!(a.stable_hash(), b.stable_hash());
        assert_ne!(a_lo, b_lo);
    }

    #[test]
    fn echo_request_and_reply_share_a_key() {
        let (a, _) = FlowKey::from_tuple(&t(1, 8, 2, 0, 1));
        let (b, _) = FlowKey::from_tuple(&t(2, 0, 1, 0, 1));
        assert_eq!(a, b);
    }

    #[test]
    fn vlan_separates_flows() {
        let mut x = t(1, 5000, 2, 80, 6);
        let (a, _) = FlowKey::from_tuple(&x);
        x.vlan = [10, 0, 0];
        x.vlan_len = 1;
        let (b, _) = FlowKey::from_tuple(&x);
        assert_ne!(a, b);
    }
}
