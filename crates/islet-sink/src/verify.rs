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
//!
//! `walker.rs` holds the rules record by record ([`Walker`], and [`ChainCheck`] for records
//! as they arrive), `files.rs` the reading of logs from files and the [`ExpectedEnd`].

use ed25519_dalek::VerifyingKey;

mod files;
mod walker;

pub use files::{ExpectedEnd, verify_files, verify_files_to};
pub use walker::{ChainCheck, Walker};

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

impl std::error::Error for VerifyError {}

#[cfg(test)]
mod tests;
