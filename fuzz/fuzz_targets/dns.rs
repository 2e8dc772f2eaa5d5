//! DNS message parser (UDP form) and the TCP framing.
#![no_main]
use islet_l7::Sink;
use islet_l7::dns::{DnsTcpState, parse_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    let _ = parse_message(data, 0, &mut sink);
    let mut t = DnsTcpState::default();
    t.input(true, data, &mut sink);
});
