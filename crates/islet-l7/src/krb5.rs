//! Kerberos 5 (RFC 4120) over UDP and TCP: message types, client and service principals,
//! realms, encryption types and error codes. A small DER reader walks only the fields islet
//! logs; its depth and lengths are bounded by the message.

use crate::Sink;
use islet_event::AppProto;
use islet_event::proto::{AppEvent, Krb5Event};

/// Largest Kerberos message over TCP.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most name components kept in a principal.
pub const MAX_NAME_PARTS: usize = 8;
/// Most requests awaiting a reply.
pub const MAX_PENDING: usize = 16;

/// One DER TLV: (tag byte, content).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let l0 = *b.get(1)?;
    let (len, hdr) = if l0 & 0x80 == 0 {
        (usize::from(l0), 2)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let content = b.get(hdr..hdr.checked_add(len)?)?;
    Some((tag, content, &b[hdr + len..]))
}

/// The fields of a SEQUENCE, by context tag number ([0]..[15]).
fn fields(seq: &[u8]) -> [Option<&[u8]>; 16] {
    let mut out = [None; 16];
    let mut rest = seq;
    while let Some((tag, content, next)) = tlv(rest) {
        if tag & 0xE0 == 0xA0 {
            let n = usize::from(tag & 0x1f);
            if n < 16 {
                out[n] = Some(content);
            }
        }
        rest = next;
    }
    out
}

fn int(b: Option<&[u8]>) -> Option<i64> {
    let (tag, v, _) = tlv(b?)?;
    if tag != 0x02 || v.is_empty() || v.len() > 8 {
        return None;
    }
    let mut x: i64 = if v[0] & 0x80 != 0 { -1 } else { 0 };
    for &c in v {
        x = (x << 8) | i64::from(c);
    }
    Some(x)
}

fn string(b: Option<&[u8]>) -> Option<String> {
    let (_, v, _) = tlv(b?)?;
    Some(String::from_utf8_lossy(v).into_owned())
}

/// PrincipalName ::= SEQUENCE { name-type [0], name-string [1] SEQUENCE OF KerberosString }
fn principal(b: Option<&[u8]>) -> Option<String> {
    let (_, seq, _) = tlv(b?)?;
    let f = fields(seq);
    let (_, names, _) = tlv(f[1]?)?;
    let mut parts = Vec::new();
    let mut rest = names;
    while let Some((_, v, next)) = tlv(rest) {
        if parts.len() < MAX_NAME_PARTS {
            parts.push(String::from_utf8_lossy(v).into_owned());
        }
        rest = next;
    }
    Some(parts.join("/"))
}

fn msg_name(t: u8) -> &'static str {
    match t {
        10 => "KRB_AS_REQ",
        11 => "KRB_AS_REP",
        12 => "KRB_TGS_REQ",
        13 => "KRB_TGS_REP",
        14 => "KRB_AP_REQ",
        15 => "KRB_AP_REP",
        30 => "KRB_ERROR",
        _ => "UNKNOWN",
    }
}

/// RFC 3961/3962/8009 encryption type names, as Suricata writes them.
pub fn etype_name(e: i64) -> String {
    match e {
        1 => "des-cbc-crc".into(),
        3 => "des-cbc-md5".into(),
        16 => "des3-cbc-sha1".into(),
        17 => "aes128-cts-hmac-sha1-96".into(),
        18 => "aes256-cts-hmac-sha1-96".into(),
        19 => "aes128-cts-hmac-sha256-128".into(),
        20 => "aes256-cts-hmac-sha384-192".into(),
        23 => "rc4-hmac".into(),
        24 => "rc4-hmac-exp".into(),
        n => format!("unknown-{n}"),
    }
}

fn error_name(c: i64) -> String {
    match c {
        0 => "KDC_ERR_NONE".into(),
        6 => "KDC_ERR_C_PRINCIPAL_UNKNOWN".into(),
        7 => "KDC_ERR_S_PRINCIPAL_UNKNOWN".into(),
        12 => "KDC_ERR_POLICY".into(),
        14 => "KDC_ERR_ETYPE_NOSUPP".into(),
        18 => "KDC_ERR_CLIENT_REVOKED".into(),
        23 => "KDC_ERR_KEY_EXPIRED".into(),
        24 => "KDC_ERR_PREAUTH_FAILED".into(),
        25 => "KDC_ERR_PREAUTH_REQUIRED".into(),
        31 => "KRB_AP_ERR_BAD_INTEGRITY".into(),
        32 => "KRB_AP_ERR_TKT_EXPIRED".into(),
        37 => "KRB_AP_ERR_SKEW".into(),
        41 => "KRB_AP_ERR_MODIFIED".into(),
        68 => "KDC_ERR_WRONG_REALM".into(),
        n => format!("{n}"),
    }
}

/// What a request left for its reply to complete.
#[derive(Debug, Clone)]
struct Request {
    msg_type: u8,
    cname: Option<String>,
    realm: Option<String>,
    sname: Option<String>,
    etypes: Vec<i64>,
}

/// Per-flow Kerberos state (requests awaiting replies; TCP framing).
#[derive(Debug, Default)]
pub struct Krb5State {
    pending: std::collections::VecDeque<Request>,
    tcp: [Vec<u8>; 2],
}

impl Krb5State {
    /// One Kerberos message (a UDP datagram, or a TCP record without its length).
    pub fn message(&mut self, m: &[u8], sink: &mut Sink<'_>) {
        let Some((tag, body, _)) = tlv(m) else {
            sink.events.push(AppEvent::Anomaly {
                app_proto: AppProto::Krb5,
                event: "malformed_data",
            });
            return;
        };
        let t = tag & 0x1f;
        let Some((_, seq, _)) = tlv(body) else { return };
        let f = fields(seq);
        match t {
            10 | 12 => {
                // KDC-REQ: pvno [1], msg-type [2], padata [3], req-body [4].
                let rb = f[4].and_then(tlv).map(|(_, s, _)| fields(s));
                let mut etypes = Vec::new();
                if let Some(rb) = &rb
                    && let Some((_, list, _)) = rb[8].and_then(tlv)
                {
                    // SEQUENCE OF Int32: each element is itself an INTEGER TLV.
                    let mut rest = list;
                    while let Some((_, _, next)) = tlv(rest) {
                        if let Some(e) = int(Some(rest)) {
                            etypes.push(e);
                        }
                        rest = next;
                    }
                }
                let req = Request {
                    msg_type: t,
                    cname: rb.as_ref().and_then(|r| principal(r[1])),
                    realm: rb.as_ref().and_then(|r| string(r[2])),
                    sname: rb.as_ref().and_then(|r| principal(r[3])),
                    etypes,
                };
                if self.pending.len() >= MAX_PENDING {
                    self.pending.pop_front();
                }
                self.pending.push_back(req);
            }
            11 | 13 => {
                // KDC-REP: pvno [0], msg-type [1], padata [2], crealm [3], cname [4],
                // ticket [5], enc-part [6] (EncryptedData: etype [0]).
                let req = self.pending.pop_front();
                let etype = f[6].and_then(tlv).and_then(|(_, s, _)| int(fields(s)[0]));
                let ticket_sname = f[5]
                    .and_then(tlv)
                    .and_then(|(_, app, _)| tlv(app))
                    .and_then(|(_, s, _)| principal(fields(s)[2]));
                sink.events.push(AppEvent::Krb5(Box::new(Krb5Event {
                    msg_type: msg_name(t).into(),
                    failed_request: None,
                    error_code: None,
                    cname: principal(f[4]).or_else(|| req.as_ref().and_then(|r| r.cname.clone())),
                    realm: string(f[3]).or_else(|| req.as_ref().and_then(|r| r.realm.clone())),
                    sname: ticket_sname.or_else(|| req.as_ref().and_then(|r| r.sname.clone())),
                    encryption: etype.map(etype_name),
                    weak_encryption: etype.is_some_and(|e| matches!(e, 1 | 3 | 23 | 24)),
                })));
            }
            30 => {
                // KRB-ERROR: error-code [6], crealm [7], cname [8], realm [9], sname [10].
                let req = self.pending.pop_front();
                sink.events.push(AppEvent::Krb5(Box::new(Krb5Event {
                    msg_type: "KRB_ERROR".into(),
                    failed_request: req.as_ref().map(|r| msg_name(r.msg_type).into()),
                    error_code: int(f[6]).map(error_name),
                    cname: principal(f[8]).or_else(|| req.as_ref().and_then(|r| r.cname.clone())),
                    realm: string(f[9]),
                    sname: principal(f[10]),
                    encryption: None,
                    weak_encryption: false,
                })));
            }
            _ => {}
        }
    }

    /// TCP: records framed by a 4-byte length.
    pub fn input(&mut self, toserver: bool, data: &[u8], sink: &mut Sink<'_>) -> bool {
        let d = usize::from(!toserver);
        self.tcp[d].extend_from_slice(data);
        loop {
            let b = &self.tcp[d];
            if b.len() < 4 {
                return false;
            }
            let len = (u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff) as usize;
            if len > MAX_MESSAGE {
                sink.events.push(AppEvent::Anomaly {
                    app_proto: AppProto::Krb5,
                    event: "malformed_data",
                });
                self.tcp[d].clear();
                return true;
            }
            if b.len() < 4 + len {
                return false;
            }
            let m: Vec<u8> = self.tcp[d].drain(..4 + len).skip(4).collect();
            self.message(&m, sink);
        }
    }

    /// Requests never answered are logged as such at flow end.
    pub fn finish(&mut self, sink: &mut Sink<'_>) {
        for r in self.pending.drain(..) {
            sink.events.push(AppEvent::Krb5(Box::new(Krb5Event {
                msg_type: msg_name(r.msg_type).into(),
                cname: r.cname,
                realm: r.realm,
                sname: r.sname,
                encryption: r.etypes.first().copied().map(etype_name),
                ..Krb5Event::default()
            })));
        }
    }
}
