//! Issue 18: the console attacked as the outside review did. Each test replays a finding with
//! other counts than the review's and fails on the code before the fix:
//! - finding 3: silent TCP connections to the HTTPS port froze every other client (the TLS
//!   handshake ran in the accept loop, 10 s each);
//! - finding 4 (authentication by default): the Forward port took records from anyone;
//! - finding 9: a revoked token worked for up to 60 s; wrong secrets were not throttled; a
//!   cross-site `POST /login` set the cookie.

use std::io::Read as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_islet");

use islet_testkit::console::Console as Serve;

fn token(data: &Path, role: &str) -> String {
    islet_testkit::console::token(BIN, data, role)
}

/// Peak and current resident memory of a process, kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// `curl` a URL; returns (status line and headers lower-cased, seconds taken).
fn curl(cacert: Option<&Path>, args: &[&str]) -> (String, f64) {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "/dev/null", "-D", "-", "--max-time", "5"]);
    if let Some(ca) = cacert {
        c.arg("--cacert").arg(ca);
    }
    let t = Instant::now();
    let o = c.args(args).output().expect("curl");
    (
        String::from_utf8_lossy(&o.stdout).to_ascii_lowercase(),
        t.elapsed().as_secs_f64(),
    )
}

/// A console whose Forward port takes `key` (from a key file in `dir`).
fn keyed_console(dir: &Path, data: &Path, key: &str) -> Serve {
    let keyf = dir.join("forward.key");
    std::fs::write(&keyf, format!("{key}\n")).expect("write");
    Serve::start(
        BIN,
        data,
        "127.0.0.1:0",
        &["--forward-key-file", keyf.to_str().expect("utf8")],
        &[],
    )
}

/// Open `n` TCP connections to `addr` that never send a byte.
fn idle(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| TcpStream::connect(addr).unwrap_or_else(|e| panic!("idle connection {i}: {e}")))
        .collect()
}

#[test]
fn finding3_silent_connections_do_not_stop_the_https_console() {
    if !islet_testkit::tool_or_skip("finding3", "openssl")
        || !islet_testkit::tool_or_skip("finding3", "curl")
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, k) = islet_testkit::console::self_signed(dir.path());
    let data = dir.path().join("data");
    let tok = token(&data, "viewer");
    let console = Serve::start(
        BIN,
        &data,
        "off",
        &[
            "--tls-cert",
            c.to_str().expect("utf8"),
            "--tls-key",
            k.to_str().expect("utf8"),
        ],
        &[],
    );
    let pid = console.child.id();
    let url = format!("https://{}/api/cases", console.http);
    let auth = format!("Authorization: Bearer {tok}");
    let (h, _) = curl(Some(&c), &["-H", &auth, &url]);
    assert!(h.starts_with("http/1.1 200"), "{h}");

    // 1,200 connections that never start their handshake: before, each held the accept loop
    // for 10 s, so the next client waited 10 s per silent connection ahead of it.
    let held = idle(&console.http, 1200);
    std::thread::sleep(Duration::from_millis(300));
    let mut worst: f64 = 0.0;
    for _ in 0..5 {
        let (h, took) = curl(Some(&c), &["-H", &auth, &url]);
        assert!(
            h.starts_with("http/1.1 200"),
            "a fresh client while 1,200 are silent: {h:?}"
        );
        worst = worst.max(took);
    }
    let (peak, now) = rss_kb(pid);
    eprintln!(
        "finding3: 1,200 silent connections: fresh client answered in ≤ {worst:.3} s; RSS {now} kB, peak {peak} kB"
    );
    assert!(peak < 256 * 1024, "peak RSS {peak} kB");
    // The ones beyond the per-address bound (256) were closed to make room: the oldest idle
    // sockets read EOF (or a reset) rather than holding the console's memory.
    let mut closed = 0;
    for mut s in held.into_iter().take(100) {
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let mut b = [0u8; 1];
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert!(closed > 0, "the oldest idle connections were evicted");
    std::thread::sleep(Duration::from_millis(300));
    let (h, _) = curl(Some(&c), &["-H", &auth, &url]);
    assert!(h.starts_with("http/1.1 200"), "{h}");
    let m = metrics(Some(&c), &console.http, &tok);
    assert!(
        m["http"]["evicted_idle"].as_u64().unwrap_or(0) >= 900,
        "{m}"
    );
    let (peak, now) = rss_kb(pid);
    eprintln!("finding3: after they closed: RSS {now} kB, peak {peak} kB");
    assert!(peak < 256 * 1024, "peak RSS {peak} kB");
}

/// `/api/metrics` of a console (over TLS when `ca` is given).
fn metrics(ca: Option<&Path>, http: &str, token: &str) -> serde_json::Value {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "--max-time",
        "5",
        "-H",
        &format!("Authorization: Bearer {token}"),
    ]);
    let url = match ca {
        Some(ca) => {
            c.arg("--cacert").arg(ca);
            format!("https://{http}/api/metrics")
        }
        None => format!("http://{http}/api/metrics"),
    };
    let o = c.arg(url).output().expect("curl");
    serde_json::from_slice(&o.stdout).expect("json")
}

#[test]
fn finding4_forward_port_needs_a_key_unless_loopback_and_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--once", "--data"])
            .arg(&data)
            .args(args)
            .output()
            .expect("serve")
    };
    // No key: refused before anything listens.
    let o = run(&["--forward-listen", "127.0.0.1:0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("needs a shared key"), "{err}");
    // Unauthenticated beyond loopback: refused.
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let o = run(&["--forward-listen", addr, "--forward-unauthenticated"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{addr}: {err}");
        assert!(err.contains("not a loopback address"), "{err}");
    }
    // An empty key file: refused.
    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, "\n").expect("write");
    let o = run(&[
        "--forward-listen",
        "127.0.0.1:0",
        "--forward-key-file",
        empty.to_str().expect("utf8"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // With a key file, a sensor without the key is refused and nothing is stored; with it,
    // its records are.
    let console = keyed_console(dir.path(), &data, "s3cret-forward-key");
    let pcap = dir.path().join("scan.pcap");
    assert!(
        Command::new(BIN)
            .args(["synth", "--profile", "scan", "-o"])
            .arg(&pcap)
            .status()
            .expect("synth")
            .success()
    );
    // A sensor run; one refused at the handshake may keep retrying: it is stopped after 15 s.
    let read = |key: &str| {
        let mut child = Command::new(BIN)
            .arg("read")
            .arg(&pcap)
            .args(["-o", "/dev/null", "-q", "--forward", &console.forward])
            .args(["--forward-shared-key", key])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("read");
        let t = Instant::now();
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return Some(st);
            }
            if t.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let tok = token(&data, "viewer");
    let alerts = || -> u64 {
        metrics(None, &console.http, &tok)["ingest"]["stored"]
            .as_u64()
            .unwrap_or(0)
    };
    let _ = read("wrong-key");
    assert_eq!(alerts(), 0, "records under a wrong key are not stored");
    let st = read("s3cret-forward-key");
    assert!(st.is_some_and(|s| s.success()), "{st:?}");
    let t = Instant::now();
    while alerts() == 0 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(alerts() > 0, "records under the key are stored");
}

#[test]
fn finding9_revocation_throttling_and_login_csrf() {
    if !islet_testkit::tool_or_skip("finding9", "curl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data, "analyst");
    let other = token(&data, "viewer");
    let console = Serve::start(BIN, &data, "off", &[], &[]);
    let url = format!("http://{}/api/cases", console.http);
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let (h, _) = curl(None, &["-H", &bearer(&tok), &url]);
    assert!(h.starts_with("http/1.1 200"), "{h}");

    // Revoked by another process (the CLI): refused on the very next request.
    let id = tok.split('_').nth(1).expect("token id").to_string();
    let o = Command::new(BIN)
        .args(["serve", "token", "revoke", "--data"])
        .arg(&data)
        .arg(&id)
        .output()
        .expect("revoke");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (h, _) = curl(None, &["-H", &bearer(&tok), &url]);
    assert!(
        h.starts_with("http/1.1 401"),
        "a revoked token still worked: {h}"
    );

    // Wrong secrets for a known id: after five, refused with 429 and Retry-After, without
    // running argon2 — also for the right secret, until the window passes.
    let oid = other.split('_').nth(1).expect("id").to_string();
    for i in 0..5 {
        let forged = format!("islet_{oid}_wrongsecret{i}AAAAAAAAAAAAAAAAAAAA");
        let (h, _) = curl(
            None,
            &["--interface", "127.0.0.2", "-H", &bearer(&forged), &url],
        );
        assert!(h.starts_with("http/1.1 401"), "try {i}: {h}");
    }
    let forged = format!("islet_{oid}_wrongsecret9AAAAAAAAAAAAAAAAAAAA");
    let (h, _) = curl(
        None,
        &["--interface", "127.0.0.3", "-H", &bearer(&forged), &url],
    );
    assert!(
        h.starts_with("http/1.1 429"),
        "sixth wrong secret for one id: {h}"
    );
    assert!(h.contains("retry-after:"), "{h}");
    // Per peer: an address that failed five times with unknown ids is throttled for others too.
    for i in 0..5 {
        let forged = format!("islet_{:016x}_nosuchtoken", 0xabc0 + i);
        let (h, _) = curl(
            None,
            &["--interface", "127.0.0.4", "-H", &bearer(&forged), &url],
        );
        assert!(h.starts_with("http/1.1 401"), "{h}");
    }
    let analyst2 = token(&data, "analyst");
    let (h, _) = curl(
        None,
        &["--interface", "127.0.0.4", "-H", &bearer(&analyst2), &url],
    );
    assert!(h.starts_with("http/1.1 429"), "the throttled address: {h}");
    let (h, _) = curl(
        None,
        &["--interface", "127.0.0.5", "-H", &bearer(&analyst2), &url],
    );
    assert!(h.starts_with("http/1.1 200"), "another address: {h}");

    // Login CSRF: a cross-site form post must not sign the browser in.
    let login = format!("http://{}/login", console.http);
    let form = format!("token={analyst2}");
    for hostile in ["Origin: https://evil.example", "Sec-Fetch-Site: cross-site"] {
        let (h, _) = curl(
            None,
            &[
                "--interface",
                "127.0.0.5",
                "-H",
                hostile,
                "--data",
                &form,
                &login,
            ],
        );
        assert!(h.starts_with("http/1.1 403"), "{hostile}: {h}");
        assert!(!h.contains("set-cookie: islet_token="), "{hostile}: {h}");
    }
    let (h, _) = curl(None, &["--interface", "127.0.0.5", "--data", &form, &login]);
    assert!(h.starts_with("http/1.1 403"), "no Origin at all: {h}");
    let own = format!("Origin: http://{}", console.http);
    let (h, _) = curl(
        None,
        &[
            "--interface",
            "127.0.0.5",
            "-H",
            &own,
            "--data",
            &form,
            &login,
        ],
    );
    assert!(h.starts_with("http/1.1 303"), "our own form: {h}");
    assert!(h.contains("set-cookie: islet_token="), "{h}");
}

/// A slowloris sender (a request head trickled a line every 300 ms, never finished) is cut
/// once the head has taken longer than its 10 s bound; other clients are answered meanwhile.
/// Before, the console had no head timeout: the connection stayed open as long as it trickled.
#[test]
fn finding3_a_request_head_that_never_completes_is_cut() {
    use std::io::Write as _;
    if !islet_testkit::tool_or_skip("finding3_slowloris", "curl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let console = Serve::start(BIN, &data, "off", &[], &[]);
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(&console.http).expect("connect");
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .expect("write");
            s.set_read_timeout(Some(Duration::from_millis(1)))
                .expect("timeout");
            s
        })
        .collect();
    let started = Instant::now();
    let mut cut_at = None;
    let mut worst: f64 = 0.0;
    while started.elapsed() < Duration::from_secs(25) {
        std::thread::sleep(Duration::from_millis(300));
        let mut open = 0;
        for s in &mut slow {
            let alive = s.write_all(b"X-Slow: 1\r\n").is_ok() && {
                let mut b = [0u8; 256];
                // Still open: nothing to read yet. Closed: EOF or a reset.
                matches!(s.read(&mut b), Err(e) if matches!(e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
            };
            open += usize::from(alive);
        }
        let (h, took) = curl(None, &[&format!("http://{}/healthz", console.http)]);
        assert!(h.starts_with("http/1.1 200"), "{h}");
        worst = worst.max(took);
        if open == 0 {
            cut_at = Some(started.elapsed());
            break;
        }
    }
    let cut = cut_at.expect("the trickling heads were cut");
    eprintln!(
        "finding3 slowloris: 20 trickled heads cut after {cut:?}; other clients answered in ≤ {worst:.3} s"
    );
    assert!(cut >= Duration::from_secs(9), "cut too early: {cut:?}");
}

/// The console's own Forward port with 1,000 silent connections: a sensor with the key still
/// delivers, and memory stays within the budget before and after they close.
#[test]
fn finding4_console_forward_port_serves_a_sensor_past_1000_silent_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let console = keyed_console(dir.path(), &data, "k-1000-idle");
    let pid = console.child.id();
    let held = idle(&console.forward, 1000);
    let pcap = dir.path().join("scan.pcap");
    assert!(
        Command::new(BIN)
            .args(["synth", "--profile", "scan", "-o"])
            .arg(&pcap)
            .status()
            .expect("synth")
            .success()
    );
    let t = Instant::now();
    let o = Command::new(BIN)
        .arg("read")
        .arg(&pcap)
        .args(["-o", "/dev/null", "-q", "--forward", &console.forward])
        .args(["--forward-shared-key", "k-1000-idle"])
        .output()
        .expect("read");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let took = t.elapsed();
    let (peak, now) = rss_kb(pid);
    eprintln!(
        "finding4: sensor delivered past 1,000 silent Forward connections in {took:?}; console RSS {now} kB, peak {peak} kB"
    );
    assert!(peak < 256 * 1024, "peak RSS {peak} kB");
    // The silent ones past the per-address bound were evicted for the sensor, and counted.
    let tok = token(&data, "viewer");
    let m = metrics(None, &console.http, &tok);
    assert!(m["forward"]["evicted"].as_u64().unwrap_or(0) > 0, "{m}");
    assert!(m["forward"]["acks"].as_u64().unwrap_or(0) > 0, "{m}");
    drop(held);
    std::thread::sleep(Duration::from_millis(500));
    let (peak, now) = rss_kb(pid);
    eprintln!("finding4: after they closed: RSS {now} kB, peak {peak} kB");
    assert!(peak < 256 * 1024, "peak RSS {peak} kB");
}
