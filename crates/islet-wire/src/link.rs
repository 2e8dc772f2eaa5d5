//! Link-layer views: Ethernet II, 802.1Q/802.1ad tags, Linux cooked capture (SLL, SLL2) and
//! BSD null/loopback.

use crate::{DecodeEvent, be16};

/// EtherType values islet decodes.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86DD;
    pub const QINQ: u16 = 0x88A8;
    /// Pre-standard QinQ outer tag still sent by some switches.
    pub const QINQ_OLD: u16 = 0x9100;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    /// GRE "transparent Ethernet bridging": an Ethernet frame follows.
    pub const TEB: u16 = 0x6558;
    pub const ERSPAN_II: u16 = 0x88BE;
    pub const ERSPAN_III: u16 = 0x22EB;
    pub const LLDP: u16 = 0x88CC;
}

/// An Ethernet II header: destination, source, EtherType.
#[derive(Debug, Clone, Copy)]
pub struct Ethernet<'a> {
    buf: &'a [u8],
}

impl<'a> Ethernet<'a> {
    pub const HEADER_LEN: usize = 14;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < Self::HEADER_LEN {
            return Err(DecodeEvent::EthernetPktTooSmall);
        }
        Ok(Ethernet { buf })
    }
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf[0..6]);
        m
    }
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf[6..12]);
        m
    }
    pub fn ethertype(&self) -> u16 {
        be16(self.buf, 12)
    }
}

/// One 802.1Q / 802.1ad tag: TCI then the next EtherType.
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<'a> {
    buf: &'a [u8],
}

impl<'a> VlanTag<'a> {
    pub const HEADER_LEN: usize = 4;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < Self::HEADER_LEN {
            return Err(DecodeEvent::VlanHeaderTooSmall);
        }
        Ok(VlanTag { buf })
    }
    /// The 12-bit VLAN identifier.
    pub fn vid(&self) -> u16 {
        be16(self.buf, 0) & 0x0FFF
    }
    pub fn pcp(&self) -> u8 {
        self.buf[0] >> 5
    }
    pub fn ethertype(&self) -> u16 {
        be16(self.buf, 2)
    }
}

/// Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 16 bytes).
#[derive(Debug, Clone, Copy)]
pub struct Sll<'a> {
    buf: &'a [u8],
}

impl<'a> Sll<'a> {
    pub const HEADER_LEN: usize = 16;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < Self::HEADER_LEN {
            return Err(DecodeEvent::SllPktTooSmall);
        }
        Ok(Sll { buf })
    }
    /// 0 = to us, 1 = broadcast, 2 = multicast, 3 = to another host, 4 = sent by us.
    pub fn packet_type(&self) -> u16 {
        be16(self.buf, 0)
    }
    pub fn protocol(&self) -> u16 {
        be16(self.buf, 14)
    }
}

/// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 20 bytes).
#[derive(Debug, Clone, Copy)]
pub struct Sll2<'a> {
    buf: &'a [u8],
}

impl<'a> Sll2<'a> {
    pub const HEADER_LEN: usize = 20;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < Self::HEADER_LEN {
            return Err(DecodeEvent::Sll2PktTooSmall);
        }
        Ok(Sll2 { buf })
    }
    pub fn protocol(&self) -> u16 {
        be16(self.buf, 0)
    }
    pub fn interface_index(&self) -> u32 {
        crate::be32(self.buf, 4)
    }
}

/// BSD null/loopback: a 4-byte address family in the capturing host's byte order.
#[derive(Debug, Clone, Copy)]
pub struct Null<'a> {
    buf: &'a [u8],
}

/// What a null/loopback header says follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullFamily {
    Ipv4,
    Ipv6,
    Other(u32),
}

impl<'a> Null<'a> {
    pub const HEADER_LEN: usize = 4;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < Self::HEADER_LEN {
            return Err(DecodeEvent::NullPktTooSmall);
        }
        Ok(Null { buf })
    }
    /// The family, read in both byte orders: AF_INET is 2 everywhere, AF_INET6 is 10 (Linux),
    /// 24 (NetBSD/OpenBSD), 28 (FreeBSD) or 30 (macOS).
    pub fn family(&self) -> NullFamily {
        let raw = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        let le = u32::from_le_bytes(raw);
        let be = u32::from_be_bytes(raw);
        let fam = if le < 256 { le } else { be };
        match fam {
            2 => NullFamily::Ipv4,
            10 | 24 | 28 | 30 => NullFamily::Ipv6,
            other => NullFamily::Other(other),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ethernet_short_frame_is_an_event() {
        assert_eq!(
            Ethernet::new_checked(&[0u8; 13]).unwrap_err(),
            DecodeEvent::EthernetPktTooSmall
        );
    }

    #[test]
    fn vlan_tag_fields() {
        let tag = VlanTag::new_checked(&[0xA0, 0x64, 0x08, 0x00]).unwrap();
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.pcp(), 5);
        assert_eq!(tag.ethertype(), ethertype::IPV4);
    }

    #[test]
    fn null_family_both_orders() {
        assert_eq!(
            Null::new_checked(&[2, 0, 0, 0]).unwrap().family(),
            NullFamily::Ipv4
        );
        assert_eq!(
            Null::new_checked(&[0, 0, 0, 30]).unwrap().family(),
            NullFamily::Ipv6
        );
        assert_eq!(
            Null::new_checked(&[24, 0, 0, 0]).unwrap().family(),
            NullFamily::Ipv6
        );
    }
}
