//! A policy reload in the middle of a capture: flows that start after the swap are judged by
//! the new policy, flows judged before keep their verdict and write the provenance (rule,
//! bundle version) of the engine that judged them, and nothing is lost or judged twice.

use islet_capture::{CaptureError, Frames, Packet, PacketSource};
use islet_policy::{Engine, Inventory, import};
use islet_sensor::policy::PolicyRuntime;
use islet_sensor::{Judges, Reader, SensorConfig};
use std::sync::Arc;

const INVENTORY: &str = r#"
[[workload]]
name = "client"
kind = "pod"
namespace = "shop"
labels = { app = "client" }
addresses = ["10.1.0.1"]
[[workload]]
name = "dns"
kind = "pod"
namespace = "shop"
labels = { app = "dns" }
addresses = ["10.1.0.2"]
"#;

fn policy(id: &str, action: &str) -> String {
    format!(
        r#"tiers = ["app"]
[[rule]]
id = "{id}"
tier = "app"
action = "{action}"
direction = "ingress"
subject = {{ namespace = "shop", labels = {{ app = "dns" }} }}
peers = [{{ namespace = "shop", labels = {{ app = "client" }} }}]
ports = ["udp/53"]
"#
    )
}

fn engine(inv: &Arc<Inventory>, id: &str, action: &str, version: u64) -> Engine {
    let p = import::parse("policy.toml", &policy(id, action)).expect("policy parses");
    let mut e = Engine::new(p, Arc::clone(inv));
    e.bundle_version = version;
    e
}

/// A UDP datagram from 10.1.0.1:`sport` to 10.1.0.2:53.
fn frame(sport: u16) -> Vec<u8> {
    let ip = |x| std::net::Ipv4Addr::new(10, 1, 0, x);
    islet_testkit::frames::udp((ip(1), sport), (ip(2), 53), &[0u8; 12])
}

/// Frames one per batch, with `v2` put in force after `swap_after` of them.
struct Reloading {
    frames: Frames,
    swap_after: usize,
    runtime: PolicyRuntime,
    v2: Option<Engine>,
}

impl PacketSource for Reloading {
    fn read_batch(
        &mut self,
        _max: usize,
        f: &mut dyn FnMut(&Packet<'_>),
    ) -> Result<usize, CaptureError> {
        if self.frames.delivered() == self.swap_after
            && let Some(e) = self.v2.take()
        {
            let old = self.runtime.reload(e);
            assert_eq!(old.bundle_version, 1);
        }
        self.frames.read_batch(1, f)
    }

    fn progress(&self) -> (u64, u64) {
        self.frames.progress()
    }
}

#[test]
fn flows_after_a_reload_get_the_new_policy_and_older_flows_keep_their_provenance() {
    let inv = Arc::new(Inventory::from_toml("inventory.toml", INVENTORY).expect("inventory"));
    let runtime = PolicyRuntime::fixed(engine(&inv, "dns-allowed", "allow", 1));
    let t0 = 1_700_000_000_000_000_000u64;
    let flows = 8u16;
    let mut frames = Vec::new();
    for round in 0..2u64 {
        for i in 0..flows {
            let ts = t0 + (round * 100 + u64::from(i)) * 1_000_000;
            frames.push((ts, frame(40_000 + i)));
        }
    }
    let mut source = Reloading {
        frames: Frames::new(frames),
        // The first five flows start under version 1.
        swap_after: 5,
        runtime: runtime.clone(),
        v2: Some(engine(&inv, "dns-denied", "deny", 2)),
    };
    let mut cfg = SensorConfig::default();
    cfg.sensor.workers = 1;
    let judges = Judges {
        intel: None,
        policy: Some(runtime.clone()),
    };
    let mut out = Vec::new();
    let summary = Reader::new(&cfg)
        .judges(judges)
        .run(&mut source, &mut out)
        .expect("run");
    assert_eq!(summary.stats.flows_total, u64::from(flows));

    let text = String::from_utf8(out).expect("utf-8");
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let mut by_port = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "flow") {
        let p = &e["islet"]["policy"];
        let port = e["src_port"].as_u64().expect("port");
        assert_eq!(
            e["flow"]["pkts_toserver"], 2,
            "both packets on one flow: {e}"
        );
        by_port.insert(
            port,
            (
                p["verdict"].as_str().expect("verdict").to_owned(),
                p["rule"].as_str().expect("rule").to_owned(),
                p["bundle_version"].as_u64().expect("version"),
                e["flow"]["action"].as_str().expect("action").to_owned(),
            ),
        );
    }
    assert_eq!(by_port.len(), usize::from(flows), "one record per flow");
    for (port, (verdict, rule, version, action)) in &by_port {
        if port - 40_000 < 5 {
            assert_eq!(
                (verdict.as_str(), rule.as_str(), *version, action.as_str()),
                ("allow", "dns-allowed", 1, "pass"),
                "flow from port {port} started before the reload"
            );
        } else {
            assert_eq!(
                (verdict.as_str(), rule.as_str(), *version, action.as_str()),
                ("deny", "dns-denied", 2, "drop"),
                "flow from port {port} started after the reload"
            );
        }
    }
    let alerts: Vec<_> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 3, "one policy_violation per denied flow");
    for a in alerts {
        assert_eq!(a["islet"]["policy"]["bundle_version"], 2);
        assert_eq!(a["alert"]["metadata"]["detection"][0], "policy_violation");
    }
    // The replaced engine is released once its last flow is written.
    assert_eq!(Arc::strong_count(&runtime.engine.load_full()), 2);
}
