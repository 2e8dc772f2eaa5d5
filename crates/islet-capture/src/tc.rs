//! tc flower filters over rtnetlink: the rules a NIC's eSwitch can take to hardware.
//!
//! [`Tc`] adds a `clsact` qdisc to an interface (remembering whether it made it), then
//! flower filters on its ingress hook that match one flow exactly (addresses, protocol,
//! ports) with a `gact` action: `drop` for a denied flow, `pass` for a bypassed one. On a
//! plain Linux host these run in the kernel's datapath; on a BlueField the same filters on
//! representor ports are what the eSwitch offloads (unless `skip_hw`). Every filter is added
//! with its own handle at one priority, so it can be deleted alone, and [`Tc::clear`] removes
//! what this process added (and the qdisc, if it made it).
//!
//! A kernel built without `cls_flower` or `act_gact` refuses flower filters ("classifier not
//! found"). Then, and only then, each rule becomes a `cls_bpf` filter in direct-action mode
//! running a classic BPF program that matches the same flow and returns `TC_ACT_SHOT` or
//! `TC_ACT_OK`: the same rule in the kernel's datapath, not one a NIC takes to hardware.
//! [`Tc::kind`] says which is in use.
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_ROUTE: libc::c_int = 0;
const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;

const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const TC_H_CLSACT: u32 = 0xFFFF_FFF1;
const TC_H_MIN_INGRESS: u32 = 0xFFF2;

const TCA_FLOWER_ACT: u16 = 3;
const TCA_FLOWER_KEY_ETH_TYPE: u16 = 8;
const TCA_FLOWER_KEY_IP_PROTO: u16 = 9;
const TCA_FLOWER_KEY_IPV4_SRC: u16 = 10;
const TCA_FLOWER_KEY_IPV4_DST: u16 = 12;
const TCA_FLOWER_KEY_IPV6_SRC: u16 = 14;
const TCA_FLOWER_KEY_IPV6_DST: u16 = 16;
const TCA_FLOWER_KEY_TCP_SRC: u16 = 18;
const TCA_FLOWER_KEY_TCP_DST: u16 = 19;
const TCA_FLOWER_KEY_UDP_SRC: u16 = 20;
const TCA_FLOWER_KEY_UDP_DST: u16 = 21;
const TCA_FLOWER_FLAGS: u16 = 22;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_GACT_PARMS: u16 = 2;
const TC_ACT_OK: i32 = 0;
const TC_ACT_SHOT: i32 = 2;
/// `TCA_CLS_FLAGS_SKIP_HW`: keep the filter in software only.
pub const SKIP_HW: u32 = 1;
/// `TCA_CLS_FLAGS_SKIP_SW`: hardware only (fails where no hardware takes it).
pub const SKIP_SW: u32 = 2;

/// The filter priority islet's rules use (`tc filter show` lists it as `pref`).
pub const PRIORITY: u16 = 49_152;

const TCA_BPF_OPS_LEN: u16 = 4;
const TCA_BPF_OPS: u16 = 5;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_FLAGS: u16 = 8;
const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;
/// `TC_ACT_UNSPEC`: not this rule's flow, go on to the next filter.
const TC_ACT_UNSPEC: u32 = u32::MAX;

/// Which classifier rules are made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `flower` + `gact`: what switch ASICs and DPU eSwitches offload.
    Flower,
    /// `bpf` direct-action with a classic BPF program: the fallback for kernels without
    /// flower (software datapath only).
    Bpf,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Flower => "flower",
            Kind::Bpf => "bpf",
        }
    }
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_W_ABS: u16 = 0x20;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// The classic BPF program matching `m` in an Ethernet frame (untagged; IPv4 with any header
/// length, IPv6 without extension headers; later fragments never match): returns `hit` for
/// the flow's packets and `TC_ACT_UNSPEC` for others.
pub fn flow_program(m: &FlowMatch, hit: u32) -> Vec<Insn> {
    // Instructions with a jump to "fail" hold jf = u8::MAX until the end is known.
    const FAIL: u8 = u8::MAX;
    let mut p: Vec<Insn> = Vec::with_capacity(32);
    let ld = |code, k| Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let eq = |k| Insn {
        code: JEQ_K,
        jt: 0,
        jf: FAIL,
        k,
    };
    let ports = matches!(m.proto, 6 | 17);
    match (m.src, m.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.push(ld(LD_H_ABS, 12));
            p.push(eq(0x0800));
            p.push(ld(LD_B_ABS, 23));
            p.push(eq(m.proto as u32));
            p.push(ld(LD_W_ABS, 26));
            p.push(eq(u32::from(s)));
            p.push(ld(LD_W_ABS, 30));
            p.push(eq(u32::from(d)));
            if ports {
                p.push(ld(LD_H_ABS, 20));
                p.push(Insn {
                    code: JSET_K,
                    jt: FAIL,
                    jf: 0,
                    k: 0x1FFF,
                });
                p.push(ld(LDX_B_MSH, 14));
                p.push(ld(LD_H_IND, 14));
                p.push(eq(m.sport as u32));
                p.push(ld(LD_H_IND, 16));
                p.push(eq(m.dport as u32));
            }
        }
        (s, d) => {
            let (IpAddr::V6(s), IpAddr::V6(d)) = (s, d) else {
                // Mixed families never form one flow: a program that matches nothing.
                return vec![ld(RET_K, TC_ACT_UNSPEC)];
            };
            p.push(ld(LD_H_ABS, 12));
            p.push(eq(0x86DD));
            p.push(ld(LD_B_ABS, 20));
            p.push(eq(m.proto as u32));
            for (base, a) in [(22u32, s.octets()), (38, d.octets())] {
                for w in 0..4 {
                    let i = w as usize * 4;
                    p.push(ld(LD_W_ABS, base + w * 4));
                    p.push(eq(u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]])));
                }
            }
            if ports {
                p.push(ld(LD_H_ABS, 54));
                p.push(eq(m.sport as u32));
                p.push(ld(LD_H_ABS, 56));
                p.push(eq(m.dport as u32));
            }
        }
    }
    p.push(ld(RET_K, hit));
    let fail = p.len();
    p.push(ld(RET_K, TC_ACT_UNSPEC));
    for (pc, i) in p.iter_mut().enumerate().take(fail) {
        // Programs are at most ~40 instructions: every jump fits a u8.
        let rel = (fail - pc - 1) as u8;
        if i.code == JEQ_K && i.jf == FAIL {
            i.jf = rel;
        }
        if i.code == JSET_K && i.jt == FAIL {
            i.jt = rel;
        }
    }
    p
}

/// Run a classic BPF program over `pkt` (the subset [`flow_program`] uses), for tests:
/// the value it returns, with out-of-bounds loads ending it with 0 as the kernel does.
pub fn run_program(prog: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut pc = 0usize;
    let load = |off: usize, n: usize| -> Option<u32> {
        let b = pkt.get(off..off.checked_add(n)?)?;
        Some(b.iter().fold(0u32, |v, &y| (v << 8) | y as u32))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        match i.code {
            LD_H_ABS | LD_B_ABS | LD_W_ABS => {
                let n = match i.code {
                    LD_B_ABS => 1,
                    LD_H_ABS => 2,
                    _ => 4,
                };
                match load(i.k as usize, n) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            LD_H_IND => match load(x as usize + i.k as usize, 2) {
                Some(v) => a = v,
                None => return 0,
            },
            LDX_B_MSH => match load(i.k as usize, 1) {
                Some(v) => x = (v & 0xF) * 4,
                None => return 0,
            },
            JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
            JSET_K => pc += if a & i.k != 0 { i.jt } else { i.jf } as usize,
            RET_K => return i.k,
            _ => return 0,
        }
    }
    0
}

/// One flow, as a flower match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowMatch {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol; ports are matched for TCP (6) and UDP (17).
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// What a rule does to its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleAction {
    /// Drop in the datapath (a denied flow).
    Drop,
    /// Accept in the datapath (a bypassed flow).
    Pass,
}

/// A netlink route socket and the filters and qdiscs this process added through it.
#[derive(Debug)]
pub struct Tc {
    fd: OwnedFd,
    seq: u32,
    next_handle: u32,
    /// Interfaces where this process added the clsact qdisc (removed again by `clear`).
    made_qdisc: Vec<u32>,
    /// Interfaces that have a clsact qdisc (made or found).
    have_qdisc: Vec<u32>,
    /// Filters added: (ifindex, handle, ethertype, classifier).
    filters: Vec<(u32, u32, u16, Kind)>,
    /// `TCA_FLOWER_FLAGS` for new filters.
    pub flags: u32,
    kind: Kind,
}

fn attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// Open a nested attribute (`ty` as given: with `NLA_F_NESTED` where iproute2 sets it, which
/// is only on action options); returns its offset for [`end_nest`].
fn nest(buf: &mut Vec<u8>, ty: u16) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&ty.to_ne_bytes());
    at
}

fn end_nest(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
}

/// The head of a filter request on the ingress hook of `ifindex`: `struct tcmsg` (priority
/// [`PRIORITY`], protocol `ethertype`) and `TCA_KIND`.
fn filter_head(ifindex: u32, handle: u32, ethertype: u16, kind: Kind) -> Vec<u8> {
    let info = ((PRIORITY as u32) << 16) | ethertype.to_be() as u32;
    let mut b = Vec::with_capacity(256);
    tcmsg(
        &mut b,
        ifindex,
        handle,
        TC_H_CLSACT & 0xFFFF_0000 | TC_H_MIN_INGRESS,
        info,
    );
    let name: &[u8] = match kind {
        Kind::Flower => b"flower\0",
        Kind::Bpf => b"bpf\0",
    };
    attr(&mut b, TCA_KIND, name);
    b
}

/// `struct tcmsg`.
fn tcmsg(buf: &mut Vec<u8>, ifindex: u32, handle: u32, parent: u32, info: u32) {
    buf.push(libc::AF_UNSPEC as u8);
    buf.extend_from_slice(&[0, 0, 0]);
    buf.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    buf.extend_from_slice(&handle.to_ne_bytes());
    buf.extend_from_slice(&parent.to_ne_bytes());
    buf.extend_from_slice(&info.to_ne_bytes());
}

impl Tc {
    /// Open the route socket (needs CAP_NET_ADMIN for the changes, not for this).
    pub fn open() -> io::Result<Tc> {
        // SAFETY: plain socket(2).
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: a valid timeval for SO_RCVTIMEO.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Ok(Tc {
            fd,
            seq: 1,
            next_handle: 1,
            made_qdisc: Vec::new(),
            have_qdisc: Vec::new(),
            filters: Vec::new(),
            flags: 0,
            kind: Kind::Flower,
        })
    }

    /// Send one request and wait for its acknowledgement.
    fn request(&mut self, ty: u16, flags: u16, body: &[u8]) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut m = Vec::with_capacity(16 + body.len());
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        // SAFETY: zeroed sockaddr_nl addresses the kernel (pid 0).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `m` and `sa` are live for the call.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                m.as_ptr().cast(),
                m.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: `buf` is writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + 16 <= n {
                let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
                    as usize;
                let mty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let seq =
                    u32::from_ne_bytes([buf[off + 8], buf[off + 9], buf[off + 10], buf[off + 11]]);
                if len < 16 || off + len > n {
                    return Err(io::Error::other("netlink: malformed answer"));
                }
                if mty == NLMSG_ERROR && seq == self.seq && len >= 20 {
                    let err = i32::from_ne_bytes([
                        buf[off + 16],
                        buf[off + 17],
                        buf[off + 18],
                        buf[off + 19],
                    ]);
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-err))
                    };
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// Make sure `ifindex` has a clsact qdisc.
    pub fn ensure_clsact(&mut self, ifindex: u32) -> io::Result<()> {
        if self.have_qdisc.contains(&ifindex) {
            return Ok(());
        }
        let mut b = Vec::new();
        tcmsg(&mut b, ifindex, 0xFFFF_0000, TC_H_CLSACT, 0);
        attr(&mut b, TCA_KIND, b"clsact\0");
        match self.request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, &b) {
            Ok(()) => self.made_qdisc.push(ifindex),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
        self.have_qdisc.push(ifindex);
        Ok(())
    }

    /// The classifier rules are made with now.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Add a filter for `m` on the ingress of `ifindex`; returns its handle. A kernel
    /// without flower switches this `Tc` to [`Kind::Bpf`] for this rule and the next.
    pub fn add(&mut self, ifindex: u32, m: &FlowMatch, action: RuleAction) -> io::Result<u32> {
        self.ensure_clsact(ifindex)?;
        let handle = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        let ethertype: u16 = if m.src.is_ipv4() { 0x0800 } else { 0x86DD };
        if self.kind == Kind::Flower {
            match self.request(
                RTM_NEWTFILTER,
                NLM_F_CREATE | NLM_F_EXCL,
                &self.flower_request(ifindex, handle, m, action)?,
            ) {
                Ok(()) => {
                    self.filters
                        .push((ifindex, handle, ethertype, Kind::Flower));
                    return Ok(handle);
                }
                // "TC classifier not found" / "action not found": no flower or gact here.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EOPNOTSUPP)) => {
                    self.kind = Kind::Bpf;
                }
                Err(e) => return Err(e),
            }
        }
        let mut b = filter_head(ifindex, handle, ethertype, Kind::Bpf);
        let opts = nest(&mut b, TCA_OPTIONS);
        let hit = match action {
            RuleAction::Drop => TC_ACT_SHOT as u32,
            RuleAction::Pass => TC_ACT_OK as u32,
        };
        let prog = flow_program(m, hit);
        attr(&mut b, TCA_BPF_OPS_LEN, &(prog.len() as u16).to_ne_bytes());
        let mut ops = Vec::with_capacity(prog.len() * 8);
        for i in &prog {
            ops.extend_from_slice(&i.code.to_ne_bytes());
            ops.push(i.jt);
            ops.push(i.jf);
            ops.extend_from_slice(&i.k.to_ne_bytes());
        }
        attr(&mut b, TCA_BPF_OPS, &ops);
        let name = match action {
            RuleAction::Drop => "islet-deny\0",
            RuleAction::Pass => "islet-bypass\0",
        };
        attr(&mut b, TCA_BPF_NAME, name.as_bytes());
        attr(
            &mut b,
            TCA_BPF_FLAGS,
            &TCA_BPF_FLAG_ACT_DIRECT.to_ne_bytes(),
        );
        end_nest(&mut b, opts);
        self.request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, &b)?;
        self.filters.push((ifindex, handle, ethertype, Kind::Bpf));
        Ok(handle)
    }

    /// The RTM_NEWTFILTER body of a flower rule.
    pub fn flower_request(
        &self,
        ifindex: u32,
        handle: u32,
        m: &FlowMatch,
        action: RuleAction,
    ) -> io::Result<Vec<u8>> {
        let ethertype: u16 = if m.src.is_ipv4() { 0x0800 } else { 0x86DD };
        let mut b = filter_head(ifindex, handle, ethertype, Kind::Flower);
        let opts = nest(&mut b, TCA_OPTIONS);
        attr(&mut b, TCA_FLOWER_KEY_ETH_TYPE, &ethertype.to_be_bytes());
        attr(&mut b, TCA_FLOWER_KEY_IP_PROTO, &[m.proto]);
        match (m.src, m.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                attr(&mut b, TCA_FLOWER_KEY_IPV4_SRC, &s.octets());
                attr(&mut b, TCA_FLOWER_KEY_IPV4_DST, &d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                attr(&mut b, TCA_FLOWER_KEY_IPV6_SRC, &s.octets());
                attr(&mut b, TCA_FLOWER_KEY_IPV6_DST, &d.octets());
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "flow with mixed address families",
                ));
            }
        }
        let ports = match m.proto {
            6 => Some((TCA_FLOWER_KEY_TCP_SRC, TCA_FLOWER_KEY_TCP_DST)),
            17 => Some((TCA_FLOWER_KEY_UDP_SRC, TCA_FLOWER_KEY_UDP_DST)),
            _ => None,
        };
        if let Some((s, d)) = ports {
            attr(&mut b, s, &m.sport.to_be_bytes());
            attr(&mut b, d, &m.dport.to_be_bytes());
        }
        attr(&mut b, TCA_FLOWER_FLAGS, &self.flags.to_ne_bytes());
        let acts = nest(&mut b, TCA_FLOWER_ACT);
        let a1 = nest(&mut b, 1);
        attr(&mut b, TCA_ACT_KIND, b"gact\0");
        let ao = nest(&mut b, TCA_ACT_OPTIONS | NLA_F_NESTED);
        // struct tc_gact { index, capab, action, refcnt, bindcnt }
        let mut parms = [0u8; 20];
        let act = match action {
            RuleAction::Drop => TC_ACT_SHOT,
            RuleAction::Pass => TC_ACT_OK,
        };
        parms[8..12].copy_from_slice(&act.to_ne_bytes());
        attr(&mut b, TCA_GACT_PARMS, &parms);
        end_nest(&mut b, ao);
        end_nest(&mut b, a1);
        end_nest(&mut b, acts);
        end_nest(&mut b, opts);
        Ok(b)
    }

    /// Delete the filter `handle` this process added on `ifindex`.
    pub fn remove(&mut self, ifindex: u32, handle: u32) -> io::Result<()> {
        let Some(i) = self
            .filters
            .iter()
            .position(|f| f.0 == ifindex && f.1 == handle)
        else {
            return Ok(());
        };
        let (_, _, ethertype, kind) = self.filters.swap_remove(i);
        let b = filter_head(ifindex, handle, ethertype, kind);
        match self.request(RTM_DELTFILTER, 0, &b) {
            // Gone already (the interface went away, or someone removed it).
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) => Ok(()),
            r => r,
        }
    }

    /// Filters this process has in place.
    pub fn installed(&self) -> usize {
        self.filters.len()
    }

    /// Remove every filter this process added, then the qdiscs it made. Returns the first
    /// error, having tried everything.
    pub fn clear(&mut self) -> io::Result<()> {
        let mut first = None;
        for (ifindex, handle, _, _) in self.filters.clone() {
            if let Err(e) = self.remove(ifindex, handle) {
                first.get_or_insert(e);
            }
        }
        for ifindex in std::mem::take(&mut self.made_qdisc) {
            let mut b = Vec::new();
            tcmsg(&mut b, ifindex, 0xFFFF_0000, TC_H_CLSACT, 0);
            attr(&mut b, TCA_KIND, b"clsact\0");
            match self.request(RTM_DELQDISC, 0, &b) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) => {}
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        self.have_qdisc.clear();
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Tc {
    fn drop(&mut self) {
        let _ = self.clear();
    }
}
