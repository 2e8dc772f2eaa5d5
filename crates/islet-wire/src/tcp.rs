//! TCP header view (RFC 9293) with its options.

use crate::{DecodeEvent, be16, be32};

pub const MIN_HEADER_LEN: usize = 20;

/// TCP flag bits as they sit in byte 13 (CWR and ECE included).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// A checked TCP header: the data offset is within the segment and every option's length fits.
#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    buf: &'a [u8],
}

/// One TCP option as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Timestamps(u32, u32),
    Other(u8, &'a [u8]),
}

impl<'a> Tcp<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeEvent> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(DecodeEvent::TcpPktTooSmall);
        }
        let hlen = usize::from(buf[12] >> 4) * 4;
        if hlen < MIN_HEADER_LEN {
            return Err(DecodeEvent::TcpHlenTooSmall);
        }
        if buf.len() < hlen {
            return Err(DecodeEvent::TcpPktTooSmall);
        }
        let t = Tcp { buf };
        let mut it = t.options_raw();
        for _ in 0..40 {
            match it.next_opt() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(t)
    }
    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }
    pub fn seq(&self) -> u32 {
        be32(self.buf, 4)
    }
    pub fn ack(&self) -> u32 {
        be32(self.buf, 8)
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.buf[12] >> 4) * 4
    }
    pub fn flags(&self) -> u8 {
        self.buf[13]
    }
    pub fn window(&self) -> u16 {
        be16(self.buf, 14)
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len()..]
    }
    /// The options, in wire order.
    pub fn options(&self) -> impl Iterator<Item = TcpOption<'a>> + use<'a> {
        let mut it = self.options_raw();
        std::iter::from_fn(move || it.next_opt().ok().flatten())
    }
    fn options_raw(&self) -> OptIter<'a> {
        OptIter {
            buf: &self.buf[MIN_HEADER_LEN..self.header_len()],
        }
    }
}

struct OptIter<'a> {
    buf: &'a [u8],
}

impl<'a> OptIter<'a> {
    fn next_opt(&mut self) -> Result<Option<TcpOption<'a>>, DecodeEvent> {
        loop {
            match self.buf.first() {
                None | Some(0) => return Ok(None),
                Some(1) => self.buf = &self.buf[1..],
                Some(&kind) => {
                    if self.buf.len() < 2 {
                        return Err(DecodeEvent::TcpOptInvalidLen);
                    }
                    let len = usize::from(self.buf[1]);
                    if len < 2 || len > self.buf.len() {
                        return Err(DecodeEvent::TcpOptInvalidLen);
                    }
                    let body = &self.buf[2..len];
                    self.buf = &self.buf[len..];
                    let opt = match (kind, body.len()) {
                        (2, 2) => TcpOption::Mss(be16(body, 0)),
                        (3, 1) => TcpOption::WindowScale(body[0]),
                        (4, 0) => TcpOption::SackPermitted,
                        (8, 8) => TcpOption::Timestamps(be32(body, 0), be32(body, 4)),
                        (2..=4 | 8, _) => return Err(DecodeEvent::TcpOptInvalidLen),
                        _ => TcpOption::Other(kind, body),
                    };
                    return Ok(Some(opt));
                }
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // A SYN with MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
    const SYN: [u8; 40] = [
        0xc0, 0x01, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2, 4,
        0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 5, 0, 0, 0, 0, 1, 3, 3, 7,
    ];

    #[test]
    fn syn_with_options() {
        let t = Tcp::new_checked(&SYN).unwrap();
        assert_eq!(
            (t.src_port(), t.dst_port(), t.flags()),
            (49153, 443, flags::SYN)
        );
        let opts: Vec<_> = t.options().collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps(5, 0),
                TcpOption::WindowScale(7)
            ]
        );
    }

    #[test]
    fn option_running_past_header_is_invalid() {
        let mut p = SYN;
        p[21] = 30;
        assert_eq!(
            Tcp::new_checked(&p).unwrap_err(),
            DecodeEvent::TcpOptInvalidLen
        );
    }

    #[test]
    fn data_offset_below_five_words() {
        let mut p = SYN;
        p[12] = 0x40;
        assert_eq!(
            Tcp::new_checked(&p).unwrap_err(),
            DecodeEvent::TcpHlenTooSmall
        );
    }
}
