//! pcap and pcapng files.

use crate::{CaptureError, ErrorKind, Packet, PacketSource, Warning};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};
use std::fs::File;
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
    reader: Box<dyn PcapReaderIterator>,
    size: u64,
    pending: usize,
    legacy: Option<(u32, bool)>,
    /// Legacy file's byte order is swapped relative to little-endian (magic read as BE).
    legacy_be: bool,
    /// Where the bytes come from, to re-read a record header when the file seems truncated.
    on_disk: bool,
    ifaces: Vec<Iface>,
    capacity: usize,
    last_ts: u64,
    done: bool,
    warnings: Vec<Warning>,
}

impl std::fmt::Debug for PcapFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapFile")
            .field("path", &self.path)
            .finish()
    }
}

impl PcapFile {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let err = |kind| CaptureError {
            path: path.to_path_buf(),
            offset: 0,
            kind,
        };
        let file = File::open(path).map_err(|e| err(ErrorKind::Io(e.to_string())))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let reader = match create_reader(BUFFER, file) {
            Ok(r) => r,
            Err(PcapError::Eof | PcapError::Incomplete(_)) => return Err(err(ErrorKind::Empty)),
            Err(PcapError::ReadError) => return Err(err(ErrorKind::Io("read failed".into()))),
            Err(_) => return Err(err(ErrorKind::BadMagic)),
        };
        let mut f = Self::with_reader(path.to_path_buf(), reader, size);
        f.on_disk = true;
        Ok(f)
    }

    /// Read a capture held in memory (tests, fuzzing, a file already loaded). `name` is used in
    /// error messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, CaptureError> {
        let path = PathBuf::from(name);
        let err = |kind| CaptureError {
            path: path.clone(),
            offset: 0,
            kind,
        };
        let size = bytes.len() as u64;
        let reader = match create_reader(BUFFER, std::io::Cursor::new(bytes)) {
            Ok(r) => r,
            Err(PcapError::Eof | PcapError::Incomplete(_)) => return Err(err(ErrorKind::Empty)),
            Err(_) => return Err(err(ErrorKind::BadMagic)),
        };
        Ok(Self::with_reader(path, reader, size))
    }

    fn with_reader(path: PathBuf, reader: Box<dyn PcapReaderIterator>, size: u64) -> Self {
        PcapFile {
            path,
            reader,
            size,
            pending: 0,
            legacy: None,
            legacy_be: false,
            on_disk: false,
            ifaces: Vec::new(),
            capacity: BUFFER,
            last_ts: 0,
            done: false,
            warnings: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Problems worked around so far.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    fn offset(&self) -> u64 {
        self.reader.consumed() as u64
    }

    fn corrupt(&self, why: impl Into<String>) -> CaptureError {
        CaptureError {
            path: self.path.clone(),
            offset: self.offset(),
            kind: ErrorKind::Corrupt(why.into()),
        }
    }

    /// The file ends inside a record. For a legacy file whose record header claims more than
    /// libpcap ever writes, that is corruption; otherwise the capture was cut short.
    fn truncated(&mut self) -> Result<(), CaptureError> {
        let offset = self.offset();
        if self.legacy.is_some()
            && self.on_disk
            && let Some(caplen) = self.peek_caplen(offset)
            && caplen > MAX_LEGACY_CAPLEN
        {
            return Err(self.corrupt(format!(
                "record claims {caplen} captured bytes (more than {MAX_LEGACY_CAPLEN})"
            )));
        }
        let rest = self.size.saturating_sub(offset);
        self.warnings.push(Warning {
            path: self.path.clone(),
            offset,
            message: format!("truncated last record ({rest} trailing bytes ignored)"),
        });
        self.done = true;
        Ok(())
    }

    fn peek_caplen(&self, offset: u64) -> Option<u32> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = File::open(&self.path).ok()?;
        f.seek(SeekFrom::Start(offset + 8)).ok()?;
        let mut b = [0u8; 4];
        f.read_exact(&mut b).ok()?;
        Some(if self.legacy_be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
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
        let mut n = 0;
        while n < max && !self.done {
            if self.pending > 0 {
                self.reader.consume(self.pending);
                self.pending = 0;
            }
            let next = self.reader.next();
            match next {
                Ok((len, block)) => {
                    self.pending = len;
                    match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            self.legacy = Some((h.network.0 as u32, h.is_nanosecond_precision()));
                            self.legacy_be = h.is_bigendian();
                        }
                        PcapBlockOwned::Legacy(b) => {
                            let (lt, nano) = self.legacy.unwrap_or((1, false));
                            let frac = if nano {
                                u64::from(b.ts_usec)
                            } else {
                                u64::from(b.ts_usec) * 1000
                            };
                            let ts = u64::from(b.ts_sec) * 1_000_000_000 + frac;
                            let cap = (b.caplen as usize).min(b.data.len());
                            self.last_ts = ts;
                            f(&Packet {
                                ts_ns: ts,
                                linktype: lt,
                                data: &b.data[..cap],
                                orig_len: b.origlen,
                            });
                            n += 1;
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => self.ifaces.clear(),
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            if self.ifaces.len() >= MAX_INTERFACES {
                                return Err(self.corrupt("too many interfaces in one section"));
                            }
                            let units = idb.ts_resolution().unwrap_or(1_000_000);
                            self.ifaces.push(Iface {
                                linktype: idb.linktype.0 as u32,
                                units,
                                offset_s: idb.ts_offset(),
                            });
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let Some(iface) = self.ifaces.get(epb.if_id as usize).copied() else {
                                let id = epb.if_id;
                                return Err(self.corrupt(format!(
                                    "packet names interface {id}, which was not described"
                                )));
                            };
                            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let ts = ts_from_units(units, iface.units, iface.offset_s);
                            let cap = (epb.caplen as usize).min(epb.data.len());
                            self.last_ts = ts;
                            f(&Packet {
                                ts_ns: ts,
                                linktype: iface.linktype,
                                data: &epb.data[..cap],
                                orig_len: epb.origlen,
                            });
                            n += 1;
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            let Some(iface) = self.ifaces.first().copied() else {
                                return Err(self.corrupt("simple packet before any interface"));
                            };
                            let cap = (spb.origlen as usize).min(spb.data.len());
                            f(&Packet {
                                ts_ns: self.last_ts,
                                linktype: iface.linktype,
                                data: &spb.data[..cap],
                                orig_len: spb.origlen,
                            });
                            n += 1;
                        }
                        PcapBlockOwned::NG(_) => {}
                    }
                }
                Err(PcapError::Eof) => self.done = true,
                Err(PcapError::Incomplete(_)) => {
                    if self.reader.reader_exhausted() {
                        self.truncated()?;
                    } else if self.reader.refill().is_err() {
                        return Err(CaptureError {
                            path: self.path.clone(),
                            offset: self.offset(),
                            kind: ErrorKind::Io("read failed".into()),
                        });
                    }
                }
                Err(PcapError::UnexpectedEof) => self.truncated()?,
                Err(PcapError::BufferTooSmall) => {
                    if self.capacity >= MAX_BLOCK {
                        return Err(CaptureError {
                            path: self.path.clone(),
                            offset: self.offset(),
                            kind: ErrorKind::BlockTooLarge,
                        });
                    }
                    self.capacity *= 2;
                    if !self.reader.grow(self.capacity) {
                        return Err(self.corrupt("cannot grow the read buffer"));
                    }
                    if self.reader.refill().is_err() {
                        return Err(self.corrupt("read failed"));
                    }
                }
                Err(PcapError::ReadError) => {
                    return Err(CaptureError {
                        path: self.path.clone(),
                        offset: self.offset(),
                        kind: ErrorKind::Io("read failed".into()),
                    });
                }
                Err(PcapError::HeaderNotRecognized) => {
                    return Err(self.corrupt("unrecognised block"));
                }
                Err(PcapError::NomError(_, k)) => {
                    return Err(self.corrupt(format!("invalid block ({k:?})")));
                }
                Err(PcapError::OwnedNomError(_, k)) => {
                    return Err(self.corrupt(format!("invalid block ({k:?})")));
                }
            }
        }
        Ok(n)
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
}

impl PcapFiles {
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
                self.current = Some(PcapFile::open(p)?);
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
}
