//! Policy verdicts on real captures: an inventory written for five corpus captures (a port
//! scan, an SMB/ATSVC session to a DC, SSH password guessing, an HTTP OPTIONS request, DNS), a
//! signed bundle of islet TOML and a Kubernetes NetworkPolicy, `islet read --policy` and
//! `islet policy simulate` agreeing, and every denied flow naming its rule or the implicit deny.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CAPTURES: [&str; 5] = [
    "ppa_portscan-29-ports.pcap",
    "sv_smb2-atsvc-remote-schedule.pcap",
    "zeek_ssh-password-guessing.pcap",
    "sv_http-options.pcap",
    "sv_dns-4-queries.pcap",
];

const INVENTORY: &str = r#"
cluster_cidrs = ["10.0.0.0/8", "192.168.0.0/16"]
[[workload]]
name = "ws-14"
kind = "vm"
namespace = "corp"
labels = { role = "workstation" }
addresses = ["10.100.25.14"]
[[workload]]
name = "files-12"
kind = "vm"
namespace = "corp"
labels = { role = "fileserver" }
addresses = ["10.100.18.12"]
[[workload]]
name = "dc01"
kind = "vm"
namespace = "ad"
labels = { role = "dc" }
addresses = ["192.168.10.30"]
[[workload]]
name = "admin-31"
kind = "vm"
namespace = "ad"
labels = { role = "admin-workstation" }
addresses = ["192.168.10.31"]
[[workload]]
name = "bastion"
kind = "vm"
namespace = "lab"
labels = { role = "bastion" }
addresses = ["192.168.56.103"]
[[workload]]
name = "web-1"
kind = "pod"
namespace = "web"
labels = { app = "web" }
addresses = ["192.168.1.20"]
[[workload]]
name = "client-1"
kind = "pod"
namespace = "web"
labels = { app = "client" }
addresses = ["192.168.1.10"]
[[workload]]
name = "resolver"
kind = "service"
namespace = "infra"
labels = { app = "dns" }
addresses = ["10.16.1.1"]
"#;

const POLICY: &str = r#"
tiers = ["platform", "app"]

[[rule]]
id = "files-smb-from-workstations"
tier = "app"
action = "allow"
direction = "ingress"
subject = { namespace = "corp", labels = { role = "fileserver" } }
peers = [{ labels = { role = "workstation" } }]
ports = ["tcp/445"]

[[rule]]
id = "dc-smb-from-admins"
tier = "app"
action = "allow"
direction = "ingress"
subject = { labels = { role = "dc" } }
peers = [{ namespace = "ad", labels = { role = "admin-workstation" } }]
ports = ["tcp/445"]

[[rule]]
id = "bastion-ssh-from-lab"
tier = "app"
action = "allow"
direction = "ingress"
subject = { labels = { role = "bastion" } }
peers = [{ namespace = "lab" }]
ports = ["tcp/22"]

[[rule]]
id = "web-get-only"
tier = "app"
action = "allow"
direction = "ingress"
subject = { namespace = "web", labels = { app = "web" } }
peers = [{ namespace = "web", labels = { app = "client" } }]
ports = ["tcp/80"]
http = [{ method = "GET", path = "/*" }]

[[rule]]
id = "dns-from-anyone"
tier = "platform"
action = "allow"
direction = "ingress"
subject = { labels = { app = "dns" } }
ports = ["udp/53", "tcp/53"]
"#;

const NETPOL: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: corp-egress
  namespace: corp
spec:
  podSelector:
    matchLabels:
      role: workstation
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector: {}
";

fn islet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_islet"))
        .args(args)
        .output()
        .expect("run islet")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn read_and_simulate_agree_and_every_deny_has_a_reason() {
    let Some(pdir) = islet_testkit::pcap_dir("read_and_simulate_agree_and_every_deny_has_a_reason")
    else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("islet-policy-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).expect("dir");
    std::fs::write(bundle.join("10-segments.toml"), POLICY).expect("w");
    std::fs::write(bundle.join("20-corp.yaml"), NETPOL).expect("w");
    let inv = dir.join("inventory.toml");
    std::fs::write(&inv, INVENTORY).expect("w");
    let keys = dir.join("keys");
    assert!(
        islet(&["policy", "keygen", "--out", s(&keys)])
            .status
            .success()
    );
    let o = islet(&[
        "policy",
        "sign",
        "--key",
        s(&keys.join("policy.key")),
        "--version",
        "1",
        s(&bundle),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pcaps: Vec<PathBuf> = CAPTURES.iter().map(|c| pdir.join(c)).collect();
    let eve = dir.join("eve.json");
    let mut args = vec![
        "read",
        "-q",
        "--workers",
        "1",
        "-o",
        s(&eve),
        "--policy",
        s(&bundle),
        "--pubkey",
    ];
    let pubkey = keys.join("policy.pub");
    args.push(s(&pubkey));
    args.extend(["--inventory", s(&inv)]);
    args.extend(pcaps.iter().map(|p| s(p)));
    let o = islet(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let text = std::fs::read_to_string(&eve).expect("eve");
    // One `islet` object per record (an HTTP alert with a verdict once had two).
    for l in text.lines() {
        assert!(l.matches("\"islet\":{").count() <= 1, "{l}");
    }
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    // The same from `[policy]` in a configuration file gives the same events.
    let cfg = dir.join("islet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[policy]\nbundle = {:?}\npubkeys = [{:?}]\ninventory = {:?}\n",
            s(&bundle),
            s(&pubkey),
            s(&inv)
        ),
    )
    .expect("config");
    let eve2 = dir.join("eve2.json");
    let mut args = vec![
        "read",
        "-q",
        "--workers",
        "1",
        "-c",
        s(&cfg),
        "-o",
        s(&eve2),
    ];
    args.extend(pcaps.iter().map(|p| s(p)));
    let o = islet(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&eve2).expect("eve2"), text);

    // With a policy state: version 1 becomes active; a tampered version 2 is rejected with its
    // reason and version 1 keeps deciding — the same events as before.
    let state = dir.join("state");
    let read_with_state = |b: &Path, out: &Path| {
        let mut args = vec![
            "read",
            "-q",
            "--workers",
            "1",
            "-o",
            s(out),
            "--policy",
            s(b),
        ];
        args.extend([
            "--pubkey",
            s(&pubkey),
            "--inventory",
            s(&inv),
            "--policy-state",
            s(&state),
        ]);
        args.extend(pcaps.iter().map(|p| s(p)));
        islet(&args)
    };
    let o = read_with_state(&bundle, &dir.join("eve3.json"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v2 = dir.join("bundle-v2");
    std::fs::create_dir_all(&v2).expect("dir");
    std::fs::write(
        v2.join("10-segments.toml"),
        POLICY.replace("tcp/445", "tcp/1-65535"),
    )
    .expect("w");
    let o = islet(&[
        "policy",
        "sign",
        "--key",
        s(&keys.join("policy.key")),
        "--version",
        "2",
        s(&v2),
    ]);
    assert!(o.status.success());
    let f = v2.join("10-segments.toml");
    let mut b = std::fs::read(&f).expect("read");
    b[10] ^= 0x20;
    std::fs::write(&f, b).expect("tamper");
    let eve4 = dir.join("eve4.json");
    let o = read_with_state(&v2, &eve4);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("hash mismatch: 10-segments.toml") && err.contains("(version 1, sha256"),
        "{err}"
    );
    // The refusal is also an event, ahead of the flows; then version 1 keeps deciding.
    let eve4 = std::fs::read_to_string(&eve4).expect("eve4");
    let (first, rest) = eve4.split_once('\n').expect("lines");
    let ev: Value = serde_json::from_str(first).expect("json");
    assert_eq!(ev["event_type"], "policy", "{first}");
    assert_eq!(ev["policy"]["event"], "bundle_rejected", "{first}");
    assert_eq!(ev["policy"]["bundle"], s(&v2), "{first}");
    assert!(
        ev["policy"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("hash mismatch: 10-segments.toml")),
        "{first}"
    );
    assert_eq!(ev["policy"]["active"]["version"], 1, "{first}");
    assert_eq!(
        ev["policy"]["active"]["hash"].as_str().map(str::len),
        Some(64)
    );
    // The same records; the chain's sequence numbers are shifted by the refusal event.
    assert_eq!(
        unchained(rest),
        unchained(&text),
        "version 1 keeps deciding"
    );
    // Without a state to fall back on, a rejected bundle stops the run (fail closed).
    let mut args = vec![
        "read",
        "-q",
        "-o",
        "-",
        "--policy",
        s(&v2),
        "--pubkey",
        s(&pubkey),
    ];
    args.push(s(&pcaps[0]));
    let o = islet(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("policy bundle rejected: "));
    let mut verdicts: BTreeMap<(String, String, u64), Vec<String>> = BTreeMap::new();
    let mut denied_flows = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "flow") {
        let p = &e["islet"]["policy"];
        let verdict = p["verdict"]
            .as_str()
            .expect("every flow has a verdict")
            .to_string();
        // Every verdict is explained: by its rule, or in words.
        let reason = p["reason"].as_str().unwrap_or_default();
        assert!(
            p["rule"].is_string() != p["reason"].is_string() || verdict == "deny",
            "{p}"
        );
        assert_eq!(p["bundle_version"], 1);
        assert_eq!(p["bundle_hash"].as_str().map(str::len), Some(64));
        if verdict == "deny" {
            assert_eq!(e["flow"]["action"], "drop");
            assert_eq!(e["flow"]["alerted"], true);
            assert!(
                (reason.starts_with("deny by rule ") && p["rule"].is_string())
                    || reason.starts_with("implicit-deny: no rule selects "),
                "{reason}"
            );
            denied_flows.insert(e["flow_id"].as_u64().expect("id"), p.clone());
        } else {
            assert_eq!(e["flow"]["action"], "pass");
        }
        let key = (
            p["src_identity"].as_str().expect("src").to_string(),
            p["dest_identity"].as_str().expect("dst").to_string(),
            e["dest_port"].as_u64().unwrap_or(0),
        );
        verdicts.entry(key).or_default().push(verdict);
    }
    let v = |src: &str, dst: &str, port: u64| {
        verdicts
            .get(&(src.into(), dst.into(), port))
            .cloned()
            .unwrap_or_default()
    };
    // The port scan: 445 is allowed, the 28 other ports are denied by the fileserver's isolation.
    assert_eq!(v("corp/ws-14", "corp/files-12", 445), vec!["allow"]);
    let scan_denied: usize = verdicts
        .iter()
        .filter(|((s, d, p), _)| s == "corp/ws-14" && d == "corp/files-12" && *p != 445)
        .map(|(_, x)| x.iter().filter(|v| *v == "deny").count())
        .sum();
    assert_eq!(scan_denied, 28);
    assert_eq!(v("ad/admin-31", "ad/dc01", 445), vec!["allow"]);
    // SSH guessing from an address no workload holds (192.168.56.1: `cluster`).
    let ssh = v("cluster", "lab/bastion", 22);
    assert!(
        !ssh.is_empty() && ssh.iter().all(|x| x == "deny"),
        "{ssh:?}"
    );
    // HTTP OPTIONS where only GET is allowed: refined to deny by L7.
    assert_eq!(v("web/client-1", "web/web-1", 80), vec!["deny"]);
    let dns = v("cluster", "infra/resolver", 53);
    assert!(
        !dns.is_empty() && dns.iter().all(|x| x == "allow"),
        "{dns:?}"
    );

    // Exactly one policy alert per denied flow, with both identities.
    let mut alerts = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["category"] == "Policy violation")
    {
        let id = e["flow_id"].as_u64().expect("id");
        *alerts.entry(id).or_insert(0) += 1;
        assert_eq!(e["alert"]["metadata"]["detection"][0], "policy_violation");
        let p = &e["islet"]["policy"];
        assert_eq!(
            p, &denied_flows[&id],
            "the alert carries the flow's verdict"
        );
        assert!(
            e["alert"]["signature"]
                .as_str()
                .expect("sig")
                .contains(p["src_identity"].as_str().expect("src"))
        );
    }
    assert_eq!(alerts.len(), denied_flows.len());
    assert!(alerts.values().all(|n| *n == 1));
    let l7 = denied_flows.values().filter(|p| p["l7"] == true).count();
    assert_eq!(l7, 1, "the OPTIONS request");

    // simulate (against no policy) lists exactly the denied edges.
    let mut args = vec![
        "policy",
        "simulate",
        "--policy",
        s(&bundle),
        "--inventory",
        s(&inv),
    ];
    args.extend(pcaps.iter().map(|p| s(p)));
    let o = islet(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let newly: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("newly denied"))
        .collect();
    let read_denied_edges = verdicts
        .iter()
        .filter(|(_, v)| v.iter().any(|x| x == "deny"))
        .count();
    assert_eq!(newly.len(), read_denied_edges, "{out}");
    assert!(
        out.contains(&format!("{read_denied_edges} edges newly denied")),
        "{out}"
    );
    assert!(
        newly
            .iter()
            .any(|l| l.contains("web/client-1") && l.contains("tcp/80")),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn suggested_policies_allow_exactly_what_was_seen() {
    let Some(pdir) = islet_testkit::pcap_dir("suggested_policies_allow_exactly_what_was_seen")
    else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("islet-policy-suggest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let inv = dir.join("inventory.toml");
    std::fs::write(&inv, INVENTORY).expect("w");
    let out = dir.join("suggested");
    let pcaps: Vec<PathBuf> = CAPTURES.iter().map(|c| pdir.join(c)).collect();
    let mut args = vec![
        "policy",
        "suggest",
        "--inventory",
        s(&inv),
        "--out",
        s(&out),
    ];
    args.extend(pcaps.iter().map(|p| s(p)));
    let o = islet(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Each form alone, replayed over the same traffic, denies nothing.
    for (form, file) in [
        ("islet", "suggested.toml"),
        ("kubernetes", "suggested-networkpolicy.yaml"),
    ] {
        let b = dir.join(form);
        std::fs::create_dir_all(&b).expect("dir");
        std::fs::copy(out.join(file), b.join(file)).expect("copy");
        let eve = dir.join(format!("{form}.json"));
        let mut args = vec![
            "read",
            "-q",
            "--workers",
            "1",
            "-o",
            s(&eve),
            "--policy",
            s(&b),
            "--inventory",
            s(&inv),
        ];
        args.extend(pcaps.iter().map(|p| s(p)));
        let o = islet(&args);
        assert!(
            o.status.success(),
            "{form}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&eve).expect("eve");
        let mut flows = 0;
        for e in text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        {
            if e["event_type"] == "flow" {
                flows += 1;
                let p = &e["islet"]["policy"];
                assert_ne!(p["verdict"], "deny", "{form}: {e}");
                // Every flow between workloads is allowed by a suggested rule, not by default.
                if p["src_identity"].as_str().is_some_and(|x| x.contains('/'))
                    && p["dest_identity"].as_str().is_some_and(|x| x.contains('/'))
                {
                    assert!(p["rule"].as_str().is_some(), "{form}: {e}");
                }
            }
        }
        assert_eq!(flows, 46, "{form}");
        // Least privilege: what was not seen between the same workloads is denied.
        let p = islet_policy::import::load(&b).expect("policy");
        let e = islet_policy::Engine::new(
            p,
            std::sync::Arc::new(islet_policy::Inventory::from_path(&inv).expect("inv")),
        );
        let judge = |src: &str, dst: &str, port: u16| {
            e.verdict(&islet_policy::FlowFacts {
                src: src.parse().expect("ip"),
                dst: dst.parse().expect("ip"),
                proto: 6,
                dport: port,
                ts_ns: 0,
                dst_names: &[],
                l7: None,
            })
            .action
        };
        assert_eq!(
            judge("192.168.10.31", "192.168.10.30", 445),
            islet_policy::Action::Allow,
            "{form}"
        );
        assert_eq!(
            judge("192.168.10.31", "192.168.10.30", 3389),
            islet_policy::Action::Deny,
            "{form}"
        );
        assert_eq!(
            judge("192.168.10.30", "192.168.10.31", 445),
            islet_policy::Action::Deny,
            "{form}: the reverse was never seen"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Records without their chain fields (`islet.seq`, `islet.prev`), checkpoints and stats.
fn unchained(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.contains("\"event_type\":\"checkpoint\""))
        .filter(|l| !l.contains("\"event_type\":\"stats\""))
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("JSON line");
            if let Some(i) = v.get_mut("islet").and_then(Value::as_object_mut) {
                i.remove("seq");
                i.remove("prev");
            }
            v.to_string()
        })
        .collect()
}
