//! Proving a chained log complete and unmodified (`islet log verify`).
//!
//! The verifier walks records in order (several files are one log, in the order given). Each
//! record must carry the next `islet.seq` and, as `islet.prev`, the SHA-256 of the record before
//! it; checkpoints and gap records must be signed by the given key; the log must end with a final
//! checkpoint. The first record that breaks a rule is named by file, line and sequence number,
//! with what happened to it: altered, removed, reordered, inserted, or the log truncated.
//!
//! A log that ends with a final checkpoint may still be short of what the sensor wrote: cut at a
//! checkpoint, or a later run's file missing (a restarted sensor continues the same chain). An
//! [`ExpectedEnd`] (from the sensor's saved head, [`ExpectedEnd::from_state`], or a sequence
//! number the operator knows) makes such a log fail as truncated.

use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha256};

use crate::chain::{GENESIS, SavedHead, SigError, key_id, verify_record};

/// Longest line the verifier reads (a record is far smaller; bounds a hostile file).
pub const MAX_LINE: usize = 16 << 20;

/// Where a record sits: file, 1-based line, and its sequence number if it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub file: String,
    pub line: u64,
    pub seq: Option<u64>,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(s) = self.seq {
            write!(f, " (seq {s})")?;
        }
        Ok(())
    }
}

/// What is wrong, and with which record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub at: At,
    pub kind: FailureKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Altered,
    Removed,
    Reordered,
    Inserted,
    Truncated,
    BadSignature,
    Malformed,
}

impl FailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Altered => "altered",
            FailureKind::Removed => "removed",
            FailureKind::Reordered => "reordered",
            FailureKind::Inserted => "inserted",
            FailureKind::Truncated => "truncated",
            FailureKind::BadSignature => "bad signature",
            FailureKind::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.kind.name(), self.detail)
    }
}

/// What a complete log held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub records: u64,
    pub checkpoints: u64,
    pub gaps: u64,
    /// Records declared missing by gap records.
    pub missing: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Options: the key checkpoints must verify with; whether the log may start mid-chain (a
/// rotated file whose predecessors are gone, or a restarted sensor's new file).
#[derive(Debug, Clone)]
pub struct Verify {
    pub key: VerifyingKey,
    pub partial: bool,
}

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
        if let Some((mut f, missing)) = self.ahead.take() {
            let seq = serde_json::from_slice::<serde_json::Value>(raw)
                .ok()
                .and_then(|v| v["islet"]["seq"].as_u64());
            if seq == Some(missing) {
                f.kind = FailureKind::Reordered;
                f.detail = format!(
                    "seq {} comes before seq {missing} (next line): records reordered",
                    f.at.seq.unwrap_or(0)
                );
            }
            return Err(f);
        }
        self.check(file, lineno, raw)
    }

    fn check(&mut self, file: &str, lineno: u64, raw: &[u8]) -> Result<(), Failure> {
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
        let v: serde_json::Value = serde_json::from_slice(raw).map_err(|e| {
            fail(
                &at,
                FailureKind::Malformed,
                format!("not a JSON record ({e})"),
            )
        })?;
        // EVE keeps the chain in the top-level `islet` object, OCSF in `unmapped.islet`.
        let isl = if v["islet"].is_object() {
            &v["islet"]
        } else {
            &v["unmapped"]["islet"]
        };
        let seq = isl["seq"].as_u64();
        at.seq = seq;
        let Some(seq) = seq else {
            return Err(fail(
                &at,
                FailureKind::Inserted,
                "record has no islet.seq: not sealed by the sensor".into(),
            ));
        };
        let prev = isl["prev"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                fail(
                    &at,
                    FailureKind::Altered,
                    "islet.prev is missing or not a SHA-256".into(),
                )
            })?;
        let expect = *self.next_seq.get_or_insert(seq);
        let kind = v["event_type"].as_str().unwrap_or("");
        if kind == "gap" && seq < expect {
            return self.overlapping_gap(&v, raw, at, expect);
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
            let g = &v["gap"];
            let (Some(a), Some(b), Some(_reason), Some(resume)) = (
                g["first_seq"].as_u64(),
                g["last_seq"].as_u64(),
                g["reason"].as_str(),
                g["resume_prev"].as_str(),
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
            self.check_sig(&at, g, raw)?;
            let resume = hex::decode(resume)
                .ok()
                .and_then(|r| <[u8; 32]>::try_from(r).ok())
                .ok_or_else(|| {
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
            let c = &v["checkpoint"];
            let (Some(_), Some(b), Some(fin)) = (
                c["first_seq"].as_u64(),
                c["last_seq"].as_u64(),
                c["final"].as_bool(),
            ) else {
                return Err(fail(
                    &at,
                    FailureKind::Malformed,
                    "checkpoint without first_seq/last_seq/final".into(),
                ));
            };
            self.check_sig(&at, c, raw)?;
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
        v: &serde_json::Value,
        raw: &[u8],
        at: At,
        expect: u64,
    ) -> Result<(), Failure> {
        let g = &v["gap"];
        let fail = |kind, detail: String| Failure {
            at: at.clone(),
            kind,
            detail,
        };
        let (Some(a), Some(b), Some(_reason), Some(resume_hex), Some(_prev)) = (
            g["first_seq"].as_u64(),
            g["last_seq"].as_u64(),
            g["reason"].as_str(),
            g["resume_prev"].as_str(),
            v["islet"]["prev"].as_str(),
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
        self.check_sig(&at, g, raw)?;
        let resume = hex::decode(resume_hex)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or_else(|| {
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
    /// [`crate::chain::verify_record`]); `obj` is its checkpoint or gap object, for the key id.
    fn check_sig(&self, at: &At, obj: &serde_json::Value, raw: &[u8]) -> Result<(), Failure> {
        let want = key_id(&self.opts.key);
        let fail = |detail: String| Failure {
            at: at.clone(),
            kind: FailureKind::BadSignature,
            detail,
        };
        match verify_record(raw, &self.opts.key) {
            Ok(()) => Ok(()),
            Err(SigError::Mismatch) => {
                let by = obj["key_id"].as_str().unwrap_or("?");
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

/// Where a log must end: the last sequence number the sensor wrote and, from its saved head,
/// the SHA-256 of that record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEnd {
    pub last_seq: u64,
    pub last_hash: Option<[u8; 32]>,
    /// Where the expectation comes from, for messages ("the sensor's saved head DIR/chain.head",
    /// "--expect-seq").
    pub source: String,
    /// Whether the sensor stopped cleanly after writing it (false: it may still be running).
    pub clean: bool,
}

impl ExpectedEnd {
    /// The end the operator gives (`--expect-seq N`).
    pub fn seq(last_seq: u64) -> ExpectedEnd {
        ExpectedEnd {
            last_seq,
            last_hash: None,
            source: "--expect-seq".into(),
            clean: true,
        }
    }

    /// The end recorded in a sensor's state directory (`DIR/chain.head`, see
    /// [`crate::chain::SavedHead`]); `path` may also be the head file itself.
    pub fn from_state(path: &std::path::Path) -> Result<ExpectedEnd, VerifyError> {
        let file = if path.is_dir() {
            path.join("chain.head")
        } else {
            path.to_path_buf()
        };
        let saved = SavedHead::load(&file)
            .map_err(VerifyError::Io)?
            .ok_or_else(|| {
                VerifyError::Io(format!(
                    "{}: no saved chain head (give the sensor's state directory: --state-dir, or SPOOL/state)",
                    file.display()
                ))
            })?;
        Ok(ExpectedEnd {
            last_seq: saved.head.next_seq.saturating_sub(1),
            last_hash: (saved.head.next_seq > 1).then_some(saved.head.prev),
            source: format!("the sensor's saved head {}", file.display()),
            clean: saved.clean,
        })
    }

    /// The log's last record is `at` (seq `last_seq`, SHA-256 `hash`).
    fn check(&self, at: &At, last_seq: u64, hash: &[u8; 32]) -> Result<(), Failure> {
        let fail = |kind, detail: String| Failure {
            at: at.clone(),
            kind,
            detail,
        };
        if last_seq < self.last_seq {
            let n = self.last_seq - last_seq;
            let mut detail = format!(
                "the log ends at seq {last_seq} but {} says seq {}: {n} record{} missing after it (the log was cut at a checkpoint, or a later run's file is missing)",
                self.source,
                self.last_seq,
                if n == 1 { " is" } else { "s are" }
            );
            if !self.clean {
                detail.push_str("; that run has not stopped cleanly (still running?)");
            }
            return Err(fail(FailureKind::Truncated, detail));
        }
        if last_seq > self.last_seq {
            return Err(fail(
                FailureKind::Inserted,
                format!(
                    "the log goes on to seq {last_seq}, past seq {} where {} says it ends: records the sensor did not write, or not this sensor's head",
                    self.last_seq, self.source
                ),
            ));
        }
        if let Some(h) = self.last_hash
            && h != *hash
        {
            return Err(fail(
                FailureKind::Altered,
                format!(
                    "the last record's SHA-256 differs from {}: it is not the record the sensor wrote last",
                    self.source
                ),
            ));
        }
        Ok(())
    }
}

/// Verify files in order as one log.
pub fn verify_files(paths: &[std::path::PathBuf], opts: &Verify) -> Result<Report, VerifyError> {
    verify_files_to(paths, opts, None)
}

/// Verify files in order as one log that must end at `expect` (see [`ExpectedEnd`]).
pub fn verify_files_to(
    paths: &[std::path::PathBuf],
    opts: &Verify,
    expect: Option<&ExpectedEnd>,
) -> Result<Report, VerifyError> {
    use std::io::BufRead as _;
    let mut w = Walker::new(opts.clone());
    for p in paths {
        let name = p.display().to_string();
        let f = std::fs::File::open(p).map_err(|e| VerifyError::Io(format!("{name}: {e}")))?;
        let gz = name.ends_with(".gz");
        let inner: Box<dyn std::io::Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(f))
        } else {
            Box::new(f)
        };
        let mut r = std::io::BufReader::with_capacity(1 << 16, inner);
        let mut buf = Vec::new();
        let mut lineno = 0u64;
        loop {
            buf.clear();
            let n = (&mut r)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| VerifyError::Io(format!("{name}: {e}")))?;
            if n == 0 {
                break;
            }
            lineno += 1;
            if buf.len() > MAX_LINE {
                return Err(VerifyError::Bad(Failure {
                    at: At {
                        file: name,
                        line: lineno,
                        seq: None,
                    },
                    kind: FailureKind::Malformed,
                    detail: format!("line longer than {MAX_LINE} bytes"),
                }));
            }
            let complete = buf.ends_with(b"\n");
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            if line.is_empty() {
                continue;
            }
            if !complete && serde_json::from_slice::<serde_json::Value>(line).is_err() {
                return Err(VerifyError::Bad(Failure {
                    at: At {
                        file: name,
                        line: lineno,
                        seq: None,
                    },
                    kind: FailureKind::Truncated,
                    detail: "the last line is cut off: the log was truncated".into(),
                }));
            }
            w.line(&name, lineno, line).map_err(VerifyError::Bad)?;
        }
    }
    w.end_at(expect).map_err(VerifyError::Bad)
}

/// Why verification stopped: the log is bad, or could not be read.
#[derive(Debug)]
pub enum VerifyError {
    Bad(Failure),
    Io(String),
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Bad(b) => b.fmt(f),
            VerifyError::Io(e) => f.write_str(e),
        }
    }
}

use std::io::Read as _;

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
        const GAP: &[u8] = b"\"event_type\":\"gap\"";
        if let (Some(next), Some((seq, _))) =
            (self.walker.next_seq(), crate::forward::seq_prev(raw))
            && seq < next
            && memchr::memmem::find(raw, GAP).is_none()
        {
            self.duplicates += 1;
            return Ok(());
        }
        self.checked += 1;
        self.walker.line(source, self.checked, raw)
    }

    /// The stream ended: it must end with a final checkpoint.
    pub fn end(self) -> Result<Report, Failure> {
        self.walker.end()
    }
}

#[cfg(test)]
mod tests;
