//! IPv4 and IPv6 fragment reassembly, in constant work per fragment.
//!
//! Policy: **first wins**. Bytes already received for a datagram are kept when a later
//! fragment overlaps them (the overlap is reported as `ipv4.frag_overlap`/`ipv6.frag_overlap`
//! and counted); this is the "first" policy of Snort/Suricata's target-based defrag, chosen
//! because it cannot be steered by a late, forged fragment. Only bytes not yet held are stored,
//! so overlaps cannot multiply memory.
//!
//! Bounds (all in [`DefragConfig`]): datagrams and bytes held in total, and datagrams and bytes
//! held per source address. Reaching one **evicts the oldest datagram** of the scope that is
//! full (that source, or the whole table): the datagrams of a flood age out in arrival order
//! while a fresh datagram, which usually completes within milliseconds, is still reassembled.
//! Every eviction and refusal is counted by reason ([`DefragDrops`]). Datagrams time out
//! [`DefragConfig::timeout_ns`] of capture time after their first fragment.
//!
//! Why it is constant work: datagrams live in a slab threaded on two intrusive FIFO lists (one
//! over the whole table, one per source), oldest first, so eviction and expiry take the head
//! of a list instead of scanning; fragment bytes go to fixed-size blocks from one pool
//! (`pool.rs`) whose chains are freed in O(1); the bytes a datagram already holds are a short
//! sorted list of at most [`MAX_SPANS`] ranges. A fragment costs one hash lookup, at most
//! [`MAX_SPANS`] range steps, a copy of its bytes, and one eviction per block it needs when the
//! table is full (each datagram is evicted once, so evictions are amortised over the fragments
//! that created them). Nothing is allocated per fragment once the slab, the maps and the pool
//! have grown to their working size; none of them grows past its bound.

mod pool;

use hashbrown::HashMap;
pub use islet_event::DefragDrops;
use islet_wire::decode::{Decoded, Frag};
use islet_wire::{DecodeEvent, Family};
use pool::{BLOCK, Chain, NIL, Pool};

/// Most fragments kept for one datagram (8-byte fragments could otherwise make 8,192).
pub const MAX_FRAGS_PER_DATAGRAM: usize = 256;
/// Largest reassembled datagram payload.
pub const MAX_DATAGRAM: usize = 65_535;
/// Most disjoint byte ranges one datagram may hold at once (the holes between them are what is
/// still missing). In-order or reverse-order arrival keeps one or two; an attacker sending
/// every other 8-byte piece would otherwise make a search over 4,096. A fragment that would
/// make more is refused (`too_many_fragments`).
pub const MAX_SPANS: usize = 16;
/// Longest prefix kept for a datagram: the offset-0 fragment's link, tunnel and IP headers up
/// to its data (IPv6: through the Fragment header). A longer one is refused (`oversized`).
pub const MAX_PREFIX: usize = 4_096;
/// Stream header of one stored piece: offset and length, 16 bits each.
const PIECE_HDR: usize = 4;
/// The offset that marks the prefix piece (a data piece never starts at 65,535: it would end
/// past [`MAX_DATAGRAM`]).
const PREFIX_TAG: u16 = u16::MAX;
/// `Slot::total` before the last fragment is seen.
const NO_TOTAL: u32 = u32::MAX;

/// Defragmentation bounds. Totals follow Suricata's `defrag` section.
#[derive(Clone, Debug)]
pub struct DefragConfig {
    /// Most datagrams under reassembly at once.
    pub max_trackers: usize,
    /// Most bytes held at once (charged in 64-byte blocks, headers included).
    pub max_bytes: usize,
    /// Most datagrams under reassembly from one source address.
    pub max_trackers_per_source: usize,
    /// Most bytes held for one source address.
    pub max_bytes_per_source: usize,
    /// A datagram not complete this long after its first fragment is dropped.
    pub timeout_ns: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_trackers: 65_535,
            max_bytes: 32 << 20,
            // One source may hold 1/64 of the datagrams and 1/8 of the bytes: 64 of the largest
            // datagrams at once, while a single spoofing host cannot evict everyone else's.
            max_trackers_per_source: 1_024,
            max_bytes_per_source: 4 << 20,
            timeout_ns: 60_000_000_000,
        }
    }
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    /// Datagrams dropped incomplete at their timeout.
    pub timeouts: u64,
    /// Datagrams evicted and fragments refused (`drops.dropped()`).
    pub dropped: u64,
    /// Why.
    pub drops: DefragDrops,
    /// Datagram slots touched: found, created, completed, evicted or expired. Tests hold this
    /// to a constant per fragment whatever the table holds.
    pub visits: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    family: Family,
    ident: u32,
    proto: u8,
    vlan: [u16; 3],
}

/// A source address, for the per-source bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SrcKey {
    addr: [u8; 16],
    family: Family,
}

impl Key {
    fn source(&self) -> SrcKey {
        SrcKey {
            addr: self.src,
            family: self.family,
        }
    }
}

/// What one source holds, and its datagrams oldest first.
#[derive(Clone, Copy, Debug)]
struct Source {
    head: u32,
    tail: u32,
    datagrams: u32,
    blocks: u32,
}

/// One datagram under reassembly.
#[derive(Clone, Copy, Debug)]
struct Slot {
    key: Key,
    first_ns: u64,
    /// The table's FIFO (oldest first). `next` also links free slots.
    prev: u32,
    next: u32,
    /// The source's FIFO.
    sprev: u32,
    snext: u32,
    /// Prefix and data pieces, each behind a [`PIECE_HDR`].
    chain: Chain,
    l3_offset: u32,
    unfrag_len: u32,
    frag_hdr_at: u32,
    /// Length of the prefix once the offset-0 fragment is seen; 0 before.
    prefix_len: u32,
    /// Length of the fragmentable part once the last fragment is seen ([`NO_TOTAL`] before).
    total: u32,
    frags: u16,
    n_spans: u8,
    /// Byte ranges held, `[start, end)`, sorted, neither overlapping nor touching.
    spans: [(u16, u16); MAX_SPANS],
}

impl Slot {
    fn new(key: Key, first_ns: u64) -> Self {
        Slot {
            key,
            first_ns,
            prev: NIL,
            next: NIL,
            sprev: NIL,
            snext: NIL,
            chain: Chain::EMPTY,
            l3_offset: 0,
            unfrag_len: 0,
            frag_hdr_at: 0,
            prefix_len: 0,
            total: NO_TOTAL,
            frags: 0,
            n_spans: 0,
            spans: [(0, 0); MAX_SPANS],
        }
    }

    fn spans(&self) -> &[(u16, u16)] {
        &self.spans[..usize::from(self.n_spans)]
    }

    fn complete(&self) -> bool {
        if self.prefix_len == 0 || self.total == NO_TOTAL {
            return false;
        }
        self.total == 0
            || matches!(self.spans().first(), Some(&(0, e)) if u32::from(e) >= self.total)
    }
}

/// Why a fragment was refused or a datagram evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    TableFull,
    SourceLimit,
    TooManyFragments,
    Oversized,
    Truncated,
}

/// What one fragment led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Kept; the datagram is not complete yet.
    Pending,
    /// The datagram is complete: see [`Defrag::reassembled`].
    Complete,
    /// The fragment was refused (a bound, or an impossible size).
    Dropped(DecodeEvent),
}

/// The reassembler. One per decoding thread.
pub struct Defrag {
    cfg: DefragConfig,
    index: HashMap<Key, u32>,
    sources: HashMap<SrcKey, Source>,
    slots: Vec<Slot>,
    free_slot: u32,
    live: usize,
    /// Oldest and newest datagram.
    head: u32,
    tail: u32,
    pool: Pool,
    max_src_blocks: usize,
    /// Latest capture time seen: datagrams are stamped with it, so the FIFO is also ordered by
    /// first-fragment time even when a capture's timestamps step back.
    clock: u64,
    out: Vec<u8>,
    out_l3: usize,
    stats: DefragStats,
}

impl std::fmt::Debug for Defrag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Defrag")
            .field("trackers", &self.live)
            .field("bytes", &self.bytes_held())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Defrag {
    pub fn new(cfg: DefragConfig) -> Self {
        let pool = Pool::new(cfg.max_bytes);
        let max_src_blocks = (cfg.max_bytes_per_source / BLOCK).max(1);
        Defrag {
            cfg,
            index: HashMap::new(),
            sources: HashMap::new(),
            slots: Vec::new(),
            free_slot: NIL,
            live: 0,
            head: NIL,
            tail: NIL,
            pool,
            max_src_blocks,
            clock: 0,
            out: Vec::new(),
            out_l3: 0,
            stats: DefragStats::default(),
        }
    }

    pub fn stats(&self) -> &DefragStats {
        &self.stats
    }

    /// Bytes held now (whole 64-byte blocks, headers included).
    pub fn bytes_held(&self) -> usize {
        self.pool.in_use() * BLOCK
    }

    /// Datagrams under reassembly.
    pub fn pending(&self) -> usize {
        self.live
    }

    /// Datagrams under reassembly and bytes held for `src` (IPv4: the first four bytes).
    pub fn source_held(&self, family: Family, src: [u8; 16]) -> (usize, usize) {
        self.sources
            .get(&SrcKey { addr: src, family })
            .map_or((0, 0), |s| {
                (s.datagrams as usize, s.blocks as usize * BLOCK)
            })
    }

    /// The last completed datagram: the first fragment's link prefix and IP header (lengths
    /// and fragment fields rewritten) followed by the whole payload, and the IP header's offset.
    pub fn reassembled(&self) -> (&[u8], usize) {
        (&self.out, self.out_l3)
    }

    /// Add the fragment `d` (decoded from `frame`) at `now_ns`. Overlap anomalies are pushed to
    /// `events`.
    pub fn insert(
        &mut self,
        now_ns: u64,
        frame: &[u8],
        d: &Decoded,
        events: &mut Vec<DecodeEvent>,
    ) -> Outcome {
        let Some(fr) = d.frag else {
            return Outcome::Dropped(DecodeEvent::Ipv4PktTooSmall);
        };
        self.stats.fragments += 1;
        self.clock = self.clock.max(now_ns);
        let v6 = d.tuple.family == Family::V6;
        let (overlap_ev, too_large_ev, trunc_ev) = if v6 {
            (
                DecodeEvent::Ipv6FragOverlap,
                DecodeEvent::Ipv6FragPktTooLarge,
                DecodeEvent::Ipv6TruncPkt,
            )
        } else {
            (
                DecodeEvent::Ipv4FragOverlap,
                DecodeEvent::Ipv4FragPktTooLarge,
                DecodeEvent::Ipv4TruncPkt,
            )
        };
        let data_start = fr.data_offset as usize;
        let Some(data) = frame.get(data_start..data_start + fr.data_len as usize) else {
            return self.refuse(Reason::Truncated, trunc_ev);
        };
        let off = usize::from(fr.offset);
        let limit = if v6 {
            MAX_DATAGRAM
        } else {
            MAX_DATAGRAM.saturating_sub(fr.unfrag_len as usize)
        };
        let end = off + data.len();
        if end > limit {
            return self.refuse(Reason::Oversized, too_large_ev);
        }
        let key = Key {
            src: d.tuple.src,
            dst: d.tuple.dst,
            family: d.tuple.family,
            ident: fr.ident,
            proto: fr.proto,
            vlan: d.tuple.vlan,
        };
        self.stats.visits += 1;
        let found = self.index.get(&key).copied();
        let cur = found.unwrap_or(NIL);
        if found
            .is_some_and(|i| usize::from(self.slots[i as usize].frags) >= MAX_FRAGS_PER_DATAGRAM)
        {
            return self.refuse(Reason::TooManyFragments, DecodeEvent::FragIgnored);
        }
        let spans: &[(u16, u16)] = match found {
            Some(i) => self.slots[i as usize].spans(),
            None => &[],
        };
        // What of [off, end) is new, and the ranges held afterwards.
        let mut gaps = [(0u16, 0u16); MAX_SPANS + 1];
        let n_gaps = uncovered(spans, off as u16, end as u16, &mut gaps);
        let new_bytes: usize = gaps[..n_gaps]
            .iter()
            .map(|&(a, b)| usize::from(b - a))
            .sum();
        let mut merged = [(0u16, 0u16); MAX_SPANS + 1];
        let n_merged = if off < end {
            merge(spans, off as u16, end as u16, &mut merged)
        } else {
            spans.len()
        };
        if n_merged > MAX_SPANS {
            return self.refuse(Reason::TooManyFragments, DecodeEvent::FragIgnored);
        }
        let overlap = new_bytes < data.len();
        // The prefix, if this fragment brings it.
        let mut prefix: &[u8] = &[];
        let has_prefix = found.is_some_and(|i| self.slots[i as usize].prefix_len != 0);
        if off == 0 && !has_prefix {
            let len = prefix_len(&fr);
            if len > MAX_PREFIX {
                return self.refuse(Reason::Oversized, too_large_ev);
            }
            match frame.get(..len) {
                Some(p) if !p.is_empty() => prefix = p,
                _ => return self.refuse(Reason::Truncated, trunc_ev),
            }
        }
        let mut need = new_bytes + n_gaps * PIECE_HDR;
        if !prefix.is_empty() {
            need += prefix.len() + PIECE_HDR;
        }
        let chain = found.map_or(Chain::EMPTY, |i| self.slots[i as usize].chain);
        let need_blocks = chain.blocks_after(need) - chain.blocks();
        let src = key.source();
        if let Err(r) = self.make_room(cur, src, need_blocks, found.is_none()) {
            return self.refuse(r, DecodeEvent::FragIgnored);
        }
        let i = match found {
            Some(i) => i,
            None => self.open(key),
        };
        // Store: the prefix, then each new range behind its header.
        let s = &mut self.slots[i as usize];
        let before = s.chain.blocks();
        let mut ok = true;
        if !prefix.is_empty() {
            ok &= self
                .pool
                .append(&mut s.chain, &piece_hdr(PREFIX_TAG, prefix.len()));
            ok &= self.pool.append(&mut s.chain, prefix);
            s.prefix_len = prefix.len() as u32;
            s.l3_offset = fr.l3_offset;
            s.unfrag_len = fr.unfrag_len;
            s.frag_hdr_at = fr.frag_hdr_at;
        }
        for &(a, b) in &gaps[..n_gaps] {
            let piece = &data[usize::from(a) - off..usize::from(b) - off];
            ok &= self.pool.append(&mut s.chain, &piece_hdr(a, piece.len()));
            ok &= self.pool.append(&mut s.chain, piece);
        }
        if off < end {
            s.spans[..n_merged].copy_from_slice(&merged[..n_merged]);
            s.n_spans = n_merged as u8;
        }
        s.frags += 1;
        if !fr.more && s.total == NO_TOTAL {
            s.total = end as u32;
        }
        let grown = (s.chain.blocks() - before) as u32;
        let complete = s.complete();
        if let Some(so) = self.sources.get_mut(&src) {
            so.blocks += grown;
        }
        if overlap {
            self.stats.drops.overlap += 1;
            events.push(overlap_ev);
        }
        if !ok {
            // Not reached: make_room found the blocks. Should it happen, the datagram is
            // incomplete and is let go rather than reassembled from missing bytes.
            self.free(i);
            return self.refuse(Reason::TableFull, DecodeEvent::FragIgnored);
        }
        if !complete {
            return Outcome::Pending;
        }
        let built = self.build(i);
        self.stats.visits += 1;
        self.free(i);
        if built {
            self.stats.reassembled += 1;
            Outcome::Complete
        } else {
            self.refuse(Reason::Oversized, too_large_ev)
        }
    }

    /// Drop datagrams whose first fragment is older than the timeout (O(expired): they are the
    /// head of the table's FIFO).
    pub fn expire(&mut self, now_ns: u64) {
        self.clock = self.clock.max(now_ns);
        while self.head != NIL {
            let h = self.head;
            if self.clock.saturating_sub(self.slots[h as usize].first_ns) <= self.cfg.timeout_ns {
                break;
            }
            self.stats.visits += 1;
            self.stats.timeouts += 1;
            self.free(h);
        }
    }

    fn refuse(&mut self, r: Reason, ev: DecodeEvent) -> Outcome {
        self.count(r);
        Outcome::Dropped(ev)
    }

    fn count(&mut self, r: Reason) {
        let d = &mut self.stats.drops;
        match r {
            Reason::TableFull => d.table_full += 1,
            Reason::SourceLimit => d.source_limit += 1,
            Reason::TooManyFragments => d.too_many_fragments += 1,
            Reason::Oversized => d.oversized += 1,
            Reason::Truncated => d.truncated += 1,
        }
        self.stats.dropped += 1;
    }

    /// Evict, oldest first, until `src` may hold one more datagram (if `new`) and
    /// `need_blocks` more blocks, and the table too. `cur` (the fragment's own datagram) is
    /// never evicted; if only it is left, the fragment cannot be kept.
    fn make_room(
        &mut self,
        cur: u32,
        src: SrcKey,
        need_blocks: usize,
        new: bool,
    ) -> Result<(), Reason> {
        // More than a whole allowance: refused without evicting anything.
        if need_blocks > self.max_src_blocks {
            return Err(Reason::SourceLimit);
        }
        if need_blocks > self.pool.max_blocks() {
            return Err(Reason::TableFull);
        }
        loop {
            let (datagrams, blocks, head) = self.sources.get(&src).map_or((0, 0, NIL), |s| {
                (s.datagrams as usize, s.blocks as usize, s.head)
            });
            let over = (new && datagrams >= self.cfg.max_trackers_per_source)
                || blocks + need_blocks > self.max_src_blocks;
            if !over {
                break;
            }
            let victim = if head == cur && cur != NIL {
                self.slots[cur as usize].snext
            } else {
                head
            };
            if victim == NIL {
                return Err(Reason::SourceLimit);
            }
            self.stats.visits += 1;
            self.count(Reason::SourceLimit);
            self.free(victim);
        }
        loop {
            let over = (new && self.live >= self.cfg.max_trackers.max(1))
                || self.pool.available() < need_blocks;
            if !over {
                break;
            }
            let victim = if self.head == cur && cur != NIL {
                self.slots[cur as usize].next
            } else {
                self.head
            };
            if victim == NIL {
                return Err(Reason::TableFull);
            }
            self.stats.visits += 1;
            self.count(Reason::TableFull);
            self.free(victim);
        }
        Ok(())
    }

    /// A slot for a new datagram, at the tail of both FIFOs.
    fn open(&mut self, key: Key) -> u32 {
        let slot = Slot::new(key, self.clock);
        let i = if self.free_slot != NIL {
            let i = self.free_slot;
            self.free_slot = self.slots[i as usize].next;
            self.slots[i as usize] = slot;
            i
        } else {
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        };
        let s = &mut self.slots[i as usize];
        s.prev = self.tail;
        if self.tail == NIL {
            self.head = i;
        } else {
            let t = self.tail as usize;
            self.slots[t].next = i;
        }
        self.tail = i;
        let src = self.sources.entry(key.source()).or_insert(Source {
            head: NIL,
            tail: NIL,
            datagrams: 0,
            blocks: 0,
        });
        let stail = src.tail;
        src.tail = i;
        if stail == NIL {
            src.head = i;
        }
        src.datagrams += 1;
        self.slots[i as usize].sprev = stail;
        if stail != NIL {
            self.slots[stail as usize].snext = i;
        }
        self.index.insert(key, i);
        self.live += 1;
        i
    }

    /// Let datagram `i` go: out of the index and both FIFOs, its blocks back to the pool.
    fn free(&mut self, i: u32) {
        let s = self.slots[i as usize];
        match s.prev {
            NIL => self.head = s.next,
            p => self.slots[p as usize].next = s.next,
        }
        match s.next {
            NIL => self.tail = s.prev,
            n => self.slots[n as usize].prev = s.prev,
        }
        let sk = s.key.source();
        let emptied = match self.sources.get_mut(&sk) {
            Some(src) => {
                if s.sprev == NIL {
                    src.head = s.snext;
                }
                if s.snext == NIL {
                    src.tail = s.sprev;
                }
                src.datagrams = src.datagrams.saturating_sub(1);
                src.blocks = src.blocks.saturating_sub(s.chain.blocks() as u32);
                src.datagrams == 0
            }
            None => false,
        };
        if s.sprev != NIL {
            self.slots[s.sprev as usize].snext = s.snext;
        }
        if s.snext != NIL {
            self.slots[s.snext as usize].sprev = s.sprev;
        }
        if emptied {
            self.sources.remove(&sk);
        }
        self.index.remove(&s.key);
        let slot = &mut self.slots[i as usize];
        self.pool.release(&mut slot.chain);
        slot.next = self.free_slot;
        slot.prev = NIL;
        slot.sprev = NIL;
        slot.snext = NIL;
        self.free_slot = i;
        self.live -= 1;
    }

    /// Write datagram `i` into `out`. `false` if its stream is not what was stored (not
    /// reached) or its headers are too short to rewrite.
    fn build(&mut self, i: u32) -> bool {
        let s = self.slots[i as usize];
        let total = s.total as usize;
        let base = s.prefix_len as usize;
        let span_end = s.spans().last().map_or(0, |&(_, e)| usize::from(e));
        self.out.clear();
        self.out.resize(base + total.max(span_end), 0);
        let mut r = self.pool.reader(&s.chain);
        let mut hdr = [0u8; PIECE_HDR];
        while r.left() > 0 {
            if !r.read(&mut hdr) {
                return false;
            }
            let at = u16::from_le_bytes([hdr[0], hdr[1]]);
            let len = usize::from(u16::from_le_bytes([hdr[2], hdr[3]]));
            let dst = if at == PREFIX_TAG {
                self.out.get_mut(..len)
            } else {
                let a = base + usize::from(at);
                self.out.get_mut(a..a + len)
            };
            let Some(dst) = dst else { return false };
            if !r.read(dst) {
                return false;
            }
        }
        self.out.truncate(base + total);
        self.out_l3 = s.l3_offset as usize;
        rewrite_headers(&mut self.out, &s, total).is_some()
    }
}

/// Rewrite the IP header of a reassembled datagram: lengths, fragment fields, checksum.
fn rewrite_headers(out: &mut [u8], s: &Slot, total: usize) -> Option<()> {
    let l3 = s.l3_offset as usize;
    match s.key.family {
        Family::V4 => {
            let unfrag = s.unfrag_len as usize;
            let len = (unfrag + total) as u16;
            out.get_mut(l3 + 2..l3 + 4)?
                .copy_from_slice(&len.to_be_bytes());
            *out.get_mut(l3 + 6)? &= 0x40; // keep DF, clear MF and the offset
            *out.get_mut(l3 + 7)? = 0;
            out.get_mut(l3 + 10..l3 + 12)?.copy_from_slice(&[0, 0]);
            let c = islet_wire::ipv4::checksum(out.get(l3..l3 + unfrag)?);
            out.get_mut(l3 + 10..l3 + 12)?
                .copy_from_slice(&c.to_be_bytes());
        }
        Family::V6 => {
            // Keep the Fragment header as an atomic fragment (offset 0, M clear).
            let fh_at = s.frag_hdr_at as usize;
            let plen = (fh_at + 8).saturating_sub(40) + total;
            out.get_mut(l3 + 4..l3 + 6)?
                .copy_from_slice(&(plen as u16).to_be_bytes());
            out.get_mut(l3 + fh_at + 2..l3 + fh_at + 4)?
                .copy_from_slice(&[0, 0]);
        }
    }
    Some(())
}

fn piece_hdr(at: u16, len: usize) -> [u8; PIECE_HDR] {
    let a = at.to_le_bytes();
    let l = (len as u16).to_le_bytes();
    [a[0], a[1], l[0], l[1]]
}

/// The parts of `[a, b)` not covered by `spans` (sorted, disjoint), into `out`; their count.
fn uncovered(spans: &[(u16, u16)], a: u16, b: u16, out: &mut [(u16, u16); MAX_SPANS + 1]) -> usize {
    let mut n = 0;
    let mut at = a;
    for &(s, e) in spans {
        if at >= b || s >= b {
            break;
        }
        if e <= at {
            continue;
        }
        if s > at {
            out[n] = (at, s);
            n += 1;
        }
        at = at.max(e);
    }
    if at < b {
        out[n] = (at, b);
        n += 1;
    }
    n
}

/// `spans` with `[a, b)` added (touching ranges joined), into `out`; its length, which may be
/// one more than [`MAX_SPANS`].
fn merge(spans: &[(u16, u16)], a: u16, b: u16, out: &mut [(u16, u16); MAX_SPANS + 1]) -> usize {
    let (mut ms, mut me) = (a, b);
    let mut n = 0;
    let mut placed = false;
    for &(s, e) in spans {
        if e < ms {
            out[n] = (s, e);
            n += 1;
        } else if s > me {
            if !placed {
                out[n] = (ms, me);
                n += 1;
                placed = true;
            }
            out[n] = (s, e);
            n += 1;
        } else {
            ms = ms.min(s);
            me = me.max(e);
        }
    }
    if !placed {
        out[n] = (ms, me);
        n += 1;
    }
    n
}

/// Bytes of the unfragmentable part (IPv6: through the Fragment header), from the IP header.
fn prefix_len_rel(fr: &Frag) -> usize {
    if fr.frag_hdr_at != 0 {
        fr.frag_hdr_at as usize + 8
    } else {
        fr.unfrag_len as usize
    }
}

fn prefix_len(fr: &Frag) -> usize {
    fr.l3_offset as usize + prefix_len_rel(fr)
}

#[cfg(test)]
mod tests;
