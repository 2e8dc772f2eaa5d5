//! Kerberos messages (DER) as UDP datagrams and as TCP records.
#![no_main]
use islet_l7::Sink;
use islet_l7::krb5::Krb5State;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = Krb5State::default();
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    s.message(data, &mut sink);
    s.input(true, data, &mut sink);
    s.finish(&mut sink);
});
