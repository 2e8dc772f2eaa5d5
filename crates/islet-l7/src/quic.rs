//! QUIC v1 (RFC 9000/9001) Initial packets: the client's Initial keys are derived from its
//! Destination Connection ID, header protection is removed, the payload decrypted, and the
//! CRYPTO frames reassembled into the TLS ClientHello — SNI, ALPNs, JA4 (`q` form). Nothing
//! after the Initial packets can be read (and nothing else is kept).

use crate::Sink;
use crate::tls::{ClientHello, ja3, ja4, parse_client_hello};
use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use islet_event::AppProto;
use islet_event::proto::AppEvent;
use sha2::Sha256;

/// RFC 9001 §5.2 initial salt for QUIC v1.
const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// Most bytes of CRYPTO stream assembled (a ClientHello with post-quantum key shares spans
/// two or three Initial packets).
pub const MAX_CRYPTO: usize = 16 * 1024;
/// Most client Initial packets read per connection.
pub const MAX_INITIALS: u32 = 8;
/// Longest connection ID (RFC 9000: 20 bytes).
pub const MAX_CID: usize = 20;

/// Initial keys for one direction.
#[derive(Debug, Clone)]
pub struct Keys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

fn expand_label(secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    let hk = Hkdf::<Sha256>::from_prk(secret).ok()?;
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    let mut out = vec![0u8; len];
    hk.expand(&info, &mut out).ok()?;
    Some(out)
}

/// The client's Initial keys for a Destination Connection ID.
pub fn client_initial_keys(dcid: &[u8]) -> Option<Keys> {
    let (initial, _) = Hkdf::<Sha256>::extract(Some(&INITIAL_SALT_V1), dcid);
    let client = expand_label(&initial, "client in", 32)?;
    let mut k = Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    k.key
        .copy_from_slice(&expand_label(&client, "quic key", 16)?);
    k.iv.copy_from_slice(&expand_label(&client, "quic iv", 12)?);
    k.hp.copy_from_slice(&expand_label(&client, "quic hp", 16)?);
    Some(k)
}

/// A QUIC variable-length integer at `*at`.
fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*at..*at + len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    *at += len;
    Some(v)
}

/// One long-header packet's framing.
struct Long<'a> {
    ptype: u8,
    version: u32,
    dcid: &'a [u8],
    /// Offset of the packet number, and the end of the packet.
    pn_at: usize,
    end: usize,
}

fn long_header(d: &[u8]) -> Option<Long<'_>> {
    let first = *d.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let version = u32::from_be_bytes(d.get(1..5)?.try_into().ok()?);
    let dlen = usize::from(*d.get(5)?);
    if dlen > MAX_CID {
        return None;
    }
    let dcid = d.get(6..6 + dlen)?;
    let mut at = 6 + dlen;
    let slen = usize::from(*d.get(at)?);
    if slen > MAX_CID {
        return None;
    }
    at += 1 + slen;
    let ptype = (first >> 4) & 0x03;
    if ptype == 0 {
        let tlen = varint(d, &mut at)? as usize;
        at = at.checked_add(tlen)?;
    }
    let len = varint(d, &mut at)? as usize;
    let end = at.checked_add(len)?;
    if end > d.len() {
        return None;
    }
    Some(Long {
        ptype,
        version,
        dcid,
        pn_at: at,
        end,
    })
}

/// Decrypt the Initial packet at the start of `d` (a copy is made to unmask the header).
/// Returns the plaintext frames.
fn decrypt_initial(d: &[u8], l: &Long<'_>, k: &Keys) -> Option<Vec<u8>> {
    let sample = d.get(l.pn_at + 4..l.pn_at + 20)?;
    let hp = Aes128::new(GenericArray::from_slice(&k.hp));
    let mut mask = GenericArray::clone_from_slice(sample);
    hp.encrypt_block(&mut mask);
    let mut hdr = d.get(..l.pn_at + 4)?.to_vec();
    hdr[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(hdr[0] & 0x03) + 1;
    hdr.truncate(l.pn_at + pn_len);
    let mut pn = 0u64;
    for i in 0..pn_len {
        hdr[l.pn_at + i] ^= mask[1 + i];
        pn = (pn << 8) | u64::from(hdr[l.pn_at + i]);
    }
    let mut nonce = k.iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let ct = d.get(l.pn_at + pn_len..l.end)?;
    let aead = Aes128Gcm::new(GenericArray::from_slice(&k.key));
    aead.decrypt(Nonce::from_slice(&nonce), Payload { msg: ct, aad: &hdr })
        .ok()
}

/// Per-connection QUIC state.
#[derive(Debug, Default)]
pub struct QuicState {
    keys: Option<Keys>,
    version: u32,
    crypto: Vec<u8>,
    /// Which bytes of `crypto` arrived (ranges), to know when the ClientHello is whole.
    have: Vec<(usize, usize)>,
    initials: u32,
    done: bool,
}

impl QuicState {
    /// One client datagram. Returns true once the ClientHello was read (or given up on).
    pub fn client_datagram(&mut self, d: &[u8], sink: &mut Sink<'_>) -> bool {
        if self.done {
            return true;
        }
        let mut rest = d;
        // Coalesced packets: walk long headers, read the Initial ones.
        while let Some(l) = long_header(rest) {
            if l.ptype == 0 && l.version == 1 {
                self.version = l.version;
                if self.keys.is_none() {
                    self.keys = client_initial_keys(l.dcid);
                }
                self.initials += 1;
                if let Some(k) = &self.keys {
                    match decrypt_initial(rest, &l, k) {
                        Some(frames) => self.frames(&frames),
                        None => {
                            sink.events.push(AppEvent::Anomaly {
                                app_proto: AppProto::Quic,
                                event: "decryption_failed",
                            });
                        }
                    }
                }
            }
            rest = &rest[l.end..];
        }
        if let Some(ch) = self.client_hello() {
            self.log(&ch, sink);
            self.done = true;
        } else if self.initials >= MAX_INITIALS {
            self.done = true;
        }
        self.done
    }

    fn frames(&mut self, f: &[u8]) {
        let mut at = 0;
        while at < f.len() {
            let Some(ty) = varint(f, &mut at) else { return };
            match ty {
                0x00 | 0x01 => {}
                0x02 | 0x03 => {
                    // ACK: largest, delay, range count, first range, ranges[, ECN counts].
                    let (Some(_), Some(_), Some(n), Some(_)) = (
                        varint(f, &mut at),
                        varint(f, &mut at),
                        varint(f, &mut at),
                        varint(f, &mut at),
                    ) else {
                        return;
                    };
                    for _ in 0..n.min(256) {
                        if varint(f, &mut at).is_none() || varint(f, &mut at).is_none() {
                            return;
                        }
                    }
                    if ty == 0x03 {
                        for _ in 0..3 {
                            if varint(f, &mut at).is_none() {
                                return;
                            }
                        }
                    }
                }
                0x06 => {
                    let (Some(off), Some(len)) = (varint(f, &mut at), varint(f, &mut at)) else {
                        return;
                    };
                    let (off, len) = (off as usize, len as usize);
                    let Some(data) = f.get(at..at + len) else {
                        return;
                    };
                    at += len;
                    if off + len <= MAX_CRYPTO {
                        if self.crypto.len() < off + len {
                            self.crypto.resize(off + len, 0);
                        }
                        self.crypto[off..off + len].copy_from_slice(data);
                        self.have.push((off, off + len));
                    }
                }
                0x1c | 0x1d => return, // CONNECTION_CLOSE: nothing more to read
                _ => return,           // a frame not allowed in Initial packets
            }
        }
    }

    fn client_hello(&self) -> Option<ClientHello> {
        let c = &self.crypto;
        if c.len() < 4 || c[0] != 1 {
            return None;
        }
        let len = (usize::from(c[1]) << 16) | (usize::from(c[2]) << 8) | usize::from(c[3]);
        let mut spans = self.have.clone();
        spans.sort_unstable();
        let mut reach = 0;
        for (s, e) in spans {
            if s > reach {
                break;
            }
            reach = reach.max(e);
        }
        if reach < 4 + len {
            return None;
        }
        parse_client_hello(c.get(4..4 + len)?)
    }

    fn log(&self, ch: &ClientHello, sink: &mut Sink<'_>) {
        sink.events
            .push(AppEvent::Quic(Box::new(islet_event::proto::QuicEvent {
                version: format!("{:x}", self.version),
                sni: ch.sni.clone(),
                ja3: Some(ja3(ch)),
                ja4: Some(ja4(ch, 'q')),
                alpns: ch.alpns.clone(),
            })));
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // RFC 9001 Appendix A.1: keys for DCID 0x8394c8f03e515708.
    #[test]
    fn rfc9001_client_initial_keys() {
        let k = client_initial_keys(&[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]).unwrap();
        assert_eq!(
            k.key,
            [
                0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46, 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1,
                0xa2, 0x2d
            ]
        );
        assert_eq!(
            k.iv,
            [
                0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c
            ]
        );
        assert_eq!(
            k.hp,
            [
                0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10, 0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad,
                0xed, 0xd2
            ]
        );
    }

    #[test]
    fn varints() {
        let b = [0x25, 0x7b, 0xbd, 0x9d, 0x7f, 0x3e, 0x7d];
        let mut at = 0;
        assert_eq!(varint(&b, &mut at), Some(37));
        assert_eq!(varint(&b, &mut at), Some(15293));
        assert_eq!(varint(&b, &mut at), Some(494_878_333));
        assert_eq!(varint(&b, &mut at), None);
    }
}
