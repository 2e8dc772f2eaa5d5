//! JA3 / JA3S (Salesforce) and JA4 (FoxIO; the TLS-client fingerprint, BSD-3-Clause), written
//! from their published specifications.

use super::parser::{ClientHello, ServerHello, is_grease};
use islet_event::proto::Fingerprint;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::fmt::Write as _;

fn dash<T: std::fmt::Display>(v: impl Iterator<Item = T>) -> String {
    let mut s = String::new();
    for (i, x) in v.enumerate() {
        if i > 0 {
            s.push('-');
        }
        let _ = write!(s, "{x}");
    }
    s
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .fold(String::with_capacity(32), |mut o, b| {
            let _ = write!(o, "{b:02x}");
            o
        })
}

/// JA3: `version,ciphers,extensions,groups,point formats` in decimal, GREASE removed, MD5.
pub fn ja3(c: &ClientHello) -> Fingerprint {
    let string = format!(
        "{},{},{},{},{}",
        c.legacy_version,
        dash(c.ciphers.iter().filter(|v| !is_grease(**v))),
        dash(c.extensions.iter().filter(|v| !is_grease(**v))),
        dash(c.groups.iter().filter(|v| !is_grease(**v))),
        dash(c.point_formats.iter()),
    );
    Fingerprint {
        hash: md5_hex(&string),
        string,
    }
}

/// JA3S: `version,cipher,extensions` of the ServerHello, MD5.
pub fn ja3s(s: &ServerHello) -> Fingerprint {
    let string = format!(
        "{},{},{}",
        s.legacy_version,
        s.cipher,
        dash(s.extensions.iter())
    );
    Fingerprint {
        hash: md5_hex(&string),
        string,
    }
}

fn sha256_12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let d = Sha256::digest(s.as_bytes());
    d.iter()
        .take(6)
        .fold(String::with_capacity(12), |mut o, b| {
            let _ = write!(o, "{b:02x}");
            o
        })
}

fn hex4_list(v: &[u16]) -> String {
    let mut s = String::with_capacity(v.len() * 5);
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x:04x}");
    }
    s
}

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0200 => "s2",
        0x0100 => "s1",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4 of a ClientHello; `transport` is `t` (TCP) or `q` (QUIC).
pub fn ja4(c: &ClientHello, transport: char) -> String {
    let version = c
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(c.legacy_version);
    let ciphers: Vec<u16> = c
        .ciphers
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let exts: Vec<u16> = c
        .extensions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let sni = if c.extensions.contains(&0) { 'd' } else { 'i' };
    let alpn = match c.alpns.first().map(String::as_bytes) {
        Some([first, .., last]) | Some([first @ last]) => {
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                format!("{}{}", *first as char, *last as char)
            } else {
                format!("{:x}{:x}", first >> 4, last & 0xf)
            }
        }
        _ => "00".into(),
    };
    let a = format!(
        "{transport}{}{sni}{:02}{:02}{alpn}",
        version_code(version),
        ciphers.len().min(99),
        exts.len().min(99)
    );
    let mut sorted_ciphers = ciphers;
    sorted_ciphers.sort_unstable();
    let b = sha256_12(&hex4_list(&sorted_ciphers));
    let mut sorted_exts: Vec<u16> = exts.into_iter().filter(|v| *v != 0 && *v != 16).collect();
    sorted_exts.sort_unstable();
    let sigs: Vec<u16> = c
        .sig_algs
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let c_in = if sorted_exts.is_empty() && sigs.is_empty() {
        String::new()
    } else if sigs.is_empty() {
        hex4_list(&sorted_exts)
    } else {
        format!("{}_{}", hex4_list(&sorted_exts), hex4_list(&sigs))
    };
    format!("{a}_{b}_{}", sha256_12(&c_in))
}
