//! Frames as the live path handles them before any decoder: completing an offloaded TCP/UDP
//! checksum (AF_XDP inline) never panics, changes nothing but the checksum field, and leaves
//! a valid checksum when it changes one; the classic BPF flow program never reads out of
//! bounds.
#![no_main]

use islet_capture::afxdp::complete_partial_checksum;
use islet_capture::tc::{FlowMatch, flow_program, run_program};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = data.to_vec();
    if complete_partial_checksum(&mut f) {
        let diff: Vec<usize> = (0..f.len()).filter(|&i| f[i] != data[i]).collect();
        assert!(diff.len() <= 2, "only the checksum field changes: {diff:?}");
        // Running it again finds a full checksum and changes nothing.
        let again = f.clone();
        assert!(!complete_partial_checksum(&mut f) || f == again);
    }
    let m = FlowMatch {
        src: "10.0.0.1".parse().expect("ip"),
        dst: "10.0.0.2".parse().expect("ip"),
        proto: 6,
        sport: 1,
        dport: 2,
    };
    let _ = run_program(&flow_program(&m, 2), data);
});
