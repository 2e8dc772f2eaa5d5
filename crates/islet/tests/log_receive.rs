//! `islet log receive`: a sensor's `islet read --forward` into islet's own receiver; the
//! received file equals the sensor's `-o` file byte for byte and the chain held on arrival.

use std::io::BufRead as _;
use std::process::{Command, Stdio};

#[test]
fn log_receive_writes_what_the_sensor_wrote() {
    let dir = std::env::temp_dir().join(format!("islet-receive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let bin = env!("CARGO_BIN_EXE_islet");
    let keys = dir.join("keys");
    assert!(
        Command::new(bin)
            .args(["log", "keygen", "--out"])
            .arg(&keys)
            .status()
            .expect("keygen")
            .success()
    );
    let pcap = dir.join("m.pcap");
    assert!(
        Command::new(bin)
            .args(["synth", "--flows", "400", "-o"])
            .arg(&pcap)
            .status()
            .expect("synth")
            .success()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let got = dir.join("received.json");
    let mut rx = Command::new(bin)
        .args([
            "log",
            "receive",
            "--listen",
            &addr,
            "--shared-key",
            "k",
            "--key",
        ])
        .arg(keys.join("sensor.pub"))
        .arg("-o")
        .arg(&got)
        .stderr(Stdio::piped())
        .spawn()
        .expect("receive");
    let mut err = std::io::BufReader::new(rx.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("listening");
    assert!(line.contains("listening on"), "{line}");
    let sent = dir.join("eve.json");
    let o = Command::new(bin)
        .args([
            "read",
            "-q",
            "--forward",
            &addr,
            "--forward-shared-key",
            "k",
            "--sign-key",
        ])
        .arg(keys.join("sensor.key"))
        .arg("-o")
        .arg(&sent)
        .arg(&pcap)
        .output()
        .expect("read");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Acknowledged means written and flushed: the file is complete now.
    let _ = rx.kill();
    let _ = rx.wait();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert!(!rest.contains("chain broken"), "{rest}");
    let a = std::fs::read(&sent).expect("sent");
    let b = std::fs::read(&got).expect("received");
    assert!(a.len() > 10_000);
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    let v = Command::new(bin)
        .args(["log", "verify"])
        .arg(&got)
        .arg("--key")
        .arg(keys.join("sensor.pub"))
        .output()
        .expect("verify");
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Holds idle connections to a port from several loopback addresses (127.0.0.1, .2, …, so no
/// single peer reaches its cap) and one slowloris sender (a frame claiming a huge array, then a
/// byte every 5 ms); prints `open N` once they are open, closes all on a line on stdin.
const IDLE: &str = r#"
import resource, socket, sys, threading, time
port, n, peers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
conns = []
for i in range(n):
    s = socket.socket()
    s.bind(('127.0.0.%d' % (1 + i % peers), 0))
    s.connect(('127.0.0.1', port))
    conns.append(s)
stop = False
def slowloris():
    s = socket.socket(); s.bind(('127.0.0.250', 0)); s.connect(('127.0.0.1', port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(bytes([0x92, 0xa1, 0x74, 0xdd, 0xff, 0xff, 0xff, 0xff]))
    while not stop:
        try:
            s.send(b'\xc0')
        except OSError:
            return
        time.sleep(0.005)
t = threading.Thread(target=slowloris); t.start()
print('open', len(conns), flush=True)
sys.stdin.readline()
stop = True
for s in conns:
    s.close()
t.join()
print('closed', flush=True)
"#;

/// A Message-mode event asking for an ack of `chunk`.
fn message(chunk: &str) -> Vec<u8> {
    let mut f = vec![0x94, 0xa1, b't', 0xce];
    f.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    f.extend_from_slice(&[0x81, 0xa1, b'k', 0x01, 0x81, 0xa5]);
    f.extend_from_slice(b"chunk");
    f.push(0xa0 | chunk.len() as u8);
    f.extend_from_slice(chunk.as_bytes());
    f
}

/// Connect, send one event, wait for its ack: the time it took.
fn served(addr: &str, chunk: &str) -> std::time::Duration {
    use std::io::{Read as _, Write as _};
    let t = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(&message(chunk)).expect("send");
    let mut ack = [0u8; 32];
    let n = s.read(&mut ack).expect("ack");
    assert!(
        ack[..n].ends_with(chunk.as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&ack[..n])
    );
    t.elapsed()
}

/// User and system CPU time of a process, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    let rest = &s[s.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// kB figures of /proc/PID/status.
fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field")
}

/// Issue 18, finding 4 (and the check "with 1,000 idle connections open, a fresh client is
/// served in under a second and the process stays under its memory budget, before and after
/// they close"), against the real `islet log receive` at its default settings.
#[test]
fn issue18_finding4_a_thousand_idle_connections_and_a_slowloris_leave_the_receiver_serving() {
    use std::io::BufRead as _;
    use std::io::Write as _;
    const BUDGET_KB: u64 = 256 * 1024;
    let dir = std::env::temp_dir().join(format!("islet-receive-idle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let got = dir.join("received.json");
    // Room for 1,000 connections (two descriptors each) where the hard limit allows it.
    let mut rx = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 4096 2>/dev/null; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_islet"),
            "log",
            "receive",
            "--listen",
            &addr,
        ])
        .arg("-o")
        .arg(&got)
        .stderr(Stdio::piped())
        .spawn()
        .expect("receive");
    let pid = rx.id();
    let mut err = std::io::BufReader::new(rx.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("listening");
    assert!(line.contains("listening on"), "{line}");
    let first = served(&addr, "before");
    let mut idle = Command::new("python3")
        .args(["-c", IDLE, &port.to_string(), "1000", "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = std::io::BufReader::new(idle.stdout.take().expect("stdout"));
    line.clear();
    out.read_line(&mut line).expect("open");
    assert_eq!(line.trim(), "open 1000");
    // Two seconds of the slowloris sender: the receiver's CPU time over them.
    let cpu0 = cpu_ticks(pid);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let cpu_slowloris = cpu_ticks(pid) - cpu0;
    let mut during = Vec::new();
    for i in 0..20 {
        during.push(served(&addr, &format!("during{i}")));
    }
    let hwm_open = status_kb(pid, "VmHWM");
    let rss_open = status_kb(pid, "VmRSS");
    let threads = status_kb(pid, "Threads");
    let mut stdin = idle.stdin.take().expect("stdin");
    writeln!(stdin).expect("close");
    line.clear();
    out.read_line(&mut line).expect("closed");
    let _ = idle.wait();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = served(&addr, "after");
    let hwm = status_kb(pid, "VmHWM");
    let rss = status_kb(pid, "VmRSS");
    let _ = rx.kill();
    let _ = rx.wait();
    during.sort();
    eprintln!(
        "first client {first:?}; with 1,000 idle + slowloris ({threads} threads): median {:?}, max {:?}; after close {after:?}; VmHWM {hwm_open} kB open, {hwm} kB at the end; VmRSS {rss_open} kB open, {rss} kB after close; CPU over 2 s of slowloris {cpu_slowloris} ticks",
        during[during.len() / 2],
        during[during.len() - 1]
    );
    assert!(during[during.len() - 1] < std::time::Duration::from_secs(1));
    assert!(after < std::time::Duration::from_secs(1));
    // Finding 5: the trickle costs next to nothing (it cost most of a core).
    assert!(cpu_slowloris < 50, "{cpu_slowloris} ticks of CPU in 2 s");
    assert!(hwm <= BUDGET_KB, "peak RSS {hwm} kB");
    assert!(rss <= BUDGET_KB, "RSS after close {rss} kB");
    let kept = std::fs::read_to_string(&got).expect("received");
    assert_eq!(kept.lines().count(), 22, "{kept}");
    let _ = std::fs::remove_dir_all(&dir);
}
