//! The hypervisor-management pack: management ports of hypervisors only from admins, every
//! other source denied with the pack's rule; other ports left to the rest of the policy.

use islet_policy::engine::FlowFacts;
use islet_policy::ir::Action;
use islet_policy::{Engine, Inventory, import};
use std::sync::Arc;

const INVENTORY: &str = r#"
cluster_cidrs = ["10.0.0.0/8"]
[[workload]]
name = "esxi-01"
kind = "host"
namespace = "infra"
labels = { "islet.io/role" = "hypervisor-management" }
addresses = ["10.0.50.11"]
[[workload]]
name = "admin-ws"
kind = "vm"
namespace = "it"
labels = { "islet.io/admin" = "true" }
addresses = ["10.0.60.5"]
[[workload]]
name = "ws-2"
kind = "vm"
namespace = "corp"
addresses = ["10.0.70.2"]
"#;

#[test]
fn management_ports_only_from_admins() {
    let dir = std::env::temp_dir().join(format!("islet-pack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("policy.toml"),
        r#"packs = ["hypervisor-management"]
tiers = ["corp"]
[[rule]]
id = "no-ssh-to-hypervisors-from-corp"
tier = "corp"
action = "deny"
direction = "ingress"
subject = { labels = { "islet.io/role" = "hypervisor-management" } }
peers = [{ namespace = "corp" }]
ports = ["tcp/22"]
"#,
    )
    .expect("write");
    let p = import::load(&dir).expect("policy");
    assert_eq!(
        p.tiers,
        [
            "hypervisor-admins",
            "hypervisor-management",
            "corp",
            "hypervisor-baseline"
        ]
    );
    let e = Engine::new(
        p,
        Arc::new(Inventory::from_toml("inv.toml", INVENTORY).expect("inv")),
    );
    let judge = |src: &str, proto: u8, port: u16| {
        let f = FlowFacts {
            src: src.parse().expect("ip"),
            dst: "10.0.50.11".parse().expect("ip"),
            proto,
            dport: port,
            ts_ns: 0,
            dst_names: &[],
            l7: None,
        };
        let v = e.verdict(&f);
        (v.action, e.explain(&v).to_string())
    };
    let (admin, ws, outside) = ("10.0.60.5", "10.0.70.2", "203.0.113.9");
    for (proto, port) in [
        (6, 427),
        (17, 427),
        (6, 902),
        (6, 443),
        (6, 5989),
        (17, 623),
    ] {
        let (a, why) = judge(admin, proto, port);
        assert_eq!(a, Action::Allow, "{why}");
        assert!(why.contains("hypervisor-management/admins"), "{why}");
        for src in [ws, outside] {
            let (a, why) = judge(src, proto, port);
            assert_eq!(a, Action::Deny, "{src} {proto}/{port}: {why}");
            assert_eq!(
                why,
                "deny by rule hypervisor-management/deny-others (tier hypervisor-management, ingress)"
            );
        }
    }
    // Other ports: the operator's own tier decides, else the baseline allows.
    assert_eq!(judge(ws, 6, 22).0, Action::Deny);
    assert!(
        judge(ws, 6, 22)
            .1
            .contains("no-ssh-to-hypervisors-from-corp")
    );
    assert_eq!(judge(admin, 6, 22).0, Action::Allow);
    assert_eq!(judge(outside, 6, 8000).0, Action::Allow);
    let _ = std::fs::remove_dir_all(&dir);
    // An unknown pack is refused by name.
    let e = import::parse("p.toml", "packs = [\"nope\"]\n")
        .expect_err("unknown pack")
        .to_string();
    assert!(e.contains("unknown policy pack \"nope\""), "{e}");
}

/// Tiers keep their declared order through loading, whatever order rules name them in.
#[test]
fn tiers_keep_their_declared_order() {
    let dir = std::env::temp_dir().join(format!("islet-tiers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("p.toml"),
        "tiers = [\"first\", \"second\"]\n[[rule]]\nid = \"late\"\ntier = \"second\"\naction = \"deny\"\ndirection = \"ingress\"\nsubject = {}\n[[rule]]\nid = \"early\"\ntier = \"first\"\naction = \"allow\"\ndirection = \"ingress\"\nsubject = {}\n",
    )
    .expect("write");
    let p = import::load(&dir).expect("policy");
    assert_eq!(p.tiers, ["first", "second"]);
    let e = Engine::new(
        p,
        Arc::new(Inventory::from_toml("inv.toml", INVENTORY).expect("inv")),
    );
    let v = e.verdict(&FlowFacts {
        src: "10.0.70.2".parse().expect("ip"),
        dst: "10.0.60.5".parse().expect("ip"),
        proto: 6,
        dport: 1,
        ts_ns: 0,
        dst_names: &[],
        l7: None,
    });
    assert_eq!(v.action, Action::Allow, "{}", e.explain(&v));
    let _ = std::fs::remove_dir_all(&dir);
}
