//! The verdict of a flow: both ends resolved to identities at the flow's start, the source's
//! egress rules and the destination's ingress rules evaluated tier by tier, and the answer
//! with its provenance — the deciding rule, or the implicit deny of a selected workload.
//!
//! Semantics (Kubernetes, extended with tiers as Calico and Antrea order them):
//! - a workload selected by any rule of a direction is isolated in that direction: traffic
//!   no rule allows is denied (`implicit-deny`); a workload no rule selects is not isolated;
//! - tiers are evaluated in order; within a tier, a matching `deny` beats a matching `pass`,
//!   which beats a matching `allow`; `pass` and no match hand over to the next tier;
//! - `audit` rules decide nothing; a flow allowed while an audit rule matched is `audit`;
//! - east-west traffic needs the source's egress and the destination's ingress to allow it;
//! - a rule with L7 conditions is provisional at the flow's first packet: an `allow` holds (the
//!   connection is let through so its requests can be judged), a `deny` waits; once L7
//!   metadata arrives the conditions are evaluated and the verdict refined.

use crate::identity::{Identity, Inventory};
use crate::index::Ports;
use crate::ir::{Action, Direction, Entity, L7, Namespaces, Peer, Policy, Rule};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// L7 metadata of a flow, as islet extracted it.
#[derive(Clone, Copy, Debug, Default)]
pub struct L7Facts<'a> {
    pub http_method: Option<&'a str>,
    pub http_path: Option<&'a str>,
    pub http_host: Option<&'a str>,
    pub sni: Option<&'a str>,
    pub dns_query: Option<&'a str>,
}

/// What is known of a flow when it is judged.
#[derive(Clone, Copy, Debug)]
pub struct FlowFacts<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub dport: u16,
    /// Flow start, Unix ns: identities are resolved at this time.
    pub ts_ns: i64,
    /// Names DNS answers on the wire gave the destination address (for `fqdn` peers).
    pub dst_names: &'a [&'a str],
    pub l7: Option<L7Facts<'a>>,
}

/// Why a verdict is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A rule decided, in this direction.
    Rule(u32, Direction),
    /// The workload is isolated in this direction and no rule allows the peer.
    ImplicitDeny(Direction),
    /// Neither end is selected by any rule.
    NotIsolated,
}

/// A flow's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `Allow`, `Deny` or `Audit`.
    pub action: Action,
    pub reason: Reason,
    /// The audit rule that matched, if any.
    pub audit: Option<u32>,
    pub src: Identity,
    pub dst: Identity,
}

/// One direction's outcome.
#[derive(Clone, Copy, Debug)]
enum Side {
    Allow(u32),
    Deny(u32),
    Implicit,
    NotSelected,
}

/// A compiled policy with its inventory, shared read-only by every worker.
#[derive(Debug)]
pub struct Engine {
    pub policy: Policy,
    pub inventory: Arc<Inventory>,
    index: crate::index::Index,
    /// Provenance of the bundle: version and manifest hash (empty when unsigned).
    pub bundle_version: u64,
    pub bundle_hash: String,
    has_l7: bool,
}

impl Engine {
    pub fn new(policy: Policy, inventory: Arc<Inventory>) -> Engine {
        let index = crate::index::build(&policy, &inventory);
        let has_l7 = policy.rules.iter().any(|r| !r.l7.is_empty());
        Engine {
            policy,
            inventory,
            index,
            bundle_version: 0,
            bundle_hash: String::new(),
            has_l7,
        }
    }

    /// Does any rule have L7 conditions (so verdicts may change as metadata arrives)?
    pub fn has_l7(&self) -> bool {
        self.has_l7
    }

    pub fn rule(&self, i: u32) -> &Rule {
        &self.policy.rules[i as usize]
    }

    /// Judge a flow.
    pub fn verdict(&self, f: &FlowFacts<'_>) -> Verdict {
        let src = self.inventory.resolve(f.src, f.ts_ns);
        let dst = self.inventory.resolve(f.dst, f.ts_ns);
        self.verdict_for(src, dst, f)
    }

    /// Judge a flow whose identities were resolved (frozen) earlier.
    pub fn verdict_for(&self, src: Identity, dst: Identity, f: &FlowFacts<'_>) -> Verdict {
        let mut audit = None;
        let eg = self.side(Direction::Egress, src, dst, f.dst, f, &mut audit);
        let ing = self.side(Direction::Ingress, dst, src, f.src, f, &mut audit);
        let (action, reason) = match (eg, ing) {
            (Side::Deny(r), _) => (Action::Deny, Reason::Rule(r, Direction::Egress)),
            (Side::Implicit, _) => (Action::Deny, Reason::ImplicitDeny(Direction::Egress)),
            (_, Side::Deny(r)) => (Action::Deny, Reason::Rule(r, Direction::Ingress)),
            (_, Side::Implicit) => (Action::Deny, Reason::ImplicitDeny(Direction::Ingress)),
            (_, Side::Allow(r)) => (Action::Allow, Reason::Rule(r, Direction::Ingress)),
            (Side::Allow(r), _) => (Action::Allow, Reason::Rule(r, Direction::Egress)),
            (Side::NotSelected, Side::NotSelected) => (Action::Allow, Reason::NotIsolated),
        };
        let action = if action == Action::Allow && audit.is_some() {
            Action::Audit
        } else {
            action
        };
        Verdict {
            action,
            reason,
            audit,
            src,
            dst,
        }
    }

    fn side(
        &self,
        dir: Direction,
        subject: Identity,
        peer: Identity,
        peer_ip: IpAddr,
        f: &FlowFacts<'_>,
        audit: &mut Option<u32>,
    ) -> Side {
        let ix = &self.index;
        let Identity::Workload(wi) = subject else {
            return Side::NotSelected;
        };
        let Some(&g) = ix.group_of.get(wi as usize) else {
            return Side::NotSelected;
        };
        // The rules selecting this workload, in evaluation order (tier, priority).
        let list = ix.rules(g, dir_index(dir));
        let Some(&first) = list.first() else {
            return Side::NotSelected;
        };
        let peer_group = match peer {
            Identity::Workload(p) => ix.group_of.get(p as usize).copied(),
            _ => None,
        };
        let (mut allow, mut deny, mut pass) = (None, None, false);
        let mut tier = ix.hot[first as usize].tier;
        for &ri in list {
            let h = &ix.hot[ri as usize];
            if h.tier != tier {
                // The previous tier is complete: does it decide?
                if let Some(d) = deny {
                    return Side::Deny(d);
                }
                if !pass && let Some(a) = allow {
                    return Side::Allow(a);
                }
                (allow, deny, pass) = (None, None, false);
                tier = h.tier;
            }
            let port_ok = match h.ports {
                Ports::Any => true,
                Ports::One(p) => p.matches(f.proto, f.dport),
                Ports::Many => self.policy.rules[ri as usize]
                    .ports
                    .iter()
                    .any(|p| p.matches(f.proto, f.dport)),
            };
            if !port_ok {
                continue;
            }
            let peer_ok = h.peer_any
                || peer_group.is_some_and(|pg| ix.peer_group(h, pg))
                || (h.peer_dynamic && {
                    let r = &self.policy.rules[ri as usize];
                    ix.dynamic[ri as usize]
                        .iter()
                        .any(|&pi| self.peer_matches(&r.peers[pi as usize], wi, peer, peer_ip, f))
                });
            if !peer_ok || (h.l7 && !l7_holds(&self.policy.rules[ri as usize].l7, h.action, f)) {
                continue;
            }
            match h.action {
                Action::Deny => {
                    deny.get_or_insert(ri);
                }
                Action::Pass => pass = true,
                Action::Allow => {
                    allow.get_or_insert(ri);
                }
                Action::Audit => {
                    audit.get_or_insert(ri);
                }
            }
        }
        if let Some(d) = deny {
            return Side::Deny(d);
        }
        if !pass && let Some(a) = allow {
            return Side::Allow(a);
        }
        Side::Implicit
    }

    fn peer_matches(
        &self,
        p: &Peer,
        subject: u32,
        peer: Identity,
        ip: IpAddr,
        f: &FlowFacts<'_>,
    ) -> bool {
        match p {
            Peer::Workloads {
                namespaces,
                labels,
                workload,
            } => {
                let Some(w) = self.inventory.workload(peer) else {
                    return false;
                };
                let ns_ok = match namespaces {
                    Namespaces::Any => true,
                    Namespaces::Same => self
                        .inventory
                        .workloads
                        .get(subject as usize)
                        .is_some_and(|s| s.namespace == w.namespace),
                    Namespaces::Named(n) => *n == w.namespace,
                    Namespaces::Selected(sel) => sel.matches(&|k| {
                        self.inventory
                            .namespace_label(&w.namespace, k)
                            .map(str::to_string)
                    }),
                };
                ns_ok
                    && workload.as_ref().is_none_or(|n| *n == w.name)
                    && labels.matches(&|k| w.labels.get(k).cloned())
            }
            Peer::Cidr { cidr, except } => {
                cidr.contains(ip) && !except.iter().any(|e| e.contains(ip))
            }
            Peer::Entity(e) => match e {
                Entity::All => true,
                Entity::World => peer == Identity::World,
                Entity::Cluster => matches!(peer, Identity::Workload(_) | Identity::Cluster),
                Entity::Host => peer == Identity::Host,
            },
            Peer::Fqdn(g) => ip == f.dst && f.dst_names.iter().any(|n| g.matches(n)),
            Peer::Nothing => false,
        }
    }

    /// How a verdict reads in events and on the command line.
    pub fn explain(&self, v: &Verdict) -> Explanation<'_> {
        Explanation(self, *v)
    }
}

pub(crate) fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

/// Do a rule's L7 conditions hold? Without L7 metadata an `allow` holds provisionally and
/// anything else waits.
fn l7_holds(l7: &L7, action: Action, f: &FlowFacts<'_>) -> bool {
    if l7.is_empty() {
        return true;
    }
    let Some(m) = f.l7 else {
        return action == Action::Allow;
    };
    let http = l7.http.iter().any(|h| {
        m.http_path.is_some()
            && h.method
                .as_ref()
                .is_none_or(|x| m.http_method.is_some_and(|y| x.eq_ignore_ascii_case(y)))
            && h.path
                .as_ref()
                .is_none_or(|p| m.http_path.is_some_and(|y| p.matches(y)))
            && h.host.as_ref().is_none_or(|g| {
                m.http_host
                    .is_some_and(|y| g.matches(y.split(':').next().unwrap_or(y)))
            })
    });
    http || l7.sni.iter().any(|g| m.sni.is_some_and(|s| g.matches(s)))
        || l7
            .dns
            .iter()
            .any(|g| m.dns_query.is_some_and(|s| g.matches(s)))
}

/// [`Engine::explain`]: `deny by rule shop/deny-db (tier app, egress)` or
/// `implicit-deny: no rule selects world for ingress of shop/db`.
#[derive(Debug)]
pub struct Explanation<'a>(&'a Engine, Verdict);

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (e, v) = (self.0, self.1);
        let inv = &e.inventory;
        match v.reason {
            Reason::Rule(r, d) => {
                let r = e.rule(r);
                write!(
                    f,
                    "{} by rule {} (tier {}, {})",
                    v.action.name(),
                    r.id,
                    e.policy.tiers[r.tier as usize],
                    dir_name(d)
                )
            }
            Reason::ImplicitDeny(d) => {
                let (subject, peer) = match d {
                    Direction::Egress => (v.src, v.dst),
                    Direction::Ingress => (v.dst, v.src),
                };
                write!(
                    f,
                    "implicit-deny: no rule selects {} for {} of {}",
                    inv.describe(peer),
                    dir_name(d),
                    inv.describe(subject)
                )
            }
            Reason::NotIsolated => f.write_str("allow: no rule selects either end"),
        }
    }
}

pub fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}
