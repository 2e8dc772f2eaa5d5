//! Second and third oracles for flow tracking: Zeek's conn.log baselines and tshark's
//! conversation tables, on every capture of the shared corpus.

use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// Run `islet read` on `pcap` and return its flow events.
fn flows(pcap: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_islet"))
        .arg("read")
        .arg(pcap)
        .args(["-o", "-", "-q"])
        .output()
        .expect("run islet");
    assert!(
        out.status.success() || out.status.code() == Some(0),
        "{}: {:?}",
        pcap.display(),
        out
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event_type"] == "flow")
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

type Endpoints = ((IpAddr, u64), (IpAddr, u64), String);

fn key(a: (IpAddr, u64), b: (IpAddr, u64), proto: &str) -> Endpoints {
    let p = proto.to_ascii_lowercase().replace("ipv6-icmp", "icmp");
    if a <= b { (a, b, p) } else { (b, a, p) }
}

/// Every Zeek conn.log baseline: the same connections, with the same packet counts per
/// direction (Zeek's orig/resp mapped onto islet's client/server, whichever way each chose).
#[test]
fn zeek_conn_logs_agree() {
    let Some(dir) = islet_testkit::pcap_dir("zeek_conn_logs_agree") else {
        return;
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let log = entry.expect("entry").path();
        let name = log
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let Some(base) = name.strip_suffix(".zeek-conn.log") else {
            continue;
        };
        let pcap = dir.join(format!("{base}.pcap"));
        let ours = flows(&pcap);
        let mut by_key: HashMap<Endpoints, Vec<&Value>> = HashMap::new();
        for f in &ours {
            let s = (
                ip(f["src_ip"].as_str().unwrap_or("")),
                f["src_port"].as_u64().unwrap_or(0),
            );
            let d = (
                ip(f["dest_ip"].as_str().unwrap_or("")),
                f["dest_port"].as_u64().unwrap_or(0),
            );
            by_key
                .entry(key(s, d, f["proto"].as_str().unwrap_or("")))
                .or_default()
                .push(f);
        }
        let text = std::fs::read_to_string(&log).expect("log");
        let mut fields: Vec<&str> = Vec::new();
        let mut conns = 0;
        for line in text.lines() {
            if let Some(f) = line.strip_prefix("#fields\t") {
                fields = f.split('\t').collect();
                continue;
            }
            // Trimmed baselines (zeek-cut output) carry a bare header line instead.
            if fields.is_empty() && line.starts_with("uid\t") {
                fields = line.split('\t').collect();
                continue;
            }
            if line.starts_with('#') || fields.is_empty() {
                continue;
            }
            let row: HashMap<&str, &str> = fields.iter().copied().zip(line.split('\t')).collect();
            conns += 1;
            let Some(orig_pkts) = row.get("orig_pkts") else {
                continue;
            };
            let o = (
                ip(row["id.orig_h"]),
                row["id.orig_p"].parse::<u64>().expect("port"),
            );
            let r = (
                ip(row["id.resp_h"]),
                row["id.resp_p"].parse::<u64>().expect("port"),
            );
            let k = key(o, r, row["proto"]);
            let f = by_key.get(&k).and_then(|v| v.first()).unwrap_or_else(|| {
                panic!("{base}: islet has no flow for zeek conn {o:?} -> {r:?}")
            });
            let ours_is_orig = ip(f["src_ip"].as_str().unwrap_or("")) == o.0
                && f["src_port"].as_u64().unwrap_or(0) == o.1;
            let (ts, tc) = (
                f["flow"]["pkts_toserver"].as_u64().unwrap_or(0),
                f["flow"]["pkts_toclient"].as_u64().unwrap_or(0),
            );
            let ours = if ours_is_orig { (ts, tc) } else { (tc, ts) };
            let zeek = (
                orig_pkts.parse::<u64>().expect("count"),
                row["resp_pkts"].parse::<u64>().expect("count"),
            );
            assert_eq!(
                ours, zeek,
                "{base}: packets (orig, resp) for {o:?} -> {r:?}"
            );
            checked += 1;
        }
        // Baselines without counters (uid/service/history only) still fix the connection count.
        assert_eq!(ours.len(), conns, "{base}: number of connections");
    }
    assert!(checked >= 40, "only {checked} Zeek connections compared");
}

/// Where islet's flow count differs from tshark's conversation count, and why. Any other
/// difference fails the test.
const TSHARK_DIFFERENCES: &[(&str, i64, i64, &str)] = &[
    (
        "sv_ipv4-truncated.pcap",
        0,
        -1,
        "the only packet's IPv4 total length runs past the capture: islet, like Suricata, drops it \
         as ipv4.trunc_pkt; tshark dissects the bytes it has",
    ),
    (
        "sv_rdp-xp-client.pcap",
        2,
        0,
        "10.226.29.74:3955 -> :2998 is reset and reopened three times: islet, like Suricata and \
         Zeek, starts a new flow when a SYN reuses a closed session's tuple; tshark keys \
         conversations by the tuple alone",
    ),
    (
        "sv_vxlan-dns-ssh.pcap",
        0,
        1,
        "the outer VXLAN flow 172.31.0.238:65445 -> :4789 idles 30.8 s, past the UDP timeout \
         (30 s), so it is two flows, as suricata-verify asserts; tshark has no timeouts",
    ),
];

fn tshark_conversations(pcap: &Path) -> (i64, i64) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-q", "-z", "conv,tcp", "-z", "conv,udp"])
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut section, mut tcp, mut udp) = ("", 0, 0);
    for line in text.lines() {
        if line.starts_with("TCP Conversations") {
            section = "tcp";
        } else if line.starts_with("UDP Conversations") {
            section = "udp";
        } else if line.contains(" <-> ")
            && line
                .split_whitespace()
                .next()
                .is_some_and(|w| w.contains(':'))
        {
            match section {
                "tcp" => tcp += 1,
                "udp" => udp += 1,
                _ => {}
            }
        }
    }
    (tcp, udp)
}

#[test]
fn tshark_conversation_counts_agree() {
    let pcaps = islet_testkit::corpus_pcaps("tshark_conversation_counts_agree");
    if pcaps.is_empty()
        || !islet_testkit::tool_or_skip("tshark_conversation_counts_agree", "tshark")
    {
        return;
    }
    let mut mismatches = Vec::new();
    for pcap in &pcaps {
        let name = pcap.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let ours = flows(pcap);
        let count = |p: &str| ours.iter().filter(|f| f["proto"] == p).count() as i64;
        let (tcp, udp) = (count("TCP"), count("UDP"));
        let (ttcp, tudp) = tshark_conversations(pcap);
        let (dt, du) = TSHARK_DIFFERENCES
            .iter()
            .find(|d| d.0 == name)
            .map(|d| (d.1, d.2))
            .unwrap_or((0, 0));
        if (tcp - ttcp, udp - tudp) != (dt, du) {
            mismatches.push(format!(
                "{name}: islet tcp={tcp} udp={udp}, tshark tcp={ttcp} udp={tudp}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(pcaps.len() >= 50);
}

/// Zeek's "weird" baselines for malformed IP, mapped to the Suricata event names islet uses.
#[test]
fn zeek_weirds_are_reported_under_suricata_names() {
    let Some(dir) = islet_testkit::pcap_dir("zeek_weirds_are_reported_under_suricata_names") else {
        return;
    };
    // (capture, Zeek's weird, islet's anomaly.event, flows expected)
    let cases = [
        // IHL 5 but total length 0: Zeek `ip_hdr_len_zero`; no connection.
        (
            "zeek_ip-bogus-header-len.pcap",
            "ip_hdr_len_zero",
            "decoder.ipv4.iplen_smaller_than_hlen",
            0,
        ),
        // A third fragment re-covers offsets 0..304 of a 164-byte datagram: Zeek
        // `fragment_inconsistency`; islet keeps the first bytes and reports the overlap.
        (
            "zeek_ipv4-fragmented-1.pcap",
            "fragment_inconsistency",
            "decoder.ipv4.frag_overlap",
            1,
        ),
    ];
    for (pcap, zeek, ours, nflows) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_islet"))
            .arg("read")
            .arg(dir.join(pcap))
            .args(["-o", "-", "-q"])
            .output()
            .expect("run islet");
        let ev: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let anomalies: Vec<&str> = ev
            .iter()
            .filter(|e| e["event_type"] == "anomaly")
            .filter_map(|e| e["anomaly"]["event"].as_str())
            .collect();
        assert_eq!(anomalies, vec![ours], "{pcap} (Zeek: {zeek})");
        assert_eq!(
            ev.iter().filter(|e| e["event_type"] == "flow").count(),
            nflows,
            "{pcap}"
        );
    }
}
