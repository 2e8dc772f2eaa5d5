//! Reading a sealed line's place in the chain back: `islet.seq` and `islet.prev`, from EVE's
//! top-level `islet` or, in an OCSF event, from `unmapped.islet` (where [`super::splice`] wrote
//! them), beside the record's typed reading. The verifier reads every line so; the Forward
//! client the first and last line of a chunk.

use islet_event::record::{DecodeError, EveRecord, Islet, hex32};
use serde::Deserialize;

/// A sealed line, read.
#[derive(Debug, Default)]
pub(crate) struct Sealed {
    pub(crate) rec: EveRecord,
    /// `islet.seq`.
    pub(crate) seq: Option<u64>,
    /// `islet.prev`, when it is a SHA-256 (64 hex digits).
    pub(crate) prev: Option<[u8; 32]>,
}

/// An OCSF event keeps the chain's fields under `unmapped.islet` (see [`crate::ocsf`]).
#[derive(Deserialize)]
struct Ocsf {
    #[serde(default)]
    unmapped: Option<Unmapped>,
}

#[derive(Deserialize)]
struct Unmapped {
    #[serde(default)]
    islet: Option<Islet>,
}

impl Sealed {
    /// Read one line (without its newline). Any JSON object is a record; JSON that is not an
    /// object is one without a place in the chain; anything else is refused, with the parser's
    /// reason.
    pub(crate) fn read(raw: &[u8]) -> Result<Sealed, serde_json::Error> {
        let rec = match EveRecord::decode(raw) {
            Ok(r) => r,
            // A member repeated (the last counts, as the sealer and every JSON reader take it).
            Err(_) => match EveRecord::decode_with_members(raw) {
                Ok((r, _)) => r,
                Err(DecodeError::Malformed(e)) => return Err(e),
                Err(_) => {
                    serde_json::from_slice::<serde::de::IgnoredAny>(raw)?;
                    return Ok(Sealed::default());
                }
            },
        };
        let (seq, prev) = match &rec.islet {
            Some(_) => (rec.seq(), rec.prev()),
            None => match ocsf_islet(raw) {
                Some(i) => (i.seq, i.prev.as_deref().and_then(hex32)),
                None => (None, None),
            },
        };
        Ok(Sealed { rec, seq, prev })
    }
}

/// A sealed line's `islet.seq` and `islet.prev` (EVE or OCSF).
pub fn seq_prev(line: &[u8]) -> Option<(u64, [u8; 32])> {
    let s = Sealed::read(line).ok()?;
    Some((s.seq?, s.prev?))
}

/// An OCSF event's `unmapped.islet` (None when `unmapped` or `islet` is not an object).
fn ocsf_islet(raw: &[u8]) -> Option<Islet> {
    let typed = match serde_json::from_slice::<Ocsf>(raw) {
        Ok(o) => o,
        // A member repeated (the last counts): read through JSON values, which keep the last.
        Err(_) => {
            let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
            Ocsf::deserialize(&v).ok()?
        }
    };
    typed.unmapped?.islet
}
