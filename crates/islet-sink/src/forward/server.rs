//! The receiving side of the Forward protocol: a sans-IO codec ([`ServerCodec`]) and a blocking
//! TCP/TLS receiver around it ([`Receiver`]), reused by the console.
//!
//! The codec accepts all four modes (Message, Forward, PackedForward with entries as str or bin,
//! CompressedPackedForward with one or several gzip members, `compressed: "text"`), integer
//! times as well as EventTime, and answers `{"ack": chunk}` echoing the chunk value byte for
//! byte once the handler has taken the events. With a shared key the connection must complete
//! the HELO/PING/PONG handshake first. A malformed frame, a failed handshake or a message over
//! the configured bounds ends that connection with a named reason; other connections and the
//! events already acknowledged are unaffected.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmpv::Value;

use super::proto::{password_digest, shared_key_digest, value_len};

/// What a receiver accepts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Require the shared-key handshake with this key.
    pub shared_key: Option<String>,
    pub self_hostname: String,
    /// With users, PING must also carry one of these user/password pairs.
    pub users: Vec<(String, String)>,
    /// Largest message on the wire (bytes).
    pub max_message: usize,
    /// Largest decompressed entry stream of one message (bytes).
    pub max_decompressed: usize,
    /// Most entries in one message.
    pub max_entries: usize,
    /// Nesting bound for MessagePack values.
    pub max_depth: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            shared_key: None,
            self_hostname: "islet".into(),
            users: Vec::new(),
            max_message: 32 << 20,
            max_decompressed: 256 << 20,
            max_entries: 1 << 20,
            max_depth: 32,
        }
    }
}

/// One event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub tag: String,
    pub time_ns: u64,
    pub record: Value,
}

/// The events of one message, and the chunk to acknowledge once they are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub events: Vec<Event>,
    pub chunk: Option<Value>,
    /// The client's hostname from its PING (connections with a shared key only): which
    /// sensor sent the batch.
    pub client: Option<String>,
}

/// Why a connection was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Malformed(String),
    Oversized(String),
    Handshake(String),
    /// The handler could not keep the events (nothing acknowledged).
    NotKept,
}

impl Refusal {
    /// The counter this refusal is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::Oversized(_) => "oversized",
            Refusal::Handshake(_) => "handshake",
            Refusal::NotKept => "not_kept",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(m) => write!(f, "malformed message: {m}"),
            Refusal::Oversized(m) => write!(f, "message too large: {m}"),
            Refusal::Handshake(m) => write!(f, "handshake failed: {m}"),
            Refusal::NotKept => f.write_str("events could not be kept"),
        }
    }
}

#[derive(Debug)]
enum State {
    AwaitPing {
        nonce: Vec<u8>,
        auth_salt: Vec<u8>,
    },
    /// Handshake done (or none needed), with the client's hostname if it sent a PING.
    Ready(Option<String>),
}

/// The per-connection protocol state; bytes in, replies and batches out.
#[derive(Debug)]
pub struct ServerCodec {
    cfg: Arc<ServerConfig>,
    state: State,
    /// Bytes received and not yet decoded. Sizing a message skips payloads by their declared
    /// lengths, so re-sizing as a large message arrives costs little.
    buf: Vec<u8>,
}

impl ServerCodec {
    /// A codec for a new connection, and the greeting to send first (HELO) if a key is set.
    pub fn new(cfg: Arc<ServerConfig>) -> (ServerCodec, Option<Vec<u8>>) {
        let mut nonce = vec![0u8; 16];
        let mut auth_salt = vec![0u8; 16];
        let _ = getrandom::getrandom(&mut nonce);
        let _ = getrandom::getrandom(&mut auth_salt);
        ServerCodec::with_nonce(cfg, nonce, auth_salt)
    }

    /// As [`ServerCodec::new`] with a given nonce and auth salt (tests).
    pub fn with_nonce(
        cfg: Arc<ServerConfig>,
        nonce: Vec<u8>,
        auth_salt: Vec<u8>,
    ) -> (ServerCodec, Option<Vec<u8>>) {
        let (state, greeting) = if cfg.shared_key.is_some() {
            let mut h = Vec::new();
            h.push(0x92);
            super::proto::write_str(&mut h, "HELO");
            let _ = rmp::encode::write_map_len(&mut h, 3);
            super::proto::write_str(&mut h, "nonce");
            super::proto::write_bin(&mut h, &nonce);
            super::proto::write_str(&mut h, "auth");
            if cfg.users.is_empty() {
                super::proto::write_bin(&mut h, b"");
            } else {
                super::proto::write_bin(&mut h, &auth_salt);
            }
            super::proto::write_str(&mut h, "keepalive");
            let _ = rmp::encode::write_bool(&mut h, true);
            (State::AwaitPing { nonce, auth_salt }, Some(h))
        } else {
            (State::Ready(None), None)
        };
        (
            ServerCodec {
                cfg,
                state,
                buf: Vec::new(),
            },
            greeting,
        )
    }

    /// Take bytes from the peer. Complete messages are decoded; each batch goes to `keep`, and
    /// when it returns true the ack is appended to `reply`. An error means: send `reply` (it may
    /// hold a refusing PONG) and close.
    pub fn input(
        &mut self,
        data: &[u8],
        reply: &mut Vec<u8>,
        keep: &mut dyn FnMut(Batch) -> bool,
    ) -> Result<(), Refusal> {
        self.buf.extend_from_slice(data);
        loop {
            if self.buf.is_empty() {
                return Ok(());
            }
            let len = match value_len(&self.buf, self.cfg.max_depth) {
                Ok(Some(n)) => n,
                Ok(None) => {
                    if self.buf.len() > self.cfg.max_message {
                        return Err(Refusal::Oversized(format!(
                            "more than {} bytes without a complete message",
                            self.cfg.max_message
                        )));
                    }
                    return Ok(());
                }
                Err(e) => return Err(Refusal::Malformed(e)),
            };
            if len > self.cfg.max_message {
                return Err(Refusal::Oversized(format!(
                    "{len} bytes, the bound is {}",
                    self.cfg.max_message
                )));
            }
            let msg =
                rmpv::decode::read_value_with_max_depth(&mut &self.buf[..len], self.cfg.max_depth)
                    .map_err(|e| Refusal::Malformed(e.to_string()))?;
            self.buf.drain(..len);
            match &self.state {
                State::AwaitPing { nonce, auth_salt } => {
                    let host = ping(&self.cfg, nonce, auth_salt, &msg, reply)?;
                    self.state = State::Ready(Some(host));
                }
                State::Ready(client) => {
                    let mut batch = decode_message(&self.cfg, msg)?;
                    batch.client.clone_from(client);
                    let chunk = batch.chunk.clone();
                    if !keep(batch) {
                        return Err(Refusal::NotKept);
                    }
                    if let Some(c) = chunk {
                        reply.push(0x81);
                        super::proto::write_str(reply, "ack");
                        let _ = rmpv::encode::write_value(reply, &c);
                    }
                }
            }
        }
    }
}

fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        Value::Binary(b) => Some(b),
        _ => None,
    }
}

/// Check a PING and write the PONG.
fn ping(
    cfg: &ServerConfig,
    nonce: &[u8],
    auth_salt: &[u8],
    msg: &Value,
    reply: &mut Vec<u8>,
) -> Result<String, Refusal> {
    let key = cfg.shared_key.as_deref().unwrap_or("");
    let a = msg.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if a.len() != 6 || as_bytes(&a[0]) != Some(b"PING") {
        return Err(Refusal::Handshake(
            "expected PING [\"PING\", hostname, salt, digest, user, password digest]".into(),
        ));
    }
    let hostname = as_bytes(&a[1])
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let salt = as_bytes(&a[2]).unwrap_or(b"");
    let digest = as_bytes(&a[3]).unwrap_or(b"");
    let mut fail = |why: &str| {
        pong(reply, false, why, &cfg.self_hostname, "");
        Err(Refusal::Handshake(format!("{why} (client {hostname:?})")))
    };
    if hostname == cfg.self_hostname {
        return fail("same hostname as the server");
    }
    if digest != shared_key_digest(salt, &hostname, nonce, key).as_bytes() {
        return fail("shared_key mismatch");
    }
    if !cfg.users.is_empty() {
        let user = as_bytes(&a[4])
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let pw = as_bytes(&a[5]).unwrap_or(b"");
        let ok = cfg
            .users
            .iter()
            .any(|(u, p)| *u == user && password_digest(auth_salt, u, p).as_bytes() == pw);
        if !ok {
            return fail("username/password mismatch");
        }
    }
    let mine = shared_key_digest(salt, &cfg.self_hostname, nonce, key);
    pong(reply, true, "", &cfg.self_hostname, &mine);
    Ok(hostname.into_owned())
}

fn pong(reply: &mut Vec<u8>, ok: bool, reason: &str, hostname: &str, digest: &str) {
    reply.push(0x95);
    super::proto::write_str(reply, "PONG");
    let _ = rmp::encode::write_bool(reply, ok);
    super::proto::write_str(reply, reason);
    super::proto::write_str(reply, hostname);
    super::proto::write_str(reply, digest);
}

fn bad<T>(m: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Malformed(m.into()))
}

/// Decode one event message in any of the four modes.
pub fn decode_message(cfg: &ServerConfig, msg: Value) -> Result<Batch, Refusal> {
    let Value::Array(mut a) = msg else {
        return bad("a message is an array");
    };
    if a.len() < 2 || a.len() > 4 {
        return bad(format!("a message has 2 to 4 elements, not {}", a.len()));
    }
    let tag = match &a[0] {
        Value::String(s) => s
            .as_str()
            .ok_or_else(|| Refusal::Malformed("tag is not UTF-8".into()))?
            .to_string(),
        _ => return bad("tag is not a string"),
    };
    // Message mode: [tag, time, record, option?].
    if matches!(
        a[1],
        Value::Integer(_) | Value::Ext(..) | Value::F64(_) | Value::F32(_)
    ) {
        let option = if a.len() == 4 { a.pop() } else { None };
        let record = a.pop().filter(|_| a.len() == 2).ok_or_else(|| {
            Refusal::Malformed("Message mode is [tag, time, record, option?]".into())
        })?;
        let time_ns = time_ns(&a[1])?;
        if !record.is_map() {
            return bad("record is not a map");
        }
        return Ok(Batch {
            events: vec![Event {
                tag,
                time_ns,
                record,
            }],
            chunk: chunk_of(option.as_ref())?,
            client: None,
        });
    }
    let option = if a.len() == 3 { a.pop() } else { None };
    if a.len() != 2 {
        return bad("Forward modes are [tag, entries, option?]");
    }
    let chunk = chunk_of(option.as_ref())?;
    let mut events = Vec::new();
    match a.pop() {
        Some(Value::Array(entries)) => {
            if entries.len() > cfg.max_entries {
                return Err(Refusal::Oversized(format!(
                    "{} entries, the bound is {}",
                    entries.len(),
                    cfg.max_entries
                )));
            }
            for e in entries {
                events.push(entry(&tag, e)?);
            }
        }
        Some(Value::Binary(b)) => packed(cfg, &tag, &b, option.as_ref(), &mut events)?,
        Some(Value::String(s)) => packed(cfg, &tag, s.as_bytes(), option.as_ref(), &mut events)?,
        _ => return bad("entries are neither an array nor packed bytes"),
    }
    Ok(Batch {
        events,
        chunk,
        client: None,
    })
}

fn chunk_of(option: Option<&Value>) -> Result<Option<Value>, Refusal> {
    let Some(o) = option else { return Ok(None) };
    let Value::Map(m) = o else {
        return bad("option is not a map");
    };
    Ok(m.iter()
        .find(|(k, _)| as_bytes(k) == Some(b"chunk"))
        .map(|(_, v)| v.clone()))
}

fn packed(
    cfg: &ServerConfig,
    tag: &str,
    bytes: &[u8],
    option: Option<&Value>,
    events: &mut Vec<Event>,
) -> Result<(), Refusal> {
    let compressed = match option {
        Some(Value::Map(m)) => m
            .iter()
            .find(|(k, _)| as_bytes(k) == Some(b"compressed"))
            .and_then(|(_, v)| as_bytes(v)),
        _ => None,
    };
    let inflated;
    let stream: &[u8] = match compressed {
        None | Some(b"text") => bytes,
        Some(b"gzip") => {
            let mut out = Vec::new();
            let mut gz =
                flate2::read::MultiGzDecoder::new(bytes).take(cfg.max_decompressed as u64 + 1);
            gz.read_to_end(&mut out)
                .map_err(|e| Refusal::Malformed(format!("gzip: {e}")))?;
            if out.len() > cfg.max_decompressed {
                return Err(Refusal::Oversized(format!(
                    "more than {} bytes decompressed",
                    cfg.max_decompressed
                )));
            }
            inflated = out;
            &inflated
        }
        Some(other) => {
            return bad(format!(
                "unknown compression {:?}",
                String::from_utf8_lossy(other)
            ));
        }
    };
    let mut rest = stream;
    while !rest.is_empty() {
        if events.len() >= cfg.max_entries {
            return Err(Refusal::Oversized(format!(
                "more than {} entries",
                cfg.max_entries
            )));
        }
        let n = match value_len(rest, cfg.max_depth) {
            Ok(Some(n)) => n,
            Ok(None) => return bad("packed entries end inside an entry"),
            Err(e) => return bad(e),
        };
        let v = rmpv::decode::read_value_with_max_depth(&mut &rest[..n], cfg.max_depth)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        rest = &rest[n..];
        events.push(entry(tag, v)?);
    }
    Ok(())
}

fn entry(tag: &str, e: Value) -> Result<Event, Refusal> {
    let Value::Array(mut pair) = e else {
        return bad("an entry is [time, record]");
    };
    if pair.len() != 2 {
        return bad("an entry is [time, record]");
    }
    let record = pair.pop().unwrap_or(Value::Nil);
    if !record.is_map() {
        return bad("record is not a map");
    }
    Ok(Event {
        tag: tag.to_string(),
        time_ns: time_ns(&pair[0])?,
        record,
    })
}

fn time_ns(v: &Value) -> Result<u64, Refusal> {
    match v {
        Value::Integer(i) => i
            .as_u64()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .ok_or_else(|| Refusal::Malformed("time out of range".into())),
        Value::F64(f) if f.is_finite() && *f >= 0.0 => Ok((*f * 1e9) as u64),
        Value::F32(f) if f.is_finite() && *f >= 0.0 => Ok((f64::from(*f) * 1e9) as u64),
        Value::Ext(0, b) if b.len() == 8 => {
            let s = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            Ok(u64::from(s) * 1_000_000_000 + u64::from(n))
        }
        _ => bad("time is neither an integer nor an EventTime"),
    }
}

/// What a receiver counted.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub connections: AtomicU64,
    pub events: AtomicU64,
    pub acks: AtomicU64,
    /// Connections closed by the server, by [`Refusal::reason`].
    pub closed: Mutex<BTreeMap<&'static str, u64>>,
}

impl ServerStats {
    pub fn closed(&self, reason: &str) -> u64 {
        self.closed
            .lock()
            .map(|m| m.get(reason).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Called with each decoded batch; true once the events are kept (the ack is then sent).
pub type Handler = Arc<dyn Fn(&Batch) -> bool + Send + Sync>;

/// A blocking Forward receiver: one thread per connection.
pub struct Receiver {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    /// Live connections (a clone of each socket, to cut them at stop), by id.
    conns: Conns,
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

type Conns = Arc<Mutex<std::collections::HashMap<u64, TcpStream>>>;

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

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
        let conns: Conns = Arc::default();
        let stats = Arc::new(ServerStats::default());
        let cfg = Arc::new(cfg);
        let accept = {
            let (stop, conns, stats) = (stop.clone(), conns.clone(), stats.clone());
            std::thread::Builder::new()
                .name("forward-accept".into())
                .spawn(move || {
                    let mut next_id = 0u64;
                    for s in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(s) = s else { continue };
                        let peer = s
                            .peer_addr()
                            .map(|a| a.to_string())
                            .unwrap_or_else(|_| "?".into());
                        next_id += 1;
                        let id = next_id;
                        if let Ok(c) = s.try_clone()
                            && let Ok(mut l) = conns.lock()
                        {
                            l.insert(id, c);
                        }
                        stats.connections.fetch_add(1, Ordering::Relaxed);
                        let (cfg, handler, stats, tls, conns) = (
                            cfg.clone(),
                            handler.clone(),
                            stats.clone(),
                            tls.clone(),
                            conns.clone(),
                        );
                        let _ = std::thread::Builder::new()
                            .name("forward-conn".into())
                            .spawn(move || {
                                serve(s, &peer, cfg, tls, &handler, &stats);
                                // Close for real: the clone kept for `stop` holds the socket.
                                if let Some(c) = conns.lock().ok().and_then(|mut l| l.remove(&id)) {
                                    let _ = c.shutdown(std::net::Shutdown::Both);
                                }
                            });
                    }
                })?
        };
        Ok(Receiver {
            addr: local,
            stop,
            conns,
            accept: Some(accept),
            stats,
        })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
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
        if let Ok(l) = self.conns.lock() {
            for c in l.values() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.halt();
        }
    }
}

fn serve(
    s: TcpStream,
    peer: &str,
    cfg: Arc<ServerConfig>,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: &Handler,
    stats: &ServerStats,
) {
    let _ = s.set_nodelay(true);
    let mut stream: Box<dyn Stream> = match tls {
        Some(t) => match rustls::ServerConnection::new(t) {
            Ok(c) => Box::new(rustls::StreamOwned::new(c, s)),
            Err(e) => {
                eprintln!("forward receiver: {peer}: TLS: {e}");
                return;
            }
        },
        None => Box::new(s),
    };
    let (mut codec, greeting) = ServerCodec::new(cfg);
    if let Some(g) = greeting
        && stream.write_all(&g).and_then(|()| stream.flush()).is_err()
    {
        return;
    }
    let mut buf = vec![0u8; 256 << 10];
    let mut reply = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        reply.clear();
        let r = codec.input(&buf[..n], &mut reply, &mut |b| {
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
        if !reply.is_empty()
            && stream
                .write_all(&reply)
                .and_then(|()| stream.flush())
                .is_err()
        {
            return;
        }
        if let Err(e) = r {
            eprintln!("forward receiver: {peer}: closing: {e}");
            if let Ok(mut m) = stats.closed.lock() {
                *m.entry(e.reason()).or_default() += 1;
            }
            return;
        }
    }
}
