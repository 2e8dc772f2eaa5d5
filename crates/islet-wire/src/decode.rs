//! The packet decoder: link type → innermost transport header, through VLAN tags, MPLS and
//! tunnels, into one flat, `Copy` [`Decoded`] summary. No allocation, no panics; every layer
//! count an attacker controls has a named bound.

use crate::gre::{Erspan, GpeNext, Gre, VXLAN_GPE_PORT, VXLAN_PORT, Vxlan, VxlanGpe};
use crate::icmp::Icmp;
use crate::ipv4::Ipv4;
use crate::ipv6::Ipv6;
use crate::link::{Ethernet, Null, NullFamily, Sll, Sll2, VlanTag, ethertype};
use crate::tcp::Tcp;
use crate::udp::Udp;
use crate::{DecodeEvent, ip_proto, linktype};

/// Most VLAN tags kept per packet (Suricata reports up to three).
pub const MAX_VLAN_TAGS: usize = 3;
/// Most nested tunnels decoded (VXLAN in GRE, …); a deeper packet is an anomaly.
pub const MAX_TUNNELS: usize = 2;
/// Most MPLS labels walked.
pub const MAX_MPLS_LABELS: usize = 8;
/// Most decoding steps for one frame, whatever the mix of layers.
pub const MAX_LAYERS: usize = 24;

/// Address family of a tuple.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    #[default]
    V4,
    V6,
}

/// Addresses, protocol, ports and VLAN context of one packet, in the packet's own direction.
/// IPv4 addresses sit in the first four bytes of `src`/`dst`, the rest zero.
/// For ICMP, `sport` is the type and `dport` the code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub family: Family,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub vlan: [u16; MAX_VLAN_TAGS],
    pub vlan_len: u8,
}

impl Tuple {
    pub fn vlans(&self) -> &[u16] {
        &self.vlan[..usize::from(self.vlan_len)]
    }
    pub fn src_ip(&self) -> std::net::IpAddr {
        ip_of(self.family, &self.src)
    }
    pub fn dst_ip(&self) -> std::net::IpAddr {
        ip_of(self.family, &self.dst)
    }
}

fn ip_of(f: Family, a: &[u8; 16]) -> std::net::IpAddr {
    match f {
        Family::V4 => std::net::IpAddr::from([a[0], a[1], a[2], a[3]]),
        Family::V6 => std::net::IpAddr::from(*a),
    }
}

/// An IP fragment that still needs reassembly. Offsets are from the frame start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frag {
    pub ident: u32,
    /// Offset of this fragment's data within the datagram, in bytes.
    pub offset: u16,
    pub more: bool,
    /// Upper-layer protocol of the datagram.
    pub proto: u8,
    /// Start of the IP header.
    pub l3_offset: u32,
    /// Length of the unfragmentable part (IPv4 header; IPv6 header and the extension
    /// headers before the Fragment header).
    pub unfrag_len: u32,
    /// For IPv6: offset of the Fragment header from `l3_offset`.
    pub frag_hdr_at: u32,
    /// Start and length of the fragment's data.
    pub data_offset: u32,
    pub data_len: u32,
}

/// One tunnel's outer flow, so it can be counted too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outer {
    pub tuple: Tuple,
    pub pkt_len: u32,
}

/// What a frame turned out to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// Not IP (ARP, LLDP, …): counted, no flow.
    #[default]
    NotIp,
    /// An IP packet decoded down to its transport header (or to an unknown protocol).
    Ip,
    /// An IP fragment: see [`Decoded::frag`].
    Fragment,
}

/// Layers seen, for the decoder counters.
pub mod layer {
    pub const ETHERNET: u16 = 1 << 0;
    pub const VLAN: u16 = 1 << 1;
    pub const IPV4: u16 = 1 << 2;
    pub const IPV6: u16 = 1 << 3;
    pub const TCP: u16 = 1 << 4;
    pub const UDP: u16 = 1 << 5;
    pub const ICMPV4: u16 = 1 << 6;
    pub const ICMPV6: u16 = 1 << 7;
    pub const GRE: u16 = 1 << 8;
    pub const VXLAN: u16 = 1 << 9;
    pub const ERSPAN: u16 = 1 << 10;
    pub const MPLS: u16 = 1 << 11;
    pub const SLL: u16 = 1 << 12;
    pub const ARP: u16 = 1 << 13;
    pub const UNKNOWN_ETHERTYPE: u16 = 1 << 14;
}

/// The flat result of decoding one frame. All offsets are from the start of the frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decoded {
    pub kind: Kind,
    pub tuple: Tuple,
    pub l3_offset: u32,
    pub l4_offset: u32,
    pub payload_offset: u32,
    pub payload_len: u32,
    /// Bytes this packet counts for in its flow: the captured frame, or for a tunnelled packet
    /// the inner frame (as Suricata counts its tunnel pseudo-packets).
    pub pkt_len: u32,
    /// Length of the innermost IP datagram (header included).
    pub ip_len: u32,
    pub ttl: u8,
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    pub tcp_win: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub frag: Option<Frag>,
    pub outer: [Outer; MAX_TUNNELS],
    pub outer_len: u8,
    pub layers: u16,
}

impl Decoded {
    pub fn outers(&self) -> &[Outer] {
        &self.outer[..usize::from(self.outer_len)]
    }
    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let s = self.payload_offset as usize;
        let e = s + self.payload_len as usize;
        frame.get(s..e).unwrap_or(&[])
    }
}

#[derive(Clone, Copy)]
enum Next {
    Ethernet,
    EtherType(u16),
    Ipv4,
    Ipv6,
    RawIp,
    Mpls,
}

/// Decode `frame` captured with `link` (a LINKTYPE_* value). On `Err`, `out` holds what was
/// decoded before the fault (the tuple's addresses when the IP header was good).
pub fn decode(link: u32, frame: &[u8], out: &mut Decoded) -> Result<(), DecodeEvent> {
    *out = Decoded {
        pkt_len: frame.len() as u32,
        ..Decoded::default()
    };
    let (next, at) = match link {
        linktype::ETHERNET => (Next::Ethernet, 0),
        linktype::RAW | linktype::RAW_OPENBSD => (Next::RawIp, 0),
        linktype::IPV4 => (Next::Ipv4, 0),
        linktype::IPV6 => (Next::Ipv6, 0),
        linktype::LINUX_SLL => {
            let s = Sll::new_checked(frame)?;
            out.layers |= layer::SLL;
            (Next::EtherType(s.protocol()), Sll::HEADER_LEN)
        }
        linktype::LINUX_SLL2 => {
            let s = Sll2::new_checked(frame)?;
            out.layers |= layer::SLL;
            (Next::EtherType(s.protocol()), Sll2::HEADER_LEN)
        }
        linktype::NULL => match Null::new_checked(frame)?.family() {
            NullFamily::Ipv4 => (Next::Ipv4, Null::HEADER_LEN),
            NullFamily::Ipv6 => (Next::Ipv6, Null::HEADER_LEN),
            NullFamily::Other(_) => return Err(DecodeEvent::NullUnsupportedType),
        },
        _ => return Err(DecodeEvent::EthernetPktTooSmall),
    };
    walk(frame, next, at, frame.len(), out)
}

/// Decode starting at an IP header at `l3_offset` (a reassembled datagram). The VLAN context
/// already in `out.tuple` is kept; everything else is reset.
pub fn decode_ip(frame: &[u8], l3_offset: usize, out: &mut Decoded) -> Result<(), DecodeEvent> {
    let vlan = out.tuple.vlan;
    let vlan_len = out.tuple.vlan_len;
    *out = Decoded {
        pkt_len: frame.len() as u32,
        ..Decoded::default()
    };
    out.tuple.vlan = vlan;
    out.tuple.vlan_len = vlan_len;
    walk(frame, Next::RawIp, l3_offset, frame.len(), out)
}

fn walk(
    frame: &[u8],
    mut next: Next,
    mut at: usize,
    mut end: usize,
    out: &mut Decoded,
) -> Result<(), DecodeEvent> {
    let mut mpls_labels = 0;
    for _ in 0..MAX_LAYERS {
        let buf = &frame[at.min(end)..end];
        match next {
            Next::Ethernet => {
                let e = Ethernet::new_checked(buf)?;
                out.layers |= layer::ETHERNET;
                next = Next::EtherType(e.ethertype());
                at += Ethernet::HEADER_LEN;
            }
            Next::EtherType(t) => match t {
                ethertype::IPV4 => next = Next::Ipv4,
                ethertype::IPV6 => next = Next::Ipv6,
                ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                    let tag = VlanTag::new_checked(buf)?;
                    out.layers |= layer::VLAN;
                    let n = usize::from(out.tuple.vlan_len);
                    if n >= MAX_VLAN_TAGS {
                        return Err(DecodeEvent::VlanTooManyLayers);
                    }
                    out.tuple.vlan[n] = tag.vid();
                    out.tuple.vlan_len += 1;
                    next = Next::EtherType(tag.ethertype());
                    at += VlanTag::HEADER_LEN;
                }
                ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => next = Next::Mpls,
                ethertype::ARP => {
                    out.layers |= layer::ARP;
                    return Ok(());
                }
                _ => {
                    out.layers |= layer::UNKNOWN_ETHERTYPE;
                    return Ok(());
                }
            },
            Next::Mpls => {
                if buf.len() < 4 {
                    return Err(DecodeEvent::MplsHeaderTooSmall);
                }
                out.layers |= layer::MPLS;
                mpls_labels += 1;
                let bottom = buf[2] & 0x01 != 0;
                at += 4;
                if bottom {
                    next = Next::RawIp;
                } else if mpls_labels >= MAX_MPLS_LABELS {
                    return Err(DecodeEvent::MplsHeaderTooSmall);
                }
            }
            Next::RawIp => {
                next = match buf.first().map(|b| b >> 4) {
                    Some(4) => Next::Ipv4,
                    Some(6) => Next::Ipv6,
                    None => return Err(DecodeEvent::Ipv4PktTooSmall),
                    Some(_) => return Err(DecodeEvent::IprawInvalidIpVersion),
                };
            }
            Next::Ipv4 => {
                let ip = Ipv4::new_checked(buf)?;
                out.layers |= layer::IPV4;
                out.kind = Kind::Ip;
                out.l3_offset = at as u32;
                out.ip_len = ip.total_len() as u32;
                out.ttl = ip.ttl();
                out.tuple.family = crate::Family::V4;
                out.tuple.src = [0; 16];
                out.tuple.dst = [0; 16];
                out.tuple.src[..4].copy_from_slice(&ip.src());
                out.tuple.dst[..4].copy_from_slice(&ip.dst());
                out.tuple.proto = ip.protocol();
                out.tuple.sport = 0;
                out.tuple.dport = 0;
                end = at + ip.total_len();
                let hl = ip.header_len();
                if ip.is_fragment() {
                    out.kind = Kind::Fragment;
                    out.frag = Some(Frag {
                        ident: u32::from(ip.ident()),
                        offset: ip.frag_offset(),
                        more: ip.more_frags(),
                        proto: ip.protocol(),
                        l3_offset: at as u32,
                        unfrag_len: hl as u32,
                        frag_hdr_at: 0,
                        data_offset: (at + hl) as u32,
                        data_len: (ip.total_len() - hl) as u32,
                    });
                    return Ok(());
                }
                at += hl;
                match transport(frame, at, end, ip.protocol(), false, out)? {
                    Some((n, inner)) => (next, at) = (n, inner),
                    None => return Ok(()),
                }
            }
            Next::Ipv6 => {
                let ip = Ipv6::new_checked(buf)?;
                out.layers |= layer::IPV6;
                out.kind = Kind::Ip;
                out.l3_offset = at as u32;
                out.ip_len = ip.total_len() as u32;
                out.ttl = ip.hop_limit();
                out.tuple.family = crate::Family::V6;
                out.tuple.src = ip.src();
                out.tuple.dst = ip.dst();
                out.tuple.proto = ip.next_header();
                out.tuple.sport = 0;
                out.tuple.dport = 0;
                end = at + ip.total_len();
                let chain = ip.ext_chain()?;
                out.tuple.proto = chain.proto;
                if let Some(f) = chain.frag {
                    out.kind = Kind::Fragment;
                    out.frag = Some(Frag {
                        ident: f.ident,
                        offset: f.offset,
                        more: f.more,
                        proto: f.next,
                        l3_offset: at as u32,
                        unfrag_len: f.at as u32,
                        frag_hdr_at: f.at as u32,
                        data_offset: (at + chain.l4_offset) as u32,
                        data_len: (ip.total_len() - chain.l4_offset) as u32,
                    });
                    return Ok(());
                }
                at += chain.l4_offset;
                match transport(frame, at, end, chain.proto, true, out)? {
                    Some((n, inner)) => (next, at) = (n, inner),
                    None => return Ok(()),
                }
            }
        }
    }
    Err(DecodeEvent::TooManyLayers)
}

/// Decode the transport header at `at`. Returns the next layer when the payload is a tunnel
/// islet follows (the outer flow is then recorded in `out.outer`).
fn transport(
    frame: &[u8],
    at: usize,
    end: usize,
    proto: u8,
    v6: bool,
    out: &mut Decoded,
) -> Result<Option<(Next, usize)>, DecodeEvent> {
    let buf = &frame[at..end];
    out.l4_offset = at as u32;
    out.payload_offset = at as u32;
    out.payload_len = buf.len() as u32;
    match proto {
        ip_proto::TCP => {
            let t = Tcp::new_checked(buf)?;
            out.layers |= layer::TCP;
            out.tuple.sport = t.src_port();
            out.tuple.dport = t.dst_port();
            out.tcp_flags = t.flags();
            out.tcp_seq = t.seq();
            out.tcp_ack = t.ack();
            out.tcp_win = t.window();
            out.payload_offset = (at + t.header_len()) as u32;
            out.payload_len = t.payload().len() as u32;
            Ok(None)
        }
        ip_proto::UDP => {
            let u = Udp::new_checked(buf)?;
            out.layers |= layer::UDP;
            out.tuple.sport = u.src_port();
            out.tuple.dport = u.dst_port();
            out.payload_offset = (at + crate::udp::HEADER_LEN) as u32;
            out.payload_len = u.payload().len() as u32;
            if u.dst_port() == VXLAN_PORT && Vxlan::parse(u.payload()).is_some() {
                out.layers |= layer::VXLAN;
                let inner = at + crate::udp::HEADER_LEN + Vxlan::HEADER_LEN;
                enter_tunnel(out, frame, inner, end)?;
                return Ok(Some((Next::Ethernet, inner)));
            }
            if u.dst_port() == VXLAN_GPE_PORT
                && let Some(gpe) = VxlanGpe::parse(u.payload())
            {
                let next = match gpe.next() {
                    GpeNext::Ipv4 => Next::Ipv4,
                    GpeNext::Ipv6 => Next::Ipv6,
                    GpeNext::Ethernet => Next::Ethernet,
                    GpeNext::Other(_) => return Ok(None),
                };
                out.layers |= layer::VXLAN;
                let inner = at + crate::udp::HEADER_LEN + VxlanGpe::HEADER_LEN;
                enter_tunnel(out, frame, inner, end)?;
                return Ok(Some((next, inner)));
            }
            Ok(None)
        }
        ip_proto::ICMP if !v6 => {
            let i = Icmp::new_checked_v4(buf)?;
            out.layers |= layer::ICMPV4;
            out.icmp_type = i.icmp_type();
            out.icmp_code = i.code();
            out.tuple.sport = u16::from(i.icmp_type());
            out.tuple.dport = u16::from(i.code());
            out.payload_offset = (at + crate::icmp::HEADER_LEN) as u32;
            out.payload_len = i.payload().len() as u32;
            Ok(None)
        }
        ip_proto::ICMPV6 if v6 => {
            let i = Icmp::new_checked_v6(buf)?;
            out.layers |= layer::ICMPV6;
            out.icmp_type = i.icmp_type();
            out.icmp_code = i.code();
            out.tuple.sport = u16::from(i.icmp_type());
            out.tuple.dport = u16::from(i.code());
            out.payload_offset = (at + crate::icmp::HEADER_LEN) as u32;
            out.payload_len = i.payload().len() as u32;
            Ok(None)
        }
        ip_proto::GRE => {
            let g = Gre::new_checked(buf)?;
            out.layers |= layer::GRE;
            let inner = at + g.header_len();
            let next = match (g.version(), g.protocol()) {
                (0, ethertype::IPV4) => Next::Ipv4,
                (0, ethertype::IPV6) => Next::Ipv6,
                (0, ethertype::TEB) => Next::Ethernet,
                (0, ethertype::ERSPAN_II) if !g.has_sequence() => {
                    // ERSPAN type I: the mirrored frame follows directly.
                    out.layers |= layer::ERSPAN;
                    Next::Ethernet
                }
                (0, ethertype::ERSPAN_II | ethertype::ERSPAN_III) => {
                    let e = Erspan::new_checked(g.payload())?;
                    out.layers |= layer::ERSPAN;
                    let inner = inner + (g.payload().len() - e.payload().len());
                    enter_tunnel(out, frame, inner, end)?;
                    return Ok(Some((Next::Ethernet, inner)));
                }
                // Other GRE payloads (PPTP's PPP, WCCP, …) are left undecoded.
                _ => return Ok(None),
            };
            enter_tunnel(out, frame, inner, end)?;
            Ok(Some((next, inner)))
        }
        _ => Ok(None),
    }
}

/// Record the current tuple as an outer flow and reset for the inner packet starting at
/// `inner`. Inner packets keep the outer VLAN tags (as Suricata's tunnel packets do).
fn enter_tunnel(
    out: &mut Decoded,
    frame: &[u8],
    inner: usize,
    end: usize,
) -> Result<(), DecodeEvent> {
    let n = usize::from(out.outer_len);
    if n >= MAX_TUNNELS {
        return Err(DecodeEvent::TooManyLayers);
    }
    out.outer[n] = Outer {
        tuple: out.tuple,
        pkt_len: out.pkt_len,
    };
    out.outer_len += 1;
    out.kind = Kind::NotIp;
    out.pkt_len = end.saturating_sub(inner).min(frame.len()) as u32;
    out.payload_len = 0;
    out.tcp_flags = 0;
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn ipv4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let total = (20 + 8 + payload.len()) as u16;
        let mut p = vec![
            0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn qinq_tags_are_listed_outer_first() {
        let mut f = eth(0x88a8);
        f.extend_from_slice(&[0x00, 0x01, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        f.extend_from_slice(&ipv4_udp(1000, 53, b"q"));
        let mut d = Decoded::default();
        decode(linktype::ETHERNET, &f, &mut d).unwrap();
        assert_eq!(d.tuple.vlans(), &[1, 10]);
        assert_eq!(
            (d.tuple.sport, d.tuple.dport, d.payload(&f)),
            (1000, 53, &b"q"[..])
        );
    }

    #[test]
    fn four_vlan_tags_are_too_many() {
        let mut f = eth(0x8100);
        for _ in 0..4 {
            f.extend_from_slice(&[0x00, 0x01, 0x81, 0x00]);
        }
        f.extend_from_slice(&[0; 40]);
        let mut d = Decoded::default();
        assert_eq!(
            decode(linktype::ETHERNET, &f, &mut d),
            Err(DecodeEvent::VlanTooManyLayers)
        );
    }

    #[test]
    fn vxlan_records_outer_and_decodes_inner() {
        let mut inner = eth(0x0800);
        inner.extend_from_slice(&ipv4_udp(5353, 53, b"dns"));
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vx.extend_from_slice(&inner);
        let mut f = eth(0x0800);
        f.extend_from_slice(&ipv4_udp(40000, 4789, &vx));
        let mut d = Decoded::default();
        decode(linktype::ETHERNET, &f, &mut d).unwrap();
        assert_eq!(d.outers().len(), 1);
        assert_eq!(d.outers()[0].tuple.dport, 4789);
        assert_eq!(d.outers()[0].pkt_len as usize, f.len());
        assert_eq!((d.tuple.sport, d.tuple.dport), (5353, 53));
        assert_eq!(d.pkt_len as usize, inner.len());
        assert_eq!(d.payload(&f), b"dns");
    }

    #[test]
    fn gre_erspan_then_vxlan_gpe_reaches_the_inner_tcp() {
        let mut tcp = vec![
            0xfe, 0x96, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0,
        ];
        let mut inner_ip = vec![
            0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 16, 27, 12, 10, 16, 27, 131,
        ];
        inner_ip.append(&mut tcp);
        let mut inner = eth(0x0800);
        inner.extend_from_slice(&inner_ip);
        let mut gpe = vec![0x0c, 0, 0, 3, 0, 0, 0, 0];
        gpe.extend_from_slice(&inner);
        let mut mid = eth(0x0800);
        mid.extend_from_slice(&ipv4_udp(4789, 4790, &gpe));
        let mut gre = vec![
            0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 0, 0x10, 0, 0, 0x14, 0, 0, 0, 1,
        ];
        gre.extend_from_slice(&mid);
        let mut outer_ip = vec![
            0x45, 0, 0, 0, 0, 1, 0, 0, 64, 47, 0, 0, 100, 20, 9, 2, 100, 20, 9, 1,
        ];
        let total = (20 + gre.len()) as u16;
        outer_ip[2..4].copy_from_slice(&total.to_be_bytes());
        outer_ip.extend_from_slice(&gre);
        let mut f = eth(0x0800);
        f.extend_from_slice(&outer_ip);
        let mut d = Decoded::default();
        decode(linktype::ETHERNET, &f, &mut d).unwrap();
        assert_eq!(d.outers().len(), 2);
        assert_eq!(d.outers()[0].tuple.proto, 47);
        assert_eq!(d.outers()[1].tuple.dport, 4790);
        assert_eq!(
            (d.tuple.proto, d.tuple.sport, d.tuple.dport),
            (6, 65174, 80)
        );
        assert_eq!(&d.tuple.src[..4], &[10, 16, 27, 12]);
    }

    #[test]
    fn ipv4_fragment_is_reported_not_decoded() {
        let mut ip = ipv4_udp(1, 2, &[0; 16]);
        ip[6] = 0x20; // more fragments
        let mut d = Decoded::default();
        decode(linktype::IPV4, &ip, &mut d).unwrap();
        assert_eq!(d.kind, Kind::Fragment);
        let fr = d.frag.unwrap();
        assert_eq!((fr.offset, fr.more, fr.data_len), (0, true, 24));
    }

    #[test]
    fn raw_ip_with_bad_version() {
        let mut d = Decoded::default();
        assert_eq!(
            decode(linktype::RAW, &[0x50; 40], &mut d),
            Err(DecodeEvent::IprawInvalidIpVersion)
        );
    }
}
