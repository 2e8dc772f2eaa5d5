//! The live sensor for real, in network namespaces this test builds: workloads `a`
//! (10.77.x.1) and `b` (10.77.x.2) and a `sensor` namespace between them, joined by veth pairs.
//!
//! Inline: islet bridges the sensor's two ports; ping, a 4 MiB HTTP download and HTTPS pass
//! under a policy that allows them; a denied port fails with a policy alert naming the rule and
//! a tc rule for the flow, while allowed traffic keeps flowing; SIGHUP with a changed policy
//! denies a port that was allowed, without a restart; SIGTERM drains: every connection made
//! has its flow record, the signed log verifies with its final checkpoint, and no tc rule
//! remains. Tap: islet monitors a port of a kernel bridge while tcpdump captures the same port;
//! the flows and HTTP metadata it reports live equal those of `islet read` on the capture.
//!
//! Needs root and iproute2, curl, ping, tcpdump, python3, openssl; skipped with the reason
//! elsewhere (`.ci/run` requires it). Only addresses inside the namespaces are used. The
//! namespaces and processes go when the test ends, whether it passes or not.

mod common;

use common::netlab::{ISLET, Lab, lines, ok, wait_for};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

const INVENTORY: &str = r#"
[[workload]]
name = "client"
kind = "pod"
namespace = "lab"
labels = { app = "client" }
addresses = ["10.77.NET.1"]
[[workload]]
name = "server"
kind = "pod"
namespace = "lab"
labels = { app = "server" }
addresses = ["10.77.NET.2"]
"#;

/// Deny 9090 (and, in the second version, 7070); allow web, HTTPS, 7070 and ping.
fn policy(deny_7070: bool) -> String {
    let rule = |id: &str, prio: u32, action: &str, ports: &str| {
        format!(
            r#"
[[rule]]
id = "{id}"
tier = "lab"
priority = {prio}
action = "{action}"
direction = "ingress"
subject = {{ namespace = "lab", labels = {{ app = "server" }} }}
peers = [{{ namespace = "lab", labels = {{ app = "client" }} }}]
ports = [{ports}]
"#
        )
    };
    let mut p = String::from("tiers = [\"lab\"]\n");
    p += &rule("deny-admin-port", 0, "deny", "\"tcp/9090\"");
    if deny_7070 {
        p += &rule("deny-legacy-port", 1, "deny", "\"tcp/7070\"");
    }
    p += &rule(
        "allow-web",
        2,
        "allow",
        "\"tcp/8080\", \"tcp/8443\", \"tcp/7070\", \"icmp\"",
    );
    p
}

/// A TLS server on 8443 in `b` (a self-signed certificate made here).
fn tls_server(lab: &mut Lab, net: u8) {
    let d = lab.dir.clone();
    let (key, cert) = (d.join("tls.key"), d.join("tls.crt"));
    ok(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=server.lab",
        "-days",
        "1",
        "-keyout",
        key.to_str().expect("path"),
        "-out",
        cert.to_str().expect("path"),
    ]);
    let script = format!(
        "import http.server,ssl,os\n\
         os.chdir('{}')\n\
         s=http.server.ThreadingHTTPServer(('10.77.{net}.2',8443),http.server.SimpleHTTPRequestHandler)\n\
         c=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         c.load_cert_chain('{}','{}')\n\
         s.socket=c.wrap_socket(s.socket,server_side=True)\n\
         s.serve_forever()\n",
        d.join("www").display(),
        cert.display(),
        key.display()
    );
    let b = lab.b().to_owned();
    lab.spawn(&b, &["python3", "-c", &script], Stdio::null());
}

fn web_servers(lab: &mut Lab, net: u8, ports: &[u16]) {
    // A 4 MiB file: a transfer large enough for GSO super-frames and offloaded checksums.
    let www = lab.dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    let big: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
    std::fs::write(www.join("big.bin"), big).expect("big");
    std::fs::write(www.join("index.html"), "hello from b\n").expect("index");
    // Larger than every socket buffer between b and a: a rate-limited download of it is still
    // under way seconds later.
    std::fs::write(www.join("slow.bin"), vec![7u8; 48 << 20]).expect("slow");
    let b = lab.b().to_owned();
    for p in ports {
        let script = format!(
            "import http.server,functools\n\
             h=functools.partial(http.server.SimpleHTTPRequestHandler,directory='{}')\n\
             http.server.ThreadingHTTPServer(('10.77.{net}.2',{p}),h).serve_forever()\n",
            www.display()
        );
        lab.spawn(&b, &["python3", "-c", &script], Stdio::null());
    }
}

fn tools(test: &str) -> bool {
    islet_testkit::netns_or_skip(test)
        && [
            "curl", "ping", "tcpdump", "python3", "openssl", "tc", "kill", "ethtool",
        ]
        .iter()
        .all(|t| islet_testkit::tool_or_skip(test, t))
}

#[test]
fn inline_afpacket_enforces_reloads_and_drains() {
    if tools("inline_afpacket_enforces_reloads_and_drains") {
        inline("afpacket", 1, "i");
    }
}

#[test]
fn inline_afxdp_enforces_reloads_and_drains() {
    if tools("inline_afxdp_enforces_reloads_and_drains") {
        inline("afxdp", 4, "x");
    }
}

fn inline(backend: &str, net: u8, tag: &str) {
    let mut lab = Lab::new(tag, net);
    let d = lab.dir.clone();
    std::fs::write(
        d.join("inv.toml"),
        INVENTORY.replace("NET", &net.to_string()),
    )
    .expect("w");
    std::fs::write(d.join("policy.toml"), policy(false)).expect("w");
    ok(&[
        ISLET,
        "log",
        "keygen",
        "--out",
        d.join("keys").to_str().expect("p"),
    ]);
    web_servers(&mut lab, net, &[8080, 9090, 7070]);
    tls_server(&mut lab, net);
    let eve = d.join("eve.json");
    // AF_XDP keeps bypassed flows in the kernel: the XDP program redirects them to the other
    // port. A veth peer takes redirected frames only with NAPI (GRO on) and needs the
    // workloads to compute their own checksums (a NIC's wire traffic always has them).
    std::fs::write(d.join("islet.toml"), "[live]\nkernel_bypass = \"on\"\n").expect("w");
    if backend == "afxdp" {
        for n in [lab.a().to_owned(), lab.b().to_owned()] {
            ok(&[
                "ip", "netns", "exec", &n, "ethtool", "-K", "eth0", "gro", "on", "tx", "off",
            ]);
        }
    }
    let (islet, err) = lab.islet(&[
        "run",
        "-c",
        d.join("islet.toml").to_str().expect("p"),
        "--inline",
        "sa,sb",
        "--backend",
        backend,
        "-w",
        "2",
        "--policy",
        d.join("policy.toml").to_str().expect("p"),
        "--inventory",
        d.join("inv.toml").to_str().expect("p"),
        "--sign-key",
        d.join("keys/sensor.key").to_str().expect("p"),
        "--stats-interval",
        "1",
        "--user",
        "nobody",
        "--metrics",
        "127.0.0.1:9911",
        "-o",
        eve.to_str().expect("p"),
    ]);
    wait_for("islet to open its ports", Duration::from_secs(20), || {
        err.lock().expect("lock").contains(" over AF_")
    });
    // Root is gone once the sockets are open; only CAP_NET_ADMIN (12) and CAP_NET_RAW (13)
    // remain (the tc rules below are added and removed with them).
    wait_for("the privilege drop", Duration::from_secs(10), || {
        err.lock().expect("lock").contains("now running as nobody")
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", lab.children[islet].id()))
        .expect("status");
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| {
                l[k.len()..]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{status}");
    assert_eq!(field("CapEff:"), "0000000000003000", "{status}");
    assert!(
        err.lock()
            .expect("lock")
            .contains("keeping CAP_NET_ADMIN and CAP_NET_RAW")
    );
    let b_ip = format!("10.77.{net}.2");
    let url = |port: u16, path: &str| format!("http://{b_ip}:{port}/{path}");
    // The servers start in the background: wait until the allowed one answers through islet.
    wait_for(
        "the web server through the bridge",
        Duration::from_secs(20),
        || lab.curl(&url(8080, ""), "2").1 == "200",
    );
    let mut connections: BTreeMap<u16, u64> = BTreeMap::new();
    *connections.entry(8080).or_default() += 1;

    // 1. ping, TCP (4 MiB, GSO and partial checksums on veth), HTTP and HTTPS pass.
    let ping = lab.exec(lab.a(), &["ping", "-c", "3", "-i", "0.2", "-W", "2", &b_ip]);
    assert!(
        ping.status.success(),
        "ping through the inline sensor failed"
    );
    // Tagged frames (802.1Q, and 802.1ad over 802.1Q) arrive byte for byte, tags included.
    tagged_frames_pass_unchanged(&mut lab, net);
    let (st, code, size) = lab.curl(&url(8080, "big.bin"), "20");
    *connections.entry(8080).or_default() += 1;
    assert_eq!(
        (st, code.as_str(), size),
        (0, "200", 4 << 20),
        "bulk TCP transfer"
    );
    wait_for("the TLS server", Duration::from_secs(20), || {
        lab.curl(&format!("https://{b_ip}:8443/"), "2").1 == "200"
    });
    // A 4 MiB download over HTTPS: metadata from the handshake, then bypassed.
    let (st, code, size) = lab.curl(&format!("https://{b_ip}:8443/big.bin"), "20");
    assert_eq!(
        (st, code.as_str(), size),
        (0, "200", 4 << 20),
        "HTTPS download"
    );
    let (st, code, _) = lab.curl(&url(7070, ""), "5");
    *connections.entry(7070).or_default() += 1;
    assert_eq!(
        (st, code.as_str()),
        (0, "200"),
        "7070 is allowed by the first policy"
    );

    // 2 and 4. The denied port fails, with a tc rule for its flow while it is tried; allowed
    // traffic keeps flowing meanwhile.
    let denied = std::thread::scope(|sc| {
        let h = sc.spawn(|| lab.curl(&url(9090, ""), "4"));
        std::thread::sleep(Duration::from_millis(1500));
        let rules = String::from_utf8_lossy(
            &lab.exec(lab.s(), &["tc", "filter", "show", "dev", "sa", "ingress"])
                .stdout,
        )
        .into_owned();
        let during = lab.curl(&url(8080, ""), "5");
        (h.join().expect("curl"), rules, during)
    });
    *connections.entry(9090).or_default() += 1;
    *connections.entry(8080).or_default() += 1;
    let ((st, code, _), rules, during) = denied;
    assert_eq!(
        st, 28,
        "a connection to the denied port times out (code {code})"
    );
    assert_eq!(
        during.1, "200",
        "allowed traffic flows while a denied flow is dropped"
    );
    assert!(
        rules.contains("pref 49152") && (rules.contains("flower") || rules.contains("bpf")),
        "a tc rule for the denied flow: {rules}"
    );
    if rules.contains("flower") {
        assert!(rules.contains("dst_port 9090"), "{rules}");
    } else {
        // No cls_flower in this kernel: the same rule as cls_bpf, said so on stderr.
        assert!(rules.contains("direct-action"), "{rules}");
        assert!(err.lock().expect("lock").contains("no flower classifier"));
    }

    // 5. SIGHUP with a policy that denies 7070, while a slow download from 7070 (allowed when
    // it started) is under way: that flow is cut and new ones are refused, without a restart.
    let (slow, _) = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            lab.exec(
                lab.a(),
                &[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "--limit-rate",
                    "200k",
                    "--speed-time",
                    "2",
                    "--speed-limit",
                    "1000",
                    "--max-time",
                    "30",
                    "-w",
                    "%{size_download}",
                    &url(7070, "slow.bin"),
                ],
            )
        });
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::write(d.join("policy.toml"), policy(true)).expect("w");
        lab.signal(islet, "-HUP");
        wait_for("the reload", Duration::from_secs(10), || {
            err.lock().expect("lock").contains("policy reloaded")
        });
        (h.join().expect("slow curl"), ())
    });
    *connections.entry(7070).or_default() += 1;
    let got: u64 = String::from_utf8_lossy(&slow.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        !slow.status.success() && got > 0 && got < 48 << 20,
        "the open 7070 download is cut by the reload ({got} bytes, {:?})",
        slow.status
    );
    let (st, _, _) = lab.curl(&url(7070, ""), "3");
    *connections.entry(7070).or_default() += 1;
    assert_eq!(st, 28, "7070 is denied after the reload");
    let (_, code, _) = lab.curl(&url(8080, ""), "5");
    *connections.entry(8080).or_default() += 1;
    assert_eq!(code, "200");
    assert!(
        lab.children[islet].try_wait().expect("wait").is_none(),
        "islet kept running"
    );

    // The performance-to-protection figures on the metrics endpoint (the sensor's loopback).
    let scrape = ok(&[
        "ip",
        "netns",
        "exec",
        lab.s(),
        "curl",
        "-s",
        "--max-time",
        "5",
        "http://127.0.0.1:9911/metrics",
    ]);
    let metric = |name: &str| -> f64 {
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from the metrics:\n{scrape}"))
    };
    assert!(metric("islet_live_forwarded_packets_total") > 100.0);
    assert!(metric("islet_live_blocked_packets_total") > 0.0);
    assert!(metric("islet_coverage_ratio") > 0.99);
    assert!(metric("islet_protected_packets_per_cpu_second") > 0.0);
    assert!(metric("islet_cpu_seconds_total") > 0.0);

    // 6. SIGTERM drains.
    lab.signal(islet, "-TERM");
    let status = lab.wait(islet, Duration::from_secs(30));
    let stderr = err.lock().expect("lock").clone();
    assert!(status.success(), "islet exit: {status:?}\n{stderr}");
    let rules = ok(&[
        "ip",
        "netns",
        "exec",
        lab.s(),
        "tc",
        "filter",
        "show",
        "dev",
        "sa",
        "ingress",
    ]);
    assert!(rules.trim().is_empty(), "rules left behind: {rules}");
    let qd = ok(&[
        "ip",
        "netns",
        "exec",
        lab.s(),
        "tc",
        "qdisc",
        "show",
        "dev",
        "sa",
    ]);
    assert!(!qd.contains("clsact"), "clsact left behind: {qd}");
    let v = Command::new(ISLET)
        .args(["log", "verify"])
        .arg(&eve)
        .arg("--key")
        .arg(d.join("keys/sensor.pub"))
        .output()
        .expect("verify");
    assert!(
        v.status.success(),
        "the log verifies: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    let ev = lines(&eve);
    let flows_to = |port: u16| {
        ev.iter()
            .filter(|e| e["event_type"] == "flow" && e["dest_port"] == port && e["proto"] == "TCP")
            .count() as u64
    };
    for (port, n) in &connections {
        assert!(
            flows_to(*port) >= *n,
            "port {port}: {} flow records for {n} connections",
            flows_to(*port)
        );
    }
    let alert_rules: Vec<&str> = ev
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .filter_map(|e| e["islet"]["policy"]["rule"].as_str())
        .collect();
    assert!(alert_rules.contains(&"deny-admin-port"), "{alert_rules:?}");
    assert!(alert_rules.contains(&"deny-legacy-port"), "{alert_rules:?}");
    assert!(
        ev.iter().any(|e| e["event_type"] == "alert"
            && e["alert"]["action"] == "blocked"
            && e["dest_port"] == 9090),
        "the 9090 alert says blocked"
    );
    // Flows still open at SIGTERM end with reason shutdown.
    assert!(
        ev.iter()
            .any(|e| e["event_type"] == "flow" && e["flow"]["reason"] == "shutdown")
    );
    // TLS metadata was logged, then the flow was bypassed and still counted.
    assert!(ev.iter().any(|e| e["event_type"] == "tls"));
    let kind = if backend == "afxdp" {
        "capture"
    } else {
        "local"
    };
    let https: Vec<&serde_json::Value> = ev
        .iter()
        .filter(|e| e["event_type"] == "flow" && e["dest_port"] == 8443 && e["proto"] == "TCP")
        .filter(|e| e["flow"]["bypass"] == kind)
        .collect();
    assert!(
        !https.is_empty(),
        "the HTTPS flow is bypassed ({kind}) after its handshake"
    );
    if backend == "afxdp" {
        // Its packets after the handshake went through the kernel, counted in the map.
        let b = &https[0]["flow"]["bypassed"];
        assert!(b["pkts_toclient"].as_u64().expect("pkts") > 0, "{b}");
    }
    let live_stats: Vec<&serde_json::Value> = ev
        .iter()
        .filter(|e| e["event_type"] == "stats" && e["stats"]["live"]["mode"] == "inline")
        .collect();
    let last = live_stats.last().expect("a live stats record");
    let s = &last["stats"];
    assert!(s["ips"]["blocked"].as_u64().expect("blocked") > 0);
    assert!(s["ips"]["accepted"].as_u64().expect("accepted") > 100);
    let key = if backend == "afxdp" {
        "pkts"
    } else {
        "local_pkts"
    };
    assert!(s["flow_bypassed"][key].as_u64().expect("bypass") > 0, "{s}");
    assert_eq!(s["offload"]["rules"], 0, "no rule in place after stop");
    assert!(s["offload"]["installed"].as_u64().expect("installed") >= 2);
    assert!(s["protection"]["coverage"].as_f64().expect("coverage") > 0.99);
    assert!(
        s["protection"]["protected_pkts_per_cpu_second"]
            .as_f64()
            .expect("ratio")
            > 0.0
    );
    assert!(stderr.contains("coverage"), "stats lines on stderr");
    assert_eq!(s["live"]["backend"], backend);
    if backend == "afxdp" {
        assert!(stderr.contains("over AF_XDP ("), "{stderr}");
        let link = ok(&["ip", "-n", lab.s(), "link", "show", "sa"]);
        assert!(!link.contains("xdp"), "XDP program left attached: {link}");
    }
}

/// Send VLAN-tagged UDP frames from `a` with a raw socket while `b` captures: each must arrive
/// exactly as sent (AF_PACKET hands islet the outer tag beside the frame; islet puts it back).
fn tagged_frames_pass_unchanged(lab: &mut Lab, net: u8) {
    let pcap = lab.dir.join("vlan.pcap");
    let b = lab.b().to_owned();
    let bmac = ok(&[
        "ip",
        "netns",
        "exec",
        &b,
        "cat",
        "/sys/class/net/eth0/address",
    ])
    .trim()
    .replace(':', "");
    let dump = lab.tcpdump(
        &b,
        &[
            "-i",
            "eth0",
            "-U",
            "-s",
            "0",
            "-w",
            pcap.to_str().expect("p"),
        ],
    );
    let script = format!(
        r#"
import socket, struct
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s > 0xffff: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
a = bytes.fromhex(open('/sys/class/net/eth0/address').read().strip().replace(':', ''))
bm = bytes.fromhex('{bmac}')
out = []
for i, tags in enumerate([[(0x8100, 100)], [(0x88a8, 7), (0x8100, 200)], [(0x8100, 0x2064)]]):
    payload = b'islet-vlan-%d' % i
    udp = struct.pack('!HHHH', 40000 + i, 9999, 8 + len(payload), 0) + payload
    src, dst = bytes([10, 79, {net}, 1]), bytes([10, 79, {net}, 2])
    ph = src + dst + struct.pack('!BBH', 0, 17, len(udp))
    udp = udp[:6] + struct.pack('!H', csum(ph + udp)) + udp[8:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    f = bm + a
    for tpid, tci in tags:
        f += struct.pack('!HH', tpid, tci)
    f += b'\x08\x00' + ip + udp
    out.append(f)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for f in out:
    s.send(f)
print('\n'.join(f.hex() for f in out))
"#
    );
    let sent = ok(&["ip", "netns", "exec", lab.a(), "python3", "-c", &script]);
    std::thread::sleep(Duration::from_millis(800));
    lab.signal(dump, "-INT");
    lab.wait(dump, Duration::from_secs(10));
    let mut got = Vec::new();
    let mut src = islet_capture::PcapFiles::open(&[pcap]).expect("vlan capture");
    loop {
        use islet_capture::PacketSource;
        let n = src
            .read_batch(64, &mut |p| got.push(p.data.to_vec()))
            .expect("read");
        if n == 0 {
            break;
        }
    }
    for line in sent.lines() {
        let want: Vec<u8> = (0..line.len() / 2)
            .map(|i| u8::from_str_radix(&line[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        assert!(
            got.contains(&want),
            "tagged frame {line} did not arrive unchanged; {} frames captured",
            got.len()
        );
    }
}

/// The flows and HTTP transactions of a log, as comparable keys.
fn summary(ev: &[serde_json::Value]) -> (Vec<String>, Vec<String>) {
    let mut flows = Vec::new();
    let mut http = Vec::new();
    for e in ev {
        let t = format!(
            "{} {}:{} -> {}:{}",
            e["proto"], e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"]
        );
        match e["event_type"].as_str() {
            Some("flow")
                if e["dest_ip"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("10.77.")) =>
            {
                let f = &e["flow"];
                flows.push(format!(
                    "{t} app={} pkts={}/{} bytes={}/{}",
                    e["app_proto"],
                    f["pkts_toserver"],
                    f["pkts_toclient"],
                    f["bytes_toserver"],
                    f["bytes_toclient"]
                ));
            }
            Some("http") => {
                let h = &e["http"];
                http.push(format!(
                    "{t} {} {} {} {} {}",
                    h["http_method"], h["hostname"], h["url"], h["status"], h["length"]
                ));
            }
            _ => {}
        }
    }
    flows.sort();
    http.sort();
    (flows, http)
}

#[test]
fn tap_sees_what_an_offline_read_of_the_same_traffic_sees() {
    if !tools("tap_sees_what_an_offline_read_of_the_same_traffic_sees") {
        return;
    }
    let net = 2;
    let mut lab = Lab::new("t", net);
    let d = lab.dir.clone();
    // The kernel bridges a and b; islet and tcpdump both watch the port facing a.
    let s = lab.s().to_owned();
    ok(&["ip", "-n", &s, "link", "add", "br0", "type", "bridge"]);
    for p in ["sa", "sb"] {
        ok(&["ip", "-n", &s, "link", "set", p, "master", "br0"]);
    }
    ok(&["ip", "-n", &s, "link", "set", "br0", "up"]);
    web_servers(&mut lab, net, &[8080]);
    let b_ip = format!("10.77.{net}.2");
    wait_for("the web server", Duration::from_secs(20), || {
        lab.curl(&format!("http://{b_ip}:8080/"), "2").1 == "200"
    });
    let pcap = d.join("tap.pcap");
    let tcpdump = lab.tcpdump(
        &s,
        &[
            "-i",
            "sa",
            "-s",
            "0",
            // A 64 MiB buffer: GSO frames of 64 KiB overflow the default 2 MiB one.
            "-B",
            "65536",
            "-U",
            "-w",
            pcap.to_str().expect("p"),
        ],
    );
    let eve = d.join("tap.json");
    let (islet, err) = lab.islet(&[
        "run",
        "--tap",
        "sa",
        "-w",
        "2",
        "-o",
        eve.to_str().expect("p"),
    ]);
    wait_for("islet to open its port", Duration::from_secs(20), || {
        err.lock().expect("lock").contains(" over AF_")
    });
    std::thread::sleep(Duration::from_secs(1));
    for path in ["", "big.bin", "index.html", "missing"] {
        let (st, _, _) = lab.curl(&format!("http://{b_ip}:8080/{path}"), "10");
        assert_eq!(st, 0);
    }
    let _ = lab.exec(lab.a(), &["ping", "-c", "2", "-i", "0.2", &b_ip]);
    std::thread::sleep(Duration::from_secs(1));
    lab.signal(tcpdump, "-INT");
    lab.wait(tcpdump, Duration::from_secs(10));
    lab.signal(islet, "-TERM");
    let st = lab.wait(islet, Duration::from_secs(30));
    assert!(st.success(), "{}", err.lock().expect("lock"));
    let offline = d.join("offline.json");
    ok(&[
        ISLET,
        "read",
        "-q",
        pcap.to_str().expect("p"),
        "-o",
        offline.to_str().expect("p"),
    ]);
    let (live_flows, live_http) = summary(&lines(&eve));
    let (off_flows, off_http) = summary(&lines(&offline));
    assert_eq!(live_http.len(), 4, "{live_http:#?}");
    assert_eq!(live_http, off_http, "HTTP metadata, live vs offline");
    assert!(live_flows.len() >= 5, "{live_flows:#?}");
    assert_eq!(live_flows, off_flows, "flows, live vs offline");
}

#[test]
fn a_failing_step_leaves_no_namespace_behind() {
    if !tools("a_failing_step_leaves_no_namespace_behind") {
        return;
    }
    let prefix = format!("islf{}", std::process::id());
    let r = std::panic::catch_unwind(|| {
        let mut lab = Lab::new("f", 3);
        let eve = lab.dir.join("eve.json");
        let (_, err) = lab.islet(&["run", "--inline", "sa,sb", "-o", eve.to_str().expect("p")]);
        wait_for("islet to open its ports", Duration::from_secs(20), || {
            err.lock().expect("lock").contains(" over AF_")
        });
        panic!("a step fails here, on purpose");
    });
    assert!(r.is_err());
    let list = ok(&["ip", "netns", "list"]);
    assert!(!list.contains(&prefix), "namespaces left behind: {list}");
}
