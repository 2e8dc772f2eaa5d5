//! Logs as files: verifying files in order as one log (plain or gzip, the last line possibly
//! cut off), and where a log must end ([`ExpectedEnd`], from the sensor's saved head or a
//! sequence number the operator knows).

use std::io::Read as _;

use super::{At, Failure, FailureKind, MAX_LINE, Report, Verify, VerifyError, Walker};
use crate::chain::SavedHead;

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
            .map_err(|e| VerifyError::Io(e.to_string()))?
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
    pub(super) fn check(&self, at: &At, last_seq: u64, hash: &[u8; 32]) -> Result<(), Failure> {
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
            if !complete && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_err() {
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
