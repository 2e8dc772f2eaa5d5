//! IPv4 and IPv6 fragment reassembly.
//!
//! Policy: **first wins**. Bytes already received for a datagram are kept when a later
//! fragment overlaps them (the overlap is reported as `ipv4.frag_overlap`/`ipv6.frag_overlap`);
//! this is the BSD-right-free "first" policy of Snort/Suricata's target-based defrag, chosen
//! because it cannot be steered by a late, forged fragment. Memory is bounded by
//! [`DefragConfig::max_bytes`] and [`DefragConfig::max_trackers`]; a fragment that would exceed
//! them is dropped and counted (`ipv4.frag_ignored`). Trackers time out after
//! [`DefragConfig::timeout_ns`] of capture time.

use hashbrown::HashMap;
use islet_wire::decode::{Decoded, Frag};
use islet_wire::{DecodeEvent, Family};

/// Most fragments kept for one datagram (8-byte fragments could otherwise make 8,192).
pub const MAX_FRAGS_PER_DATAGRAM: usize = 256;
/// Largest reassembled datagram payload.
pub const MAX_DATAGRAM: usize = 65_535;

/// Defragmentation bounds. Defaults follow Suricata's `defrag` section.
#[derive(Clone, Debug)]
pub struct DefragConfig {
    /// Most datagrams under reassembly at once.
    pub max_trackers: usize,
    /// Most bytes held in fragments at once.
    pub max_bytes: usize,
    /// A datagram not complete this long after its first fragment is dropped.
    pub timeout_ns: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_trackers: 65_535,
            max_bytes: 32 << 20,
            timeout_ns: 60_000_000_000,
        }
    }
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub timeouts: u64,
    pub dropped: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    family: Family,
    ident: u32,
    proto: u8,
    vlan: [u16; 3],
}

struct Tracker {
    first_ns: u64,
    family: Family,
    /// Frame bytes up to the end of the unfragmentable part (IPv6: through the Fragment
    /// header) of the offset-0 fragment, once seen.
    prefix: Vec<u8>,
    l3_offset: usize,
    unfrag_len: usize,
    frag_hdr_at: usize,
    /// Length of the datagram's fragmentable part, once the last fragment is seen.
    total: Option<usize>,
    /// (offset, data) in arrival order.
    parts: Vec<(usize, Vec<u8>)>,
    bytes: usize,
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
    trackers: HashMap<Key, Tracker>,
    bytes: usize,
    out: Vec<u8>,
    out_l3: usize,
    stats: DefragStats,
}

impl std::fmt::Debug for Defrag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Defrag")
            .field("trackers", &self.trackers.len())
            .field("bytes", &self.bytes)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Defrag {
    pub fn new(cfg: DefragConfig) -> Self {
        Defrag {
            cfg,
            trackers: HashMap::new(),
            bytes: 0,
            out: Vec::new(),
            out_l3: 0,
            stats: DefragStats::default(),
        }
    }

    pub fn stats(&self) -> &DefragStats {
        &self.stats
    }

    /// Bytes held in fragments now.
    pub fn bytes_held(&self) -> usize {
        self.bytes
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
        let v6 = d.tuple.family == Family::V6;
        let (overlap_ev, too_large_ev) = if v6 {
            (
                DecodeEvent::Ipv6FragOverlap,
                DecodeEvent::Ipv6FragPktTooLarge,
            )
        } else {
            (
                DecodeEvent::Ipv4FragOverlap,
                DecodeEvent::Ipv4FragPktTooLarge,
            )
        };
        let data_start = fr.data_offset as usize;
        let data = match frame.get(data_start..data_start + fr.data_len as usize) {
            Some(s) => s,
            None => return self.drop_frag(DecodeEvent::Ipv4TruncPkt),
        };
        let off = usize::from(fr.offset);
        let limit = if v6 {
            MAX_DATAGRAM
        } else {
            MAX_DATAGRAM - fr.unfrag_len as usize
        };
        if off + data.len() > limit {
            return self.drop_frag(too_large_ev);
        }
        let key = Key {
            src: d.tuple.src,
            dst: d.tuple.dst,
            family: d.tuple.family,
            ident: fr.ident,
            proto: fr.proto,
            vlan: d.tuple.vlan,
        };
        if !self.trackers.contains_key(&key) && self.trackers.len() >= self.cfg.max_trackers {
            self.expire(now_ns);
            if self.trackers.len() >= self.cfg.max_trackers {
                return self.drop_frag(DecodeEvent::FragIgnored);
            }
        }
        let prefix_len = if off == 0 { prefix_len(&fr) } else { 0 };
        if self.bytes + data.len() + prefix_len > self.cfg.max_bytes {
            return self.drop_frag(DecodeEvent::FragIgnored);
        }
        let t = self.trackers.entry(key).or_insert_with(|| Tracker {
            first_ns: now_ns,
            family: d.tuple.family,
            prefix: Vec::new(),
            l3_offset: 0,
            unfrag_len: 0,
            frag_hdr_at: 0,
            total: None,
            parts: Vec::new(),
            bytes: 0,
        });
        if t.parts.len() >= MAX_FRAGS_PER_DATAGRAM {
            return self.drop_frag(DecodeEvent::FragIgnored);
        }
        if t.parts
            .iter()
            .any(|(o, p)| off < o + p.len() && *o < off + data.len())
        {
            events.push(overlap_ev);
        }
        if off == 0 && t.prefix.is_empty() {
            t.prefix
                .extend_from_slice(&frame[..fr.l3_offset as usize + prefix_len_rel(&fr)]);
            t.l3_offset = fr.l3_offset as usize;
            t.unfrag_len = fr.unfrag_len as usize;
            t.frag_hdr_at = fr.frag_hdr_at as usize;
            t.bytes += t.prefix.len();
            self.bytes += t.prefix.len();
        }
        if !fr.more && t.total.is_none() {
            t.total = Some(off + data.len());
        }
        t.parts.push((off, data.to_vec()));
        t.bytes += data.len();
        self.bytes += data.len();
        if !complete(t) {
            return Outcome::Pending;
        }
        let Some(t) = self.trackers.remove(&key) else {
            return Outcome::Pending;
        };
        self.bytes -= t.bytes;
        self.build(&t);
        self.stats.reassembled += 1;
        Outcome::Complete
    }

    /// Drop datagrams whose first fragment is older than the timeout.
    pub fn expire(&mut self, now_ns: u64) {
        let tmo = self.cfg.timeout_ns;
        let mut freed = 0;
        let mut n = 0;
        self.trackers.retain(|_, t| {
            let keep = now_ns.saturating_sub(t.first_ns) <= tmo;
            if !keep {
                freed += t.bytes;
                n += 1;
            }
            keep
        });
        self.bytes -= freed;
        self.stats.timeouts += n;
    }

    /// Datagrams under reassembly.
    pub fn pending(&self) -> usize {
        self.trackers.len()
    }

    fn drop_frag(&mut self, ev: DecodeEvent) -> Outcome {
        self.stats.dropped += 1;
        Outcome::Dropped(ev)
    }

    fn build(&mut self, t: &Tracker) {
        let total = t.total.unwrap_or(0);
        self.out.clear();
        self.out.extend_from_slice(&t.prefix);
        let base = self.out.len();
        self.out.resize(base + total, 0);
        // Later fragments first, so the earliest bytes are written last and win.
        for (off, data) in t.parts.iter().rev() {
            let end = (off + data.len()).min(total);
            if *off < end {
                self.out[base + off..base + end].copy_from_slice(&data[..end - off]);
            }
        }
        let l3 = t.l3_offset;
        self.out_l3 = l3;
        match t.family {
            Family::V4 => {
                let len = (t.unfrag_len + total) as u16;
                self.out[l3 + 2..l3 + 4].copy_from_slice(&len.to_be_bytes());
                self.out[l3 + 6] &= 0x40; // keep DF, clear MF and the offset
                self.out[l3 + 7] = 0;
                self.out[l3 + 10] = 0;
                self.out[l3 + 11] = 0;
                let c = islet_wire::ipv4::checksum(&self.out[l3..l3 + t.unfrag_len]);
                self.out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            }
            Family::V6 => {
                // Keep the Fragment header as an atomic fragment (offset 0, M clear).
                let plen = (t.frag_hdr_at + 8 - 40 + total) as u16;
                self.out[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
                let fh = l3 + t.frag_hdr_at;
                self.out[fh + 2] = 0;
                self.out[fh + 3] = 0;
            }
        }
    }
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

fn complete(t: &Tracker) -> bool {
    let Some(total) = t.total else { return false };
    if t.prefix.is_empty() {
        return false;
    }
    let mut spans: Vec<(usize, usize)> = t.parts.iter().map(|(o, d)| (*o, o + d.len())).collect();
    spans.sort_unstable();
    let mut reach = 0;
    for (s, e) in spans {
        if s > reach {
            return false;
        }
        reach = reach.max(e);
    }
    reach >= total
}

#[cfg(test)]
mod test {
    use super::*;
    use islet_wire::decode::{Kind, decode};
    use islet_wire::linktype;

    /// IPv4 fragment of a UDP datagram: `off` in bytes, payload `data`.
    fn frag(ident: u16, off: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let total = (20 + data.len()) as u16;
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&ident.to_be_bytes());
        let fo = (off / 8) | if more { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&fo.to_be_bytes());
        p.extend_from_slice(data);
        p
    }

    fn udp_datagram(payload_len: usize) -> Vec<u8> {
        let mut u = vec![0x30, 0x39, 0x00, 0x35];
        u.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend((0..payload_len).map(|i| i as u8));
        u
    }

    fn feed(df: &mut Defrag, pkt: &[u8], ev: &mut Vec<DecodeEvent>) -> Outcome {
        let mut d = Decoded::default();
        decode(linktype::IPV4, pkt, &mut d).unwrap();
        assert_eq!(d.kind, Kind::Fragment);
        df.insert(0, pkt, &d, ev)
    }

    #[test]
    fn out_of_order_fragments_reassemble() {
        let dg = udp_datagram(40);
        let mut df = Defrag::new(DefragConfig::default());
        let mut ev = Vec::new();
        assert_eq!(
            feed(&mut df, &frag(7, 24, false, &dg[24..]), &mut ev),
            Outcome::Pending
        );
        assert_eq!(
            feed(&mut df, &frag(7, 0, true, &dg[..24]), &mut ev),
            Outcome::Complete
        );
        let (buf, l3) = df.reassembled();
        let mut d = Decoded::default();
        islet_wire::decode_ip(buf, l3, &mut d).unwrap();
        assert_eq!(d.kind, Kind::Ip);
        assert_eq!(
            (d.tuple.sport, d.tuple.dport, d.payload_len),
            (12345, 53, 40)
        );
        assert!(ev.is_empty());
        assert_eq!(df.bytes_held(), 0);
    }

    #[test]
    fn overlap_keeps_first_bytes_and_is_reported() {
        let dg = udp_datagram(40);
        let mut df = Defrag::new(DefragConfig::default());
        let mut ev = Vec::new();
        feed(&mut df, &frag(9, 0, true, &dg[..24]), &mut ev);
        let mut forged = dg[16..].to_vec();
        forged[..8].copy_from_slice(&[0xEE; 8]);
        assert_eq!(
            feed(&mut df, &frag(9, 16, false, &forged), &mut ev),
            Outcome::Complete
        );
        assert_eq!(ev, vec![DecodeEvent::Ipv4FragOverlap]);
        let (buf, l3) = df.reassembled();
        assert_eq!(&buf[l3 + 20 + 16..l3 + 20 + 24], &dg[16..24]);
    }

    #[test]
    fn memory_bound_drops_and_counts() {
        let cfg = DefragConfig {
            max_bytes: 150,
            ..DefragConfig::default()
        };
        let mut df = Defrag::new(cfg);
        let mut ev = Vec::new();
        let big = vec![0u8; 96];
        assert_eq!(
            feed(&mut df, &frag(1, 0, true, &big), &mut ev),
            Outcome::Pending
        );
        assert_eq!(
            feed(&mut df, &frag(2, 0, true, &big), &mut ev),
            Outcome::Dropped(DecodeEvent::FragIgnored)
        );
        assert_eq!(df.stats().dropped, 1);
    }

    #[test]
    fn incomplete_datagram_times_out() {
        let mut df = Defrag::new(DefragConfig::default());
        let mut ev = Vec::new();
        feed(&mut df, &frag(3, 0, true, &[0; 16]), &mut ev);
        df.expire(61_000_000_000);
        assert_eq!(
            (df.pending(), df.bytes_held(), df.stats().timeouts),
            (0, 0, 1)
        );
    }
}
