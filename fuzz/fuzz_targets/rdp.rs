//! RDP connection setup: TPKT/X.224 framing and the MCS Connect-Initial client data.
#![no_main]
use islet_l7::Sink;
use islet_l7::rdp::{RdpState, connect_initial};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = connect_initial(data);
    let mut s = RdpState::default();
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    for (i, chunk) in data.chunks(71).enumerate() {
        s.input(i % 2 == 0, chunk, &mut sink);
    }
});
