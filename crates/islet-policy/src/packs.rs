//! Built-in policy packs a policy file switches on with `packs = ["…"]`.
//!
//! `hypervisor-management`: hypervisor management interfaces — OpenSLP 427/tcp+udp (how
//! ESXiArgs spread), ESXi 902/tcp, the vCenter/ESXi web and API 443/tcp, CIM 5989/tcp, IPMI
//! 623/udp — on workloads labelled `islet.io/role: hypervisor-management` are reachable only
//! from workloads labelled `islet.io/admin: "true"`; from anyone else they are denied (and so
//! alerted). Its tiers come before every other tier. Other traffic to those workloads is left
//! to the rest of the policy; a last baseline tier allows what nothing else decided, so the
//! pack alone does not isolate the hosts on other ports.

use crate::ir::Policy;

/// Management ports of the pack.
pub const HYPERVISOR_PORTS: &str =
    r#"["tcp/427", "udp/427", "tcp/902", "tcp/443", "tcp/5989", "udp/623"]"#;

fn hypervisor_front() -> String {
    format!(
        r#"tiers = ["hypervisor-admins", "hypervisor-management"]
[[rule]]
id = "hypervisor-management/admins"
tier = "hypervisor-admins"
action = "allow"
direction = "ingress"
subject = {{ labels = {{ "islet.io/role" = "hypervisor-management" }} }}
peers = [{{ labels = {{ "islet.io/admin" = "true" }} }}]
ports = {HYPERVISOR_PORTS}

[[rule]]
id = "hypervisor-management/deny-others"
tier = "hypervisor-management"
action = "deny"
direction = "ingress"
subject = {{ labels = {{ "islet.io/role" = "hypervisor-management" }} }}
ports = {HYPERVISOR_PORTS}
"#
    )
}

const HYPERVISOR_BASELINE: &str = r#"tiers = ["hypervisor-baseline"]
[[rule]]
id = "hypervisor-management/baseline"
tier = "hypervisor-baseline"
action = "allow"
direction = "ingress"
subject = { labels = { "islet.io/role" = "hypervisor-management" } }
"#;

/// The pack's tiers that go first and last, by name; `None` for an unknown pack.
pub fn pack(name: &str) -> Option<(Policy, Policy)> {
    match name {
        "hypervisor-management" => {
            let front =
                crate::import::parse("pack:hypervisor-management.toml", &hypervisor_front())
                    .ok()?;
            let back = crate::import::parse("pack:hypervisor-management.toml", HYPERVISOR_BASELINE)
                .ok()?;
            Some((front, back))
        }
        _ => None,
    }
}

/// A policy asked for a pack islet does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackError {
    /// No pack of this name.
    Unknown { name: String },
}

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackError::Unknown { name } => write!(
                f,
                "unknown policy pack {name:?} (known: hypervisor-management)"
            ),
        }
    }
}

impl std::error::Error for PackError {}

/// Bridge for callers that still carry errors as text.
impl From<PackError> for String {
    fn from(e: PackError) -> String {
        e.to_string()
    }
}

/// Wrap `policy` with the packs it asks for.
pub fn apply(policy: Policy) -> Result<Policy, PackError> {
    if policy.packs.is_empty() {
        return Ok(policy);
    }
    let mut front = Policy::default();
    let mut back = Policy::default();
    let mut names = policy.packs.clone();
    names.sort();
    names.dedup();
    for n in &names {
        let (f, b) = pack(n).ok_or_else(|| PackError::Unknown { name: n.clone() })?;
        front.merge(f);
        back.merge(b);
    }
    front.merge(policy);
    front.merge(back);
    front.packs = names;
    Ok(front)
}
