//! The offload thread: denied flows become tc rules, and flows bypassed in the kernel (XDP)
//! are credited back to their workers' flow records.

use super::*;

/// Flows the XDP program keeps in the kernel at most (each takes two map entries).
pub const KERNEL_BYPASS_FLOWS: u32 = 65_536;

/// A flow kept in the kernel: its map keys (the direction of the packet that bypassed it
/// first, then the other) and what was last read from them.
#[derive(Debug)]
pub(crate) struct KernelFlow {
    pub(crate) flow_id: u64,
    pub(crate) slot: u32,
    pub(crate) keys: [[u8; 16]; 2],
    /// Whether `keys[0]` is the client-to-server direction.
    pub(crate) first_to_server: bool,
    pub(crate) seen: [(u64, u64); 2],
}

/// If `frame` is an untagged IPv4 TCP/UDP packet without options, the two map keys of its
/// flow (its own direction first), exactly as the XDP program builds them.
pub(crate) fn kernel_keys(frame: &[u8]) -> Option<[[u8; 16]; 2]> {
    if frame.len() < 38 || frame[12..14] != [0x08, 0x00] || frame[14] != 0x45 {
        return None;
    }
    if u16::from_be_bytes([frame[20], frame[21]]) & 0x3FFF != 0 || !matches!(frame[23], 6 | 17) {
        return None;
    }
    let ip = |o: usize| std::net::Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
    let port = |o: usize| u16::from_be_bytes([frame[o], frame[o + 1]]);
    let (s, d, sp, dp, p) = (ip(26), ip(30), port(34), port(36), frame[23]);
    Some([
        afxdp::bypass_key(s, d, p, sp, dp),
        afxdp::bypass_key(d, s, p, dp, sp),
    ])
}

/// Read the counters of every kernel-bypassed flow and credit what is new to its flow.
pub(crate) fn credit_kernel(map: &BypassMap, flows: &mut [KernelFlow], w: &mut Worker, now: u64) {
    for k in flows.iter_mut() {
        for i in 0..2 {
            let Ok((p, b)) = map.counters(&k.keys[i]) else {
                continue;
            };
            let (dp, db) = (p.saturating_sub(k.seen[i].0), b.saturating_sub(k.seen[i].1));
            k.seen[i] = (p, b);
            let to_server = k.first_to_server == (i == 0);
            w.credit(k.slot, k.flow_id, to_server, dp, db, now);
        }
    }
}

/// Requests to the offload thread.
#[derive(Debug)]
pub(crate) enum Offload {
    Deny {
        ifindex: u32,
        m: FlowMatch,
        flow_id: u64,
    },
    Ended(u64),
}

#[derive(Debug, Default)]
pub(crate) struct OffloadCounters {
    pub(crate) rules: AtomicU64,
    pub(crate) installed: AtomicU64,
    pub(crate) removed: AtomicU64,
    pub(crate) budget_full: AtomicU64,
    pub(crate) errors: AtomicU64,
}

pub(crate) fn offload_thread(
    mut tc: Tc,
    rx: Receiver<Offload>,
    budget: usize,
    c: &OffloadCounters,
    log: &(dyn Fn(String) + Sync),
) {
    let mut rules: hashbrown::HashMap<u64, (u32, u32)> = hashbrown::HashMap::new();
    for msg in rx {
        match msg {
            Offload::Deny {
                ifindex,
                m,
                flow_id,
            } => {
                if rules.contains_key(&flow_id) {
                    continue;
                }
                if rules.len() >= budget {
                    c.budget_full.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let before = tc.kind();
                match tc.add(ifindex, &m, RuleAction::Drop) {
                    Ok(h) => {
                        if tc.kind() != before {
                            log(format!(
                                "tc: this kernel has no flower classifier (or gact action); denied flows are offloaded as cls_bpf direct-action rules instead ({} datapath only)",
                                "software"
                            ));
                        }
                        rules.insert(flow_id, (ifindex, h));
                        c.installed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if c.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            log(format!("tc flower: cannot add a rule: {e}"));
                        }
                    }
                }
            }
            Offload::Ended(flow_id) => {
                if let Some((ifindex, h)) = rules.remove(&flow_id) {
                    match tc.remove(ifindex, h) {
                        Ok(()) => {
                            c.removed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            c.errors.fetch_add(1, Ordering::Relaxed);
                            log(format!("tc flower: cannot remove a rule: {e}"));
                        }
                    }
                }
            }
        }
        c.rules.store(rules.len() as u64, Ordering::Relaxed);
    }
    let n = tc.installed();
    if let Err(e) = tc.clear() {
        log(format!("tc flower: removing rules at exit: {e}"));
    } else {
        c.removed.fetch_add(n as u64, Ordering::Relaxed);
    }
    c.rules.store(0, Ordering::Relaxed);
}
