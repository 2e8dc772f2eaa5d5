//! At-least-once delivery over the Forward protocol on loopback: a million records, the
//! receiver killed and restarted twice mid-stream, the sensor's output stage restarted
//! mid-stream (its spool and chain head carried over). Every record must arrive, none may be
//! missing by `islet.seq`, and the chain — rebuilt from the MessagePack records the receiver
//! got — must verify with the sensor's key, checked as the records arrive.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use islet_sink::chain::ChainConfig;
use islet_sink::forward::{ForwardConfig, Forwarder, Mode, OnFull, Receiver, ServerConfig};
use islet_sink::metrics::Metrics;
use islet_sink::verify::{ChainCheck, Verify};
use islet_sink::{FileOut, Output, OutputConfig};

const TOTAL: u64 = 1_000_000;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("islet-fwd-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// What the receiver kept: every record's canonical JSON by sequence number, in arrival order
/// through the chain check.
struct Kept {
    by_seq: HashMap<u64, Vec<u8>>,
    check: ChainCheck,
    arrivals: u64,
}

fn receiver(addr: &str, kept: Arc<Mutex<Kept>>, key: &str) -> Receiver {
    let cfg = ServerConfig {
        shared_key: Some(key.into()),
        self_hostname: "collector".into(),
        ..ServerConfig::default()
    };
    Receiver::start(
        addr,
        cfg,
        None,
        Arc::new(move |b| {
            let mut k = kept.lock().expect("lock");
            for e in &b.events {
                assert_eq!(e.tag, "islet.eve");
                let mut json = Vec::new();
                islet_sink::msgpack::to_json(&e.record, &mut json).expect("record to JSON");
                let Some((seq, _)) = islet_sink::forward::seq_prev(&json) else {
                    panic!("not a sealed record: {}", String::from_utf8_lossy(&json));
                };
                if let Err(f) = k.check.record("stream", &json) {
                    panic!("chain broken as records arrived: {f}");
                }
                k.arrivals += 1;
                k.by_seq.entry(seq).or_insert(json);
            }
            true
        }),
    )
    .expect("receiver")
}

fn forward_config(port: u16, spool: &std::path::Path, shutdown: Duration) -> ForwardConfig {
    ForwardConfig {
        servers: vec![format!("127.0.0.1:{port}")],
        mode: Mode::PackedForward,
        shared_key: Some("s3cret".into()),
        self_hostname: "sensor-1".into(),
        memory_bytes: 4 << 20,
        spool_dir: Some(spool.to_path_buf()),
        disk_bytes: 2 << 30,
        on_full: OnFull::Block,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ack_timeout: Duration::from_secs(5),
        shutdown_timeout: shutdown,
        ..ForwardConfig::default()
    }
}

fn output(
    port: u16,
    spool: &std::path::Path,
    state: &std::path::Path,
    key: &ed25519_dalek::SigningKey,
    shutdown: Duration,
) -> Output {
    let f = Forwarder::start(
        forward_config(port, spool, shutdown),
        Some(key.clone()),
        "sensor-1",
    )
    .expect("forwarder");
    Output::new(
        OutputConfig {
            chain: ChainConfig {
                sensor: "sensor-1".into(),
                checkpoint_every: 10_000,
                checkpoint_interval_ns: 0,
            },
            key: Some(key.clone()),
            state_dir: Some(state.to_path_buf()),
            ..OutputConfig::default()
        },
        FileOut::None,
        vec![f],
        Arc::new(Metrics::default()),
    )
    .expect("output")
}

fn write_events(out: &mut Output, from: u64, to: u64) {
    let mut buf = Vec::with_capacity(1 << 20);
    for i in from..to {
        let s = 1_600_000_000 + i / 1000;
        let _ = writeln!(
            buf,
            r#"{{"timestamp":{},"flow_id":{i},"event_type":"flow","src_ip":"10.0.{}.{}","dest_port":{},"app_proto":"tls","note":"caf\u00e9 \"q\""}}"#,
            iso(s),
            (i >> 8) & 0xff,
            i & 0xff,
            i % 65536
        );
        if buf.len() >= 256 << 10 {
            out.write_all(&buf).expect("write");
            buf.clear();
        }
    }
    out.write_all(&buf).expect("write");
}

/// `"YYYY-MM-DDTHH:MM:SS.ffffff+0000"`, with its quotes.
fn iso(secs: u64) -> String {
    let mut b = Vec::new();
    islet_event::time::write_iso(&mut b, secs * 1_000_000_000);
    String::from_utf8(b).expect("ascii")
}

fn wait_for(kept: &Arc<Mutex<Kept>>, n: usize) {
    for _ in 0..6000 {
        if kept.lock().expect("lock").by_seq.len() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_million_records_survive_receiver_and_sensor_restarts() {
    let dir = tmp("delivery");
    let (spool, state) = (dir.join("spool"), dir.join("state"));
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let kept = Arc::new(Mutex::new(Kept {
        by_seq: HashMap::new(),
        check: ChainCheck::new(Verify {
            key: key.verifying_key(),
            partial: false,
        }),
        arrivals: 0,
    }));
    let r1 = receiver("127.0.0.1:0", kept.clone(), "s3cret");
    let addr = r1.local_addr().to_string();
    let port = r1.local_addr().port();

    // Run 1: 400k records; the receiver is killed after the first 150k.
    // A short shutdown timeout: the receiver is down at exit, so the rest is spooled.
    let mut out = output(port, &spool, &state, &key, Duration::from_millis(300));
    write_events(&mut out, 0, 150_000);
    wait_for(&kept, 100_000);
    r1.stop();
    write_events(&mut out, 150_000, 400_000);
    // Sensor restart: undelivered records go to the spool, the chain head to the state dir.
    let fin = out.finish().expect("finish");
    assert!(fin.forward[0].spooled > 0, "{:?}", fin.forward);
    assert_eq!(fin.forward[0].lost, 0);

    // Run 2: the receiver comes back; the spool is sent first, then 600k more records, with
    // the receiver killed once more on the way.
    let r2 = receiver(&addr, kept.clone(), "s3cret");
    let mut out = output(port, &spool, &state, &key, Duration::from_secs(120));
    write_events(&mut out, 400_000, 700_000);
    r2.stop();
    let r3 = receiver(&addr, kept.clone(), "s3cret");
    write_events(&mut out, 700_000, TOTAL);
    let fin = out.finish().expect("finish");
    assert_eq!(fin.forward[0].lost, 0);
    assert_eq!(fin.forward[0].spooled, 0, "all delivered before close");
    drop(r3);

    let k = Arc::try_unwrap(kept)
        .ok()
        .expect("receiver gone")
        .into_inner()
        .expect("lock");
    let max = *k.by_seq.keys().max().expect("records");
    // A million events plus a checkpoint per 10,000 and one final checkpoint per run.
    assert!(max >= TOTAL + 100, "max seq {max}");
    let missing: Vec<u64> = (1..=max).filter(|s| !k.by_seq.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "{} missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let events = k
        .by_seq
        .values()
        .filter(|j| {
            const FLOW: &[u8] = b"\"event_type\":\"flow\"";
            j.windows(FLOW.len()).any(|w| w == FLOW)
        })
        .count() as u64;
    assert_eq!(events, TOTAL);
    let report = k
        .check
        .end()
        .expect("the chain ends with a final checkpoint");
    assert_eq!(report.last_seq, max);
    assert!(report.checkpoints >= 101, "{report:?}");
    eprintln!(
        "delivered {} records, {} arrivals ({} duplicates from resends)",
        max,
        k.arrivals,
        k.arrivals - max
    );
    let _ = std::fs::remove_dir_all(&dir);
}
