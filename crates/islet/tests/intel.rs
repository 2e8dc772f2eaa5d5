//! Threat intelligence end to end: a MISP event whose indicators occur in the corpus captures
//! (names, addresses, JA3, JA4, an x509 fingerprint, HASSH) is matched by `islet read --intel`.
//! Every occurrence — computed independently from the protocol events of a run without
//! intelligence — raises exactly one alert with the right MISP context, and nothing else
//! alerts.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const EVENT_UUID: &str = "5f0c1c9e-0000-4000-8000-15e7c0ffee01";

/// (type, value, to_ids, attribute uuid)
const ATTRIBUTES: &[(&str, &str, &str, &str)] = &[
    (
        "domain",
        "wikimedia.org",
        "1",
        "a0000000-0000-4000-8000-000000000001",
    ),
    // A hostname matches itself only: www.wikipedia.org occurs in the capture, this does not.
    (
        "hostname",
        "wikipedia.org",
        "1",
        "a0000000-0000-4000-8000-000000000002",
    ),
    (
        "ip-dst",
        "208.80.152.3",
        "1",
        "a0000000-0000-4000-8000-000000000003",
    ),
    (
        "ja3-fingerprint-md5",
        "308b0bd904abbef5e0034a1ff7a78920",
        "1",
        "a0000000-0000-4000-8000-000000000004",
    ),
    (
        "x509-fingerprint-sha1",
        "3a0b3b23152c445c27ac6a0c41d6fa74afb4095b",
        "1",
        "a0000000-0000-4000-8000-000000000005",
    ),
    (
        "hassh-md5",
        "2dd6531c7e89d3c925db9214711be76a",
        "1",
        "a0000000-0000-4000-8000-000000000006",
    ),
    (
        "hasshserver-md5",
        "6832f1ce43d4397c2c0a3e2f8c94334e",
        "1",
        "a0000000-0000-4000-8000-000000000007",
    ),
    (
        "domain",
        "gstatic.com",
        "1",
        "a0000000-0000-4000-8000-000000000008",
    ),
    // Not for detection: recorded on the flow as a sighting, never an alert.
    (
        "domain",
        "googleapis.com",
        "0",
        "a0000000-0000-4000-8000-000000000009",
    ),
    // A public resolver: the public-dns warninglist suppresses it.
    (
        "ip-dst",
        "8.8.8.8",
        "1",
        "a0000000-0000-4000-8000-00000000000a",
    ),
];
const JA4: &str = "t13d3613h2_018971650b2c_e7e754ef087b";

const PCAPS: &[&str] = &[
    "zeek_wikipedia-http-dns.pcap",
    "sv_tls12-ja4.pcap",
    "sv_ssh-hassh.pcap",
    "ja4_tls-sni-many.pcapng",
    "sv_tls13-sni-community-id-ipv4.pcap",
];

fn misp_event() -> Value {
    let attrs: Vec<Value> = ATTRIBUTES
        .iter()
        .map(|(t, v, ids, uuid)| {
            json!({"type": t, "value": v, "to_ids": ids, "uuid": uuid, "category": "Network activity"})
        })
        .collect();
    json!({"Event": {
        "uuid": EVENT_UUID,
        "info": "islet corpus test",
        "threat_level_id": "2",
        "Tag": [{"name": "tlp:green"}],
        "Attribute": attrs,
        "Object": [{"name": "ja4", "Attribute": [
            {"type": "text", "object_relation": "ja4", "value": JA4, "to_ids": true,
             "uuid": "a0000000-0000-4000-8000-00000000000b", "category": "Network activity"}
        ]}]
    }})
}

fn run(pcap: &Path, intel: &[&Path]) -> Vec<Value> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_islet"));
    cmd.arg("read")
        .arg(pcap)
        .args(["-o", "-", "-q", "--workers", "1"]);
    for i in intel {
        cmd.arg("--intel").arg(i);
    }
    let out = cmd.output().expect("run islet");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("EVE line is JSON"))
        .collect()
}

fn under(name: &str, domain: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n == domain || n.ends_with(&format!(".{domain}"))
}

/// The names and fingerprints a protocol event carries.
fn names_values(e: &Value) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    match e["event_type"].as_str() {
        Some("dns") => {
            for q in e["dns"]["queries"].as_array().into_iter().flatten() {
                names.push(s(&q["rrname"]));
            }
            for a in e["dns"]["answers"].as_array().into_iter().flatten() {
                names.push(s(&a["rrname"]));
                if a["rrtype"] == "CNAME" {
                    names.push(s(&a["rdata"]));
                }
            }
        }
        Some("http") => names.push(s(&e["http"]["hostname"])),
        Some("tls") => {
            names.push(s(&e["tls"]["sni"]));
            values.push(s(&e["tls"]["ja3"]["hash"]));
            values.push(s(&e["tls"]["ja4"]));
            values.push(s(&e["tls"]["fingerprint"]).replace(':', ""));
        }
        Some("quic") => {
            names.push(s(&e["quic"]["sni"]));
            values.push(s(&e["quic"]["ja4"]));
        }
        Some("ssh") => {
            values.push(s(&e["ssh"]["client"]["hassh"]["hash"]));
            values.push(s(&e["ssh"]["server"]["hassh"]["hash"]));
        }
        _ => {}
    }
    (names, values)
}

/// The indicators (attribute uuids) a protocol event should alert on, decided from its own
/// fields.
fn expected_for(e: &Value) -> BTreeSet<&'static str> {
    let (names, values) = names_values(e);
    let mut out = BTreeSet::new();
    for (t, v, ids, uuid) in ATTRIBUTES {
        if *ids != "1" || *v == "8.8.8.8" {
            continue;
        }
        let hit = match *t {
            "domain" => names.iter().any(|n| under(n, v)),
            "hostname" => names.iter().any(|n| n.eq_ignore_ascii_case(v)),
            "ip-dst" => false,
            _ => values.iter().any(|x| x == v),
        };
        if hit {
            out.insert(*uuid);
        }
    }
    if values.iter().any(|x| x == JA4) {
        out.insert("a0000000-0000-4000-8000-00000000000b");
    }
    out
}

#[test]
fn misp_event_from_corpus_values_alerts_once_per_occurrence() {
    let Some(shared) = islet_testkit::shared_or_skip("misp_event_from_corpus_values") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("islet-intel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let event = dir.join("event.json");
    std::fs::write(&event, serde_json::to_vec(&misp_event()).expect("json")).expect("write");
    // Compile with the warninglists into a snapshot, and read with the snapshot.
    let snapshot = dir.join("snap.islet");
    let out = Command::new(env!("CARGO_BIN_EXE_islet"))
        .args(["intel", "import"])
        .arg(&event)
        .arg("--warninglist")
        .arg(shared.join("corpus/intel/misp-warninglists/public-dns-v4.json"))
        .arg("-o")
        .arg(&snapshot)
        .output()
        .expect("intel import");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("imported 10 indicators"), "{report}");
    assert!(
        report.contains("List of known IPv4 public DNS resolvers: 1 (8.8.8.8)"),
        "{report}"
    );

    let (mut occurrences, mut alerts_seen) = (0, 0);
    let mut by_uuid: BTreeMap<String, u32> = BTreeMap::new();
    for name in PCAPS {
        let pcap: PathBuf = shared.join("corpus/pcap").join(name);
        let plain = run(&pcap, &[]);
        assert!(plain.iter().all(|e| e["event_type"] != "alert"));
        // Expected: (flow_id, what, attribute uuid), one per occurrence.
        let mut expected = Vec::new();
        let mut sighted_flows = BTreeSet::new();
        for e in &plain {
            let fid = e["flow_id"].as_u64().unwrap_or(0);
            if e["event_type"] == "flow"
                && e["dest_ip"] == "208.80.152.3"
                && e["islet"]["tunnel_outer"] != true
            {
                expected.push((
                    fid,
                    "flow".to_string(),
                    "a0000000-0000-4000-8000-000000000003",
                ));
            }
            let what = e["event_type"].as_str().unwrap_or("").to_string();
            for uuid in expected_for(e) {
                expected.push((fid, what.clone(), uuid));
            }
            if names_values(e).0.iter().any(|n| under(n, "googleapis.com")) {
                sighted_flows.insert(fid);
            }
        }
        let snap: &Path = &snapshot;
        let with = run(&pcap, &[snap]);
        let mut got = Vec::new();
        for a in with.iter().filter(|e| e["event_type"] == "alert") {
            let uuid = a["islet"]["intel"]["attribute_uuid"]
                .as_str()
                .expect("uuid");
            let what = a["app_proto"].as_str().unwrap_or("flow").to_string();
            let stored = ATTRIBUTES.iter().find(|x| x.3 == uuid);
            // The context is the MISP event's.
            assert_eq!(a["alert"]["action"], "allowed");
            assert_eq!(a["alert"]["severity"], 2);
            assert_eq!(a["alert"]["metadata"]["detection"], json!(["ioc_match"]));
            assert_eq!(a["islet"]["intel"]["event_uuid"], EVENT_UUID);
            assert_eq!(a["islet"]["intel"]["tlp"], "tlp:green");
            let value = a["islet"]["intel"]["value"].as_str().expect("value");
            match stored {
                Some((t, v, _, _)) => {
                    assert_eq!(value, *v);
                    assert_eq!(a["islet"]["intel"]["type"], *t);
                    assert_eq!(
                        a["alert"]["signature"],
                        format!("islet IoC: {t} {v} (MISP event 'islet corpus test')")
                    );
                }
                None => assert_eq!(value, JA4),
            }
            // The matched protocol object rides along.
            if what != "flow" {
                assert!(a.get(what.as_str()).is_some(), "{a}");
            }
            *by_uuid.entry(uuid.to_string()).or_default() += 1;
            got.push((a["flow_id"].as_u64().unwrap_or(0), what, uuid));
        }
        expected.sort();
        got.sort();
        let got: Vec<(u64, String, &str)> = got;
        assert_eq!(got, expected, "{name}");
        occurrences += expected.len();
        alerts_seen += got.len();
        // flow.alerted marks exactly the flows with alerts; sightings ride on flow records.
        let alerted: BTreeSet<u64> = got.iter().map(|g| g.0).collect();
        for f in with.iter().filter(|e| e["event_type"] == "flow") {
            let fid = f["flow_id"].as_u64().unwrap_or(0);
            assert_eq!(
                f["flow"]["alerted"].as_bool(),
                Some(alerted.contains(&fid)),
                "{name} {f}"
            );
            let sighted = f["islet"]["intel_sightings"]
                .as_array()
                .is_some_and(|s| s.contains(&json!("domain googleapis.com")));
            assert_eq!(sighted, sighted_flows.contains(&fid), "{name} {f}");
        }
    }
    println!("{alerts_seen} alerts for {occurrences} occurrences: {by_uuid:?}");
    // Every to_ids indicator occurs somewhere; the hostname and the suppressed resolver never.
    for (t, v, ids, uuid) in ATTRIBUTES {
        let n = by_uuid.get(*uuid).copied().unwrap_or(0);
        match (*t, *v, *ids) {
            ("hostname", _, _) | (_, "8.8.8.8", _) | (_, _, "0") => assert_eq!(n, 0, "{v}"),
            _ => assert!(n > 0, "{t} {v} never alerted"),
        }
    }
    assert!(
        by_uuid.contains_key("a0000000-0000-4000-8000-00000000000b"),
        "JA4"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[intel.misp]` in the config: `islet read` pulls from MISP (loopback server), alerts on what
/// it pulled, and sends sightings of what matched back to `/sightings/add`.
#[test]
fn read_pulls_from_misp_and_sends_sightings_back() {
    use islet_testkit::http::{Handler, Req, serve};
    use std::sync::{Arc, Mutex};
    let Some(shared) = islet_testkit::shared_or_skip("read_pulls_from_misp") else {
        return;
    };
    let sightings: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let got = sightings.clone();
    let handler: Arc<Handler> = Arc::new(move |r: &Req| {
        if r.header("Authorization") != Some("k3y") {
            return (
                403,
                vec![],
                json!({"message": "Authentication failed."}).to_string(),
            );
        }
        match r.target.as_str() {
            "/attributes/restSearch" => {
                let attrs = json!([
                    {"type": "domain", "value": "wikimedia.org", "to_ids": true, "uuid": "attr-1",
                     "category": "Network activity", "timestamp": "1700000000",
                     "Event": {"uuid": EVENT_UUID, "info": "pulled from MISP", "id": "7"}}
                ]);
                (
                    200,
                    vec![],
                    json!({"response": {"Attribute": attrs}}).to_string(),
                )
            }
            "/sightings/add" => {
                got.lock()
                    .expect("lock")
                    .push(serde_json::from_str(&r.body).expect("json"));
                (200, vec![], json!({"saved": true}).to_string())
            }
            _ => (404, vec![], String::new()),
        }
    });
    let server = serve(handler);
    let dir = std::env::temp_dir().join(format!("islet-intel-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("islet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[intel.misp]\nurl = \"http://127.0.0.1:{}\"\nkey_env = \"ISLET_TEST_MISP_KEY\"\npush_sightings = true\n",
            server.port
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_islet"))
        .arg("read")
        .arg(shared.join("corpus/pcap/zeek_wikipedia-http-dns.pcap"))
        .args(["-o", "-", "--workers", "1", "-c"])
        .arg(&cfg)
        .env("ISLET_TEST_MISP_KEY", "k3y")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 34, "{stderr}");
    assert!(
        alerts
            .iter()
            .all(|a| a["islet"]["intel"]["event_info"] == "pulled from MISP")
    );
    let bodies = sightings.lock().expect("lock");
    let values: BTreeSet<&str> = bodies
        .iter()
        .flat_map(|b| b["values"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(values, BTreeSet::from(["wikimedia.org"]));
    assert!(stderr.contains("sightings to MISP: 34 sent"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
