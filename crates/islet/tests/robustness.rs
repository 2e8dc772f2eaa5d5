//! Robustness: damaged captures never panic the reader, decoder or flow engine. Every corpus
//! file is cut at 100 random offsets, and 10,000 random byte-flips of corpus files are replayed.
//! A run may end in a capture error (that is the point); it must not panic, and what came
//! before the damage is still processed.

use islet_capture::PcapFile;
use islet_sensor::SensorConfig;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::sync::OnceLock;

fn corpus() -> &'static Vec<(String, Vec<u8>)> {
    static C: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    C.get_or_init(|| {
        islet_testkit::corpus_pcaps("robustness")
            .into_iter()
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read(&p).expect("read corpus file"),
                )
            })
            .collect()
    })
}

fn config() -> SensorConfig {
    let mut c = SensorConfig::default();
    c.sensor.workers = 1;
    c.flow.max_flows = 4096;
    c
}

/// Replay `bytes` through the whole pipeline; returns the packets read.
fn replay(name: &str, bytes: Vec<u8>) -> u64 {
    let Ok(mut src) = PcapFile::from_bytes(name, bytes) else {
        return 0;
    };
    match islet_sensor::run(&config(), &mut src, &mut std::io::sink()) {
        Ok(s) => s.packets,
        Err(islet_sensor::RunError::Capture(_, s)) => s.packets,
        Err(e) => panic!("{name}: {e}"),
    }
}

#[test]
fn every_file_truncated_at_100_offsets() {
    let files = corpus();
    if files.is_empty() {
        return;
    }
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runs = 0;
    let mut packets = 0;
    for (name, bytes) in files {
        let whole = replay(name, bytes.clone());
        packets += whole;
        for _ in 0..100 {
            let cut = (rng.next_u64() % bytes.len() as u64) as usize;
            let got = replay(name, bytes[..cut].to_vec());
            // A prefix never yields more packets than the whole file.
            assert!(got <= whole, "{name} cut at {cut}: {got} > {whole}");
            runs += 1;
        }
    }
    assert_eq!(runs, files.len() * 100);
    eprintln!(
        "{} files, {packets} packets whole, {runs} truncated replays",
        files.len()
    );
    assert!(
        packets > 5_000,
        "the corpus replays to only {packets} packets"
    );
}

#[test]
fn ten_thousand_random_byte_flips() {
    let files = corpus();
    if files.is_empty() {
        return;
    }
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 10_000,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[9; 32]),
    );
    let strategy = (
        0..files.len(),
        proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
    );
    runner
        .run(&strategy, |(i, flips)| {
            let (name, bytes) = &files[i];
            let mut b = bytes.clone();
            for (at, x) in &flips {
                let n = at.index(b.len());
                b[n] ^= x;
            }
            replay(name, b);
            Ok(())
        })
        .expect("no byte-flip may panic");
}
