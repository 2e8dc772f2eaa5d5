//! Tunnel headers: GRE (RFC 2784/2890), ERSPAN types II and III, and VXLAN (RFC 7348).

use crate::{DecodeEvent, be16, be32};

/// A checked GRE version 0 header, optional fields included.
#[derive(Debug, Clone, Copy)]
pub struct Gre<'a> {
    buf: &'a [u8],
    header_len: usize,
}

const GRE_C: u8 = 0x80;
const GRE_R: u8 = 0x40;
const GRE_K: u8 = 0x20;
const GRE_S: u8 = 0x10;
const GRE_SSR: u8 = 0x08;
const GRE_RECUR: u8 = 0x07;

impl<'a> Gre<'a> {
    pub const MIN_HEADER_LEN: usize = 4;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < Self::MIN_HEADER_LEN {
            return Err(DecodeEvent::GrePktTooSmall);
        }
        let f = buf[0];
        let version = buf[1] & 0x07;
        match version {
            0 => {
                if f & GRE_RECUR != 0 {
                    return Err(DecodeEvent::GreVersion0Recur);
                }
                if f & (GRE_R | GRE_SSR) != 0 || buf[1] & 0xF8 != 0 {
                    return Err(DecodeEvent::GreVersion0Flags);
                }
            }
            1 => {
                // Enhanced GRE (PPTP): key present, no checksum or routing.
                if f & (GRE_C | GRE_R | GRE_RECUR) != 0 || f & GRE_K == 0 {
                    return Err(DecodeEvent::GreWrongVersion);
                }
            }
            _ => return Err(DecodeEvent::GreWrongVersion),
        }
        let mut hlen = 4;
        if f & (GRE_C | GRE_R) != 0 {
            hlen += 4;
        }
        if f & GRE_K != 0 {
            hlen += 4;
        }
        if f & GRE_S != 0 {
            hlen += 4;
        }
        if version == 1 && buf[1] & 0x80 != 0 {
            hlen += 4; // acknowledgment number
        }
        if buf.len() < hlen {
            return Err(DecodeEvent::GreVersion0HdrTooBig);
        }
        Ok(Gre {
            buf,
            header_len: hlen,
        })
    }
    pub fn version(&self) -> u8 {
        self.buf[1] & 0x07
    }
    pub fn protocol(&self) -> u16 {
        be16(self.buf, 2)
    }
    pub fn has_sequence(&self) -> bool {
        self.buf[0] & GRE_S != 0
    }
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }
}

/// ERSPAN type II (8 bytes) or type III (12 bytes, plus an 8-byte platform sub-header when the
/// O flag is set). Type I has no header at all and is handled by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Erspan<'a> {
    buf: &'a [u8],
    header_len: usize,
}

impl<'a> Erspan<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < 8 {
            return Err(DecodeEvent::ErspanHeaderTooSmall);
        }
        let header_len = match buf[0] >> 4 {
            1 => 8,
            2 => {
                if buf.len() < 12 {
                    return Err(DecodeEvent::ErspanHeaderTooSmall);
                }
                if buf[11] & 0x01 != 0 { 20 } else { 12 }
            }
            _ => return Err(DecodeEvent::ErspanUnsupportedVersion),
        };
        if buf.len() < header_len {
            return Err(DecodeEvent::ErspanHeaderTooSmall);
        }
        Ok(Erspan { buf, header_len })
    }
    /// 1 for type II, 2 for type III.
    pub fn version(&self) -> u8 {
        self.buf[0] >> 4
    }
    /// The VLAN of the mirrored frame as ERSPAN reports it.
    pub fn vlan(&self) -> u16 {
        be16(self.buf, 0) & 0x0FFF
    }
    pub fn session_id(&self) -> u16 {
        be16(self.buf, 2) & 0x03FF
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }
}

/// The VXLAN header (8 bytes): flags with the I bit, then the 24-bit VNI.
#[derive(Debug, Clone, Copy)]
pub struct Vxlan<'a> {
    buf: &'a [u8],
}

/// IANA's VXLAN port.
pub const VXLAN_PORT: u16 = 4789;

impl<'a> Vxlan<'a> {
    pub const HEADER_LEN: usize = 8;

    /// `None` when this is not VXLAN (too short, or the I flag is clear): the UDP payload is
    /// then left as it is, as Suricata does.
    pub fn parse(buf: &'a [u8]) -> Option<Self> {
        if buf.len() < Self::HEADER_LEN + 14 || buf[0] & 0x08 == 0 {
            return None;
        }
        Some(Vxlan { buf })
    }
    pub fn vni(&self) -> u32 {
        be32(self.buf, 4) >> 8
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[Self::HEADER_LEN..]
    }
}

/// IANA's VXLAN-GPE port.
pub const VXLAN_GPE_PORT: u16 = 4790;

/// What a VXLAN-GPE header says follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpeNext {
    Ipv4,
    Ipv6,
    Ethernet,
    /// NSH, MPLS or an unassigned value: not decoded.
    Other(u8),
}

/// The VXLAN-GPE header (8 bytes): flags (I, P, …), a next-protocol byte, the 24-bit VNI.
#[derive(Debug, Clone, Copy)]
pub struct VxlanGpe<'a> {
    buf: &'a [u8],
}

impl<'a> VxlanGpe<'a> {
    pub const HEADER_LEN: usize = 8;

    /// `None` when the payload is not VXLAN-GPE (too short, or the I flag is clear).
    pub fn parse(buf: &'a [u8]) -> Option<Self> {
        if buf.len() < Self::HEADER_LEN + 20 || buf[0] & 0x08 == 0 {
            return None;
        }
        Some(VxlanGpe { buf })
    }
    pub fn next(&self) -> GpeNext {
        // Without the P flag the payload is Ethernet, as in plain VXLAN.
        if self.buf[0] & 0x04 == 0 {
            return GpeNext::Ethernet;
        }
        match self.buf[3] {
            1 => GpeNext::Ipv4,
            2 => GpeNext::Ipv6,
            3 => GpeNext::Ethernet,
            other => GpeNext::Other(other),
        }
    }
    pub fn vni(&self) -> u32 {
        be32(self.buf, 4) >> 8
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn gre_with_sequence_number() {
        let p = [0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0xaa];
        let g = Gre::new_checked(&p).unwrap();
        assert_eq!(
            (g.protocol(), g.header_len(), g.payload()),
            (0x88be, 8, &[0xaa][..])
        );
    }

    #[test]
    fn gre_recursion_is_refused() {
        let p = [0x01, 0x00, 0x08, 0x00];
        assert_eq!(
            Gre::new_checked(&p).unwrap_err(),
            DecodeEvent::GreVersion0Recur
        );
    }

    #[test]
    fn erspan_types() {
        let t2 = [0x10, 0x64, 0x00, 0x05, 0, 0, 0, 0, 0xee];
        let e = Erspan::new_checked(&t2).unwrap();
        assert_eq!(
            (e.version(), e.vlan(), e.session_id(), e.payload().len()),
            (1, 100, 5, 1)
        );
        let mut t3 = vec![0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x01];
        t3.extend_from_slice(&[0; 8]);
        t3.push(0xee);
        assert_eq!(Erspan::new_checked(&t3).unwrap().payload(), &[0xee]);
        assert_eq!(
            Erspan::new_checked(&[0x30, 0, 0, 0, 0, 0, 0, 0]).unwrap_err(),
            DecodeEvent::ErspanUnsupportedVersion
        );
    }
}
