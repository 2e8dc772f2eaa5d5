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
