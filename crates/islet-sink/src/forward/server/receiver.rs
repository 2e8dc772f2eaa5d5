//! The blocking receiver: an accept loop that only admits (caps, eviction) and spawns, and one
//! small-stacked thread per connection that runs the TLS and Forward handshakes, reads with
//! deadlines, and feeds the codec.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::codec::ServerCodec;
use super::gate::{self, Gate, Limits, Ticket};
use super::{Deadline, Handler, Refusal, ServerConfig, ServerStats};

/// Stack of a connection thread. The deepest path is a decode nested `max_depth` levels or a
/// TLS handshake; both fit with room to spare. Only the pages touched count against memory.
pub const CONN_STACK: usize = 256 << 10;

/// Bytes read from a socket at a time, into a buffer on the connection's stack.
pub const READ_CHUNK: usize = 16 << 10;

/// File descriptors one connection holds: its socket and the gate's clone of it.
const FDS_PER_CONN: usize = 2;

/// After accept() fails (out of descriptors), wait this long before the next try, so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// A blocking Forward receiver: one thread per admitted connection.
pub struct Receiver {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    gate: Arc<Gate>,
    accept: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<ServerStats>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish()
    }
}

/// The socket, plain or under TLS, with access to the TCP stream for its timeouts.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => t.get_ref(),
        }
    }

    fn handshaking(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(t) => t.conn.is_handshaking(),
        }
    }

    fn send(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(b).and_then(|()| s.flush()),
            Conn::Tls(t) => t.write_all(b).and_then(|()| t.flush()),
        }
    }

    fn recv(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(b),
            Conn::Tls(t) => t.read(b),
        }
    }
}

impl Receiver {
    /// Listen on `addr` (TLS when `tls` is given) and hand batches to `handler`.
    pub fn start(
        addr: &str,
        cfg: ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: Handler,
    ) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ServerStats::default());
        let total = gate::fit_to_fd_limit(cfg.max_connections, FDS_PER_CONN);
        if total < cfg.max_connections {
            eprintln!(
                "forward receiver: at most {total} connections (not {}): the open-file limit allows no more",
                cfg.max_connections
            );
        }
        let gate = Gate::new(
            Limits {
                total,
                per_peer: cfg.max_connections_per_peer,
                evict_after: cfg.evict_after,
            },
            stats.admission.clone(),
        );
        let cfg = Arc::new(cfg);
        let accept = {
            let (stop, gate, stats) = (stop.clone(), gate.clone(), stats.clone());
            std::thread::Builder::new()
                .name("forward-accept".into())
                .spawn(move || accept_loop(&listener, &stop, &gate, &cfg, &tls, &handler, &stats))?
        };
        Ok(Receiver {
            addr: local,
            stop,
            gate,
            accept: Some(accept),
            stats,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop listening and cut every connection (as a killed collector would).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        self.gate.cut_all();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.halt();
        }
    }
}

/// Accept, admit, spawn: nothing here waits on a peer.
fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    gate: &Arc<Gate>,
    cfg: &Arc<ServerConfig>,
    tls: &Option<Arc<rustls::ServerConfig>>,
    handler: &Handler,
    stats: &Arc<ServerStats>,
) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (s, peer) = match accepted {
            Ok(a) => a,
            Err(_) => {
                gate.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        // Refused: dropped here, closed at once.
        // An IPv4 peer on a dual-stack socket is one peer, whichever way it is written.
        let Ok(ticket) = gate.admit(&s, peer.ip().to_canonical()) else {
            continue;
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        // Made here, so that a connection that stays silent allocates nothing in its own
        // thread (a thread's first allocation sets up an allocator heap of its own, ~100 KiB).
        let (codec, greeting) = ServerCodec::with_stats(cfg.clone(), stats.clone());
        let (cfg, handler, stats, tls) = (cfg.clone(), handler.clone(), stats.clone(), tls.clone());
        // If the thread cannot be made, the ticket and socket are dropped with the closure.
        let _ = std::thread::Builder::new()
            .name("forward-conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                let hello = (codec, greeting);
                if let Err(e) = serve(s, hello, &cfg, tls, &handler, &stats, &ticket) {
                    eprintln!("forward receiver: {peer}: closing: {e}");
                    stats.count_closed(e.reason());
                }
                drop(ticket);
            });
    }
}

/// One connection, until it ends, fails or misses a deadline (`Ok` when the peer went away).
fn serve(
    s: TcpStream,
    (mut codec, greeting): (ServerCodec, Option<Vec<u8>>),
    cfg: &Arc<ServerConfig>,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: &Handler,
    stats: &Arc<ServerStats>,
    ticket: &Ticket,
) -> Result<(), Refusal> {
    let opened = Instant::now();
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(cfg.write_timeout));
    // The greeting may run the TLS handshake: bounded by the handshake deadline.
    let _ = s.set_read_timeout(Some(cfg.handshake_timeout.max(Duration::from_millis(1))));
    let mut conn = match tls {
        Some(t) => match rustls::ServerConnection::new(t) {
            Ok(c) => Conn::Tls(Box::new(rustls::StreamOwned::new(c, s))),
            Err(e) => return Err(Refusal::Handshake(format!("TLS: {e}"))),
        },
        None => Conn::Plain(s),
    };
    if let Some(g) = greeting
        && let Err(e) = conn.send(&g)
    {
        return gone(&e, Deadline::Handshake);
    }
    let mut rbuf = [0u8; READ_CHUNK];
    let mut reply = Vec::new();
    let mut last_message = opened;
    let mut frame_began: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let (deadline, which) = if conn.handshaking() || !codec.ready() {
            (opened + cfg.handshake_timeout, Deadline::Handshake)
        } else if let Some(b) = frame_began {
            (b + cfg.frame_timeout, Deadline::Frame)
        } else {
            (last_message + cfg.idle_timeout, Deadline::Idle)
        };
        let Some(left) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            return Err(Refusal::Timeout(which));
        };
        let _ = conn.tcp().set_read_timeout(Some(left));
        let n = match conn.recv(&mut rbuf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(()),
        };
        let before = codec.messages();
        reply.clear();
        let r = codec.input(&rbuf[..n], &mut reply, &mut |b| {
            let ok = handler(&b);
            if ok {
                stats
                    .events
                    .fetch_add(b.events.len() as u64, Ordering::Relaxed);
                if b.chunk.is_some() {
                    stats.acks.fetch_add(1, Ordering::Relaxed);
                }
            }
            ok
        });
        let now = Instant::now();
        if codec.messages() > before {
            last_message = now;
            if codec.ready() {
                ticket.proven.store(true, Ordering::Relaxed);
            }
        }
        frame_began = match (codec.pending(), frame_began) {
            (0, _) => None,
            (_, Some(b)) if codec.messages() == before => Some(b),
            _ => Some(now),
        };
        if !reply.is_empty()
            && let Err(e) = conn.send(&reply)
        {
            r?;
            return gone(&e, Deadline::Idle);
        }
        r?;
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A failed write: a timeout is the peer not reading (counted), anything else is the peer gone.
fn gone(e: &std::io::Error, which: Deadline) -> Result<(), Refusal> {
    if is_timeout(e) {
        Err(Refusal::Timeout(which))
    } else {
        Ok(())
    }
}
