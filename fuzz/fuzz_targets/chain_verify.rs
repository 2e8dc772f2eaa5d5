//! The chain verifier on hostile logs: arbitrary lines never panic, and a sealed log of
//! arbitrary JSON records verifies.
#![no_main]
use islet_sink::chain::{ChainConfig, Sealer};
use islet_sink::verify::{Verify, Walker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let opts = Verify {
        key: key.verifying_key(),
        partial: data.first().is_some_and(|b| b & 1 == 1),
    };
    let mut w = Walker::new(opts.clone());
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        if w.line("fuzz", i as u64 + 1, line).is_err() {
            break;
        }
    }
    let _ = w.end();
    // Whatever the records, what the sealer writes verifies.
    let mut s = Sealer::new(
        ChainConfig {
            checkpoint_every: 3,
            ..ChainConfig::default()
        },
        Some(key),
    );
    let mut out = Vec::new();
    // The sealer takes what islet's encoders write: JSON objects, one per line.
    let mut input = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let ok = matches!(
            serde_json::from_slice::<serde_json::Value>(line),
            Ok(serde_json::Value::Object(_))
        );
        if ok && !line.windows(7).any(|w| w == b"\"islet\"") {
            input.extend_from_slice(line);
            input.push(b'\n');
        }
    }
    s.seal_lines(&input, &mut out);
    s.checkpoint(true, &mut out);
    let mut w = Walker::new(Verify {
        partial: false,
        ..opts
    });
    for (i, line) in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        w.line("sealed", i as u64 + 1, line).expect("a sealed log verifies");
    }
    w.end().expect("ends with a final checkpoint");
});
