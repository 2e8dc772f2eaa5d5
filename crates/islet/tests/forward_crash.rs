//! A sensor killed (SIGKILL) in the middle of forwarding, then started again with the same
//! spool: the receiver gets the spooled records, a signed gap record for what was lost in
//! memory or may not have reached it, and the new run's records — and the chain, checked as
//! records arrive, verifies end to end with the sensor's key.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use islet_sink::forward::{Receiver, ServerConfig};
use islet_sink::verify::{ChainCheck, Verify};

#[test]
fn a_killed_sensor_leaves_a_verifiable_stream() {
    let dir = std::env::temp_dir().join(format!("islet-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let pk = islet_sink::chain::keygen(&dir.join("keys")).expect("keygen");
    let big = dir.join("big.pcap");
    let small = dir.join("small.pcap");
    for (p, flows, seed) in [(&big, "60000", "1"), (&small, "500", "2")] {
        let o = Command::new(env!("CARGO_BIN_EXE_islet"))
            .args(["synth", "--flows", flows, "--seed", seed, "-o"])
            .arg(p)
            .output()
            .expect("synth");
        assert!(o.status.success());
    }
    let check = Arc::new(Mutex::new(ChainCheck::new(Verify {
        key: pk,
        partial: false,
    })));
    let slow = Arc::new(Mutex::new(true));
    let (c, sl) = (check.clone(), slow.clone());
    let r = Receiver::start(
        "127.0.0.1:0",
        ServerConfig::default(),
        None,
        Arc::new(move |b| {
            for e in &b.events {
                let mut j = Vec::new();
                islet_sink::msgpack::to_json(&e.record, &mut j).expect("record");
                if let Err(f) = c.lock().expect("lock").record("stream", &j) {
                    panic!("chain: {f}");
                }
            }
            if *sl.lock().expect("lock") {
                std::thread::sleep(Duration::from_millis(20));
            }
            true
        }),
    )
    .expect("receiver");
    let run = |pcap: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_islet"));
        c.args(["read", "-q", "-w", "1", "-o", "/dev/null", "--sign-key"])
            .arg(dir.join("keys/sensor.key"))
            .arg("--forward")
            .arg(r.local_addr().to_string())
            .args(["--forward-memory", "300000", "--forward-spool"])
            .arg(dir.join("spool"))
            .arg(pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    // Run 1, killed while the slow receiver keeps it behind.
    let mut child = run(&big).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let still_running = child.try_wait().expect("wait").is_none();
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(
        still_running,
        "the first run ended before it could be killed"
    );
    // Run 2: a fast receiver; the spool goes first, then the gap records, then new records.
    *slow.lock().expect("lock") = false;
    let o = run(&small).output().expect("run 2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    r.stop();
    let Ok(check) = Arc::try_unwrap(check) else {
        panic!("the receiver still holds the check");
    };
    let check = check.into_inner().expect("lock");
    let checked = check.checked;
    let report = check
        .end()
        .expect("the stream verifies and ends with a final checkpoint");
    eprintln!("after a kill: {report:?}, {checked} records checked");
    assert!(report.gaps >= 1, "{report:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
