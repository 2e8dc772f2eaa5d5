//! The pcap/pcapng reader on arbitrary files.
#![no_main]
use islet_capture::{PacketSource, PcapFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut f) = PcapFile::from_bytes("fuzz", data.to_vec()) else { return };
    let mut n = 0u64;
    while let Ok(k) = f.read_batch(64, &mut |p| n += p.data.len() as u64) {
        if k == 0 {
            break;
        }
    }
});
