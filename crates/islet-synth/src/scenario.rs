//! Scenario profiles and the flow generators that make them.

use crate::frame::{Host, L4, build};
use crate::pcap::PcapWriter;
use crate::rng::SplitMix64;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{self, Write};

/// A scenario profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// East-west data-centre mix: mostly short request/response flows (RPC, HTTP, DNS), a few
    /// bulk transfers with heavy-tailed sizes, some IPv6, some VLAN-tagged segments, ICMP.
    Mixed,
    /// An attack scenario (`crate::attack`).
    Attack(crate::attack::Attack),
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        use crate::attack::Attack;
        match s {
            "mixed" => Ok(Profile::Mixed),
            "scan" => Ok(Profile::Attack(Attack::Scan)),
            "syn-flood" => Ok(Profile::Attack(Attack::SynFlood)),
            "syn-flood-spoofed" => Ok(Profile::Attack(Attack::SynFloodSpoofed)),
            "udp-flood" => Ok(Profile::Attack(Attack::UdpFlood)),
            "lateral" => Ok(Profile::Attack(Attack::Lateral)),
            "slp" => Ok(Profile::Attack(Attack::Slp)),
            "ioc" => Ok(Profile::Attack(Attack::Ioc)),
            "frag-flood" => Ok(Profile::Attack(Attack::FragFlood)),
            other => Err(format!(
                "unknown profile {other:?} (known: mixed, scan, syn-flood, syn-flood-spoofed, udp-flood, frag-flood, lateral, slp, ioc)"
            )),
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub profile: Profile,
    /// Hosts in the scenario (≥ 2).
    pub hosts: u32,
    /// Flows to start.
    pub flows: u64,
    /// Stop after this many packets (0: when every flow has finished).
    pub max_packets: u64,
    /// Seconds over which flows start.
    pub duration_s: u64,
    pub seed: u64,
    /// Capture start time, ns since the epoch.
    pub start_ns: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            profile: Profile::Mixed,
            hosts: 64,
            flows: 2000,
            max_packets: 0,
            duration_s: 60,
            seed: 1,
            // 2026-01-05T09:00:00Z
            start_ns: 1_767_603_600_000_000_000,
        }
    }
}

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynthSummary {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
}

const MSS: usize = 1448;
/// Longest message a flow sends (bounds elephant flows).
const MAX_MESSAGE: f64 = 64.0 * 1024.0 * 1024.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum App {
    Http,
    Ssh,
    /// TLS 1.3 (or 1.2 when false) with the SNI of the server's service name.
    Tls {
        v13: bool,
    },
    Opaque,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpPhase {
    Syn,
    SynAck,
    Ack,
    Data,
    FinClient,
    FinServer,
    LastAck,
    Rst,
    Done,
}

#[derive(Clone, Debug)]
struct Tcp {
    sport: u16,
    dport: u16,
    seq: [u32; 2],
    phase: TcpPhase,
    /// Messages: (from client?, length).
    msgs: [(bool, usize); 6],
    n_msgs: usize,
    msg: usize,
    sent: usize,
    unacked: u8,
    /// The receiver owes an ACK now.
    ack_due: bool,
    rst_end: bool,
    app: App,
}

#[derive(Clone, Debug)]
enum Kind {
    Tcp(Box<Tcp>),
    /// Request/response datagrams: `left` exchanges to go; `reply` = the next is the answer.
    Udp {
        sport: u16,
        dport: u16,
        left: u8,
        reply: bool,
        txid: u16,
    },
    Icmp {
        id: u16,
        seq: u16,
        left: u8,
        reply: bool,
    },
}

#[derive(Clone, Debug)]
struct Gen {
    next_ns: u64,
    id: u64,
    client: u32,
    server: u32,
    v6: bool,
    vlan: Option<u16>,
    rtt_ns: u64,
    kind: Kind,
}

impl PartialEq for Gen {
    fn eq(&self, o: &Self) -> bool {
        (self.next_ns, self.id) == (o.next_ns, o.id)
    }
}
impl Eq for Gen {}
impl PartialOrd for Gen {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Gen {
    /// Reversed, so the max-heap pops the earliest packet first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.next_ns, o.id).cmp(&(self.next_ns, self.id))
    }
}

fn host(i: u32) -> Host {
    let mut v6 = [0u8; 16];
    v6[0] = 0xfd;
    v6[1] = 0x00;
    v6[7] = 0x01;
    v6[14] = (i >> 8) as u8;
    v6[15] = i as u8;
    Host {
        mac: [0x02, 0, 0, 0, (i >> 8) as u8, i as u8],
        v4: [10, 0, (i / 250) as u8, (i % 250 + 1) as u8],
        v6,
    }
}

/// Generate the scenario into `out` as a pcap.
pub fn generate<W: Write>(opts: &SynthOptions, out: W) -> io::Result<SynthSummary> {
    if let Profile::Attack(a) = opts.profile {
        return crate::attack::generate_attack(a, opts.max_packets, opts.seed, opts.start_ns, out);
    }
    let hosts: Vec<Host> = (0..opts.hosts.max(2)).map(host).collect();
    let mut rng = SplitMix64::new(opts.seed);
    let mut pcap = PcapWriter::new(out, 1, 65535)?;
    let mut heap: BinaryHeap<Gen> = BinaryHeap::new();
    let mean_gap = opts.duration_s as f64 * 1e9 / opts.flows.max(1) as f64;
    let mut next_start = opts.start_ns;
    let mut started = 0u64;
    let mut frame = Vec::with_capacity(2048);
    let mut payload = Vec::with_capacity(2048);
    loop {
        if opts.max_packets != 0 && pcap.packets >= opts.max_packets {
            break;
        }
        let start_due = started < opts.flows && heap.peek().is_none_or(|g| next_start <= g.next_ns);
        if start_due {
            heap.push(new_flow(&mut rng, hosts.len() as u32, started, next_start));
            started += 1;
            next_start += rng.exp(mean_gap) as u64;
            continue;
        }
        let Some(mut g) = heap.pop() else { break };
        let ts = g.next_ns;
        if step(&mut g, &mut rng, &hosts, &mut frame, &mut payload) {
            pcap.write(ts, &frame)?;
        }
        if !finished(&g) {
            heap.push(g);
        }
    }
    let (packets, bytes) = (pcap.packets, pcap.bytes);
    pcap.finish()?;
    Ok(SynthSummary {
        packets,
        bytes,
        flows: started,
    })
}

fn new_flow(rng: &mut SplitMix64, n: u32, id: u64, at: u64) -> Gen {
    let services = (n / 5).max(1);
    let server = rng.below(u64::from(services)) as u32;
    let mut client = rng.below(u64::from(n)) as u32;
    if client == server {
        client = (client + 1) % n;
    }
    let v6 = rng.chance(0.10);
    let vlan = server
        .is_multiple_of(5)
        .then_some(100 + (server % 8) as u16);
    let rtt_ns = 40_000 + rng.below(400_000);
    let sport = 32768 + rng.below(28000) as u16;
    let r = rng.unit();
    let kind = if r < 0.66 {
        let (dport, app) = match rng.below(10) {
            0..=3 => (80, App::Http),
            4 => (22, App::Ssh),
            5..=6 => (
                443,
                App::Tls {
                    v13: rng.chance(0.7),
                },
            ),
            7 => (5432, App::Opaque),
            8 => (6379, App::Opaque),
            _ => (9092, App::Opaque),
        };
        let rounds = 1 + rng.below(3) as usize;
        let mut msgs = [(true, 0usize); 6];
        for i in 0..rounds {
            let req = 80 + rng.below(700) as usize;
            let resp = rng.pareto(300.0, 1.15, MAX_MESSAGE) as usize;
            msgs[2 * i] = (true, req);
            msgs[2 * i + 1] = (false, resp);
        }
        // Handshakes are their own first messages, sized exactly.
        match app {
            App::Tls { v13 } => {
                msgs[0].1 = crate::proto::tls_client_hello(&sni(server), "h2", !v13, 0).len();
                let flight = crate::proto::tls_server_flight(v13, "h2", 0).len();
                msgs[1].1 = msgs[1].1.max(flight);
            }
            App::Ssh => {
                msgs[0].1 = SSH_CLIENT_BANNER.len() + crate::proto::ssh_kexinit(true).len();
                msgs[1].1 = SSH_SERVER_BANNER.len() + crate::proto::ssh_kexinit(false).len();
            }
            _ => {}
        }
        Kind::Tcp(Box::new(Tcp {
            sport,
            dport,
            seq: [rng.next_u64() as u32, rng.next_u64() as u32],
            phase: TcpPhase::Syn,
            msgs,
            n_msgs: rounds * 2,
            msg: 0,
            sent: 0,
            unacked: 0,
            ack_due: false,
            rst_end: rng.chance(0.08),
            app,
        }))
    } else if r < 0.95 {
        let dport = if rng.chance(0.85) { 53 } else { 123 };
        Kind::Udp {
            sport,
            dport,
            left: 1 + rng.below(2) as u8,
            reply: false,
            txid: rng.next_u64() as u16,
        }
    } else {
        Kind::Icmp {
            id: rng.next_u64() as u16,
            seq: 1,
            left: 1 + rng.below(4) as u8,
            reply: false,
        }
    };
    Gen {
        next_ns: at,
        id,
        client,
        server,
        v6,
        vlan,
        rtt_ns,
        kind,
    }
}

fn finished(g: &Gen) -> bool {
    match &g.kind {
        Kind::Tcp(t) => t.phase == TcpPhase::Done,
        Kind::Udp { left, .. } | Kind::Icmp { left, .. } => *left == 0,
    }
}

/// Wire time of a frame at 10 Gbit/s plus a little jitter.
fn gap(rng: &mut SplitMix64, len: usize) -> u64 {
    (len as u64 * 8) / 10 + 200 + rng.below(2_000)
}

/// Build the generator's next frame into `frame` and schedule the one after. Returns false when
/// the step produced no frame.
fn step(
    g: &mut Gen,
    rng: &mut SplitMix64,
    hosts: &[Host],
    frame: &mut Vec<u8>,
    payload: &mut Vec<u8>,
) -> bool {
    let (c, s) = (hosts[g.client as usize], hosts[g.server as usize]);
    let (v6, vlan, rtt) = (g.v6, g.vlan, g.rtt_ns);
    match &mut g.kind {
        Kind::Tcp(t) => tcp_step(
            t,
            g.server,
            &c,
            &s,
            v6,
            vlan,
            rtt,
            rng,
            frame,
            payload,
            &mut g.next_ns,
        ),
        Kind::Udp {
            sport,
            dport,
            left,
            reply,
            txid,
        } => {
            payload.clear();
            let name = format!("svc-{}.prod.cluster.local", g.server);
            if *dport == 53 {
                dns(payload, *txid, &name, *reply, s.v4);
            } else {
                payload.resize(48, 0);
                payload[0] = if *reply { 0x24 } else { 0x23 };
            }
            let (src, dst, sp, dp) = if *reply {
                (&s, &c, *dport, *sport)
            } else {
                (&c, &s, *sport, *dport)
            };
            build(
                frame,
                src,
                dst,
                v6,
                vlan,
                L4::Udp {
                    sport: sp,
                    dport: dp,
                },
                payload,
            );
            if *reply {
                *left -= 1;
                *txid = txid.wrapping_add(1);
                g.next_ns += rtt * 20 + rng.below(5_000_000);
            } else {
                g.next_ns += rtt / 2 + rng.below(50_000);
            }
            *reply = !*reply;
            true
        }
        Kind::Icmp {
            id,
            seq,
            left,
            reply,
        } => {
            payload.clear();
            payload.extend((0..56u8).map(|i| i.wrapping_add(0x10)));
            let ty = match (v6, *reply) {
                (false, false) => 8,
                (false, true) => 0,
                (true, false) => 128,
                (true, true) => 129,
            };
            let (src, dst) = if *reply { (&s, &c) } else { (&c, &s) };
            build(
                frame,
                src,
                dst,
                v6,
                vlan,
                L4::Icmp {
                    ty,
                    code: 0,
                    id: *id,
                    seq: *seq,
                },
                payload,
            );
            if *reply {
                *left -= 1;
                *seq += 1;
                g.next_ns += 1_000_000_000;
            } else {
                g.next_ns += rtt / 2;
            }
            *reply = !*reply;
            true
        }
    }
}

/// A DNS query or answer for `name` (A record) in wire format.
pub(crate) fn dns(p: &mut Vec<u8>, id: u16, name: &str, answer: bool, addr: [u8; 4]) {
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(if answer { &[0x81, 0x80] } else { &[0x01, 0x00] });
    p.extend_from_slice(&[0, 1, 0, u8::from(answer), 0, 0, 0, 0]);
    for label in name.split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    if answer {
        p.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        p.extend_from_slice(&addr);
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one TCP step's hosts, link and buffers; a struct would only be unpacked again"
)]
fn tcp_step(
    t: &mut Tcp,
    server: u32,
    c: &Host,
    s: &Host,
    v6: bool,
    vlan: Option<u16>,
    rtt: u64,
    rng: &mut SplitMix64,
    frame: &mut Vec<u8>,
    payload: &mut Vec<u8>,
    next: &mut u64,
) -> bool {
    use islet_wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};
    payload.clear();
    let seg = |from_client: bool,
               flags: u8,
               syn_opts: bool,
               payload: &[u8],
               frame: &mut Vec<u8>,
               t: &mut Tcp| {
        let (src, dst, sp, dp) = if from_client {
            (c, s, t.sport, t.dport)
        } else {
            (s, c, t.dport, t.sport)
        };
        let i = usize::from(!from_client);
        let l4 = L4::Tcp {
            sport: sp,
            dport: dp,
            seq: t.seq[i],
            ack: if flags & ACK != 0 { t.seq[1 - i] } else { 0 },
            flags,
            win: 0xFAF0,
            syn_opts,
        };
        build(frame, src, dst, v6, vlan, l4, payload);
        t.seq[i] =
            t.seq[i].wrapping_add(payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0));
    };
    // Handshake and teardown: (from client, flags, SYN options, next phase, delay).
    let control = match t.phase {
        TcpPhase::Syn => Some((true, SYN, true, TcpPhase::SynAck, rtt / 2)),
        TcpPhase::SynAck => Some((false, SYN | ACK, true, TcpPhase::Ack, rtt / 2)),
        TcpPhase::Ack => Some((
            true,
            ACK,
            false,
            TcpPhase::Data,
            20_000 + rng.below(100_000),
        )),
        TcpPhase::FinClient => Some((true, FIN | ACK, false, TcpPhase::FinServer, rtt / 2)),
        TcpPhase::FinServer => Some((false, FIN | ACK, false, TcpPhase::LastAck, rtt / 2)),
        TcpPhase::LastAck => Some((true, ACK, false, TcpPhase::Done, 0)),
        TcpPhase::Rst => Some((true, RST | ACK, false, TcpPhase::Done, 0)),
        TcpPhase::Data | TcpPhase::Done => None,
    };
    if let Some((from_client, flags, syn_opts, phase, delay)) = control {
        seg(from_client, flags, syn_opts, &[], frame, t);
        t.phase = phase;
        *next += delay;
        return true;
    }
    match t.phase {
        TcpPhase::Data => {
            let (from_client, len) = t.msgs[t.msg];
            if t.ack_due {
                seg(!from_client, ACK, false, &[], frame, t);
                t.ack_due = false;
                t.unacked = 0;
                if t.sent >= len {
                    t.msg += 1;
                    t.sent = 0;
                    if t.msg >= t.n_msgs {
                        t.phase = if t.rst_end {
                            TcpPhase::Rst
                        } else {
                            TcpPhase::FinClient
                        };
                    }
                    *next += rtt / 2 + rng.below(200_000);
                } else {
                    *next += gap(rng, 66);
                }
                return true;
            }
            let first = t.sent == 0;
            let n = (len - t.sent).min(MSS);
            content(payload, t.app, from_client, first, t.msg, n, len, server);
            let n = payload.len();
            t.sent += n;
            let last = t.sent >= len;
            seg(
                from_client,
                if last { PSH | ACK } else { ACK },
                false,
                payload,
                frame,
                t,
            );
            t.unacked += 1;
            if t.unacked >= 2 || last {
                t.ack_due = true;
                *next += if last { rtt / 2 } else { gap(rng, n + 66) };
            } else {
                *next += gap(rng, n + 66);
            }
            if last {
                t.msgs[t.msg].1 = t.sent;
            }
        }
        _ => return false,
    }
    true
}

const SSH_CLIENT_BANNER: &[u8] = b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n";
const SSH_SERVER_BANNER: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";

/// The TLS server name of a service host.
fn sni(server: u32) -> String {
    format!("svc-{server}.prod.cluster.local")
}

/// The payload of one segment: protocol text at the start of a message, filler after.
#[allow(
    clippy::too_many_arguments,
    reason = "where in the conversation the segment falls, which decides its text"
)]
fn content(
    p: &mut Vec<u8>,
    app: App,
    from_client: bool,
    first: bool,
    msg: usize,
    n: usize,
    total: usize,
    server: u32,
) {
    use std::io::Write as _;
    if first {
        match (app, from_client) {
            (App::Http, true) => {
                let _ = write!(
                    p,
                    "GET /api/v1/items/{msg}?page=2 HTTP/1.1\r\nHost: svc-{server}.prod.cluster.local\r\nUser-Agent: islet-synth/0.1\r\nAccept: application/json\r\nX-Request-Id: {:08x}\r\n\r\n",
                    total
                );
                return;
            }
            (App::Http, false) => {
                // Content-Length must be the body actually sent: iterate, its digits count too.
                let mut body = total.saturating_sub(100);
                for _ in 0..3 {
                    p.clear();
                    let _ = write!(
                        p,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body}\r\nServer: envoy\r\n\r\n"
                    );
                    body = total.saturating_sub(p.len());
                }
            }
            (App::Ssh, _) if msg <= 1 => {
                p.extend_from_slice(if from_client {
                    SSH_CLIENT_BANNER
                } else {
                    SSH_SERVER_BANNER
                });
                p.extend_from_slice(&crate::proto::ssh_kexinit(from_client));
            }
            (App::Tls { v13 }, true) if msg == 0 => {
                p.extend_from_slice(&crate::proto::tls_client_hello(&sni(server), "h2", !v13, 0));
            }
            (App::Tls { v13 }, false) if msg == 1 => {
                p.extend_from_slice(&crate::proto::tls_server_flight(v13, "h2", 0));
            }
            _ => {}
        }
    }
    if let App::Tls { .. } = app {
        // Everything after the handshake is application data records.
        let want = n.max(p.len());
        crate::proto::tls_app_data(p, want);
        p.truncate(want.min(MSS.max(p.len())));
        return;
    }
    let want = n.max(p.len());
    let mut i = p.len();
    while p.len() < want {
        p.push(b"{\"id\":1,\"v\":\"abcdefghijklmnopqrstuvwxyz\"},"[i % 40]);
        i += 1;
    }
    p.truncate(want.min(MSS));
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn same_seed_same_bytes() {
        let o = SynthOptions {
            flows: 50,
            ..SynthOptions::default()
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        generate(&o, &mut a).unwrap();
        generate(&o, &mut b).unwrap();
        assert_eq!(a, b);
        let o2 = SynthOptions { seed: 2, ..o };
        let mut c = Vec::new();
        generate(&o2, &mut c).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn packet_cap_is_honoured() {
        let o = SynthOptions {
            flows: 500,
            max_packets: 1000,
            ..SynthOptions::default()
        };
        let s = generate(&o, io::sink()).unwrap();
        assert_eq!(s.packets, 1000);
    }

    #[test]
    fn frames_decode_cleanly() {
        let o = SynthOptions {
            flows: 200,
            ..SynthOptions::default()
        };
        let mut buf = Vec::new();
        generate(&o, &mut buf).unwrap();
        let mut at = 24;
        let mut n = 0;
        while at + 16 <= buf.len() {
            let len =
                u32::from_le_bytes([buf[at + 8], buf[at + 9], buf[at + 10], buf[at + 11]]) as usize;
            let f = &buf[at + 16..at + 16 + len];
            let mut d = islet_wire::Decoded::default();
            islet_wire::decode(1, f, &mut d).unwrap();
            assert_eq!(d.kind, islet_wire::decode::Kind::Ip);
            at += 16 + len;
            n += 1;
        }
        assert!(n > 1000);
    }
}
