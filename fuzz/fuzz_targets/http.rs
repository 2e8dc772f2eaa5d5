//! HTTP/1.x transaction parser: requests one way, responses the other.
#![no_main]
use islet_l7::Sink;
use islet_l7::http::HttpState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = HttpState::default();
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    let mid = data.len() / 2;
    s.input(true, &data[..mid], &mut sink);
    s.input(false, &data[mid..], &mut sink);
    s.finish(&mut sink);
});
