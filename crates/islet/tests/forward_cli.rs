//! `islet read --forward`: every record reaches a Forward receiver as a MessagePack map that
//! rebuilds into exactly the line written to `-o` (byte for byte, over corpus captures with
//! non-ASCII and invalid UTF-8 in names and headers), and the chain verifies on the receiving
//! side as records arrive.

use std::process::Command;
use std::sync::{Arc, Mutex};

use islet_sink::forward::{Receiver, ServerConfig};
use islet_sink::verify::{ChainCheck, Verify};

#[test]
fn forwarded_records_rebuild_into_the_written_lines() {
    let dir = std::env::temp_dir().join(format!("islet-fwd-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let keys = dir.join("keys");
    let pk = islet_sink::chain::keygen(&keys).expect("keygen");
    let mut inputs = Vec::new();
    let synth = dir.join("mixed.pcap");
    let o = Command::new(env!("CARGO_BIN_EXE_islet"))
        .args(["synth", "--flows", "300", "--seed", "9", "-o"])
        .arg(&synth)
        .output()
        .expect("synth");
    assert!(o.status.success());
    inputs.push(synth);
    if let Some(c) = islet_testkit::pcap_dir("forwarded_records_rebuild_into_the_written_lines") {
        // Every capture of the corpus: every protocol islet logs, odd bytes included.
        inputs.extend(islet_testkit::corpus_pcaps("forwarded_records_rebuild"));
        assert!(c.is_dir());
    }
    for (i, input) in inputs.iter().enumerate() {
        let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let check = Arc::new(Mutex::new(ChainCheck::new(Verify {
            key: pk,
            partial: false,
        })));
        let (g, c) = (got.clone(), check.clone());
        let r = Receiver::start(
            "127.0.0.1:0",
            ServerConfig {
                shared_key: Some("k".into()),
                ..ServerConfig::default()
            },
            None,
            Arc::new(move |b| {
                for e in &b.events {
                    let mut j = Vec::new();
                    islet_sink::msgpack::to_json(&e.record, &mut j).expect("record");
                    if let Err(f) = c.lock().expect("lock").record("stream", &j) {
                        panic!("chain: {f}");
                    }
                    g.lock().expect("lock").push(j);
                }
                true
            }),
        )
        .expect("receiver");
        let out = dir.join(format!("eve{i}.json"));
        let o = Command::new(env!("CARGO_BIN_EXE_islet"))
            .args(["read", "-q", "--forward-shared-key", "k", "--sign-key"])
            .arg(keys.join("sensor.key"))
            .arg("--forward")
            .arg(r.local_addr().to_string())
            .arg("-o")
            .arg(&out)
            .arg(input)
            .output()
            .expect("read");
        // A damaged capture exits 2 after writing what it read; the records still count.
        assert!(
            matches!(o.status.code(), Some(0 | 2)),
            "{}: {}",
            input.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        r.stop();
        let written: Vec<Vec<u8>> = std::fs::read(&out)
            .expect("eve")
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        for l in &written {
            let n = l.windows(9).filter(|w| w == b"\"islet\":{").count();
            assert_eq!(n, 1, "one islet object: {}", String::from_utf8_lossy(l));
        }
        let got = got.lock().expect("lock");
        assert_eq!(got.len(), written.len(), "{}", input.display());
        for (a, b) in got.iter().zip(&written) {
            assert_eq!(
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b),
                "{}",
                input.display()
            );
        }
        let Ok(check) = Arc::try_unwrap(check) else {
            panic!("the receiver still holds the chain check");
        };
        let check = check.into_inner().expect("lock");
        let report = check
            .end()
            .expect("the stream ends with a final checkpoint");
        assert_eq!(report.records as usize, written.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
