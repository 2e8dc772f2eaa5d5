//! pcap and pcapng files.

use crate::legacy::{Legacy, LegacyEvent};
use crate::{CaptureError, ErrorKind, Packet, PacketSource, Warning};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Initial read buffer.
const BUFFER: usize = 1 << 20;
/// Largest block accepted; the buffer grows up to this for jumbo frames and big pcapng blocks.
pub const MAX_BLOCK: usize = 16 << 20;
/// Largest record libpcap accepts (its MAXIMUM_SNAPLEN); a legacy record claiming more is a
/// corrupt header, not a truncated file.
pub const MAX_LEGACY_CAPLEN: u32 = 262_144;
/// Most interfaces per pcapng section.
pub const MAX_INTERFACES: usize = 4096;
/// Most option bytes a packet block that ends the file may claim beyond its packet data and
/// still be taken for a truncated last record rather than a corrupt length.
pub const MAX_TRAILING_OPTIONS: u32 = 64 << 10;
/// Most bytes `--keep-going` scans past a corrupt block for the next one before giving up.
pub const MAX_RESYNC: usize = 64 << 20;

#[derive(Clone, Copy, Debug)]
struct Iface {
    linktype: u32,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp.
    offset_s: i64,
}

/// One capture file, read as a stream.
pub struct PcapFile {
    path: PathBuf,
    size: u64,
    inner: Inner,
    done: bool,
    warnings: Vec<Warning>,
    /// Skip corrupt pcapng blocks (to the next plausible block) instead of failing.
    keep_going: bool,
    /// Corrupt blocks skipped.
    skipped: u64,
}

enum Inner {
    /// Classic pcap, read in place (see `legacy.rs`).
    Legacy(Legacy),
    /// pcapng, through pcap-parser's streaming reader.
    Ng(NgState),
}

struct NgState {
    reader: Box<dyn PcapReaderIterator>,
    pending: usize,
    ifaces: Vec<Iface>,
    capacity: usize,
    last_ts: u64,
    /// Byte order of the current section (its header's byte-order magic).
    big_endian: bool,
}

impl std::fmt::Debug for PcapFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapFile")
            .field("path", &self.path)
            .finish()
    }
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl PcapFile {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|e| CaptureError {
            path: path.to_path_buf(),
            offset: 0,
            kind: ErrorKind::Io(e.to_string()),
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Self::from_reader(path.to_path_buf(), Box::new(file), size)
    }

    /// Read a capture held in memory (tests, fuzzing, a file already loaded). `name` is used in
    /// error messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, CaptureError> {
        let size = bytes.len() as u64;
        Self::from_reader(
            PathBuf::from(name),
            Box::new(std::io::Cursor::new(bytes)),
            size,
        )
    }

    fn from_reader(
        path: PathBuf,
        mut r: Box<dyn Read + Send>,
        size: u64,
    ) -> Result<Self, CaptureError> {
        let err = |kind| CaptureError {
            path: path.clone(),
            offset: 0,
            kind,
        };
        let mut head = [0u8; 24];
        let got = read_up_to(&mut r, &mut head).map_err(|e| err(ErrorKind::Io(e.to_string())))?;
        let magic = [head[0], head[1], head[2], head[3]];
        let inner = if crate::legacy::magic(&magic).is_some() {
            if got < 24 {
                return Err(err(ErrorKind::Empty));
            }
            Inner::Legacy(Legacy::new(&head, r).ok_or_else(|| err(ErrorKind::BadMagic))?)
        } else if magic == PCAPNG_MAGIC {
            // pcap-parser recognises the format from its first read, which must hold the whole
            // section header block: hand it a generous prefix.
            let mut prefix = vec![0u8; 64 << 10];
            prefix[..got].copy_from_slice(&head[..got]);
            let more = read_up_to(&mut r, &mut prefix[got..])
                .map_err(|e| err(ErrorKind::Io(e.to_string())))?;
            prefix.truncate(got + more);
            let chained: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(prefix).chain(r));
            let reader = match create_reader(BUFFER.max(128 << 10), chained) {
                Ok(r) => r,
                Err(PcapError::Eof | PcapError::Incomplete(_)) => {
                    return Err(err(ErrorKind::Empty));
                }
                Err(PcapError::ReadError) => return Err(err(ErrorKind::Io("read failed".into()))),
                Err(_) => return Err(err(ErrorKind::BadMagic)),
            };
            Inner::Ng(NgState {
                reader,
                pending: 0,
                ifaces: Vec::new(),
                capacity: BUFFER,
                last_ts: 0,
                big_endian: false,
            })
        } else if got == 0 {
            return Err(err(ErrorKind::Empty));
        } else {
            return Err(err(ErrorKind::BadMagic));
        };
        Ok(PcapFile {
            path,
            size,
            inner,
            done: false,
            warnings: Vec::new(),
            keep_going: false,
            skipped: 0,
        })
    }

    /// With `on`, a corrupt pcapng block is skipped (the reader resumes at the next block
    /// whose length and trailing length agree) and reported as a warning, instead of ending
    /// the read with an error.
    pub fn set_keep_going(&mut self, on: bool) {
        self.keep_going = on;
    }

    /// Corrupt blocks skipped under `keep_going`.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Problems worked around so far.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    fn offset(&self) -> u64 {
        match &self.inner {
            Inner::Legacy(l) => l.offset(),
            Inner::Ng(n) => n.reader.consumed() as u64,
        }
    }

    fn error(&self, offset: u64, kind: ErrorKind) -> CaptureError {
        CaptureError {
            path: self.path.clone(),
            offset,
            kind,
        }
    }

    fn truncated(&mut self, offset: u64) {
        let rest = self.size.saturating_sub(offset);
        self.warnings.push(Warning {
            path: self.path.clone(),
            offset,
            message: format!("truncated last record ({rest} trailing bytes ignored)"),
        });
        self.done = true;
    }

    fn read_legacy(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(&Packet<'_>),
    ) -> Result<usize, CaptureError> {
        let Inner::Legacy(l) = &mut self.inner else {
            return Ok(0);
        };
        let lt = l.linktype;
        let r = l.read_batch(max, |rec| {
            f(&Packet {
                ts_ns: rec.ts_ns,
                linktype: lt,
                data: rec.data,
                orig_len: rec.orig_len,
            })
        });
        match r {
            Ok(0) => {
                self.done = true;
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(LegacyEvent::Truncated { offset, .. }) => {
                self.truncated(offset);
                Ok(0)
            }
            Err(LegacyEvent::Corrupt { offset, caplen }) => Err(self.error(
                offset,
                ErrorKind::Corrupt(format!(
                    "record claims {caplen} captured bytes (more than {MAX_LEGACY_CAPLEN})"
                )),
            )),
            Err(LegacyEvent::Io(e)) => Err(self.error(self.offset(), ErrorKind::Io(e))),
        }
    }

    fn read_ng(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(&Packet<'_>),
    ) -> Result<usize, CaptureError> {
        let mut n = 0;
        while n < max && !self.done {
            let Inner::Ng(ng) = &mut self.inner else {
                return Ok(0);
            };
            if ng.pending > 0 {
                ng.reader.consume(ng.pending);
                ng.pending = 0;
            }
            let offset = ng.reader.consumed() as u64;
            let corrupt = |why: String| CaptureError {
                path: self.path.clone(),
                offset,
                kind: ErrorKind::Corrupt(why),
            };
            // A block's total length is at least 12 (type, length, trailing length); checked
            // here because pcap-parser 0.16 subtracts 12 from it unchecked.
            if let Some(len) = block_length(ng.reader.data(), ng.big_endian) {
                if len < 12 {
                    return Err(corrupt(format!(
                        "block length {len} (a block is at least 12 bytes)"
                    )));
                }
                if len as usize > MAX_BLOCK {
                    return Err(corrupt(format!(
                        "block length {len} (more than {MAX_BLOCK} bytes)"
                    )));
                }
            }
            match ng.reader.next() {
                Ok((len, block)) => {
                    ng.pending = len;
                    match block {
                        PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                            ng.ifaces.clear();
                            ng.big_endian = shb.big_endian();
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            if ng.ifaces.len() >= MAX_INTERFACES {
                                return Err(corrupt("too many interfaces in one section".into()));
                            }
                            ng.ifaces.push(Iface {
                                linktype: idb.linktype.0 as u32,
                                units: idb.ts_resolution().unwrap_or(1_000_000),
                                offset_s: idb.ts_offset(),
                            });
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let Some(iface) = ng.ifaces.get(epb.if_id as usize).copied() else {
                                let id = epb.if_id;
                                return Err(corrupt(format!(
                                    "packet names interface {id}, which was not described"
                                )));
                            };
                            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let ts = ts_from_units(units, iface.units, iface.offset_s);
                            let cap = (epb.caplen as usize).min(epb.data.len());
                            ng.last_ts = ts;
                            f(&Packet {
                                ts_ns: ts,
                                linktype: iface.linktype,
                                data: &epb.data[..cap],
                                orig_len: epb.origlen,
                            });
                            n += 1;
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            let Some(iface) = ng.ifaces.first().copied() else {
                                return Err(corrupt("simple packet before any interface".into()));
                            };
                            let cap = (spb.origlen as usize).min(spb.data.len());
                            f(&Packet {
                                ts_ns: ng.last_ts,
                                linktype: iface.linktype,
                                data: &spb.data[..cap],
                                orig_len: spb.origlen,
                            });
                            n += 1;
                        }
                        PcapBlockOwned::NG(_) => {}
                        PcapBlockOwned::Legacy(_) | PcapBlockOwned::LegacyHeader(_) => {
                            return Err(corrupt("classic pcap record inside pcapng".into()));
                        }
                    }
                }
                Err(PcapError::Eof) => self.done = true,
                Err(PcapError::Incomplete(_)) => {
                    if ng.reader.reader_exhausted() {
                        truncation(ng.reader.data(), ng.big_endian).map_err(corrupt)?;
                        self.truncated(offset);
                    } else if ng.reader.refill().is_err() {
                        return Err(self.error(offset, ErrorKind::Io("read failed".into())));
                    }
                }
                Err(PcapError::UnexpectedEof) => {
                    truncation(ng.reader.data(), ng.big_endian).map_err(corrupt)?;
                    self.truncated(offset);
                }
                Err(PcapError::BufferTooSmall) => {
                    if ng.capacity >= MAX_BLOCK {
                        return Err(self.error(offset, ErrorKind::BlockTooLarge));
                    }
                    ng.capacity *= 2;
                    if !ng.reader.grow(ng.capacity) || ng.reader.refill().is_err() {
                        return Err(corrupt("cannot grow the read buffer".into()));
                    }
                }
                Err(PcapError::ReadError) => {
                    return Err(self.error(offset, ErrorKind::Io("read failed".into())));
                }
                Err(PcapError::HeaderNotRecognized) => {
                    return Err(corrupt("unrecognised block".into()));
                }
                Err(PcapError::NomError(_, k)) | Err(PcapError::OwnedNomError(_, k)) => {
                    return Err(corrupt(format!("invalid block ({k:?})")));
                }
            }
        }
        Ok(n)
    }
}

impl PcapFile {
    /// After a corrupt block: move to the next offset (4-byte aligned, as pcapng blocks are)
    /// where a block's length and trailing length agree, and report what was skipped.
    fn resync(&mut self, e: &CaptureError) -> Result<(), CaptureError> {
        let Inner::Ng(ng) = &mut self.inner else {
            return Err(e.clone());
        };
        if ng.pending > 0 {
            ng.reader.consume(ng.pending);
            ng.pending = 0;
        }
        let start = ng.reader.consumed();
        let mut skipped = 0usize;
        let found = loop {
            if skipped > MAX_RESYNC {
                break false;
            }
            if ng.reader.data().len() >= 4 {
                ng.reader.consume(4);
                skipped += 4;
            }
            let data = ng.reader.data();
            match block_at(data, ng.big_endian) {
                Some(true) => break true,
                Some(false) => {}
                None => {
                    if ng.reader.reader_exhausted() {
                        if data.len() < 12 {
                            break false;
                        }
                    } else if ng.reader.refill().is_err() {
                        return Err(e.clone());
                    }
                }
            }
        };
        self.skipped += 1;
        let path = self.path.clone();
        self.warnings.push(Warning {
            path,
            offset: e.offset,
            message: format!(
                "corrupt block skipped (--keep-going): {}; {}",
                match &e.kind {
                    ErrorKind::Corrupt(why) => why.as_str(),
                    _ => "unreadable block",
                },
                if found {
                    format!("reading resumes at byte offset {}", start + skipped)
                } else {
                    "no later block found; the rest of the file is ignored".into()
                }
            ),
        });
        if !found {
            self.done = true;
        }
        Ok(())
    }
}

/// Whether a plausible pcapng block starts `data`: its length is a multiple of 4 within
/// bounds and its trailing copy agrees. None: not enough bytes buffered to tell.
fn block_at(data: &[u8], big_endian: bool) -> Option<bool> {
    let len = block_length(data, big_endian)?;
    if len < 12 || len % 4 != 0 || len as usize > MAX_BLOCK {
        return Some(false);
    }
    let end = len as usize;
    let raw: [u8; 4] = data.get(end - 4..end)?.try_into().ok()?;
    let trailing = if big_endian {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    };
    Some(trailing == len)
}

/// Whether the incomplete block that ends the file (`data`) is a truncated last record — a
/// writer stopped mid-block — rather than a corrupt length: a packet block's length must fit
/// its packet data plus a bounded amount of options.
fn truncation(data: &[u8], big_endian: bool) -> Result<(), String> {
    let Some(len) = block_length(data, big_endian) else {
        return Ok(());
    };
    let word = |at: usize| -> Option<u32> {
        let raw: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        })
    };
    // Enhanced packet block: type 6, captured length at offset 20, data from offset 28.
    if word(0) == Some(6)
        && let Some(caplen) = word(20)
    {
        let least = 32 + u64::from(caplen).div_ceil(4) * 4;
        if u64::from(len) < least || u64::from(len) > least + u64::from(MAX_TRAILING_OPTIONS) {
            return Err(format!(
                "block length {len} does not fit its captured length {caplen}"
            ));
        }
    }
    Ok(())
}

/// The total length of the pcapng block at the start of `data`, in the byte order of its
/// section (a section header says its own), if enough bytes are buffered to tell.
fn block_length(data: &[u8], section_big_endian: bool) -> Option<u32> {
    let raw: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let big_endian = if data.get(..4)? == [0x0a, 0x0d, 0x0d, 0x0a] {
        data.get(8..12)? == [0x1a, 0x2b, 0x3c, 0x4d]
    } else {
        section_big_endian
    };
    Some(if big_endian {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    })
}

/// Read until `buf` is full or the input ends; returns the bytes read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn ts_from_units(units: u64, per_sec: u64, offset_s: i64) -> u64 {
    let per_sec = per_sec.max(1);
    let secs = (units / per_sec) as i64 + offset_s;
    let frac = u128::from(units % per_sec) * 1_000_000_000 / u128::from(per_sec);
    (secs.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(frac as u64)
}

impl PacketSource for PcapFile {
    fn read_batch(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(&Packet<'_>),
    ) -> Result<usize, CaptureError> {
        if self.done {
            return Ok(0);
        }
        match self.inner {
            Inner::Legacy(_) => self.read_legacy(max, f),
            Inner::Ng(_) => loop {
                match self.read_ng(max, f) {
                    Err(e) if self.keep_going && matches!(e.kind, ErrorKind::Corrupt(_)) => {
                        self.resync(&e)?;
                        if self.done {
                            return Ok(0);
                        }
                    }
                    r => return r,
                }
            },
        }
    }

    fn progress(&self) -> (u64, u64) {
        (self.offset(), self.size)
    }
}

/// Several capture files read in order as one stream.
#[derive(Debug)]
pub struct PcapFiles {
    paths: Vec<PathBuf>,
    next: usize,
    current: Option<PcapFile>,
    done_bytes: u64,
    total_bytes: u64,
    warnings: Vec<Warning>,
    keep_going: bool,
}

impl PcapFiles {
    /// Skip corrupt pcapng blocks with a warning instead of failing ([`PcapFile::set_keep_going`]).
    pub fn set_keep_going(&mut self, on: bool) {
        self.keep_going = on;
    }

    /// Check that every file opens (so a bad path fails before any output), then read lazily.
    pub fn open(paths: &[PathBuf]) -> Result<Self, CaptureError> {
        let mut total = 0;
        for p in paths {
            let f = PcapFile::open(p)?;
            total += f.size;
        }
        Ok(PcapFiles {
            paths: paths.to_vec(),
            next: 0,
            current: None,
            done_bytes: 0,
            total_bytes: total,
            warnings: Vec::new(),
            keep_going: false,
        })
    }

    pub fn take_warnings(&mut self) -> Vec<Warning> {
        if let Some(c) = self.current.as_mut() {
            self.warnings.extend(c.take_warnings());
        }
        std::mem::take(&mut self.warnings)
    }
}

impl PacketSource for PcapFiles {
    fn read_batch(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(&Packet<'_>),
    ) -> Result<usize, CaptureError> {
        loop {
            if self.current.is_none() {
                let Some(p) = self.paths.get(self.next) else {
                    return Ok(0);
                };
                self.next += 1;
                let mut f = PcapFile::open(p)?;
                f.set_keep_going(self.keep_going);
                self.current = Some(f);
            }
            let Some(cur) = self.current.as_mut() else {
                return Ok(0);
            };
            let n = cur.read_batch(max, f)?;
            if n > 0 {
                return Ok(n);
            }
            self.warnings.extend(cur.take_warnings());
            self.done_bytes += cur.size;
            self.current = None;
        }
    }

    fn progress(&self) -> (u64, u64) {
        let cur = self.current.as_ref().map(|c| c.offset()).unwrap_or(0);
        (self.done_bytes + cur, self.total_bytes)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn tsresol_units() {
        assert_eq!(ts_from_units(1_500_000, 1_000_000, 0), 1_500_000_000);
        assert_eq!(ts_from_units(3, 2, 10), 11_500_000_000);
        assert_eq!(
            ts_from_units(1_000_000_001, 1_000_000_000, 0),
            1_000_000_001
        );
    }

    /// A block claiming a total length below 12 is refused by name (pcap-parser 0.16 would
    /// subtract 12 from it unchecked; found by the `capture_reader` fuzz target).
    #[test]
    fn block_shorter_than_its_frame_is_corrupt() {
        let mut f = vec![
            0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
        ];
        f.extend_from_slice(&[0xff; 8]);
        f.extend_from_slice(&[28, 0, 0, 0]);
        // An unknown block type with length 11, then some bytes.
        f.extend_from_slice(&[1, 0, 0, 0x80, 11, 0, 0, 0]);
        f.extend_from_slice(&[0; 40]);
        let mut r = PcapFile::from_bytes("short-block", f).expect("section header");
        let e = r.read_batch(8, &mut |_| {}).expect_err("corrupt");
        assert_eq!(e.offset, 28);
        assert!(
            matches!(&e.kind, ErrorKind::Corrupt(w) if w.contains("block length 11")),
            "{e}"
        );
        // The same in a big-endian section.
        let mut f = vec![
            0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d, 0, 1, 0, 0,
        ];
        f.extend_from_slice(&[0xff; 8]);
        f.extend_from_slice(&[0, 0, 0, 28]);
        f.extend_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 8]);
        f.extend_from_slice(&[0; 40]);
        let mut r = PcapFile::from_bytes("short-block-be", f).expect("section header");
        let e = r.read_batch(8, &mut |_| {}).expect_err("corrupt");
        assert!(format!("{e}").contains("block length 8"), "{e}");
    }
}
