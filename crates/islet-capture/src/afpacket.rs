//! AF_PACKET capture with TPACKET_V3 memory-mapped receive rings (packet(7)).
//!
//! One [`AfPacket`] is one socket bound to one interface, with its own ring of blocks the
//! kernel fills and user space hands back. A tap uses TPACKET_V3 (variable-size frames packed
//! into blocks handed over when full or after `block_timeout_ms`: the fewest wake-ups). An
//! inline bridge uses TPACKET_V2, whose frames are handed over one by one: with V3 every frame
//! would wait for its block to close, adding up to the block timeout to each hop (Suricata's
//! AF_PACKET IPS mode makes the same choice). Sockets of several workers on the same interface
//! join one `PACKET_FANOUT` group in hash mode: the kernel's flow hash is symmetric (both
//! directions of a flow hash alike), so a flow reaches one worker, and the groups of two
//! bridged interfaces with the same number of members send a flow to the same worker index on
//! both sides.
//!
//! Offloads: a user-space bridge receives frames whose checksum the sender left to hardware
//! (`CHECKSUM_PARTIAL`) and GSO super-frames larger than the MTU. With `PACKET_VNET_HDR` the
//! kernel puts a `virtio_net_hdr` in front of each frame saying so; forwarding the frame with
//! that header on a socket that also has `PACKET_VNET_HDR` lets the kernel finish the checksum
//! and segment at egress, so the bytes sent equal the bytes received and nothing stalls.
//!
//! VLAN tags the NIC or the kernel stripped (`TP_STATUS_VLAN_VALID`) are put back into the
//! frame, for both inspection and forwarding: allowed traffic leaves with the tags it came with.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{Ordering, fence};

const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const TPACKET_V2: libc::c_int = 1;
const TPACKET_V3: libc::c_int = 2;
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
const ETH_P_ALL: u16 = 0x0003;

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 0x10;
const TP_STATUS_VLAN_TPID_VALID: u32 = 0x40;
/// The frame's checksum is left to the sender's offload (`CHECKSUM_PARTIAL`).
pub const TP_STATUS_CSUMNOTREADY: u32 = 0x8;

/// Size of `struct virtio_net_hdr`.
pub const VNET_HDR_LEN: usize = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// Largest frame the ring keeps: a GSO super-frame is up to 64 KiB plus headers.
pub const MAX_FRAME: usize = 65_536 + 256;

/// Ring geometry of one socket (`[live]` ring_* in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block; a power of two, a multiple of the page size, and ≥ [`MAX_FRAME`].
    pub block_size: u32,
    /// Blocks in the ring.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not full.
    pub block_timeout_ms: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            block_size: 1 << 20,
            block_count: 64,
            block_timeout_ms: 10,
        }
    }
}

impl RingConfig {
    /// Check the geometry; the error names the field.
    pub fn validate(&self) -> Result<(), RingError> {
        let b = self.block_size;
        if !b.is_power_of_two() || b < 4096 || (b as usize) < MAX_FRAME {
            return Err(RingError::BlockSize(b));
        }
        if self.block_count == 0 || self.block_count > 65_536 {
            return Err(RingError::BlockCount(self.block_count));
        }
        if (b as u64) * (self.block_count as u64) > 4 << 30 {
            return Err(RingError::TooLarge);
        }
        if self.block_timeout_ms == 0 || self.block_timeout_ms > 10_000 {
            return Err(RingError::BlockTimeout(self.block_timeout_ms));
        }
        Ok(())
    }
}

/// Why [`RingConfig::validate`] refused a geometry; the message names the `[live]` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingError {
    /// `ring_block_size` is not a power of two, or too small for [`MAX_FRAME`].
    BlockSize(u32),
    /// `ring_blocks` is not between 1 and 65536.
    BlockCount(u32),
    /// The whole ring is over 4 GiB.
    TooLarge,
    /// `ring_block_timeout_ms` is not between 1 and 10000.
    BlockTimeout(u32),
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::BlockSize(b) => write!(
                f,
                "live.ring_block_size: {b} must be a power of two of at least {} bytes",
                MAX_FRAME.next_power_of_two()
            ),
            RingError::BlockCount(n) => {
                write!(f, "live.ring_blocks: {n} must be between 1 and 65536")
            }
            RingError::TooLarge => {
                f.write_str("live.ring_block_size × live.ring_blocks is over 4 GiB")
            }
            RingError::BlockTimeout(ms) => write!(
                f,
                "live.ring_block_timeout_ms: {ms} must be between 1 and 10000"
            ),
        }
    }
}

impl std::error::Error for RingError {}

/// How a socket is opened.
#[derive(Clone, Debug)]
pub struct SocketOptions {
    pub ring: RingConfig,
    /// Join this fanout group (hash mode, defragmenting), or none.
    pub fanout_group: Option<u16>,
    /// Put the interface in promiscuous mode while the socket is open.
    pub promisc: bool,
    /// Do not receive frames sent on this interface (a bridge must not see its own output).
    pub ignore_outgoing: bool,
    /// Ask for `virtio_net_hdr` on receive and give it on send (see the module docs).
    pub vnet_hdr: bool,
    /// TPACKET_V2 (per-frame hand-over, for inline) instead of TPACKET_V3.
    pub per_frame: bool,
}

/// Bytes per TPACKET_V2 frame: the header, the address, `virtio_net_hdr` and a GSO frame.
const V2_FRAME: usize = (MAX_FRAME + 256 + 15) & !15;

/// Kernel counters of one socket since the last read (`PACKET_STATISTICS` resets them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Frames the kernel delivered to the socket, dropped ones included.
    pub packets: u64,
    /// Frames dropped because the ring was full.
    pub drops: u64,
    /// Times the ring was frozen (every block held by user space).
    pub freezes: u64,
}

/// One frame from the ring, with what the kernel said of it.
#[derive(Debug)]
pub struct Frame<'a> {
    pub ts_ns: u64,
    /// The frame as captured (VLAN tag restored when the kernel had stripped it).
    pub data: &'a [u8],
    /// Length on the wire.
    pub wire_len: u32,
    /// `virtio_net_hdr` of the frame (zeros without `vnet_hdr`).
    pub vnet: [u8; VNET_HDR_LEN],
    /// The checksum is not filled in yet (the sender offloaded it).
    pub csum_partial: bool,
}

/// The `ifindex` of an interface, or an error naming it.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("interface {name}: no such device"),
        ));
    }
    Ok(i)
}

fn setopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live `T` of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[repr(C)]
struct TpacketReq3 {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
    tp_retire_blk_tov: u32,
    tp_sizeof_priv: u32,
    tp_feature_req_word: u32,
}

#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

/// A TPACKET_V3 socket on one interface.
#[derive(Debug)]
pub struct AfPacket {
    fd: OwnedFd,
    ifname: String,
    ring: *mut u8,
    ring_len: usize,
    block_size: usize,
    block_count: usize,
    /// The block being read and the position in it.
    block: usize,
    pkt_left: u32,
    pkt_off: usize,
    vnet_hdr: bool,
    /// TPACKET_V2: frames of `V2_FRAME` bytes, `frame_count` of them.
    v2: bool,
    frame_count: usize,
    frame: usize,
    /// A frame whose stripped VLAN tag was put back.
    scratch: Vec<u8>,
}

// SAFETY: the ring is owned by this socket alone; moving it to another thread moves the
// only reader.
unsafe impl Send for AfPacket {}

impl AfPacket {
    /// Open a socket on `ifname` with its ring. Errors name the interface and the step.
    pub fn open(ifname: &str, o: &SocketOptions) -> io::Result<AfPacket> {
        o.ring
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let idx = ifindex(ifname)?;
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("interface {ifname}: {what}: {e}"))
        };
        // Protocol 0: nothing is received until bind, so the ring starts with this interface's
        // frames only.
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(ctx("AF_PACKET socket", io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let f = fd.as_raw_fd();
        if o.vnet_hdr {
            setopt(f, SOL_PACKET, PACKET_VNET_HDR, &1i32).map_err(|e| ctx("PACKET_VNET_HDR", e))?;
        }
        let version = if o.per_frame { TPACKET_V2 } else { TPACKET_V3 };
        setopt(f, SOL_PACKET, PACKET_VERSION, &version).map_err(|e| ctx("PACKET_VERSION", e))?;
        if o.ignore_outgoing {
            setopt(f, SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32)
                .map_err(|e| ctx("PACKET_IGNORE_OUTGOING", e))?;
        }
        // Sent frames skip this host's qdisc: the bridge is the queue.
        setopt(f, SOL_PACKET, PACKET_QDISC_BYPASS, &1i32)
            .map_err(|e| ctx("PACKET_QDISC_BYPASS", e))?;
        let frames_per_block = o.ring.block_size as usize / V2_FRAME;
        let frame_count = frames_per_block * o.ring.block_count as usize;
        if o.per_frame {
            // struct tpacket_req: block size, block count, frame size, frame count.
            let req = [
                o.ring.block_size,
                o.ring.block_count,
                V2_FRAME as u32,
                frame_count as u32,
            ];
            setopt(f, SOL_PACKET, PACKET_RX_RING, &req).map_err(|e| ctx("PACKET_RX_RING", e))?;
        } else {
            let req = TpacketReq3 {
                tp_block_size: o.ring.block_size,
                tp_block_nr: o.ring.block_count,
                tp_frame_size: 2048,
                tp_frame_nr: (o.ring.block_size / 2048) * o.ring.block_count,
                tp_retire_blk_tov: o.ring.block_timeout_ms,
                tp_sizeof_priv: 0,
                tp_feature_req_word: 0,
            };
            setopt(f, SOL_PACKET, PACKET_RX_RING, &req).map_err(|e| ctx("PACKET_RX_RING", e))?;
        }
        let ring_len = o.ring.block_size as usize * o.ring.block_count as usize;
        // SAFETY: mapping the ring the kernel just allocated for this socket.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                f,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(ctx("mmap of the ring", io::Error::last_os_error()));
        }
        let sock = AfPacket {
            fd,
            ifname: ifname.to_owned(),
            ring: ring.cast(),
            ring_len,
            block_size: o.ring.block_size as usize,
            block_count: o.ring.block_count as usize,
            block: 0,
            pkt_left: 0,
            pkt_off: 0,
            vnet_hdr: o.vnet_hdr,
            v2: o.per_frame,
            frame_count,
            frame: 0,
            scratch: Vec::with_capacity(MAX_FRAME + 4),
        };
        // SAFETY: zeroed sockaddr_ll is valid; the fields set below make it a bind address.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = idx as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the given size.
        let r = unsafe {
            libc::bind(
                f,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(ctx("bind", io::Error::last_os_error()));
        }
        if o.promisc {
            let m = PacketMreq {
                mr_ifindex: idx as i32,
                mr_type: PACKET_MR_PROMISC,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setopt(f, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &m)
                .map_err(|e| ctx("promiscuous mode", e))?;
        }
        if let Some(g) = o.fanout_group {
            let v: u32 = g as u32 | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
            setopt(f, SOL_PACKET, PACKET_FANOUT, &v).map_err(|e| ctx("PACKET_FANOUT", e))?;
        }
        Ok(sock)
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn block_ptr(&self, i: usize) -> *mut u8 {
        // SAFETY: i < block_count, so the offset is inside the mapping.
        unsafe { self.ring.add(i * self.block_size) }
    }

    fn block_status(&self, i: usize) -> u32 {
        // block_status is at offset 8 of tpacket_block_desc (after version, offset_to_priv).
        let p = self.block_ptr(i).wrapping_add(8).cast::<u32>();
        // SAFETY: aligned u32 inside the mapping, written by the kernel: read it volatile.
        let s = unsafe { std::ptr::read_volatile(p) };
        fence(Ordering::Acquire);
        s
    }

    fn read_u32(&self, off: usize) -> u32 {
        debug_assert!(off + 4 <= self.ring_len);
        // SAFETY: callers pass offsets inside the current block, which user space owns.
        unsafe { std::ptr::read_unaligned(self.ring.add(off).cast::<u32>()) }
    }

    fn read_u16(&self, off: usize) -> u16 {
        // SAFETY: as `read_u32`.
        unsafe { std::ptr::read_unaligned(self.ring.add(off).cast::<u16>()) }
    }

    fn release_block(&mut self) {
        let p = self.block_ptr(self.block).wrapping_add(8).cast::<u32>();
        fence(Ordering::Release);
        // SAFETY: handing the block back: write TP_STATUS_KERNEL to its status word.
        unsafe { std::ptr::write_volatile(p, TP_STATUS_KERNEL) };
        self.block = (self.block + 1) % self.block_count;
    }

    /// Hand each frame ready in the ring to `f`, at most `max`; returns how many. Never
    /// blocks (see [`poll`]).
    pub fn drain(&mut self, max: usize, f: &mut dyn FnMut(&Frame<'_>)) -> usize {
        if self.v2 {
            self.drain_v2(max, f)
        } else {
            self.drain_v3(max, f)
        }
    }

    fn drain_v2(&mut self, max: usize, f: &mut dyn FnMut(&Frame<'_>)) -> usize {
        let per_block = self.block_size / V2_FRAME;
        let mut n = 0;
        while n < max {
            let (b, k) = (self.frame / per_block, self.frame % per_block);
            let h = b * self.block_size + k * V2_FRAME;
            // SAFETY: h is the start of a frame inside the mapping.
            let status = unsafe { std::ptr::read_volatile(self.ring.add(h).cast::<u32>()) };
            fence(Ordering::Acquire);
            if status & TP_STATUS_USER == 0 {
                break;
            }
            // struct tpacket2_hdr: status, len, snaplen, mac (u16), net (u16), sec, nsec,
            // vlan_tci (u16), vlan_tpid (u16).
            let len = self.read_u32(h + 4);
            let snaplen = self.read_u32(h + 8) as usize;
            let mac = self.read_u16(h + 12) as usize;
            let sec = self.read_u32(h + 16) as u64;
            let nsec = self.read_u32(h + 20) as u64;
            let tci = self.read_u16(h + 24);
            let tpid = self.read_u16(h + 26);
            if mac >= VNET_HDR_LEN && mac + snaplen <= V2_FRAME {
                let ts = sec * 1_000_000_000 + nsec;
                self.emit(h, mac, snaplen, len, ts, status, tci, tpid, f);
                n += 1;
            }
            fence(Ordering::Release);
            // SAFETY: handing the frame back to the kernel.
            unsafe { std::ptr::write_volatile(self.ring.add(h).cast::<u32>(), TP_STATUS_KERNEL) };
            self.frame = (self.frame + 1) % self.frame_count;
        }
        n
    }

    /// Build the [`Frame`] of the packet whose header is at `h` and hand it to `f`.
    #[allow(
        clippy::too_many_arguments,
        reason = "the ring header's fields, read once by the caller on the per-packet path"
    )]
    fn emit(
        &mut self,
        h: usize,
        mac: usize,
        snaplen: usize,
        len: u32,
        ts_ns: u64,
        status: u32,
        tci: u16,
        tpid: u16,
        f: &mut dyn FnMut(&Frame<'_>),
    ) {
        let mut vnet = [0u8; VNET_HDR_LEN];
        if self.vnet_hdr {
            // SAFETY: the header sits just before the frame, inside the ring (callers check
            // mac ≥ VNET_HDR_LEN).
            let s = unsafe {
                std::slice::from_raw_parts(self.ring.add(h + mac - VNET_HDR_LEN), VNET_HDR_LEN)
            };
            vnet.copy_from_slice(s);
        }
        // SAFETY: callers checked that the frame lies inside its block or slot.
        let data = unsafe { std::slice::from_raw_parts(self.ring.add(h + mac), snaplen) };
        let csum_partial =
            status & TP_STATUS_CSUMNOTREADY != 0 || vnet[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0;
        if status & TP_STATUS_VLAN_VALID != 0 && data.len() >= 12 {
            let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
                tpid
            } else {
                0x8100
            };
            let mut s = std::mem::take(&mut self.scratch);
            s.clear();
            s.extend_from_slice(&data[..12]);
            s.extend_from_slice(&tpid.to_be_bytes());
            s.extend_from_slice(&tci.to_be_bytes());
            s.extend_from_slice(&data[12..]);
            // The checksum start and header length move with the 4 bytes inserted.
            if vnet[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
                let cs = u16::from_le_bytes([vnet[6], vnet[7]]).saturating_add(4);
                vnet[6..8].copy_from_slice(&cs.to_le_bytes());
            }
            let hl = u16::from_le_bytes([vnet[2], vnet[3]]);
            if hl != 0 {
                vnet[2..4].copy_from_slice(&hl.saturating_add(4).to_le_bytes());
            }
            f(&Frame {
                ts_ns,
                data: &s,
                wire_len: len + 4,
                vnet,
                csum_partial,
            });
            self.scratch = s;
        } else {
            f(&Frame {
                ts_ns,
                data,
                wire_len: len,
                vnet,
                csum_partial,
            });
        }
    }

    fn drain_v3(&mut self, max: usize, f: &mut dyn FnMut(&Frame<'_>)) -> usize {
        let mut n = 0;
        while n < max {
            if self.pkt_left == 0 {
                if self.pkt_off != 0 {
                    self.release_block();
                    self.pkt_off = 0;
                }
                if self.block_status(self.block) & TP_STATUS_USER == 0 {
                    break;
                }
                let base = self.block * self.block_size;
                // tpacket_hdr_v1 at 8: block_status, num_pkts, offset_to_first_pkt, blk_len.
                self.pkt_left = self.read_u32(base + 12);
                let first = self.read_u32(base + 16) as usize;
                self.pkt_off = base + first;
                if self.pkt_left == 0 {
                    // An empty block (retired by its timer): give it back.
                    self.pkt_off = 1;
                    continue;
                }
            }
            let block_end = (self.block + 1) * self.block_size;
            let h = self.pkt_off;
            if h + 48 > block_end {
                // Corrupt framing should never come from the kernel; skip the block.
                self.pkt_left = 0;
                continue;
            }
            let next = self.read_u32(h) as usize;
            let sec = self.read_u32(h + 4) as u64;
            let nsec = self.read_u32(h + 8) as u64;
            let snaplen = self.read_u32(h + 12) as usize;
            let len = self.read_u32(h + 16);
            let status = self.read_u32(h + 20);
            let mac = self.read_u16(h + 24) as usize;
            let tci = self.read_u32(h + 32) as u16;
            let tpid = self.read_u16(h + 36);
            if h + mac + snaplen > block_end || mac < VNET_HDR_LEN {
                self.pkt_left = 0;
                continue;
            }
            let ts = sec * 1_000_000_000 + nsec;
            self.emit(h, mac, snaplen, len, ts, status, tci, tpid, f);
            n += 1;
            self.pkt_left -= 1;
            self.pkt_off = if self.pkt_left == 0 { 1 } else { h + next };
        }
        n
    }

    /// Send one frame out of this socket's interface, with `vnet` in front when the socket
    /// has `vnet_hdr` (so the kernel completes a partial checksum and segments a super-frame).
    pub fn send(&self, frame: &[u8], vnet: &[u8; VNET_HDR_LEN]) -> io::Result<()> {
        let mut v = *vnet;
        // DATA_VALID is a receive-side flag; on send only NEEDS_CSUM means anything.
        v[0] &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
        let iov = [
            libc::iovec {
                iov_base: v.as_ptr() as *mut libc::c_void,
                iov_len: VNET_HDR_LEN,
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        let (iov_ptr, iovlen) = if self.vnet_hdr {
            (iov.as_ptr(), 2)
        } else {
            (iov[1..].as_ptr(), 1)
        };
        // SAFETY: zeroed msghdr with a valid iovec array that outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov_ptr as *mut libc::iovec;
        msg.msg_iovlen = iovlen;
        loop {
            // SAFETY: `msg` points at live buffers.
            let r = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, 0) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The kernel's counters since the last call.
    pub fn stats(&self) -> io::Result<SocketStats> {
        let mut s = [0u32; 3];
        let mut len = std::mem::size_of_val(&s) as libc::socklen_t;
        // SAFETY: `s` is a writable tpacket_stats_v3 of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                s.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SocketStats {
            packets: s[0] as u64,
            drops: s[1] as u64,
            freezes: s[2] as u64,
        })
    }
}

impl Drop for AfPacket {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `open`, used by no one after this.
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_len);
        }
    }
}

/// Wait until one of `fds` is readable or `timeout_ms` passes. Returns false on timeout.
pub fn poll(fds: &[RawFd], timeout_ms: i32) -> io::Result<bool> {
    let mut p: [libc::pollfd; 16] = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 16];
    let n = fds.len().min(16);
    for (slot, fd) in p.iter_mut().zip(fds) {
        slot.fd = *fd;
        slot.events = libc::POLLIN | libc::POLLERR;
    }
    // SAFETY: `p` holds `n` valid pollfd entries.
    let r = unsafe { libc::poll(p.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}
