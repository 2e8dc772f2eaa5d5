//! One worker's loop: frames from its sockets through decode, flow, l7 and the judges; inline,
//! allowed frames out of the other side of the pair.

use super::open::{Port, WorkerSockets, kernel_stats, pair};
use super::stats::Tally;
use super::*;

/// Frames taken from one ring before looking at the others.
pub(crate) const BATCH: usize = 256;
/// How long a worker sleeps in poll(2) when every ring is empty.
pub(crate) const POLL_MS: i32 = 100;
/// Output is handed to the writer at this size, or after [`FLUSH_EVERY`].
pub(crate) const FLUSH_BYTES: usize = 64 << 10;
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(200);

#[allow(
    clippy::too_many_arguments,
    reason = "one worker's sockets, channels and shared counters, passed once when it starts"
)]
pub(crate) fn worker_loop(
    cfg: &SensorConfig,
    live: &LiveConfig,
    mut ws: WorkerSockets,
    judges: Judges,
    eve_opts: EveOptions,
    c: &Counters,
    wtx: &Sender<Vec<u8>>,
    otx: Option<Sender<Offload>>,
    ctl: &Control,
    inline: bool,
    kmap: Option<&BypassMap>,
) -> std::io::Result<(Stats, WorkerTotals)> {
    let mut kflows: Vec<KernelFlow> = Vec::new();
    let kbudget = (KERNEL_BYPASS_FLOWS as usize / cfg.workers().max(1)).max(1);
    let mut dec = Decoder::new(cfg, eve_opts, judges.policy.clone());
    dec.set_inline(inline);
    let mut w = Worker::new(
        cfg.flow_config(1),
        cfg.stream_config(),
        cfg.app_layer.enabled,
        eve_opts,
        judges,
        &cfg.detect,
    );
    w.bypass_enabled = live.bypass;
    w.track_denied = otx.is_some();
    let fds: Vec<i32> = ws.socks.iter().map(Port::fd).collect();
    let mut cnt = 0u64;
    let mut learned = Vec::new();
    let mut last_flush = Instant::now();
    let mut last_stats = Instant::now();
    let mut last_ts = wall_ns();
    let send = |buf: &mut Vec<u8>| {
        if !buf.is_empty() {
            let _ = wtx.send(std::mem::take(buf));
        }
    };
    // Counted per frame in plain integers, published to the shared atomics once per batch
    // (a locked add per counter per frame cost more than the counting).
    let mut tally = Tally::default();
    while !ctl.stop.load(Ordering::Relaxed) {
        let mut got = 0;
        for i in 0..ws.socks.len() {
            let (rx, mut tx) = pair(&mut ws.socks, i, ws.peer[i]);
            let ifindex = ws.ifindex[i];
            // Where the flow's frames leave in the kernel: the other port (inline) or the
            // stack (tap, 0): (this direction, the reverse).
            let out_if = match ws.peer[i] {
                Some(j) if inline => (ws.ifindex[j], ifindex),
                _ => (0, 0),
            };
            got += rx.drain(BATCH, &mut |fr: &Frame<'_>| {
                cnt += 1;
                last_ts = last_ts.max(fr.ts_ns);
                let p = Packet {
                    ts_ns: fr.ts_ns,
                    linktype: 1, // LINKTYPE_ETHERNET
                    data: fr.data,
                    orig_len: fr.wire_len,
                };
                let mut deny = false;
                let mut covered = false;
                let mut bypassed = false;
                let ip_before = dec.stats.ipv4 + dec.stats.ipv6;
                dec.feed(&p, cnt, &mut |ts, step| match step {
                    Step::Outer(o) => w.outer(ts, o),
                    Step::Packet(f, d) => {
                        let fate = w.packet(ts, f, d);
                        deny |= fate.deny;
                        covered |= fate.judged;
                        bypassed |= fate.bypassed;
                        if fate.newly_denied
                            && let Some(o) = &otx
                        {
                            let t = &d.tuple;
                            let _ = o.send(Offload::Deny {
                                ifindex,
                                m: FlowMatch {
                                    src: t.src_ip(),
                                    dst: t.dst_ip(),
                                    proto: t.proto,
                                    sport: t.sport,
                                    dport: t.dport,
                                },
                                flow_id: fate.flow_id,
                            });
                        }
                        if fate.newly_bypassed
                            && let Some(map) = kmap
                            && kflows.len() < kbudget
                            && let Some(keys) = kernel_keys(fr.data)
                            && map.insert(&keys[0], out_if.0).is_ok()
                        {
                            if map.insert(&keys[1], out_if.1).is_ok()
                                && w.mark_kernel_bypass(fate.slot, fate.flow_id)
                            {
                                kflows.push(KernelFlow {
                                    flow_id: fate.flow_id,
                                    slot: fate.slot,
                                    keys,
                                    first_to_server: fate.to_server,
                                    seen: [(0, 0); 2],
                                });
                            } else {
                                let _ = map.remove(&keys[0]);
                                let _ = map.remove(&keys[1]);
                            }
                        }
                        if w.learns_names() && !bypassed && dns_response(d, f, &mut learned) {
                            for l in &learned {
                                w.learn(ts, l);
                            }
                        }
                    }
                });
                // A flood mitigation rule drops the frame (it was still seen and counted).
                deny |= dec.take_mitigated();
                tally.packets += 1;
                if dec.stats.ipv4 + dec.stats.ipv6 == ip_before {
                    tally.non_ip += 1;
                }
                tally.bytes += fr.data.len() as u64;
                if covered {
                    tally.covered += 1;
                }
                if bypassed {
                    tally.bypassed += 1;
                }
                if let Some(tx) = tx.as_deref_mut() {
                    if deny && inline {
                        tally.blocked += 1;
                    } else if tx.send(fr) {
                        tally.forwarded += 1;
                    } else {
                        tally.send_errors += 1;
                    }
                }
            });
        }
        tally.publish(c);
        for s in ws.socks.iter_mut() {
            s.flush();
        }
        if let Some(map) = kmap
            && !w.ended_kernel.is_empty()
        {
            for id in w.ended_kernel.drain(..) {
                if let Some(pos) = kflows.iter().position(|k| k.flow_id == id) {
                    let k = kflows.swap_remove(pos);
                    let _ = map.remove(&k.keys[0]);
                    let _ = map.remove(&k.keys[1]);
                }
            }
        }
        if let Some(o) = &otx {
            for id in w.ended_denied.drain(..) {
                let _ = o.send(Offload::Ended(id));
            }
        }
        if got == 0 {
            afpacket::poll(&fds, POLL_MS)?;
            let now = wall_ns().max(last_ts);
            w.tick(now);
        }
        if w.out.len() + dec.out.len() >= FLUSH_BYTES || last_flush.elapsed() >= FLUSH_EVERY {
            send(&mut dec.out);
            send(&mut w.out);
            last_flush = Instant::now();
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            kernel_stats(&mut ws.socks, c);
            if let Some(map) = kmap {
                let before = w.bypassed_pkts;
                credit_kernel(map, &mut kflows, &mut w, wall_ns().max(last_ts));
                c.kernel_bypassed
                    .fetch_add(w.bypassed_pkts - before, Ordering::Relaxed);
            }
        }
    }
    if let Some(map) = kmap {
        let before = w.bypassed_pkts;
        credit_kernel(map, &mut kflows, &mut w, wall_ns().max(last_ts));
        c.kernel_bypassed
            .fetch_add(w.bypassed_pkts - before, Ordering::Relaxed);
    }
    kernel_stats(&mut ws.socks, c);
    let now = wall_ns().max(last_ts);
    dec.finish_detect();
    send(&mut dec.out);
    w.finish(now, |buf| {
        send(buf);
        Ok::<(), ()>(())
    })
    .ok();
    if let Some(o) = &otx {
        for id in w.ended_denied.drain(..) {
            let _ = o.send(Offload::Ended(id));
        }
    }
    send(&mut w.out);
    dec.finish_stats();
    let st = std::mem::take(&mut dec.stats);
    Ok((st, WorkerTotals::of(&w)))
}
