//! Each sensor's evidence chain, checked in the ingest writer as records arrive.
//!
//! A record joins its sensor's chain only in order. Behind the head, a record is a resend when
//! the same record (sequence number and SHA-256) is kept already — in the store or earlier in the
//! batch — and is handed on for the store to drop as a duplicate; otherwise it is refused:
//! not stored, counted, and alerted (once per sensor and batch, so a flood of them costs one
//! alert per commit). The exceptions are gap records: one declaring records up to or past the
//! head (a sensor restarted after an unclean stop declares what it may not have delivered), and
//! one wholly behind the head whose neighbours — the record before it and the last it declares
//! — are both kept (a Forward client restarted after a crash declares records that had arrived).
//!
//! A new chain (seq 1 from genesis) from a sensor whose chain is further on is stored, alerted
//! (`chain_restart`) and marks the chain `unlinked`: a sensor keeping its saved head continues
//! its chain across restarts, so a new one means it lost its state, or is someone else. The
//! records are kept for the investigator because refusing would lose a reinstalled sensor's
//! evidence with no way back; the status says they are not tied to what came before.
//!
//! A status only gets worse: `ok` < `gap` < `unlinked` < `broken`.

use super::{Decoded, IngestError, IngestStats};
use islet_sink::chain::{GENESIS, SigError};
use islet_store::Record;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

/// Per-sensor chain state.
#[derive(Debug, Clone)]
pub(super) struct Chain {
    pub next_seq: u64,
    pub prev: [u8; 32],
    pub status: String,
    pub detail: String,
}

/// What one batch has handed to the store so far, per sensor: (seq, SHA-256) of its chained
/// records, so a resend within the same batch is a duplicate too; and the sensors already
/// alerted for a refused record in this batch.
#[derive(Debug, Default)]
pub(super) struct BatchSeen {
    records: HashMap<String, HashSet<(u64, [u8; 32])>>,
    refusal_alerted: HashSet<String>,
}

/// Whether the store keeps record `seq` of a sensor with this SHA-256.
pub(super) type Kept<'a> = &'a dyn Fn(&str, u64, &[u8; 32]) -> islet_store::Result<bool>;

/// What the chain check of one record works with.
pub(super) struct ChainCtx<'a> {
    pub chains: &'a mut HashMap<String, Chain>,
    pub out: &'a mut Vec<Record>,
    pub touched: &'a mut Vec<String>,
    pub stats: &'a IngestStats,
    pub seen: &'a mut BatchSeen,
    pub kept: Kept<'a>,
}

const SID_BROKEN: u32 = 9_400_001;
const SID_GAP: u32 = 9_400_002;
const SID_RESTART: u32 = 9_400_003;

fn rank(status: &str) -> u8 {
    match status {
        "gap" => 1,
        "unlinked" => 2,
        "broken" => 3,
        _ => 0,
    }
}

impl Chain {
    fn new(next_seq: u64, prev: [u8; 32]) -> Chain {
        Chain {
            next_seq,
            prev,
            status: "ok".into(),
            detail: String::new(),
        }
    }

    /// Record a finding: the status becomes `status` unless it already is worse (then the
    /// worse finding's detail stays).
    fn raise(&mut self, status: &str, detail: String) {
        if rank(status) >= rank(&self.status) {
            self.status = status.into();
            self.detail = detail;
        }
    }
}

/// Check a record against its sensor's chain and queue it for the store (after the alert
/// record of a finding, if there is one); a refused record is not queued. An error when the
/// store cannot say whether a record is kept.
pub(super) fn chain(d: Decoded, cx: &mut ChainCtx<'_>) -> Result<(), IngestError> {
    let Decoded { rec: r, sig } = d;
    let Some(seq) = r.seq else {
        cx.out.push(r);
        return Ok(());
    };
    if cx.touched.last() != Some(&r.sensor) {
        cx.touched.push(r.sensor.clone());
    }
    let verdict = check(&r, seq, sig, cx)?;
    let alert = match verdict {
        Verdict::Keep(a) => a,
        Verdict::Refuse(a) => {
            cx.stats.refused.fetch_add(1, Ordering::Relaxed);
            if let Some(a) = a {
                push_alert(cx, &r, a);
            }
            return Ok(());
        }
    };
    if let Some(a) = alert {
        push_alert(cx, &r, a);
    }
    let set = match cx.seen.records.get_mut(&r.sensor) {
        Some(s) => s,
        None => cx.seen.records.entry(r.sensor.clone()).or_default(),
    };
    set.insert((seq, r.digest));
    cx.out.push(r);
    Ok(())
}

fn push_alert(cx: &mut ChainCtx<'_>, r: &Record, line: Vec<u8>) {
    cx.stats.chain_alerts.fetch_add(1, Ordering::Relaxed);
    // The console's own record: decoded like any other (it is an object, so this holds).
    if let Ok(mut a) = Record::from_line(&r.sensor, line, r.ts_ms) {
        a.ts_ms = r.ts_ms;
        a.seq = None;
        cx.out.push(a);
    }
}

enum Verdict {
    /// Into the store (which drops it if it is a duplicate), after this alert if any.
    Keep(Option<Vec<u8>>),
    /// Not stored; this alert if any.
    Refuse(Option<Vec<u8>>),
}

pub(super) fn chain_alert(
    sensor: &str,
    seq: u64,
    ts: &Option<String>,
    detection: &str,
    sid: u32,
    text: &str,
) -> Vec<u8> {
    let mut line = Vec::with_capacity(512);
    islet_event::alert::write_chain_finding(
        &mut line,
        &islet_event::alert::ChainFinding {
            sensor,
            seq,
            timestamp: ts.as_deref(),
            detection,
            signature_id: sid,
            text,
        },
    );
    line
}

fn hash_of(v: &Option<String>) -> Option<[u8; 32]> {
    islet_event::record::hex32(v.as_deref()?)
}

fn check(
    r: &Record,
    seq: u64,
    sig: Option<Result<(), SigError>>,
    cx: &mut ChainCtx<'_>,
) -> Result<Verdict, IngestError> {
    let (s, v) = (r.sensor.as_str(), &r.eve);
    let prev = v.prev();
    let et = v.event_type.as_str();
    let ts = &v.timestamp;
    let no_gap = islet_event::record::Gap::default();
    let g = v.gap.as_deref().unwrap_or(&no_gap);
    let c = cx
        .chains
        .entry(s.to_string())
        .or_insert_with(|| Chain::new(seq, prev.unwrap_or(GENESIS)));
    let broken = |c: &mut Chain, text: String| {
        let a = chain_alert(s, seq, ts, "chain_broken", SID_BROKEN, &text);
        c.raise("broken", text);
        a
    };
    let mut alert = None;
    if seq < c.next_seq {
        let resend = cx
            .seen
            .records
            .get(s)
            .is_some_and(|k| k.contains(&(seq, r.digest)))
            || (cx.kept)(s, seq, &r.digest).map_err(|e| IngestError::Store(e.to_string()))?;
        if resend {
            return Ok(Verdict::Keep(None));
        }
        let gap_last = g.last_seq.unwrap_or(0);
        if et == "gap" && g.first_seq == Some(seq) && gap_last + 1 >= c.next_seq {
            // Declared after an unclean stop: records up to the head or past it that may not
            // have arrived. Those that did were checked; the chain goes on after the gap.
            if let Some(Err(why)) = sig {
                alert = Some(broken(c, format!("gap record {seq}: {why}")));
            } else if gap_last + 1 == c.next_seq && hash_of(&g.resume_prev) != Some(c.prev) {
                alert = Some(broken(
                    c,
                    format!(
                        "gap record {seq}: resume_prev is not the last record kept ({})",
                        c.next_seq - 1
                    ),
                ));
            } else if gap_last + 1 > c.next_seq {
                let text = format!(
                    "sensor declared records {}..{gap_last} lost ({})",
                    c.next_seq,
                    g.reason.as_deref().unwrap_or("")
                );
                alert = Some(chain_alert(s, seq, ts, "chain_gap", SID_GAP, &text));
                c.raise("gap", text);
            }
            c.next_seq = gap_last + 1;
            c.prev = hash_of(&g.resume_prev).unwrap_or(GENESIS);
            return Ok(Verdict::Keep(alert));
        }
        if et == "gap"
            && g.first_seq == Some(seq)
            && gap_last >= seq
            && !matches!(sig, Some(Err(_)))
        {
            // A gap wholly behind the head (a Forward client restarted after a crash declares
            // what it had in memory; the console had received it all): harmless when it fits
            // the chain kept — the record before it and the last it declares are both kept.
            let before_kept = match (seq, prev) {
                (1, Some(p)) => p == GENESIS,
                (_, Some(p)) => {
                    (cx.kept)(s, seq - 1, &p).map_err(|e| IngestError::Store(e.to_string()))?
                }
                _ => false,
            };
            let resume = hash_of(&g.resume_prev);
            let last_kept = match resume {
                Some(h) => {
                    (cx.kept)(s, gap_last, &h).map_err(|e| IngestError::Store(e.to_string()))?
                }
                None => false,
            };
            if before_kept && last_kept {
                return Ok(Verdict::Keep(None));
            }
        }
        if seq == 1 && prev == Some(GENESIS) {
            let text = format!(
                "a new chain from seq 1 while its chain was at seq {}: not tied to the records before (a sensor restarted without its saved head, or someone else)",
                c.next_seq - 1
            );
            let a = chain_alert(s, seq, ts, "chain_restart", SID_RESTART, &text);
            c.raise("unlinked", text);
            c.next_seq = 2;
            c.prev = r.digest;
            return Ok(Verdict::Keep(Some(a)));
        }
        let text = format!(
            "record {seq} refused: the chain is at seq {} and no record {seq} with this content was kept (a replay, a rewind or a forgery)",
            c.next_seq - 1
        );
        let first = cx.seen.refusal_alerted.insert(s.to_string());
        let a = broken(c, text);
        return Ok(Verdict::Refuse(first.then_some(a)));
    }
    if et == "gap" {
        let text = format!(
            "sensor declared records {}..{} lost ({})",
            g.first_seq.unwrap_or(0),
            g.last_seq.unwrap_or(0),
            g.reason.as_deref().unwrap_or("")
        );
        alert = Some(chain_alert(s, seq, ts, "chain_gap", SID_GAP, &text));
        c.raise("gap", text);
        if seq == c.next_seq && prev.is_some_and(|p| p != c.prev) {
            alert = Some(broken(
                c,
                format!(
                    "gap record {seq} does not follow record {} (prev differs)",
                    seq - 1
                ),
            ));
        }
    } else if seq > c.next_seq {
        let text = format!("records {}..{} never arrived", c.next_seq, seq - 1);
        alert = Some(chain_alert(s, seq, ts, "chain_gap", SID_GAP, &text));
        c.raise("gap", text);
    } else if prev.is_some_and(|p| p != c.prev) {
        alert = Some(broken(
            c,
            format!(
                "record {seq} does not follow record {} (prev differs)",
                seq - 1
            ),
        ));
    }
    if let Some(Err(why)) = sig {
        alert = Some(broken(
            c,
            format!("{et} {seq}: {why} with the sensor's key"),
        ));
    }
    if et == "gap" {
        c.next_seq = g.last_seq.unwrap_or(seq).max(seq) + 1;
        c.prev = hash_of(&g.resume_prev).unwrap_or(r.digest);
    } else {
        c.next_seq = seq + 1;
        c.prev = r.digest;
    }
    Ok(Verdict::Keep(alert))
}

#[cfg(test)]
mod tests;
