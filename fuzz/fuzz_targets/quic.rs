//! QUIC Initial packet parsing and decryption on arbitrary datagrams.
#![no_main]
use islet_l7::Sink;
use islet_l7::quic::QuicState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut q = QuicState::default();
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    for d in data.split(|&b| b == 0xff).take(8) {
        q.client_datagram(d, &mut sink);
    }
});
