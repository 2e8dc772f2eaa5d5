//! SSH banner and KEXINIT parser.
#![no_main]
use islet_l7::Sink;
use islet_l7::ssh::SshState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = SshState::default();
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    for (i, chunk) in data.chunks(61).enumerate() {
        s.input(i % 2 == 0, chunk, &mut sink);
    }
    s.finish(&mut sink);
});
