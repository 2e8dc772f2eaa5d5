//! The console's HTTP and HTTPS listener.
//!
//! The accept loop only accepts: every connection gets its own task at once, and the TLS
//! handshake, the request head and everything after run there, each under its own timeout,
//! so a client that connects and says nothing holds one slot, never the door. Connections are
//! counted in total and per peer address ([`Limits`]); at either bound a newcomer takes the
//! slot of the oldest connection that has no request in flight (a connection still in its
//! handshake, or idle between requests), and is refused only when every connection is busy.
//! An attacker's idle sockets therefore cost the attacker its own oldest sockets, not the
//! analyst's next request, and memory stays bounded by the connection cap times the
//! per-connection buffers (`max_buf_size` for request heads, the body limit of the router).
//! Each refusal, eviction and timeout is counted in [`ListenStats`] (`/api/metrics`).

use axum::Router;
use axum::http::HeaderValue;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};

/// The request header that carries the peer's address to the handlers. The listener sets it
/// on every request, replacing whatever the client sent under that name.
pub const PEER_HEADER: &str = "x-islet-peer";

/// Bounds of the listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once.
    pub max_conns: usize,
    /// Most connections open at once from one address.
    pub max_per_peer: usize,
    /// A TLS handshake must finish within this.
    pub handshake: Duration,
    /// A request head must arrive within this once it has begun.
    pub header: Duration,
    /// A connection with no byte moving either way for this long is closed.
    pub idle: Duration,
    /// Largest buffered request head (bytes); larger heads are answered 431.
    pub max_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: 2048,
            max_per_peer: 256,
            handshake: Duration::from_secs(10),
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_head: 64 << 10,
        }
    }
}

/// What the listener did, for metrics.
#[derive(Debug, Default)]
pub struct ListenStats {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    /// Refused: every connection was busy at the total or the per-peer bound.
    pub refused: AtomicU64,
    /// Idle connections closed to make room for a newcomer.
    pub evicted: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub idle_timeouts: AtomicU64,
}

/// One connection's shared state: whether a request is in flight, and its kill switch.
#[derive(Debug, Default)]
struct Conn {
    busy: AtomicBool,
    kill: Notify,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    /// Open connections, oldest first.
    order: VecDeque<(u64, IpAddr, Arc<Conn>)>,
    per_peer: HashMap<IpAddr, usize>,
}

/// The connection table, shared by the accept loop and the connections' guards. Its lock is
/// taken when a connection opens and when it closes, never per request or per byte.
#[derive(Debug, Default)]
struct Slots {
    table: Mutex<Table>,
}

/// Holds a connection's place in the table; gives it back when dropped.
struct Slot {
    slots: Arc<Slots>,
    id: u64,
    peer: IpAddr,
    conn: Arc<Conn>,
    stats: Arc<ListenStats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut t) = self.slots.table.lock() {
            // An evicted connection left the table (and its peer's count) when it was chosen.
            if let Some(i) = t.order.iter().position(|(id, _, _)| *id == self.id) {
                t.order.remove(i);
                if let Some(n) = t.per_peer.get_mut(&self.peer) {
                    *n = n.saturating_sub(1);
                }
            }
            if t.per_peer.get(&self.peer) == Some(&0) {
                t.per_peer.remove(&self.peer);
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    /// A place for a connection from `peer`, making room by closing the oldest idle
    /// connection when a bound is reached; None when every candidate is busy.
    fn take(
        self: &Arc<Self>,
        peer: IpAddr,
        limits: &Limits,
        stats: &Arc<ListenStats>,
    ) -> Option<Slot> {
        let mut t = self.table.lock().ok()?;
        let mine = t.per_peer.get(&peer).copied().unwrap_or(0);
        let full_peer = mine >= limits.max_per_peer.max(1);
        let full = t.order.len() >= limits.max_conns.max(1);
        if full_peer || full {
            // The oldest idle connection: of this peer when its own bound is the one reached.
            let victim = t.order.iter().position(|(_, p, c)| {
                (!full_peer || *p == peer) && !c.busy.load(Ordering::Acquire)
            });
            let Some(i) = victim else {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            // Its guard removes it from the table when its task ends; until then it no longer
            // counts, so the newcomer's place is free now.
            if let Some((_, p, c)) = t.order.remove(i) {
                c.kill.notify_one();
                if let Some(n) = t.per_peer.get_mut(&p) {
                    *n = n.saturating_sub(1);
                }
            }
            stats.evicted.fetch_add(1, Ordering::Relaxed);
        }
        t.next += 1;
        let id = t.next;
        let conn = Arc::new(Conn::default());
        t.order.push_back((id, peer, conn.clone()));
        *t.per_peer.entry(peer).or_insert(0) += 1;
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            slots: self.clone(),
            id,
            peer,
            conn,
            stats: stats.clone(),
        })
    }
}

/// Serve `router` on `tcp` (TLS when `tls` is given) until `shutdown` fires; connections
/// then finish the request they are in (at most `idle`) and are closed.
pub async fn serve(
    tcp: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limits: Limits,
    stats: Arc<ListenStats>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Slots::default());
    let (close_tx, close_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = tcp.accept() => match r {
                Ok(x) => x,
                // Out of descriptors or the like: wait a moment rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.take(peer.ip(), &limits, &stats) else {
            drop(stream);
            continue;
        };
        let (tls, router, stats, close) =
            (tls.clone(), router.clone(), stats.clone(), close_rx.clone());
        tokio::spawn(async move {
            let conn = slot.conn.clone();
            tokio::select! {
                () = connection(stream, peer, tls, router, limits, stats, conn.clone(), close) => {}
                () = conn.kill.notified() => {}
            }
            drop(slot);
        });
    }
    let _ = close_tx.send(true);
    // Let connections in a request finish; the rest close at once.
    let deadline = tokio::time::Instant::now() + limits.idle.min(Duration::from_secs(10));
    while stats.open.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one connection's whole context, passed once"
)]
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limits: Limits,
    stats: Arc<ListenStats>,
    conn: Arc<Conn>,
    close: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return http(stream, peer, router, limits, stats, conn, close).await;
    };
    // A connection still in its handshake when the console stops is simply closed.
    let mut stopping = close.clone();
    let handshake = tokio::select! {
        r = tokio::time::timeout(limits.handshake, acceptor.accept(stream)) => r,
        _ = stopping.changed() => return,
    };
    match handshake {
        Ok(Ok(t)) => http(t, peer, router, limits, stats, conn, close).await,
        Ok(Err(_)) => {
            stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            stats.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Marks its connection busy while a request is being answered.
struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

async fn http<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    stats: Arc<ListenStats>,
    conn: Arc<Conn>,
    mut close: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer_value = HeaderValue::from_str(&peer.ip().to_string()).ok();
    let busy_conn = conn.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        busy_conn.busy.store(true, Ordering::Release);
        let busy = Busy(busy_conn.clone());
        match &peer_value {
            Some(v) => {
                req.headers_mut().insert(PEER_HEADER, v.clone());
            }
            None => {
                req.headers_mut().remove(PEER_HEADER);
            }
        }
        let router = router.clone();
        async move {
            let r = tower::ServiceExt::oneshot(router, req.map(axum::body::Body::new)).await;
            drop(busy);
            r
        }
    });
    let io = TokioIo::new(Idle::new(io, limits.idle, stats.clone()));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .max_buf_size(limits.max_head.max(8192))
        .keep_alive(true);
    let c = builder.serve_connection(io, svc);
    tokio::pin!(c);
    tokio::select! {
        _ = c.as_mut() => {}
        _ = close.changed() => {
            c.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.idle, c).await;
        }
    }
}

/// An I/O object that fails with `TimedOut` once no byte has moved either way for `idle`.
struct Idle<I> {
    io: I,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    stats: Arc<ListenStats>,
}

impl<I> Idle<I> {
    fn new(io: I, idle: Duration, stats: Arc<ListenStats>) -> Idle<I> {
        Idle {
            io,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            stats,
        }
    }

    fn touch(&mut self) {
        let at = tokio::time::Instant::now() + self.idle;
        self.timer.as_mut().reset(at);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.timer.as_mut().poll(cx).is_ready() {
            self.stats.idle_timeouts.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "idle connection closed")
}

impl<I: AsyncRead + Unpin> AsyncRead for Idle<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Idle<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
