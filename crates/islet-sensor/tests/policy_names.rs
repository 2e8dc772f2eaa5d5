//! Names learned from DNS answers on the wire: an `fqdn` peer allows a destination only
//! after an answer named it and until the name expires, an address the inventory does not
//! know is named by its answer in `islet.policy`, and every verdict is the same whatever the
//! number of workers (names reach each worker in capture order).

use islet_capture::Frames;
use islet_policy::{Engine, Inventory, import};
use islet_sensor::policy::PolicyRuntime;
use islet_sensor::{Judges, Reader, SensorConfig};
use islet_testkit::frames::{dns_a_response, tcp, udp};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

const INVENTORY: &str = r#"
[[workload]]
name = "client"
kind = "pod"
namespace = "shop"
labels = { app = "client" }
addresses = ["10.1.0.1"]
"#;

const POLICY: &str = r#"
tiers = ["app"]
[[rule]]
id = "client-to-example"
tier = "app"
action = "allow"
direction = "egress"
subject = { namespace = "shop", labels = { app = "client" } }
peers = [{ fqdn = "*.example.com" }]
ports = ["tcp/443"]
[[rule]]
id = "client-dns"
tier = "app"
action = "allow"
direction = "egress"
subject = { namespace = "shop", labels = { app = "client" } }
peers = [{ cidr = "10.1.0.53/32" }]
ports = ["udp/53"]
"#;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

fn client() -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 1)
}
fn named() -> Ipv4Addr {
    Ipv4Addr::new(93, 184, 216, 34)
}
fn unnamed() -> Ipv4Addr {
    Ipv4Addr::new(93, 184, 216, 35)
}

/// The capture: a connection to the address before any answer named it, the answer
/// (TTL 60 s), connections to it and to an address no answer named, and one after the
/// name expired. Each connection is a SYN from its own client port.
fn capture() -> Vec<(u64, Vec<u8>)> {
    let resolver = Ipv4Addr::new(10, 1, 0, 53);
    let syn = |t: u64, port: u16, dst: Ipv4Addr| (t, tcp((client(), port), (dst, 443), 1, 0x02));
    vec![
        syn(T0, 50_000, named()),
        (
            T0 + SEC,
            udp(
                (client(), 40_000),
                (resolver, 53),
                &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
            ),
        ),
        (
            T0 + SEC + 1_000_000,
            udp(
                (resolver, 53),
                (client(), 40_000),
                &dns_a_response(0x1234, "api.example.com", &[named()], 60),
            ),
        ),
        syn(T0 + 2 * SEC, 50_001, named()),
        syn(T0 + 3 * SEC, 50_002, unnamed()),
        syn(T0 + 30 * SEC, 50_003, named()),
        syn(T0 + 70 * SEC, 50_004, named()),
    ]
}

/// Run the capture with `workers`; each TCP flow's client port with its verdict, rule (or
/// reason) and destination identity.
fn run(workers: usize) -> BTreeMap<u64, (String, String, String, Option<String>)> {
    let inv = Arc::new(Inventory::from_toml("inventory.toml", INVENTORY).expect("inventory"));
    let p = import::parse("policy.toml", POLICY).expect("policy");
    assert!(p.unsupported.is_empty(), "{:?}", p.unsupported);
    let mut rt = PolicyRuntime::fixed(Engine::new(p, inv));
    // The answer's own TTL decides here (Cilium's default minimum is an hour).
    rt.dns_min_ttl = 0;
    let mut cfg = SensorConfig::default();
    cfg.sensor.workers = workers;
    cfg.sensor.batch_packets = 2;
    let judges = Judges {
        intel: None,
        policy: Some(rt),
    };
    let mut out = Vec::new();
    let mut source = Frames::new(capture());
    Reader::new(&cfg)
        .judges(judges)
        .run(&mut source, &mut out)
        .expect("run");
    let mut flows = BTreeMap::new();
    for line in String::from_utf8(out).expect("utf-8").lines() {
        let e: Value = serde_json::from_str(line).expect("json");
        if e["event_type"] != "flow" || e["proto"] != "TCP" {
            continue;
        }
        let p = &e["islet"]["policy"];
        let why = p["rule"]
            .as_str()
            .or(p["reason"].as_str())
            .expect("rule or reason");
        flows.insert(
            e["src_port"].as_u64().expect("port"),
            (
                p["verdict"].as_str().expect("verdict").to_owned(),
                why.to_owned(),
                p["dest_identity"].as_str().expect("identity").to_owned(),
                p["dest_entity"].as_str().map(str::to_owned),
            ),
        );
    }
    flows
}

#[test]
fn fqdn_peers_follow_dns_answers_in_capture_order_for_any_worker_count() {
    let one = run(1);
    let allowed = |v: &(String, String, String, Option<String>)| {
        v.0 == "allow"
            && v.1 == "client-to-example"
            && v.2 == "api.example.com"
            && v.3.as_deref() == Some("world")
    };
    let denied = |v: &(String, String, String, Option<String>)| {
        v.0 == "deny" && v.1.starts_with("implicit-deny: no rule selects world")
    };
    assert_eq!(one.len(), 5, "{one:?}");
    assert!(
        denied(&one[&50_000]),
        "before the answer: {:?}",
        one[&50_000]
    );
    assert_eq!(one[&50_000].2, "world", "no name yet");
    assert!(
        allowed(&one[&50_001]),
        "after the answer: {:?}",
        one[&50_001]
    );
    assert!(
        denied(&one[&50_002]),
        "an address no answer named: {:?}",
        one[&50_002]
    );
    assert!(allowed(&one[&50_003]), "within the TTL: {:?}", one[&50_003]);
    assert!(denied(&one[&50_004]), "after the TTL: {:?}", one[&50_004]);
    assert_eq!(one[&50_004].2, "world", "the name expired");
    for workers in [2, 3] {
        assert_eq!(run(workers), one, "{workers} workers");
    }
}
