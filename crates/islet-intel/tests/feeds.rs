//! MISP CSV and freetext feeds, described by MISP's own feed definition JSON (settings as the
//! JSON string MISP stores: value columns, delimiter, exclude regex).

use islet_intel::{Importer, Kind, Snapshot};
use serde_json::json;

#[test]
fn csv_and_freetext_feeds_follow_their_misp_settings() {
    let dir = std::env::temp_dir().join(format!("islet-feeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // A C2 tracker CSV as such feeds publish it: the address in column 2.
    std::fs::write(
        dir.join("c2.csv"),
        "# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n\
         \"2024-01-02 10:00:00\",\"198.51.100.7\",\"443\",\"online\",\"2024-01-03\",\"QakBot\"\n\
         \"2024-01-02 11:00:00\",\"203.0.113.9\",\"8080\",\"offline\",\"2024-01-02\",\"Emotet\"\n\
         \"2024-01-02 12:00:00\",\"10.0.0.5\",\"80\",\"online\",\"2024-01-03\",\"test\"\n\
         \"2024-01-02 13:00:00\",\"not-an-address\",\"80\",\"online\",\"2024-01-03\",\"x\"\n",
    )
    .expect("csv");
    std::fs::write(
        dir.join("report.txt"),
        "Payload hosted at hxxp://evil[.]example/dl/stage2 and beacons to c2[.]evil[.]example\n\
         over 192.0.2.44:8443. Dropper dropper.exe has MD5 d41d8cd98f00b204e9800998ecf8427e.\n",
    )
    .expect("txt");
    let defs = json!([
        {"Feed": {"name": "c2 tracker", "provider": "test", "url": "c2.csv", "source_format": "csv",
                  "input_source": "local",
                  "settings": "{\"csv\":{\"value\":\"2\",\"delimiter\":\",\"},\"common\":{\"excluderegex\":\"/^10\\\\./\"}}"}},
        {"Feed": {"name": "report", "provider": "test", "url": "report.txt", "source_format": "freetext",
                  "input_source": "local", "settings": ""}},
        {"Feed": {"name": "remote", "url": "https://feeds.invalid/list.txt", "source_format": "freetext"}}
    ]);
    let def_path = dir.join("feeds.json");
    std::fs::write(&def_path, serde_json::to_vec(&defs).expect("json")).expect("defs");
    let mut imp = Importer::new(Vec::new());
    imp.add_path(&def_path);
    let (snap, report) = imp.finish();
    let all: Vec<_> = snap.iter().collect();
    let values: Vec<(Kind, &str)> = all.iter().map(|i| (i.kind, i.value.as_str())).collect();
    assert_eq!(
        values,
        vec![
            (Kind::IpDst, "198.51.100.7"),
            (Kind::IpDst, "203.0.113.9"),
            (Kind::Url, "http://evil.example/dl/stage2"),
            (Kind::Domain, "c2.evil.example"),
            (Kind::IpDstPort, "192.0.2.44|8443"),
        ]
    );
    assert_eq!(report.not_observable.get("md5"), Some(&1));
    let reasons = report.rejected_by_reason();
    assert_eq!(
        reasons.get("unrecognised_value"),
        Some(&1),
        "{:?}",
        report.rejected
    );
    assert_eq!(reasons.get("remote_feed_not_fetched"), Some(&1));
    // 10.0.0.5 was excluded by the feed's regex: neither imported nor rejected.
    assert!(!values.iter().any(|(_, v)| *v == "10.0.0.5"));
    assert_eq!(snap.context(0).feed, "c2 tracker");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn snapshots_round_trip_every_field() {
    let doc = json!({"Event": {
    "uuid": "e-1", "info": "round\ttrip", "threat_level_id": 1, "Tag": [{"name": "tlp:red"}],
    "Attribute": [
        {"type": "user-agent", "value": "Mozilla/5.0 (tab\there) back\\slash", "to_ids": true,
         "uuid": "u-1", "category": "Network activity", "Tag": [{"name": "kill-chain:c2"}]},
        {"type": "domain", "value": "Evil.Example", "to_ids": false, "uuid": "u-2"},
        {"type": "ip-dst|port", "value": "192.0.2.1|443", "to_ids": true, "uuid": "u-3"}
    ]}});
    let mut imp = Importer::new(Vec::new());
    imp.add_bytes("e.json", doc.to_string().as_bytes());
    let (a, _) = imp.finish();
    let mut bytes = Vec::new();
    a.write_to(&mut bytes).expect("write");
    let mut imp = Importer::new(Vec::new());
    imp.add_bytes("snap", &bytes);
    let (b, report) = imp.finish();
    assert_eq!(report.rejected_total, 0, "{:?}", report.rejected);
    assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
    assert_eq!(a.context_count(), b.context_count());
    for c in 0..a.context_count() as u32 {
        assert_eq!(a.context_at(c), b.context_at(c));
    }
    // Saved and mapped: the same indicators, contexts and lookups.
    let path = std::env::temp_dir().join(format!("islet-snap-{}.islet", std::process::id()));
    a.save(&path).expect("save");
    let m = Snapshot::open(&path).expect("open");
    assert!(m.is_mapped());
    assert_eq!(m.iter().collect::<Vec<_>>(), a.iter().collect::<Vec<_>>());
    assert_eq!(m.context_at(0).tags, vec!["tlp:red".to_string()]);
    assert_eq!(m.indicator(0).tags, vec!["kill-chain:c2".to_string()]);
    let mut hits = Vec::new();
    m.match_addr_port(
        "192.0.2.1".parse().expect("ip"),
        Some(443),
        false,
        &mut hits,
    );
    assert_eq!(hits, vec![2]);
    hits.clear();
    m.match_addr_port("192.0.2.1".parse().expect("ip"), Some(80), false, &mut hits);
    assert!(hits.is_empty());
    m.match_name("www.evil.example.", &mut hits);
    assert_eq!(hits, vec![1]);
    // A damaged file is refused with the reason, and an import of it counts the rejection.
    let mut bytes = std::fs::read(&path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    let err = Snapshot::open(&path).expect_err("damaged").to_string();
    assert!(err.contains("checksum"), "{err}");
    let mut imp = Importer::new(Vec::new());
    imp.add_path(&path);
    assert_eq!(
        imp.report.rejected_by_reason().get("bad_snapshot"),
        Some(&1)
    );
    std::fs::write(&path, &bytes[..mid]).expect("truncate");
    assert!(
        Snapshot::open(&path)
            .expect_err("truncated")
            .to_string()
            .contains("truncated")
    );
    let _ = std::fs::remove_file(&path);
    let mut hits = Vec::new();
    b.match_value(
        Kind::UserAgent,
        "Mozilla/5.0 (tab\there) back\\slash",
        &mut hits,
    );
    assert_eq!(hits.len(), 1);
}
