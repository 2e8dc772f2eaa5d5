//! Property: the decoder never panics and never reports offsets outside the frame.

use islet_wire::{Decoded, decode, linktype};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]
    #[test]
    fn arbitrary_frames_decode_without_panic(
        link in prop::sample::select(vec![
            linktype::NULL, linktype::ETHERNET, linktype::RAW, linktype::LINUX_SLL,
            linktype::IPV4, linktype::IPV6, linktype::LINUX_SLL2,
        ]),
        frame in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut d = Decoded::default();
        if decode(link, &frame, &mut d).is_ok() {
            prop_assert!(d.payload_offset as usize + d.payload_len as usize <= frame.len());
            prop_assert!(d.pkt_len as usize <= frame.len());
        }
    }

    /// Frames that start as a valid Ethernet/IPv4/TCP header and then go wrong.
    #[test]
    fn mutated_valid_frames_decode_without_panic(
        flips in proptest::collection::vec((0usize..74, any::<u8>()), 1..6),
        cut in 0usize..74,
    ) {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 60, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(&[2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);
        for (at, x) in flips {
            if at < f.len() { f[at] ^= x; }
        }
        f.truncate(cut.max(1));
        let mut d = Decoded::default();
        let _ = decode(linktype::ETHERNET, &f, &mut d);
    }
}
