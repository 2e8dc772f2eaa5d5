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
