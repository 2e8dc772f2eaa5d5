//! SSH (RFC 4253): identification banners and the KEXINIT messages, for HASSH / HASSHServer.
//! Parsing stops at NEWKEYS (everything after is encrypted) or once both KEXINITs are read.

use crate::Sink;
use islet_event::AppProto;
use islet_event::proto::{AppEvent, Fingerprint, SshEvent, SshSide};
use md5::{Digest as _, Md5};
use std::fmt::Write as _;

/// Longest identification line (RFC 4253: 255 bytes including CR LF).
pub const MAX_BANNER: usize = 255;
/// Lines a server may send before its banner (RFC 4253 allows other lines first).
pub const MAX_PRE_BANNER_LINES: u32 = 16;
/// Largest binary packet read (RFC 4253 requires 35,000; KEXINIT is far smaller).
pub const MAX_PACKET: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Side {
    line: Vec<u8>,
    lines: u32,
    banner: Option<(String, String)>,
    packet: Vec<u8>,
    hassh: Option<Fingerprint>,
    newkeys: bool,
}

/// Per-flow SSH state.
#[derive(Debug, Default)]
pub struct SshState {
    side: [Side; 2],
    logged: bool,
}

fn name_list(p: &[u8], at: &mut usize) -> Option<String> {
    let len = u32::from_be_bytes(p.get(*at..*at + 4)?.try_into().ok()?) as usize;
    let s = p.get(*at + 4..*at + 4 + len)?;
    *at += 4 + len;
    Some(String::from_utf8_lossy(s).into_owned())
}

/// HASSH of a KEXINIT payload (starting at the message type byte): client lists for the
/// client, server-to-client lists for the server.
pub fn hassh(payload: &[u8], client: bool) -> Option<Fingerprint> {
    if payload.first() != Some(&20) {
        return None;
    }
    let mut at = 17; // type + 16-byte cookie
    let kex = name_list(payload, &mut at)?;
    let _host_key = name_list(payload, &mut at)?;
    let enc_cs = name_list(payload, &mut at)?;
    let enc_sc = name_list(payload, &mut at)?;
    let mac_cs = name_list(payload, &mut at)?;
    let mac_sc = name_list(payload, &mut at)?;
    let cmp_cs = name_list(payload, &mut at)?;
    let cmp_sc = name_list(payload, &mut at)?;
    let string = if client {
        format!("{kex};{enc_cs};{mac_cs};{cmp_cs}")
    } else {
        format!("{kex};{enc_sc};{mac_sc};{cmp_sc}")
    };
    let hash = Md5::digest(string.as_bytes())
        .iter()
        .fold(String::new(), |mut o, b| {
            let _ = write!(o, "{b:02x}");
            o
        });
    Some(Fingerprint { hash, string })
}

/// `SSH-2.0-OpenSSH_7.4 comment` → ("2.0", "OpenSSH_7.4").
pub fn parse_banner(line: &[u8]) -> Option<(String, String)> {
    let line = line.strip_prefix(b"SSH-")?;
    let dash = line.iter().position(|&b| b == b'-')?;
    let proto = &line[..dash];
    let rest = &line[dash + 1..];
    let soft_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    Some((
        String::from_utf8_lossy(proto).into_owned(),
        String::from_utf8_lossy(&rest[..soft_end]).into_owned(),
    ))
}

impl SshState {
    pub fn input(&mut self, toserver: bool, mut data: &[u8], sink: &mut Sink<'_>) -> bool {
        let d = usize::from(!toserver);
        while !data.is_empty() && !self.logged {
            let s = &mut self.side[d];
            if s.newkeys {
                break;
            }
            if s.banner.is_none() {
                // Accumulate the identification line.
                let nl = data.iter().position(|&b| b == b'\n');
                let take = nl.map(|i| i + 1).unwrap_or(data.len());
                s.line.extend_from_slice(&data[..take]);
                data = &data[take..];
                if s.line.len() > MAX_BANNER {
                    sink.events.push(AppEvent::Anomaly {
                        app_proto: AppProto::Ssh,
                        event: "long_banner",
                    });
                    self.logged = true;
                    break;
                }
                if nl.is_none() {
                    break;
                }
                let line: Vec<u8> = std::mem::take(&mut s.line);
                let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
                let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
                match parse_banner(trimmed) {
                    Some(b) => s.banner = Some(b),
                    None => {
                        s.lines += 1;
                        if s.lines > MAX_PRE_BANNER_LINES || toserver {
                            sink.events.push(AppEvent::Anomaly {
                                app_proto: AppProto::Ssh,
                                event: "invalid_banner",
                            });
                            self.logged = true;
                        }
                    }
                }
                continue;
            }
            // Binary packets: uint32 length, padding length, payload.
            s.packet.extend_from_slice(data);
            data = &[];
            loop {
                let s = &mut self.side[d];
                if s.packet.len() < 6 {
                    break;
                }
                let len = u32::from_be_bytes([s.packet[0], s.packet[1], s.packet[2], s.packet[3]])
                    as usize;
                // At least the padding-length byte and a message type (found by fuzzing: a zero
                // length left nothing to read).
                if !(2..=MAX_PACKET).contains(&len) {
                    sink.events.push(AppEvent::Anomaly {
                        app_proto: AppProto::Ssh,
                        event: "invalid_record_length",
                    });
                    self.finish(sink);
                    return true;
                }
                if s.packet.len() < 4 + len {
                    break;
                }
                let pkt: Vec<u8> = s.packet.drain(..4 + len).collect();
                let pad = usize::from(pkt.get(4).copied().unwrap_or(0));
                let payload = pkt.get(5..(4 + len).saturating_sub(pad)).unwrap_or(&[]);
                match payload.first() {
                    Some(20) if s.hassh.is_none() => s.hassh = hassh(payload, toserver),
                    Some(21) => s.newkeys = true,
                    _ => {}
                }
                if s.newkeys {
                    s.packet.clear();
                    break;
                }
            }
        }
        let both_kex = self.side.iter().all(|s| s.hassh.is_some());
        let both_newkeys = self.side.iter().all(|s| s.newkeys);
        if !self.logged && (both_kex || both_newkeys) {
            self.log(sink);
        }
        self.logged
    }

    pub fn finish(&mut self, sink: &mut Sink<'_>) {
        if !self.logged && self.side.iter().any(|s| s.banner.is_some()) {
            self.log(sink);
        }
        self.logged = true;
    }

    fn log(&mut self, sink: &mut Sink<'_>) {
        self.logged = true;
        let side = |s: &mut Side| {
            s.banner
                .take()
                .map(|(proto_version, software_version)| SshSide {
                    proto_version,
                    software_version,
                    hassh: s.hassh.take(),
                })
        };
        let [c, srv] = &mut self.side;
        let ev = SshEvent {
            client: side(c),
            server: side(srv),
        };
        sink.events.push(AppEvent::Ssh(Box::new(ev)));
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ssh_binary_packet_of_length_zero_is_an_anomaly_not_a_panic() {
        let mut s = SshState::default();
        let mut ev = Vec::new();
        let mut sink = Sink { events: &mut ev };
        s.input(true, b"SSH-2.0-x\r\n\0\0\0\0\0\0", &mut sink);
        assert!(ev.iter().any(|e| matches!(
            e,
            AppEvent::Anomaly {
                event: "invalid_record_length",
                ..
            }
        )));
    }

    #[test]
    fn banner_fields() {
        assert_eq!(
            parse_banner(b"SSH-2.0-OpenSSH_7.4 Debian-10"),
            Some(("2.0".to_string(), "OpenSSH_7.4".to_string()))
        );
        assert_eq!(parse_banner(b"HTTP/1.1"), None);
    }
}
