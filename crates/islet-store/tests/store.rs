//! The SQLite store through its trait: duplicates, alert upserts, grouping into cases within
//! the window, case actions and their audit, the map over time, retention and migrations.

use islet_store::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const T0: i64 = 1_767_694_200_000;

fn rec(sensor: &str, seq: u64, v: Value, ts: i64) -> Record {
    let line = v.to_string();
    let mut r = Record::from_line(sensor, line.into_bytes(), ts).expect("record");
    assert_eq!(r.digest, <[u8; 32]>::from(Sha256::digest(&r.line)));
    r.seq = Some(seq);
    r.ts_ms = ts;
    r
}

fn alert(sid: u64, src: &str, dst: &str, detection: &str) -> Value {
    json!({"event_type": "alert", "src_ip": src, "dest_ip": dst, "proto": "TCP",
        "alert": {"signature_id": sid, "signature": format!("test {detection} {src}->{dst}"), "severity": 2,
          "category": "c", "metadata": {"detection": [detection], "mitre_technique_id": ["T1021"]}}})
}

fn flow(src: &str, dst: &str, port: u16, start: &str) -> Value {
    json!({"event_type": "flow", "src_ip": src, "dest_ip": dst, "src_port": 40000, "dest_port": port,
        "proto": "TCP", "flow": {"pkts_toserver": 3, "pkts_toclient": 2, "bytes_toserver": 300,
        "bytes_toclient": 200, "start": start, "end": start, "alerted": false}})
}

fn batch(records: Vec<Record>) -> IngestBatch {
    IngestBatch {
        records,
        heads: Vec::new(),
        case_window_ms: 3_600_000,
        now_ms: T0,
    }
}

fn open() -> (tempfile::TempDir, SqliteStore) {
    let d = tempfile::tempdir().expect("tmp");
    let s = SqliteStore::open(&d.path().join("s.sqlite"), Sync::Normal).expect("open");
    (d, s)
}

#[test]
fn a_resent_record_is_stored_once() {
    let (_d, mut s) = open();
    let r = rec(
        "s1",
        1,
        flow(
            "10.0.0.1",
            "10.0.0.2",
            80,
            "2026-01-06T10:10:00.000000+0000",
        ),
        T0,
    );
    let a = s.ingest(&batch(vec![r.clone()])).expect("ingest");
    let b = s.ingest(&batch(vec![r.clone(), r])).expect("ingest");
    assert_eq!((a.stored, a.duplicates), (1, 0));
    assert_eq!((b.stored, b.duplicates), (0, 2));
    assert_eq!(s.flows(&FlowQuery::default()).expect("flows").total, 1);
    // The same sequence number with other content (a new chain) is not a duplicate.
    let other = rec(
        "s1",
        1,
        flow(
            "10.0.0.1",
            "10.0.0.3",
            80,
            "2026-01-06T10:11:00.000000+0000",
        ),
        T0,
    );
    assert_eq!(s.ingest(&batch(vec![other])).expect("ingest").stored, 1);
}

#[test]
fn repeats_update_alerts_and_shared_observables_group_cases_within_the_window() {
    let (_d, mut s) = open();
    let a1 = rec(
        "s",
        1,
        alert(1, "10.0.2.21", "10.0.3.30", "new_admin_edge"),
        T0,
    );
    let a1_again = rec(
        "s",
        2,
        alert(1, "10.0.2.21", "10.0.3.30", "new_admin_edge"),
        T0 + 1000,
    );
    let a2 = rec(
        "s",
        3,
        alert(2, "10.0.3.30", "10.0.3.40", "new_admin_edge"),
        T0 + 60_000,
    );
    // Shares nothing: its own case.
    let a3 = rec(
        "s",
        4,
        alert(3, "10.9.9.9", "10.9.9.8", "port_scan"),
        T0 + 60_000,
    );
    // Shares 10.0.3.40, but two hours later: a new case.
    let a4 = rec(
        "s",
        5,
        alert(4, "10.0.3.40", "10.0.3.50", "new_admin_edge"),
        T0 + 7_200_000,
    );
    let r = s
        .ingest(&batch(vec![a1, a1_again, a2, a3, a4]))
        .expect("ingest");
    assert_eq!((r.alerts_new, r.alerts_repeated, r.cases_new), (4, 1, 3));
    let cases = s.cases(&CaseQuery::default()).expect("cases");
    assert_eq!(cases.total, 3);
    let grouped = cases
        .items
        .iter()
        .find(|c| c.alerts == 2)
        .expect("the grouped case");
    let d = s.case(grouped.id).expect("case");
    assert!(
        d.reasons.iter().any(|r| r.contains("shares ip 10.0.3.30")),
        "{:?}",
        d.reasons
    );
    assert_eq!(
        d.alerts
            .iter()
            .find(|a| a.signature_id == 1)
            .map(|a| a.count),
        Some(2)
    );
    let obs: Vec<&str> = d.observables.iter().map(|o| o.data.as_str()).collect();
    assert_eq!(
        obs,
        ["10.0.2.21", "10.0.3.30", "10.0.3.40"],
        "deduplicated per case"
    );
    assert_eq!(d.summary.severity, 2);

    // A closed case takes no new alerts.
    s.update_case(
        grouped.id,
        &CaseChange {
            status: Some(Status::Closed),
            ..CaseChange::default()
        },
        "ana",
        T0,
    )
    .expect("close");
    let a5 = rec(
        "s",
        6,
        alert(5, "10.0.2.21", "10.0.3.99", "new_admin_edge"),
        T0 + 120_000,
    );
    assert_eq!(s.ingest(&batch(vec![a5])).expect("ingest").cases_new, 1);
}

#[test]
fn case_actions_are_audited_with_who_and_when() {
    let (_d, mut s) = open();
    let r = s
        .ingest(&batch(vec![
            rec("s", 1, alert(1, "10.0.0.1", "10.0.0.2", "x"), T0),
            rec("s", 2, alert(2, "10.0.0.1", "10.0.0.3", "y"), T0 + 1),
            rec("s", 3, alert(3, "10.7.0.1", "10.7.0.2", "z"), T0 + 2),
        ]))
        .expect("ingest");
    assert_eq!(r.cases_new, 2);
    let cases = s.cases(&CaseQuery::default()).expect("cases").items;
    let (big, small) = if cases[0].alerts == 2 {
        (cases[0].id, cases[1].id)
    } else {
        (cases[1].id, cases[0].id)
    };
    s.add_note(big, "looked at it", "ana", T0 + 10)
        .expect("note");
    let merged = s.merge_cases(big, small, "ana", T0 + 20).expect("merge");
    assert_eq!(merged.alerts.len(), 3);
    assert_eq!(
        s.case(small).expect("case").summary.status,
        Status::Duplicated
    );
    assert!(
        s.merge_cases(big, big, "ana", T0).is_err(),
        "not into itself"
    );
    let alert_id = merged.alerts[0].id;
    let fresh = s.detach_alert(alert_id, "bob", T0 + 30).expect("detach");
    assert_eq!(fresh.alerts.len(), 1);
    assert_eq!(s.case(big).expect("case").alerts.len(), 2);
    let audit = s.audit(&PageReq::default()).expect("audit").items;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    for want in [("note", "ana"), ("merge", "ana"), ("detach", "bob")] {
        assert!(actions.contains(&want), "{want:?} missing from {actions:?}");
    }
    assert!(matches!(s.case(9999), Err(StoreError::NotFound(_))));
}

#[test]
fn the_map_keeps_workloads_that_are_gone_and_labels_frozen_per_flow() {
    let (_d, mut s) = open();
    let mut r = rec(
        "s",
        1,
        flow(
            "10.0.5.5",
            "10.0.5.6",
            443,
            "2026-01-06T10:10:00.000000+0000",
        ),
        T0,
    );
    r.src = Some(Endpoint {
        key: "shop/web-1".into(),
        kind: "pod".into(),
        name: "web-1".into(),
        namespace: "shop".into(),
        labels: [("app".to_string(), "web".to_string())].into(),
        critical: false,
    });
    s.ingest(&batch(vec![r])).expect("ingest");
    // Later traffic, a day on.
    let later = rec(
        "s",
        2,
        flow(
            "10.0.9.1",
            "10.0.9.2",
            53,
            "2026-01-07T10:10:00.000000+0000",
        ),
        T0 + 86_400_000,
    );
    s.ingest(&batch(vec![later])).expect("ingest");
    let then = s.map(T0, T0 + 60_000, 100).expect("map");
    assert_eq!(then.edges.len(), 1);
    assert_eq!(then.edges[0].src, "shop/web-1");
    assert_eq!(then.edges[0].service, "tcp/443");
    let pod = then
        .nodes
        .iter()
        .find(|n| n.key == "shop/web-1")
        .expect("the pod");
    assert_eq!(pod.labels.get("app").map(String::as_str), Some("web"));
    let now = s.map(T0 + 86_400_000, T0 + 86_460_000, 100).expect("map");
    assert!(now.nodes.iter().all(|n| n.key != "shop/web-1"));
    let f = s
        .flows(&FlowQuery {
            identity: Some("shop/web-1".into()),
            ..FlowQuery::default()
        })
        .expect("flows");
    assert_eq!(f.total, 1);
    assert_eq!(
        f.items[0].src.labels.get("app").map(String::as_str),
        Some("web")
    );
}

#[test]
fn retention_by_age_and_by_rows() {
    let (_d, mut s) = open();
    let mut recs = Vec::new();
    for i in 0..10u64 {
        let t = T0 + i as i64 * 86_400_000;
        let start = format!("2026-01-{:02}T10:10:00.000000+0000", 6 + i);
        recs.push(rec("s", i + 1, flow("10.0.0.1", "10.0.0.2", 80, &start), t));
    }
    s.ingest(&batch(recs)).expect("ingest");
    let r = s
        .prune(
            &Retention {
                flows_age_ms: 5 * 86_400_000,
                ..Retention::default()
            },
            T0 + 10 * 86_400_000,
        )
        .expect("prune");
    assert_eq!(r.flows, 5, "older than five days");
    let r = s
        .prune(
            &Retention {
                flows_rows: 2,
                ..Retention::default()
            },
            T0,
        )
        .expect("prune");
    assert_eq!(r.flows, 3);
    assert_eq!(s.usage().expect("usage").rows["flows"], 2);
}

#[test]
fn migrations_apply_once_and_a_newer_database_is_refused() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path().join("s.sqlite");
    let v = SqliteStore::open(&p, Sync::Full)
        .expect("open")
        .schema_version()
        .expect("v");
    assert!(v >= 1);
    assert_eq!(
        SqliteStore::open(&p, Sync::Full)
            .expect("reopen")
            .schema_version()
            .expect("v"),
        v
    );
    let c = rusqlite::Connection::open(&p).expect("raw");
    c.pragma_update(None, "user_version", v + 1).expect("bump");
    drop(c);
    assert!(matches!(
        SqliteStore::open(&p, Sync::Full),
        Err(StoreError::Invalid(_))
    ));
}

proptest! {
    /// Any JSON an attacker puts in an alert record triages without panicking, and yields
    /// bounded observables.
    #[test]
    fn arbitrary_alert_records_triage_safely(src in "\\PC{0,40}", dst in "\\PC{0,40}", path in proptest::collection::vec("\\PC{0,20}", 0..100), sev in any::<i64>()) {
        let v = json!({"src_ip": src, "dest_ip": dst, "alert": {"severity": sev, "metadata": {"path": path, "detection": ["lateral_movement_chain"]}}});
        let v = islet_event::record::EveRecord::decode(v.to_string().as_bytes()).expect("record");
        let f = triage::AlertFacts::from_record("s", &v);
        prop_assert!(f.observables.len() <= triage::MAX_OBSERVABLES_PER_ALERT);
        prop_assert!(f.severity >= 1);
    }

    /// EVE timestamps parse back to the instant they were written for.
    #[test]
    fn eve_timestamps_round_trip(ms in 0i64..4_102_444_800_000) {
        let mut b = Vec::new();
        islet_event::time::write_iso(&mut b, (ms as u64) * 1_000_000);
        let text = String::from_utf8(b).expect("utf8");
        prop_assert_eq!(triage::parse_ts(text.trim_matches('"')), Some(ms));
    }
}

#[test]
fn sensor_health_comes_from_the_sensors_own_stats_records() {
    let (_d, mut s) = open();
    let stats = |events: u64, uptime: u64| {
        json!({"event_type": "stats", "stats": {"uptime": uptime,
            "capture": {"kernel_packets": 1000, "kernel_drops": 7},
            "protection": {"cpu_seconds": 2.0, "protected_pkts_per_cpu_second": 123456.0},
            "output": {"events": {"flow": events}, "drops": {"decode": 1, "flow_table": 0, "buffer": 0, "sink": 2}}}})
    };
    s.ingest(&batch(vec![rec("edge-1", 1, stats(100, 10), T0)]))
        .expect("ingest");
    s.ingest(&batch(vec![rec("edge-1", 2, stats(400, 20), T0 + 10_000)]))
        .expect("ingest");
    let row = &s.sensors().expect("sensors")[0];
    assert_eq!(row.name, "edge-1");
    assert_eq!(row.drops, 10, "kernel 7 + decode 1 + sink 2");
    assert_eq!(row.protection_ratio, Some(123_456.0));
    assert!(
        (row.events_per_sec - 30.0).abs() < 1e-9,
        "300 events in 10 s: {}",
        row.events_per_sec
    );
}

#[test]
fn duplicate_keys_are_kept_for_a_window_behind_each_chain_head() {
    let (_d, mut s) = open();
    let recs: Vec<Record> = (1..=100u64)
        .map(|i| {
            rec(
                "s",
                i,
                flow(
                    "10.0.0.1",
                    "10.0.0.2",
                    80,
                    "2026-01-06T10:10:00.000000+0000",
                ),
                T0,
            )
        })
        .collect();
    let old = recs[9].clone();
    let mut b = batch(recs);
    b.heads.push(SensorHead {
        sensor: "s".into(),
        next_seq: 101,
        prev: String::new(),
        chain: "ok".into(),
        detail: String::new(),
    });
    s.ingest(&b).expect("ingest");
    let r = s
        .prune(
            &Retention {
                dedupe_window: 50,
                ..Retention::default()
            },
            T0,
        )
        .expect("prune");
    assert_eq!(r.seen, 50);
    assert_eq!(s.usage().expect("usage").rows["seen"], 50);
    // Within the window a resend is still a duplicate; beyond it, it is not.
    let recent = rec(
        "s",
        90,
        flow(
            "10.0.0.1",
            "10.0.0.2",
            80,
            "2026-01-06T10:10:00.000000+0000",
        ),
        T0,
    );
    assert_eq!(
        s.ingest(&batch(vec![recent])).expect("ingest").duplicates,
        1
    );
    assert_eq!(s.ingest(&batch(vec![old])).expect("ingest").stored, 1);
}

/// Issue 18, finding 9: merging into a case that is already Duplicated (or Closed) left both
/// Duplicated. A merge must go into a live case, and a case merged once gives nothing again.
#[test]
fn finding9_merge_into_a_duplicated_or_closed_case_is_refused() {
    let (_d, mut s) = open();
    s.ingest(&batch(vec![
        rec("s", 1, alert(1, "10.1.0.1", "10.1.0.2", "a"), T0),
        rec("s", 2, alert(2, "10.2.0.1", "10.2.0.2", "b"), T0 + 1),
        rec("s", 3, alert(3, "10.3.0.1", "10.3.0.2", "c"), T0 + 2),
        rec("s", 4, alert(4, "10.4.0.1", "10.4.0.2", "d"), T0 + 3),
    ]))
    .expect("ingest");
    let mut ids: Vec<i64> = s
        .cases(&CaseQuery::default())
        .expect("cases")
        .items
        .iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    let [a, b, c, d] = ids[..] else {
        panic!("four cases: {ids:?}");
    };
    s.merge_cases(a, b, "ana", T0 + 10).expect("b into a");
    // Into the duplicated b: refused, and c stays as it was.
    let e = s
        .merge_cases(b, c, "ana", T0 + 11)
        .expect_err("into a duplicate");
    assert!(
        matches!(&e, StoreError::Invalid(m) if m.contains("Duplicated")),
        "{e}"
    );
    assert_eq!(s.case(c).expect("c").summary.status, Status::New);
    assert_eq!(s.case(c).expect("c").alerts.len(), 1);
    // From the duplicated b again: nothing left to give.
    assert!(s.merge_cases(c, b, "ana", T0 + 12).is_err());
    assert_eq!(s.case(a).expect("a").alerts.len(), 2);
    // Into a closed case: refused.
    s.update_case(
        d,
        &CaseChange {
            status: Some(Status::Closed),
            ..CaseChange::default()
        },
        "ana",
        T0 + 13,
    )
    .expect("close d");
    let e = s
        .merge_cases(d, c, "ana", T0 + 14)
        .expect_err("into closed");
    assert!(
        matches!(&e, StoreError::Invalid(m) if m.contains("Closed")),
        "{e}"
    );
    assert_eq!(s.case(c).expect("c").summary.status, Status::New);
    // Into a live case it still works.
    s.merge_cases(a, c, "ana", T0 + 15).expect("c into a");
    assert_eq!(s.case(a).expect("a").alerts.len(), 3);
}

/// Every chained record comes back from `sealed` byte for byte as it was ingested (flows,
/// protocol events, alerts, stats), in chain order, once, paged from a seq; unchained records
/// (the console's own alerts) and other sensors' records are not in it.
#[test]
fn sealed_records_come_back_verbatim_in_chain_order() {
    let (_d, mut s) = open();
    // Member order and spacing the console would not write itself: kept as received.
    let lines = [
        r#"{"timestamp":"2026-01-06T10:10:00.000000+0000","event_type":"flow","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","src_port":1,"dest_port":80,"proto":"TCP","flow":{"start":"2026-01-06T10:10:00.000000+0000","pkts_toserver":1},"islet":{"seq":1}}"#,
        r#"{"timestamp":"2026-01-06T10:10:01.000000+0000","event_type":"dns","dns":{"type":"query","rrname":"a.example"}, "islet":{"seq":2}}"#,
        r#"{"timestamp":"2026-01-06T10:10:02.000000+0000","event_type":"alert","src_ip":"10.0.0.1","alert":{"signature_id":1,"signature":"x"},"islet":{"seq":3}}"#,
        r#"{"timestamp":"2026-01-06T10:10:03.000000+0000","event_type":"stats","stats":{"uptime":1,  "output":{}},"islet":{"seq":4}}"#,
    ];
    let mut recs: Vec<Record> = lines
        .iter()
        .map(|l| Record::from_line("s1", l.as_bytes().to_vec(), T0).expect("record"))
        .collect();
    recs.push(rec("s1", 0, alert(9, "10.0.0.9", "10.0.0.8", "x"), T0));
    recs.last_mut().expect("last").seq = None;
    recs.push(rec(
        "s2",
        5,
        flow("10.0.0.3", "10.0.0.4", 22, "2026-01-06T10:10:00Z"),
        T0,
    ));
    s.ingest(&batch(recs)).expect("ingest");
    // A resend of the last two is dropped as a duplicate, and not kept twice.
    let again: Vec<Record> = lines[2..]
        .iter()
        .map(|l| Record::from_line("s1", l.as_bytes().to_vec(), T0).expect("record"))
        .collect();
    assert_eq!(s.ingest(&batch(again)).expect("resend").duplicates, 2);
    let all = s.sealed("s1", 0, 100).expect("sealed");
    assert_eq!(all.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    for ((_, got), want) in all.iter().zip(lines) {
        assert_eq!(got, want);
    }
    let page = s.sealed("s1", 2, 1).expect("page");
    assert_eq!(page, [(3, lines[2].to_string())]);
    assert!(s.sealed("nobody", 0, 10).expect("unknown").is_empty());
}
