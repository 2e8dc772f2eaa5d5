//! UDP header view (RFC 768).

use crate::{DecodeEvent, be16};

pub const HEADER_LEN: usize = 8;

/// A checked UDP header; the payload is trimmed to the UDP length field.
#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    buf: &'a [u8],
}

impl<'a> Udp<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeEvent::UdpPktTooSmall);
        }
        let len = usize::from(be16(buf, 4));
        // Length 0 is legal for jumbograms over IPv6; otherwise it must fit the datagram.
        if len != 0 && (len < HEADER_LEN || len > buf.len()) {
            return Err(DecodeEvent::UdpHlenInvalid);
        }
        let end = if len == 0 { buf.len() } else { len };
        Ok(Udp { buf: &buf[..end] })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn length_field_trims_payload() {
        let p = [0x30, 0x39, 0, 53, 0, 10, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd];
        let u = Udp::new_checked(&p).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.payload()),
            (12345, 53, &[0xaa, 0xbb][..])
        );
    }

    #[test]
    fn length_beyond_datagram_is_invalid() {
        let p = [0, 1, 0, 2, 0, 40, 0, 0];
        assert_eq!(
            Udp::new_checked(&p).unwrap_err(),
            DecodeEvent::UdpHlenInvalid
        );
    }
}
