//! Hot-path benchmarks: decode, flow update, and the whole single-worker pipeline, per packet,
//! on `islet synth --profile mixed` traffic. Run with `cargo bench -p islet-sensor`.

use divan::{Bencher, black_box, counter::ItemsCount};
use islet_capture::{PacketSource, PcapFile};
use islet_flow::{FlowConfig, FlowTable};
use islet_synth::{SynthOptions, generate};
use islet_wire::{Decoded, decode};
use std::sync::OnceLock;

fn main() {
    divan::main();
}

/// 200,000 packets of the mixed profile, written once to a temporary file.
fn capture() -> &'static std::path::PathBuf {
    static C: OnceLock<std::path::PathBuf> = OnceLock::new();
    C.get_or_init(|| {
        let o = SynthOptions {
            flows: 20_000,
            max_packets: 200_000,
            duration_s: 30,
            ..SynthOptions::default()
        };
        let p = std::env::temp_dir().join(format!("islet-bench-{}.pcap", std::process::id()));
        let f = std::fs::File::create(&p).expect("create");
        generate(&o, std::io::BufWriter::new(f)).expect("synth");
        p
    })
}

fn frames() -> &'static Vec<Vec<u8>> {
    static F: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    F.get_or_init(|| {
        let mut src = PcapFile::open(capture()).expect("pcap");
        let mut out = Vec::new();
        while src
            .read_batch(1024, &mut |p| out.push(p.data.to_vec()))
            .expect("read")
            > 0
        {}
        out
    })
}

#[divan::bench]
fn decode_per_packet(b: Bencher<'_, '_>) {
    let f = frames();
    b.counter(ItemsCount::new(f.len())).bench(|| {
        let mut d = Decoded::default();
        for frame in f {
            let _ = decode(1, black_box(frame), &mut d);
        }
        black_box(d.tuple.sport)
    });
}

#[divan::bench]
fn decode_and_flow_update_per_packet(b: Bencher<'_, '_>) {
    let f = frames();
    b.counter(ItemsCount::new(f.len())).bench(|| {
        let mut table: FlowTable = FlowTable::new(FlowConfig::default());
        let mut out = Vec::with_capacity(1024);
        let mut d = Decoded::default();
        for (i, frame) in f.iter().enumerate() {
            if decode(1, frame, &mut d).is_ok() {
                table.update(
                    1_000_000_000 + i as u64 * 1_000,
                    &d.tuple,
                    d.pkt_len,
                    d.tcp_flags,
                    &mut out,
                );
            }
            out.clear();
        }
        black_box(table.len())
    });
}

#[divan::bench]
fn raw_read_floor_per_packet(b: Bencher<'_, '_>) {
    let n = frames().len();
    b.counter(ItemsCount::new(n)).bench(|| {
        let mut src = PcapFile::open(capture()).expect("pcap");
        let mut bytes = 0usize;
        while src
            .read_batch(256, &mut |p| bytes += p.data.len())
            .expect("read")
            > 0
        {}
        black_box(bytes)
    });
}

#[divan::bench]
fn pipeline_one_worker_per_packet(b: Bencher<'_, '_>) {
    let n = frames().len();
    let mut cfg = islet_sensor::SensorConfig::default();
    cfg.sensor.workers = 1;
    b.counter(ItemsCount::new(n)).bench(|| {
        let mut src = PcapFile::open(capture()).expect("pcap");
        islet_sensor::run(&cfg, &mut src, &mut std::io::sink())
            .expect("run")
            .packets
    });
}
