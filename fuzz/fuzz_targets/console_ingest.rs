//! Records as a sensor (or an attacker posing as one) could send them to the console: any
//! bytes, taken as an EVE line, go through timestamp parsing, triage and a full store ingest
//! (flows, names, alerts into cases). Nothing may panic; a record is stored or refused whole.
#![no_main]

use islet_store::{EvidenceStore as _, IngestBatch, Record, SqliteStore, triage};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;

thread_local! {
    static STORE: RefCell<Option<SqliteStore>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let ts = value["timestamp"].as_str().and_then(triage::parse_ts).unwrap_or(0);
    let _ = triage::AlertFacts::from_record("fuzz", &value);
    if !value.is_object() {
        return;
    }
    let rec = Record {
        sensor: "fuzz".into(),
        seq: value["islet"]["seq"].as_u64(),
        digest: Sha256::digest(data).into(),
        value,
        ts_ms: ts,
        src: None,
        dest: None,
        flow: None,
    };
    STORE.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = SqliteStore::open(std::path::Path::new(":memory:"), islet_store::Sync::Normal).ok();
        }
        if let Some(store) = s.as_mut() {
            let batch = IngestBatch {
                records: vec![rec],
                heads: Vec::new(),
                case_window_ms: 3_600_000,
                now_ms: 0,
            };
            let _ = store.ingest(&batch);
            let _ = store.map(i64::MIN, i64::MAX, 100);
        }
    });
});
