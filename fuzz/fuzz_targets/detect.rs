//! The behavioural detectors on arbitrary packet sequences (16 bytes per packet: time step,
//! addresses from small pools so state builds up, ports, flags, protocol), with small bounds
//! so every eviction path runs; and the ICMP quoted-datagram reader on the raw input.
#![no_main]
use islet_detect::brute::Brute;
use islet_detect::config::{BruteConfig, FloodConfig, LateralConfig, ScanConfig, VolumeConfig};
use islet_detect::lateral::{AdminEdge, Lateral};
use islet_detect::recon::Recon;
use islet_detect::volume::{Volume, VolumePacket, key_hash};
use islet_detect::{PacketFacts, quoted_probe};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let _ = quoted_probe(3, false, data);
    let _ = quoted_probe(1, true, data);
    let mut r = Recon::new(
        ScanConfig {
            max_sources: 4,
            max_probes_per_source: 4,
            ports_per_host: 2,
            hosts_per_port: 2,
            ..ScanConfig::default()
        },
        FloodConfig {
            max_victims: 2,
            syns_per_second: 2,
            total_syns_per_second: 2,
            spoofed_sources: 2,
            ..FloodConfig::default()
        },
    );
    let mut b = Brute::new(BruteConfig {
        max_pairs: 2,
        sessions: 2,
        ..BruteConfig::default()
    });
    let mut l = Lateral::new(LateralConfig {
        learn_s: 1,
        fanout_hosts: 2,
        max_nodes: 4,
        max_edges: 4,
        ..LateralConfig::default()
    });
    let mut v = Volume::new(VolumeConfig {
        pps: 2,
        mbps: 1,
        max_victims: 2,
        ..VolumeConfig::default()
    });
    let mut out = Vec::new();
    let mut ts = 0u64;
    for c in data.chunks_exact(16) {
        ts = ts.saturating_add(u64::from(c[0]) * 50_000_000);
        let src = IpAddr::from([10, 0, 0, c[1] & 7]);
        let dst = IpAddr::from([10, 0, 1, c[2] & 7]);
        let sport = u16::from_be_bytes([c[3], c[4]]);
        let dport = u16::from_be_bytes([c[5], c[6]]);
        let proto = [6u8, 17, 1, 58][usize::from(c[8] & 3)];
        let p = PacketFacts {
            ts_ns: ts,
            src,
            dst,
            proto,
            sport,
            dport,
            tcp_flags: c[7],
            flow_id: u64::from(c[9]),
            unreachable: (c[10] & 1 == 1).then(|| (c[11], dst, u16::from(c[12]))),
            len: u32::from(c[13]),
        };
        r.packet(&p, &mut out);
        let mut d = [0u8; 16];
        d[..4].copy_from_slice(&[10, 0, 1, c[2] & 7]);
        let vp = VolumePacket {
            ts_ns: ts,
            src,
            dst,
            proto,
            sport,
            dport,
            len: u32::from(c[14]) << 4,
            key_hash: key_hash(&d, proto),
        };
        v.packet(&vp, || 0, &mut out);
        assert!(v.tracked() <= 2);
        if b.watches(sport, dport) {
            b.packet(&p, &mut out);
        }
        let (s, d) = (src.to_string(), dst.to_string());
        l.edge(
            &AdminEdge {
                ts_ns: ts,
                src_node: &s,
                dst_node: &d,
                src,
                dst,
                sport,
                dport,
                flow_id: 0,
            },
            &mut out,
        );
        assert!(r.tracked().0 <= 4 && r.tracked().1 <= 2 && b.tracked() <= 2);
        out.clear();
    }
    r.finish(&mut out);
    v.finish(&mut out);
    l.finish(&mut out);
});
