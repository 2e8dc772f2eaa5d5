//! State stays within its configured bounds whatever the traffic: random sources, random
//! destinations and ports, SYNs, stealth probes and SSH sessions, with small limits so the
//! bounds are reached; and detections still come out for a real scanner among them.

use islet_detect::brute::Brute;
use islet_detect::config::{BruteConfig, FloodConfig, ScanConfig};
use islet_detect::flood::Flood;
use islet_detect::recon::Recon;
use islet_detect::{Detection, PacketFacts};
use proptest::prelude::*;
use std::net::IpAddr;

fn syn(ts: u64, src: u32, dst: u32, dport: u16, flags: u8) -> PacketFacts {
    PacketFacts {
        ts_ns: ts,
        src: IpAddr::from(src.to_be_bytes()),
        dst: IpAddr::from(dst.to_be_bytes()),
        proto: 6,
        sport: 40_000,
        dport,
        tcp_flags: flags,
        seq: 0,
        ack: 0,
        flow_id: u64::from(src),
        unreachable: None,
        len: 60,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn tables_stay_bounded(seed in any::<u64>(), flags in prop::sample::select(vec![0x02u8, 0x00, 0x01, 0x29])) {
        let scan = ScanConfig { max_sources: 64, max_probes_per_source: 32, ..ScanConfig::default() };
        let flood = FloodConfig { max_victims: 8, syns_per_second: 5, ..FloodConfig::default() };
        let mut r = Recon::new(scan, Vec::new());
        let mut fl = Flood::new(flood);
        let mut b = Brute::new(BruteConfig { max_pairs: 16, ..BruteConfig::default() });
        let mut out: Vec<Detection> = Vec::new();
        let mut x = seed | 1;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let src = (x >> 32) as u32 % 500;
            let dst = (x as u32) % 300;
            let port = ((x >> 16) % 2000) as u16;
            let p = syn(i * 1_000_000, src, dst, port, flags);
            r.packet(&p, &mut out);
            if flags == 0x02 {
                fl.syn(&p, &mut out);
            }
            let s = syn(i * 1_000_000, src, dst, 22, if i % 2 == 0 { 0x02 } else { 0x11 });
            b.packet(&s, &mut out);
            prop_assert!(r.tracked() <= 64 && fl.tracked() <= 8 && b.tracked() <= 16);
        }
        // A real scanner among the noise is still found.
        for port in 1..=40u16 {
            r.packet(&syn(30_000_000_000, 9_999, 7, port, 0x02), &mut out);
        }
        r.finish(&mut out);
        prop_assert!(out.iter().any(|d| d.kind.name == "port_scan"
            && d.src == IpAddr::from(9_999u32.to_be_bytes())));
    }
}
