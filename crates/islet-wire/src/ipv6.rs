//! IPv6 header view (RFC 8200) and its extension-header chain.

use crate::{DecodeEvent, be16, be32};

pub const HEADER_LEN: usize = 40;
/// Most extension headers islet walks before giving up (an attacker can chain them forever).
pub const MAX_EXT_HEADERS: usize = 8;

/// Extension header numbers.
pub mod ext {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const NO_NEXT: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// A checked IPv6 header, trimmed to its payload length.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6<'a> {
    buf: &'a [u8],
}

/// The fixed part of an IPv6 Fragment extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragHeader {
    /// Offset of the fragmentable part, in bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
    /// Offset of the fragment header itself from the start of the IPv6 header.
    pub at: usize,
    /// Protocol of the fragmentable part.
    pub next: u8,
}

/// Where the extension-header chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtChain {
    /// Upper-layer protocol (or 59 / 50 where the chain ends without one).
    pub proto: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub l4_offset: usize,
    pub frag: Option<FragHeader>,
}

impl<'a> Ipv6<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeEvent::Ipv6PktTooSmall);
        }
        if buf[0] >> 4 != 6 {
            return Err(DecodeEvent::Ipv6WrongIpVersion);
        }
        let plen = usize::from(be16(buf, 4));
        if buf.len() < HEADER_LEN + plen {
            return Err(DecodeEvent::Ipv6TruncPkt);
        }
        Ok(Ipv6 {
            buf: &buf[..HEADER_LEN + plen],
        })
    }

    pub fn payload_len(&self) -> usize {
        self.buf.len() - HEADER_LEN
    }
    pub fn total_len(&self) -> usize {
        self.buf.len()
    }
    pub fn next_header(&self) -> u8 {
        self.buf[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buf[7]
    }
    pub fn flow_label(&self) -> u32 {
        be32(self.buf, 0) & 0x000F_FFFF
    }
    pub fn src(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buf[8..24]);
        a
    }
    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buf[24..40]);
        a
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Walk the extension headers, bounded by [`MAX_EXT_HEADERS`].
    pub fn ext_chain(&self) -> Result<ExtChain, DecodeEvent> {
        let mut next = self.next_header();
        let mut at = HEADER_LEN;
        let mut frag = None;
        for _ in 0..=MAX_EXT_HEADERS {
            match next {
                ext::HOP_BY_HOP
                | ext::ROUTING
                | ext::DEST_OPTS
                | ext::MOBILITY
                | ext::HIP
                | ext::SHIM6 => {
                    if self.buf.len() < at + 8 {
                        return Err(DecodeEvent::Ipv6TruncExthdr);
                    }
                    let len = (usize::from(self.buf[at + 1]) + 1) * 8;
                    if self.buf.len() < at + len {
                        return Err(DecodeEvent::Ipv6TruncExthdr);
                    }
                    next = self.buf[at];
                    at += len;
                }
                ext::AH => {
                    if self.buf.len() < at + 8 {
                        return Err(DecodeEvent::Ipv6TruncExthdr);
                    }
                    let len = (usize::from(self.buf[at + 1]) + 2) * 4;
                    if self.buf.len() < at + len {
                        return Err(DecodeEvent::Ipv6TruncExthdr);
                    }
                    next = self.buf[at];
                    at += len;
                }
                ext::FRAGMENT => {
                    if self.buf.len() < at + 8 {
                        return Err(DecodeEvent::Ipv6TruncExthdr);
                    }
                    let off_m = be16(self.buf, at + 2);
                    let f = FragHeader {
                        offset: off_m & 0xFFF8,
                        more: off_m & 1 != 0,
                        ident: be32(self.buf, at + 4),
                        at,
                        next: self.buf[at],
                    };
                    next = f.next;
                    at += 8;
                    if f.offset != 0 || f.more {
                        // The rest is a fragment: stop here, the upper header is not ours yet.
                        if f.more && !(self.buf.len() - at).is_multiple_of(8) {
                            return Err(DecodeEvent::Ipv6FragInvalidLength);
                        }
                        return Ok(ExtChain {
                            proto: next,
                            l4_offset: at,
                            frag: Some(f),
                        });
                    }
                    // An "atomic fragment" (offset 0, no more): the datagram is whole.
                    frag = None;
                }
                _ => {
                    return Ok(ExtChain {
                        proto: next,
                        l4_offset: at,
                        frag,
                    });
                }
            }
        }
        Err(DecodeEvent::Ipv6ExthdrTooMany)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn hdr(next: u8, plen: u16) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&plen.to_be_bytes());
        v.push(next);
        v.push(64);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v
    }

    #[test]
    fn chain_through_hop_by_hop_to_udp() {
        let mut p = hdr(ext::HOP_BY_HOP, 16);
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0; 8]);
        let v = Ipv6::new_checked(&p).unwrap();
        let c = v.ext_chain().unwrap();
        assert_eq!((c.proto, c.l4_offset, c.frag), (17, 48, None));
    }

    #[test]
    fn fragment_header_stops_the_chain() {
        let mut p = hdr(ext::FRAGMENT, 16);
        p.extend_from_slice(&[6, 0, 0x00, 0x01, 0, 0, 0, 7]);
        p.extend_from_slice(&[0; 8]);
        let c = Ipv6::new_checked(&p).unwrap().ext_chain().unwrap();
        let f = c.frag.unwrap();
        assert_eq!((f.offset, f.more, f.ident, f.next), (0, true, 7, 6));
    }

    #[test]
    fn endless_chain_is_bounded() {
        let n = MAX_EXT_HEADERS + 2;
        let mut p = hdr(ext::DEST_OPTS, (n * 8) as u16);
        for _ in 0..n {
            p.extend_from_slice(&[ext::DEST_OPTS, 0, 0, 0, 0, 0, 0, 0]);
        }
        let v = Ipv6::new_checked(&p).unwrap();
        assert_eq!(v.ext_chain().unwrap_err(), DecodeEvent::Ipv6ExthdrTooMany);
    }

    #[test]
    fn truncated_payload_is_trunc_pkt() {
        let p = hdr(17, 100);
        assert_eq!(
            Ipv6::new_checked(&p).unwrap_err(),
            DecodeEvent::Ipv6TruncPkt
        );
    }
}
