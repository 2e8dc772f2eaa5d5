//! Snapshot lookups at one million indicators (IPv4 addresses and /24–/28 networks, domains,
//! JA3 fingerprints), per lookup, and the cost of opening a saved snapshot. Run with
//! `cargo bench -p islet-intel`.

use divan::{Bencher, black_box, counter::ItemsCount};
use islet_intel::{Importer, Kind, Snapshot};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

fn main() {
    divan::main();
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn label(&mut self) -> String {
        let n = 5 + self.next() % 8;
        (0..n)
            .map(|_| char::from(b'a' + (self.next() % 26) as u8))
            .collect()
    }
}

/// 1,000,000 indicators as a MISP CSV export, compiled, and saved to a temporary file.
fn snapshot() -> &'static (Snapshot, std::path::PathBuf) {
    static S: OnceLock<(Snapshot, std::path::PathBuf)> = OnceLock::new();
    S.get_or_init(|| {
        let mut r = Rng(0x1234_5678_9abc_def1);
        let mut csv = String::from("uuid,event_id,category,type,value,comment,to_ids,date\n");
        for i in 0..1_000_000u32 {
            let (t, v) = match i % 10 {
                0..4 => (
                    "ip-dst",
                    Ipv4Addr::from(r.next() as u32 | 0x0100_0000).to_string(),
                ),
                4 => {
                    let len = 24 + (r.next() % 5) as u32;
                    let a = (r.next() as u32 | 0x0100_0000) & (u32::MAX << (32 - len));
                    ("ip-dst", format!("{}/{len}", Ipv4Addr::from(a)))
                }
                5..9 => ("domain", format!("{}.com", r.label())),
                _ => (
                    "ja3-fingerprint-md5",
                    format!("{:016x}{:016x}", r.next(), r.next()),
                ),
            };
            csv.push_str(&format!(",1,Network activity,{t},{v},,1,20240101\n"));
        }
        let mut imp = Importer::new(Vec::new());
        imp.add_bytes("bench", csv.as_bytes());
        let (snap, _) = imp.finish();
        let path = std::env::temp_dir().join(format!("islet-bench-{}.islet", std::process::id()));
        snap.save(&path).expect("save");
        (snap, path)
    })
}

const BATCH: usize = 1024;
/// Each lookup batch takes the next `BATCH` values of a pool this large, so lookups meet the
/// tables mostly out of cache, as distinct flows do.
const POOL: usize = 1 << 18;

/// Run `f` over the next batch of `pool` per iteration.
fn rotating<T>(b: Bencher<'_, '_>, pool: Vec<T>, mut f: impl FnMut(&T, &mut Vec<u32>)) {
    let mut at = 0;
    let mut out = Vec::new();
    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
        for v in &pool[at..at + BATCH] {
            out.clear();
            f(v, &mut out);
        }
        at = (at + BATCH) % pool.len();
        out.len()
    });
}

#[divan::bench]
fn address_lookup(b: Bencher<'_, '_>) {
    let (s, _) = snapshot();
    let mut r = Rng(7);
    let addrs: Vec<IpAddr> = (0..POOL)
        .map(|_| IpAddr::V4(Ipv4Addr::from(r.next() as u32)))
        .collect();
    rotating(b, addrs, |&a, out| {
        s.match_addr_port(black_box(a), Some(443), false, out)
    });
}

#[divan::bench]
fn name_lookup(b: Bencher<'_, '_>) {
    let (s, _) = snapshot();
    let mut r = Rng(11);
    let names: Vec<String> = (0..POOL)
        .map(|_| format!("www.{}.com", r.label()))
        .collect();
    rotating(b, names, |n, out| s.match_name(black_box(n), out));
}

#[divan::bench]
fn ja3_lookup(b: Bencher<'_, '_>) {
    let (s, _) = snapshot();
    let mut r = Rng(13);
    let values: Vec<String> = (0..POOL)
        .map(|_| format!("{:016x}{:016x}", r.next(), r.next()))
        .collect();
    rotating(b, values, |v, out| {
        s.match_value(Kind::Ja3, black_box(v), out)
    });
}

/// Open the saved 1M snapshot: CRC read, map, structural checks.
#[divan::bench(sample_count = 20)]
fn open_saved(b: Bencher<'_, '_>) {
    let (_, path) = snapshot();
    b.bench_local(|| Snapshot::open(path).expect("open").len());
}
