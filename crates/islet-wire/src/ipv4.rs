//! IPv4 header view (RFC 791), options included.

use crate::{DecodeEvent, be16};

/// A checked IPv4 header. `new_checked` verifies the version, the header length (IHL), the total
/// length against the buffer and the options' own lengths; after it, accessors cannot panic.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4<'a> {
    buf: &'a [u8],
}

pub const MIN_HEADER_LEN: usize = 20;
/// Most options islet walks in one header (the 40-byte option space bounds this anyway).
pub const MAX_OPTIONS: usize = 40;

impl<'a> Ipv4<'a> {
    /// Check `buf` (which starts at the IPv4 header and may carry link padding after the
    /// datagram). The view is trimmed to the total length.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(DecodeEvent::Ipv4PktTooSmall);
        }
        if buf[0] >> 4 != 4 {
            return Err(DecodeEvent::Ipv4WrongIpVersion);
        }
        let hlen = usize::from(buf[0] & 0x0F) * 4;
        if hlen < MIN_HEADER_LEN {
            return Err(DecodeEvent::Ipv4HlenTooSmall);
        }
        let total = usize::from(be16(buf, 2));
        if total < hlen {
            return Err(DecodeEvent::Ipv4IplenSmallerThanHlen);
        }
        if buf.len() < total || buf.len() < hlen {
            return Err(DecodeEvent::Ipv4TruncPkt);
        }
        let v = Ipv4 { buf: &buf[..total] };
        v.check_options()?;
        Ok(v)
    }

    fn check_options(&self) -> Result<(), DecodeEvent> {
        let opts = &self.buf[MIN_HEADER_LEN..self.header_len()];
        let mut i = 0;
        let mut n = 0;
        while i < opts.len() && n < MAX_OPTIONS {
            n += 1;
            match opts[i] {
                0 => break,  // end of option list
                1 => i += 1, // no-op
                _ => {
                    if i + 1 >= opts.len() {
                        return Err(DecodeEvent::Ipv4OptMalformed);
                    }
                    let len = usize::from(opts[i + 1]);
                    if len < 2 || i + len > opts.len() {
                        return Err(DecodeEvent::Ipv4OptInvalidLen);
                    }
                    i += len;
                }
            }
        }
        Ok(())
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buf[0] & 0x0F) * 4
    }
    pub fn total_len(&self) -> usize {
        self.buf.len()
    }
    pub fn dscp(&self) -> u8 {
        self.buf[1] >> 2
    }
    pub fn ident(&self) -> u16 {
        be16(self.buf, 4)
    }
    pub fn dont_frag(&self) -> bool {
        self.buf[6] & 0x40 != 0
    }
    pub fn more_frags(&self) -> bool {
        self.buf[6] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buf, 6) & 0x1FFF) << 3
    }
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buf[8]
    }
    pub fn protocol(&self) -> u8 {
        self.buf[9]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buf, 10)
    }
    pub fn src(&self) -> [u8; 4] {
        [self.buf[12], self.buf[13], self.buf[14], self.buf[15]]
    }
    pub fn dst(&self) -> [u8; 4] {
        [self.buf[16], self.buf[17], self.buf[18], self.buf[19]]
    }
    pub fn header(&self) -> &'a [u8] {
        &self.buf[..self.header_len()]
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len()..]
    }
}

/// The Internet checksum (RFC 1071) over `data`, folded, as stored in headers.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// One's-complement running sum of 16-bit words.
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Fold a running sum to 16 bits.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod test {
    use super::*;

    // 20-byte header + 8 bytes UDP, from a real DNS query (checksum recomputed).
    const PKT: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 0,
        0, 2, 0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
    ];

    #[test]
    fn fields() {
        let v = Ipv4::new_checked(&PKT).unwrap();
        assert_eq!(v.header_len(), 20);
        assert_eq!(v.protocol(), 17);
        assert_eq!(v.src(), [10, 0, 0, 1]);
        assert!(v.dont_frag() && !v.is_fragment());
        assert_eq!(v.payload().len(), 8);
    }

    #[test]
    fn ihl_zero_is_hlen_too_small() {
        let mut p = PKT;
        p[0] = 0x40;
        assert_eq!(
            Ipv4::new_checked(&p).unwrap_err(),
            DecodeEvent::Ipv4HlenTooSmall
        );
    }

    #[test]
    fn total_length_past_capture_is_trunc_pkt() {
        let mut p = PKT;
        p[3] = 0xff;
        assert_eq!(
            Ipv4::new_checked(&p).unwrap_err(),
            DecodeEvent::Ipv4TruncPkt
        );
    }

    #[test]
    fn padding_is_trimmed() {
        let mut p = PKT.to_vec();
        p.extend_from_slice(&[0; 18]);
        assert_eq!(Ipv4::new_checked(&p).unwrap().total_len(), 28);
    }

    #[test]
    fn option_with_zero_length_is_invalid() {
        let mut p = vec![
            0x46, 0, 0, 24, 0, 0, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        p.extend_from_slice(&[0x07, 0x00, 0, 0]);
        assert_eq!(
            Ipv4::new_checked(&p).unwrap_err(),
            DecodeEvent::Ipv4OptInvalidLen
        );
    }

    #[test]
    fn checksum_of_header_verifies() {
        let mut p = PKT;
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&p[..20]), 0);
    }
}
