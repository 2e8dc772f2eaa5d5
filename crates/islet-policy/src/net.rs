//! Address prefixes (`10.0.0.0/8`, `2001:db8::/32`, a bare address) as policies and
//! inventories write them.

use std::fmt;
use std::net::IpAddr;

/// Why a text is not an address or prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CidrError {
    /// The part after `/` is not a number from 0 to 255.
    BadPrefixLength { text: String },
    /// The address part is not an IPv4 or IPv6 address.
    NotAddress { text: String },
    /// The prefix length is longer than the address.
    PrefixTooLong { len: u8, text: String },
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::BadPrefixLength { text } => write!(f, "bad prefix length in {text:?}"),
            CidrError::NotAddress { text } => write!(f, "{text:?} is not an IP address or CIDR"),
            CidrError::PrefixTooLong { len, text } => {
                write!(f, "prefix length {len} is too long in {text:?}")
            }
        }
    }
}

impl std::error::Error for CidrError {}

/// Bridge for callers that still carry errors as text.
impl From<CidrError> for String {
    fn from(e: CidrError) -> String {
        e.to_string()
    }
}

/// A prefix: left-aligned bits (IPv4 in the top 32) and a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub v6: bool,
    pub bits: u128,
    pub len: u8,
}

impl Cidr {
    pub fn host(ip: IpAddr) -> Cidr {
        match ip {
            IpAddr::V4(a) => Cidr {
                v6: false,
                bits: u128::from(u32::from(a)) << 96,
                len: 32,
            },
            IpAddr::V6(a) => Cidr {
                v6: true,
                bits: u128::from(a),
                len: 128,
            },
        }
    }

    /// `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or prefix; host bits must be clear only when
    /// `strict` (Kubernetes accepts `10.0.0.1/24`; islet clears them).
    pub fn parse(v: &str) -> Result<Cidr, CidrError> {
        let v = v.trim();
        let (addr, len) = match v.split_once('/') {
            Some((a, l)) => (
                a,
                Some(l.parse::<u8>().map_err(|_| CidrError::BadPrefixLength {
                    text: v.to_string(),
                })?),
            ),
            None => (v, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| CidrError::NotAddress {
            text: v.to_string(),
        })?;
        let mut c = Cidr::host(ip);
        if let Some(l) = len {
            if l > c.len {
                return Err(CidrError::PrefixTooLong {
                    len: l,
                    text: v.to_string(),
                });
            }
            c = c.truncate(l);
        }
        Ok(c)
    }

    pub fn truncate(self, len: u8) -> Cidr {
        let max = if self.v6 { 128 } else { 32 };
        let len = len.min(max);
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        Cidr {
            v6: self.v6,
            bits: self.bits & mask,
            len,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let h = Cidr::host(ip);
        h.v6 == self.v6 && h.truncate(self.len).bits == self.bits
    }

    /// Does this prefix lie inside `other`?
    pub fn within(&self, other: &Cidr) -> bool {
        self.v6 == other.v6 && self.len >= other.len && self.truncate(other.len).bits == other.bits
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip: IpAddr = if self.v6 {
            IpAddr::V6(self.bits.into())
        } else {
            IpAddr::V4(((self.bits >> 96) as u32).into())
        };
        write!(f, "{ip}/{}", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_contains_within() {
        let c = Cidr::parse("172.17.0.0/16").expect("cidr");
        assert!(c.contains("172.17.1.1".parse().expect("ip")));
        assert!(!c.contains("172.18.0.1".parse().expect("ip")));
        assert!(Cidr::parse("172.17.1.0/24").expect("cidr").within(&c));
        assert_eq!(
            Cidr::parse("10.1.2.3/8").expect("cidr").to_string(),
            "10.0.0.0/8"
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert!(
            Cidr::parse("2001:db8::/32")
                .expect("v6")
                .contains("2001:db8::1".parse().expect("ip"))
        );
    }
}
