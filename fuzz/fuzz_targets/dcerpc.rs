//! One connection-oriented DCE/RPC PDU and every accessor on it.
#![no_main]
use islet_l7::dcerpc::Pdu;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(p) = Pdu::parse(data) {
        let _ = p.interfaces();
        let _ = p.results();
        let _ = p.opnum();
        let _ = p.stub_len();
    }
});
