//! Indicators as islet keeps them: a MISP attribute type, the value exactly as the source
//! holds it, `to_ids`, and the context an analyst needs (event, tags, feed).

use std::fmt;

/// Where on the wire an indicator can match. Names are MISP attribute types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `ip-src`: the flow's source (client).
    IpSrc,
    /// `ip-dst`: the flow's destination (server).
    IpDst,
    /// `ip-src|port`.
    IpSrcPort,
    /// `ip-dst|port`.
    IpDstPort,
    /// Either endpoint (plain lists, STIX `ipv4-addr`/`ipv6-addr`).
    Ip,
    /// `domain`: the name and every subdomain.
    Domain,
    /// `hostname`: the name exactly.
    Hostname,
    /// `domain|ip`: the name resolved to (or contacted at) the address.
    DomainIp,
    /// `url`: the HTTP request, normalised.
    Url,
    /// `uri`: the HTTP request target.
    Uri,
    /// `ja3-fingerprint-md5`.
    Ja3,
    /// JA4 (TLS client), from a `text` attribute or a `ja4` object attribute.
    Ja4,
    /// `hassh-md5`.
    Hassh,
    /// `hasshserver-md5`.
    HasshServer,
    /// `x509-fingerprint-sha1`.
    X509Sha1,
    /// `x509-fingerprint-sha256`.
    X509Sha256,
    /// `x509-fingerprint-md5`.
    X509Md5,
    /// `user-agent`.
    UserAgent,
}

impl Kind {
    pub const ALL: [Kind; 18] = [
        Kind::IpSrc,
        Kind::IpDst,
        Kind::IpSrcPort,
        Kind::IpDstPort,
        Kind::Ip,
        Kind::Domain,
        Kind::Hostname,
        Kind::DomainIp,
        Kind::Url,
        Kind::Uri,
        Kind::Ja3,
        Kind::Ja4,
        Kind::Hassh,
        Kind::HasshServer,
        Kind::X509Sha1,
        Kind::X509Sha256,
        Kind::X509Md5,
        Kind::UserAgent,
    ];

    /// The kind of a MISP attribute type, when islet can see it on the wire.
    pub fn from_misp(t: &str) -> Option<Kind> {
        Some(match t {
            "ip-src" => Kind::IpSrc,
            "ip-dst" => Kind::IpDst,
            "ip-src|port" => Kind::IpSrcPort,
            "ip-dst|port" => Kind::IpDstPort,
            "domain" => Kind::Domain,
            "hostname" => Kind::Hostname,
            "domain|ip" => Kind::DomainIp,
            "url" => Kind::Url,
            "uri" => Kind::Uri,
            "ja3-fingerprint-md5" => Kind::Ja3,
            "ja4-fingerprint" | "ja4" => Kind::Ja4,
            "hassh-md5" => Kind::Hassh,
            "hasshserver-md5" => Kind::HasshServer,
            "x509-fingerprint-sha1" => Kind::X509Sha1,
            "x509-fingerprint-sha256" => Kind::X509Sha256,
            "x509-fingerprint-md5" => Kind::X509Md5,
            "user-agent" => Kind::UserAgent,
            _ => return None,
        })
    }

    /// The MISP attribute type name (`ip` for either endpoint, as plain lists have no type).
    pub fn name(self) -> &'static str {
        match self {
            Kind::IpSrc => "ip-src",
            Kind::IpDst => "ip-dst",
            Kind::IpSrcPort => "ip-src|port",
            Kind::IpDstPort => "ip-dst|port",
            Kind::Ip => "ip",
            Kind::Domain => "domain",
            Kind::Hostname => "hostname",
            Kind::DomainIp => "domain|ip",
            Kind::Url => "url",
            Kind::Uri => "uri",
            Kind::Ja3 => "ja3-fingerprint-md5",
            Kind::Ja4 => "ja4",
            Kind::Hassh => "hassh-md5",
            Kind::HasshServer => "hasshserver-md5",
            Kind::X509Sha1 => "x509-fingerprint-sha1",
            Kind::X509Sha256 => "x509-fingerprint-sha256",
            Kind::X509Md5 => "x509-fingerprint-md5",
            Kind::UserAgent => "user-agent",
        }
    }

    /// The stable `alert.signature_id` of a match on this kind (islet's range 9,100,000+).
    pub fn signature_id(self) -> u32 {
        9_100_000
            + match self {
                Kind::IpSrc => 1,
                Kind::IpDst => 2,
                Kind::IpSrcPort => 3,
                Kind::IpDstPort => 4,
                Kind::Ip => 5,
                Kind::Domain => 10,
                Kind::Hostname => 11,
                Kind::DomainIp => 12,
                Kind::Url => 20,
                Kind::Uri => 21,
                Kind::UserAgent => 22,
                Kind::Ja3 => 30,
                Kind::Ja4 => 31,
                Kind::Hassh => 32,
                Kind::HasshServer => 33,
                Kind::X509Sha1 => 40,
                Kind::X509Sha256 => 41,
                Kind::X509Md5 => 42,
            }
    }

    pub(crate) fn is_ip(self) -> bool {
        matches!(
            self,
            Kind::IpSrc | Kind::IpDst | Kind::IpSrcPort | Kind::IpDstPort | Kind::Ip
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an indicator came from: the MISP event (or STIX object, or list) that holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// What holds the indicator: `MISP event`, `STIX indicator` or `list`.
    pub origin: &'static str,
    /// The feed or file name given to the importer.
    pub feed: String,
    pub event_uuid: String,
    pub event_info: String,
    /// MISP `threat_level_id`: 1 high, 2 medium, 3 low, 4 undefined.
    pub threat_level: u8,
    /// Event tags, galaxy clusters as `misp-galaxy:<type>="<value>"`.
    pub tags: Vec<String>,
}

impl Context {
    /// The `tlp:` tag, if any.
    pub fn tlp(&self) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.to_ascii_lowercase().starts_with("tlp:"))
            .map(String::as_str)
    }
}

/// One indicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indicator {
    pub kind: Kind,
    /// The value exactly as the source holds it.
    pub value: String,
    /// Only `to_ids` indicators raise alerts; the others are sightings.
    pub to_ids: bool,
    pub uuid: String,
    /// MISP attribute category (`Network activity`, …).
    pub category: String,
    /// Attribute tags.
    pub tags: Vec<String>,
    /// Index of its [`Context`] in the snapshot.
    pub context: u32,
}

/// Why an entry was not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// File (and, for feeds, event) it came from.
    pub source: String,
    /// Where in the source: a JSON path or a line number.
    pub position: String,
    /// A short stable name (`bad_ip`, `unsupported_pattern`, `bad_json`, …).
    pub reason: &'static str,
    pub detail: String,
}

/// An indicator dropped because a warninglist names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    pub kind: Kind,
    pub value: String,
    /// The warninglist's `name`.
    pub list: String,
}
