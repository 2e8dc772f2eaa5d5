//! Hostile-input benchmarks (issue 18): the whole single-worker pipeline (decode, defrag,
//! flows, streams, every parser, detectors, EVE to a sink), per packet, on captures an attacker
//! would send, beside the benign `mixed` profile. The target is each within 10× the benign
//! per-packet cost. Run with `cargo bench -p islet-sensor --bench hostile`; results and their
//! reading are in docs/PERFORMANCE.md.
//!
//! - `benign_mixed`: `islet synth --profile mixed`, 200,000 packets (as `hot_path`).
//! - `fragment_flood`: `islet synth --profile frag-flood`, 400,000 tiny fragments from random
//!   sources, none completing; the reassembly table is full after ~130,000 and every later
//!   first fragment evicts the oldest datagram.
//! - `syn_flood_new_flows`: `islet synth --profile syn-flood-spoofed`, 200,000 SYNs, each a
//!   new flow.
//! - `tcp_out_of_order_flood`: 100 sessions; after the handshake each sends 1,000 8-byte
//!   segments at every other 8-byte slot behind a hole that never fills, then 1,000
//!   full-size segments at random offsets over them (each overlapping ~90 pieces).
//! - `dns_pointer_chains`: 10,000 responses of 256 answers (the parser's record bound), each
//!   answer's name a one-byte label and a pointer to the previous answer's name, 31 deep, over
//!   a 90-label question name.
//! - `tls_many_extensions`: 10,000 sessions whose ClientHello carries 2,000 extensions (8 KB
//!   over six segments).

use divan::{Bencher, counter::ItemsCount};
use islet_capture::PcapFile;
use islet_synth::{PcapWriter, Profile, SplitMix64, SynthOptions, generate};
use std::path::PathBuf;
use std::sync::OnceLock;

fn main() {
    divan::main();
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("islet-hostile-{}-{name}.pcap", std::process::id()))
}

fn synth(name: &str, profile: &str, packets: u64, flows: u64) -> (PathBuf, usize) {
    let o = SynthOptions {
        profile: profile.parse::<Profile>().expect("profile"),
        flows,
        max_packets: packets,
        duration_s: 30,
        ..SynthOptions::default()
    };
    let p = temp(name);
    let f = std::fs::File::create(&p).expect("create");
    let s = generate(&o, std::io::BufWriter::new(f)).expect("synth");
    (p, s.packets as usize)
}

/// Frames written in order, a microsecond apart.
struct Cap {
    w: PcapWriter<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
    t: u64,
    frame: Vec<u8>,
}

impl Cap {
    fn new(name: &str) -> Self {
        let path = temp(name);
        let f = std::fs::File::create(&path).expect("create");
        Cap {
            w: PcapWriter::new(std::io::BufWriter::new(f), 1, 65_535).expect("pcap"),
            path,
            t: 1_767_603_600_000_000_000,
            frame: Vec::with_capacity(16_384),
        }
    }

    /// Ethernet + IPv4 (+ the transport header and payload in `l4`).
    fn ip(&mut self, src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) {
        let f = &mut self.frame;
        f.clear();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        let c = islet_wire::ipv4::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(l4);
        self.w.write(self.t, &self.frame).expect("write");
        self.t += 1_000;
    }

    fn tcp(
        &mut self,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: u32,
        flags: u8,
        p: &[u8],
    ) {
        let mut l4 = Vec::with_capacity(20 + p.len());
        l4.extend_from_slice(&src.1.to_be_bytes());
        l4.extend_from_slice(&dst.1.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&ack.to_be_bytes());
        l4.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        l4.extend_from_slice(p);
        self.ip(src.0, dst.0, 6, &l4);
    }

    fn udp(&mut self, src: ([u8; 4], u16), dst: ([u8; 4], u16), p: &[u8]) {
        let mut l4 = Vec::with_capacity(8 + p.len());
        l4.extend_from_slice(&src.1.to_be_bytes());
        l4.extend_from_slice(&dst.1.to_be_bytes());
        l4.extend_from_slice(&((8 + p.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(p);
        self.ip(src.0, dst.0, 17, &l4);
    }

    fn handshake(&mut self, c: ([u8; 4], u16), s: ([u8; 4], u16), isn: u32) {
        self.tcp(c, s, isn, 0, SYN, &[]);
        self.tcp(s, c, 7_000, isn + 1, SYN | ACK, &[]);
        self.tcp(c, s, isn + 1, 7_001, ACK, &[]);
    }

    fn finish(self) -> (PathBuf, usize) {
        let n = self.w.packets as usize;
        self.w.finish().expect("flush");
        (self.path, n)
    }
}

const CLIENT: [u8; 4] = [10, 0, 2, 21];
const SERVER: [u8; 4] = [10, 0, 3, 30];

fn tcp_out_of_order() -> (PathBuf, usize) {
    let mut c = Cap::new("ooo");
    let mut rng = SplitMix64::new(5);
    let piece = [0x41u8; 8];
    let full = [0x42u8; 1_448];
    for flow in 0..100u16 {
        let cl = (CLIENT, 40_000 + flow);
        let sv = (SERVER, 8_080);
        let isn = 1_000_000;
        c.handshake(cl, sv, isn);
        // A 100-byte hole at the start that never fills.
        let base = isn + 1 + 100;
        for i in 0..1_000u32 {
            c.tcp(cl, sv, base + 16 * i, 7_001, PSH | ACK, &piece);
        }
        for _ in 0..1_000 {
            let at = rng.below(16_000 - 1_448) as u32;
            c.tcp(cl, sv, base + at, 7_001, PSH | ACK, &full);
        }
    }
    c.finish()
}

/// A DNS response whose answer names are pointer chains.
fn dns_chain_response(id: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(6_000);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80, 0, 1, 1, 0, 0, 0, 0, 0]); // QD 1, AN 256
    let qname_at = m.len();
    for _ in 0..90 {
        m.extend_from_slice(&[1, b'x']);
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    let mut prev = qname_at;
    for i in 0..256usize {
        let here = m.len();
        // Every 32nd answer restarts the chain at the question (the pointer bound is 32).
        let target = if i % 31 == 0 { qname_at } else { prev };
        m.extend_from_slice(&[1, b'a' + (i % 26) as u8]);
        m.extend_from_slice(&(0xC000u16 | target as u16).to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, i as u8]);
        prev = here;
    }
    m
}

fn dns_pointer_chains() -> (PathBuf, usize) {
    let mut c = Cap::new("dns");
    for i in 0..10_000u32 {
        let m = dns_chain_response(i as u16);
        c.udp((SERVER, 53), (CLIENT, 20_000 + (i % 40_000) as u16), &m);
    }
    c.finish()
}

fn client_hello(extensions: u16) -> Vec<u8> {
    let mut exts = Vec::new();
    let sni = b"many-extensions.example";
    exts.extend_from_slice(&[0, 0]);
    exts.extend_from_slice(&((sni.len() + 5) as u16).to_be_bytes());
    exts.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
    exts.push(0);
    exts.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    exts.extend_from_slice(sni);
    for i in 0..extensions {
        exts.extend_from_slice(&(0x1000 + i).to_be_bytes());
        exts.extend_from_slice(&[0, 0]);
    }
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x11; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn tls_many_extensions() -> (PathBuf, usize) {
    let mut c = Cap::new("tls");
    let hello = client_hello(2_000);
    for flow in 0..10_000u32 {
        let cl = (CLIENT, 10_000 + (flow % 50_000) as u16);
        let sv = ([10, 0, 3, (flow / 50_000) as u8 + 40], 443);
        let isn = 5_000;
        c.handshake(cl, sv, isn);
        let mut seq = isn + 1;
        for chunk in hello.chunks(1_448) {
            c.tcp(cl, sv, seq, 7_001, PSH | ACK, chunk);
            seq += chunk.len() as u32;
        }
    }
    c.finish()
}

fn run(path: &std::path::Path) -> u64 {
    let mut cfg = islet_sensor::SensorConfig::default();
    cfg.sensor.workers = 1;
    let mut src = PcapFile::open(path).expect("pcap");
    islet_sensor::run(&cfg, &mut src, &mut std::io::sink())
        .expect("run")
        .packets
}

fn bench(b: Bencher<'_, '_>, cap: &(PathBuf, usize)) {
    b.counter(ItemsCount::new(cap.1)).bench(|| run(&cap.0));
}

macro_rules! capture {
    ($name:ident, $make:expr) => {
        fn $name() -> &'static (PathBuf, usize) {
            static C: OnceLock<(PathBuf, usize)> = OnceLock::new();
            C.get_or_init(|| $make)
        }
    };
}

capture!(benign, synth("mixed", "mixed", 200_000, 20_000));
capture!(frags, synth("frag", "frag-flood", 400_000, 0));
capture!(syns, synth("syn", "syn-flood-spoofed", 200_000, 0));
capture!(ooo, tcp_out_of_order());
capture!(dns, dns_pointer_chains());
capture!(tls, tls_many_extensions());

#[divan::bench(sample_count = 10)]
fn benign_mixed(b: Bencher<'_, '_>) {
    bench(b, benign());
}

#[divan::bench(sample_count = 10)]
fn fragment_flood(b: Bencher<'_, '_>) {
    bench(b, frags());
}

#[divan::bench(sample_count = 10)]
fn syn_flood_new_flows(b: Bencher<'_, '_>) {
    bench(b, syns());
}

#[divan::bench(sample_count = 10)]
fn tcp_out_of_order_flood(b: Bencher<'_, '_>) {
    bench(b, ooo());
}

#[divan::bench(sample_count = 10)]
fn dns_pointer_chains_worst_case(b: Bencher<'_, '_>) {
    bench(b, dns());
}

#[divan::bench(sample_count = 10)]
fn tls_many_extensions_worst_case(b: Bencher<'_, '_>) {
    bench(b, tls());
}
