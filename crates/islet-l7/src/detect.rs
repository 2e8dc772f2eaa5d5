//! Protocol detection by probing payload content.

use islet_event::AppProto;

/// What a probe concluded from one direction's first payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The protocol is identified. `reverse` says the packet was a server's answer sent in the
    /// flow's to-server direction (we saw the response first): the flow should be flipped.
    Match { proto: AppProto, reverse: bool },
    /// No known protocol starts like this.
    NoMatch,
    /// Too few bytes to tell.
    NeedMore,
}

/// Transport of the flow being probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Most payload packets probed per direction before the direction is declared `failed`.
pub const MAX_PROBE_PACKETS: u8 = 3;

fn matched(proto: AppProto) -> Probe {
    Probe::Match {
        proto,
        reverse: false,
    }
}

/// Probe `payload` sent `toserver` (or to the client) on a flow between `sport` and `dport`
/// (the client's and the server's ports).
pub fn probe(t: Transport, payload: &[u8], toserver: bool, sport: u16, dport: u16) -> Probe {
    match t {
        Transport::Tcp => probe_tcp(payload, toserver, sport, dport),
        Transport::Udp => probe_udp(payload, toserver, sport, dport),
    }
}

fn any_port(sport: u16, dport: u16, ports: &[u16]) -> bool {
    ports.contains(&sport) || ports.contains(&dport)
}

fn probe_tcp(p: &[u8], toserver: bool, sport: u16, dport: u16) -> Probe {
    if p.len() < 4 {
        return Probe::NeedMore;
    }
    if let Some(r) = tls(p) {
        return r;
    }
    if p.starts_with(b"SSH-") {
        return matched(AppProto::Ssh);
    }
    if let Some(r) = http(p) {
        return r;
    }
    if let Some(r) = smb(p) {
        return r;
    }
    if let Some(r) = dcerpc(p) {
        return r;
    }
    if let Some(r) = rdp(p) {
        return r;
    }
    if any_port(sport, dport, &[88]) && p.len() > 4 && krb5_tag(p[4]) {
        return matched(AppProto::Krb5);
    }
    if any_port(sport, dport, &[53, 5353]) && p.len() >= 14 {
        let len = usize::from(u16::from_be_bytes([p[0], p[1]]));
        if len >= 12 && dns_header_ok(&p[2..]) {
            let qr = p[4] & 0x80 != 0;
            return Probe::Match {
                proto: AppProto::Dns,
                reverse: toserver && qr,
            };
        }
    }
    if let Some(r) = text_protocols(p, toserver) {
        return r;
    }
    Probe::NoMatch
}

fn probe_udp(p: &[u8], toserver: bool, sport: u16, dport: u16) -> Probe {
    if p.is_empty() {
        return Probe::NeedMore;
    }
    if any_port(sport, dport, &[53, 5353, 5355]) && p.len() >= 12 && dns_header_ok(p) {
        let qr = p[2] & 0x80 != 0;
        return Probe::Match {
            proto: AppProto::Dns,
            reverse: toserver && qr,
        };
    }
    if any_port(sport, dport, &[123]) && p.len() >= 48 {
        let version = (p[0] >> 3) & 0x07;
        let mode = p[0] & 0x07;
        if (1..=4).contains(&version) && mode != 0 {
            return matched(AppProto::Ntp);
        }
    }
    if let Some(r) = quic(p) {
        return r;
    }
    if any_port(sport, dport, &[88]) && krb5_tag(p[0]) {
        return matched(AppProto::Krb5);
    }
    if any_port(sport, dport, &[67, 68]) && p.len() >= 240 && p[236..240] == [99, 130, 83, 99] {
        return matched(AppProto::Dhcp);
    }
    if any_port(sport, dport, &[161, 162]) && p[0] == 0x30 {
        return matched(AppProto::Snmp);
    }
    if any_port(sport, dport, &[69]) && p.len() >= 4 && p[0] == 0 && (1..=5).contains(&p[1]) {
        return matched(AppProto::Tftp);
    }
    Probe::NoMatch
}

/// A TLS record header with a handshake (or an SSLv2-framed ClientHello).
fn tls(p: &[u8]) -> Option<Probe> {
    if p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x04 {
        if p.len() < 6 {
            return Some(Probe::NeedMore);
        }
        if matches!(p[5], 1 | 2) {
            return Some(matched(AppProto::Tls));
        }
    }
    // SSLv2-compatible ClientHello: 2-byte length with the high bit, type 1, version 3.x.
    if p[0] & 0x80 != 0 && p.len() >= 5 && p[2] == 0x01 && p[3] == 0x03 && p[4] <= 0x04 {
        return Some(matched(AppProto::Tls));
    }
    None
}

const HTTP_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"QUERY",
    b"REPORT",
    b"SEARCH",
    b"SUBSCRIBE",
    b"NOTIFY",
];

fn http(p: &[u8]) -> Option<Probe> {
    if p.starts_with(b"HTTP/1.") || p.starts_with(b"HTTP/0.9") {
        return Some(matched(AppProto::Http));
    }
    if p.starts_with(b"PRI * HTTP/2.0") {
        return Some(matched(AppProto::Http2));
    }
    let sp = p.iter().take(16).position(|&b| b == b' ')?;
    let method = &p[..sp];
    if !HTTP_METHODS.contains(&method) {
        return None;
    }
    match p.get(sp + 1) {
        Some(b'/' | b'*' | b'h' | b'H') => Some(matched(AppProto::Http)),
        Some(_) => None,
        None => Some(Probe::NeedMore),
    }
}

/// NetBIOS session service framing around SMB1/2/3 (`\xffSMB`, `\xfeSMB`, `\xfdSMB`).
fn smb(p: &[u8]) -> Option<Probe> {
    if p[0] != 0x00 {
        return None;
    }
    if p.len() < 8 {
        return Some(Probe::NeedMore);
    }
    matches!(&p[4..8], [0xfd..=0xff, b'S', b'M', b'B']).then_some(matched(AppProto::Smb))
}

/// DCE/RPC connection-oriented PDU header: version 5.0, a known PDU type, sane data rep.
fn dcerpc(p: &[u8]) -> Option<Probe> {
    if p[0] != 5 || p[1] != 0 {
        return None;
    }
    if p.len() < 16 {
        return Some(Probe::NeedMore);
    }
    let ptype = p[2];
    let drep_ok = p[4] & 0xEE == 0 && p[5] <= 3;
    let frag_len = if p[4] & 0x10 != 0 {
        u16::from_le_bytes([p[8], p[9]])
    } else {
        u16::from_be_bytes([p[8], p[9]])
    };
    (ptype <= 20 && drep_ok && frag_len >= 16).then_some(matched(AppProto::Dcerpc))
}

/// TPKT (RFC 1006) carrying an X.224 Connection Request or Confirm.
fn rdp(p: &[u8]) -> Option<Probe> {
    if p[0] != 0x03 || p[1] != 0x00 {
        return None;
    }
    if p.len() < 7 {
        return Some(Probe::NeedMore);
    }
    let tpkt_len = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let li = usize::from(p[4]);
    let code = p[5] & 0xF0;
    (tpkt_len >= 7 && li + 5 <= tpkt_len && matches!(code, 0xE0 | 0xD0))
        .then_some(matched(AppProto::Rdp))
}

/// Kerberos message: an ASN.1 application tag of AS/TGS requests and replies, or KRB-ERROR.
fn krb5_tag(b: u8) -> bool {
    matches!(b, 0x6a | 0x6b | 0x6c | 0x6d | 0x6e | 0x6f | 0x7e)
}

fn dns_header_ok(p: &[u8]) -> bool {
    if p.len() < 12 {
        return false;
    }
    let opcode = (p[2] >> 3) & 0x0F;
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let ns = u16::from_be_bytes([p[8], p[9]]);
    let ar = u16::from_be_bytes([p[10], p[11]]);
    // Z bit is ignored (DNSSEC reuses it); counts must be plausible for the datagram.
    let records = usize::from(qd) + usize::from(an) + usize::from(ns) + usize::from(ar);
    matches!(opcode, 0 | 1 | 2 | 4 | 5 | 6)
        && qd <= 16
        && records * 5 <= p.len().max(12) * 2
        && (qd > 0 || an > 0 || ns > 0)
}

/// A QUIC long-header packet of a known version.
fn quic(p: &[u8]) -> Option<Probe> {
    if p.len() < 7 || p[0] & 0xC0 != 0xC0 {
        return None;
    }
    let version = u32::from_be_bytes([p[1], p[2], p[3], p[4]]);
    let known = matches!(version, 1 | 0x6b33_43cf) || version & 0xFFFF_FF00 == 0xFF00_0000;
    known.then_some(matched(AppProto::Quic))
}

/// Line-based protocols with distinctive greetings or commands.
fn text_protocols(p: &[u8], toserver: bool) -> Option<Probe> {
    if toserver {
        if p.starts_with(b"EHLO ") || p.starts_with(b"HELO ") {
            return Some(matched(AppProto::Smtp));
        }
        if p.starts_with(b"USER ") || p.starts_with(b"AUTH TLS") {
            return Some(matched(AppProto::Ftp));
        }
        return None;
    }
    if p.starts_with(b"220") && p.len() >= 4 && matches!(p[3], b' ' | b'-') {
        let line = &p[..p.len().min(256)];
        let has = |w: &[u8]| line.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w));
        if has(b"SMTP") {
            return Some(matched(AppProto::Smtp));
        }
        if has(b"FTP") {
            return Some(matched(AppProto::Ftp));
        }
    }
    if p.starts_with(b"* OK") {
        return Some(matched(AppProto::Imap));
    }
    if p.starts_with(b"+OK") {
        return Some(matched(AppProto::Pop3));
    }
    if p.starts_with(b"RFB 0") {
        return Some(matched(AppProto::Rfb));
    }
    None
}

#[cfg(test)]
mod test {
    use super::*;

    fn is(p: Probe, proto: AppProto) -> bool {
        matches!(p, Probe::Match { proto: x, .. } if x == proto)
    }

    #[test]
    fn tls_on_an_unusual_port() {
        let hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
        assert!(is(
            probe(Transport::Tcp, &hello, true, 50000, 8443),
            AppProto::Tls
        ));
    }

    #[test]
    fn ssh_on_2222() {
        assert!(is(
            probe(Transport::Tcp, b"SSH-2.0-OpenSSH_9.6\r\n", true, 1, 2222),
            AppProto::Ssh
        ));
    }

    #[test]
    fn dns_on_5353_and_a_response_first_reverses() {
        let resp = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0];
        assert_eq!(
            probe(Transport::Udp, &resp, true, 53, 40000),
            Probe::Match {
                proto: AppProto::Dns,
                reverse: true
            }
        );
        let q = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        assert!(is(
            probe(Transport::Udp, &q, true, 40000, 5353),
            AppProto::Dns
        ));
    }

    #[test]
    fn http_request_and_response() {
        assert!(is(
            probe(Transport::Tcp, b"OPTIONS * HTTP/1.1\r\n", true, 1, 80),
            AppProto::Http
        ));
        assert!(is(
            probe(Transport::Tcp, b"HTTP/1.1 200 OK\r\n", false, 1, 80),
            AppProto::Http
        ));
        assert_eq!(
            probe(Transport::Tcp, b"GETX / HTTP/1.1", true, 1, 80),
            Probe::NoMatch
        );
    }

    #[test]
    fn short_input_needs_more() {
        assert_eq!(probe(Transport::Tcp, b"SS", true, 1, 22), Probe::NeedMore);
    }

    #[test]
    fn random_bytes_match_nothing() {
        assert_eq!(
            probe(Transport::Tcp, &[0x42; 64], true, 1, 9999),
            Probe::NoMatch
        );
    }
}
