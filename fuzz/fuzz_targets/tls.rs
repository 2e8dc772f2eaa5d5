//! TLS stream parser: arbitrary bytes, split into both directions by a leading byte.
#![no_main]
use islet_l7::Sink;
use islet_l7::tls::TlsState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = TlsState::default();
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    for (i, chunk) in data.chunks(97).enumerate() {
        s.input(i % 3 != 2, chunk, &mut sink);
    }
    s.finish(&mut sink);
});
