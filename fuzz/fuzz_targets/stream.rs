//! TCP stream reassembly under arbitrary segments: bounded memory, no panic.
#![no_main]
use islet_flow::stream::{Reassembler, StreamConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = StreamConfig { depth: 1 << 16, max_buffered: 4096 };
    let mut r = Reassembler::new();
    r.set_isn(u32::from_le_bytes([data.first().copied().unwrap_or(0), 0, 0, 0]));
    let mut rest = data;
    while rest.len() >= 3 {
        let seq = u32::from(u16::from_le_bytes([rest[0], rest[1]]));
        let len = usize::from(rest[2]).min(rest.len() - 3);
        r.segment(&cfg, seq, &rest[3..3 + len], &mut |_| {}, &mut |_| {});
        assert!(r.buffered() <= cfg.max_buffered);
        rest = &rest[3 + len..];
    }
});
