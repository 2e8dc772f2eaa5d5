//! `islet read --format ocsf`: every event validates against the attributes OCSF 1.3.0 requires
//! of its class (listed here from the schema: base event, metadata, product, network classes,
//! Detection Finding and its `finding_info`), the class mapping is the documented one, and the
//! OCSF log is chained and verifies like EVE.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn islet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_islet"))
        .args(args)
        .output()
        .expect("run islet")
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("islet-ocsf-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// Attributes OCSF 1.3.0 marks `required` on every event (base_event.json).
const BASE_REQUIRED: &[&str] = &[
    "activity_id",
    "category_uid",
    "class_uid",
    "metadata",
    "severity_id",
    "time",
    "type_uid",
];
/// Required in the `metadata` object, and in its `product`.
const METADATA_REQUIRED: &[&str] = &["product", "version"];
const PRODUCT_REQUIRED: &[&str] = &["vendor_name"];
/// Detection Finding (2004): `finding_info` is required; in it, `uid` and `title`.
const FINDING_REQUIRED: &[&str] = &["finding_info"];
const FINDING_INFO_REQUIRED: &[&str] = &["title", "uid"];
/// The network classes need at least one endpoint; islet always knows both, with ip and port.
const NETWORK_ENDPOINTS: &[&str] = &["src_endpoint", "dst_endpoint"];

fn has(v: &Value, keys: &[&str], what: &str, line: &str) {
    for k in keys {
        assert!(
            v.get(*k).is_some_and(|x| !x.is_null()),
            "{what} lacks required `{k}`: {line}"
        );
    }
}

fn validate(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).expect("JSON");
    // Chain records keep islet's own shape in any format.
    if matches!(v["event_type"].as_str(), Some("checkpoint" | "gap")) {
        return v;
    }
    has(&v, BASE_REQUIRED, "event", line);
    has(&v["metadata"], METADATA_REQUIRED, "metadata", line);
    has(
        &v["metadata"]["product"],
        PRODUCT_REQUIRED,
        "metadata.product",
        line,
    );
    assert_eq!(v["metadata"]["version"], "1.3.0", "{line}");
    let class = v["class_uid"].as_u64().expect("class_uid");
    let activity = v["activity_id"].as_u64().expect("activity_id");
    assert_eq!(
        v["type_uid"].as_u64(),
        Some(class * 100 + activity),
        "{line}"
    );
    assert_eq!(v["category_uid"].as_u64(), Some(class / 1000), "{line}");
    assert!(v["time"].as_u64().is_some_and(|t| t > 0), "{line}");
    assert!(
        matches!(v["severity_id"].as_u64(), Some(0..=6 | 99)),
        "{line}"
    );
    match class {
        4001..=4003 => {
            has(&v, NETWORK_ENDPOINTS, "network event", line);
            for e in NETWORK_ENDPOINTS {
                assert!(v[e]["ip"].is_string(), "{line}");
            }
        }
        2004 => {
            has(&v, FINDING_REQUIRED, "detection finding", line);
            has(
                &v["finding_info"],
                FINDING_INFO_REQUIRED,
                "finding_info",
                line,
            );
        }
        0 => {}
        c => panic!("unexpected class {c}: {line}"),
    }
    assert!(v["unmapped"]["islet"]["seq"].is_u64(), "{line}");
    v
}

fn read_ocsf(d: &Path, pcap: &Path, name: &str, key: &Path) -> Vec<Value> {
    let out = d.join(name);
    let o = islet(&[
        "read",
        "-q",
        "--format",
        "ocsf",
        "--sign-key",
        key.to_str().expect("test setup"),
        "-o",
        out.to_str().expect("test setup"),
        pcap.to_str().expect("test setup"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pubkey = key.with_file_name("sensor.pub");
    let v = islet(&[
        "log",
        "verify",
        out.to_str().expect("test setup"),
        "--key",
        pubkey.to_str().expect("test setup"),
    ]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    std::fs::read_to_string(&out)
        .expect("test setup")
        .lines()
        .map(validate)
        .collect()
}

#[test]
fn ocsf_events_carry_every_required_attribute() {
    let d = dir();
    let keys = d.join("keys");
    let _ = std::fs::remove_dir_all(&keys);
    assert!(
        islet(&["log", "keygen", "--out", keys.to_str().unwrap()])
            .status
            .success()
    );
    let key = keys.join("sensor.key");
    let mut classes = std::collections::BTreeMap::new();
    // Alerts: the SLP scenario raises a hypervisor-management detection.
    let slp = d.join("slp.pcap");
    assert!(
        islet(&["synth", "--profile", "slp", "-o", slp.to_str().unwrap()])
            .status
            .success()
    );
    let mut all = read_ocsf(&d, &slp, "slp.ocsf.json", &key);
    // Flows, DNS and HTTP from the corpus, when it is there.
    let corpus = islet_testkit::pcap_dir("ocsf_events_carry_every_required_attribute");
    if let Some(c) = &corpus {
        for f in ["sv_dns-4-queries.pcap", "ja4_http1-cookies-ja4h.pcapng"] {
            all.extend(read_ocsf(&d, &c.join(f), &format!("{f}.ocsf.json"), &key));
        }
    }
    for v in &all {
        *classes
            .entry(v["class_uid"].as_u64().unwrap_or(9999))
            .or_insert(0) += 1;
    }
    eprintln!("OCSF classes seen: {classes:?}");
    assert!(
        classes.contains_key(&4001) && classes.contains_key(&2004),
        "{classes:?}"
    );
    if corpus.is_some() {
        assert!(
            classes.contains_key(&4002) && classes.contains_key(&4003),
            "{classes:?}"
        );
        let dns = all
            .iter()
            .find(|v| {
                v["class_uid"] == 4003
                    && v["activity_id"] == 2
                    && v["query"]["hostname"] == "client-cf.dropbox.com"
            })
            .unwrap();
        assert_eq!(dns["answers"][0]["rdata"], "52.85.112.21");
        assert_eq!(dns["rcode_id"], 0);
        let http = all.iter().find(|v| v["class_uid"] == 4002).unwrap();
        assert_eq!(http["http_request"]["http_method"], "GET");
        assert_eq!(http["activity_id"], 3);
        assert_eq!(http["http_response"]["code"], 200);
    }
    let alert = all.iter().find(|v| v["class_uid"] == 2004).unwrap();
    assert_eq!(alert["finding_info"]["analytic"]["uid"], "9300009");
    assert_eq!(alert["severity_id"], 4);
    assert_eq!(alert["evidences"][0]["dst_endpoint"]["port"], 427);
}
