//! The tc rules islet programs, against outside truth.
//!
//! Flower: iproute2's `tc` is the reference encoder of flower filters. The test runs it under
//! strace in a namespace of its own (the kernel may refuse the rule: this machine's has no
//! cls_flower; the request is what is compared) and checks that every attribute islet sends
//! is in iproute2's request for the same rule, at the same place, with the same bytes; the
//! only attributes iproute2 adds are all-ones address masks (the kernel's default).
//!
//! cls_bpf: the classic BPF program for a flow is run over frames of that flow and of others.

use islet_capture::tc::{FlowMatch, RuleAction, Tc, flow_program, run_program};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;

/// Netlink attributes flattened to (path of types, payload of leaves). Nested attributes are
/// recognised by the paths given in `nested`.
fn flatten(buf: &[u8], path: &str, nested: &[&str], out: &mut BTreeMap<String, Vec<u8>>) {
    let mut off = 0;
    while off + 4 <= buf.len() {
        let len = u16::from_ne_bytes([buf[off], buf[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([buf[off + 2], buf[off + 3]]);
        assert!(
            len >= 4 && off + len <= buf.len(),
            "malformed attribute at {path}/{off}"
        );
        let p = format!("{path}/{ty:#06x}");
        let payload = &buf[off + 4..off + len];
        if nested.contains(&p.as_str()) {
            flatten(payload, &p, nested, out);
        } else {
            assert!(
                out.insert(p.clone(), payload.to_vec()).is_none(),
                "{p} twice"
            );
        }
        off += (len + 3) & !3;
    }
}

/// TCA_OPTIONS of flower: ACT (3) → prio 1 → ACT_OPTIONS (2 | NESTED).
const NESTED: &[&str] = &["/0x0003", "/0x0003/0x0001", "/0x0003/0x0001/0x8002"];

fn hex_to_bytes(s: &str) -> Vec<u8> {
    s.split("\\x")
        .filter(|h| !h.is_empty())
        .map(|h| u8::from_str_radix(&h[..2], 16).expect("hex"))
        .collect()
}

#[test]
fn flower_request_matches_iproute2() {
    let test = "flower_request_matches_iproute2";
    if !islet_testkit::netns_or_skip(test)
        || !islet_testkit::tool_or_skip(test, "tc")
        || !islet_testkit::tool_or_skip(test, "strace")
    {
        return;
    }
    let ns = format!("islet-tc-{}", std::process::id());
    assert!(
        Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .expect("ip")
            .success()
    );
    let cases = [
        ("10.0.0.1", "10.0.0.2", "tcp", 6u8, 1234u16, 9090u16),
        ("192.0.2.7", "198.51.100.9", "udp", 17, 53000, 53),
    ];
    let mut failures = Vec::new();
    for (src, dst, proto, pnum, sp, dp) in cases {
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "strace",
                "-e",
                "trace=sendmsg",
                "-xx",
                "-s",
                "4096",
            ])
            .args([
                "tc", "filter", "add", "dev", "lo", "ingress", "protocol", "ip",
            ])
            .args(["pref", "49152", "handle", "1", "flower", "ip_proto", proto])
            .args(["src_ip", src, "dst_ip", dst])
            .args([
                "src_port",
                &sp.to_string(),
                "dst_port",
                &dp.to_string(),
                "action",
                "drop",
            ])
            .output()
            .expect("strace tc");
        let text = String::from_utf8_lossy(&o.stderr);
        let line = text
            .lines()
            .find(|l| l.contains("RTM_NEWTFILTER"))
            .unwrap_or_else(|| panic!("no RTM_NEWTFILTER in strace output:\n{text}"));
        let opts = line
            .split("nla_type=TCA_OPTIONS}, \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("TCA_OPTIONS payload");
        let theirs_raw = hex_to_bytes(opts);
        let info = line
            .split("tcm_info=")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u32>().ok())
            .expect("tcm_info");
        let m = FlowMatch {
            src: src.parse::<IpAddr>().expect("ip"),
            dst: dst.parse::<IpAddr>().expect("ip"),
            proto: pnum,
            sport: sp,
            dport: dp,
        };
        let tc = Tc::open().expect("netlink socket");
        let mine = tc
            .flower_request(1, 1, &m, RuleAction::Drop)
            .expect("request");
        // tcmsg is 20 bytes; then TCA_KIND, then TCA_OPTIONS.
        let my_info = u32::from_ne_bytes([mine[16], mine[17], mine[18], mine[19]]);
        assert_eq!(my_info, info, "tcm_info (priority and protocol)");
        let mut top = BTreeMap::new();
        flatten(&mine[20..], "", &[], &mut top);
        assert_eq!(
            top.get("/0x0001").map(Vec::as_slice),
            Some(&b"flower\0"[..])
        );
        let my_opts = top.get("/0x0002").expect("TCA_OPTIONS");
        let (mut ours, mut theirs) = (BTreeMap::new(), BTreeMap::new());
        flatten(my_opts, "", NESTED, &mut ours);
        flatten(&theirs_raw, "", NESTED, &mut theirs);
        for (k, v) in &ours {
            if theirs.get(k) != Some(v) {
                failures.push(format!(
                    "{src}->{dst}: {k}: ours {v:02x?}, iproute2 {:02x?}",
                    theirs.get(k)
                ));
            }
        }
        for (k, v) in &theirs {
            // Address masks of all ones are what the kernel assumes when none is given.
            let full_mask =
                matches!(k.as_str(), "/0x000b" | "/0x000d") && v.iter().all(|b| *b == 0xFF);
            if !ours.contains_key(k) && !full_mask {
                failures.push(format!(
                    "{src}->{dst}: iproute2 sends {k} = {v:02x?}, islet does not"
                ));
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// An Ethernet + IPv4 + TCP/UDP frame.
fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, sp: u16, dp: u16, ihl: u8, frag: u16) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let hl = ihl as usize * 4;
    let mut ip = vec![0u8; hl];
    ip[0] = 0x40 | ihl;
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sp.to_be_bytes());
    f.extend_from_slice(&dp.to_be_bytes());
    f.extend_from_slice(&[0u8; 16]);
    f
}

#[test]
fn bpf_program_matches_exactly_its_flow() {
    let m = FlowMatch {
        src: "10.0.0.1".parse().expect("ip"),
        dst: "10.0.0.2".parse().expect("ip"),
        proto: 6,
        sport: 40000,
        dport: 9090,
    };
    let p = flow_program(&m, 2);
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    assert_eq!(run_program(&p, &v4(a, b, 6, 40000, 9090, 5, 0)), 2);
    // IP options move the ports; the program follows the header length.
    assert_eq!(run_program(&p, &v4(a, b, 6, 40000, 9090, 7, 0)), 2);
    // The first fragment carries the ports and matches; later fragments never do.
    assert_eq!(run_program(&p, &v4(a, b, 6, 40000, 9090, 5, 0x2000)), 2);
    assert_eq!(
        run_program(&p, &v4(a, b, 6, 40000, 9090, 5, 0x0010)),
        u32::MAX
    );
    for other in [
        v4(b, a, 6, 9090, 40000, 5, 0),
        v4(a, b, 17, 40000, 9090, 5, 0),
        v4(a, b, 6, 40001, 9090, 5, 0),
        v4(a, b, 6, 40000, 9091, 5, 0),
        v4([10, 0, 0, 3], b, 6, 40000, 9090, 5, 0),
    ] {
        assert_eq!(run_program(&p, &other), u32::MAX);
    }
    // Truncated frames end the program (the kernel returns 0 there, which tc treats as OK).
    assert_eq!(run_program(&p, &v4(a, b, 6, 40000, 9090, 5, 0)[..30]), 0);
    // IPv6.
    let m6 = FlowMatch {
        src: "2001:db8::1".parse().expect("ip"),
        dst: "2001:db8::2".parse().expect("ip"),
        proto: 17,
        sport: 5353,
        dport: 53,
    };
    let p6 = flow_program(&m6, 0);
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x86, 0xDD]);
    let mut ip = vec![0u8; 40];
    ip[0] = 0x60;
    ip[6] = 17;
    let (s6, d6): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
        "2001:db8::1".parse().expect("ip"),
        "2001:db8::2".parse().expect("ip"),
    );
    ip[8..24].copy_from_slice(&s6.octets());
    ip[24..40].copy_from_slice(&d6.octets());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&5353u16.to_be_bytes());
    f.extend_from_slice(&53u16.to_be_bytes());
    f.extend_from_slice(&[0u8; 8]);
    assert_eq!(run_program(&p6, &f), 0);
    f[14 + 8 + 15] ^= 1;
    assert_eq!(run_program(&p6, &f), u32::MAX);
}
