//! The engine's index, built once per policy and inventory so that a new flow's verdict
//! costs a few lookups whatever the number of rules and workloads:
//!
//! - workloads with the same namespace and labels (and name, where a rule names workloads)
//!   form a group — a Deployment's pods are one group — so selection is computed per group;
//! - per group and direction, the rules whose subject selects it, in evaluation order (tier,
//!   priority, file order);
//! - per rule, the set of groups its workload peers select (namespace and label selectors
//!   resolved once); address, entity and name peers are checked per flow.
//!
//! Building visits, per rule, only the groups that can match: those of its namespace or of
//! its rarest `matchLabels` pair.

use crate::identity::{Inventory, Workload};
use crate::ir::{Action, LabelSelector, Namespaces, Peer, Policy, PortRange, Rule, Subject};
use hashbrown::{HashMap, HashSet};

/// Per rule: how its peers are matched.
#[derive(Debug, Default)]
struct RulePeers {
    /// No peers listed: any peer.
    any: bool,
    /// Groups the rule's workload peers select.
    groups: HashSet<u32>,
    /// Peers checked per flow (addresses, entities, names, and workload peers that depend on
    /// the subject's namespace when the subject names none).
    dynamic: Vec<u32>,
}

/// A rule's ports, as the hot path checks them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ports {
    Any,
    One(PortRange),
    /// Several: the rule's own list.
    Many,
}

/// What a verdict reads of a rule, in 40 bytes: one cache line for most rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    pub tier: u32,
    pub action: Action,
    pub ports: Ports,
    pub peer_any: bool,
    pub peer_dynamic: bool,
    pub l7: bool,
    /// The rule's peer groups: `peer_groups[start..start + len]`, sorted.
    pub groups: (u32, u32),
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Workload → group.
    pub group_of: Vec<u32>,
    /// Group → where its ingress and egress rules lie in `flat`: `[in, eg, end)`.
    pub lists: Vec<[u32; 3]>,
    /// Rule indexes, per group ingress then egress, each in evaluation order.
    pub flat: Vec<u32>,
    pub hot: Vec<Hot>,
    pub peer_groups: Vec<u32>,
    /// Per rule: peers checked per flow.
    pub dynamic: Vec<Vec<u32>>,
}

impl Index {
    /// The rules selecting group `g` in a direction (0 ingress, 1 egress).
    #[inline]
    pub fn rules(&self, g: u32, dir: usize) -> &[u32] {
        let Some(&[i, e, end]) = self.lists.get(g as usize) else {
            return &[];
        };
        let (a, b) = if dir == 0 { (i, e) } else { (e, end) };
        self.flat.get(a as usize..b as usize).unwrap_or(&[])
    }

    /// Does rule `r` select peer group `g`?
    #[inline]
    pub fn peer_group(&self, h: &Hot, g: u32) -> bool {
        let (s, n) = h.groups;
        self.peer_groups
            .get(s as usize..(s + n) as usize)
            .is_some_and(|v| v.binary_search(&g).is_ok())
    }
}

/// What makes workloads one group: namespace, name (where rules name it), labels.
type GroupKey<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>);

struct Groups<'a> {
    reps: Vec<&'a Workload>,
    by_ns: HashMap<&'a str, Vec<u32>>,
    /// `key\0value` → groups.
    by_label: HashMap<String, Vec<u32>>,
    by_name: HashMap<&'a str, Vec<u32>>,
    all: Vec<u32>,
}

impl<'a> Groups<'a> {
    /// The groups that can satisfy a namespace, a name and label selector: the smallest
    /// posting list among them (every group when none narrows it).
    fn candidates(&self, ns: Option<&str>, name: Option<&str>, sel: &LabelSelector) -> &[u32] {
        let mut best: &[u32] = &self.all;
        let lists = ns
            .map(|n| self.by_ns.get(n))
            .into_iter()
            .chain(name.map(|n| self.by_name.get(n)))
            .chain(
                sel.labels
                    .iter()
                    .map(|(k, v)| self.by_label.get(&format!("{k}\0{v}"))),
            );
        for l in lists {
            // A condition no group meets: nothing can match.
            let l: &[u32] = l.map_or(&[], Vec::as_slice);
            if l.len() < best.len() {
                best = l;
            }
        }
        best
    }
}

fn subject_matches(s: &Subject, w: &Workload) -> bool {
    s.namespace.as_ref().is_none_or(|n| *n == w.namespace)
        && s.workload.as_ref().is_none_or(|n| *n == w.name)
        && s.labels.matches(&|k| w.labels.get(k).cloned())
}

pub(crate) fn build(policy: &Policy, inv: &Inventory) -> Index {
    // Names only matter where a rule names a workload.
    let mut named: HashSet<&str> = HashSet::new();
    for r in &policy.rules {
        if let Some(n) = &r.subject.workload {
            named.insert(n);
        }
        for p in &r.peers {
            if let Peer::Workloads {
                workload: Some(n), ..
            } = p
            {
                named.insert(n);
            }
        }
    }
    let mut key_to_group: HashMap<GroupKey<'_>, u32> = HashMap::new();
    let mut g = Groups {
        reps: Vec::new(),
        by_ns: HashMap::new(),
        by_label: HashMap::new(),
        by_name: HashMap::new(),
        all: Vec::new(),
    };
    let mut group_of = Vec::with_capacity(inv.workloads.len());
    for w in &inv.workloads {
        let name = named.contains(w.name.as_str()).then_some(w.name.as_str());
        let labels: Vec<(&str, &str)> = w
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let next = g.reps.len() as u32;
        let id = *key_to_group
            .entry((w.namespace.as_str(), name, labels))
            .or_insert_with(|| {
                g.reps.push(w);
                g.all.push(next);
                g.by_ns.entry(w.namespace.as_str()).or_default().push(next);
                for (k, v) in &w.labels {
                    g.by_label
                        .entry(format!("{k}\0{v}"))
                        .or_default()
                        .push(next);
                }
                if let Some(n) = name {
                    g.by_name.entry(n).or_default().push(next);
                }
                next
            });
        group_of.push(id);
    }
    let mut order: Vec<u32> = (0..policy.rules.len() as u32).collect();
    order.sort_by_key(|&i| {
        let r = &policy.rules[i as usize];
        (r.tier, r.priority, i)
    });
    let mut rules: Vec<[Vec<u32>; 2]> = (0..g.reps.len())
        .map(|_| [Vec::new(), Vec::new()])
        .collect();
    for &ri in &order {
        let r = &policy.rules[ri as usize];
        let d = crate::engine::dir_index(r.direction);
        for &gi in g.candidates(
            r.subject.namespace.as_deref(),
            r.subject.workload.as_deref(),
            &r.subject.labels,
        ) {
            if subject_matches(&r.subject, g.reps[gi as usize]) {
                rules[gi as usize][d].push(ri);
            }
        }
    }
    let mut lists = Vec::with_capacity(rules.len());
    let mut flat = Vec::new();
    for [ing, eg] in rules {
        let i = flat.len() as u32;
        flat.extend_from_slice(&ing);
        let e = flat.len() as u32;
        flat.extend_from_slice(&eg);
        lists.push([i, e, flat.len() as u32]);
    }
    let mut hot = Vec::with_capacity(policy.rules.len());
    let mut peer_groups = Vec::new();
    let mut dynamic = Vec::with_capacity(policy.rules.len());
    for r in &policy.rules {
        let rp = rule_peers(r, &g, inv);
        let mut gs: Vec<u32> = rp.groups.into_iter().collect();
        gs.sort_unstable();
        let start = peer_groups.len() as u32;
        peer_groups.extend_from_slice(&gs);
        hot.push(Hot {
            tier: r.tier,
            action: r.action,
            ports: match r.ports[..] {
                [] => Ports::Any,
                [p] => Ports::One(p),
                _ => Ports::Many,
            },
            peer_any: rp.any,
            peer_dynamic: !rp.dynamic.is_empty(),
            l7: !r.l7.is_empty(),
            groups: (start, gs.len() as u32),
        });
        dynamic.push(rp.dynamic);
    }
    Index {
        group_of,
        lists,
        flat,
        hot,
        peer_groups,
        dynamic,
    }
}

fn rule_peers(r: &Rule, g: &Groups<'_>, inv: &Inventory) -> RulePeers {
    let mut out = RulePeers {
        any: r.peers.is_empty(),
        ..RulePeers::default()
    };
    for (pi, p) in r.peers.iter().enumerate() {
        let Peer::Workloads {
            namespaces,
            labels,
            workload,
        } = p
        else {
            out.dynamic.push(pi as u32);
            continue;
        };
        let ns_list: Option<Vec<&str>> = match namespaces {
            Namespaces::Any => None,
            Namespaces::Named(n) => Some(vec![n.as_str()]),
            Namespaces::Same => match &r.subject.namespace {
                Some(n) => Some(vec![n.as_str()]),
                None => {
                    out.dynamic.push(pi as u32);
                    continue;
                }
            },
            Namespaces::Selected(sel) => Some(
                g.by_ns
                    .keys()
                    .copied()
                    .filter(|ns| sel.matches(&|k| inv.namespace_label(ns, k).map(str::to_string)))
                    .collect(),
            ),
        };
        let check = |gi: u32| {
            let w = g.reps[gi as usize];
            workload.as_ref().is_none_or(|n| *n == w.name)
                && labels.matches(&|k| w.labels.get(k).cloned())
        };
        match ns_list {
            None => {
                for &gi in g.candidates(None, workload.as_deref(), labels) {
                    if check(gi) {
                        out.groups.insert(gi);
                    }
                }
            }
            Some(list) => {
                for ns in list {
                    for &gi in g.candidates(Some(ns), workload.as_deref(), labels) {
                        if g.reps[gi as usize].namespace == ns && check(gi) {
                            out.groups.insert(gi);
                        }
                    }
                }
            }
        }
    }
    out
}
