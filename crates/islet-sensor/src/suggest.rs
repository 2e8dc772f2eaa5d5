//! `islet policy suggest`: observe traffic and write the least-privilege policy that allows
//! exactly it, identity to identity — in islet's TOML and as Kubernetes NetworkPolicy YAML.
//!
//! Workloads are selected by their labels without the per-pod ones Kubernetes adds
//! (`pod-template-hash`, `controller-revision-hash`, StatefulSet pod names), so a Deployment's
//! pods share one rule; a workload without other labels is selected by name (islet's format)
//! or listed as not expressible (NetworkPolicy). Addresses no workload holds become /32 (/128)
//! CIDR peers. Each destination gets ingress rules and each source workload egress rules, with
//! the protocols and ports seen.

use crate::policy::PolicyRuntime;
use crate::{Judges, Reader, RunError, SensorConfig};
use islet_capture::{CaptureError, PcapFiles};
use islet_event::record::EveRecord;
use islet_policy::identity::{Inventory, Workload};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Labels that name one pod rather than what it is.
const PER_POD_LABELS: [&str; 4] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
];

/// How a workload is selected: namespace, then labels, or its name when it has none.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Sel {
    namespace: String,
    labels: BTreeMap<String, String>,
    name: Option<String>,
}

impl Sel {
    fn of(w: &Workload) -> Sel {
        let labels: BTreeMap<String, String> = w
            .labels
            .iter()
            .filter(|(k, _)| !PER_POD_LABELS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let name = labels.is_empty().then(|| w.name.clone());
        Sel {
            namespace: w.namespace.clone(),
            labels,
            name,
        }
    }

    fn islet(&self) -> String {
        let mut parts = Vec::new();
        if !self.namespace.is_empty() {
            parts.push(format!("namespace = {}", toml_str(&self.namespace)));
        }
        if let Some(n) = &self.name {
            parts.push(format!("workload = {}", toml_str(n)));
        }
        if !self.labels.is_empty() {
            let l: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
                .collect();
            parts.push(format!("labels = {{ {} }}", l.join(", ")));
        }
        format!("{{ {} }}", parts.join(", "))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PeerKey {
    Workload(Sel),
    Address(IpAddr),
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Why no policy could be suggested. The `Display` text is the message users see.
#[derive(Debug)]
#[non_exhaustive]
pub enum SuggestError {
    /// The inventory could not be read or parsed.
    Inventory(String),
    /// A capture could not be opened.
    Capture(CaptureError),
    /// The replay failed part-way.
    Run(RunError),
    /// A file or folder could not be written.
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for SuggestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuggestError::Inventory(m) => f.write_str(m),
            SuggestError::Capture(e) => write!(f, "{e}"),
            SuggestError::Run(e) => write!(f, "{e}"),
            SuggestError::Write { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for SuggestError {}

/// A suggested policy in both forms, and what it was made from.
#[derive(Debug, Clone)]
pub struct Suggestion {
    /// Flow records seen.
    pub flows: u64,
    /// Edges with a workload at the destination (ingress rules) and at the source (egress).
    pub ingress_edges: usize,
    pub egress_edges: usize,
    /// islet's TOML policy.
    pub islet_toml: String,
    /// Kubernetes NetworkPolicy YAML.
    pub kubernetes_yaml: String,
}

impl Suggestion {
    /// Write `suggested.toml` and `suggested-networkpolicy.yaml` into `dir` (made if needed);
    /// their paths.
    pub fn write_to(&self, dir: &Path) -> Result<[PathBuf; 2], SuggestError> {
        let write = |path: PathBuf, text: &str| match std::fs::write(&path, text) {
            Ok(()) => Ok(path),
            Err(error) => Err(SuggestError::Write { path, error }),
        };
        std::fs::create_dir_all(dir).map_err(|error| SuggestError::Write {
            path: dir.to_path_buf(),
            error,
        })?;
        Ok([
            write(dir.join("suggested.toml"), &self.islet_toml)?,
            write(
                dir.join("suggested-networkpolicy.yaml"),
                &self.kubernetes_yaml,
            )?,
        ])
    }
}

/// A flow record's ends as a suggestion needs them.
#[derive(Debug)]
struct FlowView {
    src_identity: Option<String>,
    dest_identity: Option<String>,
    src_ip: Option<IpAddr>,
    dest_ip: Option<IpAddr>,
    proto: String,
    dest_port: u64,
}

/// The one place a suggestion reads its records: a flow record's fields, `None` for any other
/// line.
fn flow_of(line: &[u8]) -> Option<FlowView> {
    let e = EveRecord::decode(line).ok()?;
    if e.event_type != "flow" {
        return None;
    }
    let p = e.verdict();
    let ip = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
    Some(FlowView {
        src_identity: p.and_then(|p| p.src_identity.clone()),
        dest_identity: p.and_then(|p| p.dest_identity.clone()),
        src_ip: ip(&e.src_ip),
        dest_ip: ip(&e.dest_ip),
        proto: e.proto.as_deref().unwrap_or("").to_ascii_lowercase(),
        dest_port: e.dest_port.unwrap_or(0),
    })
}

/// Replay `pcaps` with the workloads of `inventory` and suggest the policy that allows exactly
/// the flows seen between them.
pub fn suggest(inventory: &Path, pcaps: &[PathBuf]) -> Result<Suggestion, SuggestError> {
    let inv = Arc::new(
        Inventory::from_path(inventory).map_err(|e| SuggestError::Inventory(e.to_string()))?,
    );
    // Replay with an empty policy: every flow gets its two identities and nothing is judged.
    let engine = islet_policy::Engine::new(islet_policy::ir::Policy::default(), inv.clone());
    let mut cfg = SensorConfig::default();
    cfg.sensor.workers = 1;
    let mut source = PcapFiles::open(pcaps).map_err(SuggestError::Capture)?;
    let mut out: Vec<u8> = Vec::new();
    let judges = Judges {
        intel: None,
        policy: Some(PolicyRuntime::fixed(engine)),
    };
    Reader::new(&cfg)
        .judges(judges)
        .run(&mut source, &mut out)
        .map_err(SuggestError::Run)?;
    // Events name workloads `namespace/name` (or `name`): back to the workloads.
    let by_name: BTreeMap<String, &Workload> = inv
        .workloads
        .iter()
        .map(|w| {
            let key = if w.namespace.is_empty() {
                w.name.clone()
            } else {
                format!("{}/{}", w.namespace, w.name)
            };
            (key, w)
        })
        .collect();
    // (destination, source) → protocol/port set; and the same by source for egress.
    let mut ingress = Edges::new();
    let mut egress = Edges::new();
    let mut flows = 0u64;
    for f in out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(flow_of)
    {
        flows += 1;
        let w = |n: &Option<String>| n.as_ref().and_then(|n| by_name.get(n)).copied();
        let src = match (w(&f.src_identity), f.src_ip) {
            (Some(w), _) => PeerKey::Workload(Sel::of(w)),
            (None, Some(a)) => PeerKey::Address(a),
            _ => continue,
        };
        let dst = match (w(&f.dest_identity), f.dest_ip) {
            (Some(w), _) => PeerKey::Workload(Sel::of(w)),
            (None, Some(a)) => PeerKey::Address(a),
            _ => continue,
        };
        if let PeerKey::Workload(d) = &dst {
            ingress
                .entry((d.clone(), src.clone()))
                .or_default()
                .insert((f.proto.clone(), f.dest_port));
        }
        if let PeerKey::Workload(s) = &src {
            egress
                .entry((s.clone(), dst))
                .or_default()
                .insert((f.proto, f.dest_port));
        }
    }
    // Every workload of the inventory is isolated: what was not seen is denied.
    let all: BTreeSet<Sel> = inv.workloads.iter().map(Sel::of).collect();
    Ok(Suggestion {
        flows,
        ingress_edges: ingress.len(),
        egress_edges: egress.len(),
        islet_toml: islet_toml(&ingress, &egress, &all),
        kubernetes_yaml: kubernetes_yaml(&ingress, &egress, &all),
    })
}

fn port_spec(proto: &str, port: u64) -> String {
    match proto {
        "tcp" | "udp" | "sctp" => format!("{proto}/{port}"),
        p => p.to_string(),
    }
}

fn peer_islet(p: &PeerKey) -> String {
    match p {
        PeerKey::Workload(s) => s.islet(),
        PeerKey::Address(a) => {
            let len = if a.is_ipv4() { 32 } else { 128 };
            format!("{{ cidr = \"{a}/{len}\" }}")
        }
    }
}

/// Protocols and ports seen on an edge.
type Ports = BTreeSet<(String, u64)>;
type Edges = BTreeMap<(Sel, PeerKey), Ports>;

fn islet_toml(ingress: &Edges, egress: &Edges, all: &BTreeSet<Sel>) -> String {
    let mut t = String::from(
        "# Suggested by `islet policy suggest`: allows exactly the traffic observed; every\n# workload of the inventory denies the rest.\ntiers = [\"suggested\", \"default-deny\"]\n",
    );
    for (i, s) in all.iter().enumerate() {
        for dir in ["ingress", "egress"] {
            let _ = write!(
                t,
                "\n[[rule]]\nid = \"default-deny-{dir}-{}\"\ntier = \"default-deny\"\naction = \"deny\"\ndirection = \"{dir}\"\nsubject = {}\n",
                i + 1,
                s.islet()
            );
        }
    }
    for (dir, edges) in [("ingress", ingress), ("egress", egress)] {
        for (i, ((subject, peer), ports)) in edges.iter().enumerate() {
            let mut ports: Vec<String> = ports
                .iter()
                .map(|(p, n)| toml_str(&port_spec(p, *n)))
                .collect();
            ports.dedup();
            let _ = write!(
                t,
                "\n[[rule]]\nid = \"suggested-{dir}-{}\"\ntier = \"suggested\"\naction = \"allow\"\ndirection = \"{dir}\"\nsubject = {}\npeers = [{}]\nports = [{}]\n",
                i + 1,
                subject.islet(),
                peer_islet(peer),
                ports.join(", ")
            );
        }
    }
    t
}

fn kubernetes_yaml(ingress: &Edges, egress: &Edges, all: &BTreeSet<Sel>) -> String {
    let mut y = String::from(
        "# Suggested by `islet policy suggest`: allows exactly the traffic observed; every\n# namespace of the inventory denies the rest.\n",
    );
    let namespaces: BTreeSet<&str> = all
        .iter()
        .map(|s| {
            if s.namespace.is_empty() {
                "default"
            } else {
                s.namespace.as_str()
            }
        })
        .collect();
    for ns in namespaces {
        let _ = write!(
            y,
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny-all\n  namespace: {}\nspec:\n  podSelector: {{}}\n  policyTypes: [Ingress, Egress]\n",
            yaml_str(ns)
        );
    }
    // One NetworkPolicy per selected workload set and direction.
    for (dir, edges, key, peer_key) in [
        ("Ingress", ingress, "ingress", "from"),
        ("Egress", egress, "egress", "to"),
    ] {
        let mut by_subject: BTreeMap<&Sel, Vec<(&PeerKey, &Ports)>> = BTreeMap::new();
        for ((s, p), ports) in edges {
            by_subject.entry(s).or_default().push((p, ports));
        }
        for (i, (s, peers)) in by_subject.iter().enumerate() {
            if s.name.is_some() {
                let _ = writeln!(
                    y,
                    "# not expressible: {}/{} has no labels to select it by",
                    s.namespace,
                    s.name.as_deref().unwrap_or("")
                );
                continue;
            }
            let ns = if s.namespace.is_empty() {
                "default"
            } else {
                s.namespace.as_str()
            };
            let _ = write!(
                y,
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: suggested-{key}-{}\n  namespace: {}\nspec:\n  podSelector:\n    matchLabels:\n",
                i + 1,
                yaml_str(ns)
            );
            for (k, v) in &s.labels {
                let _ = writeln!(y, "      {}: {}", yaml_str(k), yaml_str(v));
            }
            let _ = write!(y, "  policyTypes: [{dir}]\n  {key}:\n");
            for (p, ports) in peers {
                let named: Vec<&(String, u64)> = ports
                    .iter()
                    .filter(|(proto, _)| matches!(proto.as_str(), "tcp" | "udp" | "sctp"))
                    .collect();
                if named.is_empty() {
                    // An empty `ports` would allow every port: leave the edge out and say so.
                    let _ = writeln!(
                        y,
                        "  # not expressible: {ports:?} to/from {p:?} (NetworkPolicy names TCP, UDP and SCTP ports only)"
                    );
                    continue;
                }
                let peer = match p {
                    PeerKey::Workload(w) if w.name.is_some() => {
                        let _ = writeln!(
                            y,
                            "  # not expressible: peer {}/{} has no labels",
                            w.namespace,
                            w.name.as_deref().unwrap_or("")
                        );
                        continue;
                    }
                    PeerKey::Workload(w) => {
                        let mut t = format!(
                            "    - namespaceSelector:\n        matchLabels:\n          kubernetes.io/metadata.name: {}\n      podSelector:\n        matchLabels:\n",
                            yaml_str(if w.namespace.is_empty() {
                                "default"
                            } else {
                                &w.namespace
                            })
                        );
                        for (k, v) in &w.labels {
                            let _ = writeln!(t, "          {}: {}", yaml_str(k), yaml_str(v));
                        }
                        t
                    }
                    PeerKey::Address(a) => {
                        let len = if a.is_ipv4() { 32 } else { 128 };
                        format!("    - ipBlock:\n        cidr: {a}/{len}\n")
                    }
                };
                let _ = write!(y, "  - {peer_key}:\n{peer}    ports:\n");
                for (proto, port) in named {
                    let _ = writeln!(
                        y,
                        "    - protocol: {}\n      port: {port}",
                        proto.to_ascii_uppercase()
                    );
                }
            }
        }
    }
    y
}
