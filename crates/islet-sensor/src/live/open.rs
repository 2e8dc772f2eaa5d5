//! Opening the sockets: AF_PACKET rings or AF_XDP sockets per worker and interface, in
//! fanout groups, and the tc handle for offload.

use super::*;

/// One socket of a worker: AF_PACKET, or AF_XDP (with the counters last read from it).
#[derive(Debug)]
pub(crate) enum Port {
    Packet(AfPacket),
    Xdp(Box<Xsk>, XskStats),
}

impl Port {
    pub(crate) fn fd(&self) -> i32 {
        match self {
            Port::Packet(s) => s.fd(),
            Port::Xdp(x, _) => x.fd(),
        }
    }

    pub(crate) fn drain(&mut self, max: usize, f: &mut dyn FnMut(&Frame<'_>)) -> usize {
        match self {
            Port::Packet(s) => s.drain(max, f),
            // AF_XDP has no receive timestamp: the batch is stamped when it is taken.
            Port::Xdp(x, _) => x.drain(max, wall_ns(), f),
        }
    }

    pub(crate) fn send(&mut self, fr: &Frame<'_>) -> bool {
        match self {
            Port::Packet(s) => s.send(fr.data, &fr.vnet).is_ok(),
            Port::Xdp(x, _) => x.send(fr.data),
        }
    }

    pub(crate) fn flush(&mut self) {
        if let Port::Xdp(x, _) = self {
            x.flush();
        }
    }

    /// Kernel (packets, drops, freezes) since the last call.
    pub(crate) fn kernel_delta(&mut self) -> (u64, u64, u64) {
        match self {
            Port::Packet(s) => s
                .stats()
                .map(|x| (x.packets, x.drops, x.freezes))
                .unwrap_or_default(),
            Port::Xdp(x, last) => {
                let Ok(now) = x.stats() else {
                    return (0, 0, 0);
                };
                let d = (now.rx_dropped + now.rx_ring_full)
                    .saturating_sub(last.rx_dropped + last.rx_ring_full);
                *last = now;
                (0, d, 0)
            }
        }
    }
}

/// A worker's sockets: for a pair, `peer[i]` is the socket frames from `socks[i]` leave by.
#[derive(Debug)]
pub(crate) struct WorkerSockets {
    pub(crate) socks: Vec<Port>,
    pub(crate) peer: Vec<Option<usize>>,
    pub(crate) ifindex: Vec<u32>,
}

/// Sockets opened (and the tc handle, and the XDP programs) before privileges are dropped.
#[derive(Debug)]
pub struct Opened {
    pub(crate) workers: Vec<WorkerSockets>,
    pub(crate) tc: Option<Tc>,
    /// Attached while the sensor runs (the kernel detaches them when these close).
    pub(crate) xdp: Vec<XdpProgram>,
    /// Flows kept in the kernel by the XDP program (AF_XDP with bypass on).
    pub(crate) bypass_map: Option<BypassMap>,
    /// How the sockets capture, for the start-up line.
    pub describe: String,
}

impl Opened {
    pub fn workers(&self) -> usize {
        self.workers.len()
    }
}

/// Open AF_XDP sockets: one per receive queue, `min(workers, queues)` of them per interface,
/// and the steering program on each interface.
pub(crate) fn open_xdp(
    live: &LiveConfig,
    workers: usize,
    idx: &[u32],
) -> Result<Opened, OpenError> {
    let inline = matches!(live.mode, Mode::Inline(_));
    let ifaces = live.mode.interfaces();
    let queues = ifaces
        .iter()
        .map(|i| afxdp::rx_queues(i))
        .min()
        .unwrap_or(1);
    let n = workers.min(queues as usize).max(1);
    // Redirected frames reach a veth peer only if it has NAPI (GRO on) and full checksums:
    // inline on virtual ports, kernel bypass is on only when asked for.
    let virtual_port = ifaces
        .iter()
        .any(|i| Path::new(&format!("/sys/devices/virtual/net/{i}")).exists());
    let kernel = live.bypass && live.kernel_bypass.unwrap_or(!(inline && virtual_port));
    let bypass_map = if kernel {
        Some(BypassMap::create(KERNEL_BYPASS_FLOWS * 2).map_err(OpenError::BypassMap)?)
    } else {
        None
    };
    let mut progs = Vec::new();
    for i in &ifaces {
        progs.push(XdpProgram::attach(i, queues, bypass_map.as_ref()).map_err(OpenError::Program)?);
    }
    let mut out = Vec::new();
    let mut zc = 0;
    for q in 0..n as u32 {
        let mut ws = WorkerSockets {
            socks: Vec::new(),
            peer: Vec::new(),
            ifindex: Vec::new(),
        };
        for (k, name) in ifaces.iter().enumerate() {
            let x = Xsk::open(name, q, &XskConfig::default()).map_err(OpenError::Xsk)?;
            progs[k].steer(q, &x).map_err(|source| OpenError::Steer {
                interface: name.clone(),
                source,
            })?;
            zc += usize::from(x.zero_copy());
            ws.socks.push(Port::Xdp(Box::new(x), XskStats::default()));
            ws.ifindex.push(idx[k]);
            ws.peer.push(inline.then_some(k ^ 1));
        }
        out.push(ws);
    }
    let total = n * ifaces.len();
    let describe = format!(
        "AF_XDP ({} mode, XDP program in {} mode, {} queue{} per interface, kernel bypass {})",
        if zc == total {
            "zero-copy"
        } else if zc == 0 {
            "copy"
        } else {
            "mixed zero-copy/copy"
        },
        progs.first().map(|p| p.mode_name()).unwrap_or("?"),
        n,
        if n == 1 { "" } else { "s" },
        match (kernel, live.bypass) {
            (true, _) => "on",
            (false, false) => "off",
            (false, true) if live.kernel_bypass == Some(false) => "off",
            (false, true) => "off on virtual ports inline (live.kernel_bypass = \"on\" forces it)",
        }
    );
    Ok(Opened {
        workers: out,
        tc: None,
        xdp: progs,
        bypass_map,
        describe,
    })
}

/// Open every socket: `workers` per interface, fanned out by flow hash. Errors name the
/// interface (a missing one, or a missing privilege).
pub fn open(live: &LiveConfig, workers: usize) -> Result<Opened, OpenError> {
    let inline = matches!(live.mode, Mode::Inline(_));
    let ifaces = live.mode.interfaces();
    let mut idx = Vec::new();
    for i in &ifaces {
        idx.push(afpacket::ifindex(i).map_err(OpenError::Interface)?);
    }
    if live.backend == Backend::AfXdp {
        let mut o = open_xdp(live, workers, &idx)?;
        o.tc = open_tc(live)?;
        return Ok(o);
    }
    let pid = std::process::id();
    let mut out = Vec::new();
    for _ in 0..workers {
        let mut ws = WorkerSockets {
            socks: Vec::new(),
            peer: Vec::new(),
            ifindex: Vec::new(),
        };
        for (k, name) in ifaces.iter().enumerate() {
            let opts = SocketOptions {
                ring: live.ring,
                fanout_group: (workers > 1)
                    .then_some(((pid ^ (idx[k] * 2_654_435_761)) & 0xFFFF) as u16),
                promisc: true,
                ignore_outgoing: inline,
                vnet_hdr: inline,
                per_frame: inline,
            };
            let s = AfPacket::open(name, &opts).map_err(OpenError::Packet)?;
            ws.socks.push(Port::Packet(s));
            ws.ifindex.push(idx[k]);
            ws.peer.push(inline.then_some(k ^ 1));
        }
        out.push(ws);
    }
    let describe = format!(
        "AF_PACKET ({}, {} workers{})",
        if inline {
            "TPACKET_V2 rings, per-frame hand-over"
        } else {
            "TPACKET_V3 rings"
        },
        workers,
        if workers > 1 { ", fanout hash" } else { "" }
    );
    Ok(Opened {
        workers: out,
        tc: open_tc(live)?,
        xdp: Vec::new(),
        bypass_map: None,
        describe,
    })
}

pub(crate) fn open_tc(live: &LiveConfig) -> Result<Option<Tc>, OpenError> {
    if !live.offload.enabled || !matches!(live.mode, Mode::Inline(_)) {
        return Ok(None);
    }
    let mut tc = Tc::open().map_err(OpenError::Netlink)?;
    if live.offload.skip_hw {
        tc.flags = islet_capture::tc::SKIP_HW;
    }
    Ok(Some(tc))
}

/// Why [`open`] could not open the sockets. The interface's errors name it and the step.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// An interface does not exist.
    Interface(std::io::Error),
    /// An AF_PACKET socket could not be opened, bound or given its ring.
    Packet(std::io::Error),
    /// The XDP bypass map could not be made.
    BypassMap(std::io::Error),
    /// The XDP steering program could not be loaded or attached.
    Program(std::io::Error),
    /// An AF_XDP socket could not be opened.
    Xsk(std::io::Error),
    /// An AF_XDP socket could not be put in its interface's XSKMAP.
    Steer {
        interface: String,
        source: std::io::Error,
    },
    /// The rtnetlink socket for offload rules could not be opened.
    Netlink(std::io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Packet(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                write!(f, "{e} (needs root or CAP_NET_RAW and CAP_NET_ADMIN)")
            }
            OpenError::Interface(e)
            | OpenError::Packet(e)
            | OpenError::Program(e)
            | OpenError::Xsk(e) => write!(f, "{e}"),
            OpenError::BypassMap(e) => write!(f, "the XDP bypass map: {e}"),
            OpenError::Steer { interface, source } => {
                write!(f, "interface {interface}: XSKMAP update: {source}")
            }
            OpenError::Netlink(e) => write!(f, "netlink route socket: {e}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Shown as they are: their causes are theirs.
            OpenError::Interface(e)
            | OpenError::Packet(e)
            | OpenError::Program(e)
            | OpenError::Xsk(e) => e.source(),
            OpenError::BypassMap(e)
            | OpenError::Steer { source: e, .. }
            | OpenError::Netlink(e) => Some(e),
        }
    }
}

/// The socket `i` and, for a pair, the one its frames leave by.
pub(crate) fn pair(
    socks: &mut [Port],
    i: usize,
    peer: Option<usize>,
) -> (&mut Port, Option<&mut Port>) {
    match peer {
        Some(j) if j < i => {
            let (a, b) = socks.split_at_mut(i);
            (&mut b[0], Some(&mut a[j]))
        }
        Some(j) if j > i && j < socks.len() => {
            let (a, b) = socks.split_at_mut(j);
            (&mut a[i], Some(&mut b[0]))
        }
        _ => (&mut socks[i], None),
    }
}

pub(crate) fn kernel_stats(socks: &mut [Port], c: &Counters) {
    let (mut p, mut d, mut f) = (0, 0, 0);
    for s in socks {
        let (a, b, x) = s.kernel_delta();
        p += a;
        d += b;
        f += x;
    }
    c.kernel_packets.fetch_add(p, Ordering::Relaxed);
    c.kernel_drops.fetch_add(d, Ordering::Relaxed);
    c.kernel_freezes.fetch_add(f, Ordering::Relaxed);
}
