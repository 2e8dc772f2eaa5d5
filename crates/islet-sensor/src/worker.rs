//! A flow worker: owns one flow table and one output buffer; nothing here is shared.

use crate::names::Learned;
use crate::policy::{FlowJudgement, PolicyState};
use islet_event::CommunityId;
use islet_event::alert::write_alert;
use islet_event::eve::{self, EveOptions};
use islet_event::eve_proto::{EventContext, event_type, write_app_event};
use islet_event::proto::AppEvent;
use islet_flow::stream::StreamConfig;
use islet_flow::{Dir, Ended, FlowConfig, FlowTable, TableStats};
use islet_intel::Snapshot;
use islet_intel::alert::{self as intel, Endpoints, Hit};
use islet_intel::feed::{IntelRuntime, SharedSnapshot};
use islet_l7::{FlowView, L7Flow, Sink};
use islet_wire::decode::{Decoded, Outer};
use islet_wire::ip_proto;

/// Per-flow state above the flow table: the application layer's, allocated on first payload,
/// and the flow's policy verdict.
#[derive(Debug, Default)]
pub(crate) struct Ext {
    l7: Option<Box<L7Flow>>,
    policy: FlowJudgement,
    /// What the per-flow detectors reported already.
    detect: u8,
    /// Inspection ended with an allowed verdict: later packets are counted, not parsed.
    bypass: bool,
    /// The capture layer keeps the flow's packets (an XDP map); what it counted, as
    /// `FlowRecord::bypassed`.
    kernel: Option<Box<[u64; 4]>>,
}

/// What became of one packet's flow, for an inline sensor's forwarding decision.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fate {
    /// The flow's verdict is deny: drop the packet.
    pub(crate) deny: bool,
    /// This packet made the flow's verdict deny (first packet, or L7 metadata).
    pub(crate) newly_denied: bool,
    /// The flow has a verdict (policy on) or is tracked (policy off).
    pub(crate) judged: bool,
    /// The packet was not inspected: its flow is bypassed.
    pub(crate) bypassed: bool,
    /// This packet's flow was bypassed just now (inspection over, verdict allow).
    pub(crate) newly_bypassed: bool,
    /// The packet goes from client to server.
    pub(crate) to_server: bool,
    pub(crate) flow_id: u64,
    /// The flow's slot in the table (for [`Worker::credit`]).
    pub(crate) slot: u32,
}

/// How often (in capture time) idle flows are swept.
const EXPIRE_EVERY_NS: u64 = 1_000_000_000;
/// Flows logged per output chunk when the input ends.
pub(crate) const FINISH_CHUNK: usize = 1024;
/// Most indicator sightings (matches without `to_ids`) kept per flow.
pub const MAX_SIGHTINGS_PER_FLOW: usize = 16;

/// The shared snapshot as a worker sees it: a cached `Arc` that is re-read only when a new
/// snapshot was swapped in (one atomic load per lookup, no reference count touched).
type SnapshotCache = arc_swap::Cache<std::sync::Arc<SharedSnapshot>, std::sync::Arc<Snapshot>>;

/// The worker's threat-intelligence state: the shared snapshot (checked per lookup, so a
/// swapped-in snapshot takes effect at once), where sightings go, and per live flow the
/// sightings to log with its flow record.
#[derive(Debug, Default)]
pub(crate) struct IntelState {
    runtime: Option<IntelRuntime>,
    /// Taken while a lookup uses it.
    cache: Option<SnapshotCache>,
    hits: Vec<Hit>,
    sightings: hashbrown::HashMap<u64, Vec<String>>,
    pub(crate) alerts: u64,
    pub(crate) sightings_total: u64,
}

impl IntelState {
    pub(crate) fn new(runtime: Option<IntelRuntime>) -> Self {
        IntelState {
            cache: runtime
                .as_ref()
                .map(|rt| arc_swap::Cache::new(rt.snapshot.clone())),
            runtime,
            ..IntelState::default()
        }
    }

    fn active(&self) -> bool {
        self.runtime.is_some()
    }

    /// Write an alert for each `to_ids` hit in `self.hits` (draining it) and keep the others
    /// as sightings of the flow. True if an alert was written.
    fn emit(
        &mut self,
        snap: &Snapshot,
        out: &mut Vec<u8>,
        ctx: &EventContext<'_>,
        proto: Option<&AppEvent>,
        eve: &EveOptions,
    ) -> bool {
        let mut alerted = false;
        let push = self.runtime.as_ref().and_then(|r| r.sightings.as_ref());
        for h in self.hits.drain(..) {
            let ind = snap.indicator(h.indicator);
            if let Some(tx) = push {
                tx.offer(&ind.value, ctx.ts_ns / 1_000_000_000);
            }
            if ind.to_ids {
                let a = intel::alert(snap, &h);
                write_alert(out, ctx, &a, proto, proto.map(event_type), eve);
                self.alerts += 1;
                alerted = true;
            } else {
                let v = self.sightings.entry(ctx.flow_id).or_default();
                let s = format!("{} {}", ind.kind, ind.value);
                if v.len() < MAX_SIGHTINGS_PER_FLOW && !v.contains(&s) {
                    v.push(s);
                    self.sightings_total += 1;
                }
            }
        }
        alerted
    }

    /// Log `ev`, then what it matched.
    fn event(
        &mut self,
        out: &mut Vec<u8>,
        ctx: &EventContext<'_>,
        ev: &AppEvent,
        eve: &EveOptions,
    ) -> bool {
        write_app_event(out, ctx, ev, eve);
        let Some(mut cache) = self.cache.take() else {
            return false;
        };
        let alerted = self.event_with(cache.load(), out, ctx, ev, eve);
        self.cache = Some(cache);
        alerted
    }

    fn event_with(
        &mut self,
        snap: &Snapshot,
        out: &mut Vec<u8>,
        ctx: &EventContext<'_>,
        ev: &AppEvent,
        eve: &EveOptions,
    ) -> bool {
        if snap.is_empty() {
            return false;
        }
        let t = ctx.tuple;
        let ends = Endpoints {
            client: t.src_ip(),
            client_port: t.sport,
            server: t.dst_ip(),
            server_port: t.dport,
        };
        intel::match_event(snap, ev, &ends, &mut self.hits);
        self.emit(snap, out, ctx, Some(ev), eve)
    }
}

#[derive(Debug)]
pub(crate) struct Worker {
    table: FlowTable<Ext>,
    records: Vec<Ended<Ext>>,
    app_events: Vec<AppEvent>,
    stream: StreamConfig,
    app_layer: bool,
    /// Encoded EVE lines waiting to be written.
    pub(crate) out: Vec<u8>,
    eve: EveOptions,
    next_expire_ns: u64,
    pub(crate) flows_logged: u64,
    pub(crate) intel: IntelState,
    pub(crate) policy: PolicyState,
    pub(crate) detect: crate::detect::FlowDetect,
    /// Stop inspecting a flow once its metadata is logged and its verdict allows it.
    pub(crate) bypass_enabled: bool,
    /// Packets and bytes of bypassed flows after their bypass.
    pub(crate) bypassed_pkts: u64,
    pub(crate) bypassed_bytes: u64,
    pub(crate) flows_bypassed: u64,
    /// Ids of denied flows that ended since the caller last drained this (collected only
    /// when `track_denied` is set: their offloaded rules go).
    pub(crate) ended_denied: Vec<u64>,
    pub(crate) track_denied: bool,
    /// Ids of flows the capture layer kept that ended (their map entries go).
    pub(crate) ended_kernel: Vec<u64>,
}

impl Worker {
    pub(crate) fn new(
        cfg: FlowConfig,
        stream: StreamConfig,
        app_layer: bool,
        eve: EveOptions,
        judges: crate::pipeline::Judges,
        detect: &islet_detect::DetectConfig,
    ) -> Self {
        Worker {
            table: FlowTable::new(cfg),
            records: Vec::with_capacity(64),
            app_events: Vec::new(),
            stream,
            app_layer,
            out: Vec::with_capacity(1 << 18),
            eve,
            next_expire_ns: 0,
            flows_logged: 0,
            intel: IntelState::new(judges.intel),
            policy: PolicyState::new(judges.policy),
            detect: crate::detect::FlowDetect::new(detect),
            bypass_enabled: false,
            bypassed_pkts: 0,
            bypassed_bytes: 0,
            flows_bypassed: 0,
            ended_denied: Vec::new(),
            track_denied: false,
            ended_kernel: Vec::new(),
        }
    }

    /// Alerts written: intelligence matches and policy violations.
    pub(crate) fn alerts(&self) -> u64 {
        self.intel.alerts + self.policy.alerts + self.detect.alerts
    }

    pub(crate) fn stats(&self) -> &TableStats {
        self.table.stats()
    }

    /// Count a tunnel's outer packet on its own flow.
    pub(crate) fn outer(&mut self, ts: u64, o: &Outer) {
        let (id, _) = self
            .table
            .update(ts, &o.tuple, o.pkt_len, 0, &mut self.records);
        self.table.flow_mut(id).tunnel_outer = true;
        self.tick(ts);
    }

    /// Account one decoded packet; says what became of its flow.
    pub(crate) fn packet(&mut self, ts: u64, frame: &[u8], d: &Decoded) -> Fate {
        let (id, dir) = self
            .table
            .update(ts, &d.tuple, d.pkt_len, d.tcp_flags, &mut self.records);
        let f = self.table.flow_mut(id);
        let was_denied = f.ext.policy.denied();
        if self.policy.take_stale(&f.ext.policy) {
            // A reload replaced the policy this flow was judged by: judge it again (a
            // bypassed flow too), so a flow the new policy denies is cut.
            f.ext.bypass = false;
            self.judge(ts, id);
        }
        let f = self.table.flow(id);
        if f.ext.bypass {
            self.bypassed_pkts += 1;
            self.bypassed_bytes += u64::from(d.pkt_len);
            let fate = Fate {
                judged: true,
                bypassed: true,
                to_server: dir == Dir::ToServer,
                flow_id: f.flow_id,
                slot: id,
                ..Fate::default()
            };
            self.tick(ts);
            return fate;
        }
        if self.intel.active() || self.policy.active() {
            let f = self.table.flow(id);
            if f.pkts[0] + f.pkts[1] == 1 {
                if self.policy.active() {
                    self.judge(ts, id);
                }
                if self.intel.active() {
                    self.endpoints(ts, id);
                }
            }
        }
        if self.app_layer
            && d.payload_len > 0
            && matches!(d.tuple.proto, ip_proto::TCP | ip_proto::UDP)
        {
            self.application(ts, id, dir, frame, d);
        }
        let f = self.table.flow_mut(id);
        let deny = f.ext.policy.denied();
        let mut newly_bypassed = false;
        if self.bypass_enabled && !deny && f.ext.l7.as_ref().is_some_and(|l| l.inspection_done()) {
            f.ext.bypass = true;
            newly_bypassed = true;
            self.flows_bypassed += 1;
        }
        let fate = Fate {
            deny,
            newly_denied: deny && !was_denied,
            judged: !self.policy.active() || f.ext.policy.judged(),
            bypassed: false,
            newly_bypassed,
            to_server: dir == Dir::ToServer,
            flow_id: f.flow_id,
            slot: id,
        };
        self.tick(ts);
        fate
    }

    /// The capture layer now keeps the flow in `slot` (if it is still `flow_id`).
    pub(crate) fn mark_kernel_bypass(&mut self, slot: u32, flow_id: u64) -> bool {
        if !self.table.is_live(slot, flow_id) {
            return false;
        }
        let f = self.table.flow_mut(slot);
        f.ext.kernel.get_or_insert_with(Box::default);
        true
    }

    /// What the capture layer counted for a kernel-bypassed flow since the last call: the
    /// flow stays alive (its idle time restarts at `now`) and the counts go to its record.
    pub(crate) fn credit(
        &mut self,
        slot: u32,
        flow_id: u64,
        to_server: bool,
        pkts: u64,
        bytes: u64,
        now: u64,
    ) {
        if pkts == 0 || !self.table.is_live(slot, flow_id) {
            return;
        }
        let f = self.table.flow_mut(slot);
        f.last_ns = f.last_ns.max(now);
        let k = f.ext.kernel.get_or_insert_with(Box::default);
        let d = usize::from(!to_server);
        k[d] += pkts;
        k[2 + d] += bytes;
        self.bypassed_pkts += pkts;
        self.bypassed_bytes += bytes;
    }

    /// A name a DNS answer bound to an address (capture order: before the packets after it).
    pub(crate) fn learn(&mut self, ts: u64, l: &Learned) {
        self.policy.learn(ts, l);
    }

    /// Whether this worker judges flows (and so wants names learned from DNS).
    pub(crate) fn learns_names(&self) -> bool {
        self.policy.active()
    }

    /// A new flow: its policy verdict.
    fn judge(&mut self, ts: u64, id: u32) {
        let tuple = self.table.tuple(id);
        let f = self.table.flow_mut(id);
        let ctx = EventContext {
            ts_ns: ts,
            flow_id: f.flow_id,
            pcap_cnt: None,
            tuple: &tuple,
            community_id: None,
        };
        if self
            .policy
            .flow_start(&mut f.ext.policy, &mut self.out, &ctx, &self.eve)
        {
            f.alerted = true;
        }
    }

    /// A new flow: do its endpoints match an indicator?
    fn endpoints(&mut self, ts: u64, id: u32) {
        let Some(mut cache) = self.intel.cache.take() else {
            return;
        };
        self.endpoints_with(cache.load(), ts, id);
        self.intel.cache = Some(cache);
    }

    fn endpoints_with(&mut self, snap: &Snapshot, ts: u64, id: u32) {
        if snap.is_empty() {
            return;
        }
        let tuple = self.table.tuple(id);
        let ends = Endpoints {
            client: tuple.src_ip(),
            client_port: tuple.sport,
            server: tuple.dst_ip(),
            server_port: tuple.dport,
        };
        intel::match_endpoints(snap, &ends, &mut self.intel.hits);
        if self.intel.hits.is_empty() {
            return;
        }
        let f = self.table.flow_mut(id);
        let ctx = EventContext {
            ts_ns: ts,
            flow_id: f.flow_id,
            pcap_cnt: None,
            tuple: &tuple,
            community_id: None,
        };
        if self.intel.emit(snap, &mut self.out, &ctx, None, &self.eve) {
            f.alerted = true;
        }
    }

    /// Hand the payload to the flow's application layer and log what it found.
    fn application(&mut self, ts: u64, id: u32, dir: Dir, frame: &[u8], d: &Decoded) {
        let payload = d.payload(frame);
        let f = self.table.flow_mut(id);
        let k = &f.key;
        let (client_port, server_port) = if f.client_is_lo {
            (k.lo_port, k.hi_port)
        } else {
            (k.hi_port, k.lo_port)
        };
        let l7 = f.ext.l7.get_or_insert_with(Box::default);
        let view = FlowView {
            app: &mut f.app,
            probes: &mut f.app_probe,
            client_port,
            server_port,
        };
        let toserver = dir == Dir::ToServer;
        let mut sink = Sink {
            events: &mut self.app_events,
        };
        if d.tuple.proto == ip_proto::TCP {
            l7.tcp(
                &self.stream,
                view,
                toserver,
                d.tcp_seq,
                d.tcp_flags,
                payload,
                &mut sink,
            );
        } else if l7.udp(view, toserver, payload, &mut sink) {
            self.table.flip(id);
        }
        if !self.app_events.is_empty() {
            let tuple = self.table.tuple(id);
            let f = self.table.flow_mut(id);
            let flow_id = f.flow_id;
            let seed = self.eve.community_id_seed;
            // Computed once per flow, not once per event.
            let cid = f.ext.l7.as_mut().map(|l| {
                *l.community_id
                    .get_or_insert_with(|| CommunityId::v1(seed, &tuple))
            });
            let ctx = EventContext {
                ts_ns: ts,
                flow_id,
                pcap_cnt: None,
                tuple: &tuple,
                community_id: cid.as_ref(),
            };
            let mut alerted = false;
            let judged = &mut f.ext.policy;
            let reported = &mut f.ext.detect;
            for ev in self.app_events.drain(..) {
                alerted |= self.intel.event(&mut self.out, &ctx, &ev, &self.eve);
                alerted |= self
                    .policy
                    .app_event(judged, &mut self.out, &ctx, &ev, &self.eve);
                alerted |= self
                    .detect
                    .app_event(&mut self.out, &ctx, &ev, reported, &self.eve);
            }
            if alerted {
                f.alerted = true;
            }
        }
    }

    /// Sweep idle flows when capture time has moved on.
    pub(crate) fn tick(&mut self, now: u64) {
        if now >= self.next_expire_ns {
            self.table.expire(now, &mut self.records);
            self.next_expire_ns = now.saturating_add(EXPIRE_EVERY_NS);
        }
        if !self.records.is_empty() {
            self.encode();
        }
    }

    /// The input is over: log every flow still open.
    /// The input is over: log every flow, handing the encoded output to `flush` in chunks of
    /// at most [`FINISH_CHUNK`] flows so the buffer stays small however many flows are live.
    pub(crate) fn finish<E>(
        &mut self,
        now: u64,
        mut flush: impl FnMut(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.table.expire(now, &mut self.records);
        self.encode();
        flush(&mut self.out)?;
        while self.table.flush_some(now, &mut self.records, FINISH_CHUNK) {
            self.encode();
            flush(&mut self.out)?;
        }
        self.encode();
        flush(&mut self.out)
    }

    fn encode(&mut self) {
        for (mut r, mut ext) in self.records.drain(..) {
            // What the application layer still holds is logged before the flow record.
            if let Some(mut l7) = ext.l7 {
                l7.finish(&mut Sink {
                    events: &mut self.app_events,
                });
                let ctx = EventContext {
                    ts_ns: r.log_ns,
                    flow_id: r.flow_id,
                    pcap_cnt: None,
                    tuple: &r.tuple,
                    community_id: l7.community_id.as_ref(),
                };
                let mut alerted = false;
                for ev in self.app_events.drain(..) {
                    alerted |= self.intel.event(&mut self.out, &ctx, &ev, &self.eve);
                    alerted |=
                        self.policy
                            .app_event(&mut ext.policy, &mut self.out, &ctx, &ev, &self.eve);
                    alerted |=
                        self.detect
                            .app_event(&mut self.out, &ctx, &ev, &mut ext.detect, &self.eve);
                }
                r.alerted |= alerted;
            }
            r.bypass = match (&ext.kernel, ext.bypass) {
                (Some(k), _) => {
                    r.bypassed = **k;
                    self.ended_kernel.push(r.flow_id);
                    islet_event::Bypass::Capture
                }
                (None, true) => islet_event::Bypass::Local,
                (None, false) => islet_event::Bypass::None,
            };
            if self.track_denied && ext.policy.denied() {
                self.ended_denied.push(r.flow_id);
            }
            let sightings = self.intel.sightings.remove(&r.flow_id).unwrap_or_default();
            let policy = self.policy.ended(&ext.policy);
            eve::write_flow_full(&mut self.out, &r, &sightings, policy.as_ref(), &self.eve);
            self.flows_logged += 1;
        }
    }
}
