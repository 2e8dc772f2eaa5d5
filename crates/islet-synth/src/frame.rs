//! Frame builders: complete, checksummed Ethernet/VLAN/IP/L4 frames.

use islet_wire::ipv4::{fold, sum};

/// One endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Host {
    pub mac: [u8; 6],
    pub v4: [u8; 4],
    pub v6: [u8; 16],
}

/// Transport header to build.
#[derive(Clone, Copy, Debug)]
pub(crate) enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        win: u16,
        syn_opts: bool,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        ty: u8,
        code: u8,
        id: u16,
        seq: u16,
    },
}

/// Append a frame to `buf` (cleared first).
pub(crate) fn build(
    buf: &mut Vec<u8>,
    src: &Host,
    dst: &Host,
    v6: bool,
    vlan: Option<u16>,
    l4: L4,
    payload: &[u8],
) {
    buf.clear();
    buf.extend_from_slice(&dst.mac);
    buf.extend_from_slice(&src.mac);
    if let Some(v) = vlan {
        buf.extend_from_slice(&0x8100u16.to_be_bytes());
        buf.extend_from_slice(&v.to_be_bytes());
    }
    buf.extend_from_slice(&(if v6 { 0x86DDu16 } else { 0x0800 }).to_be_bytes());
    let l3 = buf.len();
    let (proto, l4_len) = match l4 {
        L4::Tcp { syn_opts, .. } => (6u8, if syn_opts { 40 } else { 32 }),
        L4::Udp { .. } => (17, 8),
        L4::Icmp { .. } => (if v6 { 58 } else { 1 }, 8),
    };
    let ip_hdr = if v6 { 40 } else { 20 };
    let l4_total = l4_len + payload.len();
    if v6 {
        buf.extend_from_slice(&[0x60, 0, 0, 0]);
        buf.extend_from_slice(&(l4_total as u16).to_be_bytes());
        buf.push(proto);
        buf.push(64);
        buf.extend_from_slice(&src.v6);
        buf.extend_from_slice(&dst.v6);
    } else {
        let total = (ip_hdr + l4_total) as u16;
        buf.extend_from_slice(&[0x45, 0]);
        buf.extend_from_slice(&total.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
        buf.extend_from_slice(&src.v4);
        buf.extend_from_slice(&dst.v4);
        let c = islet_wire::ipv4::checksum(&buf[l3..l3 + 20]);
        buf[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    let l4_at = buf.len();
    match l4 {
        L4::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            win,
            syn_opts,
        } => {
            buf.extend_from_slice(&sport.to_be_bytes());
            buf.extend_from_slice(&dport.to_be_bytes());
            buf.extend_from_slice(&seq.to_be_bytes());
            buf.extend_from_slice(&ack.to_be_bytes());
            buf.push(((l4_len / 4) as u8) << 4);
            buf.push(flags);
            buf.extend_from_slice(&win.to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, 0]);
            if syn_opts {
                // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
                buf.extend_from_slice(&[2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
                buf.extend_from_slice(&seq.wrapping_mul(7).to_be_bytes());
                buf.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 7]);
            } else {
                // NOP, NOP, timestamps.
                buf.extend_from_slice(&[1, 1, 8, 10]);
                buf.extend_from_slice(&seq.wrapping_mul(7).to_be_bytes());
                buf.extend_from_slice(&ack.wrapping_mul(7).to_be_bytes());
            }
        }
        L4::Udp { sport, dport } => {
            buf.extend_from_slice(&sport.to_be_bytes());
            buf.extend_from_slice(&dport.to_be_bytes());
            buf.extend_from_slice(&(l4_total as u16).to_be_bytes());
            buf.extend_from_slice(&[0, 0]);
        }
        L4::Icmp { ty, code, id, seq } => {
            buf.extend_from_slice(&[ty, code, 0, 0]);
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&seq.to_be_bytes());
        }
    }
    buf.extend_from_slice(payload);
    // Transport checksum with the pseudo-header (ICMPv4 has none).
    let mut acc = 0u32;
    let icmp4 = proto == 1;
    if !icmp4 {
        if v6 {
            acc = sum(acc, &src.v6);
            acc = sum(acc, &dst.v6);
            acc = sum(acc, &(l4_total as u32).to_be_bytes());
            acc = sum(acc, &[0, 0, 0, proto]);
        } else {
            acc = sum(acc, &src.v4);
            acc = sum(acc, &dst.v4);
            acc = sum(acc, &[0, proto]);
            acc = sum(acc, &(l4_total as u16).to_be_bytes());
        }
    }
    acc = sum(acc, &buf[l4_at..]);
    let mut c = !fold(acc);
    if proto == 17 && c == 0 {
        c = 0xFFFF;
    }
    let at = l4_at
        + match proto {
            6 => 16,
            17 => 6,
            _ => 2,
        };
    buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
}
