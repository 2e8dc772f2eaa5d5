//! Workload identities: an inventory maps addresses to workloads (name, kind, namespace,
//! labels, and optionally service account, pod UID, image digest, SPIFFE ID), each binding
//! valid for a time window, so an address reused by a new pod maps to the right workload at
//! each flow's time. Addresses no workload holds get a derived identity: `host` (configured
//! host addresses), `cluster` (inside the cluster CIDRs) or `world`.
//!
//! Two inventory forms: islet's TOML (below), and a Kubernetes pod list as `kubectl get pods
//! -A -o json` (or `-o yaml`) writes it.
//!
//! ```toml
//! cluster_cidrs = ["10.0.0.0/8"]
//! host_cidrs = ["192.168.1.10"]
//! [namespaces.shop]
//! labels = { team = "web" }
//! [[workload]]
//! name = "web-1"
//! kind = "pod"
//! namespace = "shop"
//! labels = { app = "web" }
//! addresses = ["10.0.1.5"]
//! since = "2024-05-01T00:00:00Z"   # optional validity window
//! until = "2024-05-02T00:00:00Z"
//! ```

use crate::net::Cidr;
use crate::time::parse_rfc3339;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// Why an inventory could not be read. The `Display` text names the file, the entry and the
/// line where known.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InventoryError {
    /// The file could not be read, or is above [`MAX_INVENTORY_BYTES`]; the text names it.
    Read(String),
    /// The text is not TOML, YAML or JSON of the expected shape; the text names the file and
    /// the line.
    Syntax(String),
    /// A Kubernetes document with neither `items` nor `kind: Pod`.
    NotPodList { name: String },
    /// More than [`MAX_WORKLOADS`] workloads (`what` is "workloads" or "pods").
    TooMany { name: String, what: &'static str },
    /// A pod without `metadata.name`.
    PodWithoutName { at: String },
    /// An address or prefix that does not parse; `at` names the file and entry.
    Address {
        at: String,
        source: crate::net::CidrError,
    },
    /// A time that does not parse; `at` names the file, entry and field.
    Time {
        at: String,
        source: crate::time::TimeError,
    },
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InventoryError::Read(m) | InventoryError::Syntax(m) => f.write_str(m),
            InventoryError::NotPodList { name } => {
                write!(f, "{name}: not a pod list (no `items`) and not a Pod")
            }
            InventoryError::TooMany { name, what } => {
                write!(f, "{name}: more than {MAX_WORKLOADS} {what}")
            }
            InventoryError::PodWithoutName { at } => write!(f, "{at}: pod without metadata.name"),
            InventoryError::Address { at, source } => write!(f, "{at}: {source}"),
            InventoryError::Time { at, source } => write!(f, "{at}: {source}"),
        }
    }
}

impl std::error::Error for InventoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InventoryError::Address { source, .. } => Some(source),
            InventoryError::Time { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Bridge for callers that still carry errors as text.
impl From<InventoryError> for String {
    fn from(e: InventoryError) -> String {
        e.to_string()
    }
}

/// Most workloads one inventory holds.
pub const MAX_WORKLOADS: usize = 1_000_000;
/// Largest inventory file read.
pub const MAX_INVENTORY_BYTES: u64 = 512 << 20;

/// What a workload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    Pod,
    Vm,
    Host,
    Service,
    External,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "pod",
            WorkloadKind::Vm => "vm",
            WorkloadKind::Host => "host",
            WorkloadKind::Service => "service",
            WorkloadKind::External => "external",
        }
    }
}

/// One workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub kind: WorkloadKind,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: Option<String>,
    pub pod_uid: Option<String>,
    pub image: Option<String>,
    pub spiffe_id: Option<String>,
}

/// Who an address is at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A workload of the inventory (its index).
    Workload(u32),
    /// One of the configured host addresses.
    Host,
    /// Inside a cluster CIDR, held by no known workload.
    Cluster,
    /// Anything else.
    World,
}

/// An address bound to a workload for `[from, until)` (Unix ns).
#[derive(Clone, Copy, Debug)]
struct Binding {
    cidr: Cidr,
    workload: u32,
    from: i64,
    until: i64,
}

/// An address's bindings: one inline, or `count` of them from `start` in `exact_many`.
#[derive(Clone, Copy, Debug)]
struct Exact {
    workload: u32,
    count: u32,
    start: u32,
    from: i64,
    until: i64,
}

/// Workloads and where they are.
#[derive(Debug, Default)]
pub struct Inventory {
    pub workloads: Vec<Workload>,
    /// Namespace labels (each namespace also has `kubernetes.io/metadata.name`).
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub cluster: Vec<Cidr>,
    pub hosts: Vec<Cidr>,
    bindings: Vec<Binding>,
    /// Host bindings by address: the only one inline (one probe resolves most addresses),
    /// or where several are listed in `exact_many`.
    exact: hashbrown::HashMap<IpAddr, Exact>,
    exact_many: Vec<u32>,
    /// Prefix bindings, longest first.
    ranges: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlInventory {
    #[serde(default)]
    cluster_cidrs: Vec<String>,
    #[serde(default)]
    host_cidrs: Vec<String>,
    #[serde(default)]
    namespaces: BTreeMap<String, TomlNamespace>,
    #[serde(default)]
    workload: Vec<TomlWorkload>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlNamespace {
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlWorkload {
    name: String,
    kind: WorkloadKind,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    addresses: Vec<String>,
    since: Option<String>,
    until: Option<String>,
    service_account: Option<String>,
    pod_uid: Option<String>,
    image: Option<String>,
    spiffe_id: Option<String>,
}

impl Inventory {
    /// Read an inventory file: a Kubernetes pod list (JSON or YAML with `items` or `kind:
    /// Pod`) or islet's TOML. Errors name the file, the line where known, and the reason.
    pub fn from_path(path: &std::path::Path) -> Result<Inventory, InventoryError> {
        let text =
            crate::files::read_bounded(path, MAX_INVENTORY_BYTES).map_err(InventoryError::Read)?;
        Inventory::from_text(&path.display().to_string(), &text)
    }

    pub fn from_text(name: &str, text: &str) -> Result<Inventory, InventoryError> {
        let t = text.trim_start();
        let kube = t.starts_with('{')
            || t.starts_with("apiVersion")
            || t.starts_with("items")
            || t.starts_with("kind");
        if kube {
            Inventory::from_kubernetes(name, text)
        } else {
            Inventory::from_toml(name, text)
        }
    }

    /// islet's TOML inventory.
    pub fn from_toml(name: &str, text: &str) -> Result<Inventory, InventoryError> {
        let doc: TomlInventory = toml::from_str(text)
            .map_err(|e| InventoryError::Syntax(crate::files::toml_error(name, text, &e)))?;
        let address = |at: String| move |source| InventoryError::Address { at, source };
        let mut inv = Inventory::default();
        for c in &doc.cluster_cidrs {
            inv.cluster
                .push(Cidr::parse(c).map_err(address(format!("{name}: cluster_cidrs")))?);
        }
        for c in &doc.host_cidrs {
            inv.hosts
                .push(Cidr::parse(c).map_err(address(format!("{name}: host_cidrs")))?);
        }
        for (ns, n) in doc.namespaces {
            inv.namespaces.insert(ns, n.labels);
        }
        if doc.workload.len() > MAX_WORKLOADS {
            return Err(InventoryError::TooMany {
                name: name.to_string(),
                what: "workloads",
            });
        }
        for (i, w) in doc.workload.into_iter().enumerate() {
            let at = format!("{name}: workload {} ({:?})", i + 1, w.name);
            let from = w
                .since
                .as_deref()
                .map(parse_rfc3339)
                .transpose()
                .map_err(|source| InventoryError::Time {
                    at: format!("{at}: since"),
                    source,
                })?;
            let until = w
                .until
                .as_deref()
                .map(parse_rfc3339)
                .transpose()
                .map_err(|source| InventoryError::Time {
                    at: format!("{at}: until"),
                    source,
                })?;
            let mut cidrs = Vec::new();
            for a in &w.addresses {
                cidrs.push(Cidr::parse(a).map_err(address(at.clone()))?);
            }
            inv.add(
                Workload {
                    name: w.name,
                    kind: w.kind,
                    namespace: w.namespace,
                    labels: w.labels,
                    service_account: w.service_account,
                    pod_uid: w.pod_uid,
                    image: w.image,
                    spiffe_id: w.spiffe_id,
                },
                &cidrs,
                from.unwrap_or(i64::MIN),
                until.unwrap_or(i64::MAX),
            );
        }
        inv.index();
        Ok(inv)
    }

    /// A Kubernetes pod list (`kubectl get pods -A -o json|yaml`), or one pod. A pod's
    /// addresses (`status.podIPs`, else `status.podIP`) are its own from `creationTimestamp`
    /// until `deletionTimestamp`; host-network pods (which share their node's address) are
    /// skipped.
    pub fn from_kubernetes(name: &str, text: &str) -> Result<Inventory, InventoryError> {
        let v: Value = serde_yaml::from_str(text)
            .map_err(|e| InventoryError::Syntax(crate::files::yaml_error(name, &e)))?;
        let pods: Vec<&Value> = match v.get("items").and_then(Value::as_array) {
            Some(items) => items.iter().collect(),
            None if v.get("kind").and_then(Value::as_str) == Some("Pod") => vec![&v],
            None => {
                return Err(InventoryError::NotPodList {
                    name: name.to_string(),
                });
            }
        };
        if pods.len() > MAX_WORKLOADS {
            return Err(InventoryError::TooMany {
                name: name.to_string(),
                what: "pods",
            });
        }
        let mut inv = Inventory::default();
        for (i, p) in pods.into_iter().enumerate() {
            let at = format!("{name}: items[{i}]");
            if p.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k != "Pod")
            {
                continue;
            }
            let md = &p["metadata"];
            let Some(pod_name) = md["name"].as_str() else {
                return Err(InventoryError::PodWithoutName { at });
            };
            if p["spec"]["hostNetwork"].as_bool() == Some(true) {
                continue;
            }
            let mut ips: Vec<&str> = p["status"]["podIPs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["ip"].as_str())
                .collect();
            if ips.is_empty()
                && let Some(ip) = p["status"]["podIP"].as_str()
            {
                ips.push(ip);
            }
            let mut cidrs = Vec::new();
            for ip in ips {
                let c = Cidr::parse(ip).map_err(|source| InventoryError::Address {
                    at: format!("{at} ({pod_name})"),
                    source,
                })?;
                cidrs.push(Cidr::host(match c.v6 {
                    true => IpAddr::V6(c.bits.into()),
                    false => IpAddr::V4(((c.bits >> 96) as u32).into()),
                }));
            }
            let time = |k: &str| -> Result<Option<i64>, InventoryError> {
                md[k]
                    .as_str()
                    .map(parse_rfc3339)
                    .transpose()
                    .map_err(|source| InventoryError::Time {
                        at: format!("{at}: metadata.{k}"),
                        source,
                    })
            };
            let labels: BTreeMap<String, String> = md["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect();
            let image = p["status"]["containerStatuses"]
                .as_array()
                .and_then(|c| c.first())
                .and_then(|c| c["imageID"].as_str().or(c["image"].as_str()))
                .map(str::to_string);
            inv.add(
                Workload {
                    name: pod_name.to_string(),
                    kind: WorkloadKind::Pod,
                    namespace: md["namespace"].as_str().unwrap_or("default").to_string(),
                    labels,
                    service_account: p["spec"]["serviceAccountName"].as_str().map(str::to_string),
                    pod_uid: md["uid"].as_str().map(str::to_string),
                    image,
                    spiffe_id: None,
                },
                &cidrs,
                time("creationTimestamp")?.unwrap_or(i64::MIN),
                time("deletionTimestamp")?.unwrap_or(i64::MAX),
            );
        }
        inv.index();
        Ok(inv)
    }

    fn add(&mut self, w: Workload, cidrs: &[Cidr], from: i64, until: i64) {
        let idx = self.workloads.len() as u32;
        self.workloads.push(w);
        for &cidr in cidrs {
            self.bindings.push(Binding {
                cidr,
                workload: idx,
                from,
                until,
            });
        }
    }

    fn index(&mut self) {
        self.exact.clear();
        self.exact_many.clear();
        self.ranges.clear();
        let mut by_ip: hashbrown::HashMap<IpAddr, Vec<u32>> = hashbrown::HashMap::new();
        for (i, b) in self.bindings.iter().enumerate() {
            let full = if b.cidr.v6 { 128 } else { 32 };
            if b.cidr.len == full {
                let ip = if b.cidr.v6 {
                    IpAddr::V6(b.cidr.bits.into())
                } else {
                    IpAddr::V4(((b.cidr.bits >> 96) as u32).into())
                };
                by_ip.entry(ip).or_default().push(i as u32);
            } else {
                self.ranges.push(i as u32);
            }
        }
        self.exact.reserve(by_ip.len());
        for (ip, v) in by_ip {
            let b = self.bindings[v[0] as usize];
            let e = Exact {
                workload: b.workload,
                count: v.len() as u32,
                start: self.exact_many.len() as u32,
                from: b.from,
                until: b.until,
            };
            if v.len() > 1 {
                self.exact_many.extend_from_slice(&v);
            }
            self.exact.insert(ip, e);
        }
        let b = &self.bindings;
        self.ranges
            .sort_by(|x, y| b[*y as usize].cidr.len.cmp(&b[*x as usize].cidr.len));
    }

    /// The identity of `ip` at `ts_ns`: the workload whose binding holds it then (an exact
    /// address before a prefix; among several, the most recent), else `host`, `cluster` or
    /// `world`.
    pub fn resolve(&self, ip: IpAddr, ts_ns: i64) -> Identity {
        let live = |i: u32| {
            let b = &self.bindings[i as usize];
            (b.from <= ts_ns && ts_ns < b.until).then_some(b)
        };
        if let Some(e) = self.exact.get(&ip) {
            if e.count == 1 {
                if e.from <= ts_ns && ts_ns < e.until {
                    return Identity::Workload(e.workload);
                }
            } else {
                let many = &self.exact_many[e.start as usize..(e.start + e.count) as usize];
                if let Some(b) = many.iter().filter_map(|&i| live(i)).max_by_key(|b| b.from) {
                    return Identity::Workload(b.workload);
                }
            }
        }
        for &i in &self.ranges {
            if let Some(b) = live(i)
                && b.cidr.contains(ip)
            {
                return Identity::Workload(b.workload);
            }
        }
        if self.hosts.iter().any(|c| c.contains(ip)) {
            Identity::Host
        } else if self.cluster.iter().any(|c| c.contains(ip)) {
            Identity::Cluster
        } else {
            Identity::World
        }
    }

    pub fn workload(&self, id: Identity) -> Option<&Workload> {
        match id {
            Identity::Workload(i) => self.workloads.get(i as usize),
            _ => None,
        }
    }

    /// A namespace's labels, with `kubernetes.io/metadata.name` set as Kubernetes does.
    pub fn namespace_label<'a>(&'a self, ns: &'a str, key: &str) -> Option<&'a str> {
        if key == "kubernetes.io/metadata.name" {
            return Some(ns);
        }
        self.namespaces.get(ns)?.get(key).map(String::as_str)
    }

    /// How an identity is written in events: `namespace/name`, or the entity name.
    pub fn describe(&self, id: Identity) -> IdentityName<'_> {
        IdentityName(self, id)
    }
}

/// [`Inventory::describe`].
#[derive(Debug)]
pub struct IdentityName<'a>(&'a Inventory, Identity);

impl fmt::Display for IdentityName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Identity::Workload(_) => match self.0.workload(self.1) {
                Some(w) if w.namespace.is_empty() => f.write_str(&w.name),
                Some(w) => write!(f, "{}/{}", w.namespace, w.name),
                None => f.write_str("unknown"),
            },
            Identity::Host => f.write_str("host"),
            Identity::Cluster => f.write_str("cluster"),
            Identity::World => f.write_str("world"),
        }
    }
}
