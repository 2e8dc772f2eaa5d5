//! Fluentd Forward protocol v1: framing, the EventTime extension, the shared-key handshake.
//!
//! Messages are MessagePack arrays on a TCP (or TLS) stream:
//! - Message `[tag, time, record, option?]`, Forward `[tag, [[time, record], …], option?]`,
//!   PackedForward `[tag, bin|str of concatenated [time, record] entries, option?]`, and
//!   CompressedPackedForward (the same, gzip, `option.compressed = "gzip"`);
//! - `option.chunk` asks for `{"ack": chunk}` once the receiver has the events;
//! - time is an integer (seconds) or EventTime, ext type 0: 32-bit seconds and nanoseconds, big
//!   endian;
//! - with a shared key, the server opens with `["HELO", {nonce, auth, keepalive}]`, the client
//!   answers `["PING", hostname, salt, sha512_hex(salt‖hostname‖nonce‖key), user, pw_digest]`
//!   and the server ends with `["PONG", ok, reason, hostname, sha512_hex(salt‖hostname‖nonce‖key)]`.

use sha2::{Digest as _, Sha512};

/// The shared-key digest both sides send: hex(SHA-512(salt ‖ hostname ‖ nonce ‖ key)).
pub fn shared_key_digest(salt: &[u8], hostname: &str, nonce: &[u8], key: &str) -> String {
    hex::encode(
        Sha512::new()
            .chain_update(salt)
            .chain_update(hostname.as_bytes())
            .chain_update(nonce)
            .chain_update(key.as_bytes())
            .finalize(),
    )
}

/// The password digest of PING: hex(SHA-512(auth_salt ‖ username ‖ password)).
pub fn password_digest(auth_salt: &[u8], user: &str, password: &str) -> String {
    hex::encode(
        Sha512::new()
            .chain_update(auth_salt)
            .chain_update(user.as_bytes())
            .chain_update(password.as_bytes())
            .finalize(),
    )
}

/// Append an EventTime (ext type 0, fixext 8).
pub fn write_event_time(out: &mut Vec<u8>, ns: u64) {
    let secs = (ns / 1_000_000_000) as u32;
    let nanos = (ns % 1_000_000_000) as u32;
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
}

pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(out, s);
}

pub(crate) fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    let _ = rmp::encode::write_bin(out, b);
}

/// How a batch is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `[tag, [[time, record], …], option]`.
    Forward,
    /// `[tag, bin(entries), option]`.
    #[default]
    PackedForward,
    /// `[tag, bin(gzip(entries)), option{compressed: "gzip"}]`.
    CompressedPackedForward,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, crate::ParseError> {
        match s {
            "forward" => Ok(Mode::Forward),
            "packed" | "packed_forward" => Ok(Mode::PackedForward),
            "compressed" | "gzip" | "compressed_packed_forward" => {
                Ok(Mode::CompressedPackedForward)
            }
            _ => Err(crate::ParseError::unknown(
                "forward mode",
                s,
                "forward, packed, compressed",
            )),
        }
    }
}

/// Frame `entries` (concatenated `[time, record]` arrays, `count` of them) as one message with
/// an ack request for `chunk`.
pub fn frame(
    mode: Mode,
    tag: &str,
    entries: &[u8],
    count: usize,
    chunk: &str,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    out.push(0x93);
    write_str(out, tag);
    match mode {
        Mode::Forward => {
            let _ = rmp::encode::write_array_len(out, count as u32);
            out.extend_from_slice(entries);
        }
        Mode::PackedForward => write_bin(out, entries),
        Mode::CompressedPackedForward => {
            use std::io::Write as _;
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(entries.len() / 4),
                flate2::Compression::fast(),
            );
            gz.write_all(entries)?;
            write_bin(out, &gz.finish()?);
        }
    }
    let compressed = mode == Mode::CompressedPackedForward;
    let _ = rmp::encode::write_map_len(out, if compressed { 3 } else { 2 });
    write_str(out, "chunk");
    write_str(out, chunk);
    write_str(out, "size");
    let _ = rmp::encode::write_uint(out, count as u64);
    if compressed {
        write_str(out, "compressed");
        write_str(out, "gzip");
    }
    Ok(())
}

/// The length of the first complete MessagePack value in `buf`, `Ok(None)` if more bytes are
/// needed, or an error for bytes that are not MessagePack. Walks markers and skips payloads by
/// their declared lengths: nothing is allocated, so a frame is sized before it is decoded.
pub fn value_len(buf: &[u8], max_depth: usize) -> Result<Option<usize>, SizeError> {
    Sizer::new().advance(buf, max_depth)
}

/// Why bytes are not one MessagePack value [`value_len`] or [`Sizer`] can size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeError {
    /// The byte 0xc1, which MessagePack never uses.
    Unused,
    /// A declared length that does not fit in memory's address range.
    LengthOverflow,
    /// Nested deeper than the given bound.
    TooDeep,
}

impl std::fmt::Display for SizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SizeError::Unused => "byte 0xc1 is never used in MessagePack",
            SizeError::LengthOverflow => "declared length overflows",
            SizeError::TooDeep => "nested too deeply",
        })
    }
}

impl std::error::Error for SizeError {}

/// A resumable walk over one MessagePack value arriving in pieces.
///
/// [`Sizer::advance`] continues where the previous call stopped: every marker and length field
/// is read once (a header split across reads is read again once, when all of it is there), and
/// payloads are skipped by their declared lengths without being read at all. A call made before
/// [`Sizer::need`] bytes have arrived returns at once. So sizing a frame costs time linear in
/// its header bytes however finely it is split, where sizing from the start at each read was
/// quadratic (issue 18, finding 5). It also counts the values and payload bytes seen, from which
/// the receiver bounds the memory a decoded frame will take before decoding it.
#[derive(Debug, Clone)]
pub struct Sizer {
    /// Offset of the next marker; past the bytes received while a payload is being skipped.
    pos: usize,
    /// Values still to read at the current container level.
    remaining: u64,
    /// `remaining` of each enclosing container level.
    pending: Vec<u64>,
    /// No progress is possible before the buffer holds this many bytes.
    need: usize,
    /// Values (markers) read so far.
    values: u64,
    /// Payload bytes (str, bin, ext, fixed-width numbers) declared so far.
    payload: u64,
    /// Marker and length bytes read, a split header counted each time it is read.
    scanned: u64,
    /// Calls that did work (not turned away by `need`).
    attempts: u64,
}

impl Default for Sizer {
    fn default() -> Self {
        Sizer::new()
    }
}

/// The bytes of a marker's header (the marker and its length field).
fn header_len(m: u8) -> usize {
    match m {
        0xc4 | 0xc7 | 0xd9 => 2,
        0xc5 | 0xc8 | 0xda | 0xdc | 0xde => 3,
        0xc6 | 0xc9 | 0xdb | 0xdd | 0xdf => 5,
        _ => 1,
    }
}

impl Sizer {
    pub fn new() -> Sizer {
        Sizer {
            pos: 0,
            remaining: 1,
            pending: Vec::new(),
            need: 1,
            values: 0,
            payload: 0,
            scanned: 0,
            attempts: 0,
        }
    }

    /// Start over for the next value (the counters of work done are kept).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.remaining = 1;
        self.pending.clear();
        self.need = 1;
        self.values = 0;
        self.payload = 0;
    }

    /// Bytes the buffer must hold before [`Sizer::advance`] can make progress.
    pub fn need(&self) -> usize {
        self.need
    }

    /// Values read so far in this value (itself included).
    pub fn values(&self) -> u64 {
        self.values
    }

    /// Payload bytes declared so far in this value.
    pub fn payload(&self) -> u64 {
        self.payload
    }

    /// Marker and length bytes read since this sizer was made.
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Calls to [`Sizer::advance`] that did work since this sizer was made.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Continue the walk over `buf`, which holds the bytes given before and possibly more:
    /// the value's length once complete, `Ok(None)` if more bytes are needed.
    pub fn advance(&mut self, buf: &[u8], max_depth: usize) -> Result<Option<usize>, SizeError> {
        if buf.len() < self.need {
            return Ok(None);
        }
        self.attempts += 1;
        let be = |b: &[u8]| b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
        loop {
            if self.remaining == 0 {
                match self.pending.pop() {
                    Some(r) => {
                        self.remaining = r;
                        continue;
                    }
                    None => {
                        // The last payload may still be on its way.
                        if self.pos > buf.len() {
                            self.need = self.pos;
                            return Ok(None);
                        }
                        self.need = self.pos;
                        return Ok(Some(self.pos));
                    }
                }
            }
            let at = self.pos;
            let Some(&m) = buf.get(at) else {
                self.need = at + 1;
                return Ok(None);
            };
            let hl = header_len(m);
            let Some(h) = buf.get(at..at + hl) else {
                self.need = at + hl;
                return Ok(None);
            };
            self.scanned += hl as u64;
            let len = be(&h[1..]);
            // Payload bytes to skip, or children to read.
            let (skip, children): (u64, u64) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, u64::from(m & 0x0f) * 2),
                0x90..=0x9f => (0, u64::from(m & 0x0f)),
                0xa0..=0xbf => (u64::from(m & 0x1f), 0),
                0xc4..=0xc6 | 0xd9..=0xdb => (len, 0),
                // ext 8/16/32: the type byte, then the data.
                0xc7..=0xc9 => (len + 1, 0),
                0xca | 0xce | 0xd2 => (4, 0),
                0xcb | 0xcf | 0xd3 => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc | 0xdd => (0, len),
                0xde | 0xdf => (0, len * 2),
                0xc1 => return Err(SizeError::Unused),
            };
            let Some(end) = ((at + hl) as u64)
                .checked_add(skip)
                .and_then(|e| usize::try_from(e).ok())
            else {
                return Err(SizeError::LengthOverflow);
            };
            if children > 0 && self.pending.len() >= max_depth {
                return Err(SizeError::TooDeep);
            }
            self.pos = end;
            self.values += 1;
            self.payload += skip;
            self.remaining -= 1;
            if children > 0 {
                self.pending.push(self.remaining);
                self.remaining = children;
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// fluentd's test vector for the shared-key digest (the PONG its out_forward handshake test
    /// accepts for salt `ce1897…c3`, hostname `client_hostname`, empty nonce, key `shared_key`;
    /// also `printf %s ce18…c3client_hostnameshared_key | sha512sum`).
    #[test]
    fn fluentd_shared_key_vector() {
        let d = shared_key_digest(
            b"ce1897b0d3dbd76b90d7fb96010dcac3",
            "client_hostname",
            b"",
            "shared_key",
        );
        assert_eq!(d, FLUENTD_VECTOR);
    }

    pub(crate) const FLUENTD_VECTOR: &str = "40a3c5943cc6256e0c5dcf176e97db3826b0909698c330dc8e53d15af63efb47e030d113130255dd6e7ced5176d2999cc2e02a44852d45152503af317b73b33f";

    #[test]
    fn value_len_sizes_without_decoding() {
        let mut b = Vec::new();
        frame(
            Mode::PackedForward,
            "t",
            &[0x92, 0x01, 0x80],
            1,
            "abc",
            &mut b,
        )
        .unwrap();
        assert_eq!(value_len(&b, 8), Ok(Some(b.len())));
        for cut in 0..b.len() {
            assert_eq!(value_len(&b[..cut], 8), Ok(None), "cut at {cut}");
        }
        assert!(value_len(&[0xc1], 8).is_err());
        assert!(value_len(&[0x91; 100], 8).is_err());
    }

    /// Finding 5 of issue 18: a frame fed one byte at a time is sized in linear work.
    #[test]
    fn sizer_resumes_where_it_stopped() {
        let mut b = vec![0x92, 0xa1, b't', 0xdd, 0, 1, 0, 0];
        b.extend(std::iter::repeat_n(0xc0, 1 << 16));
        let mut s = Sizer::new();
        for end in 1..b.len() {
            assert_eq!(s.advance(&b[..end], 8), Ok(None), "at {end}");
        }
        assert_eq!(s.advance(&b, 8), Ok(Some(b.len())));
        // Every byte but the tag's one payload byte is a header, each read once.
        assert_eq!(s.scanned(), b.len() as u64 - 1);
        assert!(s.attempts() <= b.len() as u64);
        assert_eq!(s.values(), 3 + (1 << 16));
        // A long payload is waited for, not re-read.
        let mut p = vec![0xc6, 0, 0x10, 0, 0];
        p.resize(5 + (1 << 20), 7);
        let mut s = Sizer::new();
        for end in (1..p.len()).step_by(1000) {
            assert_eq!(s.advance(&p[..end], 8), Ok(None));
        }
        assert_eq!(s.advance(&p, 8), Ok(Some(p.len())));
        assert_eq!(s.attempts(), 3);
        assert_eq!(s.payload(), 1 << 20);
    }
}
