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
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "forward" => Ok(Mode::Forward),
            "packed" | "packed_forward" => Ok(Mode::PackedForward),
            "compressed" | "gzip" | "compressed_packed_forward" => {
                Ok(Mode::CompressedPackedForward)
            }
            _ => Err(format!(
                "unknown forward mode {s:?} (forward, packed, compressed)"
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
pub fn value_len(buf: &[u8], max_depth: usize) -> Result<Option<usize>, String> {
    let mut i = 0usize;
    // Values still to read at each open container level.
    let mut pending: Vec<u64> = Vec::with_capacity(8);
    let mut remaining: u64 = 1;
    loop {
        if remaining == 0 {
            match pending.pop() {
                Some(r) => {
                    remaining = r;
                    continue;
                }
                None => return Ok(Some(i)),
            }
        }
        let Some(&m) = buf.get(i) else {
            return Ok(None);
        };
        i += 1;
        remaining -= 1;
        let be = |i: usize, n: usize| -> Option<u64> {
            let b = buf.get(i..i + n)?;
            Some(b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
        };
        // (payload bytes to skip after a length field of `lenw` bytes) or children to read.
        let (lenw, skip_fixed, children): (usize, u64, u64) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
            0x80..=0x8f => (0, 0, u64::from(m & 0x0f) * 2),
            0x90..=0x9f => (0, 0, u64::from(m & 0x0f)),
            0xa0..=0xbf => (0, u64::from(m & 0x1f), 0),
            0xc4 | 0xd9 => (1, 0, 0),
            0xc5 | 0xda => (2, 0, 0),
            0xc6 | 0xdb => (4, 0, 0),
            0xc7 => (1, 1, 0),
            0xc8 => (2, 1, 0),
            0xc9 => (4, 1, 0),
            0xca => (0, 4, 0),
            0xcb => (0, 8, 0),
            0xcc | 0xd0 => (0, 1, 0),
            0xcd | 0xd1 => (0, 2, 0),
            0xce | 0xd2 => (0, 4, 0),
            0xcf | 0xd3 => (0, 8, 0),
            0xd4 => (0, 2, 0),
            0xd5 => (0, 3, 0),
            0xd6 => (0, 5, 0),
            0xd7 => (0, 9, 0),
            0xd8 => (0, 17, 0),
            0xdc => {
                let Some(n) = be(i, 2) else { return Ok(None) };
                i += 2;
                (0, 0, n)
            }
            0xdd => {
                let Some(n) = be(i, 4) else { return Ok(None) };
                i += 4;
                (0, 0, n)
            }
            0xde => {
                let Some(n) = be(i, 2) else { return Ok(None) };
                i += 2;
                (0, 0, n * 2)
            }
            0xdf => {
                let Some(n) = be(i, 4) else { return Ok(None) };
                i += 4;
                (0, 0, n * 2)
            }
            0xc1 => return Err("byte 0xc1 is never used in MessagePack".into()),
        };
        let mut skip = skip_fixed;
        if lenw > 0 {
            let Some(n) = be(i, lenw) else {
                return Ok(None);
            };
            i += lenw;
            skip += n;
        }
        let Some(end) = (i as u64)
            .checked_add(skip)
            .and_then(|e| usize::try_from(e).ok())
        else {
            return Err("declared length overflows".into());
        };
        if skip > 0 {
            if end > buf.len() {
                return Ok(None);
            }
            i = end;
        }
        if children > 0 {
            if pending.len() >= max_depth {
                return Err("nested too deeply".into());
            }
            pending.push(remaining);
            remaining = children;
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
}
