//! `islet policy …`: keys, signing and verification of policy bundles, and checking and
//! showing policies.

use crate::Failure;
use crate::cli::{
    PolicyCheckArgs, PolicyKeygenArgs, PolicyShowArgs, PolicySignArgs, PolicyVerifyArgs,
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
        nb.saturating_add(i64::from(a.valid_days) * 86_400 * 1_000_000_000),
    )?;
    let info = bundle::sign(&a.bundle, &key, a.version, nb, na).map_err(Failure::Input)?;
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
    match &a.state {
        None => {
            let info = bundle::verify(&a.bundle, &keys, now, None).map_err(Failure::Input)?;
            println!(
                "valid: version {}, manifest sha256 {}, signed by key {}",
                info.version, info.hash, info.key_id
            );
            Ok(())
        }
        Some(dir) => match State::new(dir).load(&a.bundle, &keys, now) {
            Outcome::Accepted(info) => {
                println!(
                    "valid and now active: version {}, manifest sha256 {}, signed by key {}",
                    info.version, info.hash, info.key_id
                );
                Ok(())
            }
            Outcome::Rejected { reason, active } => {
                let keep = match active {
                    Some((_, i)) => format!(
                        "; the active bundle (version {}, sha256 {}) stays in force",
                        i.version, i.hash
                    ),
                    None => "; no bundle is active".to_string(),
                };
                Err(Failure::Input(format!(
                    "policy bundle rejected: {reason}{keep}"
                )))
            }
        },
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
