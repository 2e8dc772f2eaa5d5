//! AF_XDP capture and transmit (the kernel's `Documentation/networking/af_xdp.rst`).
//!
//! One [`Xsk`] is one socket on one queue of one interface, with its own UMEM (a region of
//! fixed-size frames shared with the kernel) and four rings: fill (frames user space gives the
//! kernel to receive into), rx (frames received), tx (frames to send) and completion (frames
//! sent). A small XDP program ([`XdpProgram`]), loaded with `bpf(2)` and attached through a
//! BPF link (detached by the kernel when islet's descriptor closes, also on a crash), steers
//! every frame of the interface into the socket of its receive queue through an `XSKMAP`.
//!
//! The socket is bound in zero-copy mode where the driver supports it and in copy mode
//! otherwise (veth, most virtual devices); [`Xsk::zero_copy`] says which. Inline, a frame
//! received on one port is copied into a free frame of the other port's UMEM and sent there.
#![allow(unsafe_code)]

use crate::afpacket::{Frame, VNET_HDR_LEN};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

const AF_XDP: libc::c_int = 44;
const SOL_XDP: libc::c_int = 283;
const XDP_MMAP_OFFSETS: libc::c_int = 1;
const XDP_RX_RING: libc::c_int = 2;
const XDP_TX_RING: libc::c_int = 3;
const XDP_UMEM_REG: libc::c_int = 4;
const XDP_UMEM_FILL_RING: libc::c_int = 5;
const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
const XDP_STATISTICS: libc::c_int = 7;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;
const XDP_COPY: u16 = 1 << 1;
const XDP_ZEROCOPY: u16 = 1 << 2;
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
const XDP_RING_NEED_WAKEUP: u32 = 1;
const PGOFF_RX: i64 = 0;
const PGOFF_TX: i64 = 0x8000_0000;
const PGOFF_FILL: i64 = 0x1_0000_0000;
const PGOFF_COMPLETION: i64 = 0x1_8000_0000;

/// Bytes per UMEM frame (one page: the largest frame copy mode delivers without fragments).
pub const FRAME_SIZE: u32 = 4096;

/// Ring sizes of one socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XskConfig {
    /// Frames in the UMEM: half for receiving, half for sending. A power of two.
    pub frames: u32,
    /// Entries per ring (a power of two, at most `frames / 2`).
    pub ring: u32,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frames: 4096,
            ring: 2048,
        }
    }
}

/// Kernel counters of one socket (`XDP_STATISTICS`, cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    pub rx_dropped: u64,
    pub rx_invalid: u64,
    pub tx_invalid: u64,
    pub rx_ring_full: u64,
    pub fill_ring_empty: u64,
}

/// A single-producer or single-consumer ring shared with the kernel.
#[derive(Debug)]
struct Ring {
    map: *mut u8,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
    /// Our cached copy of the index we own (producer or consumer).
    cached: u32,
}

impl Ring {
    fn producer(&self) -> u32 {
        // SAFETY: points into the ring's live mapping.
        unsafe { (*self.producer).load(Ordering::Acquire) }
    }
    fn consumer(&self) -> u32 {
        // SAFETY: as `producer`.
        unsafe { (*self.consumer).load(Ordering::Acquire) }
    }
    fn set_producer(&mut self, v: u32) {
        self.cached = v;
        // SAFETY: as `producer`; user space owns this index.
        unsafe { (*self.producer).store(v, Ordering::Release) }
    }
    fn set_consumer(&mut self, v: u32) {
        self.cached = v;
        // SAFETY: as `producer`; user space owns this index.
        unsafe { (*self.consumer).store(v, Ordering::Release) }
    }
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as `producer`.
        unsafe { (*self.flags).load(Ordering::Acquire) & XDP_RING_NEED_WAKEUP != 0 }
    }
    /// The u64 entry `i` of an address ring (fill, completion).
    fn addr(&self, i: u32) -> *mut u64 {
        // SAFETY: the index is masked into the ring's entries.
        unsafe { self.desc.cast::<u64>().add((i & self.mask) as usize) }
    }
    /// The `xdp_desc` entry `i` of rx/tx: (addr u64, len u32, options u32).
    fn desc(&self, i: u32) -> *mut u8 {
        // SAFETY: the index is masked into the ring's entries (16 bytes each).
        unsafe { self.desc.add((i & self.mask) as usize * 16) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping this ring's own mapping.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

fn check(r: libc::c_int, what: &str) -> io::Result<()> {
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn setopt<T>(fd: RawFd, name: libc::c_int, v: &T, what: &str) -> io::Result<()> {
    // SAFETY: `v` is a live `T` of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(r, what)
}

/// An AF_XDP socket on one queue, with its UMEM.
#[derive(Debug)]
pub struct Xsk {
    fd: OwnedFd,
    ifname: String,
    queue: u32,
    umem: *mut u8,
    umem_len: usize,
    rx: Ring,
    tx: Ring,
    fill: Ring,
    comp: Ring,
    /// Frames of the transmit half not in flight.
    free_tx: Vec<u64>,
    zero_copy: bool,
    /// Frames queued on tx since the last kick.
    tx_pending: u32,
}

// SAFETY: the mappings belong to this socket alone; moving it moves the only user.
unsafe impl Send for Xsk {}

impl Xsk {
    /// Open a socket on queue `queue` of `ifname` (zero-copy if the driver can, else copy).
    pub fn open(ifname: &str, queue: u32, cfg: &XskConfig) -> io::Result<Xsk> {
        let ifindex = crate::afpacket::ifindex(ifname)?;
        if !cfg.frames.is_power_of_two()
            || !cfg.ring.is_power_of_two()
            || cfg.ring > cfg.frames / 2
            || cfg.frames > 1 << 20
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "AF_XDP: frames and ring must be powers of two, ring ≤ frames / 2",
            ));
        }
        let ctx = |e: io::Error| {
            io::Error::new(e.kind(), format!("interface {ifname} queue {queue}: {e}"))
        };
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        check(raw, "AF_XDP socket").map_err(ctx)?;
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let f = fd.as_raw_fd();
        let umem_len = cfg.frames as usize * FRAME_SIZE as usize;
        // SAFETY: an anonymous private mapping for the UMEM.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if umem == libc::MAP_FAILED {
            return Err(ctx(io::Error::last_os_error()));
        }
        let umem: *mut u8 = umem.cast();
        // From here on, `guard` unmaps the UMEM if a later step fails.
        struct Guard(*mut u8, usize, bool);
        impl Drop for Guard {
            fn drop(&mut self) {
                if !self.2 {
                    // SAFETY: the UMEM mapping made above, not yet owned by an Xsk.
                    unsafe {
                        libc::munmap(self.0.cast(), self.1);
                    }
                }
            }
        }
        let mut guard = Guard(umem, umem_len, false);
        // struct xdp_umem_reg { addr, len, chunk_size, headroom, flags, tx_metadata_len }
        let reg: [u64; 4] = [
            umem as u64,
            umem_len as u64,
            FRAME_SIZE as u64, // chunk_size | headroom << 32 (little-endian layout)
            0,                 // flags, tx_metadata_len
        ];
        let reg = if cfg!(target_endian = "little") {
            reg
        } else {
            [reg[0], reg[1], (FRAME_SIZE as u64) << 32, 0]
        };
        setopt(f, XDP_UMEM_REG, &reg, "XDP_UMEM_REG").map_err(ctx)?;
        for (opt, what) in [
            (XDP_UMEM_FILL_RING, "fill ring"),
            (XDP_UMEM_COMPLETION_RING, "completion ring"),
            (XDP_RX_RING, "rx ring"),
            (XDP_TX_RING, "tx ring"),
        ] {
            setopt(f, opt, &cfg.ring, what).map_err(ctx)?;
        }
        // struct xdp_mmap_offsets: rx, tx, fr, cr; each producer, consumer, desc, flags.
        let mut off = [0u64; 16];
        let mut len = std::mem::size_of_val(&off) as libc::socklen_t;
        // SAFETY: `off` is writable for `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                f,
                SOL_XDP,
                XDP_MMAP_OFFSETS,
                off.as_mut_ptr().cast(),
                &mut len,
            )
        };
        check(r, "XDP_MMAP_OFFSETS").map_err(ctx)?;
        let map_ring = |o: &[u64], pgoff: i64, entry: usize| -> io::Result<Ring> {
            let map_len = o[2] as usize + cfg.ring as usize * entry;
            // SAFETY: mapping a ring the kernel allocated for this socket.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    f,
                    pgoff,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let p: *mut u8 = p.cast();
            // SAFETY: the offsets the kernel gave are inside the mapping.
            Ok(unsafe {
                Ring {
                    map: p,
                    map_len,
                    producer: p.add(o[0] as usize).cast(),
                    consumer: p.add(o[1] as usize).cast(),
                    desc: p.add(o[2] as usize),
                    flags: p.add(o[3] as usize).cast(),
                    mask: cfg.ring - 1,
                    cached: 0,
                }
            })
        };
        let rx = map_ring(&off[0..4], PGOFF_RX, 16).map_err(ctx)?;
        let tx = map_ring(&off[4..8], PGOFF_TX, 16).map_err(ctx)?;
        let fill = map_ring(&off[8..12], PGOFF_FILL, 8).map_err(ctx)?;
        let comp = map_ring(&off[12..16], PGOFF_COMPLETION, 8).map_err(ctx)?;
        let half = cfg.frames / 2;
        let mut x = Xsk {
            fd,
            ifname: ifname.to_owned(),
            queue,
            umem,
            umem_len,
            rx,
            tx,
            fill,
            comp,
            free_tx: (half..cfg.frames)
                .map(|i| i as u64 * FRAME_SIZE as u64)
                .collect(),
            zero_copy: false,
            tx_pending: 0,
        };
        guard.2 = true;
        // Give the kernel the receive half (as much as the fill ring holds).
        x.fill.cached = x.fill.producer();
        x.rx.cached = x.rx.consumer();
        x.tx.cached = x.tx.producer();
        x.comp.cached = x.comp.consumer();
        let n = half.min(cfg.ring);
        for i in 0..n {
            // SAFETY: entry within the ring.
            unsafe { *x.fill.addr(x.fill.cached + i) = i as u64 * FRAME_SIZE as u64 };
        }
        let p = x.fill.cached + n;
        x.fill.set_producer(p);
        // Bind: zero-copy first, then copy mode.
        let bind = |flags: u16| -> io::Result<()> {
            // struct sockaddr_xdp { family u16, flags u16, ifindex u32, queue_id u32, shared_umem_fd u32 }
            let mut sa = [0u8; 16];
            sa[0..2].copy_from_slice(&(AF_XDP as u16).to_ne_bytes());
            sa[2..4].copy_from_slice(&flags.to_ne_bytes());
            sa[4..8].copy_from_slice(&ifindex.to_ne_bytes());
            sa[8..12].copy_from_slice(&queue.to_ne_bytes());
            // SAFETY: `sa` is a valid sockaddr_xdp.
            let r = unsafe { libc::bind(f, sa.as_ptr().cast(), sa.len() as libc::socklen_t) };
            check(r, "bind")
        };
        if bind(XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP).is_err() {
            bind(XDP_COPY | XDP_USE_NEED_WAKEUP).map_err(ctx)?;
        }
        let mut opts = 0u32;
        let mut olen = 4 as libc::socklen_t;
        // SAFETY: `opts` is writable for 4 bytes.
        let r = unsafe {
            libc::getsockopt(
                f,
                SOL_XDP,
                XDP_OPTIONS,
                (&mut opts as *mut u32).cast(),
                &mut olen,
            )
        };
        x.zero_copy = r == 0 && opts & XDP_OPTIONS_ZEROCOPY != 0;
        Ok(x)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The socket moves frames without copying them (driver support).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    fn frame(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let a = addr as usize;
        let end = a.checked_add(len as usize)?;
        if end > self.umem_len || len > FRAME_SIZE {
            return None;
        }
        // SAFETY: inside the UMEM, owned by user space while on the rx ring's consumer side.
        Some(unsafe { std::slice::from_raw_parts(self.umem.add(a), len as usize) })
    }

    /// Hand each received frame to `f` (at most `max`), then give the frames back to the
    /// kernel. `ts_ns` is the time they are stamped with (AF_XDP has no receive timestamp).
    pub fn drain(&mut self, max: usize, ts_ns: u64, f: &mut dyn FnMut(&Frame<'_>)) -> usize {
        let prod = self.rx.producer();
        let avail = prod.wrapping_sub(self.rx.cached).min(max as u32);
        if avail == 0 {
            return 0;
        }
        let mut addrs = [0u64; 64];
        let mut done = 0u32;
        while done < avail {
            let k = (avail - done).min(64);
            for j in 0..k {
                let d = self.rx.desc(self.rx.cached + done + j);
                // SAFETY: a descriptor the kernel produced.
                let (addr, len) = unsafe {
                    (
                        std::ptr::read_unaligned(d.cast::<u64>()),
                        std::ptr::read_unaligned(d.add(8).cast::<u32>()),
                    )
                };
                addrs[j as usize] = addr;
                if let Some(data) = self.frame(addr, len) {
                    f(&Frame {
                        ts_ns,
                        data,
                        wire_len: len,
                        vnet: [0; VNET_HDR_LEN],
                        csum_partial: false,
                    });
                }
            }
            // Back to the fill ring (it has room: every frame came from it).
            let fp = self.fill.cached;
            for j in 0..k {
                // SAFETY: entry within the ring; the base of the frame's chunk.
                unsafe { *self.fill.addr(fp + j) = addrs[j as usize] & !(FRAME_SIZE as u64 - 1) };
            }
            self.fill.set_producer(fp + k);
            done += k;
        }
        let c = self.rx.cached + avail;
        self.rx.set_consumer(c);
        if self.fill.needs_wakeup() {
            self.kick_rx();
        }
        avail as usize
    }

    fn kick_rx(&self) {
        // SAFETY: recvfrom with no buffer just wakes the driver.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    /// Take back the frames the kernel has sent.
    fn complete(&mut self) {
        let prod = self.comp.producer();
        let mut c = self.comp.cached;
        while c != prod {
            // SAFETY: an entry the kernel produced.
            let a = unsafe { *self.comp.addr(c) };
            self.free_tx.push(a & !(FRAME_SIZE as u64 - 1));
            c = c.wrapping_add(1);
        }
        self.comp.set_consumer(c);
    }

    /// Queue `frame` for sending (copied into this socket's UMEM). False if it does not fit a
    /// frame or no transmit frame is free (counted by the caller as a send error).
    pub fn send(&mut self, frame: &[u8]) -> bool {
        if frame.len() > FRAME_SIZE as usize {
            return false;
        }
        if self.free_tx.is_empty() || self.tx.cached.wrapping_sub(self.tx.consumer()) > self.tx.mask
        {
            self.flush();
            self.complete();
        }
        let Some(addr) = self.free_tx.pop() else {
            return false;
        };
        if self.tx.cached.wrapping_sub(self.tx.consumer()) > self.tx.mask {
            self.free_tx.push(addr);
            return false;
        }
        // SAFETY: a free transmit frame inside the UMEM, FRAME_SIZE ≥ frame.len(), owned by
        // user space until it is put on the tx ring below.
        let out = unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.umem.add(addr as usize),
                frame.len(),
            );
            std::slice::from_raw_parts_mut(self.umem.add(addr as usize), frame.len())
        };
        complete_partial_checksum(out);
        let d = self.tx.desc(self.tx.cached);
        // SAFETY: the descriptor slot at our producer index.
        unsafe {
            std::ptr::write_unaligned(d.cast::<u64>(), addr);
            std::ptr::write_unaligned(d.add(8).cast::<u32>(), frame.len() as u32);
            std::ptr::write_unaligned(d.add(12).cast::<u32>(), 0);
        }
        self.tx.cached = self.tx.cached.wrapping_add(1);
        self.tx_pending += 1;
        if self.tx_pending >= 64 {
            self.flush();
        }
        true
    }

    /// Publish queued frames and wake the kernel to send them.
    pub fn flush(&mut self) {
        if self.tx_pending > 0 {
            let p = self.tx.cached;
            self.tx.set_producer(p);
            self.tx_pending = 0;
        }
        if !self.zero_copy || self.tx.needs_wakeup() {
            // SAFETY: sendto with no data is the AF_XDP transmit kick.
            unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                );
            }
        }
        self.complete();
    }

    pub fn stats(&self) -> io::Result<XskStats> {
        let mut s = [0u64; 6];
        let mut len = std::mem::size_of_val(&s) as libc::socklen_t;
        // SAFETY: `s` is writable for `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_XDP,
                XDP_STATISTICS,
                s.as_mut_ptr().cast(),
                &mut len,
            )
        };
        check(r, "XDP_STATISTICS")?;
        Ok(XskStats {
            rx_dropped: s[0],
            rx_invalid: s[1],
            tx_invalid: s[2],
            rx_ring_full: s[3],
            fill_ring_empty: s[4],
        })
    }
}

impl Drop for Xsk {
    fn drop(&mut self) {
        // SAFETY: the UMEM mapping made in `open`; the socket closes after this (fd field).
        unsafe {
            libc::munmap(self.umem.cast(), self.umem_len);
        }
    }
}

// ---- the XDP program -------------------------------------------------------------------

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;
/// `XDP_FLAGS_SKB_MODE`: the generic (any driver) hook.
pub const XDP_FLAGS_SKB_MODE: u32 = 2;
/// `XDP_FLAGS_DRV_MODE`: the driver's own hook.
pub const XDP_FLAGS_DRV_MODE: u32 = 4;

fn bpf(cmd: libc::c_long, attr: &mut [u8; 144]) -> io::Result<RawFd> {
    // SAFETY: bpf(2) with a zero-initialised attribute union of the size the kernel knows.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as RawFd)
}

/// One eBPF instruction: opcode, dst/src registers, offset, immediate.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | (dst & 0xF);
    b[2..4].copy_from_slice(&off.to_ne_bytes());
    b[4..8].copy_from_slice(&imm.to_ne_bytes());
    b
}

/// The steering program: `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);`
/// (a queue without a socket passes its frames to the kernel's stack).
pub fn steering_program(xsk_map_fd: RawFd) -> Vec<[u8; 8]> {
    vec![
        insn(0x61, 2, 1, 16, 0),         // r2 = *(u32 *)(r1 + 16): rx_queue_index
        insn(0x18, 1, 1, 0, xsk_map_fd), // r1 = map (BPF_PSEUDO_MAP_FD), ld_imm64 …
        insn(0, 0, 0, 0, 0),             // … its upper half
        insn(0xb7, 3, 0, 0, XDP_PASS),   // r3 = XDP_PASS (the action when no socket)
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        insn(0x95, 0, 0, 0, 0), // exit
    ]
}

const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_FUNC_REDIRECT: i32 = 23;
const BPF_FUNC_XDP_GET_BUFF_LEN: i32 = 188;

/// The steering program with kernel bypass in front of the steering:
///
/// ```text
/// if the frame is untagged IPv4 without options, not a fragment, TCP or UDP:
///     v = bypass[{src, dst, sport, dport, proto}]
///     if v: v.pkts += 1; v.bytes += len            (atomic)
///           return v.ifindex ? bpf_redirect(v.ifindex, 0) : XDP_PASS
/// return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS)
/// ```
///
/// A bypassed flow's frames stay in the kernel: sent straight out of the other port (inline)
/// or left to the stack (tap), and counted in the map for islet to read.
pub fn bypass_program(xsk_map_fd: RawFd, bypass_map_fd: RawFd) -> Vec<[u8; 8]> {
    // Jump targets, by instruction index.
    const KEY: i16 = 16;
    const PASS: i16 = 40;
    const XSK: i16 = 42;
    let j = |at: i16, to: i16| to - at - 1;
    vec![
        /* 0 */ insn(0xbf, 6, 1, 0, 0), // r6 = ctx
        /* 1 */ insn(0x61, 2, 6, 0, 0), // r2 = data
        /* 2 */ insn(0x61, 3, 6, 4, 0), // r3 = data_end
        /* 3 */ insn(0xbf, 4, 2, 0, 0), // r4 = data
        /* 4 */ insn(0x07, 4, 0, 0, 38), // r4 += 38 (Ethernet, IPv4, ports)
        /* 5 */ insn(0x2d, 4, 3, j(5, XSK), 0), // past data_end: steer
        /* 6 */ insn(0x69, 4, 2, 12, 0), // r4 = ethertype (loaded little-endian)
        /* 7 */ insn(0x55, 4, 0, j(7, XSK), 0x0008), // not IPv4
        /* 8 */ insn(0x71, 4, 2, 14, 0), // r4 = version and header length
        /* 9 */ insn(0x55, 4, 0, j(9, XSK), 0x45), // options: steer
        /* 10 */ insn(0x69, 4, 2, 20, 0), // r4 = flags and fragment offset
        /* 11 */
        insn(0x57, 4, 0, 0, 0xff3f), // MF and offset (network order, loaded LE)
        /* 12 */ insn(0x55, 4, 0, j(12, XSK), 0), // a fragment: steer
        /* 13 */ insn(0x71, 5, 2, 23, 0), // r5 = protocol
        /* 14 */ insn(0x15, 5, 0, j(14, KEY), 6), // TCP
        /* 15 */ insn(0x55, 5, 0, j(15, XSK), 17), // not UDP: steer
        /* 16 */ insn(0x61, 4, 2, 26, 0), // key.src
        /* 17 */ insn(0x63, 10, 4, -16, 0),
        /* 18 */ insn(0x61, 4, 2, 30, 0), // key.dst
        /* 19 */ insn(0x63, 10, 4, -12, 0),
        /* 20 */ insn(0x61, 4, 2, 34, 0), // key.sport, key.dport
        /* 21 */ insn(0x63, 10, 4, -8, 0),
        /* 22 */ insn(0x63, 10, 5, -4, 0), // key.proto and three zero bytes
        /* 23 */ insn(0xbf, 2, 10, 0, 0), // r2 = &key
        /* 24 */ insn(0x07, 2, 0, 0, -16),
        /* 25 */ insn(0x18, 1, 1, 0, bypass_map_fd), // r1 = the bypass map
        /* 26 */ insn(0, 0, 0, 0, 0),
        /* 27 */ insn(0x85, 0, 0, 0, BPF_FUNC_MAP_LOOKUP_ELEM),
        /* 28 */ insn(0x15, 0, 0, j(28, XSK), 0), // not bypassed: steer
        /* 29 */ insn(0xbf, 7, 0, 0, 0), // r7 = the value
        /* 30 */ insn(0xb7, 1, 0, 0, 1),
        /* 31 */ insn(0xdb, 7, 1, 8, 0), // lock value.pkts += 1
        /* 32 */ insn(0xbf, 1, 6, 0, 0), // r1 = ctx
        /* 33 */ insn(0x85, 0, 0, 0, BPF_FUNC_XDP_GET_BUFF_LEN),
        /* 34 */ insn(0xdb, 7, 0, 16, 0), // lock value.bytes += len
        /* 35 */ insn(0x61, 1, 7, 0, 0), // r1 = value.ifindex
        /* 36 */ insn(0x15, 1, 0, j(36, PASS), 0), // 0: to the stack
        /* 37 */ insn(0xb7, 2, 0, 0, 0),
        /* 38 */ insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT), // out of the other port
        /* 39 */ insn(0x95, 0, 0, 0, 0),
        /* 40 PASS */ insn(0xb7, 0, 0, 0, XDP_PASS),
        /* 41 */ insn(0x95, 0, 0, 0, 0),
        /* 42 XSK */ insn(0x61, 2, 6, 16, 0), // r2 = rx_queue_index
        /* 43 */ insn(0x18, 1, 1, 0, xsk_map_fd),
        /* 44 */ insn(0, 0, 0, 0, 0),
        /* 45 */ insn(0xb7, 3, 0, 0, XDP_PASS),
        /* 46 */ insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        /* 47 */ insn(0x95, 0, 0, 0, 0),
    ]
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_TYPE_HASH: u32 = 1;

/// One direction of a bypassed flow, as the XDP program looks it up.
pub fn bypass_key(
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    proto: u8,
    sport: u16,
    dport: u16,
) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[0..4].copy_from_slice(&src.octets());
    k[4..8].copy_from_slice(&dst.octets());
    k[8..10].copy_from_slice(&sport.to_be_bytes());
    k[10..12].copy_from_slice(&dport.to_be_bytes());
    k[12] = proto;
    k
}

/// The map of flow directions bypassed in the kernel: key [`bypass_key`], value (egress
/// ifindex, or 0 for "pass to the stack"; packets; bytes).
#[derive(Debug)]
pub struct BypassMap {
    fd: OwnedFd,
    /// Most entries (a flow takes two, one per direction).
    pub capacity: u32,
}

impl BypassMap {
    pub fn create(capacity: u32) -> io::Result<BypassMap> {
        let capacity = capacity.max(2);
        let mut a = [0u8; 144];
        a[0..4].copy_from_slice(&BPF_MAP_TYPE_HASH.to_ne_bytes());
        a[4..8].copy_from_slice(&16u32.to_ne_bytes());
        a[8..12].copy_from_slice(&24u32.to_ne_bytes());
        a[12..16].copy_from_slice(&capacity.to_ne_bytes());
        let fd = bpf(BPF_MAP_CREATE, &mut a)?;
        Ok(BypassMap {
            // SAFETY: a descriptor bpf(2) just returned.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            capacity,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn elem(
        &self,
        cmd: libc::c_long,
        key: &[u8; 16],
        val: Option<&mut [u8; 24]>,
    ) -> io::Result<()> {
        let mut a = [0u8; 144];
        a[0..4].copy_from_slice(&(self.fd.as_raw_fd() as u32).to_ne_bytes());
        a[8..16].copy_from_slice(&(key.as_ptr() as u64).to_ne_bytes());
        if let Some(v) = val {
            a[16..24].copy_from_slice(&(v.as_mut_ptr() as u64).to_ne_bytes());
        }
        bpf(cmd, &mut a).map(|_| ())
    }

    /// Bypass `key`: its frames leave by `ifindex` (0: to the stack).
    pub fn insert(&self, key: &[u8; 16], ifindex: u32) -> io::Result<()> {
        let mut v = [0u8; 24];
        v[0..4].copy_from_slice(&ifindex.to_ne_bytes());
        self.elem(BPF_MAP_UPDATE_ELEM, key, Some(&mut v))
    }

    /// Packets and bytes the program counted for `key`.
    pub fn counters(&self, key: &[u8; 16]) -> io::Result<(u64, u64)> {
        let mut v = [0u8; 24];
        self.elem(BPF_MAP_LOOKUP_ELEM, key, Some(&mut v))?;
        let mut p = [0u8; 8];
        let mut b = [0u8; 8];
        p.copy_from_slice(&v[8..16]);
        b.copy_from_slice(&v[16..24]);
        Ok((u64::from_ne_bytes(p), u64::from_ne_bytes(b)))
    }

    pub fn remove(&self, key: &[u8; 16]) -> io::Result<()> {
        self.elem(BPF_MAP_DELETE_ELEM, key, None)
    }
}

/// The XSKMAP, the steering program and its link on one interface. Dropping it detaches the
/// program (the link's descriptor closes); so does the process ending, however it ends.
#[derive(Debug)]
pub struct XdpProgram {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
    /// `XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`: where it is attached.
    pub mode: u32,
}

impl XdpProgram {
    /// Load the program for `queues` queues and attach it to `ifname` (driver mode, else
    /// generic mode); with `bypass`, flows in that map stay in the kernel.
    pub fn attach(ifname: &str, queues: u32, bypass: Option<&BypassMap>) -> io::Result<XdpProgram> {
        let ifindex = crate::afpacket::ifindex(ifname)?;
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("interface {ifname}: {what}: {e}"))
        };
        let mut a = [0u8; 144];
        a[0..4].copy_from_slice(&BPF_MAP_TYPE_XSKMAP.to_ne_bytes());
        a[4..8].copy_from_slice(&4u32.to_ne_bytes());
        a[8..12].copy_from_slice(&4u32.to_ne_bytes());
        a[12..16].copy_from_slice(&queues.max(1).to_ne_bytes());
        let map = bpf(BPF_MAP_CREATE, &mut a).map_err(|e| ctx("XSKMAP", e))?;
        // SAFETY: a descriptor bpf(2) just returned.
        let map = unsafe { OwnedFd::from_raw_fd(map) };
        let prog: Vec<u8> = match bypass {
            Some(b) => bypass_program(map.as_raw_fd(), b.fd()),
            None => steering_program(map.as_raw_fd()),
        }
        .concat();
        let license = b"Dual BSD/GPL\0";
        let mut log = vec![0u8; 4096];
        let mut a = [0u8; 144];
        a[0..4].copy_from_slice(&BPF_PROG_TYPE_XDP.to_ne_bytes());
        a[4..8].copy_from_slice(&((prog.len() / 8) as u32).to_ne_bytes());
        a[8..16].copy_from_slice(&(prog.as_ptr() as u64).to_ne_bytes());
        a[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
        a[24..28].copy_from_slice(&1u32.to_ne_bytes()); // log_level
        a[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
        a[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
        a[48..53].copy_from_slice(b"islet");
        a[68..72].copy_from_slice(&BPF_XDP.to_ne_bytes());
        let prog_fd = bpf(BPF_PROG_LOAD, &mut a).map_err(|e| {
            let msg = String::from_utf8_lossy(&log);
            ctx(
                "loading the XDP program",
                io::Error::new(
                    e.kind(),
                    format!("{e}: {}", msg.trim_end_matches('\0').trim()),
                ),
            )
        })?;
        // SAFETY: a descriptor bpf(2) just returned.
        let prog_fd = unsafe { OwnedFd::from_raw_fd(prog_fd) };
        let mut last = None;
        for mode in [XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE] {
            let mut a = [0u8; 144];
            a[0..4].copy_from_slice(&(prog_fd.as_raw_fd() as u32).to_ne_bytes());
            a[4..8].copy_from_slice(&ifindex.to_ne_bytes());
            a[8..12].copy_from_slice(&BPF_XDP.to_ne_bytes());
            a[12..16].copy_from_slice(&mode.to_ne_bytes());
            match bpf(BPF_LINK_CREATE, &mut a) {
                Ok(l) => {
                    return Ok(XdpProgram {
                        map,
                        _prog: prog_fd,
                        // SAFETY: a descriptor bpf(2) just returned.
                        _link: unsafe { OwnedFd::from_raw_fd(l) },
                        mode,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(ctx(
            "attaching the XDP program",
            last.unwrap_or_else(|| io::Error::other("no mode")),
        ))
    }

    /// Steer queue `queue`'s frames into `xsk`.
    pub fn steer(&self, queue: u32, xsk: &Xsk) -> io::Result<()> {
        let key = queue;
        let val = xsk.fd() as u32;
        let mut a = [0u8; 144];
        a[0..4].copy_from_slice(&(self.map.as_raw_fd() as u32).to_ne_bytes());
        a[8..16].copy_from_slice(&(&key as *const u32 as u64).to_ne_bytes());
        a[16..24].copy_from_slice(&(&val as *const u32 as u64).to_ne_bytes());
        bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
    }

    pub fn mode_name(&self) -> &'static str {
        if self.mode == XDP_FLAGS_DRV_MODE {
            "driver"
        } else {
            "generic"
        }
    }
}

/// Receive queues of an interface (from sysfs; 1 when unknown).
pub fn rx_queues(ifname: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{ifname}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

// ---- completing offloaded checksums -------------------------------------------------------

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u32) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// A frame from a local sender on a virtual port may carry a TCP/UDP checksum the sender left
/// to hardware (`CHECKSUM_PARTIAL`): the field holds only the pseudo-header sum. AF_XDP says
/// nothing of it, and a frame sent on as it is would be dropped by its receiver. If the
/// field holds exactly the pseudo-header sum, compute the real checksum into it; any other
/// value (a full checksum, right or wrong) is left alone, so other frames go on unchanged.
/// Returns whether the frame was changed. IPv4 (not fragments) and IPv6 without extension
/// headers, behind up to two VLAN tags.
pub fn complete_partial_checksum(f: &mut [u8]) -> bool {
    let mut off = 12;
    let mut et = match f.get(12..14) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => return false,
    };
    for _ in 0..2 {
        if et == 0x8100 || et == 0x88A8 {
            off += 4;
            et = match f.get(off..off + 2) {
                Some(b) => u16::from_be_bytes([b[0], b[1]]),
                None => return false,
            };
        }
    }
    let l3 = off + 2;
    let (proto, l4, l4_len, mut pseudo) = match et {
        0x0800 => {
            let Some(h) = f.get(l3..l3 + 20) else {
                return false;
            };
            let ihl = (h[0] & 0xF) as usize * 4;
            let total = u16::from_be_bytes([h[2], h[3]]) as usize;
            let frag = u16::from_be_bytes([h[6], h[7]]) & 0x3FFF;
            if h[0] >> 4 != 4 || ihl < 20 || total < ihl || frag != 0 || l3 + total > f.len() {
                return false;
            }
            let len = total - ihl;
            let acc = sum16(&h[12..20], h[9] as u32 + len as u32);
            (h[9], l3 + ihl, len, acc)
        }
        0x86DD => {
            let Some(h) = f.get(l3..l3 + 40) else {
                return false;
            };
            let len = u16::from_be_bytes([h[4], h[5]]) as usize;
            if h[0] >> 4 != 6 || l3 + 40 + len > f.len() {
                return false;
            }
            let acc = sum16(&h[8..40], h[6] as u32 + len as u32);
            (h[6], l3 + 40, len, acc)
        }
        _ => return false,
    };
    let field = match proto {
        6 if l4_len >= 20 => l4 + 16,
        17 if l4_len >= 8 => l4 + 6,
        _ => return false,
    };
    pseudo = fold(pseudo) as u32;
    let stored = u16::from_be_bytes([f[field], f[field + 1]]);
    if stored != pseudo as u16 {
        return false;
    }
    f[field] = 0;
    f[field + 1] = 0;
    let mut c = !fold(sum16(&f[l4..l4 + l4_len], pseudo));
    if proto == 17 && c == 0 {
        c = 0xFFFF;
    }
    f[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + TCP with `payload`, its checksum field set to `csum`.
    fn tcp4(payload: &[u8], csum: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + 20 + payload.len();
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x18;
        tcp[16..18].copy_from_slice(&csum.to_be_bytes());
        f.extend_from_slice(&tcp);
        f.extend_from_slice(payload);
        f
    }

    /// RFC 1071: a segment with a valid checksum sums (with its pseudo header) to 0xFFFF.
    fn valid(f: &[u8]) -> bool {
        let ip = &f[14..34];
        let len = u16::from_be_bytes([ip[2], ip[3]]) as u32 - 20;
        let acc = sum16(&ip[12..20], 6 + len);
        fold(sum16(&f[34..], acc)) == 0xFFFF
    }

    #[test]
    fn a_partial_checksum_is_completed_and_others_are_left_alone() {
        let payload = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n!";
        let pseudo = fold(sum16(
            &[10, 0, 0, 1, 10, 0, 0, 2],
            6 + 20 + payload.len() as u32,
        ));
        let mut f = tcp4(payload, pseudo);
        assert!(!valid(&f));
        assert!(complete_partial_checksum(&mut f));
        assert!(valid(&f), "completed checksum verifies");
        // Now full and right: unchanged.
        let before = f.clone();
        assert!(!complete_partial_checksum(&mut f));
        assert_eq!(f, before);
        // Full and wrong (not the pseudo-header sum): unchanged, still wrong.
        let mut bad = tcp4(payload, pseudo.wrapping_add(7));
        let before = bad.clone();
        assert!(!complete_partial_checksum(&mut bad));
        assert_eq!(bad, before);
        // Truncated or not IP: never a panic.
        for n in 0..f.len() {
            let mut t = f[..n].to_vec();
            complete_partial_checksum(&mut t);
        }
    }
}
