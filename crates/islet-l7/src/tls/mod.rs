//! TLS: record layer framing, handshake reassembly across records and segments, ClientHello /
//! ServerHello / Certificate metadata, JA3, JA3S and JA4 (TLS client; BSD-3 licensed).
//!
//! Split: `parser.rs` (pure functions over complete handshake messages), `fingerprint.rs`
//! (JA3/JA3S/JA4), this file (per-flow state and the logger). Nothing is kept of application
//! data: once the handshake is logged the flow's inspection ends.

mod fingerprint;
mod parser;

pub use fingerprint::{ja3, ja3s, ja4};
pub use parser::{
    ClientHello, ServerHello, parse_certificate, parse_client_hello, parse_server_hello,
    version_string,
};

use crate::Sink;
use islet_event::AppProto;
use islet_event::proto::{AppEvent, CertInfo, TlsEvent};

/// Largest TLS record (2^14 plus the 2048 bytes of expansion TLS allows).
pub const MAX_RECORD: usize = 16_384 + 2_048;
/// Largest handshake message assembled (certificate chains are the big ones).
pub const MAX_HANDSHAKE: usize = 256 * 1024;
/// Most handshake messages parsed per direction.
pub const MAX_HANDSHAKE_MESSAGES: u32 = 64;

/// Per-flow TLS state.
#[derive(Debug, Default)]
pub struct TlsState {
    /// Bytes of an incomplete record, per direction (0 = to server).
    rec: [Vec<u8>; 2],
    /// Bytes of an incomplete handshake message, per direction.
    hs: [Vec<u8>; 2],
    messages: [u32; 2],
    client: Option<ClientHello>,
    server: Option<ServerHello>,
    cert: Option<CertInfo>,
    saw_certificate: bool,
    ccs: [bool; 2],
    logged: bool,
    failed: bool,
}

impl TlsState {
    /// Feed in-order stream bytes of one direction. Returns true once the handshake is logged
    /// (or the stream is not TLS after all): inspection of the flow can stop.
    pub fn input(&mut self, toserver: bool, data: &[u8], sink: &mut Sink<'_>) -> bool {
        let d = usize::from(!toserver);
        let mut data = data;
        while !data.is_empty() && !self.logged && !self.failed {
            let rec = &mut self.rec[d];
            if rec.len() < 5 {
                let take = (5 - rec.len()).min(data.len());
                rec.extend_from_slice(&data[..take]);
                data = &data[take..];
                if rec.len() < 5 {
                    break;
                }
                let len = usize::from(u16::from_be_bytes([rec[3], rec[4]]));
                if !valid_header(rec[0], rec[1], len) {
                    self.fail(sink, "invalid_record_type");
                    break;
                }
            }
            let total = 5 + usize::from(u16::from_be_bytes([rec[3], rec[4]]));
            let take = (total - rec.len()).min(data.len());
            rec.extend_from_slice(&data[..take]);
            data = &data[take..];
            if rec.len() == total {
                let r = std::mem::take(&mut self.rec[d]);
                self.record(d, r[0], &r[5..], sink);
                // Keep the allocation for the next record.
                self.rec[d] = r;
                self.rec[d].clear();
            }
        }
        self.logged || self.failed
    }

    fn fail(&mut self, sink: &mut Sink<'_>, event: &'static str) {
        self.failed = true;
        sink.events.push(AppEvent::Anomaly {
            app_proto: AppProto::Tls,
            event,
        });
        if self.client.is_some() {
            self.log(sink);
        }
    }

    fn record(&mut self, d: usize, ctype: u8, body: &[u8], sink: &mut Sink<'_>) {
        match ctype {
            22 => {
                if self.ccs[d] {
                    return; // encrypted handshake (Finished and later): nothing to read
                }
                let hs = &mut self.hs[d];
                if hs.len() + body.len() > MAX_HANDSHAKE {
                    self.fail(sink, "record_overflow");
                    return;
                }
                hs.extend_from_slice(body);
                self.handshake_messages(d, sink);
            }
            20 => {
                self.ccs[d] = true;
                // Server's ChangeCipherSpec: the visible handshake is over.
                if d == 1 && self.client.is_some() {
                    self.log(sink);
                }
            }
            23 if self.client.is_some() => {
                self.log(sink);
            }
            _ => {}
        }
    }

    fn handshake_messages(&mut self, d: usize, sink: &mut Sink<'_>) {
        loop {
            let hs = &self.hs[d];
            if hs.len() < 4 {
                return;
            }
            let len = (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
            if len > MAX_HANDSHAKE {
                self.fail(sink, "handshake_invalid_length");
                return;
            }
            if hs.len() < 4 + len {
                return;
            }
            let msg: Vec<u8> = self.hs[d].drain(..4 + len).collect();
            self.messages[d] += 1;
            if self.messages[d] > MAX_HANDSHAKE_MESSAGES {
                self.fail(sink, "too_many_records_in_packet");
                return;
            }
            let body = &msg[4..];
            match (d, msg[0]) {
                (0, 1) if self.client.is_none() => match parse_client_hello(body) {
                    Some(ch) => self.client = Some(ch),
                    None => sink.events.push(AppEvent::Anomaly {
                        app_proto: AppProto::Tls,
                        event: "invalid_handshake_message",
                    }),
                },
                (1, 2) if self.server.is_none() => match parse_server_hello(body) {
                    Some(sh) => {
                        let v13 = sh.version >= 0x0304 || (sh.version & 0xff00) == 0x7f00;
                        self.server = Some(sh);
                        // From here on TLS 1.3 encrypts everything: log now.
                        if v13 && self.client.is_some() {
                            self.log(sink);
                            return;
                        }
                    }
                    None => sink.events.push(AppEvent::Anomaly {
                        app_proto: AppProto::Tls,
                        event: "invalid_handshake_message",
                    }),
                },
                (1, 11) if !self.saw_certificate => {
                    self.saw_certificate = true;
                    self.cert = parse_certificate(body);
                }
                _ => {}
            }
        }
    }

    /// The flow ended (or inspection stops): log what was seen, if anything.
    pub fn finish(&mut self, sink: &mut Sink<'_>) {
        if !self.logged && self.client.is_some() {
            self.log(sink);
        }
    }

    fn log(&mut self, sink: &mut Sink<'_>) {
        if self.logged {
            return;
        }
        self.logged = true;
        let Some(c) = self.client.take() else { return };
        let s = self.server.take();
        let version = match &s {
            Some(s) => version_string(s.version),
            None => version_string(c.legacy_version),
        };
        let session_resumed = match &s {
            Some(s) => {
                !self.saw_certificate
                    && s.version < 0x0304
                    && (s.version & 0xff00) != 0x7f00
                    && !c.session_id.is_empty()
                    && s.session_id == c.session_id
            }
            None => false,
        };
        let ev = TlsEvent {
            version,
            sni: c.sni.clone(),
            ja3: Some(ja3(&c)),
            ja3s: s.as_ref().map(ja3s),
            ja4: Some(ja4(&c, 't')),
            client_alpns: c.alpns.clone(),
            server_alpns: s.as_ref().map(|s| s.alpns.clone()).unwrap_or_default(),
            session_resumed,
            cert: self.cert.take(),
        };
        sink.events.push(AppEvent::Tls(Box::new(ev)));
    }
}

/// A plausible TLS record header: a known content type, major version 3, a legal length.
fn valid_header(ctype: u8, major: u8, len: usize) -> bool {
    matches!(ctype, 20..=24) && major == 3 && len <= MAX_RECORD
}
