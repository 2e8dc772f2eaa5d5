//! SMB1/SMB2 over NetBIOS framing, both directions.
#![no_main]
use islet_l7::Sink;
use islet_l7::smb::SmbState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = SmbState::default();
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    for (i, chunk) in data.chunks(83).enumerate() {
        s.input(i % 2 == 0, chunk, &mut sink);
    }
});
