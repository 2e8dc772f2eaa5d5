//! Attack scenarios, written packet by packet in time order: a port scan, SYN floods from one
//! source and from spoofed ones, a lateral-movement chain with a remote scheduled task created
//! over SMB, and OpenSLP access to a hypervisor. Each is a deterministic function of its
//! options, like the `mixed` profile.
//!
//! Addresses (all in 10.0.0.0/16 except spoofed sources): scanner and attacker 10.0.6.66,
//! victim service 10.0.0.10, workstations 10.0.2.x, servers 10.0.3.x, hypervisor 10.0.5.50.

use crate::frame::{Host, L4, build};
use crate::pcap::PcapWriter;
use crate::rng::SplitMix64;
use crate::scenario::SynthSummary;
use std::io::{self, Write};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

fn v4(a: [u8; 4]) -> Host {
    let mut v6 = [0u8; 16];
    v6[10] = 0xff;
    v6[11] = 0xff;
    v6[12..].copy_from_slice(&a);
    Host {
        mac: [0x02, 0x00, a[0], a[1], a[2], a[3]],
        v4: a,
        v6,
    }
}

/// Writes frames in time order.
struct Out<W: Write> {
    pcap: PcapWriter<W>,
    frame: Vec<u8>,
}

impl<W: Write> Out<W> {
    fn tcp(
        &mut self,
        t: u64,
        (src, sport): (&Host, u16),
        (dst, dport): (&Host, u16),
        (seq, ack): (u32, u32),
        flags: u8,
        payload: &[u8],
    ) -> io::Result<()> {
        let l4 = L4::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            win: 64_240,
            syn_opts: flags & SYN != 0,
        };
        build(&mut self.frame, src, dst, false, None, l4, payload);
        self.pcap.write(t, &self.frame)
    }

    fn udp(&mut self, t: u64, src: (&Host, u16), dst: (&Host, u16), p: &[u8]) -> io::Result<()> {
        let l4 = L4::Udp {
            sport: src.1,
            dport: dst.1,
        };
        build(&mut self.frame, src.0, dst.0, false, None, l4, p);
        self.pcap.write(t, &self.frame)
    }

    /// A whole TCP session: handshake, each (client, server) message pair, FIN teardown.
    /// Returns the time after it.
    fn session(
        &mut self,
        mut t: u64,
        client: (&Host, u16),
        server: (&Host, u16),
        exchange: &[(Vec<u8>, Vec<u8>)],
    ) -> io::Result<u64> {
        let (mut cs, mut ss) = (1_000u32, 5_000u32);
        self.tcp(t, client, server, (cs, 0), SYN, &[])?;
        t += MS;
        self.tcp(t, server, client, (ss, cs + 1), SYN | ACK, &[])?;
        t += MS;
        cs += 1;
        ss += 1;
        self.tcp(t, client, server, (cs, ss), ACK, &[])?;
        for (req, resp) in exchange {
            t += MS;
            self.tcp(t, client, server, (cs, ss), PSH | ACK, req)?;
            cs = cs.wrapping_add(req.len() as u32);
            t += MS;
            self.tcp(t, server, client, (ss, cs), PSH | ACK, resp)?;
            ss = ss.wrapping_add(resp.len() as u32);
            t += MS;
            self.tcp(t, client, server, (cs, ss), ACK, &[])?;
        }
        t += MS;
        self.tcp(t, client, server, (cs, ss), FIN | ACK, &[])?;
        t += MS;
        self.tcp(t, server, client, (ss, cs + 1), FIN | ACK, &[])?;
        t += MS;
        self.tcp(t, client, server, (cs + 1, ss + 1), ACK, &[])?;
        Ok(t + MS)
    }
}

/// Which attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// A SYN scan of 1,000 ports of one host (3 open) and of port 22 on 40 hosts.
    Scan,
    /// SYNs from one source to one service, 10,000 per second.
    SynFlood,
    /// SYNs from random spoofed sources to one service, 100,000 per second.
    SynFloodSpoofed,
    /// 512-byte UDP datagrams from random spoofed sources to one host's port 53, 400,000 per
    /// second (about 1.8 Gbit/s), 300,000 of them unless told.
    UdpFlood,
    /// Tiny fragments (8 bytes of data) from random spoofed sources to one host, one every
    /// microsecond: of each datagram the first and the last fragment, never the middle, so
    /// none completes and every one occupies the reassembly table until it is evicted or times
    /// out (the tiny-fragment hole flood of issue 18, finding 2). One datagram in eight is
    /// IPv6. A datagram's last fragment follows its first [`FRAG_FLOOD_LAG`] datagrams later.
    /// 1,000,000 fragments unless told.
    FragFlood,
    /// A day of baseline admin traffic, then a workstation → file server over SMB with a
    /// remote scheduled task (atsvc), → database over WinRM, → backup over SSH.
    Lateral,
    /// OpenSLP 427 (UDP and TCP) of a hypervisor reached from a workstation.
    Slp,
    /// A workstation beaconing to a known-bad name every minute: it resolves
    /// [`IOC_DOMAIN`] and opens TLS to [`IOC_ADDR`] with that SNI, three times. The matching
    /// MISP event is [`ioc_misp_event`].
    Ioc,
}

/// In the `frag-flood` scenario, how many datagrams later a datagram's last fragment follows
/// its first.
pub const FRAG_FLOOD_LAG: u64 = 5_000;

/// The name the `ioc` scenario's workstation beacons to (a reserved `.example` name).
pub const IOC_DOMAIN: &str = "update.bad-cdn.example";
/// The address it resolves to (TEST-NET-2).
pub const IOC_ADDR: [u8; 4] = [198, 51, 100, 23];
/// The MISP event describing it.
pub const IOC_EVENT_UUID: &str = "6a1e0c5e-1b7d-4c2f-9a55-0d15ea5e0001";

/// The MISP event (JSON, as MISP exports one) that names the `ioc` scenario's indicators: the
/// domain and the address, both `to_ids`, threat level high, TLP amber.
pub fn ioc_misp_event() -> String {
    let ip = format!(
        "{}.{}.{}.{}",
        IOC_ADDR[0], IOC_ADDR[1], IOC_ADDR[2], IOC_ADDR[3]
    );
    format!(
        r#"{{"Event":{{"uuid":"{IOC_EVENT_UUID}","info":"islet synth: beaconing to {IOC_DOMAIN}","date":"2026-01-05","threat_level_id":"1","analysis":"2","distribution":"0","Tag":[{{"name":"tlp:amber"}}],"Attribute":[{{"uuid":"6a1e0c5e-1b7d-4c2f-9a55-0d15ea5ea001","type":"domain","category":"Network activity","value":"{IOC_DOMAIN}","to_ids":true}},{{"uuid":"6a1e0c5e-1b7d-4c2f-9a55-0d15ea5ea002","type":"ip-dst","category":"Network activity","value":"{ip}","to_ids":true}}]}}}}"#
    )
}

/// Write `attack` to `out`: `packets` bounds the floods (0: 200,000 SYNs, 300,000 datagrams).
pub fn generate_attack<W: Write>(
    attack: Attack,
    packets: u64,
    seed: u64,
    start_ns: u64,
    out: W,
) -> io::Result<SynthSummary> {
    let mut o = Out {
        pcap: PcapWriter::new(out, 1, 65535)?,
        frame: Vec::with_capacity(256),
    };
    let mut rng = SplitMix64::new(seed);
    let t0 = start_ns;
    let attacker = v4([10, 0, 6, 66]);
    let victim = v4([10, 0, 0, 10]);
    let mut flows = 0u64;
    match attack {
        Attack::Scan => {
            let open = [22u16, 80, 443];
            let mut t = t0;
            for port in 1..=1000u16 {
                let sport = 40_000 + port;
                o.tcp(t, (&attacker, sport), (&victim, port), (7, 0), SYN, &[])?;
                let reply = if open.contains(&port) {
                    SYN | ACK
                } else {
                    RST | ACK
                };
                o.tcp(
                    t + MS / 2,
                    (&victim, port),
                    (&attacker, sport),
                    (9, 8),
                    reply,
                    &[],
                )?;
                if open.contains(&port) {
                    o.tcp(
                        t + MS,
                        (&attacker, sport),
                        (&victim, port),
                        (8, 0),
                        RST,
                        &[],
                    )?;
                }
                t += 2 * MS + rng.below(MS);
                flows += 1;
            }
            for h in 0..40u8 {
                let host = v4([10, 0, 3, 100 + h]);
                o.tcp(
                    t,
                    (&attacker, 50_000 + u16::from(h)),
                    (&host, 22),
                    (7, 0),
                    SYN,
                    &[],
                )?;
                t += 5 * MS;
                flows += 1;
            }
        }
        Attack::SynFlood | Attack::SynFloodSpoofed => {
            let n = if packets == 0 { 200_000 } else { packets };
            let spoofed = attack == Attack::SynFloodSpoofed;
            let gap = if spoofed { 10_000 } else { 100_000 };
            let mut src = attacker;
            for i in 0..n {
                if spoofed {
                    let r = rng.next_u64();
                    src = v4([
                        (r >> 24) as u8 | 1,
                        (r >> 16) as u8,
                        (r >> 8) as u8,
                        r as u8,
                    ]);
                }
                let sport = 1024 + (i % 60_000) as u16;
                let seq = rng.next_u64() as u32;
                o.tcp(
                    t0 + i * gap,
                    (&src, sport),
                    (&victim, 443),
                    (seq, 0),
                    SYN,
                    &[],
                )?;
            }
            flows = n;
        }
        Attack::UdpFlood => {
            let n = if packets == 0 { 300_000 } else { packets };
            let payload = [0x5au8; 512];
            for i in 0..n {
                let r = rng.next_u64();
                let src = v4([
                    (r >> 24) as u8 | 1,
                    (r >> 16) as u8,
                    (r >> 8) as u8,
                    r as u8,
                ]);
                let sport = 1024 + (r >> 40) as u16 % 60_000;
                o.udp(t0 + i * 2_500, (&src, sport), (&victim, 53), &payload)?;
            }
            flows = n;
        }
        Attack::FragFlood => {
            let n = if packets == 0 { 1_000_000 } else { packets };
            let mut frame = Vec::with_capacity(128);
            for i in 0..n {
                // Even packets open datagram i/2; odd ones end datagram i/2 - LAG, or open
                // one of their own before there is one to end.
                let (k, last) = if i.is_multiple_of(2) {
                    (i / 2, false)
                } else if i / 2 < FRAG_FLOOD_LAG {
                    (u64::MAX - i, false)
                } else {
                    (i / 2 - FRAG_FLOOD_LAG, true)
                };
                tiny_fragment(&mut frame, seed, k, last);
                o.pcap.write(t0 + i * 1_000, &frame)?;
            }
            flows = n.div_ceil(2);
        }
        Attack::Lateral => {
            let jump = v4([10, 0, 1, 5]);
            let ws = v4([10, 0, 2, 21]);
            let files = v4([10, 0, 3, 30]);
            let db = v4([10, 0, 3, 40]);
            let backup = v4([10, 0, 3, 50]);
            // The baseline: the jump host administers the servers over SSH, hourly, a day.
            for hour in 0..25u64 {
                let mut t = t0 + hour * 3600 * SEC;
                for (i, s) in [&files, &db, &backup].iter().enumerate() {
                    let sport = 30_000 + (hour * 3 + i as u64) as u16;
                    t = o.session(
                        t,
                        (&jump, sport),
                        (s, 22),
                        &[(
                            b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
                            b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
                        )],
                    )?;
                    flows += 1;
                }
            }
            // The intrusion, a day and an hour in.
            let mut t = t0 + 25 * 3600 * SEC + 600 * SEC;
            t = o.session(t, (&ws, 49_266), (&files, 445), &smb_atsvc())?;
            t += 60 * SEC;
            t = o.session(
                t,
                (&files, 49_300),
                (&db, 5985),
                &[(
                    b"POST /wsman HTTP/1.1\r\nHost: db\r\nContent-Length: 0\r\n\r\n".to_vec(),
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_vec(),
                )],
            )?;
            t += 60 * SEC;
            o.session(
                t,
                (&db, 40_022),
                (&backup, 22),
                &[(
                    b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
                    b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
                )],
            )?;
            flows += 3;
        }
        Attack::Ioc => {
            let ws = v4([10, 0, 4, 17]);
            let resolver = v4([10, 0, 0, 53]);
            let c2 = v4(IOC_ADDR);
            for k in 0..3u16 {
                let t = t0 + u64::from(k) * 60 * SEC;
                let id = 0x4a00 + k;
                let (mut q, mut a) = (Vec::new(), Vec::new());
                crate::scenario::dns(&mut q, id, IOC_DOMAIN, false, IOC_ADDR);
                crate::scenario::dns(&mut a, id, IOC_DOMAIN, true, IOC_ADDR);
                o.udp(t, (&ws, 53_000 + k), (&resolver, 53), &q)?;
                o.udp(t + MS, (&resolver, 53), (&ws, 53_000 + k), &a)?;
                let hello =
                    crate::proto::tls_client_hello(IOC_DOMAIN, "http/1.1", false, rng.next_u64());
                let flight = crate::proto::tls_server_flight(false, "http/1.1", rng.next_u64());
                o.session(
                    t + 5 * MS,
                    (&ws, 50_000 + k),
                    (&c2, 443),
                    &[(hello, flight)],
                )?;
            }
            flows = 6;
        }
        Attack::Slp => {
            let ws = v4([10, 0, 2, 21]);
            let esxi = v4([10, 0, 5, 50]);
            // SLPv2 Service Request for service:VMwareInfrastructure (RFC 2608 header).
            let mut srvrqst = vec![2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 2, b'e', b'n'];
            let svc = b"service:VMwareInfrastructure";
            srvrqst.extend_from_slice(&[0, 0]);
            srvrqst.extend_from_slice(&(svc.len() as u16).to_be_bytes());
            srvrqst.extend_from_slice(svc);
            srvrqst.extend_from_slice(&[0, 7]);
            srvrqst.extend_from_slice(b"DEFAULT");
            srvrqst.extend_from_slice(&[0, 0, 0, 0]);
            let len = srvrqst.len() as u32;
            srvrqst[2..5].copy_from_slice(&len.to_be_bytes()[1..]);
            o.udp(t0, (&ws, 51_000), (&esxi, 427), &srvrqst)?;
            // The SLP service answers: a SrvRply (function 2) with the same XID, no error and
            // no URL entries.
            let mut srvrply = vec![2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 2, b'e', b'n'];
            srvrply.extend_from_slice(&[0, 0, 0, 0]);
            let len = srvrply.len() as u32;
            srvrply[2..5].copy_from_slice(&len.to_be_bytes()[1..]);
            o.udp(t0 + MS, (&esxi, 427), (&ws, 51_000), &srvrply)?;
            o.session(
                t0 + SEC,
                (&ws, 51_001),
                (&esxi, 427),
                &[(srvrqst.clone(), Vec::new())],
            )?;
            flows = 2;
        }
    }
    let (packets, bytes) = (o.pcap.packets, o.pcap.bytes);
    o.pcap.finish()?;
    Ok(SynthSummary {
        packets,
        bytes,
        flows,
    })
}

/// Datagram `k` of the fragment flood: its first fragment (offset 0, more to come) or its last
/// (offset 16), 8 bytes of data each; source, identification and family drawn from `k`.
fn tiny_fragment(frame: &mut Vec<u8>, seed: u64, k: u64, last: bool) {
    let r = SplitMix64::new(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64();
    let v6 = r.is_multiple_of(8);
    let (off, more): (u16, bool) = if last { (16, false) } else { (0, true) };
    frame.clear();
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x10, 0x02, 0, 0, 0, 0, 0x66]);
    let data = [0x5a; 8];
    if v6 {
        frame.extend_from_slice(&0x86DDu16.to_be_bytes());
        frame.extend_from_slice(&[0x60, 0, 0, 0]);
        frame.extend_from_slice(&16u16.to_be_bytes());
        frame.extend_from_slice(&[44, 64]);
        frame.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        frame.extend_from_slice(&r.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 1]);
        frame.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x0a]);
        frame.extend_from_slice(&[17, 0]);
        frame.extend_from_slice(&(off | u16::from(more)).to_be_bytes());
        frame.extend_from_slice(&((r >> 32) as u32).to_be_bytes());
    } else {
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        let l3 = frame.len();
        frame.extend_from_slice(&[0x45, 0, 0, 28]);
        frame.extend_from_slice(&((r >> 40) as u16).to_be_bytes());
        let fo = (off / 8) | if more { 0x2000 } else { 0 };
        frame.extend_from_slice(&fo.to_be_bytes());
        frame.extend_from_slice(&[64, 17, 0, 0]);
        frame.extend_from_slice(&[
            (r >> 24) as u8 | 1,
            (r >> 16) as u8,
            (r >> 8) as u8,
            r as u8,
        ]);
        frame.extend_from_slice(&[10, 0, 0, 10]);
        let c = islet_wire::ipv4::checksum(&frame[l3..l3 + 20]);
        frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    frame.extend_from_slice(&data);
}

/// NetBIOS session framing of an SMB2 message.
fn netbios(smb: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&(smb.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(smb);
    v
}

/// An SMB2 header (MS-SMB2 2.2.1.2) for `command`, as a request or a response.
fn smb2_header(command: u16, message_id: u64, response: bool) -> Vec<u8> {
    let mut h = vec![0xfe, b'S', b'M', b'B', 64, 0, 1, 0];
    h.extend_from_slice(&0u32.to_le_bytes()); // status
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // credits
    h.extend_from_slice(&(u32::from(response)).to_le_bytes()); // flags: SERVER_TO_REDIR
    h.extend_from_slice(&0u32.to_le_bytes()); // next command
    h.extend_from_slice(&message_id.to_le_bytes());
    h.extend_from_slice(&0xfeffu32.to_le_bytes()); // process id
    h.extend_from_slice(&1u32.to_le_bytes()); // tree id
    h.extend_from_slice(&0x0000_1000_0000_0061u64.to_le_bytes()); // session id
    h.extend_from_slice(&[0u8; 16]); // signature
    h
}

/// A CREATE of the `atsvc` pipe and its response (MS-SMB2 2.2.13, 2.2.14): how `at \\host`
/// starts a remote scheduled task.
fn smb_atsvc() -> Vec<(Vec<u8>, Vec<u8>)> {
    let name: Vec<u8> = "atsvc".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut req = smb2_header(5, 4, false);
    req.extend_from_slice(&57u16.to_le_bytes());
    req.extend_from_slice(&[0, 0]); // security flags, oplock
    req.extend_from_slice(&2u32.to_le_bytes()); // impersonation
    req.extend_from_slice(&[0u8; 16]); // create flags, reserved
    req.extend_from_slice(&0x0012_019fu32.to_le_bytes()); // desired access
    req.extend_from_slice(&0u32.to_le_bytes()); // attributes
    req.extend_from_slice(&7u32.to_le_bytes()); // share access
    req.extend_from_slice(&1u32.to_le_bytes()); // disposition: FILE_OPEN
    req.extend_from_slice(&0x40u32.to_le_bytes()); // options: non-directory
    req.extend_from_slice(&(64u16 + 56).to_le_bytes()); // name offset
    req.extend_from_slice(&(name.len() as u16).to_le_bytes());
    req.extend_from_slice(&[0u8; 8]); // create contexts
    req.extend_from_slice(&name);
    let mut resp = smb2_header(5, 4, true);
    resp.extend_from_slice(&89u16.to_le_bytes());
    resp.extend_from_slice(&[0, 0]); // oplock, flags
    resp.extend_from_slice(&1u32.to_le_bytes()); // action: opened
    resp.extend_from_slice(&[0u8; 32]); // times
    resp.extend_from_slice(&[0u8; 16]); // sizes
    resp.extend_from_slice(&0x80u32.to_le_bytes()); // attributes
    resp.extend_from_slice(&[0u8; 4]);
    resp.extend_from_slice(&[0x11u8; 16]); // file id
    resp.extend_from_slice(&[0u8; 8]); // create contexts
    vec![(netbios(&req), netbios(&resp))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frag_flood_is_tiny_fragments_from_many_sources_that_never_complete() {
        use islet_wire::decode::{Decoded, Kind, decode};
        let mut out = Vec::new();
        let n = 4 * FRAG_FLOOD_LAG;
        let s = generate_attack(Attack::FragFlood, n, 3, 0, &mut out).expect("write");
        assert_eq!(s.packets, n);
        let mut at = 24;
        let (mut v6, mut firsts, mut lasts) = (0, 0, 0);
        let mut sources = std::collections::HashSet::new();
        let mut open = std::collections::HashSet::new();
        while at < out.len() {
            let len = u32::from_le_bytes(out[at + 8..at + 12].try_into().expect("4")) as usize;
            let frame = &out[at + 16..at + 16 + len];
            at += 16 + len;
            let mut d = Decoded::default();
            decode(1, frame, &mut d).expect("decodes");
            assert_eq!(d.kind, Kind::Fragment);
            let f = d.frag.expect("a fragment");
            assert_eq!(f.data_len, 8);
            v6 += usize::from(d.tuple.family == islet_wire::Family::V6);
            sources.insert(d.tuple.src);
            let key = (d.tuple.src, f.ident);
            if f.more {
                firsts += 1;
                open.insert(key);
            } else {
                lasts += 1;
                assert_eq!(f.offset, 16);
                assert!(open.contains(&key), "a last fragment follows its first");
            }
        }
        assert_eq!(
            (firsts, lasts),
            (n / 2 + FRAG_FLOOD_LAG, n / 2 - FRAG_FLOOD_LAG)
        );
        assert_eq!(open.len() as u64, firsts, "every datagram is opened once");
        assert!(
            sources.len() as u64 > firsts - 100,
            "{} sources",
            sources.len()
        );
        assert!(
            (2_200..2_800).contains(&v6),
            "{v6} IPv6 fragments of {n}: one in eight"
        );
    }

    #[test]
    fn ioc_scenario_beacons_three_times_and_its_event_names_both_indicators() {
        let mut out = Vec::new();
        let s =
            generate_attack(Attack::Ioc, 0, 1, 1_767_603_600_000_000_000, &mut out).expect("write");
        assert_eq!(s.flows, 6);
        // Three DNS exchanges (2 packets) and three TLS sessions (handshake 3, one exchange
        // 3, teardown 3).
        assert_eq!(s.packets, 3 * (2 + 9));
        let name = IOC_DOMAIN.as_bytes();
        let hits = out.windows(name.len()).filter(|w| *w == name).count();
        assert_eq!(
            hits, 3,
            "the SNI of each ClientHello (DNS names are label-encoded)"
        );
        let ev = ioc_misp_event();
        assert!(
            ev.contains(IOC_EVENT_UUID) && ev.contains(IOC_DOMAIN) && ev.contains("198.51.100.23")
        );
        assert_eq!(ev.matches("\"to_ids\":true").count(), 2);
    }
}
