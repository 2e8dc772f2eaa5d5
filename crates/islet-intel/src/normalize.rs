//! Canonical forms in which indicators are stored and wire values are looked up: names
//! lower-case without a trailing dot, URLs with scheme and host lower-cased and default ports
//! dropped, addresses as prefixes, fingerprints lower-case hex without separators.

use std::net::IpAddr;

/// Longest name accepted (RFC 1035: 253 characters in text form).
pub const MAX_NAME: usize = 253;
/// Longest URL accepted.
pub const MAX_URL: usize = 8192;

/// A DNS name as stored: lower-case, no trailing dot. `None` when it is not a plausible name.
pub fn name(v: &str) -> Option<String> {
    let v = v.trim().trim_end_matches('.');
    if v.is_empty()
        || v.len() > MAX_NAME
        || v.contains(|c: char| c.is_whitespace() || c == '/' || c == '\0')
    {
        return None;
    }
    Some(v.to_ascii_lowercase())
}

/// An address prefix: (is IPv6, address bits left-aligned in a u128, prefix length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub v6: bool,
    pub bits: u128,
    pub len: u8,
}

impl Prefix {
    pub fn of(ip: IpAddr) -> Prefix {
        match ip {
            IpAddr::V4(a) => Prefix {
                v6: false,
                bits: u128::from(u32::from(a)) << 96,
                len: 32,
            },
            IpAddr::V6(a) => Prefix {
                v6: true,
                bits: u128::from(a),
                len: 128,
            },
        }
    }

    /// `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or prefix. Host bits are cleared.
    pub fn parse(v: &str) -> Option<Prefix> {
        let v = v.trim();
        let (addr, len) = match v.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (v, None),
        };
        let ip: IpAddr = addr.parse().ok()?;
        let mut p = Prefix::of(ip);
        if let Some(l) = len {
            if l > p.len {
                return None;
            }
            p = p.truncate(l);
        }
        Some(p)
    }

    /// The same address truncated to `len` bits. Bits are left-aligned (IPv4 in the top 32),
    /// so one mask serves both families.
    pub fn truncate(self, len: u8) -> Prefix {
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len.min(128)))
        };
        Prefix {
            v6: self.v6,
            bits: self.bits & mask,
            len,
        }
    }

    /// True if `other` (an address or a longer prefix) lies inside this prefix.
    pub fn contains(self, other: Prefix) -> bool {
        self.v6 == other.v6 && other.len >= self.len && other.truncate(self.len).bits == self.bits
    }
}

/// A URL as stored and looked up: `scheme://host[:port]/path?query`, scheme and host
/// lower-cased, the default port of the scheme dropped, an empty path as `/`. A value without a
/// scheme is read as `http://`.
pub fn url(v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > MAX_URL || v.contains(char::is_whitespace) {
        return None;
    }
    let (scheme, rest) = match v.split_once("://") {
        Some((s, r))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s.to_ascii_lowercase(), r)
        }
        _ => ("http".to_string(), v),
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    // Credentials are not part of what the wire shows in a request.
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    if host_port.is_empty() {
        return None;
    }
    let (host, port) = split_port(host_port);
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        "ftp" => Some(21),
        _ => None,
    };
    let port = port.filter(|p| Some(*p) != default);
    let path = path.split('#').next().unwrap_or("");
    let path = if path.is_empty() || path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Some(match port {
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => format!("{scheme}://{host}{path}"),
    })
}

/// `host:port`, `[v6]:port`, or a bare host.
fn split_port(hp: &str) -> (&str, Option<u16>) {
    if let Some(rest) = hp.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            return (h, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
        return (hp, None);
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (hp, None),
        },
        _ => (hp, None),
    }
}

/// The host part of a URL or `host:port` (for warninglists that match URLs by host).
pub fn host_of_url(v: &str) -> Option<String> {
    let u = url(v)?;
    let rest = u.split_once("://")?.1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    Some(split_port(authority).0.to_string())
}

/// A hex fingerprint as stored: lower-case, separators (`:`, ` `) removed. `None` unless it
/// is hex of the expected length.
pub fn hex_fingerprint(v: &str, len: usize) -> Option<String> {
    let h: String = v
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (h.len() == len && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

/// A JA4 (TLS client) fingerprint: `t13d1516h2_8daaf6152771_e5627efa2ab1` (or `q…`/`d…`).
pub fn ja4(v: &str) -> Option<String> {
    let v = v.trim().to_ascii_lowercase();
    let mut parts = v.split('_');
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let ab = a.as_bytes();
    let ok_a = ab.len() == 10
        && matches!(ab[0], b't' | b'q' | b'd')
        && ab[1..3].iter().all(u8::is_ascii_alphanumeric)
        && matches!(ab[3], b'd' | b'i')
        && ab[4..8].iter().all(u8::is_ascii_digit)
        && ab[8..10].iter().all(u8::is_ascii_alphanumeric);
    let hex12 = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (ok_a && hex12(b) && hex12(c)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise_scheme_host_and_default_port() {
        assert_eq!(
            url("HTTP://Evil.Example:80/a?b=1").unwrap(),
            "http://evil.example/a?b=1"
        );
        assert_eq!(url("evil.example").unwrap(), "http://evil.example/");
        assert_eq!(
            url("https://evil.example:8443").unwrap(),
            "https://evil.example:8443/"
        );
        assert_eq!(
            url("http://[2001:db8::1]:80/x").unwrap(),
            "http://2001:db8::1/x"
        );
        assert_eq!(
            url("http://u:p@h.example/x#frag").unwrap(),
            "http://h.example/x"
        );
        assert!(url("http://a b/").is_none());
    }

    #[test]
    fn prefixes_contain_addresses() {
        let net = Prefix::parse("223.166.0.0/15").unwrap();
        assert!(net.contains(Prefix::parse("223.167.1.2").unwrap()));
        assert!(!net.contains(Prefix::parse("223.168.0.1").unwrap()));
        assert_eq!(
            Prefix::parse("10.1.2.3/8").unwrap(),
            Prefix::parse("10.0.0.0/8").unwrap()
        );
        let v6 = Prefix::parse("fe80::/10").unwrap();
        assert!(v6.contains(Prefix::parse("fe80::1").unwrap()));
        assert!(!v6.contains(Prefix::parse("10.0.0.1").unwrap()));
        assert!(Prefix::parse("10.0.0.0/33").is_none());
        assert!(
            Prefix::parse("0.0.0.0/0")
                .unwrap()
                .contains(Prefix::parse("8.8.8.8").unwrap())
        );
    }

    #[test]
    fn fingerprints_and_ja4() {
        assert_eq!(
            hex_fingerprint(
                "AB:cd:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23",
                40
            )
            .unwrap(),
            "abcd0123456789abcdef0123456789abcdef0123"
        );
        assert!(hex_fingerprint("xyz", 32).is_none());
        assert!(ja4("t13d1516h2_8daaf6152771_e5627efa2ab1").is_some());
        assert!(ja4("t13d1516h2_8daaf6152771").is_none());
        assert!(ja4("just some text").is_none());
    }
}
