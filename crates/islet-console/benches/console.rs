//! The console's store under load: ingest rate through the whole console path (EVE JSON lines
//! → parse → chain check → identities → one SQLite transaction per batch, WAL, synchronous
//! FULL), then query latency with the store full: the case list, "who talked to X in the last
//! hour", and the map of a one-hour window (p50/p95 of 100 runs each), and the store's size
//! per million flows.
//!
//! `cargo bench -p islet-console --bench console -- [--flows N] [--dir DIR]` (default 200,000
//! flows in a temporary folder; the figures in docs/PERFORMANCE.md use --flows 10000000).

use islet_console::identify::Identify;
use islet_console::ingest::{Incoming, Ingest, IngestConfig};
use islet_store::{
    AlertQuery, CaseQuery, CaseStore as _, EvidenceStore as _, FlowQuery, PageReq, SqliteStore,
};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// As in the `islet` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const T0: i64 = 1_767_600_000_000; // 2026-01-05T08:00:00Z
const HOSTS: u64 = 5000;

fn iso(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 {
        yoe + era * 400 + 1
    } else {
        yoe + era * 400
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+0000",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        (rem % 1000) * 1000
    )
}

fn ip(h: u64) -> String {
    format!("10.{}.{}.{}", h >> 16 & 255, h >> 8 & 255, h & 255)
}

/// A sensor's record stream: flows (and an alert every 5,000) chained like a real sensor's.
struct Gen {
    seq: u64,
    prev: [u8; 32],
    rng: u64,
    span_ms: i64,
    total: u64,
}

impl Gen {
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn line(&mut self, i: u64) -> Vec<u8> {
        let t = T0 + (i as i64 * self.span_ms) / self.total as i64;
        let src = self.next_u64() % HOSTS;
        // Each client uses four of 300 services (a workload graph is sparse); a service has
        // one port.
        let k = self.next_u64() % 4;
        let svc = (src.wrapping_mul(2_654_435_761).wrapping_add(k * 97)) % 300;
        let dst = svc * 16 % HOSTS;
        let port = [443u16, 80, 53, 22, 5432, 6379, 8080, 445][(svc % 8) as usize];
        let ts = iso(t);
        let seq = self.seq;
        let prev = hex::encode(self.prev);
        let fid = self.next_u64() >> 12;
        let body = if i % 5000 == 4999 {
            format!(
                r#"{{"timestamp":"{ts}","flow_id":{fid},"event_type":"alert","src_ip":"{}","src_port":40000,"dest_ip":"{}","dest_port":{port},"proto":"TCP","alert":{{"action":"allowed","gid":1,"signature_id":9300004,"rev":1,"signature":"islet detect: new admin edge","category":"Potentially Bad Traffic","severity":3,"metadata":{{"detection":["new_admin_edge"],"mitre_technique_id":["T1021"]}}}},"islet":{{"seq":{seq},"prev":"{prev}"}}}}"#,
                ip(src),
                ip(dst)
            )
        } else {
            format!(
                r#"{{"timestamp":"{ts}","flow_id":{fid},"event_type":"flow","src_ip":"{}","src_port":{},"dest_ip":"{}","dest_port":{port},"proto":"TCP","app_proto":"tls","flow":{{"pkts_toserver":12,"pkts_toclient":10,"bytes_toserver":1830,"bytes_toclient":9211,"start":"{ts}","end":"{ts}","age":0,"state":"closed","reason":"timeout","alerted":false}},"community_id":"1:pMiY309ca8xWY83qDo061tmZ0es=","tcp":{{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}},"islet":{{"seq":{seq},"prev":"{prev}"}}}}"#,
                ip(src),
                1024 + self.next_u64() % 60000,
                ip(dst)
            )
        };
        self.prev = Sha256::digest(body.as_bytes()).into();
        self.seq += 1;
        body.into_bytes()
    }
}

/// CPU seconds (user + system) used so far by this process's live threads, summed by thread
/// name, and by the whole process ("all threads") (Linux `/proc`; empty elsewhere).
fn thread_cpu_s() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let tick = 100.0; // USER_HZ
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    let stats = tasks
        .flatten()
        .map(|t| t.path().join("stat"))
        .chain([std::path::PathBuf::from("/proc/self/stat")]);
    for p in stats {
        let Ok(stat) = std::fs::read_to_string(&p) else {
            continue;
        };
        // pid (comm) state ... utime stime are fields 14 and 15; comm may hold spaces.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = if p.as_os_str() == "/proc/self/stat" {
            // The process as a whole, threads that have ended included.
            "all threads".to_string()
        } else {
            stat[open + 1..close].to_string()
        };
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks: f64 = f.get(11).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        *out.entry(name).or_insert(0.0) += ticks / tick;
    }
    out
}

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut flows: u64 = 200_000;
    let mut dir: Option<std::path::PathBuf> = None;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--flows" => {
                flows = args
                    .get(i + 1)
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(flows);
                i += 1;
            }
            "--dir" => {
                dir = args.get(i + 1).map(Into::into);
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("islet.sqlite");
    let _ = std::fs::remove_file(&db);
    let sync = if std::env::var("ISLET_BENCH_SYNC").is_ok_and(|v| v == "normal") {
        islet_store::Sync::Normal
    } else {
        islet_store::Sync::Full
    };
    println!("synchronous: {sync:?}");
    let store = SqliteStore::open(&db, sync).expect("open");
    let ingest = Ingest::start(
        store,
        IngestConfig {
            case_window_ms: 3_600_000,
            identify: Identify::default(),
            keys: HashMap::new(),
            clock: islet_console::ingest::now_ms,
        },
    )
    .expect("ingest");
    // A day of traffic for 10 M flows; proportionally less for fewer.
    let span_ms = ((flows as i64) * 86_400_000 / 10_000_000).max(3_600_000);
    // Four submitters, as four sensor connections would be (each its own chain). Each
    // thread writes its sensor's lines and submits them (decode happens in the submitting
    // thread, as on a Forward connection); the time includes writing the lines.
    let senders = 4u64;
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let wall = std::thread::scope(|scope| {
        // As `islet serve` does: checkpoints off the writer, every second.
        let (db, done) = (&db, &done);
        scope.spawn(move || {
            let c = SqliteStore::open(db, islet_store::Sync::Normal).expect("checkpointer");
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for _ in 0..10 {
                    if done.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = c.checkpoint();
            }
        });
        let mut senders_done = Vec::new();
        for t in 0..senders {
            let sub = ingest.submitter();
            senders_done.push(scope.spawn(move || {
                let mine = flows / senders + u64::from(t < flows % senders);
                let mut g = Gen {
                    seq: 1,
                    prev: [0; 32],
                    rng: 7 + t,
                    span_ms,
                    total: mine,
                };
                let mut n = 0u64;
                while n < mine {
                    let k = 5000.min(mine - n);
                    let lines: Vec<Incoming> = (0..k)
                        .map(|j| Incoming {
                            sensor: format!("bench-{t}"),
                            line: g.line(n + j),
                        })
                        .collect();
                    sub.submit(lines).expect("commit");
                    n += k;
                }
            }));
        }
        for h in senders_done {
            let _ = h.join();
        }
        let wall = started.elapsed();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        wall
    });
    let cpu = thread_cpu_s();
    drop(ingest);
    let rate = flows as f64 / wall.as_secs_f64();
    println!(
        "ingest: {flows} records from {senders} sensors in {:.2} s = {rate:.0} records/s (writing the lines included)",
        wall.as_secs_f64()
    );

    // CPU time per record by thread (steadier than the wall-clock rate on a shared VM).
    for (name, secs) in cpu {
        println!(
            "cpu {name}: {:.2} s = {:.2} us per record",
            secs,
            secs * 1e6 / flows as f64
        );
    }

    let r = SqliteStore::open_reader(&db).expect("reader");
    let usage = r.usage().expect("usage");
    println!(
        "store: {} bytes for {} flows = {:.1} MiB per million flows ({:?})",
        usage.bytes,
        usage.rows["flows"],
        usage.bytes as f64 / (1 << 20) as f64 / (usage.rows["flows"] as f64 / 1e6),
        usage.rows
    );
    if std::env::var("ISLET_BENCH_QUERIES").is_ok_and(|v| v == "0") {
        return;
    }
    let end = T0 + span_ms;
    let mut rng = Gen {
        seq: 0,
        prev: [0; 32],
        rng: 99,
        span_ms,
        total: 1,
    };
    let mut case_list = Vec::new();
    let mut who = Vec::new();
    let mut map = Vec::new();
    let mut alerts = Vec::new();
    let mut seen_flows = 0u64;
    for _ in 0..100 {
        let t = Instant::now();
        let c = r.cases(&CaseQuery::default()).expect("cases");
        case_list.push(t.elapsed());
        assert!(c.total > 0);
        // Who talked to X in the last hour (X: a server, the busiest kind of address).
        let x = ip((rng.next_u64() % 300) * 16 % HOSTS);
        let t = Instant::now();
        let f = r
            .flows(&FlowQuery {
                ip: Some(x),
                from: Some(end - 3_600_000),
                to: Some(end),
                page: PageReq {
                    offset: 0,
                    limit: 100,
                },
                ..FlowQuery::default()
            })
            .expect("flows");
        who.push(t.elapsed());
        seen_flows += f.total;
        let h = (rng.next_u64() % (span_ms as u64 / 3_600_000).max(1)) as i64;
        let t = Instant::now();
        let m = r
            .map(T0 + h * 3_600_000, T0 + (h + 1) * 3_600_000, 2000)
            .expect("map");
        map.push(t.elapsed());
        assert!(!m.edges.is_empty());
        let t = Instant::now();
        let _ = r.alerts(&AlertQuery::default()).expect("alerts");
        alerts.push(t.elapsed());
    }
    for (name, v) in [
        ("case list", case_list),
        ("who talked to X, last hour", who),
        ("map, one-hour window", map),
        ("alert list", alerts),
    ] {
        println!(
            "query {name}: p50 {:.2} ms, p95 {:.2} ms",
            pct(v.clone(), 0.5),
            pct(v, 0.95)
        );
    }
    println!(
        "(who-talked-to: {:.0} flows per answer on average)",
        seen_flows as f64 / 100.0
    );
}
