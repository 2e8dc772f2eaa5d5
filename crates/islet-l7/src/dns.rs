//! DNS over UDP and TCP (RFC 1035), logged in Suricata 8's EVE format (`dns.version: 3`).
//!
//! Names are decompressed with named bounds: at most [`MAX_NAME_LEN`] bytes, [`MAX_LABELS`]
//! labels and [`MAX_POINTERS`] compression jumps, and every pointer must point strictly
//! backwards, so a self-referencing or looping name ends the parse (`infinite_loop`) instead of
//! the sensor.

use crate::Sink;
use islet_event::AppProto;
use islet_event::proto::{AppEvent, DnsAnswer, DnsEvent, DnsQuery};

/// Longest decompressed name (Suricata's bound).
pub const MAX_NAME_LEN: usize = 1025;
/// Most labels in one name.
pub const MAX_LABELS: usize = 128;
/// Most compression pointers followed for one name.
pub const MAX_POINTERS: usize = 32;
/// Most questions read from one message.
pub const MAX_QUESTIONS: usize = 32;
/// Most answer and authority records read from one message.
pub const MAX_RECORDS: usize = 256;
/// Most decompressed name bytes logged from one message (owner names and names in record
/// data together). Each name is bounded by [`MAX_NAME_LEN`], but a message of 256 records
/// whose names all run through long pointer chains would still decode ~256 KiB and log it;
/// past this budget the remaining records are not read (`name_budget_exceeded`). Typical
/// responses decode well under 1 KiB.
pub const MAX_MESSAGE_NAME_BYTES: usize = 4 << 10;
/// Largest DNS-over-TCP message buffered.
pub const MAX_TCP_MESSAGE: usize = 65_535;

/// Why a message could not be read in full, named as Suricata names its DNS events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    Malformed,
    NameTooLong,
    InfiniteLoop,
    TooManyLabels,
    /// The message's names exceeded [`MAX_MESSAGE_NAME_BYTES`] (islet's event; Suricata has
    /// no such bound).
    NameBudget,
}

impl DnsError {
    pub fn event(self) -> &'static str {
        match self {
            DnsError::Malformed => "malformed_data",
            DnsError::NameTooLong => "name_too_long",
            DnsError::InfiniteLoop => "infinite_loop",
            DnsError::TooManyLabels => "too_many_labels",
            DnsError::NameBudget => "name_budget_exceeded",
        }
    }
}

/// Read the name at `at` in `msg`; returns it and the offset just past it in the record.
pub fn read_name(msg: &[u8], at: usize) -> Result<(String, usize), DnsError> {
    Names::new(msg).read(at)
}

/// A name already decoded in this message.
#[derive(Clone, Copy, Debug, Default)]
struct Memo {
    key: usize,
    start: usize,
    len: usize,
    labels: usize,
    jumps: usize,
}

/// Slots of the memo of names already decoded in one message.
const MEMO_SLOTS: usize = 64;
/// Most bytes of decoded names the memo keeps per message.
const MEMO_BYTES: usize = 2 * MAX_MESSAGE_NAME_BYTES;

/// Decodes the names of one message, remembering each decoded name by the offset it started
/// at, so that a pointer to a name already read costs a copy, not another walk of its pointer
/// chain: a message whose records all point through long chains costs work linear in its
/// size, not records × chain length. The memo is direct-mapped by offset (a collision only
/// means a walk) and bounded in bytes.
#[derive(Debug)]
pub struct Names<'m> {
    msg: &'m [u8],
    /// Per slot: offset + 1 (0: empty), start in `arena`, length, labels, pointers followed.
    memo: [Memo; MEMO_SLOTS],
    arena: String,
}

impl<'m> Names<'m> {
    pub fn new(msg: &'m [u8]) -> Names<'m> {
        Names {
            msg,
            memo: [Memo::default(); MEMO_SLOTS],
            arena: String::new(),
        }
    }

    fn remembered(&self, at: usize) -> Option<(Memo, &str)> {
        let m = self.memo[at % MEMO_SLOTS];
        (m.key == at + 1).then(|| (m, &self.arena[m.start..m.start + m.len]))
    }

    fn remember(&mut self, at: usize, name: &str, labels: usize, jumps: usize) {
        if name.is_empty() || self.arena.len() + name.len() > MEMO_BYTES {
            return;
        }
        let start = self.arena.len();
        self.arena.push_str(name);
        self.memo[at % MEMO_SLOTS] = Memo {
            key: at + 1,
            start,
            len: name.len(),
            labels,
            jumps,
        };
    }

    /// Read the name at `at`; returns it and the offset just past it in the record.
    pub fn read(&mut self, at: usize) -> Result<(String, usize), DnsError> {
        let msg = self.msg;
        let mut name = String::new();
        let mut pos = at;
        let mut end = None;
        let mut jumps = 0;
        let mut labels = 0;
        let mut lowest = at;
        loop {
            let len = *msg.get(pos).ok_or(DnsError::Malformed)?;
            match len & 0xC0 {
                0x00 => {
                    if len == 0 {
                        let end = end.unwrap_or(pos + 1);
                        self.remember(at, &name, labels, jumps);
                        return Ok((name, end));
                    }
                    let l = usize::from(len);
                    let label = msg.get(pos + 1..pos + 1 + l).ok_or(DnsError::Malformed)?;
                    labels += 1;
                    if labels > MAX_LABELS {
                        return Err(DnsError::TooManyLabels);
                    }
                    if name.len() + l + 1 > MAX_NAME_LEN {
                        return Err(DnsError::NameTooLong);
                    }
                    if !name.is_empty() {
                        name.push('.');
                    }
                    for &c in label {
                        if c.is_ascii_graphic() {
                            name.push(c as char);
                        } else {
                            name.push_str(&format!("\\x{c:02x}"));
                        }
                    }
                    pos += 1 + l;
                }
                0xC0 => {
                    let lo = *msg.get(pos + 1).ok_or(DnsError::Malformed)?;
                    let target = usize::from(len & 0x3F) << 8 | usize::from(lo);
                    if end.is_none() {
                        end = Some(pos + 2);
                    }
                    jumps += 1;
                    // Pointers must go strictly backwards from where this name began.
                    if jumps > MAX_POINTERS || target >= lowest {
                        return Err(DnsError::InfiniteLoop);
                    }
                    if let Some((m, rest)) = self.remembered(target) {
                        // The same bounds as walking it again: its labels and pointers count
                        // towards this name's, in the order the walk would meet them.
                        if labels + m.labels > MAX_LABELS {
                            return Err(DnsError::TooManyLabels);
                        }
                        if name.len() + rest.len() + 1 > MAX_NAME_LEN {
                            return Err(DnsError::NameTooLong);
                        }
                        if jumps + m.jumps > MAX_POINTERS {
                            return Err(DnsError::InfiniteLoop);
                        }
                        if !name.is_empty() {
                            name.push('.');
                        }
                        name.push_str(rest);
                        let end = end.unwrap_or(pos + 2);
                        let (l, j) = (labels + m.labels, jumps + m.jumps);
                        self.remember(at, &name, l, j);
                        return Ok((name, end));
                    }
                    lowest = target;
                    pos = target;
                }
                _ => return Err(DnsError::Malformed),
            }
        }
    }
}

/// Suricata's name for a record type.
pub fn rrtype_name(t: u16) -> std::borrow::Cow<'static, str> {
    let s = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        _ => return std::borrow::Cow::Owned(t.to_string()),
    };
    std::borrow::Cow::Borrowed(s)
}

/// Suricata's name for a response code.
pub fn rcode_name(r: u8) -> std::borrow::Cow<'static, str> {
    let s = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return std::borrow::Cow::Owned(r.to_string()),
    };
    std::borrow::Cow::Borrowed(s)
}

fn rdata(names: &mut Names<'_>, msg: &[u8], ty: u16, at: usize, len: usize) -> String {
    let Some(data) = msg.get(at..at + len) else {
        return String::new();
    };
    match (ty, len) {
        (1, 4) => format!("{}.{}.{}.{}", data[0], data[1], data[2], data[3]),
        (28, 16) => {
            let mut s = String::with_capacity(39);
            for (i, p) in data.chunks_exact(2).enumerate() {
                if i > 0 {
                    s.push(':');
                }
                s.push_str(&format!("{:02x}{:02x}", p[0], p[1]));
            }
            s
        }
        (2 | 5 | 12 | 39, _) => names.read(at).map(|(n, _)| n).unwrap_or_default(),
        (15, _) if len > 2 => names.read(at + 2).map(|(n, _)| n).unwrap_or_default(),
        (16, _) => {
            let mut s = String::new();
            let mut rest = data;
            while let Some((&n, tail)) = rest.split_first() {
                let Some(t) = tail.get(..usize::from(n)) else {
                    break;
                };
                s.push_str(&String::from_utf8_lossy(t));
                rest = &tail[usize::from(n)..];
            }
            s
        }
        _ => String::new(),
    }
}

fn u16_at(m: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(at)?, *m.get(at + 1)?]))
}

/// Take `n` decoded name bytes from the message's budget.
fn spend(budget: &mut usize, n: usize) -> Result<(), DnsError> {
    *budget = budget.checked_sub(n).ok_or(DnsError::NameBudget)?;
    Ok(())
}

fn records(
    names: &mut Names<'_>,
    msg: &[u8],
    pos: &mut usize,
    n: u16,
    out: &mut Vec<DnsAnswer>,
    budget: &mut usize,
) -> Result<(), DnsError> {
    for _ in 0..usize::from(n).min(MAX_RECORDS) {
        let (rrname, p) = names.read(*pos)?;
        spend(budget, rrname.len())?;
        let ty = u16_at(msg, p).ok_or(DnsError::Malformed)?;
        let ttl = u32::from(u16_at(msg, p + 4).ok_or(DnsError::Malformed)?) << 16
            | u32::from(u16_at(msg, p + 6).ok_or(DnsError::Malformed)?);
        let rdlen = usize::from(u16_at(msg, p + 8).ok_or(DnsError::Malformed)?);
        if msg.len() < p + 10 + rdlen {
            return Err(DnsError::Malformed);
        }
        let rdata = rdata(names, msg, ty, p + 10, rdlen);
        if matches!(ty, 2 | 5 | 12 | 15 | 39) {
            spend(budget, rdata.len())?;
        }
        out.push(DnsAnswer {
            rrname,
            rrtype: rrtype_name(ty),
            ttl,
            rdata,
        });
        *pos = p + 10 + rdlen;
    }
    Ok(())
}

/// Parse one DNS message into an event. On a malformed message the anomaly goes to `sink`
/// and what was read before the fault is still returned when the header was sound.
pub fn parse_message(msg: &[u8], tx_id: u64, sink: &mut Sink<'_>) -> Option<DnsEvent> {
    if msg.len() < 12 {
        sink.events.push(AppEvent::Anomaly {
            app_proto: AppProto::Dns,
            event: "malformed_data",
        });
        return None;
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let opcode = ((flags >> 11) & 0x0F) as u8;
    let mut ev = DnsEvent {
        response: flags & 0x8000 != 0,
        tx_id,
        id: u16::from_be_bytes([msg[0], msg[1]]),
        flags,
        opcode,
        rcode: rcode_name((flags & 0x0F) as u8),
        ..DnsEvent::default()
    };
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5 | 6) {
        sink.events.push(AppEvent::Anomaly {
            app_proto: AppProto::Dns,
            event: "invalid_opcode",
        });
    }
    if flags & 0x0040 != 0 {
        sink.events.push(AppEvent::Anomaly {
            app_proto: AppProto::Dns,
            event: "z_flag_set",
        });
    }
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let ns = u16::from_be_bytes([msg[8], msg[9]]);
    let mut pos = 12;
    let mut budget = MAX_MESSAGE_NAME_BYTES;
    let mut names = Names::new(msg);
    let r = (|| -> Result<(), DnsError> {
        for _ in 0..usize::from(qd).min(MAX_QUESTIONS) {
            let (rrname, p) = names.read(pos)?;
            spend(&mut budget, rrname.len())?;
            let ty = u16_at(msg, p).ok_or(DnsError::Malformed)?;
            u16_at(msg, p + 2).ok_or(DnsError::Malformed)?;
            ev.queries.push(DnsQuery {
                rrname,
                rrtype: rrtype_name(ty),
            });
            pos = p + 4;
        }
        if ev.response {
            records(&mut names, msg, &mut pos, an, &mut ev.answers, &mut budget)?;
            records(
                &mut names,
                msg,
                &mut pos,
                ns,
                &mut ev.authorities,
                &mut budget,
            )?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        sink.events.push(AppEvent::Anomaly {
            app_proto: AppProto::Dns,
            event: e.event(),
        });
    }
    Some(ev)
}

/// DNS over TCP: messages framed by a 2-byte length, per direction.
#[derive(Debug, Default)]
pub struct DnsTcpState {
    buf: [Vec<u8>; 2],
    tx: u64,
}

impl DnsTcpState {
    pub fn input(&mut self, toserver: bool, data: &[u8], sink: &mut Sink<'_>) -> bool {
        let d = usize::from(!toserver);
        self.buf[d].extend_from_slice(data);
        loop {
            let b = &self.buf[d];
            if b.len() < 2 {
                return false;
            }
            let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
            if b.len() < 2 + len {
                if b.len() > MAX_TCP_MESSAGE + 2 {
                    self.buf[d].clear();
                }
                return false;
            }
            let msg: Vec<u8> = self.buf[d].drain(..2 + len).skip(2).collect();
            if let Some(ev) = parse_message(&msg, self.tx, sink) {
                self.tx += 1;
                sink.events.push(AppEvent::Dns(Box::new(ev)));
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn dns_parse_name_self_reference_is_an_infinite_loop() {
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[0xC0, 12]);
        assert_eq!(read_name(&m, 12), Err(DnsError::InfiniteLoop));
    }

    #[test]
    fn dns_parse_name_pointer_chain_backwards() {
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[3, b'w', b'w', b'w', 0]); // 12: "www"
        m.extend_from_slice(&[1, b'a', 0xC0, 12]); // 17: "a" + -> 12
        assert_eq!(read_name(&m, 17).unwrap(), ("a.www".to_string(), 21));
    }

    #[test]
    fn dns_parse_oversized_name_is_bounded() {
        let mut m = vec![0u8; 12];
        for _ in 0..40 {
            m.push(63);
            m.extend_from_slice(&[b'x'; 63]);
        }
        m.push(0);
        assert_eq!(read_name(&m, 12), Err(DnsError::NameTooLong));
    }

    #[test]
    fn response_with_answers() {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[
            7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
        ]);
        m.extend_from_slice(&[
            0xC0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34,
        ]);
        let mut evs = Vec::new();
        let e = parse_message(&m, 0, &mut Sink { events: &mut evs }).unwrap();
        assert!(evs.is_empty());
        assert!(e.response);
        assert_eq!(e.queries[0].rrname, "example.com");
        assert_eq!(e.answers[0].rdata, "93.184.216.34");
        assert_eq!(e.answers[0].ttl, 3600);
        assert_eq!(e.rcode, "NOERROR");
    }

    /// Issue 18 (hostile-input benchmark): a response whose 256 answers all name a long
    /// pointer chain decoded ~256 KiB of names per 5 KB message and logged them all. The
    /// per-message name budget stops it, with an anomaly, after what was read so far.
    #[test]
    fn dns_parse_pointer_chain_answers_stop_at_the_name_budget() {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 0, 1, 0, 0, 0, 0, 0];
        // The first answer (root, TXT) carries in its data a chain of 30 labels of 30 bytes,
        // each label pointing back at the one before.
        m.extend_from_slice(&[0, 0, 16, 0, 1, 0, 0, 0, 60, 0, 0]);
        let rdlen_at = m.len() - 2;
        let mut prev: Option<usize> = None;
        let mut tail = 0;
        for i in 0..30u8 {
            let at = m.len();
            m.push(30);
            m.extend_from_slice(&[b'a' + i % 26; 30]);
            match prev {
                None => m.push(0),
                Some(p) => m.extend_from_slice(&[0xC0 | (p >> 8) as u8, p as u8]),
            }
            prev = Some(at);
            tail = at;
        }
        let rdlen = (m.len() - rdlen_at - 2) as u16;
        m[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        // 255 more answers, each owned by the chain's tail (~930 bytes decoded each).
        for _ in 0..255 {
            m.extend_from_slice(&[0xC0 | (tail >> 8) as u8, tail as u8]);
            m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        }
        let mut evs = Vec::new();
        let e = parse_message(&m, 0, &mut Sink { events: &mut evs }).expect("header");
        let logged: usize = e.answers.iter().map(|a| a.rrname.len()).sum();
        assert!(e.answers.len() > 2, "{evs:?}");
        assert!(e.answers.len() < 16, "{} answers", e.answers.len());
        assert!(logged <= MAX_MESSAGE_NAME_BYTES, "{logged} bytes of names");
        assert!(matches!(
            evs.as_slice(),
            [AppEvent::Anomaly {
                event: "name_budget_exceeded",
                ..
            }]
        ));
    }
}
