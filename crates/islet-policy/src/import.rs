//! Policy files into the IR: islet's TOML (`ir.rs` documents it), Kubernetes `NetworkPolicy`,
//! and Cilium `CiliumNetworkPolicy` / `CiliumClusterwideNetworkPolicy` (YAML or JSON, one or
//! many documents, or a `List`). Syntax errors, invalid CIDRs, selectors, ports and patterns
//! reject the file with its name, line (where the parser knows it) and reason; fields islet
//! cannot honour are listed by name in [`Policy::unsupported`] — nothing is dropped silently.

use crate::ir::{
    Action, Direction, Entity, Glob, HttpMatch, L7, LabelSelector, Namespaces, PathPattern, Peer,
    Policy, PortRange, Requirement, Rule, Subject,
};
use crate::net::Cidr;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Why a policy file or directory was refused. The `Display` text names the file, the line
/// where the parser knows it, and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file or directory could not be read, or a file is above [`MAX_POLICY_BYTES`].
    Read(String),
    /// The text is not TOML, YAML or JSON of the expected shape (file and line).
    Syntax(String),
    /// A rule, selector, peer, port or pattern is invalid (file, entry and reason).
    Invalid(String),
    /// The policy holds more than [`MAX_RULES`] rules, counted up to file `name`.
    TooManyRules { name: String },
    /// The policy asks for a pack islet does not have.
    Pack(crate::packs::PackError),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Read(m) | PolicyError::Syntax(m) | PolicyError::Invalid(m) => {
                f.write_str(m)
            }
            PolicyError::TooManyRules { name } => write!(f, "{name}: more than {MAX_RULES} rules"),
            PolicyError::Pack(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PolicyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PolicyError::Pack(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::packs::PackError> for PolicyError {
    fn from(e: crate::packs::PackError) -> PolicyError {
        PolicyError::Pack(e)
    }
}

/// Bridge for callers that still carry errors as text.
impl From<PolicyError> for String {
    fn from(e: PolicyError) -> String {
        e.to_string()
    }
}

/// Largest policy file read.
pub const MAX_POLICY_BYTES: u64 = 64 << 20;
/// Most rules one policy holds.
pub const MAX_RULES: usize = 1_000_000;
/// The tier Kubernetes and Cilium policies go to.
pub const KUBERNETES_TIER: &str = "default";

/// Load every policy file of a directory (sorted by name; `*.toml`, `*.yaml`, `*.yml`,
/// `*.json`; the bundle's own manifest and signature are skipped), or one file.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let mut files = Vec::new();
    if path.is_dir() {
        let rd = std::fs::read_dir(path)
            .map_err(|e| PolicyError::Read(format!("{}: {e}", path.display())))?;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_file() && is_policy_file(&p) {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut policy = Policy::default();
    for f in &files {
        let name = f.display().to_string();
        let text = crate::files::read_bounded(f, MAX_POLICY_BYTES).map_err(PolicyError::Read)?;
        policy.merge(parse(&name, &text)?);
        if policy.rules.len() > MAX_RULES {
            return Err(PolicyError::TooManyRules { name });
        }
    }
    Ok(crate::packs::apply(policy)?)
}

/// Is this a file [`load`] reads from a bundle directory?
pub fn is_policy_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.')
        && !name.starts_with(crate::bundle::MANIFEST_PREFIX)
        && matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("toml" | "yaml" | "yml" | "json")
        )
}

/// One policy file's text; the format is told by its name and content.
pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
    let mut p = parse_any(name, text)?;
    // A name peer matches a destination by the names DNS answers gave it (Cilium's
    // `toFQDNs`); as the source of an ingress rule it would match nothing: say so.
    for r in &p.rules {
        for peer in &r.peers {
            if let crate::ir::Peer::Fqdn(g) = peer
                && r.direction == crate::ir::Direction::Ingress
            {
                p.unsupported.push(format!(
                    "{}: rule {}: fqdn peer {:?} in an ingress rule matches nothing (names are matched on destinations, for egress)",
                    r.source, r.id, g.text
                ));
            }
        }
    }
    Ok(p)
}

fn parse_any(name: &str, text: &str) -> Result<Policy, PolicyError> {
    if name.ends_with(".toml") {
        return parse_islet(name, text);
    }
    let mut policy = Policy::default();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc)
            .map_err(|e| PolicyError::Syntax(crate::files::yaml_error(name, &e)))?;
        if v.is_null() {
            continue;
        }
        let items: Vec<&Value> = match v.get("items").and_then(Value::as_array) {
            Some(items) => items.iter().collect(),
            None => vec![&v],
        };
        for (i, obj) in items.into_iter().enumerate() {
            let at = if v.get("items").is_some() {
                format!("{name}: items[{i}]")
            } else {
                name.to_string()
            };
            match obj.get("kind").and_then(Value::as_str) {
                Some("NetworkPolicy") => {
                    policy.merge(kubernetes(&at, obj).map_err(PolicyError::Invalid)?)
                }
                Some(k @ ("CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy")) => policy
                    .merge(
                        cilium(&at, obj, k == "CiliumClusterwideNetworkPolicy")
                            .map_err(PolicyError::Invalid)?,
                    ),
                Some(k) => policy
                    .unsupported
                    .push(format!("{at}: kind {k} (not a policy islet reads)")),
                None => {
                    return Err(PolicyError::Invalid(format!(
                        "{at}: no `kind`: not a Kubernetes or Cilium object"
                    )));
                }
            }
        }
    }
    Ok(policy)
}

// ---------------------------------------------------------------------------------------------
// islet's TOML

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IsletFile {
    #[serde(default)]
    tiers: Vec<String>,
    /// Built-in packs to switch on (`hypervisor-management`).
    #[serde(default)]
    packs: Vec<String>,
    #[serde(default)]
    rule: Vec<IsletRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IsletRule {
    id: String,
    tier: Option<String>,
    #[serde(default)]
    priority: i32,
    action: Action,
    direction: Direction,
    subject: IsletSelector,
    peers: Option<Vec<IsletPeer>>,
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default)]
    http: Vec<IsletHttp>,
    #[serde(default)]
    sni: Vec<String>,
    #[serde(default)]
    dns: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IsletSelector {
    namespace: Option<String>,
    workload: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    expressions: Vec<IsletExpr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IsletExpr {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IsletPeer {
    namespace: Option<String>,
    namespace_labels: Option<BTreeMap<String, String>>,
    workload: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    expressions: Vec<IsletExpr>,
    cidr: Option<String>,
    #[serde(default)]
    except: Vec<String>,
    entity: Option<Entity>,
    fqdn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IsletHttp {
    method: Option<String>,
    path: Option<String>,
    path_regex: Option<String>,
    host: Option<String>,
}

fn requirement(key: &str, op: &str, values: Vec<String>) -> Result<Requirement, String> {
    let need_values = |r: Requirement, v: &Vec<String>| {
        if v.is_empty() {
            Err(format!("operator {op} on {key:?} needs values"))
        } else {
            Ok(r)
        }
    };
    match op {
        "In" => need_values(Requirement::In(key.to_string(), values.clone()), &values),
        "NotIn" => need_values(Requirement::NotIn(key.to_string(), values.clone()), &values),
        "Exists" | "DoesNotExist" if !values.is_empty() => {
            Err(format!("operator {op} on {key:?} takes no values"))
        }
        "Exists" => Ok(Requirement::Exists(key.to_string())),
        "DoesNotExist" => Ok(Requirement::DoesNotExist(key.to_string())),
        _ => Err(format!("unknown selector operator {op:?} on {key:?}")),
    }
}

fn islet_labels(
    labels: BTreeMap<String, String>,
    exprs: Vec<IsletExpr>,
) -> Result<LabelSelector, String> {
    let mut requirements = Vec::new();
    for e in exprs {
        requirements.push(requirement(&e.key, &e.operator, e.values)?);
    }
    Ok(LabelSelector {
        labels,
        requirements,
    })
}

fn parse_islet(name: &str, text: &str) -> Result<Policy, PolicyError> {
    let f: IsletFile = toml::from_str(text)
        .map_err(|e| PolicyError::Syntax(crate::files::toml_error(name, text, &e)))?;
    islet_policy(name, f).map_err(PolicyError::Invalid)
}

fn islet_policy(name: &str, f: IsletFile) -> Result<Policy, String> {
    let mut p = Policy::default();
    for t in &f.tiers {
        p.tier(t);
    }
    for n in &f.packs {
        if crate::packs::pack(n).is_none() {
            return Err(format!(
                "{name}: unknown policy pack {n:?} (known: hypervisor-management)"
            ));
        }
    }
    p.packs = f.packs;
    let mut ids = std::collections::HashSet::new();
    for (i, r) in f.rule.into_iter().enumerate() {
        let at = format!("{name}: rule {} ({:?})", i + 1, r.id);
        if !ids.insert(r.id.clone()) {
            return Err(format!("{at}: duplicate rule id"));
        }
        let tier = match &r.tier {
            Some(t) if !f.tiers.is_empty() && !f.tiers.contains(t) => {
                return Err(format!("{at}: tier {t:?} is not in `tiers`"));
            }
            Some(t) => p.tier(t),
            None => p.tier(f.tiers.first().map_or("default", String::as_str)),
        };
        let subject = Subject {
            namespace: r.subject.namespace,
            workload: r.subject.workload,
            labels: islet_labels(r.subject.labels, r.subject.expressions)
                .map_err(|e| format!("{at}: subject: {e}"))?,
        };
        let mut peers = Vec::new();
        for (j, x) in r.peers.unwrap_or_default().into_iter().enumerate() {
            peers.push(islet_peer(x).map_err(|e| format!("{at}: peers[{j}]: {e}"))?);
        }
        let mut ports = Vec::new();
        for x in &r.ports {
            ports.push(PortRange::parse(x).map_err(|e| format!("{at}: {e}"))?);
        }
        let mut l7 = L7::default();
        for h in r.http {
            let path = match (h.path, h.path_regex) {
                (Some(_), Some(_)) => {
                    return Err(format!("{at}: http: give `path` or `path_regex`, not both"));
                }
                (Some(g), None) => Some(PathPattern::glob(&g)),
                (None, Some(x)) => Some(PathPattern::regex(&x)),
                (None, None) => None,
            }
            .transpose()
            .map_err(|e| format!("{at}: {e}"))?;
            let host = h
                .host
                .as_deref()
                .map(Glob::new)
                .transpose()
                .map_err(|e| format!("{at}: {e}"))?;
            l7.http.push(HttpMatch {
                method: h.method,
                path,
                host,
            });
        }
        for s in &r.sni {
            l7.sni.push(Glob::new(s).map_err(|e| format!("{at}: {e}"))?);
        }
        for s in &r.dns {
            l7.dns.push(Glob::new(s).map_err(|e| format!("{at}: {e}"))?);
        }
        p.rules.push(Rule {
            id: r.id,
            tier,
            priority: r.priority,
            subject,
            direction: r.direction,
            peers,
            ports,
            l7,
            action: r.action,
            source: name.to_string(),
        });
    }
    Ok(p)
}

fn islet_peer(x: IsletPeer) -> Result<Peer, String> {
    let workloadish = x.namespace.is_some()
        || x.namespace_labels.is_some()
        || x.workload.is_some()
        || x.labels.is_some()
        || !x.expressions.is_empty();
    let kinds = usize::from(workloadish)
        + usize::from(x.cidr.is_some())
        + usize::from(x.entity.is_some())
        + usize::from(x.fqdn.is_some());
    if kinds != 1 {
        return Err(
            "a peer is one of: workloads (namespace/labels/workload), cidr, entity, fqdn".into(),
        );
    }
    if !x.except.is_empty() && x.cidr.is_none() {
        return Err("`except` needs `cidr`".into());
    }
    if let Some(c) = x.cidr {
        let cidr = Cidr::parse(&c)?;
        let mut except = Vec::new();
        for e in &x.except {
            let e = Cidr::parse(e)?;
            if !e.within(&cidr) {
                return Err(format!("except {e} is not inside {cidr}"));
            }
            except.push(e);
        }
        return Ok(Peer::Cidr { cidr, except });
    }
    if let Some(e) = x.entity {
        return Ok(Peer::Entity(e));
    }
    if let Some(f) = x.fqdn {
        return Ok(Peer::Fqdn(Glob::new(&f)?));
    }
    let namespaces = match (x.namespace, x.namespace_labels) {
        (Some(_), Some(_)) => return Err("give `namespace` or `namespace_labels`, not both".into()),
        (Some(n), None) => Namespaces::Named(n),
        (None, Some(l)) => Namespaces::Selected(LabelSelector {
            labels: l,
            requirements: Vec::new(),
        }),
        (None, None) => Namespaces::Any,
    };
    Ok(Peer::Workloads {
        namespaces,
        labels: islet_labels(x.labels.unwrap_or_default(), x.expressions)?,
        workload: x.workload,
    })
}

// ---------------------------------------------------------------------------------------------
// Kubernetes and Cilium

/// Keys of an object that are not in `known`, as `path.key` names.
fn unknown(at: &str, path: &str, v: &Value, known: &[&str], out: &mut Vec<String>) {
    if let Some(o) = v.as_object() {
        for k in o.keys() {
            if !known.contains(&k.as_str()) {
                out.push(format!("{at}: {path}.{k} is not supported"));
            }
        }
    }
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`).
fn k8s_selector(
    at: &str,
    path: &str,
    v: &Value,
    unsupported: &mut Vec<String>,
) -> Result<LabelSelector, String> {
    if v.is_null() {
        return Ok(LabelSelector::default());
    }
    if !v.is_object() {
        return Err(format!("{at}: {path} is not a label selector"));
    }
    unknown(
        at,
        path,
        v,
        &["matchLabels", "matchExpressions"],
        unsupported,
    );
    let mut labels = BTreeMap::new();
    if let Some(m) = v.get("matchLabels") {
        let m = m
            .as_object()
            .ok_or_else(|| format!("{at}: {path}.matchLabels is not a map"))?;
        for (k, x) in m {
            let x = match x {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("{at}: {path}.matchLabels.{k} is not a string")),
            };
            labels.insert(k.clone(), x);
        }
    }
    let mut requirements = Vec::new();
    for (i, e) in v
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = e["key"]
            .as_str()
            .ok_or_else(|| format!("{at}: {path}.matchExpressions[{i}] has no key"))?;
        let op = e["operator"].as_str().unwrap_or("");
        let values: Vec<String> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        requirements.push(
            requirement(key, op, values)
                .map_err(|m| format!("{at}: {path}.matchExpressions[{i}]: {m}"))?,
        );
    }
    Ok(LabelSelector {
        labels,
        requirements,
    })
}

fn k8s_ports(
    at: &str,
    path: &str,
    v: &Value,
    unsupported: &mut Vec<String>,
) -> Result<Vec<PortRange>, String> {
    let mut out = Vec::new();
    for (i, p) in v.as_array().into_iter().flatten().enumerate() {
        let here = format!("{path}[{i}]");
        unknown(at, &here, p, &["protocol", "port", "endPort"], unsupported);
        let proto = match p["protocol"].as_str().unwrap_or("TCP") {
            "TCP" => 6,
            "UDP" => 17,
            "SCTP" => 132,
            x => {
                return Err(format!(
                    "{at}: {here}.protocol {x:?} is not TCP, UDP or SCTP"
                ));
            }
        };
        let first = match &p["port"] {
            Value::Null => None,
            Value::Number(n) => Some(
                n.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{at}: {here}.port {n} is not a port"))?,
            ),
            Value::String(s) => match s.parse::<u16>() {
                Ok(n) => Some(n),
                Err(_) => {
                    unsupported.push(format!("{at}: {here}.port {s:?}: named ports are not resolved; this port entry matches nothing"));
                    continue;
                }
            },
            _ => return Err(format!("{at}: {here}.port is not a number or name")),
        };
        let last = match &p["endPort"] {
            Value::Null => first,
            Value::Number(n) => Some(
                n.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| format!("{at}: {here}.endPort {n} is not a port"))?,
            ),
            _ => return Err(format!("{at}: {here}.endPort is not a number")),
        };
        let (first, last) = match (first, last) {
            (None, _) => (0, u16::MAX),
            (Some(f), Some(l)) if l >= f => (f, l),
            (Some(f), Some(l)) => {
                return Err(format!("{at}: {here}: endPort {l} is below port {f}"));
            }
            (Some(f), None) => (f, f),
        };
        out.push(PortRange {
            proto: Some(proto),
            first,
            last,
        });
    }
    Ok(out)
}

/// A rule that selects its subject in a direction and allows nothing (Kubernetes
/// `policyTypes` without rules, Cilium `ingress: []`): it isolates the subject.
fn isolate(id: String, tier: u32, subject: &Subject, direction: Direction, source: &str) -> Rule {
    Rule {
        id,
        tier,
        priority: 0,
        subject: subject.clone(),
        direction,
        peers: vec![Peer::Nothing],
        ports: Vec::new(),
        l7: L7::default(),
        action: Action::Allow,
        source: source.to_string(),
    }
}

fn kubernetes(at: &str, obj: &Value) -> Result<Policy, String> {
    let mut p = Policy::default();
    let tier = p.tier(KUBERNETES_TIER);
    let md = &obj["metadata"];
    let ns = md["namespace"].as_str().unwrap_or("default").to_string();
    let name = md["name"]
        .as_str()
        .ok_or_else(|| format!("{at}: NetworkPolicy without metadata.name"))?;
    let at = format!("{at} (NetworkPolicy {ns}/{name})");
    let spec = &obj["spec"];
    unknown(
        &at,
        "spec",
        spec,
        &["podSelector", "policyTypes", "ingress", "egress"],
        &mut p.unsupported,
    );
    let subject = Subject {
        namespace: Some(ns.clone()),
        workload: None,
        labels: k8s_selector(
            &at,
            "spec.podSelector",
            &spec["podSelector"],
            &mut p.unsupported,
        )?,
    };
    let types: Vec<&str> = match spec["policyTypes"].as_array() {
        Some(t) => t.iter().filter_map(Value::as_str).collect(),
        None if spec.get("egress").is_some() => vec!["Ingress", "Egress"],
        None => vec!["Ingress"],
    };
    for t in types {
        let (dir, key, peer_key) = match t {
            "Ingress" => (Direction::Ingress, "ingress", "from"),
            "Egress" => (Direction::Egress, "egress", "to"),
            x => {
                return Err(format!(
                    "{at}: spec.policyTypes: {x:?} is not Ingress or Egress"
                ));
            }
        };
        let rules = spec[key].as_array().cloned().unwrap_or_default();
        if rules.is_empty() {
            p.rules.push(isolate(
                format!("{ns}/{name}#{key}"),
                tier,
                &subject,
                dir,
                &at,
            ));
        }
        for (i, r) in rules.iter().enumerate() {
            let path = format!("spec.{key}[{i}]");
            unknown(&at, &path, r, &[peer_key, "ports"], &mut p.unsupported);
            let mut peers = Vec::new();
            for (j, x) in r[peer_key].as_array().into_iter().flatten().enumerate() {
                let pp = format!("{path}.{peer_key}[{j}]");
                unknown(
                    &at,
                    &pp,
                    x,
                    &["podSelector", "namespaceSelector", "ipBlock"],
                    &mut p.unsupported,
                );
                if let Some(b) = x.get("ipBlock") {
                    unknown(
                        &at,
                        &format!("{pp}.ipBlock"),
                        b,
                        &["cidr", "except"],
                        &mut p.unsupported,
                    );
                    let cidr = Cidr::parse(b["cidr"].as_str().unwrap_or(""))
                        .map_err(|e| format!("{at}: {pp}.ipBlock.cidr: {e}"))?;
                    let mut except = Vec::new();
                    for e in b["except"].as_array().into_iter().flatten() {
                        let e = Cidr::parse(e.as_str().unwrap_or(""))
                            .map_err(|m| format!("{at}: {pp}.ipBlock.except: {m}"))?;
                        if !e.within(&cidr) {
                            return Err(format!(
                                "{at}: {pp}.ipBlock.except: {e} is not inside {cidr}"
                            ));
                        }
                        except.push(e);
                    }
                    peers.push(Peer::Cidr { cidr, except });
                    continue;
                }
                let pods = k8s_selector(
                    &at,
                    &format!("{pp}.podSelector"),
                    &x["podSelector"],
                    &mut p.unsupported,
                )?;
                let namespaces = match x.get("namespaceSelector") {
                    Some(s) => Namespaces::Selected(k8s_selector(
                        &at,
                        &format!("{pp}.namespaceSelector"),
                        s,
                        &mut p.unsupported,
                    )?),
                    None => Namespaces::Same,
                };
                peers.push(Peer::Workloads {
                    namespaces,
                    labels: pods,
                    workload: None,
                });
            }
            let ports = k8s_ports(
                &at,
                &format!("{path}.ports"),
                &r["ports"],
                &mut p.unsupported,
            )?;
            if r["ports"].as_array().is_some_and(|a| !a.is_empty()) && ports.is_empty() {
                // Every port entry was a named port: the rule matches nothing.
                continue;
            }
            p.rules.push(Rule {
                id: format!("{ns}/{name}#{key}[{i}]"),
                tier,
                priority: 0,
                subject: subject.clone(),
                direction: dir,
                peers,
                ports,
                l7: L7::default(),
                action: Action::Allow,
                source: at.clone(),
            });
        }
    }
    Ok(p)
}

/// Cilium label keys may carry a source prefix (`k8s:app`); namespace is
/// `io.kubernetes.pod.namespace`.
const CILIUM_NS: &str = "io.kubernetes.pod.namespace";

fn cilium_selector(
    at: &str,
    path: &str,
    v: &Value,
    unsupported: &mut Vec<String>,
) -> Result<(LabelSelector, Option<String>), String> {
    let mut sel = k8s_selector(at, path, v, unsupported)?;
    let strip = |k: &str| {
        k.strip_prefix("k8s:")
            .or_else(|| k.strip_prefix("any:"))
            .unwrap_or(k)
            .to_string()
    };
    sel.labels = sel
        .labels
        .into_iter()
        .map(|(k, v)| (strip(&k), v))
        .collect();
    let ns = sel.labels.remove(CILIUM_NS);
    Ok((sel, ns))
}

fn cilium(at: &str, obj: &Value, clusterwide: bool) -> Result<Policy, String> {
    let mut p = Policy::default();
    let tier = p.tier(KUBERNETES_TIER);
    let md = &obj["metadata"];
    let ns = if clusterwide {
        None
    } else {
        Some(md["namespace"].as_str().unwrap_or("default").to_string())
    };
    let name = md["name"]
        .as_str()
        .ok_or_else(|| format!("{at}: Cilium policy without metadata.name"))?;
    let at = format!(
        "{at} ({}{name})",
        ns.as_ref().map(|n| format!("{n}/")).unwrap_or_default()
    );
    let specs: Vec<&Value> = match (obj.get("spec"), obj.get("specs").and_then(Value::as_array)) {
        (Some(s), _) => vec![s],
        (None, Some(v)) => v.iter().collect(),
        (None, None) => return Err(format!("{at}: no spec")),
    };
    for (si, spec) in specs.into_iter().enumerate() {
        let sp = format!("spec[{si}]");
        unknown(
            &at,
            &sp,
            spec,
            &[
                "endpointSelector",
                "ingress",
                "egress",
                "ingressDeny",
                "egressDeny",
                "description",
                "nodeSelector",
            ],
            &mut p.unsupported,
        );
        if spec.get("nodeSelector").is_some() {
            p.unsupported.push(format!(
                "{at}: {sp}.nodeSelector (host policies) is not supported"
            ));
            continue;
        }
        let (labels, sel_ns) = cilium_selector(
            &at,
            &format!("{sp}.endpointSelector"),
            &spec["endpointSelector"],
            &mut p.unsupported,
        )?;
        let subject = Subject {
            namespace: sel_ns.or(ns.clone()),
            workload: None,
            labels,
        };
        for (key, dir, action) in [
            ("ingress", Direction::Ingress, Action::Allow),
            ("egress", Direction::Egress, Action::Allow),
            ("ingressDeny", Direction::Ingress, Action::Deny),
            ("egressDeny", Direction::Egress, Action::Deny),
        ] {
            let Some(rules) = spec.get(key).and_then(Value::as_array) else {
                continue;
            };
            if rules.is_empty() && action == Action::Allow {
                p.rules
                    .push(isolate(format!("{name}#{key}"), tier, &subject, dir, &at));
            }
            let (eps, cidr, cidrset, ents, fqdns) = match dir {
                Direction::Ingress => (
                    "fromEndpoints",
                    "fromCIDR",
                    "fromCIDRSet",
                    "fromEntities",
                    "",
                ),
                Direction::Egress => (
                    "toEndpoints",
                    "toCIDR",
                    "toCIDRSet",
                    "toEntities",
                    "toFQDNs",
                ),
            };
            for (i, r) in rules.iter().enumerate() {
                let path = format!("{sp}.{key}[{i}]");
                let mut known = vec![eps, cidr, cidrset, ents, "toPorts"];
                if !fqdns.is_empty() {
                    known.push(fqdns);
                }
                unknown(&at, &path, r, &known, &mut p.unsupported);
                let mut peers = Vec::new();
                for (j, e) in r[eps].as_array().into_iter().flatten().enumerate() {
                    let (labels, pns) =
                        cilium_selector(&at, &format!("{path}.{eps}[{j}]"), e, &mut p.unsupported)?;
                    // An endpoint selector without a namespace label selects the policy's own
                    // namespace (namespaced policies) or any (clusterwide).
                    let namespaces = match (pns, &ns) {
                        (Some(n), _) => Namespaces::Named(n),
                        (None, Some(_)) => Namespaces::Same,
                        (None, None) => Namespaces::Any,
                    };
                    peers.push(Peer::Workloads {
                        namespaces,
                        labels,
                        workload: None,
                    });
                }
                for c in r[cidr].as_array().into_iter().flatten() {
                    let c = Cidr::parse(c.as_str().unwrap_or(""))
                        .map_err(|e| format!("{at}: {path}.{cidr}: {e}"))?;
                    peers.push(Peer::Cidr {
                        cidr: c,
                        except: Vec::new(),
                    });
                }
                for (j, c) in r[cidrset].as_array().into_iter().flatten().enumerate() {
                    let cp = format!("{path}.{cidrset}[{j}]");
                    unknown(&at, &cp, c, &["cidr", "except"], &mut p.unsupported);
                    let base = Cidr::parse(c["cidr"].as_str().unwrap_or(""))
                        .map_err(|e| format!("{at}: {cp}.cidr: {e}"))?;
                    let mut except = Vec::new();
                    for e in c["except"].as_array().into_iter().flatten() {
                        except.push(
                            Cidr::parse(e.as_str().unwrap_or(""))
                                .map_err(|m| format!("{at}: {cp}.except: {m}"))?,
                        );
                    }
                    peers.push(Peer::Cidr { cidr: base, except });
                }
                for e in r[ents].as_array().into_iter().flatten() {
                    let ent = match e.as_str().unwrap_or("") {
                        "world" => Entity::World,
                        "cluster" => Entity::Cluster,
                        "host" => Entity::Host,
                        "all" => Entity::All,
                        x => {
                            p.unsupported.push(format!("{at}: {path}.{ents}: entity {x:?} is not supported (world, cluster, host, all are)"));
                            continue;
                        }
                    };
                    peers.push(Peer::Entity(ent));
                }
                if !fqdns.is_empty() {
                    for (j, f) in r[fqdns].as_array().into_iter().flatten().enumerate() {
                        let pat = f["matchName"]
                            .as_str()
                            .or(f["matchPattern"].as_str())
                            .ok_or_else(|| {
                                format!(
                                    "{at}: {path}.{fqdns}[{j}]: needs matchName or matchPattern"
                                )
                            })?;
                        peers.push(Peer::Fqdn(
                            Glob::new(pat).map_err(|e| format!("{at}: {e}"))?,
                        ));
                    }
                }
                let mut port_rules: Vec<(Vec<PortRange>, L7)> = Vec::new();
                for (j, tp) in r["toPorts"].as_array().into_iter().flatten().enumerate() {
                    let tpp = format!("{path}.toPorts[{j}]");
                    unknown(&at, &tpp, tp, &["ports", "rules"], &mut p.unsupported);
                    let mut ports = Vec::new();
                    for (k, x) in tp["ports"].as_array().into_iter().flatten().enumerate() {
                        let xp = format!("{tpp}.ports[{k}]");
                        unknown(
                            &at,
                            &xp,
                            x,
                            &["port", "protocol", "endPort"],
                            &mut p.unsupported,
                        );
                        let proto = match x["protocol"].as_str().unwrap_or("ANY") {
                            "TCP" => Some(6),
                            "UDP" => Some(17),
                            "SCTP" => Some(132),
                            "ANY" => None,
                            y => {
                                return Err(format!(
                                    "{at}: {xp}.protocol {y:?} is not TCP, UDP, SCTP or ANY"
                                ));
                            }
                        };
                        let port = match &x["port"] {
                            Value::String(s) => s.parse::<u16>().map_err(|_| {
                                format!("{at}: {xp}.port {s:?} is not a port number")
                            })?,
                            Value::Number(n) => n
                                .as_u64()
                                .and_then(|n| u16::try_from(n).ok())
                                .ok_or_else(|| format!("{at}: {xp}.port is not a port"))?,
                            _ => return Err(format!("{at}: {xp}.port is missing")),
                        };
                        let end = x["endPort"]
                            .as_u64()
                            .and_then(|n| u16::try_from(n).ok())
                            .unwrap_or(port);
                        let (first, last) = if port == 0 {
                            (0, u16::MAX)
                        } else {
                            (port, end.max(port))
                        };
                        ports.push(PortRange { proto, first, last });
                    }
                    let mut l7 = L7::default();
                    let rules = &tp["rules"];
                    unknown(
                        &at,
                        &format!("{tpp}.rules"),
                        rules,
                        &["http", "dns"],
                        &mut p.unsupported,
                    );
                    for (k, h) in rules["http"].as_array().into_iter().flatten().enumerate() {
                        let hp = format!("{tpp}.rules.http[{k}]");
                        unknown(&at, &hp, h, &["method", "path", "host"], &mut p.unsupported);
                        let path_re = h["path"]
                            .as_str()
                            .map(PathPattern::regex)
                            .transpose()
                            .map_err(|e| format!("{at}: {hp}: {e}"))?;
                        let host = h["host"]
                            .as_str()
                            .map(Glob::new)
                            .transpose()
                            .map_err(|e| format!("{at}: {hp}: {e}"))?;
                        l7.http.push(HttpMatch {
                            method: h["method"].as_str().map(str::to_string),
                            path: path_re,
                            host,
                        });
                    }
                    for (k, d) in rules["dns"].as_array().into_iter().flatten().enumerate() {
                        let pat = d["matchName"]
                            .as_str()
                            .or(d["matchPattern"].as_str())
                            .ok_or_else(|| {
                                format!(
                                    "{at}: {tpp}.rules.dns[{k}]: needs matchName or matchPattern"
                                )
                            })?;
                        l7.dns
                            .push(Glob::new(pat).map_err(|e| format!("{at}: {e}"))?);
                    }
                    port_rules.push((ports, l7));
                }
                if port_rules.is_empty() {
                    port_rules.push((Vec::new(), L7::default()));
                }
                if !(r[eps].is_null()
                    && r[cidr].is_null()
                    && r[cidrset].is_null()
                    && r[ents].is_null()
                    && (fqdns.is_empty() || r[fqdns].is_null()))
                    && peers.is_empty()
                {
                    // Peers were given but none could be honoured: match nothing rather than everything.
                    peers.push(Peer::Nothing);
                }
                for (k, (ports, l7)) in port_rules.into_iter().enumerate() {
                    p.rules.push(Rule {
                        id: format!(
                            "{name}#{key}[{i}]{}",
                            if k > 0 {
                                format!(".toPorts[{k}]")
                            } else {
                                String::new()
                            }
                        ),
                        tier,
                        priority: 0,
                        subject: subject.clone(),
                        direction: dir,
                        peers: peers.clone(),
                        ports,
                        l7,
                        action,
                        source: at.clone(),
                    });
                }
            }
        }
    }
    Ok(p)
}
