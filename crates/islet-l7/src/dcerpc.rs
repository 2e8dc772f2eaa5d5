//! Connection-oriented DCE/RPC PDUs (DCE 1.1 RPC chapter 12, MS-RPCE 2.2.2): the common
//! header, BIND/ALTER_CONTEXT interfaces, BIND_ACK results, and REQUEST/RESPONSE opnum and
//! stub sizes. SMB carries these over named pipes (`\pipe\atsvc`, `svcctl`, `winreg`, …);
//! which interface a client binds is what lateral-movement detection keys on. Stub data is
//! measured, never kept.

/// Most presentation contexts read from one BIND (or results from one BIND_ACK).
pub const MAX_CONTEXTS: usize = 32;
/// Size of the common header.
pub const HEADER_LEN: usize = 16;

/// PDU types (DCE 1.1 RPC 12.6.4.1).
pub const REQUEST: u8 = 0;
pub const RESPONSE: u8 = 2;
pub const FAULT: u8 = 3;
pub const BIND: u8 = 11;
pub const BIND_ACK: u8 = 12;
pub const BIND_NAK: u8 = 13;
pub const ALTER_CONTEXT: u8 = 14;
pub const ALTER_CONTEXT_RESP: u8 = 15;

/// `pfc_flags` bits.
pub const PFC_FIRST_FRAG: u8 = 0x01;
pub const PFC_LAST_FRAG: u8 = 0x02;
pub const PFC_OBJECT_UUID: u8 = 0x80;

/// Suricata's name for a PDU type, as logged in `dcerpc.request`/`response`.
pub fn type_name(ptype: u8) -> &'static str {
    match ptype {
        0 => "REQUEST",
        1 => "PING",
        2 => "RESPONSE",
        3 => "FAULT",
        4 => "WORKING",
        5 => "NOCALL",
        6 => "REJECT",
        7 => "ACK",
        8 => "CL_CANCEL",
        9 => "FACK",
        10 => "CANCEL_ACK",
        11 => "BIND",
        12 => "BINDACK",
        13 => "BINDNAK",
        14 => "ALTER_CONTEXT",
        15 => "ALTER_CONTEXT_RESP",
        16 => "AUTH3",
        17 => "SHUTDOWN",
        18 => "CO_CANCEL",
        19 => "ORPHANED",
        20 => "RTS",
        _ => "UNKNOWN",
    }
}

/// One connection-oriented PDU, borrowed from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pdu<'a> {
    pub ptype: u8,
    pub flags: u8,
    /// Integers are little-endian (`drep[0]` bit 0x10).
    pub little: bool,
    pub call_id: u32,
    /// The whole fragment, header included (`frag_length` bytes).
    pub frag: &'a [u8],
    /// Bytes of the authentication verifier and its 8-byte `sec_trailer`, at the end.
    auth: usize,
}

impl<'a> Pdu<'a> {
    /// Parse one PDU at the start of `b`. `None` when `b` is not DCE/RPC or is short; the
    /// caller treats a short fragment as not (yet) readable.
    pub fn parse(b: &'a [u8]) -> Option<Self> {
        let h = b.get(..HEADER_LEN)?;
        // rpc_vers 5, rpc_vers_minor 0 or 1.
        if h[0] != 5 || h[1] > 1 || h[2] > 20 {
            return None;
        }
        let little = h[4] & 0x10 != 0;
        let frag_len = usize::from(u16v(little, [h[8], h[9]]));
        let auth_len = usize::from(u16v(little, [h[10], h[11]]));
        if frag_len < HEADER_LEN {
            return None;
        }
        let frag = b.get(..frag_len)?;
        let auth = if auth_len == 0 { 0 } else { auth_len + 8 };
        if HEADER_LEN + auth > frag_len {
            return None;
        }
        Some(Self {
            ptype: h[2],
            flags: h[3],
            little,
            call_id: u32v(little, [h[12], h[13], h[14], h[15]]),
            frag,
            auth,
        })
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b = self.frag.get(at..at + 2)?;
        Some(u16v(self.little, [b[0], b[1]]))
    }

    /// BIND / ALTER_CONTEXT: each presentation context's abstract syntax, as
    /// (`uuid`, `major.minor`).
    pub fn interfaces(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some(&n) = self.frag.get(24) else {
            return out;
        };
        let mut at = 28;
        for _ in 0..usize::from(n).min(MAX_CONTEXTS) {
            // p_cont_id(2) n_transfer_syn(1) reserved(1) abstract_syntax(16+2+2) transfers(20 each)
            let Some(&n_ts) = self.frag.get(at + 2) else {
                break;
            };
            let (Some(uuid), Some(major), Some(minor)) = (
                self.frag
                    .get(at + 4..at + 20)
                    .and_then(|u| uuid(u, self.little)),
                self.u16_at(at + 20),
                self.u16_at(at + 22),
            ) else {
                break;
            };
            out.push((uuid, format!("{major}.{minor}")));
            at += 24 + 20 * usize::from(n_ts);
        }
        out
    }

    /// BIND_ACK / ALTER_CONTEXT_RESP: each context's (`result`, `reason`).
    pub fn results(&self) -> Vec<(u16, u16)> {
        let mut out = Vec::new();
        // max_xmit(2) max_recv(2) assoc_group(4) then the secondary address (port_any_t).
        let Some(sec_len) = self.u16_at(24) else {
            return out;
        };
        let mut at = 26 + usize::from(sec_len);
        at = at.next_multiple_of(4);
        let Some(&n) = self.frag.get(at) else {
            return out;
        };
        at += 4;
        for _ in 0..usize::from(n).min(MAX_CONTEXTS) {
            let (Some(result), Some(reason)) = (self.u16_at(at), self.u16_at(at + 2)) else {
                break;
            };
            out.push((result, reason));
            at += 24;
        }
        out
    }

    /// REQUEST: the operation number.
    pub fn opnum(&self) -> Option<u16> {
        (self.ptype == REQUEST).then(|| self.u16_at(22)).flatten()
    }

    /// REQUEST/RESPONSE: stub data bytes in this fragment.
    pub fn stub_len(&self) -> usize {
        let start = match self.ptype {
            REQUEST if self.flags & PFC_OBJECT_UUID != 0 => 40,
            REQUEST | RESPONSE => 24,
            _ => return 0,
        };
        self.frag.len().saturating_sub(start + self.auth)
    }
}

fn u16v(little: bool, b: [u8; 2]) -> u16 {
    if little {
        u16::from_le_bytes(b)
    } else {
        u16::from_be_bytes(b)
    }
}

fn u32v(little: bool, b: [u8; 4]) -> u32 {
    if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    }
}

/// A UUID in its text form; the first three fields follow the PDU's byte order.
pub fn uuid(b: &[u8], little: bool) -> Option<String> {
    if little {
        return crate::smb::guid(b);
    }
    let b = b.get(..16)?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ptype: u8, flags: u8, body: &[u8], call_id: u32) -> Vec<u8> {
        let mut v = vec![5, 0, ptype, flags, 0x10, 0, 0, 0];
        v.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&call_id.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    const ATSVC: [u8; 16] = [
        0x82, 0x06, 0xf7, 0x1f, 0x51, 0x0a, 0xe8, 0x30, 0x07, 0x6d, 0x74, 0x0b, 0xe8, 0xce, 0xe9,
        0x8b,
    ];

    #[test]
    fn bind_lists_abstract_syntaxes() {
        let mut body = vec![0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 2, 0, 0, 0];
        for ctx in 0..2u16 {
            body.extend_from_slice(&ctx.to_le_bytes());
            body.extend_from_slice(&[1, 0]);
            body.extend_from_slice(&ATSVC);
            body.extend_from_slice(&[1, 0, 0, 0]);
            body.extend_from_slice(&[0; 20]);
        }
        let pdu = header(BIND, 3, &body, 2);
        let p = Pdu::parse(&pdu).unwrap();
        assert_eq!(p.call_id, 2);
        let i = p.interfaces();
        assert_eq!(i.len(), 2);
        assert_eq!(i[0].0, "1ff70682-0a51-30e8-076d-740be8cee98b");
        assert_eq!(i[0].1, "1.0");
    }

    #[test]
    fn bind_ack_results_follow_the_aligned_secondary_address() {
        // "\PIPE\atsvc\0" is 12 bytes: 26 + 12 = 38, aligned to 40.
        let mut body = vec![0xb8, 0x10, 0xb8, 0x10, 1, 0, 0, 0, 12, 0];
        body.extend_from_slice(b"\\PIPE\\atsvc\0");
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&[3, 0, 0, 0]);
        for (res, reason) in [(2u16, 0u16), (0, 0), (3, 3)] {
            body.extend_from_slice(&res.to_le_bytes());
            body.extend_from_slice(&reason.to_le_bytes());
            body.extend_from_slice(&[0; 20]);
        }
        let pdu = header(BIND_ACK, 3, &body, 2);
        assert_eq!(
            Pdu::parse(&pdu).unwrap().results(),
            vec![(2, 0), (0, 0), (3, 3)]
        );
    }

    #[test]
    fn request_opnum_and_stub_exclude_the_auth_trailer() {
        let mut body = vec![0; 8];
        body[6] = 7; // opnum 7
        body.extend_from_slice(&[0xaa; 100]);
        body.extend_from_slice(&[0; 8 + 16]); // sec_trailer + 16-byte verifier
        let mut pdu = header(REQUEST, 3, &body, 9);
        pdu[10] = 16; // auth_length
        let p = Pdu::parse(&pdu).unwrap();
        assert_eq!(p.opnum(), Some(7));
        assert_eq!(p.stub_len(), 100);
    }

    #[test]
    fn not_dcerpc_or_short_is_none() {
        assert!(Pdu::parse(b"GET / HTTP/1.1\r\n\r\n").is_none());
        let pdu = header(REQUEST, 3, &[0; 8], 1);
        assert!(Pdu::parse(&pdu[..20]).is_none());
        let mut bad = pdu.clone();
        bad[8] = 4; // frag_length below the header
        assert!(Pdu::parse(&bad).is_none());
    }

    #[test]
    fn big_endian_uuid_is_read_in_order() {
        let b: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            uuid(&b, false).unwrap(),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        assert_eq!(
            uuid(&b, true).unwrap(),
            "03020100-0504-0706-0809-0a0b0c0d0e0f"
        );
    }
}
