//! Records between JSON and MessagePack, byte-exactly.
//!
//! The Forward client sends each record as a MessagePack map, so Fluentd, Fluent Bit and Vector
//! route on its fields. The event chain hashes the record's JSON text, so the receiving side must
//! be able to rebuild that text from the map exactly: [`to_json`] writes a map back the way
//! islet's encoders write JSON (keys in order, no spaces, strings escaped by
//! `islet_event::json::escape`, integers in decimal, floats in Rust's shortest round-trip form).
//! [`from_json`] is the client's half: a single-pass transcoder of islet's JSON lines, no
//! allocation (containers are written with 32-bit length headers and patched).

use std::fmt::Write as _;

/// Nesting deeper than this is refused (records are shallow; bounds hostile input).
pub const MAX_DEPTH: usize = 64;

/// Why a line or a value could not be carried across.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(m: &str) -> Result<T, CodecError> {
    Err(CodecError(m.to_string()))
}

/// Append the MessagePack form of the JSON value in `json` to `out`.
pub fn from_json(json: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut p = Parser { s: json, i: 0 };
    let at = out.len();
    let r = p.value(out, 0).and_then(|()| {
        p.ws();
        if p.i == p.s.len() {
            Ok(())
        } else {
            err("trailing bytes after the JSON value")
        }
    });
    if r.is_err() {
        out.truncate(at);
    }
    r
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return err("nested too deeply");
        }
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let hdr = out.len();
                out.extend_from_slice(&[0xdf, 0, 0, 0, 0]);
                let mut n = 0u32;
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return err("object key is not a string");
                        }
                        self.string(out)?;
                        self.ws();
                        if self.s.get(self.i) != Some(&b':') {
                            return err("expected ':'");
                        }
                        self.i += 1;
                        self.value(out, depth + 1)?;
                        n += 1;
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return err("expected ',' or '}'"),
                        }
                    }
                }
                out[hdr + 1..hdr + 5].copy_from_slice(&n.to_be_bytes());
                Ok(())
            }
            Some(b'[') => {
                self.i += 1;
                let hdr = out.len();
                out.extend_from_slice(&[0xdd, 0, 0, 0, 0]);
                let mut n = 0u32;
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.value(out, depth + 1)?;
                        n += 1;
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return err("expected ',' or ']'"),
                        }
                    }
                }
                out[hdr + 1..hdr + 5].copy_from_slice(&n.to_be_bytes());
                Ok(())
            }
            Some(b'"') => self.string(out),
            Some(b't') => self.word(b"true", 0xc3, out),
            Some(b'f') => self.word(b"false", 0xc2, out),
            Some(b'n') => self.word(b"null", 0xc0, out),
            Some(b'-' | b'0'..=b'9') => self.number(out),
            _ => err("expected a JSON value"),
        }
    }

    fn word(&mut self, w: &[u8], code: u8, out: &mut Vec<u8>) -> Result<(), CodecError> {
        if self.s[self.i..].starts_with(w) {
            self.i += w.len();
            out.push(code);
            Ok(())
        } else {
            err("expected true, false or null")
        }
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = self.i;
        let mut float = false;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => float = true,
                _ => break,
            }
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.i])
            .map_err(|_| CodecError("bad number".into()))?;
        if !float {
            if let Ok(v) = t.parse::<u64>() {
                rmp::encode::write_uint(out, v).map_err(|_| CodecError("write".into()))?;
                return Ok(());
            }
            if let Ok(v) = t.parse::<i64>() {
                rmp::encode::write_sint(out, v).map_err(|_| CodecError("write".into()))?;
                return Ok(());
            }
        }
        let v: f64 = t
            .parse()
            .map_err(|_| CodecError(format!("bad number {t:?}")))?;
        rmp::encode::write_f64(out, v).map_err(|_| CodecError("write".into()))?;
        Ok(())
    }

    /// A JSON string (at its opening quote) as a MessagePack str.
    fn string(&mut self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.i += 1;
        let hdr = out.len();
        out.extend_from_slice(&[0xdb, 0, 0, 0, 0]);
        let body = out.len();
        loop {
            let rest = &self.s[self.i..];
            let Some(k) = memchr::memchr2(b'"', b'\\', rest) else {
                return err("unterminated string");
            };
            out.extend_from_slice(&rest[..k]);
            self.i += k;
            if self.s[self.i] == b'"' {
                self.i += 1;
                break;
            }
            // An escape.
            let e = *self
                .s
                .get(self.i + 1)
                .ok_or(CodecError("bad escape".into()))?;
            self.i += 2;
            let c = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let hi = self.hex4()?;
                    let cp = if (0xd800..0xdc00).contains(&hi) {
                        if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                            return err("lone surrogate");
                        }
                        self.i += 2;
                        let lo = self.hex4()?;
                        if !(0xdc00..0xe000).contains(&lo) {
                            return err("bad surrogate pair");
                        }
                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                    } else {
                        hi
                    };
                    char::from_u32(cp).ok_or(CodecError("bad \\u escape".into()))?
                }
                _ => return err("bad escape"),
            };
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
        let n =
            u32::try_from(out.len() - body).map_err(|_| CodecError("string too long".into()))?;
        if std::str::from_utf8(&out[body..]).is_err() {
            return err("string is not UTF-8");
        }
        out[hdr + 1..hdr + 5].copy_from_slice(&n.to_be_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, CodecError> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .ok_or(CodecError("short \\u escape".into()))?;
        self.i += 4;
        let t = std::str::from_utf8(h).map_err(|_| CodecError("bad \\u escape".into()))?;
        u32::from_str_radix(t, 16).map_err(|_| CodecError("bad \\u escape".into()))
    }
}

/// Write a MessagePack value as JSON the way islet's encoders do (see the module doc).
pub fn to_json(v: &rmpv::Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
    to_json_at(v, out, 0)
}

fn to_json_at(v: &rmpv::Value, out: &mut Vec<u8>, depth: usize) -> Result<(), CodecError> {
    use rmpv::Value as V;
    if depth > MAX_DEPTH {
        return err("nested too deeply");
    }
    match v {
        V::Nil => out.extend_from_slice(b"null"),
        V::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        V::Integer(i) => {
            let mut s = String::new();
            if let Some(u) = i.as_u64() {
                let _ = write!(s, "{u}");
            } else if let Some(n) = i.as_i64() {
                let _ = write!(s, "{n}");
            }
            out.extend_from_slice(s.as_bytes());
        }
        V::F32(f) => float(f64::from(*f), out),
        V::F64(f) => float(*f, out),
        V::String(s) => islet_event::json::escape(out, s.as_bytes()),
        V::Binary(b) => islet_event::json::escape(out, b),
        V::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                to_json_at(x, out, depth + 1)?;
            }
            out.push(b']');
        }
        V::Map(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match k {
                    V::String(s) => islet_event::json::escape(out, s.as_bytes()),
                    V::Binary(b) => islet_event::json::escape(out, b),
                    _ => return err("map key is not a string"),
                }
                out.push(b':');
                to_json_at(x, out, depth + 1)?;
            }
            out.push(b'}');
        }
        V::Ext(..) => return err("extension value inside a record"),
    }
    Ok(())
}

fn float(f: f64, out: &mut Vec<u8>) {
    if f.is_finite() {
        let f = if f == 0.0 { 0.0 } else { f };
        let mut s = String::new();
        let _ = write!(s, "{f}");
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn round_trip(j: &str) -> String {
        let mut m = Vec::new();
        from_json(j.as_bytes(), &mut m).unwrap();
        let v = rmpv::decode::read_value(&mut &m[..]).unwrap();
        let mut o = Vec::new();
        to_json(&v, &mut o).unwrap();
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn islet_json_survives_the_trip() {
        for j in [
            r#"{"a":1,"b":-2,"c":0.25,"d":"x\"y\\z\n\u0001\u00ff\ud83d\ude00","e":[true,false,null],"f":{}}"#,
            r#"{"big":18446744073709551615,"neg":-9223372036854775808,"f":1234.5678}"#,
        ] {
            assert_eq!(round_trip(j), j);
        }
    }

    #[test]
    fn bad_json_is_refused() {
        let mut m = Vec::new();
        for j in ["{", "{\"a\"}", "[1,", "\"\\ud800\"", "{\"a\":1}x", "{1:2}"] {
            assert!(from_json(j.as_bytes(), &mut m).is_err(), "{j}");
            assert!(m.is_empty());
        }
    }
}
