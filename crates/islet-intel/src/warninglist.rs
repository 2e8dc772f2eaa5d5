//! MISP warninglists (`list.json`): known-benign values — public resolvers, top sites, private
//! ranges — that must not alert. Five match types, as MISP applies them:
//! `cidr` (the value's address inside a listed network), `string` (equal), `substring` (a listed
//! string occurs in the value), `hostname` (the value's host is a listed name or a subdomain of
//! one), `regex` (a listed PCRE-style `/…/flags` pattern matches). Only attribute types named in
//! `matching_attributes` are checked against a list.

use crate::model::Kind;
use crate::normalize::{self, Prefix};
use serde_json::Value;
use std::path::Path;

/// Most entries read from one list.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Longest regex accepted (compiled size is bounded by the regex crate's own limit).
pub const MAX_REGEX: usize = 4096;

#[derive(Debug)]
enum Matcher {
    Cidr(Vec<Prefix>),
    String(hashbrown::HashSet<String>),
    Substring(Vec<String>),
    Hostname(hashbrown::HashSet<String>),
    Regex(Vec<regex::Regex>),
}

/// One loaded warninglist.
#[derive(Debug)]
pub struct Warninglist {
    pub name: String,
    /// MISP attribute types it applies to.
    pub matching_attributes: Vec<String>,
    matcher: Matcher,
    /// Entries that could not be read (bad CIDR, bad regex), counted.
    pub bad_entries: u64,
}

/// Why a list could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListError(pub String);

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ListError {}

/// Why a JSON document is not a usable warninglist.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarninglistError {
    /// No `type` string.
    NoType,
    /// No `list` array.
    NoList,
    /// A `type` islet does not match with.
    UnknownType { kind: String },
}

impl std::fmt::Display for WarninglistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WarninglistError::NoType => f.write_str("no type"),
            WarninglistError::NoList => f.write_str("no list"),
            WarninglistError::UnknownType { kind } => {
                write!(f, "unknown warninglist type {kind:?}")
            }
        }
    }
}

impl std::error::Error for WarninglistError {}

/// Bridge for callers that still carry errors as text.
impl From<WarninglistError> for String {
    fn from(e: WarninglistError) -> String {
        e.to_string()
    }
}

impl Warninglist {
    pub fn load(path: &Path) -> Result<Warninglist, ListError> {
        let text =
            std::fs::read(path).map_err(|e| ListError(format!("{}: {e}", path.display())))?;
        let v: Value = serde_json::from_slice(&text)
            .map_err(|e| ListError(format!("{}: not JSON: {e}", path.display())))?;
        Self::from_json(&v).map_err(|e| ListError(format!("{}: {e}", path.display())))
    }

    /// Is this JSON a warninglist?
    pub fn looks_like(v: &Value) -> bool {
        v.get("list").is_some_and(Value::is_array)
            && v.get("type").is_some_and(Value::is_string)
            && v.get("name").is_some()
    }

    pub fn from_json(v: &Value) -> Result<Warninglist, WarninglistError> {
        let name = v["name"].as_str().unwrap_or("unnamed").to_string();
        let kind = v["type"].as_str().ok_or(WarninglistError::NoType)?;
        let entries: Vec<&str> = v["list"]
            .as_array()
            .ok_or(WarninglistError::NoList)?
            .iter()
            .filter_map(Value::as_str)
            .take(MAX_ENTRIES)
            .collect();
        let matching_attributes = v["matching_attributes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut bad = 0u64;
        let matcher = match kind {
            "cidr" => Matcher::Cidr(
                entries
                    .iter()
                    .filter_map(|e| {
                        let p = Prefix::parse(e);
                        bad += u64::from(p.is_none());
                        p
                    })
                    .collect(),
            ),
            "string" => Matcher::String(entries.iter().map(|e| e.to_ascii_lowercase()).collect()),
            "substring" => {
                Matcher::Substring(entries.iter().map(|e| e.to_ascii_lowercase()).collect())
            }
            "hostname" => Matcher::Hostname(
                entries
                    .iter()
                    .filter_map(|e| normalize::name(e.trim_start_matches('.')))
                    .collect(),
            ),
            "regex" => Matcher::Regex(
                entries
                    .iter()
                    .filter_map(|e| {
                        let r = pcre_like(e);
                        bad += u64::from(r.is_none());
                        r
                    })
                    .collect(),
            ),
            other => {
                return Err(WarninglistError::UnknownType {
                    kind: other.to_string(),
                });
            }
        };
        Ok(Warninglist {
            name,
            matching_attributes,
            matcher,
            bad_entries: bad,
        })
    }

    /// Does this list apply to indicators of this kind? An address from a plain list or
    /// STIX (either endpoint) counts as both `ip-src` and `ip-dst`.
    pub fn applies_to(&self, kind: Kind) -> bool {
        let names: &[&str] = match kind {
            Kind::Ip => &["ip-src", "ip-dst"],
            k => &[k.name()],
        };
        self.matching_attributes
            .iter()
            .any(|a| names.contains(&a.as_str()))
    }

    /// Does the list name this value? `misp_type` decides which part of a composite value
    /// (`domain|ip`, `ip-dst|port`) or of a URL is compared.
    pub fn matches(&self, kind: Kind, value: &str) -> bool {
        let parts: Vec<&str> = match kind {
            Kind::DomainIp | Kind::IpSrcPort | Kind::IpDstPort => value.split('|').collect(),
            _ => vec![value],
        };
        let lower = value.to_ascii_lowercase();
        match &self.matcher {
            Matcher::Cidr(nets) => parts
                .iter()
                .filter_map(|p| Prefix::parse(p))
                .any(|p| nets.iter().any(|n| n.contains(p))),
            Matcher::String(set) => {
                set.contains(&lower)
                    || parts.iter().any(|p| set.contains(&p.to_ascii_lowercase()))
                    || (kind == Kind::Url
                        && normalize::host_of_url(value).is_some_and(|h| set.contains(&h)))
            }
            Matcher::Substring(subs) => subs.iter().any(|s| lower.contains(s.as_str())),
            Matcher::Hostname(names) => {
                let host = match kind {
                    Kind::Url => normalize::host_of_url(value),
                    _ => parts.first().and_then(|p| normalize::name(p)),
                };
                host.is_some_and(|h| suffixes(&h).any(|s| names.contains(s)))
            }
            Matcher::Regex(rs) => rs.iter().any(|r| r.is_match(value)),
        }
    }
}

/// The name and each parent: `a.b.c`, `b.c`, `c`.
pub(crate) fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    std::iter::once(name).chain(name.match_indices('.').map(move |(i, _)| &name[i + 1..]))
}

/// A PCRE-style `/pattern/flags` (MISP's form) or a bare pattern, as a Rust regex.
pub fn pcre_like(e: &str) -> Option<regex::Regex> {
    if e.len() > MAX_REGEX {
        return None;
    }
    let (pat, flags) = match e.strip_prefix('/').and_then(|r| r.rsplit_once('/')) {
        Some((p, f)) if f.chars().all(|c| c.is_ascii_alphabetic()) => (p, f),
        _ => (e, ""),
    };
    regex::RegexBuilder::new(pat)
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .dot_matches_new_line(flags.contains('s'))
        .ignore_whitespace(flags.contains('x'))
        .size_limit(1 << 20)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(kind: &str, entries: &[&str], attrs: &[&str]) -> Warninglist {
        Warninglist::from_json(&json!({
            "name": "t", "type": kind, "list": entries, "matching_attributes": attrs
        }))
        .unwrap()
    }

    #[test]
    fn five_match_types() {
        let c = list("cidr", &["8.8.8.0/24", "2001:4860::/32"], &["ip-dst"]);
        assert!(c.matches(Kind::IpDst, "8.8.8.8"));
        assert!(c.matches(Kind::IpDstPort, "8.8.8.8|53"));
        assert!(c.matches(Kind::IpDst, "2001:4860:4860::8888"));
        assert!(!c.matches(Kind::IpDst, "8.8.9.8"));
        let s = list("string", &["Google.com"], &["domain"]);
        assert!(s.matches(Kind::Domain, "google.com"));
        assert!(!s.matches(Kind::Domain, "mail.google.com"));
        let sub = list("substring", &["amazonaws.com"], &["hostname"]);
        assert!(sub.matches(Kind::Hostname, "s3.eu-west-1.amazonaws.com"));
        let h = list("hostname", &["dyndns.org"], &["domain", "url"]);
        assert!(h.matches(Kind::Domain, "evil.dyndns.org"));
        assert!(h.matches(Kind::Url, "http://evil.DYNDNS.org/x"));
        assert!(!h.matches(Kind::Domain, "notdyndns.org"));
        let r = list("regex", &["/^192\\.168\\./i", "(unbalanced"], &["ip-src"]);
        assert!(r.matches(Kind::IpSrc, "192.168.1.1"));
        assert_eq!(r.bad_entries, 1);
    }
}
