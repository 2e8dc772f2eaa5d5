//! The behavioural detectors on arbitrary packet sequences (16 bytes per packet: time step,
//! addresses from small pools so state builds up, ports, flags, protocol), with small bounds
//! so every eviction path runs: scans, floods with the handshake table between them (SYN/ACK
//! sequence numbers and client acknowledgements from the input), lateral attempts,
//! completions, refusals and closes; and the ICMP quoted-datagram reader on the raw input.
#![no_main]
use islet_detect::brute::Brute;
use islet_detect::config::{BruteConfig, FloodConfig, LateralConfig, ScanConfig, VolumeConfig};
use islet_detect::flood::Flood;
use islet_detect::handshake::{Answer, Conn, Handshakes};
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
        vec![(6, 902), (17, 623)],
    );
    let mut f = Flood::new(FloodConfig {
        max_victims: 2,
        syns_per_second: 2,
        total_syns_per_second: 2,
        spoofed_sources: 2,
        ..FloodConfig::default()
    });
    let mut h = Handshakes::default();
    let mut b = Brute::new(BruteConfig {
        max_pairs: 2,
        sessions: 2,
        ..BruteConfig::default()
    });
    let mut l = Lateral::new(LateralConfig {
        learn_s: 1,
        fanout_hosts: 2,
        fanout_quiet_s: 1,
        chain_quiet_s: 1,
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
            seq: u32::from(c[15]),
            ack: u32::from(c[15]) + 1,
            flow_id: u64::from(c[9]),
            unreachable: (c[10] & 1 == 1).then(|| (c[11], dst, u16::from(c[12]))),
            len: u32::from(c[13]),
        };
        r.packet(&p, &mut out);
        f.tick(ts, &mut out);
        l.tick(ts, &mut out);
        let fl = c[7];
        let conn = Conn {
            client: src,
            cport: sport,
            server: dst,
            sport: dport,
        };
        let back = Conn {
            client: dst,
            cport: dport,
            server: src,
            sport,
        };
        let (s, d) = (src.to_string(), dst.to_string());
        let e = AdminEdge {
            ts_ns: ts,
            src_node: &s,
            dst_node: &d,
            src,
            dst,
            sport,
            dport,
            flow_id: 0,
            admin_source: c[13] & 1 == 1,
            fanout: (2, 60),
            scanning: c[13] & 2 == 2,
        };
        if proto == 6 && fl & 0x16 == 0x02 {
            f.syn(&p, &mut out);
            l.attempt(&e, &mut out);
        } else if proto == 6 && fl & 0x16 == 0x12 {
            let re = h.synack(back, p.seq, ts);
            f.synack(src, sport, re);
        } else if proto == 6 {
            match h.client(conn, fl, p.ack) {
                Some(Answer::Completed) => {
                    f.completed(src, dst, dport);
                    l.completed(&e);
                }
                Some(Answer::Reset) => f.client_reset(dst, dport),
                None if fl & 0x04 != 0 => {
                    f.server_reset(src, sport);
                    l.refused(&e);
                }
                None => {}
            }
            if fl & 0x05 != 0 && l.is_open(&conn) {
                l.closed(&conn);
            }
        }
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
        assert!(r.tracked() <= 4 && f.tracked() <= 2 && b.tracked() <= 2);
        out.clear();
    }
    r.finish(&mut out);
    f.finish(&mut out);
    v.finish(&mut out);
    l.finish(&mut out);
});
