//! Records as a sensor (or an attacker posing as one) could send them to the console: any
//! bytes, taken as an EVE line, are decoded once into `islet_event::record::EveRecord` and go
//! through triage and a full store ingest (flows, names, alerts into cases, the sealed line
//! kept verbatim). Nothing may panic; a record is stored or refused whole, and a stored record
//! comes back byte for byte.
#![no_main]

use islet_store::{EvidenceStore as _, IngestBatch, Record, SqliteStore, triage};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    static STORE: RefCell<Option<SqliteStore>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = Record::from_line("fuzz", data.to_vec(), 0) else {
        return;
    };
    let _ = triage::AlertFacts::from_record("fuzz", &rec.eve);
    let _ = rec.eve.stats_summary();
    let seq = rec.seq;
    STORE.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s =
                SqliteStore::open(std::path::Path::new(":memory:"), islet_store::Sync::Normal).ok();
        }
        if let Some(store) = s.as_mut() {
            let batch = IngestBatch {
                records: vec![rec],
                heads: Vec::new(),
                case_window_ms: 3_600_000,
                now_ms: 0,
            };
            let stored = store.ingest(&batch).map(|r| r.stored).unwrap_or(0);
            let _ = store.map(i64::MIN, i64::MAX, 100);
            // A chained record just stored is given back as it came (without the one trailing
            // newline a line may carry; a newline inside the record is kept: blocks are framed
            // by length).
            let text = std::str::from_utf8(data).unwrap_or("");
            let text = text.strip_suffix('\n').unwrap_or(text);
            if let (1, Some(q)) = (stored, seq)
                && q > 0
                && q < i64::MAX as u64
                && let Ok(back) = store.sealed("fuzz", q - 1, 1_000)
            {
                assert!(back.iter().any(|(s, l)| *s == q && l == text));
            }
        }
    });
});
