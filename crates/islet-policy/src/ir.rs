//! The policy IR every source compiles to: ordered tiers of rules, each with a subject (the
//! workloads it protects), a direction, peers, ports, optional L7 conditions, and an action.
//!
//! islet's own format is TOML:
//!
//! ```toml
//! tiers = ["platform", "app"]          # evaluation order (default: one tier, "default")
//! [[rule]]
//! id = "web-from-lb"
//! tier = "app"
//! action = "allow"                    # allow | deny | audit | pass
//! direction = "ingress"               # ingress | egress
//! subject = { namespace = "shop", labels = { app = "web" } }
//! peers = [{ namespace = "shop", labels = { app = "lb" } },
//!          { cidr = "10.0.0.0/8", except = ["10.1.0.0/16"] },
//!          { entity = "world" }, { fqdn = "*.example.com" }]
//! ports = ["tcp/80", "tcp/8000-8080", "udp/53"]
//! http = [{ method = "GET", path = "/api/*" }]   # L7 conditions (also sni, dns)
//! ```
//!
//! A peer's `namespace` left out means any namespace; a subject's means any namespace.

use crate::net::Cidr;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Why a text is not a port, port range or protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortError {
    /// The protocol is none of tcp, udp, sctp, icmp, any.
    UnknownProtocol { proto: String, text: String },
    /// A port is not a number from 0 to 65535.
    BadPort { port: String, text: String },
    /// The range's last port is below its first.
    Reversed { text: String },
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::UnknownProtocol { proto, text } => {
                write!(f, "unknown protocol {proto:?} in port {text:?}")
            }
            PortError::BadPort { port, text } => write!(f, "bad port {port:?} in {text:?}"),
            PortError::Reversed { text } => write!(f, "port range {text:?} ends before it starts"),
        }
    }
}

impl std::error::Error for PortError {}

/// Bridge for callers that still carry errors as text.
impl From<PortError> for String {
    fn from(e: PortError) -> String {
        e.to_string()
    }
}

/// Why a name or path pattern does not compile.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PatternError {
    /// A name pattern ([`Glob`]).
    Name {
        pattern: String,
        source: regex::Error,
    },
    /// A path glob or regex ([`PathPattern`]).
    Path {
        pattern: String,
        source: regex::Error,
    },
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Name { pattern, source } => write!(f, "pattern {pattern:?}: {source}"),
            PatternError::Path { pattern, source } => write!(f, "path {pattern:?}: {source}"),
        }
    }
}

impl std::error::Error for PatternError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PatternError::Name { source, .. } | PatternError::Path { source, .. } => Some(source),
        }
    }
}

/// Bridge for callers that still carry errors as text.
impl From<PatternError> for String {
    fn from(e: PatternError) -> String {
        e.to_string()
    }
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    /// Log the match; decide nothing.
    Audit,
    /// Stop evaluating this tier; the next tier decides.
    Pass,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Audit => "audit",
            Action::Pass => "pass",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

/// A label requirement (`matchExpressions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// `matchLabels` and `matchExpressions`, all of which must hold; empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub labels: BTreeMap<String, String>,
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.labels
            .iter()
            .all(|(k, v)| get(k).as_deref() == Some(v.as_str()))
            && self.requirements.iter().all(|r| match r {
                Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
                Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
                Requirement::Exists(k) => get(k).is_some(),
                Requirement::DoesNotExist(k) => get(k).is_none(),
            })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.requirements.is_empty()
    }
}

/// The workloads a rule protects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub namespace: Option<String>,
    pub workload: Option<String>,
    pub labels: LabelSelector,
}

/// Which namespaces a workload peer may be in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Namespaces {
    Any,
    /// The subject's own namespace (Kubernetes `podSelector` alone).
    Same,
    Named(String),
    /// Namespaces whose labels match (Kubernetes `namespaceSelector`).
    Selected(LabelSelector),
}

/// Built-in identities of addresses that are not (or not only) workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entity {
    /// Outside the cluster CIDRs and the inventory.
    World,
    /// Any workload, or any address inside the cluster CIDRs.
    Cluster,
    /// The configured host addresses.
    Host,
    /// Everything.
    All,
}

/// The other end of a flow a rule talks about.
#[derive(Clone, Debug)]
pub enum Peer {
    Workloads {
        namespaces: Namespaces,
        labels: LabelSelector,
        workload: Option<String>,
    },
    Cidr {
        cidr: Cidr,
        except: Vec<Cidr>,
    },
    Entity(Entity),
    /// A name, matched against the names DNS answers on the wire gave the peer's address.
    Fqdn(Glob),
    /// Matches nothing: a rule that only selects its subject (Kubernetes `ingress: []`), which
    /// isolates it without allowing anything.
    Nothing,
}

/// A port or port range, for one protocol or any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// IP protocol number; `None` for any.
    pub proto: Option<u8>,
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// `tcp/80`, `udp/8000-8080`, `443`, `sctp`, `tcp`.
    pub fn parse(v: &str) -> Result<PortRange, PortError> {
        let (proto, ports) = match v.split_once('/') {
            Some((p, r)) => (Some(p), Some(r)),
            None if v.chars().all(|c| c.is_ascii_digit() || c == '-') => (None, Some(v)),
            None => (Some(v), None),
        };
        let proto = match proto.map(str::to_ascii_lowercase).as_deref() {
            None | Some("any") => None,
            Some("tcp") => Some(6),
            Some("udp") => Some(17),
            Some("sctp") => Some(132),
            Some("icmp") => Some(1),
            Some(p) => {
                return Err(PortError::UnknownProtocol {
                    proto: p.to_string(),
                    text: v.to_string(),
                });
            }
        };
        let (first, last) = match ports {
            None => (0, u16::MAX),
            Some(r) => {
                let p = |s: &str| {
                    s.trim().parse::<u16>().map_err(|_| PortError::BadPort {
                        port: s.to_string(),
                        text: v.to_string(),
                    })
                };
                match r.split_once('-') {
                    Some((a, b)) => (p(a)?, p(b)?),
                    None => {
                        let x = p(r)?;
                        (x, x)
                    }
                }
            }
        };
        if first > last {
            return Err(PortError::Reversed {
                text: v.to_string(),
            });
        }
        Ok(PortRange { proto, first, last })
    }

    pub fn matches(&self, proto: u8, port: u16) -> bool {
        self.proto.is_none_or(|p| p == proto) && (self.first..=self.last).contains(&port)
    }
}

/// A name pattern: `*` stands for any run of label characters (one label, as Cilium's
/// `matchPattern`); the pattern `*` alone matches every name. Case-insensitive.
#[derive(Clone, Debug)]
pub struct Glob {
    pub text: String,
    re: regex::Regex,
}

impl Glob {
    pub fn new(p: &str) -> Result<Glob, PatternError> {
        let p = p.trim().trim_end_matches('.').to_ascii_lowercase();
        let body = if p == "*" {
            ".*".to_string()
        } else {
            p.split('*')
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join("[-a-z0-9_]*")
        };
        let re = regex::Regex::new(&format!("^{body}$")).map_err(|source| PatternError::Name {
            pattern: p.clone(),
            source,
        })?;
        Ok(Glob { text: p, re })
    }

    pub fn matches(&self, name: &str) -> bool {
        self.re
            .is_match(&name.trim_end_matches('.').to_ascii_lowercase())
    }
}

/// A path pattern: a glob (`/api/*`, `*` any characters) or an anchored regex.
#[derive(Clone, Debug)]
pub struct PathPattern {
    pub text: String,
    re: regex::Regex,
}

impl PathPattern {
    pub fn glob(p: &str) -> Result<PathPattern, PatternError> {
        let body = p
            .split('*')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join(".*");
        PathPattern::regex_anchored(p, &format!("^{body}$"))
    }

    pub fn regex(p: &str) -> Result<PathPattern, PatternError> {
        PathPattern::regex_anchored(p, &format!("^(?:{p})$"))
    }

    fn regex_anchored(text: &str, re: &str) -> Result<PathPattern, PatternError> {
        let re = regex::RegexBuilder::new(re)
            .size_limit(1 << 20)
            .build()
            .map_err(|source| PatternError::Path {
                pattern: text.to_string(),
                source,
            })?;
        Ok(PathPattern {
            text: text.to_string(),
            re,
        })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.re.is_match(path)
    }
}

/// One HTTP condition: all its given fields must hold.
#[derive(Clone, Debug, Default)]
pub struct HttpMatch {
    pub method: Option<String>,
    pub path: Option<PathPattern>,
    pub host: Option<Glob>,
}

/// L7 conditions; a rule with any holds only for traffic whose metadata matches one of them.
#[derive(Clone, Debug, Default)]
pub struct L7 {
    pub http: Vec<HttpMatch>,
    pub sni: Vec<Glob>,
    pub dns: Vec<Glob>,
}

impl L7 {
    pub fn is_empty(&self) -> bool {
        self.http.is_empty() && self.sni.is_empty() && self.dns.is_empty()
    }
}

/// One rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    /// Index into [`Policy::tiers`].
    pub tier: u32,
    /// Lower first within a tier (ties: file order).
    pub priority: i32,
    pub subject: Subject,
    pub direction: Direction,
    /// Empty: any peer.
    pub peers: Vec<Peer>,
    /// Empty: any port and protocol.
    pub ports: Vec<PortRange>,
    pub l7: L7,
    pub action: Action,
    /// The file it came from.
    pub source: String,
}

/// A compiled policy: tiers in evaluation order, rules, and what import had to say.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub tiers: Vec<String>,
    pub rules: Vec<Rule>,
    /// Fields or constructs that could not be honoured, by name, with their file.
    pub unsupported: Vec<String>,
    /// Built-in packs the policy switches on (`packs.rs`).
    pub packs: Vec<String>,
}

impl Policy {
    /// The tier's index, added at the end if new.
    pub fn tier(&mut self, name: &str) -> u32 {
        match self.tiers.iter().position(|t| t == name) {
            Some(i) => i as u32,
            None => {
                self.tiers.push(name.to_string());
                (self.tiers.len() - 1) as u32
            }
        }
    }

    /// Add another policy's tiers (in order, after this one's) and rules.
    pub fn merge(&mut self, other: Policy) {
        // Tiers first, in the other policy's declared order (not the order its rules name
        // them in).
        for t in &other.tiers {
            self.tier(t);
        }
        for mut r in other.rules {
            r.tier = self.tier(&other.tiers[r.tier as usize]);
            self.rules.push(r);
        }
        self.unsupported.extend(other.unsupported);
        self.packs.extend(other.packs);
    }
}
