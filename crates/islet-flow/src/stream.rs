//! TCP stream reassembly for one direction: delivers in-order bytes to a sink.
//!
//! Policy:
//! - **first wins** on overlap: bytes already delivered or buffered are kept, a retransmission
//!   with other content is reported as [`StreamEvent::OverlapDifferentData`] (Suricata's
//!   `stream.reassembly_overlap_different_data`) and its new bytes are ignored;
//! - out-of-order segments wait in a buffer bounded by [`StreamConfig::max_buffered`]; when it is
//!   full, the hole before them is declared a gap ([`StreamEvent::Gap`]) and delivery resumes
//!   at the first buffered byte;
//! - at most [`StreamConfig::depth`] bytes are delivered per direction (Suricata's
//!   `stream.reassembly.depth`), then [`StreamEvent::DepthReached`] once.
//!
//! Sequence numbers wrap; positions are kept relative to the next expected byte, so a stream
//! crossing 2^32 is handled.

use std::collections::BTreeMap;

/// Reassembly bounds.
#[derive(Clone, Copy, Debug)]
pub struct StreamConfig {
    /// Most bytes delivered per direction.
    pub depth: u64,
    /// Most out-of-order bytes held per direction.
    pub max_buffered: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            depth: 1 << 20,
            max_buffered: 256 << 10,
        }
    }
}

/// Something the reassembler noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// Bytes were skipped: the data before a buffered segment never came.
    Gap { missing: u64 },
    /// A retransmission carried other bytes than the ones already accepted.
    OverlapDifferentData,
    /// The depth was reached; later bytes are not delivered.
    DepthReached,
}

impl StreamEvent {
    /// Suricata's stream event name (without the `stream.` prefix).
    pub fn name(self) -> &'static str {
        match self {
            StreamEvent::Gap { .. } => "reassembly_seq_gap",
            StreamEvent::OverlapDifferentData => "reassembly_overlap_different_data",
            StreamEvent::DepthReached => "reassembly_depth_reached",
        }
    }
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Sequence number of the next byte to deliver; `None` until the first segment (or SYN).
    next_seq: Option<u32>,
    /// Bytes delivered so far (position of `next_seq`).
    delivered: u64,
    /// Out-of-order data by absolute position; pieces never overlap.
    pending: BTreeMap<u64, Vec<u8>>,
    buffered: usize,
    /// A short window of the last delivered bytes, to check retransmissions against.
    recent: Vec<u8>,
    depth_reported: bool,
}

/// How many delivered bytes are kept to compare retransmissions with.
const RECENT_WINDOW: usize = 256;

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The SYN (or SYN/ACK) carried `isn`: data starts at `isn + 1`.
    pub fn set_isn(&mut self, isn: u32) {
        if self.next_seq.is_none() {
            self.next_seq = Some(isn.wrapping_add(1));
        }
    }

    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Take a segment starting at `seq`. In-order bytes go to `sink`, events to `events`.
    pub fn segment(
        &mut self,
        cfg: &StreamConfig,
        seq: u32,
        data: &[u8],
        sink: &mut impl FnMut(&[u8]),
        events: &mut impl FnMut(StreamEvent),
    ) {
        if data.is_empty() {
            return;
        }
        let next = *self.next_seq.get_or_insert(seq);
        // Signed distance from the next expected byte, wrap-safe.
        let d = i64::from(seq.wrapping_sub(next) as i32);
        let pos = self.delivered as i64 + d;
        if pos < 0 {
            // Before the start of the stream: keep only what lies after it.
            let skip = (-pos) as usize;
            if skip >= data.len() {
                return;
            }
            return self.place(cfg, 0, &data[skip..], sink, events);
        }
        self.place(cfg, pos as u64, data, sink, events);
    }

    fn place(
        &mut self,
        cfg: &StreamConfig,
        pos: u64,
        data: &[u8],
        sink: &mut impl FnMut(&[u8]),
        events: &mut impl FnMut(StreamEvent),
    ) {
        let end = pos + data.len() as u64;
        // Part already delivered: compare with what we still remember, then drop it.
        let (pos, data) = if pos < self.delivered {
            let overlap = (self.delivered.min(end) - pos) as usize;
            let back = (self.delivered - pos) as usize;
            if back <= self.recent.len() {
                let start = self.recent.len() - back;
                if self.recent[start..start + overlap] != data[..overlap] {
                    events(StreamEvent::OverlapDifferentData);
                }
            }
            if end <= self.delivered {
                return;
            }
            (self.delivered, &data[overlap..])
        } else {
            (pos, data)
        };
        if pos == self.delivered && self.pending.is_empty() {
            // In order with nothing waiting (the common case): deliver straight from the
            // segment, no copy into the out-of-order map.
            self.deliver(cfg, data, sink, events);
            return;
        }
        self.buffer(pos, data, events);
        self.drain(cfg, sink, events);
        if self.buffered > cfg.max_buffered
            && let Some((&first, _)) = self.pending.iter().next()
        {
            events(StreamEvent::Gap {
                missing: first - self.delivered,
            });
            self.skip_to(first);
            self.drain(cfg, sink, events);
        }
        // Hard bound even if one segment alone exceeds the buffer.
        while self.buffered > cfg.max_buffered {
            let Some((&k, _)) = self.pending.iter().next_back() else {
                break;
            };
            if let Some(v) = self.pending.remove(&k) {
                self.buffered -= v.len();
            }
        }
    }

    /// Insert `data` at `pos` into the pending map, first-wins against pieces already there.
    /// Other bytes than those buffered are reported once per segment, however many pieces
    /// they overlap: a full-size segment laid over a run of tiny ones would otherwise make
    /// one event per piece (~90 anomaly records from one packet; issue 18's hostile-input
    /// benchmark).
    fn buffer(&mut self, pos: u64, data: &[u8], events: &mut impl FnMut(StreamEvent)) {
        let end = pos + data.len() as u64;
        let mut differs = false;
        let mut cursor = pos;
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        // Existing pieces that may overlap [pos, end).
        let start_key = self
            .pending
            .range(..=pos)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(pos);
        for (&k, v) in self.pending.range(start_key..end) {
            let (ks, ke) = (k, k + v.len() as u64);
            if ke <= cursor {
                continue;
            }
            if ks > cursor {
                pieces.push((cursor, ks.min(end)));
            }
            let (os, oe) = (ks.max(pos), ke.min(end));
            if os < oe && !differs {
                let a = &v[(os - ks) as usize..(oe - ks) as usize];
                let b = &data[(os - pos) as usize..(oe - pos) as usize];
                differs = a != b;
            }
            cursor = cursor.max(ke);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            pieces.push((cursor, end));
        }
        if differs {
            events(StreamEvent::OverlapDifferentData);
        }
        for (s, e) in pieces {
            let v = data[(s - pos) as usize..(e - pos) as usize].to_vec();
            self.buffered += v.len();
            self.pending.insert(s, v);
        }
    }

    fn drain(
        &mut self,
        cfg: &StreamConfig,
        sink: &mut impl FnMut(&[u8]),
        events: &mut impl FnMut(StreamEvent),
    ) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.delivered {
                break;
            }
            let v = entry.remove();
            self.buffered -= v.len();
            self.deliver(cfg, &v, sink, events);
        }
    }

    /// Hand in-order bytes at `delivered` to the sink, within the depth.
    fn deliver(
        &mut self,
        cfg: &StreamConfig,
        v: &[u8],
        sink: &mut impl FnMut(&[u8]),
        events: &mut impl FnMut(StreamEvent),
    ) {
        let room = cfg.depth.saturating_sub(self.delivered);
        let take = (v.len() as u64).min(room) as usize;
        if take > 0 {
            sink(&v[..take]);
        }
        if take < v.len() && !self.depth_reported {
            self.depth_reported = true;
            events(StreamEvent::DepthReached);
        }
        self.remember(v);
        self.advance(v.len() as u64);
    }

    fn remember(&mut self, v: &[u8]) {
        if self.recent.capacity() == 0 {
            self.recent.reserve_exact(RECENT_WINDOW);
        }
        if v.len() >= RECENT_WINDOW {
            self.recent.clear();
            self.recent.extend_from_slice(&v[v.len() - RECENT_WINDOW..]);
        } else {
            let excess = (self.recent.len() + v.len()).saturating_sub(RECENT_WINDOW);
            self.recent.drain(..excess);
            self.recent.extend_from_slice(v);
        }
    }

    fn advance(&mut self, n: u64) {
        self.delivered += n;
        if let Some(s) = self.next_seq.as_mut() {
            *s = s.wrapping_add(n as u32);
        }
    }

    fn skip_to(&mut self, pos: u64) {
        let n = pos - self.delivered;
        self.recent.clear();
        self.advance(n);
    }

    /// The stream is over: deliver what is buffered, declaring the holes as gaps.
    pub fn finish(
        &mut self,
        cfg: &StreamConfig,
        sink: &mut impl FnMut(&[u8]),
        events: &mut impl FnMut(StreamEvent),
    ) {
        while let Some((&first, _)) = self.pending.iter().next() {
            events(StreamEvent::Gap {
                missing: first - self.delivered,
            });
            self.skip_to(first);
            self.drain(cfg, sink, events);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    fn run(
        r: &mut Reassembler,
        cfg: &StreamConfig,
        segs: &[(u32, &[u8])],
    ) -> (Vec<u8>, Vec<StreamEvent>) {
        let mut out = Vec::new();
        let mut ev = Vec::new();
        for (seq, d) in segs {
            r.segment(cfg, *seq, d, &mut |b| out.extend_from_slice(b), &mut |e| {
                ev.push(e)
            });
        }
        (out, ev)
    }

    #[test]
    fn out_of_order_is_delivered_in_order() {
        let mut r = Reassembler::new();
        r.set_isn(999);
        let (out, ev) = run(
            &mut r,
            &StreamConfig::default(),
            &[(1005, b"world"), (1000, b"hello")],
        );
        assert_eq!(out, b"helloworld");
        assert!(ev.is_empty());
    }

    #[test]
    fn issue_18_a_segment_over_many_buffered_pieces_is_one_overlap_event() {
        let mut r = Reassembler::new();
        r.set_isn(0);
        // A hole at 1..101, then 8-byte pieces at every other 8-byte slot.
        let pieces: Vec<(u32, &[u8])> = (0..100u32)
            .map(|i| (101 + 16 * i, &b"AAAAAAAA"[..]))
            .collect();
        let (_, ev) = run(&mut r, &StreamConfig::default(), &pieces);
        assert!(ev.is_empty());
        // One full-size segment of other bytes over all of them: one event, not a hundred.
        let full = [b'B'; 1_600];
        let (out, ev) = run(&mut r, &StreamConfig::default(), &[(101, &full)]);
        assert_eq!(ev, vec![StreamEvent::OverlapDifferentData]);
        assert!(out.is_empty(), "the hole before them is still open");
        // The first bytes won: fill the hole and read them back.
        let (out, _) = run(&mut r, &StreamConfig::default(), &[(1, &[b'C'; 100])]);
        assert_eq!(&out[100..108], b"AAAAAAAA");
        assert_eq!(&out[108..116], b"BBBBBBBB");
    }

    #[test]
    fn retransmission_with_other_bytes_keeps_the_first() {
        let mut r = Reassembler::new();
        r.set_isn(0);
        let (out, ev) = run(
            &mut r,
            &StreamConfig::default(),
            &[(1, b"GET /a"), (1, b"GET /b HTTP")],
        );
        assert_eq!(out, b"GET /a HTTP");
        assert_eq!(ev, vec![StreamEvent::OverlapDifferentData]);
    }

    #[test]
    fn sequence_wrap_is_seamless() {
        let mut r = Reassembler::new();
        r.set_isn(u32::MAX - 3);
        let (out, _) = run(
            &mut r,
            &StreamConfig::default(),
            &[(u32::MAX - 2, b"abc"), (0, b"def")],
        );
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn full_buffer_declares_a_gap() {
        let cfg = StreamConfig {
            depth: 1 << 20,
            max_buffered: 8,
        };
        let mut r = Reassembler::new();
        r.set_isn(0);
        let (out, ev) = run(&mut r, &cfg, &[(11, b"0123456789")]);
        assert_eq!(out, b"0123456789");
        assert_eq!(ev, vec![StreamEvent::Gap { missing: 10 }]);
    }

    #[test]
    fn depth_stops_delivery() {
        let cfg = StreamConfig {
            depth: 4,
            max_buffered: 64,
        };
        let mut r = Reassembler::new();
        r.set_isn(0);
        let (out, ev) = run(&mut r, &cfg, &[(1, b"abcdef"), (7, b"gh")]);
        assert_eq!(out, b"abcd");
        assert_eq!(ev, vec![StreamEvent::DepthReached]);
    }

    proptest! {
        /// Any segmentation of a stream, delivered in any order with duplicates, reassembles to
        /// the original bytes.
        #[test]
        fn any_order_any_duplicates_reassembles(
            data in proptest::collection::vec(any::<u8>(), 1..2000),
            cuts in proptest::collection::vec(1usize..200, 1..40),
            order in proptest::collection::vec(any::<u32>(), 1..80),
            isn in any::<u32>(),
        ) {
            let mut segs = Vec::new();
            let mut at = 0;
            for c in cuts.iter().cycle() {
                if at >= data.len() { break; }
                let e = (at + c).min(data.len());
                segs.push((at, e));
                at = e;
            }
            let mut sched: Vec<(usize, usize)> = segs.clone();
            for (i, o) in order.iter().enumerate() {
                let j = *o as usize % segs.len();
                if i % 3 == 0 {
                    sched.push(segs[j]);
                } else {
                    let n = sched.len();
                    sched.swap(i % n, j % n);
                }
            }
            let cfg = StreamConfig { depth: 1 << 20, max_buffered: 1 << 20 };
            let mut r = Reassembler::new();
            r.set_isn(isn);
            let mut out = Vec::new();
            let mut ev = Vec::new();
            for (s, e) in sched {
                let seq = isn.wrapping_add(1).wrapping_add(s as u32);
                r.segment(&cfg, seq, &data[s..e], &mut |b| out.extend_from_slice(b), &mut |x| ev.push(x));
            }
            r.finish(&cfg, &mut |b| out.extend_from_slice(b), &mut |x| ev.push(x));
            prop_assert_eq!(out, data);
            prop_assert!(ev.is_empty(), "{:?}", ev);
        }
    }
}
