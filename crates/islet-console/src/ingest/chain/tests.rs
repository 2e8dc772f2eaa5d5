//! Issue 18, finding 6 (chain order): records of a sensor through the console's ingest, with
//! its key configured, the way a Forward connection hands them over.

use crate::ingest::{Incoming, Ingest, IngestConfig};
use ed25519_dalek::SigningKey;
use islet_sink::chain::{ChainConfig, Head, Sealer};
use islet_store::{EvidenceStore as _, SensorHead, SqliteStore};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

const SENSOR: &str = "edge-31";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[31; 32])
}

struct Console {
    ingest: Ingest,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn console() -> Console {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path, islet_store::Sync::Normal).expect("store");
    let mut keys = HashMap::new();
    keys.insert(SENSOR.to_string(), key().verifying_key());
    let ingest = Ingest::start(
        store,
        IngestConfig {
            case_window_ms: 3_600_000,
            identify: crate::identify::Identify::default(),
            keys,
            clock: || 1_700_000_000_000,
        },
    )
    .expect("ingest");
    Console {
        ingest,
        path,
        _dir: dir,
    }
}

impl Console {
    fn send(&self, lines: &[Vec<u8>]) -> islet_store::IngestReport {
        let inc = lines
            .iter()
            .map(|l| Incoming {
                sensor: SENSOR.into(),
                line: l.clone(),
            })
            .collect();
        self.ingest.submit(inc).expect("committed")
    }

    fn head(&self) -> SensorHead {
        let r = SqliteStore::open_reader(&self.path).expect("reader");
        r.sensor_heads()
            .expect("heads")
            .into_iter()
            .find(|h| h.sensor == SENSOR)
            .expect("the sensor's head")
    }
}

/// A run of the sensor from `head`: `n` records (a checkpoint every 4), and a final checkpoint.
fn run(head: Head, n: usize, tag: &str) -> (Vec<Vec<u8>>, Head) {
    let cfg = ChainConfig {
        sensor: SENSOR.into(),
        checkpoint_every: 4,
        checkpoint_interval_ns: 0,
    };
    let mut s = Sealer::resume(cfg, Some(key()), head);
    let mut out = Vec::new();
    for i in 0..n {
        let l = format!(
            r#"{{"timestamp":"2023-11-14T22:13:20.000000+0000","event_type":"dns","dns":{{"rrname":"{tag}-{i}.example"}}}}"#
        );
        s.seal(l.as_bytes(), &mut out);
    }
    s.checkpoint(true, &mut out);
    (lines(&out), s.head())
}

fn lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn seq_of(l: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(l).expect("json")["islet"]["seq"]
        .as_u64()
        .expect("seq")
}

/// An old `seq` with other content was stored and the chain still read `ok`.
#[test]
fn finding_6_an_old_seq_with_other_content_is_refused_and_the_chain_is_not_ok() {
    let c = console();
    let (log, _) = run(Head::default(), 14, "a");
    let r = c.send(&log);
    assert_eq!(r.stored, log.len() as u64);
    assert_eq!(c.head().chain, "ok");
    // A resend of kept records (a reconnecting sensor) is a duplicate, nothing more; also
    // twice within one batch.
    let again: Vec<Vec<u8>> = log[3..9].iter().chain(&log[3..9]).cloned().collect();
    let r = c.send(&again);
    assert_eq!((r.stored, r.duplicates), (0, 12));
    assert_eq!(c.head().chain, "ok");
    // Record 6 again, its content changed: refused, one alert, the chain not ok.
    let forged = String::from_utf8_lossy(&log[5])
        .replacen("a-", "evil-", 1)
        .into_bytes();
    assert_eq!(seq_of(&forged), 6);
    let r = c.send(&[forged.clone(), forged]);
    assert_eq!(r.stored, 1, "only the alert is stored: {r:?}");
    let h = c.head();
    assert_eq!(h.chain, "broken", "{h:?}");
    assert!(h.detail.contains("record 6 refused"), "{h:?}");
    assert_eq!(h.next_seq, log.len() as u64 + 1, "the head did not move");
    assert_eq!(c.ingest.stats.refused.load(Ordering::Relaxed), 2);
    // The sensor goes on: its records are kept, the chain stays not ok.
    let (more, _) = run(
        Head {
            next_seq: log.len() as u64 + 1,
            prev: Sha256::digest(log.last().expect("last")).into(),
        },
        3,
        "b",
    );
    let r = c.send(&more);
    assert_eq!(r.stored, more.len() as u64);
    assert_eq!(c.head().chain, "broken");
}

/// After a real break, a record with `seq` 1 and a zero `prev` turned the chain back to `ok`.
#[test]
fn finding_6_a_new_chain_does_not_turn_a_broken_chain_ok() {
    let c = console();
    let (log, _) = run(Head::default(), 9, "a");
    c.send(&log[..6]);
    // Record 7 altered on the way: record 8 no longer follows it.
    let mut tampered = log[6].clone();
    tampered.extend_from_slice(b" ");
    c.send(&[tampered]);
    c.send(&log[7..]);
    assert_eq!(c.head().chain, "broken");
    // A new chain (seq 1 from genesis) under the same name.
    let (fresh, _) = run(Head::default(), 5, "new");
    assert_eq!(seq_of(&fresh[0]), 1);
    c.send(&fresh);
    let h = c.head();
    assert_eq!(h.chain, "broken", "{h:?}");
    assert!(
        h.detail.contains("does not follow"),
        "the first break stays named: {h:?}"
    );
}

/// A new chain from a sensor the console knows is stored but never `ok`; a rewind to a
/// mid-chain record is refused.
#[test]
fn finding_6_a_new_chain_from_a_known_sensor_is_unlinked_and_a_rewind_is_refused() {
    let c = console();
    let (log, _) = run(Head::default(), 10, "a");
    c.send(&log);
    let (fresh, _) = run(Head::default(), 6, "again");
    let r = c.send(&fresh);
    assert_eq!(
        r.stored,
        fresh.len() as u64 + 1,
        "records and the alert: {r:?}"
    );
    let h = c.head();
    assert_eq!(h.chain, "unlinked", "{h:?}");
    assert!(h.detail.contains("new chain"), "{h:?}");
    // A rewind inside the new chain: its third record with other content.
    let other = String::from_utf8_lossy(&fresh[2])
        .replacen("again-", "other-", 1)
        .into_bytes();
    let r = c.send(&[other]);
    assert_eq!(r.stored, 1, "only the alert: {r:?}");
    assert_eq!(c.head().chain, "broken");
}

/// A sensor restarted with its saved head continues its chain: the console reads `ok`.
#[test]
fn a_sensor_restarted_with_its_saved_head_continues_its_chain_ok() {
    let c = console();
    let (run1, head) = run(Head::default(), 7, "day1");
    let (run2, head2) = run(head, 9, "day2");
    assert_eq!(seq_of(&run2[0]), seq_of(run1.last().expect("last")) + 1);
    c.send(&run1);
    c.send(&run2);
    let h = c.head();
    assert_eq!(
        (h.chain.as_str(), h.next_seq),
        ("ok", head2.next_seq),
        "{h:?}"
    );
}

/// With the sensor's key, a checkpoint signature covers the whole record: a field added to a
/// checkpoint breaks the chain even where it is the last record.
#[test]
fn an_edited_checkpoint_breaks_the_chain_with_the_sensors_key() {
    let c = console();
    let (log, _) = run(Head::default(), 5, "a");
    let last = String::from_utf8_lossy(log.last().expect("last")).replacen(
        "\"final\":true",
        "\"final\":true,\"note\":1",
        1,
    );
    let mut edited = log.clone();
    *edited.last_mut().expect("last") = last.into_bytes();
    c.send(&edited);
    let h = c.head();
    assert_eq!(h.chain, "broken", "{h:?}");
    assert!(h.detail.contains("checkpoint"), "{h:?}");
}

/// A sensor restarted after an unclean stop declares its last delivery in a gap record that
/// sits behind the console's head: accepted, not refused, and the chain goes on.
#[test]
fn an_overlapping_gap_after_an_unclean_stop_is_accepted() {
    let c = console();
    let cfg = ChainConfig {
        sensor: SENSOR.into(),
        checkpoint_every: 0,
        checkpoint_interval_ns: 0,
    };
    let mut s = Sealer::new(cfg.clone(), Some(key()));
    let mut out = Vec::new();
    for i in 0..10 {
        let l = format!(
            r#"{{"timestamp":"2023-11-14T22:13:20.000000+0000","event_type":"dns","n":{i}}}"#
        );
        s.seal(l.as_bytes(), &mut out);
    }
    let log = lines(&out);
    c.send(&log);
    // Records 8..10 were being delivered when the sensor died; all reached the console.
    let prev7: [u8; 32] = Sha256::digest(&log[6]).into();
    let head = s.head();
    let mut gap = Vec::new();
    s.gap_record(8, 10, &prev7, &head.prev, "unclean stop", &mut gap);
    let mut s2 = Sealer::resume(cfg, Some(key()), head);
    let mut rest = Vec::new();
    s2.seal(
        br#"{"timestamp":"2023-11-14T22:13:21.000000+0000","event_type":"dns","n":10}"#,
        &mut rest,
    );
    s2.checkpoint(true, &mut rest);
    let mut next = lines(&gap);
    next.extend(lines(&rest));
    let r = c.send(&next);
    assert_eq!(r.stored, 3, "{r:?}");
    let h = c.head();
    assert_eq!((h.chain.as_str(), h.next_seq), ("ok", 13), "{h:?}");
}

/// A Forward client restarted after a crash declares records it had in memory, which the
/// console had received already (and more after them): the gap fits the kept chain and is
/// taken as it is; one that does not fit is refused.
#[test]
fn a_gap_wholly_behind_the_head_is_kept_when_it_fits_the_chain() {
    let c = console();
    let (log, _) = run(Head::default(), 14, "a");
    c.send(&log);
    let hash = |i: usize| -> [u8; 32] { Sha256::digest(&log[i]).into() };
    let sealer = Sealer::new(
        ChainConfig {
            sensor: SENSOR.into(),
            ..ChainConfig::default()
        },
        Some(key()),
    );
    // Records 5..8 declared lost: record 4 before them, record 8 the last.
    let mut gap = Vec::new();
    sealer.gap_record(5, 8, &hash(3), &hash(7), "client restarted", &mut gap);
    let r = c.send(&lines(&gap));
    assert_eq!(r.stored, 1, "{r:?}");
    assert_eq!(c.head().chain, "ok");
    // The same range resuming at a record that is not record 8: refused.
    let mut bad = Vec::new();
    sealer.gap_record(5, 8, &hash(3), &hash(9), "client restarted", &mut bad);
    let r = c.send(&lines(&bad));
    assert_eq!(r.stored, 1, "only the alert: {r:?}");
    assert_eq!(c.head().chain, "broken");
}
