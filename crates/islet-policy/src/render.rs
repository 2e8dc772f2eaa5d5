//! Policies as text, for people: `Display` for selectors, peers, port ranges, subjects and
//! rules, and [`Listing`], a policy's tiers with their rules one per line (`islet policy show`),
//! and [`Finding`]s, what `islet policy check` warns about: rules that select no workload of
//! an inventory, and pairs of rules that contradict each other.

use crate::Inventory;
use crate::engine::dir_name;
use crate::ir::{Action, LabelSelector, Namespaces, Peer, Policy, PortRange, Rule, Subject};
use std::fmt;

/// `key=value` pairs, then requirements (`In("tier", ["a"])`), comma-separated.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v: Vec<String> = self
            .labels
            .iter()
            .map(|(k, x)| format!("{k}={x}"))
            .collect();
        v.extend(self.requirements.iter().map(|r| format!("{r:?}")));
        f.write_str(&v.join(","))
    }
}

/// `same-ns app=web`, `ns[team=x]`, `10.0.0.0/8 except 10.1.0.0/16`, `world`, `fqdn *.x.com`.
impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Workloads {
                namespaces,
                labels,
                workload,
            } => {
                let ns = match namespaces {
                    Namespaces::Any => String::new(),
                    Namespaces::Same => "same-ns ".into(),
                    Namespaces::Named(n) => format!("ns={n} "),
                    Namespaces::Selected(s) => format!("ns[{s}] "),
                };
                let name = workload
                    .as_deref()
                    .map(|n| format!("name={n} "))
                    .unwrap_or_default();
                f.write_str(format!("{ns}{name}{labels}").trim())
            }
            Peer::Cidr { cidr, except } if except.is_empty() => write!(f, "{cidr}"),
            Peer::Cidr { cidr, except } => {
                let except: Vec<String> = except.iter().map(ToString::to_string).collect();
                write!(f, "{cidr} except {}", except.join(" "))
            }
            Peer::Entity(e) => f.write_str(&format!("{e:?}").to_lowercase()),
            Peer::Fqdn(g) => write!(f, "fqdn {}", g.text),
            Peer::Nothing => f.write_str("nothing"),
        }
    }
}

/// `6/80-80` (the protocol by number), `any/0-65535`.
impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            Some(p) => write!(f, "{p}/{}-{}", self.first, self.last),
            None => write!(f, "any/{}-{}", self.first, self.last),
        }
    }
}

/// `ns=shop name=db app=db`: what is given, in that order.
impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self
            .namespace
            .as_deref()
            .map(|n| format!("ns={n} "))
            .unwrap_or_default();
        let name = self
            .workload
            .as_deref()
            .map(|n| format!("name={n} "))
            .unwrap_or_default();
        f.write_str(format!("{ns}{name}{}", self.labels).trim())
    }
}

/// One line: id, action, direction, subject, peers, ports, and whether L7 conditions apply.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peers: Vec<String> = if self.peers.is_empty() {
            vec!["any".into()]
        } else {
            self.peers.iter().map(ToString::to_string).collect()
        };
        let ports: Vec<String> = self.ports.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{:<40} {:<6} {:<7} subject [{}] peers [{}] ports [{}]{}",
            self.id,
            self.action.name(),
            dir_name(self.direction),
            self.subject,
            peers.join(", "),
            if ports.is_empty() {
                "any".to_string()
            } else {
                ports.join(", ")
            },
            if self.l7.is_empty() {
                ""
            } else {
                " (L7 conditions)"
            }
        )
    }
}

/// A policy's tiers in evaluation order, each followed by its rules, one per line.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a>(pub &'a Policy);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        for (t, tier) in p.tiers.iter().enumerate() {
            writeln!(f, "tier {tier}:")?;
            for r in p.rules.iter().filter(|r| r.tier as usize == t) {
                writeln!(f, "  {r}")?;
            }
        }
        Ok(())
    }
}

impl Rule {
    /// Whether the rule's subject selects at least one workload of `inv`.
    pub fn selects_any(&self, inv: &Inventory) -> bool {
        let s = &self.subject;
        inv.workloads.iter().any(|w| {
            s.namespace.as_ref().is_none_or(|n| *n == w.namespace)
                && s.workload.as_ref().is_none_or(|n| *n == w.name)
                && s.labels.matches(&|k| w.labels.get(k).cloned())
        })
    }

    /// Same tier, direction, subject, peers and ports, no L7 conditions, and one allows while
    /// the other denies: the two match the same traffic and only one can be meant.
    pub fn contradicts(&self, other: &Rule) -> bool {
        use Action::{Allow, Deny};
        matches!((self.action, other.action), (Allow, Deny) | (Deny, Allow))
            && self.tier == other.tier
            && self.direction == other.direction
            && self.subject == other.subject
            && self.ports == other.ports
            && format!("{:?}", self.peers) == format!("{:?}", other.peers)
            && self.l7.is_empty()
            && other.l7.is_empty()
    }
}

/// Something `islet policy check` warns about in a policy's rules.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Finding<'a> {
    /// The rule selects no workload of the inventory it was checked against.
    SelectsNothing(&'a Rule),
    /// The two rules contradict each other ([`Rule::contradicts`]); the deny wins.
    Contradiction(&'a Rule, &'a Rule),
}

/// What the rules of `p` warn about: with an inventory, each rule that selects none of its
/// workloads (in rule order); then each contradicting pair.
pub fn findings<'a>(p: &'a Policy, inv: Option<&Inventory>) -> Vec<Finding<'a>> {
    let mut out = Vec::new();
    if let Some(inv) = inv {
        out.extend(
            p.rules
                .iter()
                .filter(|r| !r.selects_any(inv))
                .map(Finding::SelectsNothing),
        );
    }
    for (i, x) in p.rules.iter().enumerate() {
        for y in &p.rules[i + 1..] {
            if x.contradicts(y) {
                out.push(Finding::Contradiction(x, y));
            }
        }
    }
    out
}

impl fmt::Display for Finding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::SelectsNothing(r) => write!(
                f,
                "rule {} ({}) selects no workload of the inventory",
                r.id, r.source
            ),
            Finding::Contradiction(x, y) => {
                let (a, b) = (x.action.name(), y.action.name());
                let wins = if x.action == Action::Deny {
                    &x.id
                } else {
                    &y.id
                };
                write!(
                    f,
                    "rules {} ({a}) and {} ({b}) match the same traffic with {a} and {b}; {wins} wins",
                    x.id, y.id
                )
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::import;

    const POLICY: &str = r#"
tiers = ["platform", "app"]
[[rule]]
id = "a-allow"
tier = "app"
action = "allow"
direction = "ingress"
subject = { namespace = "shop", labels = { app = "db" } }
peers = [{ namespace = "shop", labels = { app = "web" } }, { cidr = "10.0.0.0/8", except = ["10.1.0.0/16"] }]
ports = ["tcp/5432"]
[[rule]]
id = "a-deny"
tier = "app"
action = "deny"
direction = "ingress"
subject = { namespace = "shop", labels = { app = "db" } }
peers = [{ namespace = "shop", labels = { app = "web" } }, { cidr = "10.0.0.0/8", except = ["10.1.0.0/16"] }]
ports = ["tcp/5432"]
[[rule]]
id = "out"
tier = "platform"
action = "allow"
direction = "egress"
subject = { namespace = "ghost", workload = "x" }
peers = [{ entity = "world" }, { fqdn = "*.example.com" }]
"#;

    #[test]
    fn a_listing_names_every_tier_and_rule() {
        let p = import::parse("p.toml", POLICY).expect("policy");
        let text = Listing(&p).to_string();
        assert_eq!(
            text,
            "tier platform:\n  out                                      allow  egress  subject [ns=ghost name=x] peers [world, fqdn *.example.com] ports [any]\n\
             tier app:\n  a-allow                                  allow  ingress subject [ns=shop app=db] peers [ns=shop app=web, 10.0.0.0/8 except 10.1.0.0/16] ports [6/5432-5432]\n  \
             a-deny                                   deny   ingress subject [ns=shop app=db] peers [ns=shop app=web, 10.0.0.0/8 except 10.1.0.0/16] ports [6/5432-5432]\n"
        );
    }

    #[test]
    fn contradicting_rules_and_empty_selections_are_found() {
        let p = import::parse("p.toml", POLICY).expect("policy");
        let inv = Inventory::default();
        let f: Vec<String> = findings(&p, Some(&inv))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(f.len(), 4, "{f:?}");
        assert_eq!(
            f[3],
            "rules a-allow (allow) and a-deny (deny) match the same traffic with allow and deny; a-deny wins"
        );
        assert_eq!(findings(&p, None).len(), 1);
    }
}
