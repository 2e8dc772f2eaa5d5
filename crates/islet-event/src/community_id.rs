//! Community ID v1 (the corelight/community-id-spec): a hash of the flow tuple that Suricata,
//! Zeek and others compute the same way, so their logs can be joined.

use base64::Engine as _;
use islet_wire::{Family, Tuple, ip_proto};
use sha1::{Digest, Sha1};

/// A Community ID string, `1:` + base64(SHA-1) = 30 bytes, held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId([u8; 30]);

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CommunityId {
    /// Compute the v1 Community ID of `t` (in the flow's own direction) with `seed`.
    pub fn v1(seed: u16, t: &Tuple) -> Self {
        let alen = match t.family {
            Family::V4 => 4,
            Family::V6 => 16,
        };
        let (mut sa, mut da) = (&t.src[..alen], &t.dst[..alen]);
        let (mut sp, mut dp, one_way) = match (t.proto, t.family) {
            (ip_proto::ICMP, Family::V4) => icmp_ports(t.sport as u8, t.dport as u8, V4_PAIRS),
            (ip_proto::ICMPV6, Family::V6) => icmp_ports(t.sport as u8, t.dport as u8, V6_PAIRS),
            _ => (t.sport, t.dport, false),
        };
        if !one_way && (sa, sp) > (da, dp) {
            std::mem::swap(&mut sa, &mut da);
            std::mem::swap(&mut sp, &mut dp);
        }
        let mut h = Sha1::new();
        h.update(seed.to_be_bytes());
        h.update(sa);
        h.update(da);
        h.update([t.proto, 0]);
        if matches!(
            t.proto,
            ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP | ip_proto::ICMP | ip_proto::ICMPV6
        ) {
            h.update(sp.to_be_bytes());
            h.update(dp.to_be_bytes());
        }
        let digest = h.finalize();
        let mut out = [0u8; 30];
        out[..2].copy_from_slice(b"1:");
        let _ = base64::engine::general_purpose::STANDARD.encode_slice(digest, &mut out[2..]);
        CommunityId(out)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// ICMP message types that come in request/response pairs (type, counterpart).
const V4_PAIRS: &[(u8, u8)] = &[
    (8, 0),
    (0, 8),
    (13, 14),
    (14, 13),
    (15, 16),
    (16, 15),
    (10, 9),
    (9, 10),
    (17, 18),
    (18, 17),
];
const V6_PAIRS: &[(u8, u8)] = &[
    (128, 129),
    (129, 128),
    (133, 134),
    (134, 133),
    (135, 136),
    (136, 135),
    (130, 131),
    (131, 130),
    (139, 140),
    (140, 139),
    (144, 145),
    (145, 144),
];

/// The spec's port mapping: (type, counterpart) for paired types, else (type, code) one-way.
fn icmp_ports(ty: u8, code: u8, pairs: &[(u8, u8)]) -> (u16, u16, bool) {
    match pairs.iter().find(|(t, _)| *t == ty) {
        Some(&(_, peer)) => (u16::from(ty), u16::from(peer), false),
        None => (u16::from(ty), u16::from(code), true),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Tuple {
        let mut t = Tuple {
            proto,
            sport,
            dport,
            ..Tuple::default()
        };
        t.src[..4].copy_from_slice(&src);
        t.dst[..4].copy_from_slice(&dst);
        t
    }

    // Values from the community-id-spec baseline (tcp.pcap / icmp.pcap), seed 0.
    #[test]
    fn spec_baseline_tcp() {
        let t = v4([128, 232, 110, 120], [66, 35, 250, 204], 6, 34855, 80);
        assert_eq!(
            CommunityId::v1(0, &t).as_str(),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        let r = v4([66, 35, 250, 204], [128, 232, 110, 120], 6, 80, 34855);
        assert_eq!(
            CommunityId::v1(0, &r).as_str(),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
    }

    #[test]
    fn spec_baseline_icmp_echo() {
        let t = v4([192, 168, 0, 89], [192, 168, 0, 1], 1, 8, 0);
        assert_eq!(
            CommunityId::v1(0, &t).as_str(),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
        );
    }

    // suricata-verify community-id-ipv4: seed 7.
    #[test]
    fn suricata_verify_seed_7() {
        let t = v4([172, 26, 0, 39], [172, 217, 14, 206], 6, 35958, 443);
        assert_eq!(
            CommunityId::v1(7, &t).as_str(),
            "1:IwiTNfuO7aCaamMijl+7/X9uLx0="
        );
        assert_ne!(CommunityId::v1(0, &t), CommunityId::v1(7, &t));
    }
}
