//! Flood mitigation inline, against a real server and a real flooder: `a` (198.51.100.1, and
//! the attacker's own address 198.51.100.66) reaches nginx on `b` (198.51.100.2) only through
//! `islet run --inline` with `[detect.mitigation] mode = "enforce"`. hping3 floods nginx with
//! SYNs from 198.51.100.66 — nginx's kernel answers each with a SYN/ACK, `a`'s kernel resets
//! each (no socket there), the real own-address pattern — while curl from 198.51.100.1 keeps
//! fetching a page. Checked: the flood is detected and a `flood_mitigation` alert with
//! `alert.action: blocked` names the rule; from two seconds after that alert's time no SYN
//! from the flooder reaches `b` (tcpdump on `b`, kernel timestamps, the same clock as the
//! alert's); every legitimate request succeeds, before, during and after; after SIGTERM the
//! rule's removal is written and no tc filter is left on the sensor's ports.
//!
//! Needs root, iproute2, nginx, hping3, curl, tcpdump; skipped with the reason elsewhere
//! (`.ci/run` requires it). Only test-net addresses, inside namespaces this test makes.

mod common;

use common::netlab::{Lab, lines, ok, wait_for};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn tools(test: &str) -> bool {
    islet_testkit::netns_or_skip(test)
        && ["nginx", "hping3", "curl", "tcpdump"]
            .iter()
            .all(|t| islet_testkit::tool_or_skip(test, t))
}

fn nginx(lab: &mut Lab) {
    let d = lab.dir.clone();
    std::fs::create_dir_all(d.join("www")).expect("www");
    std::fs::write(d.join("www/index.html"), "islet mitigation lab\n").expect("page");
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx.err;\ndaemon off;\n\
         events {{ worker_connections 4096; }}\n\
         http {{ access_log off; client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp;\n\
         fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
         server {{ listen 198.51.100.2:8080 backlog=128; root {d}/www; }} }}\n",
        d = d.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).expect("conf");
    let b = lab.b().to_owned();
    lab.spawn(
        &b,
        &["nginx", "-c", d.join("nginx.conf").to_str().expect("p")],
        Stdio::null(),
    );
}

fn curl_ok(lab: &Lab, timeout: &str) -> bool {
    let o = lab.exec(
        lab.a(),
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--interface",
            "198.51.100.1",
            "--max-time",
            timeout,
            "-w",
            "%{http_code}",
            "http://198.51.100.2:8080/",
        ],
    );
    String::from_utf8_lossy(&o.stdout) == "200"
}

#[test]
fn an_own_address_syn_flood_is_dropped_inline_while_clients_keep_working() {
    if !tools("mitigation_inline") {
        return;
    }
    let mut lab = Lab::with_prefix("mit", "198.51.100");
    let d = lab.dir.clone();
    ok(&[
        "ip",
        "-n",
        lab.a(),
        "addr",
        "add",
        "198.51.100.66/24",
        "dev",
        "eth0",
    ]);
    nginx(&mut lab);
    std::fs::write(
        d.join("islet.toml"),
        "[detect.mitigation]\nmode = \"enforce\"\nlifetime_s = 120\n",
    )
    .expect("config");
    let eve = d.join("eve.json");
    let (islet, err) = lab.islet(&[
        "run",
        "-c",
        d.join("islet.toml").to_str().expect("p"),
        "--inline",
        "sa,sb",
        "-w",
        "1",
        "-o",
        eve.to_str().expect("p"),
    ]);
    wait_for("islet to open its ports", Duration::from_secs(20), || {
        err.lock().expect("lock").contains(" over AF_")
    });
    wait_for("nginx through islet", Duration::from_secs(20), || {
        curl_ok(&lab, "2")
    });
    let b = lab.b().to_owned();
    let cap = d.join("b.pcap");
    let dump = lab.tcpdump(
        &b,
        &[
            "-i",
            "eth0",
            "-w",
            cap.to_str().expect("p"),
            "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
        ],
    );

    // Legitimate requests, every 200 ms, for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let (good, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let a = lab.a().to_owned();
    let client = {
        let (stop, good, bad) = (stop.clone(), good.clone(), bad.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let o = std::process::Command::new("ip")
                    .args(["netns", "exec", &a, "curl", "-s", "-o", "/dev/null"])
                    .args(["--interface", "198.51.100.1", "--max-time", "5"])
                    .args(["-w", "%{http_code}", "http://198.51.100.2:8080/"])
                    .output()
                    .expect("curl");
                if String::from_utf8_lossy(&o.stdout) == "200" {
                    good.fetch_add(1, Ordering::Relaxed);
                } else {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    // The flood: about 2,000 SYNs a second from the attacker's own address for 8 s.
    let a = lab.a().to_owned();
    let flood = lab.spawn(
        &a,
        &[
            "timeout",
            "8",
            "hping3",
            "-q",
            "-S",
            "-p",
            "8080",
            "-a",
            "198.51.100.66",
            "-i",
            "u500",
            "198.51.100.2",
        ],
        Stdio::null(),
    );
    let t = Instant::now();
    while lab.children[flood].try_wait().expect("wait").is_none() {
        assert!(t.elapsed() < Duration::from_secs(20), "hping3 did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    client.join().expect("client");
    lab.signal(dump, "-INT");
    lab.wait(dump, Duration::from_secs(10));
    lab.signal(islet, "-TERM");
    let st = lab.wait(islet, Duration::from_secs(20));
    assert!(st.success(), "islet: {}", err.lock().expect("lock"));

    let ev = lines(&eve);
    let mitigation: Vec<&serde_json::Value> = ev
        .iter()
        .filter(|e| e["alert"]["metadata"]["detection"][0] == "flood_mitigation")
        .collect();
    let installed = mitigation
        .iter()
        .find(|e| e["alert"]["metadata"]["mitigation_state"][0] == "installed")
        .unwrap_or_else(|| panic!("no installed rule: {mitigation:#?}"));
    assert_eq!(installed["alert"]["action"], "blocked");
    assert_eq!(installed["src_ip"], "198.51.100.66");
    assert_eq!(
        installed["alert"]["metadata"]["victim"][0],
        "198.51.100.2 port 8080"
    );
    let rule = installed["alert"]["metadata"]["mitigation_rule"][0]
        .as_str()
        .expect("rule");
    assert!(
        rule.starts_with("drop tcp from 198.51.100.66 to 198.51.100.2 port 8080"),
        "{rule}"
    );
    assert!(
        mitigation
            .iter()
            .any(|e| e["alert"]["metadata"]["mitigation_state"][0] == "removed at shutdown"),
        "{mitigation:#?}"
    );
    // The detection itself, once the flood ended: own-address, from the flooder.
    let flood_alert = ev
        .iter()
        .find(|e| e["alert"]["metadata"]["detection"][0] == "syn_flood")
        .unwrap_or_else(|| panic!("no syn_flood alert"));
    assert_eq!(
        flood_alert["alert"]["metadata"]["flood_source"][0],
        "single"
    );
    assert_eq!(flood_alert["src_ip"], "198.51.100.66");

    // From two seconds after the rule, nothing of the flooder reaches nginx.
    let at = chrono_secs(installed["timestamp"].as_str().expect("ts"));
    let tshark = std::process::Command::new("tcpdump")
        .args(["-tt", "-n", "-r"])
        .arg(&cap)
        .output()
        .expect("tcpdump -r");
    let text = String::from_utf8_lossy(&tshark.stdout);
    let syns: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("198.51.100.66."))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        syns.len() > 100,
        "the flood reached nginx before the rule: {}",
        syns.len()
    );
    let late = syns.iter().filter(|t| **t > at + 2.0).count();
    assert_eq!(
        late, 0,
        "flood SYNs reached nginx more than 2 s after the rule"
    );
    let first = syns.first().copied().unwrap_or(at);
    assert!(
        at - first < 3.0,
        "detected {:.1} s after the flood began",
        at - first
    );
    // Every legitimate request succeeded.
    let (g, b) = (good.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    assert!(g >= 20, "only {g} requests made");
    assert_eq!(b, 0, "{b} legitimate requests failed ({g} succeeded)");
    // No rule is left in the kernel on the sensor's ports.
    for port in ["sa", "sb"] {
        let o = ok(&[
            "tc",
            "-n",
            lab.s(),
            "filter",
            "show",
            "dev",
            port,
            "ingress",
        ]);
        assert!(o.trim().is_empty(), "{port}: {o}");
    }
}

/// Seconds since the epoch of an EVE timestamp (`2026-12-06T23:59:01.123456+0000`).
fn chrono_secs(ts: &str) -> f64 {
    let (date, rest) = ts.split_once('T').expect("T");
    let mut d = date.split('-').map(|x| x.parse::<i64>().expect("date"));
    let (y, m, day) = (
        d.next().expect("y"),
        d.next().expect("m"),
        d.next().expect("d"),
    );
    let time = &rest[..rest.find(['+', '-', 'Z']).unwrap_or(rest.len())];
    let mut t = time.split(':');
    let (h, mi) = (
        t.next().expect("h").parse::<i64>().expect("h"),
        t.next().expect("m").parse::<i64>().expect("m"),
    );
    let s: f64 = t.next().expect("s").parse().expect("s");
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + h * 3_600 + mi * 60) as f64 + s
}
