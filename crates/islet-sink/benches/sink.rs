//! Output-stage costs: sealing a record into the event chain, JSON → MessagePack for the Forward
//! client, OCSF conversion, and Forward delivery to a local receiver (batched, with acks).
//!
//! `cargo bench -p islet-sink`; figures in docs/PERFORMANCE.md.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::Duration;

use divan::{Bencher, black_box};
use islet_sink::chain::{ChainConfig, Sealer};
use islet_sink::forward::{ForwardConfig, Forwarder, Mode, Receiver, ServerConfig};

fn main() {
    divan::main();
}

/// A flow record as `islet read` writes it (about 560 bytes).
const FLOW: &str = r#"{"timestamp":"2026-01-05T09:00:01.059836+0000","flow_id":182054415075055,"event_type":"flow","src_ip":"10.0.6.66","src_port":40427,"dest_ip":"10.0.0.10","dest_port":443,"proto":"TCP","app_proto":"tls","flow":{"pkts_toserver":12,"pkts_toclient":10,"bytes_toserver":1828,"bytes_toclient":9259,"start":"2026-01-05T09:00:01.059836+0000","end":"2026-01-05T09:00:02.328230+0000","age":1,"state":"closed","reason":"timeout","alerted":false},"community_id":"1:F8G7aaVlB5/MgsrnWyLJJliCXwI=","tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}"#;

/// A DNS query record (about 330 bytes).
const DNS: &str = r#"{"timestamp":"2016-05-24T23:27:01.960780+0000","flow_id":465769910969953,"event_type":"dns","src_ip":"10.16.1.11","src_port":53679,"dest_ip":"10.16.1.1","dest_port":53,"proto":"UDP","community_id":"1:PAF1ukkUjSBp/m9x7CVMSs71cOU=","dns":{"version":3,"type":"request","tx_id":0,"id":39339,"flags":"100","rd":true,"opcode":0,"queries":[{"rrname":"client-cf.dropbox.com","rrtype":"A"}]}}"#;

const BATCH: usize = 1000;

fn lines(n: usize) -> Vec<u8> {
    lines_of(FLOW, n)
}

fn lines_of(rec: &str, n: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(n * (rec.len() + 1));
    for _ in 0..n {
        b.extend_from_slice(rec.as_bytes());
        b.push(b'\n');
    }
    b
}

/// Per record: splice `seq`/`prev` in and hash it (no checkpoints: those are per 10,000).
#[divan::bench(args = ["flow_560B", "dns_330B"])]
fn chain_seal_record(b: Bencher<'_, '_>, rec: &str) {
    let input = lines_of(if rec.starts_with("flow") { FLOW } else { DNS }, BATCH);
    let mut s = Sealer::new(
        ChainConfig {
            checkpoint_every: 0,
            checkpoint_interval_ns: 0,
            ..ChainConfig::default()
        },
        None,
    );
    let mut out = Vec::with_capacity(input.len() * 2);
    b.counter(divan::counter::ItemsCount::new(BATCH))
        .bench_local(|| {
            out.clear();
            s.seal_lines(black_box(&input), &mut out);
        });
}

/// Per record: JSON line → MessagePack map (the Forward client's record encoding).
#[divan::bench]
fn json_to_msgpack_flow_record(b: Bencher<'_, '_>) {
    let mut out = Vec::with_capacity(1024);
    b.counter(divan::counter::ItemsCount::new(1usize))
        .bench_local(|| {
            out.clear();
            islet_sink::msgpack::from_json(black_box(FLOW.as_bytes()), &mut out)
        });
}

/// Per record: EVE → OCSF (`--format ocsf`).
#[divan::bench]
fn ocsf_convert_flow_record(b: Bencher<'_, '_>) {
    let mut out = Vec::with_capacity(2048);
    b.counter(divan::counter::ItemsCount::new(1usize))
        .bench_local(|| {
            out.clear();
            islet_sink::ocsf::convert_line(black_box(FLOW.as_bytes()), &mut out);
        });
}

/// A receiver that only sizes frames and acknowledges their chunks (as a collector's null
/// output would): the client is what is measured.
fn ack_only_receiver() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut tmp = vec![0u8; 1 << 20];
                loop {
                    let n = match s.read(&mut tmp) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&tmp[..n]);
                    while let Ok(Some(len)) = islet_sink::forward::proto::value_len(&buf, 16) {
                        // [tag, entries, option]: skip tag and entries, decode the option.
                        let mut at = 1;
                        for _ in 0..2 {
                            let l = islet_sink::forward::proto::value_len(&buf[at..len], 16)
                                .ok()
                                .flatten()
                                .unwrap_or(0);
                            at += l;
                        }
                        let opt = rmpv::decode::read_value(&mut &buf[at..len]).ok();
                        let chunk = opt.as_ref().and_then(|o| {
                            o.as_map()?
                                .iter()
                                .find(|(k, _)| k.as_str() == Some("chunk"))
                                .map(|(_, v)| v.clone())
                        });
                        buf.drain(..len);
                        if let Some(c) = chunk {
                            let mut ack = vec![0x81];
                            rmp::encode::write_str(&mut ack, "ack").expect("ack");
                            rmpv::encode::write_value(&mut ack, &c).expect("ack");
                            if s.write_all(&ack).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    port
}

fn forward(b: Bencher<'_, '_>, port: u16, mode: Mode) {
    const N: usize = 200_000;
    let input = lines(BATCH);
    b.counter(divan::counter::ItemsCount::new(N))
        .bench_local(|| {
            let f = Forwarder::start(
                ForwardConfig {
                    servers: vec![format!("127.0.0.1:{port}")],
                    mode,
                    memory_bytes: 256 << 20,
                    shutdown_timeout: Duration::from_secs(60),
                    ..ForwardConfig::default()
                },
                None,
                "bench",
            )
            .expect("forwarder");
            for _ in 0..N / BATCH {
                f.offer(&input);
            }
            let r = f.close();
            assert_eq!(r.delivered, N as u64);
        });
}

/// Records through the Forward client (PackedForward, chunks of 2,000, each acknowledged).
#[divan::bench(sample_count = 5)]
fn forward_packed_to_ack_only_receiver(b: Bencher<'_, '_>) {
    forward(b, ack_only_receiver(), Mode::PackedForward);
}

/// The same with gzip (CompressedPackedForward).
#[divan::bench(sample_count = 5)]
fn forward_compressed_to_ack_only_receiver(b: Bencher<'_, '_>) {
    forward(b, ack_only_receiver(), Mode::CompressedPackedForward);
}

/// The same into islet's own receiver (which decodes every record).
#[divan::bench(sample_count = 5)]
fn forward_packed_to_islet_receiver(b: Bencher<'_, '_>) {
    let r = Receiver::start(
        "127.0.0.1:0",
        ServerConfig::default(),
        None,
        std::sync::Arc::new(|b| black_box(b.events.len()) > 0),
    )
    .expect("receiver");
    forward(b, r.local_addr().port(), Mode::PackedForward);
}
