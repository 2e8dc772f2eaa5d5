//! The verdict of a new flow with 10,000 rules and 100,000 workloads (100 namespaces × 100
//! apps × 10 pods; per namespace 100 ingress rules, one per app, allowing the next app on one
//! port), over a rotating pool of flows between random pods and from outside; and the cost of
//! building the engine. Run with `cargo bench -p islet-policy`.

use divan::{Bencher, black_box, counter::ItemsCount};
use islet_policy::engine::FlowFacts;
use islet_policy::{Engine, Inventory, import};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

fn main() {
    divan::main();
}

const NS: u32 = 100;
const APPS: u32 = 100;
const PODS: u32 = 10;

fn pod_ip(ns: u32, app: u32, pod: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (ns << 16) | (app << 8) | pod)
}

fn inputs() -> &'static (String, String) {
    static I: OnceLock<(String, String)> = OnceLock::new();
    I.get_or_init(|| {
        let mut inv = String::from("cluster_cidrs = [\"10.0.0.0/8\"]\n");
        for ns in 0..NS {
            for app in 0..APPS {
                for pod in 0..PODS {
                    let _ = write!(
                        inv,
                        "[[workload]]\nname = \"app{app}-{pod}\"\nkind = \"pod\"\nnamespace = \"ns{ns}\"\nlabels = {{ app = \"app{app}\", tier = \"t{}\" }}\naddresses = [\"{}\"]\n",
                        app % 3,
                        pod_ip(ns, app, pod)
                    );
                }
            }
        }
        let mut pol = String::new();
        for ns in 0..NS {
            for app in 0..APPS {
                let _ = write!(
                    pol,
                    "[[rule]]\nid = \"ns{ns}-app{app}\"\naction = \"allow\"\ndirection = \"ingress\"\nsubject = {{ namespace = \"ns{ns}\", labels = {{ app = \"app{app}\" }} }}\npeers = [{{ namespace = \"ns{ns}\", labels = {{ app = \"app{}\" }} }}, {{ cidr = \"192.168.0.0/16\" }}]\nports = [\"tcp/8080\"]\n",
                    (app + 1) % APPS
                );
            }
        }
        (inv, pol)
    })
}

fn build() -> Engine {
    let (inv, pol) = inputs();
    let inv = Inventory::from_toml("inv.toml", inv).expect("inventory");
    let p = import::parse("p.toml", pol).expect("policy");
    assert_eq!(p.rules.len(), 10_000);
    assert_eq!(inv.workloads.len(), 100_000);
    Engine::new(p, Arc::new(inv))
}

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(build)
}

const BATCH: usize = 1024;

/// A rotating pool of flows: neighbouring apps, random apps, outside addresses.
fn flows() -> Vec<(IpAddr, IpAddr, u16)> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..1 << 16)
        .map(|i| {
            let r = next();
            let ns = (r % u64::from(NS)) as u32;
            let app = ((r >> 8) % u64::from(APPS)) as u32;
            // Mostly the allowed neighbour, sometimes another app, sometimes from outside.
            let src_app = if i % 3 == 0 {
                ((r >> 16) % u64::from(APPS)) as u32
            } else {
                (app + APPS - 1) % APPS
            };
            let src = if i % 7 == 0 {
                IpAddr::V4(Ipv4Addr::new(192, 168, (r >> 24) as u8, (r >> 32) as u8))
            } else {
                IpAddr::V4(pod_ip(ns, src_app, ((r >> 40) % u64::from(PODS)) as u32))
            };
            let port = if i % 5 == 0 { 443 } else { 8080 };
            (
                src,
                IpAddr::V4(pod_ip(ns, app, ((r >> 48) % u64::from(PODS)) as u32)),
                port,
            )
        })
        .collect()
}

fn facts(src: IpAddr, dst: IpAddr, dport: u16) -> FlowFacts<'static> {
    FlowFacts {
        src,
        dst,
        proto: 6,
        dport,
        ts_ns: 0,
        dst_names: &[],
        l7: None,
    }
}

/// A new flow's verdict: both identities resolved, egress and ingress evaluated.
#[divan::bench]
fn new_flow_verdict(b: Bencher<'_, '_>) {
    let e = engine();
    let flows = flows();
    let mut at = 0;
    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
        let mut denied = 0u32;
        for &(src, dst, dport) in &flows[at..at + BATCH] {
            let f = facts(src, dst, dport);
            denied += u32::from(black_box(e.verdict(&f)).action == islet_policy::Action::Deny);
        }
        at = (at + BATCH) % flows.len();
        denied
    });
}

/// The same, read as a sensor worker reads the engine (an `arc_swap::Cache` over the shared
/// `ArcSwap`), while another thread puts a different engine in force every millisecond: a
/// reload is one pointer swap, and the data path neither waits nor slows.
#[divan::bench(sample_count = 2000)]
fn new_flow_verdict_while_reloading(b: Bencher<'_, '_>) {
    static SECOND: OnceLock<Arc<Engine>> = OnceLock::new();
    let a = Arc::new(build());
    let second = Arc::clone(SECOND.get_or_init(|| Arc::new(build())));
    let shared = Arc::new(arc_swap::ArcSwap::new(Arc::clone(&a)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let next = if swaps.is_multiple_of(2) { &second } else { &a };
                shared.store(Arc::clone(next));
                swaps += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            swaps
        })
    };
    let mut cache = arc_swap::Cache::new(Arc::clone(&shared));
    let flows = flows();
    let mut at = 0;
    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
        let mut denied = 0u32;
        for &(src, dst, dport) in &flows[at..at + BATCH] {
            let f = facts(src, dst, dport);
            let e = cache.load();
            denied += u32::from(black_box(e.verdict(&f)).action == islet_policy::Action::Deny);
        }
        at = (at + BATCH) % flows.len();
        denied
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    assert!(swaps > 0, "the engine was swapped during the run");
}

/// Building the engine (index of 10,000 rules over 100,000 workloads), from parsed inputs.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn build_engine(b: Bencher<'_, '_>) {
    let (inv, pol) = inputs();
    b.with_inputs(|| {
        (
            Inventory::from_toml("inv.toml", inv).expect("inventory"),
            import::parse("p.toml", pol).expect("policy"),
        )
    })
    .bench_local_values(|(inv, p)| Engine::new(p, Arc::new(inv)).policy.rules.len());
}

/// Resolving both ends of a flow alone (the identity part of a verdict).
#[divan::bench]
fn resolve_both_ends(b: Bencher<'_, '_>) {
    let e = engine();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let addrs: Vec<IpAddr> = (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            IpAddr::V4(pod_ip(
                (x % 100) as u32,
                ((x >> 8) % 100) as u32,
                ((x >> 16) % 10) as u32,
            ))
        })
        .collect();
    let mut at = 0;
    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
        let mut n = 0u32;
        for w in addrs[at..at + 2 * BATCH].chunks(2) {
            let a = e.inventory.resolve(black_box(w[0]), 0);
            let c = e.inventory.resolve(black_box(w[1]), 0);
            n += u32::from(a == c);
        }
        at = (at + 2 * BATCH) % addrs.len();
        n
    });
}
