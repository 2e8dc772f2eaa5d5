//! A small JSON writer that appends to a byte buffer, for the hot path.

use std::fmt::Write as _;

/// Writes one JSON object into a `Vec<u8>`: keys in call order, nesting up to 64 levels.
///
/// The caller is trusted to pair `begin_*`/`end_*`; strings are escaped per RFC 8259.
#[derive(Debug)]
pub struct Json<'a> {
    buf: &'a mut Vec<u8>,
    /// Bit n set: the object/array at depth n already has a member.
    has_member: u64,
    depth: u32,
}

impl<'a> Json<'a> {
    /// Start an object at the end of `buf`.
    pub fn object(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        Json {
            buf,
            has_member: 0,
            depth: 0,
        }
    }

    /// Close the top-level object and end the line.
    pub fn finish(self) {
        self.buf.extend_from_slice(b"}\n");
    }

    fn sep(&mut self) {
        let bit = 1u64 << self.depth;
        if self.has_member & bit != 0 {
            self.buf.push(b',');
        }
        self.has_member |= bit;
    }

    fn key(&mut self, k: &str) {
        self.sep();
        self.buf.reserve(k.len() + 3);
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        escape(self.buf, v.as_bytes());
        self
    }

    /// A string from wire bytes: invalid UTF-8 is written as `\u00XX` per byte, as Suricata does.
    pub fn bytes_str(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k);
        escape(self.buf, v);
        self
    }

    pub fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }

    pub fn i64(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }

    pub fn f64(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        let mut s = String::new();
        if v.is_finite() {
            // -0 would read back as the integer 0; write it as that.
            let v = if v == 0.0 { 0.0 } else { v };
            let _ = write!(s, "{v}");
        } else {
            s.push_str("null");
        }
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    /// A value already encoded as JSON.
    pub fn raw(&mut self, k: &str, json: &[u8]) -> &mut Self {
        self.key(k);
        self.buf.extend_from_slice(json);
        self
    }

    /// A value written by `f` straight into the buffer (a timestamp, an address).
    pub fn with(&mut self, k: &str, f: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.key(k);
        f(self.buf);
        self
    }

    pub fn begin_object(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.buf.push(b'{');
        self.push();
        self
    }

    pub fn end_object(&mut self) -> &mut Self {
        self.pop();
        self.buf.push(b'}');
        self
    }

    pub fn begin_array(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.buf.push(b'[');
        self.push();
        self
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.pop();
        self.buf.push(b']');
        self
    }

    /// An array element.
    pub fn item_u64(&mut self, v: u64) -> &mut Self {
        self.sep();
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }

    /// An object as an array element; close it with `end_object`.
    pub fn begin_item_object(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'{');
        self.push();
        self
    }

    pub fn item_str(&mut self, v: &str) -> &mut Self {
        self.sep();
        escape(self.buf, v.as_bytes());
        self
    }

    fn push(&mut self) {
        self.depth = (self.depth + 1).min(63);
        self.has_member &= !(1u64 << self.depth);
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

/// Write `v` as a JSON string literal.
pub fn escape(buf: &mut Vec<u8>, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Fast path: printable ASCII without quotes or backslashes needs no work. The test has
    // no early exit so that it vectorises.
    if !v.iter().fold(false, |bad, &c| {
        bad | !(0x20..0x7f).contains(&c) | (c == b'"') | (c == b'\\')
    }) {
        buf.reserve(v.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(v);
        buf.push(b'"');
        return;
    }
    buf.push(b'"');
    let mut rest = v;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let (ok, _) = rest.split_at(e.valid_up_to());
                // Safe: the prefix was just validated.
                (
                    std::str::from_utf8(ok).unwrap_or(""),
                    e.error_len().unwrap_or(rest.len() - e.valid_up_to()),
                )
            }
        };
        let mut start = 0;
        let vb = valid.as_bytes();
        for (i, ch) in valid.char_indices() {
            let c = ch as u32;
            let esc: &[u8] = match ch {
                '"' => b"\\\"",
                '\\' => b"\\\\",
                '\n' => b"\\n",
                '\r' => b"\\r",
                '\t' => b"\\t",
                '\0'..='\x1f' => b"",
                // Non-ASCII is written as \u escapes (as `ensure_ascii`), so a string's JSON text
                // is a function of its value: an invalid byte and the character of the same
                // number read back alike, and re-encoding a parsed record gives the same bytes
                // (the event chain hashes them; see islet-sink).
                _ if c >= 0x80 => b"",
                _ => continue,
            };
            buf.extend_from_slice(&vb[start..i]);
            if esc.is_empty() {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    buf.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        buf.push(HEX[usize::from((*u >> shift) & 0xf)]);
                    }
                }
            } else {
                buf.extend_from_slice(esc);
            }
            start = i + ch.len_utf8();
        }
        buf.extend_from_slice(&vb[start..]);
        let after = vb.len();
        for &b in &rest[after..after + bad] {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        }
        rest = &rest[after + bad..];
    }
    buf.push(b'"');
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn nested_object_is_valid_json() {
        let mut buf = Vec::new();
        let mut j = Json::object(&mut buf);
        j.str("a", "x\"y\n").u64("n", 7);
        j.begin_object("o")
            .bool("t", true)
            .begin_array("l")
            .item_u64(1)
            .item_u64(2);
        j.end_array().end_object();
        j.finish();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["a"], "x\"y\n");
        assert_eq!(v["o"]["l"][1], 2);
    }

    #[test]
    fn invalid_utf8_is_escaped_per_byte() {
        let mut buf = Vec::new();
        escape(&mut buf, b"ok\xff\x01");
        assert_eq!(buf, b"\"ok\\u00ff\\u0001\"");
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert!(v.is_string());
    }
}
