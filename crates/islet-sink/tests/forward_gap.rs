//! `on_full = "drop_newest"`: with the receiver away and memory full, newer records are dropped
//! and counted, and a signed gap record naming them is sent in their place; the receiver's
//! chain check accepts the stream (gap verified with the sensor's key) and counts exactly the
//! dropped records as missing.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use islet_sink::chain::ChainConfig;
use islet_sink::forward::{ForwardConfig, Forwarder, OnFull, Receiver, ServerConfig};
use islet_sink::metrics::Metrics;
use islet_sink::verify::{ChainCheck, Verify};
use islet_sink::{FileOut, Output, OutputConfig};

fn batch(out: &mut Output, from: u64, n: u64) {
    let mut b = Vec::new();
    for i in from..from + n {
        writeln!(
            b,
            r#"{{"timestamp":"2024-01-01T00:00:00.000000+0000","event_type":"flow","n":{i},"pad":"{}"}}"#,
            "x".repeat(40)
        )
        .expect("write");
    }
    out.write_all(&b).expect("write");
}

#[test]
fn dropped_records_are_counted_and_replaced_by_a_signed_gap() {
    // A port with nobody on it yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let f = Forwarder::start(
        ForwardConfig {
            servers: vec![format!("127.0.0.1:{port}")],
            memory_bytes: 64 << 10,
            spool_dir: None,
            on_full: OnFull::DropNewest,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(20),
            shutdown_timeout: Duration::from_secs(30),
            ..ForwardConfig::default()
        },
        Some(key.clone()),
        "s",
    )
    .expect("forwarder");
    let stats = f.stats();
    let mut out = Output::new(
        OutputConfig {
            chain: ChainConfig {
                sensor: "s".into(),
                ..ChainConfig::default()
            },
            key: Some(key.clone()),
            ..OutputConfig::default()
        },
        FileOut::None,
        vec![f],
        Arc::new(Metrics::default()),
    )
    .expect("output");
    for i in 0..50 {
        batch(&mut out, i * 100, 100);
    }
    let dropped = stats.dropped.load(Ordering::Relaxed);
    assert!(dropped > 0 && dropped.is_multiple_of(100), "{dropped}");

    let check = Arc::new(Mutex::new(ChainCheck::new(Verify {
        key: key.verifying_key(),
        partial: false,
    })));
    let got = Arc::new(Mutex::new(0u64));
    let (c, g) = (check.clone(), got.clone());
    let r = Receiver::start(
        &format!("127.0.0.1:{port}"),
        ServerConfig::default(),
        None,
        Arc::new(move |b| {
            for e in &b.events {
                let mut j = Vec::new();
                islet_sink::msgpack::to_json(&e.record, &mut j).expect("record");
                if let Err(f) = c.lock().expect("lock").record("stream", &j) {
                    panic!("chain: {f}");
                }
                *g.lock().expect("lock") += 1;
            }
            true
        }),
    )
    .expect("receiver");
    // Room again once the backlog drains: the next records go out behind the gap record.
    std::thread::sleep(Duration::from_millis(300));
    batch(&mut out, 5000, 100);
    let fin = out.finish().expect("finish");
    r.stop();
    assert_eq!(stats.gaps.load(Ordering::Relaxed), 1);
    assert_eq!(fin.forward[0].lost, 0);
    let Ok(check) = Arc::try_unwrap(check) else {
        panic!("receiver still holds the check");
    };
    let report = check.into_inner().expect("lock").end().expect("verifies");
    assert_eq!(report.gaps, 1);
    assert_eq!(report.missing, dropped);
    assert_eq!(*got.lock().expect("lock"), fin.records - dropped + 1);
}
