//! The tamper-evident event chain.
//!
//! Every record a sensor emits carries `islet.seq` (per sensor, monotonic, from 1) and
//! `islet.prev`, the SHA-256 (hex) of the previous record's canonical bytes: the JSON line as
//! written, without its newline. Every `checkpoint_every` records, or when `checkpoint_interval`
//! of event time has passed, a `checkpoint` record is signed with the sensor's Ed25519 key. A
//! log that ends cleanly ends with a checkpoint marked `final`, so a truncated log can be told
//! from a finished one. Records lost on the way (a full buffer, a crash) are replaced by a
//! signed `gap` record that says which sequence numbers, how many and why, and names the hash
//! the record after the hole links to (`resume_prev`).
//!
//! A signature covers the whole record as written (`islet-chain-v2`): the bytes
//! [`SIGNED_PREFIX`] followed by the record's line, without its newline, with the value of its
//! one `"signature"` field emptied (`"signature":""`). So nothing of a signed record can change,
//! not a field added nor a space, even where no later record's `prev` covers it (the last
//! checkpoint of a log, a gap record). Because `prev` commits to every record before it, a
//! signed checkpoint vouches for the whole log up to it. [`sign_record`] and [`verify_record`]
//! are the contract between [`Sealer`] and [`crate::verify`] (and the console).
//!
//! A restarted sensor with a state directory resumes from its saved head ([`SavedHead`]): its
//! first record links to the previous run's final checkpoint, so runs form one chain, and the
//! saved head tells `islet log verify --state` where that chain must end.

use std::io::Write as _;
use std::path::Path;

mod sealed;

pub(crate) use sealed::Sealed;
pub use sealed::seq_prev;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use islet_event::record::{EveRecord, hex32};
use sha2::{Digest as _, Sha256};

/// The `prev` of the first record of a chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// When checkpoints are written.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// The sensor's name, in every checkpoint and gap record.
    pub sensor: String,
    /// A checkpoint after this many records (0: never by count).
    pub checkpoint_every: u64,
    /// A checkpoint once this much event time (ns) has passed since the last (0: never by time).
    pub checkpoint_interval_ns: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            sensor: "islet".into(),
            checkpoint_every: 10_000,
            checkpoint_interval_ns: 60_000_000_000,
        }
    }
}

/// Where a chain stands: the next sequence number and the hash the next record links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub next_seq: u64,
    pub prev: [u8; 32],
}

impl Default for Head {
    fn default() -> Self {
        Head {
            next_seq: 1,
            prev: GENESIS,
        }
    }
}

/// Seals records into the chain, one thread (the sensor's writer) at a time.
#[derive(Debug)]
pub struct Sealer {
    cfg: ChainConfig,
    key: Option<SigningKey>,
    head: Head,
    /// Sequence number of the first record since the last checkpoint.
    since_seq: u64,
    /// Event time of the last checkpoint (ns), and the last record's timestamp text.
    last_cp_ns: Option<u64>,
    last_ts: Vec<u8>,
    checkpoints: u64,
}

impl Sealer {
    pub fn new(cfg: ChainConfig, key: Option<SigningKey>) -> Sealer {
        Sealer::resume(cfg, key, Head::default())
    }

    /// Continue a chain from `head` (a restarted sensor).
    pub fn resume(cfg: ChainConfig, key: Option<SigningKey>, head: Head) -> Sealer {
        Sealer {
            cfg,
            key,
            head,
            since_seq: head.next_seq,
            last_cp_ns: None,
            last_ts: b"1970-01-01T00:00:00.000000+0000".to_vec(),
            checkpoints: 0,
        }
    }

    pub fn head(&self) -> Head {
        self.head
    }

    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    pub fn signing(&self) -> bool {
        self.key.is_some()
    }

    /// Seal every complete line of `lines` (JSON objects, one per line) into `out`, followed by
    /// the checkpoints that fall due. Returns how many bytes of `lines` were consumed: a trailing
    /// partial line is left for the next call.
    pub fn seal_lines(&mut self, lines: &[u8], out: &mut Vec<u8>) -> usize {
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &lines[start..]) {
            let line = &lines[start..start + nl];
            start += nl + 1;
            if !line.is_empty() {
                self.seal(line, out);
            }
        }
        start
    }

    /// Seal one record (a JSON object without its newline) and append it, with its newline, to
    /// `out`; then a checkpoint if one is due.
    pub fn seal(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let ts = match event_time(line) {
            Some((text, ns)) => {
                self.last_ts.clear();
                self.last_ts.extend_from_slice(text);
                Some(((), ns))
            }
            // OCSF: `time` in ms; checkpoints still carry an EVE-style timestamp.
            None => record_time_ns(line).map(|ns| {
                self.last_ts.clear();
                islet_event::time::write_iso(&mut self.last_ts, ns);
                self.last_ts.retain(|&c| c != b'"');
                ((), ns)
            }),
        };
        self.append(line, out);
        let due_count = self.cfg.checkpoint_every > 0
            && self.head.next_seq - self.since_seq >= self.cfg.checkpoint_every;
        let due_time = match (ts, self.last_cp_ns) {
            (Some((_, now)), Some(last)) => {
                self.cfg.checkpoint_interval_ns > 0
                    && now.saturating_sub(last) >= self.cfg.checkpoint_interval_ns
            }
            (Some((_, now)), None) => {
                self.last_cp_ns = Some(now);
                false
            }
            _ => false,
        };
        if due_count || due_time {
            if let Some((_, now)) = ts {
                self.last_cp_ns = Some(now);
            }
            self.checkpoint(false, out);
        }
    }

    /// Splice `seq`/`prev` into the record, append it and advance the head.
    fn append(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let at = out.len();
        splice(line, self.head.next_seq, &self.head.prev, out);
        self.advance(out, at);
    }

    /// The record at `out[at..]` is complete: it becomes the head; its newline follows.
    fn advance(&mut self, out: &mut Vec<u8>, at: usize) {
        self.head.prev = Sha256::digest(&out[at..]).into();
        self.head.next_seq += 1;
        out.push(b'\n');
    }

    /// Append a checkpoint covering the records since the last one (`final` when the log ends).
    /// Without a key the checkpoint is written unsigned, and says so. The record is written
    /// whole, `islet` object included, with an empty signature; then signed (see
    /// [`sign_record`]) and the signature put in its place.
    pub fn checkpoint(&mut self, final_: bool, out: &mut Vec<u8>) {
        let seq = self.head.next_seq;
        let first = self.since_seq;
        let last = seq - 1;
        let mut line = Vec::with_capacity(384);
        line.extend_from_slice(b"{\"timestamp\":\"");
        line.extend_from_slice(&self.last_ts);
        line.extend_from_slice(b"\",\"event_type\":\"checkpoint\",\"checkpoint\":{\"sensor\":");
        islet_event::json::escape(&mut line, self.cfg.sensor.as_bytes());
        let _ = write!(
            line,
            ",\"first_seq\":{first},\"last_seq\":{last},\"final\":{final_}"
        );
        if let Some(k) = &self.key {
            let _ = write!(
                line,
                ",\"key_id\":\"{}\",\"signature\":\"\"",
                key_id(&k.verifying_key())
            );
        }
        line.extend_from_slice(b"}}");
        let at = out.len();
        splice(&line, seq, &self.head.prev, out);
        if let Some(k) = &self.key {
            sign_record(k, out, at);
        }
        self.advance(out, at);
        self.since_seq = self.head.next_seq;
        self.checkpoints += 1;
    }

    /// A signed record saying that the records `first..=last` are missing, and why; the record
    /// after the hole links to `resume_prev`. Written where the hole is; does not advance the
    /// head (the missing records were sealed before it).
    pub fn gap_record(
        &self,
        first: u64,
        last: u64,
        prev: &[u8; 32],
        resume_prev: &[u8; 32],
        reason: &str,
        out: &mut Vec<u8>,
    ) {
        gap_record(
            &self.cfg.sensor,
            self.key.as_ref(),
            &self.last_ts,
            first,
            last,
            prev,
            resume_prev,
            reason,
            out,
        );
    }
}

/// A gap record (see [`Sealer::gap_record`]); also used by sinks that drop records. Signed
/// whole, like a checkpoint (see [`sign_record`]).
#[allow(
    clippy::too_many_arguments,
    reason = "the gap record's fields, each written as given; called from two places"
)]
pub fn gap_record(
    sensor: &str,
    key: Option<&SigningKey>,
    ts: &[u8],
    first: u64,
    last: u64,
    prev: &[u8; 32],
    resume_prev: &[u8; 32],
    reason: &str,
    out: &mut Vec<u8>,
) {
    let prev = hex::encode(prev);
    let resume = hex::encode(resume_prev);
    let count = last + 1 - first;
    let at = out.len();
    out.extend_from_slice(b"{\"timestamp\":\"");
    out.extend_from_slice(ts);
    out.extend_from_slice(b"\",\"event_type\":\"gap\",\"gap\":{\"sensor\":");
    islet_event::json::escape(out, sensor.as_bytes());
    let _ = write!(
        out,
        ",\"first_seq\":{first},\"last_seq\":{last},\"count\":{count},\"reason\":"
    );
    islet_event::json::escape(out, reason.as_bytes());
    let _ = write!(out, ",\"resume_prev\":\"{resume}\"");
    if let Some(k) = key {
        let _ = write!(
            out,
            ",\"key_id\":\"{}\",\"signature\":\"\"",
            key_id(&k.verifying_key())
        );
    }
    let _ = write!(
        out,
        "}},\"islet\":{{\"seq\":{first},\"prev\":\"{prev}\"}}}}"
    );
    if let Some(k) = key {
        sign_record(k, out, at);
    }
    out.push(b'\n');
}

/// What a record's signature covers comes after this line: the domain and version of the
/// signing scheme (v1 signed a list of fields; v2 signs the whole record).
pub const SIGNED_PREFIX: &[u8] = b"islet-chain-v2\n";

/// The key of the signature field; `"signature":"` cannot occur inside a JSON string (its
/// quotes would be escaped), so every occurrence is a key.
const SIGNATURE_KEY: &[u8] = b"\"signature\":\"";

/// Why a signed record's signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigError {
    /// The record has no `"signature":"…"` field.
    NotSigned,
    /// The record has more than one `"signature"` field: which one is signed would be
    /// ambiguous, so none is accepted.
    Ambiguous,
    /// The signature is not 64 bytes of base64.
    Encoding,
    /// The signature does not verify with the key over the record as written: a byte of the
    /// record was changed, added or removed, or another key signed it.
    Mismatch,
}

impl std::fmt::Display for SigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigError::NotSigned => "not signed",
            SigError::Ambiguous => "more than one signature field",
            SigError::Encoding => "signature is not 64 bytes of base64",
            SigError::Mismatch => "signature does not verify over the record as written",
        })
    }
}

impl std::error::Error for SigError {}

/// Sign the record at `out[at..]` (one line, no newline), which holds exactly one
/// `"signature":""`: the signature covers [`SIGNED_PREFIX`] and those bytes, and its base64
/// is then written into the empty value.
pub fn sign_record(key: &SigningKey, out: &mut Vec<u8>, at: usize) {
    let Some(i) = memchr::memmem::find(&out[at..], SIGNATURE_KEY) else {
        return;
    };
    let value_at = at + i + SIGNATURE_KEY.len();
    let mut msg = Vec::with_capacity(SIGNED_PREFIX.len() + out.len() - at);
    msg.extend_from_slice(SIGNED_PREFIX);
    msg.extend_from_slice(&out[at..]);
    let sig = b64().encode(key.sign(&msg).to_bytes());
    out.splice(value_at..value_at, sig.into_bytes());
}

/// Check a signed record (one line as written, without its newline) against `key`: its one
/// signature field's value is taken out, and the signature must verify over
/// [`SIGNED_PREFIX`] and every other byte of the line. Strict verification (no malleable
/// signature encodings), so a record that verifies has exactly the bytes the sensor wrote.
pub fn verify_record(line: &[u8], key: &VerifyingKey) -> Result<(), SigError> {
    let mut found = memchr::memmem::find_iter(line, SIGNATURE_KEY);
    let i = found.next().ok_or(SigError::NotSigned)?;
    if found.next().is_some() {
        return Err(SigError::Ambiguous);
    }
    let start = i + SIGNATURE_KEY.len();
    let len = memchr::memchr(b'"', &line[start..]).ok_or(SigError::Encoding)?;
    let sig = b64()
        .decode(&line[start..start + len])
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or(SigError::Encoding)?;
    let mut msg = Vec::with_capacity(SIGNED_PREFIX.len() + line.len() - len);
    msg.extend_from_slice(SIGNED_PREFIX);
    msg.extend_from_slice(&line[..start]);
    msg.extend_from_slice(&line[start + len..]);
    key.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| SigError::Mismatch)
}

/// Write `line` (a JSON object) with `"seq"` and `"prev"` added to its `islet` object (the
/// last one: EVE's top-level object, OCSF's `unmapped.islet`), or to a new top-level one.
pub fn splice(line: &[u8], seq: u64, prev: &[u8; 32], out: &mut Vec<u8>) {
    let line = trim(line);
    let hexbuf = hex64(prev);
    let n = line.len();
    let rest_from = if let Some(close) = islet_object_end(line) {
        out.extend_from_slice(&line[..close]);
        if last_solid(&line[..close]) != Some(b'{') {
            out.push(b',');
        }
        out.extend_from_slice(b"\"seq\":");
        close
    } else if n >= 2 && line[0] == b'{' && line[n - 1] == b'}' {
        out.extend_from_slice(&line[..n - 1]);
        if last_solid(&line[..n - 1]) != Some(b'{') {
            out.push(b',');
        }
        out.extend_from_slice(b"\"islet\":{\"seq\":");
        n
    } else {
        // Not an object: keep it whole inside one, so nothing is lost.
        out.extend_from_slice(b"{\"raw\":");
        islet_event::json::escape(out, line);
        out.extend_from_slice(b",\"islet\":{\"seq\":");
        n
    };
    let mut num = itoa_buf(seq);
    out.extend_from_slice(num.as_bytes_mut());
    out.extend_from_slice(b",\"prev\":\"");
    out.extend_from_slice(&hexbuf);
    out.extend_from_slice(b"\"}");
    if rest_from < n {
        out.extend_from_slice(&line[rest_from + 1..]);
    } else {
        out.push(b'}');
    }
}

/// Lowercase hex of a hash, two digits per table lookup (this is per record).
fn hex64(h: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    static PAIRS: std::sync::OnceLock<[[u8; 2]; 256]> = std::sync::OnceLock::new();
    let pairs = PAIRS.get_or_init(|| {
        let mut t = [[0u8; 2]; 256];
        for (i, p) in t.iter_mut().enumerate() {
            *p = [DIGITS[i >> 4], DIGITS[i & 15]];
        }
        t
    });
    let mut out = [0u8; 64];
    for (i, b) in h.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&pairs[usize::from(*b)]);
    }
    out
}

/// The index of the `}` closing the record's last `"islet":{…}` object. `"islet":{` cannot occur
/// inside a JSON string (its quotes would be escaped), so a match is a key.
fn islet_object_end(line: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"islet\":{";
    // The last occurrence, by forward searches: the vectorised forward finder is several
    // times faster than a reverse search over a record without the key (measured).
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let f = FINDER.get_or_init(|| memchr::memmem::Finder::new(KEY));
    let mut at = f.find(line)?;
    while let Some(next) = f.find(&line[at + 1..]) {
        at += 1 + next;
    }
    if at == 0 || !matches!(line[at - 1], b',' | b'{') {
        return None;
    }
    let (mut depth, mut in_str, mut i) = (1u32, false, at + KEY.len());
    while i < line.len() {
        match (in_str, line[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => in_str = false,
            (false, b'"') => in_str = true,
            (false, b'{' | b'[') => depth += 1,
            (false, b'}' | b']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The last byte of `b` that is not JSON whitespace.
fn last_solid(b: &[u8]) -> Option<u8> {
    b.iter()
        .rev()
        .copied()
        .find(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

fn trim(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b' '] = l {
        l = rest;
    }
    l
}

struct Num {
    buf: [u8; 20],
    at: usize,
}

impl Num {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.at..]
    }
}

fn itoa_buf(mut v: u64) -> Num {
    let mut n = Num {
        buf: [0; 20],
        at: 20,
    };
    loop {
        n.at -= 1;
        n.buf[n.at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return n;
        }
    }
}

/// The record's time in ns since the epoch, EVE (`timestamp`) or OCSF (`time`, ms).
pub fn record_time_ns(line: &[u8]) -> Option<u64> {
    if let Some((_, ns)) = event_time(line) {
        return Some(ns);
    }
    let at = memchr::memmem::find(line, b",\"time\":")? + 8;
    let digits = line[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    let ms: u64 = std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()?;
    ms.checked_mul(1_000_000)
}

/// The EVE record's leading `timestamp` ([`EveRecord::peek_timestamp`]): its text and ns
/// since the epoch.
pub fn event_time(line: &[u8]) -> Option<(&[u8], u64)> {
    let text = EveRecord::peek_timestamp(line)?;
    Some((text, parse_iso_ns(text)?))
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff](+|-)HHMM` → ns since the epoch.
pub fn parse_iso_ns(t: &[u8]) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let mut v = 0u64;
        for &c in t.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ns = 0u64;
    if t.get(i) == Some(&b'.') {
        let mut scale = 100_000_000u64;
        i += 1;
        while let Some(c) = t.get(i).filter(|c| c.is_ascii_digit()) {
            frac_ns += u64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }
    let off = match t.get(i) {
        Some(&sign @ (b'+' | b'-')) => {
            let hh = num(i + 1..i + 3)? as i64;
            let mm = num(i + 3..i + 5)? as i64;
            let o = (hh * 60 + mm) * 60;
            if sign == b'-' { -o } else { o }
        }
        _ => 0,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y, mo) = (y as i64, mo as i64);
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (h * 3600 + mi * 60 + s) as i64 - off;
    u64::try_from(secs)
        .ok()
        .map(|s| s * 1_000_000_000 + frac_ns)
}

pub(crate) fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A short id of a public key: the first 8 bytes of its SHA-256, hex.
pub fn key_id(k: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(k.as_bytes())[..8])
}

pub use islet_policy::keys::{KeyError, read_public_key, read_signing_key};

/// A new sensor key pair: `dir/sensor.key` (secret seed, base64, mode 0600) and
/// `dir/sensor.pub` (public key, base64), in the one key-file format ([`islet_policy::keys`]).
pub fn keygen(dir: &Path) -> Result<VerifyingKey, KeyError> {
    islet_policy::keys::keygen(dir, "sensor")
}

/// The chain's head kept on disk, so a restarted sensor continues its chain. Written (by
/// rename) before every delivery to the sinks, with the range being delivered (`pending`: its
/// first sequence number and the hash it links to), and at a clean stop (`clean`). After an
/// unclean stop the pending records may not have reached every sink: the next run declares them
/// in a signed gap record and continues after them, never reusing a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedHead {
    pub head: Head,
    pub clean: bool,
    pub pending: Option<(u64, [u8; 32])>,
}

/// The saved head as written by [`SavedHead::store`].
#[derive(serde::Deserialize)]
struct HeadFile {
    next_seq: u64,
    prev: String,
    #[serde(default)]
    clean: Option<bool>,
    #[serde(default)]
    pending_first: Option<u64>,
    #[serde(default)]
    pending_prev: Option<String>,
}

/// Why a saved chain head was not read.
#[derive(Debug)]
#[non_exhaustive]
pub enum HeadError {
    /// The file exists but cannot be read.
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The file is not JSON, or not an islet chain head.
    NotAHead {
        path: std::path::PathBuf,
        source: Option<serde_json::Error>,
    },
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            HeadError::NotAHead {
                path,
                source: Some(e),
            } if e.is_syntax() || e.is_eof() => write!(f, "{}: {e}", path.display()),
            HeadError::NotAHead { path, .. } => {
                write!(f, "{}: not an islet chain head", path.display())
            }
        }
    }
}

impl std::error::Error for HeadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HeadError::Read { source, .. } => Some(source),
            HeadError::NotAHead { source, .. } => source
                .as_ref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

impl SavedHead {
    /// The head saved at `p` (None when there is no file).
    pub fn load(p: &Path) -> Result<Option<SavedHead>, HeadError> {
        let t = match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(HeadError::Read {
                    path: p.to_path_buf(),
                    source,
                });
            }
        };
        let bad = |source| HeadError::NotAHead {
            path: p.to_path_buf(),
            source,
        };
        let f: HeadFile = serde_json::from_str(&t).map_err(|e| bad(Some(e)))?;
        let hash = |h: &str| hex32(h).ok_or_else(|| bad(None));
        let pending = match f.pending_first {
            Some(a) => Some((a, hash(f.pending_prev.as_deref().unwrap_or(""))?)),
            None => None,
        };
        Ok(Some(SavedHead {
            head: Head {
                next_seq: f.next_seq.max(1),
                prev: hash(&f.prev)?,
            },
            clean: f.clean.unwrap_or(false),
            pending,
        }))
    }

    pub fn store(&self, p: &Path) -> std::io::Result<()> {
        let tmp = p.with_extension("tmp");
        let mut body = format!(
            "{{\"next_seq\":{},\"prev\":\"{}\",\"clean\":{}",
            self.head.next_seq,
            hex::encode(self.head.prev),
            self.clean
        );
        if let Some((a, h)) = self.pending {
            body.push_str(&format!(
                ",\"pending_first\":{a},\"pending_prev\":\"{}\"",
                hex::encode(h)
            ));
        }
        body.push_str("}\n");
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, p)
    }
}

#[cfg(test)]
mod tests;
