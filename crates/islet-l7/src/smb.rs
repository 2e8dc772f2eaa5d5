//! SMB over NetBIOS session service (TCP 445/139): SMB1 negotiate, session setup and logoff;
//! SMB2/3 commands with their status, tree-connect share names and CREATE file names — a
//! named pipe such as `atsvc`, `svcctl` or `winreg` is lateral-movement evidence — and the
//! DCE/RPC calls made over pipes (WRITE then READ, or an IOCTL transceive), logged with the
//! bound interfaces or the opnum. Transactions follow Suricata: one event per request/response
//! pair matched by message id, except READ, WRITE, GET_INFO and SET_INFO, which produce an
//! event only when they carry DCE/RPC. Payloads (file contents, stub data) are never kept.

use crate::Sink;
use crate::dcerpc::{self, Pdu};
use islet_event::AppProto;
use islet_event::proto::{AppEvent, DcerpcCall, DcerpcInterface, DcerpcStub, SmbEvent};
use std::collections::HashMap;

/// Largest NetBIOS message read.
pub const MAX_MESSAGE: usize = 1 << 17;
/// Most requests awaiting a response.
pub const MAX_PENDING: usize = 256;
/// Most dialects listed from a negotiate request.
pub const MAX_DIALECTS: usize = 32;
/// Longest name kept (share, file, OS string), in characters.
pub const MAX_NAME: usize = 512;
/// Most DCE/RPC calls awaiting their answer.
pub const MAX_RPC: usize = 64;
/// Most DCE/RPC PDUs read from one pipe WRITE, READ or IOCTL buffer.
pub const MAX_PDUS_PER_BUFFER: usize = 16;

/// IOCTL control code of a named-pipe transceive (MS-FSCC 2.3).
const FSCTL_PIPE_TRANSCEIVE: u32 = 0x0011_c017;
const STATUS_PENDING: u32 = 0x0000_0103;

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// UTF-16LE up to a NUL (or the end), and the bytes consumed.
fn utf16z(b: &[u8]) -> (String, usize) {
    let mut units = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() && units.len() < MAX_NAME {
        let u = u16::from_le_bytes([b[i], b[i + 1]]);
        i += 2;
        if u == 0 {
            break;
        }
        units.push(u);
    }
    (String::from_utf16_lossy(&units), i)
}

/// A GUID in Microsoft's mixed-endian text form.
pub fn guid(b: &[u8]) -> Option<String> {
    guid_text(b, false)
}

/// An SMB2 FileId as Suricata writes `fuid`: like a GUID, but the fourth group is read as a
/// little-endian u16 too.
pub fn fuid(b: &[u8]) -> Option<String> {
    guid_text(b, true)
}

fn guid_text(b: &[u8], fourth_le: bool) -> Option<String> {
    let b = b.get(..16)?;
    let fourth = if fourth_le {
        le16(b, 8)?
    } else {
        u16::from_be_bytes([b[8], b[9]])
    };
    Some(format!(
        "{:08x}-{:04x}-{:04x}-{fourth:04x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        le32(b, 0)?,
        le16(b, 4)?,
        le16(b, 6)?,
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

fn nt_status(s: u32) -> String {
    let n = match s {
        0x0000_0000 => "STATUS_SUCCESS",
        0x0000_0103 => "STATUS_PENDING",
        0x0000_010b => "STATUS_NOTIFY_CLEANUP",
        0x0000_010c => "STATUS_NOTIFY_ENUM_DIR",
        0x8000_0005 => "STATUS_BUFFER_OVERFLOW",
        0x8000_0006 => "STATUS_NO_MORE_FILES",
        0xc000_0001 => "STATUS_UNSUCCESSFUL",
        0xc000_0002 => "STATUS_NOT_IMPLEMENTED",
        0xc000_0008 => "STATUS_INVALID_HANDLE",
        0xc000_000d => "STATUS_INVALID_PARAMETER",
        0xc000_000f => "STATUS_NO_SUCH_FILE",
        0xc000_0010 => "STATUS_INVALID_DEVICE_REQUEST",
        0xc000_0011 => "STATUS_END_OF_FILE",
        0xc000_0016 => "STATUS_MORE_PROCESSING_REQUIRED",
        0xc000_0022 => "STATUS_ACCESS_DENIED",
        0xc000_0023 => "STATUS_BUFFER_TOO_SMALL",
        0xc000_0033 => "STATUS_OBJECT_NAME_INVALID",
        0xc000_0034 => "STATUS_OBJECT_NAME_NOT_FOUND",
        0xc000_0035 => "STATUS_OBJECT_NAME_COLLISION",
        0xc000_003a => "STATUS_OBJECT_PATH_NOT_FOUND",
        0xc000_0043 => "STATUS_SHARING_VIOLATION",
        0xc000_0061 => "STATUS_PRIVILEGE_NOT_HELD",
        0xc000_0064 => "STATUS_NO_SUCH_USER",
        0xc000_006a => "STATUS_WRONG_PASSWORD",
        0xc000_006d => "STATUS_LOGON_FAILURE",
        0xc000_006e => "STATUS_ACCOUNT_RESTRICTION",
        0xc000_0071 => "STATUS_PASSWORD_EXPIRED",
        0xc000_0072 => "STATUS_ACCOUNT_DISABLED",
        0xc000_009a => "STATUS_INSUFFICIENT_RESOURCES",
        0xc000_00ac => "STATUS_PIPE_NOT_AVAILABLE",
        0xc000_00ad => "STATUS_INVALID_PIPE_STATE",
        0xc000_00ae => "STATUS_PIPE_BUSY",
        0xc000_00b0 => "STATUS_PIPE_DISCONNECTED",
        0xc000_00b1 => "STATUS_PIPE_CLOSING",
        0xc000_00b5 => "STATUS_IO_TIMEOUT",
        0xc000_00ba => "STATUS_FILE_IS_A_DIRECTORY",
        0xc000_00bb => "STATUS_NOT_SUPPORTED",
        0xc000_00c9 => "STATUS_NETWORK_NAME_DELETED",
        0xc000_00cc => "STATUS_BAD_NETWORK_NAME",
        0xc000_0101 => "STATUS_DIRECTORY_NOT_EMPTY",
        0xc000_0103 => "STATUS_NOT_A_DIRECTORY",
        0xc000_0120 => "STATUS_CANCELLED",
        0xc000_0128 => "STATUS_FILE_CLOSED",
        0xc000_014b => "STATUS_PIPE_BROKEN",
        0xc000_015b => "STATUS_LOGON_TYPE_NOT_GRANTED",
        0xc000_0184 => "STATUS_INVALID_DEVICE_STATE",
        0xc000_019c => "STATUS_FS_DRIVER_REQUIRED",
        0xc000_0203 => "STATUS_USER_SESSION_DELETED",
        0xc000_0225 => "STATUS_NOT_FOUND",
        0xc000_0234 => "STATUS_ACCOUNT_LOCKED_OUT",
        _ => return format!("0x{s:x}"),
    };
    n.to_string()
}

fn dos_status(class: u8, code: u16) -> String {
    match (class, code) {
        (0, 0) => "STATUS_SUCCESS".into(),
        (2, 0x5b) => "SRV_BADUID".into(),
        (2, 0x05) => "SRV_BADTID".into(),
        (2, 0x02) => "SRV_BADPW".into(),
        (1, 0x02) => "DOS_BADFILE".into(),
        (1, 0x05) => "DOS_NOACCESS".into(),
        _ => format!("DOS_ERROR_{class}_{code}"),
    }
}

fn smb1_command(c: u8) -> String {
    let n = match c {
        0x04 => "CLOSE",
        0x24 => "LOCKING_ANDX",
        0x25 => "TRANS",
        0x2b => "ECHO",
        0x2e => "READ_ANDX",
        0x2f => "WRITE_ANDX",
        0x32 => "TRANS2",
        0x71 => "TREE_DISCONNECT",
        0x72 => "NEGOTIATE_PROTOCOL",
        0x73 => "SESSION_SETUP_ANDX",
        0x74 => "LOGOFF_ANDX",
        0x75 => "TREE_CONNECT_ANDX",
        0xa0 => "NT_TRANS",
        0xa2 => "NT_CREATE_ANDX",
        _ => return format!("SMB1_COMMAND_UNKNOWN_{c:#04x}"),
    };
    format!("SMB1_COMMAND_{n}")
}

fn smb2_command(c: u16) -> String {
    let n = match c {
        0 => "NEGOTIATE_PROTOCOL",
        1 => "SESSION_SETUP",
        2 => "SESSION_LOGOFF",
        3 => "TREE_CONNECT",
        4 => "TREE_DISCONNECT",
        5 => "CREATE",
        6 => "CLOSE",
        7 => "FLUSH",
        8 => "READ",
        9 => "WRITE",
        10 => "LOCK",
        11 => "IOCTL",
        12 => "CANCEL",
        13 => "KEEPALIVE",
        14 => "FIND",
        15 => "CHANGE_NOTIFY",
        16 => "GET_INFO",
        17 => "SET_INFO",
        18 => "OPLOCK_BREAK",
        _ => return format!("SMB2_COMMAND_UNKNOWN_{c}"),
    };
    format!("SMB2_COMMAND_{n}")
}

fn disposition(d: u32) -> &'static str {
    match d {
        0 => "FILE_SUPERSEDE",
        1 => "FILE_OPEN",
        2 => "FILE_CREATE",
        3 => "FILE_OPEN_IF",
        4 => "FILE_OVERWRITE",
        5 => "FILE_OVERWRITE_IF",
        _ => "UNKNOWN",
    }
}

/// Windows FILETIME (100 ns since 1601) to Unix seconds; 0 stays 0.
fn filetime(t: u64) -> i64 {
    if t == 0 {
        0
    } else {
        (t / 10_000_000) as i64 - 11_644_473_600
    }
}

/// Per-flow SMB state.
#[derive(Debug, Default)]
pub struct SmbState {
    buf: [Vec<u8>; 2],
    pending: HashMap<u64, SmbEvent>,
    /// DCE/RPC calls over pipes, awaiting their answer; `dcerpc.call_id` is the key.
    rpc: Vec<SmbEvent>,
    dialect: Option<String>,
    client_dialects: Vec<String>,
    tx: u64,
}

impl SmbState {
    pub fn input(&mut self, toserver: bool, data: &[u8], sink: &mut Sink<'_>) -> bool {
        let d = usize::from(!toserver);
        self.buf[d].extend_from_slice(data);
        loop {
            let b = &self.buf[d];
            if b.len() < 4 {
                return false;
            }
            let len = (usize::from(b[1]) << 16) | (usize::from(b[2]) << 8) | usize::from(b[3]);
            if b[0] != 0 || len > MAX_MESSAGE {
                sink.events.push(AppEvent::Anomaly {
                    app_proto: AppProto::Smb,
                    event: "record_overflow",
                });
                self.buf = [Vec::new(), Vec::new()];
                return true;
            }
            if b.len() < 4 + len {
                return false;
            }
            let msg: Vec<u8> = self.buf[d].drain(..4 + len).skip(4).collect();
            match msg.get(..4) {
                Some([0xff, b'S', b'M', b'B']) => self.smb1(toserver, &msg, sink),
                Some([0xfe, b'S', b'M', b'B']) => self.smb2(toserver, &msg, sink),
                _ => {} // encrypted (0xfd) or compressed SMB3: nothing to read
            }
        }
    }

    fn smb1(&mut self, toserver: bool, m: &[u8], sink: &mut Sink<'_>) {
        let (Some(&cmd), Some(&flags), Some(flags2)) = (m.get(4), m.get(9), le16(m, 10)) else {
            return;
        };
        let reply = flags & 0x80 != 0 || !toserver;
        let (status, status_code) = if flags2 & 0x4000 != 0 {
            let s = le32(m, 5).unwrap_or(0);
            (nt_status(s), format!("0x{s:x}"))
        } else {
            let class = m.get(5).copied().unwrap_or(0);
            let code = le16(m, 7).unwrap_or(0);
            (dos_status(class, code), format!("0x{code:04x}"))
        };
        let tid = le16(m, 24).unwrap_or(0);
        let uid = le16(m, 28).unwrap_or(0);
        let mid = le16(m, 30).unwrap_or(0);
        let unicode = flags2 & 0x8000 != 0;
        let wc = usize::from(m.get(32).copied().unwrap_or(0));
        let words = m.get(33..33 + wc * 2).unwrap_or(&[]);
        let bc_at = 33 + wc * 2;
        let bytes_at = bc_at + 2;
        let bytes = m
            .get(bytes_at..bytes_at + usize::from(le16(m, bc_at).unwrap_or(0)))
            .unwrap_or(&[]);
        let key = u64::from(mid) | (u64::from(cmd) << 32) | (1 << 48);
        if !reply {
            let mut ev = SmbEvent {
                command: smb1_command(cmd),
                tree_id: Some(u32::from(tid)),
                session_id: u64::from(uid),
                ..SmbEvent::default()
            };
            match cmd {
                0x72 => {
                    // Dialect strings: 0x02 + ASCII + NUL each.
                    for d in bytes
                        .split(|&c| c == 0)
                        .filter_map(|s| s.strip_prefix(&[2]))
                        .take(MAX_DIALECTS)
                    {
                        ev.client_dialects
                            .push(String::from_utf8_lossy(d).into_owned());
                    }
                    self.client_dialects = ev.client_dialects.clone();
                }
                0x73 => {
                    let blob = usize::from(le16(words, 14).unwrap_or(0));
                    let (os, lm) = native_strings(bytes_at, bytes, blob, unicode);
                    ev.request_native_os = os;
                    ev.request_native_lm = lm;
                }
                _ => {}
            }
            self.pending_insert(key, ev, sink);
            return;
        }
        let mut ev = self.pending.remove(&key).unwrap_or_else(|| SmbEvent {
            command: smb1_command(cmd),
            ..SmbEvent::default()
        });
        ev.status = status;
        ev.status_code = status_code;
        ev.tree_id = Some(u32::from(tid));
        match cmd {
            0x72 => {
                let idx = usize::from(le16(words, 0).unwrap_or(u16::MAX));
                if let Some(name) = self.client_dialects.get(idx) {
                    self.dialect = Some(name.clone());
                }
                // NT LM 0.12 with extended security: the server GUID opens the bytes.
                if wc == 17 && le32(words, 19).unwrap_or(0) & 0x8000_0000 != 0 {
                    ev.server_guid = guid(bytes);
                }
            }
            0x73 => {
                let blob = usize::from(le16(words, 6).unwrap_or(0));
                let (os, lm) = native_strings(bytes_at, bytes, blob, unicode);
                ev.response_native_os = os;
                ev.response_native_lm = lm;
            }
            _ => {}
        }
        self.emit(ev, sink);
    }

    fn smb2(&mut self, toserver: bool, m: &[u8], sink: &mut Sink<'_>) {
        // SMB2 messages may be compounded: NextCommand chains them within one message.
        let mut at = 0;
        for _ in 0..16 {
            let h = &m[at..];
            let (Some(status), Some(cmd), Some(flags), Some(next), Some(mid)) = (
                le32(h, 8),
                le16(h, 12),
                le32(h, 16),
                le32(h, 20),
                le64(h, 24),
            ) else {
                return;
            };
            let tree_id = le32(h, 36).unwrap_or(0);
            let session_id = le64(h, 40).unwrap_or(0);
            let end = if next == 0 {
                h.len()
            } else {
                (next as usize).min(h.len())
            };
            let body = h.get(64..end).unwrap_or(&[]);
            let reply = flags & 1 != 0 || !toserver;
            let key = mid | (2 << 48);
            if !reply {
                let mut ev = SmbEvent {
                    command: smb2_command(cmd),
                    session_id,
                    tree_id: Some(tree_id),
                    ..SmbEvent::default()
                };
                match cmd {
                    3 => {
                        // TREE_CONNECT: path offset/length from the header start.
                        let off = usize::from(le16(body, 4).unwrap_or(0));
                        let len = usize::from(le16(body, 6).unwrap_or(0));
                        ev.share = h.get(off..off + len).map(|s| utf16z(s).0);
                    }
                    5 => {
                        let off = usize::from(le16(body, 44).unwrap_or(0));
                        let len = usize::from(le16(body, 46).unwrap_or(0));
                        ev.filename = h.get(off..off + len).map(|s| utf16z(s).0);
                        ev.disposition = le32(body, 36).map(|d| disposition(d).to_string());
                    }
                    9 => {
                        // WRITE: DataOffset(2) Length(4); on a pipe, the data is DCE/RPC.
                        let off = usize::from(le16(body, 2).unwrap_or(0));
                        let len = le32(body, 4).unwrap_or(0) as usize;
                        let data = h.get(off..off.saturating_add(len)).unwrap_or(&[]);
                        ev.dcerpc = self.rpc_request(data, &ev, sink);
                    }
                    11 if le32(body, 4) == Some(FSCTL_PIPE_TRANSCEIVE) => {
                        let off = le32(body, 24).unwrap_or(0) as usize;
                        let len = le32(body, 28).unwrap_or(0) as usize;
                        let data = h.get(off..off.saturating_add(len)).unwrap_or(&[]);
                        ev.dcerpc = self.rpc_request(data, &ev, sink);
                    }
                    _ => {}
                }
                self.pending_insert(key, ev, sink);
            } else if status != STATUS_PENDING {
                // A pending interim response is not the answer.
                let mut ev = self.pending.remove(&key).unwrap_or_else(|| SmbEvent {
                    command: smb2_command(cmd),
                    ..SmbEvent::default()
                });
                ev.status = nt_status(status);
                ev.status_code = format!("0x{status:x}");
                ev.session_id = session_id;
                if cmd == 0
                    && let Some(dialect) = le16(body, 4)
                {
                    self.dialect = Some(format!("{}.{:02x}", dialect >> 8, dialect & 0xff));
                }
                if cmd == 5 && status == 0 {
                    ev.created = le64(body, 8).map(filetime);
                    ev.accessed = le64(body, 16).map(filetime);
                    ev.modified = le64(body, 24).map(filetime);
                    ev.changed = le64(body, 32).map(filetime);
                    ev.size = le64(body, 48);
                    ev.fuid = body.get(64..80).and_then(fuid);
                }
                match cmd {
                    8 => {
                        // READ: DataOffset(1) Reserved(1) DataLength(4).
                        let off = usize::from(body.get(2).copied().unwrap_or(0));
                        let len = le32(body, 4).unwrap_or(0) as usize;
                        let data = h.get(off..off.saturating_add(len)).unwrap_or(&[]);
                        self.rpc_response(data, &ev, sink);
                    }
                    9 | 11 if ev.dcerpc.is_some() => {
                        if cmd == 11 {
                            let off = le32(body, 32).unwrap_or(0) as usize;
                            let len = le32(body, 36).unwrap_or(0) as usize;
                            let data = h.get(off..off.saturating_add(len)).unwrap_or(&[]);
                            self.rpc_response(data, &ev, sink);
                        }
                        // A failed WRITE or IOCTL answers its calls: no reply will follow.
                        if status != 0 && status != 0x8000_0005 {
                            let ids: Vec<u32> = ev.dcerpc.iter().map(|c| c.call_id).collect();
                            for id in ids {
                                self.rpc_finish(id, &ev, sink);
                            }
                        }
                    }
                    // No transaction of their own, as in Suricata: file I/O and metadata.
                    9 | 16 | 17 => {}
                    _ => self.emit(ev, sink),
                }
            }
            if next == 0 || at + next as usize >= m.len() {
                return;
            }
            at += next as usize;
        }
    }

    fn pending_insert(&mut self, key: u64, ev: SmbEvent, sink: &mut Sink<'_>) {
        if self.pending.len() < MAX_PENDING {
            self.pending.insert(key, ev);
        } else {
            too_many(sink);
        }
    }

    /// DCE/RPC PDUs a client wrote to a pipe: open a call per BIND, ALTER_CONTEXT or first
    /// REQUEST fragment, and count later fragments. Returns a marker naming the first call,
    /// kept on the pending WRITE/IOCTL so its response can close the call on error.
    fn rpc_request(
        &mut self,
        mut data: &[u8],
        req: &SmbEvent,
        sink: &mut Sink<'_>,
    ) -> Option<DcerpcCall> {
        let mut first = None;
        for _ in 0..MAX_PDUS_PER_BUFFER {
            let Some(p) = Pdu::parse(data) else { break };
            data = &data[p.frag.len()..];
            first.get_or_insert(p.call_id);
            if !matches!(
                p.ptype,
                dcerpc::BIND | dcerpc::ALTER_CONTEXT | dcerpc::REQUEST
            ) {
                continue;
            }
            let stub = u64::try_from(p.stub_len()).unwrap_or(u64::MAX);
            if p.ptype == dcerpc::REQUEST
                && p.flags & dcerpc::PFC_FIRST_FRAG == 0
                && let Some(call) = self.rpc_call(p.call_id)
            {
                let r = call.req.get_or_insert_with(DcerpcStub::default);
                r.frag_cnt = r.frag_cnt.saturating_add(1);
                r.stub_data_size = r.stub_data_size.saturating_add(stub);
                continue;
            }
            if self.rpc.len() >= MAX_RPC {
                too_many(sink);
                continue;
            }
            let call = DcerpcCall {
                request: dcerpc::type_name(p.ptype),
                interfaces: p
                    .interfaces()
                    .into_iter()
                    .map(|(uuid, version)| DcerpcInterface {
                        uuid,
                        version,
                        ..DcerpcInterface::default()
                    })
                    .collect(),
                opnum: p.opnum(),
                req: (p.ptype == dcerpc::REQUEST).then_some(DcerpcStub {
                    frag_cnt: 1,
                    stub_data_size: stub,
                }),
                call_id: p.call_id,
                ..DcerpcCall::default()
            };
            self.rpc.push(SmbEvent {
                command: req.command.clone(),
                session_id: req.session_id,
                tree_id: req.tree_id,
                dcerpc: Some(call),
                ..SmbEvent::default()
            });
        }
        first.map(|call_id| DcerpcCall {
            call_id,
            ..DcerpcCall::default()
        })
    }

    fn rpc_call(&mut self, call_id: u32) -> Option<&mut DcerpcCall> {
        self.rpc
            .iter_mut()
            .filter_map(|e| e.dcerpc.as_mut())
            .find(|c| c.call_id == call_id)
    }

    /// DCE/RPC PDUs a server answered on a pipe: complete the matching calls.
    fn rpc_response(&mut self, mut data: &[u8], resp: &SmbEvent, sink: &mut Sink<'_>) {
        for _ in 0..MAX_PDUS_PER_BUFFER {
            let Some(p) = Pdu::parse(data) else { break };
            data = &data[p.frag.len()..];
            let Some(call) = self.rpc_call(p.call_id) else {
                continue;
            };
            call.response = Some(dcerpc::type_name(p.ptype));
            let done = match p.ptype {
                dcerpc::BIND_ACK | dcerpc::ALTER_CONTEXT_RESP => {
                    for (i, (result, reason)) in call.interfaces.iter_mut().zip(p.results()) {
                        i.ack_result = Some(result);
                        // With result 3 (negotiate_ack) the field is the bind-time feature
                        // bitmask (MS-RPCE 3.3.1.5.3), not a reason.
                        i.ack_reason = Some(if result == 3 { 0 } else { reason });
                    }
                    true
                }
                dcerpc::RESPONSE => {
                    let r = call.res.get_or_insert_with(DcerpcStub::default);
                    r.frag_cnt = r.frag_cnt.saturating_add(1);
                    r.stub_data_size = r
                        .stub_data_size
                        .saturating_add(u64::try_from(p.stub_len()).unwrap_or(u64::MAX));
                    p.flags & dcerpc::PFC_LAST_FRAG != 0
                }
                _ => true, // FAULT, BIND_NAK, …: the call is over
            };
            if done {
                self.rpc_finish(p.call_id, resp, sink);
            }
        }
    }

    fn rpc_finish(&mut self, call_id: u32, resp: &SmbEvent, sink: &mut Sink<'_>) {
        let Some(i) = self
            .rpc
            .iter()
            .position(|e| e.dcerpc.as_ref().is_some_and(|c| c.call_id == call_id))
        else {
            return;
        };
        let mut ev = self.rpc.remove(i);
        ev.status.clone_from(&resp.status);
        ev.status_code.clone_from(&resp.status_code);
        self.emit(ev, sink);
    }

    /// The flow ended: log unanswered requests and calls, as Suricata logs open transactions.
    pub fn finish(&mut self, sink: &mut Sink<'_>) {
        let mut open: Vec<(u64, SmbEvent)> = self.pending.drain().collect();
        open.sort_unstable_by_key(|(k, _)| *k);
        for (_, ev) in open {
            if !NO_TX.contains(&ev.command.as_str()) && ev.dcerpc.is_none() {
                self.emit(ev, sink);
            }
        }
        for ev in std::mem::take(&mut self.rpc) {
            self.emit(ev, sink);
        }
    }

    fn emit(&mut self, mut ev: SmbEvent, sink: &mut Sink<'_>) {
        self.tx += 1;
        ev.id = self.tx;
        ev.dialect = self.dialect.clone().unwrap_or_else(|| "unknown".into());
        sink.events.push(AppEvent::Smb(Box::new(ev)));
    }
}

/// Commands that log nothing without DCE/RPC.
const NO_TX: [&str; 4] = [
    "SMB2_COMMAND_READ",
    "SMB2_COMMAND_WRITE",
    "SMB2_COMMAND_GET_INFO",
    "SMB2_COMMAND_SET_INFO",
];

fn too_many(sink: &mut Sink<'_>) {
    sink.events.push(AppEvent::Anomaly {
        app_proto: AppProto::Smb,
        event: "too_many_transactions",
    });
}

/// The NativeOS and NativeLanMan strings after a session-setup security blob.
fn native_strings(
    bytes_at: usize,
    bytes: &[u8],
    blob: usize,
    unicode: bool,
) -> (Option<String>, Option<String>) {
    let mut at = blob.min(bytes.len());
    if unicode && (bytes_at + at) % 2 == 1 {
        at += 1; // Unicode strings are aligned to 2 bytes from the SMB header
    }
    let rest = bytes.get(at..).unwrap_or(&[]);
    if unicode {
        let (os, n) = utf16z(rest);
        let (lm, _) = utf16z(rest.get(n..).unwrap_or(&[]));
        (Some(os), Some(lm))
    } else {
        let mut parts = rest.split(|&c| c == 0);
        let os = parts
            .next()
            .map(|s| String::from_utf8_lossy(s).into_owned());
        let lm = parts
            .next()
            .map(|s| String::from_utf8_lossy(s).into_owned());
        (os, lm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One SMB2 message in a NetBIOS frame: 64-byte header, then `body` at offset 64.
    fn msg(cmd: u16, mid: u64, reply: bool, status: u32, body: &[u8]) -> Vec<u8> {
        let mut h = vec![0xfe, b'S', b'M', b'B', 64, 0];
        h.extend_from_slice(&[0; 2]); // credit charge
        h.extend_from_slice(&status.to_le_bytes());
        h.extend_from_slice(&cmd.to_le_bytes());
        h.extend_from_slice(&[0; 2]); // credits
        h.extend_from_slice(&u32::from(reply).to_le_bytes());
        h.extend_from_slice(&[0; 4]); // next command
        h.extend_from_slice(&mid.to_le_bytes());
        h.extend_from_slice(&[0; 4]); // reserved
        h.extend_from_slice(&7u32.to_le_bytes()); // tree id
        h.extend_from_slice(&9u64.to_le_bytes()); // session id
        h.extend_from_slice(&[0; 16]); // signature
        h.extend_from_slice(body);
        let mut f = vec![0, 0];
        f.extend_from_slice(&(h.len() as u16).to_be_bytes());
        f.extend_from_slice(&h);
        f
    }

    /// A WRITE request carrying `data` (DataOffset = 64 + 48).
    fn write(mid: u64, data: &[u8]) -> Vec<u8> {
        let mut b = vec![49, 0, 112, 0];
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 40]);
        b.extend_from_slice(data);
        msg(9, mid, false, 0, &b)
    }

    /// A READ response carrying `data` (DataOffset = 64 + 16).
    fn read_resp(mid: u64, data: &[u8]) -> Vec<u8> {
        let mut b = vec![17, 0, 80, 0];
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(data);
        msg(8, mid, true, 0, &b)
    }

    fn bind(call_id: u32) -> Vec<u8> {
        let mut v = vec![5, 0, dcerpc::BIND, 3, 0x10, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&call_id.to_le_bytes());
        v.extend_from_slice(&[0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 1, 0, 0, 0]);
        v.extend_from_slice(&[0, 0, 1, 0]);
        v.extend_from_slice(&[0x11; 16]);
        v.extend_from_slice(&[3, 0, 0, 0]);
        v.extend_from_slice(&[0; 20]);
        let n = v.len() as u16;
        v[8..10].copy_from_slice(&n.to_le_bytes());
        v
    }

    fn run(frames: &[(bool, Vec<u8>)], finish: bool) -> Vec<AppEvent> {
        let mut s = SmbState::default();
        let mut ev = Vec::new();
        let mut sink = Sink { events: &mut ev };
        for (ts, f) in frames {
            s.input(*ts, f, &mut sink);
        }
        if finish {
            s.finish(&mut sink);
        }
        ev
    }

    fn smb(ev: &[AppEvent]) -> Vec<&SmbEvent> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Smb(s) => Some(&**s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn file_read_and_write_log_nothing() {
        let ev = run(
            &[
                (true, write(1, b"plain file bytes")),
                (false, msg(9, 1, true, 0, &[17, 0, 0, 0])),
                (true, msg(8, 2, false, 0, &[49, 0])),
                (false, read_resp(2, b"more file bytes")),
            ],
            true,
        );
        assert!(smb(&ev).is_empty(), "{ev:?}");
    }

    #[test]
    fn unanswered_bind_is_logged_unreplied_at_flow_end() {
        let ev = run(
            &[
                (true, write(1, &bind(5))),
                (false, msg(9, 1, true, 0, &[17, 0, 0, 0])),
            ],
            false,
        );
        assert!(smb(&ev).is_empty(), "the call is still open: {ev:?}");
        let ev = run(
            &[
                (true, write(1, &bind(5))),
                (false, msg(9, 1, true, 0, &[17, 0, 0, 0])),
            ],
            true,
        );
        let s = smb(&ev);
        assert_eq!(s.len(), 1);
        let d = s[0].dcerpc.as_ref().unwrap();
        assert_eq!((d.request, d.response, d.call_id), ("BIND", None, 5));
        assert_eq!(s[0].command, "SMB2_COMMAND_WRITE");
        assert_eq!(d.interfaces[0].version, "3.0");
    }

    #[test]
    fn failed_pipe_write_ends_its_call_with_the_status() {
        let ev = run(
            &[
                (true, write(1, &bind(5))),
                (false, msg(9, 1, true, 0xc000_00b0, &[9, 0, 0, 0])),
            ],
            false,
        );
        let s = smb(&ev);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].status, "STATUS_PIPE_DISCONNECTED");
    }

    #[test]
    fn open_calls_are_bounded_and_counted() {
        let frames: Vec<(bool, Vec<u8>)> = (0..MAX_RPC as u64 + 3)
            .map(|i| (true, write(i, &bind(i as u32))))
            .collect();
        let ev = run(&frames, false);
        let counted = ev
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    AppEvent::Anomaly {
                        event: "too_many_transactions",
                        ..
                    }
                )
            })
            .count();
        assert_eq!(counted, 3);
    }
}
