//! islet-capture — packet sources: where packets enter islet.
//!
//! A [`PacketSource`] hands out packets in batches to a callback, borrowing them from its own
//! buffer (no copy, no allocation per packet). [`PcapFiles`] reads classic pcap (microsecond and
//! nanosecond) and pcapng (several sections, several interfaces, any `if_tsresol`) through
//! `pcap-parser`'s streaming readers with a fixed buffer, so memory does not grow with the file.
//! Several files are read in order as one stream.
//!
//! Live sources and the enforcement backends are here too (Linux only): [`afpacket`]
//! (TPACKET_V3 rings, fanout, `virtio_net_hdr` offload handling), [`afxdp`] (UMEM, the four
//! rings, the XDP steering program loaded with bpf(2)), [`tc`] (flower filters over
//! rtnetlink) and [`privs`] (dropping root, keeping capabilities). Of the capture path this is
//! the one crate with `unsafe`, and only in those modules (each says `#![allow(unsafe_code)]`;
//! the only other `unsafe` in islet is `islet-intel`'s read-only map of a snapshot); the file
//! readers have none.
#![deny(unsafe_code)]

#[cfg(target_os = "linux")]
pub mod afpacket;
#[cfg(target_os = "linux")]
pub mod afxdp;
#[cfg(target_os = "linux")]
pub mod privs;
#[cfg(target_os = "linux")]
pub mod tc;

mod legacy;
mod memory;
mod pcap;

pub use memory::Frames;
pub use pcap::{PcapFile, PcapFiles};

use std::fmt;
use std::path::PathBuf;

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// LINKTYPE_* of the frame.
    pub linktype: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// Length on the wire (≥ `data.len()` when the capture was cut by a snaplen).
    pub orig_len: u32,
}

/// Anything that yields packets.
pub trait PacketSource {
    /// Call `f` for up to `max` packets. Returns how many were delivered; 0 means the source is
    /// exhausted.
    fn read_batch(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(&Packet<'_>),
    ) -> Result<usize, CaptureError>;

    /// Bytes consumed so far and the total expected, for progress reporting.
    fn progress(&self) -> (u64, u64);
}

/// What went wrong with a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened or read.
    Io(String),
    /// Neither a pcap nor a pcapng file.
    BadMagic,
    /// The file is empty or ends inside its header.
    Empty,
    /// A block whose framing is invalid.
    Corrupt(String),
    /// A block larger than [`pcap::MAX_BLOCK`].
    BlockTooLarge,
}

/// A capture error, with the file and the byte offset where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub path: PathBuf,
    pub offset: u64,
    pub kind: ErrorKind,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "{p}: cannot read: {e}"),
            ErrorKind::BadMagic => {
                write!(f, "{p}: not a pcap or pcapng file (bad magic at offset 0)")
            }
            ErrorKind::Empty => write!(f, "{p}: empty or truncated file header"),
            ErrorKind::Corrupt(why) => write!(
                f,
                "{p}: corrupt block at byte offset {}: {why}",
                self.offset
            ),
            ErrorKind::BlockTooLarge => {
                write!(
                    f,
                    "{p}: block at byte offset {} is larger than {} bytes",
                    self.offset,
                    pcap::MAX_BLOCK
                )
            }
        }
    }
}

impl std::error::Error for CaptureError {}

/// A non-fatal problem the reader worked around (a truncated last record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub path: PathBuf,
    pub offset: u64,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: byte offset {}: {}",
            self.path.display(),
            self.offset,
            self.message
        )
    }
}
