//! `islet policy …`: keys, signing and verification of policy bundles, and checking and
//! showing policies.

use crate::Failure;
use crate::cli::{
    PolicyCheckArgs, PolicyKeygenArgs, PolicyShowArgs, PolicySignArgs, PolicySimulateArgs,
    PolicyVerifyArgs,
};
use islet_policy::bundle;
use islet_policy::engine::dir_name;
use islet_policy::ir::{Namespaces, Peer, Policy, Rule};
use islet_policy::state::{Outcome, State};
use islet_policy::{Inventory, import};
use std::path::PathBuf;

/// Wall-clock now, Unix ns (bundle validity is checked against the real time).
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn pinned_keys(paths: &[PathBuf]) -> Result<Vec<ed25519_dalek::VerifyingKey>, Failure> {
    paths
        .iter()
        .map(|p| bundle::read_public_key(p).map_err(Failure::Input))
        .collect()
}

pub(crate) fn keygen(a: &PolicyKeygenArgs) -> Result<(), Failure> {
    let pk = bundle::keygen(&a.out).map_err(Failure::Input)?;
    println!(
        "wrote {} and {} (key id {})",
        a.out.join("policy.key").display(),
        a.out.join("policy.pub").display(),
        bundle::key_id(&pk)
    );
    Ok(())
}

pub(crate) fn sign(a: &PolicySignArgs) -> Result<(), Failure> {
    let key = bundle::read_signing_key(&a.key).map_err(Failure::Input)?;
    let now = now_ns();
    let parse = |s: &Option<String>, default: i64| -> Result<i64, Failure> {
        match s {
            Some(t) => islet_policy::time::parse_rfc3339(t).map_err(Failure::Input),
            None => Ok(default),
        }
    };
    let nb = parse(&a.not_before, now)?;
    let na = parse(
        &a.not_after,
        nb.saturating_add(i64::from(a.valid_days).saturating_mul(86_400 * 1_000_000_000)),
    )?;
    let info = bundle::sign(&a.bundle, &key, a.version, nb, na)
        .map_err(|e| Failure::Input(e.to_string()))?;
    println!(
        "signed {}: version {}, valid {} to {}, manifest sha256 {}, key {}",
        a.bundle.display(),
        info.version,
        islet_policy::time::format_rfc3339(nb),
        islet_policy::time::format_rfc3339(na),
        info.hash,
        info.key_id
    );
    Ok(())
}

pub(crate) fn verify(a: &PolicyVerifyArgs) -> Result<(), Failure> {
    let keys = pinned_keys(&a.pubkeys)?;
    let now = now_ns();
    let bad = |e: bundle::BundleError| Failure::Input(e.to_string());
    match &a.state {
        None => {
            // Verified as it would be loaded: every listed file read, hashed and parsed.
            let v = bundle::verify_bundle(&a.bundle, &keys, now, None).map_err(bad)?;
            v.policy().map_err(bad)?;
            println!(
                "valid: version {}, manifest sha256 {}, signed by key {}",
                v.info.version, v.info.hash, v.info.key_id
            );
            Ok(())
        }
        Some(dir) => match State::new(dir).load(&a.bundle, &keys, now) {
            Outcome::Accepted(v) => {
                println!(
                    "valid and now active: version {}, manifest sha256 {}, signed by key {}",
                    v.info.version, v.info.hash, v.info.key_id
                );
                Ok(())
            }
            Outcome::Rejected { reason, active } => Err(Failure::Input(format!(
                "policy bundle rejected: {reason}{}",
                keeps(active.as_ref())
            ))),
        },
    }
}

/// What stays in force after a rejection.
fn keeps(active: Option<&bundle::Verified>) -> String {
    match active {
        Some(v) => format!(
            "; the active bundle (version {}, sha256 {}) stays in force",
            v.info.version, v.info.hash
        ),
        None => "; no bundle is active".to_string(),
    }
}

pub(crate) fn check(a: &PolicyCheckArgs) -> Result<(), Failure> {
    let p = import::load(&a.policy).map_err(Failure::Input)?;
    println!(
        "{}: {} rules in {} tiers ({})",
        a.policy.display(),
        p.rules.len(),
        p.tiers.len(),
        p.tiers.join(", ")
    );
    let mut warnings = 0;
    for u in &p.unsupported {
        println!("warning: {u}");
        warnings += 1;
    }
    if let Some(inv) = &a.inventory {
        let inv = Inventory::from_path(inv).map_err(Failure::Input)?;
        for r in &p.rules {
            let any = inv.workloads.iter().any(|w| {
                r.subject
                    .namespace
                    .as_ref()
                    .is_none_or(|n| *n == w.namespace)
                    && r.subject.workload.as_ref().is_none_or(|n| *n == w.name)
                    && r.subject.labels.matches(&|k| w.labels.get(k).cloned())
            });
            if !any {
                println!(
                    "warning: rule {} ({}) selects no workload of the inventory",
                    r.id, r.source
                );
                warnings += 1;
            }
        }
    }
    for (i, x) in p.rules.iter().enumerate() {
        for y in &p.rules[i + 1..] {
            if contradict(x, y) {
                println!(
                    "warning: rules {} ({}) and {} ({}) match the same traffic with {} and {}; {} wins",
                    x.id,
                    x.action.name(),
                    y.id,
                    y.action.name(),
                    x.action.name(),
                    y.action.name(),
                    if x.action == islet_policy::Action::Deny {
                        x.id.as_str()
                    } else {
                        y.id.as_str()
                    }
                );
                warnings += 1;
            }
        }
    }
    println!("{warnings} warnings");
    Ok(())
}

/// Same tier, direction, subject, peers and ports, one allows and the other denies.
fn contradict(x: &Rule, y: &Rule) -> bool {
    use islet_policy::Action::{Allow, Deny};
    matches!((x.action, y.action), (Allow, Deny) | (Deny, Allow))
        && x.tier == y.tier
        && x.direction == y.direction
        && x.subject == y.subject
        && x.ports == y.ports
        && format!("{:?}", x.peers) == format!("{:?}", y.peers)
        && x.l7.is_empty()
        && y.l7.is_empty()
}

pub(crate) fn show(a: &PolicyShowArgs) -> Result<(), Failure> {
    let p = import::load(&a.policy).map_err(Failure::Input)?;
    if let Ok(m) = std::fs::read(a.policy.join(bundle::MANIFEST)) {
        if let Ok(m) = serde_json::from_slice::<bundle::Manifest>(&m) {
            println!(
                "bundle version {}, valid {} to {}, {} files (signature not checked here: use `islet policy verify`)",
                m.version,
                m.not_before,
                m.not_after,
                m.files.len()
            );
        }
    } else {
        println!("unsigned policy");
    }
    print_rules(&p);
    Ok(())
}

fn print_rules(p: &Policy) {
    for (t, tier) in p.tiers.iter().enumerate() {
        println!("tier {tier}:");
        for r in p.rules.iter().filter(|r| r.tier as usize == t) {
            let subject = format!(
                "{}{}{}",
                r.subject
                    .namespace
                    .as_deref()
                    .map(|n| format!("ns={n} "))
                    .unwrap_or_default(),
                r.subject
                    .workload
                    .as_deref()
                    .map(|n| format!("name={n} "))
                    .unwrap_or_default(),
                selector(&r.subject.labels)
            );
            let peers: Vec<String> = if r.peers.is_empty() {
                vec!["any".into()]
            } else {
                r.peers.iter().map(peer).collect()
            };
            let ports: Vec<String> = r
                .ports
                .iter()
                .map(|x| {
                    format!(
                        "{}/{}-{}",
                        x.proto.map_or("any".to_string(), |p| p.to_string()),
                        x.first,
                        x.last
                    )
                })
                .collect();
            println!(
                "  {:<40} {:<6} {:<7} subject [{}] peers [{}] ports [{}]{}",
                r.id,
                r.action.name(),
                dir_name(r.direction),
                subject.trim(),
                peers.join(", "),
                if ports.is_empty() {
                    "any".to_string()
                } else {
                    ports.join(", ")
                },
                if r.l7.is_empty() {
                    String::new()
                } else {
                    " (L7 conditions)".into()
                }
            );
        }
    }
}

fn selector(s: &islet_policy::ir::LabelSelector) -> String {
    let mut v: Vec<String> = s.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
    v.extend(s.requirements.iter().map(|r| format!("{r:?}")));
    v.join(",")
}

fn peer(p: &Peer) -> String {
    match p {
        Peer::Workloads {
            namespaces,
            labels,
            workload,
        } => format!(
            "{}{}{}",
            match namespaces {
                Namespaces::Any => String::new(),
                Namespaces::Same => "same-ns ".into(),
                Namespaces::Named(n) => format!("ns={n} "),
                Namespaces::Selected(s) => format!("ns[{}] ", selector(s)),
            },
            workload
                .as_deref()
                .map(|n| format!("name={n} "))
                .unwrap_or_default(),
            selector(labels)
        )
        .trim()
        .to_string(),
        Peer::Cidr { cidr, except } if except.is_empty() => cidr.to_string(),
        Peer::Cidr { cidr, except } => format!(
            "{cidr} except {}",
            except
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Peer::Entity(e) => format!("{e:?}").to_lowercase(),
        Peer::Fqdn(g) => format!("fqdn {}", g.text),
        Peer::Nothing => "nothing".into(),
    }
}

/// How a command loads its policy: `islet read` keeps no state unless told to; `islet run`
/// keeps one by default, so that rollback protection does not depend on a flag.
#[derive(Debug, Default, Clone)]
pub(crate) struct Loading {
    /// The state directory used when a key is pinned and none is given.
    pub default_state: Option<PathBuf>,
    /// Decide, but change no state (`islet run --check-config`).
    pub check_only: bool,
}

/// What `islet read --policy` judges with, and the EVE lines to write before the flows (a
/// bundle refused while the active one stays in force). Fail-closed: with keys pinned, the
/// bundle must verify (or, with a policy state, the active bundle is used and the rejection
/// reported on stderr and as a `policy` event); with none pinned, an unsigned policy is
/// accepted with a warning. The policy is parsed from the bytes that were verified.
pub(crate) fn for_read(
    a: &crate::cli::SensorArgs,
    cfg: &islet_sensor::config::PolicySection,
    how: &Loading,
) -> Result<(Option<islet_sensor::policy::PolicyRuntime>, Vec<u8>), Failure> {
    // The command line overrides `[policy]`; pinned keys add up.
    let policy_state = a
        .policy_state
        .clone()
        .or_else(|| cfg.state_dir.clone())
        .or_else(|| how.default_state.clone());
    let inventory = a.inventory.clone().or_else(|| cfg.inventory.clone());
    let pubkeys: Vec<PathBuf> = cfg.pubkeys.iter().chain(&a.pubkeys).cloned().collect();
    let Some(candidate) = a.policy.as_ref().or(cfg.bundle.as_ref()) else {
        if a.inventory.is_some() || !a.pubkeys.is_empty() || a.policy_state.is_some() {
            return Err(Failure::Input(
                "--inventory, --pubkey and --policy-state need --policy (or [policy] bundle)"
                    .into(),
            ));
        }
        return Ok((None, Vec::new()));
    };
    let mut events = Vec::new();
    let keys = pinned_keys(&pubkeys)?;
    let now = now_ns();
    let bad = |e: bundle::BundleError| Failure::Input(format!("policy bundle rejected: {e}"));
    let (policy, info) = if keys.is_empty() {
        eprintln!(
            "islet: warning: policy: no public key is pinned; {} is used unverified (pin keys with --pubkey)",
            candidate.display()
        );
        (import::load(candidate).map_err(Failure::Input)?, None)
    } else {
        let v = match &policy_state {
            None => {
                eprintln!(
                    "islet: warning: policy: no --policy-state: the bundle's version is not compared with one accepted before, so an older signed bundle (a rollback) cannot be refused; give --policy-state DIR (or [policy] state_dir)"
                );
                bundle::verify_bundle(candidate, &keys, now, None).map_err(bad)?
            }
            Some(st) => {
                let state = State::new(st);
                let outcome = if how.check_only {
                    state.check(candidate, &keys, now)
                } else {
                    state.load(candidate, &keys, now)
                };
                match outcome {
                    Outcome::Accepted(v) => v,
                    Outcome::Rejected {
                        reason,
                        active: Some(v),
                    } => {
                        eprintln!(
                            "islet: policy bundle rejected: {reason}; the active bundle (version {}, sha256 {}) stays in force",
                            v.info.version, v.info.hash
                        );
                        islet_event::alert::write_policy_rejected(
                            &mut events,
                            &islet_event::PolicyRejected {
                                ts_ns: u64::try_from(now).unwrap_or(0),
                                bundle: &candidate.display().to_string(),
                                reason: &reason.to_string(),
                                active_version: v.info.version,
                                active_hash: &v.info.hash,
                            },
                        );
                        v
                    }
                    Outcome::Rejected {
                        reason,
                        active: None,
                    } => {
                        return Err(Failure::Input(format!(
                            "policy bundle rejected: {reason}; no bundle is active"
                        )));
                    }
                }
            }
        };
        // The bytes that were verified are the bytes parsed: the directory is not read again.
        (v.policy().map_err(bad)?, Some(v.info))
    };
    for u in &policy.unsupported {
        eprintln!("islet: warning: policy: {u}");
    }
    let inventory = match &inventory {
        Some(p) => Inventory::from_path(p).map_err(Failure::Input)?,
        None => {
            eprintln!("islet: warning: policy: no --inventory: every address is `world`");
            Inventory::default()
        }
    };
    let mut engine = islet_policy::Engine::new(policy, std::sync::Arc::new(inventory));
    if let Some(i) = info {
        engine.bundle_version = i.version;
        engine.bundle_hash = i.hash;
    }
    if !a.quiet {
        eprintln!(
            "islet: policy: {} rules in {} tiers, {} workloads{}{}",
            engine.policy.rules.len(),
            engine.policy.tiers.len(),
            engine.inventory.workloads.len(),
            if engine.bundle_version > 0 {
                format!(", bundle version {}", engine.bundle_version)
            } else {
                String::new()
            },
            match (&policy_state, keys.is_empty()) {
                (Some(st), false) => format!(", rollback state {}", st.display()),
                _ => String::new(),
            }
        );
    }
    let mut rt = islet_sensor::policy::PolicyRuntime::fixed(engine);
    rt.names_max = cfg.names_max;
    rt.dns_min_ttl = cfg.dns_min_ttl;
    Ok((Some(rt), events))
}

/// An edge by address: source, destination, protocol, destination port.
type EdgeKey = (String, String, String, u64);

/// What a replay saw on an edge: the identities the policy gave its ends, and flows by
/// verdict with one reason each.
#[derive(Default)]
struct EdgeSeen {
    src: String,
    dst: String,
    verdicts: std::collections::BTreeMap<String, (u64, String)>,
}

impl EdgeSeen {
    /// The strictest verdict seen.
    fn worst(&self) -> &str {
        ["deny", "audit"]
            .into_iter()
            .find(|v| self.verdicts.contains_key(*v))
            .unwrap_or("allow")
    }
}

/// Run the captures through the sensor with `policy` (or none) and gather flow verdicts by
/// edge, from the EVE flow events exactly as `islet read --policy` writes them.
fn replay(
    pcaps: &[PathBuf],
    policy: Option<&std::path::Path>,
    inventory: Option<&std::path::Path>,
) -> Result<std::collections::BTreeMap<EdgeKey, EdgeSeen>, Failure> {
    let runtime = match policy {
        Some(p) => {
            let pol = import::load(p).map_err(Failure::Input)?;
            let inv = match inventory {
                Some(i) => Inventory::from_path(i).map_err(Failure::Input)?,
                None => Inventory::default(),
            };
            let e = islet_policy::Engine::new(pol, std::sync::Arc::new(inv));
            Some(islet_sensor::policy::PolicyRuntime::fixed(e))
        }
        None => None,
    };
    let mut cfg = islet_sensor::SensorConfig::default();
    cfg.sensor.workers = 1;
    let mut source =
        islet_capture::PcapFiles::open(pcaps).map_err(|e| Failure::Input(e.to_string()))?;
    let mut out: Vec<u8> = Vec::new();
    let judges = islet_sensor::Judges {
        intel: None,
        policy: runtime,
    };
    islet_sensor::Reader::new(&cfg)
        .judges(judges)
        .run(&mut source, &mut out)
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let mut edges: std::collections::BTreeMap<EdgeKey, EdgeSeen> = Default::default();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(e) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if e["event_type"] != "flow" {
            continue;
        }
        let s = |k: &str| e[k].as_str().unwrap_or("?").to_string();
        let key = (
            s("src_ip"),
            s("dest_ip"),
            s("proto").to_ascii_lowercase(),
            e["dest_port"].as_u64().unwrap_or(0),
        );
        let p = &e["islet"]["policy"];
        let seen = edges.entry(key.clone()).or_default();
        seen.src = p["src_identity"]
            .as_str()
            .map_or(key.0.clone(), str::to_string);
        seen.dst = p["dest_identity"]
            .as_str()
            .map_or(key.1.clone(), str::to_string);
        let verdict = p["verdict"].as_str().unwrap_or("allow").to_string();
        let reason = p["reason"].as_str().unwrap_or("no policy").to_string();
        seen.verdicts.entry(verdict).or_insert((0, reason)).0 += 1;
    }
    Ok(edges)
}

pub(crate) fn simulate(a: &PolicySimulateArgs) -> Result<(), Failure> {
    let cand = replay(&a.pcaps, Some(&a.policy), a.inventory.as_deref())?;
    let base = replay(&a.pcaps, a.baseline.as_deref(), a.inventory.as_deref())?;
    println!(
        "{:<14} {:<30} {:<30} {:<10} {:<18} reason",
        "change", "source", "destination", "port", "flows"
    );
    let (mut denied, mut allowed) = (0u64, 0u64);
    for (key, seen) in &cand {
        let now = seen.worst();
        let before = base.get(key).map_or("allow", EdgeSeen::worst);
        let change = match (before, now) {
            ("deny", "deny") => "unchanged",
            (_, "deny") => {
                denied += 1;
                "newly denied"
            }
            ("deny", _) => {
                allowed += 1;
                "newly allowed"
            }
            _ => "unchanged",
        };
        if change != "unchanged" || a.all {
            let flows: Vec<String> = seen
                .verdicts
                .iter()
                .map(|(v, (n, _))| format!("{v} {n}"))
                .collect();
            let reason = seen.verdicts.get(now).map_or("", |x| x.1.as_str());
            println!(
                "{change:<14} {:<30} {:<30} {:<10} {:<18} {reason}",
                seen.src,
                seen.dst,
                format!("{}/{}", key.2, key.3),
                flows.join(", ")
            );
        }
    }
    println!(
        "{denied} edges newly denied, {allowed} newly allowed, {} edges in all",
        cand.len()
    );
    Ok(())
}
