//! Ethernet/IPv4 frames built byte by byte (RFC 791, 768, 793), for tests that need exact
//! packets rather than a capture.

use std::net::Ipv4Addr;

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = u16::try_from(20 + l4.len()).expect("frame fits");
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

/// A UDP datagram in an Ethernet frame (UDP checksum 0: not computed, as RFC 768 allows).
pub fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("datagram fits");
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&src.1.to_be_bytes());
    u.extend_from_slice(&dst.1.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    ipv4(src.0, dst.0, 17, &u)
}

/// A TCP segment without payload, with `flags` (0x02 SYN, 0x12 SYN/ACK, 0x10 ACK, 0x04 RST).
pub fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), seq: u32, flags: u8) -> Vec<u8> {
    tcp_ack(src, dst, seq, 0, flags)
}

/// A TCP segment without payload, with its acknowledgement number.
pub fn tcp_ack(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    t.extend_from_slice(&src.1.to_be_bytes());
    t.extend_from_slice(&dst.1.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    ipv4(src.0, dst.0, 6, &t)
}

/// A completed TCP handshake from `client` to `server` starting at `ts` (SYN, SYN/ACK, ACK,
/// a millisecond apart), as (time, frame) pairs.
pub fn handshake(ts: u64, client: (Ipv4Addr, u16), server: (Ipv4Addr, u16)) -> [(u64, Vec<u8>); 3] {
    [
        (ts, tcp_ack(client, server, 100, 0, 0x02)),
        (ts + 1_000_000, tcp_ack(server, client, 5_000, 101, 0x12)),
        (ts + 2_000_000, tcp_ack(client, server, 101, 5_001, 0x10)),
    ]
}

/// A DNS response to `qname` (class IN, type A) answering with `addrs`, each with `ttl`.
pub fn dns_a_response(id: u16, qname: &str, addrs: &[Ipv4Addr], ttl: u32) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80, 0, 1]);
    m.extend_from_slice(&u16::try_from(addrs.len()).expect("few").to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    for label in qname.split('.') {
        m.push(u8::try_from(label.len()).expect("label"));
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    for a in addrs {
        // The owner name points at the question (offset 12).
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&[0, 4]);
        m.extend_from_slice(&a.octets());
    }
    m
}
