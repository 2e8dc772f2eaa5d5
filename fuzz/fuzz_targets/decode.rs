//! The packet decoder on arbitrary frames of every supported link type.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&lt, frame)) = data.split_first() else { return };
    let link = [0, 1, 101, 113, 228, 229, 276][usize::from(lt) % 7];
    let mut d = islet_wire::Decoded::default();
    if islet_wire::decode(link, frame, &mut d).is_ok() {
        // Offsets the decoder reports must lie inside the frame.
        let _ = d.payload(frame);
        assert!(d.payload_offset as usize + d.payload_len as usize <= frame.len());
    }
});
