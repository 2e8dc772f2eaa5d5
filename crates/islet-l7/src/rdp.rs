//! RDP connection setup (MS-RDPBCGR): the X.224 Connection Request (cookie, requested
//! protocols), the server's Connection Confirm (selected protocol or failure), and the MCS
//! Connect-Initial's client core and network data. Parsing stops when the session moves to
//! TLS/CredSSP or past the connect exchange.

use crate::Sink;
use islet_event::AppProto;
use islet_event::proto::{AppEvent, RdpClient, RdpEvent};

/// Largest TPKT accepted.
pub const MAX_TPKT: usize = 64 * 1024;
/// Most TPKTs read per direction before giving up.
pub const MAX_TPKTS: u32 = 8;
/// Most channels listed.
pub const MAX_CHANNELS: usize = 31;

/// Per-flow RDP state.
#[derive(Debug, Default)]
pub struct RdpState {
    buf: [Vec<u8>; 2],
    tpkts: [u32; 2],
    tx: u64,
    done: bool,
}

fn protocols(mask: u32) -> Vec<String> {
    let mut v = vec!["rdp".to_string()];
    for (bit, name) in [
        (1, "tls"),
        (2, "hybrid"),
        (4, "rdstls"),
        (8, "hybrid_ex"),
        (0x10, "rdstls"),
        (0x20, "rdsaad"),
    ] {
        if mask & bit != 0 && !v.iter().any(|x| x == name) {
            v.push(name.to_string());
        }
    }
    v
}

fn selected(p: u32) -> &'static str {
    match p {
        0 => "rdp",
        1 => "ssl",
        2 | 10 => "hybrid",
        4 => "rdstls",
        8 => "hybrid_ex",
        _ => "unknown",
    }
}

fn failure(code: u32) -> &'static str {
    match code {
        1 => "ssl_required_by_server",
        2 => "ssl_not_allowed_by_server",
        3 => "ssl_cert_not_on_server",
        4 => "inconsistent_flags",
        5 => "hybrid_required_by_server",
        6 => "ssl_with_user_auth_required_by_server",
        _ => "unknown",
    }
}

/// Suricata's names for client build numbers.
fn build_name(b: u32) -> String {
    match b {
        419 => "Windows NT 3.1".into(),
        528 => "Windows NT 3.5".into(),
        807 => "Windows NT 3.51".into(),
        1381 => "Windows NT 4.0".into(),
        2195 => "Windows 2000".into(),
        2600 => "Windows XP".into(),
        3790 => "Windows Server 2003".into(),
        6000 => "Windows Vista".into(),
        6001 => "Windows Vista SP1".into(),
        6002 => "Windows Vista SP2".into(),
        7600 => "Windows 7".into(),
        7601 => "Windows 7 SP1".into(),
        9200 => "Windows 8".into(),
        9600 => "Windows 8.1".into(),
        10240 => "Windows 10".into(),
        n => n.to_string(),
    }
}

fn utf16z(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The client data blocks of an MCS Connect-Initial, found after the GCC "Duca" key.
pub fn connect_initial(pdu: &[u8]) -> Option<RdpClient> {
    let duca = pdu.windows(4).position(|w| w == b"Duca")? + 4;
    let (len, mut at) = match *pdu.get(duca)? {
        l if l & 0x80 != 0 => (
            (usize::from(l & 0x7f) << 8) | usize::from(*pdu.get(duca + 1)?),
            duca + 2,
        ),
        l => (usize::from(l), duca + 1),
    };
    let end = (at + len).min(pdu.len());
    let mut c = RdpClient::default();
    while at + 4 <= end {
        let ty = le16(pdu, at)?;
        let blen = usize::from(le16(pdu, at + 2)?);
        if blen < 4 || at + blen > end {
            break;
        }
        let b = &pdu[at + 4..at + blen];
        match ty {
            0xC001 => {
                c.version = Some(match le32(b, 0)? {
                    0x0008_0001 => "v4".into(),
                    0x0008_0004 => "v5".into(),
                    0x0008_0005 => "v10.0".into(),
                    0x0008_0006 => "v10.1".into(),
                    0x0008_0007 => "v10.2".into(),
                    v => format!("{v:#x}"),
                });
                c.desktop_width = le16(b, 4);
                c.desktop_height = le16(b, 6);
                c.keyboard_layout = le32(b, 12);
                c.build = le32(b, 16).map(build_name);
                c.client_name = b.get(20..52).map(utf16z);
                // serialNumber @132, highColorDepth @136, supportedColorDepths @138.
                if let Some(flags) = le16(b, 140) {
                    for (bit, name) in [
                        (0x0001, "support_errinfo_pdf"),
                        (0x0002, "want_32bpp_session"),
                        (0x0004, "support_statusinfo_pdu"),
                        (0x0008, "strong_asymmetric_keys"),
                        (0x0020, "valid_connection_type"),
                        (0x0040, "support_monitor_layout_pdu"),
                        (0x0080, "support_netchar_autodetect"),
                        (0x0100, "support_dynvc_gfx_protocol"),
                        (0x0200, "support_dynamic_time_zone"),
                        (0x0400, "support_heartbeat_pdu"),
                    ] {
                        if flags & bit != 0 {
                            c.capabilities.push(name.to_string());
                        }
                    }
                }
                c.id = b.get(142..206).map(utf16z).filter(|s| !s.is_empty());
            }
            0xC003 => {
                let n = le32(b, 0)? as usize;
                for i in 0..n.min(MAX_CHANNELS) {
                    let Some(name) = b.get(4 + i * 12..4 + i * 12 + 8) else {
                        break;
                    };
                    let s: String = name
                        .iter()
                        .take_while(|&&x| x != 0)
                        .map(|&x| x as char)
                        .collect();
                    c.channels.push(s);
                }
            }
            _ => {}
        }
        at += blen;
    }
    Some(c)
}

impl RdpState {
    pub fn input(&mut self, toserver: bool, data: &[u8], sink: &mut Sink<'_>) -> bool {
        let d = usize::from(!toserver);
        self.buf[d].extend_from_slice(data);
        while !self.done {
            let b = &self.buf[d];
            if b.len() < 4 {
                break;
            }
            if b[0] != 3 {
                // Not TPKT (TLS or CredSSP took over): nothing more to read here.
                self.done = true;
                break;
            }
            let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
            if !(7..=MAX_TPKT).contains(&len) {
                sink.events.push(AppEvent::Anomaly {
                    app_proto: AppProto::Rdp,
                    event: "invalid_tpkt_length",
                });
                self.done = true;
                break;
            }
            if b.len() < len {
                break;
            }
            let tpkt: Vec<u8> = self.buf[d].drain(..len).collect();
            self.tpkts[d] += 1;
            self.x224(toserver, &tpkt[4..], sink);
            if self.tpkts[d] >= MAX_TPKTS {
                self.done = true;
            }
        }
        if self.done {
            self.buf = [Vec::new(), Vec::new()];
        }
        self.done
    }

    fn push(&mut self, sink: &mut Sink<'_>, mut ev: RdpEvent) {
        ev.tx_id = self.tx;
        self.tx += 1;
        sink.events.push(AppEvent::Rdp(Box::new(ev)));
    }

    fn x224(&mut self, toserver: bool, x: &[u8], sink: &mut Sink<'_>) {
        let Some(&li) = x.first() else { return };
        let code = x.get(1).map(|c| c & 0xF0);
        let li = usize::from(li);
        match code {
            Some(0xE0) if toserver => {
                // Connection Request: 6 fixed bytes, then cookie/token and RDP_NEG_REQ.
                let var = x.get(7..(li + 1).min(x.len())).unwrap_or(&[]);
                let mut ev = RdpEvent {
                    event_type: "initial_request".into(),
                    ..RdpEvent::default()
                };
                let mut rest = var;
                if let Some(line) = var.strip_prefix(b"Cookie: mstshash=") {
                    let end = line
                        .windows(2)
                        .position(|w| w == b"\r\n")
                        .unwrap_or(line.len());
                    ev.cookie = Some(String::from_utf8_lossy(&line[..end.min(256)]).into_owned());
                    rest = line.get(end + 2..).unwrap_or(&[]);
                }
                if rest.len() >= 8 && rest[0] == 1 {
                    ev.requested_protocols = protocols(le32(rest, 4).unwrap_or(0));
                }
                self.push(sink, ev);
            }
            Some(0xD0) if !toserver => {
                let var = x.get(7..(li + 1).min(x.len())).unwrap_or(&[]);
                let mut ev = RdpEvent {
                    event_type: "initial_response".into(),
                    ..RdpEvent::default()
                };
                match var.first() {
                    Some(2) => ev.protocol = Some(selected(le32(var, 4).unwrap_or(0)).into()),
                    Some(3) => ev.error_code = Some(failure(le32(var, 4).unwrap_or(0)).into()),
                    _ => ev.protocol = Some("rdp".into()),
                }
                let tls = matches!(&ev.protocol, Some(p) if p != "rdp");
                self.push(sink, ev);
                if tls {
                    self.done = true;
                }
            }
            Some(0xF0) if toserver => {
                // Data TPDU: an MCS Connect-Initial (BER application tag 101) from the client.
                let mcs = x.get(li + 1..).unwrap_or(&[]);
                if mcs.starts_with(&[0x7f, 0x65])
                    && let Some(client) = connect_initial(mcs)
                {
                    let channels = client.channels.clone();
                    self.push(
                        sink,
                        RdpEvent {
                            event_type: "connect_request".into(),
                            client: Some(client),
                            channels,
                            ..RdpEvent::default()
                        },
                    );
                }
            }
            _ => {}
        }
    }
}
