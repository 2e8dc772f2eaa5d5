//! The bounded flow table.

use crate::key::FlowKey;
use crate::tcp;
use hashbrown::{DefaultHashBuilder, HashTable};
use islet_event::{AppProto, EndReason, FlowRecord, FlowState, IcmpSummary, TcpState, TcpSummary};
use islet_wire::tcp::flags::{ACK, SYN};
use islet_wire::{Tuple, ip_proto};
use std::hash::BuildHasher;

/// Handle of a live flow in its table (a slab index; valid until the flow ends).
pub type FlowId = u32;

/// Direction of a packet within its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    ToServer = 0,
    ToClient = 1,
}

/// Idle timeouts of one protocol, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub new: u32,
    pub established: u32,
    pub closed: u32,
}

/// Flow table settings. Defaults are Suricata's (`flow-timeouts`, `flow.emergency-recovery`).
#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// Most flows held at once; past it the table enters emergency mode.
    pub max_flows: usize,
    /// Leave emergency mode once the table is this many percent below `max_flows`.
    pub emergency_recovery_pct: u8,
    /// Timeouts for TCP, UDP, ICMP and other protocols, in that order.
    pub timeouts: [Timeouts; 4],
    /// The same, in emergency mode.
    pub emergency_timeouts: [Timeouts; 4],
    /// Track TCP sessions picked up midstream (Suricata's `stream.midstream`).
    pub midstream: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        let t = |new, established, closed| Timeouts {
            new,
            established,
            closed,
        };
        FlowConfig {
            max_flows: 1 << 20,
            emergency_recovery_pct: 30,
            timeouts: [t(60, 600, 60), t(30, 300, 0), t(30, 300, 0), t(30, 300, 0)],
            emergency_timeouts: [t(5, 100, 10), t(10, 100, 0), t(10, 100, 0), t(10, 100, 0)],
            midstream: true,
        }
    }
}

/// One live flow. The client is the first packet's sender, unless a later signal (a SYN/ACK
/// seen first, an application-layer response seen first) flipped it.
///
/// The compiler's field order is kept: aligning flows to cache lines was measured slower
/// (192 instead of 152 bytes per flow costs more than the line it saves; docs/PERFORMANCE.md).
#[derive(Clone, Debug)]
pub struct Flow<X = ()> {
    pub key: FlowKey,
    pub last_ns: u64,
    /// Whether the client is the key's `lo` endpoint.
    pub client_is_lo: bool,
    pub tcp_state: TcpState,
    pub state: FlowState,
    class: u8,
    fin_by_client: bool,
    pub tcp_flags: [u8; 2],
    pub alerted: bool,
    /// Indexed by [`Dir`].
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    /// Application protocol found in each direction.
    pub app: [AppProto; 2],
    /// Free for the application layer: probing progress per direction.
    pub app_probe: [u8; 2],
    /// First ICMP (type, code) each way.
    pub icmp: [Option<(u8, u8)>; 2],
    pub tunnel_outer: bool,
    pub start_ns: u64,
    pub flow_id: u64,
    hash: u64,
    /// When the flow was last put at the tail of its class list (≤ `last_ns`): lists are
    /// ordered by this, not by `last_ns`, so a packet need not move its flow.
    link_ns: u64,
    prev: u32,
    next: u32,
    /// State the layers above keep per flow (the application layer's parsers). Handed back with
    /// the flow's record when it ends.
    pub ext: X,
}

/// The `flow_id` of the flow with `key` that starts at `start_ns` (what its events carry), so
/// a layer that sees the flow's first packet can name it before the flow table does.
pub fn flow_id(key: &FlowKey, start_ns: u64) -> u64 {
    ((key.stable_hash() ^ start_ns.rotate_left(23)).wrapping_mul(0x2545_F491_4F6C_DD1D) >> 13)
        & ((1 << 51) - 1)
}

/// A flow that ended: its record and the state the layers above kept for it.
pub type Ended<X> = (FlowRecord, X);

/// Table counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub created: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub other: u64,
    pub ended_timeout: u64,
    pub ended_forced: u64,
    pub ended_shutdown: u64,
    pub emergency_entered: u64,
    pub active_max: u64,
}

const NIL: u32 = u32::MAX;
const CLASSES: usize = 12;

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

/// The flow table: a slab of flows, a hash index, and one LRU list per timeout class.
#[derive(Debug)]
pub struct FlowTable<X = ()> {
    cfg: FlowConfig,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    slots: Vec<Flow<X>>,
    live: Vec<bool>,
    free: Vec<u32>,
    lists: [List; CLASSES],
    len: usize,
    emergency: bool,
    stats: TableStats,
}

fn proto_group(proto: u8) -> usize {
    match proto {
        ip_proto::TCP => 0,
        ip_proto::UDP => 1,
        ip_proto::ICMP | ip_proto::ICMPV6 => 2,
        _ => 3,
    }
}

impl<X: Default> FlowTable<X> {
    pub fn new(cfg: FlowConfig) -> Self {
        let cap = cfg.max_flows.min(1 << 16);
        FlowTable {
            index: HashTable::with_capacity(cap),
            hasher: DefaultHashBuilder::default(),
            slots: Vec::with_capacity(cap),
            live: Vec::with_capacity(cap),
            free: Vec::new(),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; CLASSES],
            len: 0,
            emergency: false,
            stats: TableStats::default(),
            cfg,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn stats(&self) -> &TableStats {
        &self.stats
    }
    pub fn in_emergency(&self) -> bool {
        self.emergency
    }
    pub fn flow(&self, id: FlowId) -> &Flow<X> {
        &self.slots[id as usize]
    }
    pub fn flow_mut(&mut self, id: FlowId) -> &mut Flow<X> {
        &mut self.slots[id as usize]
    }

    /// Whether slot `id` holds the live flow `flow_id` (a slot is reused once its flow ends).
    pub fn is_live(&self, id: FlowId, flow_id: u64) -> bool {
        self.live.get(id as usize).copied().unwrap_or(false)
            && self.slots[id as usize].flow_id == flow_id
    }

    /// Account one packet with tuple `t` at `now_ns`: find or create its flow, update counters and
    /// TCP state. Flows this ends (an expired predecessor, an eviction) are pushed to `out`.
    pub fn update(
        &mut self,
        now_ns: u64,
        t: &Tuple,
        pkt_len: u32,
        tcp_flags: u8,
        out: &mut Vec<Ended<X>>,
    ) -> (FlowId, Dir) {
        let (key, src_lo) = FlowKey::from_tuple(t);
        let h = self.hasher.hash_one(key);
        let slots = &self.slots;
        let found = self
            .index
            .find(h, |&i| slots[i as usize].key == key)
            .copied();
        let id = match found {
            Some(id) => {
                let f = &self.slots[id as usize];
                let expired = now_ns > f.last_ns.saturating_add(self.timeout_ns(f.class));
                let reused = t.proto == ip_proto::TCP
                    && f.tcp_state == TcpState::Closed
                    && tcp_flags & (SYN | ACK) == SYN;
                if expired || reused {
                    let log = if expired {
                        f.last_ns.saturating_add(self.timeout_ns(f.class))
                    } else {
                        now_ns
                    };
                    self.finish(id, EndReason::Timeout, log, out);
                    self.create(now_ns, key, h, src_lo, t, tcp_flags, out)
                } else {
                    id
                }
            }
            None => self.create(now_ns, key, h, src_lo, t, tcp_flags, out),
        };
        let f = &mut self.slots[id as usize];
        let dir = if src_lo == f.client_is_lo {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let d = dir as usize;
        f.pkts[d] += 1;
        f.bytes[d] += u64::from(pkt_len);
        f.last_ns = f.last_ns.max(now_ns);
        if t.proto == ip_proto::TCP {
            f.tcp_flags[d] |= tcp_flags;
            f.tcp_state = tcp::advance(
                f.tcp_state,
                tcp_flags,
                dir == Dir::ToServer,
                &mut f.fin_by_client,
            );
            f.state = match f.tcp_state {
                TcpState::Closed => FlowState::Closed,
                TcpState::None | TcpState::SynSent | TcpState::SynRecv => f.state,
                _ => FlowState::Established,
            };
        } else {
            if matches!(t.proto, ip_proto::ICMP | ip_proto::ICMPV6) && f.icmp[d].is_none() {
                f.icmp[d] = Some((t.sport as u8, t.dport as u8));
            }
            if f.pkts[0] > 0 && f.pkts[1] > 0 && f.state == FlowState::New {
                f.state = FlowState::Established;
            }
        }
        if Self::class_of(&self.slots[id as usize]) != self.slots[id as usize].class {
            self.relink(id, now_ns);
        }
        (id, dir)
    }

    /// Swap client and server of a flow that has seen one direction only (an application
    /// response seen first). Returns whether it flipped.
    pub fn flip(&mut self, id: FlowId) -> bool {
        let f = &mut self.slots[id as usize];
        if f.pkts[1] != 0 {
            return false;
        }
        f.client_is_lo = !f.client_is_lo;
        f.pkts.swap(0, 1);
        f.bytes.swap(0, 1);
        f.tcp_flags.swap(0, 1);
        f.app.swap(0, 1);
        f.app_probe.swap(0, 1);
        f.icmp.swap(0, 1);
        f.fin_by_client = !f.fin_by_client;
        true
    }

    /// End every flow idle past its timeout at `now_ns`.
    ///
    /// Lists are ordered by link time, which trails the last packet time: a head whose link
    /// time is recent enough proves every flow behind it alive. A head linked long ago but
    /// seen since gets a second chance (moved to the tail), so each flow is moved at most once
    /// per timeout period instead of once per packet.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Ended<X>>) {
        for c in 0..CLASSES {
            let tmo = self.timeout_ns(c as u8);
            loop {
                let head = self.lists[c].head;
                if head == NIL {
                    break;
                }
                let f = &self.slots[head as usize];
                if now_ns <= f.link_ns.saturating_add(tmo) {
                    break;
                }
                let deadline = f.last_ns.saturating_add(tmo);
                if now_ns > deadline {
                    self.finish(head, EndReason::Timeout, deadline, out);
                } else {
                    self.relink(head, now_ns);
                }
            }
        }
        self.maybe_leave_emergency();
    }

    /// End every flow: the input is over.
    pub fn flush(&mut self, now_ns: u64, out: &mut Vec<Ended<X>>) {
        while self.flush_some(now_ns, out, usize::MAX) {}
    }

    /// End up to `max` flows because the input is over; true while flows remain. Lets a caller
    /// write the records in bounded chunks rather than holding every live flow's at once.
    pub fn flush_some(&mut self, now_ns: u64, out: &mut Vec<Ended<X>>, max: usize) -> bool {
        let mut n = 0;
        for c in 0..CLASSES {
            while self.lists[c].head != NIL {
                if n == max {
                    return true;
                }
                let head = self.lists[c].head;
                let log = now_ns.max(self.slots[head as usize].last_ns);
                self.finish(head, EndReason::Shutdown, log, out);
                n += 1;
            }
        }
        false
    }

    /// The record a flow would be logged with now.
    pub fn record(&self, id: FlowId, reason: EndReason, log_ns: u64) -> FlowRecord {
        let f = &self.slots[id as usize];
        let k = &f.key;
        let mut tuple = self.tuple(id);
        let icmp = if matches!(k.proto, ip_proto::ICMP | ip_proto::ICMPV6) {
            let first = f.icmp[0].or(f.icmp[1]).unwrap_or((0, 0));
            tuple.sport = u16::from(first.0);
            tuple.dport = u16::from(first.1);
            Some(IcmpSummary {
                icmp_type: first.0,
                icmp_code: first.1,
                response: if f.icmp[0].is_some() { f.icmp[1] } else { None },
            })
        } else {
            None
        };
        let app_proto = if f.app[0] != AppProto::Unknown && f.app[0] != AppProto::Failed {
            f.app[0]
        } else if f.app[1].is_known() {
            f.app[1]
        } else if f.app[0] == AppProto::Failed || f.app[1] == AppProto::Failed {
            AppProto::Failed
        } else {
            AppProto::Unknown
        };
        FlowRecord {
            flow_id: f.flow_id,
            tuple,
            log_ns,
            start_ns: f.start_ns,
            end_ns: f.last_ns,
            pkts_toserver: f.pkts[0],
            pkts_toclient: f.pkts[1],
            bytes_toserver: f.bytes[0],
            bytes_toclient: f.bytes[1],
            state: f.state,
            reason,
            alerted: f.alerted,
            tcp: (k.proto == ip_proto::TCP).then_some(TcpSummary {
                flags_ts: f.tcp_flags[0],
                flags_tc: f.tcp_flags[1],
                state: f.tcp_state,
            }),
            icmp,
            app_proto,
            app_proto_ts: f.app[0],
            app_proto_tc: f.app[1],
            tunnel_outer: f.tunnel_outer,
            bypass: islet_event::Bypass::None,
            bypassed: [0; 4],
        }
    }

    fn timeout_ns(&self, class: u8) -> u64 {
        let set = if self.emergency {
            &self.cfg.emergency_timeouts
        } else {
            &self.cfg.timeouts
        };
        let t = &set[usize::from(class) / 3];
        let secs = match class % 3 {
            0 => t.new,
            1 => t.established,
            _ => t.closed,
        };
        u64::from(secs) * 1_000_000_000
    }

    fn class_of(f: &Flow<X>) -> u8 {
        let s = match f.state {
            FlowState::New => 0,
            FlowState::Established | FlowState::Bypassed => 1,
            FlowState::Closed => 2,
        };
        (proto_group(f.key.proto) * 3 + s) as u8
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the packet's key and hash, computed once by the caller on the per-packet path"
    )]
    fn create(
        &mut self,
        now_ns: u64,
        key: FlowKey,
        hash: u64,
        src_lo: bool,
        t: &Tuple,
        tcp_flags: u8,
        out: &mut Vec<Ended<X>>,
    ) -> FlowId {
        if self.len >= self.cfg.max_flows {
            self.make_room(now_ns, out);
        }
        // A SYN/ACK first means we missed the SYN: its sender is the server.
        let synack_first =
            self.cfg.midstream && t.proto == ip_proto::TCP && tcp_flags & (SYN | ACK) == SYN | ACK;
        let client_is_lo = src_lo != synack_first;
        let flow_id = flow_id(&key, now_ns);
        let flow = Flow {
            key,
            client_is_lo,
            flow_id,
            start_ns: now_ns,
            last_ns: now_ns,
            pkts: [0; 2],
            bytes: [0; 2],
            tcp_flags: [0; 2],
            tcp_state: TcpState::None,
            state: FlowState::New,
            app: [AppProto::Unknown; 2],
            app_probe: [0; 2],
            icmp: [None; 2],
            tunnel_outer: false,
            alerted: false,
            fin_by_client: false,
            hash,
            link_ns: now_ns,
            class: 0,
            prev: NIL,
            next: NIL,
            ext: X::default(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = flow;
                self.live[id as usize] = true;
                id
            }
            None => {
                self.slots.push(flow);
                self.live.push(true);
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, id, |&i| slots[i as usize].hash);
        let c = Self::class_of(&self.slots[id as usize]);
        self.slots[id as usize].class = c;
        self.push_back(c, id);
        self.len += 1;
        self.stats.created += 1;
        self.stats.active_max = self.stats.active_max.max(self.len as u64);
        match t.proto {
            ip_proto::TCP => self.stats.tcp += 1,
            ip_proto::UDP => self.stats.udp += 1,
            ip_proto::ICMP => self.stats.icmpv4 += 1,
            ip_proto::ICMPV6 => self.stats.icmpv6 += 1,
            _ => self.stats.other += 1,
        }
        id
    }

    /// The table is full: enter emergency mode (shorter timeouts) and, if that frees nothing,
    /// evict the least recently seen flow with reason `forced`.
    fn make_room(&mut self, now_ns: u64, out: &mut Vec<Ended<X>>) {
        if !self.emergency {
            self.emergency = true;
            self.stats.emergency_entered += 1;
        }
        self.expire(now_ns, out);
        if self.len < self.cfg.max_flows {
            return;
        }
        // The least recently linked flow of all lists (link time trails the last packet, so this
        // is the least recently seen one up to the lazy-relink slack).
        let oldest = self
            .lists
            .iter()
            .filter(|l| l.head != NIL)
            .map(|l| l.head)
            .min_by_key(|&h| self.slots[h as usize].link_ns);
        if let Some(id) = oldest {
            self.finish(id, EndReason::Forced, now_ns, out);
        }
    }

    fn maybe_leave_emergency(&mut self) {
        let pct = 100 - usize::from(self.cfg.emergency_recovery_pct.min(100));
        if self.emergency && self.len * 100 < self.cfg.max_flows * pct {
            self.emergency = false;
        }
    }

    fn finish(&mut self, id: FlowId, reason: EndReason, log_ns: u64, out: &mut Vec<Ended<X>>) {
        let ext = std::mem::take(&mut self.slots[id as usize].ext);
        out.push((self.record(id, reason, log_ns), ext));
        match reason {
            EndReason::Timeout => self.stats.ended_timeout += 1,
            EndReason::Forced => self.stats.ended_forced += 1,
            EndReason::Shutdown => self.stats.ended_shutdown += 1,
        }
        let f = &self.slots[id as usize];
        let (h, class) = (f.hash, f.class);
        if let Ok(e) = self.index.find_entry(h, |&i| i == id) {
            e.remove();
        }
        self.unlink(class, id);
        self.live[id as usize] = false;
        self.free.push(id);
        self.len -= 1;
    }

    /// Move a flow to the tail of its (possibly new) class list.
    fn relink(&mut self, id: FlowId, now_ns: u64) {
        let f = &self.slots[id as usize];
        let (old, new) = (f.class, Self::class_of(f));
        self.unlink(old, id);
        let f = &mut self.slots[id as usize];
        f.class = new;
        f.link_ns = f.link_ns.max(now_ns);
        self.push_back(new, id);
    }

    fn push_back(&mut self, class: u8, id: u32) {
        let l = &mut self.lists[usize::from(class)];
        let tail = l.tail;
        {
            let f = &mut self.slots[id as usize];
            f.prev = tail;
            f.next = NIL;
        }
        if tail == NIL {
            self.lists[usize::from(class)].head = id;
        } else {
            self.slots[tail as usize].next = id;
        }
        self.lists[usize::from(class)].tail = id;
    }

    fn unlink(&mut self, class: u8, id: u32) {
        let (prev, next) = {
            let f = &self.slots[id as usize];
            (f.prev, f.next)
        };
        if prev == NIL {
            self.lists[usize::from(class)].head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[usize::from(class)].tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let f = &mut self.slots[id as usize];
        f.prev = NIL;
        f.next = NIL;
    }

    /// Bytes of state per flow held in the table (slab entry, index entry, liveness bit).
    pub const fn bytes_per_flow() -> usize {
        std::mem::size_of::<Flow<X>>() + std::mem::size_of::<u32>() + 1 + 1
    }

    /// The flow's tuple oriented client → server.
    pub fn tuple(&self, id: FlowId) -> Tuple {
        let f = &self.slots[id as usize];
        let k = &f.key;
        let (src, dst, sport, dport) = if f.client_is_lo {
            (k.lo_addr, k.hi_addr, k.lo_port, k.hi_port)
        } else {
            (k.hi_addr, k.lo_addr, k.hi_port, k.lo_port)
        };
        Tuple {
            src,
            dst,
            family: k.family,
            proto: k.proto,
            sport,
            dport,
            vlan: k.vlan,
            vlan_len: k.vlan_len,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use islet_wire::tcp::flags::{FIN, PSH};

    const S: u64 = 1_000_000_000;

    fn tcp(src: u8, sport: u16, dst: u8, dport: u16) -> Tuple {
        let mut t = Tuple {
            proto: 6,
            sport,
            dport,
            ..Tuple::default()
        };
        t.src[..4].copy_from_slice(&[10, 0, 0, src]);
        t.dst[..4].copy_from_slice(&[10, 0, 0, dst]);
        t
    }

    fn rev(t: &Tuple) -> Tuple {
        Tuple {
            src: t.dst,
            dst: t.src,
            sport: t.dport,
            dport: t.sport,
            ..*t
        }
    }

    #[test]
    fn a_session_counts_both_ways_and_closes() {
        let mut tb: FlowTable = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        let c = tcp(1, 40000, 2, 80);
        let s = rev(&c);
        for (t, f, n) in [
            (&c, SYN, 74),
            (&s, SYN | ACK, 74),
            (&c, ACK, 66),
            (&c, PSH | ACK, 200),
            (&s, FIN | ACK, 66),
            (&c, FIN | ACK, 66),
            (&s, ACK, 66),
        ] {
            tb.update(S, t, n, f, &mut out);
        }
        assert!(out.is_empty());
        tb.flush(2 * S, &mut out);
        let r = &out[0].0;
        assert_eq!((r.pkts_toserver, r.pkts_toclient), (4, 3));
        assert_eq!((r.bytes_toserver, r.bytes_toclient), (406, 206));
        assert_eq!(r.tuple.sport, 40000);
        assert_eq!(r.state, FlowState::Closed);
        assert_eq!(r.tcp.unwrap().state, TcpState::Closed);
        assert_eq!(r.reason, EndReason::Shutdown);
    }

    #[test]
    fn synack_first_makes_its_sender_the_server() {
        let mut tb: FlowTable = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        let s = tcp(2, 80, 1, 40000);
        tb.update(S, &s, 60, SYN | ACK, &mut out);
        tb.flush(S, &mut out);
        assert_eq!((out[0].0.tuple.sport, out[0].0.tuple.dport), (40000, 80));
        assert_eq!((out[0].0.pkts_toserver, out[0].0.pkts_toclient), (0, 1));
    }

    #[test]
    fn idle_flow_times_out_at_its_deadline() {
        let mut tb: FlowTable = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        let mut u = tcp(1, 5353, 2, 53);
        u.proto = 17;
        tb.update(10 * S, &u, 80, 0, &mut out);
        tb.expire(30 * S, &mut out);
        assert!(out.is_empty());
        tb.expire(41 * S, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.reason, EndReason::Timeout);
        assert_eq!(out[0].0.log_ns, 40 * S);
        assert!(tb.is_empty());
    }

    #[test]
    fn a_packet_after_the_timeout_starts_a_new_flow() {
        let mut tb: FlowTable = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        let mut u = tcp(1, 5353, 2, 53);
        u.proto = 17;
        tb.update(S, &u, 80, 0, &mut out);
        tb.update(100 * S, &u, 80, 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(tb.len(), 1);
    }

    #[test]
    fn full_table_evicts_oldest_as_forced() {
        let cfg = FlowConfig {
            max_flows: 4,
            ..FlowConfig::default()
        };
        let mut tb: FlowTable = FlowTable::new(cfg);
        let mut out = Vec::new();
        for p in 0..10u16 {
            tb.update(
                S + u64::from(p),
                &tcp(1, 1000 + p, 2, 80),
                60,
                SYN,
                &mut out,
            );
        }
        assert_eq!(tb.len(), 4);
        assert_eq!(out.len(), 6);
        assert!(out.iter().all(|(r, _)| r.reason == EndReason::Forced));
        assert_eq!(out[0].0.tuple.sport, 1000);
        assert!(tb.stats().emergency_entered >= 1);
    }

    #[test]
    fn idle_flow_state_fits_the_budget() {
        let n = FlowTable::<Option<Box<u8>>>::bytes_per_flow();
        println!(
            "bytes per idle flow: {n} (Flow struct {})",
            std::mem::size_of::<Flow>()
        );
        assert!(n <= 256, "{n}");
    }
}
