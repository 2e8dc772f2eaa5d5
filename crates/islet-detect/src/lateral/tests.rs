use super::*;
use crate::config::LateralConfig;

const HOSTS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn ip(n: &str) -> IpAddr {
    let i = HOSTS.iter().position(|h| *h == n).unwrap_or(200) as u8;
    IpAddr::from([198, 51, 100, 10 + i])
}

fn edge<'a>(ms: u64, a: &'a str, b: &'a str, port: u16, sport: u16) -> AdminEdge<'a> {
    AdminEdge {
        ts_ns: ms * 1_000_000,
        src_node: a,
        dst_node: b,
        src: ip(a),
        dst: ip(b),
        sport,
        dport: port,
        flow_id: ms,
        admin_source: false,
        fanout: (10, 300),
        scanning: false,
    }
}

fn names(out: &[Detection]) -> Vec<&str> {
    out.iter().map(|d| d.kind.name).collect()
}

#[test]
fn a_pivot_on_the_first_day_is_one_chain_with_the_whole_path() {
    // Learning lasts a day: the pivot happens within its first minute.
    let mut l = Lateral::new(LateralConfig::default());
    let mut out = Vec::new();
    l.attempt(&edge(0, "a", "b", 22, 50_000), &mut out);
    l.completed(&edge(1, "a", "b", 22, 50_000));
    // From inside that session, b reaches c; then c reaches d over SMB, one refused first.
    l.attempt(&edge(500, "b", "c", 22, 40_000), &mut out);
    l.completed(&edge(501, "b", "c", 22, 40_000));
    l.attempt(&edge(900, "c", "d", 445, 41_000), &mut out);
    l.refused(&edge(900, "c", "d", 445, 41_000));
    l.attempt(&edge(950, "c", "d", 445, 41_001), &mut out);
    assert!(out.is_empty(), "{:?}", names(&out));
    // Quiet for chain_quiet_s: reported once.
    l.tick(302_000_000_000, &mut out);
    assert_eq!(names(&out), ["lateral_movement_chain"]);
    assert_eq!(out[0].meta("path"), ["a", "b", "c", "d"].map(String::from));
    assert_eq!(out[0].src, ip("a"));
    assert_eq!(out[0].severity, 1, "new edges: full severity");
    let counts = &out[0].evidence.counts;
    assert!(counts.contains(&("hops", 3)), "{counts:?}");
    assert!(counts.contains(&("refused", 1)), "{counts:?}");
    assert_eq!(
        out[0].meta("services"),
        ["tcp/22", "tcp/22", "tcp/445"].map(String::from)
    );
    l.finish(&mut out);
    assert_eq!(out.len(), 1, "{:?}", names(&out));
}

#[test]
fn a_closed_session_is_no_hop_and_a_jump_host_relays_with_its_own_sessions() {
    let mut l = Lateral::new(LateralConfig::default());
    let mut out = Vec::new();
    // a's session into b closes before b reaches c: two unrelated connections.
    l.attempt(&edge(0, "a", "b", 22, 50_000), &mut out);
    l.completed(&edge(1, "a", "b", 22, 50_000));
    l.closed(&edge(2, "a", "b", 22, 50_000).conn());
    l.attempt(&edge(3_000, "b", "c", 22, 40_000), &mut out);
    // A refused attempt into b opens nothing either.
    l.attempt(&edge(4_000, "e", "b", 22, 40_001), &mut out);
    l.refused(&edge(4_000, "e", "b", 22, 40_001));
    l.attempt(&edge(4_100, "b", "d", 22, 40_002), &mut out);
    l.finish(&mut out);
    assert!(out.is_empty(), "{:?}", names(&out));
}

#[test]
fn fanout_counts_attempts_and_refusals_and_spares_admin_hosts() {
    let mut l = Lateral::new(LateralConfig::default());
    let mut out = Vec::new();
    let mut t = 0;
    for h in ["b", "c", "d", "e"] {
        for (i, port) in [445u16, 3389, 5985, 22].into_iter().enumerate() {
            t += 50;
            l.attempt(&edge(t, "a", h, port, 30_000 + i as u16), &mut out);
            if port == 3389 {
                l.refused(&edge(t, "a", h, port, 30_000 + i as u16));
            } else {
                l.completed(&edge(t + 1, "a", h, port, 30_000 + i as u16));
            }
        }
    }
    // The same from a jump host, labelled admin.
    for h in ["b", "c", "d", "e"] {
        t += 50;
        let mut e = edge(t, "f", h, 22, 31_000);
        e.admin_source = true;
        l.attempt(&e, &mut out);
    }
    assert!(out.is_empty(), "reported when quiet, not per attempt");
    l.tick(t * 1_000_000 + 11_000_000_000, &mut out);
    assert_eq!(names(&out), ["admin_protocol_fanout"], "{out:#?}");
    let d = &out[0];
    assert_eq!(d.src, ip("a"));
    assert_eq!(d.meta("dest_nodes"), ["b", "c", "d", "e"].map(String::from));
    assert_eq!(
        d.meta("services"),
        ["tcp/22", "tcp/445", "tcp/3389", "tcp/5985"].map(String::from)
    );
    for c in [
        ("attempts", 16),
        ("refused", 4),
        ("completed", 12),
        ("hosts", 4),
    ] {
        assert!(
            d.evidence.counts.contains(&c),
            "{c:?} in {:?}",
            d.evidence.counts
        );
    }
    // The same attempts from a source that is scanning: the scan's, not a fan-out.
    let mut l = Lateral::new(LateralConfig::default());
    let mut out = Vec::new();
    for (i, h) in ["b", "c", "d"].iter().enumerate() {
        for port in [445u16, 3389, 22] {
            let mut e = edge(i as u64, "a", h, port, port);
            e.scanning = port == 3389;
            l.attempt(&e, &mut out);
            l.completed(&e);
        }
    }
    l.finish(&mut out);
    assert!(out.is_empty(), "{:?}", names(&out));
    // One protocol to four hosts, one refused: nothing at the default of ten hosts, one
    // alert for a group with a threshold of three; all completing (automation): nothing.
    for (need, refuse, alerts) in [(10, true, 0), (3, true, 1), (3, false, 0)] {
        let mut l = Lateral::new(LateralConfig::default());
        let mut out = Vec::new();
        for (i, h) in ["b", "c", "d", "e"].iter().enumerate() {
            let mut e = edge(i as u64, "a", h, 22, 1);
            e.fanout = (need, 300);
            l.attempt(&e, &mut out);
            if refuse && i == 0 {
                l.refused(&e);
            } else {
                l.completed(&e);
            }
        }
        l.finish(&mut out);
        assert_eq!(out.len(), alerts, "{:?}", names(&out));
    }
}

#[test]
fn the_baseline_lowers_severity_after_learning_and_never_mutes() {
    let mut l = Lateral::new(LateralConfig {
        learn_s: 100,
        ..LateralConfig::default()
    });
    let mut out = Vec::new();
    // Learned on the first day: a -> b -> c.
    l.attempt(&edge(0, "a", "b", 22, 1), &mut out);
    l.completed(&edge(1, "a", "b", 22, 1));
    l.attempt(&edge(10, "b", "c", 22, 2), &mut out);
    l.finish(&mut out);
    assert_eq!(names(&out), ["lateral_movement_chain"]);
    assert_eq!(out[0].severity, 1);
    // After learning, the same path again: still reported, one lower.
    let mut out = Vec::new();
    l.attempt(&edge(200_000, "a", "b", 22, 3), &mut out);
    l.completed(&edge(200_001, "a", "b", 22, 3));
    l.attempt(&edge(200_010, "b", "c", 22, 4), &mut out);
    // And a new edge: new_admin_edge, once.
    l.attempt(&edge(200_020, "b", "d", 22, 5), &mut out);
    l.attempt(&edge(200_030, "b", "d", 22, 6), &mut out);
    l.finish(&mut out);
    assert_eq!(names(&out), ["new_admin_edge", "lateral_movement_chain"]);
    assert_eq!(out[1].severity, 1, "the chain grew over a new edge");
    assert_eq!(out[1].meta("path"), ["a", "b", "c", "d"].map(String::from));
}

#[test]
fn state_stays_bounded() {
    let mut l = Lateral::new(LateralConfig {
        max_nodes: 64,
        max_edges: 64,
        ..LateralConfig::default()
    });
    let mut out = Vec::new();
    let names: Vec<String> = (0..1_000).map(|i| format!("n{i}")).collect();
    for i in 0..20_000usize {
        let a = &names[i % 1_000];
        let b = &names[(i * 7 + 1) % 1_000];
        let mut e = edge(i as u64, a, b, 22, i as u16);
        e.src = IpAddr::from((i as u32).to_be_bytes());
        l.attempt(&e, &mut out);
        l.completed(&e);
    }
    assert!(l.nodes.len() <= 64);
    assert!(l.baseline.len() <= 64);
    assert!(l.sessions.len() <= MAX_SESSIONS);
    assert!(l.chains.len() <= MAX_OPEN_CHAINS);
    assert!(l.refused > 0);
}
