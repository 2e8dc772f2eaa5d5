//! Properties of the policy parsers and engine: any text is refused or parsed, never a panic;
//! prefixes and port ranges agree with arithmetic; within a tier deny beats allow whatever
//! the rule order; an earlier tier decides before a later one.

use islet_policy::engine::FlowFacts;
use islet_policy::ir::{Action, PortRange};
use islet_policy::net::Cidr;
use islet_policy::{Engine, Inventory, import};
use proptest::prelude::*;
use std::sync::Arc;

const INV: &str = "[[workload]]\nname = \"a\"\nkind = \"pod\"\nnamespace = \"n\"\nlabels = { app = \"a\" }\naddresses = [\"10.0.0.1\"]\n[[workload]]\nname = \"b\"\nkind = \"pod\"\nnamespace = \"n\"\nlabels = { app = \"b\" }\naddresses = [\"10.0.0.2\"]\n";

fn facts(port: u16) -> FlowFacts<'static> {
    FlowFacts {
        src: "10.0.0.1".parse().expect("ip"),
        dst: "10.0.0.2".parse().expect("ip"),
        proto: 6,
        dport: port,
        ts_ns: 0,
        dst_names: &[],
        l7: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_refused_or_parsed(t in "\\PC{0,300}") {
        let _ = import::parse("x.toml", &t);
        let _ = import::parse("x.yaml", &t);
        let _ = Inventory::from_text("x", &t);
    }

    #[test]
    fn prefixes_agree_with_arithmetic(a in any::<u32>(), len in 0u8..=32, probe in any::<u32>()) {
        let c = Cidr::parse(&format!("{}/{len}", std::net::Ipv4Addr::from(a))).expect("cidr");
        let want = len == 0 || (a ^ probe) >> (32 - u32::from(len)) == 0;
        prop_assert_eq!(c.contains(std::net::IpAddr::from(std::net::Ipv4Addr::from(probe))), want);
        prop_assert_eq!(Cidr::parse(&c.to_string()).expect("again"), c);
    }

    #[test]
    fn port_ranges_agree_with_arithmetic(a in any::<u16>(), b in any::<u16>(), p in any::<u16>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        let r = PortRange::parse(&format!("tcp/{lo}-{hi}")).expect("range");
        prop_assert_eq!(r.matches(6, p), (lo..=hi).contains(&p));
        prop_assert!(!r.matches(17, p));
        let reversed = PortRange::parse(&format!("tcp/{hi}-{lo}"));
        prop_assert!(reversed.is_err() || lo == hi);
    }

    /// Rules in random order and priorities: in one tier a matching deny always wins; across
    /// tiers the first tier with a decision decides.
    #[test]
    fn deny_beats_allow_in_a_tier_and_tiers_are_ordered(
        order in Just(vec![0usize, 1, 2]).prop_shuffle(),
        prios in proptest::collection::vec(-5i32..5, 3),
        deny_in_first in any::<bool>(),
    ) {
        let rules = [
            ("allow-all", "allow", "tcp"),
            ("deny-80", "deny", "tcp/80"),
            ("allow-80", "allow", "tcp/80"),
        ];
        let mut text = String::from("tiers = [\"first\", \"second\"]\n");
        for (k, &i) in order.iter().enumerate() {
            let (id, action, port) = rules[i];
            let tier = if id == "deny-80" && deny_in_first { "first" } else { "second" };
            text.push_str(&format!(
                "[[rule]]\nid = \"{id}\"\ntier = \"{tier}\"\npriority = {}\naction = \"{action}\"\ndirection = \"ingress\"\nsubject = {{ labels = {{ app = \"b\" }} }}\nports = [\"{port}\"]\n",
                prios[k]
            ));
        }
        let p = import::parse("p.toml", &text).expect("policy");
        let e = Engine::new(p, Arc::new(Inventory::from_toml("inv.toml", INV).expect("inv")));
        prop_assert_eq!(e.verdict(&facts(80)).action, Action::Deny);
        prop_assert_eq!(e.verdict(&facts(81)).action, Action::Allow);
        let why = e.explain(&e.verdict(&facts(80))).to_string();
        prop_assert!(why.starts_with("deny by rule deny-80"), "{}", why);
        // A pass in the first tier hands over to the second.
        let pass = text.replace("tiers = [\"first\", \"second\"]\n", "tiers = [\"first\", \"second\"]\n[[rule]]\nid = \"pass-all\"\ntier = \"first\"\naction = \"pass\"\ndirection = \"ingress\"\nsubject = { labels = { app = \"b\" } }\n");
        let p = import::parse("p.toml", &pass).expect("policy");
        let e = Engine::new(p, Arc::new(Inventory::from_toml("inv.toml", INV).expect("inv")));
        // Deny beats pass in the first tier; in the second, deny beats allow.
        prop_assert_eq!(e.verdict(&facts(80)).action, Action::Deny);
        prop_assert_eq!(e.verdict(&facts(81)).action, Action::Allow);
    }
}

/// The straightforward reading of the semantics, rule by rule with no index: the engine's
/// indexed verdicts must equal it.
mod reference {
    use islet_policy::identity::{Identity, Inventory};
    use islet_policy::ir::{Action, Direction, Entity, Namespaces, Peer, Policy};
    use std::net::IpAddr;

    pub fn verdict(
        p: &Policy,
        inv: &Inventory,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        port: u16,
    ) -> Action {
        let s = inv.resolve(src, 0);
        let d = inv.resolve(dst, 0);
        let eg = side(p, inv, Direction::Egress, s, d, dst, proto, port);
        let ing = side(p, inv, Direction::Ingress, d, s, src, proto, port);
        if eg == Some(false) || ing == Some(false) {
            Action::Deny
        } else {
            Action::Allow
        }
    }

    /// Some(true) allowed, Some(false) denied, None not selected.
    #[allow(
        clippy::too_many_arguments,
        reason = "the model's question spelled out in full, as the property reads it"
    )]
    fn side(
        p: &Policy,
        inv: &Inventory,
        dir: Direction,
        subj: Identity,
        peer: Identity,
        peer_ip: IpAddr,
        proto: u8,
        port: u16,
    ) -> Option<bool> {
        let w = inv.workload(subj)?;
        let mut selected = false;
        for t in 0..p.tiers.len() as u32 {
            let mut rules: Vec<_> = p
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.tier == t && r.direction == dir)
                .collect();
            rules.sort_by_key(|(i, r)| (r.priority, *i));
            let (mut allow, mut deny, mut pass) = (false, false, false);
            for (_, r) in rules {
                let sel = r
                    .subject
                    .namespace
                    .as_ref()
                    .is_none_or(|n| *n == w.namespace)
                    && r.subject.labels.matches(&|k| w.labels.get(k).cloned());
                if !sel {
                    continue;
                }
                selected = true;
                if !(r.ports.is_empty() || r.ports.iter().any(|x| x.matches(proto, port))) {
                    continue;
                }
                let peer_ok = r.peers.is_empty()
                    || r.peers.iter().any(|x| match x {
                        Peer::Workloads {
                            namespaces, labels, ..
                        } => inv.workload(peer).is_some_and(|pw| {
                            let ns = match namespaces {
                                Namespaces::Any => true,
                                Namespaces::Same => pw.namespace == w.namespace,
                                Namespaces::Named(n) => *n == pw.namespace,
                                Namespaces::Selected(s) => s.matches(&|k| {
                                    inv.namespace_label(&pw.namespace, k).map(str::to_string)
                                }),
                            };
                            ns && labels.matches(&|k| pw.labels.get(k).cloned())
                        }),
                        Peer::Cidr { cidr, except } => {
                            cidr.contains(peer_ip) && !except.iter().any(|e| e.contains(peer_ip))
                        }
                        Peer::Entity(Entity::World) => peer == Identity::World,
                        Peer::Entity(Entity::Cluster) => {
                            matches!(peer, Identity::Workload(_) | Identity::Cluster)
                        }
                        Peer::Entity(Entity::All) => true,
                        _ => false,
                    });
                if !peer_ok {
                    continue;
                }
                match r.action {
                    Action::Allow => allow = true,
                    Action::Deny => deny = true,
                    Action::Pass => pass = true,
                    Action::Audit => {}
                }
            }
            if deny {
                return Some(false);
            }
            if pass {
                continue;
            }
            if allow {
                return Some(true);
            }
        }
        selected.then_some(false)
    }
}

fn arb_policy() -> impl Strategy<Value = String> {
    let rule = (
        0usize..2, // tier
        -2i32..2,  // priority
        prop::sample::select(vec!["allow", "deny", "pass"]),
        prop::sample::select(vec!["ingress", "egress"]),
        prop::option::of(prop::sample::select(vec!["a", "b"])),
        prop::option::of(prop::sample::select(vec!["x", "y", "z"])),
        prop::collection::vec(
            prop::sample::select(vec![
                "{ labels = { app = \"x\" } }",
                "{ namespace = \"a\", labels = { app = \"y\" } }",
                "{ namespace_labels = { team = \"red\" } }",
                "{ cidr = \"10.0.0.0/24\", except = [\"10.0.0.0/30\"] }",
                "{ entity = \"world\" }",
                "{ entity = \"cluster\" }",
            ]),
            0..3,
        ),
        prop::collection::vec(
            prop::sample::select(vec!["tcp/80", "tcp/1-100", "udp/53", "tcp"]),
            0..2,
        ),
    );
    prop::collection::vec(rule, 1..12).prop_map(|rules| {
        let mut t = String::from("tiers = [\"t0\", \"t1\"]\n");
        for (i, (tier, prio, action, dir, ns, app, peers, ports)) in rules.into_iter().enumerate() {
            let mut subject = Vec::new();
            if let Some(n) = ns {
                subject.push(format!("namespace = \"{n}\""));
            }
            if let Some(a) = app {
                subject.push(format!("labels = {{ app = \"{a}\" }}"));
            }
            t.push_str(&format!(
                "[[rule]]\nid = \"r{i}\"\ntier = \"t{tier}\"\npriority = {prio}\naction = \"{action}\"\ndirection = \"{dir}\"\nsubject = {{ {} }}\n",
                subject.join(", ")
            ));
            if !peers.is_empty() {
                t.push_str(&format!("peers = [{}]\n", peers.join(", ")));
            }
            if !ports.is_empty() {
                let p: Vec<String> = ports.iter().map(|p| format!("\"{p}\"")).collect();
                t.push_str(&format!("ports = [{}]\n", p.join(", ")));
            }
        }
        t
    })
}

const REF_INV: &str = r#"
cluster_cidrs = ["10.0.0.0/8"]
[namespaces.b]
labels = { team = "red" }
[[workload]]
name = "ax1"
kind = "pod"
namespace = "a"
labels = { app = "x" }
addresses = ["10.0.0.1"]
[[workload]]
name = "ax2"
kind = "pod"
namespace = "a"
labels = { app = "x" }
addresses = ["10.0.0.2"]
[[workload]]
name = "ay"
kind = "pod"
namespace = "a"
labels = { app = "y" }
addresses = ["10.0.0.3"]
[[workload]]
name = "bx"
kind = "pod"
namespace = "b"
labels = { app = "x" }
addresses = ["10.0.0.9"]
[[workload]]
name = "bz"
kind = "pod"
namespace = "b"
labels = { app = "z" }
addresses = ["10.0.1.9"]
[[workload]]
name = "by"
kind = "pod"
namespace = "b"
labels = { app = "y" }
addresses = ["10.0.2.9"]
[[workload]]
name = "az"
kind = "pod"
namespace = "a"
labels = { app = "z" }
addresses = ["10.0.0.4"]
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The indexed engine against the rule-by-rule reference, on every pair of endpoints.
    #[test]
    fn indexed_verdicts_equal_the_reference(text in arb_policy(), port in prop::sample::select(vec![53u16, 80, 443])) {
        let p = import::parse("p.toml", &text).expect("policy");
        let inv = Arc::new(Inventory::from_toml("inv.toml", REF_INV).expect("inv"));
        let e = Engine::new(p.clone(), inv.clone());
        let addrs = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.9", "10.0.1.9", "10.0.2.9", "10.9.9.9", "8.8.8.8"];
        for s in addrs {
            for d in addrs {
                for proto in [6u8, 17] {
                    let (src, dst) = (s.parse().expect("ip"), d.parse().expect("ip"));
                    let f = FlowFacts { src, dst, proto, dport: port, ts_ns: 0, dst_names: &[], l7: None };
                    let got = e.verdict(&f).action;
                    let want = reference::verdict(&p, &inv, src, dst, proto, port);
                    prop_assert_eq!(got, want, "{} -> {} proto {} port {}\n{}", s, d, proto, port, text);
                }
            }
        }
    }
}
