//! A flow worker: owns one flow table and one output buffer; nothing here is shared.

use islet_event::eve::{self, EveOptions};
use islet_event::{AppProto, FlowRecord};
use islet_flow::{Dir, FlowConfig, FlowTable, TableStats};
use islet_l7::detect::{self, MAX_PROBE_PACKETS, Probe, Transport};
use islet_wire::decode::{Decoded, Outer};
use islet_wire::ip_proto;

/// How often (in capture time) idle flows are swept.
const EXPIRE_EVERY_NS: u64 = 1_000_000_000;

#[derive(Debug)]
pub(crate) struct Worker {
    table: FlowTable,
    records: Vec<FlowRecord>,
    /// Encoded EVE lines waiting to be written.
    pub(crate) out: Vec<u8>,
    eve: EveOptions,
    next_expire_ns: u64,
    pub(crate) flows_logged: u64,
}

impl Worker {
    pub(crate) fn new(cfg: FlowConfig, eve: EveOptions) -> Self {
        Worker {
            table: FlowTable::new(cfg),
            records: Vec::with_capacity(64),
            out: Vec::with_capacity(1 << 18),
            eve,
            next_expire_ns: 0,
            flows_logged: 0,
        }
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

    /// Account one decoded packet.
    pub(crate) fn packet(&mut self, ts: u64, frame: &[u8], d: &Decoded) {
        let (id, dir) = self
            .table
            .update(ts, &d.tuple, d.pkt_len, d.tcp_flags, &mut self.records);
        if d.payload_len > 0 {
            self.probe(id, dir, d.tuple.proto, d.payload(frame));
        }
        self.tick(ts);
    }

    fn probe(&mut self, id: u32, dir: Dir, proto: u8, payload: &[u8]) {
        let transport = match proto {
            ip_proto::TCP => Transport::Tcp,
            ip_proto::UDP => Transport::Udp,
            _ => return,
        };
        let d = dir as usize;
        let f = self.table.flow(id);
        if f.app[d] != AppProto::Unknown || f.app_probe[d] >= MAX_PROBE_PACKETS {
            return;
        }
        let k = &f.key;
        let (cport, sport) = if f.client_is_lo {
            (k.lo_port, k.hi_port)
        } else {
            (k.hi_port, k.lo_port)
        };
        match detect::probe(transport, payload, dir == Dir::ToServer, cport, sport) {
            Probe::Match { proto, reverse } => {
                let d = if reverse && self.table.flip(id) { 1 } else { d };
                self.table.flow_mut(id).app[d] = proto;
            }
            Probe::NoMatch | Probe::NeedMore => {
                let f = self.table.flow_mut(id);
                f.app_probe[d] += 1;
                if f.app_probe[d] >= MAX_PROBE_PACKETS || payload.len() >= 512 {
                    f.app[d] = AppProto::Failed;
                    f.app_probe[d] = MAX_PROBE_PACKETS;
                }
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
    pub(crate) fn finish(&mut self, now: u64) {
        self.table.expire(now, &mut self.records);
        self.table.flush(now, &mut self.records);
        self.encode();
    }

    fn encode(&mut self) {
        for r in self.records.drain(..) {
            eve::write_flow(&mut self.out, &r, &self.eve);
            self.flows_logged += 1;
        }
    }
}
