//! The walk: each record checked against the one before it ([`Walker`]), and the same check
//! as records arrive over an at-least-once transport, where a resent record is counted, not
//! judged ([`ChainCheck`]).

use islet_event::record::{EveRecord, hex32};
use sha2::{Digest as _, Sha256};

use super::{At, ExpectedEnd, Failure, FailureKind, Report, Verify};
use crate::chain::{GENESIS, Sealed, SigError, key_id, verify_record};

/// Walks records; feed lines in order, then call [`Walker::end`].
#[derive(Debug)]
pub struct Walker {
    opts: Verify,
    next_seq: Option<u64>,
    prev: [u8; 32],
    /// The previous record's place, to name it when the next record's `prev` disagrees.
    prev_at: Option<At>,
    final_at: Option<At>,
    last_at: Option<At>,
    /// Records since the last signed checkpoint.
    unsigned_tail: u64,
    /// A record ahead of its place: removed records before it, unless the missing one comes
    /// next (then the two were reordered).
    ahead: Option<(Failure, u64)>,
    report: Report,
}

impl Walker {
    pub fn new(opts: Verify) -> Walker {
        Walker {
            next_seq: if opts.partial { None } else { Some(1) },
            opts,
            prev: GENESIS,
            prev_at: None,
            final_at: None,
            last_at: None,
            unsigned_tail: 0,
            ahead: None,
            report: Report::default(),
        }
    }

    /// Check one record (without its newline).
    pub fn line(&mut self, file: &str, lineno: u64, raw: &[u8]) -> Result<(), Failure> {
        self.take(file, lineno, raw, Sealed::read(raw))
    }

    /// Check one record, read.
    fn take(
        &mut self,
        file: &str,
        lineno: u64,
        raw: &[u8],
        read: Result<Sealed, serde_json::Error>,
    ) -> Result<(), Failure> {
        if let Some((mut f, missing)) = self.ahead.take() {
            let seq = read.ok().and_then(|c| c.seq);
            if seq == Some(missing) {
                f.kind = FailureKind::Reordered;
                f.detail = format!(
                    "seq {} comes before seq {missing} (next line): records reordered",
                    f.at.seq.unwrap_or(0)
                );
            }
            return Err(f);
        }
        self.check(file, lineno, raw, read)
    }

    fn check(
        &mut self,
        file: &str,
        lineno: u64,
        raw: &[u8],
        read: Result<Sealed, serde_json::Error>,
    ) -> Result<(), Failure> {
        let mut at = At {
            file: file.to_string(),
            line: lineno,
            seq: None,
        };
        let fail = |at: &At, kind, detail: String| Failure {
            at: at.clone(),
            kind,
            detail,
        };
        // A final checkpoint ends one run; a restarted sensor continues the chain after it.
        self.final_at = None;
        // EVE keeps the chain in the top-level `islet` object, OCSF in `unmapped.islet`.
        let c = read.map_err(|e| {
            fail(
                &at,
                FailureKind::Malformed,
                format!("not a JSON record ({e})"),
            )
        })?;
        let seq = c.seq;
        at.seq = seq;
        let Some(seq) = seq else {
            return Err(fail(
                &at,
                FailureKind::Inserted,
                "record has no islet.seq: not sealed by the sensor".into(),
            ));
        };
        let prev = c.prev.ok_or_else(|| {
            fail(
                &at,
                FailureKind::Altered,
                "islet.prev is missing or not a SHA-256".into(),
            )
        })?;
        let expect = *self.next_seq.get_or_insert(seq);
        let rec = &c.rec;
        let kind = rec.event_type.as_str();
        if kind == "gap" && seq < expect {
            return self.overlapping_gap(rec, raw, at, expect);
        }
        if seq < expect {
            return Err(fail(
                &at,
                FailureKind::Reordered,
                format!("seq {seq} where {expect} was expected: out of order or repeated"),
            ));
        }
        if seq > expect {
            let n = seq - expect;
            let f = fail(
                &at,
                FailureKind::Removed,
                format!(
                    "seq {seq} where {expect} was expected: {n} record{} removed before it",
                    if n == 1 { "" } else { "s" }
                ),
            );
            self.ahead = Some((f.clone(), expect));
            return Ok(());
        }
        let first = self.report.records == 0 && self.report.gaps == 0;
        if !(first && self.opts.partial) && prev != self.prev {
            // The record before this one no longer hashes to what this one links to.
            return Err(match &self.prev_at {
                Some(p) => fail(
                    p,
                    FailureKind::Altered,
                    format!("its SHA-256 differs from the islet.prev of the next record ({at})"),
                ),
                None => fail(
                    &at,
                    FailureKind::Altered,
                    "the first record does not link to the start of a chain".into(),
                ),
            });
        }
        if kind == "gap" {
            let g = rec.gap.as_ref();
            let (Some(a), Some(b), Some(_reason), Some(resume)) = (
                g.and_then(|g| g.first_seq),
                g.and_then(|g| g.last_seq),
                g.and_then(|g| g.reason.as_deref()),
                g.and_then(|g| g.resume_prev.as_deref()),
            ) else {
                return Err(fail(
                    &at,
                    FailureKind::Malformed,
                    "gap record without first_seq/last_seq/reason/resume_prev".into(),
                ));
            };
            if a != seq || b < a {
                return Err(fail(
                    &at,
                    FailureKind::Altered,
                    format!("gap covers {a}..{b} but sits at seq {seq}"),
                ));
            }
            self.check_sig(&at, g.and_then(|g| g.key_id.as_deref()), raw)?;
            let resume = hex32(resume).ok_or_else(|| {
                fail(
                    &at,
                    FailureKind::Malformed,
                    "resume_prev is not a SHA-256".into(),
                )
            })?;
            self.report.gaps += 1;
            self.report.missing += b - a + 1;
            self.next_seq = Some(b + 1);
            self.prev = resume;
            self.prev_at = Some(at.clone());
            self.last_at = Some(at);
            self.unsigned_tail = 0;
            return Ok(());
        }
        if kind == "checkpoint" {
            let cp = rec.checkpoint.as_ref();
            let (Some(_), Some(b), Some(fin)) = (
                cp.and_then(|c| c.first_seq),
                cp.and_then(|c| c.last_seq),
                cp.and_then(|c| c.is_final),
            ) else {
                return Err(fail(
                    &at,
                    FailureKind::Malformed,
                    "checkpoint without first_seq/last_seq/final".into(),
                ));
            };
            self.check_sig(&at, cp.and_then(|c| c.key_id.as_deref()), raw)?;
            if b + 1 != seq {
                return Err(fail(
                    &at,
                    FailureKind::Altered,
                    format!("checkpoint says it follows seq {b}"),
                ));
            }
            self.report.checkpoints += 1;
            self.unsigned_tail = 0;
            if fin {
                self.final_at = Some(at.clone());
            }
        } else {
            self.unsigned_tail += 1;
        }
        if self.report.records == 0 {
            self.report.first_seq = seq;
        }
        self.report.records += 1;
        self.report.last_seq = seq;
        self.prev = Sha256::digest(raw).into();
        self.next_seq = Some(seq + 1);
        self.prev_at = Some(at.clone());
        self.last_at = Some(at);
        Ok(())
    }

    /// A gap record declaring records of which some or all were already seen: written after an
    /// unclean stop for the last delivery, which may or may not have reached this sink. The
    /// records it declares that did arrive were checked; the rest are missing; the chain goes on
    /// from `resume_prev`.
    fn overlapping_gap(
        &mut self,
        rec: &EveRecord,
        raw: &[u8],
        at: At,
        expect: u64,
    ) -> Result<(), Failure> {
        let g = rec.gap.as_ref();
        let fail = |kind, detail: String| Failure {
            at: at.clone(),
            kind,
            detail,
        };
        let (Some(a), Some(b), Some(_reason), Some(resume_hex), Some(_prev)) = (
            g.and_then(|g| g.first_seq),
            g.and_then(|g| g.last_seq),
            g.and_then(|g| g.reason.as_deref()),
            g.and_then(|g| g.resume_prev.as_deref()),
            rec.islet.as_ref().and_then(|i| i.prev.as_deref()),
        ) else {
            return Err(fail(
                FailureKind::Malformed,
                "gap record without first_seq/last_seq/reason/resume_prev".into(),
            ));
        };
        if b + 1 < expect || b < a {
            return Err(fail(
                FailureKind::Reordered,
                format!("gap {a}..{b} comes after seq {}", expect - 1),
            ));
        }
        self.check_sig(&at, g.and_then(|g| g.key_id.as_deref()), raw)?;
        let resume = hex32(resume_hex).ok_or_else(|| {
            fail(
                FailureKind::Malformed,
                "resume_prev is not a SHA-256".into(),
            )
        })?;
        if b + 1 == expect && resume != self.prev {
            // Every declared record arrived: the last of them must be what the gap names.
            return Err(match &self.prev_at {
                Some(p) => Failure {
                    at: p.clone(),
                    kind: FailureKind::Altered,
                    detail: format!("its SHA-256 differs from the resume_prev of the gap at {at}"),
                },
                None => fail(FailureKind::Altered, "resume_prev does not match".into()),
            });
        }
        self.report.gaps += 1;
        self.report.missing += b + 1 - expect;
        self.next_seq = Some(b + 1);
        self.prev = resume;
        self.prev_at = Some(at.clone());
        self.last_at = Some(at);
        self.unsigned_tail = 0;
        Ok(())
    }

    /// The record (`raw`, as written) must be signed whole by the given key (see
    /// [`crate::chain::verify_record`]); `by` is the key id its checkpoint or gap object names.
    fn check_sig(&self, at: &At, by: Option<&str>, raw: &[u8]) -> Result<(), Failure> {
        let want = key_id(&self.opts.key);
        let fail = |detail: String| Failure {
            at: at.clone(),
            kind: FailureKind::BadSignature,
            detail,
        };
        match verify_record(raw, &self.opts.key) {
            Ok(()) => Ok(()),
            Err(SigError::Mismatch) => {
                let by = by.unwrap_or("?");
                Err(fail(if by != want {
                    format!("signed by key {by}, not by the given key {want}")
                } else {
                    format!(
                        "signature does not verify with key {want}: the record was altered (a signature covers every byte of its record)"
                    )
                }))
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// Where the walk stands: the next sequence number expected.
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    /// The log ended: it must end with a final checkpoint.
    pub fn end(self) -> Result<Report, Failure> {
        self.end_at(None)
    }

    /// The log ended: it must end with a final checkpoint, and, given `expect`, exactly where
    /// the sensor's chain ended (so a log cut at a checkpoint, or without its later runs, is
    /// reported as truncated).
    pub fn end_at(mut self, expect: Option<&ExpectedEnd>) -> Result<Report, Failure> {
        if let Some((f, _)) = self.ahead.take() {
            return Err(f);
        }
        let at = self.last_at.clone().unwrap_or(At {
            file: "(no records)".into(),
            line: 0,
            seq: None,
        });
        if self.final_at.is_none() {
            let mut detail = format!(
                "the log ends without a final checkpoint: truncated after this record ({} record{} since the last checkpoint)",
                self.unsigned_tail,
                if self.unsigned_tail == 1 { "" } else { "s" }
            );
            if let Some(e) = expect
                && !e.clean
            {
                detail.push_str(&format!(
                    "; {} is from a run that has not stopped cleanly (still running?)",
                    e.source
                ));
            }
            return Err(Failure {
                at,
                kind: FailureKind::Truncated,
                detail,
            });
        }
        if let Some(e) = expect {
            e.check(&at, self.report.last_seq, &self.prev)?;
        }
        Ok(self.report)
    }
}

/// The chain checked as records arrive over an at-least-once transport: a record whose
/// sequence number was already checked is a duplicate (a resent chunk) and is counted, not
/// judged again; anything else must continue the chain.
#[derive(Debug)]
pub struct ChainCheck {
    walker: Walker,
    pub duplicates: u64,
    pub checked: u64,
}

impl ChainCheck {
    pub fn new(opts: Verify) -> ChainCheck {
        ChainCheck {
            walker: Walker::new(opts),
            duplicates: 0,
            checked: 0,
        }
    }

    /// Check one record's canonical bytes (the JSON line; `crate::msgpack::to_json` rebuilds
    /// it from a Forward record).
    pub fn record(&mut self, source: &str, raw: &[u8]) -> Result<(), Failure> {
        let read = Sealed::read(raw);
        if let (Some(next), Ok(c)) = (self.walker.next_seq(), &read)
            && let (Some(seq), Some(_)) = (c.seq, c.prev)
            && seq < next
            && c.rec.event_type != "gap"
        {
            self.duplicates += 1;
            return Ok(());
        }
        self.checked += 1;
        self.walker.take(source, self.checked, raw, read)
    }

    /// The stream ended: it must end with a final checkpoint.
    pub fn end(self) -> Result<Report, Failure> {
        self.walker.end()
    }
}
