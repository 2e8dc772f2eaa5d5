//! Issue 18, finding 2: IP fragment floods. Once the reassembly table was full, every fragment
//! of a new datagram scanned the whole table (~160 µs each; 200,000 fragments took 22 s). These
//! run the real binary on generated floods and check the `stats` record: every packet counted,
//! every eviction counted under its reason, and a genuine datagram still reassembled.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn islet(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_islet"))
        .args(args)
        .output()
        .expect("run islet");
    assert!(
        out.status.success(),
        "islet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `stats` record at the end of an EVE file.
fn stats(eve: &Path) -> Value {
    let text = std::fs::read_to_string(eve).expect("read EVE");
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("\"event_type\":\"stats\""))
        .expect("a stats record");
    let v: Value = serde_json::from_str(last).expect("JSON");
    v["stats"].clone()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn finding_2_fragment_flood_from_many_sources_is_counted_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("flood.pcap");
    let eve = dir.path().join("eve.json");
    let packets: u64 = 200_000;
    islet(&[
        "synth",
        "--profile",
        "frag-flood",
        "--packets",
        &packets.to_string(),
        "--seed",
        "18",
        "-o",
        pcap.to_str().expect("utf-8"),
    ]);
    let out = islet(&[
        "read",
        "-w",
        "1",
        "-q",
        "-o",
        eve.to_str().expect("utf-8"),
        pcap.to_str().expect("utf-8"),
    ]);
    let s = stats(&eve);
    let d = &s["defrag"];
    assert_eq!(n(&s["decoder"]["pkts"]), packets, "every packet read");
    assert_eq!(
        n(&d["fragments"]),
        packets,
        "every fragment reached the reassembler"
    );
    // The flood opens 105,000 datagrams (each first fragment, and the fillers before the
    // first last fragment) and completes none; the table holds the newest 65,535 (the
    // default), so the rest were evicted, each counted as table_full, none scanned for.
    let opened = packets / 2 + islet_synth::FRAG_FLOOD_LAG;
    let held = 65_535;
    assert_eq!(n(&d["drop"]["table_full"]), opened - held);
    assert_eq!(n(&d["dropped"]), opened - held);
    for k in [
        "source_limit",
        "too_many_fragments",
        "oversized",
        "truncated",
        "overlap",
    ] {
        assert_eq!(n(&d["drop"][k]), 0, "{k}");
    }
    assert_eq!((n(&d["reassembled"]), n(&d["timeouts"])), (0, 0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{packets} packets")), "{err}");
}

/// A classic pcap of raw IPv4 frames (linktype 228), nanosecond timestamps.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65_535u32.to_le_bytes());
    b.extend_from_slice(&228u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        let ts = 1_767_603_600_000_000_000u64 + i as u64 * 1_000;
        b.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).expect("write pcap");
}

/// An IPv4 fragment of a UDP datagram (checksummed header).
fn frag(src: [u8; 4], ident: u16, off: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    let fo = (off / 8) | if more { 0x2000 } else { 0 };
    p[6..8].copy_from_slice(&fo.to_be_bytes());
    p.extend_from_slice(&src);
    p.extend_from_slice(&[10, 0, 0, 2]);
    let mut sum = 0u32;
    for w in p.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(data);
    p
}

#[test]
fn finding_2_one_source_flooding_is_held_to_its_own_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("sources.pcap");
    let eve = dir.path().join("eve.json");
    let cfg = dir.path().join("islet.toml");
    std::fs::write(&cfg, "[defrag]\nmax_trackers_per_source = 100\n").expect("config");
    // Ten sources, 1,000 incomplete datagrams each, interleaved; then a genuine two-fragment
    // UDP datagram from an eleventh source.
    let mut frames = Vec::new();
    for id in 0..1_000u16 {
        for s in 0..10u8 {
            frames.push(frag([10, 1, 0, s], id, 0, true, &[0; 8]));
        }
    }
    let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0, 48, 0, 0];
    udp.extend((0..40u8).collect::<Vec<_>>());
    frames.push(frag([10, 2, 0, 1], 7, 24, false, &udp[24..]));
    frames.push(frag([10, 2, 0, 1], 7, 0, true, &udp[..24]));
    write_pcap(&pcap, &frames);
    islet(&[
        "read",
        "-w",
        "1",
        "-q",
        "-c",
        cfg.to_str().expect("utf-8"),
        "-o",
        eve.to_str().expect("utf-8"),
        pcap.to_str().expect("utf-8"),
    ]);
    let s = stats(&eve);
    let d = &s["defrag"];
    assert_eq!(n(&s["decoder"]["pkts"]), frames.len() as u64);
    assert_eq!(n(&d["fragments"]), frames.len() as u64);
    // Each source keeps its newest 100 datagrams: 900 evicted per source.
    assert_eq!(n(&d["drop"]["source_limit"]), 10 * 900);
    assert_eq!(n(&d["drop"]["table_full"]), 0);
    assert_eq!(n(&d["reassembled"]), 1, "the genuine datagram");
    assert_eq!(n(&s["flow"]["udp"]), 1);
}
