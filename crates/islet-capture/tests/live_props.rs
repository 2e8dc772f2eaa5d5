//! Properties of the live path's frame handling, on arbitrary frames.

use islet_capture::afxdp::complete_partial_checksum;
use islet_capture::tc::{FlowMatch, flow_program, run_program};
use proptest::prelude::*;

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += (u32::from(c[0]) << 8) | u32::from(*c.get(1).unwrap_or(&0));
    }
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc
}

/// Ethernet + IPv4 + UDP or TCP, with the checksum field as `CHECKSUM_PARTIAL` leaves it.
fn partial(tcp: bool, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let l4 = if tcp { 20 } else { 8 };
    let total = 20 + l4 + payload.len();
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let mut ip = vec![
        0x45,
        0,
        0,
        0,
        0,
        1,
        0x40,
        0,
        64,
        if tcp { 6 } else { 17 },
        0,
        0,
    ];
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    f.extend_from_slice(&ip);
    let mut h = vec![0u8; l4];
    h[0..2].copy_from_slice(&4321u16.to_be_bytes());
    h[2..4].copy_from_slice(&80u16.to_be_bytes());
    if tcp {
        h[12] = 0x50;
    } else {
        h[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    }
    let pseudo = {
        let mut p = src.to_vec();
        p.extend_from_slice(&dst);
        sum16(
            &p,
            u32::from(if tcp { 6u8 } else { 17 }) + (l4 + payload.len()) as u32,
        )
    };
    let at = if tcp { 16 } else { 6 };
    h[at..at + 2].copy_from_slice(&(pseudo as u16).to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

proptest! {
    /// A partial checksum is completed into one that verifies (RFC 1071: the segment with
    /// its pseudo header sums to 0xFFFF), and only the checksum field changes.
    #[test]
    fn partial_checksums_are_completed(
        tcp in any::<bool>(),
        src in any::<[u8; 4]>(),
        dst in any::<[u8; 4]>(),
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
    ) {
        let f0 = partial(tcp, src, dst, &payload);
        let mut f = f0.clone();
        prop_assert!(complete_partial_checksum(&mut f));
        let changed: Vec<usize> = (0..f.len()).filter(|&i| f[i] != f0[i]).collect();
        prop_assert!(changed.len() <= 2);
        let l4 = &f[34..];
        let mut p = src.to_vec();
        p.extend_from_slice(&dst);
        let acc = sum16(&p, u32::from(if tcp { 6u8 } else { 17 }) + l4.len() as u32);
        prop_assert_eq!(sum16(l4, acc), 0xFFFF);
        let again = f.clone();
        prop_assert!(!complete_partial_checksum(&mut f));
        prop_assert_eq!(f, again);
    }

    /// Any frame: no panic, and a frame the function leaves alone is unchanged.
    #[test]
    fn other_frames_are_left_alone(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut f = frame.clone();
        if !complete_partial_checksum(&mut f) {
            prop_assert_eq!(f, frame.clone());
        }
        let m = FlowMatch {
            src: "10.0.0.1".parse().expect("ip"),
            dst: "10.0.0.2".parse().expect("ip"),
            proto: 17,
            sport: 4321,
            dport: 80,
        };
        let r = run_program(&flow_program(&m, 2), &frame);
        prop_assert!(r == 2 || r == u32::MAX || r == 0);
    }
}
