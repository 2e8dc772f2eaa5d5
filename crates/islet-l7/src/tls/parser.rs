//! Pure parsers for the handshake messages islet reads. Bodies come from tls-parser; the
//! extension list is walked here, one extension at a time, so a malformed extension costs only
//! itself ("better to read values than to get a generic parse error").

use islet_event::proto::CertInfo;
use sha1::{Digest, Sha1};
use tls_parser::{parse_tls_handshake_client_hello, parse_tls_handshake_server_hello};

/// Most extensions read from one hello.
pub const MAX_EXTENSIONS: usize = 128;
/// Most ALPN protocols kept.
pub const MAX_ALPNS: usize = 16;
/// Longest SNI kept (a DNS name is at most 253 characters).
pub const MAX_SNI: usize = 255;

/// What islet keeps of a ClientHello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub session_id: Vec<u8>,
    pub ciphers: Vec<u16>,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub sig_algs: Vec<u16>,
    pub alpns: Vec<String>,
    pub supported_versions: Vec<u16>,
}

/// What islet keeps of a ServerHello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    /// The negotiated version: `supported_versions` when present, else the legacy field.
    pub version: u16,
    pub session_id: Vec<u8>,
    pub cipher: u16,
    pub extensions: Vec<u16>,
    pub alpns: Vec<String>,
}

/// GREASE values (RFC 8701): 0x?a?a with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

fn u16s(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
}

/// Walk `ext` as (type, length, data) triples.
fn extensions(ext: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = ext;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let ty = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let data = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some((ty, data))
    })
    .take(MAX_EXTENSIONS)
}

fn alpn_list(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(list) = data.get(2..) else {
        return out;
    };
    let mut rest = list;
    while let Some((&n, tail)) = rest.split_first() {
        let Some(p) = tail.get(..usize::from(n)) else {
            break;
        };
        if out.len() < MAX_ALPNS {
            out.push(String::from_utf8_lossy(p).into_owned());
        }
        rest = &tail[usize::from(n)..];
    }
    out
}

/// Parse a ClientHello body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Option<ClientHello> {
    let (_, ch) = parse_tls_handshake_client_hello(body).ok()?;
    let mut out = ClientHello {
        legacy_version: ch.version.0,
        session_id: ch.session_id.unwrap_or_default().to_vec(),
        ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
        ..ClientHello::default()
    };
    for (ty, data) in extensions(ch.ext.unwrap_or_default()) {
        out.extensions.push(ty);
        match ty {
            0 => {
                // server_name: list of (type, name); the first host_name wins.
                if let Ok((_, tls_parser::TlsExtension::SNI(names))) =
                    tls_parser::parse_tls_extension_sni_content(data)
                    && let Some((_, name)) = names.iter().find(|(t, _)| t.0 == 0)
                {
                    let name = &name[..name.len().min(MAX_SNI)];
                    out.sni = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            10 => out.groups = data.get(2..).map(|b| u16s(b).collect()).unwrap_or_default(),
            11 => out.point_formats = data.get(1..).map(<[u8]>::to_vec).unwrap_or_default(),
            13 => out.sig_algs = data.get(2..).map(|b| u16s(b).collect()).unwrap_or_default(),
            16 => out.alpns = alpn_list(data),
            43 => {
                out.supported_versions =
                    data.get(1..).map(|b| u16s(b).collect()).unwrap_or_default()
            }
            _ => {}
        }
    }
    Some(out)
}

/// Parse a ServerHello body.
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let (_, sh) = parse_tls_handshake_server_hello(body).ok()?;
    let mut out = ServerHello {
        legacy_version: sh.version.0,
        version: sh.version.0,
        session_id: sh.session_id.unwrap_or_default().to_vec(),
        cipher: sh.cipher.0,
        ..ServerHello::default()
    };
    for (ty, data) in extensions(sh.ext.unwrap_or_default()) {
        out.extensions.push(ty);
        match ty {
            16 => out.alpns = alpn_list(data),
            43 if data.len() >= 2 => out.version = u16::from_be_bytes([data[0], data[1]]),
            _ => {}
        }
    }
    Some(out)
}

/// Suricata's name for a TLS version.
pub fn version_string(v: u16) -> String {
    match v {
        0x0200 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLSv1.1".into(),
        0x0303 => "TLSv1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v & 0xff00 == 0x7f00 => format!("TLS 1.3 draft-{}", v & 0xff),
        _ => "UNDETERMINED".into(),
    }
}

fn hex_colon(b: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        if upper {
            s.push_str(&format!("{x:02X}"));
        } else {
            s.push_str(&format!("{x:02x}"));
        }
    }
    s
}

fn asn1_time(t: &x509_parser::time::ASN1Time) -> String {
    let ts = t.timestamp();
    let days = ts.div_euclid(86_400);
    let sod = ts.rem_euclid(86_400);
    let (y, m, d) = islet_event::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// The first certificate of a Certificate message body (TLS ≤ 1.2 framing), as Suricata logs it.
pub fn parse_certificate(body: &[u8]) -> Option<CertInfo> {
    // 3-byte list length, then 3-byte length + DER per certificate.
    let first_len = (usize::from(*body.get(3)?) << 16)
        | (usize::from(*body.get(4)?) << 8)
        | usize::from(*body.get(5)?);
    let der = body.get(6..6 + first_len)?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                sans.push((*d).to_string());
            }
        }
    }
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuerdn: cert.issuer().to_string(),
        serial: hex_colon(cert.raw_serial(), true),
        fingerprint: hex_colon(&Sha1::digest(der), false),
        sha256: hex_colon(&sha2::Sha256::digest(der), false).replace(':', ""),
        md5: hex_colon(&md5::Md5::digest(der), false).replace(':', ""),
        notbefore: asn1_time(&cert.validity().not_before),
        notafter: asn1_time(&cert.validity().not_after),
        subjectaltname: sans,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301));
    }

    #[test]
    fn draft_versions() {
        assert_eq!(version_string(0x7f1c), "TLS 1.3 draft-28");
        assert_eq!(version_string(0x0301), "TLSv1");
    }
}
