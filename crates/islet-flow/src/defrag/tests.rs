//! Reassembly tests. Those named `finding_2_…` pin issue 18's finding 2 (a full table made
//! each fragment scan every datagram): they count slot visits and evictions, never time.

use super::*;
use islet_wire::decode::{Kind, decode};
use islet_wire::linktype;
use proptest::prelude::*;

const SRC: [u8; 4] = [10, 0, 0, 1];

/// IPv4 fragment of a UDP datagram from `src`: `off` in bytes, payload `data`.
fn frag_from(src: [u8; 4], ident: u16, off: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let total = (20 + data.len()) as u16;
    let mut p = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
    ];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    let fo = (off / 8) | if more { 0x2000 } else { 0 };
    p[6..8].copy_from_slice(&fo.to_be_bytes());
    p[12..16].copy_from_slice(&src);
    p.extend_from_slice(data);
    p
}

fn frag(ident: u16, off: u16, more: bool, data: &[u8]) -> Vec<u8> {
    frag_from(SRC, ident, off, more, data)
}

/// IPv6 fragment (Fragment header straight after the fixed header).
fn frag6(src_last: u8, ident: u32, off: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[44, 64]);
    let mut src = [0u8; 16];
    src[0] = 0xfd;
    src[15] = src_last;
    let mut dst = [0u8; 16];
    dst[0] = 0xfd;
    dst[15] = 2;
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let fo = off | u16::from(more);
    p.extend_from_slice(&[17, 0]);
    p.extend_from_slice(&fo.to_be_bytes());
    p.extend_from_slice(&ident.to_be_bytes());
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

fn feed_at(df: &mut Defrag, now: u64, lt: u32, pkt: &[u8], ev: &mut Vec<DecodeEvent>) -> Outcome {
    let mut d = Decoded::default();
    decode(lt, pkt, &mut d).expect("decodes");
    assert_eq!(d.kind, Kind::Fragment);
    df.insert(now, pkt, &d, ev)
}

fn feed(df: &mut Defrag, pkt: &[u8], ev: &mut Vec<DecodeEvent>) -> Outcome {
    feed_at(df, 0, linktype::IPV4, pkt, ev)
}

fn src_n(i: u32) -> [u8; 4] {
    [11, (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

fn held(df: &Defrag, src: [u8; 4]) -> (usize, usize) {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&src);
    df.source_held(Family::V4, a)
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
    islet_wire::decode_ip(buf, l3, &mut d).expect("decodes");
    assert_eq!(d.kind, Kind::Ip);
    assert_eq!(
        (d.tuple.sport, d.tuple.dport, d.payload_len),
        (12345, 53, 40)
    );
    assert!(ev.is_empty());
    assert_eq!((df.bytes_held(), df.pending()), (0, 0));
    assert_eq!(held(&df, SRC), (0, 0));
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
    assert_eq!(&buf[l3 + 20..], &dg[..]);
    assert_eq!(df.stats().drops.overlap, 1);
    assert_eq!(
        df.stats().dropped,
        0,
        "an overlap is not a dropped fragment"
    );
}

#[test]
fn ipv6_fragments_reassemble() {
    let dg = udp_datagram(100);
    let mut df = Defrag::new(DefragConfig::default());
    let mut ev = Vec::new();
    let r = feed_at(
        &mut df,
        0,
        linktype::IPV6,
        &frag6(1, 77, 56, false, &dg[56..]),
        &mut ev,
    );
    assert_eq!(r, Outcome::Pending);
    let r = feed_at(
        &mut df,
        0,
        linktype::IPV6,
        &frag6(1, 77, 0, true, &dg[..56]),
        &mut ev,
    );
    assert_eq!(r, Outcome::Complete);
    let (buf, l3) = df.reassembled();
    let mut d = Decoded::default();
    islet_wire::decode_ip(buf, l3, &mut d).expect("decodes");
    assert_eq!((d.kind, d.tuple.dport, d.payload_len), (Kind::Ip, 53, 100));
    assert_eq!(df.bytes_held(), 0);
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

/// Fill a table of `size` datagrams (from `size` sources), then send `n` first fragments of new
/// datagrams from new sources; the slot visits those `n` cost.
fn visits_for_new_datagrams_into_a_full_table(size: usize, n: u32) -> (u64, DefragStats) {
    let cfg = DefragConfig {
        max_trackers: size,
        ..DefragConfig::default()
    };
    let mut df = Defrag::new(cfg);
    let mut ev = Vec::new();
    for i in 0..size as u32 {
        let r = feed(&mut df, &frag_from(src_n(i), 1, 0, true, &[0; 8]), &mut ev);
        assert_eq!(r, Outcome::Pending);
    }
    assert_eq!(df.pending(), size);
    let before = df.stats().visits;
    for i in 0..n {
        let src = src_n(size as u32 + i);
        let r = feed(&mut df, &frag_from(src, 1, 8, true, &[0; 8]), &mut ev);
        assert_eq!(
            r,
            Outcome::Pending,
            "a new datagram is kept; the oldest goes"
        );
    }
    assert_eq!(df.pending(), size);
    (df.stats().visits - before, df.stats().clone())
}

#[test]
fn finding_2_full_table_costs_the_same_visits_per_fragment_whatever_its_size() {
    let n = 2_000;
    let (small, s_small) = visits_for_new_datagrams_into_a_full_table(100, n);
    let (large, s_large) = visits_for_new_datagrams_into_a_full_table(60_000, n);
    // One lookup, one eviction, nothing else: the same for 100 and 60,000 datagrams held (a
    // scan of the table, as before, would be 60,000 visits for each fragment).
    assert_eq!(small, 2 * u64::from(n));
    assert_eq!(large, small);
    assert_eq!(s_small.drops.table_full, u64::from(n));
    assert_eq!(s_large.drops.table_full, u64::from(n));
    assert_eq!(s_large.dropped, u64::from(n));
}

#[test]
fn finding_2_total_datagram_bound_evicts_the_oldest_and_counts() {
    let cfg = DefragConfig {
        max_trackers: 8,
        ..DefragConfig::default()
    };
    let mut df = Defrag::new(cfg);
    let mut ev = Vec::new();
    for i in 0..20 {
        feed(&mut df, &frag_from(src_n(i), 5, 0, true, &[0; 8]), &mut ev);
    }
    assert_eq!(df.pending(), 8);
    assert_eq!(df.stats().drops.table_full, 12);
    // The survivors are the eight newest: completing the newest works, the oldest is gone.
    let r = feed(
        &mut df,
        &frag_from(src_n(19), 5, 8, false, &[0; 8]),
        &mut ev,
    );
    assert_eq!(r, Outcome::Complete);
    let r = feed(&mut df, &frag_from(src_n(0), 5, 8, false, &[0; 8]), &mut ev);
    assert_eq!(
        r,
        Outcome::Pending,
        "a new datagram, its first part was evicted"
    );
}

#[test]
fn finding_2_total_byte_bound_evicts_the_oldest_and_counts() {
    let cfg = DefragConfig {
        max_bytes: 300,
        ..DefragConfig::default()
    };
    let mut df = Defrag::new(cfg);
    let mut ev = Vec::new();
    let big = vec![0u8; 96];
    for i in 0..10 {
        let r = feed(&mut df, &frag_from(src_n(i), 1, 0, true, &big), &mut ev);
        assert_eq!(r, Outcome::Pending);
        assert!(df.bytes_held() <= 300, "{} bytes held", df.bytes_held());
    }
    // 20 prefix + 96 data + 2 headers = 124 bytes = 2 blocks; 4 blocks fit.
    assert_eq!(df.pending(), 2);
    assert_eq!(df.stats().drops.table_full, 8);
    // A fragment that could never fit even in an empty table is refused.
    let r = feed(
        &mut df,
        &frag_from(src_n(99), 1, 8, true, &[0; 512]),
        &mut ev,
    );
    assert_eq!(r, Outcome::Dropped(DecodeEvent::FragIgnored));
    assert_eq!(df.stats().drops.table_full, 9);
    assert_eq!(df.pending(), 2, "nothing was evicted for it");
}

#[test]
fn finding_2_per_source_datagram_bound_evicts_that_sources_oldest() {
    let cfg = DefragConfig {
        max_trackers_per_source: 4,
        ..DefragConfig::default()
    };
    let mut df = Defrag::new(cfg);
    let mut ev = Vec::new();
    let other = [10, 9, 9, 9];
    feed(&mut df, &frag_from(other, 1, 0, true, &[0; 8]), &mut ev);
    for id in 0..10 {
        feed(&mut df, &frag(id, 0, true, &[0; 8]), &mut ev);
    }
    assert_eq!(held(&df, SRC).0, 4);
    assert_eq!(df.stats().drops.source_limit, 6);
    assert_eq!(df.stats().drops.table_full, 0);
    // The other source's datagram, older than all of them, is untouched.
    let r = feed(&mut df, &frag_from(other, 1, 8, false, &[0; 8]), &mut ev);
    assert_eq!(r, Outcome::Complete);
    // The flooding source's newest datagrams are still there.
    assert_eq!(
        feed(&mut df, &frag(9, 8, false, &[0; 8]), &mut ev),
        Outcome::Complete
    );
}

#[test]
fn finding_2_per_source_byte_bound_evicts_that_sources_oldest() {
    let cfg = DefragConfig {
        max_bytes_per_source: 1_024,
        ..DefragConfig::default()
    };
    let mut df = Defrag::new(cfg);
    let mut ev = Vec::new();
    for id in 0..50 {
        feed(&mut df, &frag(id, 0, true, &[0; 200]), &mut ev);
        assert!(held(&df, SRC).1 <= 1_024);
    }
    // 20 + 200 + 8 = 228 bytes = 4 blocks each: four datagrams fit in 16 blocks.
    assert_eq!(held(&df, SRC), (4, 1_024));
    assert_eq!(df.stats().drops.source_limit, 46);
    // One fragment larger than the source's whole allowance is refused, and counted.
    let r = feed(&mut df, &frag(500, 0, true, &[0; 1_200]), &mut ev);
    assert_eq!(r, Outcome::Dropped(DecodeEvent::FragIgnored));
    assert_eq!(df.stats().drops.source_limit, 47);
    assert_eq!(held(&df, SRC), (4, 1_024), "nothing was evicted for it");
}

#[test]
fn finding_2_a_datagram_still_reassembles_during_a_flood() {
    let cfg = DefragConfig {
        max_trackers: 1_000,
        ..DefragConfig::default()
    };
    let mut df = Defrag::new(cfg);
    let mut ev = Vec::new();
    let dg = udp_datagram(40);
    let mut flood = 0u32;
    let mut next_flood = |df: &mut Defrag, ev: &mut Vec<DecodeEvent>, k: u32| {
        for _ in 0..k {
            feed(df, &frag_from(src_n(flood), 3, 8, true, &[1; 8]), ev);
            flood += 1;
        }
    };
    next_flood(&mut df, &mut ev, 5_000);
    feed(&mut df, &frag(7, 24, false, &dg[24..]), &mut ev);
    next_flood(&mut df, &mut ev, 500);
    assert_eq!(
        feed(&mut df, &frag(7, 0, true, &dg[..24]), &mut ev),
        Outcome::Complete
    );
    assert_eq!(df.stats().reassembled, 1);
}

#[test]
fn finding_2_expiry_visits_only_what_expires() {
    let mut df = Defrag::new(DefragConfig::default());
    let mut ev = Vec::new();
    for i in 0..10_000 {
        feed_at(
            &mut df,
            u64::from(i) * 1_000_000,
            linktype::IPV4,
            &frag_from(src_n(i), 1, 0, true, &[0; 8]),
            &mut ev,
        );
    }
    let before = df.stats().visits;
    // First fragments at 0..10 s; at 60.5 s those older than 60 s (the first 500) go.
    df.expire(60_500_000_000);
    assert_eq!(df.stats().timeouts, 500);
    assert_eq!(df.stats().visits - before, 500);
    df.expire(60_500_000_000);
    assert_eq!(df.stats().visits - before, 500, "nothing more to visit");
}

#[test]
fn finding_2_too_many_fragments_or_holes_are_refused_and_counted() {
    let mut df = Defrag::new(DefragConfig::default());
    let mut ev = Vec::new();
    // Every other 8-byte piece: each is a new hole.
    for k in 0..MAX_SPANS as u16 {
        assert_eq!(
            feed(&mut df, &frag(1, k * 16, true, &[0; 8]), &mut ev),
            Outcome::Pending
        );
    }
    let r = feed(
        &mut df,
        &frag(1, MAX_SPANS as u16 * 16, true, &[0; 8]),
        &mut ev,
    );
    assert_eq!(r, Outcome::Dropped(DecodeEvent::FragIgnored));
    assert_eq!(df.stats().drops.too_many_fragments, 1);
    // Repeats of one piece: new fragments, no new bytes, until the per-datagram count.
    let mut last = Outcome::Pending;
    for _ in 0..MAX_FRAGS_PER_DATAGRAM + 5 {
        last = feed(&mut df, &frag(2, 0, true, &[0; 8]), &mut ev);
    }
    assert_eq!(last, Outcome::Dropped(DecodeEvent::FragIgnored));
    assert_eq!(df.stats().drops.too_many_fragments, 1 + 5);
    assert_eq!(df.stats().drops.overlap, MAX_FRAGS_PER_DATAGRAM as u64 - 1);
}

#[test]
fn finding_2_oversized_fragment_is_refused_and_counted() {
    let mut df = Defrag::new(DefragConfig::default());
    let mut ev = Vec::new();
    let r = feed(&mut df, &frag(1, 65_528, true, &[0; 16]), &mut ev);
    assert_eq!(r, Outcome::Dropped(DecodeEvent::Ipv4FragPktTooLarge));
    assert_eq!(df.stats().drops.oversized, 1);
    assert_eq!(df.pending(), 0);
}

/// A small table, so that the properties reach every bound.
fn small_cfg() -> DefragConfig {
    DefragConfig {
        max_trackers: 12,
        max_bytes: 2_048,
        max_trackers_per_source: 5,
        max_bytes_per_source: 1_024,
        timeout_ns: 1_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Fragments of any offset, length, order, overlap, source and timing: no panic, and the
    /// table, the bytes and each source stay within their bounds after every fragment.
    #[test]
    fn finding_2_any_fragments_stay_within_the_bounds(
        frags in proptest::collection::vec(
            (0u8..6, 0u16..4, 0u16..40, 0usize..300, any::<bool>(), 0u64..3, any::<bool>()),
            1..300,
        )
    ) {
        let cfg = small_cfg();
        let mut df = Defrag::new(cfg.clone());
        let mut ev = Vec::new();
        let mut now = 0;
        for (src, id, off8, len, more, dt, v6) in frags {
            now += dt * 100;
            let data = vec![src; len];
            let (pkt, lt) = if v6 {
                (frag6(src, u32::from(id), off8 * 8, more, &data), linktype::IPV6)
            } else {
                (frag_from([10, 0, 0, src], id, off8 * 8, more, &data), linktype::IPV4)
            };
            let mut d = Decoded::default();
            if decode(lt, &pkt, &mut d).is_err() || d.kind != Kind::Fragment {
                continue;
            }
            let _ = df.insert(now, &pkt, &d, &mut ev);
            if dt == 2 {
                df.expire(now);
            }
            prop_assert!(df.pending() <= cfg.max_trackers);
            prop_assert!(df.bytes_held() <= cfg.max_bytes);
            let mut a4 = [0u8; 16];
            a4[..4].copy_from_slice(&[10, 0, 0, src]);
            let mut a6 = [0u8; 16];
            a6[0] = 0xfd;
            a6[15] = src;
            for (n, b) in [df.source_held(Family::V4, a4), df.source_held(Family::V6, a6)] {
                prop_assert!(n <= cfg.max_trackers_per_source && b <= cfg.max_bytes_per_source);
            }
            let s = df.stats();
            prop_assert_eq!(s.dropped, s.drops.dropped());
        }
        df.expire(u64::MAX);
        prop_assert_eq!((df.pending(), df.bytes_held()), (0, 0));
    }

    /// A datagram cut at any 8-byte boundaries, sent in any order with repeats, reassembles to
    /// its own bytes.
    #[test]
    fn shuffled_and_repeated_fragments_reassemble_exactly(
        len in 9usize..2_000,
        cuts in proptest::collection::vec(1usize..250, 1..12),
        order in proptest::collection::vec(any::<u32>(), 1..30),
    ) {
        let dg = udp_datagram(len);
        let mut bounds: Vec<usize> = cuts.iter().map(|c| (c * 8).min(dg.len())).collect();
        bounds.push(0);
        bounds.push(dg.len());
        bounds.sort_unstable();
        bounds.dedup();
        let pieces: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        // One piece would be a whole datagram, not a fragment.
        prop_assume!(pieces.len() >= 2);
        let mut seq: Vec<usize> = order.iter().map(|o| *o as usize % pieces.len()).collect();
        seq.extend(0..pieces.len());
        let mut df = Defrag::new(DefragConfig::default());
        let mut ev = Vec::new();
        let mut done = false;
        for k in seq {
            let (a, b) = pieces[k];
            let more = b < dg.len();
            if feed(&mut df, &frag(4, a as u16, more, &dg[a..b]), &mut ev) == Outcome::Complete {
                let (buf, l3) = df.reassembled();
                prop_assert_eq!(&buf[l3 + 20..], &dg[..]);
                done = true;
                break;
            }
        }
        prop_assert!(done);
        prop_assert_eq!(df.bytes_held(), 0);
    }
}
