//! The `islet` command as scripts use it: inputs of every supported kind, exit statuses,
//! and output that does not depend on the worker count.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn islet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_islet"))
        .args(args)
        .output()
        .expect("run islet")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("islet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d.join(name)
}

fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// A record without its chain fields (`islet.seq`, `islet.prev`).
fn unchained(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).expect("JSON line");
    if let Some(i) = v.get_mut("islet").and_then(Value::as_object_mut) {
        i.remove("seq");
        i.remove("prev");
        if i.is_empty() {
            v.as_object_mut().map(|o| o.remove("islet"));
        }
    }
    v.to_string()
}

fn flows(v: &[Value]) -> Vec<&Value> {
    v.iter().filter(|e| e["event_type"] == "flow").collect()
}

/// A UDP/IPv4 datagram 10.1.1.1:5000 -> 10.1.1.2:53 with a DNS-looking payload.
fn ipv4_udp() -> Vec<u8> {
    let payload = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
    ];
    let total = (28 + payload.len()) as u16;
    let mut p = vec![
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 1, 1, 1, 10, 1, 1, 2,
    ];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&5000u16.to_be_bytes());
    p.extend_from_slice(&53u16.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&payload);
    p
}

fn pcap(linktype: u32, nano: bool, packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(if nano { 0xa1b2_3c4du32 } else { 0xa1b2_c3d4 }).to_le_bytes());
    f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
    f.extend_from_slice(&linktype.to_le_bytes());
    for (ts, data) in packets {
        f.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        let frac = ts % 1_000_000_000;
        let frac = if nano { frac } else { frac / 1000 };
        f.extend_from_slice(&(frac as u32).to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(data);
    }
    f
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn read_ok(p: &Path) -> Vec<Value> {
    let o = islet(&["read", p.to_str().expect("path"), "-q"]);
    assert!(
        o.status.success(),
        "{}: {}",
        p.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    events(&o.stdout)
}

const T0: u64 = 1_700_000_000_123_456_789;

#[test]
fn every_link_type_yields_the_same_flow() {
    let ip = ipv4_udp();
    let mut eth = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    eth.extend_from_slice(&ip);
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let mut null_le = vec![2, 0, 0, 0];
    null_le.extend_from_slice(&ip);
    let cases: [(&str, u32, Vec<u8>); 7] = [
        ("eth", 1, eth),
        ("raw101", 101, ip.clone()),
        ("raw228", 228, ip.clone()),
        ("sll", 113, sll),
        ("sll2", 276, sll2),
        ("null", 0, null_le),
        ("eth-nano", 1, {
            let mut e = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
            e.extend_from_slice(&ip);
            e
        }),
    ];
    for (name, lt, frame) in cases {
        let nano = name.ends_with("nano");
        let p = write(&format!("{name}.pcap"), &pcap(lt, nano, &[(T0, frame)]));
        let ev = read_ok(&p);
        let f = flows(&ev);
        assert_eq!(f.len(), 1, "{name}");
        assert_eq!(f[0]["src_ip"], "10.1.1.1", "{name}");
        assert_eq!(f[0]["dest_port"], 53, "{name}");
        assert_eq!(f[0]["app_proto"], "dns", "{name}");
        let start = f[0]["flow"]["start"].as_str().expect("start");
        assert_eq!(start, "2023-11-14T22:13:20.123456+0000", "{name}");
    }
    // 229 is raw IPv6: an IPv4 packet there is refused by the IPv6 decoder.
    let p = write("raw229.pcap", &pcap(229, false, &[(T0, ip)]));
    let ev = read_ok(&p);
    assert_eq!(
        ev.iter()
            .filter(|e| e["anomaly"]["event"] == "decoder.ipv6.wrong_ip_version")
            .count(),
        1
    );
}

/// pcapng with two sections, two interfaces of different link types and timestamp
/// resolutions (nanoseconds; 2^-10 s).
#[test]
fn pcapng_sections_interfaces_and_resolutions() {
    fn block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
        let len = (12 + body.len().div_ceil(4) * 4) as u32;
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (4 - body.len() % 4) % 4, 0);
        out.extend_from_slice(&len.to_le_bytes());
    }
    fn shb(out: &mut Vec<u8>) {
        let mut b = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&(-1i64).to_le_bytes());
        block(out, 0x0A0D_0D0A, &b);
    }
    fn idb(out: &mut Vec<u8>, linktype: u16, tsresol: u8) {
        let mut b = linktype.to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0, 0xff, 0xff, 0, 0]);
        b.extend_from_slice(&[9, 0, 1, 0, tsresol, 0, 0, 0, 0, 0, 0, 0]);
        block(out, 1, &b);
    }
    fn epb(out: &mut Vec<u8>, iface: u32, units: u64, data: &[u8]) {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(units as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        block(out, 6, &b);
    }
    let ip = ipv4_udp();
    let mut eth = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    eth.extend_from_slice(&ip);
    let mut f = Vec::new();
    shb(&mut f);
    idb(&mut f, 1, 9); // Ethernet, nanoseconds
    idb(&mut f, 228, 0x80 | 10); // raw IPv4, 2^-10 s
    epb(&mut f, 0, 1_700_000_000_000_000_001, &eth);
    epb(&mut f, 1, 1_700_000_001 * 1024 + 512, &ip); // +1.5 s
    shb(&mut f);
    idb(&mut f, 228, 6); // a new section restarts interface numbering
    epb(&mut f, 0, 1_700_000_002_250_000, &ip);
    let p = write("multi.pcapng", &f);
    let ev = read_ok(&p);
    let fl = flows(&ev);
    assert_eq!(fl.len(), 1);
    assert_eq!(fl[0]["flow"]["pkts_toserver"], 3);
    assert_eq!(fl[0]["flow"]["start"], "2023-11-14T22:13:20.000000+0000");
    assert_eq!(fl[0]["flow"]["end"], "2023-11-14T22:13:22.250000+0000");
}

#[test]
fn several_files_are_one_stream() {
    let mut eth = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    eth.extend_from_slice(&ipv4_udp());
    let a = write("part1.pcap", &pcap(1, false, &[(T0, eth.clone())]));
    let b = write("part2.pcap", &pcap(1, false, &[(T0 + 1_000_000_000, eth)]));
    let o = islet(&[
        "read",
        a.to_str().unwrap_or(""),
        b.to_str().unwrap_or(""),
        "-q",
    ]);
    assert!(o.status.success());
    let ev = events(&o.stdout);
    let f = flows(&ev);
    assert_eq!(f.len(), 1, "one flow across both files");
    assert_eq!(f[0]["flow"]["pkts_toserver"], 2);
}

#[test]
fn bad_inputs_exit_2_with_a_reason() {
    let junk = write("junk.pcap", b"this is not a capture file at all");
    let o = islet(&["read", junk.to_str().unwrap_or(""), "-q"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("junk.pcap") && err.contains("not a pcap"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains("backtrace"));

    let o = islet(&["read", "/nonexistent/x.pcap"]);
    assert_eq!(o.status.code(), Some(2));

    let o = islet(&["read"]);
    assert_eq!(o.status.code(), Some(2), "missing PCAP is a usage error");
    let o = islet(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));

    // A record header claiming 200 MB in the middle of the file: corrupt, with its offset.
    let mut eth = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    eth.extend_from_slice(&ipv4_udp());
    let mut f = pcap(1, false, &[(T0, eth.clone()), (T0 + 1, eth.clone())]);
    let second = 24 + 16 + eth.len();
    f[second + 8..second + 12].copy_from_slice(&200_000_000u32.to_le_bytes());
    f.extend_from_slice(&pcap(1, false, &[(T0 + 2, eth)])[24..]);
    let p = write("corrupt.pcap", &f);
    let o = islet(&["read", p.to_str().unwrap_or(""), "-q"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("corrupt.pcap") && err.contains(&format!("offset {second}")),
        "{err}"
    );
    // What came before the damage is still reported.
    assert_eq!(flows(&events(&o.stdout)).len(), 1);
}

#[test]
fn truncated_last_record_is_a_warning_and_everything_before_it_is_kept() {
    let mut eth = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    eth.extend_from_slice(&ipv4_udp());
    let mut f = pcap(1, false, &[(T0, eth.clone()), (T0 + 1000, eth)]);
    f.truncate(f.len() - 10);
    let p = write("cut.pcap", &f);
    let o = islet(&["read", p.to_str().unwrap_or(""), "-q"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cut.pcap") && err.contains("truncated last record"),
        "{err}"
    );
    let ev = events(&o.stdout);
    assert_eq!(flows(&ev)[0]["flow"]["pkts_toserver"], 1);
}

#[test]
fn output_set_is_the_same_for_any_worker_count() {
    let pcap = tmp("workers.pcap");
    let o = islet(&[
        "synth",
        "-o",
        pcap.to_str().unwrap_or(""),
        "--flows",
        "3000",
        "--seed",
        "11",
        "--duration",
        "120",
    ]);
    assert!(o.status.success());
    let mut inputs = vec![pcap];
    if let Some(dir) = islet_testkit::pcap_dir("output_set_is_the_same_for_any_worker_count") {
        for n in [
            "sv_vxlan-dns-ssh.pcap",
            "ja4_tunnels-gre-erspan-vxlan.pcap",
            "ppa_ipv4-fragments-icmp.pcap",
        ] {
            inputs.push(dir.join(n));
        }
    }
    for input in inputs {
        let mut sets = Vec::new();
        for w in ["1", "2", "4"] {
            let o = islet(&["read", input.to_str().unwrap_or(""), "-q", "--workers", w]);
            assert!(o.status.success());
            // The chain's sequence numbers follow the (worker-dependent) write order; the
            // records themselves must not.
            let mut lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.contains("\"event_type\":\"stats\""))
                .filter(|l| !l.contains("\"event_type\":\"checkpoint\""))
                .map(unchained)
                .collect();
            lines.sort();
            sets.push(lines);
        }
        assert!(!sets[0].is_empty());
        assert_eq!(sets[0], sets[1], "{}: 1 vs 2 workers", input.display());
        assert_eq!(sets[0], sets[2], "{}: 1 vs 4 workers", input.display());
    }
}

#[test]
fn no_progress_bar_when_not_a_terminal() {
    let mut eth = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    eth.extend_from_slice(&ipv4_udp());
    let p = write("quiet.pcap", &pcap(1, false, &[(T0, eth)]));
    let o = islet(&["read", p.to_str().unwrap_or("")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "escape codes on a non-terminal: {err:?}"
    );
    assert!(err.contains("1 packets"), "{err}");
}
