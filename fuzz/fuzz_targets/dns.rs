//! DNS message parser (UDP form), the TCP framing, and the answers the policy learns names
//! from.
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
    let mut learned = Vec::new();
    islet_sensor::names::dns_answers(data, &mut learned);
    assert!(learned.len() <= 2 * islet_sensor::names::MAX_ANSWERS);
});
