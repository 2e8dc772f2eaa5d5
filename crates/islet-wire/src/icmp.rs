//! ICMP (RFC 792) and ICMPv6 (RFC 4443) header views.

use crate::DecodeEvent;

pub const HEADER_LEN: usize = 8;

/// A checked ICMP or ICMPv6 header: type, code, checksum and the 4-byte rest of header.
#[derive(Debug, Clone, Copy)]
pub struct Icmp<'a> {
    buf: &'a [u8],
}

impl<'a> Icmp<'a> {
    pub fn new_checked_v4(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeEvent::Icmpv4PktTooSmall);
        }
        Ok(Icmp { buf })
    }
    pub fn new_checked_v6(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeEvent::Icmpv6PktTooSmall);
        }
        Ok(Icmp { buf })
    }
    pub fn icmp_type(&self) -> u8 {
        self.buf[0]
    }
    pub fn code(&self) -> u8 {
        self.buf[1]
    }
    /// Echo identifier (meaningful for echo request/reply).
    pub fn echo_id(&self) -> u16 {
        crate::be16(self.buf, 4)
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

/// ICMPv4 error types, which quote the offending datagram rather than start a conversation.
pub fn is_v4_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// ICMPv6 error types (1–127 are errors by definition).
pub fn is_v6_error(t: u8) -> bool {
    t < 128
}
