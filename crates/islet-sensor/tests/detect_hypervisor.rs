//! New edges into workloads labelled hypervisor management: after the learning period, a
//! completed connection from a workload that is not an admin alerts once per edge at high
//! severity; admins, edges learned before, and attempts nothing answered do not.

use islet_capture::Frames;
use islet_policy::{Engine, Inventory, import};
use islet_sensor::policy::PolicyRuntime;
use islet_sensor::{Judges, Reader, SensorConfig};
use islet_testkit::frames::{handshake, tcp};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::sync::Arc;

const INVENTORY: &str = r#"
[[workload]]
name = "esxi-01"
kind = "host"
namespace = "infra"
labels = { "islet.io/role" = "hypervisor-management" }
addresses = ["10.0.5.50"]
[[workload]]
name = "admin-ws"
kind = "vm"
namespace = "it"
labels = { "islet.io/admin" = "true" }
addresses = ["10.0.6.5"]
[[workload]]
name = "build-7"
kind = "vm"
namespace = "ci"
addresses = ["10.0.7.7"]
"#;

#[test]
fn new_edges_into_hypervisors_from_non_admins_alert_once() {
    let inv = Arc::new(Inventory::from_toml("inventory.toml", INVENTORY).expect("inventory"));
    let p = import::parse("policy.toml", "").expect("empty policy");
    let rt = PolicyRuntime::fixed(Engine::new(p, inv));
    let esxi = (Ipv4Addr::new(10, 0, 5, 50), 443);
    let admin = Ipv4Addr::new(10, 0, 6, 5);
    let build = Ipv4Addr::new(10, 0, 7, 7);
    let sec = 1_000_000_000u64;
    let t0 = 1_700_000_000 * sec;
    let mut frames = Vec::new();
    // Learning: the build host already talked to the hypervisor's API.
    frames.extend(handshake(t0, (build, 50_000), esxi));
    frames.extend(handshake(t0 + 100 * sec, (build, 50_001), esxi));
    // After learning: the admin on a new port (admins are fine), the build host probing
    // ports nothing answers (no alert: a probe is not a reach), then on a new port (alert),
    // and again (no second alert).
    frames.extend(handshake(t0 + 200 * sec, (admin, 50_002), (esxi.0, 8_443)));
    for port in [9_000, 9_001, 9_002] {
        frames.push((
            t0 + 250 * sec,
            tcp((build, 50_010), (esxi.0, port), 1, 0x02),
        ));
    }
    frames.extend(handshake(t0 + 300 * sec, (build, 50_003), (esxi.0, 5_480)));
    frames.extend(handshake(t0 + 400 * sec, (build, 50_004), (esxi.0, 5_480)));
    let mut cfg = SensorConfig::default();
    cfg.sensor.workers = 1;
    cfg.detect.lateral.learn_s = 60;
    let judges = Judges {
        intel: None,
        policy: Some(rt),
    };
    let mut out = Vec::new();
    Reader::new(&cfg)
        .judges(judges)
        .run(&mut Frames::new(frames), &mut out)
        .expect("run");
    let alerts: Vec<Value> = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0]["alert"];
    assert_eq!(a["metadata"]["detection"][0], "hypervisor_mgmt_access");
    assert_eq!(a["severity"], 1);
    assert_eq!(a["metadata"]["victim"][0], "infra/esxi-01");
    assert_eq!(a["metadata"]["src_node"][0], "ci/build-7");
    assert_eq!(alerts[0]["dest_port"], 5_480);
}
