//! Classic pcap, read directly: the hot path of offline analysis.
//!
//! pcap-parser reads this format correctly but costs about 170 ns per packet through its
//! generic block API (measured: docs/PERFORMANCE.md), which alone would cap islet below its
//! throughput target. The format is a 24-byte header and 16-byte record headers, so this reader
//! parses it in place from a 4 MiB buffer: one `read()` per few thousand packets, no copy, no
//! allocation per packet. pcapng still goes through pcap-parser.

use std::io::Read;

/// Read buffer; it also bounds the largest record (`MAX_LEGACY_CAPLEN` + 16 fits many times).
const BUFFER: usize = 4 << 20;

/// What the reader ran into.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LegacyEvent {
    /// A record header claiming more than libpcap ever writes: corrupt at `offset`.
    Corrupt {
        offset: u64,
        caplen: u32,
    },
    /// The file ends inside a record at `offset`, `rest` bytes after it.
    Truncated {
        offset: u64,
        rest: u64,
    },
    Io(String),
}

/// One record, borrowed from the buffer.
pub(crate) struct Record<'a> {
    pub ts_ns: u64,
    pub orig_len: u32,
    pub data: &'a [u8],
}

pub(crate) struct Legacy {
    r: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// File offset of `buf[start]`.
    offset: u64,
    swapped: bool,
    nano: bool,
    pub(crate) linktype: u32,
}

impl std::fmt::Debug for Legacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Legacy")
            .field("offset", &self.offset)
            .field("linktype", &self.linktype)
            .finish()
    }
}

/// Recognise a classic pcap magic: (byte-swapped?, nanosecond?).
pub(crate) fn magic(b: &[u8; 4]) -> Option<(bool, bool)> {
    match u32::from_le_bytes(*b) {
        0xa1b2_c3d4 => Some((false, false)),
        0xa1b2_3c4d => Some((false, true)),
        0xd4c3_b2a1 => Some((true, false)),
        0x4d3c_b2a1 => Some((true, true)),
        _ => None,
    }
}

impl Legacy {
    /// `header` is the 24-byte file header, already read from `r`.
    pub(crate) fn new(header: &[u8; 24], r: Box<dyn Read + Send>) -> Option<Self> {
        let (swapped, nano) = magic(&[header[0], header[1], header[2], header[3]])?;
        let lt = [header[20], header[21], header[22], header[23]];
        let linktype = (if swapped {
            u32::from_be_bytes(lt)
        } else {
            u32::from_le_bytes(lt)
        }) & 0x0FFF_FFFF;
        Some(Legacy {
            r,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            eof: false,
            offset: 24,
            swapped,
            nano,
            linktype,
        })
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    #[inline]
    fn u32_at(&self, at: usize) -> u32 {
        let b = [
            self.buf[at],
            self.buf[at + 1],
            self.buf[at + 2],
            self.buf[at + 3],
        ];
        if self.swapped {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Move what is left to the front and read more. Returns false at end of file.
    fn fill(&mut self) -> Result<bool, LegacyEvent> {
        if self.eof {
            return Ok(false);
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        loop {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LegacyEvent::Io(e.to_string())),
            }
        }
    }

    /// Call `f` for up to `max` records. Returns the count; 0 at the end of the file.
    #[inline]
    pub(crate) fn read_batch(
        &mut self,
        max: usize,
        mut f: impl FnMut(Record<'_>),
    ) -> Result<usize, LegacyEvent> {
        let mut n = 0;
        while n < max {
            let avail = self.end - self.start;
            if avail < 16 {
                if self.fill()? {
                    continue;
                }
                if avail > 0 {
                    return Err(LegacyEvent::Truncated {
                        offset: self.offset,
                        rest: avail as u64,
                    });
                }
                break;
            }
            let caplen = self.u32_at(self.start + 8);
            if caplen > crate::pcap::MAX_LEGACY_CAPLEN {
                return Err(LegacyEvent::Corrupt {
                    offset: self.offset,
                    caplen,
                });
            }
            let rec = 16 + caplen as usize;
            if avail < rec {
                if self.fill()? {
                    continue;
                }
                return Err(LegacyEvent::Truncated {
                    offset: self.offset,
                    rest: avail as u64,
                });
            }
            let secs = u64::from(self.u32_at(self.start));
            let frac = u64::from(self.u32_at(self.start + 4));
            let ts_ns = secs * 1_000_000_000 + if self.nano { frac } else { frac * 1000 };
            let orig_len = self.u32_at(self.start + 12);
            let s = self.start + 16;
            f(Record {
                ts_ns,
                orig_len,
                data: &self.buf[s..s + caplen as usize],
            });
            self.start += rec;
            self.offset += rec as u64;
            n += 1;
        }
        Ok(n)
    }
}
