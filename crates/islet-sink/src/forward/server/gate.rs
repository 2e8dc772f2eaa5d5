//! Admission: a cap on connections open at once, in total and per peer address, shared by the
//! Forward receiver and the metrics endpoint. The accept loop asks [`Gate::admit`] before it
//! hands a connection to a thread; a refused connection is closed at once and counted. At a
//! cap, a connection that has been silent (no completed message) for `evict_after` gives way
//! to the new one — so a flood of idle connections from one address cannot lock out a client
//! from that same address — while connections that completed a handshake or a message are
//! never evicted.

use std::collections::HashMap;
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The caps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub total: usize,
    pub per_peer: usize,
    /// A connection silent this long may be closed to admit a new one at a cap.
    pub evict_after: Option<Duration>,
}

/// What admission counted.
#[derive(Debug, Default)]
pub struct GateStats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Refused: the total cap was reached (and no silent connection could give way).
    pub refused_total: AtomicU64,
    /// Refused: the peer's cap was reached.
    pub refused_per_peer: AtomicU64,
    /// Silent connections closed to admit a new one.
    pub evicted: AtomicU64,
    /// accept() failed (out of file descriptors, most often).
    pub accept_errors: AtomicU64,
}

#[derive(Debug)]
struct Slot {
    peer: IpAddr,
    /// A clone of the socket, to cut it (eviction, stop).
    cut: TcpStream,
    opened: Instant,
    proven: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    slots: HashMap<u64, Slot>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Slot> {
        let s = self.slots.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&s.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&s.peer);
            }
        }
        Some(s)
    }

    /// The silent connection (of `peer`, if given) open longest, if silent for `after`.
    fn evictable(&self, peer: Option<IpAddr>, after: Duration, now: Instant) -> Option<u64> {
        self.slots
            .iter()
            .filter(|(_, s)| peer.is_none_or(|p| p == s.peer))
            .filter(|(_, s)| !s.proven.load(Ordering::Relaxed))
            .filter(|(_, s)| now.saturating_duration_since(s.opened) >= after)
            .min_by_key(|(_, s)| s.opened)
            .map(|(id, _)| *id)
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    PerPeer,
}

/// The set of open connections and their caps.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    open: Mutex<Open>,
    pub stats: Arc<GateStats>,
}

/// A connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    id: u64,
    /// Set once the connection has completed a message: it is then never evicted.
    pub proven: Arc<AtomicBool>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let gone = self
            .gate
            .open
            .lock()
            .ok()
            .and_then(|mut o| o.remove(self.id));
        if let Some(s) = gone {
            self.gate.stats.open.fetch_sub(1, Ordering::Relaxed);
            let _ = s.cut.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Gate {
    pub fn new(limits: Limits, stats: Arc<GateStats>) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            open: Mutex::default(),
            stats,
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Admit `s` from `peer`, evicting a silent connection at a cap if allowed; refused
    /// connections are counted (the caller closes them).
    pub fn admit(self: &Arc<Self>, s: &TcpStream, peer: IpAddr) -> Result<Ticket, Refused> {
        let cut = s.try_clone().map_err(|_| Refused::Total)?;
        let now = Instant::now();
        let mut o = self.open.lock().map_err(|_| Refused::Total)?;
        let evict = |o: &mut Open, of: Option<IpAddr>| -> bool {
            let Some(after) = self.limits.evict_after else {
                return false;
            };
            let Some(id) = o.evictable(of, after, now) else {
                return false;
            };
            if let Some(v) = o.remove(id) {
                let _ = v.cut.shutdown(std::net::Shutdown::Both);
                self.stats.open.fetch_sub(1, Ordering::Relaxed);
                self.stats.evicted.fetch_add(1, Ordering::Relaxed);
            }
            true
        };
        if o.per_peer.get(&peer).copied().unwrap_or(0) >= self.limits.per_peer
            && !evict(&mut o, Some(peer))
        {
            self.stats.refused_per_peer.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::PerPeer);
        }
        if o.slots.len() >= self.limits.total && !evict(&mut o, None) {
            self.stats.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Total);
        }
        o.next += 1;
        let id = o.next;
        let proven = Arc::new(AtomicBool::new(false));
        o.slots.insert(
            id,
            Slot {
                peer,
                cut,
                opened: now,
                proven: proven.clone(),
            },
        );
        *o.per_peer.entry(peer).or_default() += 1;
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            gate: self.clone(),
            id,
            proven,
        })
    }

    /// Cut every open connection (at stop).
    pub fn cut_all(&self) {
        if let Ok(o) = self.open.lock() {
            for s in o.slots.values() {
                let _ = s.cut.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// The soft limit on open files, from /proc/self/limits (Linux); `None` if unknown.
pub fn open_files_limit() -> Option<usize> {
    let l = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = l.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// File descriptors kept for everything but connections (listener, store, logs, clients).
pub const RESERVED_FDS: usize = 64;

/// `want` connections, lowered so that each one's `fds_each` descriptors fit the open-file
/// limit: past it accept() fails, and the gate could no longer refuse or evict.
pub fn fit_to_fd_limit(want: usize, fds_each: usize) -> usize {
    match open_files_limit() {
        Some(l) => want
            .min(l.saturating_sub(RESERVED_FDS) / fds_each.max(1))
            .max(1),
        None => want,
    }
}
